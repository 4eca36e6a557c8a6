/* The qcow2 format driver: header and extensions, open-time validation,
 * the dirty and corrupt bits, close, flush, grow and info. Mapping is in
 * qcow2-cluster.c, refcounts in qcow2-refcount.c, data paths in
 * qcow2-rw.c, the check in qcow2-check.c, creation in qcow2-create.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include "block/drivers/qcow2.h"

static void header_decode(const uint8_t *b, Qcow2Header *h)
{
    h->magic = qblk_ld_be32(b + QCOW2_HDR_OFF(magic));
    h->version = qblk_ld_be32(b + QCOW2_HDR_OFF(version));
    h->backing_file_offset = qblk_ld_be64(b + QCOW2_HDR_OFF(backing_file_offset));
    h->backing_file_size = qblk_ld_be32(b + QCOW2_HDR_OFF(backing_file_size));
    h->cluster_bits = qblk_ld_be32(b + QCOW2_HDR_OFF(cluster_bits));
    h->size = qblk_ld_be64(b + QCOW2_HDR_OFF(size));
    h->crypt_method = qblk_ld_be32(b + QCOW2_HDR_OFF(crypt_method));
    h->l1_size = qblk_ld_be32(b + QCOW2_HDR_OFF(l1_size));
    h->l1_table_offset = qblk_ld_be64(b + QCOW2_HDR_OFF(l1_table_offset));
    h->refcount_table_offset = qblk_ld_be64(b + QCOW2_HDR_OFF(refcount_table_offset));
    h->refcount_table_clusters = qblk_ld_be32(b + QCOW2_HDR_OFF(refcount_table_clusters));
    h->nb_snapshots = qblk_ld_be32(b + QCOW2_HDR_OFF(nb_snapshots));
    h->snapshots_offset = qblk_ld_be64(b + QCOW2_HDR_OFF(snapshots_offset));
    if (h->version >= 3) {
        h->incompatible_features = qblk_ld_be64(b + QCOW2_HDR_OFF(incompatible_features));
        h->compatible_features = qblk_ld_be64(b + QCOW2_HDR_OFF(compatible_features));
        h->autoclear_features = qblk_ld_be64(b + QCOW2_HDR_OFF(autoclear_features));
        h->refcount_order = qblk_ld_be32(b + QCOW2_HDR_OFF(refcount_order));
        h->header_length = qblk_ld_be32(b + QCOW2_HDR_OFF(header_length));
        h->compression_type = h->header_length > QCOW2_V3_HEADER_SIZE ?
                              b[QCOW2_HDR_OFF(compression_type)] : 0;
    } else {
        h->incompatible_features = h->compatible_features = h->autoclear_features = 0;
        h->refcount_order = 4;
        h->header_length = QCOW2_V2_HEADER_SIZE;
        h->compression_type = 0;
    }
}

void qcow2_header_encode(const Qcow2Header *h, uint8_t *b)
{
    qblk_st_be32(b + QCOW2_HDR_OFF(magic), h->magic);
    qblk_st_be32(b + QCOW2_HDR_OFF(version), h->version);
    qblk_st_be64(b + QCOW2_HDR_OFF(backing_file_offset), h->backing_file_offset);
    qblk_st_be32(b + QCOW2_HDR_OFF(backing_file_size), h->backing_file_size);
    qblk_st_be32(b + QCOW2_HDR_OFF(cluster_bits), h->cluster_bits);
    qblk_st_be64(b + QCOW2_HDR_OFF(size), h->size);
    qblk_st_be32(b + QCOW2_HDR_OFF(crypt_method), h->crypt_method);
    qblk_st_be32(b + QCOW2_HDR_OFF(l1_size), h->l1_size);
    qblk_st_be64(b + QCOW2_HDR_OFF(l1_table_offset), h->l1_table_offset);
    qblk_st_be64(b + QCOW2_HDR_OFF(refcount_table_offset), h->refcount_table_offset);
    qblk_st_be32(b + QCOW2_HDR_OFF(refcount_table_clusters), h->refcount_table_clusters);
    qblk_st_be32(b + QCOW2_HDR_OFF(nb_snapshots), h->nb_snapshots);
    qblk_st_be64(b + QCOW2_HDR_OFF(snapshots_offset), h->snapshots_offset);
    if (h->version >= 3) {
        qblk_st_be64(b + QCOW2_HDR_OFF(incompatible_features), h->incompatible_features);
        qblk_st_be64(b + QCOW2_HDR_OFF(compatible_features), h->compatible_features);
        qblk_st_be64(b + QCOW2_HDR_OFF(autoclear_features), h->autoclear_features);
        qblk_st_be32(b + QCOW2_HDR_OFF(refcount_order), h->refcount_order);
        qblk_st_be32(b + QCOW2_HDR_OFF(header_length), h->header_length);
        if (h->header_length > QCOW2_V3_HEADER_SIZE) {
            b[QCOW2_HDR_OFF(compression_type)] = h->compression_type;
        }
    }
}

bool qcow2_put_extension(uint8_t *buf, uint64_t *pos, uint64_t end, uint32_t type,
                         const void *data, uint32_t len)
{
    uint64_t padded = (len + 7) & ~7u;

    if (*pos + 8 + padded > end) {
        return false;
    }
    qblk_st_be32(buf + *pos, type);
    qblk_st_be32(buf + *pos + 4, len);
    if (len) {
        memcpy(buf + *pos + 8, data, len);
    }
    memset(buf + *pos + 8 + len, 0, padded - len);
    *pos += 8 + padded;
    return true;
}

/* Rewrites bytes [off, off+len) of the header from the in-memory copy and
 * flushes. Only named fields are written, so header extensions and bytes
 * this driver does not know stay as they are. */
