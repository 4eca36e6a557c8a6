/* qcow2 metadata map: which host clusters hold which metadata structure,
 * kept up to date on allocation and free, so that every write to the file
 * is checked against it before it is issued, in O(log n). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

/* Each tree value packs one 4-bit count per kind: a cluster may (in a
 * corrupt image) be claimed by several structures at once. A count that
 * reaches 15 stays there, so such a cluster is never taken for free. */
#define KIND_BITS 4
#define KIND_MAX  ((1u << KIND_BITS) - 1)

G_STATIC_ASSERT(QCOW2_META__MAX * KIND_BITS <= 64);
G_STATIC_ASSERT(sizeof(gpointer) == sizeof(uint64_t));

static const char *const kind_names[QCOW2_META__MAX] = {
    [QCOW2_META_NONE] = "guest data",
    [QCOW2_META_HEADER] = "qcow2_header",
    [QCOW2_META_L1] = "active L1 table",
    [QCOW2_META_REFTABLE] = "refcount table",
    [QCOW2_META_REFBLOCK] = "refcount block",
    [QCOW2_META_L2] = "active L2 table",
    [QCOW2_META_SNAPSHOTS] = "snapshot table",
    [QCOW2_META_INACTIVE_L1] = "inactive L1 table",
    [QCOW2_META_INACTIVE_L2] = "inactive L2 table",
    [QCOW2_META_BITMAP_DIR] = "bitmap directory",
    [QCOW2_META_BITMAP_TABLE] = "bitmap table",
    [QCOW2_META_BITMAP_DATA] = "bitmap data",
};

const char *qcow2_meta_name(Qcow2MetaKind kind)
{
    return kind_names[kind];
}

static gint compare_index(gconstpointer a, gconstpointer b, gpointer unused)
{
    uint64_t x = (uint64_t)(uintptr_t)a, y = (uint64_t)(uintptr_t)b;

    return x < y ? -1 : x > y;
}

void qcow2_meta_init(BDRVQcow2State *s)
{
    s->meta = g_tree_new_full(compare_index, NULL, NULL, NULL);
}

void qcow2_meta_destroy(BDRVQcow2State *s)
{
    g_clear_pointer(&s->meta, g_tree_destroy);
}

static unsigned kind_count(uint64_t packed, Qcow2MetaKind kind)
{
    return (packed >> (kind * KIND_BITS)) & KIND_MAX;
}

/* Adds delta (+1 or -1) to kind's count on every cluster of the range. */
static void meta_adjust(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind,
                        int delta)
{
    uint64_t first, last;

    if (!len || offset + len < offset) {
        return;
    }
    first = offset >> s->cluster_bits;
    last = (offset + len - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        gpointer key = (gpointer)(uintptr_t)c;
        uint64_t packed = (uint64_t)(uintptr_t)g_tree_lookup(s->meta, key);
        unsigned n = kind_count(packed, kind);

        if (n == KIND_MAX || (delta < 0 && n == 0)) {
            continue;
        }
        if (delta > 0) {
            packed += (uint64_t)1 << (kind * KIND_BITS);
        } else {
            packed -= (uint64_t)1 << (kind * KIND_BITS);
        }
        if (packed) {
            g_tree_insert(s->meta, key, (gpointer)(uintptr_t)packed);
        } else {
            g_tree_remove(s->meta, key);
        }
    }
}

void qcow2_meta_add(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind)
{
    meta_adjust(s, offset, len, kind, 1);
}

void qcow2_meta_remove(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind)
{
    meta_adjust(s, offset, len, kind, -1);
}

Qcow2MetaKind qcow2_meta_overlap(const BDRVQcow2State *s, uint64_t offset, uint64_t len,
                                 Qcow2MetaKind own, uint64_t *where)
{
    uint64_t first, last;
    GTreeNode *node;

    if (!len) {
        return QCOW2_META_NONE;
    }
    if (offset + len < offset) {
        *where = 0;
        return QCOW2_META_HEADER;   /* wraps around: nothing sane to allow */
    }
    first = offset >> s->cluster_bits;
    last = (offset + len - 1) >> s->cluster_bits;
    for (node = g_tree_lower_bound(s->meta, (gpointer)(uintptr_t)first); node;
         node = g_tree_node_next(node)) {
        uint64_t c = (uint64_t)(uintptr_t)g_tree_node_key(node);
        uint64_t packed = (uint64_t)(uintptr_t)g_tree_node_value(node);

        if (c > last) {
            break;
        }
        for (int k = QCOW2_META_NONE + 1; k < QCOW2_META__MAX; k++) {
            /* The L2 cache also writes tables a snapshot shares (their
             * COPIED flags change when snapshots come and go). */
            if (k != (int)own && !(own == QCOW2_META_L2 && k == QCOW2_META_INACTIVE_L2) &&
                kind_count(packed, k)) {
                *where = c << s->cluster_bits;
                return k;
            }
        }
    }
    return QCOW2_META_NONE;
}

