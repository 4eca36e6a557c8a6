/* The "rbd" driver's data path: every read, write, zero write, discard
 * and flush is one librbd asynchronous call whose completion callback runs
 * on a librbd thread; it only records the result and schedules a bottom
 * half, which re-enters the waiting coroutine in the loop thread (the same
 * hand-off as util/thread-pool.c). Block status comes from librbd's diff
 * iteration, so ranges no RADOS object backs read as zeroes without being
 * read. Blocking librbd calls (diff iteration, resize) run in the thread
 * pool. */
#include <errno.h>
#include <string.h>
#include "block/drivers/rbd.h"
#include "util/io-engine.h"
#include "util/main-loop.h"

/* One asynchronous librbd call being waited for. */
typedef struct RbdRequest {
    Coroutine *co;
    ssize_t ret;
    bool done;
} RbdRequest;

/* In the loop thread: the bottom-half list's lock ordered req->ret. */
static void rbd_request_done_bh(void *opaque)
{
    RbdRequest *req = opaque;

    req->done = true;
    qco_enter(req->co);
}

/* On a librbd thread: touch nothing but the request. */
static void rbd_request_complete(rbd_completion_t c, void *opaque)
{
    RbdRequest *req = opaque;

    req->ret = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    qblk_bh_schedule(rbd_request_done_bh, req);
}

typedef enum {
    RBD_OP_READ,
    RBD_OP_WRITE,
    RBD_OP_ZERO,
    RBD_OP_DISCARD,
    RBD_OP_FLUSH,
} RbdOp;

/* Issues one librbd call and yields until its completion arrives. Returns
 * librbd's result (bytes for reads, 0 otherwise) or -errno. */
static ssize_t coroutine_fn rbd_co_submit(RbdState *s, RbdOp op, uint64_t offset,
                                          uint64_t bytes, QIOVector *qiov, int zero_flags)
{
    RbdRequest req = { .co = qco_self() };
    rbd_completion_t c;
    int ret;

    ret = rbd_aio_create_completion(&req, rbd_request_complete, &c);
    if (ret < 0) {
        return ret;
    }
    switch (op) {
    case RBD_OP_READ:
        ret = rbd_aio_readv(s->image, qiov->iov, qiov->niov, offset, c);
        break;
    case RBD_OP_WRITE:
        ret = rbd_aio_writev(s->image, qiov->iov, qiov->niov, offset, c);
        break;
    case RBD_OP_ZERO:
        ret = rbd_aio_write_zeroes(s->image, offset, bytes, c, zero_flags, 0);
        break;
    case RBD_OP_DISCARD:
        ret = rbd_aio_discard(s->image, offset, bytes, c);
        break;
    case RBD_OP_FLUSH:
        ret = rbd_aio_flush(s->image, c);
        break;
    }
    if (ret < 0) {
        /* Not queued: the callback will never run. */
        rbd_aio_release(c);
        return ret;
    }
    if (op != RBD_OP_READ && op != RBD_OP_FLUSH) {
        s->gen++;                  /* cached block status is stale from here */
    }
    while (!req.done) {
        qco_yield();
    }
    if (op != RBD_OP_READ && op != RBD_OP_FLUSH) {
        s->gen++;
    }
    return req.ret;
}

typedef struct RbdResizeJob {
    rbd_image_t image;
    uint64_t size;
} RbdResizeJob;

static int rbd_resize_in_thread(void *opaque)
{
    RbdResizeJob *job = opaque;

    return rbd_resize(job->image, job->size);
}

int coroutine_fn rbd_co_resize(BlockDriverState *bs, uint64_t new_size)
{
    RbdState *s = bs->opaque;
    RbdResizeJob job = { s->image, new_size };
    int ret;

    s->gen++;
    ret = qblk_co_run_in_thread(rbd_resize_in_thread, &job);
    s->gen++;
    if (ret == 0) {
        s->image_size = new_size;
    }
    return ret;
}

/* A format's file child grows as the format writes past its end; RBD
 * images do not, so the image is resized first. Under resize_lock, so two
 * growing writes cannot shrink the image back in the wrong order. */
