/* The blkdebug filter: injected errors reach the caller as -errno (Nth
 * request, once or always, every event type), rule and config errors fail
 * the open, everything else passes through to the image (null-co counts
 * what arrives), and log=on records it in order. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "block/drivers/blkdebug.h"
#include "block/drivers/null.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define KiB 1024LL
#define MiB (1024LL * 1024)

static char *tmpdir;

static BlockDriverState *open_str(const char *optstr, int flags, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, NULL));
    return bdrv_open(NULL, opts, flags, NULL, errp);
}

/* blkdebug over a 1 MiB null-co image with the given extra options. */
static BlockDriverState *open_null(const char *extra)
{
    g_autofree char *optstr = g_strdup_printf(
        "driver=blkdebug,image.driver=null-co,image.size=1M%s%s",
        extra ? "," : "", extra ? extra : "");
    GError *err = NULL;
    BlockDriverState *bs = open_str(optstr, BDRV_O_RDWR | BDRV_O_UNMAP, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static char *open_error(const char *extra)
{
    g_autofree char *optstr = g_strdup_printf(
        "driver=blkdebug,image.driver=null-co,%s", extra);
    GError *err = NULL;
    char *msg;

    g_assert_null(open_str(optstr, BDRV_O_RDWR, &err));
    g_assert_nonnull(err);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

static int do_read(BlockDriverState *bs)
{
    char buf[512];

    return bdrv_pread(bs, 0, sizeof(buf), buf, 0);
}

static int do_write(BlockDriverState *bs)
{
    char buf[512] = { 0 };

    return bdrv_pwrite(bs, 0, sizeof(buf), buf, 0);
}

static void test_nth_once(void)
{
    BlockDriverState *bs = open_null("inject=read:3:5:once");

    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, -EIO);
    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, 0);
    /* Other events are not affected and do not count as reads. */
    g_assert_cmpint(do_write(bs), ==, 0);
    bdrv_unref(bs);
}

/* @OFFSET: only requests covering that byte count and fail (QEMU's
 * inject-error sector), once or always. */
static void test_at_offset(void)
{
    BlockDriverState *bs = open_null("inject=read:*:EIO:once:@70000;write:2:ENOSPC:@4096");
    char buf[8192] = { 0 };

    g_assert_cmpint(bdrv_pread(bs, 0, 4096, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 69632, 4096, buf, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pread(bs, 69632, 4096, buf, 0), ==, 0);
    /* The second write covering byte 4096 and every later one. */
    g_assert_cmpint(bdrv_pwrite(bs, 4096, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 8192, buf, 0), ==, -ENOSPC);
    g_assert_cmpint(bdrv_pwrite(bs, 4096, 1, buf, 0), ==, -ENOSPC);
    g_assert_cmpint(bdrv_pwrite(bs, 8192, 512, buf, 0), ==, 0);
    bdrv_unref(bs);
}

static void test_nth_always(void)
{
    BlockDriverState *bs = open_null("inject=read:2:EIO");

    g_assert_cmpint(do_read(bs), ==, 0);
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(do_read(bs), ==, -EIO);
    }
    bdrv_unref(bs);

    /* "*" is every request; "once" with it is the first only. */
    bs = open_null("inject=write:*:28;read:*:ENOMEM:once");
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(do_write(bs), ==, -ENOSPC);
    }
    g_assert_cmpint(do_read(bs), ==, -ENOMEM);
    g_assert_cmpint(do_read(bs), ==, 0);
    bdrv_unref(bs);
}

/* Several rules for one event: the first that matches decides. */
static void test_rule_order(void)
{
    BlockDriverState *bs = open_null("inject=read:2:5:once;read:2:28");

    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, -EIO);
    g_assert_cmpint(do_read(bs), ==, -ENOSPC);
    g_assert_cmpint(do_read(bs), ==, -ENOSPC);
    bdrv_unref(bs);
}

static void test_every_event(void)
{
    BlockDriverState *bs = open_null("inject=flush:1:5:once;zero:1:28:once;discard:1:30:once");
    BlockDriverState *image = bdrv_file_child(bs);
    const NullStats *st = null_co_stats(image);

    g_assert_nonnull(st);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 4096, 0), ==, -ENOSPC);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 4096, 0), ==, 0);
    g_assert_cmpint(bdrv_pdiscard(bs, 0, 4096), ==, -EROFS);
    g_assert_cmpint(bdrv_pdiscard(bs, 0, 4096), ==, 0);
    /* The failed requests never reached the image. */
    g_assert_cmpuint(st->flushes, ==, 1);
    g_assert_cmpuint(st->discards, ==, 1);
    g_assert_cmpuint(st->writes, ==, 1);      /* the zero fallback */
    g_assert_cmpuint(st->bytes_written, ==, 4096);
    bdrv_unref(bs);
}

