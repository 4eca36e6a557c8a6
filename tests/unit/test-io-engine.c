/* Unit tests for the host I/O engines: every test runs once on io_uring
 * (skipped where the kernel refuses it) and once on the thread pool. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* fallocate, FALLOC_FL_* */
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "util/bufferiszero.h"
#include "util/error.h"
#include "util/io-engine.h"
#include "util/warn.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

/* The engine the current test's requests go to. */
static QblkAioMode test_engine;

/* One test's temp file and the engine it runs on. */
typedef struct Fixture {
    char *dir;
    char *path;
    int fd;
    bool skip;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    QblkAioMode want = GPOINTER_TO_INT(data);
    g_autoptr(GError) err = NULL;

    memset(f, 0, sizeof(*f));
    f->fd = -1;
    qblk_io_engine_reset();
    if (qblk_io_engine_init(want) != want) {
        g_assert_cmpint(want, ==, QBLK_AIO_IO_URING);
        g_test_skip("io_uring is not available here (io_uring_queue_init "
                    "failed: kernel, seccomp or io_uring_disabled)");
        f->skip = true;
        return;
    }
    g_assert_cmpstr(qblk_io_engine_name(want), ==,
                    want == QBLK_AIO_IO_URING ? "io_uring" : "threads");
    test_engine = want;
    f->dir = g_dir_make_tmp("qblk-io-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "img", NULL);
    f->fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(f->fd, >=, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    if (f->fd >= 0) {
        close(f->fd);
    }
    if (f->path) {
        g_unlink(f->path);
        g_rmdir(f->dir);
    }
    g_free(f->path);
    g_free(f->dir);
}

/* ----- running coroutines from a test ----- */

typedef struct CoRun {
    void (*fn)(void *opaque);
    void *opaque;
    bool done;
} CoRun;

static void coroutine_fn co_run_entry(void *opaque)
{
    CoRun *r = opaque;

    r->fn(r->opaque);
    r->done = true;
}

static void run_in_coroutine(void (*fn)(void *opaque), void *opaque)
{
    CoRun r = { fn, opaque, false };

    qco_enter(qco_create(co_run_entry, &r));
    while (!r.done) {
        qblk_loop_iterate(true);
    }
}

/* One request, run to completion from outside coroutine context. */
typedef struct Req {
    int fd;
    QblkIoOp op;
    int64_t offset, len;
    QIOVector *qiov;
    int mode;
    int ret;
} Req;

static void coroutine_fn req_entry(void *opaque)
{
    Req *r = opaque;

    g_assert_true(qco_in_coroutine());
    r->ret = qblk_co_io(test_engine, r->fd, r->op, r->offset, r->len, r->qiov, r->mode);
}

static int do_io(int fd, QblkIoOp op, int64_t offset, int64_t len,
                 QIOVector *qiov, int mode)
{
    Req r = { fd, op, offset, len, qiov, mode, 1 };

    run_in_coroutine(req_entry, &r);
    return r.ret;
}

static int do_buf(int fd, QblkIoOp op, int64_t offset, void *buf, size_t len)
{
    QIOVector qiov;

    qiov_init_buf(&qiov, buf, len);
    return do_io(fd, op, offset, len, &qiov, 0);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9) + 1);
    }
}

/* ----- tests ----- */

static void test_rw(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    const size_t len = 1 << 20;
    g_autofree uint8_t *w = g_malloc(len);
    g_autofree uint8_t *r = g_malloc0(len);
    QIOVector qiov;

    if (f->skip) {
        return;
    }
    fill_pattern(w, len, 1);
    /* Uneven, non-adjacent pieces on both sides. */
    qiov_init(&qiov, 3);
    qiov_add(&qiov, w, 1000);
    qiov_add(&qiov, w + 1000, 0);
    qiov_add(&qiov, w + 1000, 300000);
    qiov_add(&qiov, w + 301000, len - 301000);
    g_assert_cmpint(do_io(f->fd, QBLK_IO_WRITE, 4096, len, &qiov, 0), ==, 0);
    qiov_destroy(&qiov);

    qiov_init(&qiov, 2);
    qiov_add(&qiov, r + 512, len - 512);
    qiov_add(&qiov, r, 512);
    g_assert_cmpint(do_io(f->fd, QBLK_IO_READ, 4096, len, &qiov, 0), ==, 0);
    qiov_destroy(&qiov);
    g_assert_cmpmem(r, 512, w + len - 512, 512);
    g_assert_cmpmem(r + 512, len - 512, w, len - 512);

    /* Zero-length requests succeed without touching anything. */
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, 0, r, 0), ==, 0);
}

