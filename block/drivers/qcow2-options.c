/* qcow2's runtime options (what blockdev-add's BlockdevOptionsQcow2 adds
 * to an open): the metadata cache sizes, with QEMU 7.2's checks and
 * texts, and the options qblk accepts with a fixed behaviour (lazy
 * refcounts as the header says, discards passed on, overlap checks). */
#include <errno.h>
#include <string.h>
#include <inttypes.h>
#include "block/drivers/qcow2.h"

/* QEMU's floor for each cache, in clusters. */
#define MIN_L2_CACHE_CLUSTERS       2
#define MIN_REFCOUNT_CACHE_CLUSTERS 4

static bool take_overlap_check(QblkOpts *options, GError **errp)
{
    static const char *const modes[] = { "none", "constant", "cached", "all" };
    g_autofree char *mode = qblk_opts_take(options, "overlap-check");
    g_autoptr(QblkOpts) flags = qblk_opts_take_prefix(options, "overlap-check.");
    const char *tmpl = qblk_opts_get(flags, "template");
    const char *given = mode ? mode : tmpl;

    if (!given) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (!strcmp(given, modes[i])) {
            return true;
        }
    }
    qblk_error_set(errp, "Unsupported value '%s' for qcow2 option 'overlap-check'. Allowed "
                   "are any of the following: none, constant, cached, all", given);
    return false;
}

bool qcow2_take_runtime_options(QblkOpts *options, Qcow2RuntimeOpts *o, GError **errp)
{
    static const char *const accepted[] = { "pass-discard-request", "pass-discard-snapshot",
                                            "pass-discard-other" };
    g_autofree char *interval = qblk_opts_take(options, "cache-clean-interval");
    gint64 secs;

    memset(o, 0, sizeof(*o));
    if (!qblk_opts_take_size(options, "cache-size", -1, &o->cache_size, errp) ||
        !qblk_opts_take_size(options, "l2-cache-size", -1, &o->l2_cache_size, errp) ||
        !qblk_opts_take_size(options, "refcount-cache-size", -1, &o->refcount_cache_size,
                             errp) ||
        !qblk_opts_take_size(options, "l2-cache-entry-size", -1, &o->l2_entry_size, errp) ||
        !qblk_opts_take_bool(options, "lazy-refcounts", false, &o->lazy_refcounts, errp)) {
        return false;
    }
    o->has_lazy_refcounts = o->lazy_refcounts;
    for (size_t i = 0; i < G_N_ELEMENTS(accepted); i++) {
        bool val;

        if (!qblk_opts_take_bool(options, accepted[i], false, &val, errp)) {
            return false;
        }
    }
    if (!take_overlap_check(options, errp)) {
        return false;
    }
    if (o->cache_size >= 0 && o->l2_cache_size >= 0 && o->refcount_cache_size >= 0) {
        qblk_error_set(errp, "cache-size, l2-cache-size and refcount-cache-size may not be "
                       "set at the same time");
        return false;
    }
    if (o->cache_size >= 0 && o->l2_cache_size > o->cache_size) {
        qblk_error_set(errp, "l2-cache-size may not exceed cache-size");
        return false;
    }
    if (o->cache_size >= 0 && o->refcount_cache_size > o->cache_size) {
        qblk_error_set(errp, "refcount-cache-size may not exceed cache-size");
        return false;
    }
    if (interval && (!g_ascii_string_to_signed(interval, 10, INT64_MIN, INT64_MAX, &secs,
                                               NULL) || secs < 0 || secs > UINT32_MAX)) {
        qblk_error_set(errp, "Cache clean interval too big");
        return false;
    }
    return true;
}

/* Cache entries for a byte budget (-1: keep the default). */
static unsigned entries_for(int64_t bytes, uint32_t cluster_size, unsigned min,
                            unsigned def)
{
    return bytes < 0 ? def : MAX((unsigned)MIN(bytes / cluster_size, UINT32_MAX), min);
}

bool coroutine_fn qcow2_co_apply_runtime_options(BlockDriverState *bs,
                                                 const Qcow2RuntimeOpts *o, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t l2 = o->l2_cache_size, rc = o->refcount_cache_size;
    int ret;

    if (o->l2_entry_size >= 0 &&
        (o->l2_entry_size < 512 || o->l2_entry_size > s->cluster_size ||
         (o->l2_entry_size & (o->l2_entry_size - 1)))) {
        qblk_error_set(errp, "L2 cache entry size must be a power of two between 512 and "
                       "the cluster size (%" PRIu32 ")", (uint32_t)s->cluster_size);
        return false;
    }
    if (o->lazy_refcounts && s->header.version < 3) {
        qblk_error_set(errp, "Lazy refcounts require a qcow2 image with at least qemu 1.1 "
                       "compatibility level");
        return false;
    }
    /* cache-size alone: the refcount cache gets its floor, L2 the rest. */
    if (o->cache_size >= 0) {
        int64_t rc_min = (int64_t)MIN_REFCOUNT_CACHE_CLUSTERS * s->cluster_size;

        if (l2 < 0 && rc < 0) {
            rc = MIN(rc_min, o->cache_size);
            l2 = o->cache_size - rc;
        } else if (l2 < 0) {
            l2 = o->cache_size - rc;
        } else if (rc < 0) {
            rc = o->cache_size - l2;
        }
    }
    if (l2 < 0 && rc < 0) {
        return true;
    }
    /* An open that repaired the image may have left tables to write. */
    ret = qcow2_co_flush_caches(bs);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not write the qcow2 metadata caches");
        return false;
    }
    if (l2 >= 0) {
        unsigned n = entries_for(l2, s->cluster_size, MIN_L2_CACHE_CLUSTERS, s->l2_cache.len);

        qcow2_cache_destroy(&s->l2_cache);
        qcow2_cache_init(&s->l2_cache, n, s->cluster_size, true);
    }
    if (rc >= 0) {
        unsigned n = entries_for(rc, s->cluster_size, MIN_REFCOUNT_CACHE_CLUSTERS,
                                 s->refblock_cache.len);

        qcow2_cache_destroy(&s->refblock_cache);
        qcow2_cache_init(&s->refblock_cache, n, s->cluster_size, false);
    }
    s->l2_cache.depends = &s->refblock_cache;
    return true;
}
