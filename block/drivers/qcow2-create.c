/* qcow2 image creation: options with qemu-img's messages, the header
 * cluster (extensions, feature names, backing name), the first refcount
 * table and block, then the L1 table through the driver's own growth, so
 * fresh images have QEMU's layout. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

const QblkOptDesc qcow2_create_opts[] = {
    { "cluster_size", QBLK_OPT_SIZE, "qcow2 cluster size", "65536" },
    { "extended_l2", QBLK_OPT_BOOL, "Extended L2 tables", "off" },
    { "preallocation", QBLK_OPT_STRING, "Preallocation mode (allowed values: off, metadata, "
      "falloc, full)", NULL },
    { "compression_type", QBLK_OPT_STRING, "Compression method used for image cluster "
      "compression", "zlib" },
    { "size", QBLK_OPT_SIZE, "Virtual disk size", NULL },
    { "backing_file", QBLK_OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", QBLK_OPT_STRING, "Image format of the base image", NULL },
    { "compat", QBLK_OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
    { "lazy_refcounts", QBLK_OPT_BOOL, "Postpone refcount updates", "off" },
    { "refcount_bits", QBLK_OPT_NUMBER, "Width of a reference count entry in bits", "16" },
    { NULL }
};

typedef struct {
    PreallocMode prealloc;
    int version;
    uint32_t cluster_bits;
    uint32_t refcount_order;
    bool lazy;
    uint8_t compression_type;
} CreateParams;

/* The checks create and measure share (each reports with its own texts
 * where qemu-img's differ). */
static bool valid_cluster_size(int64_t cs, GError **errp)
{
    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1))) {
        qblk_error_set(errp, "Cluster size must be a power of two between 512 and 2048k");
        return false;
    }
    return true;
}

static bool valid_refcount_bits(int64_t rbits, GError **errp)
{
    if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1))) {
        qblk_error_set(errp, "Refcount width must be a power of two and may not exceed 64 bits");
        return false;
    }
    return true;
}

/* compat= as a qcow2 version: 3 (default), 2, or 0 when unknown. */
static int compat_version(const char *compat)
{
    if (!compat || !strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
        return 3;
    }
    return !strcmp(compat, "0.10") || !strcmp(compat, "v2") ? 2 : 0;
}

static bool no_extended_l2(bool ext_l2, GError **errp)
{
    if (ext_l2) {
        qblk_error_set(errp, "extended_l2=on is not supported by qblk's qcow2 driver");
    }
    return !ext_l2;
}

static bool parse_params(QblkOpts *options, CreateParams *p, const char *backing,
                         const char *backing_fmt, GError **errp)
{
    g_autofree char *compat = qblk_opts_take(options, "compat");
    g_autofree char *prealloc = qblk_opts_take(options, "preallocation");
    g_autofree char *ctype = qblk_opts_take(options, "compression_type");
    int64_t cs, rbits;
    bool ext_l2;

    if (!qblk_opts_take_size(options, "cluster_size", 65536, &cs, errp) ||
        !qblk_opts_take_bool(options, "extended_l2", false, &ext_l2, errp) ||
        !qblk_opts_take_bool(options, "lazy_refcounts", false, &p->lazy, errp) ||
        !qblk_opts_take_size(options, "refcount_bits", 16, &rbits, errp)) {
        return false;
    }
    if (!valid_cluster_size(cs, errp)) {
        return false;
    }
    p->cluster_bits = __builtin_ctzll(cs);
    p->version = compat_version(compat);
    if (!p->version) {
        qblk_error_set(errp, "Parameter 'version' does not accept value '%s'", compat);
        return false;
    }
    if (ctype && strcmp(ctype, "zlib") && strcmp(ctype, "zstd")) {
        qblk_error_set(errp, "Parameter 'compression-type' does not accept value '%s'", ctype);
        return false;
    }
    p->compression_type = ctype && !strcmp(ctype, "zstd");
    if (!valid_refcount_bits(rbits, errp)) {
        return false;
    }
    p->refcount_order = __builtin_ctzll(rbits);
    if (p->version < 3) {
        const char *what = p->lazy ? "Lazy refcounts only supported" :
                           rbits != 16 ? "Different refcount widths than 16 bits require" :
                           p->compression_type ? "Non-zlib compression type is only supported"
                                               : NULL;

        if (what) {
            bool refcount = rbits != 16 && !p->lazy;

            qblk_error_set(errp, "%s %scompatibility level 1.1 %s above (use version=v3 or "
                           "greater)", what, refcount ? "" : "with ", refcount ? "or" : "and");
            return false;
        }
    }
    if (!no_extended_l2(ext_l2, errp)) {
        return false;
    }
    p->prealloc = prealloc ? prealloc_mode_parse(prealloc) : PREALLOC_MODE_OFF;
    if ((int)p->prealloc < 0) {
        qblk_error_set(errp, "Parameter 'preallocation' does not accept value '%s'", prealloc);
        return false;
    }
    if (backing_fmt && !backing) {
        qblk_error_set(errp, "Backing format cannot be used without backing file");
        return false;
    }
    if (backing && strlen(backing) > QCOW2_MAX_BACKING_NAME) {
        qblk_error_set(errp, "Backing file name too long");
        return false;
    }
    return true;
}