int coroutine_fn qcow2_co_write_header_field(BlockDriverState *bs, unsigned off, unsigned len)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t buf[QCOW2_V3_HEADER_SIZE + 8] = { 0 };
    int ret;

    g_assert(off + len <= sizeof(buf));
    qcow2_header_encode(&s->header, buf);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, off, len, buf + off);
    return ret < 0 ? ret : bdrv_co_flush(bs->file);
}

int coroutine_fn qcow2_co_mark_corrupt(BlockDriverState *bs, const char *fmt, ...)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (bs->read_only || s->header.version < 3) {
        bdrv_report_corruption(&(BdrvCorruptionEvent) {
            .bs = bs, .format = "qcow2", .msg = msg, .marked = false });
        return -EIO;
    }
    if (!(s->header.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        /* The first event marks the image; later ones are suppressed. */
        bdrv_report_corruption(&(BdrvCorruptionEvent) {
            .bs = bs, .format = "qcow2", .msg = msg, .marked = true });
        s->header.incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
        qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(incompatible_features));
    }
    return -EIO;
}

static int qcow2_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return buf_size >= 8 && qblk_ld_be32(buf) == QCOW2_MAGIC &&
           qblk_ld_be32(buf + QCOW2_HDR_OFF(version)) >= 2 ? 100 : 0;
}

/* Offset and length of a table: cluster aligned and inside the file. */
static bool table_ok(const BDRVQcow2State *s, uint64_t offset, uint64_t len, uint64_t flen)
{
    return !(offset & (s->cluster_size - 1)) && offset + len >= offset && offset + len <= flen;
}

/* Names of unknown incompatible bits from the feature name table. */
static char *feature_names(const uint8_t *table, uint32_t len, uint64_t bits)
{
    GString *out = g_string_new(NULL);

    for (uint32_t i = 0; i + 48 <= len; i += 48) {
        if (table[i] == 0 && table[i + 1] < 64 && (bits & (UINT64_C(1) << table[i + 1]))) {
            g_string_append_printf(out, "%s%.46s", out->len ? ", " : "", table + i + 2);
            bits &= ~(UINT64_C(1) << table[i + 1]);
        }
    }
    /* Known bits this driver does not implement, named without a table. */
    if (bits & QCOW2_INCOMPAT_DATA_FILE) {
        g_string_append_printf(out, "%sexternal data file", out->len ? ", " : "");
        bits &= ~QCOW2_INCOMPAT_DATA_FILE;
    }
    if (bits & QCOW2_INCOMPAT_EXTL2) {
        g_string_append_printf(out, "%sextended L2 entries", out->len ? ", " : "");
        bits &= ~QCOW2_INCOMPAT_EXTL2;
    }
    if (bits) {
        g_string_append_printf(out, "%sUnknown incompatible feature: %" PRIx64,
                               out->len ? ", " : "", bits);
    }
    return g_string_free(out, FALSE);
}

