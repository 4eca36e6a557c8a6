/* qcow2 consistency check: recounts every reference from the header,
 * the active and snapshot L1/L2 tables and the refcount structures,
 * compares with the stored refcounts (leaks, corruptions), checks the
 * COPIED flags, and repairs what the mode allows, with qemu-img's lines. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

typedef struct {
    BlockDriverState *bs;
    BDRVQcow2State *s;
    BdrvCheckResult *res;
    uint32_t *refs;             /* references per host cluster (saturating) */
    uint64_t nb;                /* clusters in refs */
    uint64_t file_clusters;
    uint64_t file_length;       /* references may end at most a cluster past it */
    uint64_t max_used;          /* one past the last referenced cluster */
} CheckState;

static void count(CheckState *c, uint64_t offset, uint64_t len)
{
    uint64_t first, last;

    if (!len) {
        return;
    }
    first = offset >> c->s->cluster_bits;
    last = (offset + len - 1) >> c->s->cluster_bits;
    if (offset + len < offset || offset + len > c->file_length + c->s->cluster_size) {
        /* Never grow the count array to whatever a corrupt entry says;
         * qemu-img's limit and words. */
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                          "ERROR: counting reference for region exceeding the end of the file by "
                          "one cluster or more: offset %#" PRIx64 " size %#" PRIx64, offset, len);
        c->res->corruptions++;
        return;
    }
    if (last >= c->nb) {
        uint64_t nb = last + 1;

        c->refs = g_renew(uint32_t, c->refs, nb);
        memset(c->refs + c->nb, 0, (nb - c->nb) * sizeof(uint32_t));
        c->nb = nb;
    }
    for (uint64_t i = first; i <= last; i++) {
        if (c->refs[i] < UINT32_MAX) {
            c->refs[i]++;
        }
    }
    c->max_used = MAX(c->max_used, last + 1);
}

/* Counts an L2 table and what it references; stats only for the active L1.
 * As in qemu-img, contiguity is judged within one L2 table, and compressed
 * clusters count as fragmented without breaking the run around them. */
