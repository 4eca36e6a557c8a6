/* Token-bucket rate limiter for background jobs: callers account bytes
 * and learn how long to sleep before going on. */
#ifndef QBLK_UTIL_RATELIMIT_H
#define QBLK_UTIL_RATELIMIT_H

#include <stdint.h>

typedef struct RateLimit {
    uint64_t bytes_per_slice;  /* 0: unlimited */
    int64_t slice_ns;
    int64_t slice_end_ns;
    uint64_t dispatched;
} RateLimit;

/* speed in bytes per second; 0 means unlimited. */
void ratelimit_set_speed(RateLimit *rl, uint64_t speed, int64_t slice_ns);
/* Accounts n bytes at time now_ns; returns how many ns to wait before the
 * next request (0: go on at once). */
int64_t ratelimit_calculate_delay(RateLimit *rl, uint64_t n, int64_t now_ns);

#endif
