/* Crash consistency of the format drivers: the order in which data, flushes
 * and metadata reach the image file, seen through blkdebug's request log
 * (log=on) and its injected flush failures. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "block/drivers/blkdebug.h"
#include "block/drivers/qed.h"
#include "qblk/block.h"
#include "util/bswap.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define KiB 1024LL
#define CLUSTER (64 * KiB)

static char *tmpdir;

/* A 1 MiB QED image over a raw one; *base gets the raw image's path. */
static char *create_qed_over_raw(const char *name, char **base)
{
    g_autofree char *base_name = g_strconcat(name, ".base", NULL);
    g_autofree char *opts = NULL;

    *base = unit_create(tmpdir, "raw", base_name, "size=1M");
    opts = g_strdup_printf("size=1M,backing_file=%s,backing_fmt=raw", *base);
    return unit_create(tmpdir, "qed", name, opts);
}

/* The image through a logging blkdebug node; extra options follow. */
static BlockDriverState *open_logged(const char *fmt, const char *path, const char *extra)
{
    g_autofree char *optstr = g_strdup_printf(
        "driver=%s,file.driver=blkdebug,file.log=on,file.image.filename=%s%s%s", fmt, path,
        extra ? "," : "", extra ? extra : "");

    return unit_open_opts(optstr, BDRV_O_RDWR);
}

static BlockDriverState *open_plain(const char *fmt, const char *path)
{
    g_autofree char *optstr = g_strdup_printf("driver=%s,file.filename=%s", fmt, path);

    return unit_open_opts(optstr, BDRV_O_RDWR);
}

static const GArray *log_of(BlockDriverState *bs)
{
    const GArray *log = blkdebug_log(bdrv_file_child(bs));

    g_assert_nonnull(log);
    return log;
}

static const BlkdebugLogEntry *entry(const GArray *log, guint i)
{
    return &g_array_index(log, BlkdebugLogEntry, i);
}

/* Index of the first entry from `from` on of event ev covering offset (any
 * offset if negative), or -1. */
static int find(const GArray *log, guint from, char ev, int64_t offset)
{
    for (guint i = from; i < log->len; i++) {
        const BlkdebugLogEntry *e = entry(log, i);

        if (e->event == ev &&
            (offset < 0 || (offset >= e->offset && offset < e->offset + e->bytes))) {
            return (int)i;
        }
    }
    return -1;
}

static int find_last(const GArray *log, char ev, int64_t offset)
{
    int last = -1;

    for (int i = find(log, 0, ev, offset); i >= 0; i = find(log, i + 1, ev, offset)) {
        last = i;
    }
    return last;
}

/* Fails unless a flush lies strictly between entries `before` and `after`. */
static void assert_flush_between(const GArray *log, int before, int after)
{
    int f = find(log, before + 1, 'f', -1);

    g_assert_cmpint(before, >=, 0);
    g_assert_cmpint(after, >, before);
    if (f < 0 || f > after) {
        GString *s = g_string_new("");

        for (guint i = 0; i < log->len; i++) {
            g_string_append_printf(s, " %c@%" G_GINT64_FORMAT "+%" G_GINT64_FORMAT,
                                   entry(log, i)->event, entry(log, i)->offset,
                                   entry(log, i)->bytes);
        }
        g_error("no flush between request %d and request %d:%s", before, after, s->str);
    }
}

/* The request at index `data` (a data write) reaches the disk before any
 * later write: a flush comes first. */
static void assert_flushed_before_next_write(const GArray *log, int data)
{
    g_assert_cmpint(data, >=, 0);
    assert_flush_between(log, data, find(log, data + 1, 'w', -1));
}

/* Where the image keeps guest offset `offset`. */
static int64_t host_offset(BlockDriverState *bs, int64_t offset)
{
    int64_t pnum = 0, map = -1;
    BlockDriverState *file = NULL;
    int ret = bdrv_block_status(bs, offset, CLUSTER, &pnum, &map, &file);

    g_assert_cmpint(ret, >=, 0);
    g_assert_true(ret & BDRV_BLOCK_OFFSET_VALID);
    return map;
}

/* The 8 bytes at offset of the file at path. */
static void file_read8(const char *path, int64_t offset, uint8_t *b)
{
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, b, 8, offset), ==, 8);
    close(fd);
}

static uint64_t file_be64(const char *path, int64_t offset)
{
    uint8_t b[8];

    file_read8(path, offset, b);
    return qblk_ld_be64(b);
}

static uint64_t file_le64(const char *path, int64_t offset)
{
    uint8_t b[8];

    file_read8(path, offset, b);
    return qblk_ld_le64(b);
}

/* The host offset of the qcow2 L2 table behind guest offset 0. */
static int64_t qcow2_first_l2(const char *path)
{
    uint64_t l1 = file_be64(path, 40);

    return (int64_t)(file_be64(path, (int64_t)l1) & 0x00fffffffffffe00ULL);
}