static int coroutine_fn check_l2(CheckState *c, uint64_t l2_offset, bool active)
{
    uint64_t next_host = 0;
    BDRVQcow2State *s = c->s;
    g_autofree uint8_t *table = g_malloc(s->cluster_size);
    int ret = bdrv_co_pread(c->bs->file, l2_offset, s->cluster_size, table, 0);

    if (ret < 0) {
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR, "ERROR: I/O error in check_refcounts_l2");
        c->res->check_errors++;
        return ret;
    }
    for (uint32_t i = 0; i < s->l2_size; i++) {
        uint64_t e = qblk_ld_be64(table + 8 * i), host, len;

        if (!(e & QCOW2_OFLAG_COMPRESSED) && (e & QCOW2_L2E_RESERVED_MASK)) {
            bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR found l2 entry with reserved bits set: %" PRIx64, e);
            c->res->corruptions++;
        }
        switch (qcow2_cluster_type(s, e)) {
        case QCOW2_CLUSTER_COMPRESSED:
            if (e & QCOW2_OFLAG_COPIED) {
                bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                                  "ERROR: coffset=0x%" PRIx64 ": Compressed cluster has the "
                                  "copied flag set", e & s->coffset_mask);
                c->res->corruptions++;
            }
            qcow2_compressed_range(s, e, &host, &len);
            count(c, host, len);
            if (active) {
                /* QEMU counts every compressed cluster as fragmented. */
                c->res->allocated_clusters++;
                c->res->compressed_clusters++;
                c->res->fragmented_clusters++;
            }
            break;
        case QCOW2_CLUSTER_NORMAL:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            host = e & QCOW2_L2E_OFFSET_MASK;
            if (host & (s->cluster_size - 1)) {
                /* Reported, then counted where it points, as qemu-img does:
                 * the clusters it overlaps are not leaks to free. */
                bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                                  "ERROR offset=%" PRIx64 ": %s cluster is not properly aligned; "
                                  "L2 entry corrupted.", host,
                                  qcow2_cluster_type(s, e) == QCOW2_CLUSTER_NORMAL ? "Data"
                                  : "Preallocated");
                c->res->corruptions++;
            }
            count(c, host, s->cluster_size);
            if (active) {
                c->res->allocated_clusters++;
                if (next_host && host != next_host) {
                    c->res->fragmented_clusters++;
                }
                next_host = host + s->cluster_size;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

static int coroutine_fn check_l1(CheckState *c, uint64_t l1_offset, uint32_t l1_size,
                                 bool active)
{
    BDRVQcow2State *s = c->s;
    g_autofree uint8_t *l1 = g_malloc0(MAX((uint64_t)l1_size * 8, 8));
    int ret;

    count(c, l1_offset, (uint64_t)l1_size * 8);
    ret = l1_size ? bdrv_co_pread(c->bs->file, l1_offset, (uint64_t)l1_size * 8, l1, 0) : 0;
    if (ret < 0) {
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR, "ERROR: I/O error in check_refcounts_l1");
        c->res->check_errors++;
        return ret;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l1e = qblk_ld_be64(l1 + 8 * i), l2 = l1e & QCOW2_L1E_OFFSET_MASK;

        if (l1e & QCOW2_L1E_RESERVED_MASK) {
            bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR found L1 entry with reserved bits set: %" PRIx64, l1e);
            c->res->corruptions++;
        }

        /* The active table's L2 tables are most of the work. */
        if (active) {
            bdrv_check_report_progress(c->bs, 90.0 * i / l1_size);
        }

        if (!l2) {
            continue;
        }
        if (l2 & (s->cluster_size - 1)) {
            bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR l2_offset=%" PRIx64 ": Table is not cluster aligned; L1 "
                              "entry corrupted", l2);
            c->res->corruptions++;
            continue;
        }
        count(c, l2, s->cluster_size);
        ret = check_l2(c, l2, active);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static void count_ref(void *opaque, uint64_t offset, uint64_t len, Qcow2MetaKind kind)
{
    count(opaque, offset, len);
}

/* COPIED must be set exactly where the refcount is 1 (active tables). */
static int coroutine_fn check_copied(CheckState *c, BdrvCheckMode fix)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    g_autofree uint8_t *table = g_malloc(s->cluster_size);
    bool repair = fix & BDRV_FIX_ERRORS;

    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2 = s->l1_table[i] & QCOW2_L1E_OFFSET_MASK, rc;
        int ret;

        if (!l2 || (l2 & (s->cluster_size - 1))) {
            continue;
        }
        ret = qcow2_co_get_refcount(bs, l2 >> s->cluster_bits, &rc);
        if (ret < 0) {
            return ret;
        }
        if ((rc == 1) != !!(s->l1_table[i] & QCOW2_OFLAG_COPIED)) {
            bdrv_check_report(bs, repair ? BDRV_CHECK_MSG_REPAIR : BDRV_CHECK_MSG_ERROR,
                              "%s OFLAG_COPIED L2 cluster: l1_index=%" PRIu32 " l1_entry=%"
                              PRIx64 " refcount=%" PRIu64, repair ? "Repairing" : "ERROR", i,
                              s->l1_table[i], rc);
            c->res->corruptions++;
            if (fix & BDRV_FIX_ERRORS) {
                uint8_t buf[8];

                s->l1_table[i] ^= QCOW2_OFLAG_COPIED;
                qblk_st_be64(buf, s->l1_table[i]);
                ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L1,
                                           s->header.l1_table_offset + 8 * i, 8, buf);
                if (ret < 0) {
                    return ret;
                }
                c->res->corruptions--;
                c->res->corruptions_fixed++;
            }
        }
        ret = bdrv_co_pread(bs->file, l2, s->cluster_size, table, 0);
        if (ret < 0) {
            return ret;
        }
        for (uint32_t j = 0; j < s->l2_size; j++) {
            uint64_t e = qblk_ld_be64(table + 8 * j);
            Qcow2ClusterType t = qcow2_cluster_type(s, e);
            uint64_t host = e & QCOW2_L2E_OFFSET_MASK;

            if ((t != QCOW2_CLUSTER_NORMAL && t != QCOW2_CLUSTER_ZERO_ALLOC) ||
                (host & (s->cluster_size - 1))) {
                continue;
            }
            ret = qcow2_co_get_refcount(bs, host >> s->cluster_bits, &rc);
            if (ret < 0) {
                return ret;
            }
            if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
                bdrv_check_report(bs, repair ? BDRV_CHECK_MSG_REPAIR : BDRV_CHECK_MSG_ERROR,
                                  "%s OFLAG_COPIED data cluster: l2_entry=%" PRIx64
                                  " refcount=%" PRIu64, repair ? "Repairing" : "ERROR", e, rc);
                c->res->corruptions++;
                if (fix & BDRV_FIX_ERRORS) {
                    uint8_t buf[8];

                    qblk_st_be64(buf, e ^ QCOW2_OFLAG_COPIED);
                    qcow2_cache_discard(&s->l2_cache, l2);
                    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_L2, l2 + 8 * j, 8, buf);
                    if (ret < 0) {
                        return ret;
                    }
                    c->res->corruptions--;
                    c->res->corruptions_fixed++;
                }
            }
        }
    }
    return 0;
}

