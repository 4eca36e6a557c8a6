/* Node capabilities and the request preamble: what each driver's node
 * reports, that the block core dispatches by it (the null driver counts
 * what reaches it), the copy-on-read user count, and that the preamble
 * refuses every request type with the same errno. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "block/drivers/null.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define KiB 1024LL
#define MiB (1024 * KiB)

static char *tmpdir;

static BlockDriverState *open_image(const char *fmt, const char *path, int flags)
{
    g_autofree char *optstr = !strcmp(fmt, "file")
        ? g_strdup_printf("driver=file,filename=%s", path)
        : g_strdup_printf("driver=%s,file.filename=%s", fmt, path);

    return unit_open_opts(optstr, flags);
}

/* The capabilities expected of one node, in the order of the struct. */
typedef struct {
    BdrvCapability zero;
    bool fast_zero;
    BdrvCapability fua, discard, block_status;
    BdrvMultiWriter multi_writer;
    bool copy_on_read;
} Want;

static void assert_caps(BlockDriverState *bs, Want w)
{
    BlockCapabilities c;

    bdrv_get_capabilities(bs, &c);
    g_assert_cmpint(c.zero, ==, w.zero);
    g_assert_cmpint(c.fast_zero, ==, w.fast_zero);
    g_assert_cmpint(c.fua, ==, w.fua);
    g_assert_cmpint(c.discard, ==, w.discard);
    g_assert_cmpint(c.block_status, ==, w.block_status);
    g_assert_cmpint(c.multi_writer, ==, w.multi_writer);
    g_assert_cmpint(c.copy_on_read, ==, w.copy_on_read);
}

#define N BDRV_CAP_NONE
#define E BDRV_CAP_EMULATE
#define Y BDRV_CAP_NATIVE
#define RW_UNMAP (BDRV_O_RDWR | BDRV_O_UNMAP)

