/* The block core's control path: the driver registry, format probing,
 * opening nodes with their file and backing children, closing, creating
 * images, and node properties. The request path is in block/io*.c. */
#include <errno.h>
#include <string.h>
#include <inttypes.h>
#include <unistd.h>
#include "block/internal.h"
#include "trace-events.h"

/* Every driver, explicitly (no constructor registration). */
static const BlockDriver *const drivers[] = {
    &bdrv_blkdebug,
    &bdrv_file,
    &bdrv_null_co,
    &bdrv_qcow2,
    &bdrv_qed,
    &bdrv_raw,
};

static GList *all_nodes;

#define PROBE_BUF_SIZE 2048

BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(drivers); i++) {
        if (strcmp(drivers[i]->format_name, name) == 0) {
            return (BlockDriver *)drivers[i];
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
    bs->exact_filename = g_strdup(filename);
    bs->filename = g_strdup(filename);
    bs->bl.request_alignment = 1;
    return bs;
}

static void node_free(BlockDriverState *bs)
{
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs->exact_filename);
    g_free(bs->backing_file);
    g_free(bs->backing_format);
    g_free(bs->full_backing_filename);
    g_free(bs);
}

/* The protocol a filename names when no driver is given. */
const BlockDriver *bdrv_find_protocol(const char *filename)
{
    if (filename && g_str_has_prefix(filename, "null-co://")) {
        return &bdrv_null_co;
    }
    if (filename && g_str_has_prefix(filename, "blkdebug:")) {
        return &bdrv_blkdebug;
    }
    return &bdrv_file;
}

