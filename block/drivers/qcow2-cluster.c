/* qcow2 mapping: L2 entry classification, guest-to-host lookups through
 * L1 and the L2 cache, L2 entry updates (allocating or copying shared L2
 * tables), and L1 growth. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

Qcow2ClusterType qcow2_cluster_type(const BDRVQcow2State *s, uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if ((e & QCOW2_OFLAG_ZERO) && s->header.version >= 3) {
        return (e & QCOW2_L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    return (e & QCOW2_L2E_OFFSET_MASK) ? QCOW2_CLUSTER_NORMAL : QCOW2_CLUSTER_UNALLOCATED;
}

void qcow2_compressed_range(const BDRVQcow2State *s, uint64_t e, uint64_t *host, uint64_t *len)
{
    uint64_t nsect = ((e >> s->csize_shift) & s->csize_mask) + 1;

    *host = (e & s->coffset_mask) & ~UINT64_C(511);
    *len = nsect * 512;
}

/* The L2 table offset for guest offset, or 0; -EIO for a corrupt entry. */
static int coroutine_fn l2_offset_for(BlockDriverState *bs, uint64_t offset, uint64_t *l2)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->l2_bits);

    *l2 = 0;
    if (l1_index >= s->l1_size) {
        return 0;
    }
    *l2 = s->l1_table[l1_index] & QCOW2_L1E_OFFSET_MASK;
    if (*l2 & (s->cluster_size - 1)) {
        return qcow2_co_mark_corrupt(bs, "L2 table offset %#" PRIx64 " unaligned "
                                     "(L1 index: %#" PRIx64 ")", *l2, l1_index);
    }
    if (*l2 && *l2 >= s->file_end) {
        return qcow2_co_mark_corrupt(bs, "L2 table offset %#" PRIx64 " past the end of the "
                                     "file (L1 index: %#" PRIx64 ")", *l2, l1_index);
    }
    return 0;
}

int coroutine_fn qcow2_co_get_mapping(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                      uint64_t *entry, uint64_t *n_bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t in_cluster = offset & (s->cluster_size - 1);
    uint64_t l2_index = (offset >> s->cluster_bits) & (s->l2_size - 1);
    uint64_t span = ((uint64_t)(s->l2_size - l2_index) << s->cluster_bits) - in_cluster;
    uint64_t l2_off, n = 1, e;
    Qcow2ClusterType type;
    uint8_t *table;
    int ret = l2_offset_for(bs, offset, &l2_off);

    if (ret < 0) {
        return ret;
    }
    bytes = MIN(bytes, span);
    if (!l2_off) {
        *entry = 0;
        *n_bytes = bytes;
        return 0;
    }
    ret = qcow2_co_cache_get(bs, &s->l2_cache, l2_off, false, &table);
    if (ret < 0) {
        return ret;
    }
    e = qblk_ld_be64(table + 8 * l2_index);
    type = qcow2_cluster_type(s, e);
    if (s->header.version < 3 && type != QCOW2_CLUSTER_COMPRESSED && (e & QCOW2_OFLAG_ZERO)) {
        /* Bit 0 is reserved before v3: neither the data nor the backing
         * file's can be trusted to be what the writer meant. */
        qcow2_cache_put(&s->l2_cache, table);
        return qcow2_co_mark_corrupt(bs, "Zero cluster entry found in pre-v3 image (L2 offset: "
                                     "%#" PRIx64 ", L2 index: %#" PRIx64 ")", l2_off, l2_index);
    }
    if ((type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
        ((e & QCOW2_L2E_OFFSET_MASK & (s->cluster_size - 1)) ||
         (type == QCOW2_CLUSTER_NORMAL && (e & QCOW2_L2E_OFFSET_MASK) >= s->file_end))) {
        qcow2_cache_put(&s->l2_cache, table);
        return qcow2_co_mark_corrupt(bs, "Cluster allocation offset %#" PRIx64 " %s "
                                     "(L2 offset: %#" PRIx64 ", L2 index: %#" PRIx64 ")",
                                     e & QCOW2_L2E_OFFSET_MASK,
                                     (e & QCOW2_L2E_OFFSET_MASK & (s->cluster_size - 1))
                                     ? "unaligned" : "past the end of the file",
                                     l2_off, l2_index);
    }
    if (type != QCOW2_CLUSTER_COMPRESSED) {
        uint64_t want = (in_cluster + bytes + s->cluster_size - 1) >> s->cluster_bits;

        while (n < want) {
            uint64_t next = qblk_ld_be64(table + 8 * (l2_index + n));

            if (qcow2_cluster_type(s, next) != type) {
                break;
            }
            if ((type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) &&
                next != e + (n << s->cluster_bits)) {
                break;      /* not contiguous, or different flags */
            }
            if ((next & QCOW2_OFLAG_COPIED) != (e & QCOW2_OFLAG_COPIED)) {
                break;
            }
            n++;
        }
    }
    qcow2_cache_put(&s->l2_cache, table);
    *entry = e;
    *n_bytes = MIN(bytes, (n << s->cluster_bits) - in_cluster);
    return 0;
}

static int coroutine_fn write_l1_entry(BlockDriverState *bs, uint64_t index)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t buf[8];
    int ret;

    qblk_st_be64(buf, s->l1_table[index]);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L1, s->header.l1_table_offset + index * 8, 8, buf);
    return ret < 0 ? ret : bdrv_co_flush(bs->file);
}