static void test_file_and_raw(void)
{
    g_autofree char *path = unit_create(tmpdir, "raw", "plain.raw", "size=1M");
    g_autofree char *raw_opts = g_strdup_printf("driver=raw,file.filename=%s", path);
    BlockDriverState *bs = open_image("file", path, RW_UNMAP);

    /* fallocate zeroes take NO_FALLBACK; FUA is a flush after the write. */
    assert_caps(bs, (Want) { Y, true, E, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);
    /* Discard reaches the driver only with discard=unmap. */
    bs = open_image("file", path, BDRV_O_RDWR);
    assert_caps(bs, (Want) { Y, true, E, N, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);

    /* raw hands FUA down to its file, and is as safe for many writers. */
    bs = unit_open_opts(raw_opts, RW_UNMAP);
    assert_caps(bs, (Want) { Y, true, Y, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    assert_caps(bdrv_file_child(bs), (Want) { Y, true, E, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);
    g_unlink(path);
}

/* qcow2 implements discard (the old cap_discard said NONE), caches its
 * metadata in this process, and honours NO_FALLBACK (its zero writes never
 * write data: -ENOTSUP instead), so zeroing is fast. v2 and v3 report the
 * same: v2 declines zero writes request by request (under a backing
 * file), which NATIVE allows. */
static void test_qcow2(void)
{
    const char *compat[] = { "compat=0.10", "compat=1.1" };

    for (int i = 0; i < 2; i++) {
        g_autofree char *base = unit_create(tmpdir, "raw", "q-base.raw", "size=1M");
        g_autofree char *opts = g_strdup_printf("size=1M,%s,backing_file=%s,backing_fmt=raw",
                                                compat[i], base);
        g_autofree char *path = unit_create(tmpdir, "qcow2", "caps.qcow2", opts);
        BlockDriverState *bs = open_image("qcow2", path, RW_UNMAP);
        Want w = { Y, true, E, Y, Y, BDRV_MULTI_WRITER_PROCESS, true };

        assert_caps(bs, w);
        /* v2 under a backing file declines; v3 writes zero clusters. */
        g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 64 * KiB, BDRV_REQ_NO_FALLBACK), ==,
                        i == 0 ? -ENOTSUP : 0);
        g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 64 * KiB, 0), ==, 0);
        bdrv_unref(bs);
        bs = open_image("qcow2", path, BDRV_O_RDWR);
        w.discard = N;
        assert_caps(bs, w);
        bdrv_unref(bs);
        g_unlink(path);
        g_unlink(base);
    }
}

static void test_qed(void)
{
    g_autofree char *path = unit_create(tmpdir, "qed", "caps.qed", "size=1M");
    BlockDriverState *bs = open_image("qed", path, RW_UNMAP);

    /* QED has no discard; its zero writes are zero clusters or the file's
     * own cheap zeroing, NO_FALLBACK passed down, so zeroing is fast. */
    assert_caps(bs, (Want) { Y, true, E, N, Y, BDRV_MULTI_WRITER_PROCESS, true });
    bdrv_unref(bs);
    g_unlink(path);
}

static void test_null_and_blkdebug(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1M", RW_UNMAP);

    /* zeroes=none declares that its zero callback refuses everything. */
    assert_caps(bs, (Want) { E, true, E, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);
    bs = unit_open_opts("driver=null-co,size=1M,zeroes=native", RW_UNMAP);
    assert_caps(bs, (Want) { Y, true, E, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);

    /* blkdebug sees every request (it injects faults), whatever its image does. */
    bs = unit_open_opts("driver=blkdebug,image.driver=null-co,image.size=1M", RW_UNMAP);
    assert_caps(bs, (Want) { Y, true, Y, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    assert_caps(bdrv_file_child(bs), (Want) { E, true, E, Y, Y, BDRV_MULTI_WRITER_HOST, false });
    bdrv_unref(bs);
}

/* EMULATE zeroes: the driver's zero callback is never called, with or
 * without NO_FALLBACK; the core writes zero buffers or refuses at once. */
static void test_core_zero_by_caps(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=4M", BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bs);

    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 4 * MiB, BDRV_REQ_MAY_UNMAP), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, BDRV_REQ_NO_FALLBACK), ==, -ENOTSUP);
    g_assert_cmpuint(st->zero_refused, ==, 0);
    g_assert_cmpuint(st->last_zero_flags, ==, 0);
    g_assert_cmpuint(st->writes, ==, 4);
    bdrv_unref(bs);

    /* The capability, not the callback, decides: a native node told
     * EMULATE is not asked either. */
    bs = unit_open_opts("driver=null-co,size=4M,zeroes=native", BDRV_O_RDWR);
    st = null_co_stats(bs);
    bs->caps.zero = BDRV_CAP_EMULATE;
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, 0), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 0);
    g_assert_cmpuint(st->writes, ==, 1);
    bs->caps.zero = BDRV_CAP_NATIVE;
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, 0), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 1);
    bdrv_unref(bs);
}

/* FUA: emulated by one flush where the capability says so, and only
 * there (raw hands it down; the null node below flushes once). */
static void test_core_fua_by_caps(void)
{
    BlockDriverState *bs = unit_open_opts("driver=raw,file.driver=null-co,file.size=1M",
                                          BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bdrv_file_child(bs));
    char buf[512] = { 0 };

    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, BDRV_REQ_FUA), ==, 0);
    g_assert_cmpuint(st->flushes, ==, 1);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0), ==, 0);
    g_assert_cmpuint(st->flushes, ==, 1);
    bdrv_unref(bs);
}

/* Discard reaches the driver only where the capability is native; block
 * status EMULATE answers "all data" without asking the driver. */