/* Compares every cluster's refcount with the references counted, reporting
 * qemu-img's line for each difference and repairing what fix allows. A
 * referenced cluster with refcount 0 cannot be repaired in place (the
 * block counting it may be what is missing): *rebuild, as in QEMU. */
static void coroutine_fn compare_refcounts(CheckState *c, BdrvCheckMode fix, uint64_t nb,
                                           bool *rebuild)
{
    BlockDriverState *bs = c->bs;
    BdrvCheckResult *res = c->res;

    for (uint64_t i = 0; i < nb; i++) {
        uint64_t refcount, reference = i < c->nb ? c->refs[i] : 0;
        bool leak, repair;
        int ret;

        if (i % 4096 == 0 && fix == BDRV_FIX_NONE) {
            bdrv_check_report_progress(bs, 90.0 + 10.0 * i / nb);
        }
        ret = qcow2_co_get_refcount(bs, i, &refcount);
        if (ret < 0) {
            bdrv_check_report(bs, BDRV_CHECK_MSG_ERROR,
                              "Can't get refcount for cluster %" PRIu64 ": %s", i,
                              g_strerror(-ret));
            res->check_errors++;
            continue;
        }
        if (refcount) {
            /* Leaked clusters end the image too, as in qemu-img. */
            c->max_used = MAX(c->max_used, i + 1);
        }
        if (refcount == reference) {
            continue;
        }
        leak = refcount > reference;
        if (!refcount) {
            *rebuild = true;
            repair = false;
        } else {
            repair = fix & (leak ? BDRV_FIX_LEAKS : BDRV_FIX_ERRORS);
        }
        bdrv_check_report(bs, repair ? BDRV_CHECK_MSG_REPAIR
                              : leak ? BDRV_CHECK_MSG_LEAK : BDRV_CHECK_MSG_ERROR,
                          "%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64,
                          repair ? "Repairing" : leak ? "Leaked" : "ERROR", i, refcount, reference);
        if (repair) {
            ret = qcow2_co_set_refcount(bs, i, reference);
            if (ret < 0) {
                res->check_errors++;
                continue;
            }
            if (leak) {
                res->leaks_fixed++;
            } else {
                res->corruptions_fixed++;
            }
        } else if (leak) {
            res->leaks++;
        } else {
            res->corruptions++;
        }
    }
}

/* v3 snapshot entries whose extra data lacks what v3 requires (the VM
 * state size and disk size: 16 bytes), as a snapshot count larger than
 * the table gives them: QEMU calls them incomplete. True when they are
 * to be written out complete (-r all). */
static bool check_snapshot_table(CheckState *c, BdrvCheckMode fix)
{
    BDRVQcow2State *s = c->s;
    bool repair = !c->bs->read_only && (fix & BDRV_FIX_ERRORS), found = false;

    if (s->header.version < 3) {
        return false;
    }
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (s->snapshots[i].extra_size >= 16) {
            continue;
        }
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR, "%s snapshot table entry %" PRIu32
                          " is incomplete", repair ? "Repairing" : "ERROR", i);
        if (repair) {
            c->res->corruptions_fixed++;
        } else {
            c->res->corruptions++;
        }
        found = true;
    }
    return found && repair;
}