/* "blkdebug:CONFIG:IMAGE" → config=CONFIG, image.filename=IMAGE. */
static bool split_blkdebug_filename(const char *filename, QblkOpts *opts, GError **errp)
{
    const char *rest = filename + strlen("blkdebug:");
    const char *colon = strchr(rest, ':');

    if (!colon) {
        qblk_error_set(errp, "blkdebug requires both config file and image path");
        return false;
    }
    if (colon > rest) {
        g_autofree char *config = g_strndup(rest, colon - rest);
        qblk_opts_set(opts, "config", config);
    }
    qblk_opts_set(opts, "image.filename", colon + 1);
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

/* Like QEMU: a relative backing name is taken relative to the directory
 * part of the image's name exactly as written (everything up to its last
 * '/'), so "./a.qed" with "b.raw" gives "./b.raw". */
char *bdrv_resolve_backing_name(const char *image, const char *backing)
{
    const char *slash;

    if (g_path_is_absolute(backing) || strstr(backing, "://") || !image ||
        strstr(image, "://")) {
        return g_strdup(backing);
    }
    slash = strrchr(image, '/');
    if (!slash) {
        return g_strdup(backing);
    }
    return g_strdup_printf("%.*s%s", (int)(slash - image + 1), image, backing);
}

static BlockDriverState *open_node(const char *filename, QblkOpts *opts, int flags,
                                   bool as_child, bool *probed_raw, GError **errp);

static bool open_backing(BlockDriverState *bs, QblkOpts *backing_opts, int flags,
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
    return true;
}

/* Opens a node. opts is consumed. As a child (a format's file), a node
 * without a "driver" is opened with the protocol its filename names,
 * never probed. */
static BlockDriverState *open_node(const char *filename, QblkOpts *opts, int flags,
                                   bool as_child, bool *probed_raw, GError **errp)
{
    g_autoptr(QblkOpts) owned = opts ? opts : qblk_opts_new();
    g_autofree char *driver = NULL;
    g_autofree char *fname = NULL;
    g_autofree char *backing_opt = NULL;
    g_autoptr(QblkOpts) backing_opts = NULL;
    const BlockDriver *drv = NULL;
    BlockDriverState *file = NULL, *bs;
    bool probed = false;

    opts = owned;
    if (!take_generic_options(opts, &flags, errp)) {
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
    } else if (as_child || (fname && bdrv_find_protocol(fname) == &bdrv_blkdebug)) {
        /* Filters named by prefix open directly; other protocols
         * (null-co://) are a format's file child like plain files. */
        drv = bdrv_find_protocol(fname);
    }
    if (drv == &bdrv_blkdebug && fname && g_str_has_prefix(fname, "blkdebug:")) {
        if (!split_blkdebug_filename(fname, opts, errp)) {
            return NULL;
        }
        g_clear_pointer(&fname, g_free);
    }

    if (drv && drv->is_protocol && !fname && drv != &bdrv_file) {
        /* Protocols without files (null-co) are named like their URLs. */
        fname = g_strdup_printf("%s://", drv->format_name);
    }
    if (!drv || !drv->is_protocol) {
        /* A format or filter: open its file child first (probing needs it). */
        const char *key = drv && drv->child_key ? drv->child_key : "file";
        g_autofree char *prefix = g_strdup_printf("%s.", key);
        QblkOpts *child_opts = qblk_opts_take_prefix(opts, prefix);
        const char *child_name = qblk_opts_get(child_opts, "filename");

        if (!child_name && !fname && !qblk_opts_has(child_opts, "driver")) {
            qblk_opts_free(child_opts);
            qblk_error_set(errp, "A block device must be specified for \"%s\"", key);
            return NULL;
        }
        file = open_node(child_name ? NULL : fname, child_opts, flags, true, NULL, errp);
        if (!file) {
            return NULL;
        }
        file->growable = true;
        if (!drv) {
            uint8_t buf[PROBE_BUF_SIZE] = { 0 };
            int64_t len = bdrv_getlength(file);
            int n = len < 0 ? 0 : (int)MIN(len, PROBE_BUF_SIZE);
            int ret = n ? bdrv_pread(file, 0, n, buf, 0) : 0;

            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not read image for determining its format");
                bdrv_unref(file);
                return NULL;
            }
            drv = bdrv_probe_buffer(buf, n, fname);
            probed = drv == &bdrv_raw;
        }
    }

    bs = node_new(drv, fname ? fname : (file ? file->filename : NULL), flags);
    bs->file = file;
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
    if (drv->open(bs, opts, flags, errp) < 0) {
        goto fail_opened_nothing;
    }
    all_nodes = g_list_prepend(all_nodes, bs);
    if (!reject_leftovers(bs, opts, errp)) {
        goto fail;
    }
    bdrv_refresh_capabilities(bs);
    if (bs->backing_file && !(flags & BDRV_O_NO_BACKING) &&
        !(backing_opt && (!*backing_opt || !strcmp(backing_opt, "null")))) {
        if (!open_backing(bs, g_steal_pointer(&backing_opts), flags, errp)) {
            goto fail;
        }
    } else if (bs->backing_file) {
        bs->full_backing_filename = bdrv_resolve_backing_name(bs->filename, bs->backing_file);
    }
    if (probed_raw) {
        *probed_raw = probed;
    }
    return bs;

fail:
    bdrv_unref(bs);
    return NULL;
fail_opened_nothing:
    if (bs->file) {
        bdrv_unref(bs->file);
    }
    node_free(bs);
    return NULL;
}

/* Snapshot mode: base (read-only) under a temporary qcow2 overlay that
 * takes every write. The overlay's file is unlinked once open, so it
 * vanishes with the process however that ends; its header names no
 * backing file, base is attached in memory. */
static BlockDriverState *open_snapshot_overlay(BlockDriverState *base, int flags,
                                               GError **errp)
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
    if (bdrv_create("qcow2", tmp, create, errp) < 0) {
        unlink(tmp);
        return NULL;
    }
    opts = qblk_opts_new();
    qblk_opts_set(opts, "driver", "qcow2");
    overlay = open_node(tmp, opts, (flags | BDRV_O_RDWR | BDRV_O_NO_BACKING) & ~BDRV_O_SNAPSHOT,
                        false, NULL, errp);
    unlink(tmp);
    if (overlay) {
        overlay->backing = base;
        bdrv_ref(base);
    }
    return overlay;
}

