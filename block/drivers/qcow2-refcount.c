/* qcow2 refcounts: reading and updating cluster refcounts of any width,
 * allocating refcount blocks and growing the refcount table, and first-fit
 * cluster allocation that reuses freed clusters. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

uint64_t qcow2_refblock_get(const BDRVQcow2State *s, const uint8_t *block, uint64_t i)
{
    uint32_t bits = s->refcount_bits;

    if (bits < 8) {
        uint64_t bit = i * bits;

        return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
    }
    switch (bits) {
    case 8: return block[i];
    case 16: return qblk_ld_be16(block + 2 * i);
    case 32: return qblk_ld_be32(block + 4 * i);
    default: return qblk_ld_be64(block + 8 * i);
    }
}

void qcow2_refblock_set(const BDRVQcow2State *s, uint8_t *block, uint64_t i, uint64_t v)
{
    uint32_t bits = s->refcount_bits;

    if (bits < 8) {
        uint64_t bit = i * bits;
        uint8_t mask = ((1u << bits) - 1) << (bit % 8);

        block[bit / 8] = (block[bit / 8] & ~mask) | ((v << (bit % 8)) & mask);
        return;
    }
    switch (bits) {
    case 8: block[i] = v; break;
    case 16: qblk_st_be16(block + 2 * i, (uint16_t)v); break;
    case 32: qblk_st_be32(block + 4 * i, v); break;
    default: qblk_st_be64(block + 8 * i, v); break;
    }
}

/* The refcount block of table index t (0: none). One past the end of the
 * file is corruption: reading it would invent zero refcounts and writing
 * it would grow the file to wherever the entry points. During check it
 * reads as zeroes, as QEMU's check reads it, so the report is complete. */
static int coroutine_fn refblock_offset(BlockDriverState *bs, uint64_t t, bool for_write,
                                       uint64_t *offset)
{
    BDRVQcow2State *s = bs->opaque;

    *offset = t < s->refcount_table_size ? s->refcount_table[t] : 0;
    if (*offset && *offset >= s->file_end) {
        if (s->in_check && !for_write) {
            *offset = 0;
            return 0;
        }
        return qcow2_co_mark_corrupt(bs, "Refblock offset %#" PRIx64 " past the end of the "
                                     "file (reftable index: %#" PRIx64 ")", *offset, t);
    }
    return 0;
}

int coroutine_fn qcow2_co_get_refcount(BlockDriverState *bs, uint64_t cluster_index,
                                       uint64_t *refcount)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t t = cluster_index >> s->refblock_bits, offset;
    uint8_t *block;
    int ret;

    *refcount = 0;
    ret = refblock_offset(bs, t, false, &offset);
    if (ret < 0 || !offset) {
        return ret;
    }
    ret = qcow2_co_cache_get(bs, &s->refblock_cache, offset, false, &block);
    if (ret < 0) {
        return ret;
    }
    *refcount = qcow2_refblock_get(s, block,
                                   cluster_index & ((UINT64_C(1) << s->refblock_bits) - 1));
    qcow2_cache_put(&s->refblock_cache, block);
    return 0;
}

/* First index of n contiguous free clusters, scanning from the hint and
 * leaving the hint past them, as QEMU does: images allocated the same way
 * get the same layout. */
static int coroutine_fn find_free(BlockDriverState *bs, uint64_t n, uint64_t *index)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end_index = s->file_end >> s->cluster_bits;
    uint64_t run = 0;

    while (run < n) {
        uint64_t idx = s->free_cluster_index++, rc;
        Qcow2MetaKind kind;
        int ret;

        if ((idx << s->cluster_bits) >> s->cluster_bits != idx ||
            (idx << s->cluster_bits) > QCOW2_L2E_OFFSET_MASK) {
            return -EFBIG;
        }
        /* Past the file's end only leaked refcounts can be found (a crash
         * between allocation and write), a few clusters long: a long run
         * of them means the refcounts are garbage, and scanning them one
         * by one could take hours. */
        if (idx > end_index + MAX(n, QCOW2_MAX_SCAN_PAST_END)) {
            return qcow2_co_mark_corrupt(bs, "no free cluster in the %" PRIu64 " clusters past "
                                         "the end of the file: refcounts are corrupt",
                                         (uint64_t)MAX(n, QCOW2_MAX_SCAN_PAST_END));
        }
        ret = qcow2_co_get_refcount(bs, idx, &rc);
        if (ret < 0) {
            return ret;
        }
        if (!rc && qcow2_meta_is_metadata(s, idx, &kind)) {
            /* A structure in use counted as free: handing it out would
             * let a write destroy it. */
            return qcow2_co_mark_corrupt(bs, "Preventing invalid allocation of cluster %#"
                                         PRIx64 ", which holds the %s, but has refcount 0",
                                         idx << s->cluster_bits, qcow2_meta_name(kind));
        }
        run = rc ? 0 : run + 1;
    }
    *index = s->free_cluster_index - n;
    return 0;
}

