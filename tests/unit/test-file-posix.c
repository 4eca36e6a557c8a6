/* The file protocol driver through the public block API: data path,
 * write-zeroes with and without unmap (checked in st_blocks), growth past
 * the end, block status runs, truncate, create options and O_DIRECT. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "util/io-engine.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define KiB 1024LL
#define MiB (1024LL * 1024)
#define GiB (1024LL * 1024 * 1024)

static char *tmpdir;

static char *tmp_path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

/* A file of `size` bytes holding `pattern` in each of the given
 * [start, end) pairs and holes elsewhere, synced so that SEEK_DATA and
 * st_blocks see the final layout. */
static char *make_file(const char *name, int64_t size, int pattern,
                       const int64_t *ranges, int nranges)
{
    char *path = tmp_path(name);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, size), ==, 0);
    for (int i = 0; i < nranges; i++) {
        int64_t len = ranges[2 * i + 1] - ranges[2 * i];
        g_autofree char *buf = g_malloc(len);

        memset(buf, pattern, len);
        g_assert_cmpint(pwrite(fd, buf, len, ranges[2 * i]), ==, len);
    }
    g_assert_cmpint(fsync(fd), ==, 0);
    close(fd);
    return path;
}

static int64_t allocated(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return (int64_t)st.st_blocks * 512;
}

static int64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

static BlockDriverState *open_file(const char *path, int flags, const char *extra,
                                   GError **errp)
{
    QblkOpts *opts = qblk_opts_new();

    qblk_opts_set(opts, "driver", "file");
    if (extra) {
        g_assert_true(qblk_opts_parse(opts, extra, NULL, NULL));
    }
    return bdrv_open(path, opts, flags, NULL, errp);
}

static BlockDriverState *open_ok(const char *path, int flags, const char *extra)
{
    GError *err = NULL;
    BlockDriverState *bs = open_file(path, flags, extra, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static void assert_bytes(BlockDriverState *bs, int64_t offset, int64_t len, int pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);

    g_assert_cmpint(bdrv_pread(bs, offset, len, buf, 0), ==, 0);
    for (int64_t i = 0; i < len; i++) {
        if (buf[i] != pattern) {
            g_error("byte %" G_GINT64_FORMAT " is 0x%02x, expected 0x%02x",
                    offset + i, buf[i], pattern);
        }
    }
}

/* Whether this filesystem can punch holes at all (else skip what needs it). */
static bool punch_supported(void)
{
    g_autofree char *path = tmp_path("punch-probe");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    bool ok;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 64 * KiB), ==, 0);
    ok = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 64 * KiB) == 0;
    close(fd);
    g_unlink(path);
    return ok;
}

static void test_open_errors(void)
{
    g_autofree char *missing = tmp_path("missing");
    g_autofree char *want = g_strdup_printf("Could not open '%s': %s", missing,
                                            g_strerror(ENOENT));
    g_autofree char *path = make_file("open.raw", 64 * KiB, 0, NULL, 0);
    GError *err = NULL;
    g_autofree char *dir_want = NULL;
    BlockDriverState *bs;

    g_assert_null(open_file(missing, 0, NULL, &err));
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);

    g_assert_null(open_file(tmpdir, 0, NULL, &err));
    dir_want = g_strdup_printf("'file' driver requires '%s' to be a regular file", tmpdir);
    g_assert_cmpstr(err->message, ==, dir_want);
    g_clear_error(&err);

    g_assert_null(open_file(path, 0, "aio=bogus", &err));
    g_assert_cmpstr(err->message, ==, "invalid parameter value: bogus");
    g_clear_error(&err);

    g_assert_null(open_file(path, 0, "aio=native", &err));
    g_assert_cmpstr(err->message, ==, "aio=native was specified, but it requires "
                    "cache.direct=on, which was not specified.");
    g_clear_error(&err);

    g_assert_null(open_file(path, 0, "locking=maybe", &err));
    g_assert_cmpstr(err->message, ==, "invalid parameter value: maybe");
    g_clear_error(&err);

    /* Accepted: locking values, and QEMU's "file:" prefix. */
    bs = open_ok(path, 0, "locking=off");
    g_assert_cmpint(bdrv_getlength(bs), ==, 64 * KiB);
    bdrv_unref(bs);
    {
        g_autofree char *prefixed = g_strdup_printf("file:%s", path);

        bs = open_ok(prefixed, 0, NULL);
        g_assert_cmpint(bdrv_getlength(bs), ==, 64 * KiB);
        bdrv_unref(bs);
    }
    g_unlink(path);
}