static int coroutine_fn rbd_co_grow_for(BlockDriverState *bs, uint64_t end)
{
    RbdState *s = bs->opaque;
    int ret = 0;

    if (end <= s->image_size) {
        return 0;
    }
    qco_mutex_lock(&s->resize_lock);
    if (end > s->image_size) {
        ret = rbd_co_resize(bs, end);
    }
    qco_mutex_unlock(&s->resize_lock);
    return ret;
}

int coroutine_fn rbd_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags)
{
    RbdState *s = bs->opaque;
    uint64_t avail = (uint64_t)offset < s->image_size ? s->image_size - offset : 0;
    uint64_t n = MIN((uint64_t)bytes, avail);
    ssize_t ret;

    /* Past the end (a format's file child may read there): zeroes. */
    if (n < (uint64_t)bytes) {
        qiov_memset(qiov, n, 0, bytes - n);
    }
    if (n == 0) {
        return 0;
    }
    if (n == (uint64_t)bytes) {
        ret = rbd_co_submit(s, RBD_OP_READ, offset, n, qiov, 0);
    } else {
        QIOVector part;

        qiov_init_slice(&part, qiov, 0, n);
        ret = rbd_co_submit(s, RBD_OP_READ, offset, n, &part, 0);
        qiov_destroy(&part);
    }
    if (ret < 0) {
        return (int)ret;
    }
    /* librbd fills holes itself; a short count would be a librbd bug, but
     * never hand stale buffer bytes up as data. */
    if ((uint64_t)ret < n) {
        qiov_memset(qiov, ret, 0, n - ret);
    }
    return 0;
}

int coroutine_fn rbd_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags)
{
    RbdState *s = bs->opaque;
    int ret = rbd_co_grow_for(bs, offset + bytes);

    if (ret < 0) {
        return ret;
    }
    return (int)rbd_co_submit(s, RBD_OP_WRITE, offset, bytes, qiov, 0);
}

/* librbd zeroes natively: whole objects are removed (or truncated) and
 * partial ones zeroed by an object operation, so no zero data crosses the
 * network. Without MAY_UNMAP, as QEMU does, the range is zeroed thick
 * (allocated), which writes zero data: refused when the caller asked for
 * no slow path. */
int coroutine_fn rbd_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags)
{
    RbdState *s = bs->opaque;
    int zero_flags = 0;
    int ret;

    if (!(flags & BDRV_REQ_MAY_UNMAP)) {
        if (flags & BDRV_REQ_NO_FALLBACK) {
            return -ENOTSUP;
        }
        zero_flags = RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;
    }
    ret = rbd_co_grow_for(bs, offset + bytes);
    if (ret < 0) {
        return ret;
    }
    return (int)rbd_co_submit(s, RBD_OP_ZERO, offset, bytes, NULL, zero_flags);
}

int coroutine_fn rbd_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    RbdState *s = bs->opaque;
    uint64_t avail = (uint64_t)offset < s->image_size ? s->image_size - offset : 0;

    bytes = MIN((uint64_t)bytes, avail);
    if (bytes == 0) {
        return 0;
    }
    return (int)rbd_co_submit(s, RBD_OP_DISCARD, offset, bytes, NULL, 0);
}

int coroutine_fn rbd_co_flush(BlockDriverState *bs)
{
    return (int)rbd_co_submit(bs->opaque, RBD_OP_FLUSH, 0, 0, NULL, 0);
}

/* The extents RADOS objects back within [start, end): one diff iteration
 * over a window, kept until this node next changes the image (gen). librbd
 * ignores a callback's request to stop a non-whole-object iteration, so
 * each scan costs the whole window and is done once, not per call. */
struct RbdExtentCache {
    uint64_t start, end;
    GArray *extents;               /* of RbdExtent, ascending */
    uint64_t gen;
};

typedef struct RbdExtent {
    uint64_t start, end;
} RbdExtent;

/* Objects one scan covers (a list operation each): small enough that a
 * copy's reads start early and overlap the next scans. */
#define RBD_SCAN_OBJECTS 16

typedef struct RbdDiffScan {
    rbd_image_t image;
    uint64_t offset, bytes;
    GArray *extents;
} RbdDiffScan;

