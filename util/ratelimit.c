/* Slice-based rate limiter: up to one slice's quota goes out at once; past
 * it, the slice stretches in proportion to the excess and callers wait. */
#include "util/ratelimit.h"

#define DEFAULT_SLICE_NS 100000000LL  /* 100 ms, like QEMU's block jobs */

void ratelimit_set_speed(RateLimit *rl, uint64_t speed, int64_t slice_ns)
{
    if (slice_ns <= 0) {
        slice_ns = DEFAULT_SLICE_NS;
    }
    rl->slice_ns = slice_ns;
    if (speed == 0) {
        rl->bytes_per_slice = 0;
    } else {
        double quota = (double)speed * slice_ns / 1e9;

        /* A tiny speed must still let one byte through per slice. */
        rl->bytes_per_slice = quota < 1 ? 1 : (uint64_t)quota;
    }
    /* The running slice is kept: a speed change takes effect from the next
     * one, and a zeroed RateLimit starts with no slice at all. */
}

/* The time by which the bytes dispatched in the current slice are paid for:
 * the slice's end, or later once they exceed its quota. The struct stores
 * only the un-stretched end, from which the start follows. */
static int64_t paid_until(const RateLimit *rl)
{
    int64_t start = rl->slice_end_ns - rl->slice_ns;

    if (rl->dispatched < rl->bytes_per_slice) {
        return rl->slice_end_ns;
    }
    return start + (int64_t)((double)rl->dispatched / rl->bytes_per_slice *
                             rl->slice_ns);
}

int64_t ratelimit_calculate_delay(RateLimit *rl, uint64_t n, int64_t now_ns)
{
    int64_t until;

    if (!rl->bytes_per_slice) {
        return 0;
    }
    if (paid_until(rl) <= now_ns) {
        rl->slice_end_ns = now_ns + rl->slice_ns;
        rl->dispatched = 0;
    }
    rl->dispatched += n;
    if (rl->dispatched < rl->bytes_per_slice) {
        return 0;
    }
    until = paid_until(rl);
    return until > now_ns ? until - now_ns : 0;
}