static void test_read_write(void)
{
    g_autofree char *path = make_file("rw.raw", MiB, 0, NULL, 0);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR, NULL);
    g_autofree uint8_t *buf = g_malloc(100 * KiB);
    char small[8];

    g_assert_cmpint(bs->bl.request_alignment, ==, 1);
    memset(buf, 0x5a, 100 * KiB);
    /* Unaligned: without O_DIRECT the file takes any byte range. */
    g_assert_cmpint(bdrv_pwrite(bs, 4097, 100 * KiB, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 3, "abc", BDRV_REQ_FUA), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    assert_bytes(bs, 4097, 100 * KiB, 0x5a);
    assert_bytes(bs, 3, 4094, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, 3, small, 0), ==, 0);
    g_assert_cmpmem(small, 3, "abc", 3);
    g_assert_cmpint(bdrv_getlength(bs), ==, MiB);
    g_assert_cmpint(bdrv_get_allocated_file_size(bs), ==, allocated(path));

    /* Read-only nodes refuse writes before they reach the driver. */
    bdrv_unref(bs);
    bs = open_ok(path, 0, NULL);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 3, "xyz", 0), ==, -EPERM);
    assert_bytes(bs, 4097, 100 * KiB, 0x5a);
    bdrv_unref(bs);
    g_unlink(path);
}

static void test_zero(void)
{
    const int64_t all[] = { 0, 2 * MiB };
    g_autofree char *path = make_file("zero.raw", 2 * MiB, 0xaa, all, 1);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR, NULL);
    int64_t before;

    g_assert_cmpint(bs->caps.zero, ==, BDRV_CAP_NATIVE);
    g_assert_cmpint(bs->bl.max_pwrite_zeroes, ==, 0);

    /* Without MAY_UNMAP the range stays allocated. */
    before = allocated(path);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, MiB, 0), ==, 0);
    assert_bytes(bs, 0, MiB, 0);
    assert_bytes(bs, MiB, MiB, 0xaa);
    g_assert_cmpint(allocated(path), >=, before);

    /* Unaligned edges too. */
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, MiB + 100, 1000, 0), ==, 0);
    assert_bytes(bs, MiB, 100, 0xaa);
    assert_bytes(bs, MiB + 100, 1000, 0);
    assert_bytes(bs, MiB + 1100, 1000, 0xaa);

    /* MAY_UNMAP on a node whose discard policy is ignore (a file node of
     * its own, opened without BDRV_O_UNMAP): the blocks stay. */
    before = allocated(path);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, MiB, MiB, BDRV_REQ_MAY_UNMAP), ==, 0);
    assert_bytes(bs, MiB, MiB, 0);
    g_assert_cmpint(allocated(path), >=, before);
    bdrv_unref(bs);
    bs = open_ok(path, BDRV_O_RDWR | BDRV_O_UNMAP, NULL);

    /* With MAY_UNMAP and discard=unmap the blocks are released. */
    before = allocated(path);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, MiB, MiB, BDRV_REQ_MAY_UNMAP), ==, 0);
    assert_bytes(bs, MiB, MiB, 0);
    g_assert_cmpint(file_size(path), ==, 2 * MiB);
    if (punch_supported()) {
        g_assert_cmpint(allocated(path), <=, before - MiB);
    } else {
        g_test_message("no PUNCH_HOLE here: st_blocks not checked");
    }
    bdrv_unref(bs);
    g_unlink(path);
}

/* A zero write past the end grows the file (a format's file child may
 * write there). */
static void test_zero_extends(void)
{
    const int64_t head[] = { 0, 64 * KiB };
    g_autofree char *path = make_file("grow.raw", 64 * KiB, 0x33, head, 1);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR | BDRV_O_UNMAP, NULL);
    int64_t before;

    bs->growable = true;
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 128 * KiB, 64 * KiB, 0), ==, 0);
    g_assert_cmpint(file_size(path), ==, 192 * KiB);
    g_assert_cmpint(bdrv_getlength(bs), ==, 192 * KiB);
    assert_bytes(bs, 0, 64 * KiB, 0x33);
    assert_bytes(bs, 64 * KiB, 128 * KiB, 0);

    /* Straddling the end, with unmap: still grows, and stays sparse. */
    before = allocated(path);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 160 * KiB, 4 * MiB, BDRV_REQ_MAY_UNMAP), ==, 0);
    g_assert_cmpint(file_size(path), ==, 160 * KiB + 4 * MiB);
    assert_bytes(bs, 0, 64 * KiB, 0x33);
    assert_bytes(bs, 64 * KiB, 96 * KiB + 4 * MiB, 0);
    if (punch_supported()) {
        g_assert_cmpint(allocated(path), <=, before);
    }
    bdrv_unref(bs);
    g_unlink(path);
}

