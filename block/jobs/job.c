/* The job core: QEMU's job state machine (formats.md 4.7) with its verbs
 * and refusals, pause points, rate-limit sleeps, on-error actions, and
 * the events in QEMU's order. Each job runs in one coroutine on the event
 * loop; its completion (prepare, commit or abort, clean) runs in that
 * coroutine too, or in the caller's (job-finalize, cancel of a pending
 * job), so drivers may use bdrv_co_* there. */
#include <errno.h>
#include <string.h>

#include "block/jobs/job-internal.h"
#include "util/cutils.h"
#include "util/main-loop.h"

#define JOB_SLICE_NS 100000000LL   /* rate-limit slice: 100 ms, as QEMU's */

static GList *jobs;                /* creation order */
static JobEventFunc *event_fn;
static void *event_opaque;

/* ----- Names ----- */

const char *job_status_name(JobStatus s)
{
    static const char *const names[] = {
        "undefined", "created", "running", "paused", "ready", "standby",
        "waiting", "pending", "aborting", "concluded", "null",
    };
    g_assert((unsigned)s < G_N_ELEMENTS(names));
    return names[s];
}

const char *job_verb_name(JobVerb v)
{
    static const char *const names[] = {
        "cancel", "pause", "resume", "set-speed", "complete", "dismiss", "finalize",
    };
    g_assert((unsigned)v < G_N_ELEMENTS(names));
    return names[v];
}

const char *job_type_name(JobType t)
{
    static const char *const names[] = { "commit", "stream", "mirror", "backup", "create" };
    g_assert((unsigned)t < G_N_ELEMENTS(names));
    return names[t];
}

const char *blockdev_on_error_name(BlockdevOnError e)
{
    static const char *const names[] = { "report", "ignore", "enospc", "stop", "auto" };
    g_assert((unsigned)e < G_N_ELEMENTS(names));
    return names[e];
}

const char *block_error_action_name(BlockErrorAction a)
{
    static const char *const names[] = { "ignore", "report", "stop" };
    g_assert((unsigned)a < G_N_ELEMENTS(names));
    return names[a];
}

const char *job_io_status_name(JobIoStatus s)
{
    static const char *const names[] = { "ok", "failed", "nospace" };
    g_assert((unsigned)s < G_N_ELEMENTS(names));
    return names[s];
}

/* ----- Events and transitions ----- */

void job_set_event_handler(JobEventFunc *fn, void *opaque)
{
    event_fn = fn;
    event_opaque = opaque;
}

static void job_emit(Job *job, JobEventKind kind, bool is_read, BlockErrorAction action)
{
    JobEvent ev = { .kind = kind, .job = job, .error_is_read = is_read, .action = action };

    if (event_fn) {
        event_fn(event_opaque, &ev);
    }
}

static void job_emit_block(Job *job, JobEventKind kind)
{
    if (job->driver->is_block_job) {
        job_emit(job, kind, false, 0);
    }
}

/* QEMU 7.2's JobSTT: may a job go from one state to another. */
static bool transition_allowed(JobStatus from, JobStatus to)
{
    switch (from) {
    case JOB_STATUS_UNDEFINED:
        return to == JOB_STATUS_CREATED;
    case JOB_STATUS_CREATED:
        return to == JOB_STATUS_RUNNING || to == JOB_STATUS_ABORTING || to == JOB_STATUS_NULL;
    case JOB_STATUS_RUNNING:
        return to == JOB_STATUS_PAUSED || to == JOB_STATUS_READY ||
               to == JOB_STATUS_WAITING || to == JOB_STATUS_ABORTING;
    case JOB_STATUS_PAUSED:
        return to == JOB_STATUS_RUNNING;
    case JOB_STATUS_READY:
        return to == JOB_STATUS_STANDBY || to == JOB_STATUS_WAITING ||
               to == JOB_STATUS_ABORTING;
    case JOB_STATUS_STANDBY:
        return to == JOB_STATUS_READY;
    case JOB_STATUS_WAITING:
        return to == JOB_STATUS_PENDING || to == JOB_STATUS_ABORTING;
    case JOB_STATUS_PENDING:
        return to == JOB_STATUS_ABORTING || to == JOB_STATUS_CONCLUDED;
    case JOB_STATUS_ABORTING:
        return to == JOB_STATUS_ABORTING || to == JOB_STATUS_CONCLUDED;
    case JOB_STATUS_CONCLUDED:
        return to == JOB_STATUS_NULL;
    default:
        return false;
    }
}

