/* block-stream: copies into the top image every range it lacks from its
 * backing chain above base, through the copy-on-read read path (zero
 * clusters stored as zero writes, client writes serialised against each
 * copy), several chunks in flight, then points top at base (or nothing).
 *
 * The walk asks block status, never reads what it can skip:
 *   allocated in top            -> skipped (progress only)
 *   unallocated down to base    -> skipped (base keeps providing it)
 *   reads as zeroes, no base    -> skipped (zeroes once the link is cut)
 *   anything else               -> a copy-on-read read of the chunk
 * A speed limit copies one 512 KiB chunk at a time, as QEMU does, so a
 * limited job progresses in QEMU's steps; unlimited, up to
 * STREAM_WORKERS chunks of STREAM_CHUNK bytes are in flight (1 GiB
 * reference base on a loaded 2-core machine: 2-8 workers of 1-8 MiB were
 * within the noise of each other, about 0.5 s into QED or qcow2 v3 against
 * qemu-storage-daemon 7.2's 5-6 s; 2 MiB x 4 keeps the buffers small). */
#include <errno.h>
#include <string.h>

#include "block/jobs/job-internal.h"

#define STREAM_CHUNK (2 * 1024 * 1024)
#define STREAM_LIMITED_CHUNK (512 * 1024)
#define STREAM_WORKERS 4

typedef struct StreamRange {
    int64_t offset, bytes;
    int ret;
} StreamRange;

typedef struct StreamJob {
    Job common;
    BlockDriverState *top, *base;
    BlockDriverState *filter;      /* the copy-on-read node above top */
    bool reopened;                 /* top was read-only: read-only again at the end */
    char *backing_file;
    bool chain_frozen;
    bool cor_enabled;
    int in_flight;
    CoQueue worker_done;
    GPtrArray *free_bufs;          /* STREAM_CHUNK bytes each */
    GArray *failed;                /* StreamRange a worker could not copy */
    GArray *retry;                 /* StreamRange to copy again (on-error=stop) */
} StreamJob;

typedef struct StreamWorker {
    StreamJob *s;
    StreamRange r;
} StreamWorker;

/* Copies one range through copy-on-read: the read path stores what top
 * lacks, zero clusters as zero writes, under serialisation against
 * overlapping client requests (block/cor.c, block/req-track.c). */
static int coroutine_fn stream_co_copy(StreamJob *s, int64_t offset, int64_t bytes)
{
    uint8_t *buf;
    int ret;

    buf = s->free_bufs->len ? g_ptr_array_steal_index_fast(s->free_bufs,
                                                           s->free_bufs->len - 1)
                            : g_malloc(STREAM_CHUNK);
    ret = bdrv_co_pread(s->top, offset, bytes, buf, BDRV_REQ_COPY_ON_READ);
    g_ptr_array_add(s->free_bufs, buf);
    return ret;
}

static void coroutine_fn stream_worker_entry(void *opaque)
{
    StreamWorker *w = opaque;
    StreamJob *s = w->s;
    int ret = stream_co_copy(s, w->r.offset, w->r.bytes);

    if (ret < 0) {
        w->r.ret = ret;
        g_array_append_val(s->failed, w->r);
    } else {
        job_progress_update(&s->common, w->r.bytes);
    }
    g_free(w);
    s->in_flight--;
    qco_queue_next(&s->worker_done);
}

static void coroutine_fn stream_co_wait_workers(StreamJob *s, int max_in_flight)
{
    while (s->in_flight > max_in_flight) {
        qco_queue_wait(&s->worker_done, NULL);
    }
}

/* Starts a copy of r in a worker, waiting for a free slot first. */
static void coroutine_fn stream_co_dispatch(StreamJob *s, StreamRange r)
{
    StreamWorker *w = g_new0(StreamWorker, 1);

    stream_co_wait_workers(s, STREAM_WORKERS - 1);
    w->s = s;
    w->r = r;
    s->in_flight++;
    qco_enter(qco_create(stream_worker_entry, w));
}

/* The next range from offset: *copy set when it must be copied, else it
 * is skipped. bytes bounds a copied range. */
