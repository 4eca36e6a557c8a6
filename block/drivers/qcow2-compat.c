/* qcow2 compat level changes for amend: v2 -> v3 (a new header) and
 * v3 -> v2 (zero clusters made into what v2 can hold, then a v2 header). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2.h"

static const struct { uint8_t type, bit; const char *name; } feature_table[] = {
    { 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" }, { 0, 2, "external data file" },
    { 0, 3, "compression type" }, { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" }, { 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

bool qcow2_put_feature_table(uint8_t *buf, uint64_t *pos, uint64_t cluster_size)
{
    uint8_t table[G_N_ELEMENTS(feature_table) * 48] = { 0 };

    /* QEMU names the features only where clusters are larger than 4 KiB. */
    if (cluster_size <= 4096) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(feature_table); i++) {
        table[48 * i] = feature_table[i].type;
        table[48 * i + 1] = feature_table[i].bit;
        memcpy(table + 48 * i + 2, feature_table[i].name, strlen(feature_table[i].name));
    }
    return qcow2_put_extension(buf, pos, cluster_size, QCOW2_EXT_FEATURE_TABLE, table,
                               sizeof(table));
}

/* Writes cluster 0 anew for header nh, laid out as QEMU writes a header
 * of that version: the fields, the backing format extension, the feature
 * table (v3), the other extensions as they were, the end marker, the
 * backing file name, zeroes to the end of the cluster. Lock held. */
static int coroutine_fn rewrite_header(BlockDriverState *bs, Qcow2Header *nh)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, pos = nh->header_length, off;
    uint64_t old_end = s->header.backing_file_offset ? s->header.backing_file_offset : cs;
    g_autofree uint8_t *old = g_malloc0(cs), *buf = g_malloc0(cs);
    const char *fmt = s->backing_format_ext;
    int64_t flen = bdrv_getlength(bs->file);
    int ret;

    if (flen < 0) {
        return (int)flen;
    }
    ret = bdrv_co_pread(bs->file, 0, MIN((uint64_t)flen, cs), old, 0);
    if (ret < 0) {
        return ret;
    }
    if (fmt && !qcow2_put_extension(buf, &pos, cs, QCOW2_EXT_BACKING_FORMAT, fmt, strlen(fmt))) {
        return -ENOSPC;
    }
    if (nh->version >= 3 && !qcow2_put_feature_table(buf, &pos, cs)) {
        return -ENOSPC;
    }
    /* Open validated the old extensions, so each one fits before old_end. */
    for (off = s->header.header_length; off + 8 <= old_end;) {
        uint32_t type = qblk_ld_be32(old + off), len = qblk_ld_be32(old + off + 4);

        if (type == QCOW2_EXT_END) {
            break;
        }
        if (type != QCOW2_EXT_BACKING_FORMAT && type != QCOW2_EXT_FEATURE_TABLE &&
            !qcow2_put_extension(buf, &pos, cs, type, old + off + 8, len)) {
            return -ENOSPC;
        }
        off += 8 + ((len + 7) & ~7u);
    }
    pos += 8;                                   /* end marker: zeroes */
    if (s->header.backing_file_offset) {
        if (pos + s->header.backing_file_size > cs) {
            return -ENOSPC;
        }
        memcpy(buf + pos, old + s->header.backing_file_offset, s->header.backing_file_size);
        nh->backing_file_offset = pos;
    }
    qcow2_header_encode(nh, buf);
    /* Torn-safe when the extensions change only past what the old header
     * reads (an upgrade) or the new one fits in sector 0 (a downgrade with
     * a short name); else one write (see qcow2_co_commit_header). */
    ret = qcow2_co_commit_header(bs, old, buf, cs);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret == 0) {
        s->header = *nh;
    }
    return ret;
}

int coroutine_fn qcow2_co_upgrade(BlockDriverState *bs, BdrvProgressFunc *progress,
                                  void *opaque, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Header nh;
    int ret;

    /* qemu-img amend -p shows these three steps of QEMU's upgrade. */
    if (progress) {
        progress(opaque, 0);
    }
    ret = qcow2_co_flush_caches(bs);
    /* v3 requires each snapshot's VM state and disk size in its extra
     * data, which v2 writers may have left out. */
    for (uint32_t i = 0; ret == 0 && i < s->nb_snapshots; i++) {
        if (s->snapshots[i].extra_size < 16) {
            ret = qcow2_co_rewrite_snapshot_table(bs);
            break;
        }
    }
    if (ret == 0 && progress) {
        progress(opaque, 50);
    }
    nh = s->header;                             /* the snapshot table may have moved */
    nh.version = 3;
    nh.incompatible_features = nh.compatible_features = nh.autoclear_features = 0;
    nh.refcount_order = 4;                      /* v2's width, kept */
    nh.header_length = sizeof(Qcow2DiskHeader);
    nh.compression_type = 0;
    if (ret == 0) {
        ret = rewrite_header(bs, &nh);
    }
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to update the image header");
        return ret;
    }
    if (progress) {
        progress(opaque, 100);
    }
    return 0;
}