/* Validates the header fields; sets derived geometry. */
static bool check_header(BDRVQcow2State *s, uint64_t flen, GError **errp)
{
    Qcow2Header *h = &s->header;
    uint64_t l2_span;

    if (h->magic != QCOW2_MAGIC) {
        qblk_error_set(errp, "Image is not in qcow2 format");
        return false;
    }
    if (h->version != 2 && h->version != 3) {
        qblk_error_set(errp, "Unsupported qcow2 version %" PRIu32, h->version);
        return false;
    }
    if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        qblk_error_set(errp, "Unsupported cluster size: 2^%" PRIu32, h->cluster_bits);
        return false;
    }
    s->cluster_bits = h->cluster_bits;
    s->cluster_size = 1u << h->cluster_bits;
    if (h->version == 3 && (h->header_length < QCOW2_V3_HEADER_SIZE ||
                            h->header_length > s->cluster_size || h->header_length % 8)) {
        qblk_error_set(errp, "qcow2 header_length %" PRIu32 " is invalid (a multiple of 8 "
                       "from 104 to the cluster size)", h->header_length);
        return false;
    }
    if (h->refcount_order > 6) {
        qblk_error_set(errp, "qcow2 refcount_order %" PRIu32 " is invalid (refcount width "
                       "must be a power of two and may not exceed 64 bits)", h->refcount_order);
        return false;
    }
    if (h->crypt_method) {
        qblk_error_set(errp, "qcow2 crypt_method %" PRIu32 ": encrypted images are not "
                       "supported", h->crypt_method);
        return false;
    }
    if (h->backing_file_offset > s->cluster_size ||
        h->backing_file_size > QCOW2_MAX_BACKING_NAME ||
        h->backing_file_offset + h->backing_file_size > s->cluster_size) {
        qblk_error_set(errp, "qcow2 backing file name (offset %" PRIu64 ", size %" PRIu32
                       ") lies outside the header cluster or is too long",
                       h->backing_file_offset, h->backing_file_size);
        return false;
    }
    if (h->compression_type > 1 ||
        (h->compression_type == 1) != !!(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)) {
        qblk_error_set(errp, "qcow2 compression_type %u does not match the compression "
                       "type feature bit", h->compression_type);
        return false;
    }
    if ((uint64_t)h->refcount_table_clusters << s->cluster_bits > QCOW2_MAX_REFTABLE_BYTES) {
        qblk_error_set(errp, "qcow2 refcount_table_clusters %" PRIu32 " is too large",
                       h->refcount_table_clusters);
        return false;
    }
    if (!h->refcount_table_clusters ||
        !table_ok(s, h->refcount_table_offset,
                  (uint64_t)h->refcount_table_clusters << s->cluster_bits, flen)) {
        qblk_error_set(errp, "qcow2 refcount_table_offset %#" PRIx64 " is invalid (%" PRIu32
                       " clusters, file size %" PRIu64 ")", h->refcount_table_offset,
                       h->refcount_table_clusters, flen);
        return false;
    }
    if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        qblk_error_set(errp, "qcow2 l1_size %" PRIu32 " is too large (active L1 table too "
                       "large)", h->l1_size);
        return false;
    }
    s->l2_bits = h->cluster_bits - 3;
    s->l2_size = 1u << s->l2_bits;
    l2_span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);
    if (h->size > BDRV_MAX_LENGTH || (uint64_t)h->l1_size < (h->size + l2_span - 1) / l2_span) {
        qblk_error_set(errp, "qcow2 l1_size %" PRIu32 " is too small for the image size %"
                       PRIu64, h->l1_size, h->size);
        return false;
    }
    if (h->l1_size && !table_ok(s, h->l1_table_offset, (uint64_t)h->l1_size * 8, flen)) {
        qblk_error_set(errp, "qcow2 l1_table_offset %#" PRIx64 " is invalid (%" PRIu32
                       " entries, file size %" PRIu64 ")", h->l1_table_offset, h->l1_size, flen);
        return false;
    }
    if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        qblk_error_set(errp, "qcow2 nb_snapshots %" PRIu32 " is too large", h->nb_snapshots);
        return false;
    }
    /* Even an empty table's offset must be aligned and sane, as QEMU
     * requires: a check that called such a header clean would leave an
     * image QEMU refuses to open. */
    if ((h->nb_snapshots && !table_ok(s, h->snapshots_offset, 40, flen)) ||
        (h->snapshots_offset & (s->cluster_size - 1)) || h->snapshots_offset > INT64_MAX) {
        qblk_error_set(errp, "qcow2 snapshots_offset %#" PRIx64 " is invalid",
                       h->snapshots_offset);
        return false;
    }
    return true;
}

/* Header extensions: the backing format is kept; unknown ones are left on
 * disk untouched (the header is only ever rewritten field by field). */
static bool read_extensions(BDRVQcow2State *s, const uint8_t *c0, uint64_t incompat,
                            GError **errp)
{
    uint64_t off = s->header.header_length;
    uint64_t end = s->header.backing_file_offset ? s->header.backing_file_offset
                                                 : s->cluster_size;
    const uint8_t *features = NULL;
    uint32_t features_len = 0;

    while (off + 8 <= end) {
        uint32_t type = qblk_ld_be32(c0 + off), len = qblk_ld_be32(c0 + off + 4);

        if (type == QCOW2_EXT_END) {
            break;
        }
        if (off + 8 + len > end) {
            qblk_error_set(errp, "qcow2 header extension %#" PRIx32 " at %" PRIu64
                           ": length %" PRIu32 " runs past the header area", type, off, len);
            return false;
        }
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            s->backing_format_ext = g_strndup((const char *)c0 + off + 8, len);
        } else if (type == QCOW2_EXT_FEATURE_TABLE) {
            features = c0 + off + 8;
            features_len = len;
        } else if (type == QCOW2_EXT_BITMAPS && len >= 24) {
            s->bitmaps_nb = qblk_ld_be32(c0 + off + 8);
            s->bitmaps_dir_size = qblk_ld_be64(c0 + off + 16);
            s->bitmaps_dir_offset = qblk_ld_be64(c0 + off + 24);
        }
        off += 8 + ((len + 7) & ~7u);
    }
    if (incompat) {
        g_autofree char *names = feature_names(features, features_len, incompat);

        qblk_error_set(errp, "Unsupported qcow2 feature(s): %s", names);
        return false;
    }
    return true;
}

static void free_snapshots(BDRVQcow2State *s)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        qcow2_snapshot_clear(&s->snapshots[i]);
    }
    g_clear_pointer(&s->snapshots, g_free);
    s->nb_snapshots = 0;
}

/* Reads len bytes at off, what lies past the file's end (flen) as zeroes,
 * as QEMU reads a snapshot table that a too large count runs past. */
static int coroutine_fn read_zero_padded(BlockDriverState *bs, uint64_t off, uint64_t len,
                                         uint8_t *buf, uint64_t flen)
{
    uint64_t n = off < flen ? MIN(len, flen - off) : 0;

    memset(buf + n, 0, len - n);
    return n ? bdrv_co_pread(bs->file, off, n, buf, 0) : 0;
}

