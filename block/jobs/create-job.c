/* blockdev-create as a job (QEMU's "create" job type): one bdrv_co_create
 * run in the job's coroutine, progress 0/1 then 1/1, finalized at once
 * and kept until job-dismiss. */
#include <errno.h>

#include "block/jobs/job-internal.h"

typedef struct CreateJob {
    Job common;
    char *fmt;
    char *filename;
    QblkOpts *create_opts;
    char *fail_message;
} CreateJob;

static int coroutine_fn create_run(Job *job, GError **errp)
{
    CreateJob *s = (CreateJob *)job;
    int ret;

    job_progress_set_total(job, 1);
    if (s->fail_message) {
        qblk_error_set(errp, "%s", s->fail_message);
        ret = -EINVAL;
    } else if (s->fmt) {
        ret = bdrv_co_create(s->fmt, s->filename, s->create_opts, errp);
    } else {
        ret = bdrv_co_create_file(s->filename, s->create_opts, errp);
    }
    job_progress_update(job, 1);
    return ret < 0 ? ret : 0;
}

static void coroutine_fn create_clean(Job *job)
{
    CreateJob *s = (CreateJob *)job;

    g_free(s->fmt);
    g_free(s->filename);
    g_free(s->fail_message);
    qblk_opts_free(s->create_opts);
}

static const JobDriver create_driver = {
    .type = JOB_TYPE_CREATE,
    .is_block_job = false,
    .instance_size = sizeof(CreateJob),
    .run = create_run,
    .clean = create_clean,
};

Job *coroutine_fn create_job_co_start(const CreateJobOptions *opts, GError **errp)
{
    JobOptions jo = opts->job;
    CreateJob *s;

    jo.auto_finalize = true;
    jo.auto_dismiss = false;
    jo.speed = 0;
    s = (CreateJob *)job_create(&create_driver, &jo, errp);
    if (!s) {
        return NULL;
    }
    s->fmt = g_strdup(opts->fmt);
    s->filename = g_strdup(opts->filename);
    s->fail_message = g_strdup(opts->fail_message);
    s->create_opts = opts->create_opts ? qblk_opts_copy(opts->create_opts) : qblk_opts_new();
    job_start(&s->common);
    return &s->common;
}
