/* qcow2 refcount rebuild (check -r all): when the refcount structures
 * cannot be trusted, new refcount blocks and a new refcount table are
 * written from the references check counted, placed in the first free
 * clusters as QEMU places them, and the header switched to them last. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

typedef struct {
    BlockDriverState *bs;
    BDRVQcow2State *s;
    uint32_t **refs;            /* references per cluster; grows with allocations */
    uint64_t *nb;
    uint64_t *reftable;         /* the new table, host order */
    uint64_t entries;
} Rebuild;

static uint32_t refs_at(const Rebuild *r, uint64_t cluster)
{
    return cluster < *r->nb ? (*r->refs)[cluster] : 0;
}

/* count contiguous clusters with no reference, from *first_free on (which
 * moves to the first free cluster seen), growing the array past its end
 * when the run does not fit before it. They count as referenced once. */
static uint64_t alloc_counted(Rebuild *r, uint64_t count, uint64_t *first_free)
{
    uint64_t cluster = *first_free, run = 0;
    bool first_gap = true;

    for (; cluster < *r->nb && run < count; cluster++) {
        if (!(*r->refs)[cluster]) {
            if (first_gap) {
                *first_free = cluster;
                first_gap = false;
            }
            run++;
        } else {
            run = 0;
        }
    }
    if (run < count) {
        uint64_t need = cluster + count - run;

        *r->refs = g_renew(uint32_t, *r->refs, need);
        memset(*r->refs + *r->nb, 0, (need - *r->nb) * sizeof(uint32_t));
        *r->nb = need;
    }
    cluster -= run;
    for (uint64_t i = 0; i < count; i++) {
        (*r->refs)[cluster + i] = 1;
    }
    return cluster;
}

/* Writes a refcount block for every block range of [first, end) that has
 * a referenced cluster, allocating the blocks that have no place yet;
 * *grown when the table needed more entries. */
static int coroutine_fn write_refblocks(Rebuild *r, uint64_t first, uint64_t end, bool *grown)
{
    BDRVQcow2State *s = r->s;
    uint64_t per_block = UINT64_C(1) << s->refblock_bits, first_free = 0;
    g_autofree uint8_t *block = g_malloc(s->cluster_size);

    *grown = false;
    for (uint64_t cluster = first; cluster < end; cluster++) {
        uint64_t index = cluster >> s->refblock_bits, start = index << s->refblock_bits;
        uint64_t offset;
        int ret;

        if (!refs_at(r, cluster)) {
            continue;
        }
        if (index < r->entries && r->reftable[index]) {
            offset = r->reftable[index];
        } else {
            uint64_t at;

            /* Never inside a block range already written. */
            first_free = MAX(first_free, start);
            at = alloc_counted(r, 1, &first_free);
            if (at >= end) {
                end = at + 1;   /* the block counting it must be written too */
            }
            if (index >= r->entries) {
                uint64_t entries = ((index + 1) * 8 + s->cluster_size - 1) / s->cluster_size *
                                   (s->cluster_size / 8);

                r->reftable = g_renew(uint64_t, r->reftable, entries);
                memset(r->reftable + r->entries, 0, (entries - r->entries) * 8);
                r->entries = entries;
                *grown = true;
            }
            offset = at << s->cluster_bits;
            r->reftable[index] = offset;
            qcow2_meta_add(s, offset, s->cluster_size, QCOW2_META_REFBLOCK);
        }
        memset(block, 0, s->cluster_size);
        for (uint64_t i = 0; i < per_block; i++) {
            qcow2_refblock_set(s, block, i, MIN(refs_at(r, start + i), s->refcount_max));
        }
        ret = qcow2_co_pwrite_meta(r->bs, QCOW2_META_REFBLOCK, offset, s->cluster_size, block);
        if (ret < 0) {
            return ret;
        }
        cluster = start + per_block - 1;
    }
    return 0;
}

