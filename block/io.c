/* Request entry points for read, write, discard, flush and truncate, past
 * the common preamble (block/request.c): alignment (read-modify-write for
 * requests below the driver's alignment), splitting by max_transfer, FUA
 * emulation, and the fallbacks for missing driver callbacks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "block/internal.h"
#include "util/bufferiszero.h"
#include "util/main-loop.h"
#include "trace-events.h"

int64_t bdrv_round_up(int64_t n, int64_t align)
{
    return (n + align - 1) / align * align;
}

static uint32_t request_align(BlockDriverState *bs)
{
    return bs->bl.request_alignment ? bs->bl.request_alignment : 1;
}

static bool qiov_mem_aligned(const QIOVector *qiov, size_t align)
{
    if (align <= 1) {
        return true;
    }
    for (int i = 0; i < qiov->niov; i++) {
        if ((uintptr_t)qiov->iov[i].iov_base % align || qiov->iov[i].iov_len % align) {
            return false;
        }
    }
    return true;
}

static void *blockalign_alloc(BlockDriverState *bs, size_t size)
{
    void *p = NULL;
    size_t align = bs->bl.min_mem_alignment > sizeof(void *) ? bs->bl.min_mem_alignment : 4096;

    if (posix_memalign(&p, align, size ? size : 1)) {
        g_error("out of memory allocating %zu bytes", size);
    }
    return p;
}

/* Calls the driver in max_transfer pieces; bounces buffers the host
 * cannot use directly (O_DIRECT memory alignment). */
static int coroutine_fn driver_transfer(BlockDriverState *bs, bool write, int64_t offset,
                                        int64_t bytes, QIOVector *qiov,
                                        BdrvRequestFlags flags)
{
    int64_t max = bs->bl.max_transfer > 0 ? bs->bl.max_transfer : INT64_MAX;
    int64_t done = 0;
    bool bounce = !qiov_mem_aligned(qiov, bs->bl.min_mem_alignment);

    if (write && !bs->drv->co_pwritev) {
        return -ENOTSUP;
    }
    while (done < bytes) {
        int64_t n = MIN(bytes - done, max);
        QIOVector piece;
        void *buf = NULL;
        int ret;

        if (bounce) {
            buf = blockalign_alloc(bs, n);
            qiov_init_buf(&piece, buf, n);
            if (write) {
                qiov_to_buf(qiov, done, buf, n);
            }
        } else {
            qiov_init_slice(&piece, qiov, done, n);
        }
        if (write) {
            ret = bs->drv->co_pwritev(bs, offset + done, n, &piece,
                                      flags & bs->supported_write_flags);
        } else {
            ret = bs->drv->co_preadv(bs, offset + done, n, &piece, 0);
            if (ret == 0 && bounce) {
                qiov_from_buf(qiov, done, buf, n);
            }
        }
        qiov_destroy(&piece);
        free(buf);
        g_assert(ret <= 0);    /* drivers return 0 or -errno, never a count */
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

int coroutine_fn bdrv_co_aligned_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        QIOVector *qiov, BdrvRequestFlags flags)
{
    return driver_transfer(bs, false, offset, bytes, qiov, flags);
}

int coroutine_fn bdrv_co_aligned_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                         QIOVector *qiov, BdrvRequestFlags flags)
{
    int ret = driver_transfer(bs, true, offset, bytes, qiov, flags);

    if (ret == 0 && (flags & BDRV_REQ_FUA) && bs->caps.fua != BDRV_CAP_NATIVE) {
        ret = bdrv_co_flush_in_request(bs);
    }
    return ret;
}

/* Pads [offset, offset+bytes) out to the alignment with head and tail
 * buffers. For writes the padding holds the current contents (the "read"
 * of read-modify-write); for reads it receives the surplus. */
typedef struct Padding {
    int64_t offset, bytes;     /* the aligned request */
    uint8_t *buf;              /* head block then tail block */
    QIOVector qiov;
} Padding;