/* 64 GiB of zeroes past the end with unmap: metadata only, the file stays
 * sparse, and it takes one call (no fallback may write 64 GiB). */
static void test_zero_huge(void)
{
    g_autofree char *path = make_file("huge.raw", 0, 0, NULL, 0);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR | BDRV_O_UNMAP, NULL);
    int ret;

    bs->growable = true;
    ret = bdrv_pwrite_zeroes(bs, 0, 64 * GiB, BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK);
    if (ret == -ENOTSUP) {
        g_test_skip("filesystem cannot punch holes or extend with fallocate");
    } else {
        g_assert_cmpint(ret, ==, 0);
        g_assert_cmpint(file_size(path), ==, 64 * GiB);
        g_assert_cmpint(allocated(path), <, MiB);
        assert_bytes(bs, 64 * GiB - 4096, 4096, 0);
    }
    bdrv_unref(bs);
    g_unlink(path);
}

static void test_discard(void)
{
    const int64_t all[] = { 0, 2 * MiB };
    g_autofree char *path = make_file("discard.raw", 2 * MiB, 0x44, all, 1);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR, "discard=unmap");
    int64_t before = allocated(path);

    g_assert_cmpint(bdrv_pdiscard(bs, 0, MiB), ==, 0);
    assert_bytes(bs, MiB, MiB, 0x44);
    if (punch_supported()) {
        g_assert_cmpint(allocated(path), <=, before - MiB);
        assert_bytes(bs, 0, MiB, 0);
    }
    g_assert_cmpint(file_size(path), ==, 2 * MiB);
    bdrv_unref(bs);
    g_unlink(path);
}

static void test_block_status(void)
{
    /* data [0, 64K), hole, data [1M, 1M+64K), hole to 2M + 100 */
    const int64_t data[] = { 0, 64 * KiB, MiB, MiB + 64 * KiB };
    const int64_t len = 2 * MiB + 100;
    g_autofree char *path = make_file("status.raw", len, 0x77, data, 2);
    BlockDriverState *bs = open_ok(path, 0, NULL);
    BlockDriverState *file = NULL;
    int64_t pnum, map;
    int ret;

    ret = bdrv_block_status(bs, 0, len, &pnum, &map, &file);
    g_assert_cmpint(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID), ==,
                    BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID);
    g_assert_cmpint(pnum, ==, 64 * KiB);
    g_assert_cmpint(map, ==, 0);
    g_assert_true(file == bs);

    ret = bdrv_block_status(bs, 64 * KiB, len, &pnum, &map, &file);
    if (!(ret & BDRV_BLOCK_ZERO)) {
        /* SEEK_DATA is generic on Linux, but a filesystem may report
         * everything as data. */
        g_test_skip("the filesystem reports holes as data");
        bdrv_unref(bs);
        g_unlink(path);
        return;
    }
    g_assert_cmpint(ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_EOF), ==, 0);
    g_assert_cmpint(pnum, ==, MiB - 64 * KiB);
    g_assert_cmpint(map, ==, 64 * KiB);

    /* Limited by the request, then the next runs. */
    ret = bdrv_block_status(bs, 100 * KiB, 4 * KiB, &pnum, NULL, NULL);
    g_assert_true(ret & BDRV_BLOCK_ZERO);
    g_assert_cmpint(pnum, ==, 4 * KiB);
    ret = bdrv_block_status(bs, MiB + 4 * KiB, len, &pnum, &map, NULL);
    g_assert_true(ret & BDRV_BLOCK_DATA);
    g_assert_cmpint(pnum, ==, 60 * KiB);
    g_assert_cmpint(map, ==, MiB + 4 * KiB);

    /* The trailing hole reaches the end (and not past it). */
    ret = bdrv_block_status(bs, MiB + 64 * KiB, 8 * MiB, &pnum, NULL, NULL);
    g_assert_true(ret & BDRV_BLOCK_ZERO);
    g_assert_true(ret & BDRV_BLOCK_EOF);
    g_assert_cmpint(pnum, ==, len - MiB - 64 * KiB);

    /* Allocation ignores holes: a protocol owns all its bytes. */
    g_assert_cmpint(bdrv_is_allocated(bs, 0, len, &pnum), ==, 1);
    g_assert_cmpint(pnum, ==, len);
    bdrv_unref(bs);
    g_unlink(path);
}