int coroutine_fn qcow2_co_create(const char *filename, QblkOpts *options, GError **errp)
{
    g_autofree char *backing = qblk_opts_take(options, "backing_file");
    g_autofree char *backing_fmt = qblk_opts_take(options, "backing_fmt");
    g_autoptr(QblkOpts) img_open = qblk_opts_new();
    g_autofree uint8_t *c0 = NULL;
    BlockDriverState *file, *img;
    CreateParams p = { 0 };
    Qcow2Header h = { 0 };
    uint8_t entry[8], refs[24] = { 0 };   /* 3 refcounts of up to 64 bits */
    uint64_t off, cs;
    int64_t size;
    int ret, close_ret;

    if (!qblk_opts_take_size(options, "size", 0, &size, errp) ||
        !parse_params(options, &p, backing, backing_fmt, errp)) {
        return -EINVAL;
    }
    size = (size + 511) & ~(int64_t)511;
    cs = UINT64_C(1) << p.cluster_bits;

    h.magic = QCOW2_MAGIC;
    h.version = p.version;
    h.cluster_bits = p.cluster_bits;
    h.refcount_table_offset = cs;
    h.refcount_table_clusters = 1;
    h.refcount_order = p.refcount_order;
    h.header_length = p.version >= 3 ? 112 : QCOW2_V2_HEADER_SIZE;
    h.compatible_features = p.lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0;
    if (p.compression_type) {
        h.incompatible_features |= QCOW2_INCOMPAT_COMPRESSION;
        h.compression_type = 1;
    }
    c0 = g_malloc0(cs);
    off = h.header_length;
    if (backing_fmt) {
        qcow2_put_extension(c0, &off, cs, QCOW2_EXT_BACKING_FORMAT, backing_fmt, strlen(backing_fmt));
    }
    if (p.version >= 3) {
        qcow2_put_feature_table(c0, &off, cs);
    }
    qcow2_put_extension(c0, &off, cs, QCOW2_EXT_END, NULL, 0);
    if (backing) {
        if (off + strlen(backing) > cs) {
            qblk_error_set(errp, "Backing file name too long for the header cluster");
            return -EINVAL;
        }
        h.backing_file_offset = off;
        h.backing_file_size = strlen(backing);
        memcpy(c0 + off, backing, h.backing_file_size);
        off += h.backing_file_size;
    }
    qcow2_header_encode(&h, c0);

    ret = bdrv_co_create_open_file(filename, &file, errp);
    if (ret < 0) {
        return ret;
    }
    /* Cluster 0 header, 1 refcount table, 2 refcount block (counting
     * clusters 0..2); the L1 table comes with the size below. */
    qblk_st_be64(entry, 2 * cs);
    {
        BDRVQcow2State tmp = { .refcount_bits = 1u << p.refcount_order };

        for (int i = 0; i < 3; i++) {
            qcow2_refblock_set(&tmp, refs, i, 1);
        }
    }
    ret = bdrv_co_truncate(file, 3 * cs, true, PREALLOC_MODE_OFF, errp);
    if (ret == 0) {
        ret = bdrv_co_pwrite(file, 0, MAX(off, 512), c0, 0);
    }
    if (ret == 0) {
        ret = bdrv_co_pwrite(file, cs, sizeof(entry), entry, 0);
    }
    if (ret == 0) {
        ret = bdrv_co_pwrite(file, 2 * cs, sizeof(refs), refs, 0);
    }
    if (ret == 0) {
        ret = bdrv_co_flush(file);
    }
    if (ret < 0 && errp && !*errp) {
        qblk_error_set_errno(errp, -ret, "Could not write qcow2 header");
    }
    bdrv_co_unref(file);
    if (ret < 0 || size == 0) {
        return ret;
    }

    qblk_opts_set(img_open, "driver", "qcow2");
    qblk_opts_set(img_open, "backing", "");
    img = bdrv_co_open(filename, g_steal_pointer(&img_open), BDRV_O_RDWR | BDRV_O_NO_BACKING,
                       NULL, errp);
    if (!img) {
        return -EIO;
    }
    ret = bdrv_co_truncate(img, size, false, p.prealloc, errp);
    close_ret = bdrv_co_unref_flush(img);
    if (ret == 0 && close_ret < 0) {
        qblk_error_set_errno(errp, -close_ret, "Could not close the new image");
        ret = close_ret;
    }
    return ret;
}

