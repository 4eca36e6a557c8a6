/* The "rbd" protocol driver: a Ceph RBD image through librbd, named as
 * QEMU names it. This file connects, opens, creates and resizes images;
 * the data path is in rbd-io.c.
 *
 * Filename: rbd:POOL/[NAMESPACE/]IMAGE[@SNAPSHOT][:KEY=VALUE]...
 *   where a backslash escapes the next character (a ':' or '@' in a name),
 *   KEY "conf" is the ceph.conf to read, "id" the client's user name, and
 *   any other KEY a Ceph option set on the client (rbd_cache=false).
 * Options: driver=rbd,pool=P,namespace=N,image=I,snapshot=S,conf=C,user=U
 *   and rados.KEY=VALUE for the Ceph options above.
 *
 * Without conf, librbd reads $CEPH_CONF or /etc/ceph/ceph.conf. So that
 * a cluster that is down fails in bounded time rather than librbd's five
 * minutes (or never, for an OSD that dies mid-request), the client's mount
 * timeout is lowered to 30 s and OSD/monitor operations time out after
 * 60/30 s unless ceph.conf or the filename sets them. Snapshots open
 * read-only. Blocking librbd calls (connect, open, create, resize, close)
 * run in the thread pool so the event loop keeps running. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/drivers/rbd.h"
#include "util/io-engine.h"

#define RBD_PREFIX "rbd:"

/* Defaults that bound the wait for a cluster that is down (seconds). */
#define RBD_MOUNT_TIMEOUT "30"
#define RBD_MON_OP_TIMEOUT "30"
#define RBD_OSD_OP_TIMEOUT "60"

/* Where an image is and how to reach its cluster. */
typedef struct RbdTarget {
    char *pool, *namespace, *image, *snapshot, *conf, *user;
    QblkOpts *rados;               /* Ceph options set on the client */
} RbdTarget;

static void rbd_target_clear(RbdTarget *t)
{
    g_free(t->pool);
    g_free(t->namespace);
    g_free(t->image);
    g_free(t->snapshot);
    g_free(t->conf);
    g_free(t->user);
    qblk_opts_free(t->rados);
    memset(t, 0, sizeof(*t));
}

/* The first unescaped c in s, or NULL. */
static const char *rbd_find_unescaped(const char *s, const char *end, char c)
{
    for (const char *p = s; p < end; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
        } else if (*p == c) {
            return p;
        }
    }
    return NULL;
}