/* A writable (COPIED) L2 table for guest offset: allocated when missing,
 * copied when shared with a snapshot. Returned pinned. */
static int coroutine_fn get_writable_l2(BlockDriverState *bs, uint64_t offset, uint8_t **out)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_index = offset >> (s->cluster_bits + s->l2_bits);
    uint64_t old_l2, l1e;
    uint8_t *table;
    int64_t new_l2;
    int ret;

    if (l1_index >= s->l1_size) {
        return qcow2_co_mark_corrupt(bs, "guest offset %#" PRIx64 " beyond the L1 table "
                                     "(%" PRIu32 " entries)", offset, s->l1_size);
    }
    ret = l2_offset_for(bs, offset, &old_l2);
    if (ret < 0) {
        return ret;
    }
    l1e = s->l1_table[l1_index];
    if (old_l2 && (l1e & QCOW2_OFLAG_COPIED)) {
        return qcow2_co_cache_get(bs, &s->l2_cache, old_l2, false, out);
    }
    new_l2 = qcow2_co_alloc_clusters(bs, 1);
    if (new_l2 < 0) {
        return (int)new_l2;
    }
    qcow2_meta_add(s, new_l2, s->cluster_size, QCOW2_META_L2);
    ret = qcow2_co_cache_get(bs, &s->l2_cache, new_l2, true, &table);
    if (ret < 0) {
        return ret;
    }
    if (old_l2) {
        uint8_t *old;

        ret = qcow2_co_cache_get(bs, &s->l2_cache, old_l2, false, &old);
        if (ret < 0) {
            qcow2_cache_put(&s->l2_cache, table);
            return ret;
        }
        memcpy(table, old, s->cluster_size);
        qcow2_cache_put(&s->l2_cache, old);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, table);
    /* The new table (and the refcounts it relies on) reach the disk before
     * L1 points at it: the cache flush writes it, the file flush makes it
     * stable (without it the L1 entry could land first, pointing past the
     * end of the file after a crash). */
    ret = qcow2_co_cache_flush(bs, &s->l2_cache);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret == 0) {
        s->l1_table[l1_index] = (uint64_t)new_l2 | QCOW2_OFLAG_COPIED;
        ret = write_l1_entry(bs, l1_index);
        if (ret < 0) {
            s->l1_table[l1_index] = l1e;
        }
    }
    if (ret == 0 && old_l2) {
        /* A snapshot may still use it: then it is an inactive L2 table. */
        qcow2_meta_remove(s, old_l2, s->cluster_size, QCOW2_META_L2);
        ret = qcow2_co_update_refcount(bs, old_l2, 1, -1);
    }
    if (ret < 0) {
        qcow2_cache_put(&s->l2_cache, table);
        return ret;
    }
    *out = table;
    return 0;
}

int coroutine_fn qcow2_co_prepare_l2(BlockDriverState *bs, uint64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    uint8_t *table;
    int ret = get_writable_l2(bs, offset, &table);

    if (ret == 0) {
        qcow2_cache_put(&s->l2_cache, table);
    }
    return ret;
}

int coroutine_fn qcow2_co_set_l2_entries(BlockDriverState *bs, uint64_t offset, uint64_t n,
                                         const uint64_t *values)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l2_index = (offset >> s->cluster_bits) & (s->l2_size - 1);
    uint8_t *table;
    int ret;

    g_assert(l2_index + n <= s->l2_size);
    ret = get_writable_l2(bs, offset, &table);
    if (ret < 0) {
        return ret;
    }
    for (uint64_t i = 0; i < n; i++) {
        qblk_st_be64(table + 8 * (l2_index + i), values[i]);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, table);
    qcow2_cache_put(&s->l2_cache, table);
    return 0;
}

int coroutine_fn qcow2_co_grow_l1(BlockDriverState *bs, uint32_t new_size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old_offset = s->header.l1_table_offset, old_size = s->l1_size;
    g_autofree uint8_t *buf = NULL;
    uint8_t hdr[12];
    int64_t off;
    int ret;

    if (new_size <= s->l1_size) {
        return 0;
    }
    if ((uint64_t)new_size * 8 > QCOW2_MAX_L1_BYTES) {
        return -EFBIG;
    }
    off = qcow2_co_alloc_clusters(bs, ((uint64_t)new_size * 8 + s->cluster_size - 1) >>
                                      s->cluster_bits);
    if (off < 0) {
        return (int)off;
    }
    qcow2_meta_add(s, off, (uint64_t)new_size * 8, QCOW2_META_L1);
    buf = g_malloc0((uint64_t)new_size * 8);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        qblk_st_be64(buf + 8 * i, s->l1_table[i]);
    }
    ret = qcow2_co_cache_flush(bs, &s->refblock_cache);
    if (ret == 0) {
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L1, off, (uint64_t)new_size * 8, buf);
    }
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    qblk_st_be32(hdr, new_size);
    qblk_st_be64(hdr + 4, off);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, QCOW2_HDR_OFF(l1_size),
                               sizeof(hdr), hdr);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->l1_table = g_realloc(s->l1_table, (uint64_t)new_size * 8);
    memset(s->l1_table + s->l1_size, 0, (uint64_t)(new_size - s->l1_size) * 8);
    s->l1_size = new_size;
    s->header.l1_size = new_size;
    s->header.l1_table_offset = off;
    qcow2_meta_remove(s, old_offset, old_size * 8, QCOW2_META_L1);
    return old_size ? qcow2_co_update_refcount(bs, old_offset, old_size * 8, -1) : 0;
}