BlockDriverState *bdrv_open(const char *filename, QblkOpts *options, int flags,
                            bool *probed_raw, GError **errp)
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
    bdrv_unref(bs);
    return overlay;
}

void bdrv_ref(BlockDriverState *bs)
{
    bs->refcnt++;
}

void bdrv_unref(BlockDriverState *bs)
{
    if (!bs || --bs->refcnt > 0) {
        return;
    }
    trace_bdrv_close(bs);
    bdrv_drain(bs);
    if (!bs->read_only) {
        bdrv_flush(bs);
    }
    if (bs->drv->close) {
        bs->drv->close(bs);
    }
    all_nodes = g_list_remove(all_nodes, bs);
    bdrv_unref(bs->backing);
    bdrv_unref(bs->file);
    node_free(bs);
}

typedef struct CreateReq {
    const BlockDriver *drv;
    const char *filename;
    QblkOpts *opts;
    GError **errp;
    int ret;
} CreateReq;

static void coroutine_fn create_entry(void *opaque)
{
    CreateReq *r = opaque;

    r->ret = r->drv->co_create(r->filename, r->opts, r->errp);
}

static bool create_opt_known(const QblkOptDesc *d, const char *name)
{
    while (d && d->name && strcmp(d->name, name)) {
        d++;
    }
    return d && d->name;
}

/* Every option is one of drv's create options or, for a format, of the
 * protocol proto it creates on (NULL: none). */
static bool create_opts_known(const BlockDriver *drv, const BlockDriver *proto, QblkOpts *opts,
                              GError **errp)
{
    guint n;
    g_autofree const char **keys = qblk_opts_keys(opts, &n);

    for (guint i = 0; i < n; i++) {
        if (!create_opt_known(drv->create_opts, keys[i]) &&
            (!proto || !create_opt_known(proto->create_opts, keys[i]))) {
            qblk_error_set(errp, "Invalid parameter '%s'", keys[i]);
            return false;
        }
    }
    return true;
}

