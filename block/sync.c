/* The synchronous edge: every wrapper runs its bdrv_co_* function in a new
 * coroutine and runs the loop until it is done (bdrv_run_co, which aborts
 * inside a coroutine), all through one argument block and one dispatch;
 * plus the callback API for asynchronous requests and draining. */
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

    /* Spinning the loop here would run other coroutines on this one's
     * stack, and wait forever if they wait for this one. */
    g_assert(!qco_in_coroutine());
    qco_enter(qco_create(run_co_entry, &rc));
    while (!rc.done) {
        qblk_loop_iterate(true);
    }
}

/* What a wrapper asks for. The request kinds come first and share
 * BdrvAioType's values, so asynchronous requests use the same block. */
typedef enum {
    CALL_READ = BDRV_AIO_READ,
    CALL_WRITE = BDRV_AIO_WRITE,
    CALL_ZERO = BDRV_AIO_ZERO,
    CALL_FLUSH = BDRV_AIO_FLUSH,
    CALL_DISCARD = BDRV_AIO_DISCARD,
    CALL_STATUS,
    CALL_ALLOCATED,
    CALL_STATUS_ABOVE,
    CALL_TRUNCATE,
    CALL_OPEN,
    CALL_UNREF,
    CALL_CREATE,
    CALL_MAKE_EMPTY,
    CALL_CHANGE_BACKING,
    CALL_AMEND,
    CALL_SNAPSHOT_CREATE,
    CALL_SNAPSHOT_GOTO,
    CALL_SNAPSHOT_DELETE,
    CALL_SAVE_VMSTATE,
    CALL_LOAD_VMSTATE,
    CALL_CHECK,
    CALL_REOPEN,
    CALL_SET_BACKING,
    CALL_COMMIT,
} CallKind;

/* One argument block serves every wrapper; each kind reads the fields
 * its bdrv_co_* function takes, named after its parameters. */
typedef struct Call {
    CallKind kind;
    BlockDriverState *bs;
    int64_t offset, bytes;
    QIOVector *qiov;
    BdrvRequestFlags flags;
    /* block status */
    int64_t *pnum, *map;
    BlockDriverState **file;
    BlockDriverState *base;      /* also commit's base */
    /* truncate */
    bool exact;
    PreallocMode prealloc;
    /* control */
    const char *name, *name2;      /* filename/format, backing file/format, snapshot */
    QblkOpts *opts;
    int open_flags;
    bool *probed_raw;
    void *buf;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    BdrvProgressFunc *progress;
    void *progress_opaque;
    BlockDriverState *new_backing;
    const BdrvCommitOptions *commit_opts;
    GError **errp;
    /* results */
    int ret;
    BlockDriverState *opened;
    /* asynchronous requests only */
    BdrvCompletionFunc *cb;
    void *cb_opaque;
} Call;

