/* Synchronous wrappers (a coroutine run to completion by spinning the
 * loop, or called directly when already in a coroutine) and the callback
 * API for asynchronous requests. */
#include <errno.h>
#include "block/internal.h"
#include "util/main-loop.h"

typedef struct RunCo {
    CoroutineEntry *entry;
    void *opaque;
    bool done;
} RunCo;

static void coroutine_fn run_co_entry(void *opaque)
{
    RunCo *rc = opaque;

    rc->entry(rc->opaque);
    rc->done = true;
}

void bdrv_run_co(CoroutineEntry *entry, void *opaque)
{
    RunCo rc = { .entry = entry, .opaque = opaque };

    if (qco_in_coroutine()) {
        entry(opaque);
        return;
    }
    qco_enter(qco_create(run_co_entry, &rc));
    while (!rc.done) {
        qblk_loop_iterate(true);
    }
}

/* One argument block serves every wrapper. */
typedef struct SyncReq {
    BlockDriverState *bs;
    BdrvAioType type;
    int64_t offset, bytes;
    QIOVector *qiov;
    BdrvRequestFlags flags;
    int ret;
    /* async only */
    BdrvCompletionFunc *cb;
    void *cb_opaque;
} SyncReq;

static int coroutine_fn dispatch(SyncReq *r)
{
    switch (r->type) {
    case BDRV_AIO_READ:
        return bdrv_co_preadv(r->bs, r->offset, r->bytes, r->qiov, r->flags);
    case BDRV_AIO_WRITE:
        return bdrv_co_pwritev(r->bs, r->offset, r->bytes, r->qiov, r->flags);
    case BDRV_AIO_ZERO:
        return bdrv_co_pwrite_zeroes(r->bs, r->offset, r->bytes, r->flags);
    case BDRV_AIO_DISCARD:
        return bdrv_co_pdiscard(r->bs, r->offset, r->bytes);
    case BDRV_AIO_FLUSH:
        return bdrv_co_flush(r->bs);
    }
    return -EINVAL;
}

static void coroutine_fn sync_entry(void *opaque)
{
    SyncReq *r = opaque;

    r->ret = dispatch(r);
}

static int run_sync(BlockDriverState *bs, BdrvAioType type, int64_t offset, int64_t bytes,
                    QIOVector *qiov, BdrvRequestFlags flags)
{
    SyncReq r = { .bs = bs, .type = type, .offset = offset, .bytes = bytes,
                  .qiov = qiov, .flags = flags };

    bdrv_run_co(sync_entry, &r);
    return r.ret;
}

int bdrv_preadv(BlockDriverState *bs, int64_t offset, QIOVector *qiov, BdrvRequestFlags flags)
{
    return run_sync(bs, BDRV_AIO_READ, offset, qiov->size, qiov, flags);
}

int bdrv_pwritev(BlockDriverState *bs, int64_t offset, QIOVector *qiov, BdrvRequestFlags flags)
{
    return run_sync(bs, BDRV_AIO_WRITE, offset, qiov->size, qiov, flags);
}

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags)
{
    QIOVector qiov;

    if (bytes < 0) {
        return -EIO;
    }
    qiov_init_buf(&qiov, buf, bytes);
    return run_sync(bs, BDRV_AIO_READ, offset, bytes, &qiov, flags);
}

int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes, const void *buf,
                BdrvRequestFlags flags)
{
    QIOVector qiov;

    if (bytes < 0) {
        return -EIO;
    }
    qiov_init_buf(&qiov, (void *)buf, bytes);
    return run_sync(bs, BDRV_AIO_WRITE, offset, bytes, &qiov, flags);
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags)
{
    return run_sync(bs, BDRV_AIO_ZERO, offset, bytes, NULL, flags);
}

int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return run_sync(bs, BDRV_AIO_DISCARD, offset, bytes, NULL, 0);
}

int bdrv_flush(BlockDriverState *bs)
{
    return run_sync(bs, BDRV_AIO_FLUSH, 0, 0, NULL, 0);
}

int coroutine_fn bdrv_co_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               void *buf, BdrvRequestFlags flags)
{
    QIOVector qiov;

    qiov_init_buf(&qiov, buf, bytes);
    return bdrv_co_preadv(bs, offset, bytes, &qiov, flags);
}