bool qcow2_meta_is_metadata(const BDRVQcow2State *s, uint64_t cluster_index,
                            Qcow2MetaKind *kind)
{
    uint64_t where;

    *kind = qcow2_meta_overlap(s, cluster_index << s->cluster_bits, 1, QCOW2_META_NONE, &where);
    return *kind != QCOW2_META_NONE;
}

int coroutine_fn qcow2_co_check_write(BlockDriverState *bs, uint64_t offset, uint64_t len,
                                      Qcow2MetaKind own)
{
    uint64_t where;
    Qcow2MetaKind hit = qcow2_meta_overlap(bs->opaque, offset, len, own, &where);

    if (hit == QCOW2_META_NONE) {
        return 0;
    }
    return qcow2_co_mark_corrupt(bs, "Preventing invalid write on metadata (overlaps with %s "
                                 "at host offset %#" PRIx64 ")", qcow2_meta_name(hit), where);
}

int coroutine_fn qcow2_co_pwrite_meta(BlockDriverState *bs, Qcow2MetaKind own, uint64_t offset,
                                      uint64_t len, const void *buf)
{
    int ret = qcow2_co_check_write(bs, offset, len, own);

    return ret < 0 ? ret : bdrv_co_pwrite(bs->file, offset, len, buf, 0);
}

/* Bitmap directory entries are at least this long, and the directory at
 * most this long (QEMU's limits: 65535 bitmaps of at most 1 KiB). */
#define BITMAP_DIR_ENTRY_MIN QCOW2_BITMAP_DIR_ENTRY_MIN
#define BITMAP_TABLE_OFFSET_MASK UINT64_C(0x00fffffffffffe00)

int coroutine_fn qcow2_co_read_bitmap_dir(BlockDriverState *bs, uint8_t **dir, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t flen = bdrv_getlength(bs->file);
    int ret;

    *dir = NULL;
    if (flen < 0) {
        qblk_error_set_errno(errp, (int)-flen, "Could not get the qcow2 file length");
        return (int)flen;
    }
    if (s->bitmaps_dir_size > QCOW2_BITMAP_DIR_MAX ||
        s->bitmaps_dir_size < QCOW2_BITMAP_DIR_ENTRY_MIN ||
        (s->bitmaps_dir_offset & (s->cluster_size - 1)) ||
        s->bitmaps_dir_offset + s->bitmaps_dir_size > (uint64_t)flen) {
        qblk_error_set(errp, "bitmap directory (offset %#" PRIx64 ", size %" PRIu64
                       ") is invalid", s->bitmaps_dir_offset, s->bitmaps_dir_size);
        return -EINVAL;
    }
    *dir = g_malloc(s->bitmaps_dir_size);
    ret = bdrv_co_pread(bs->file, s->bitmaps_dir_offset, s->bitmaps_dir_size, *dir, 0);
    if (ret < 0) {
        g_clear_pointer(dir, g_free);
        qblk_error_set_errno(errp, -ret, "Could not read the bitmap directory");
        return ret;
    }
    return 0;
}