typedef int coroutine_fn L2TableFn(BlockDriverState *bs, uint64_t l2_offset, void *opaque);

/* Calls fn for every L2 table of the active L1 table, then of each
 * snapshot's, reporting progress after each L1 table as QEMU does. A
 * table a snapshot shares comes twice. Lock held. */
static int coroutine_fn for_each_l2_table(BlockDriverState *bs, L2TableFn *fn, void *opaque,
                                          BdrvProgressFunc *progress, void *progress_opaque)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t nb_tables = s->nb_snapshots + 1;
    int ret = 0;

    for (uint32_t t = 0; ret == 0 && t < nb_tables; t++) {
        g_autofree uint64_t *snap_l1 = NULL;
        const uint64_t *l1 = s->l1_table;
        uint32_t l1_size = s->l1_size;

        if (t > 0) {
            const Qcow2Snapshot *sn = &s->snapshots[t - 1];

            ret = qcow2_co_read_table(bs, sn->l1_table_offset, sn->l1_size, &snap_l1);
            l1 = snap_l1;
            l1_size = sn->l1_size;
        }
        for (uint32_t i = 0; ret == 0 && i < l1_size; i++) {
            uint64_t l2_offset = l1[i] & QCOW2_L1E_OFFSET_MASK;

            if (!l2_offset) {
                continue;
            }
            if (l2_offset & (s->cluster_size - 1)) {
                return qcow2_co_mark_corrupt(bs, "L2 table offset %#" PRIx64 " unaligned "
                                             "(L1 index: %#" PRIx32 ")", l2_offset, i);
            }
            ret = fn(bs, l2_offset, opaque);
        }
        if (ret == 0 && progress) {
            progress(progress_opaque, 100.0 * (t + 1) / nb_tables);
        }
    }
    return ret;
}

static int coroutine_fn find_compressed(BlockDriverState *bs, uint64_t l2_offset, void *opaque)
{
    BDRVQcow2State *s = bs->opaque;
    bool *found = opaque;
    uint8_t *l2;
    int ret = qcow2_co_cache_get(bs, &s->l2_cache, l2_offset, false, &l2);

    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < s->l2_size && !*found; i++) {
        *found = qcow2_cluster_type(s, qblk_ld_be64(l2 + 8 * i)) == QCOW2_CLUSTER_COMPRESSED;
    }
    qcow2_cache_put(&s->l2_cache, l2);
    return 0;
}

int coroutine_fn qcow2_co_downgrade_check(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t incompat = s->header.incompatible_features;
    bool compressed = false;
    int ret;

    if (incompat & QCOW2_INCOMPAT_DATA_FILE) {
        qblk_error_set(errp, "Cannot downgrade an image with a data file");
        return -ENOTSUP;
    }
    /* zstd data cannot be read back as v2 (zlib only); without any
     * compressed cluster the type simply goes. */
    if (s->header.compression_type) {
        ret = for_each_l2_table(bs, find_compressed, &compressed, NULL, NULL);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Failed to look for compressed clusters");
            return ret;
        }
        if (compressed) {
            qblk_error_set(errp, "Cannot downgrade an image with zstd compression type and "
                           "existing compressed clusters");
            return -ENOTSUP;
        }
    }
    incompat &= ~(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION);
    if (incompat) {
        qblk_error_set(errp, "Cannot downgrade an image with incompatible features %#" PRIx64
                       " set", incompat);
        return -ENOTSUP;
    }
    /* QEMU 7.2 downgrades anyway and leaves the bitmaps' clusters leaked
     * behind an extension v2 cannot mark valid; qblk keeps them. */
    if (s->bitmaps_nb) {
        qblk_error_set(errp, "Cannot downgrade an image with persistent bitmaps "
                       "(remove them first)");
        return -ENOTSUP;
    }
    return 0;
}

/* A new cluster of zeroes for an entry of the L2 table at l2_offset,
 * counted once per table referencing it (*l2_refs, looked up once). */
static int64_t coroutine_fn alloc_zero_cluster(BlockDriverState *bs, uint64_t l2_offset,
                                               uint64_t *l2_refs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t host;
    int ret;

    if (!*l2_refs) {
        ret = qcow2_co_get_refcount(bs, l2_offset >> s->cluster_bits, l2_refs);
        if (ret < 0) {
            return ret;
        }
        *l2_refs = MAX(*l2_refs, 1);
    }
    host = qcow2_co_alloc_clusters(bs, 1);
    if (host >= 0 && *l2_refs > 1) {
        ret = qcow2_co_update_refcount(bs, host, s->cluster_size, (int64_t)*l2_refs - 1);
        if (ret < 0) {
            return ret;
        }
    }
    return host;
}

