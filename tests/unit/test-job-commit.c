/* The commit and create jobs driven in-process: an intermediate layer
 * committed into the base with the chain rewired, active commit refused,
 * and blockdev-create's job states (JOB_STATUS_CHANGE only, progress 1/1,
 * kept until dismissed, failures in query-jobs). */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/job.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define MiB (1024 * 1024LL)

static GString *event_log;

static void record_event(void *opaque, const JobEvent *ev)
{
    static const char *const kinds[] = {
        "", "COMPLETED", "CANCELLED", "ERROR", "READY", "PENDING",
    };
    JobInfo info;

    job_query(ev->job, &info);
    if (ev->kind == JOB_EVENT_STATUS_CHANGE) {
        g_string_append_printf(event_log, "%s ", job_status_name(info.status));
    } else {
        g_string_append_printf(event_log, "%s ", kinds[ev->kind]);
    }
}

typedef struct Start {
    CommitJobOptions commit;
    CreateJobOptions create;
    bool is_create;
    Job *job;
    GError *err;
} Start;

static void coroutine_fn start_entry(void *opaque)
{
    Start *s = opaque;

    s->job = s->is_create ? create_job_co_start(&s->create, &s->err)
                          : commit_job_co_start(&s->commit, &s->err);
}

static void run_until(const char *id, JobStatus until)
{
    int64_t deadline = qblk_clock_ns() + 60 * 1000000000LL;
    Job *job;
    JobInfo info;

    while ((job = job_find(id))) {
        job_query(job, &info);
        if (info.status == until) {
            return;
        }
        g_assert_cmpint(qblk_clock_ns(), <, deadline);
        qblk_loop_iterate(true);
    }
}

/* base (raw: 0x11 everywhere) <- mid (qcow2: 0x22 at 1M, zeroes at 3M)
 * <- top (qed: 0x33 at 2M). Commit mid into base: base gets mid's data
 * and zeroes, top reads base directly and its header says so. */
static void test_commit_intermediate(void)
{
    g_autofree char *dir = unit_tmpdir_new("qblk-commitjob-XXXXXX");
    g_autofree char *base = unit_create(dir, "raw", "base.raw", "size=4M");
    g_autofree char *mo = g_strdup_printf("size=4M,backing_file=%s,backing_fmt=raw", base);
    g_autofree char *mid = unit_create(dir, "qcow2", "mid.qcow2", mo);
    g_autofree char *to = g_strdup_printf("size=4M,backing_file=%s,backing_fmt=qcow2", mid);
    g_autofree char *top = unit_create(dir, "qed", "top.qed", to);
    g_autofree uint8_t *buf = g_malloc(4 * MiB), *want = g_malloc(4 * MiB);
    BlockDriverState *bs, *t, *m, *b;
    GError *err = NULL;
    Start s = { 0 };

    bs = bdrv_open(base, NULL, BDRV_O_RDWR, NULL, NULL);
    memset(buf, 0x11, 4 * MiB);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 4 * MiB, buf, 0), ==, 0);
    bdrv_unref(bs);
    bs = bdrv_open(mid, NULL, BDRV_O_RDWR, NULL, NULL);
    memset(buf, 0x22, MiB);
    g_assert_cmpint(bdrv_pwrite(bs, MiB, MiB, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 3 * MiB, MiB, 0), ==, 0);
    bdrv_unref(bs);
    bs = bdrv_open(top, NULL, BDRV_O_RDWR, NULL, NULL);
    memset(buf, 0x33, MiB);
    g_assert_cmpint(bdrv_pwrite(bs, 2 * MiB, MiB, buf, 0), ==, 0);
    bdrv_unref(bs);

    memset(want, 0x11, MiB);
    memset(want + MiB, 0x22, MiB);
    memset(want + 2 * MiB, 0x33, MiB);
    memset(want + 3 * MiB, 0, MiB);

    t = bdrv_open(top, NULL, BDRV_O_RDWR, NULL, NULL);
    m = bdrv_backing(t);
    b = bdrv_backing(m);

    /* Active commit: refused. */
    s.commit = (CommitJobOptions) { .job = { .id = "c0", .auto_finalize = true,
                                             .auto_dismiss = true },
                                    .top = t, .base = b };
    bdrv_run_co(start_entry, &s);
    g_assert_null(s.job);
    g_assert_nonnull(s.err);
    g_clear_error(&s.err);

    g_string_truncate(event_log, 0);
    s.commit = (CommitJobOptions) { .job = { .id = "c1", .auto_finalize = true,
                                             .auto_dismiss = true },
                                    .top = m, .base = b };
    bdrv_run_co(start_entry, &s);
    g_assert_no_error(s.err);
    g_assert_nonnull(s.job);
    /* The nodes are the job's until it ends. */
    g_assert_false(bdrv_check_not_in_use_by_job(m, &err));
    g_assert_true(g_str_has_suffix(err->message, "is busy: block device is in use by block "
                                   "job: commit"));
    g_clear_error(&err);
    run_until("c1", JOB_STATUS_NULL);
    g_assert_cmpstr(event_log->str, ==,
                    "created running waiting pending COMPLETED concluded null ");
    g_assert_true(bdrv_backing(t) == b);
    g_assert_cmpstr(bdrv_backing_file(t), ==, base);
    g_assert_cmpint(bdrv_pread(t, 0, 4 * MiB, buf, 0), ==, 0);
    g_assert_true(memcmp(buf, want, 4 * MiB) == 0);
    bdrv_unref(t);

    /* From disk: top's header names base; base alone has mid's content. */
    t = bdrv_open(top, NULL, 0, NULL, NULL);
    g_assert_cmpstr(bdrv_format_name(bdrv_backing(t)), ==, "raw");
    g_assert_cmpint(bdrv_pread(t, 0, 4 * MiB, buf, 0), ==, 0);
    g_assert_true(memcmp(buf, want, 4 * MiB) == 0);
    bdrv_unref(t);
    b = bdrv_open(base, NULL, 0, NULL, NULL);
    g_assert_cmpint(bdrv_pread(b, 0, 4 * MiB, buf, 0), ==, 0);
    memset(want + 2 * MiB, 0x11, MiB);
    g_assert_true(memcmp(buf, want, 4 * MiB) == 0);
    bdrv_unref(b);
    unit_tmpdir_remove(g_steal_pointer(&dir));
}