static int coroutine_fn stream_co_next_range(StreamJob *s, int64_t offset, int64_t len,
                                             int64_t chunk, int64_t *n, bool *copy)
{
    int64_t pnum;
    int ret;

    *copy = false;
    ret = bdrv_co_is_allocated(s->top, offset, len - offset, &pnum);
    if (ret < 0) {
        return ret;
    }
    *n = MAX(pnum, 1);
    if (ret) {
        return 0;
    }
    ret = bdrv_co_block_status_above(s->top->backing, s->base, offset, *n, &pnum);
    if (ret < 0) {
        return ret;
    }
    *n = MAX(MIN(pnum, *n), 1);
    if (ret == 0 || (!s->base && (ret & BDRV_BLOCK_ZERO))) {
        return 0;
    }
    /* Data, or (with a base) zeroes that must show in top once top reads
     * base below: the copy path stores all-zero clusters as zero writes. */
    *copy = true;
    *n = MIN(*n, chunk);
    return 0;
}

/* The action for the first failed copy (QEMU: one BLOCK_JOB_ERROR per
 * failure met). Returns the error that ends the job, 0 to go on; *error
 * keeps the first ignored error, which fails the job at the end. */
static int stream_handle_failures(StreamJob *s, int *error)
{
    while (s->failed->len) {
        StreamRange r = g_array_index(s->failed, StreamRange, 0);
        BlockErrorAction action;

        g_array_remove_index(s->failed, 0);
        action = job_error_action(&s->common, true, -r.ret);
        if (action == BLOCK_ERROR_ACTION_STOP) {
            /* Retry this and every other failed range after the resume. */
            g_array_append_val(s->retry, r);
            g_array_append_vals(s->retry, s->failed->data, s->failed->len);
            g_array_set_size(s->failed, 0);
            return 0;
        }
        if (!*error) {
            *error = r.ret;
        }
        if (action == BLOCK_ERROR_ACTION_REPORT) {
            return r.ret;
        }
        job_progress_update(&s->common, r.bytes);   /* ignored: counted as done */
    }
    return 0;
}

/* Before the job idles (a rate-limit sleep, a pause), what it copied is
 * made durable and referenced: formats batch the table updates of copied
 * clusters until a flush, and a daemon killed while the job idles must
 * not leave those clusters leaked. A failure here is the next flush's to
 * report. */
static void coroutine_fn stream_co_settle(StreamJob *s)
{
    bdrv_co_flush(s->top);
}

static int coroutine_fn stream_run(Job *job, GError **errp)
{
    StreamJob *s = (StreamJob *)job;
    int64_t len, offset = 0;
    int error = 0, ret = 0;

    if (s->top->backing == s->base) {
        return 0;                      /* nothing to stream: len 0, offset 0 */
    }
    len = bdrv_getlength(s->top);
    if (len < 0) {
        return (int)len;
    }
    job_progress_set_total(job, len);

    for (;;) {
        bool limited = job->speed > 0;
        int64_t chunk = limited ? STREAM_LIMITED_CHUNK : STREAM_CHUNK;
        StreamRange r;
        bool copy;
        int64_t n;

        if (s->failed->len) {
            stream_co_wait_workers(s, 0);
            ret = stream_handle_failures(s, &error);
            if (ret < 0) {
                break;
            }
        }
        if (job_should_pause(job) || job_is_cancelled(job)) {
            stream_co_wait_workers(s, 0);
            if (s->failed->len) {
                continue;
            }
            if (job_should_pause(job)) {
                stream_co_settle(s);
            }
        }
        if (job_is_cancelled(job)) {
            break;
        }
        job_co_pause_point(job);
        if (job_is_cancelled(job)) {
            continue;
        }

        if (s->retry->len) {
            r = g_array_index(s->retry, StreamRange, 0);
            g_array_remove_index(s->retry, 0);
        } else if (offset < len) {
            ret = stream_co_next_range(s, offset, len, chunk, &n, &copy);
            if (ret < 0) {
                /* A block status failure: the same actions as a copy's. */
                r = (StreamRange) { offset, MIN(chunk, len - offset), ret };
                g_array_append_val(s->failed, r);
                offset += r.bytes;
                ret = 0;
                continue;
            }
            offset += n;
            if (!copy) {
                job_progress_update(job, n);
                continue;
            }
            r = (StreamRange) { offset - n, n, 0 };
        } else {
            stream_co_wait_workers(s, 0);
            if (s->failed->len || s->retry->len) {
                continue;
            }
            break;
        }

        if (limited) {
            /* One chunk at a time, then the sleep the speed asks for. */
            stream_co_wait_workers(s, 0);
            ret = stream_co_copy(s, r.offset, r.bytes);
            if (ret < 0) {
                r.ret = ret;
                g_array_append_val(s->failed, r);
                ret = 0;
                continue;
            }
            job_progress_update(job, r.bytes);
            job_ratelimit_account(job, r.bytes);
            stream_co_settle(s);
            job_co_ratelimit_sleep(job);
        } else {
            stream_co_dispatch(s, r);
        }
    }
    stream_co_wait_workers(s, 0);
    if (ret < 0) {
        return ret;
    }
    if (job_is_cancelled(job)) {
        return 0;
    }
    /* Stable before the header stops pointing at the data's old home. */
    ret = bdrv_co_flush(s->top);
    if (ret < 0) {
        return ret;
    }
    return error;
}

