/* The block core's open and close: the driver registry, format probing,
 * filename prefixes, opening nodes with their file and backing children
 * (in coroutine context), closing, and node properties. Creation and the
 * other control operations are in block/control.c, the request path in
 * block/io*.c, the synchronous wrappers in block/sync.c. */
#include <errno.h>
#include <string.h>
#include <inttypes.h>
#include <unistd.h>
#include "block/internal.h"
#include "trace-events.h"

/* Every driver, explicitly (no constructor registration). */
static const BlockDriver *const drivers[] = {
    &bdrv_blkdebug,
    &bdrv_copy_on_read,
    &bdrv_file,
    &bdrv_log_writes,
    &bdrv_nbd,
    &bdrv_null_co,
    &bdrv_qcow2,
    &bdrv_qed,
    &bdrv_raw,
#ifdef QBLK_HAVE_RBD
    &bdrv_rbd,
#endif
};

static GList *all_nodes;

#define PROBE_BUF_SIZE 2048

const BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (strcmp(drivers[i]->format_name, name) == 0) {
            return drivers[i];
        }
    }
    return NULL;
}

const char *const *bdrv_format_names(void)
{
    static const char *names[G_N_ELEMENTS(drivers) + 1];

    if (!names[0]) {
        for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
            names[i] = drivers[i]->format_name;
        }
        /* drivers[] is kept sorted by name. */
    }
    return names;
}

const BlockDriver *bdrv_probe_buffer(const uint8_t *buf, int len, const char *filename)
{
    const BlockDriver *best = &bdrv_raw;
    int best_score = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        const BlockDriver *drv = drivers[i];
        int score;

        if (!drv->probe || drv == &bdrv_raw) {
            continue;
        }
        score = drv->probe(buf, len, filename);
        trace_bdrv_probe(filename ? filename : "", drv->format_name, score);
        if (score > best_score) {
            best = drv;
            best_score = score;
        }
    }
    return best;
}

bool bdrv_any_in_flight(void)
{
    for (GList *l = all_nodes; l; l = l->next) {
        if (((BlockDriverState *)l->data)->in_flight) {
            return true;
        }
    }
    return false;
}

static BlockDriverState *node_new(const BlockDriver *drv, const char *filename, int flags)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = drv;
    bs->opaque = drv->instance_size ? g_malloc0(drv->instance_size) : NULL;
    bs->refcnt = 1;
    bs->open_flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->no_flush = flags & BDRV_O_NO_FLUSH;
    bs->discard_unmap = flags & BDRV_O_UNMAP;
    bs->copy_on_read = (flags & BDRV_O_COPY_ON_READ) ? 1 : 0;  /* one user: the opener */
    bs->force_share = flags & BDRV_O_FORCE_SHARE;
    bs->exact_filename = g_strdup(filename);
    bs->filename = g_strdup(filename);
    bs->bl.request_alignment = 1;
    return bs;
}

static void node_free(BlockDriverState *bs)
{
    bdrv_graph_remove_node(bs);
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs->exact_filename);
    g_free(bs->backing_file);
    g_free(bs->backing_format);
    g_free(bs->full_backing_filename);
    g_free(bs->auto_backing_file);
    g_free(bs);
}

/* Whether drv is named by filename's prefix. */
static bool driver_claims(const BlockDriver *drv, const char *filename)
{
    return (drv->protocol_prefix && g_str_has_prefix(filename, drv->protocol_prefix)) ||
           (drv->claims_filename && drv->claims_filename(filename));
}

const BlockDriver *bdrv_find_protocol(const char *filename)
{
    for (size_t i = 0; filename && i < G_N_ELEMENTS(drivers); i++) {
        if (driver_claims(drivers[i], filename)) {
            return drivers[i];
        }
    }
    return &bdrv_file;
}

/* detect-zeroes values, in QEMU's BlockdevDetectZeroesOptions order. */
static const char *const detect_zeroes_names[] = { "off", "on", "unmap", NULL };

const char *bdrv_detect_zeroes_name(BdrvDetectZeroes mode)
{
    return detect_zeroes_names[mode];
}