/* JOB_STATUS_CHANGE for every change of state (none for aborting ->
 * aborting, as QEMU). */
static void job_transition(Job *job, JobStatus to)
{
    JobStatus from = job->status;

    g_assert(transition_allowed(from, to));
    job->status = to;
    if (from != to) {
        job_emit(job, JOB_EVENT_STATUS_CHANGE, false, 0);
    }
}

/* QEMU 7.2's JobVerbTable. */
static bool verb_allowed(JobVerb verb, JobStatus s)
{
    switch (verb) {
    case JOB_VERB_CANCEL:
        return s == JOB_STATUS_CREATED || s == JOB_STATUS_RUNNING || s == JOB_STATUS_PAUSED ||
               s == JOB_STATUS_READY || s == JOB_STATUS_STANDBY || s == JOB_STATUS_WAITING ||
               s == JOB_STATUS_PENDING;
    case JOB_VERB_PAUSE:
    case JOB_VERB_RESUME:
    case JOB_VERB_SET_SPEED:
        return s == JOB_STATUS_CREATED || s == JOB_STATUS_RUNNING || s == JOB_STATUS_PAUSED ||
               s == JOB_STATUS_READY || s == JOB_STATUS_STANDBY;
    case JOB_VERB_COMPLETE:
        return s == JOB_STATUS_READY || s == JOB_STATUS_STANDBY;
    case JOB_VERB_FINALIZE:
        return s == JOB_STATUS_PENDING;
    case JOB_VERB_DISMISS:
        return s == JOB_STATUS_CONCLUDED;
    default:
        return false;
    }
}

static bool job_apply_verb(Job *job, JobVerb verb, GError **errp)
{
    if (verb_allowed(verb, job->status)) {
        return true;
    }
    qblk_error_set(errp, "Job '%s' in state '%s' cannot accept command verb '%s'",
                   job->id, job_status_name(job->status), job_verb_name(verb));
    return false;
}

/* ----- Lifetime ----- */

static void job_ref(Job *job)
{
    job->refcnt++;
}

static void job_unref(Job *job)
{
    if (--job->refcnt > 0) {
        return;
    }
    g_assert(job->status == JOB_STATUS_NULL);
    g_free(job->id);
    if (job->err) {
        g_error_free(job->err);
    }
    g_ptr_array_free(job->nodes, true);
    g_ptr_array_free(job->users, true);
    g_free(job);
}

Job *job_find(const char *id)
{
    for (GList *l = jobs; l; l = l->next) {
        Job *job = l->data;

        if (!strcmp(job->id, id)) {
            return job;
        }
    }
    return NULL;
}

Job *job_next(Job *prev)
{
    GList *l = prev ? g_list_find(jobs, prev) : jobs;

    if (prev && l) {
        l = l->next;
    }
    return l ? l->data : NULL;
}

Job *job_create(const JobDriver *driver, const JobOptions *opts, GError **errp)
{
    Job *job;

    g_assert(driver->instance_size >= sizeof(Job));
    if (!opts->id) {
        qblk_error_set(errp, "An explicit job ID is required");
        return NULL;
    }
    if (!qblk_id_wellformed(opts->id)) {
        qblk_error_set(errp, "Invalid job ID '%s'", opts->id);
        return NULL;
    }
    if (job_find(opts->id)) {
        qblk_error_set(errp, "Job ID '%s' already in use", opts->id);
        return NULL;
    }
    job = g_malloc0(driver->instance_size);
    job->driver = driver;
    job->id = g_strdup(opts->id);
    job->refcnt = 1;                /* the job list's */
    job->on_error = opts->on_error;
    job->auto_finalize = opts->auto_finalize;
    job->auto_dismiss = opts->auto_dismiss;
    job->nodes = g_ptr_array_new();
    job->users = g_ptr_array_new();
    qco_queue_init(&job->concluded_waiters);
    ratelimit_set_speed(&job->limit, 0, JOB_SLICE_NS);
    jobs = g_list_append(jobs, job);
    job_transition(job, JOB_STATUS_CREATED);
    /* As QEMU's block_job_create: the speed is set after creation, so a
     * bad one shows created -> null. */
    if (opts->speed < 0) {
        qblk_error_set(errp, "Parameter 'speed' expects a non-negative value");
        job_early_fail(job);
        return NULL;
    }
    job->speed = opts->speed;
    ratelimit_set_speed(&job->limit, opts->speed, JOB_SLICE_NS);
    return job;
}