static int coroutine_fn grow_reftable(BlockDriverState *bs, uint64_t min_entries);

/* Writes a new refcount structure at offset, then makes it and every
 * cached refcount stable: nothing may point at it before that. */
static int coroutine_fn write_stable(BlockDriverState *bs, Qcow2MetaKind kind, uint64_t offset,
                                     uint64_t len, const void *buf)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qcow2_meta_add(s, offset, len, kind);
    ret = qcow2_co_pwrite_meta(bs, kind, offset, len, buf);

    if (ret == 0) {
        ret = qcow2_co_cache_flush(bs, &s->refblock_cache);
    }
    return ret < 0 ? ret : bdrv_co_flush(bs->file);
}

/* Makes sure the refcount block for table index t exists. */
static int coroutine_fn ensure_refblock(BlockDriverState *bs, uint64_t t)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_block = UINT64_C(1) << s->refblock_bits;
    g_autofree uint8_t *block = NULL;
    uint64_t b, entry;
    int ret;

    for (int tries = 0; tries < 64; tries++) {
        if (t < s->refcount_table_size && s->refcount_table[t]) {
            return 0;
        }
        if (t >= s->refcount_table_size) {
            ret = grow_reftable(bs, t + 1);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        ret = find_free(bs, 1, &b);
        if (ret < 0) {
            return ret;
        }
        if (b / per_block != t) {
            /* The new block is counted by another block: that one first. */
            uint64_t u = b / per_block;

            if (u >= s->refcount_table_size || !s->refcount_table[u]) {
                ret = ensure_refblock(bs, u);
                if (ret < 0) {
                    return ret;
                }
                /* b is still free: look again from there. */
                s->free_cluster_index = MIN(s->free_cluster_index, b);
                continue;
            }
            ret = qcow2_co_update_refcount(bs, b << s->cluster_bits, 1, 1);
            if (ret < 0) {
                return ret;
            }
        }
        block = g_malloc0(s->cluster_size);
        if (b / per_block == t) {
            qcow2_refblock_set(s, block, b % per_block, 1);
        }
        ret = write_stable(bs, QCOW2_META_REFBLOCK, b << s->cluster_bits, s->cluster_size,
                           block);
        if (ret < 0) {
            return ret;
        }
        s->file_end = MAX(s->file_end, (b + 1) << s->cluster_bits);
        qblk_st_be64((uint8_t *)&entry, b << s->cluster_bits);
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_REFTABLE,
                                   s->header.refcount_table_offset + t * 8, 8, &entry);
        if (ret == 0) {
            ret = bdrv_co_flush(bs->file);
        }
        if (ret < 0) {
            return ret;
        }
        s->refcount_table[t] = b << s->cluster_bits;
        return 0;
    }
    return -EIO;
}

/* Moves the refcount table to the end of the file with room for at least
 * min_entries, together with the refcount blocks that count the new area. */
