/* block-commit of an intermediate layer as a job: bdrv_co_commit copies
 * what top..base (exclusive) hold into base, with the job's pause points,
 * rate limit and progress between chunks; on success the overlay of top
 * reads base (memory and header) and the committed layers leave the
 * chain. Active commit (top has no overlay) is not supported. */
#include <errno.h>
#include <string.h>

#include "block/jobs/job-internal.h"

typedef struct CommitJob {
    Job common;
    BlockDriverState *overlay, *top, *base;
    char *backing_file;
    bool chain_frozen;
} CommitJob;

/* The node whose backing link points at top, or NULL (top is active). */
static BlockDriverState *commit_find_overlay(BlockDriverState *top)
{
    for (BdrvChild *c = bdrv_next_parent(top, NULL); c; c = bdrv_next_parent(top, c)) {
        BlockDriverState *p = bdrv_child_parent(c);

        if (p && bdrv_backing(p) == top) {
            return p;
        }
    }
    return NULL;
}

static void coroutine_fn commit_progress(void *opaque, int64_t done, int64_t total)
{
    Job *job = opaque;

    job_progress_set_total(job, total);
}

static void coroutine_fn commit_after_chunk(void *opaque, int64_t bytes, bool copied)
{
    Job *job = opaque;

    job_progress_update(job, bytes);
    if (copied) {
        job_ratelimit_account(job, bytes);
    }
    if (job->speed > 0) {
        job_co_ratelimit_sleep(job);
    } else {
        job_co_pause_point(job);
    }
}

/* on-error for one failed chunk, as QEMU's commit: report ends the job,
 * stop pauses it (resume copies the chunk again), ignore goes on and
 * fails the job at the end (as the stream does). */
static int coroutine_fn commit_chunk_error(void *opaque, int ret, bool is_read)
{
    Job *job = opaque;

    switch (job_error_action(job, is_read, -ret)) {
    case BLOCK_ERROR_ACTION_STOP:
        job_co_pause_point(job);
        return job_is_cancelled(job) ? -ECANCELED : 0;
    case BLOCK_ERROR_ACTION_IGNORE:
        return 1;
    default:
        return ret;
    }
}

static int coroutine_fn commit_run(Job *job, GError **errp)
{
    CommitJob *s = (CommitJob *)job;
    BdrvCommitOptions opts = {
        .progress = commit_progress,
        .opaque = job,
        .cancel = &job->cancelled,
        .after_chunk = commit_after_chunk,
        .chunk_error = commit_chunk_error,
    };
    int64_t len = bdrv_getlength(s->top);
    int ret;

    job_progress_set_total(job, len < 0 ? 0 : len);
    job_co_pause_point(job);
    ret = bdrv_co_commit(s->top, s->base, &opts, errp);
    if (ret == -ECANCELED && job_is_cancelled(job)) {
        g_clear_error(errp);
        return 0;
    }
    return ret;
}

static void commit_unfreeze(CommitJob *s)
{
    if (s->chain_frozen) {
        bdrv_unfreeze_backing_chain(s->overlay, s->base);
        s->chain_frozen = false;
    }
}

static int coroutine_fn commit_prepare(Job *job, GError **errp)
{
    CommitJob *s = (CommitJob *)job;
    int ret;

    commit_unfreeze(s);
    ret = bdrv_co_set_backing(s->overlay, s->base, errp);
    if (ret == 0 && s->backing_file && strcmp(s->backing_file, s->base->filename)) {
        ret = bdrv_co_change_backing_file(s->overlay, s->backing_file,
                                          bdrv_format_name(s->base), errp);
    }
    return ret;
}

static void coroutine_fn commit_clean(Job *job)
{
    CommitJob *s = (CommitJob *)job;

    commit_unfreeze(s);
    bdrv_co_unref(s->overlay);
    bdrv_co_unref(s->top);
    bdrv_co_unref(s->base);
    g_free(s->backing_file);
}

static const JobDriver commit_driver = {
    .type = JOB_TYPE_COMMIT,
    .is_block_job = true,
    .instance_size = sizeof(CommitJob),
    .run = commit_run,
    .prepare = commit_prepare,
    .clean = commit_clean,
};

Job *coroutine_fn commit_job_co_start(const CommitJobOptions *opts, GError **errp)
{
    BlockDriverState *top = opts->top, *base = opts->base, *overlay;
    CommitJob *s;

    overlay = commit_find_overlay(top);
    if (!overlay) {
        qblk_error_set(errp, "Active block commit (of '%s', a node without overlay) is "
                       "not supported", bdrv_get_node_name(top));
        return NULL;
    }
    for (BlockDriverState *p = top; p; p = bdrv_backing(p)) {
        if (!bdrv_check_not_in_use_by_job(p, errp)) {
            return NULL;
        }
        if (p == base) {
            break;
        }
    }
    if (!bdrv_freeze_backing_chain(overlay, base, errp)) {
        return NULL;
    }
    s = (CommitJob *)job_create(&commit_driver, &opts->job, errp);
    if (!s) {
        bdrv_unfreeze_backing_chain(overlay, base);
        return NULL;
    }
    s->chain_frozen = true;
    s->overlay = overlay;
    s->top = top;
    s->base = base;
    bdrv_ref(overlay);
    bdrv_ref(top);
    bdrv_ref(base);
    s->backing_file = g_strdup(opts->backing_file);
    for (BlockDriverState *p = top; p; p = bdrv_backing(p)) {
        job_add_node(&s->common, p, NULL);
        if (p == base) {
            break;
        }
    }
    job_start(&s->common);
    return &s->common;
}