static void fill(BlockDriverState *bs, int64_t offset, int64_t bytes, int pattern)
{
    g_autofree uint8_t *buf = g_malloc(bytes);

    memset(buf, pattern, bytes);
    g_assert_cmpint(bdrv_pwrite(bs, offset, bytes, buf, 0), ==, 0);
}

static void assert_reads(BlockDriverState *bs, int64_t offset, int64_t bytes, int pattern)
{
    g_autofree uint8_t *buf = g_malloc(bytes);

    g_assert_cmpint(bdrv_pread(bs, offset, bytes, buf, 0), ==, 0);
    for (int64_t i = 0; i < bytes; i++) {
        if (buf[i] != pattern) {
            g_error("byte %" G_GINT64_FORMAT " is 0x%02x, expected 0x%02x", offset + i,
                    buf[i], pattern);
        }
    }
}

/* A fresh cluster: its data and its refcount block are flushed before the
 * L2 table that points at it is written. */
static void test_qcow2_alloc(void)
{
    g_autofree char *path = unit_create(tmpdir, "qcow2", "alloc.qcow2", "size=1M");
    BlockDriverState *bs = open_logged("qcow2", path, NULL);
    const GArray *log = log_of(bs);
    int64_t host;
    int data, l2, refblock;

    fill(bs, 0, CLUSTER, 0x11);
    host = host_offset(bs, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    data = find(log, 0, 'w', host);
    l2 = find_last(log, 'w', qcow2_first_l2(path));
    refblock = find_last(log, 'w', (int64_t)file_be64(path, (int64_t)file_be64(path, 48)));
    assert_flush_between(log, data, l2);
    assert_flush_between(log, refblock, l2);
    bdrv_unref(bs);
    g_unlink(path);
}

/* A new L2 table is on the disk before the L1 entry that points at it:
 * else a crash can leave L1 pointing past the end of the file or at a
 * table that was never written (found by tests/crash). */
static void test_qcow2_new_l2(void)
{
    g_autofree char *path = unit_create(tmpdir, "qcow2", "new-l2.qcow2", "size=1M");
    BlockDriverState *bs = open_logged("qcow2", path, NULL);
    const GArray *log = log_of(bs);

    fill(bs, 0, CLUSTER, 0x11);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    assert_flush_between(log, find(log, 0, 'w', qcow2_first_l2(path)),
                         find(log, 0, 'w', (int64_t)file_be64(path, 40)));
    bdrv_unref(bs);
    g_unlink(path);
}

/* A discarded cluster: the L2 table stops pointing at it on the disk
 * before its refcount drops there, or a crash could leave it referenced
 * and free, to be handed out twice. */
static void test_qcow2_discard(void)
{
    g_autofree char *path = NULL;
    g_autofree char *optstr = NULL;
    BlockDriverState *bs;
    const GArray *log;
    int64_t refblock;
    guint start;

    path = unit_create(tmpdir, "qcow2", "discard.qcow2", "size=1M");
    optstr = g_strdup_printf(
        "driver=qcow2,file.driver=blkdebug,file.log=on,file.image.filename=%s", path);
    bs = unit_open_opts(optstr, BDRV_O_RDWR | BDRV_O_UNMAP);
    log = log_of(bs);
    fill(bs, 0, 2 * CLUSTER, 0x11);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    start = log->len;
    g_assert_cmpint(bdrv_pdiscard(bs, 0, CLUSTER), ==, 0);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    refblock = (int64_t)file_be64(path, (int64_t)file_be64(path, 48));
    assert_flush_between(log, find(log, start, 'w', qcow2_first_l2(path)),
                         find(log, start, 'w', refblock));
    bdrv_unref(bs);
    g_unlink(path);
}

/* A cluster that stays allocated under the zero flag is rewritten in
 * place: no refcount changes, so only the L2 table's own ordering keeps
 * the flag from clearing over data that is not yet on the disk. */
static void test_qcow2_rewrite_zero_alloc(void)
{
    g_autofree char *path = unit_create(tmpdir, "qcow2", "zalloc.qcow2", "size=1M");
    BlockDriverState *bs = open_plain("qcow2", path);
    const GArray *log;
    int64_t host;
    int data;

    fill(bs, 0, CLUSTER, 0x11);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, CLUSTER, 0), ==, 0);
    bdrv_unref(bs);

    bs = open_logged("qcow2", path, NULL);
    log = log_of(bs);
    host = host_offset(bs, 0);
    fill(bs, 0, CLUSTER, 0x22);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    data = find(log, 0, 'w', host);
    g_assert_cmpint(data, >=, 0);
    assert_flush_between(log, data, find_last(log, 'w', qcow2_first_l2(path)));
    bdrv_unref(bs);
    g_unlink(path);
}

/* The same rewrite with every flush failing: the L2 update must never
 * reach the file, so the cluster still reads as zeroes afterwards. */
