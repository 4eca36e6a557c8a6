/* The commit operation driven as a job would drive it: from a coroutine,
 * with a progress callback and a cancellation flag. A cancelled commit
 * leaves in the base exactly the chunks it reported done. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block.h"

#define KiB 1024LL
#define LEN (1024 * KiB)
#define CHUNK (256 * KiB)

typedef struct Fixture {
    char *dir, *base, *top;
} Fixture;

static void create(const char *fmt, const char *file, const char *optstr)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    GError *err = NULL;

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, &err));
    g_assert_cmpint(bdrv_create(fmt, file, opts, &err), ==, 0);
    g_assert_no_error(err);
}

static BlockDriverState *open_file(const char *file, int flags)
{
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(file, NULL, flags, NULL, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

/* A raw base of zeroes and a qcow2 top whose every chunk holds data
 * (byte i of chunk k is k + 1), so each chunk copied shows in the base. */
static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *opts = NULL;
    BlockDriverState *top;
    uint8_t buf[CHUNK];

    f->dir = g_dir_make_tmp("qblk-commit-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->base = g_build_filename(f->dir, "base.raw", NULL);
    f->top = g_build_filename(f->dir, "top.qcow2", NULL);
    create("raw", f->base, "size=1M");
    opts = g_strdup_printf("size=1M,backing_file=%s,backing_fmt=raw", f->base);
    create("qcow2", f->top, opts);
    top = open_file(f->top, BDRV_O_RDWR);
    for (int k = 0; k < LEN / CHUNK; k++) {
        memset(buf, k + 1, sizeof(buf));
        g_assert_cmpint(bdrv_pwrite(top, k * CHUNK, CHUNK, buf, 0), ==, 0);
    }
    bdrv_unref(top);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_unlink(f->top);
    g_unlink(f->base);
    g_rmdir(f->dir);
    g_free(f->top);
    g_free(f->base);
    g_free(f->dir);
}

typedef struct Run {
    BlockDriverState *top;
    BdrvCommitOptions opts;
    bool cancel;
    bool cancel_after_first;
    GArray *done;              /* int64_t per progress call */
    int64_t total;
    GError *err;
    int ret;
} Run;

static void progress(void *opaque, int64_t done, int64_t total)
{
    Run *r = opaque;

    g_assert_true(qco_in_coroutine());
    g_array_append_val(r->done, done);
    r->total = total;
    if (r->cancel_after_first && done > 0) {
        r->cancel = true;
    }
}

static void coroutine_fn commit_entry(void *opaque)
{
    Run *r = opaque;

    r->ret = bdrv_co_commit(r->top, bdrv_backing(r->top), &r->opts, &r->err);
}

static void run_commit(Fixture *f, Run *r)
{
    r->top = open_file(f->top, BDRV_O_RDWR);
    r->done = g_array_new(FALSE, FALSE, sizeof(int64_t));
    r->opts = (BdrvCommitOptions) { .progress = progress, .opaque = r, .cancel = &r->cancel,
                                    .chunk_size = CHUNK };
    bdrv_run_co(commit_entry, r);
    bdrv_unref(r->top);
}

/* The base's bytes: chunk k holds k + 1 below `copied`, zeroes above. */
static void assert_base(Fixture *f, int64_t copied)
{
    BlockDriverState *base = open_file(f->base, 0);
    g_autofree uint8_t *buf = g_malloc(LEN);

    g_assert_cmpint(bdrv_pread(base, 0, LEN, buf, 0), ==, 0);
    for (int64_t i = 0; i < LEN; i++) {
        uint8_t want = i < copied ? (uint8_t)(i / CHUNK + 1) : 0;

        if (buf[i] != want) {
            g_error("base byte %" G_GINT64_FORMAT " is %u, expected %u", i, buf[i], want);
        }
    }
    bdrv_unref(base);
}

static void test_commit_whole(Fixture *f, gconstpointer data)
{
    Run r = { 0 };

    run_commit(f, &r);
    g_assert_no_error(r.err);
    g_assert_cmpint(r.ret, ==, 0);
    g_assert_cmpint(r.total, ==, LEN);
    /* The start, then one call per chunk, ending at the total. */
    g_assert_cmpuint(r.done->len, ==, 1 + LEN / CHUNK);
    for (guint i = 0; i < r.done->len; i++) {
        g_assert_cmpint(g_array_index(r.done, int64_t, i), ==, (int64_t)i * CHUNK);
    }
    assert_base(f, LEN);
    g_array_free(r.done, TRUE);
}

static void test_commit_cancel(Fixture *f, gconstpointer data)
{
    Run r = { .cancel_after_first = true };
    int64_t reported;

    run_commit(f, &r);
    g_assert_nonnull(r.err);
    g_assert_cmpint(r.ret, ==, -ECANCELED);
    /* The start and the first chunk; nothing after the cancellation. */
    g_assert_cmpuint(r.done->len, ==, 2);
    reported = g_array_index(r.done, int64_t, r.done->len - 1);
    g_assert_cmpint(reported, ==, CHUNK);
    assert_base(f, reported);
    g_clear_error(&r.err);
    g_array_free(r.done, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/commit/whole", Fixture, NULL, fixture_setup, test_commit_whole,
               fixture_teardown);
    g_test_add("/commit/cancel-after-first-chunk", Fixture, NULL, fixture_setup,
               test_commit_cancel, fixture_teardown);
    return g_test_run();
}
