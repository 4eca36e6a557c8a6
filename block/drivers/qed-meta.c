/* QED metadata map: which host clusters hold the header, the L1 table and
 * each L2 table, so that every data write is checked against it first. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include "block/drivers/qed.h"

/* A tree value packs the owning structure's first byte offset (cluster
 * aligned, so at least 4 KiB aligned) with its kind in the low bits. */
#define KIND_MASK UINT64_C(3)

G_STATIC_ASSERT(sizeof(gpointer) == sizeof(uint64_t));
G_STATIC_ASSERT(QED_META_L2 <= KIND_MASK);

static gint compare_index(gconstpointer a, gconstpointer b, gpointer unused)
{
    uint64_t x = (uint64_t)(uintptr_t)a, y = (uint64_t)(uintptr_t)b;

    return x < y ? -1 : x > y;
}

/* "the L2 table at host offset 0x5000" and the like, for messages. */
static char *describe(QedMetaKind kind, uint64_t owner)
{
    switch (kind) {
    case QED_META_HEADER:
        return g_strdup("the QED header at host offset 0");
    case QED_META_L1:
        return g_strdup_printf("the L1 table at host offset %#" PRIx64, owner);
    default:
        return g_strdup_printf("the L2 table at host offset %#" PRIx64, owner);
    }
}

/* Adds the clusters [offset, offset + n clusters) of one structure. A
 * cluster some other structure already holds keeps its first owner; an
 * L2 table that meets one is recorded as bad (and so is the other table,
 * when it is an L2 table: two L1 entries sharing a table). */
static void add_range(BDRVQEDState *s, uint64_t offset, uint64_t n, QedMetaKind kind)
{
    uint64_t first = offset >> s->l2_shift;

    for (uint64_t c = first; c < first + n; c++) {
        gpointer old = g_tree_lookup(s->meta, (gpointer)(uintptr_t)c);

        if (!old) {
            g_tree_insert(s->meta, (gpointer)(uintptr_t)c, (gpointer)(uintptr_t)(offset | kind));
            continue;
        }
        if (kind == QED_META_L2) {
            uint64_t packed = (uint64_t)(uintptr_t)old;

            if (!s->bad_tables) {
                s->bad_tables = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                                      NULL);
            }
            /* The value is what the table overlaps (owner | kind). */
            if (!g_hash_table_contains(s->bad_tables, &offset)) {
                g_hash_table_insert(s->bad_tables, g_memdup2(&offset, sizeof(offset)),
                                    (gpointer)(uintptr_t)packed);
            }
            if ((packed & KIND_MASK) == QED_META_L2) {
                uint64_t other = packed & ~KIND_MASK;

                if (!g_hash_table_contains(s->bad_tables, &other)) {
                    g_hash_table_insert(s->bad_tables, g_memdup2(&other, sizeof(other)),
                                        (gpointer)(uintptr_t)(offset | kind));
                }
            }
        }
    }
}

void qed_meta_add_table(BDRVQEDState *s, uint64_t offset)
{
    add_range(s, offset, s->header.table_size, QED_META_L2);
}

void qed_meta_build(BDRVQEDState *s)
{
    qed_meta_free(s);
    s->meta = g_tree_new_full(compare_index, NULL, NULL, NULL);
    add_range(s, 0, s->header.header_size, QED_META_HEADER);
    add_range(s, s->header.l1_table_offset, s->header.table_size, QED_META_L1);
    for (uint32_t i = 0; i < s->table_nelems; i++) {
        /* Invalid pointers are refused where they are used (-EINVAL). */
        if (s->l1_table[i] && qed_valid_table_offset(s, s->l1_table[i])) {
            qed_meta_add_table(s, s->l1_table[i]);
        }
    }
}

void qed_meta_free(BDRVQEDState *s)
{
    g_clear_pointer(&s->meta, g_tree_destroy);
    g_clear_pointer(&s->bad_tables, g_hash_table_destroy);
}