/* on-error with a write fault on the base: stop pauses the job (io-status
 * failed) and the resume copies the chunk again, so the commit completes
 * with the whole layer in base; report fails it at once; ignore goes on and
 * fails at the end. The chain is rewired only on success. */
static void run_commit_on_error(BlockdevOnError on_error, const char *want)
{
    g_autofree char *dir = unit_tmpdir_new("qblk-commitjob-XXXXXX");
    g_autofree char *base = unit_create(dir, "raw", "base.raw", "size=4M");
    g_autofree char *mo = g_strdup_printf("size=4M,backing_file=%s,backing_fmt=raw", base);
    g_autofree char *mid = unit_create(dir, "qcow2", "mid.qcow2", mo);
    g_autofree char *to = g_strdup_printf("size=4M,backing_file=%s,backing_fmt=qcow2", mid);
    g_autofree char *top = unit_create(dir, "qed", "top.qed", to);
    g_autofree char *optstr = g_strdup_printf("driver=qed,file.filename=%s,"
                                              "backing.driver=qcow2,"
                                              "backing.file.filename=%s,"
                                              "backing.backing.driver=raw,"
                                              "backing.backing.file.driver=blkdebug,"
                                              "backing.backing.file.inject=write:1:EIO:once,"
                                              "backing.backing.file.image.filename=%s",
                                              top, mid, base);
    g_autofree uint8_t *buf = g_malloc(MiB);
    bool stops = on_error == BLOCKDEV_ON_ERROR_STOP;
    BlockDriverState *bs, *t, *m, *b;
    Start s = { 0 };
    JobInfo info;

    bs = bdrv_open(mid, NULL, BDRV_O_RDWR, NULL, NULL);
    memset(buf, 0x22, MiB);
    g_assert_cmpint(bdrv_pwrite(bs, MiB, MiB, buf, 0), ==, 0);
    bdrv_unref(bs);
    t = unit_open_opts(optstr, BDRV_O_RDWR);
    m = bdrv_backing(t);
    b = bdrv_backing(m);
    g_string_truncate(event_log, 0);
    s.commit = (CommitJobOptions) { .job = { .id = "ce", .auto_finalize = true,
                                             .auto_dismiss = true, .on_error = on_error },
                                    .top = m, .base = b };
    bdrv_run_co(start_entry, &s);
    g_assert_no_error(s.err);
    if (stops) {
        run_until("ce", JOB_STATUS_PAUSED);
        job_query(s.job, &info);
        g_assert_cmpint(info.io_status, ==, JOB_IO_STATUS_FAILED);
        g_assert_true(info.paused);
        g_assert_true(job_user_resume(s.job, NULL));
    }
    run_until("ce", JOB_STATUS_NULL);
    g_assert_cmpstr(event_log->str, ==, want);
    g_assert_true(stops ? bdrv_backing(t) == b : bdrv_backing(t) == m);
    g_assert_cmpint(bdrv_pread(b, MiB, MiB, buf, 0), ==, 0);
    g_assert_cmpint(buf[0], ==, stops ? 0x22 : 0);
    bdrv_unref(t);
    unit_tmpdir_remove(g_steal_pointer(&dir));
}