static bool take_detect_zeroes(QblkOpts *opts, int flags, BdrvDetectZeroes *mode,
                               GError **errp)
{
    g_autofree char *val = qblk_opts_take(opts, "detect-zeroes");

    *mode = BDRV_DETECT_ZEROES_OFF;
    if (!val) {
        return true;
    }
    for (int i = 0; detect_zeroes_names[i]; i++) {
        if (!strcmp(val, detect_zeroes_names[i])) {
            *mode = i;
            break;
        }
    }
    if (*mode == BDRV_DETECT_ZEROES_OFF && strcmp(val, "off")) {
        qblk_error_set(errp, "Parameter 'detect-zeroes' does not accept value '%s'", val);
        return false;
    }
    /* QEMU refuses rather than silently not unmapping. */
    if (*mode == BDRV_DETECT_ZEROES_UNMAP && !(flags & BDRV_O_UNMAP)) {
        qblk_error_set(errp, "setting detect-zeroes to unmap is not allowed without "
                       "setting discard operation to unmap");
        return false;
    }
    return true;
}

static bool take_generic_options(QblkOpts *opts, int *flags, GError **errp)
{
    bool val;
    g_autofree char *discard = NULL;

    if (!qblk_opts_take_bool(opts, "read-only", !(*flags & BDRV_O_RDWR), &val, errp)) {
        return false;
    }
    *flags = val ? *flags & ~BDRV_O_RDWR : *flags | BDRV_O_RDWR;
    if (!qblk_opts_take_bool(opts, "auto-read-only", *flags & BDRV_O_AUTO_RDONLY, &val, errp)) {
        return false;
    }
    *flags = val ? *flags | BDRV_O_AUTO_RDONLY : *flags & ~BDRV_O_AUTO_RDONLY;
    if (!qblk_opts_take_bool(opts, "copy-on-read", *flags & BDRV_O_COPY_ON_READ, &val, errp)) {
        return false;
    }
    *flags = val ? *flags | BDRV_O_COPY_ON_READ : *flags & ~BDRV_O_COPY_ON_READ;
    if (!qblk_opts_take_bool(opts, "cache.direct", *flags & BDRV_O_NOCACHE, &val, errp)) {
        return false;
    }
    *flags = val ? *flags | BDRV_O_NOCACHE : *flags & ~BDRV_O_NOCACHE;
    if (!qblk_opts_take_bool(opts, "cache.no-flush", *flags & BDRV_O_NO_FLUSH, &val, errp)) {
        return false;
    }
    *flags = val ? *flags | BDRV_O_NO_FLUSH : *flags & ~BDRV_O_NO_FLUSH;
    if (!qblk_opts_take_bool(opts, "force-share", *flags & BDRV_O_FORCE_SHARE, &val, errp)) {
        return false;
    }
    *flags = val ? *flags | BDRV_O_FORCE_SHARE : *flags & ~BDRV_O_FORCE_SHARE;
    if ((*flags & BDRV_O_FORCE_SHARE) && (*flags & BDRV_O_RDWR)) {
        qblk_error_set(errp, "force-share=on can only be used with read-only images");
        return false;
    }
    discard = qblk_opts_take(opts, "discard");
    if (discard) {
        if (!strcmp(discard, "unmap") || !strcmp(discard, "on")) {
            *flags |= BDRV_O_UNMAP;
        } else if (!strcmp(discard, "ignore") || !strcmp(discard, "off")) {
            *flags &= ~BDRV_O_UNMAP;
        } else {
            qblk_error_set(errp, "Invalid discard option: %s", discard);
            return false;
        }
    }
    return true;
}

static bool reject_leftovers(BlockDriverState *bs, QblkOpts *opts, GError **errp)
{
    guint n;
    g_autofree const char **keys = qblk_opts_keys(opts, &n);

    if (n == 0) {
        return true;
    }
    qblk_error_set(errp, "Block %s '%s' does not support the option '%s'",
                   bs->drv->is_protocol ? "protocol" : "format",
                   bs->drv->format_name, keys[0]);
    return false;
}

bool bdrv_path_has_protocol(const char *path)
{
    return path[strcspn(path, ":/")] == ':';
}

/* QEMU's rule (path_combine): absolute and "<protocol>:" names stay as
 * they are; a relative one is taken relative to the directory part of the
 * image's name exactly as written (up to its last '/', and never into a
 * protocol prefix), so "./a.qed" with "b.raw" gives "./b.raw" and
 * "nbd://h/a" with "b" gives "nbd://h/b". */