/* [s, end) with its backslash escapes removed. */
static char *rbd_unescape(const char *s, const char *end)
{
    GString *out = g_string_sized_new(end - s);

    for (const char *p = s; p < end; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
        }
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

/* QEMU's rbd filename syntax, into options (see the top of the file). */
static bool rbd_parse_filename(const char *filename, QblkOpts *options, GError **errp)
{
    const char *p = filename + strlen(RBD_PREFIX);
    const char *end = p + strlen(p);
    const char *spec_end = rbd_find_unescaped(p, end, ':');
    const char *slash, *at;
    g_autofree char *pool = NULL, *image = NULL;

    if (!spec_end) {
        spec_end = end;
    }
    slash = rbd_find_unescaped(p, spec_end, '/');
    if (!slash) {
        qblk_error_set(errp, "Pool name is required");
        return false;
    }
    pool = rbd_unescape(p, slash);
    qblk_opts_set(options, "pool", pool);
    p = slash + 1;
    slash = rbd_find_unescaped(p, spec_end, '/');
    if (slash) {
        g_autofree char *ns = rbd_unescape(p, slash);

        qblk_opts_set(options, "namespace", ns);
        p = slash + 1;
    }
    at = rbd_find_unescaped(p, spec_end, '@');
    image = rbd_unescape(p, at ? at : spec_end);
    qblk_opts_set(options, "image", image);
    if (at) {
        g_autofree char *snap = rbd_unescape(at + 1, spec_end);

        qblk_opts_set(options, "snapshot", snap);
    }

    for (p = spec_end; p < end; ) {
        const char *opt = p + 1;
        const char *opt_end = rbd_find_unescaped(opt, end, ':');
        const char *eq;
        g_autofree char *key = NULL, *value = NULL;

        if (!opt_end) {
            opt_end = end;
        }
        eq = rbd_find_unescaped(opt, opt_end, '=');
        key = rbd_unescape(opt, eq ? eq : opt_end);
        if (!eq) {
            qblk_error_set(errp, "conf option %s has no value", key);
            return false;
        }
        value = rbd_unescape(eq + 1, opt_end);
        if (strcmp(key, "conf") == 0) {
            qblk_opts_set(options, "conf", value);
        } else if (strcmp(key, "id") == 0) {
            qblk_opts_set(options, "user", value);
        } else {
            g_autofree char *rados_key = g_strdup_printf("rados.%s", key);

            qblk_opts_set(options, rados_key, value);
        }
        p = opt_end;
    }
    return true;
}

/* Appends s to out with QEMU's escapes for the filename syntax. */
static void rbd_append_escaped(GString *out, const char *s)
{
    for (; *s; s++) {
        if (strchr(":/@\\=", *s)) {
            g_string_append_c(out, '\\');
        }
        g_string_append_c(out, *s);
    }
}

/* The filename naming t (what the node reports and a backing link stores). */
static char *rbd_target_filename(const RbdTarget *t)
{
    GString *out = g_string_new(RBD_PREFIX);

    rbd_append_escaped(out, t->pool);
    g_string_append_c(out, '/');
    if (t->namespace && *t->namespace) {
        rbd_append_escaped(out, t->namespace);
        g_string_append_c(out, '/');
    }
    rbd_append_escaped(out, t->image);
    if (t->snapshot) {
        g_string_append_c(out, '@');
        rbd_append_escaped(out, t->snapshot);
    }
    if (t->conf) {
        g_string_append(out, ":conf=");
        rbd_append_escaped(out, t->conf);
    }
    if (t->user) {
        g_string_append(out, ":id=");
        rbd_append_escaped(out, t->user);
    }
    return g_string_free(out, FALSE);
}

/* Takes the target's options (after rbd_parse_filename, or as given). */
static bool rbd_take_target(QblkOpts *options, RbdTarget *t, GError **errp)
{
    g_autofree char *filename = qblk_opts_take(options, "filename");

    /* The core leaves the bare prefix once it parsed the filename. */
    if (filename && g_str_has_prefix(filename, RBD_PREFIX) &&
        strcmp(filename, RBD_PREFIX) != 0 && !rbd_parse_filename(filename, options, errp)) {
        return false;
    }
    t->pool = qblk_opts_take(options, "pool");
    t->namespace = qblk_opts_take(options, "namespace");
    t->image = qblk_opts_take(options, "image");
    t->snapshot = qblk_opts_take(options, "snapshot");
    t->conf = qblk_opts_take(options, "conf");
    t->user = qblk_opts_take(options, "user");
    t->rados = qblk_opts_take_prefix(options, "rados.");
    if (!t->pool) {
        qblk_error_set(errp, "Parameter 'pool' is required");
        return false;
    }
    if (!t->image) {
        qblk_error_set(errp, "Parameter 'image' is required");
        return false;
    }
    return true;
}

/* One connection being made in a worker thread: the result, and on
 * failure an errno and a message (QEMU's texts). */
typedef struct RbdConnectJob {
    const RbdTarget *t;
    bool open_image, read_only;
    rados_t cluster;
    rados_ioctx_t ioctx;
    rbd_image_t image;
    int err;
    char *msg;
} RbdConnectJob;

static int rbd_job_fail(RbdConnectJob *job, int ret, char *msg)
{
    job->err = -ret;
    job->msg = msg;
    return ret;
}

/* Lowers a timeout left at a value that would wait too long (0: never). */
static void rbd_bound_timeout(rados_t cluster, const char *key, const char *bound)
{
    char buf[64];

    if (rados_conf_get(cluster, key, buf, sizeof(buf)) == 0) {
        double now = g_ascii_strtod(buf, NULL);

        if (now <= 0 || now > g_ascii_strtod(bound, NULL)) {
            rados_conf_set(cluster, key, bound);
        }
    }
}

static int rbd_connect_in_thread(void *opaque)
{
    RbdConnectJob *job = opaque;
    const RbdTarget *t = job->t;
    guint n;
    g_autofree const char **keys = NULL;
    int ret;

    ret = rados_create(&job->cluster, t->user);
    if (ret < 0) {
        return rbd_job_fail(job, ret, g_strdup("error initializing"));
    }
    ret = rados_conf_read_file(job->cluster, t->conf);
    if (ret < 0 && t->conf) {
        return rbd_job_fail(job, ret, g_strdup_printf("error reading conf file %s", t->conf));
    }
    rados_conf_parse_env(job->cluster, NULL);
    rbd_bound_timeout(job->cluster, "client_mount_timeout", RBD_MOUNT_TIMEOUT);
    rbd_bound_timeout(job->cluster, "rados_mon_op_timeout", RBD_MON_OP_TIMEOUT);
    rbd_bound_timeout(job->cluster, "rados_osd_op_timeout", RBD_OSD_OP_TIMEOUT);
    keys = qblk_opts_keys(t->rados, &n);
    for (guint i = 0; i < n; i++) {
        ret = rados_conf_set(job->cluster, keys[i], qblk_opts_get(t->rados, keys[i]));
        if (ret < 0) {
            return rbd_job_fail(job, ret, g_strdup_printf("invalid conf option %s", keys[i]));
        }
    }
    ret = rados_connect(job->cluster);
    if (ret < 0) {
        return rbd_job_fail(job, ret, g_strdup("error connecting"));
    }
    ret = rados_ioctx_create(job->cluster, t->pool, &job->ioctx);
    if (ret < 0) {
        return rbd_job_fail(job, ret, g_strdup_printf("error opening pool %s", t->pool));
    }
    if (t->namespace && *t->namespace) {
        bool exists = false;

        ret = rbd_namespace_exists(job->ioctx, t->namespace, &exists);
        if (ret < 0) {
            return rbd_job_fail(job, ret, g_strdup_printf("error checking namespace %s",
                                                          t->namespace));
        }
        if (!exists) {
            /* QEMU's text carries no errno here. */
            rbd_job_fail(job, 0, g_strdup_printf("namespace '%s' does not exist",
                                                 t->namespace));
            return -ENOENT;
        }
        rados_ioctx_set_namespace(job->ioctx, t->namespace);
    }
    if (!job->open_image) {
        return 0;
    }
    ret = job->read_only
        ? rbd_open_read_only(job->ioctx, t->image, &job->image, t->snapshot)
        : rbd_open(job->ioctx, t->image, &job->image, NULL);
    if (ret < 0) {
        return rbd_job_fail(job, ret, g_strdup_printf("error reading header from %s",
                                                      t->image));
    }
    return 0;
}

typedef struct RbdDisconnect {
    rados_t cluster;
    rados_ioctx_t ioctx;
    rbd_image_t image;
} RbdDisconnect;

static int rbd_disconnect_in_thread(void *opaque)
{
    RbdDisconnect *d = opaque;

    if (d->image) {
        rbd_close(d->image);
    }
    if (d->ioctx) {
        rados_ioctx_destroy(d->ioctx);
    }
    if (d->cluster) {
        rados_shutdown(d->cluster);
    }
    return 0;
}

static void coroutine_fn rbd_co_disconnect(rados_t cluster, rados_ioctx_t ioctx,
                                           rbd_image_t image)
{
    RbdDisconnect d = { cluster, ioctx, image };

    qblk_co_run_in_thread(rbd_disconnect_in_thread, &d);
}

/* Connects to t's cluster and pool (and opens its image if open_image);
 * on failure nothing stays open and *errp says what failed. */
static int coroutine_fn rbd_co_connect(RbdConnectJob *job, GError **errp)
{
    int ret = qblk_co_run_in_thread(rbd_connect_in_thread, job);

    if (ret < 0) {
        rbd_co_disconnect(job->cluster, job->ioctx, NULL);
        job->cluster = NULL;
        job->ioctx = NULL;
        if (job->err) {
            qblk_error_set_errno(errp, job->err, "%s", job->msg);
        } else {
            qblk_error_set(errp, "%s", job->msg);
        }
    }
    g_free(job->msg);
    job->msg = NULL;
    return ret;
}

static int coroutine_fn rbd_co_open(BlockDriverState *bs, QblkOpts *options, int flags,
                                    GError **errp)
{
    RbdState *s = bs->opaque;
    RbdTarget t = { 0 };
    RbdConnectJob job = { .t = &t, .open_image = true };
    rbd_image_info_t info;
    int ret = -EINVAL;

    if (!rbd_take_target(options, &t, errp)) {
        goto out;
    }
    if (t.snapshot && (flags & BDRV_O_RDWR)) {
        if (!(flags & BDRV_O_AUTO_RDONLY)) {
            qblk_error_set(errp, "rbd snapshots are read-only");
            goto out;
        }
        bs->read_only = true;
    }
    job.read_only = bs->read_only || t.snapshot;
    ret = rbd_co_connect(&job, errp);
    if (ret < 0) {
        goto out;
    }
    s->cluster = job.cluster;
    s->ioctx = job.ioctx;
    s->image = job.image;
    ret = rbd_stat(s->image, &info, sizeof(info));
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "error getting image info from %s", t.image);
        rbd_co_disconnect(s->cluster, s->ioctx, s->image);
        memset(s, 0, sizeof(*s));
        goto out;
    }
    if (!bs->filename || strcmp(bs->filename, RBD_PREFIX) == 0) {
        g_free(bs->filename);
        bs->filename = rbd_target_filename(&t);
    }
    if (!bs->exact_filename || strcmp(bs->exact_filename, RBD_PREFIX) == 0) {
        g_free(bs->exact_filename);
        bs->exact_filename = g_strdup(bs->filename);
    }
    s->object_size = info.obj_size;
    s->image_size = info.size;
    s->pool = g_steal_pointer(&t.pool);
    s->namespace = g_steal_pointer(&t.namespace);
    s->image_name = g_steal_pointer(&t.image);
    s->snapshot = g_steal_pointer(&t.snapshot);
    qco_mutex_init(&s->resize_lock);

    bs->bl.request_alignment = 1;
    /* librbd splits by object itself; these only bound one call. */
    bs->bl.max_transfer = 32 * 1024 * 1024;
    bs->bl.max_pwrite_zeroes = 1024 * 1024 * 1024;
    bs->bl.max_pdiscard = 1024 * 1024 * 1024;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    ret = 0;