static void test_truncate(void)
{
    const int64_t head[] = { 0, MiB };
    g_autofree char *path = make_file("trunc.raw", MiB, 0x66, head, 1);
    BlockDriverState *bs = open_ok(path, BDRV_O_RDWR, NULL);
    GError *err = NULL;
    int64_t before;

    /* Growing without preallocation adds a hole. */
    before = allocated(path);
    g_assert_cmpint(bdrv_truncate(bs, 4 * MiB, true, PREALLOC_MODE_OFF, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_getlength(bs), ==, 4 * MiB);
    g_assert_cmpint(allocated(path), <=, before + 64 * KiB);
    assert_bytes(bs, MiB, 3 * MiB, 0);

    /* Shrinking a regular file cuts it, exact or not (as QEMU's driver). */
    g_assert_cmpint(bdrv_truncate(bs, 2 * MiB, false, PREALLOC_MODE_OFF, &err), ==, 0);
    g_assert_cmpint(bdrv_getlength(bs), ==, 2 * MiB);
    g_assert_cmpint(bdrv_truncate(bs, MiB / 2 + 1, true, PREALLOC_MODE_OFF, &err), ==, 0);
    g_assert_cmpint(file_size(path), ==, MiB / 2 + 1);
    assert_bytes(bs, 0, MiB / 2 + 1, 0x66);

    /* falloc and full allocate the new tail. */
    before = allocated(path);
    g_assert_cmpint(bdrv_truncate(bs, 4 * MiB, true, PREALLOC_MODE_FALLOC, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(allocated(path), >=, before + 3 * MiB);
    before = allocated(path);
    g_assert_cmpint(bdrv_truncate(bs, 8 * MiB, true, PREALLOC_MODE_FULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(file_size(path), ==, 8 * MiB);
    g_assert_cmpint(allocated(path), >=, before + 4 * MiB);
    assert_bytes(bs, MiB / 2 + 1, 8 * MiB - MiB / 2 - 1, 0);

    /* What raw files cannot do. */
    g_assert_cmpint(bdrv_truncate(bs, 9 * MiB, true, PREALLOC_MODE_METADATA, &err), ==,
                    -ENOTSUP);
    g_assert_cmpstr(err->message, ==, "Unsupported preallocation mode: metadata");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_truncate(bs, MiB, true, PREALLOC_MODE_FALLOC, &err), ==, -ENOTSUP);
    g_assert_cmpstr(err->message, ==, "Cannot use preallocation for shrinking files");
    g_clear_error(&err);
    g_assert_cmpint(file_size(path), ==, 8 * MiB);
    bdrv_unref(bs);
    g_unlink(path);
}

static int create_file(const char *path, const char *optstr, GError **errp)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, NULL));
    return bdrv_create("file", path, opts, errp);
}

static void test_create(void)
{
    static const char *const names[] = { "size", "nocow", "preallocation",
                                         "extent_size_hint" };
    g_autofree char *path = tmp_path("create.raw");
    g_autofree char *bad = g_build_filename(tmpdir, "nodir", "x.raw", NULL);
    g_autofree char *want = g_strdup_printf("Could not create '%s': %s", bad,
                                            g_strerror(ENOENT));
    const BlockDriver *drv = bdrv_find_format("file");
    GError *err = NULL;

    g_assert_nonnull(drv);
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_assert_cmpstr(drv->create_opts[i].name, ==, names[i]);
    }
    g_assert_null(drv->create_opts[G_N_ELEMENTS(names)].name);

    g_assert_cmpint(create_file(path, "size=1M", &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(file_size(path), ==, MiB);
    g_assert_cmpint(allocated(path), <, 64 * KiB);

    /* Over an existing file: replaced. */
    g_assert_cmpint(create_file(path, "size=3000,preallocation=full,nocow=on", &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(file_size(path), ==, 3072);   /* whole sectors, as QEMU */
    g_assert_cmpint(allocated(path), >=, 3000);

    g_assert_cmpint(create_file(path, "size=2M,preallocation=falloc,extent_size_hint=0",
                                &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(allocated(path), >=, 2 * MiB);

    g_assert_cmpint(create_file(path, "size=1M,preallocation=bogus", &err), <, 0);
    g_assert_cmpstr(err->message, ==, "invalid parameter value: bogus");
    g_clear_error(&err);
    g_assert_cmpint(create_file(path, "size=1M,preallocation=metadata", &err), ==, -ENOTSUP);
    g_assert_cmpstr(err->message, ==, "Unsupported preallocation mode: metadata");
    g_clear_error(&err);
    g_assert_cmpint(create_file(bad, "size=1M", &err), ==, -ENOENT);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);
    g_unlink(path);
}

static void test_o_direct(void)
{
    const int64_t all[] = { 0, MiB };
    g_autofree char *path = make_file("direct.raw", MiB, 0x99, all, 1);
    GError *err = NULL;
    BlockDriverState *bs = open_file(path, BDRV_O_RDWR | BDRV_O_NOCACHE, NULL, &err);
    uint8_t pat[100];

    if (!bs) {
        g_autofree char *reason = g_strdup_printf("O_DIRECT open failed: %s", err->message);

        g_assert_true(g_str_has_suffix(err->message, g_strerror(EINVAL)));
        g_clear_error(&err);
        g_test_skip(reason);
        g_unlink(path);
        return;
    }
    g_assert_cmpint(bs->bl.request_alignment, >=, 512);
    g_assert_cmpint(bs->bl.request_alignment, <=, 4096);
    g_assert_cmpint(bs->bl.request_alignment & (bs->bl.request_alignment - 1), ==, 0);
    g_assert_cmpint(bs->bl.min_mem_alignment, >=, 512);

    /* The core pads and bounces; the bytes around the request survive. */
    memset(pat, 0x12, sizeof(pat));
    g_assert_cmpint(bdrv_pwrite(bs, 7, sizeof(pat), pat, 0), ==, 0);
    assert_bytes(bs, 0, 7, 0x99);
    assert_bytes(bs, 7, sizeof(pat), 0x12);
    assert_bytes(bs, 107, 4096, 0x99);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 8192, 8192, 0), ==, 0);
    assert_bytes(bs, 8192, 8192, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    bdrv_unref(bs);

    /* aio=native is allowed with O_DIRECT. */
    bs = open_ok(path, BDRV_O_NOCACHE, "aio=native");
    assert_bytes(bs, 7, sizeof(pat), 0x12);
    bdrv_unref(bs);
    g_unlink(path);
}

/* tmpfs knows PUNCH_HOLE but not ZERO_RANGE: the driver answers -ENOTSUP
 * (and keeps answering it) and the core writes zero buffers instead. */
static void test_unsupported_memo(void)
{
    g_autofree char *shm_dir = g_strdup("/dev/shm/qblk-fp-XXXXXX");
    g_autofree char *path = NULL;
    BlockDriverState *bs;
    int fd;
    bool zero_range;

    if (!g_mkdtemp(shm_dir)) {
        g_test_skip("no /dev/shm to find a filesystem without ZERO_RANGE");
        return;
    }
    path = g_build_filename(shm_dir, "memo.raw", NULL);
    fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, "\xff\xff\xff\xff", 4, 64 * KiB - 4), ==, 4);
    zero_range = fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096) == 0;
    close(fd);
    if (zero_range) {
        g_test_skip("/dev/shm supports ZERO_RANGE: nothing to remember");
        goto out;
    }
    bs = open_ok(path, BDRV_O_RDWR | BDRV_O_UNMAP, NULL);
    for (int i = 0; i < 3; i++) {
        g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, 4096, BDRV_REQ_NO_FALLBACK), ==, -ENOTSUP);
    }
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 64 * KiB - 8, 6, 0), ==, 0);
    assert_bytes(bs, 64 * KiB - 8, 6, 0);
    assert_bytes(bs, 64 * KiB - 2, 2, 0xff);
    /* Unmapping still works natively there. */
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 60 * KiB, 4 * KiB,
                                       BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK), ==, 0);
    assert_bytes(bs, 60 * KiB, 4 * KiB, 0);
    bdrv_unref(bs);