/* Counts every reference the image holds, as qemu-img counts them: the
 * header, active and snapshot tables, the snapshot table, bitmaps, and
 * the refcount structures (a refcount block must be referenced exactly
 * once, else the structure is rebuilt). */
static int coroutine_fn calculate_refcounts(CheckState *c, bool *rebuild)
{
    BlockDriverState *bs = c->bs;
    BDRVQcow2State *s = c->s;
    g_autoptr(GError) err = NULL;
    int ret;

    count(c, 0, s->cluster_size);
    ret = check_l1(c, s->header.l1_table_offset, s->l1_size, true);
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        ret = check_l1(c, s->snapshots[i].l1_table_offset, s->snapshots[i].l1_size, false);
    }
    if (ret < 0) {
        return ret;
    }
    if (s->header.nb_snapshots) {
        count(c, s->header.snapshots_offset, s->snapshots_size);
    }
    /* Bitmap directory, tables and data clusters are referenced too:
     * calling them leaks would let -r free a valid bitmap. */
    if (qcow2_co_walk_bitmaps(bs, count_ref, c, &err) < 0) {
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR, "ERROR %s", err->message);
        c->res->corruptions++;
    }
    count(c, s->header.refcount_table_offset,
          (uint64_t)s->header.refcount_table_clusters << s->cluster_bits);
    for (uint32_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t b = s->refcount_table[i], cluster = b >> s->cluster_bits;

        if (!b) {
            continue;
        }
        if (cluster >= c->file_clusters) {
            bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR refcount block %" PRIu32 " is outside image", i);
            c->res->corruptions++;
            continue;
        }
        count(c, b, s->cluster_size);
        if (c->refs[cluster] != 1) {
            bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR refcount block %" PRIu32 " refcount=%" PRIu32, i,
                              c->refs[cluster]);
            c->res->corruptions++;
            *rebuild = true;
        }
    }
    return 0;
}

/* New refcount structures from the counted references, then a recount
 * against them whose leaks (the old structures) are freed, as qemu-img
 * does it, lines and counts alike. */
static int coroutine_fn rebuild(CheckState *c)
{
    BdrvCheckResult *res = c->res, old = *res, fresh = { 0 };
    bool again = false;
    int ret;

    bdrv_check_report(c->bs, BDRV_CHECK_MSG_INFO, "Rebuilding refcount structure");
    ret = qcow2_co_rebuild_refcounts(c->bs, &c->refs, &c->nb);
    if (ret < 0) {
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                          "ERROR rebuilding refcount structure: %s", g_strerror(-ret));
        return ret;
    }
    res->corruptions = res->leaks = 0;
    memset(c->refs, 0, c->nb * sizeof(uint32_t));
    c->max_used = 0;
    c->file_clusters = MAX(c->file_clusters, c->nb);
    c->file_length = MAX(c->file_length, c->nb << c->s->cluster_bits);
    ret = calculate_refcounts(c, &again);
    if (ret < 0) {
        return ret;
    }
    if (res->corruptions < old.corruptions) {
        res->corruptions_fixed += old.corruptions - res->corruptions;
    }
    if (res->leaks < old.leaks) {
        res->leaks_fixed += old.leaks - res->leaks;
    }
    c->res = &fresh;
    compare_refcounts(c, BDRV_FIX_LEAKS, c->nb, &again);
    c->res = res;
    if (again) {
        bdrv_check_report(c->bs, BDRV_CHECK_MSG_ERROR,
                          "ERROR rebuilt refcount structure is still broken");
    }
    /* Leaks the rebuild itself left behind that could not be freed, and
     * references the new structure cannot count (more than refcount_bits
     * hold): these remain, as in QEMU, whose recount after the rebuild
     * counts them as overflows. */
    res->leaks += fresh.leaks;
    res->corruptions += fresh.corruptions;
    res->check_errors += fresh.check_errors;
    return 0;
}