out:
    rbd_target_clear(&t);
    return ret;
}

static int coroutine_fn rbd_co_close(BlockDriverState *bs)
{
    RbdState *s = bs->opaque;

    rbd_co_disconnect(s->cluster, s->ioctx, s->image);
    rbd_extent_cache_free(s);
    g_free(s->pool);
    g_free(s->namespace);
    g_free(s->image_name);
    g_free(s->snapshot);
    return 0;
}

typedef struct RbdCreateJob {
    rados_ioctx_t ioctx;
    const char *name;
    uint64_t size, object_size;
} RbdCreateJob;

static int rbd_create_in_thread(void *opaque)
{
    RbdCreateJob *job = opaque;
    rbd_image_options_t opts;
    int ret;

    rbd_image_options_create(&opts);
    if (job->object_size) {
        ret = rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_ORDER,
                                           (uint64_t)g_bit_nth_msf(job->object_size, -1));
        if (ret < 0) {
            rbd_image_options_destroy(opts);
            return ret;
        }
    }
    ret = rbd_create4(job->ioctx, job->name, job->size, opts);
    rbd_image_options_destroy(opts);
    return ret;
}

static int coroutine_fn rbd_co_create(const char *filename, QblkOpts *options, GError **errp)
{
    RbdTarget t = { 0 };
    RbdConnectJob conn = { .t = &t };
    RbdCreateJob job = { 0 };
    int64_t size, object_size;
    int ret = -EINVAL;

    if (!qblk_opts_take_size(options, "size", 0, &size, errp) ||
        !qblk_opts_take_size(options, "cluster_size", 0, &object_size, errp)) {
        goto out;
    }
    if (object_size && (object_size < 4096 || object_size > (32 << 20) ||
                        (object_size & (object_size - 1)))) {
        qblk_error_set(errp, "obj size needs to be power of 2 between 4K and 32M");
        goto out;
    }
    if (filename && !qblk_opts_has(options, "filename")) {
        qblk_opts_set(options, "filename", filename);
    }
    if (!rbd_take_target(options, &t, errp)) {
        goto out;
    }
    if (t.snapshot) {
        qblk_error_set(errp, "Can't use snapshot name for image creation");
        goto out;
    }
    ret = rbd_co_connect(&conn, errp);
    if (ret < 0) {
        goto out;
    }
    job.ioctx = conn.ioctx;
    job.name = t.image;
    job.size = size;
    job.object_size = object_size;
    ret = qblk_co_run_in_thread(rbd_create_in_thread, &job);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "error rbd create");
    }
    rbd_co_disconnect(conn.cluster, conn.ioctx, NULL);