static int coroutine_fn grow_reftable(BlockDriverState *bs, uint64_t min_entries)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_block = UINT64_C(1) << s->refblock_bits;
    uint64_t entries_per_cluster = s->cluster_size / 8;
    uint64_t start = (s->file_end + s->cluster_size - 1) >> s->cluster_bits;
    uint64_t new_entries = MAX(min_entries, (uint64_t)s->refcount_table_size * 3 / 2 + 1);
    uint64_t table_clusters, nblocks = 0, old_offset = s->header.refcount_table_offset;
    uint64_t old_clusters = s->header.refcount_table_clusters;
    g_autofree uint64_t *table = NULL;
    g_autofree uint8_t *tbuf = NULL;
    g_autofree uint8_t *block = NULL;
    uint8_t hdr[12];
    int ret;

    /* Fail before the loops below, which run over the new area's size:
     * a corrupt offset can ask for any size. */
    if (min_entries > QCOW2_MAX_REFTABLE_BYTES / 8) {
        return -EFBIG;
    }
    /* Blocks for the regions of the new area that have none, found by
     * iterating until the area stops growing. */
    for (;;) {
        uint64_t end, need = 0;

        table_clusters = (new_entries + entries_per_cluster - 1) / entries_per_cluster;
        end = start + table_clusters + nblocks;
        new_entries = MAX(new_entries, (end - 1) / per_block + 1);
        for (uint64_t r = start / per_block; r <= (end - 1) / per_block; r++) {
            if (r >= s->refcount_table_size || !s->refcount_table[r]) {
                need++;
            }
        }
        if (need == nblocks &&
            table_clusters == (new_entries + entries_per_cluster - 1) / entries_per_cluster) {
            break;
        }
        nblocks = need;
    }
    if (table_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        return -EFBIG;
    }
    table = g_new0(uint64_t, table_clusters * entries_per_cluster);
    memcpy(table, s->refcount_table, s->refcount_table_size * sizeof(uint64_t));
    block = g_malloc(s->cluster_size);
    {
        uint64_t end = start + table_clusters + nblocks, next_block = start + table_clusters;

        for (uint64_t r = start / per_block; r <= (end - 1) / per_block; r++) {
            if (table[r]) {
                continue;
            }
            memset(block, 0, s->cluster_size);
            for (uint64_t c = MAX(start, r * per_block); c < MIN(end, (r + 1) * per_block); c++) {
                qcow2_refblock_set(s, block, c % per_block, 1);
            }
            qcow2_meta_add(s, next_block << s->cluster_bits, s->cluster_size,
                           QCOW2_META_REFBLOCK);
            ret = qcow2_co_pwrite_meta(bs, QCOW2_META_REFBLOCK, next_block << s->cluster_bits,
                                       s->cluster_size, block);
            if (ret < 0) {
                return ret;
            }
            table[r] = next_block << s->cluster_bits;
            next_block++;
        }
        /* Area clusters in regions that already had a block. */
        for (uint64_t c = start; c < end; c++) {
            uint64_t r = c / per_block;

            if (r < s->refcount_table_size && s->refcount_table[r]) {
                ret = qcow2_co_update_refcount(bs, c << s->cluster_bits, 1, 1);
                if (ret < 0) {
                    return ret;
                }
            }
        }
        s->file_end = MAX(s->file_end, end << s->cluster_bits);
    }
    tbuf = g_malloc(table_clusters * s->cluster_size);
    for (uint64_t i = 0; i < table_clusters * entries_per_cluster; i++) {
        qblk_st_be64(tbuf + 8 * i, table[i]);
    }
    ret = write_stable(bs, QCOW2_META_REFTABLE, start << s->cluster_bits,
                       table_clusters * s->cluster_size, tbuf);
    if (ret < 0) {
        return ret;
    }
    qblk_st_be64(hdr, start << s->cluster_bits);
    qblk_st_be32(hdr + 8, table_clusters);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, QCOW2_HDR_OFF(refcount_table_offset),
                               sizeof(hdr), hdr);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->header.refcount_table_offset = start << s->cluster_bits;
    s->header.refcount_table_clusters = table_clusters;
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&table);
    s->refcount_table_size = table_clusters * entries_per_cluster;
    qcow2_meta_remove(s, old_offset, old_clusters << s->cluster_bits, QCOW2_META_REFTABLE);
    return qcow2_co_update_refcount(bs, old_offset, old_clusters * s->cluster_size, -1);
}

