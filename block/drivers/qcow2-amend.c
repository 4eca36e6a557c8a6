/* qcow2 amend (qemu-img amend): lazy refcounts on or off, another
 * refcount width (new refcount structures written from the current
 * refcounts), the virtual size, the compat level (qcow2-compat.c), and
 * qemu-img's checks of every option before anything changes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "block/drivers/qcow2.h"
#include "util/cutils.h"

const char *const qcow2_amend_opts[] = {
    "backing_file", "backing_fmt", "compat", "lazy_refcounts", "refcount_bits", "size", NULL,
};

typedef struct {
    int version;                    /* 0: unchanged */
    int lazy;                       /* -1: unchanged */
    uint32_t refcount_bits;         /* 0: unchanged */
    int64_t size;                   /* -1: unchanged */
} Qcow2Amend;

/* Every option checked, nothing changed yet (qemu-img's order and words). */
static bool amend_parse(BlockDriverState *bs, QblkOpts *opts, Qcow2Amend *a, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    const char *compat = qblk_opts_get(opts, "compat");
    const char *lazy = qblk_opts_get(opts, "lazy_refcounts");
    const char *bits = qblk_opts_get(opts, "refcount_bits");
    const char *size = qblk_opts_get(opts, "size");
    const char *backing = qblk_opts_get(opts, "backing_file");
    const char *backing_fmt = qblk_opts_get(opts, "backing_fmt");
    int version;

    *a = (Qcow2Amend) { .lazy = -1, .size = -1 };
    if (compat) {
        if (!strcmp(compat, "0.10") || !strcmp(compat, "v2")) {
            a->version = 2;
        } else if (!strcmp(compat, "1.1") || !strcmp(compat, "v3")) {
            a->version = 3;
        } else {
            qblk_error_set(errp, "Unknown compatibility level %s", compat);
            return false;
        }
    }
    version = a->version ? a->version : (int)s->header.version;
    if (lazy) {
        a->lazy = !strcmp(lazy, "on") || !strcmp(lazy, "true");
    }
    if (bits) {
        char *end;
        unsigned long v = strtoul(bits, &end, 10);

        if (*end || !v || v > 64 || (v & (v - 1))) {
            qblk_error_set(errp, "Refcount width must be a power of two and may not exceed "
                           "64 bits");
            return false;
        }
        a->refcount_bits = (uint32_t)v;
    }
    if (size) {
        int64_t n;

        if (qblk_strtosz(size, &n, NULL) < 0) {
            qblk_error_set(errp, "Parameter 'size' expects a non-negative number below 2^64");
            return false;
        }
        a->size = n;
    }
    if (version < 3 && a->refcount_bits && a->refcount_bits != 16) {
        qblk_error_set(errp, "Refcount widths other than 16 bits require compatibility level "
                       "1.1 or above (use compat=1.1 or greater)");
        return false;
    }
    if ((backing || backing_fmt) &&
        (g_strcmp0(backing, bs->backing_file) || g_strcmp0(backing_fmt, bs->backing_format))) {
        qblk_error_set(errp, "Cannot amend the backing file\n"
                       "You can use 'qblk-img rebase' instead.");
        return false;
    }
    if (version < 3 && !a->refcount_bits && s->refcount_bits != 16) {
        qblk_error_set(errp, "compat=0.10 requires refcount_bits=16");
        return false;
    }
    /* Asking for lazy refcounts an image already has is no change, so a
     * downgrade may carry it (QEMU accepts that too). */
    if (a->lazy == 1 && version < 3 &&
        !(s->header.version >= 3 && (s->header.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS))) {
        qblk_error_set(errp, "Lazy refcounts only supported with compatibility level 1.1 and "
                       "above (use compat=1.1 or greater)");
        return false;
    }
    return true;
}

/* New refcount structures of another width, written from the current
 * refcounts; the old ones are freed once the header points at the new. */
