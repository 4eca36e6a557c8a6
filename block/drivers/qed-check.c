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
    uint64_t last_data;     /* previous data cluster in table order */
} QedCheck;

/* Marks n clusters from offset; false if one was already referenced. */
static bool mark_used(QedCheck *c, uint64_t offset, uint64_t n)
{
    uint64_t first = offset / c->s->header.cluster_size;

    for (uint64_t i = first; i < first + n; i++) {
        if (c->used[i / 8] & (1u << (i % 8))) {
            return false;
        }
    }
    for (uint64_t i = first; i < first + n; i++) {
        c->used[i / 8] |= 1u << (i % 8);
    }
    return true;
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
        if (!mark_used(c, e, 1)) {
            c->res->corruptions++;    /* a cluster shared by two entries */
        }
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
    mark_used(&c, 0, s->header.header_size);
    mark_used(&c, s->header.l1_table_offset, s->header.table_size);
    if (s->file_size > cs && !qed_valid_cluster_offset(s, s->file_size - cs)) {
        /* The file ends short inside its last cluster (by a sector or
         * more): outside the file for QEMU, so no leak either. */
        mark_used(&c, s->file_size - cs, 1);
    }

    for (uint32_t i = 0; i < s->table_nelems && ret == 0; i++) {
        uint64_t e = s->l1_table[i];

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
        if (!mark_used(&c, e, s->header.table_size)) {
            res->corruptions++;
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
        for (uint64_t i = s->header.header_size; i < c.nclusters; i++) {
            if (!(c.used[i / 8] & (1u << (i % 8)))) {
                res->leaks++;
            }
        }
    }
    g_free(c.used);
    if (ret == 0 && c.fix && !res->corruptions && !res->check_errors) {
        /* Consistent again: the flag can go (flushes first). */
        ret = qed_co_clear_need_check(bs);
    }
    return ret;
}
