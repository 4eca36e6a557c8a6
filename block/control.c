/* The block core's control operations in coroutine form: creating images
 * and host files, measuring, emptying, changing the backing link,
 * amending, internal snapshots, VM state and checks. Each returns -errno
 * and a GError in the words a person acts on; the synchronous wrappers
 * are in block/sync.c. */
#include <errno.h>
#include <string.h>
#include "block/internal.h"

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

int coroutine_fn bdrv_co_create(const char *fmt, const char *filename, QblkOpts *options,
                                GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(fmt);
    g_autoptr(QblkOpts) opts = options ? qblk_opts_copy(options) : qblk_opts_new();

    if (!drv) {
        qblk_error_set(errp, "Unknown file format '%s'", fmt);
        return -EINVAL;
    }
    if (!drv->co_create) {
        qblk_error_set(errp, "Driver '%s' does not support image creation", fmt);
        return -ENOTSUP;
    }
    if (!create_opts_known(drv, drv->is_protocol ? NULL : bdrv_find_protocol(filename), opts,
                           errp)) {
        return -EINVAL;
    }
    return drv->co_create(filename, opts, errp);
}

int coroutine_fn bdrv_co_create_file(const char *filename, QblkOpts *options, GError **errp)
{
    const BlockDriver *proto = bdrv_find_protocol(filename);
    g_autoptr(QblkOpts) opts = options ? qblk_opts_copy(options) : qblk_opts_new();

    if (!proto->co_create) {
        qblk_error_set(errp, "Driver '%s' does not support image creation",
                       proto->format_name);
        return -ENOTSUP;
    }
    return proto->co_create(filename, opts, errp);
}

int coroutine_fn bdrv_co_create_open_file(const char *filename, BlockDriverState **file,
                                          GError **errp)
{
    g_autoptr(QblkOpts) create = qblk_opts_new();
    QblkOpts *open = qblk_opts_new();
    int ret;

    *file = NULL;
    qblk_opts_set(create, "size", "0");
    ret = bdrv_co_create_file(filename, create, errp);
    if (ret < 0) {
        qblk_opts_free(open);
        return ret;
    }
    qblk_opts_set(open, "driver", bdrv_find_protocol(filename)->format_name);
    *file = bdrv_co_open(filename, open, BDRV_O_RDWR, NULL, errp);
    return *file ? 0 : -EIO;
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

int coroutine_fn bdrv_co_make_empty(BlockDriverState *bs, GError **errp)
{
    int ret;

    if (!bs->drv->co_make_empty) {
        qblk_error_set_code(errp, QBLK_ERROR_NOT_SUPPORTED,
                            "Image format '%s' cannot be emptied", bs->drv->format_name);
        return -ENOTSUP;
    }
    ret = bs->drv->co_make_empty(bs);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not empty %s", bs->filename);
    }
    return ret;
}

bool bdrv_supports_backing(BlockDriverState *bs)
{
    return bs->drv->co_change_backing_file != NULL;
}

int coroutine_fn bdrv_co_change_backing_file(BlockDriverState *bs, const char *file,
                                             const char *fmt, GError **errp)
{
    const char *name = file ? file : "";
    int ret;

    file = file && *file ? file : NULL;
    fmt = file && fmt && *fmt ? fmt : NULL;
    ret = bdrv_is_read_only(bs) ? -EACCES
          : !bs->drv->co_change_backing_file ? -ENOTSUP
          : bs->drv->co_change_backing_file(bs, file, fmt);
    if (ret == 0) {
        g_free(bs->backing_file);
        g_free(bs->backing_format);
        g_free(bs->full_backing_filename);
        bs->backing_file = g_strdup(file);
        bs->backing_format = g_strdup(fmt);
        bs->full_backing_filename = file ? bdrv_resolve_backing_name(bs->filename, file) : NULL;
        g_free(bs->auto_backing_file);
        bs->auto_backing_file = g_strdup(file);
        ret = bdrv_co_flush(bs);
    }
    if (ret < 0) {
        qblk_error_set(errp, "Could not change the backing file to '%s': %s", name,
                       ret == -ENOSPC ? "No space left in the image header for the name"
                                      : g_strerror(-ret));
    }
    return ret;
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

int coroutine_fn bdrv_co_amend(BlockDriverState *bs, QblkOpts *opts,
                               BdrvProgressFunc *progress, void *opaque, GError **errp)
{
    int ret;

    if (!bs->drv->co_amend) {
        qblk_error_set(errp, "Format driver '%s' does not support option amendment",
                       bs->drv->format_name);
        return -ENOTSUP;
    }
    if (bdrv_is_read_only(bs)) {
        qblk_error_set(errp, "Image is read-only");
        return -EACCES;
    }
    ret = bs->drv->co_amend(bs, opts, progress, opaque, errp);
    if (ret == 0) {
        ret = bdrv_co_flush(bs);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not flush the amended image");
        }
    }
    return ret;
}