static void test_many_iovecs(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    /* More elements than IOV_MAX: the engine has to split. */
    const int n = 2500;
    g_autofree uint8_t *w = g_malloc(n * 2);
    g_autofree uint8_t *r = g_malloc0(n);
    g_autofree uint8_t *expect = g_malloc(n);
    QIOVector qiov;
    int i;

    if (f->skip) {
        return;
    }
    fill_pattern(w, n * 2, 2);
    qiov_init(&qiov, n);
    for (i = 0; i < n; i++) {
        qiov_add(&qiov, w + 2 * i, 1);   /* every other byte */
        expect[i] = w[2 * i];
    }
    g_assert_cmpint(qiov.niov, ==, n);
    g_assert_cmpint(do_io(f->fd, QBLK_IO_WRITE, 0, n, &qiov, 0), ==, 0);
    qiov_destroy(&qiov);
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, 0, r, n), ==, 0);
    g_assert_cmpmem(r, n, expect, n);
}

static void test_eof(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    uint8_t w[5000], r[8192];
    struct stat st;

    if (f->skip) {
        return;
    }
    fill_pattern(w, sizeof(w), 3);
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_WRITE, 0, w, sizeof(w)), ==, 0);

    memset(r, 0xaa, sizeof(r));
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, 0, r, sizeof(r)), ==, 0);
    g_assert_cmpmem(r, sizeof(w), w, sizeof(w));
    g_assert_true(buffer_is_zero(r + sizeof(w), sizeof(r) - sizeof(w)));

    /* Entirely past the end. */
    memset(r, 0xaa, sizeof(r));
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, 1 << 20, r, sizeof(r)), ==, 0);
    g_assert_true(buffer_is_zero(r, sizeof(r)));

    /* Reading does not extend the file. */
    g_assert_cmpint(fstat(f->fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, sizeof(w));
}

static void test_fdatasync(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    uint8_t w[4096];

    if (f->skip) {
        return;
    }
    fill_pattern(w, sizeof(w), 4);
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_WRITE, 0, w, sizeof(w)), ==, 0);
    g_assert_cmpint(do_io(f->fd, QBLK_IO_FDATASYNC, 0, 0, NULL, 0), ==, 0);
}

static void test_fallocate(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    const size_t len = 1 << 20;
    g_autofree uint8_t *w = g_malloc(len);
    g_autofree uint8_t *r = g_malloc(len);
    struct stat before, after;
    int ret, host;

    if (f->skip) {
        return;
    }
    fill_pattern(w, len, 5);
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_WRITE, 0, w, len), ==, 0);
    g_assert_cmpint(do_io(f->fd, QBLK_IO_FDATASYNC, 0, 0, NULL, 0), ==, 0);

    /* ZERO_RANGE: the engine must say what the filesystem says. */
    ret = do_io(f->fd, QBLK_IO_FALLOCATE, 65536, 65536, NULL,
                FALLOC_FL_ZERO_RANGE);
    if (ret == 0) {
        memset(w + 65536, 0, 65536);
    } else {
        host = fallocate(f->fd, FALLOC_FL_ZERO_RANGE, 65536, 65536) ? -errno : 0;
        g_assert_cmpint(ret, ==, host);
        g_assert_cmpint(qblk_errno_not_supported(ret), ==, -ENOTSUP);
        g_test_message("ZERO_RANGE not supported here: %s", g_strerror(-ret));
    }

    /* PUNCH_HOLE|KEEP_SIZE: zeroes, same size, fewer blocks. */
    g_assert_cmpint(fstat(f->fd, &before), ==, 0);
    ret = do_io(f->fd, QBLK_IO_FALLOCATE, 262144, 524288, NULL,
                FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    g_assert_cmpint(ret, ==, 0);
    memset(w + 262144, 0, 524288);
    g_assert_cmpint(fstat(f->fd, &after), ==, 0);
    g_assert_cmpint(after.st_size, ==, before.st_size);
    g_assert_cmpint(after.st_blocks, <, before.st_blocks);

    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, 0, r, len), ==, 0);
    g_assert_cmpmem(r, len, w, len);

    /* Plain preallocation past the end grows the file. */
    g_assert_cmpint(do_io(f->fd, QBLK_IO_FALLOCATE, len, 4096, NULL, 0), ==, 0);
    g_assert_cmpint(fstat(f->fd, &after), ==, 0);
    g_assert_cmpint(after.st_size, ==, len + 4096);
}