static void job_release_nodes(Job *job)
{
    for (guint i = 0; i < job->users->len; i++) {
        bdrv_detach_user(job->users->pdata[i]);
    }
    g_ptr_array_set_size(job->users, 0);
    g_ptr_array_set_size(job->nodes, 0);
}

static void job_do_dismiss(Job *job)
{
    jobs = g_list_remove(jobs, job);
    job->busy = false;
    job->deferred = true;
    job_release_nodes(job);
    job_transition(job, JOB_STATUS_NULL);
    job_unref(job);
}

void job_early_fail(Job *job)
{
    g_assert(job->status == JOB_STATUS_CREATED && !job->started);
    job_do_dismiss(job);
}

void job_add_node(Job *job, BlockDriverState *bs, BdrvUser *user)
{
    g_ptr_array_add(job->nodes, bs);
    if (user) {
        g_ptr_array_add(job->users, user);
    }
}

bool bdrv_check_not_in_use_by_job(BlockDriverState *bs, GError **errp)
{
    for (GList *l = jobs; l; l = l->next) {
        Job *job = l->data;

        for (guint i = 0; i < job->nodes->len; i++) {
            if (job->nodes->pdata[i] == bs) {
                qblk_error_set(errp, "Node '%s' is busy: block device is in use by block "
                               "job: %s", bdrv_get_node_name(bs),
                               job_type_name(job->driver->type));
                return false;
            }
        }
    }
    return true;
}

/* ----- Running: enter, yield, pause points, sleeps ----- */

bool job_is_cancelled(Job *job)
{
    return job->cancelled;
}

bool job_should_pause(Job *job)
{
    return job->pause_count > 0;
}

static void job_enter(Job *job)
{
    if (!job->started || job->deferred || job->busy || !job->co) {
        return;
    }
    if (job->sleep_timer) {
        g_source_remove(job->sleep_timer);
        job->sleep_timer = 0;
    }
    job->busy = true;
    qco_wake(job->co);
}

static void job_sleep_timer_cb(void *opaque)
{
    Job *job = opaque;

    job->sleep_timer = 0;
    job_enter(job);
}

/* Yields until job_enter (or the timer, ns >= 0). */
static void coroutine_fn job_do_yield(Job *job, int64_t ns)
{
    g_assert(job->busy && qco_self() == job->co);
    if (ns >= 0) {
        job->sleep_timer = qblk_timer_add_ns(ns, job_sleep_timer_cb, job);
    }
    job->busy = false;
    qco_yield();
    g_assert(job->busy);
}

void coroutine_fn job_co_pause_point(Job *job)
{
    JobStatus status;

    if (!job_should_pause(job) || job_is_cancelled(job)) {
        return;
    }
    status = job->status;
    job_transition(job, status == JOB_STATUS_READY ? JOB_STATUS_STANDBY : JOB_STATUS_PAUSED);
    job->paused = true;
    while (job_should_pause(job) && !job_is_cancelled(job)) {
        job_do_yield(job, -1);
    }
    job->paused = false;
    job_transition(job, status);
}

void coroutine_fn job_co_sleep_ns(Job *job, int64_t ns)
{
    if (job_is_cancelled(job)) {
        return;
    }
    if (!job_should_pause(job)) {
        job->sleeping = true;
        job_do_yield(job, ns);
        job->sleeping = false;
    }
    job_co_pause_point(job);
}

void job_ratelimit_account(Job *job, uint64_t n)
{
    ratelimit_calculate_delay(&job->limit, n, qblk_clock_ns());
}

void coroutine_fn job_co_ratelimit_sleep(Job *job)
{
    int64_t delay;

    /* At least one pause point; an early wake-up (set-speed) recomputes
     * the delay with the new speed. */
    do {
        delay = ratelimit_calculate_delay(&job->limit, 0, qblk_clock_ns());
        job_co_sleep_ns(job, delay);
    } while (delay && !job_is_cancelled(job));
}

void job_progress_update(Job *job, int64_t done)
{
    job->progress_current += done;
}

void job_progress_set_total(Job *job, int64_t total)
{
    job->progress_total = total;
}