char *bdrv_resolve_backing_name(const char *image, const char *backing)
{
    const char *dir_end, *slash;

    if (g_path_is_absolute(backing) || bdrv_path_has_protocol(backing) || !image) {
        return g_strdup(backing);
    }
    dir_end = bdrv_path_has_protocol(image) ? strchr(image, ':') + 1 : image;
    slash = strrchr(image, '/');
    if (slash && slash + 1 > dir_end) {
        dir_end = slash + 1;
    }
    return g_strdup_printf("%.*s%s", (int)(dir_end - image), image, backing);
}

static BlockDriverState *coroutine_fn open_node(const char *filename, QblkOpts *opts,
                                                int flags, bool as_child, bool *probed_raw,
                                                GError **errp);

/* A node named by a reference option (file=NAME, backing=NAME), with a
 * new reference for the link that will hold it; QEMU's words when there
 * is none. */
static BlockDriverState *take_node_reference(const char *name, GError **errp)
{
    BlockDriverState *bs = bdrv_lookup_bs(name, name, errp);

    if (bs) {
        bdrv_ref(bs);
    }
    return bs;
}

/* backing=NAME: an existing node becomes the backing child instead of
 * the file the header names. */
static bool attach_backing_reference(BlockDriverState *bs, const char *name, GError **errp)
{
    GError *local_err = NULL;

    if (bs->backing_file) {
        bs->full_backing_filename = bdrv_resolve_backing_name(bs->filename, bs->backing_file);
    }
    bs->auto_backing_file = g_strdup(bs->backing_file);
    bs->backing = take_node_reference(name, &local_err);
    if (!bs->backing) {
        qblk_error_set(errp, "Could not open backing file: %s", local_err->message);
        g_error_free(local_err);
        return false;
    }
    bs->backing_link = bdrv_graph_link(bs, bs->backing, "backing");
    return true;
}

/* The backing option's meaning: "" is no backing (blockdev-add's null);
 * "null" names the node called null when there is one and otherwise
 * means no backing too, as qblk's option strings always had it. */
static bool backing_option_is_none(const char *backing)
{
    return !*backing || (!strcmp(backing, "null") && !bdrv_find_node("null"));
}

static bool coroutine_fn open_backing(BlockDriverState *bs, QblkOpts *backing_opts, int flags,
                         GError **errp)
{
    GError *local_err = NULL;

    bs->full_backing_filename = bdrv_resolve_backing_name(bs->filename, bs->backing_file);
    if (!qblk_opts_has(backing_opts, "driver") && bs->backing_format) {
        /* A declared format is trusted: a raw backing file is never probed. */
        qblk_opts_set(backing_opts, "driver", bs->backing_format);
    }
    flags &= ~(BDRV_O_RDWR | BDRV_O_COPY_ON_READ);
    bs->backing = open_node(bs->full_backing_filename, backing_opts, flags, false, NULL,
                            &local_err);
    if (!bs->backing) {
        qblk_error_set(errp, "Could not open backing file: %s", local_err->message);
        g_error_free(local_err);
        return false;
    }
    bs->backing_link = bdrv_graph_link(bs, bs->backing, "backing");
    bs->auto_backing_file = g_strdup(bs->backing->filename);
    return true;
}

/* Opens a node. opts is consumed. As a child (a format's file), a node
 * without a "driver" is opened with the protocol its filename names,
 * never probed. */