static void stream_unfreeze(StreamJob *s)
{
    if (s->chain_frozen) {
        bdrv_unfreeze_backing_chain(s->top, s->base);
        s->chain_frozen = false;
    }
}

static void coroutine_fn stream_co_remove_filter(StreamJob *s);

/* On success: top reads base (or nothing) from now on, in memory and in
 * its header (backing-file if given, else base's filename; base's
 * format). */
static int coroutine_fn stream_prepare(Job *job, GError **errp)
{
    StreamJob *s = (StreamJob *)job;
    int ret;

    if (s->top->backing == s->base) {
        return 0;
    }
    /* The filter goes first, as QEMU's: its bottom leaves the chain next. */
    stream_co_remove_filter(s);
    stream_unfreeze(s);
    ret = bdrv_co_set_backing(s->top, s->base, errp);
    if (ret < 0) {
        return ret;
    }
    if (s->base && s->backing_file && strcmp(s->backing_file, s->base->filename)) {
        ret = bdrv_co_change_backing_file(s->top, s->backing_file,
                                          bdrv_format_name(s->base), errp);
    }
    return ret;
}

/* A copy-on-read filter takes top's place for every holder of top (an
 * export, an overlay), so their reads populate top too, as QEMU's stream
 * inserts one: named filter_node_name, else implicit ("#block..."). With
 * a base, only data above it is copied (bottom: the last node above). */
static BlockDriverState *coroutine_fn stream_co_insert_filter(BlockDriverState *top,
                                                              BlockDriverState *base,
                                                              const char *name, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();
    BlockDriverState *filter, *bottom = NULL;

    qblk_opts_set(opts, "driver", "copy-on-read");
    qblk_opts_set(opts, "file", bdrv_get_node_name(top));
    if (name) {
        qblk_opts_set(opts, "node-name", name);
    }
    for (BlockDriverState *p = bdrv_backing(top); base && p && p != base; p = bdrv_backing(p)) {
        bottom = p;
    }
    if (bottom) {
        qblk_opts_set(opts, "bottom", bdrv_get_node_name(bottom));
    }
    filter = bdrv_co_open(NULL, opts, bdrv_is_read_only(top) ? 0 : BDRV_O_RDWR, NULL, errp);
    if (!filter) {
        return NULL;
    }
    if (!bdrv_co_replace_node(top, filter, errp)) {
        bdrv_co_unref(filter);
        return NULL;
    }
    return filter;
}

static void coroutine_fn stream_co_remove_filter(StreamJob *s)
{
    if (s->filter) {
        /* Giving the links back cannot conflict: they came from top. */
        bdrv_co_replace_node(s->filter, s->top, NULL);
        bdrv_co_unref(s->filter);
        s->filter = NULL;
    }
}