int bdrv_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list)
{
    *list = NULL;
    return bs->drv->snapshot_list ? bs->drv->snapshot_list(bs, list) : 0;
}

void bdrv_snapshot_list_free(BdrvSnapshotInfo *list, int n)
{
    for (int i = 0; i < n; i++) {
        g_free(list[i].id);
        g_free(list[i].name);
    }
    g_free(list);
}

/* One snapshot operation, flushed after; fn may be NULL (missing). */
static int coroutine_fn snapshot_run(BlockDriverState *bs, const char *name,
                                     int coroutine_fn (*fn)(BlockDriverState *, const char *))
{
    int ret;

    if (!fn) {
        return -ENOTSUP;
    }
    if (bdrv_is_read_only(bs)) {
        return -EACCES;
    }
    ret = fn(bs, name);
    return ret == 0 ? bdrv_co_flush(bs) : ret;
}

int coroutine_fn bdrv_co_snapshot_create(BlockDriverState *bs, const char *name,
                                         GError **errp)
{
    int ret = snapshot_run(bs, name, bs->drv->co_snapshot_create);

    if (ret < 0) {
        qblk_error_set(errp, "Could not create snapshot '%s': %d (%s)", name, ret,
                       g_strerror(-ret));
    }
    return ret;
}

int coroutine_fn bdrv_co_snapshot_goto(BlockDriverState *bs, const char *id_or_name,
                                       GError **errp)
{
    int ret = snapshot_run(bs, id_or_name, bs->drv->co_snapshot_goto);

    if (ret < 0) {
        qblk_error_set(errp, "Could not apply snapshot '%s': Failed to load snapshot: %s",
                       id_or_name, g_strerror(-ret));
    }
    return ret;
}

int coroutine_fn bdrv_co_snapshot_delete(BlockDriverState *bs, const char *name,
                                         GError **errp)
{
    int ret = snapshot_run(bs, name, bs->drv->co_snapshot_delete);

    if (ret < 0) {
        qblk_error_set(errp, "Could not delete snapshot '%s': %s", name,
                       ret == -ENOENT ? "snapshot not found" : g_strerror(-ret));
    }
    return ret;
}

static int coroutine_fn vmstate_co(BlockDriverState *bs, void *buf, int64_t pos, int64_t size,
                                   bool save, GError **errp)
{
    const char *what = save ? "save" : "load";
    QIOVector qiov;
    int ret;

    if (!(save ? bs->drv->co_save_vmstate : bs->drv->co_load_vmstate)) {
        qblk_error_set_code(errp, QBLK_ERROR_NOT_SUPPORTED,
                            "Image format '%s' has no VM state area", bs->drv->format_name);
        return -ENOTSUP;
    }
    if (pos < 0 || size < 0 || pos > INT64_MAX - size) {
        qblk_error_set_code(errp, QBLK_ERROR_INVALID, "Invalid VM state range");
        return -EINVAL;
    }
    if (save && bdrv_is_read_only(bs)) {
        qblk_error_set(errp, "Could not save VM state: the image is read-only");
        return -EACCES;
    }
    qiov_init_buf(&qiov, buf, size);
    ret = save ? bs->drv->co_save_vmstate(bs, &qiov, pos)
               : bs->drv->co_load_vmstate(bs, &qiov, pos);
    qiov_destroy(&qiov);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not %s VM state", what);
    }
    return ret;
}

int coroutine_fn bdrv_co_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos,
                                      int64_t size, GError **errp)
{
    return vmstate_co(bs, (void *)buf, pos, size, true, errp);
}

int coroutine_fn bdrv_co_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos,
                                      int64_t size, GError **errp)
{
    return vmstate_co(bs, buf, pos, size, false, errp);
}

int coroutine_fn bdrv_co_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                               BdrvProgressFunc *progress, void *opaque, GError **errp)
{
    int ret;

    memset(res, 0, sizeof(*res));
    if (!bs->drv->co_check) {
        qblk_error_set_code(errp, QBLK_ERROR_NOT_SUPPORTED,
                            "This image format does not support checks");
        return -ENOTSUP;
    }
    bs->check_progress = progress;
    bs->check_progress_opaque = opaque;
    ret = bs->drv->co_check(bs, res, fix);
    bs->check_progress = NULL;
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Check failed");
    }
    return ret;
}

void bdrv_check_report_progress(BlockDriverState *bs, double percent)
{
    if (bs->check_progress) {
        bs->check_progress(bs->check_progress_opaque, percent);
    }
}