int bdrv_create(const char *fmt, const char *filename, QblkOpts *options, GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(fmt);
    g_autoptr(QblkOpts) opts = options ? qblk_opts_copy(options) : qblk_opts_new();
    CreateReq r;

    if (!drv) {
        qblk_error_set(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    if (!drv->co_create) {
        qblk_error_set(errp, "Driver '%s' does not support image creation", fmt);
        return -ENOTSUP;
    }
    if (!create_opts_known(drv, drv->is_protocol ? NULL : bdrv_find_protocol(filename), opts, errp)) {
        return -EINVAL;
    }
    r = (CreateReq) { drv, filename, opts, errp, 0 };
    bdrv_run_co(create_entry, &r);
    return r.ret;
}

int bdrv_measure(const char *fmt, QblkOpts *options, BlockDriverState *in_bs,
                 BlockMeasureInfo *info, GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(fmt);
    g_autoptr(QblkOpts) opts = options ? qblk_opts_copy(options) : qblk_opts_new();

    memset(info, 0, sizeof(*info));
    if (!drv) {
        qblk_error_set(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    if (!drv->measure) {
        qblk_error_set(errp, "Block driver '%s' does not support size measurement", fmt);
        return -ENOTSUP;
    }
    if (!create_opts_known(drv, &bdrv_file, opts, errp)) {
        return -EINVAL;
    }
    return drv->measure(opts, in_bs, info, errp);
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

int64_t bdrv_co_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs);
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

typedef struct {
    BlockDriverState *bs;
    int ret;
} MakeEmptyCo;

static void coroutine_fn make_empty_entry(void *opaque)
{
    MakeEmptyCo *m = opaque;

    m->ret = m->bs->drv->co_make_empty(m->bs);
}

int bdrv_make_empty(BlockDriverState *bs)
{
    MakeEmptyCo m = { bs, -ENOTSUP };

    if (bs->drv->co_make_empty) {
        bdrv_run_co(make_empty_entry, &m);
    }
    return m.ret;
}

typedef struct {
    BlockDriverState *bs;
    const char *file, *fmt;
    int ret;
} ChangeBackingCo;

static void coroutine_fn change_backing_entry(void *opaque)
{
    ChangeBackingCo *c = opaque;

    BlockDriverState *bs = c->bs;

    c->ret = bs->drv->co_change_backing_file(bs, c->file, c->fmt);
    if (c->ret < 0) {
        return;
    }
    g_free(bs->backing_file);
    g_free(bs->backing_format);
    g_free(bs->full_backing_filename);
    bs->backing_file = g_strdup(c->file);
    bs->backing_format = g_strdup(c->fmt);
    bs->full_backing_filename = c->file ? bdrv_resolve_backing_name(bs->filename, c->file) : NULL;
    c->ret = bdrv_co_flush(bs);
}

typedef struct {
    BlockDriverState *bs;
    QblkOpts *opts;
    GError **errp;
    int ret;
} AmendCo;

static void coroutine_fn amend_entry(void *opaque)
{
    AmendCo *a = opaque;

    a->ret = a->bs->drv->co_amend(a->bs, a->opts, a->errp);
    if (a->ret == 0) {
        a->ret = bdrv_co_flush(a->bs);
    }
}

static bool amend_option_known(BlockDriverState *bs, const char *name)
{
    for (const char *const *n = bs->drv->amend_opts; n && *n; n++) {
        if (!strcmp(*n, name)) {
            return true;
        }
    }
    return false;
}

bool bdrv_amend_check(BlockDriverState *bs, QblkOpts *opts, GError **errp)
{
    guint n;
    g_autofree const char **keys = qblk_opts_keys(opts, &n);

    if (!bs->drv->co_amend) {
        qblk_error_set(errp, "Format driver '%s' does not support option amendment",
                       bs->drv->format_name);
        return false;
    }
    for (guint i = 0; i < n; i++) {
        if (!amend_option_known(bs, keys[i])) {
            bool create = create_opt_known(bs->drv->create_opts, keys[i]);

            qblk_error_set(errp, "Invalid parameter '%s'%s", keys[i],
                           create ? "\nThis option is only supported for image creation" : "");
            return false;
        }
    }
    return true;
}

int bdrv_amend(BlockDriverState *bs, QblkOpts *opts, GError **errp)
{
    AmendCo a = { bs, opts, errp, -ENOTSUP };

    if (!bs->drv->co_amend) {
        qblk_error_set(errp, "Format driver '%s' does not support option amendment",
                       bs->drv->format_name);
        return -ENOTSUP;
    }
    if (bdrv_is_read_only(bs)) {
        qblk_error_set(errp, "Image is read-only");
        return -EACCES;
    }
    bdrv_run_co(amend_entry, &a);
    return a.ret;
}

bool bdrv_supports_backing(BlockDriverState *bs)
{
    return bs->drv->co_change_backing_file != NULL;
}

int bdrv_change_backing_file(BlockDriverState *bs, const char *file, const char *fmt)
{
    ChangeBackingCo c = { bs, file && *file ? file : NULL, NULL, -ENOTSUP };

    c.fmt = c.file && fmt && *fmt ? fmt : NULL;
    if (bdrv_is_read_only(bs)) {
        return -EACCES;
    }
    if (bs->drv->co_change_backing_file) {
        bdrv_run_co(change_backing_entry, &c);
    }
    return c.ret;
}

int bdrv_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list)
{
    *list = NULL;
    return bs->drv->snapshot_list ? bs->drv->snapshot_list(bs, list) : 0;
}

typedef struct {
    BlockDriverState *bs;
    const char *name;
    int (*fn)(BlockDriverState *bs, const char *name);
    int ret;
} SnapshotCo;

static void coroutine_fn snapshot_entry(void *opaque)
{
    SnapshotCo *c = opaque;

    c->ret = c->fn(c->bs, c->name);
    if (c->ret == 0) {
        c->ret = bdrv_co_flush(c->bs);
    }
}

/* One snapshot operation run to completion; fn may be NULL (missing). */
static int snapshot_run(BlockDriverState *bs, const char *name,
                        int coroutine_fn (*fn)(BlockDriverState *, const char *))
{
    SnapshotCo c = { bs, name, fn, -ENOTSUP };

    if (!fn) {
        return -ENOTSUP;
    }
    if (bdrv_is_read_only(bs)) {
        return -EACCES;
    }
    bdrv_run_co(snapshot_entry, &c);
    return c.ret;
}

int bdrv_snapshot_create(BlockDriverState *bs, const char *name)
{
    return snapshot_run(bs, name, bs->drv->co_snapshot_create);
}

int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name)
{
    return snapshot_run(bs, id_or_name, bs->drv->co_snapshot_goto);
}

int bdrv_snapshot_delete(BlockDriverState *bs, const char *name)
{
    return snapshot_run(bs, name, bs->drv->co_snapshot_delete);
}

typedef struct {
    BlockDriverState *bs;
    void *buf;
    int64_t pos, size;
    bool save;
    int ret;
} VmstateCo;

static void coroutine_fn vmstate_entry(void *opaque)
{
    VmstateCo *v = opaque;
    QIOVector qiov;

    qiov_init_buf(&qiov, v->buf, v->size);
    v->ret = v->save ? v->bs->drv->co_save_vmstate(v->bs, &qiov, v->pos)
                     : v->bs->drv->co_load_vmstate(v->bs, &qiov, v->pos);
    qiov_destroy(&qiov);
}

static int vmstate_run(BlockDriverState *bs, void *buf, int64_t pos, int64_t size, bool save)
{
    VmstateCo v = { bs, buf, pos, size, save, -ENOTSUP };

    if (!(save ? bs->drv->co_save_vmstate : bs->drv->co_load_vmstate)) {
        return -ENOTSUP;
    }
    if (pos < 0 || size < 0 || pos > INT64_MAX - size) {
        return -EINVAL;
    }
    if (save && bdrv_is_read_only(bs)) {
        return -EACCES;
    }
    bdrv_run_co(vmstate_entry, &v);
    return v.ret;
}

int bdrv_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos, int64_t size)
{
    return vmstate_run(bs, (void *)buf, pos, size, true);
}

int bdrv_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos, int64_t size)
{
    return vmstate_run(bs, buf, pos, size, false);
}