/* Parses the snapshot table (kept intact on disk; used by check). A count
 * larger than the table gives entries of zeroes (check: incomplete). */
static int coroutine_fn read_snapshots(BlockDriverState *bs, uint64_t flen, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = s->header.snapshots_offset;

    s->snapshots = g_new0(Qcow2Snapshot, s->header.nb_snapshots);
    for (uint32_t i = 0; i < s->header.nb_snapshots; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];
        uint8_t h[40];
        uint32_t extra, id_len, name_len;
        g_autofree uint8_t *var = NULL;
        int ret;

        ret = read_zero_padded(bs, off, sizeof(h), h, flen);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read the qcow2 snapshot table");
            return ret;
        }
        sn->l1_table_offset = qblk_ld_be64(h);
        sn->l1_size = qblk_ld_be32(h + 8);
        id_len = qblk_ld_be16(h + 12);
        name_len = qblk_ld_be16(h + 14);
        sn->date_sec = qblk_ld_be32(h + 16);
        sn->date_nsec = qblk_ld_be32(h + 20);
        sn->vm_clock_nsec = qblk_ld_be64(h + 24);
        sn->vm_state_size = qblk_ld_be32(h + 32);
        extra = qblk_ld_be32(h + 36);
        if (extra > 1024) {
            qblk_error_set(errp, "qcow2 snapshot %" PRIu32 ": extra_data_size %" PRIu32
                           " is too large", i, extra);
            return -EFBIG;
        }
        var = g_malloc0(extra + id_len + name_len + 1);
        ret = read_zero_padded(bs, off + sizeof(h), extra + id_len + name_len, var, flen);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read the qcow2 snapshot table");
            return ret;
        }
        if (extra >= 8) {
            sn->vm_state_size = qblk_ld_be64(var);
        }
        if (extra >= 16) {
            sn->disk_size = qblk_ld_be64(var + 8);
        }
        sn->icount = extra >= 24 ? qblk_ld_be64(var + 16) : UINT64_MAX;
        if (extra < 16) {
            sn->disk_size = s->header.size;     /* as QEMU assumes */
        }
        sn->extra = g_memdup2(var, extra);
        sn->extra_size = extra;
        sn->id_str = g_strndup((char *)var + extra, id_len);
        sn->name = g_strndup((char *)var + extra + id_len, name_len);
        s->nb_snapshots = i + 1;        /* freed from here on, even on error */
        if ((uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
            (sn->l1_size && !table_ok(s, sn->l1_table_offset, (uint64_t)sn->l1_size * 8, flen))) {
            qblk_error_set(errp, "qcow2 snapshot %" PRIu32 ": L1 table (offset %#" PRIx64
                           ", %" PRIu32 " entries) is invalid", i, sn->l1_table_offset,
                           sn->l1_size);
            return -EINVAL;
        }
        off += (sizeof(h) + extra + id_len + name_len + 7) & ~UINT64_C(7);
    }
    s->snapshots_size = off - s->header.snapshots_offset;
    return 0;
}

void qcow2_set_refcount_width(BDRVQcow2State *s, uint32_t bits)
{
    s->refcount_bits = bits;
    s->refcount_max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    s->refblock_bits = s->cluster_bits + 3 - (uint32_t)__builtin_ctz(bits);
}

int coroutine_fn qcow2_co_read_table(BlockDriverState *bs, uint64_t offset, uint32_t n,
                                     uint64_t **out)
{
    uint64_t *t = g_try_new(uint64_t, MAX(n, 1));
    int ret;

    if (!t) {
        return -ENOMEM;
    }
    ret = n ? bdrv_co_pread(bs->file, offset, (uint64_t)n * 8, t, 0) : 0;
    if (ret < 0) {
        g_free(t);
        return ret;
    }
    for (uint32_t i = 0; i < n; i++) {
        t[i] = GUINT64_FROM_BE(t[i]);
    }
    *out = t;
    return 0;
}