BlockErrorAction job_error_action(Job *job, bool is_read, int error)
{
    BlockErrorAction action;

    switch (job->on_error) {
    case BLOCKDEV_ON_ERROR_ENOSPC:
    case BLOCKDEV_ON_ERROR_AUTO:
        action = error == ENOSPC ? BLOCK_ERROR_ACTION_STOP : BLOCK_ERROR_ACTION_REPORT;
        break;
    case BLOCKDEV_ON_ERROR_STOP:
        action = BLOCK_ERROR_ACTION_STOP;
        break;
    case BLOCKDEV_ON_ERROR_IGNORE:
        action = BLOCK_ERROR_ACTION_IGNORE;
        break;
    case BLOCKDEV_ON_ERROR_REPORT:
    default:
        action = BLOCK_ERROR_ACTION_REPORT;
        break;
    }
    job_emit(job, JOB_EVENT_ERROR, is_read, action);
    if (action == BLOCK_ERROR_ACTION_STOP) {
        if (!job->user_paused) {
            job->pause_count++;
            job->user_paused = true;   /* resumed from QMP */
        }
        if (job->iostatus == JOB_IO_STATUS_OK) {
            job->iostatus = error == ENOSPC ? JOB_IO_STATUS_NOSPACE : JOB_IO_STATUS_FAILED;
        }
    }
    return action;
}

/* ----- Completion (QEMU's job_completed, single-job transaction) ----- */

/* A failure or a cancel becomes ret and err; the job goes aborting. */
static void job_update_rc(Job *job)
{
    if (!job->ret && job_is_cancelled(job)) {
        job->ret = -ECANCELED;
    }
    if (job->ret) {
        if (!job->err) {
            g_set_error_literal(&job->err, QBLK_ERROR, QBLK_ERROR_FAILED,
                                g_strerror(-job->ret));
        }
        job_transition(job, JOB_STATUS_ABORTING);
    }
}

static void job_conclude(Job *job)
{
    job_transition(job, JOB_STATUS_CONCLUDED);
    qco_queue_restart_all(&job->concluded_waiters);
    if (job->auto_dismiss || !job->started) {
        job_do_dismiss(job);
    }
}

static void coroutine_fn job_co_finalize_single(Job *job)
{
    job_update_rc(job);
    if (!job->ret) {
        if (job->driver->commit) {
            job->driver->commit(job);
        }
    } else if (job->driver->abort) {
        job->driver->abort(job);
    }
    if (job->driver->clean) {
        job->driver->clean(job);
    }
    job_release_nodes(job);
    if (job->started) {
        job_emit_block(job, job_is_cancelled(job) ? JOB_EVENT_CANCELLED
                                                  : JOB_EVENT_COMPLETED);
    }
    job_conclude(job);
}

static void coroutine_fn job_co_do_finalize(Job *job)
{
    job->finalizing = true;
    if (!job->ret && job->driver->prepare) {
        GError *err = NULL;

        job->ret = job->driver->prepare(job, &err);
        if (job->ret < 0 && err && !job->err) {
            job->err = err;
        } else if (err) {
            g_error_free(err);
        }
    }
    job_co_finalize_single(job);
}

static void coroutine_fn job_co_completed(Job *job)
{
    job_update_rc(job);
    if (job->ret) {
        job->finalizing = true;
        job_co_finalize_single(job);
        return;
    }
    job_transition(job, JOB_STATUS_WAITING);
    job_transition(job, JOB_STATUS_PENDING);
    if (!job->auto_finalize) {
        job_emit_block(job, JOB_EVENT_PENDING);
        return;
    }
    job_co_do_finalize(job);
}

static void coroutine_fn job_co_entry(void *opaque)
{
    Job *job = opaque;
    GError *err = NULL;

    job->ret = job->driver->run(job, &err);
    if (job->ret < 0 && err && !job->err) {
        job->err = err;
    } else if (err) {
        g_error_free(err);
    }
    job->co = NULL;
    job->deferred = true;
    job->busy = false;
    job_co_completed(job);
    job_unref(job);               /* the coroutine's */
}

void job_start(Job *job)
{
    g_assert(job->status == JOB_STATUS_CREATED && !job->started);
    job->started = true;
    job->busy = true;
    job_ref(job);                 /* for the coroutine */
    job->co = qco_create(job_co_entry, job);
    job_transition(job, JOB_STATUS_RUNNING);
    /* Runs until its first wait, as QEMU's job_start: a verb right after
     * the start finds the first chunk under way. */
    qco_enter(job->co);
}

/* ----- Verbs ----- */

bool job_user_pause(Job *job, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_PAUSE, errp)) {
        return false;
    }
    if (job->user_paused) {
        qblk_error_set(errp, "Job is already paused");
        return false;
    }
    job->user_paused = true;
    job->pause_count++;
    if (!job->paused) {
        job_enter(job);       /* a sleeping job reaches its pause point now */
    }
    return true;
}