static void test_errors(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    uint8_t buf[512] = { 0 };
    int bad;

    if (f->skip) {
        return;
    }
    /* A descriptor number that was valid a moment ago. */
    bad = dup(f->fd);
    g_assert_cmpint(bad, >=, 0);
    close(bad);
    g_assert_cmpint(do_buf(bad, QBLK_IO_READ, 0, buf, sizeof(buf)), ==, -EBADF);
    g_assert_cmpint(do_buf(bad, QBLK_IO_WRITE, 0, buf, sizeof(buf)), ==, -EBADF);
    g_assert_cmpint(do_io(bad, QBLK_IO_FDATASYNC, 0, 0, NULL, 0), ==, -EBADF);
    g_assert_cmpint(do_io(bad, QBLK_IO_FALLOCATE, 0, 4096, NULL, 0), ==, -EBADF);
    g_assert_cmpint(do_buf(-1, QBLK_IO_READ, 0, buf, sizeof(buf)), ==, -EBADF);
    g_assert_cmpint(do_buf(f->fd, QBLK_IO_READ, -512, buf, sizeof(buf)), ==, -EINVAL);
}

/* 64 coroutines, all in flight at once, each writing then reading 4 KiB. */
typedef struct Worker {
    int fd;
    int index;
    int ret;
    bool done;
    int *remaining;
} Worker;

static void coroutine_fn worker_entry(void *opaque)
{
    Worker *w = opaque;
    uint8_t out[4096], in[4096];
    QIOVector qiov;
    int64_t off = (int64_t)w->index * sizeof(out);

    fill_pattern(out, sizeof(out), w->index + 100);
    qiov_init_buf(&qiov, out, sizeof(out));
    w->ret = qblk_co_io(test_engine, w->fd, QBLK_IO_WRITE, off, sizeof(out), &qiov, 0);
    if (w->ret == 0) {
        memset(in, 0, sizeof(in));
        qiov_init_buf(&qiov, in, sizeof(in));
        w->ret = qblk_co_io(test_engine, w->fd, QBLK_IO_READ, off, sizeof(in), &qiov, 0);
        if (w->ret == 0 && memcmp(in, out, sizeof(in))) {
            w->ret = -EILSEQ;
        }
    }
    w->done = true;
    (*w->remaining)--;
}