QedMetaKind qed_meta_lookup(const BDRVQEDState *s, uint64_t offset, uint64_t len,
                            uint64_t *owner)
{
    uint64_t last;
    GTreeNode *node;
    uint64_t packed;

    if (!len || !s->meta) {
        return QED_META_NONE;
    }
    last = (offset + len - 1) >> s->l2_shift;
    node = g_tree_lower_bound(s->meta, (gpointer)(uintptr_t)(offset >> s->l2_shift));
    if (!node || (uint64_t)(uintptr_t)g_tree_node_key(node) > last) {
        return QED_META_NONE;
    }
    packed = (uint64_t)(uintptr_t)g_tree_node_value(node);
    *owner = packed & ~KIND_MASK;
    return packed & KIND_MASK;
}

/* Fails a write with -EIO; the first refusal on this image is reported
 * (QED has no on-disk corrupt flag to set), later ones only fail. */
static int G_GNUC_PRINTF(2, 3) refuse(BlockDriverState *bs, const char *fmt, ...)
{
    BDRVQEDState *s = bs->opaque;
    g_autofree char *what = NULL;
    g_autofree char *msg = NULL;
    va_list ap;

    if (s->overlap_reported) {
        return -EIO;
    }
    s->overlap_reported = true;
    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strdup_printf("Preventing invalid write on metadata of '%s' (%s); further "
                          "such writes fail silently", bs->filename, what);
    bdrv_report_corruption(&(BdrvCorruptionEvent) {
        .bs = bs, .format = "qed", .msg = msg, .marked = false });
    return -EIO;
}

int qed_meta_check_table(BlockDriverState *bs, uint64_t pos)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t l1 = s->l1_table[pos >> s->l1_shift];
    g_autofree char *with = NULL;
    gpointer hit;

    if (!l1 || !s->bad_tables ||
        !g_hash_table_lookup_extended(s->bad_tables, &l1, NULL, &hit)) {
        return 0;
    }
    with = describe((uint64_t)(uintptr_t)hit & KIND_MASK, (uint64_t)(uintptr_t)hit & ~KIND_MASK);
    return refuse(bs, "the L2 table at host offset %#" PRIx64 " for guest offset %#" PRIx64
                  " (L1 index %" PRIu64 ") overlaps with %s", l1, pos, pos >> s->l1_shift, with);
}

int qed_meta_check_data(BlockDriverState *bs, uint64_t pos, uint64_t host, uint64_t n)
{
    BDRVQEDState *s = bs->opaque;
    g_autofree char *with = NULL;
    uint64_t owner;
    QedMetaKind kind;
    /* The table first: a bad table's entries are not data offsets. */
    int ret = qed_meta_check_table(bs, pos);

    if (ret < 0) {
        return ret;
    }
    kind = qed_meta_lookup(s, host, n, &owner);
    if (kind == QED_META_NONE) {
        return 0;
    }
    with = describe(kind, owner);
    return refuse(bs, "guest offset %#" PRIx64 " maps to host offset %#" PRIx64
                  ", which overlaps with %s", pos, host, with);
}

int qed_meta_check_invalid(BlockDriverState *bs, uint64_t pos, QedClusterState state,
                           uint64_t raw, int ret)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;

    /* Only an aligned offset inside the header area is an overlap; any
     * other invalid entry stays -EINVAL, as for reads. */
    if (ret != -EINVAL || (state != QED_BAD_TABLE && state != QED_BAD_DATA) ||
        (raw & (cs - 1)) || raw >= (uint64_t)s->header.header_size * cs) {
        return ret;
    }
    if (state == QED_BAD_TABLE) {
        return refuse(bs, "the L2 table at host offset %#" PRIx64 " for guest offset %#"
                      PRIx64 " (L1 index %" PRIu64 ") overlaps with the QED header at host "
                      "offset 0", raw, pos, pos >> s->l1_shift);
    }
    return refuse(bs, "guest offset %#" PRIx64 " maps to host offset %#" PRIx64 ", which "
                  "overlaps with the QED header at host offset 0", pos, raw);
}