out:
    rbd_target_clear(&t);
    return ret;
}

static int coroutine_fn rbd_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                        PreallocMode prealloc, GError **errp)
{
    RbdState *s = bs->opaque;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        qblk_error_set(errp, "Unsupported preallocation mode '%s'",
                       prealloc == PREALLOC_MODE_METADATA ? "metadata"
                       : prealloc == PREALLOC_MODE_FALLOC ? "falloc" : "full");
        return -ENOTSUP;
    }
    qco_mutex_lock(&s->resize_lock);
    ret = rbd_co_resize(bs, offset);
    qco_mutex_unlock(&s->resize_lock);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to resize file");
    }
    return ret;
}

static int64_t rbd_getlength(BlockDriverState *bs)
{
    RbdState *s = bs->opaque;

    return (int64_t)s->image_size;
}

/* As QEMU: the object size is the image's cluster size. */
static int rbd_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    RbdState *s = bs->opaque;

    bdi->cluster_size = (int64_t)s->object_size;
    return 0;
}

/* QEMU's table; -o help sorts by name. */
static const QblkOptDesc rbd_create_opts[] = {
    { "size", QBLK_OPT_SIZE, "Virtual disk size", NULL },
    { "cluster_size", QBLK_OPT_SIZE, "RBD object size", NULL },
    { NULL }
};

const BlockDriver bdrv_rbd = {
    .format_name = "rbd",
    .instance_size = sizeof(RbdState),
    .is_protocol = true,
    .protocol_prefix = RBD_PREFIX,
    .parse_filename = rbd_parse_filename,

    .co_open = rbd_co_open,
    .co_close = rbd_co_close,
    .co_create = rbd_co_create,
    .create_opts = rbd_create_opts,
    .co_preadv = rbd_co_preadv,
    .co_pwritev = rbd_co_pwritev,
    .co_pwrite_zeroes = rbd_co_pwrite_zeroes,
    .co_pdiscard = rbd_co_pdiscard,
    .co_flush = rbd_co_flush,
    .co_block_status = rbd_co_block_status,
    .co_truncate = rbd_co_truncate,
    .getlength = rbd_getlength,
    .get_info = rbd_get_info,
};