int coroutine_fn bdrv_co_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                const void *buf, BdrvRequestFlags flags)
{
    QIOVector qiov;

    qiov_init_buf(&qiov, (void *)buf, bytes);
    return bdrv_co_pwritev(bs, offset, bytes, &qiov, flags);
}

typedef enum { STATUS_ONE_LAYER, STATUS_ALLOCATED, STATUS_ABOVE } StatusKind;

typedef struct StatusReq {
    BlockDriverState *bs;
    int64_t offset, bytes, *pnum, *map;
    BlockDriverState **file;
    StatusKind kind;
    BlockDriverState *base;
    int ret;
} StatusReq;

static void coroutine_fn status_entry(void *opaque)
{
    StatusReq *r = opaque;

    switch (r->kind) {
    case STATUS_ALLOCATED:
        r->ret = bdrv_co_is_allocated(r->bs, r->offset, r->bytes, r->pnum);
        break;
    case STATUS_ABOVE:
        r->ret = bdrv_co_block_status_above(r->bs, r->base, r->offset, r->bytes, r->pnum);
        break;
    default:
        r->ret = bdrv_co_block_status(r->bs, r->offset, r->bytes, r->pnum, r->map, r->file);
        break;
    }
}

int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    StatusReq r = { bs, offset, bytes, pnum, map, file, STATUS_ONE_LAYER, NULL, 0 };

    bdrv_run_co(status_entry, &r);
    return r.ret;
}

int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes, int64_t *pnum)
{
    StatusReq r = { bs, offset, bytes, pnum, NULL, NULL, STATUS_ALLOCATED, NULL, 0 };

    bdrv_run_co(status_entry, &r);
    return r.ret;
}

int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base, int64_t offset,
                            int64_t bytes, int64_t *pnum)
{
    StatusReq r = { bs, offset, bytes, pnum, NULL, NULL, STATUS_ABOVE, base, 0 };

    bdrv_run_co(status_entry, &r);
    return r.ret;
}

typedef struct TruncateReq {
    BlockDriverState *bs;
    int64_t offset;
    bool exact;
    PreallocMode prealloc;
    GError **errp;
    int ret;
} TruncateReq;

static void coroutine_fn truncate_entry(void *opaque)
{
    TruncateReq *r = opaque;

    r->ret = bdrv_co_truncate(r->bs, r->offset, r->exact, r->prealloc, r->errp);
}

int bdrv_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                  PreallocMode prealloc, GError **errp)
{
    TruncateReq r = { bs, offset, exact, prealloc, errp, 0 };

    bdrv_run_co(truncate_entry, &r);
    return r.ret;
}

/* Async: the request runs in its own coroutine; the callback is deferred
 * to a bottom half so it never runs before bdrv_aio_submit returns. */
static void aio_complete_bh(void *opaque)
{
    SyncReq *r = opaque;

    r->cb(r->cb_opaque, r->ret);
    bdrv_dec_in_flight(r->bs);
    bdrv_unref(r->bs);
    g_free(r);
}

static void coroutine_fn aio_entry(void *opaque)
{
    SyncReq *r = opaque;

    r->ret = dispatch(r);
    qblk_bh_schedule(aio_complete_bh, r);
}

void bdrv_aio_submit(BlockDriverState *bs, BdrvAioType type, int64_t offset,
                     int64_t bytes, QIOVector *qiov, BdrvRequestFlags flags,
                     BdrvCompletionFunc *cb, void *opaque)
{
    SyncReq *r = g_new0(SyncReq, 1);

    *r = (SyncReq) { .bs = bs, .type = type, .offset = offset, .bytes = bytes,
                     .qiov = qiov, .flags = flags, .cb = cb, .cb_opaque = opaque };
    bdrv_ref(bs);
    /* Counted until the callback has run, so drain waits for it too. */
    bdrv_inc_in_flight(bs);
    qco_enter(qco_create(aio_entry, r));
}

static bool node_busy(BlockDriverState *bs)
{
    return bs && (bs->in_flight > 0 || node_busy(bs->file) || node_busy(bs->backing));
}

void bdrv_drain(BlockDriverState *bs)
{
    while (bs ? node_busy(bs) : bdrv_any_in_flight()) {
        qblk_loop_iterate(true);
    }
}