static void test_commit_on_error(void)
{
    run_commit_on_error(BLOCKDEV_ON_ERROR_STOP,
                        "created running ERROR paused running waiting pending COMPLETED "
                        "concluded null ");
    run_commit_on_error(BLOCKDEV_ON_ERROR_REPORT,
                        "created running ERROR aborting COMPLETED concluded null ");
    run_commit_on_error(BLOCKDEV_ON_ERROR_IGNORE,
                        "created running ERROR aborting COMPLETED concluded null ");
}

static void test_create(void)
{
    g_autofree char *dir = unit_tmpdir_new("qblk-createjob-XXXXXX");
    g_autofree char *path = g_build_filename(dir, "new.qcow2", NULL);
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    BlockDriverState *bs;
    JobInfo info;
    Start s = { .is_create = true };

    g_string_truncate(event_log, 0);
    qblk_opts_set(opts, "size", "0");
    s.create = (CreateJobOptions) { .job = { .id = "c0" }, .filename = path,
                                    .create_opts = opts };
    bdrv_run_co(start_entry, &s);
    g_assert_no_error(s.err);
    run_until("c0", JOB_STATUS_CONCLUDED);
    g_assert_cmpstr(event_log->str, ==, "created running waiting pending concluded ");
    job_query(s.job, &info);
    g_assert_cmpint(info.type, ==, JOB_TYPE_CREATE);
    g_assert_false(info.is_block_job);
    g_assert_cmpint(info.current_progress, ==, 1);
    g_assert_cmpint(info.total_progress, ==, 1);
    g_assert_null(info.error);
    g_assert_true(job_dismiss(s.job, NULL));
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));

    /* qcow2 on it. */
    qblk_opts_set(opts, "size", "1048576");
    qblk_opts_set(opts, "compat", "0.10");
    s.create = (CreateJobOptions) { .job = { .id = "c1" }, .fmt = "qcow2", .filename = path,
                                    .create_opts = opts };
    bdrv_run_co(start_entry, &s);
    run_until("c1", JOB_STATUS_CONCLUDED);
    job_query(s.job, &info);
    g_assert_null(info.error);
    g_assert_true(job_dismiss(s.job, NULL));
    bs = bdrv_open(path, NULL, 0, NULL, NULL);
    g_assert_nonnull(bs);
    g_assert_cmpstr(bdrv_format_name(bs), ==, "qcow2");
    g_assert_cmpint(bdrv_getlength(bs), ==, MiB);
    bdrv_unref(bs);

    /* A failure: aborting, concluded with the error, no BLOCK_JOB_*. */
    g_string_truncate(event_log, 0);
    s.create = (CreateJobOptions) { .job = { .id = "c2" }, .filename = "/nonexistent/x",
                                    .create_opts = opts };
    bdrv_run_co(start_entry, &s);
    run_until("c2", JOB_STATUS_CONCLUDED);
    g_assert_cmpstr(event_log->str, ==, "created running aborting concluded ");
    job_query(s.job, &info);
    g_assert_nonnull(info.error);
    g_assert_cmpint(info.current_progress, ==, 1);
    g_assert_true(job_dismiss(s.job, NULL));
    g_assert_cmpstr(event_log->str, ==, "created running aborting concluded null ");
    unit_tmpdir_remove(g_steal_pointer(&dir));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    event_log = g_string_new(NULL);
    job_set_event_handler(record_event, NULL);
    g_test_add_func("/job-commit/intermediate", test_commit_intermediate);
    g_test_add_func("/job-commit/on-error", test_commit_on_error);
    g_test_add_func("/job-create/file-qcow2-failure", test_create);
    return g_test_run();
}