static void test_core_discard_status_by_caps(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1M", BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bs);
    int64_t pnum, map;
    BlockDriverState *file;

    g_assert_cmpint(bdrv_pdiscard(bs, 0, 64 * KiB), ==, 0);
    g_assert_cmpuint(st->discards, ==, 0);
    bdrv_unref(bs);

    bs = unit_open_opts("driver=null-co,size=1M", RW_UNMAP);
    st = null_co_stats(bs);
    g_assert_cmpint(bdrv_pdiscard(bs, 0, 64 * KiB), ==, 0);
    g_assert_cmpuint(st->discards, ==, 1);

    /* null-co says "zero" natively; the emulation says "data". */
    g_assert_cmpint(bdrv_block_status(bs, 0, MiB, &pnum, &map, &file), ==,
                    BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED |
                    BDRV_BLOCK_EOF);
    bs->caps.block_status = BDRV_CAP_EMULATE;
    g_assert_cmpint(bdrv_block_status(bs, 0, MiB, &pnum, &map, &file), ==,
                    BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED |
                    BDRV_BLOCK_EOF);
    g_assert_cmpint(pnum, ==, MiB);
    bdrv_unref(bs);
}

/* A qcow2 image over a raw base full of data; whether reading [off,
 * off+64k) copied it up into the top image. */
static bool read_copies_up(BlockDriverState *bs, int64_t off)
{
    g_autofree char *buf = g_malloc(64 * KiB);
    int64_t pnum;

    g_assert_cmpint(bdrv_is_allocated(bs, off, 64 * KiB, &pnum), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, off, 64 * KiB, buf, 0), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x5a);
    return bdrv_is_allocated(bs, off, 64 * KiB, &pnum) == 1;
}

/* Two users enable copy-on-read, one disables it: it stays on. */
static void test_cor_counted(void)
{
    g_autofree char *base = unit_create(tmpdir, "raw", "cor-base.raw", "size=1M");
    g_autofree char *opts = g_strdup_printf("size=1M,backing_file=%s,backing_fmt=raw", base);
    g_autofree char *path = unit_create(tmpdir, "qcow2", "cor.qcow2", opts);
    g_autofree char *data = g_malloc(MiB);
    BlockDriverState *bs = open_image("raw", base, BDRV_O_RDWR);

    memset(data, 0x5a, MiB);
    g_assert_cmpint(bdrv_pwrite(bs, 0, MiB, data, 0), ==, 0);
    bdrv_unref(bs);

    bs = open_image("qcow2", path, BDRV_O_RDWR);
    g_assert_false(read_copies_up(bs, 0));
    bdrv_enable_copy_on_read(bs);
    bdrv_enable_copy_on_read(bs);
    bdrv_disable_copy_on_read(bs);
    g_assert_true(read_copies_up(bs, 64 * KiB));
    bdrv_disable_copy_on_read(bs);
    g_assert_false(read_copies_up(bs, 128 * KiB));
    bdrv_unref(bs);

    /* Opening with copy-on-read is one user: a job's enable and disable
     * leave it on; the opener's own disable turns it off. */
    bs = open_image("qcow2", path, BDRV_O_RDWR | BDRV_O_COPY_ON_READ);
    bdrv_enable_copy_on_read(bs);
    bdrv_disable_copy_on_read(bs);
    g_assert_true(read_copies_up(bs, 192 * KiB));
    bdrv_disable_copy_on_read(bs);
    g_assert_false(read_copies_up(bs, 256 * KiB));
    bdrv_unref(bs);
    g_unlink(path);
    g_unlink(base);
}

/* Every request type, run synchronously; returns its result. */
typedef enum { R_READ, R_WRITE, R_ZERO, R_DISCARD, R_FLUSH, R_STATUS, R_TRUNCATE, R_MAX } R;
static const char *const r_name[] = { "read", "write", "zero", "discard", "flush",
                                      "block-status", "truncate" };