static void coroutine_fn call_entry(void *opaque)
{
    Call *c = opaque;

    switch (c->kind) {
    case CALL_READ:
        c->ret = bdrv_co_preadv(c->bs, c->offset, c->bytes, c->qiov, c->flags);
        break;
    case CALL_WRITE:
        c->ret = bdrv_co_pwritev(c->bs, c->offset, c->bytes, c->qiov, c->flags);
        break;
    case CALL_ZERO:
        c->ret = bdrv_co_pwrite_zeroes(c->bs, c->offset, c->bytes, c->flags);
        break;
    case CALL_DISCARD:
        c->ret = bdrv_co_pdiscard(c->bs, c->offset, c->bytes);
        break;
    case CALL_FLUSH:
        c->ret = bdrv_co_flush(c->bs);
        break;
    case CALL_STATUS:
        c->ret = bdrv_co_block_status(c->bs, c->offset, c->bytes, c->pnum, c->map, c->file);
        break;
    case CALL_ALLOCATED:
        c->ret = bdrv_co_is_allocated(c->bs, c->offset, c->bytes, c->pnum);
        break;
    case CALL_STATUS_ABOVE:
        c->ret = bdrv_co_block_status_above(c->bs, c->base, c->offset, c->bytes, c->pnum);
        break;
    case CALL_TRUNCATE:
        c->ret = bdrv_co_truncate(c->bs, c->offset, c->exact, c->prealloc, c->errp);
        break;
    case CALL_OPEN:
        c->opened = bdrv_co_open(c->name, c->opts, c->open_flags, c->probed_raw, c->errp);
        break;
    case CALL_UNREF:
        c->ret = bdrv_co_unref_flush(c->bs);
        break;
    case CALL_CREATE:
        c->ret = bdrv_co_create(c->name, c->name2, c->opts, c->errp);
        break;
    case CALL_MAKE_EMPTY:
        c->ret = bdrv_co_make_empty(c->bs, c->errp);
        break;
    case CALL_CHANGE_BACKING:
        c->ret = bdrv_co_change_backing_file(c->bs, c->name, c->name2, c->errp);
        break;
    case CALL_AMEND:
        c->ret = bdrv_co_amend(c->bs, c->opts, c->progress, c->progress_opaque, c->errp);
        break;
    case CALL_SNAPSHOT_CREATE:
        c->ret = bdrv_co_snapshot_create(c->bs, c->name, c->errp);
        break;
    case CALL_SNAPSHOT_GOTO:
        c->ret = bdrv_co_snapshot_goto(c->bs, c->name, c->errp);
        break;
    case CALL_SNAPSHOT_DELETE:
        c->ret = bdrv_co_snapshot_delete(c->bs, c->name, c->errp);
        break;
    case CALL_SAVE_VMSTATE:
        c->ret = bdrv_co_save_vmstate(c->bs, c->buf, c->offset, c->bytes, c->errp);
        break;
    case CALL_LOAD_VMSTATE:
        c->ret = bdrv_co_load_vmstate(c->bs, c->buf, c->offset, c->bytes, c->errp);
        break;
    case CALL_CHECK:
        c->ret = bdrv_co_check(c->bs, c->res, c->fix, c->progress, c->progress_opaque,
                               c->errp);
        break;
    case CALL_REOPEN:
        c->ret = bdrv_co_reopen(c->bs, c->open_flags, c->errp);
        break;
    case CALL_SET_BACKING:
        c->ret = bdrv_co_set_backing(c->bs, c->new_backing, c->errp);
        break;
    case CALL_COMMIT:
        c->ret = bdrv_co_commit(c->bs, c->base, c->commit_opts, c->errp);
        break;
    }
}

/* Runs c to completion; its int result. */
static int run_call(Call c)
{
    bdrv_run_co(call_entry, &c);
    return c.ret;
}

/* ----- Requests ----- */

int bdrv_preadv(BlockDriverState *bs, int64_t offset, QIOVector *qiov, BdrvRequestFlags flags)
{
    return run_call((Call) { .kind = CALL_READ, .bs = bs, .offset = offset,
                             .bytes = qiov->size, .qiov = qiov, .flags = flags });
}

int bdrv_pwritev(BlockDriverState *bs, int64_t offset, QIOVector *qiov, BdrvRequestFlags flags)
{
    return run_call((Call) { .kind = CALL_WRITE, .bs = bs, .offset = offset,
                             .bytes = qiov->size, .qiov = qiov, .flags = flags });
}

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags)
{
    QIOVector qiov;

    if (bytes < 0) {
        return -EIO;
    }
    qiov_init_buf(&qiov, buf, bytes);
    return run_call((Call) { .kind = CALL_READ, .bs = bs, .offset = offset,
                             .bytes = bytes, .qiov = &qiov, .flags = flags });
}