static BlockDriverState *coroutine_fn open_node(const char *filename, QblkOpts *opts,
                                                int flags, bool as_child, bool *probed_raw,
                                                GError **errp)
{
    g_autoptr(QblkOpts) owned = opts ? opts : qblk_opts_new();
    g_autofree char *driver = NULL;
    g_autofree char *fname = NULL;
    g_autofree char *backing_opt = NULL;
    g_autofree char *node_name = NULL;
    g_autoptr(QblkOpts) backing_opts = NULL;
    const BlockDriver *drv = NULL;
    BlockDriverState *file = NULL, *bs;
    BdrvDetectZeroes detect_zeroes;
    bool probed = false;

    opts = owned;
    if (!take_generic_options(opts, &flags, errp) ||
        !take_detect_zeroes(opts, flags, &detect_zeroes, errp)) {
        return NULL;
    }
    node_name = qblk_opts_take(opts, "node-name");
    if (node_name && !bdrv_check_node_name(node_name, errp)) {
        return NULL;
    }
    driver = qblk_opts_take(opts, "driver");
    fname = qblk_opts_take(opts, "filename");
    if (!fname && filename) {
        fname = g_strdup(filename);
    }
    if (driver) {
        drv = bdrv_find_format(driver);
        if (!drv) {
            qblk_error_set(errp, "Unknown driver '%s'", driver);
            return NULL;
        }
    } else if (as_child || (fname && bdrv_find_protocol(fname)->is_filter)) {
        /* Filters named by prefix open directly; other protocols
         * (null-co://) are a format's file child like plain files. */
        drv = bdrv_find_protocol(fname);
    }
    if (drv && drv->parse_filename && fname && driver_claims(drv, fname)) {
        if (!drv->parse_filename(fname, opts, errp)) {
            return NULL;
        }
        g_clear_pointer(&fname, g_free);
    }

    if (drv && drv->is_protocol && !fname && drv->protocol_prefix) {
        /* Protocols without files (null-co) are named like their URLs. */
        fname = g_strdup(drv->protocol_prefix);
    }
    if (!drv || !drv->is_protocol) {
        /* A format or filter: open its file child first (probing needs it). */
        const char *key = drv && drv->child_key ? drv->child_key : "file";
        g_autofree char *prefix = g_strdup_printf("%s.", key);
        g_autofree char *child_ref = qblk_opts_take(opts, key);
        QblkOpts *child_opts = qblk_opts_take_prefix(opts, prefix);
        const char *child_name = qblk_opts_get(child_opts, "filename");

        if (child_ref) {
            /* file=NAME: an existing node is the file child. */
            bool extra = qblk_opts_count(child_opts) > 0;

            qblk_opts_free(child_opts);
            if (extra) {
                qblk_error_set(errp, "Cannot reference an existing block device with "
                               "additional options or a new filename");
                return NULL;
            }
            file = take_node_reference(child_ref, errp);
            if (!file) {
                return NULL;
            }
        } else {
            if (!child_name && !fname && !qblk_opts_has(child_opts, "driver")) {
                qblk_opts_free(child_opts);
                qblk_error_set(errp, "A block device must be specified for \"%s\"", key);
                return NULL;
            }
            /* As QEMU, a file child opened here may unmap whatever its
             * parent's policy: the parent decides what it passes down. */
            file = open_node(child_name ? NULL : fname, child_opts, flags | BDRV_O_UNMAP,
                             true, NULL, errp);
            if (!file) {
                return NULL;
            }
        }
        /* A format may grow its host file; a node with other users
         * (referenced, or a format under a filter) keeps its bounds. */
        if (!child_ref || file->drv->is_protocol) {
            file->growable = true;
        }
        if ((flags & BDRV_O_AUTO_RDONLY) && (flags & BDRV_O_RDWR) && file->read_only) {
            flags &= ~BDRV_O_RDWR;     /* the file fell back to read-only */
        }
        if (!drv) {
            uint8_t buf[PROBE_BUF_SIZE] = { 0 };
            int64_t len = bdrv_getlength(file);
            int n = len < 0 ? 0 : (int)MIN(len, PROBE_BUF_SIZE);
            int ret = n ? bdrv_co_pread(file, 0, n, buf, 0) : 0;

            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not read image for determining its format");
                bdrv_co_unref(file);
                return NULL;
            }
            drv = bdrv_probe_buffer(buf, n, fname);
            probed = drv == &bdrv_raw;
        }
    }

    bs = node_new(drv, fname ? fname : (file ? file->filename : NULL), flags);
    bs->file = file;
    bs->detect_zeroes = detect_zeroes;
    if (file) {
        const char *key = drv->child_key ? drv->child_key : "file";

        bs->file_link = bdrv_graph_link(bs, file, key);
    }
    if (node_name && !bdrv_check_node_name(node_name, errp)) {
        /* A child took the name meanwhile. */
        goto fail_opened_nothing;
    }
    bdrv_graph_add_node(bs, node_name);
    bs->probed_raw = probed;
    if (file) {
        g_free(bs->filename);
        bs->filename = g_strdup(file->filename);
    } else if (fname) {
        qblk_opts_set(opts, "filename", fname);
    }
    if (drv->supports_backing) {
        backing_opts = qblk_opts_take_prefix(opts, "backing.");
        backing_opt = qblk_opts_take(opts, "backing");
    }
    trace_bdrv_open(bs, bs->filename ? bs->filename : "", drv->format_name, flags);
    if ((drv->co_open ? drv->co_open(bs, opts, flags, errp)
                      : drv->open(bs, opts, flags, errp)) < 0) {
        goto fail_opened_nothing;
    }
    all_nodes = g_list_prepend(all_nodes, bs);
    if (!reject_leftovers(bs, opts, errp)) {
        goto fail;
    }
    bdrv_refresh_capabilities(bs);
    if (backing_opt && !backing_option_is_none(backing_opt)) {
        if (qblk_opts_count(backing_opts) > 0) {
            qblk_error_set(errp, "Cannot reference an existing block device with "
                           "additional options or a new filename");
            goto fail;
        }
        if (!attach_backing_reference(bs, backing_opt, errp)) {
            goto fail;
        }
    } else if (bs->backing_file && !(flags & BDRV_O_NO_BACKING) && !backing_opt) {
        if (!open_backing(bs, g_steal_pointer(&backing_opts), flags, errp)) {
            goto fail;
        }
    } else if (bs->backing_file) {
        bs->full_backing_filename = bdrv_resolve_backing_name(bs->filename, bs->backing_file);
        bs->auto_backing_file = g_strdup(bs->backing_file);
    }
    if (!bdrv_refresh_perms(bs, errp)) {
        goto fail;
    }
    if (probed_raw) {
        *probed_raw = probed;
    }
    return bs;