static int coroutine_fn qcow2_co_read_metadata(BlockDriverState *bs, int flags, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t hbuf[QCOW2_V3_HEADER_SIZE + 8] = { 0 };
    int64_t flen = bdrv_getlength(bs->file);
    g_autofree uint8_t *c0 = NULL;
    uint64_t incompat;
    int ret;

    if (flen < 0) {
        qblk_error_set_errno(errp, (int)-flen, "Could not get the qcow2 file length");
        return (int)flen;
    }
    ret = bdrv_co_pread(bs->file, 0, MIN((uint64_t)flen, sizeof(hbuf)), hbuf, 0);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not read qcow2 header");
        return ret;
    }
    header_decode(hbuf, &s->header);
    if (flen < QCOW2_V2_HEADER_SIZE) {
        s->header.magic = 0;
    }
    if (!check_header(s, flen, errp)) {
        return -EINVAL;
    }
    /* The guest sees whole sectors, as in QEMU: a size of 4095 is 3584 for
     * info, reads, convert and compare alike. The field on disk changes
     * only when the image is resized. */
    s->header.size &= ~UINT64_C(511);
    c0 = g_malloc0(s->cluster_size);
    ret = bdrv_co_pread(bs->file, 0, MIN((uint64_t)flen, s->cluster_size), c0, 0);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not read qcow2 header");
        return ret;
    }
    incompat = s->header.incompatible_features & ~QCOW2_INCOMPAT_SUPPORTED;
    if (!read_extensions(s, c0, incompat, errp)) {
        return incompat ? -ENOTSUP : -EINVAL;
    }
    if ((s->header.incompatible_features & QCOW2_INCOMPAT_CORRUPT) && (flags & BDRV_O_RDWR) &&
        !(flags & BDRV_O_CHECK)) {
        qblk_error_set(errp, "qcow2: Image is corrupt; cannot be opened read/write");
        return -EACCES;
    }
    if (s->header.backing_file_offset && s->header.backing_file_size) {
        bs->backing_file = g_strndup((char *)c0 + s->header.backing_file_offset,
                                     s->header.backing_file_size);
        bs->backing_format = g_strdup(s->backing_format_ext);
    }
    qcow2_set_refcount_width(s, 1u << s->header.refcount_order);
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (UINT64_C(1) << (s->cluster_bits - 8)) - 1;
    s->coffset_mask = (UINT64_C(1) << s->csize_shift) - 1;
    s->file_end = ((uint64_t)flen + s->cluster_size - 1) & ~((uint64_t)s->cluster_size - 1);

    s->l1_size = s->header.l1_size;
    ret = qcow2_co_read_table(bs, s->header.l1_table_offset, s->l1_size, &s->l1_table);
    if (ret == 0) {
        s->refcount_table_size = s->header.refcount_table_clusters << (s->cluster_bits - 3);
        ret = qcow2_co_read_table(bs, s->header.refcount_table_offset, s->refcount_table_size,
                         &s->refcount_table);
    }
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not read the qcow2 L1 or refcount table");
        return ret;
    }
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        if (s->refcount_table[i] & (s->cluster_size - 1)) {
            qblk_error_set(errp, "qcow2 refcount table entry %" PRIu32 " (%#" PRIx64
                           ") is not cluster aligned", i, s->refcount_table[i]);
            return -EINVAL;
        }
    }
    ret = read_snapshots(bs, flen, errp);
    if (ret < 0) {
        return ret;
    }
    s->bitmaps_in_use = s->bitmaps_nb &&
                        (s->header.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS);
    ret = qcow2_co_meta_build(bs, errp);
    if (ret < 0) {
        return ret;
    }
    /* A directory that cannot be parsed hides the bitmaps from info; a
     * read-write open then fails below (qcow2_co_bitmaps_load). */
    if (s->bitmaps_in_use) {
        qcow2_co_bitmaps_read_dir(bs, NULL);
    }
    qcow2_cache_init(&s->l2_cache, CLAMP((4u << 20) >> s->cluster_bits, 8u, 64u),
                     s->cluster_size, true);
    qcow2_cache_init(&s->refblock_cache, CLAMP((1u << 20) >> s->cluster_bits, 4u, 16u),
                     s->cluster_size, false);
    s->l2_cache.depends = &s->refblock_cache;

    if ((flags & BDRV_O_RDWR) && !(flags & BDRV_O_CHECK)) {
        uint64_t keep = s->bitmaps_in_use ? QCOW2_AUTOCLEAR_BITMAPS : 0;

        if (s->header.autoclear_features & ~keep) {
            /* Extensions we do not maintain become stale once we write;
             * the bitmaps we maintain (qcow2-bitmap.c). */
            s->header.autoclear_features &= keep;
            ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(autoclear_features));
            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not clear qcow2 autoclear bits");
                return ret;
            }
        }
        if (s->header.incompatible_features & QCOW2_INCOMPAT_DIRTY) {
            BdrvCheckResult res = { 0 };

            /* Lazy refcounts left stale by a writer that did not close. */
            ret = qcow2_co_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
            if (ret < 0 || res.corruptions || res.check_errors) {
                qblk_error_set(errp, "Could not repair dirty image: %d corruptions, "
                               "%d errors left", res.corruptions, res.check_errors);
                return ret < 0 ? ret : -EIO;
            }
            s->header.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
            ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(incompatible_features));
            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not clear the qcow2 dirty bit");
                return ret;
            }
        }
        if (s->header.version >= 3) {
            ret = qcow2_co_bitmaps_load(bs, errp);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

static void qcow2_free_state(BDRVQcow2State *s)
{
    g_clear_pointer(&s->l1_table, g_free);
    g_clear_pointer(&s->refcount_table, g_free);
    g_clear_pointer(&s->backing_format_ext, g_free);
    free_snapshots(s);
    qcow2_bitmaps_free(s);
    qcow2_meta_destroy(s);
    if (s->l2_cache.entries) {
        qcow2_cache_destroy(&s->l2_cache);
        qcow2_cache_destroy(&s->refblock_cache);
    }
}

static int coroutine_fn qcow2_co_open(BlockDriverState *bs, QblkOpts *options, int flags,
                                      GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2RuntimeOpts ropts;
    int ret;

    if (!qcow2_take_runtime_options(options, &ropts, errp)) {
        return -EINVAL;
    }
    qco_mutex_init(&s->lock);
    qcow2_meta_init(s);
    ret = qcow2_co_read_metadata(bs, flags, errp);
    if (ret == 0 && !qcow2_co_apply_runtime_options(bs, &ropts, errp)) {
        ret = -EINVAL;
    }
    if (ret < 0) {
        qcow2_free_state(s);
        return ret;
    }
    bs->bl.request_alignment = 1;
    bs->bl.pwrite_zeroes_alignment = s->cluster_size;
    bs->bl.pdiscard_alignment = s->cluster_size;
    /* Zero writes never write data here (-ENOTSUP instead), so a fast
     * zero (NO_FALLBACK) is honoured as it is. */
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK |
                               BDRV_REQ_WRITE_UNCHANGED;
    /* WRITE_UNCHANGED (copy-on-read) leaves the dirty bitmaps as they are. */
    bs->supported_write_flags = BDRV_REQ_WRITE_COMPRESSED | BDRV_REQ_WRITE_UNCHANGED;
    return 0;
}

/* The bitmaps are stored (their tables and the header extension written)
 * and the caches written once more; the core flushes the file after. */
static int coroutine_fn qcow2_co_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0, flush_ret;

    if (!bs->read_only) {
        qco_mutex_lock(&s->lock);
        ret = qcow2_co_bitmaps_store(bs);
        flush_ret = qcow2_co_flush_caches(bs);
        ret = ret < 0 ? ret : flush_ret;
        qco_mutex_unlock(&s->lock);
    }
    qcow2_free_state(s);
    return ret;
}