/* An injected -ENOTSUP on a zero write is the driver saying "no native
 * zeroes": the core falls back, unless told not to. */
static void test_zero_enotsup(void)
{
    GError *err = NULL;
    BlockDriverState *bs = open_str("driver=blkdebug,image.driver=null-co,image.size=4M,"
                                    "inject=zero:*:ENOTSUP,image.zeroes=native",
                                    BDRV_O_RDWR, &err);
    const NullStats *st;

    g_assert_no_error(err);
    st = null_co_stats(bdrv_file_child(bs));

    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 3 * MiB, BDRV_REQ_NO_FALLBACK), ==, -ENOTSUP);
    g_assert_cmpuint(st->writes, ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 3 * MiB, 0), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 0);
    g_assert_cmpuint(st->writes, ==, 3);
    g_assert_cmpuint(st->bytes_written, ==, 3 * MiB);
    bdrv_unref(bs);
}

static void test_pass_through(void)
{
    BlockDriverState *bs = open_null("image.zeroes=native");
    const NullStats *st = null_co_stats(bdrv_file_child(bs));
    BlockDriverState *file = NULL;
    int64_t pnum = 0, map = -1;
    char buf[1000];
    int ret;

    g_assert_cmpstr(bdrv_format_name(bs), ==, "blkdebug");
    g_assert_cmpint(bdrv_getlength(bs), ==, MiB);
    g_assert_cmpint(bdrv_pread(bs, 10, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpuint(st->reads, ==, 1);
    g_assert_cmpuint(st->bytes_read, ==, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 10, sizeof(buf), buf, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpuint(st->writes, ==, 1);
    g_assert_cmpint(st->max_write_bytes, ==, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, BDRV_REQ_MAY_UNMAP), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 1);
    g_assert_cmpuint(st->bytes_zeroed, ==, MiB);
    g_assert_true(st->last_zero_flags & BDRV_REQ_MAY_UNMAP);

    /* Block status is the image's. */
    ret = bdrv_block_status(bs, 4096, MiB, &pnum, &map, &file);
    g_assert_cmpint(ret, >=, 0);
    g_assert_true(ret & BDRV_BLOCK_ZERO);
    g_assert_cmpint(pnum, ==, MiB - 4096);
    g_assert_cmpint(map, ==, 4096);
    g_assert_true(file == bdrv_file_child(bs));
    bdrv_unref(bs);
}

static void test_limits(void)
{
    BlockDriverState *bs = open_null("align=4096,max-transfer=64k,max-write-zero=8k");
    const NullStats *st = null_co_stats(bdrv_file_child(bs));
    g_autofree char *msg = NULL;
    char buf[100] = { 0 };

    g_assert_cmpint(bs->bl.request_alignment, ==, 4096);
    g_assert_cmpint(bs->bl.max_transfer, ==, 64 * KiB);
    g_assert_cmpint(bs->bl.max_pwrite_zeroes, ==, 8 * KiB);
    /* The core aligns for this node: the image sees whole blocks. */
    g_assert_cmpint(bdrv_pwrite(bs, 10, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpuint(st->reads, ==, 1);
    g_assert_cmpuint(st->bytes_read, ==, 4096);
    g_assert_cmpuint(st->bytes_written, ==, 4096);
    /* Longer requests reach the image in max-transfer pieces. */
    {
        g_autofree char *big = g_malloc0(200 * KiB);
        uint64_t before = st->writes;

        g_assert_cmpint(bdrv_pwrite(bs, 0, 200 * KiB, big, 0), ==, 0);
        g_assert_cmpuint(st->writes - before, ==, 4);
        g_assert_cmpint(st->max_write_bytes, ==, 64 * KiB);
    }
    bdrv_unref(bs);

    msg = open_error("align=3000");
    g_assert_cmpstr(msg, ==, "Cannot meet constraints with align 3000");
    g_free(msg);
    msg = open_error("align=4096,max-transfer=6000");
    g_assert_cmpstr(msg, ==, "Cannot meet constraints with max-transfer 6000");
}

static void test_bad_rules(void)
{
    static const struct {
        const char *opts;
        const char *want;
    } cases[] = {
        { "inject=read:x:5", "Invalid blkdebug rule 'read:x:5': 'x' is not a request number "
                             "(expected a positive integer or '*')" },
        { "inject=read:0:5", "Invalid blkdebug rule 'read:0:5': '0' is not a request number "
                             "(expected a positive integer or '*')" },
        { "inject=write:1:5;foo:1:5", "Invalid blkdebug rule 'foo:1:5': unknown event 'foo' "
                                      "(expected read, write, flush, zero, discard or "
                                      "truncate)" },
        { "inject=read:1", "Invalid blkdebug rule 'read:1': expected "
                           "EVENT:NTH:ERRNO[:once|always][:@OFFSET]" },
        { "inject=read:1:EBOGUS", "Invalid blkdebug rule 'read:1:EBOGUS': 'EBOGUS' is not "
                                  "an errno (expected 1-4095 or a name such as EIO)" },
        { "inject=read:1:0", "Invalid blkdebug rule 'read:1:0': '0' is not "
                             "an errno (expected 1-4095 or a name such as EIO)" },
        { "inject=read:1:5:@x", "Invalid blkdebug rule 'read:1:5:@x': '@x' is not a byte "
                                "offset" },
        { "inject=read:1:5:twice", "Invalid blkdebug rule 'read:1:5:twice': 'twice' must be "
                                   "'once' or 'always'" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *msg = open_error(cases[i].opts);

        g_assert_cmpstr(msg, ==, cases[i].want);
    }
}

static char *write_config(const char *name, const char *text)
{
    char *path = g_build_filename(tmpdir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static void test_config_file(void)
{
    g_autofree char *cfg = write_config("good.conf",
        "# fail the second read once, and every flush\n"
        "\n"
        "  read:2:EIO:once   # trailing comment\n"
        "flush:*:5\n");
    g_autofree char *bad = write_config("bad.conf", "# comment\nread:1:5\nwrite:1:nope\n");
    g_autofree char *optstr = g_strdup_printf("config=%s,inject=write:1:28", cfg);
    g_autofree char *want = g_strdup_printf("%s:3: Invalid blkdebug rule 'write:1:nope': "
                                            "'nope' is not an errno (expected 1-4095 or a "
                                            "name such as EIO)", bad);
    g_autofree char *missing = g_build_filename(tmpdir, "missing.conf", NULL);
    g_autofree char *msg = NULL;
    BlockDriverState *bs = open_null(optstr);

    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, -EIO);
    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);
    g_assert_cmpint(do_write(bs), ==, -ENOSPC);
    bdrv_unref(bs);

    g_free(optstr);
    optstr = g_strdup_printf("config=%s", bad);
    msg = open_error(optstr);
    g_assert_cmpstr(msg, ==, want);
    g_free(msg);

    g_free(optstr);
    optstr = g_strdup_printf("config=%s", missing);
    msg = open_error(optstr);
    g_assert_true(g_str_has_prefix(msg, "Could not read blkdebug config file"));
    g_assert_nonnull(strstr(msg, missing));
    g_unlink(cfg);
    g_unlink(bad);
}

/* log=on lists what reached the image, in order; failed requests did not. */
static void test_log(void)
{
    BlockDriverState *bs = open_null("log=on,inject=write:2:EIO:once");
    const GArray *log = blkdebug_log(bs);
    static const BlkdebugLogEntry want[] = {
        { 'w', 0, 512 }, { 'f', 0, 0 }, { 'r', 0, 512 }, { 'z', 0, 4096 }, { 'd', 0, 4096 },
    };

    g_assert_nonnull(log);
    g_assert_cmpint(do_write(bs), ==, 0);
    g_assert_cmpint(do_write(bs), ==, -EIO);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    g_assert_cmpint(do_read(bs), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 4096, 0), ==, 0);
    g_assert_cmpint(bdrv_pdiscard(bs, 0, 4096), ==, 0);
    g_assert_cmpuint(log->len, ==, G_N_ELEMENTS(want));
    for (guint i = 0; i < log->len; i++) {
        const BlkdebugLogEntry *e = &g_array_index(log, BlkdebugLogEntry, i);

        g_assert_cmpint(e->event, ==, want[i].event);
        g_assert_cmpint(e->offset, ==, want[i].offset);
        g_assert_cmpint(e->bytes, ==, want[i].bytes);
    }
    bdrv_unref(bs);

    /* Off by default, and never for other drivers. */
    bs = open_null(NULL);
    g_assert_null(blkdebug_log(bs));
    g_assert_null(blkdebug_log(bdrv_file_child(bs)));
    bdrv_unref(bs);
}

/* "blkdebug:CONFIG:IMAGE" over a real file: errors injected, data intact. */
static void test_filename_form(void)
{
    g_autofree char *cfg = write_config("fn.conf", "write:2:5\n");
    g_autofree char *img = g_build_filename(tmpdir, "fn.raw", NULL);
    g_autofree char *fname = g_strdup_printf("blkdebug:%s:%s", cfg, img);
    g_autofree char *contents = NULL;
    GError *err = NULL;
    BlockDriverState *bs;
    char buf[512];

    memset(buf, 0x5c, sizeof(buf));
    g_assert_true(g_file_set_contents(img, "", 0, NULL));
    g_assert_cmpint(truncate(img, 64 * KiB), ==, 0);
    bs = bdrv_open(fname, NULL, BDRV_O_RDWR, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(bs);
    g_assert_cmpint(bdrv_getlength(bs), ==, 64 * KiB);
    g_assert_cmpint(bdrv_pwrite(bs, 512, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 1024, sizeof(buf), buf, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pread(bs, 512, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x5c);
    bdrv_unref(bs);

    g_assert_true(g_file_get_contents(img, &contents, NULL, NULL));
    g_assert_cmpint(contents[512], ==, 0x5c);
    g_assert_cmpint(contents[1024], ==, 0);
    g_unlink(cfg);
    g_unlink(img);
}

/* truncate: the Nth resize fails with the errno and a message, the file
 * keeps its length; the others pass; the stats line counts them. */
static void test_truncate(void)
{
    g_autofree char *stats = g_build_filename(tmpdir, "tr.stats", NULL);
    g_autofree char *cfg = write_config("tr.conf", "truncate:2:ENOSPC:once\n");
    g_autofree char *img = g_build_filename(tmpdir, "tr.raw", NULL);
    g_autofree char *optstr = g_strdup_printf(
        "driver=blkdebug,config=%s,stats=%s,image.driver=file,image.filename=%s",
        cfg, stats, img);
    g_autofree char *line = NULL;
    GError *err = NULL;
    BlockDriverState *bs;

    g_assert_true(g_file_set_contents(img, "", 0, NULL));
    bs = open_str(optstr, BDRV_O_RDWR | BDRV_O_RESIZE, &err);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_truncate(bs, 64 * KiB, false, PREALLOC_MODE_OFF, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_truncate(bs, 128 * KiB, false, PREALLOC_MODE_OFF, &err), ==, -ENOSPC);
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "No space left on device"));
    g_clear_error(&err);
    g_assert_cmpint(bdrv_getlength(bs), ==, 64 * KiB);
    g_assert_cmpint(bdrv_truncate(bs, 32 * KiB, false, PREALLOC_MODE_OFF, &err), ==, 0);
    g_assert_cmpint(bdrv_getlength(bs), ==, 32 * KiB);
    bdrv_unref(bs);

    g_assert_true(g_file_get_contents(stats, &line, NULL, NULL));
    g_assert_cmpstr(line, ==, "read=0 write=0 flush=1 zero=0 discard=0 fired=1 fallback=0 "
                    "truncate=3 clean=0\n");
    g_unlink(stats);
    g_unlink(cfg);
    g_unlink(img);
}

/* stats: a failed flush with nothing written since the last flush that
 * passed counts as clean; one after a write (even a failed one) does not. */
static void test_stats_clean(void)
{
    g_autofree char *stats = g_build_filename(tmpdir, "cl.stats", NULL);
    g_autofree char *extra = g_strdup_printf("inject=flush:2:EIO:once;flush:4:EIO,stats=%s",
                                             stats);
    BlockDriverState *bs = open_null(extra);
    g_autofree char *line = NULL;

    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);      /* clean */
    g_assert_cmpint(do_write(bs), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    g_assert_cmpint(do_write(bs), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);      /* a write to flush */
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);      /* still: the last one failed */
    bdrv_unref(bs);                                 /* and the close's */
    g_assert_true(g_file_get_contents(stats, &line, NULL, NULL));
    g_assert_cmpstr(line, ==, "read=0 write=2 flush=6 zero=0 discard=0 fired=4 fallback=0 "
                    "truncate=0 clean=1\n");
    g_unlink(stats);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-blkdebug-XXXXXX");

    g_test_add_func("/blkdebug/nth-once", test_nth_once);
    g_test_add_func("/blkdebug/nth-always", test_nth_always);
    g_test_add_func("/blkdebug/at-offset", test_at_offset);
    g_test_add_func("/blkdebug/rule-order", test_rule_order);
    g_test_add_func("/blkdebug/every-event", test_every_event);
    g_test_add_func("/blkdebug/zero-enotsup", test_zero_enotsup);
    g_test_add_func("/blkdebug/pass-through", test_pass_through);
    g_test_add_func("/blkdebug/limits", test_limits);
    g_test_add_func("/blkdebug/bad-rules", test_bad_rules);
    g_test_add_func("/blkdebug/config-file", test_config_file);
    g_test_add_func("/blkdebug/filename-form", test_filename_form);
    g_test_add_func("/blkdebug/log", test_log);
    g_test_add_func("/blkdebug/truncate", test_truncate);
    g_test_add_func("/blkdebug/stats-clean", test_stats_clean);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