static int run(BlockDriverState *bs, R type, int64_t off, int64_t bytes, char **msg)
{
    g_autofree char *buf = g_malloc0(bytes > 0 ? bytes : 1);
    GError *err = NULL;
    int64_t pnum;
    int ret = -1;

    switch (type) {
    case R_READ: ret = bdrv_pread(bs, off, bytes, buf, 0); break;
    case R_WRITE: ret = bdrv_pwrite(bs, off, bytes, buf, 0); break;
    case R_ZERO: ret = bdrv_pwrite_zeroes(bs, off, bytes, 0); break;
    case R_DISCARD: ret = bdrv_pdiscard(bs, off, bytes); break;
    case R_FLUSH: ret = bdrv_flush(bs); break;
    case R_STATUS: ret = bdrv_block_status(bs, off, bytes, &pnum, NULL, NULL); break;
    case R_TRUNCATE:
        ret = bdrv_truncate(bs, off + bytes, false, PREALLOC_MODE_OFF, &err);
        g_assert_true((ret < 0) == (err != NULL));
        if (msg) {
            *msg = err ? g_strdup(err->message) : NULL;
        }
        g_clear_error(&err);
        break;
    default: g_assert_not_reached();
    }
    return ret;
}

static void assert_refused(BlockDriverState *bs, R type, int64_t off, int64_t bytes,
                           int want, const char *want_msg)
{
    g_autofree char *msg = NULL;
    int ret = run(bs, type, off, bytes, &msg);

    if (ret != want) {
        g_error("%s: got %d, want %d", r_name[type], ret, want);
    }
    if (want_msg) {
        g_assert_cmpstr(msg, ==, want_msg);
    }
}

/* The preamble's refusals: one errno per cause for every request type it
 * applies to, before anything reaches the driver. */
static void test_preamble_refusals(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1M,zeroes=native",
                                          BDRV_O_UNMAP);
    const NullStats *st = null_co_stats(bs);
    const BlockDriver *drv;

    /* Read-only: every type that modifies the node. */
    for (R t = R_WRITE; t <= R_DISCARD; t++) {
        assert_refused(bs, t, 0, 4096, -EPERM, NULL);
    }
    assert_refused(bs, R_TRUNCATE, 0, 4096, -EPERM, "Block node is read-only");
    bdrv_unref(bs);

    /* Out of range: every type with a range, negative or past the end. */
    bs = unit_open_opts("driver=null-co,size=1M,zeroes=native", RW_UNMAP);
    st = null_co_stats(bs);
    for (R t = R_READ; t <= R_DISCARD; t++) {
        assert_refused(bs, t, MiB - 512, 1024, -EIO, NULL);
        assert_refused(bs, t, -512, 512, -EIO, NULL);
    }

    /* No medium: every type, flush and block status included. */
    drv = bs->drv;
    bs->drv = NULL;
    for (R t = R_READ; t < R_MAX; t++) {
        assert_refused(bs, t, 0, 4096, -ENOMEDIUM,
                       t == R_TRUNCATE ? "No medium inserted" : NULL);
    }
    bs->drv = drv;
    g_assert_cmpuint(st->reads + st->writes + st->zero_writes + st->discards + st->flushes,
                     ==, 0);
    /* The same node, accepted: the refusals above were the preamble's
     * (null-co cannot resize: truncate would fail past the preamble). */
    for (R t = R_READ; t < R_TRUNCATE; t++) {
        g_assert_cmpint(run(bs, t, 0, 4096, NULL), >=, 0);
    }
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-caps-XXXXXX");
    g_test_add_func("/caps/file-raw", test_file_and_raw);
    g_test_add_func("/caps/qcow2", test_qcow2);
    g_test_add_func("/caps/qed", test_qed);
    g_test_add_func("/caps/null-blkdebug", test_null_and_blkdebug);
    g_test_add_func("/caps/core/zero", test_core_zero_by_caps);
    g_test_add_func("/caps/core/fua", test_core_fua_by_caps);
    g_test_add_func("/caps/core/discard-status", test_core_discard_status_by_caps);
    g_test_add_func("/caps/cor-counted", test_cor_counted);
    g_test_add_func("/caps/preamble-refusals", test_preamble_refusals);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
