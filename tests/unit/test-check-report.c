/* A check reports its findings as data: each line, with its kind, reaches
 * the node's BdrvCheckReportFunc in the order qemu-img prints them, and
 * the library itself writes nothing to stderr. The image: a fresh qcow2
 * edited on the host so that an L1 entry has reserved bits set (an error)
 * and an unused cluster has refcount 1 (a leak). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block.h"
#include "util/bswap.h"

#define CLUSTER 65536
#define LEAKED 10

typedef struct Finding {
    BdrvCheckMsgKind kind;
    char *msg;
} Finding;

static void finding_free(gpointer p)
{
    Finding *f = p;

    g_free(f->msg);
    g_free(f);
}

static void collect(void *opaque, BdrvCheckMsgKind kind, const char *msg)
{
    Finding *f = g_new(Finding, 1);

    f->kind = kind;
    f->msg = g_strdup(msg);
    g_ptr_array_add(opaque, f);
}

static void put_refcount(int fd, uint64_t block, uint64_t cluster, uint16_t rc)
{
    uint8_t b[2] = { rc >> 8, rc & 0xff };

    g_assert_cmpint(pwrite(fd, b, 2, (off_t)(block + 2 * cluster)), ==, 2);
}

/* A 1 MiB qcow2 (16-bit refcounts) grown on the host to 16 clusters, with
 * L1 entry 0 = 2 (a reserved bit) and cluster LEAKED's refcount 1. */
static char *make_image(void)
{
    char *dir = g_dir_make_tmp("qblk-check-XXXXXX", NULL);
    char *file = g_build_filename(dir, "c.qcow2", NULL);
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    GError *err = NULL;
    uint8_t hdr[56], rt[8], l1e[8] = { [7] = 2 };
    int fd;

    qblk_opts_set(opts, "size", "1M");
    g_assert_cmpint(bdrv_create("qcow2", file, opts, &err), ==, 0);
    g_assert_no_error(err);
    fd = open(file, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, hdr, sizeof(hdr), 0), ==, sizeof(hdr));
    g_assert_cmpint(pread(fd, rt, 8, (off_t)qblk_ld_be64(hdr + 48)), ==, 8);
    g_assert_cmpint(ftruncate(fd, 16 * CLUSTER), ==, 0);
    put_refcount(fd, qblk_ld_be64(rt), LEAKED, 1);
    g_assert_cmpint(pwrite(fd, l1e, 8, (off_t)qblk_ld_be64(hdr + 40)), ==, 8);
    close(fd);
    g_free(dir);
    return file;
}

static void remove_image(char *file)
{
    g_autofree char *dir = g_path_get_dirname(file);

    g_unlink(file);
    g_rmdir(dir);
    g_free(file);
}

/* Runs the check with fd 2 pointing at a file; returns what reached it. */
static char *check_capturing_stderr(BlockDriverState *bs, BdrvCheckMode fix,
                                    BdrvCheckResult *res, int *ret)
{
    char path[] = "/tmp/qblk-check-stderr-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    char *text = NULL;

    g_assert_cmpint(fd, >=, 0);
    fflush(stderr);
    dup2(fd, 2);
    *ret = bdrv_check(bs, res, fix);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_unlink(path);
    return text;
}

static BlockDriverState *open_image(const char *file, int flags)
{
    GError *err = NULL;
    BlockDriverState *bs = bdrv_open(file, NULL, flags | BDRV_O_CHECK | BDRV_O_NO_BACKING,
                                     NULL, &err);

    g_assert_no_error(err);
    return bs;
}

static void assert_finding(GPtrArray *found, guint i, BdrvCheckMsgKind kind, const char *msg)
{
    Finding *f;

    g_assert_cmpuint(i, <, found->len);
    f = g_ptr_array_index(found, i);
    g_assert_cmpstr(f->msg, ==, msg);
    g_assert_cmpint(f->kind, ==, kind);
}

static void test_findings_in_order(void)
{
    char *file = make_image();
    BlockDriverState *bs = open_image(file, 0);
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(finding_free);
    g_autofree char *err_text = NULL;
    BdrvCheckResult res;
    int ret;

    bdrv_set_check_report(bs, collect, found);
    err_text = check_capturing_stderr(bs, BDRV_FIX_NONE, &res, &ret);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(err_text, ==, "");
    g_assert_cmpint(res.corruptions, ==, 1);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpuint(found->len, ==, 2);
    assert_finding(found, 0, BDRV_CHECK_MSG_ERROR,
                   "ERROR found L1 entry with reserved bits set: 2");
    assert_finding(found, 1, BDRV_CHECK_MSG_LEAK, "Leaked cluster 10 refcount=1 reference=0");
    bdrv_unref(bs);
    remove_image(file);
}

/* -r all: the first pass's findings, then the repairs, in that order. */
static void test_repairs_in_order(void)
{
    char *file = make_image();
    BlockDriverState *bs = open_image(file, BDRV_O_RDWR);
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(finding_free);
    g_autofree char *err_text = NULL;
    BdrvCheckResult res;
    int ret;

    bdrv_set_check_report(bs, collect, found);
    err_text = check_capturing_stderr(bs, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS, &res, &ret);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(err_text, ==, "");
    g_assert_cmpint(res.corruptions, ==, 1);
    g_assert_cmpint(res.leaks_fixed, ==, 1);
    g_assert_cmpuint(found->len, ==, 3);
    assert_finding(found, 0, BDRV_CHECK_MSG_ERROR,
                   "ERROR found L1 entry with reserved bits set: 2");
    assert_finding(found, 1, BDRV_CHECK_MSG_LEAK, "Leaked cluster 10 refcount=1 reference=0");
    assert_finding(found, 2, BDRV_CHECK_MSG_REPAIR,
                   "Repairing cluster 10 refcount=1 reference=0");
    bdrv_unref(bs);
    remove_image(file);
}

/* Without a report function the findings are dropped, never printed, and
 * the counts are the same. */
static void test_no_report_function(void)
{
    char *file = make_image();
    BlockDriverState *bs = open_image(file, 0);
    g_autofree char *err_text = NULL;
    BdrvCheckResult res;
    int ret;

    err_text = check_capturing_stderr(bs, BDRV_FIX_NONE, &res, &ret);
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpstr(err_text, ==, "");
    g_assert_cmpint(res.corruptions, ==, 1);
    g_assert_cmpint(res.leaks, ==, 1);
    bdrv_unref(bs);
    remove_image(file);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/check-report/findings-in-order", test_findings_in_order);
    g_test_add_func("/check-report/repairs-in-order", test_repairs_in_order);
    g_test_add_func("/check-report/no-report-function", test_no_report_function);
    return g_test_run();
}