/* Clusters of refcount table and blocks that count `clusters` clusters
 * and themselves (they need counting too, hence the fixed point). */
static uint64_t refcount_metadata_clusters(uint64_t clusters, uint64_t cs,
                                           uint32_t refcount_order)
{
    uint64_t per_block = cs * 8 >> refcount_order, blocks = 0, table = 0, last;

    do {
        last = blocks + table;
        blocks = (clusters + blocks + table + per_block - 1) / per_block;
        table = (blocks * 8 + cs - 1) / cs;
    } while (blocks + table != last);
    return blocks + table;
}

/* Header, L1, L2 and refcount clusters of an image of `size` bytes
 * (a cluster multiple) with every cluster allocated. */
static uint64_t metadata_bytes(uint64_t size, uint64_t cs, uint32_t refcount_order)
{
    uint64_t entries_per_table = cs / 8;
    uint64_t l2_tables = (size / cs + entries_per_table - 1) / entries_per_table;
    uint64_t l1_bytes = (l2_tables * 8 + cs - 1) / cs * cs;
    uint64_t meta = cs + l2_tables * cs + l1_bytes;

    return meta + refcount_metadata_clusters((meta + size) / cs, cs, refcount_order) * cs;
}

/* Clusters of size cs that hold any data of in_bs (zero ranges do not
 * count: the copy makes them zero clusters or leaves them out). */
static int data_clusters(BlockDriverState *in_bs, int64_t len, uint64_t cs, uint64_t *out,
                         GError **errp)
{
    uint64_t count = 0, next = 0;   /* next: first cluster not yet counted */

    for (int64_t off = 0; off < len;) {
        int64_t n;
        int st = bdrv_block_status_above(in_bs, NULL, off, len - off, &n);

        if (st < 0) {
            qblk_error_set_errno(errp, -st, "Unable to get block status");
            return st;
        }
        if ((st & BDRV_BLOCK_DATA) && !(st & BDRV_BLOCK_ZERO)) {
            uint64_t first = MAX((uint64_t)off / cs, next), end = ((uint64_t)off + n + cs - 1) / cs;

            if (end > first) {
                count += end - first;
                next = end;
            }
        }
        off += n;
    }
    *out = count * cs;
    return 0;
}

/* Persistent bitmaps of a qcow2 v3 source, as a target with clusters of
 * cs would store them: each one's data and table, and the directory. */