int coroutine_fn qcow2_co_walk_bitmaps(BlockDriverState *bs, Qcow2RefFn *fn, void *opaque,
                                       GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *dir = NULL;
    uint64_t pos = 0;
    int64_t flen;
    int ret;

    if (!s->bitmaps_in_use) {
        return 0;
    }
    ret = qcow2_co_read_bitmap_dir(bs, &dir, errp);
    if (ret < 0) {
        return ret;
    }
    flen = bdrv_getlength(bs->file);
    fn(opaque, s->bitmaps_dir_offset, s->bitmaps_dir_size, QCOW2_META_BITMAP_DIR);
    for (uint32_t i = 0; i < s->bitmaps_nb; i++) {
        uint64_t table_offset, table_bytes, entry_len;
        uint32_t table_size;
        g_autofree uint8_t *table = NULL;

        if (pos + BITMAP_DIR_ENTRY_MIN > s->bitmaps_dir_size) {
            qblk_error_set(errp, "bitmap directory entry %" PRIu32 " runs past the "
                           "directory's end", i);
            return -EINVAL;
        }
        table_offset = qblk_ld_be64(dir + pos);
        table_size = qblk_ld_be32(dir + pos + 8);
        entry_len = (BITMAP_DIR_ENTRY_MIN + (uint64_t)qblk_ld_be32(dir + pos + 20) +
                     qblk_ld_be16(dir + pos + 18) + 7) & ~UINT64_C(7);
        table_bytes = (uint64_t)table_size * 8;
        if ((table_offset & (s->cluster_size - 1)) || table_offset + table_bytes > (uint64_t)flen) {
            qblk_error_set(errp, "bitmap %" PRIu32 ": table (offset %#" PRIx64 ", %" PRIu32
                           " entries) is invalid", i, table_offset, table_size);
            return -EINVAL;
        }
        fn(opaque, table_offset, table_bytes, QCOW2_META_BITMAP_TABLE);
        table = table_bytes ? g_try_malloc(table_bytes) : NULL;
        if (table_bytes && !table) {
            qblk_error_set(errp, "bitmap %" PRIu32 ": no memory for its table", i);
            return -ENOMEM;
        }
        ret = table_bytes ? bdrv_co_pread(bs->file, table_offset, table_bytes, table, 0) : 0;
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read bitmap table %" PRIu32, i);
            return ret;
        }
        for (uint32_t j = 0; j < table_size; j++) {
            uint64_t data = qblk_ld_be64(table + 8 * j) & BITMAP_TABLE_OFFSET_MASK;

            if (data) {
                fn(opaque, data, s->cluster_size, QCOW2_META_BITMAP_DATA);
            }
        }
        pos += entry_len;
    }
    return 0;
}

static void add_ref(void *opaque, uint64_t offset, uint64_t len, Qcow2MetaKind kind)
{
    qcow2_meta_add(opaque, offset, len, kind);
}

/* Snapshot L1 tables are read to find their L2 tables up to this many
 * bytes in all; past it only the L1 tables themselves are guarded (the
 * L2 tables they share with the active one are guarded anyway). */
#define INACTIVE_L1_BUDGET (256u << 20)

int coroutine_fn qcow2_co_meta_build(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t budget = INACTIVE_L1_BUDGET;

    qcow2_meta_add(s, 0, s->cluster_size, QCOW2_META_HEADER);
    qcow2_meta_add(s, s->header.l1_table_offset, (uint64_t)s->l1_size * 8, QCOW2_META_L1);
    qcow2_meta_add(s, s->header.refcount_table_offset,
                   (uint64_t)s->header.refcount_table_clusters << s->cluster_bits,
                   QCOW2_META_REFTABLE);
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        qcow2_meta_add(s, s->refcount_table[i], s->refcount_table[i] ? s->cluster_size : 0,
                       QCOW2_META_REFBLOCK);
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2 = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK;

        qcow2_meta_add(s, l2, l2 ? s->cluster_size : 0, QCOW2_META_L2);
    }
    if (s->nb_snapshots) {
        qcow2_meta_add(s, s->header.snapshots_offset, s->snapshots_size,
                       QCOW2_META_SNAPSHOTS);
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        uint64_t bytes = (uint64_t)sn->l1_size * 8;
        g_autofree uint8_t *l1 = NULL;
        int ret;

        qcow2_meta_add(s, sn->l1_table_offset, bytes, QCOW2_META_INACTIVE_L1);
        if (!bytes || bytes > budget) {
            continue;
        }
        budget -= bytes;
        l1 = g_malloc(bytes);
        ret = bdrv_co_pread(bs->file, sn->l1_table_offset, bytes, l1, 0);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read the L1 table of snapshot %"
                                 PRIu32, i);
            return ret;
        }
        for (uint32_t j = 0; j < sn->l1_size; j++) {
            uint64_t l2 = qblk_ld_be64(l1 + 8 * j) & QCOW2_L1E_OFFSET_MASK;

            qcow2_meta_add(s, l2, l2 ? s->cluster_size : 0, QCOW2_META_INACTIVE_L2);
        }
    }
    /* Bitmaps qblk cannot parse are left to check to report: their
     * clusters are referenced, so allocation never hands them out. */
    qcow2_co_walk_bitmaps(bs, add_ref, s, NULL);
    return 0;
}