static void coroutine_fn stream_clean(Job *job)
{
    StreamJob *s = (StreamJob *)job;

    stream_co_remove_filter(s);
    stream_unfreeze(s);
    if (s->reopened) {
        bdrv_co_reopen(s->top, bdrv_get_open_flags(s->top) & ~BDRV_O_RDWR, NULL);
        s->reopened = false;
    }
    if (s->cor_enabled) {
        bdrv_disable_copy_on_read(s->top);
        s->cor_enabled = false;
    }
    bdrv_co_unref(s->top);
    if (s->base) {
        bdrv_co_unref(s->base);
    }
    g_free(s->backing_file);
    g_ptr_array_free(s->free_bufs, true);
    g_array_free(s->failed, true);
    g_array_free(s->retry, true);
}

static const JobDriver stream_driver = {
    .type = JOB_TYPE_STREAM,
    .is_block_job = true,
    .instance_size = sizeof(StreamJob),
    .run = stream_run,
    .prepare = stream_prepare,
    .clean = stream_clean,
};

Job *coroutine_fn stream_job_co_start(const StreamJobOptions *opts, GError **errp)
{
    BlockDriverState *top = opts->top, *base = opts->base, *filter;
    g_autofree char *user_name = NULL;
    bool reopened = false;
    StreamJob *s;
    BdrvUser *user;

    if (!bdrv_check_not_in_use_by_job(top, errp)) {
        return NULL;
    }
    for (BlockDriverState *p = top->backing; p && p != base; p = p->backing) {
        if (!bdrv_check_not_in_use_by_job(p, errp)) {
            return NULL;
        }
    }
    if (!bdrv_freeze_backing_chain(top, base, errp)) {
        return NULL;
    }
    /* As QEMU: a read-only top is made writable for the job's duration. */
    if (bdrv_backing(top) != base && bdrv_is_read_only(top)) {
        if (bdrv_co_reopen(top, bdrv_get_open_flags(top) | BDRV_O_RDWR, errp) < 0) {
            bdrv_unfreeze_backing_chain(top, base);
            return NULL;
        }
        reopened = true;
    }
    filter = NULL;
    if (bdrv_backing(top) != base) {
        filter = stream_co_insert_filter(top, base, opts->filter_node_name, errp);
        if (!filter) {
            if (reopened) {
                bdrv_co_reopen(top, bdrv_get_open_flags(top) & ~BDRV_O_RDWR, NULL);
            }
            bdrv_unfreeze_backing_chain(top, base);
            return NULL;
        }
    }
    s = (StreamJob *)job_create(&stream_driver, &opts->job, errp);
    if (!s) {
        if (filter) {
            bdrv_co_replace_node(filter, top, NULL);
            bdrv_co_unref(filter);
        }
        if (reopened) {
            bdrv_co_reopen(top, bdrv_get_open_flags(top) & ~BDRV_O_RDWR, NULL);
        }
        bdrv_unfreeze_backing_chain(top, base);
        return NULL;
    }
    s->filter = filter;
    s->reopened = reopened;
    s->chain_frozen = true;
    s->top = top;
    s->base = base;
    bdrv_ref(top);
    if (base) {
        bdrv_ref(base);
    }
    s->backing_file = g_strdup(opts->backing_file);
    s->free_bufs = g_ptr_array_new_with_free_func(g_free);
    s->failed = g_array_new(false, false, sizeof(StreamRange));
    s->retry = g_array_new(false, false, sizeof(StreamRange));
    qco_queue_init(&s->worker_done);

    /* Top is written with what reads already return; others may read,
     * write and change the graph (the job's own backing change at the end
     * needs that), not resize it under the walk. */
    user_name = g_strdup_printf("block job '%s'", opts->job.id);
    user = bdrv_attach_user(top, user_name,
                            BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED,
                            BLK_PERM_ALL & ~(uint64_t)BLK_PERM_RESIZE, errp);
    if (!user) {
        s->common.ret = -EPERM;
        stream_clean(&s->common);
        job_early_fail(&s->common);
        return NULL;
    }
    job_add_node(&s->common, top, user);
    if (s->filter) {
        job_add_node(&s->common, s->filter, NULL);
    }
    for (BlockDriverState *p = top->backing; p && p != base; p = p->backing) {
        job_add_node(&s->common, p, NULL);
    }
    /* Client reads of top copy up too while the job runs. */
    bdrv_enable_copy_on_read(top);
    s->cor_enabled = true;
    job_start(&s->common);
    return &s->common;
}