/* On a librbd thread; the scan is only read after the call returns. */
static int rbd_diff_extent(uint64_t offs, size_t len, int exists, void *opaque)
{
    RbdDiffScan *scan = opaque;
    RbdExtent ext = { offs, offs + len };

    /* From the image's creation, only existing extents are reported;
     * "exists == 0" would mean discarded since a snapshot. */
    if (exists && len > 0) {
        g_array_append_val(scan->extents, ext);
    }
    return 0;
}

static int rbd_diff_in_thread(void *opaque)
{
    RbdDiffScan *scan = opaque;

    /* Not whole objects: an object holds data only up to its own length,
     * which librbd reports exactly; past it the object reads as zeroes. */
    return rbd_diff_iterate2(scan->image, NULL, scan->offset, scan->bytes, true, false,
                             rbd_diff_extent, scan);
}

static gint rbd_extent_cmp(gconstpointer a, gconstpointer b)
{
    const RbdExtent *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

void rbd_extent_cache_free(RbdState *s)
{
    if (s->extent_cache) {
        g_array_unref(s->extent_cache->extents);
        g_free(s->extent_cache);
        s->extent_cache = NULL;
    }
}

/* Fills the cache with a window starting at offset. */
static int coroutine_fn rbd_co_scan(RbdState *s, uint64_t offset)
{
    RbdDiffScan scan = {
        .image = s->image,
        .offset = offset,
        .bytes = MIN(RBD_SCAN_OBJECTS * s->object_size, s->image_size - offset),
        .extents = g_array_new(FALSE, FALSE, sizeof(RbdExtent)),
    };
    uint64_t gen = s->gen;
    int ret = qblk_co_run_in_thread(rbd_diff_in_thread, &scan);

    if (ret < 0) {
        g_array_unref(scan.extents);
        return ret;
    }
    g_array_sort(scan.extents, rbd_extent_cmp);
    rbd_extent_cache_free(s);
    s->extent_cache = g_new0(RbdExtentCache, 1);
    s->extent_cache->start = scan.offset;
    s->extent_cache->end = scan.offset + scan.bytes;
    s->extent_cache->extents = scan.extents;
    /* Changed while scanning: s->gen moved on, so it serves this answer only. */
    s->extent_cache->gen = gen;
    return 0;
}

/* Extents backed by an object (with the parent image's) are DATA; the
 * rest reads as zeroes and is reported ZERO so that copies skip it. Both
 * map 1:1 onto the image (OFFSET_VALID), as QEMU's rbd driver reports. */
int coroutine_fn rbd_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file)
{
    RbdState *s = bs->opaque;
    RbdExtentCache *c;
    uint64_t end, next_data;
    int status = BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;

    *map = offset;
    *file = bs;
    if ((uint64_t)offset >= s->image_size) {
        *pnum = bytes;
        return BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_EOF;
    }
    end = MIN((uint64_t)(offset + bytes), s->image_size);
    c = s->extent_cache;
    if (!c || c->gen != s->gen || (uint64_t)offset < c->start || (uint64_t)offset >= c->end) {
        int ret = rbd_co_scan(s, offset);

        if (ret < 0) {
            return ret;
        }
        c = s->extent_cache;
    }
    end = MIN(end, c->end);
    next_data = end;
    for (guint i = 0; i < c->extents->len; i++) {
        const RbdExtent *e = &g_array_index(c->extents, RbdExtent, i);

        if (e->end <= (uint64_t)offset) {
            continue;
        }
        if (e->start <= (uint64_t)offset) {
            /* Adjacent extents (next objects) join into one answer. */
            uint64_t data_end = e->end;

            for (guint j = i + 1; j < c->extents->len; j++) {
                const RbdExtent *f = &g_array_index(c->extents, RbdExtent, j);

                if (f->start > data_end) {
                    break;
                }
                data_end = MAX(data_end, f->end);
            }
            next_data = offset;
            end = MIN(end, data_end);
            status = BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
        } else {
            next_data = MIN(end, e->start);
        }
        break;
    }
    *pnum = (status & BDRV_BLOCK_DATA ? end : next_data) - offset;
    if ((uint64_t)(offset + *pnum) >= s->image_size) {
        status |= BDRV_BLOCK_EOF;
    }
    return status;
}
