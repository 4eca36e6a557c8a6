/* qcow2 image creation: options with qemu-img's messages, the header
 * cluster (extensions, feature names, backing name), the first refcount
 * table and block, then the L1 table through the driver's own growth, so
 * fresh images have QEMU's layout. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/qcow2.h"

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

static const struct { uint8_t type, bit; const char *name; } feature_table[] = {
    { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
    { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" }, { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

/* Appends one header extension at *off (padded to 8). */
static void put_ext(uint8_t *c0, uint64_t *off, uint32_t type, const void *data, uint32_t len)
{
    qcow2_put_be32(c0 + *off, type);
    qcow2_put_be32(c0 + *off + 4, len);
    if (len) {
        memcpy(c0 + *off + 8, data, len);
    }
    *off += 8 + ((len + 7) & ~7u);
}

typedef struct {
    PreallocMode prealloc;
    int version;
    uint32_t cluster_bits;
    uint32_t refcount_order;
    bool lazy;
    uint8_t compression_type;
} CreateParams;

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
    if (cs < 512 || cs > 2 * 1024 * 1024 || (cs & (cs - 1))) {
        qblk_error_set(errp, "Cluster size must be a power of two between 512 and 2048k");
        return false;
    }
    p->cluster_bits = __builtin_ctzll(cs);
    if (!compat || !strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
        p->version = 3;
    } else if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
        p->version = 2;
    } else {
        qblk_error_set(errp, "Parameter 'version' does not accept value '%s'", compat);
        return false;
    }
    if (ctype && strcmp(ctype, "zlib") && strcmp(ctype, "zstd")) {
        qblk_error_set(errp, "Parameter 'compression-type' does not accept value '%s'", ctype);
        return false;
    }
    p->compression_type = ctype && !strcmp(ctype, "zstd");
    if (rbits < 1 || rbits > 64 || (rbits & (rbits - 1))) {
        qblk_error_set(errp, "Refcount width must be a power of two and may not exceed 64 bits");
        return false;
    }
    p->refcount_order = __builtin_ctzll(rbits);
    if (p->version < 3) {
        const char *what = p->lazy ? "Lazy refcounts only supported" :
                           rbits != 16 ? "Different refcount widths than 16 bits require" :
                           p->compression_type ? "Non-zlib compression type is only supported"
                                               : NULL;

        if (what) {
            qblk_error_set(errp, "%s %scompatibility level 1.1 and above (use version=v3 or "
                           "greater)", what, rbits != 16 && !p->lazy ? "" : "with ");
            return false;
        }
    }
    if (ext_l2) {
        qblk_error_set(errp, "extended_l2=on is not supported by qblk's qcow2 driver");
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
    g_autoptr(QblkOpts) file_create = qblk_opts_new();
    g_autoptr(QblkOpts) file_open = qblk_opts_new();
    g_autoptr(QblkOpts) img_open = qblk_opts_new();
    g_autofree uint8_t *c0 = NULL;
    BlockDriverState *file, *img;
    CreateParams p = { 0 };
    Qcow2Header h = { 0 };
    uint8_t entry[8], refs[24] = { 0 };   /* 3 refcounts of up to 64 bits */
    uint64_t off, cs;
    int64_t size;
    int ret;

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
        put_ext(c0, &off, QCOW2_EXT_BACKING_FORMAT, backing_fmt, strlen(backing_fmt));
    }
    /* QEMU names the features only where clusters are larger than 4 KiB. */
    if (p.version >= 3 && cs > 4096) {
        uint8_t table[G_N_ELEMENTS(feature_table) * 48] = { 0 };

        for (size_t i = 0; i < G_N_ELEMENTS(feature_table); i++) {
            table[48 * i] = feature_table[i].type;
            table[48 * i + 1] = feature_table[i].bit;
            memcpy(table + 48 * i + 2, feature_table[i].name, strlen(feature_table[i].name));
        }
        put_ext(c0, &off, QCOW2_EXT_FEATURE_TABLE, table, sizeof(table));
    }
    put_ext(c0, &off, QCOW2_EXT_END, NULL, 0);
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

    qblk_opts_set(file_create, "size", "0");
    ret = bdrv_file.co_create(filename, file_create, errp);
    if (ret < 0) {
        return ret;
    }
    qblk_opts_set(file_open, "driver", "file");
    file = bdrv_open(filename, g_steal_pointer(&file_open), BDRV_O_RDWR, NULL, errp);
    if (!file) {
        return -EIO;
    }
    /* Cluster 0 header, 1 refcount table, 2 refcount block (counting
     * clusters 0..2); the L1 table comes with the size below. */
    qcow2_put_be64(entry, 2 * cs);
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
    bdrv_unref(file);
    if (ret < 0 || size == 0) {
        return ret;
    }

    qblk_opts_set(img_open, "driver", "qcow2");
    qblk_opts_set(img_open, "backing", "");
    img = bdrv_open(filename, g_steal_pointer(&img_open), BDRV_O_RDWR | BDRV_O_NO_BACKING,
                    NULL, errp);
    if (!img) {
        return -EIO;
    }
    ret = bdrv_co_truncate(img, size, false, p.prealloc, errp);
    bdrv_unref(img);
    return ret;
}