fail:
    bdrv_co_unref(bs);
    return NULL;
fail_opened_nothing:
    bdrv_graph_unlink_children(bs);
    bdrv_co_unref(bs->file);
    node_free(bs);
    return NULL;
}

/* Snapshot mode: base (read-only) under a temporary qcow2 overlay that
 * takes every write. The overlay's file is unlinked once open, so it
 * vanishes with the process however that ends; its header names no
 * backing file, base is attached in memory. */
static BlockDriverState *coroutine_fn open_snapshot_overlay(BlockDriverState *base,
                                                            int flags, GError **errp)
{
    g_autoptr(QblkOpts) create = qblk_opts_new();
    g_autofree char *tmp = NULL;
    g_autofree char *size = NULL;
    BlockDriverState *overlay;
    QblkOpts *opts;
    int64_t len = bdrv_getlength(base);
    int fd;

    if (len < 0) {
        qblk_error_set_errno(errp, (int)-len, "Could not get the image size");
        return NULL;
    }
    fd = g_file_open_tmp("qblk-snapshot.XXXXXX", &tmp, NULL);
    if (fd < 0) {
        qblk_error_set_errno(errp, errno, "Could not create a temporary overlay");
        return NULL;
    }
    close(fd);
    size = g_strdup_printf("%" PRId64, len);
    qblk_opts_set(create, "size", size);
    if (bdrv_co_create("qcow2", tmp, create, errp) < 0) {
        unlink(tmp);
        return NULL;
    }
    opts = qblk_opts_new();
    qblk_opts_set(opts, "driver", "qcow2");
    overlay = open_node(tmp, opts, (flags | BDRV_O_RDWR | BDRV_O_NO_BACKING) &
                        ~(BDRV_O_SNAPSHOT | BDRV_O_FORCE_SHARE),
                        false, NULL, errp);
    unlink(tmp);
    if (overlay) {
        overlay->backing = base;
        bdrv_ref(base);
        overlay->backing_link = bdrv_graph_link(overlay, base, "backing");
        if (!bdrv_refresh_perms(overlay, errp)) {
            bdrv_co_unref(overlay);
            return NULL;
        }
    }
    return overlay;
}

BlockDriverState *coroutine_fn bdrv_co_open(const char *filename, QblkOpts *options,
                                            int flags, bool *probed_raw, GError **errp)
{
    BlockDriverState *bs, *overlay;

    if (probed_raw) {
        *probed_raw = false;
    }
    if (!(flags & BDRV_O_SNAPSHOT)) {
        return open_node(filename, options, flags, false, probed_raw, errp);
    }
    bs = open_node(filename, options, flags & ~(BDRV_O_RDWR | BDRV_O_SNAPSHOT), false,
                   probed_raw, errp);
    if (!bs) {
        return NULL;
    }
    overlay = open_snapshot_overlay(bs, flags, errp);
    bdrv_co_unref(bs);
    return overlay;
}

void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

int bdrv_get_refcnt(BlockDriverState *bs)
{
    return bs->refcnt;
}

