/* The null-co test driver's request counters, so unit tests can assert
 * exactly which I/Os the block core sent to it (STYLE rule 14). */
#ifndef QBLK_BLOCK_NULL_H
#define QBLK_BLOCK_NULL_H

#include <stdint.h>
#include "qblk/block.h"

typedef struct NullStats {
    uint64_t reads;            /* co_preadv calls */
    uint64_t writes;           /* co_pwritev calls */
    uint64_t zero_writes;      /* co_pwrite_zeroes calls done natively (zeroes=native) */
    uint64_t zero_refused;     /* co_pwrite_zeroes calls answered -ENOTSUP (zeroes=none) */
    uint64_t flushes;
    uint64_t discards;
    uint64_t bytes_read;
    uint64_t bytes_written;    /* through co_pwritev (the zero fallback lands here) */
    uint64_t bytes_zeroed;     /* accepted by co_pwrite_zeroes (zeroes=native) */
    int64_t max_write_bytes;   /* largest single co_pwritev */
    unsigned last_zero_flags;  /* flags of the last co_pwrite_zeroes call, either kind */
    unsigned set_perm_calls;   /* successful set_perm calls, and what the last gave */
    uint64_t perm, shared;
} NullStats;

/* The counters of a null-co node; NULL if bs is not one. Valid until the
 * node is closed. */
const NullStats *null_co_stats(BlockDriverState *bs);
/* Sets every counter of a null-co node back to zero (no-op otherwise). */
void null_co_stats_reset(BlockDriverState *bs);

#endif
