/* bdrv_co_pwrite_zeroes: the driver's cheap zeroing where it has one, and
 * the one fallback otherwise — plain writes of at most 1 MiB from a shared
 * zero buffer, so memory stays constant for any length. */
#include <errno.h>
#include <sys/mman.h>
#include "block/internal.h"
#include "trace-events.h"

static void *zero_buffer;

const void *bdrv_zero_buffer(void)
{
    if (!zero_buffer) {
        /* A private read-only anonymous mapping reads as zeroes and maps
         * the kernel's zero page: no resident memory however often used. */
        zero_buffer = mmap(NULL, BDRV_ZERO_BUF_SIZE, PROT_READ,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (zero_buffer == MAP_FAILED) {
            g_error("cannot map the zero buffer");
        }
    }
    return zero_buffer;
}

/* Plain zero writes, chunk by chunk, inside the caller's tracked request. */
static int coroutine_fn zero_fallback(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags G_GNUC_UNUSED)
{
    int64_t chunk = BDRV_ZERO_BUF_SIZE;

    trace_bdrv_co_zero_fallback(bs, offset, bytes);
    if (bs->bl.max_transfer > 0) {
        chunk = MIN(chunk, bs->bl.max_transfer);
    }
    while (bytes > 0) {
        int64_t n = MIN(bytes, chunk);
        QIOVector qiov;
        int ret;

        qiov_init_buf(&qiov, (void *)bdrv_zero_buffer(), n);
        ret = bdrv_co_do_pwritev(bs, offset, n, &qiov, 0);
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* Hands the aligned middle to the driver, max_pwrite_zeroes at a time
 * (only on nodes whose zero capability is native). */
static int coroutine_fn zero_native(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    BdrvRequestFlags flags)
{
    int64_t max = bs->bl.max_pwrite_zeroes > 0 ? bs->bl.max_pwrite_zeroes : INT64_MAX;
    BdrvRequestFlags drv_flags = flags & bs->supported_zero_flags;

    while (bytes > 0) {
        int64_t n = MIN(bytes, max);
        int ret = bs->drv->co_pwrite_zeroes(bs, offset, n, drv_flags);

        g_assert(ret <= 0);
        if (ret == -ENOTSUP) {
            if (flags & BDRV_REQ_NO_FALLBACK) {
                return -ENOTSUP;
            }
            ret = zero_fallback(bs, offset, n, flags);
        }
        if (ret < 0) {
            return ret;
        }
        offset += n;
        bytes -= n;
    }
    return 0;
}

/* A head or tail piece: the driver sees it first when it respects the
 * request alignment (it may still be cheap, e.g. when the rest of its
 * cluster already reads as zeroes); otherwise, or when the driver
 * declines, zero buffers. */
static int coroutine_fn zero_piece(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                   BdrvRequestFlags flags)
{
    int64_t align = MAX(bs->bl.request_alignment, 1);

    if (bytes == 0) {
        return 0;
    }
    if (offset % align == 0 && bytes % align == 0) {
        return zero_native(bs, offset, bytes, flags);
    }
    return (flags & BDRV_REQ_NO_FALLBACK) ? -ENOTSUP : zero_fallback(bs, offset, bytes, flags);
}

/* Splits the request into an unaligned head, an aligned middle and an
 * unaligned tail (see zero_piece). FUA is stripped from every piece and
 * honoured with one flush at the end. */
static int coroutine_fn do_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes, BdrvRequestFlags flags)
{
    int64_t align = MAX(bs->bl.pwrite_zeroes_alignment, bs->bl.request_alignment);
    int64_t mid_start, mid_end;
    int ret;

    if (bs->caps.zero != BDRV_CAP_NATIVE) {
        return (flags & BDRV_REQ_NO_FALLBACK) ? -ENOTSUP
                                              : zero_fallback(bs, offset, bytes, flags);
    }
    if (align <= 1) {
        return zero_native(bs, offset, bytes, flags);
    }
    mid_start = bdrv_round_up(offset, align);
    mid_end = (offset + bytes) / align * align;
    if (mid_end <= mid_start) {
        return zero_piece(bs, offset, bytes, flags);
    }
    ret = zero_piece(bs, offset, mid_start - offset, flags);
    if (ret == 0) {
        ret = zero_native(bs, mid_start, mid_end - mid_start, flags);
    }
    if (ret == 0) {
        ret = zero_piece(bs, mid_end, offset + bytes - mid_end, flags);
    }
    return ret;
}

int coroutine_fn bdrv_co_do_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                          int64_t bytes, BdrvRequestFlags flags)
{
    int ret = do_pwrite_zeroes(bs, offset, bytes, flags & ~BDRV_REQ_FUA);

    if (ret == 0 && (flags & BDRV_REQ_FUA)) {
        ret = bdrv_co_flush_in_request(bs);
    }
    return ret;
}

int coroutine_fn bdrv_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags)
{
    BdrvRequest req;
    int64_t align;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_ZERO, offset, bytes, flags);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    align = bs->bl.request_alignment > 1 ? bs->bl.request_alignment : 1;
    ret = bdrv_co_request_begin(&req, bs, BDRV_REQUEST_ZERO, offset, bytes,
                                (offset % align || bytes % align) ? align : 0);
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_do_pwrite_zeroes(bs, offset, bytes, flags | BDRV_REQ_ZERO_WRITE);
    bdrv_request_end(&req);
    return ret;
}