static void test_qcow2_failed_flush_keeps_l2(void)
{
    g_autofree char *path = unit_create(tmpdir, "qcow2", "ffail.qcow2", "size=1M");
    BlockDriverState *bs = open_plain("qcow2", path);
    g_autofree char *optstr = g_strdup_printf(
        "driver=qcow2,file.driver=blkdebug,file.inject=flush:1:EIO,file.image.filename=%s",
        path);

    fill(bs, 0, CLUSTER, 0x11);
    g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, CLUSTER, 0), ==, 0);
    bdrv_unref(bs);

    bs = unit_open_opts(optstr, BDRV_O_RDWR);
    fill(bs, 0, CLUSTER, 0x22);
    g_assert_cmpint(bdrv_flush(bs), ==, -EIO);
    bdrv_unref(bs);

    bs = open_plain("qcow2", path);
    assert_reads(bs, 0, CLUSTER, 0);
    bdrv_unref(bs);
    g_unlink(path);
}

/* QED over a backing file sets no need-check bit, so an allocating write
 * must flush its data before the L2 entry that points at it. */
static void test_qed_backing_alloc(void)
{
    g_autofree char *base = NULL;
    g_autofree char *path = create_qed_over_raw("back.qed", &base);
    BlockDriverState *bs = open_logged("qed", path, NULL);
    const GArray *log = log_of(bs);

    /* The first allocation creates the L2 table; the second only updates
     * an entry of it. */
    fill(bs, 0, 4 * KiB, 0x11);
    fill(bs, CLUSTER, 4 * KiB, 0x22);
    assert_flushed_before_next_write(log, find(log, 0, 'w', host_offset(bs, CLUSTER)));
    bdrv_unref(bs);
    g_unlink(path);
    g_unlink(base);
}

/* Copy-on-read writes data now and its table entries later, with one
 * flush for many copies: that flush must come before the entries. */
static void test_qed_cor_commit(void)
{
    g_autofree char *base = NULL;
    g_autofree char *path = create_qed_over_raw("cor.qed", &base);
    BlockDriverState *bs = open_plain("raw", base);
    const GArray *log;

    int start;

    fill(bs, 0, 4 * CLUSTER, 0x33);
    bdrv_unref(bs);
    bs = open_logged("qed", path, "copy-on-read=on");
    log = log_of(bs);
    assert_reads(bs, 0, 2 * CLUSTER, 0x33);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    assert_flushed_before_next_write(log, find(log, 0, 'w', host_offset(bs, 0)));
    /* Copies into the table that exists now: only the commit's own flush
     * orders them before their entries. */
    start = (int)log->len;
    assert_reads(bs, 2 * CLUSTER, 2 * CLUSTER, 0x33);
    g_assert_cmpint(bdrv_flush(bs), ==, 0);
    assert_flushed_before_next_write(log, find(log, start, 'w', host_offset(bs, 2 * CLUSTER)));
    bdrv_unref(bs);
    g_unlink(path);
    g_unlink(base);
}

/* Without a backing file QED orders nothing: the need-check bit must be on
 * the disk (written and flushed) before the first allocation, data or zero
 * cluster, changes a table. */
static void check_need_check_first(bool zero)
{
    g_autofree char *path = unit_create(tmpdir, "qed", "nc.qed", "size=1M");
    BlockDriverState *bs = open_logged("qed", path, NULL);
    const GArray *log = log_of(bs);
    int header;

    g_assert_cmpuint(file_le64(path, 16) & QED_F_NEED_CHECK, ==, 0);
    if (zero) {
        g_assert_cmpint(bdrv_pwrite_zeroes(bs, 0, CLUSTER, 0), ==, 0);
    } else {
        fill(bs, 0, 4 * KiB, 0x44);
    }
    g_assert_cmpuint(file_le64(path, 16) & QED_F_NEED_CHECK, ==, QED_F_NEED_CHECK);
    header = find(log, 0, 'w', 16);
    g_assert_cmpint(header, ==, find(log, 0, 'w', -1));
    assert_flush_between(log, header, find(log, header + 1, 'w', -1));
    bdrv_unref(bs);
    /* A clean close clears it again. */
    g_assert_cmpuint(file_le64(path, 16) & QED_F_NEED_CHECK, ==, 0);
    g_unlink(path);
}

static void test_qed_need_check_zero(void)
{
    check_need_check_first(true);
}

static void test_qed_need_check_data(void)
{
    check_need_check_first(false);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-order-XXXXXX");

    g_test_add_func("/write-order/qcow2/alloc", test_qcow2_alloc);
    g_test_add_func("/write-order/qcow2/new-l2", test_qcow2_new_l2);
    g_test_add_func("/write-order/qcow2/discard", test_qcow2_discard);
    g_test_add_func("/write-order/qcow2/rewrite-zero-alloc", test_qcow2_rewrite_zero_alloc);
    g_test_add_func("/write-order/qcow2/failed-flush-keeps-l2",
                    test_qcow2_failed_flush_keeps_l2);
    g_test_add_func("/write-order/qed/backing-alloc", test_qed_backing_alloc);
    g_test_add_func("/write-order/qed/cor-commit", test_qed_cor_commit);
    g_test_add_func("/write-order/qed/need-check-zero", test_qed_need_check_zero);
    g_test_add_func("/write-order/qed/need-check-data", test_qed_need_check_data);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