static int bitmaps_bytes(BlockDriverState *in_bs, uint64_t cs, uint64_t *out, GError **errp)
{
    BDRVQcow2State *s = in_bs->opaque;
    uint32_t dir_len = (uint32_t)MIN(s->bitmaps_dir_size, 64u * 1024 * 1024);
    int64_t len = bdrv_getlength(in_bs);
    uint64_t off = 0, dir_size = 0, total = 0;
    g_autofree uint8_t *dir = NULL;

    *out = 0;
    /* Without the autoclear bit the bitmaps are stale and dropped. */
    if (!s->bitmaps_nb || !(s->header.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
        return 0;
    }
    if (len < 0) {
        qblk_error_set_errno(errp, (int)-len, "Could not get the image length");
        return (int)len;
    }
    dir = g_malloc0(MAX(dir_len, 1));
    if (bdrv_pread(in_bs->file, s->bitmaps_dir_offset, dir_len, dir, 0) < 0) {
        qblk_error_set(errp, "Could not read the bitmap directory");
        return -EIO;
    }
    for (uint32_t i = 0; i < s->bitmaps_nb && off + 24 <= dir_len; i++) {
        uint32_t gran_bits = dir[off + 17], name_len = qblk_ld_be16(dir + off + 18);
        uint32_t extra = qblk_ld_be32(dir + off + 20);
        uint64_t entry = (24 + (uint64_t)extra + name_len + 7) & ~UINT64_C(7);
        uint64_t bits, clusters;

        if (gran_bits >= 63) {
            break;
        }
        bits = ((uint64_t)len + (UINT64_C(1) << gran_bits) - 1) >> gran_bits;
        clusters = (bits / 8 + (bits % 8 != 0) + cs - 1) / cs;
        total += clusters * cs + (clusters * 8 + cs - 1) / cs * cs;
        dir_size += entry;
        off += entry;
    }
    *out = total + (dir_size + cs - 1) / cs * cs;
    return 0;
}

int qcow2_measure(QblkOpts *options, BlockDriverState *in_bs, BlockMeasureInfo *info,
                  GError **errp)
{
    g_autofree char *backing = qblk_opts_take(options, "backing_file");
    g_autofree char *compat = qblk_opts_take(options, "compat");
    g_autofree char *prealloc_name = qblk_opts_take(options, "preallocation");
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    uint64_t cs, virt, data;
    int64_t size, rbits, csize;
    uint32_t refcount_order;
    bool ext_l2;
    int ret;

    /* qemu-img measure checks only what changes the numbers, with texts of
     * its own; the rest of the create options is accepted as given. */
    if (!qblk_opts_take_size(options, "size", 0, &size, errp) ||
        !qblk_opts_take_size(options, "cluster_size", 65536, &csize, errp) ||
        !qblk_opts_take_size(options, "refcount_bits", 16, &rbits, errp) ||
        !qblk_opts_take_bool(options, "extended_l2", false, &ext_l2, errp)) {
        return -EINVAL;
    }
    if (!compat_version(compat)) {
        qblk_error_set(errp, "Invalid compatibility level: '%s'", compat);
        return -EINVAL;
    }
    if (!valid_refcount_bits(rbits, errp)) {
        return -EINVAL;
    }
    if (compat_version(compat) == 2 && rbits != 16) {
        qblk_error_set(errp, "Different refcount widths than 16 bits require compatibility "
                       "level 1.1 or above (use compat=1.1 or greater)");
        return -EINVAL;
    }
    refcount_order = __builtin_ctzll(rbits);
    if (!valid_cluster_size(csize, errp)) {
        return -EINVAL;
    }
    cs = (uint64_t)csize;
    if (!no_extended_l2(ext_l2, errp)) {
        return -ENOTSUP;
    }
    if (prealloc_name) {
        prealloc = prealloc_mode_parse(prealloc_name);
        if ((int)prealloc < 0) {
            qblk_error_set(errp, "invalid parameter value: %s", prealloc_name);
            return -EINVAL;
        }
    }
    if (in_bs) {
        size = bdrv_getlength(in_bs);
        if (size < 0) {
            qblk_error_set_errno(errp, (int)-size, "Unable to get image virtual_size");
            return (int)size;
        }
    }
    virt = ((uint64_t)size + cs - 1) / cs * cs;
    if ((virt / cs + cs / 8 - 1) / (cs / 8) > QCOW2_MAX_L1_BYTES / 8) {
        qblk_error_set(errp, "The image size is too large (try using a larger cluster size)");
        return -EFBIG;
    }
    data = 0;
    /* Over a backing file, which clusters will differ is not known. */
    if (prealloc == PREALLOC_MODE_FALLOC || prealloc == PREALLOC_MODE_FULL ||
        (in_bs && backing)) {
        data = virt;
    } else if (in_bs) {
        ret = data_clusters(in_bs, size, cs, &data, errp);
        if (ret < 0) {
            return ret;
        }
    }
    info->fully_allocated = metadata_bytes(virt, cs, refcount_order) + virt;
    info->required = info->fully_allocated - virt + data;
    if (in_bs && in_bs->drv == &bdrv_qcow2 &&
        ((BDRVQcow2State *)in_bs->opaque)->header.version >= 3) {
        info->has_bitmaps = true;
        return bitmaps_bytes(in_bs, cs, &info->bitmaps, errp);
    }
    return 0;
}
