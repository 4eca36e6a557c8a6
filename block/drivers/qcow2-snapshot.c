/* qcow2 internal snapshots: create (the active L1 table copied, every
 * cluster it reaches referenced once more), apply (the active tables
 * replaced by a snapshot's) and delete, with the snapshot table rewritten
 * to new clusters and switched in the header, as QEMU does. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "block/drivers/qcow2.h"

#define SNAPSHOT_EXTRA_SIZE 24u     /* vm_state_size_large, disk_size, icount */

void qcow2_snapshot_clear(Qcow2Snapshot *sn)
{
    g_free(sn->id_str);
    g_free(sn->name);
    g_free(sn->extra);
    memset(sn, 0, sizeof(*sn));
}

/* How update_refcounts sets the COPIED flags of the tables it walks. */
typedef enum {
    COPIED_BY_REFCOUNT,     /* set where the refcount is 1, cleared elsewhere */
    COPIED_OFF,             /* cleared everywhere: the clusters are about to be shared */
} CopiedFlags;

/* Sets or clears the COPIED flag of an entry as mode says; 1 when that
 * changed the entry. */
static int coroutine_fn fix_copied(BlockDriverState *bs, uint64_t *entry, uint64_t host,
                                   CopiedFlags mode)
{
    BDRVQcow2State *s = bs->opaque;
    bool copied = false;
    uint64_t rc, want;

    if (mode == COPIED_BY_REFCOUNT) {
        int ret = qcow2_co_get_refcount(bs, host >> s->cluster_bits, &rc);

        if (ret < 0) {
            return ret;
        }
        copied = rc == 1;
    }
    want = copied ? (*entry | QCOW2_OFLAG_COPIED) : (*entry & ~QCOW2_OFLAG_COPIED);
    if (want == *entry) {
        return 0;
    }
    *entry = want;
    return 1;
}

/* Adds addend (+1, -1, or 0 for the flags alone) to the refcount of every
 * L2 table and data cluster the L1 table l1 (host order) reaches, and sets
 * their COPIED flags as copied says. l1 is updated in memory; the caller
 * writes it when *l1_changed. Lock held. */
static int coroutine_fn update_refcounts(BlockDriverState *bs, uint64_t *l1, uint32_t l1_size,
                                         int addend, CopiedFlags copied, bool *l1_changed)
{
    BDRVQcow2State *s = bs->opaque;

    *l1_changed = false;
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;
        uint8_t *table;
        bool dirty = false;
        int ret;

        if (!l2) {
            continue;
        }
        if ((l2 & (s->cluster_size - 1)) || l2 >= s->file_end) {
            return qcow2_co_mark_corrupt(bs, "L2 table offset %#" PRIx64 " invalid (L1 index: "
                                         "%#" PRIx32 ")", l2, i);
        }
        ret = qcow2_co_cache_get(bs, &s->l2_cache, l2, false, &table);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size && ret >= 0; j++) {
            uint64_t e = qblk_ld_be64(table + 8 * j), host, len;

            switch (qcow2_cluster_type(s, e)) {
            case QCOW2_CLUSTER_COMPRESSED:
                if (addend) {
                    qcow2_compressed_range(s, e, &host, &len);
                    ret = qcow2_co_update_refcount(bs, host, len, addend);
                }
                break;
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                host = e & QCOW2_L2E_OFFSET_MASK;
                if (addend) {
                    ret = qcow2_co_update_refcount(bs, host, 1, addend);
                }
                if (ret >= 0) {
                    ret = fix_copied(bs, &e, host, copied);
                }
                if (ret > 0) {
                    qblk_st_be64(table + 8 * j, e);
                    dirty = true;
                }
                break;
            default:
                break;
            }
        }
        if (dirty) {
            qcow2_cache_mark_dirty(&s->l2_cache, table);
        }
        qcow2_cache_put(&s->l2_cache, table);
        if (ret < 0) {
            return ret;
        }
        if (addend) {
            ret = qcow2_co_update_refcount(bs, l2, 1, addend);
            if (ret < 0) {
                return ret;
            }
        }
        ret = fix_copied(bs, &l1[i], l2, copied);
        if (ret < 0) {
            return ret;
        }
        *l1_changed |= ret > 0;
    }
    return 0;
}

static int coroutine_fn write_active_l1(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *buf = g_malloc0(MAX((uint64_t)s->l1_size * 8, 8));
    int ret;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        qblk_st_be64(buf + 8 * i, s->l1_table[i]);
    }
    /* Tables and refcounts the entries rely on first. */
    ret = qcow2_co_flush_caches(bs);
    if (ret == 0 && s->l1_size) {
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L1, s->header.l1_table_offset,
                                   (uint64_t)s->l1_size * 8, buf);
    }
    return ret < 0 ? ret : bdrv_co_flush(bs->file);
}

