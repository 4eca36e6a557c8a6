/* The coroutine-first control path: synchronous wrappers refuse to run
 * inside a coroutine while their bdrv_co_* versions work there; creating,
 * opening and closing images from a coroutine never runs the event loop
 * on the coroutine's stack; control-path errors carry QMP classes and
 * the texts the tools print. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block.h"
#include "util/coroutine.h"
#include "util/error.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* Runs fn(opaque) in a coroutine from the loop, as a server would. */
static void run_in_coroutine(CoroutineEntry *fn, void *opaque)
{
    bdrv_run_co(fn, opaque);
}

/* ----- Wrappers abort inside a coroutine ----- */

static void coroutine_fn flush_sync_entry(void *opaque)
{
    bdrv_flush(opaque);
}

static void coroutine_fn open_sync_entry(void *opaque)
{
    QblkOpts *opts = qblk_opts_new();

    qblk_opts_set(opts, "driver", "null-co");
    bdrv_open(NULL, opts, 0, NULL, NULL);
}

static void coroutine_fn unref_sync_entry(void *opaque)
{
    bdrv_unref(opaque);
}

static BlockDriverState *open_null(void)
{
    QblkOpts *opts = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;

    qblk_opts_set(opts, "driver", "null-co");
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    return bs;
}

static void test_sync_in_coroutine_aborts(void)
{
    if (g_test_subprocess()) {
        const char *which = g_getenv("CTL_WRAPPER");
        BlockDriverState *bs = open_null();

        bdrv_ref(bs);   /* the unref case drops a reference that is not the last */
        if (!strcmp(which, "flush")) {
            run_in_coroutine(flush_sync_entry, bs);
        } else if (!strcmp(which, "open")) {
            run_in_coroutine(open_sync_entry, NULL);
        } else {
            run_in_coroutine(unref_sync_entry, bs);
        }
        return;     /* not reached when the wrapper aborts */
    }
    for (int i = 0; i < 3; i++) {
        const char *which = (const char *[]){ "flush", "open", "unref" }[i];

        g_setenv("CTL_WRAPPER", which, TRUE);
        g_test_trap_subprocess(NULL, 0, 0);
        g_test_trap_assert_failed();
        g_test_trap_assert_stderr("*!qco_in_coroutine()*");
    }
}

typedef struct {
    BlockDriverState *bs;
    int flush_ret;
    bool done;
} CoUse;

