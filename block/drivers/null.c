/* The "null-co" protocol driver: a device of a given size that stores
 * nothing, for tests and benchmarks of the block core. It counts what it
 * receives (block/null.h) so tests can assert which I/Os the core sent.
 *
 * Options:
 *   size=N          length in bytes (default 1 GiB)
 *   read-zeroes=on  reads return zeroes (default on; QEMU's default is off,
 *                   where reads leave the buffer untouched and return
 *                   whatever it held: we prefer deterministic results)
 *   zeroes=none     co_pwrite_zeroes answers -ENOTSUP without doing
 *                   anything, so every zero write takes the core's
 *                   fallback (plain writes from the shared zero buffer),
 *                   which is what this driver exists to exercise and
 *                   benchmark (the default)
 *   zeroes=native   co_pwrite_zeroes succeeds at once (dispatch tests)
 *   latency-ns=N    every request sleeps N ns before completing (default 0),
 *                   to keep requests in flight together
 *   refuse-perm=N   set_perm fails (-EBUSY) while the cumulative permissions
 *                   include any BLK_PERM_* bit of N, as another process's
 *                   image lock would: graph tests of the all-or-nothing rule
 *
 * A driver table is shared by every node and never changes, so "no native
 * zeroes" cannot be a missing callback for one node only: open declares it
 * (bs->no_native_zeroes), the core's zero capability is then EMULATE and
 * the callback is never called. Should it be, it answers -ENOTSUP, which
 * the core treats the same way (BlockDriver contract: "Missing or
 * -ENOTSUP"); such answers are counted apart (zero_refused), so
 * zero_writes counts only zero writes done natively. */
#include <errno.h>
#include <string.h>
#include "block/drivers/null.h"
#include "qblk/block_int.h"

typedef struct NullState {
    int64_t size;
    bool read_zeroes;
    bool native_zeroes;
    int64_t latency_ns;
    int64_t refuse_perm;
    NullStats stats;
} NullState;

const NullStats *null_co_stats(BlockDriverState *bs)
{
    if (!bs || bs->drv != &bdrv_null_co) {
        return NULL;
    }
    return &((NullState *)bs->opaque)->stats;
}

void null_co_stats_reset(BlockDriverState *bs)
{
    if (bs && bs->drv == &bdrv_null_co) {
        memset(&((NullState *)bs->opaque)->stats, 0, sizeof(NullStats));
    }
}

static bool null_take_number(QblkOpts *options, const char *key, int64_t *out,
                             GError **errp)
{
    g_autofree char *str = qblk_opts_take(options, key);
    guint64 val;

    *out = 0;
    if (!str) {
        return true;
    }
    if (!g_ascii_string_to_unsigned(str, 10, 0, INT64_MAX, &val, NULL)) {
        qblk_error_set(errp, "Parameter '%s' expects a non-negative number", key);
        return false;
    }
    *out = (int64_t)val;
    return true;
}

static int null_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    NullState *s = bs->opaque;
    g_autofree char *filename = qblk_opts_take(options, "filename");
    g_autofree char *zeroes = qblk_opts_take(options, "zeroes");

    if (filename && *filename && strcmp(filename, "null-co://") != 0) {
        qblk_error_set(errp, "The only allowed filename for this driver is 'null-co://'");
        return -EINVAL;
    }
    if (!qblk_opts_take_size(options, "size", 1LL << 30, &s->size, errp) ||
        !qblk_opts_take_bool(options, "read-zeroes", true, &s->read_zeroes, errp) ||
        !null_take_number(options, "latency-ns", &s->latency_ns, errp) ||
        !null_take_number(options, "refuse-perm", &s->refuse_perm, errp)) {
        return -EINVAL;
    }
    if (!zeroes || strcmp(zeroes, "none") == 0) {
        s->native_zeroes = false;
    } else if (strcmp(zeroes, "native") == 0) {
        s->native_zeroes = true;
    } else {
        qblk_error_set(errp, "Parameter 'zeroes' expects 'native' or 'none'");
        return -EINVAL;
    }

    bs->bl.request_alignment = 1;
    bs->supported_write_flags = 0;
    bs->supported_zero_flags = s->native_zeroes
        ? BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK : 0;
    bs->no_native_zeroes = !s->native_zeroes;
    return 0;
}

