/* What a job driver (stream, commit, create) sees of the job core: the
 * driver table, creation and start, pause points, rate-limit sleeps,
 * progress and error actions. Never included outside block/jobs/. */
#ifndef QBLK_JOB_INTERNAL_H
#define QBLK_JOB_INTERNAL_H

#include "qblk/block_int.h"
#include "qblk/job.h"
#include "util/error.h"
#include "util/ratelimit.h"

/* One kind of job. run is required; the others may be NULL. The core
 * calls them from coroutines, in QEMU's order: run; then on success
 * prepare (may fail) and commit, else abort; then clean in both cases. */
typedef struct JobDriver {
    JobType type;
    bool is_block_job;           /* BLOCK_JOB_* events, query-block-jobs */
    size_t instance_size;        /* >= sizeof(Job); the driver's struct starts with Job */
    int coroutine_fn (*run)(Job *job, GError **errp);
    int coroutine_fn (*prepare)(Job *job, GError **errp);
    void coroutine_fn (*commit)(Job *job);
    void coroutine_fn (*abort)(Job *job);
    void coroutine_fn (*clean)(Job *job);
    /* speed changed (the core already woke a sleeping job). */
    void (*set_speed)(Job *job, int64_t speed);
} JobDriver;

struct Job {
    const JobDriver *driver;
    char *id;
    JobStatus status;
    int refcnt;
    Coroutine *co;               /* the job's coroutine while run() runs */
    bool started;
    bool busy;                   /* false while sleeping or paused */
    bool paused;                 /* stopped at a pause point */
    int pause_count;
    bool user_paused;
    bool cancelled;
    bool force_cancel;
    bool deferred;               /* run() returned: completion is the core's */
    bool finalizing;             /* prepare/commit/abort under way or done */
    bool sleeping;               /* in job_co_sleep_ns, with a timer */
    guint sleep_timer;
    int ret;
    GError *err;
    int64_t progress_current, progress_total;
    int64_t speed;
    RateLimit limit;
    BlockdevOnError on_error;
    JobIoStatus iostatus;
    bool auto_finalize, auto_dismiss;
    GPtrArray *nodes;            /* BlockDriverState * a running job holds */
    GPtrArray *users;            /* BdrvUser * to detach at the end */
    CoQueue concluded_waiters;   /* job_co_cancel_all */
};

/* Creates a job in state CREATED (JOB_STATUS_CHANGE emitted); refusals:
 * "Invalid job ID 'x'", "Job ID 'x' already in use", a negative speed.
 * The driver fills its part and calls job_start. */
Job *job_create(const JobDriver *driver, const JobOptions *opts, GError **errp);
/* RUNNING, then run() starts in a new coroutine. */
void job_start(Job *job);
/* Undoes job_create for a job never started (no events beyond created:
 * QEMU's job_early_fail emits "null"). */
void job_early_fail(Job *job);

/* Records a node the job uses (bdrv_check_not_in_use_by_job) and
 * optionally a user (detached in clean). */
void job_add_node(Job *job, BlockDriverState *bs, BdrvUser *user);

bool job_is_cancelled(Job *job);
/* A pause was asked for: the job should quiesce its I/O and call
 * job_co_pause_point. */
bool job_should_pause(Job *job);
/* Stops here while paused (state PAUSED, back to the previous state on
 * resume). */
void coroutine_fn job_co_pause_point(Job *job);
/* Sleeps ns (woken early by pause, cancel, set-speed), then a pause point. */
void coroutine_fn job_co_sleep_ns(Job *job, int64_t ns);
/* Accounts n copied bytes against the speed limit. */
void job_ratelimit_account(Job *job, uint64_t n);
/* Sleeps as long as the speed limit asks (at least one pause point). */
void coroutine_fn job_co_ratelimit_sleep(Job *job);

void job_progress_update(Job *job, int64_t done);
void job_progress_set_total(Job *job, int64_t total);

/* QEMU's block_job_error_action: BLOCK_JOB_ERROR, and for stop the job
 * is paused as by the user with io-status failed (nospace for ENOSPC).
 * error is a positive errno. */
BlockErrorAction job_error_action(Job *job, bool is_read, int error);

#endif
