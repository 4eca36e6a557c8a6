/* Per-node open options blockdev-add relies on: references to existing
 * nodes (file=NODE, backing=NODE, backing="" for none), detect-zeroes,
 * auto-read-only, and the copy-on-read filter's refusals, with QEMU 7.2's
 * error texts. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "block/drivers/null.h"
#include "block/drivers/qcow2.h"
#include "unit-helpers.h"

static char *tmpdir;

static BlockDriverState *open_str(const char *optstr, int flags, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, NULL));
    return bdrv_open(NULL, opts, flags, NULL, errp);
}

/* The error text of an open that must fail. */
static char *open_error(const char *optstr, int flags)
{
    GError *err = NULL;
    char *msg;

    g_assert_null(open_str(optstr, flags, &err));
    g_assert_nonnull(err);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* ----- References ----- */

static void test_file_reference(void)
{
    g_autofree char *img = unit_create(tmpdir, "qcow2", "ref.qcow2", "size=1M");
    g_autofree char *o = g_strdup_printf("driver=file,node-name=f0,filename=%s", img);
    BlockDriverState *f = unit_open_opts(o, BDRV_O_RDWR);
    BlockDriverState *q = unit_open_opts("driver=qcow2,node-name=q0,file=f0", BDRV_O_RDWR);
    g_autofree char *msg = NULL;

    /* The existing node is the file child, held by a reference. */
    g_assert_true(bdrv_file_child(q) == f);
    g_assert_cmpint(bdrv_getlength(q), ==, 1 << 20);
    bdrv_unref(f);
    g_assert_true(bdrv_find_node("f0") == f);
    g_assert_cmpint(bdrv_pwrite(q, 0, 4, "abcd", 0), ==, 0);

    /* A second format on it: QEMU's conflict text, older holder first. */
    msg = open_error("driver=qcow2,node-name=q1,file=f0", BDRV_O_RDWR);
    g_assert_cmpstr(msg, ==, "Permission conflict on node 'f0': permissions 'write, resize' "
                    "are both required by node 'q0' (uses node 'f0' as 'file' child) and "
                    "unshared by node 'q1' (uses node 'f0' as 'file' child).");
    g_assert_null(bdrv_find_node("q1"));
    bdrv_unref(q);
    g_assert_null(bdrv_find_node("f0"));
}

static void test_reference_errors(void)
{
    g_autofree char *img = unit_create(tmpdir, "qed", "err.qed", "size=1M");
    g_autofree char *o = NULL;
    g_autofree char *m1 = open_error("driver=qed,node-name=x,file=nosuch", BDRV_O_RDWR);
    g_autofree char *m2 = NULL, *m3 = NULL;
    BlockDriverState *f;

    g_assert_cmpstr(m1, ==, "Cannot find device='nosuch' nor node-name='nosuch'");
    o = g_strdup_printf("driver=qed,node-name=x,file.filename=%s,backing=nosuch", img);
    m2 = open_error(o, BDRV_O_RDWR);
    g_assert_cmpstr(m2, ==, "Could not open backing file: Cannot find device='nosuch' "
                    "nor node-name='nosuch'");
    g_free(o);
    o = g_strdup_printf("driver=file,node-name=ef,filename=%s", img);
    f = unit_open_opts(o, BDRV_O_RDWR);
    m3 = open_error("driver=qed,node-name=x,file=ef,file.locking=off", BDRV_O_RDWR);
    g_assert_cmpstr(m3, ==, "Cannot reference an existing block device with additional "
                    "options or a new filename");
    /* Nothing of the failed opens is left. */
    g_assert_null(bdrv_find_node("x"));
    bdrv_unref(f);
}

static void test_backing_reference(void)
{
    g_autofree char *base = unit_create(tmpdir, "raw", "b.raw", "size=1M");
    g_autofree char *other = unit_create(tmpdir, "raw", "other.raw", "size=1M");
    g_autofree char *top = NULL, *o = NULL, *o2 = NULL;
    BlockDriverState *other_bs, *t;
    char buf[4];

    top = unit_create(tmpdir, "qed", "t.qed", "size=1M,backing_file=b.raw,backing_fmt=raw");
    o = g_strdup_printf("driver=raw,node-name=null,file.filename=%s", other);
    other_bs = unit_open_opts(o, BDRV_O_RDWR);
    g_assert_cmpint(bdrv_pwrite(other_bs, 0, 4, "OTHR", 0), ==, 0);

    /* backing=NODE replaces the header's backing file (here a node that is
     * called "null": a name, not "no backing"). */
    o2 = g_strdup_printf("driver=qed,node-name=t,file.filename=%s,backing=null", top);
    t = unit_open_opts(o2, BDRV_O_RDWR);
    g_assert_true(bdrv_backing(t) == other_bs);
    g_assert_cmpstr(bdrv_backing_file(t), ==, "b.raw");
    g_assert_cmpint(bdrv_pread(t, 0, 4, buf, 0), ==, 0);
    g_assert_cmpmem(buf, 4, "OTHR", 4);
    bdrv_unref(t);
    bdrv_unref(other_bs);

    /* backing= (blockdev-add's null): none, the header keeps its name. */
    g_free(o2);
    o2 = g_strdup_printf("driver=qed,node-name=t,file.filename=%s,backing=", top);
    t = unit_open_opts(o2, BDRV_O_RDWR);
    g_assert_null(bdrv_backing(t));
    g_assert_cmpstr(bdrv_backing_file(t), ==, "b.raw");
    bdrv_unref(t);
}

/* ----- detect-zeroes ----- */

/* Writes a zero buffer to a null-co node opened with extra options and
 * returns its counters' view: native zero writes, plain writes, flags. */
static void zero_write_on(const char *extra, uint64_t *zero_writes, uint64_t *writes,
                          unsigned *flags)
{
    g_autofree char *o = g_strdup_printf("driver=null-co,zeroes=native,size=1M%s", extra);
    BlockDriverState *bs = unit_open_opts(o, BDRV_O_RDWR);
    g_autofree uint8_t *zeroes = g_malloc0(65536);
    const NullStats *st = null_co_stats(bs);

    g_assert_cmpint(bdrv_pwrite(bs, 65536, 65536, zeroes, 0), ==, 0);
    /* Data is never turned into zeroes. */
    zeroes[100] = 1;
    g_assert_cmpint(bdrv_pwrite(bs, 0, 65536, zeroes, 0), ==, 0);
    *zero_writes = st->zero_writes;
    *writes = st->writes;
    *flags = st->last_zero_flags;
    bdrv_unref(bs);
}

static void test_detect_zeroes(void)
{
    uint64_t zw, w;
    unsigned flags;
    g_autofree char *m = NULL;

    zero_write_on("", &zw, &w, &flags);
    g_assert_cmpuint(zw, ==, 0);
    g_assert_cmpuint(w, ==, 2);
    zero_write_on(",detect-zeroes=off", &zw, &w, &flags);
    g_assert_cmpuint(zw, ==, 0);
    zero_write_on(",detect-zeroes=on,discard=unmap", &zw, &w, &flags);
    g_assert_cmpuint(zw, ==, 1);
    g_assert_cmpuint(w, ==, 1);
    g_assert_cmphex(flags & BDRV_REQ_MAY_UNMAP, ==, 0);
    zero_write_on(",detect-zeroes=unmap,discard=unmap", &zw, &w, &flags);
    g_assert_cmpuint(zw, ==, 1);
    g_assert_cmphex(flags & BDRV_REQ_MAY_UNMAP, ==, BDRV_REQ_MAY_UNMAP);

    m = open_error("driver=null-co,detect-zeroes=unmap", BDRV_O_RDWR);
    g_assert_cmpstr(m, ==, "setting detect-zeroes to unmap is not allowed without setting "
                    "discard operation to unmap");
    g_free(m);
    m = open_error("driver=null-co,detect-zeroes=maybe", BDRV_O_RDWR);
    g_assert_cmpstr(m, ==, "Parameter 'detect-zeroes' does not accept value 'maybe'");
}

/* A zero buffer written to a qcow2 image with detect-zeroes=on is a zero
 * cluster, not data. */
static void test_detect_zeroes_qcow2(void)
{
    g_autofree char *img = unit_create(tmpdir, "qcow2", "dz.qcow2", "size=1M");
    g_autofree char *o = g_strdup_printf("driver=qcow2,detect-zeroes=on,file.filename=%s",
                                         img);
    BlockDriverState *bs = unit_open_opts(o, BDRV_O_RDWR);
    g_autofree uint8_t *zeroes = g_malloc0(65536);
    int64_t pnum;
    int ret;

    g_assert_cmpint(bdrv_pwrite(bs, 0, 65536, zeroes, 0), ==, 0);
    ret = bdrv_block_status(bs, 0, 65536, &pnum, NULL, NULL);
    g_assert_cmpint(ret & BDRV_BLOCK_ZERO, ==, BDRV_BLOCK_ZERO);
    g_assert_cmpint(ret & BDRV_BLOCK_DATA, ==, 0);
    g_assert_cmpstr(bdrv_detect_zeroes_name(bdrv_get_detect_zeroes(bs)), ==, "on");
    bdrv_unref(bs);
}

/* ----- auto-read-only, force-share ----- */

/* A file this process may not write: a read-only copy (not root), or a
 * read-only sysfs attribute (root writes any plain file). NULL if none. */
static char *unwritable_file(void)
{
    const char *sysfs = "/sys/devices/system/cpu/online";
    char *img;
    int fd;

    if (geteuid() != 0) {
        img = unit_create(tmpdir, "raw", "aro.raw", "size=64k");
        g_assert_cmpint(g_chmod(img, 0444), ==, 0);
        return img;
    }
    fd = open(sysfs, O_RDWR);
    if (fd >= 0) {
        close(fd);
        return NULL;
    }
    return errno == EACCES ? g_strdup(sysfs) : NULL;
}

static void test_auto_read_only(void)
{
    g_autofree char *img = unit_create(tmpdir, "raw", "arw.raw", "size=64k");
    g_autofree char *o = g_strdup_printf("driver=raw,file.filename=%s,auto-read-only=on", img);
    g_autofree char *ro = unwritable_file();
    g_autofree char *m = NULL;
    BlockDriverState *bs;

    /* A writable file opens read-write all the same. */
    bs = unit_open_opts(o, BDRV_O_RDWR);
    g_assert_false(bdrv_is_read_only(bs));
    bdrv_unref(bs);
    if (!ro) {
        g_test_skip("no file this process cannot write");
        return;
    }
    g_free(o);
    o = g_strdup_printf("driver=raw,file.filename=%s", ro);
    m = open_error(o, BDRV_O_RDWR);
    g_free(o);
    o = g_strdup_printf("Could not open '%s': Permission denied", ro);
    g_assert_cmpstr(m, ==, o);
    g_free(o);
    o = g_strdup_printf("driver=raw,file.filename=%s,auto-read-only=on", ro);
    bs = unit_open_opts(o, BDRV_O_RDWR);
    g_assert_true(bdrv_is_read_only(bs));
    g_assert_true(bdrv_is_read_only(bdrv_file_child(bs)));
    g_assert_cmpint(bdrv_get_open_flags(bs) & BDRV_O_RDWR, ==, 0);
    bdrv_unref(bs);
}

static void test_force_share(void)
{
    g_autofree char *m = open_error("driver=null-co,force-share=on", BDRV_O_RDWR);

    g_assert_cmpstr(m, ==, "force-share=on can only be used with read-only images");
}

/* ----- copy-on-read filter ----- */

static void test_cor_filter_errors(void)
{
    g_autofree char *base = unit_create(tmpdir, "raw", "cb.raw", "size=1M");
    g_autofree char *top = unit_create(tmpdir, "qed", "ct.qed",
                                       "size=1M,backing_file=cb.raw,backing_fmt=raw");
    g_autofree char *o = g_strdup_printf("driver=qed,node-name=ct,file.filename=%s,"
                                         "backing.node-name=cb", top);
    BlockDriverState *t = unit_open_opts(o, BDRV_O_RDWR);
    BlockDriverState *other = unit_open_opts("driver=null-co,node-name=n9", BDRV_O_RDWR);
    BlockDriverState *cor;
    g_autofree char *m1 = open_error("driver=copy-on-read,file=ct,bottom=nosuch", BDRV_O_RDWR);
    g_autofree char *m2 = open_error("driver=copy-on-read,file=ct,bottom=n9", BDRV_O_RDWR);
    g_autofree char *top2 = unit_create(tmpdir, "qed", "ct2.qed",
                                        "size=1M,backing_file=cb.raw,backing_fmt=raw");
    g_autofree char *o3 = g_strdup_printf("driver=copy-on-read,file.driver=qed,"
                                          "file.file.filename=%s", top2);
    g_autofree char *m3 = open_error(o3, 0);

    g_assert_cmpstr(m1, ==, "Bottom node 'nosuch' not found");
    g_assert_cmpstr(m2, ==, "Bottom node 'n9' is not in the backing chain of 'ct'");
    /* Copying writes the image: a read-only one is refused as QEMU does. */
    g_assert_cmpstr(m3, ==, "Block node is read-only");

    /* With a bottom in the chain: the filter holds it. */
    cor = unit_open_opts("driver=copy-on-read,node-name=c,file=ct,bottom=cb", BDRV_O_RDWR);
    g_assert_cmpstr(bdrv_format_name(cor), ==, "copy-on-read");
    g_assert_cmpint(bdrv_getlength(cor), ==, 1 << 20);
    bdrv_unref(t);
    bdrv_unref(cor);
    g_assert_null(bdrv_find_node("ct"));
    g_assert_null(bdrv_find_node("cb"));
    bdrv_unref(other);
}

/* ----- qcow2's cache options ----- */

static void test_qcow2_cache_options(void)
{
    g_autofree char *img = unit_create(tmpdir, "qcow2", "cache.qcow2", "size=64M");
    static const struct { const char *opts, *error; } bad[] = {
        { "cache-size=1M,l2-cache-size=512k,refcount-cache-size=64k",
          "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time" },
        { "cache-size=64k,l2-cache-size=512k", "l2-cache-size may not exceed cache-size" },
        { "cache-size=64k,refcount-cache-size=512k",
          "refcount-cache-size may not exceed cache-size" },
        { "l2-cache-entry-size=1000",
          "L2 cache entry size must be a power of two between 512 and the cluster size (65536)" },
        { "cache-clean-interval=-1", "Cache clean interval too big" },
        { "overlap-check=some", "Unsupported value 'some' for qcow2 option 'overlap-check'. "
          "Allowed are any of the following: none, constant, cached, all" },
    };
    g_autofree char *o = NULL;
    BlockDriverState *bs;
    BDRVQcow2State *s;
    uint8_t buf[512];

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *bo = g_strdup_printf("driver=qcow2,file.filename=%s,%s", img,
                                              bad[i].opts);
        g_autofree char *m = open_error(bo, BDRV_O_RDWR);

        g_assert_cmpstr(m, ==, bad[i].error);
    }
    o = g_strdup_printf("driver=qcow2,file.filename=%s,l2-cache-size=1M,"
                        "refcount-cache-size=512k,l2-cache-entry-size=4096,"
                        "cache-clean-interval=0,lazy-refcounts=on,pass-discard-request=on,"
                        "overlap-check=none", img);
    bs = unit_open_opts(o, BDRV_O_RDWR);
    s = bs->opaque;
    g_assert_cmpuint(s->l2_cache.len, ==, 16);
    g_assert_cmpuint(s->refblock_cache.len, ==, 8);
    memset(buf, 0x5a, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 32 << 20, sizeof(buf), buf, 0), ==, 0);
    bdrv_unref(bs);
    g_free(o);
    /* cache-size alone: refcounts get their floor, L2 the rest. */
    o = g_strdup_printf("driver=qcow2,file.filename=%s,cache-size=1M,"
                        "overlap-check.template=all,overlap-check.main-header=off", img);
    bs = unit_open_opts(o, 0);
    s = bs->opaque;
    g_assert_cmpuint(s->refblock_cache.len, ==, 4);
    g_assert_cmpuint(s->l2_cache.len, ==, 12);
    g_assert_cmpint(bdrv_pread(bs, 32 << 20, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmpuint(buf[511], ==, 0x5a);
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = unit_tmpdir_new("qblk-node-options-XXXXXX");
    g_test_add_func("/node-options/file-reference", test_file_reference);
    g_test_add_func("/node-options/reference-errors", test_reference_errors);
    g_test_add_func("/node-options/backing-reference", test_backing_reference);
    g_test_add_func("/node-options/detect-zeroes", test_detect_zeroes);
    g_test_add_func("/node-options/detect-zeroes-qcow2", test_detect_zeroes_qcow2);
    g_test_add_func("/node-options/auto-read-only", test_auto_read_only);
    g_test_add_func("/node-options/force-share", test_force_share);
    g_test_add_func("/node-options/cor-filter-errors", test_cor_filter_errors);
    g_test_add_func("/node-options/qcow2-cache-options", test_qcow2_cache_options);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