static void run_workers(Fixture *f, int n)
{
    g_autofree Worker *w = g_new(Worker, n);
    int remaining = n, i;
    struct stat st;

    for (i = 0; i < n; i++) {
        w[i] = (Worker){ .fd = f->fd, .index = i, .ret = 1,
                         .remaining = &remaining };
        qco_enter(qco_create(worker_entry, &w[i]));
    }
    while (remaining > 0) {
        qblk_loop_iterate(true);
    }
    for (i = 0; i < n; i++) {
        g_assert_true(w[i].done);
        g_assert_cmpint(w[i].ret, ==, 0);
    }
    g_assert_cmpint(fstat(f->fd, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, n * 4096);
}

static void test_concurrent(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    if (!f->skip) {
        run_workers(f, 64);
    }
}

/* More requests than ring slots: the excess waits for completions. */
static void test_queue_full(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    if (!f->skip) {
        run_workers(f, 300);
    }
}

/* Outside a coroutine qblk_co_io has nothing to yield to: it asserts
 * instead of spinning the loop itself. */
static void test_sync_caller(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    uint8_t w[512] = { 0 };
    QIOVector qiov;

    if (f->skip) {
        return;
    }
    if (g_test_subprocess()) {
        qiov_init_buf(&qiov, w, sizeof(w));
        g_assert_false(qco_in_coroutine());
        qblk_co_io(test_engine, f->fd, QBLK_IO_WRITE, 0, sizeof(w), &qiov, 0);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*qco_in_coroutine*");
}

static GThread *main_thread;

static int thread_fn(void *opaque)
{
    int *calls = opaque;

    g_assert_true(g_thread_self() != main_thread);
    g_atomic_int_inc(calls);
    g_usleep(2000);
    return 42;
}

typedef struct ThreadJob {
    int *calls;
    int ret;
    int *remaining;
} ThreadJob;

static void coroutine_fn thread_job_entry(void *opaque)
{
    ThreadJob *j = opaque;

    j->ret = qblk_co_run_in_thread(thread_fn, j->calls);
    (*j->remaining)--;
}

static void test_run_in_thread(Fixture *f, gconstpointer data G_GNUC_UNUSED)
{
    enum { N = 40 };
    ThreadJob jobs[N];
    int calls = 0, remaining = N, i;

    if (f->skip) {
        return;
    }
    for (i = 0; i < N; i++) {
        jobs[i] = (ThreadJob){ &calls, 0, &remaining };
        qco_enter(qco_create(thread_job_entry, &jobs[i]));
    }
    while (remaining > 0) {
        qblk_loop_iterate(true);
    }
    for (i = 0; i < N; i++) {
        g_assert_cmpint(jobs[i].ret, ==, 42);
    }
    g_assert_cmpint(g_atomic_int_get(&calls), ==, N);
}


/* Two nodes of one process on different engines: an io_uring request
 * waits on an empty pipe while the threads node's requests complete, and
 * the io_uring node's requests never reach the thread pool. */
static void test_both_engines(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *path = NULL;
    uint8_t w[4096], r[4096], pipe_buf[16] = { 0 };
    QIOVector pipe_qiov;
    int fd, pfd[2];
    Req blocked;

    if (!g_test_subprocess()) {
        /* A fresh process: no pool thread started by earlier tests. */
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }
    qblk_io_engine_reset();
    if (qblk_io_engine_init(QBLK_AIO_IO_URING) != QBLK_AIO_IO_URING) {
        g_test_skip("io_uring is not available here");
        return;
    }
    /* The other engine, asked for second, is granted too. */
    g_assert_cmpint(qblk_io_engine_init(QBLK_AIO_THREADS), ==, QBLK_AIO_THREADS);
    g_assert_cmpint(qblk_io_engine_init(QBLK_AIO_IO_URING), ==, QBLK_AIO_IO_URING);
    dir = g_dir_make_tmp("qblk-io-XXXXXX", NULL);
    path = g_build_filename(dir, "img", NULL);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pipe2(pfd, O_CLOEXEC), ==, 0);

    /* io_uring alone: data goes through the ring, no worker exists. */
    fill_pattern(w, sizeof(w), 9);
    test_engine = QBLK_AIO_IO_URING;
    g_assert_cmpint(do_buf(fd, QBLK_IO_WRITE, 0, w, sizeof(w)), ==, 0);
    g_assert_cmpint(do_buf(fd, QBLK_IO_READ, 0, r, sizeof(r)), ==, 0);
    g_assert_cmpmem(r, sizeof(r), w, sizeof(w));
    g_assert_cmpint(unit_pool_threads(), ==, 0);

    /* An io_uring read stays in flight on the empty pipe... */
    qiov_init_buf(&pipe_qiov, pipe_buf, sizeof(pipe_buf));
    blocked = (Req){ pfd[0], QBLK_IO_READ, 0, sizeof(pipe_buf), &pipe_qiov, 0, 1 };
    qco_enter(qco_create(req_entry, &blocked));
    /* ...while the threads engine serves another node meanwhile. */
    test_engine = QBLK_AIO_THREADS;
    memset(r, 0, sizeof(r));
    g_assert_cmpint(do_buf(fd, QBLK_IO_READ, 0, r, sizeof(r)), ==, 0);
    g_assert_cmpmem(r, sizeof(r), w, sizeof(w));
    g_assert_cmpint(unit_pool_threads(), >=, 1);
    g_assert_cmpint(blocked.ret, ==, 1);
    g_assert_cmpint(write(pfd[1], "x", 1), ==, 1);
    close(pfd[1]);
    while (blocked.ret == 1) {
        qblk_loop_iterate(true);
    }
    g_assert_cmpint(blocked.ret, ==, 0);
    g_assert_cmpint(pipe_buf[0], ==, 'x');
    close(pfd[0]);
    close(fd);
    g_unlink(path);
    g_rmdir(dir);
}

/* QBLK_AIO picks the engine for AUTO; nonsense warns and chooses itself. */
static void warn_to_stderr(void *opaque, const char *msg)
{
    warn_report("%s", msg);
}

static void test_env(void)
{
    if (g_test_subprocess()) {
        qblk_set_progname("test-io-engine");
        /* The library hands its warning over; a tool prints it so. */
        qblk_set_warn_handler(warn_to_stderr, NULL);
        qblk_io_engine_reset();
        g_setenv("QBLK_AIO", "threads", TRUE);
        g_assert_cmpint(qblk_io_engine_init(QBLK_AIO_AUTO), ==, QBLK_AIO_THREADS);
        /* The default is chosen once, and only for nodes naming none. */
        g_setenv("QBLK_AIO", "io_uring", TRUE);
        g_assert_cmpint(qblk_io_engine_init(QBLK_AIO_AUTO), ==, QBLK_AIO_THREADS);
        g_assert_cmpstr(qblk_io_engine_name(QBLK_AIO_THREADS), ==, "threads");
        /* A named default serves big cached transfers too... */
        g_assert_cmpint(qblk_io_engine_for_cached(QBLK_AIO_AUTO, 1 << 30), ==,
                        QBLK_AIO_THREADS);
        qblk_io_engine_reset();
        g_setenv("QBLK_AIO", "io_uring", TRUE);
        g_assert_cmpint(qblk_io_engine_for_cached(QBLK_AIO_AUTO, QBLK_IO_OFFLOAD_MIN), ==,
                        qblk_io_engine_init(QBLK_AIO_AUTO));
        /* ...while a chosen one sends them to the pool, small ones not. */
        qblk_io_engine_reset();
        g_unsetenv("QBLK_AIO");
        g_assert_cmpint(qblk_io_engine_for_cached(QBLK_AIO_AUTO, QBLK_IO_OFFLOAD_MIN), ==,
                        QBLK_AIO_THREADS);
        g_assert_cmpint(qblk_io_engine_for_cached(QBLK_AIO_AUTO, QBLK_IO_OFFLOAD_MIN - 1), ==,
                        QBLK_AIO_AUTO);
        g_assert_cmpint(qblk_io_engine_for_cached(QBLK_AIO_IO_URING, 1 << 30), ==,
                        QBLK_AIO_IO_URING);
        qblk_io_engine_reset();
        g_setenv("QBLK_AIO", "bogus", TRUE);
        qblk_io_engine_init(QBLK_AIO_AUTO);
        g_assert_nonnull(qblk_io_engine_name(QBLK_AIO_AUTO));
        qblk_io_engine_reset();
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("test-io-engine: warning: QBLK_AIO='bogus' is "
                              "neither 'io_uring' nor 'threads'; choosing "
                              "automatically\n");
}

/* QBLK_AIO=inline (the fuzz targets): the default is the threads engine,
 * and its requests run in the calling thread, so no pool worker starts. */
static void test_inline(void)
{
    g_autofree char *dir = NULL, *path = NULL;
    uint8_t w[8192], r[8192];
    int fd;

    if (!g_test_subprocess()) {
        /* A fresh process: no pool thread started by earlier tests. */
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }
    qblk_io_engine_reset();
    g_setenv("QBLK_AIO", "inline", TRUE);
    g_assert_cmpint(qblk_io_engine_init(QBLK_AIO_AUTO), ==, QBLK_AIO_THREADS);
    dir = g_dir_make_tmp("qblk-io-XXXXXX", NULL);
    path = g_build_filename(dir, "img", NULL);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    fill_pattern(w, sizeof(w), 5);
    test_engine = QBLK_AIO_THREADS;
    g_assert_cmpint(do_buf(fd, QBLK_IO_WRITE, 4096, w, sizeof(w)), ==, 0);
    g_assert_cmpint(do_buf(fd, QBLK_IO_READ, 4096, r, sizeof(r)), ==, 0);
    g_assert_cmpmem(r, sizeof(r), w, sizeof(w));
    g_assert_cmpint(unit_pool_threads(), ==, 0);
    close(fd);
    g_unlink(path);
    g_rmdir(dir);
    g_unsetenv("QBLK_AIO");
    qblk_io_engine_reset();
}

static void add_both(const char *name,
                     void (*fn)(Fixture *f, gconstpointer data))
{
    static const struct { const char *name; QblkAioMode mode; } engines[] = {
        { "io_uring", QBLK_AIO_IO_URING },
        { "threads", QBLK_AIO_THREADS },
    };
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(engines); i++) {
        g_autofree char *path = g_strdup_printf("/io-engine/%s/%s",
                                                engines[i].name, name);

        g_test_add(path, Fixture, GINT_TO_POINTER(engines[i].mode),
                   fixture_setup, fn, fixture_teardown);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* The tests choose engines explicitly; an inherited QBLK_AIO would
     * only confuse the env test. */
    g_unsetenv("QBLK_AIO");
    main_thread = g_thread_self();
    qblk_loop_init();
    add_both("rw", test_rw);
    add_both("many-iovecs", test_many_iovecs);
    add_both("eof", test_eof);
    add_both("fdatasync", test_fdatasync);
    add_both("fallocate", test_fallocate);
    add_both("errors", test_errors);
    add_both("concurrent", test_concurrent);
    add_both("queue-full", test_queue_full);
    add_both("sync-caller", test_sync_caller);
    add_both("run-in-thread", test_run_in_thread);
    g_test_add_func("/io-engine/env", test_env);
    g_test_add_func("/io-engine/both-engines", test_both_engines);
    g_test_add_func("/io-engine/inline", test_inline);
    return g_test_run();
}