int coroutine_fn qcow2_co_update_refcount(BlockDriverState *bs, uint64_t offset,
                                          uint64_t len, int64_t addend)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t first = offset >> s->cluster_bits;
    uint64_t last = (offset + len - 1) >> s->cluster_bits;
    uint64_t per_block = UINT64_C(1) << s->refblock_bits;

    if (!len) {
        return 0;
    }
    if (addend < 0) {
        /* A cluster must not look free on disk while a table on disk still
         * points at it (it could be handed out twice after a crash): the
         * L2 changes that dropped the references go first. */
        bool wrote = qcow2_cache_is_dirty(&s->l2_cache);
        int ret = qcow2_co_cache_flush(bs, &s->l2_cache);

        /* Written is not stable: the tables reach the disk before the
         * refcount block that frees what they no longer reference. */
        if (ret == 0 && wrote) {
            ret = bdrv_co_flush(bs->file);
        }
        if (ret < 0) {
            return ret;
        }
    }
    for (uint64_t c = first; c <= last; c++) {
        uint64_t t = c >> s->refblock_bits, v, offset;
        uint8_t *block;
        int ret = refblock_offset(bs, t, true, &offset);

        if (ret < 0) {
            return ret;
        }
        if (!offset && addend < 0) {
            /* No block counts it: its refcount is 0 and stays so. Building
             * refcount structures to hold that would let a corrupt entry
             * grow the file to wherever it points. */
            return qcow2_co_mark_corrupt(bs, "refcount of cluster %" PRIu64 " would go from "
                                         "0 to out of range (%+" PRId64 ")", c, addend);
        }
        if (!offset) {
            ret = ensure_refblock(bs, t);
            if (ret < 0) {
                return ret;
            }
            offset = s->refcount_table[t];
        }
        ret = qcow2_co_cache_get(bs, &s->refblock_cache, offset, false, &block);
        if (ret < 0) {
            return ret;
        }
        v = qcow2_refblock_get(s, block, c % per_block);
        if ((addend < 0 && v < (uint64_t)-addend) ||
            (addend > 0 && s->refcount_max - v < (uint64_t)addend)) {
            qcow2_cache_put(&s->refblock_cache, block);
            return qcow2_co_mark_corrupt(bs, "refcount of cluster %" PRIu64 " would go from %"
                                         PRIu64 " to out of range (%+" PRId64 ")", c, v, addend);
        }
        v += addend;
        qcow2_refblock_set(s, block, c % per_block, v);
        qcow2_cache_mark_dirty(&s->refblock_cache, block);
        qcow2_cache_put(&s->refblock_cache, block);
        if (v == 0) {
            s->free_cluster_index = MIN(s->free_cluster_index, c);
            if (s->free_byte_offset >> s->cluster_bits == c) {
                s->free_byte_offset = 0;    /* never pack into a freed cluster */
            }
            qcow2_cache_discard(&s->l2_cache, c << s->cluster_bits);
        }
    }
    return 0;
}

int coroutine_fn qcow2_co_set_refcount(BlockDriverState *bs, uint64_t cluster_index,
                                       uint64_t value)
{
    uint64_t cur;
    int ret = qcow2_co_get_refcount(bs, cluster_index, &cur);

    if (ret < 0 || cur == value) {
        return ret;
    }
    return qcow2_co_update_refcount(bs, cluster_index << ((BDRVQcow2State *)bs->opaque)->cluster_bits,
                                    1, (int64_t)value - (int64_t)cur);
}

int64_t coroutine_fn qcow2_co_alloc_clusters(BlockDriverState *bs, uint64_t n)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t idx;
    int ret = find_free(bs, n, &idx);

    if (ret < 0) {
        return ret;
    }
    /* Refcount blocks this range needs go after it (the hint is past it
     * now), so the range stays free while they are created. */
    s->file_end = MAX(s->file_end, (idx + n) << s->cluster_bits);
    for (uint64_t t = idx >> s->refblock_bits; t <= (idx + n - 1) >> s->refblock_bits; t++) {
        ret = ensure_refblock(bs, t);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_co_update_refcount(bs, idx << s->cluster_bits, n << s->cluster_bits, 1);
    return ret < 0 ? ret : (int64_t)(idx << s->cluster_bits);
}

int64_t coroutine_fn qcow2_co_alloc_bytes(BlockDriverState *bs, uint64_t size)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, offset = s->free_byte_offset, rc = 0;
    int ret;

    if (offset) {
        ret = qcow2_co_get_refcount(bs, offset >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if (rc >= s->refcount_max) {
            offset = 0;
        }
    }
    if (!offset || cs - (offset & (cs - 1)) < size) {
        int64_t fresh = qcow2_co_alloc_clusters(bs, 1);     /* refcount 1 */

        if (fresh < 0) {
            return fresh;
        }
        if (offset && ((offset + cs - 1) & ~(cs - 1)) == (uint64_t)fresh) {
            /* Spans the end of the current cluster into the next one. */
            ret = qcow2_co_update_refcount(bs, offset, 1, 1);
        } else {
            offset = fresh;
            ret = 0;
        }
    } else {
        ret = qcow2_co_update_refcount(bs, offset, size, 1);
    }
    if (ret < 0) {
        return ret;
    }
    s->free_byte_offset = (offset + size) & (cs - 1) ? offset + size : 0;
    return (int64_t)offset;
}

int coroutine_fn qcow2_co_free_l2_entry(BlockDriverState *bs, uint64_t entry)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t host, len;

    switch (qcow2_cluster_type(s, entry)) {
    case QCOW2_CLUSTER_COMPRESSED:
        qcow2_compressed_range(s, entry, &host, &len);
        return qcow2_co_update_refcount(bs, host, len, -1);
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        return qcow2_co_update_refcount(bs, entry & QCOW2_L2E_OFFSET_MASK, 1, -1);
    default:
        return 0;
    }
}