static void coroutine_fn co_versions_entry(void *opaque)
{
    CoUse *u = opaque;
    QblkOpts *opts = qblk_opts_new();
    GError *err = NULL;

    qblk_opts_set(opts, "driver", "null-co");
    u->bs = bdrv_co_open(NULL, opts, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    u->flush_ret = bdrv_co_flush(u->bs);
    bdrv_ref(u->bs);
    bdrv_co_unref(u->bs);
    bdrv_co_unref(u->bs);
    u->done = true;
}

static void test_co_versions_in_coroutine(void)
{
    CoUse u = { 0 };

    run_in_coroutine(co_versions_entry, &u);
    g_assert_true(u.done);
    g_assert_nonnull(u.bs);
    g_assert_cmpint(u.flush_ret, ==, 0);
}

/* ----- No event loop on a coroutine's stack ----- */

/* A probe the loop dispatches at every iteration it runs: a nested loop
 * run inside a coroutine dispatches it on that coroutine's stack. */
typedef struct {
    unsigned outside, inside;
    bool stop;
} Probe;

static gboolean probe_fn(gpointer opaque)
{
    Probe *p = opaque;

    if (qco_in_coroutine()) {
        p->inside++;
    } else {
        p->outside++;
    }
    return p->stop ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

typedef struct {
    const char *fmt;
    char *path;
    int create_ret, write_ret;
    bool opened;
    bool done;
} Lifecycle;

/* Creates, opens, writes (so a format allocates and has metadata to
 * write back at close) and closes one image, all with bdrv_co_*. */
static void coroutine_fn lifecycle_entry(void *opaque)
{
    Lifecycle *l = opaque;
    g_autoptr(QblkOpts) create = qblk_opts_new();
    QblkOpts *open = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;
    uint8_t buf[4096];

    qblk_opts_set(create, "size", "1M");
    l->create_ret = bdrv_co_create(l->fmt, l->path, create, &err);
    g_assert_no_error(err);
    qblk_opts_set(open, "driver", l->fmt);
    bs = bdrv_co_open(l->path, open, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    l->opened = bs != NULL;
    memset(buf, 0x5a, sizeof(buf));
    l->write_ret = bdrv_co_pwrite(bs, 65536, sizeof(buf), buf, 0);
    bdrv_co_unref(bs);
    l->done = true;
}

static void test_no_nested_loop(gconstpointer data)
{
    Lifecycle l = { .fmt = data };
    Probe p = { 0 };
    g_autofree char *name = g_strdup_printf("lifecycle.%s", l.fmt);
    uint8_t buf[4096];
    BlockDriverState *bs;

    l.path = tmp_path(name);
    g_idle_add_full(G_PRIORITY_DEFAULT, probe_fn, &p, NULL);
    qco_enter(qco_create(lifecycle_entry, &l));
    while (!l.done) {
        qblk_loop_iterate(true);
    }
    p.stop = true;
    while (qblk_loop_iterate(false)) {
    }
    g_assert_cmpint(l.create_ret, ==, 0);
    g_assert_true(l.opened);
    g_assert_cmpint(l.write_ret, ==, 0);
    /* The loop ran while the coroutine waited, never inside it. */
    g_assert_cmpuint(p.inside, ==, 0);
    g_assert_cmpuint(p.outside, >, 0);

    /* What the coroutine wrote is there after its close. */
    bs = bdrv_open(l.path, NULL, 0, NULL, NULL);
    g_assert_nonnull(bs);
    g_assert_cmpstr(bdrv_format_name(bs), ==, l.fmt);
    g_assert_cmpint(bdrv_pread(bs, 65536, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x5a);
    g_assert_cmpint(buf[sizeof(buf) - 1], ==, 0x5a);
    bdrv_unref(bs);
    g_unlink(l.path);
    g_free(l.path);
}

/* ----- Errors with classes ----- */

/* ----- bdrv_co_drain waits for requests in flight ----- */

typedef struct DrainCase {
    BlockDriverState *bs;
    bool completed;                /* the request's callback has run */
    bool completed_at_drain_end;
} DrainCase;

static void drain_read_done(void *opaque, int ret)
{
    DrainCase *dc = opaque;

    g_assert_cmpint(ret, ==, 0);
    dc->completed = true;
}

static void coroutine_fn drain_entry(void *opaque)
{
    DrainCase *dc = opaque;

    bdrv_co_drain(dc->bs);
    dc->completed_at_drain_end = dc->completed;
}

/* A request 20 ms long is in flight when a coroutine drains the node: the
 * drain returns only after it completed (woken when the node went idle). */
static void test_co_drain_waits(void)
{
    QblkOpts *opts = qblk_opts_new();
    GError *err = NULL;
    DrainCase dc = { 0 };
    QIOVector qiov;
    g_autofree char *buf = g_malloc(4096);

    qblk_opts_set(opts, "driver", "null-co");
    qblk_opts_set(opts, "latency-ns", "20000000");
    dc.bs = bdrv_open(NULL, opts, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    qiov_init_buf(&qiov, buf, 4096);
    bdrv_aio_submit(dc.bs, BDRV_AIO_READ, 0, 4096, &qiov, 0, drain_read_done, &dc);
    g_assert_false(dc.completed);
    run_in_coroutine(drain_entry, &dc);
    g_assert_true(dc.completed_at_drain_end);
    qiov_destroy(&qiov);
    bdrv_unref(dc.bs);
}

static void test_error_classes(void)
{
    g_autoptr(GError) foreign = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_NOENT, "x");
    g_autoptr(GError) found = NULL;
    g_autoptr(GError) inval = NULL;

    qblk_error_set_code(&found, QBLK_ERROR_DEVICE_NOT_FOUND, "no node '%s'", "n0");
    qblk_error_set_code(&inval, QBLK_ERROR_INVALID, "bad");
    g_assert_cmpstr(qblk_error_class(found), ==, "DeviceNotFound");
    g_assert_cmpstr(found->message, ==, "no node 'n0'");
    g_assert_cmpstr(qblk_error_class(inval), ==, "GenericError");
    g_assert_cmpstr(qblk_error_class(foreign), ==, "GenericError");
    g_assert_cmpstr(qblk_error_class(NULL), ==, "GenericError");
}

static void test_missing_file_error(void)
{
    g_autofree char *path = tmp_path("no-such-image");
    g_autofree char *want = g_strdup_printf("Could not open '%s': No such file or directory",
                                            path);
    GError *err = NULL;

    g_assert_null(bdrv_open(path, NULL, 0, NULL, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(err->message, ==, want);
    g_assert_cmpstr(qblk_error_class(err), ==, "GenericError");
    g_error_free(err);
}

static BlockDriverState *create_open(const char *fmt, const char *name)
{
    g_autofree char *path = tmp_path(name);
    g_autoptr(QblkOpts) create = qblk_opts_new();
    QblkOpts *open = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;

    qblk_opts_set(create, "size", "1M");
    g_assert_cmpint(bdrv_create(fmt, path, create, &err), ==, 0);
    g_assert_no_error(err);
    qblk_opts_set(open, "driver", fmt);
    bs = bdrv_open(path, open, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    return bs;
}

typedef struct {
    BlockDriverState *bs;
    BdrvCheckResult res;
    int ret;
    GError *err;
} CheckCo;

static void coroutine_fn check_entry(void *opaque)
{
    CheckCo *c = opaque;

    c->ret = bdrv_co_check(c->bs, &c->res, BDRV_FIX_NONE, NULL, NULL, &c->err);
}

static void test_control_errors(void)
{
    BlockDriverState *raw = create_open("raw", "errors.raw");
    BlockDriverState *qcow2 = create_open("qcow2", "errors.qcow2");
    CheckCo c = { .bs = raw };
    GError *err = NULL;

    /* The texts qblk-img printed when it composed them from errnos. */
    g_assert_cmpint(bdrv_change_backing_file(raw, "b.img", "raw", &err), ==, -ENOTSUP);
    g_assert_cmpstr(err->message, ==,
                    "Could not change the backing file to 'b.img': Operation not supported");
    g_assert_cmpstr(qblk_error_class(err), ==, "GenericError");
    g_clear_error(&err);

    g_assert_cmpint(bdrv_snapshot_delete(qcow2, "nosuch", &err), ==, -ENOENT);
    g_assert_cmpstr(err->message, ==, "Could not delete snapshot 'nosuch': snapshot not found");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_snapshot_goto(qcow2, "nosuch", &err), ==, -ENOENT);
    g_assert_cmpstr(err->message, ==, "Could not apply snapshot 'nosuch': Failed to load "
                    "snapshot: No such file or directory");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_snapshot_create(raw, "s1", &err), ==, -ENOTSUP);
    g_assert_cmpstr(err->message, ==,
                    "Could not create snapshot 's1': -95 (Operation not supported)");
    g_clear_error(&err);

    run_in_coroutine(check_entry, &c);
    g_assert_cmpint(c.ret, ==, -ENOTSUP);
    g_assert_cmpstr(c.err->message, ==, "This image format does not support checks");
    g_assert_true(g_error_matches(c.err, QBLK_ERROR, QBLK_ERROR_NOT_SUPPORTED));
    g_assert_cmpstr(qblk_error_class(c.err), ==, "GenericError");
    g_clear_error(&c.err);

    bdrv_unref(raw);
    bdrv_unref(qcow2);
    for (int i = 0; i < 2; i++) {
        g_autofree char *path = tmp_path(i ? "errors.qcow2" : "errors.raw");

        g_unlink(path);
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-test-control.XXXXXX");
    g_test_add_func("/control/sync-in-coroutine-aborts", test_sync_in_coroutine_aborts);
    g_test_add_func("/control/co-versions-in-coroutine", test_co_versions_in_coroutine);
    g_test_add_data_func("/control/no-nested-loop/raw", "raw", test_no_nested_loop);
    g_test_add_data_func("/control/no-nested-loop/qed", "qed", test_no_nested_loop);
    g_test_add_data_func("/control/no-nested-loop/qcow2", "qcow2", test_no_nested_loop);
    g_test_add_func("/control/co-drain-waits", test_co_drain_waits);
    g_test_add_func("/control/error-classes", test_error_classes);
    g_test_add_func("/control/missing-file-error", test_missing_file_error);
    g_test_add_func("/control/control-errors", test_control_errors);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