int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes, const void *buf,
                BdrvRequestFlags flags)
{
    QIOVector qiov;

    if (bytes < 0) {
        return -EIO;
    }
    qiov_init_buf(&qiov, (void *)buf, bytes);
    return run_call((Call) { .kind = CALL_WRITE, .bs = bs, .offset = offset,
                             .bytes = bytes, .qiov = &qiov, .flags = flags });
}

int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags)
{
    return run_call((Call) { .kind = CALL_ZERO, .bs = bs, .offset = offset,
                             .bytes = bytes, .flags = flags });
}

int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return run_call((Call) { .kind = CALL_DISCARD, .bs = bs, .offset = offset,
                             .bytes = bytes });
}

int bdrv_flush(BlockDriverState *bs)
{
    return run_call((Call) { .kind = CALL_FLUSH, .bs = bs });
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

int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file)
{
    return run_call((Call) { .kind = CALL_STATUS, .bs = bs, .offset = offset,
                             .bytes = bytes, .pnum = pnum, .map = map, .file = file });
}

int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes, int64_t *pnum)
{
    return run_call((Call) { .kind = CALL_ALLOCATED, .bs = bs, .offset = offset,
                             .bytes = bytes, .pnum = pnum });
}

int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base, int64_t offset,
                            int64_t bytes, int64_t *pnum)
{
    return run_call((Call) { .kind = CALL_STATUS_ABOVE, .bs = bs, .base = base,
                             .offset = offset, .bytes = bytes, .pnum = pnum });
}

int bdrv_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                  PreallocMode prealloc, GError **errp)
{
    return run_call((Call) { .kind = CALL_TRUNCATE, .bs = bs, .offset = offset,
                             .exact = exact, .prealloc = prealloc, .errp = errp });
}

/* ----- Control path ----- */

BlockDriverState *bdrv_open(const char *filename, QblkOpts *options, int flags,
                            bool *probed_raw, GError **errp)
{
    Call c = { .kind = CALL_OPEN, .name = filename, .opts = options, .open_flags = flags,
               .probed_raw = probed_raw, .errp = errp };

    bdrv_run_co(call_entry, &c);
    return c.opened;
}

void bdrv_unref(BlockDriverState *bs)
{
    bdrv_unref_flush(bs);
}

int bdrv_unref_flush(BlockDriverState *bs)
{
    /* Checked even when no coroutine is needed, so a coroutine that drops
     * references with bdrv_unref fails in every run, not only in the one
     * where its reference happens to be the last. */
    g_assert(!qco_in_coroutine());
    if (!bs) {
        return 0;
    }
    if (bs->refcnt > 1) {
        bs->refcnt--;           /* not the last: no coroutine needed */
        return 0;
    }
    return run_call((Call) { .kind = CALL_UNREF, .bs = bs });
}

int bdrv_create(const char *fmt, const char *filename, QblkOpts *options, GError **errp)
{
    return run_call((Call) { .kind = CALL_CREATE, .name = fmt, .name2 = filename,
                             .opts = options, .errp = errp });
}

int bdrv_make_empty(BlockDriverState *bs)
{
    return run_call((Call) { .kind = CALL_MAKE_EMPTY, .bs = bs });
}

int bdrv_change_backing_file(BlockDriverState *bs, const char *file, const char *fmt,
                             GError **errp)
{
    return run_call((Call) { .kind = CALL_CHANGE_BACKING, .bs = bs, .name = file,
                             .name2 = fmt, .errp = errp });
}

int bdrv_amend(BlockDriverState *bs, QblkOpts *opts, BdrvProgressFunc *progress, void *opaque,
               GError **errp)
{
    return run_call((Call) { .kind = CALL_AMEND, .bs = bs, .opts = opts, .progress = progress,
                             .progress_opaque = opaque, .errp = errp });
}

int bdrv_snapshot_create(BlockDriverState *bs, const char *name, GError **errp)
{
    return run_call((Call) { .kind = CALL_SNAPSHOT_CREATE, .bs = bs, .name = name,
                             .errp = errp });
}

