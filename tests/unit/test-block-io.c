/* Block core request paths: the write-zeroes dispatch and fallback
 * (chunking, constant memory, NO_FALLBACK), read-modify-write for
 * requests below a driver's alignment and its serialisation against
 * concurrent requests, and error propagation. The null
 * driver counts exactly which I/Os the core sent it. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block.h"
#include "block/drivers/null.h"
#include "util/coroutine.h"
#include "util/iov.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define GiB (1024LL * 1024 * 1024)
#define MiB (1024LL * 1024)

static long rss_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
    p = strstr(status, "VmRSS:");
    g_assert_nonnull(p);
    return strtol(p + 6, NULL, 10);
}

/* No native zeroing: 64 GiB become 1 MiB plain writes, in constant memory. */
static void test_zero_fallback_chunks(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=64G", BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bs);
    long before = rss_kib();

    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 64 * GiB, 0), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 0);
    g_assert_cmpuint(st->writes, ==, 64 * 1024);
    g_assert_cmpuint(st->bytes_written, ==, 64 * GiB);
    g_assert_cmpuint(st->max_write_bytes, ==, MiB);
    /* The zero buffer is shared; nothing grows with the request length. */
    g_assert_cmpint(rss_kib() - before, <, 16 * 1024);
    bdrv_unref(bs);
}

static void test_zero_no_fallback(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1G", BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bs);

    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, BDRV_REQ_NO_FALLBACK), ==, -ENOTSUP);
    g_assert_cmpuint(st->writes, ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 0);
    bdrv_unref(bs);
}

/* A native zero callback gets the whole request in one call. */
static void test_zero_native_one_call(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=64G,zeroes=native", BDRV_O_RDWR);
    const NullStats *st = null_co_stats(bs);

    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 64 * GiB, BDRV_REQ_NO_FALLBACK), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 1);
    g_assert_cmpuint(st->writes, ==, 0);
    /* Unaligned bytes are fine too at alignment 1. */
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 3, 5 * MiB + 7, 0), ==, 0);
    g_assert_cmpuint(st->zero_writes, ==, 2);
    bdrv_unref(bs);
}

static void test_out_of_range(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1M", BDRV_O_RDWR);
    char buf[16];

    g_assert_cmpint(bdrv_pread(bs, MiB - 8, 16, buf, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pwrite(bs, MiB, 1, buf, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, -1, 1, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB + 1, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pread(bs, MiB - 8, 8, buf, 0), ==, 0);
    bdrv_unref(bs);
}

static void test_read_only(void)
{
    BlockDriverState *bs = unit_open_opts("driver=null-co,size=1M", 0);
    char buf[16] = { 0 };

    g_assert_cmpint(bdrv_pwrite(bs, 0, 16, buf, 0), ==, -EPERM);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 16, 0), ==, -EPERM);
    g_assert_cmpint(bdrv_pdiscard(bs, 0, 16), ==, -EPERM);
    bdrv_unref(bs);
}

static char *make_file(const char *dir, size_t size, int pattern)
{
    char *path = g_build_filename(dir, "img.raw", NULL);
    g_autofree char *data = g_malloc(size);

    memset(data, pattern, size);
    g_assert_true(g_file_set_contents(path, data, size, NULL));
    return path;
}

/* A 64 KiB file of 0x11 in dir behind blkdebug with a 4 KiB alignment, so
 * every smaller request is a read-modify-write; *path gets the file. */
static BlockDriverState *open_aligned_file(const char *dir, char **path)
{
    g_autofree char *optstr = NULL;

    *path = make_file(dir, 64 * 1024, 0x11);
    optstr = g_strdup_printf(
        "driver=raw,file.driver=blkdebug,file.align=4096,file.image.filename=%s", *path);
    return unit_open_opts(optstr, BDRV_O_RDWR);
}

/* Requests below a 4 KiB alignment: the core reads the edge blocks and
 * writes whole blocks; the bytes around the request are preserved. */
static void test_rmw_alignment(void)
{
    g_autofree char *dir = g_dir_make_tmp("qblk-rmw-XXXXXX", NULL);
    g_autofree char *path = NULL;
    BlockDriverState *bs = open_aligned_file(dir, &path);
    g_autofree uint8_t *buf = g_malloc(64 * 1024);
    g_autofree char *contents = NULL;
    gsize len;
    uint8_t pat[300];

    memset(pat, 0x22, sizeof(pat));
    /* Inside one block, across a boundary, and a zero write across two. */
    g_assert_cmpint(bdrv_pwrite(bs, 100, 50, pat, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 4096 - 150, 300, pat, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 10000, 9000, 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, 64 * 1024, buf, 0), ==, 0);
    for (int i = 0; i < 64 * 1024; i++) {
        int want = 0x11;

        if ((i >= 100 && i < 150) || (i >= 4096 - 150 && i < 4096 + 150)) {
            want = 0x22;
        } else if (i >= 10000 && i < 19000) {
            want = 0;
        }
        if (buf[i] != want) {
            g_error("byte %d is 0x%02x, expected 0x%02x", i, buf[i], want);
        }
    }
    /* Unaligned reads see the same bytes. */
    g_assert_cmpint(bdrv_pread(bs, 4096 - 151, 302, buf, 0), ==, 0);
    g_assert_cmpint(buf[0], ==, 0x11);
    g_assert_cmpint(buf[1], ==, 0x22);
    g_assert_cmpint(buf[300], ==, 0x22);
    g_assert_cmpint(buf[301], ==, 0x11);
    bdrv_unref(bs);

    g_assert_true(g_file_get_contents(path, &contents, &len, NULL));
    g_assert_cmpuint(len, ==, 64 * 1024);
    g_assert_cmpint(contents[99], ==, 0x11);
    g_assert_cmpint(contents[100], ==, 0x22);
    g_assert_cmpint(contents[10000], ==, 0);
    g_unlink(path);
    g_rmdir(dir);
}