static int coroutine_fn pad_request(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    QIOVector *qiov, bool write, Padding *pad)
{
    int64_t align = request_align(bs);
    int64_t head = offset % align;
    int64_t end = offset + bytes;
    int64_t tail_start = end - end % align;
    bool has_tail = end % align != 0;
    bool same_block = has_tail && head && tail_start == offset - head;
    int ret;

    pad->offset = offset - head;
    pad->bytes = bdrv_round_up(end, align) - pad->offset;
    pad->buf = blockalign_alloc(bs, 2 * align);
    qiov_init(&pad->qiov, qiov->niov + 2);

    if (write) {
        /* Read the edge blocks whole, then overlay the caller's data. */
        QIOVector blk;

        if (head || same_block) {
            qiov_init_buf(&blk, pad->buf, align);
            ret = bdrv_co_aligned_preadv(bs, pad->offset, align, &blk, 0);
            if (ret < 0) {
                return ret;
            }
        }
        if (has_tail && !same_block) {
            qiov_init_buf(&blk, pad->buf + align, align);
            ret = bdrv_co_aligned_preadv(bs, tail_start, align, &blk, 0);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (head) {
        qiov_add(&pad->qiov, pad->buf, head);
    }
    qiov_concat(&pad->qiov, qiov, 0, bytes);
    if (has_tail) {
        uint8_t *tail_blk = same_block ? pad->buf : pad->buf + align;
        int64_t tail_off = end - (same_block ? pad->offset : tail_start);

        qiov_add(&pad->qiov, tail_blk + tail_off, align - tail_off);
    }
    return 0;
}

static void pad_free(Padding *pad)
{
    qiov_destroy(&pad->qiov);
    free(pad->buf);
}

static bool is_aligned(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    int64_t align = request_align(bs);

    return offset % align == 0 && bytes % align == 0;
}

int coroutine_fn bdrv_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags)
{
    BdrvRequest req;
    bool cor;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_READ, offset, bytes, flags);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    cor = (bs->copy_on_read > 0 || (flags & BDRV_REQ_COPY_ON_READ)) &&
          bs->caps.copy_on_read && bs->backing && !bs->read_only;

    bdrv_co_request_begin(&req, bs, BDRV_REQUEST_READ, offset, bytes,
                          cor ? bdrv_cor_cluster_size(bs) : 0);
    if (cor) {
        ret = bdrv_co_copy_on_read(bs, offset, bytes, qiov);
    } else if (is_aligned(bs, offset, bytes)) {
        ret = bdrv_co_aligned_preadv(bs, offset, bytes, qiov, flags);
    } else {
        Padding pad;

        ret = pad_request(bs, offset, bytes, qiov, false, &pad);
        if (ret == 0) {
            ret = bdrv_co_aligned_preadv(bs, pad.offset, pad.bytes, &pad.qiov, flags);
        }
        pad_free(&pad);
    }
    bdrv_request_end(&req);
    return ret;
}

int coroutine_fn bdrv_co_do_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    QIOVector *qiov, BdrvRequestFlags flags)
{
    Padding pad;
    int ret;

    if (is_aligned(bs, offset, bytes)) {
        return bdrv_co_aligned_pwritev(bs, offset, bytes, qiov, flags);
    }
    trace_bdrv_rmw_head_tail(bs, offset, bytes, request_align(bs));
    ret = pad_request(bs, offset, bytes, qiov, true, &pad);
    if (ret == 0) {
        ret = bdrv_co_aligned_pwritev(bs, pad.offset, pad.bytes, &pad.qiov, flags);
    }
    pad_free(&pad);
    return ret;
}

/* detect-zeroes: whether this write should become a zero write. Only
 * where the driver zeroes natively (as QEMU: elsewhere the zero write
 * would be the same plain write, scanned for nothing). */
static bool detect_zero_write(BlockDriverState *bs, int64_t bytes, QIOVector *qiov,
                              BdrvRequestFlags flags)
{
    return bs->detect_zeroes != BDRV_DETECT_ZEROES_OFF && bs->caps.zero == BDRV_CAP_NATIVE &&
           !(flags & BDRV_REQ_WRITE_COMPRESSED) && qiov_is_zero(qiov, 0, bytes);
}

int coroutine_fn bdrv_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 QIOVector *qiov, BdrvRequestFlags flags)
{
    BdrvRequest req;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_WRITE, offset, bytes, flags);

    if (ret < 0 || bytes == 0) {
        return ret;
    }
    if (detect_zero_write(bs, bytes, qiov, flags)) {
        /* unmap only where the node lets discards through (discard=unmap,
         * which opening demands with detect-zeroes=unmap). */
        if (bs->detect_zeroes == BDRV_DETECT_ZEROES_UNMAP && bs->discard_unmap) {
            flags |= BDRV_REQ_MAY_UNMAP;
        }
        return bdrv_co_pwrite_zeroes(bs, offset, bytes, flags);
    }
    ret = bdrv_co_request_begin(&req, bs, BDRV_REQUEST_WRITE, offset, bytes,
                                is_aligned(bs, offset, bytes) ? 0 : request_align(bs));
    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_do_pwritev(bs, offset, bytes, qiov, flags);
    bdrv_request_end(&req);
    return ret;
}