static int coroutine_fn change_refcount_width(BlockDriverState *bs, uint32_t bits,
                                              GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t nb = MAX(s->file_end >> s->cluster_bits, 1), max = bits == 64 ? UINT64_MAX
                                                              : (UINT64_C(1) << bits) - 1;
    uint64_t old_table = s->header.refcount_table_offset;
    uint64_t old_clusters = s->header.refcount_table_clusters;
    uint32_t old_bits = s->refcount_bits, old_size = s->refcount_table_size;
    g_autofree uint64_t *old_blocks = NULL;
    uint32_t *refs = g_try_new0(uint32_t, nb);
    int ret = refs ? 0 : -ENOMEM;

    for (uint64_t i = 0; ret == 0 && i < nb; i++) {
        uint64_t rc;

        ret = qcow2_co_get_refcount(bs, i, &rc);
        if (ret == 0 && rc > max) {
            qblk_error_set(errp, "Cannot decrease refcount entry width to %" PRIu32 " bits: "
                           "Cluster at offset %#" PRIx64 " has a refcount of %" PRIu64, bits,
                           i << s->cluster_bits, rc);
            ret = -EINVAL;
        }
        if (ret == 0) {
            refs[i] = (uint32_t)MIN(rc, UINT32_MAX);
        }
    }
    if (ret == 0) {
        ret = qcow2_co_flush_caches(bs);
    }
    if (ret < 0) {
        if (errp && !*errp) {
            qblk_error_set_errno(errp, -ret, "Could not read the refcounts");
        }
        g_free(refs);
        return ret;
    }
    old_blocks = g_memdup2(s->refcount_table, (uint64_t)old_size * 8);
    qcow2_cache_drop_all(&s->refblock_cache);
    qcow2_set_refcount_width(s, bits);
    ret = qcow2_co_rebuild_refcounts(bs, &refs, &nb);
    g_free(refs);
    if (ret < 0) {
        qcow2_set_refcount_width(s, old_bits);
        qblk_error_set_errno(errp, -ret, "Could not write the new refcount structures");
        return ret;
    }
    /* The old structures were counted as in use: free them now. */
    ret = qcow2_co_update_refcount(bs, old_table, old_clusters << s->cluster_bits, -1);
    for (uint32_t i = 0; ret == 0 && i < old_size; i++) {
        if (old_blocks[i]) {
            ret = qcow2_co_update_refcount(bs, old_blocks[i], 1, -1);
        }
    }
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not free the old refcount structures");
    }
    return ret;
}

int coroutine_fn qcow2_co_amend(BlockDriverState *bs, QblkOpts *opts,
                                BdrvProgressFunc *progress, void *opaque, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Amend a;
    bool upgrade, downgrade;
    int ret = 0;

    if (!amend_parse(bs, opts, &a, errp)) {
        return -EINVAL;
    }
    upgrade = a.version == 3 && s->header.version < 3;
    downgrade = a.version == 2 && s->header.version >= 3;
    qco_mutex_lock(&s->lock);
    /* Everything a downgrade refuses is refused before anything changes. */
    if (downgrade) {
        ret = qcow2_co_downgrade_check(bs, errp);
    }
    /* QEMU's order: the upgrade first, so lazy refcounts and other widths
     * apply to a v3 image; the downgrade last, from the final width. */
    if (ret == 0 && upgrade) {
        ret = qcow2_co_upgrade(bs, progress, opaque, errp);
    }
    if (ret == 0 && a.refcount_bits && a.refcount_bits != s->refcount_bits) {
        ret = change_refcount_width(bs, a.refcount_bits, errp);
    }
    if (ret == 0 && a.lazy >= 0 && !downgrade &&
        a.lazy != !!(s->header.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS)) {
        /* qblk keeps refcounts current either way: only the bit changes. */
        s->header.compatible_features ^= QCOW2_COMPAT_LAZY_REFCOUNTS;
        ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(compatible_features));
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not update the qcow2 header");
        }
    }
    if (ret == 0 && downgrade) {
        ret = qcow2_co_downgrade(bs, progress, opaque, errp);
    }
    qco_mutex_unlock(&s->lock);
    if (ret == 0 && a.size >= 0 && (uint64_t)a.size != s->header.size) {
        ret = bdrv_co_truncate(bs, a.size, false, PREALLOC_MODE_OFF, errp);
    }
    return ret;
}