static int coroutine_fn qcow2_co_flush(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qco_mutex_lock(&s->lock);
    ret = qcow2_co_flush_caches(bs);
    qco_mutex_unlock(&s->lock);
    return ret;
}

static int64_t qcow2_getlength(BlockDriverState *bs)
{
    return ((BDRVQcow2State *)bs->opaque)->header.size;
}

/* VM state lives past the last L2 span the disk uses, in clusters of the
 * active tables (so snapshots keep it); the L1 table grows to reach it. */
static uint64_t vm_state_offset(const BDRVQcow2State *s)
{
    uint64_t l2_span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);

    return (s->header.size + l2_span - 1) / l2_span * l2_span;
}

static int qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->is_dirty = !!(s->header.incompatible_features & QCOW2_INCOMPAT_DIRTY);
    bdi->vm_state_offset = vm_state_offset(s);
    return 0;
}

static int coroutine_fn qcow2_co_save_vmstate(BlockDriverState *bs, QIOVector *qiov,
                                              int64_t pos)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t start = vm_state_offset(s) + (uint64_t)pos, end = start + qiov->size;
    uint64_t l2_span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);
    int ret = 0;

    if (end < start || (end + l2_span - 1) / l2_span > QCOW2_MAX_L1_BYTES / 8) {
        return -EFBIG;
    }
    qco_mutex_lock(&s->lock);
    if ((end + l2_span - 1) / l2_span > s->l1_size) {
        ret = qcow2_co_grow_l1(bs, (uint32_t)((end + l2_span - 1) / l2_span));
    }
    qco_mutex_unlock(&s->lock);
    return ret < 0 ? ret : qcow2_co_pwritev(bs, (int64_t)start, qiov->size, qiov, 0);
}

static int coroutine_fn qcow2_co_load_vmstate(BlockDriverState *bs, QIOVector *qiov,
                                              int64_t pos)
{
    uint64_t start = vm_state_offset(bs->opaque) + (uint64_t)pos;

    if (start + qiov->size < start) {
        return -EFBIG;
    }
    return qcow2_co_preadv(bs, (int64_t)start, qiov->size, qiov, 0);
}

static int coroutine_fn qcow2_co_make_empty(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qco_mutex_lock(&s->lock);
    ret = qcow2_co_discard_clusters(bs, 0, s->header.size, true);
    if (ret == 0) {
        ret = qcow2_co_flush_caches(bs);
    }
    qco_mutex_unlock(&s->lock);
    return ret;
}

/* The header area is rebuilt as QEMU lays it out: the backing format
 * extension first, the other extensions as they were, the end marker,
 * then the name. It covers every byte the old layout used, so no stale
 * name or extension bytes remain; qcow2_co_commit_header writes it so that
 * a power cut leaves the old name or the new one, never a mix. */
static int coroutine_fn qcow2_co_change_backing_file(BlockDriverState *bs, const char *file,
                                                     const char *fmt)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, hl = s->header.header_length;
    uint64_t old_end = s->header.backing_file_offset ? s->header.backing_file_offset : cs;
    uint64_t pos = hl, off, used_end = hl, name_len = file ? strlen(file) : 0;
    g_autofree uint8_t *old = g_malloc0(cs), *buf = g_malloc0(cs);
    int64_t flen = bdrv_getlength(bs->file);
    int ret;

    if (name_len > QCOW2_MAX_BACKING_NAME || (fmt && strlen(fmt) > 1023)) {
        return -EINVAL;
    }
    if (flen < 0) {
        return (int)flen;
    }
    qco_mutex_lock(&s->lock);
    ret = bdrv_co_pread(bs->file, 0, MIN((uint64_t)flen, cs), old, 0);
    if (ret < 0) {
        goto out;
    }
    memcpy(buf, old, hl);
    ret = -ENOSPC;
    if (fmt && !qcow2_put_extension(buf, &pos, cs, QCOW2_EXT_BACKING_FORMAT, fmt, strlen(fmt))) {
        goto out;
    }
    /* Open validated the old extensions, so each one fits before old_end. */
    for (off = hl; off + 8 <= old_end;) {
        uint32_t type = qblk_ld_be32(old + off), len = qblk_ld_be32(old + off + 4);

        if (type == QCOW2_EXT_END) {
            off += 8;
            break;
        }
        if (type != QCOW2_EXT_BACKING_FORMAT &&
            !qcow2_put_extension(buf, &pos, cs, type, old + off + 8, len)) {
            goto out;
        }
        off += 8 + ((len + 7) & ~7u);
    }
    used_end = MAX(off, s->header.backing_file_offset + s->header.backing_file_size);
    if (pos + 8 + name_len > cs) {
        goto out;
    }
    pos += 8;                                   /* end marker: zeroes */
    memcpy(buf + pos, file ? file : "", name_len);
    qblk_st_be64(buf + QCOW2_HDR_OFF(backing_file_offset), file ? pos : 0);
    qblk_st_be32(buf + QCOW2_HDR_OFF(backing_file_size), (uint32_t)name_len);
    pos += name_len;
    ret = qcow2_co_commit_header(bs, old, buf, MAX(pos, MIN(used_end, cs)));
    if (ret == 0) {
        s->header.backing_file_offset = file ? pos - name_len : 0;
        s->header.backing_file_size = (uint32_t)name_len;
        g_free(s->backing_format_ext);
        s->backing_format_ext = g_strdup(fmt);
    }
