/* QED consistency check and repair: every table and data cluster must lie
 * inside the file, aligned, and be referenced once; unreferenced clusters
 * are leaks (harmless). */
#include <errno.h>
#include <string.h>
#include "block/drivers/qed.h"

typedef struct QedCheck {
    BlockDriverState *bs;
    BDRVQEDState *s;
    BdrvCheckResult *res;
    bool fix;
    uint64_t nclusters;
    uint8_t *used;          /* one bit per cluster of the file */
    /* Repair only: header, L1 and the L2 tables kept, one bit per
     * cluster; an L2 entry pointing into one of them is cleared. */
    uint8_t *meta;
    uint64_t last_data;     /* previous data cluster of this table */
} QedCheck;

static bool test_bit(const uint8_t *map, uint64_t i)
{
    return map[i / 8] & (1u << (i % 8));
}

/* Marks n clusters from offset in map; returns how many were marked
 * already (each one a corruption, as qemu-img counts them). */
static uint64_t mark_clusters(QedCheck *c, uint8_t *map, uint64_t offset, uint64_t n)
{
    uint64_t first = offset / c->s->header.cluster_size;
    uint64_t dups = 0;

    for (uint64_t i = first; i < first + n; i++) {
        dups += test_bit(map, i);
        map[i / 8] |= 1u << (i % 8);
    }
    return dups;
}

static uint64_t mark_used(QedCheck *c, uint64_t offset, uint64_t n)
{
    return mark_clusters(c, c->used, offset, n);
}

/* Repair, before the walk: an L1 entry whose table overlaps the header,
 * the L1 table or an earlier entry's table is cleared (what it maps was
 * never its own: writes through it rewrote other metadata or aliased
 * another range). Marks the tables kept in c->meta. */
static bool clear_overlapping_tables(QedCheck *c)
{
    BDRVQEDState *s = c->s;
    uint32_t ts = s->header.table_size;
    bool dirty = false;

    mark_clusters(c, c->meta, 0, s->header.header_size);
    mark_clusters(c, c->meta, s->header.l1_table_offset, ts);
    for (uint32_t i = 0; i < s->table_nelems; i++) {
        uint64_t e = s->l1_table[i], first = e / s->header.cluster_size;
        bool overlaps = false;

        /* Invalid entries are the walk's to clear. */
        if (!e || !qed_valid_table_offset(s, e)) {
            continue;
        }
        for (uint64_t k = first; k < first + ts; k++) {
            overlaps |= test_bit(c->meta, k);
        }
        if (overlaps) {
            s->l1_table[i] = 0;
            c->res->corruptions_fixed++;
            dirty = true;
        } else {
            mark_clusters(c, c->meta, e, ts);
        }
    }
    return dirty;
}

/* Checks one L2 table; returns -errno on I/O errors. */
static int coroutine_fn check_l2(QedCheck *c, uint64_t table_offset)
{
    BDRVQEDState *s = c->s;
    QedL2Table *t;
    bool dirty = false;
    int ret = qed_co_get_l2(c->bs, table_offset, &t);

    if (ret < 0) {
        return ret;
    }
    /* Fragmentation is counted within a table (as qemu-img counts it). */
    c->last_data = 0;
    /* Nothing below yields until the table is written back. */
    for (uint32_t i = 0; i < s->table_nelems; i++) {
        uint64_t e = t->entries[i];

        if (e == 0 || e == QED_ZERO_CLUSTER) {
            continue;
        }
        /* Counted before validation, as qemu-img counts them. */
        c->res->allocated_clusters++;
        if (c->last_data && c->last_data + s->header.cluster_size != e) {
            c->res->fragmented_clusters++;
        }
        c->last_data = e;
        if (!qed_valid_cluster_offset(s, e)) {
            if (c->fix) {
                t->entries[i] = 0;
                dirty = true;
                c->res->corruptions_fixed++;
            } else {
                c->res->corruptions++;
            }
            continue;
        }
        if (c->meta && test_bit(c->meta, e / s->header.cluster_size)) {
            /* Data on metadata: the metadata is what is real there. */
            t->entries[i] = 0;
            dirty = true;
            c->res->corruptions_fixed++;
            continue;
        }
        /* A cluster shared by two entries, or (no repair) by an entry and
         * a table: not repaired (qemu-img does not either), since neither
         * entry is known to be the wrong one. */
        c->res->corruptions += mark_used(c, e, 1);
    }
    if (dirty) {
        t->pins++;
        ret = qed_co_write_entries(c->bs, table_offset, t->entries, 0, s->table_nelems);
        t->pins--;
    }
    return ret;
}

int coroutine_fn qed_co_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    QedCheck c = {
        .bs = bs, .s = s, .res = res, .fix = fix & BDRV_FIX_ERRORS,
        .nclusters = s->file_size / cs,
    };
    bool l1_dirty = false;
    int ret = 0;

    c.used = g_try_malloc0(c.nclusters / 8 + 1);
    if (!c.used) {
        res->check_errors++;
        return -ENOMEM;
    }
    res->total_clusters = (s->header.image_size + cs - 1) / cs;
    if (c.fix) {
        c.meta = g_try_malloc0(c.nclusters / 8 + 1);
        if (!c.meta) {
            g_free(c.used);
            res->check_errors++;
            return -ENOMEM;
        }
        l1_dirty = clear_overlapping_tables(&c);
    }
    mark_used(&c, 0, s->header.header_size);
    mark_used(&c, s->header.l1_table_offset, s->header.table_size);
    if (s->file_size > cs && !qed_valid_cluster_offset(s, s->file_size - cs)) {
        /* The file ends short inside its last cluster (by a sector or
         * more): outside the file for QEMU, so no leak either. */
        mark_used(&c, s->file_size - cs, 1);
    }

    for (uint32_t i = 0; i < s->table_nelems && ret == 0; i++) {
        uint64_t e = s->l1_table[i], dups;

        bdrv_check_report_progress(bs, 100.0 * i / s->table_nelems);

        if (!e) {
            continue;
        }
        if (!qed_valid_table_offset(s, e)) {
            if (c.fix) {
                s->l1_table[i] = 0;
                l1_dirty = true;
                res->corruptions_fixed++;
            } else {
                res->corruptions++;
            }
            continue;
        }
        dups = mark_used(&c, e, s->header.table_size);
        if (dups) {
            /* Counted per shared cluster; the table is skipped. */
            res->corruptions += dups;
            continue;
        }
        ret = check_l2(&c, e);
    }
    if (ret == 0 && l1_dirty) {
        ret = qed_co_write_entries(bs, s->header.l1_table_offset, s->l1_table, 0,
                                   s->table_nelems);
    }
    if (ret < 0) {
        res->check_errors++;
    } else {
        int64_t flen = bdrv_getlength(bs->file);
        /* A cut-short last cluster is no leak: qemu-img counts only the
         * clusters wholly inside the file. */
        uint64_t whole = flen < 0 ? c.nclusters : MIN(c.nclusters, (uint64_t)flen / cs);

        for (uint64_t i = s->header.header_size; i < whole; i++) {
            if (!(c.used[i / 8] & (1u << (i % 8)))) {
                res->leaks++;
            }
        }
    }
    g_free(c.used);
    g_free(c.meta);
    if (c.fix && s->meta) {
        /* Cleared entries and L1 entries change the map. */
        qed_meta_build(s);
    }
    if (ret == 0 && c.fix && !res->corruptions && !res->check_errors) {
        /* Consistent again: the flag can go (flushes first). */
        ret = qed_co_clear_need_check(bs);
    }
    return ret;
}