int coroutine_fn qcow2_co_rebuild_refcounts(BlockDriverState *bs, uint32_t **refs, uint64_t *nb)
{
    BDRVQcow2State *s = bs->opaque;
    Rebuild r = { .bs = bs, .s = s, .refs = refs, .nb = nb };
    uint64_t table_offset = 0, table_clusters = 0;
    uint64_t old_offset = s->header.refcount_table_offset;
    uint64_t old_clusters = s->header.refcount_table_clusters;
    g_autofree uint8_t *buf = NULL;
    uint8_t hdr[12];
    bool grown;
    int ret;

    ret = write_refblocks(&r, 0, *nb, &grown);
    /* The table's own clusters need counting, which may need another
     * block, which may need a longer table: until nothing moves. */
    while (ret == 0) {
        uint64_t first_free = 0, start;

        table_clusters = (r.entries * 8 + s->cluster_size - 1) >> s->cluster_bits;
        start = alloc_counted(&r, table_clusters, &first_free);
        ret = write_refblocks(&r, start, start + table_clusters, &grown);
        if (ret < 0 || !grown) {
            table_offset = start << s->cluster_bits;
            break;
        }
        for (uint64_t i = start; i < start + table_clusters; i++) {
            (*refs)[i] = 0;
        }
    }
    if (ret == 0 && table_clusters * s->cluster_size > QCOW2_MAX_REFTABLE_BYTES) {
        ret = -EFBIG;
    }
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        g_free(r.reftable);
        return ret;
    }
    buf = g_malloc0(table_clusters << s->cluster_bits);
    for (uint64_t i = 0; i < r.entries; i++) {
        qblk_st_be64(buf + 8 * i, r.reftable[i]);
    }
    qcow2_meta_add(s, table_offset, table_clusters << s->cluster_bits, QCOW2_META_REFTABLE);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_REFTABLE, table_offset,
                               table_clusters << s->cluster_bits, buf);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret == 0) {
        /* The switch: one write of the offset and the size together, and
         * with them the refcount width when that changes (one sector). */
        if (s->header.version >= 3 &&
            s->header.refcount_order != (uint32_t)__builtin_ctz(s->refcount_bits)) {
            uint8_t h[QCOW2_V3_HEADER_SIZE + 8] = { 0 };
            Qcow2Header nh = s->header;
            /* refcount_table_offset up to header_length, refcount_order included. */
            size_t first = QCOW2_HDR_OFF(refcount_table_offset);
            size_t end = QCOW2_HDR_OFF(header_length);

            nh.refcount_table_offset = table_offset;
            nh.refcount_table_clusters = (uint32_t)table_clusters;
            nh.refcount_order = (uint32_t)__builtin_ctz(s->refcount_bits);
            qcow2_header_encode(&nh, h);
            ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, first, end - first, h + first);
            if (ret == 0) {
                s->header.refcount_order = nh.refcount_order;
            }
        } else {
            qblk_st_be64(hdr, table_offset);
            qblk_st_be32(hdr + 8, (uint32_t)table_clusters);
            ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, QCOW2_HDR_OFF(refcount_table_offset),
                                       sizeof(hdr), hdr);
        }
    }
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        g_free(r.reftable);
        return ret;
    }
    /* The old structures are leaks now; the check that follows frees them. */
    qcow2_meta_remove(s, old_offset, old_clusters << s->cluster_bits, QCOW2_META_REFTABLE);
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        if (s->refcount_table[i]) {
            qcow2_meta_remove(s, s->refcount_table[i], s->cluster_size, QCOW2_META_REFBLOCK);
        }
    }
    qcow2_cache_drop_all(&s->refblock_cache);
    g_free(s->refcount_table);
    s->refcount_table = r.reftable;
    s->refcount_table_size = (uint32_t)r.entries;
    s->header.refcount_table_offset = table_offset;
    s->header.refcount_table_clusters = (uint32_t)table_clusters;
    s->file_end = MAX(s->file_end, *nb << s->cluster_bits);
    return 0;
}