out:
    qco_mutex_unlock(&s->lock);
    return ret;
}

static int qcow2_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list)
{
    BDRVQcow2State *s = bs->opaque;

    *list = g_new0(BdrvSnapshotInfo, MAX(s->nb_snapshots, 1));
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];

        (*list)[i] = (BdrvSnapshotInfo) {
            .id = g_strdup(sn->id_str), .name = g_strdup(sn->name),
            .vm_state_size = sn->vm_state_size, .date_sec = sn->date_sec,
            .date_nsec = sn->date_nsec, .vm_clock_nsec = sn->vm_clock_nsec,
            .icount = sn->icount,
        };
    }
    return (int)s->nb_snapshots;
}

static GVariant *qcow2_get_specific_info(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    GVariantBuilder b;
    GVariant *bitmaps;
    bool v3 = s->header.version >= 3;

    g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
    g_variant_builder_add(&b, "{sv}", "compat", g_variant_new_string(v3 ? "1.1" : "0.10"));
    g_variant_builder_add(&b, "{sv}", "compression-type",
                          g_variant_new_string(s->header.compression_type ? "zstd" : "zlib"));
    g_variant_builder_add(&b, "{sv}", "refcount-bits",
                          g_variant_new_int64(s->refcount_bits));
    if (v3) {
        g_variant_builder_add(&b, "{sv}", "lazy-refcounts", g_variant_new_boolean(
                              s->header.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS));
        g_variant_builder_add(&b, "{sv}", "corrupt", g_variant_new_boolean(
                              s->header.incompatible_features & QCOW2_INCOMPAT_CORRUPT));
        g_variant_builder_add(&b, "{sv}", "extended-l2", g_variant_new_boolean(false));
        bitmaps = qcow2_bitmaps_info(s);
        if (bitmaps) {
            g_variant_builder_add(&b, "{sv}", "bitmaps", bitmaps);
        }
    }
    return g_variant_new("(sa{sv})", "qcow2", &b);
}

/* Drops everything past the new size: data clusters, L2 tables of L1
 * entries no longer needed, and the file's tail after the last used
 * cluster. Lock held. */
static int coroutine_fn shrink(BlockDriverState *bs, uint64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t l2_span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);
    uint64_t from = (offset + cs - 1) & ~(uint64_t)(cs - 1);
    uint64_t new_l1 = (offset + l2_span - 1) / l2_span;
    int64_t last;
    int ret = 0;

    if (from < s->header.size) {
        ret = qcow2_co_discard_clusters(bs, from, s->header.size - from, true);
    }
    for (uint64_t i = new_l1; ret == 0 && i < s->l1_size; i++) {
        uint64_t l2 = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;
        uint8_t zero[8] = { 0 };

        if (!s->l1_table[i]) {
            continue;
        }
        s->l1_table[i] = 0;
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L1, s->header.l1_table_offset + 8 * i, 8,
                                   zero);
        if (ret == 0) {
            /* The L1 entry is gone on disk before its table looks free. */
            ret = bdrv_co_flush(bs->file);
        }
        if (ret == 0 && l2) {
            qcow2_meta_remove(s, l2, cs, QCOW2_META_L2);
            qcow2_cache_discard(&s->l2_cache, l2);
            ret = qcow2_co_update_refcount(bs, l2, cs, -1);
        }
    }
    if (ret == 0) {
        ret = qcow2_co_flush_caches(bs);
    }
    /* The last cluster still in use bounds the file. */
    for (last = (int64_t)(s->file_end >> s->cluster_bits) - 1; ret == 0 && last >= 0; last--) {
        uint64_t rc;

        ret = qcow2_co_get_refcount(bs, last, &rc);
        if (rc) {
            break;
        }
    }
    if (ret == 0 && (uint64_t)(last + 1) << s->cluster_bits < s->file_end) {
        s->file_end = (uint64_t)(last + 1) << s->cluster_bits;
        s->free_cluster_index = MIN(s->free_cluster_index, (uint64_t)(last + 1));
        ret = bdrv_co_truncate(bs->file, s->file_end, false, PREALLOC_MODE_OFF, NULL);
    }
    return ret;
}