out:
    g_unlink(path);
    g_rmdir(shm_dir);
}


/* aio= is per node: an io_uring node opened after a threads node (and the
 * other way round) gets its own engine, and both work side by side. */
static void test_aio_per_node(void)
{
    g_autofree char *path_u = NULL, *path_t = NULL;
    BlockDriverState *bs_t, *bs_u;
    char buf[4];

    if (!g_test_subprocess()) {
        /* A fresh process: no pool thread from the other tests. */
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }
    if (qblk_io_engine_init(QBLK_AIO_IO_URING) != QBLK_AIO_IO_URING) {
        g_test_skip("io_uring is not available here");
        return;
    }
    path_u = make_file("aio-u.raw", 64 * KiB, 0, NULL, 0);
    path_t = make_file("aio-t.raw", 64 * KiB, 0, NULL, 0);
    bs_t = open_ok(path_t, BDRV_O_RDWR, "aio=threads");
    bs_u = open_ok(path_u, BDRV_O_RDWR, "aio=io_uring");
    g_assert_cmpint(bdrv_pwrite(bs_u, 0, 4, "ring", 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs_u, 0, 4, buf, 0), ==, 0);
    g_assert_cmpmem(buf, 4, "ring", 4);
    g_assert_cmpint(unit_pool_threads(), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs_t, 0, 4, "pool", 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs_t, 0, 4, buf, 0), ==, 0);
    g_assert_cmpmem(buf, 4, "pool", 4);
    g_assert_cmpint(unit_pool_threads(), >=, 1);
    bdrv_unref(bs_t);
    bdrv_unref(bs_u);
    g_unlink(path_t);
    g_unlink(path_u);
}