/* Marks (delta +1) or unmarks (-1) the L2 tables an L1 table reaches as
 * kind in the metadata map. */
static void map_l2_tables(BDRVQcow2State *s, const uint64_t *l1, uint32_t l1_size,
                          Qcow2MetaKind kind, int delta)
{
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2 = l1[i] & QCOW2_L1E_OFFSET_MASK;

        if (!l2) {
            continue;
        }
        if (delta > 0) {
            qcow2_meta_add(s, l2, s->cluster_size, kind);
        } else {
            qcow2_meta_remove(s, l2, s->cluster_size, kind);
        }
    }
}

/* Writes the snapshot table (the list in s->snapshots) to new clusters,
 * switches the header to it and frees the old one. */
static int coroutine_fn write_snapshot_table(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t size = 0, old_offset = s->header.snapshots_offset, old_size = s->snapshots_size;
    uint32_t old_nb = s->header.nb_snapshots;
    g_autofree uint8_t *buf = NULL;
    int64_t offset = 0;
    uint8_t hdr[12];
    int ret;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];

        size += (40 + MAX(sn->extra_size, SNAPSHOT_EXTRA_SIZE) + strlen(sn->id_str) +
                 strlen(sn->name) + 7) & ~UINT64_C(7);
    }
    buf = g_malloc0(MAX(size, 8));
    for (uint64_t pos = 0, i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        uint32_t extra = MAX(sn->extra_size, SNAPSHOT_EXTRA_SIZE);
        size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);
        uint8_t *p = buf + pos;

        qblk_st_be64(p, sn->l1_table_offset);
        qblk_st_be32(p + 8, sn->l1_size);
        qblk_st_be16(p + 12, (uint16_t)id_len);
        qblk_st_be16(p + 14, (uint16_t)name_len);
        qblk_st_be32(p + 16, sn->date_sec);
        qblk_st_be32(p + 20, sn->date_nsec);
        qblk_st_be64(p + 24, sn->vm_clock_nsec);
        qblk_st_be32(p + 32, (uint32_t)MIN(sn->vm_state_size, UINT32_MAX));
        qblk_st_be32(p + 36, extra);
        if (sn->extra_size) {
            memcpy(p + 40, sn->extra, sn->extra_size);
        }
        qblk_st_be64(p + 40, sn->vm_state_size);
        qblk_st_be64(p + 48, sn->disk_size);
        qblk_st_be64(p + 56, sn->icount);
        memcpy(p + 40 + extra, sn->id_str, id_len);
        memcpy(p + 40 + extra + id_len, sn->name, name_len);
        pos += (40 + extra + id_len + name_len + 7) & ~UINT64_C(7);
    }
    if (size) {
        offset = qcow2_co_alloc_clusters(bs, (size + s->cluster_size - 1) >> s->cluster_bits);
        if (offset < 0) {
            return (int)offset;
        }
        qcow2_meta_add(s, offset, size, QCOW2_META_SNAPSHOTS);
        ret = qcow2_co_flush_caches(bs);
        if (ret == 0) {
            ret = qcow2_co_pwrite_meta(bs, QCOW2_META_SNAPSHOTS, offset, size, buf);
        }
        if (ret == 0) {
            ret = bdrv_co_flush(bs->file);
        }
        if (ret < 0) {
            return ret;
        }
    }
    /* The switch: count and offset in one write. */
    qblk_st_be32(hdr, s->nb_snapshots);
    qblk_st_be64(hdr + 4, (uint64_t)offset);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, QCOW2_HDR_OFF(nb_snapshots),
                               sizeof(hdr), hdr);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    s->header.nb_snapshots = s->nb_snapshots;
    s->header.snapshots_offset = (uint64_t)offset;
    s->snapshots_size = size;
    if (old_nb && old_size) {
        qcow2_meta_remove(s, old_offset, old_size, QCOW2_META_SNAPSHOTS);
        ret = qcow2_co_update_refcount(bs, old_offset, old_size, -1);
    }
    return ret;
}

int coroutine_fn qcow2_co_rewrite_snapshot_table(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = write_snapshot_table(bs);

    /* The entries as now written: short extra data grew to the full one. */
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];

        if (sn->extra_size < SNAPSHOT_EXTRA_SIZE) {
            g_free(sn->extra);
            sn->extra = g_malloc(SNAPSHOT_EXTRA_SIZE);
            qblk_st_be64(sn->extra, sn->vm_state_size);
            qblk_st_be64(sn->extra + 8, sn->disk_size);
            qblk_st_be64(sn->extra + 16, sn->icount);
            sn->extra_size = SNAPSHOT_EXTRA_SIZE;
        }
    }
    return ret;
}