int coroutine_fn bdrv_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BdrvRequest req;
    int64_t align, start, end;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_DISCARD, offset, bytes, 0);

    if (ret < 0 || bs->caps.discard != BDRV_CAP_NATIVE) {
        return ret;    /* without a native discard it is ignored: it is advisory */
    }
    /* Only whole aligned units can be released; the edges stay as they are. */
    align = MAX(bs->bl.pdiscard_alignment, request_align(bs));
    start = bdrv_round_up(offset, align);
    end = (offset + bytes) / align * align;
    if (end <= start) {
        return 0;
    }
    ret = bdrv_co_request_begin(&req, bs, BDRV_REQUEST_DISCARD, start, end - start, 0);
    if (ret < 0) {
        return ret;
    }
    for (int64_t pos = start; pos < end;) {
        int64_t n = end - pos;

        if (bs->bl.max_pdiscard > 0) {
            n = MIN(n, bs->bl.max_pdiscard);
        }
        ret = bs->drv->co_pdiscard(bs, pos, n);
        g_assert(ret <= 0);
        if (ret == -ENOTSUP) {
            ret = 0;
            break;
        }
        if (ret < 0) {
            break;
        }
        pos += n;
    }
    bdrv_request_end(&req);
    return ret;
}

int coroutine_fn bdrv_co_flush_in_request(BlockDriverState *bs)
{
    int ret = 0;

    if (bs->drv->co_flush && !(bs->no_flush && bs->drv->is_protocol)) {
        ret = bs->drv->co_flush(bs);
        g_assert(ret <= 0);
    }
    if (ret == 0 && bs->file) {
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

int coroutine_fn bdrv_co_flush(BlockDriverState *bs)
{
    BdrvRequest req;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_FLUSH, 0, 0, 0);

    if (ret < 0) {
        return ret;
    }
    bdrv_co_request_begin(&req, bs, BDRV_REQUEST_FLUSH, 0, 0, 0);
    ret = bdrv_co_flush_in_request(bs);
    bdrv_request_end(&req);
    return ret;
}

int prealloc_mode_parse(const char *str)
{
    static const char *const names[] = { "off", "metadata", "falloc", "full" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(str, names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int coroutine_fn bdrv_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                  PreallocMode prealloc, GError **errp)
{
    BdrvRequest req;
    int64_t old_len;
    int ret = bdrv_request_check(bs, BDRV_REQUEST_TRUNCATE, offset, 0, 0);

    if (ret == -ENOMEDIUM) {
        qblk_error_set(errp, "No medium inserted");
        return ret;
    }
    if (ret == -EPERM) {
        qblk_error_set(errp, "Block node is read-only");
        return ret;
    }
    g_assert(ret == 0);
    if (offset < 0) {
        qblk_error_set(errp, "Image size cannot be negative");
        return -EINVAL;
    }
    if (offset > BDRV_MAX_LENGTH) {
        qblk_error_set(errp, "offset(%" PRId64 ") exceeds maximum(%" PRId64 ")",
                       offset, (int64_t)BDRV_MAX_LENGTH);
        return -EINVAL;
    }
    if (!bs->drv->co_truncate) {
        qblk_error_set(errp, "Image format driver does not support resize");
        return -ENOTSUP;
    }
    old_len = bdrv_getlength(bs);
    if (old_len < 0) {
        qblk_error_set_errno(errp, (int)-old_len, "Failed to get the image length");
        return (int)old_len;
    }
    trace_bdrv_co_truncate(bs, offset);
    /* Exclude every request that touches the part that appears or vanishes. */
    ret = bdrv_co_request_begin(&req, bs, BDRV_REQUEST_TRUNCATE, MIN(offset, old_len),
                                INT64_MAX - MIN(offset, old_len), 1);
    if (ret < 0) {
        qblk_error_set(errp, "Block node is read-only");
        return ret;
    }
    ret = bs->drv->co_truncate(bs, offset, exact, prealloc, errp);
    g_assert(ret <= 0);
    bdrv_request_end(&req);
    return ret;
}

/* Reads [pos, pos+n) of the backing chain into qiov: zeroes without a
 * backing file and past its end (it may be shorter than the image). */
int coroutine_fn bdrv_co_read_backing(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                     QIOVector *qiov, size_t qiov_off)
{
    int64_t blen;
    uint64_t avail = 0;
    int ret = 0;

    if (bs->backing) {
        blen = bdrv_getlength(bs->backing);
        if (blen < 0) {
            return (int)blen;
        }
        avail = (uint64_t)blen > pos ? MIN(n, (uint64_t)blen - pos) : 0;
    }
    if (avail) {
        QIOVector part;

        qiov_init_slice(&part, qiov, qiov_off, avail);
        ret = bdrv_co_preadv(bs->backing, pos, avail, &part, 0);
        qiov_destroy(&part);
    }
    if (ret == 0 && avail < n) {
        qiov_memset(qiov, qiov_off + avail, 0, n - avail);
    }
    return ret;
}