/* One request run in its own coroutine, so several can be in flight. */
typedef struct Req {
    BlockDriverState *bs;
    int64_t offset, bytes;
    int pattern;                /* -1: a zero write */
    int ret;
    int *finished;              /* incremented on completion */
    int order;                  /* the value *finished had then */
} Req;

static void coroutine_fn req_entry(void *opaque)
{
    Req *r = opaque;

    if (r->pattern < 0) {
        r->ret = bdrv_co_pwrite_zeroes(r->bs, r->offset, r->bytes, 0);
    } else {
        g_autofree uint8_t *buf = g_malloc(r->bytes);
        QIOVector qiov;

        memset(buf, r->pattern, r->bytes);
        qiov_init_buf(&qiov, buf, r->bytes);
        r->ret = bdrv_co_pwritev(r->bs, r->offset, r->bytes, &qiov, 0);
    }
    r->order = (*r->finished)++;
}

/* Reads [offset, offset+len) and fails at the first byte unlike want. */
static void assert_contents(BlockDriverState *bs, int64_t offset, const uint8_t *want,
                            int64_t len)
{
    g_autofree uint8_t *buf = g_malloc(len);

    g_assert_cmpint(bdrv_pread(bs, offset, len, buf, 0), ==, 0);
    for (int64_t i = 0; i < len; i++) {
        if (buf[i] != want[i]) {
            g_error("byte %" G_GINT64_FORMAT " is 0x%02x, expected 0x%02x", offset + i,
                    buf[i], want[i]);
        }
    }
}

/* Starts the requests in the order given, then waits for all of them. */
static void run_together(Req *reqs, int n)
{
    int finished = 0;

    for (int i = 0; i < n; i++) {
        reqs[i].finished = &finished;
        qco_enter(qco_create(req_entry, &reqs[i]));
    }
    while (finished < n) {
        qblk_loop_iterate(true);
    }
    for (int i = 0; i < n; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
    }
}

/* Unaligned zero writes are read-modify-write of whole blocks: they must
 * exclude every overlapping request, or one of the two updates of the
 * block is lost. The results below are the only ones serialisation allows. */
static void test_zero_serialising(void)
{
    g_autofree char *dir = g_dir_make_tmp("qblk-ser-XXXXXX", NULL);
    g_autofree char *path = NULL;
    BlockDriverState *bs = open_aligned_file(dir, &path);
    uint8_t want[4096];
    Req zero_then_write[2] = {
        { bs, 100, 100, -1 },
        { bs, 0, 4096, 0x22 },
    };
    Req two_zeroes[2] = {
        { bs, 8192 + 100, 100, -1 },
        { bs, 8192 + 300, 100, -1 },
    };

    /* The aligned write waits for the zero write that came first. */
    run_together(zero_then_write, 2);
    g_assert_cmpint(zero_then_write[0].order, ==, 0);
    memset(want, 0x22, sizeof(want));
    assert_contents(bs, 0, want, sizeof(want));

    /* Two zero writes into one block: both ranges end up zero. */
    run_together(two_zeroes, 2);
    memset(want, 0x11, sizeof(want));
    memset(want + 100, 0, 100);
    memset(want + 300, 0, 100);
    assert_contents(bs, 8192, want, sizeof(want));
    bdrv_unref(bs);
    g_unlink(path);
    g_rmdir(dir);
}

/* The Nth request failing in the driver reaches the caller as -errno. */
static void test_error_propagation(void)
{
    g_autofree char *dir = g_dir_make_tmp("qblk-err-XXXXXX", NULL);
    g_autofree char *path = make_file(dir, 64 * 1024, 0);
    g_autofree char *optstr = g_strdup_printf(
        "driver=raw,file.driver=blkdebug,file.inject=read:2:5:once;write:*:28;flush:1:22,"
        "file.image.filename=%s", path);
    BlockDriverState *bs = unit_open_opts(optstr, BDRV_O_RDWR);
    char buf[512] = { 0 };

    g_assert_cmpint(bdrv_pread(bs, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, 512, buf, 0), ==, -EIO);
    g_assert_cmpint(bdrv_pread(bs, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0), ==, -ENOSPC);
    /* "*" fails every write, not just the first. */
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0), ==, -ENOSPC);
    g_assert_cmpint(bdrv_flush(bs), ==, -EINVAL);
    bdrv_unref(bs);
    g_unlink(path);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    g_test_add_func("/block-io/zero/fallback-chunks", test_zero_fallback_chunks);
    g_test_add_func("/block-io/zero/no-fallback", test_zero_no_fallback);
    g_test_add_func("/block-io/zero/native-one-call", test_zero_native_one_call);
    g_test_add_func("/block-io/range", test_out_of_range);
    g_test_add_func("/block-io/read-only", test_read_only);
    g_test_add_func("/block-io/rmw-alignment", test_rmw_alignment);
    g_test_add_func("/block-io/zero/serialising", test_zero_serialising);
    g_test_add_func("/block-io/error-propagation", test_error_propagation);
    return g_test_run();
}