/* A snapshot's L1 table in host order, zero-padded to size entries. */
static int coroutine_fn read_snapshot_l1(BlockDriverState *bs, const Qcow2Snapshot *sn,
                                         uint32_t size, uint64_t **l1)
{
    int ret = qcow2_co_read_table(bs, sn->l1_table_offset, sn->l1_size, l1);

    if (ret == 0 && size > sn->l1_size) {
        *l1 = g_renew(uint64_t, *l1, size);
        memset(*l1 + sn->l1_size, 0, (uint64_t)(size - sn->l1_size) * 8);
    }
    return ret;
}

/* Index of the snapshot whose id (first) or name (then) is key, or -1. */
static int find_snapshot(const BDRVQcow2State *s, const char *key, bool by_id)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (by_id ? !strcmp(s->snapshots[i].id_str, key) : !strcmp(s->snapshots[i].name, key)) {
            return (int)i;
        }
    }
    return -1;
}

int coroutine_fn qcow2_co_snapshot_create(BlockDriverState *bs, const char *name)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
    g_autofree uint8_t *buf = g_malloc0(MAX(l1_bytes, 8));
    g_autofree uint64_t *l1 = g_memdup2(s->l1_table, MAX(l1_bytes, 8));
    unsigned long max_id = 0;
    Qcow2Snapshot sn = { 0 };
    gint64 now = g_get_real_time();
    bool l1_changed;
    int64_t l1_offset = 0;
    int ret;

    if (strlen(name) > UINT16_MAX) {
        return -EINVAL;
    }
    qco_mutex_lock(&s->lock);
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        ret = -EFBIG;
        goto out;
    }
    /* The next id is one past the largest numeric one, as QEMU's. */
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        max_id = MAX(max_id, strtoul(s->snapshots[i].id_str, NULL, 10));
    }
    ret = qcow2_co_flush_caches(bs);
    if (ret < 0) {
        goto out;
    }
    if (l1_bytes) {
        l1_offset = qcow2_co_alloc_clusters(bs, (l1_bytes + s->cluster_size - 1) >>
                                                s->cluster_bits);
        if (l1_offset < 0) {
            ret = (int)l1_offset;
            goto out;
        }
        for (uint32_t i = 0; i < s->l1_size; i++) {
            qblk_st_be64(buf + 8 * i, s->l1_table[i]);
        }
        qcow2_meta_add(s, l1_offset, l1_bytes, QCOW2_META_INACTIVE_L1);
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_INACTIVE_L1, l1_offset, l1_bytes, buf);
        if (ret < 0) {
            goto out;
        }
    }
    /* Everything the active tables reach is shared with the snapshot now:
     * COPIED off first, on disk, then the refcounts up. A crash between
     * the two leaves clusters of refcount 1 without COPIED, which a write
     * copies instead of writing in place; the other order would leave
     * COPIED on clusters of refcount 2, an error qemu-img check reports. */
    ret = update_refcounts(bs, s->l1_table, s->l1_size, 0, COPIED_OFF, &l1_changed);
    if (ret == 0) {
        ret = write_active_l1(bs);
    }
    if (ret == 0) {
        ret = update_refcounts(bs, s->l1_table, s->l1_size, 1, COPIED_OFF, &l1_changed);
    }
    if (ret < 0) {
        goto out;
    }
    sn = (Qcow2Snapshot) {
        .l1_table_offset = (uint64_t)l1_offset, .l1_size = s->l1_size,
        .id_str = g_strdup_printf("%lu", max_id + 1), .name = g_strdup(name),
        .date_sec = (uint32_t)(now / G_USEC_PER_SEC),
        .date_nsec = (uint32_t)(now % G_USEC_PER_SEC) * 1000,
        .disk_size = s->header.size, .icount = 0,
    };
    s->snapshots = g_renew(Qcow2Snapshot, s->snapshots, s->nb_snapshots + 1);
    s->snapshots[s->nb_snapshots++] = sn;
    ret = write_snapshot_table(bs);
    if (ret < 0) {
        /* Not on disk: the list goes back to what the header says. */
        qcow2_snapshot_clear(&s->snapshots[--s->nb_snapshots]);
        goto out;
    }
    map_l2_tables(s, l1, s->l1_size, QCOW2_META_INACTIVE_L2, 1);