/* Allocates the clusters of [from, to) that have none, L2 tables first,
 * then extends the file over them: sparse (metadata), fallocated or
 * written with zeroes (full). Lock held. */
static int coroutine_fn preallocate(BlockDriverState *bs, uint64_t from, uint64_t to,
                                    PreallocMode mode)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, pos = from & ~(uint64_t)(cs - 1);
    int64_t flen;
    int ret = 0;

    while (pos < to && ret == 0) {
        uint64_t entry, n, k;
        Qcow2ClusterType type;

        ret = qcow2_co_get_mapping(bs, pos, to - pos, &entry, &n);
        if (ret < 0) {
            break;
        }
        type = qcow2_cluster_type(s, entry);
        k = (n + cs - 1) >> s->cluster_bits;
        if (type == QCOW2_CLUSTER_UNALLOCATED || type == QCOW2_CLUSTER_ZERO_PLAIN) {
            g_autofree uint64_t *values = g_new(uint64_t, k);
            int64_t host;

            ret = qcow2_co_prepare_l2(bs, pos);
            host = ret < 0 ? ret : qcow2_co_alloc_clusters(bs, k);
            if (host < 0) {
                return (int)host;
            }
            for (uint64_t i = 0; i < k; i++) {
                /* Keep reading zeroes where the cluster was a zero cluster. */
                values[i] = ((uint64_t)host + (i << s->cluster_bits)) | QCOW2_OFLAG_COPIED |
                            (type == QCOW2_CLUSTER_ZERO_PLAIN ? QCOW2_OFLAG_ZERO : 0);
            }
            ret = qcow2_co_set_l2_entries(bs, pos, k, values);
        }
        pos += k << s->cluster_bits;
    }
    if (ret < 0) {
        return ret;
    }
    flen = bdrv_getlength(bs->file);
    if (flen < 0) {
        return (int)flen;
    }
    if (s->file_end > (uint64_t)flen) {
        ret = bdrv_co_truncate(bs->file, s->file_end, false,
                               mode == PREALLOC_MODE_METADATA ? PREALLOC_MODE_OFF : mode, NULL);
    }
    return ret;
}

static int coroutine_fn qcow2_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                          PreallocMode prealloc, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l2_span = (uint64_t)1 << (s->cluster_bits + s->l2_bits);
    uint64_t old = s->header.size;
    int ret;

    if (offset % 512) {
        qblk_error_set(errp, "The new size must be a multiple of 512");
        return -EINVAL;
    }
    if ((uint64_t)offset < old && prealloc != PREALLOC_MODE_OFF) {
        qblk_error_set(errp, "Preallocation can't be used for shrinking an image");
        return -EINVAL;
    }
    if ((uint64_t)offset != old && s->nb_snapshots) {
        qblk_error_set(errp, "Can't resize an image which has snapshots");
        return -ENOTSUP;
    }
    qco_mutex_lock(&s->lock);
    if ((uint64_t)offset < old) {
        ret = shrink(bs, offset);
    } else {
        ret = qcow2_co_grow_l1(bs, ((uint64_t)offset + l2_span - 1) / l2_span);
        if (ret == 0 && prealloc != PREALLOC_MODE_OFF) {
            ret = preallocate(bs, old, offset, prealloc);
        }
    }
    if (ret == 0) {
        s->header.size = offset;
        ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(size));
        if (ret < 0) {
            s->header.size = old;
        } else {
            qcow2_bitmaps_resize(s, offset);
        }
    }
    qco_mutex_unlock(&s->lock);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to resize the qcow2 image");
    }
    return ret;
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(BDRVQcow2State),
    .supports_backing = true,
    .probe = qcow2_probe,
    .co_open = qcow2_co_open,
    .co_close = qcow2_co_close,
    .co_reopen_prepare = qcow2_co_reopen_prepare,
    .co_create = qcow2_co_create,
    .create_opts = qcow2_create_opts,
    .co_preadv = qcow2_co_preadv,
    .co_pwritev = qcow2_co_pwritev,
    .co_pwrite_zeroes = qcow2_co_pwrite_zeroes,
    .co_pdiscard = qcow2_co_pdiscard,
    .co_flush = qcow2_co_flush,
    .co_block_status = qcow2_co_block_status,
    .co_truncate = qcow2_co_truncate,
    .co_check = qcow2_co_check,
    .getlength = qcow2_getlength,
    .get_info = qcow2_get_info,
    .get_specific_info = qcow2_get_specific_info,
    .snapshot_list = qcow2_snapshot_list,
    .co_snapshot_create = qcow2_co_snapshot_create,
    .co_snapshot_goto = qcow2_co_snapshot_goto,
    .co_snapshot_delete = qcow2_co_snapshot_delete,
    .co_save_vmstate = qcow2_co_save_vmstate,
    .amend_opts = qcow2_amend_opts,
    .co_amend = qcow2_co_amend,
    .co_load_vmstate = qcow2_co_load_vmstate,
    .co_make_empty = qcow2_co_make_empty,
    .co_bitmap_op = qcow2_co_bitmap_op,
    .co_change_backing_file = qcow2_co_change_backing_file,
    .measure = qcow2_measure,
};
