/* Jobs: QEMU's job state machine with its verbs, refusals and events,
 * driving one coroutine per job (stream, commit, create). Library side:
 * the daemon's QMP layer turns the events into QMP events and the verbs
 * into commands; nothing here prints or knows JSON. */
#ifndef QBLK_JOB_H
#define QBLK_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "qblk/block.h"

/* QEMU's JobStatus, in its order (names: job_status_name). */
typedef enum {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX,
} JobStatus;

typedef enum {
    JOB_VERB_CANCEL,
    JOB_VERB_PAUSE,
    JOB_VERB_RESUME,
    JOB_VERB_SET_SPEED,
    JOB_VERB_COMPLETE,
    JOB_VERB_DISMISS,
    JOB_VERB_FINALIZE,
    JOB_VERB__MAX,
} JobVerb;

typedef enum {
    JOB_TYPE_COMMIT,
    JOB_TYPE_STREAM,
    JOB_TYPE_MIRROR,
    JOB_TYPE_BACKUP,
    JOB_TYPE_CREATE,
    JOB_TYPE__MAX,
} JobType;

/* BlockdevOnError, in QEMU's order. */
typedef enum {
    BLOCKDEV_ON_ERROR_REPORT,
    BLOCKDEV_ON_ERROR_IGNORE,
    BLOCKDEV_ON_ERROR_ENOSPC,
    BLOCKDEV_ON_ERROR_STOP,
    BLOCKDEV_ON_ERROR_AUTO,
    BLOCKDEV_ON_ERROR__MAX,
} BlockdevOnError;

typedef enum {
    BLOCK_ERROR_ACTION_IGNORE,
    BLOCK_ERROR_ACTION_REPORT,
    BLOCK_ERROR_ACTION_STOP,
} BlockErrorAction;

typedef enum {
    JOB_IO_STATUS_OK,
    JOB_IO_STATUS_FAILED,
    JOB_IO_STATUS_NOSPACE,
} JobIoStatus;

/* QEMU's names ("running", "set-speed", "stream", "report", "ok"). */
const char *job_status_name(JobStatus s);
const char *job_verb_name(JobVerb v);
const char *job_type_name(JobType t);
const char *blockdev_on_error_name(BlockdevOnError e);
const char *block_error_action_name(BlockErrorAction a);
const char *job_io_status_name(JobIoStatus s);

typedef struct Job Job;

/* ----- Events ----- */

typedef enum {
    JOB_EVENT_STATUS_CHANGE,   /* JOB_STATUS_CHANGE {id, status} */
    JOB_EVENT_COMPLETED,       /* BLOCK_JOB_COMPLETED (block jobs only) */
    JOB_EVENT_CANCELLED,       /* BLOCK_JOB_CANCELLED (block jobs only) */
    JOB_EVENT_ERROR,           /* BLOCK_JOB_ERROR {device, operation, action} */
    JOB_EVENT_READY,           /* BLOCK_JOB_READY */
    JOB_EVENT_PENDING,         /* BLOCK_JOB_PENDING {type, id} */
} JobEventKind;

typedef struct JobEvent {
    JobEventKind kind;
    Job *job;                  /* query it (job_query) for the members */
    bool error_is_read;        /* JOB_EVENT_ERROR: operation read or write */
    BlockErrorAction action;   /* JOB_EVENT_ERROR */
} JobEvent;

/* One handler per process (the daemon's QMP layer); events are delivered
 * synchronously, in QEMU's order (formats.md 4.7, daemon.md 1.4). */
typedef void JobEventFunc(void *opaque, const JobEvent *ev);
void job_set_event_handler(JobEventFunc *fn, void *opaque);

/* ----- Queries ----- */

typedef struct JobInfo {
    const char *id;
    JobType type;
    JobStatus status;
    bool is_block_job;         /* listed by query-block-jobs, BLOCK_JOB_* events */
    int64_t current_progress;  /* bytes done (block jobs: "offset") */
    int64_t total_progress;    /* "len" */
    int64_t speed;
    bool busy;
    bool paused;
    bool ready;
    bool auto_finalize;
    bool auto_dismiss;
    JobIoStatus io_status;
    const char *error;         /* NULL, or the failure's text ("Operation canceled") */
} JobInfo;