int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name, GError **errp)
{
    return run_call((Call) { .kind = CALL_SNAPSHOT_GOTO, .bs = bs, .name = id_or_name,
                             .errp = errp });
}

int bdrv_snapshot_delete(BlockDriverState *bs, const char *name, GError **errp)
{
    return run_call((Call) { .kind = CALL_SNAPSHOT_DELETE, .bs = bs, .name = name,
                             .errp = errp });
}

int bdrv_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos, int64_t size)
{
    return run_call((Call) { .kind = CALL_SAVE_VMSTATE, .bs = bs, .buf = (void *)buf,
                             .offset = pos, .bytes = size });
}

int bdrv_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos, int64_t size)
{
    return run_call((Call) { .kind = CALL_LOAD_VMSTATE, .bs = bs, .buf = buf,
                             .offset = pos, .bytes = size });
}

int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix)
{
    return bdrv_check_with_progress(bs, res, fix, NULL, NULL);
}

int bdrv_check_with_progress(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                             BdrvProgressFunc *progress, void *opaque)
{
    return run_call((Call) { .kind = CALL_CHECK, .bs = bs, .res = res, .fix = fix,
                             .progress = progress, .progress_opaque = opaque });
}

int bdrv_reopen(BlockDriverState *bs, int flags, GError **errp)
{
    return run_call((Call) { .kind = CALL_REOPEN, .bs = bs, .open_flags = flags,
                             .errp = errp });
}

int bdrv_set_backing(BlockDriverState *bs, BlockDriverState *new_backing, GError **errp)
{
    return run_call((Call) { .kind = CALL_SET_BACKING, .bs = bs, .new_backing = new_backing,
                             .errp = errp });
}

int bdrv_commit(BlockDriverState *top, BlockDriverState *base, const BdrvCommitOptions *opts,
                GError **errp)
{
    return run_call((Call) { .kind = CALL_COMMIT, .bs = top, .base = base,
                             .commit_opts = opts, .errp = errp });
}

/* ----- Asynchronous requests and draining ----- */

/* The request runs in its own coroutine; the callback is deferred to a
 * bottom half so it never runs before bdrv_aio_submit returns. */
static void aio_complete_bh(void *opaque)
{
    Call *c = opaque;

    c->cb(c->cb_opaque, c->ret);
    bdrv_dec_in_flight(c->bs);
    bdrv_unref(c->bs);
    g_free(c);
}

static void coroutine_fn aio_entry(void *opaque)
{
    Call *c = opaque;

    if (c->bs->quiesce_counter > 0) {
        /* Submitted in a drained section: not in flight until it ends,
         * or drained_begin would wait for it forever. */
        bdrv_dec_in_flight(c->bs);
        bdrv_co_wait_unquiesced(c->bs);
        bdrv_inc_in_flight(c->bs);
    }
    call_entry(c);
    qblk_bh_schedule(aio_complete_bh, c);
}

void bdrv_aio_submit(BlockDriverState *bs, BdrvAioType type, int64_t offset,
                     int64_t bytes, QIOVector *qiov, BdrvRequestFlags flags,
                     BdrvCompletionFunc *cb, void *opaque)
{
    /* Per request: only the fields a request kind reads are set (zeroing
     * the whole block showed in qblk-img bench's instruction count). */
    Call *c = g_new(Call, 1);

    c->kind = (CallKind)type;
    c->bs = bs;
    c->offset = offset;
    c->bytes = bytes;
    c->qiov = qiov;
    c->flags = flags;
    c->cb = cb;
    c->cb_opaque = opaque;
    bdrv_ref(bs);
    /* Counted until the callback has run, so drain waits for it too. */
    bdrv_inc_in_flight(bs);
    qco_enter(qco_create(aio_entry, c));
}

void bdrv_drain(BlockDriverState *bs)
{
    g_assert(!qco_in_coroutine());
    while (bdrv_drain_busy(bs)) {
        qblk_loop_iterate(true);
    }
}