/* Closes bs once its last reference is gone: the flush of a writable
 * node (its driver's caches, then its file's, down the chain), the
 * driver's close, then its children in turn (each flushed again, which
 * makes what the driver wrote while closing stable). Returns the first
 * error of those flushes and of the driver's co_close (what a format
 * writes on the way out). */
static int coroutine_fn close_node(BlockDriverState *bs)
{
    int ret = 0, child_ret;

    trace_bdrv_close(bs);
    bdrv_co_drain(bs);
    if (!bs->read_only) {
        ret = bdrv_co_flush(bs);
    }
    if (bs->drv->co_close) {
        child_ret = bs->drv->co_close(bs);
        ret = ret < 0 ? ret : child_ret;
    } else if (bs->drv->close) {
        bs->drv->close(bs);
    }
    all_nodes = g_list_remove(all_nodes, bs);
    bdrv_graph_unlink_children(bs);
    child_ret = bdrv_co_unref_flush(bs->backing);
    ret = ret < 0 ? ret : child_ret;
    child_ret = bdrv_co_unref_flush(bs->file);
    ret = ret < 0 ? ret : child_ret;
    node_free(bs);
    return ret;
}

int coroutine_fn bdrv_co_unref_flush(BlockDriverState *bs)
{
    if (!bs || --bs->refcnt > 0) {
        return 0;
    }
    return close_node(bs);
}

void coroutine_fn bdrv_co_unref(BlockDriverState *bs)
{
    bdrv_co_unref_flush(bs);
}

const char *bdrv_format_name(BlockDriverState *bs)
{
    return bs->drv->format_name;
}

const char *bdrv_filename(BlockDriverState *bs)
{
    return bs->filename;
}

bool bdrv_is_read_only(BlockDriverState *bs)
{
    return bs->read_only;
}

bool bdrv_backing_overridden(BlockDriverState *bs)
{
    if (bs->backing) {
        return g_strcmp0(bs->auto_backing_file, bs->backing->filename) != 0;
    }
    return bs->auto_backing_file && *bs->auto_backing_file;
}

BdrvDetectZeroes bdrv_get_detect_zeroes(BlockDriverState *bs)
{
    return bs->detect_zeroes;
}

int bdrv_get_open_flags(BlockDriverState *bs)
{
    return bs->open_flags;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (bs->drv->getlength) {
        return bs->drv->getlength(bs);
    }
    return bs->file ? bdrv_getlength(bs->file) : -ENOTSUP;
}

int64_t bdrv_get_allocated_file_size(BlockDriverState *bs)
{
    if (bs->drv->get_allocated_file_size) {
        return bs->drv->get_allocated_file_size(bs);
    }
    return bs->file ? bdrv_get_allocated_file_size(bs->file) : -ENOTSUP;
}

BlockDriverState *bdrv_backing(BlockDriverState *bs)
{
    return bs->backing;
}

BlockDriverState *bdrv_file_child(BlockDriverState *bs)
{
    return bs->file;
}

bool bdrv_is_filter(BlockDriverState *bs)
{
    return bs->drv->is_filter && bs->file;
}

BlockDriverState *bdrv_filtered_or_backing(BlockDriverState *bs)
{
    return bdrv_is_filter(bs) ? bs->file : bs->backing;
}

const char *bdrv_backing_file(BlockDriverState *bs)
{
    return bs->backing_file;
}

const char *bdrv_backing_format(BlockDriverState *bs)
{
    return bs->backing_format;
}

int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    memset(bdi, 0, sizeof(*bdi));
    if (bs->drv->get_info) {
        return bs->drv->get_info(bs, bdi);
    }
    return -ENOTSUP;
}

bool bdrv_parse_cache_mode(const char *mode, int *flags, bool *writethrough)
{
    *flags &= ~(BDRV_O_NOCACHE | BDRV_O_NO_FLUSH);
    *writethrough = false;
    if (!strcmp(mode, "none") || !strcmp(mode, "off")) {
        *flags |= BDRV_O_NOCACHE;
    } else if (!strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE;
        *writethrough = true;
    } else if (!strcmp(mode, "writethrough")) {
        *writethrough = true;
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
    } else if (strcmp(mode, "writeback")) {
        return false;
    }
    return true;
}

GVariant *bdrv_get_specific_info(BlockDriverState *bs)
{
    return bs->drv->get_specific_info ? bs->drv->get_specific_info(bs) : NULL;
}