/* All strings borrowed from the job (valid until it is dismissed). */
void job_query(Job *job, JobInfo *info);
Job *job_find(const char *id);
/* Iterates jobs in creation order: job_next(NULL) is the first. */
Job *job_next(Job *prev);

/* ----- Verbs (QEMU's refusals: "Job 'x' in state 'running' cannot accept
 * command verb 'complete'", "Job is already paused", "Can't resume a job
 * that was not paused", "Parameter 'speed' expects a non-negative
 * value"). Each returns false with *errp set when refused. ----- */

bool job_user_pause(Job *job, GError **errp);
bool job_user_resume(Job *job, GError **errp);
bool job_user_cancel(Job *job, bool force, GError **errp);
bool job_set_speed(Job *job, int64_t speed, GError **errp);
bool job_complete(Job *job, GError **errp);
bool job_finalize(Job *job, GError **errp);
/* Frees the job (it must not be used afterwards). */
bool job_dismiss(Job *job, GError **errp);

/* Daemon shutdown: cancels every job and waits until each concluded and
 * its nodes are released (graph restored, images consistent). */
void coroutine_fn job_co_cancel_all(void);

/* A node a running job holds: false (and *errp set, QEMU's text "Node
 * 'top' is busy: block device is in use by block job: stream") when a job
 * uses bs; blockdev-del, block_resize and a second job ask this. */
bool bdrv_check_not_in_use_by_job(BlockDriverState *bs, GError **errp);

/* ----- Common job options ----- */

typedef struct JobOptions {
    const char *id;            /* required, unique among jobs */
    int64_t speed;             /* bytes/s, 0 = unlimited; < 0 refused */
    BlockdevOnError on_error;
    bool auto_finalize;
    bool auto_dismiss;
} JobOptions;

/* ----- Stream (block/jobs/stream.c) -----
 * Copies into top every range top lacks, from the chain between top's
 * backing and base (exclusive; NULL: the whole chain), then points top's
 * backing at base (or none) and rewrites the header's backing name
 * (backing_file, or base's filename) and format. */
typedef struct StreamJobOptions {
    JobOptions job;
    BlockDriverState *top;
    BlockDriverState *base;           /* NULL: stream everything */
    const char *backing_file;         /* NULL: base's filename */
    const char *filter_node_name;     /* NULL: implicit */
} StreamJobOptions;
Job *coroutine_fn stream_job_co_start(const StreamJobOptions *opts, GError **errp);

/* ----- Commit (block/jobs/commit-job.c), an intermediate layer -----
 * bdrv_co_commit's copy as a job; on success the overlay of top gets
 * base as its backing (header: backing_file or base's filename) and the
 * layers from top down to base (exclusive) leave the graph. */
typedef struct CommitJobOptions {
    JobOptions job;
    BlockDriverState *top;
    BlockDriverState *base;
    const char *backing_file;
    const char *filter_node_name;
} CommitJobOptions;
Job *coroutine_fn commit_job_co_start(const CommitJobOptions *opts, GError **errp);

/* ----- Create (block/jobs/create-job.c): blockdev-create -----
 * Creates filename as format fmt (NULL: the protocol its name selects,
 * e.g. a plain file), with create options as bdrv_co_create takes them
 * (copied). Not a block job: JOB_STATUS_CHANGE only, progress 1/1; a
 * failure concludes the job with the error (query-jobs shows it).
 * QEMU's create jobs finalize themselves and wait for job-dismiss:
 * auto_finalize and auto_dismiss of opts->job are ignored. */
typedef struct CreateJobOptions {
    JobOptions job;
    const char *fmt;
    const char *filename;
    QblkOpts *create_opts;
    /* Non-NULL: the job fails with this message instead of creating
     * (QEMU resolves blockdev-create's file node inside the job, so a
     * missing one fails the job, not the command). */
    const char *fail_message;
} CreateJobOptions;
Job *coroutine_fn create_job_co_start(const CreateJobOptions *opts, GError **errp);

#endif