/* Zero clusters in one L2 table made into what v2 can hold: unallocated
 * where nothing shows through, otherwise clusters of real zeroes: the one
 * the entry had when only this table references it, else a new one (a
 * preallocated zero cluster may be a snapshot's data: QEMU 7.2 zeroes it
 * in place and so changes the snapshot). The zeroes reach the disk
 * before the entries, the entries before the old clusters' references
 * are dropped. */
static int coroutine_fn expand_zero_clusters(BlockDriverState *bs, uint64_t l2_offset,
                                             void *opaque)
{
    BDRVQcow2State *s = bs->opaque;
    bool backing = *(bool *)opaque;
    g_autofree uint64_t *entries = g_new(uint64_t, s->l2_size);
    g_autofree uint64_t *unref = g_new0(uint64_t, s->l2_size);
    uint64_t l2_refs = 0;
    bool changed = false, flushed = false;
    uint8_t *l2;
    int ret = qcow2_co_cache_get(bs, &s->l2_cache, l2_offset, false, &l2);

    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < s->l2_size; i++) {
        entries[i] = qblk_ld_be64(l2 + 8 * i);
    }
    qcow2_cache_put(&s->l2_cache, l2);

    for (uint32_t i = 0; ret == 0 && i < s->l2_size; i++) {
        uint64_t e = entries[i], refs = 0;
        Qcow2ClusterType type = qcow2_cluster_type(s, e);
        int64_t host = (int64_t)(e & QCOW2_L2E_OFFSET_MASK);

        if (type == QCOW2_CLUSTER_ZERO_PLAIN && !backing) {
            entries[i] = 0;
            changed = true;
            continue;
        }
        if (type != QCOW2_CLUSTER_ZERO_PLAIN && type != QCOW2_CLUSTER_ZERO_ALLOC) {
            continue;
        }
        changed = true;
        if (type == QCOW2_CLUSTER_ZERO_ALLOC) {
            ret = qcow2_co_get_refcount(bs, (uint64_t)host >> s->cluster_bits, &refs);
            if (ret == 0 && !l2_refs) {
                ret = qcow2_co_get_refcount(bs, l2_offset >> s->cluster_bits, &l2_refs);
                l2_refs = MAX(l2_refs, 1);
            }
            if (ret < 0) {
                break;
            }
        }
        if (type == QCOW2_CLUSTER_ZERO_PLAIN || refs > l2_refs) {
            if (type == QCOW2_CLUSTER_ZERO_ALLOC) {
                unref[i] = (uint64_t)host;
            }
            host = alloc_zero_cluster(bs, l2_offset, &l2_refs);
            if (host < 0) {
                ret = (int)host;
                break;
            }
            refs = l2_refs;
        }
        entries[i] = (uint64_t)host | (refs == 1 ? QCOW2_OFLAG_COPIED : 0);
        ret = qcow2_co_check_write(bs, host, s->cluster_size, QCOW2_META_NONE);
        if (ret == 0) {
            ret = bdrv_co_pwrite_zeroes(bs->file, host, s->cluster_size, 0);
        }
    }
    if (ret == 0 && changed) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0 || !changed) {
        return ret;
    }
    ret = qcow2_co_cache_get(bs, &s->l2_cache, l2_offset, false, &l2);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < s->l2_size; i++) {
        qblk_st_be64(l2 + 8 * i, entries[i]);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, l2);
    qcow2_cache_put(&s->l2_cache, l2);
    for (uint32_t i = 0; ret == 0 && i < s->l2_size; i++) {
        if (unref[i] && !flushed) {
            ret = qcow2_co_cache_flush(bs, &s->l2_cache);
            flushed = true;
        }
        if (unref[i] && ret == 0) {
            ret = qcow2_co_update_refcount(bs, unref[i], s->cluster_size, -(int64_t)l2_refs);
        }
    }
    return ret;
}

int coroutine_fn qcow2_co_downgrade(BlockDriverState *bs, BdrvProgressFunc *progress,
                                    void *opaque, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    bool backing = bs->backing || (bs->backing_file && *bs->backing_file);
    Qcow2Header nh = s->header;
    int ret;

    ret = for_each_l2_table(bs, expand_zero_clusters, &backing, progress, opaque);
    if (ret == 0) {
        ret = qcow2_co_flush_caches(bs);
    }
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to turn zero into data clusters");
        return ret;
    }
    nh.version = 2;
    nh.header_length = QCOW2_V2_HEADER_SIZE;
    nh.incompatible_features = nh.compatible_features = nh.autoclear_features = 0;
    nh.refcount_order = 4;
    nh.compression_type = 0;
    ret = rewrite_header(bs, &nh);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to update the image header");
    }
    return ret;
}