void bdrv_snapshot_list_free(BdrvSnapshotInfo *list, int n)
{
    for (int i = 0; i < n; i++) {
        g_free(list[i].id);
        g_free(list[i].name);
    }
    g_free(list);
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

typedef struct CheckReq {
    BlockDriverState *bs;
    BdrvCheckResult *res;
    BdrvCheckMode fix;
    int ret;
} CheckReq;

static void coroutine_fn check_entry(void *opaque)
{
    CheckReq *r = opaque;

    r->ret = r->bs->drv->co_check(r->bs, r->res, r->fix);
}

int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix)
{
    return bdrv_check_with_progress(bs, res, fix, NULL, NULL);
}

int bdrv_check_with_progress(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                             BdrvProgressFunc *progress, void *opaque)
{
    CheckReq r = { bs, res, fix, 0 };

    memset(res, 0, sizeof(*res));
    if (!bs->drv->co_check) {
        return -ENOTSUP;
    }
    bs->check_progress = progress;
    bs->check_progress_opaque = opaque;
    bdrv_run_co(check_entry, &r);
    bs->check_progress = NULL;
    return r.ret;
}

void bdrv_check_report_progress(BlockDriverState *bs, double percent)
{
    if (bs->check_progress) {
        bs->check_progress(bs->check_progress_opaque, percent);
    }
}