int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    CheckState c = { .bs = bs, .s = s, .res = res };
    BdrvCheckResult before;
    bool need_rebuild = false, fix_snapshots;
    int64_t flen;
    uint64_t file_clusters;
    int ret;

    qco_mutex_lock(&s->lock);
    ret = bs->read_only ? 0 : qcow2_co_flush_caches(bs);
    flen = bdrv_getlength(bs->file);
    if (ret < 0 || flen < 0) {
        res->check_errors++;
        qco_mutex_unlock(&s->lock);
        return ret < 0 ? ret : (int)flen;
    }
    file_clusters = ((uint64_t)flen + s->cluster_size - 1) >> s->cluster_bits;
    /* One counter per cluster of the file, as QEMU: its limit and its
     * error ("File too large"), never an allocation sized by a sparse
     * file's length that aborts. */
    if (file_clusters > INT32_MAX) {
        res->check_errors++;
        qco_mutex_unlock(&s->lock);
        return -EFBIG;
    }
    c.file_clusters = file_clusters;
    c.file_length = (uint64_t)flen;
    c.nb = MAX(file_clusters, 1);
    c.refs = g_try_new0(uint32_t, c.nb);
    if (!c.refs) {
        res->check_errors++;
        qco_mutex_unlock(&s->lock);
        return -ENOMEM;
    }
    s->in_check = true;

    fix_snapshots = check_snapshot_table(&c, fix);
    ret = calculate_refcounts(&c, &need_rebuild);
    if (ret < 0) {
        goto out;
    }

    /* Repairs may need new refcount blocks: place them past everything
     * referenced, never on a cluster in use whose refcount is wrong. */
    s->free_cluster_index = MAX(c.nb, file_clusters);
    /* As qemu-img: a first pass reports every difference; a repair runs
     * as a second pass, or as a rebuild of the refcount structures when
     * they cannot be repaired in place (-r leaks then refuses). */
    before = *res;
    compare_refcounts(&c, BDRV_FIX_NONE, MAX(c.nb, file_clusters), &need_rebuild);
    if (!bs->read_only && need_rebuild && (fix & BDRV_FIX_ERRORS)) {
        ret = rebuild(&c);
        if (ret < 0) {
            s->free_cluster_index = 0;
            goto out;
        }
    } else if (!bs->read_only && fix) {
        if (need_rebuild) {
            bdrv_check_report(bs, BDRV_CHECK_MSG_ERROR,
                              "ERROR need to rebuild refcount structures");
            ret = -EIO;
            s->free_cluster_index = 0;
            goto out;
        }
        if (res->leaks || res->corruptions) {
            *res = before;
            compare_refcounts(&c, fix, MAX(c.nb, file_clusters), &need_rebuild);
        }
    }
    ret = check_copied(&c, bs->read_only ? BDRV_FIX_NONE : fix);
    if (ret == 0 && !bs->read_only && fix) {
        ret = qcow2_co_flush_caches(bs);
    }
    s->free_cluster_index = 0;
    /* After the refcounts are right: the new table is allocated from them. */
    if (ret == 0 && fix_snapshots) {
        ret = qcow2_co_rewrite_snapshot_table(bs);
        if (ret < 0) {
            bdrv_check_report(bs, BDRV_CHECK_MSG_ERROR, "ERROR failed to update snapshot "
                              "table: %s", g_strerror(-ret));
        }
    }
    if (ret == 0 && !bs->read_only && (fix & BDRV_FIX_ERRORS) && !res->corruptions &&
        (s->header.incompatible_features & QCOW2_INCOMPAT_CORRUPT)) {
        s->header.incompatible_features &= ~QCOW2_INCOMPAT_CORRUPT;
        ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(incompatible_features));
    }
    res->image_end_offset = (int64_t)c.max_used << s->cluster_bits;
    res->total_clusters = (s->header.size + s->cluster_size - 1) >> s->cluster_bits;
out:
    if (ret < 0) {
        res->check_errors++;
    }
    s->in_check = false;
    g_free(c.refs);
    qco_mutex_unlock(&s->lock);
    return ret < 0 ? ret : 0;
}