bool job_user_resume(Job *job, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_RESUME, errp)) {
        return false;
    }
    if (!job->user_paused) {
        qblk_error_set(errp, "Can't resume a job that was not paused");
        return false;
    }
    job->iostatus = JOB_IO_STATUS_OK;
    job->user_paused = false;
    g_assert(job->pause_count > 0);
    if (--job->pause_count == 0) {
        job_enter(job);
    }
    return true;
}

bool job_user_cancel(Job *job, bool force, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_CANCEL, errp)) {
        return false;
    }
    if (job->finalizing) {
        return true;              /* its completion is already under way */
    }
    if (job->user_paused) {
        job->user_paused = false;
        g_assert(job->pause_count > 0);
        job->pause_count--;
    }
    job->cancelled = true;
    job->force_cancel |= force;
    if (!job->started || job->deferred) {
        /* Never started, or waiting for job-finalize: abort here and now. */
        job_ref(job);
        job->finalizing = true;
        job_co_finalize_single(job);
        job_unref(job);
    } else {
        job_enter(job);
    }
    return true;
}

bool job_set_speed(Job *job, int64_t speed, GError **errp)
{
    int64_t old = job->speed;

    if (!job_apply_verb(job, JOB_VERB_SET_SPEED, errp)) {
        return false;
    }
    if (speed < 0) {
        qblk_error_set(errp, "Parameter 'speed' expects a non-negative value");
        return false;
    }
    ratelimit_set_speed(&job->limit, speed, JOB_SLICE_NS);
    job->speed = speed;
    if (job->driver->set_speed) {
        job->driver->set_speed(job, speed);
    }
    if (speed && speed <= old) {
        return true;
    }
    if (job->sleeping) {
        job_enter(job);           /* recompute the delay with the new speed */
    }
    return true;
}

bool job_complete(Job *job, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_COMPLETE, errp)) {
        return false;
    }
    qblk_error_set(errp, "The active block job '%s' cannot be completed", job->id);
    return false;
}

bool job_finalize(Job *job, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_FINALIZE, errp)) {
        return false;
    }
    if (job->finalizing) {
        return true;
    }
    job_ref(job);
    job_co_do_finalize(job);
    job_unref(job);
    return true;
}

bool job_dismiss(Job *job, GError **errp)
{
    if (!job_apply_verb(job, JOB_VERB_DISMISS, errp)) {
        return false;
    }
    job_do_dismiss(job);
    return true;
}

void job_query(Job *job, JobInfo *info)
{
    *info = (JobInfo) {
        .id = job->id,
        .type = job->driver->type,
        .status = job->status,
        .is_block_job = job->driver->is_block_job,
        .current_progress = job->progress_current,
        .total_progress = job->progress_total,
        .speed = job->speed,
        .busy = job->busy,
        .paused = job->pause_count > 0,
        .ready = job->status == JOB_STATUS_READY || job->status == JOB_STATUS_STANDBY,
        .auto_finalize = job->auto_finalize,
        .auto_dismiss = job->auto_dismiss,
        .io_status = job->iostatus,
        .error = job->ret && job->err ? job->err->message : NULL,
    };
}

/* As qemu-storage-daemon's shutdown (qemu_cleanup): draining pauses every
 * running job first, then jobs are cancelled newest first (a concluded
 * one dismissed), each waited for; a cancelled job leaves its pause. */
void coroutine_fn job_co_cancel_all(void)
{
    bool waiting;

    for (GList *l = jobs; l; l = l->next) {
        Job *job = l->data;

        if (job->started && !job->deferred) {
            job->pause_count++;
            if (!job->paused) {
                job_enter(job);
            }
        }
    }
    do {
        waiting = false;
        for (GList *l = jobs; l; l = l->next) {
            Job *job = l->data;

            waiting |= job->started && !job->deferred && !job->paused;
        }
        if (waiting) {
            qco_sleep_ns(1000000);
        }
    } while (waiting);

    while (jobs) {
        Job *job = g_list_last(jobs)->data;

        job_ref(job);
        if (job->status != JOB_STATUS_CONCLUDED && !job->finalizing) {
            job_user_cancel(job, true, NULL);
        }
        while (job->status != JOB_STATUS_CONCLUDED && job->status != JOB_STATUS_NULL) {
            qco_queue_wait(&job->concluded_waiters, NULL);
        }
        if (job->status == JOB_STATUS_CONCLUDED) {
            job_do_dismiss(job);
        }
        job_unref(job);
    }
}