/* A node that names no engine sends its big cached reads and writes to
 * the thread pool (io_uring would copy them in the loop thread), its small
 * ones to io_uring; a node naming io_uring keeps it for both. */
static void test_aio_big_cached(void)
{
    g_autofree char *path = NULL;
    g_autofree char *big = g_malloc0(QBLK_IO_OFFLOAD_MIN);
    BlockDriverState *bs;
    char buf[4];

    if (!g_test_subprocess()) {
        /* A fresh process: no pool thread from the other tests. */
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }
    g_unsetenv("QBLK_AIO");
    if (qblk_io_engine_init(QBLK_AIO_IO_URING) != QBLK_AIO_IO_URING) {
        g_test_skip("io_uring is not available here");
        return;
    }
    path = make_file("aio-big.raw", 4 * MiB, 0, NULL, 0);
    bs = open_ok(path, BDRV_O_RDWR, "aio=io_uring");
    g_assert_cmpint(bdrv_pwrite(bs, 0, QBLK_IO_OFFLOAD_MIN, big, 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, QBLK_IO_OFFLOAD_MIN, big, 0), ==, 0);
    g_assert_cmpint(unit_pool_threads(), ==, 0);
    bdrv_unref(bs);

    bs = open_ok(path, BDRV_O_RDWR, NULL);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 4, "ring", 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, 4, buf, 0), ==, 0);
    g_assert_cmpmem(buf, 4, "ring", 4);
    g_assert_cmpint(unit_pool_threads(), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 0, QBLK_IO_OFFLOAD_MIN, big, 0), ==, 0);
    g_assert_cmpmem(big, 4, "ring", 4);
    g_assert_cmpint(unit_pool_threads(), >=, 1);
    bdrv_unref(bs);
    g_unlink(path);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-fp-XXXXXX");

    g_test_add_func("/file-posix/open-errors", test_open_errors);
    g_test_add_func("/file-posix/read-write", test_read_write);
    g_test_add_func("/file-posix/zero", test_zero);
    g_test_add_func("/file-posix/zero-extends", test_zero_extends);
    g_test_add_func("/file-posix/zero-huge", test_zero_huge);
    g_test_add_func("/file-posix/discard", test_discard);
    g_test_add_func("/file-posix/block-status", test_block_status);
    g_test_add_func("/file-posix/truncate", test_truncate);
    g_test_add_func("/file-posix/create", test_create);
    g_test_add_func("/file-posix/o-direct", test_o_direct);
    g_test_add_func("/file-posix/unsupported-memo", test_unsupported_memo);
    g_test_add_func("/file-posix/aio-per-node", test_aio_per_node);
    g_test_add_func("/file-posix/aio-big-cached", test_aio_big_cached);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