out:
    qco_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn qcow2_co_snapshot_goto(BlockDriverState *bs, const char *id_or_name)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *sn_l1 = NULL;
    g_autofree uint64_t *old_l1 = NULL;
    const Qcow2Snapshot *sn;
    uint32_t old_size;
    bool changed;
    int idx, ret;

    qco_mutex_lock(&s->lock);
    idx = find_snapshot(s, id_or_name, true);
    if (idx < 0) {
        idx = find_snapshot(s, id_or_name, false);
    }
    if (idx < 0) {
        ret = -ENOENT;
        goto out;
    }
    sn = &s->snapshots[idx];
    if (sn->extra_size >= 16 && sn->disk_size != s->header.size) {
        ret = -ENOTSUP;     /* a snapshot of another disk size: not applied */
        goto out;
    }
    ret = qcow2_co_flush_caches(bs);
    if (ret == 0 && sn->l1_size > s->l1_size) {
        ret = qcow2_co_grow_l1(bs, sn->l1_size);
    }
    if (ret < 0) {
        goto out;
    }
    ret = read_snapshot_l1(bs, sn, s->l1_size, &sn_l1);
    if (ret < 0) {
        goto out;
    }
    /* The snapshot's clusters gain the active image's reference first, so
     * nothing shared between the two drops to zero on the way. */
    ret = update_refcounts(bs, sn_l1, s->l1_size, 1, COPIED_BY_REFCOUNT, &changed);
    if (ret < 0) {
        goto out;
    }
    old_size = s->l1_size;
    old_l1 = g_memdup2(s->l1_table, MAX((uint64_t)old_size * 8, 8));
    memcpy(s->l1_table, sn_l1, (uint64_t)s->l1_size * 8);
    ret = write_active_l1(bs);
    if (ret < 0) {
        memcpy(s->l1_table, old_l1, (uint64_t)old_size * 8);
        goto out;
    }
    map_l2_tables(s, sn_l1, s->l1_size, QCOW2_META_L2, 1);
    map_l2_tables(s, old_l1, old_size, QCOW2_META_L2, -1);
    ret = update_refcounts(bs, old_l1, old_size, -1, COPIED_BY_REFCOUNT, &changed);
    if (ret == 0) {
        /* Now only the active tables' flags: what is theirs alone. */
        ret = update_refcounts(bs, s->l1_table, s->l1_size, 0, COPIED_BY_REFCOUNT, &changed);
    }
    if (ret == 0) {
        ret = write_active_l1(bs);
    }
out:
    qco_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn qcow2_co_snapshot_delete(BlockDriverState *bs, const char *name)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint64_t *l1 = NULL;
    Qcow2Snapshot sn;
    bool changed;
    int idx, ret;

    qco_mutex_lock(&s->lock);
    idx = find_snapshot(s, name, false);
    if (idx < 0) {
        ret = -ENOENT;
        goto out;
    }
    sn = s->snapshots[idx];
    ret = read_snapshot_l1(bs, &sn, sn.l1_size, &l1);
    if (ret < 0) {
        goto out;
    }
    ret = qcow2_co_flush_caches(bs);
    if (ret < 0) {
        goto out;
    }
    /* Out of the table first: a crash leaks the snapshot's clusters but
     * never leaves a listed snapshot pointing at freed ones. */
    memmove(&s->snapshots[idx], &s->snapshots[idx + 1],
            (s->nb_snapshots - idx - 1) * sizeof(Qcow2Snapshot));
    s->nb_snapshots--;
    ret = write_snapshot_table(bs);
    if (ret < 0) {
        s->snapshots = g_renew(Qcow2Snapshot, s->snapshots, s->nb_snapshots + 1);
        memmove(&s->snapshots[idx + 1], &s->snapshots[idx],
                (s->nb_snapshots - idx) * sizeof(Qcow2Snapshot));
        s->snapshots[idx] = sn;
        s->nb_snapshots++;
        goto out;
    }
    map_l2_tables(s, l1, sn.l1_size, QCOW2_META_INACTIVE_L2, -1);
    qcow2_meta_remove(s, sn.l1_table_offset, (uint64_t)sn.l1_size * 8, QCOW2_META_INACTIVE_L1);
    ret = update_refcounts(bs, l1, sn.l1_size, -1, COPIED_BY_REFCOUNT, &changed);
    if (ret == 0 && sn.l1_size) {
        ret = qcow2_co_update_refcount(bs, sn.l1_table_offset, (uint64_t)sn.l1_size * 8, -1);
    }
    if (ret == 0) {
        ret = update_refcounts(bs, s->l1_table, s->l1_size, 0, COPIED_BY_REFCOUNT, &changed);
    }
    if (ret == 0) {
        ret = write_active_l1(bs);
    }
    qcow2_snapshot_clear(&sn);
out:
    qco_mutex_unlock(&s->lock);
    return ret;
}