static void coroutine_fn null_co_delay(NullState *s)
{
    if (s->latency_ns > 0) {
        qco_sleep_ns(s->latency_ns);
    }
}

static int coroutine_fn null_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                       QIOVector *qiov, BdrvRequestFlags flags)
{
    NullState *s = bs->opaque;

    s->stats.reads++;
    s->stats.bytes_read += bytes;
    if (s->read_zeroes) {
        qiov_memset(qiov, 0, 0, bytes);
    }
    null_co_delay(s);
    return 0;
}

static int coroutine_fn null_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        QIOVector *qiov, BdrvRequestFlags flags)
{
    NullState *s = bs->opaque;

    s->stats.writes++;
    s->stats.bytes_written += bytes;
    s->stats.max_write_bytes = MAX(s->stats.max_write_bytes, bytes);
    null_co_delay(s);
    return 0;
}

static int coroutine_fn null_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                              int64_t bytes, BdrvRequestFlags flags)
{
    NullState *s = bs->opaque;

    s->stats.last_zero_flags = flags;
    if (!s->native_zeroes) {
        s->stats.zero_refused++;
        return -ENOTSUP;
    }
    s->stats.zero_writes++;
    s->stats.bytes_zeroed += bytes;
    null_co_delay(s);
    return 0;
}

static int coroutine_fn null_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    NullState *s = bs->opaque;

    s->stats.discards++;
    null_co_delay(s);
    return 0;
}

static int coroutine_fn null_co_flush(BlockDriverState *bs)
{
    NullState *s = bs->opaque;

    s->stats.flushes++;
    null_co_delay(s);
    return 0;
}

static int coroutine_fn null_co_block_status(BlockDriverState *bs, bool want_zero,
                                             int64_t offset, int64_t bytes, int64_t *pnum,
                                             int64_t *map, BlockDriverState **file)
{
    NullState *s = bs->opaque;

    *pnum = bytes;
    *map = offset;
    *file = bs;
    return BDRV_BLOCK_OFFSET_VALID | (s->read_zeroes ? BDRV_BLOCK_ZERO : 0);
}

static int64_t null_getlength(BlockDriverState *bs)
{
    NullState *s = bs->opaque;

    return s->size;
}

/* Nothing is stored anywhere. */
static int64_t null_get_allocated_file_size(BlockDriverState *bs)
{
    return 0;
}

static int null_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared, GError **errp)
{
    NullState *s = bs->opaque;

    if (perm & (uint64_t)s->refuse_perm) {
        qblk_error_set(errp, "null-co refuses permissions 0x%" G_GINT64_MODIFIER "x",
                       perm & (uint64_t)s->refuse_perm);
        return -EBUSY;
    }
    s->stats.set_perm_calls++;
    s->stats.perm = perm;
    s->stats.shared = shared;
    return 0;
}

const BlockDriver bdrv_null_co = {
    .format_name = "null-co",
    .instance_size = sizeof(NullState),
    .is_protocol = true,
    .protocol_prefix = "null-co://",

    .open = null_open,
    .set_perm = null_set_perm,
    .co_preadv = null_co_preadv,
    .co_pwritev = null_co_pwritev,
    .co_pwrite_zeroes = null_co_pwrite_zeroes,
    .co_pdiscard = null_co_pdiscard,
    .co_flush = null_co_flush,
    .co_block_status = null_co_block_status,
    .getlength = null_getlength,
    .get_allocated_file_size = null_get_allocated_file_size,
};
