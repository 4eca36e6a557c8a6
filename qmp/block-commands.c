/* QMP commands on block nodes: blockdev-add/-del, query-named-block-nodes,
 * block_resize, blockdev-snapshot, change-backing-file. blockdev-add turns
 * its checked JSON into the dotted option set bdrv_co_open takes; nodes it
 * opens are owned by the monitor until blockdev-del or shutdown. The
 * schema (block-schema.c) holds QEMU 7.2's definitions for these. */
#include <string.h>
#include <inttypes.h>

#include "qmp/qmp.h"
#include "qmp/block-schema.h"
#include "qblk/block.h"
#include "qblk/info-json.h"
#include "qblk/job.h"

/* The nodes blockdev-add and --blockdev opened, each holding the open's
 * reference, oldest first. */
static GPtrArray *monitor_nodes;

static bool monitor_owns(BlockDriverState *bs)
{
    return monitor_nodes && g_ptr_array_find(monitor_nodes, bs, NULL);
}

/* ----- blockdev-add: JSON to dotted options ----- */

static bool flatten_json(const QblkJson *obj, const char *prefix, QblkOpts *opts,
                         GError **errp);

/* blkdebug's inject-error list as the driver's rules
 * "EVENT:NTH:ERRNO[:once][:@OFFSET]": the I/O type names the event (else
 * the QEMU event it is closest to), errno defaults to EIO as in QEMU, a
 * sector becomes the byte the request must cover. */
static bool flatten_blkdebug_rules(const QblkJson *list, const char *prefix,
                                   QblkOpts *opts, GError **errp)
{
    static const struct { const char *qemu, *rule; } events[] = {
        { "read", "read" }, { "write", "write" }, { "write-zeroes", "zero" },
        { "discard", "discard" }, { "flush", "flush" },
        { "read_aio", "read" }, { "preadv", "read" }, { "write_aio", "write" },
        { "pwritev", "write" }, { "pwritev_zero", "zero" }, { "flush_to_disk", "flush" },
        { "flush_to_os", "flush" },
    };
    g_autoptr(GString) rules = g_string_new(NULL);
    g_autofree char *key = g_strdup_printf("%sinject", prefix);

    for (guint i = 0; i < qblk_json_size(list); i++) {
        const QblkJson *r = qblk_json_nth(list, i, NULL);
        const QblkJson *iotype = qblk_json_get(r, "iotype");
        const QblkJson *event = qblk_json_get(r, "event");
        const QblkJson *err = qblk_json_get(r, "errno");
        const QblkJson *once = qblk_json_get(r, "once");
        const QblkJson *sector = qblk_json_get(r, "sector");
        g_autofree char *at = sector ? g_strdup_printf(":@%" PRId64,
                                                       qblk_json_get_int(sector) * 512)
                                     : g_strdup("");
        const char *name = qblk_json_get_string(iotype ? iotype : event);
        const char *rule = NULL;

        for (size_t k = 0; k < G_N_ELEMENTS(events); k++) {
            if (!strcmp(events[k].qemu, name)) {
                rule = events[k].rule;
            }
        }
        if (!rule) {
            qblk_error_set(errp, "blkdebug event '%s' is not supported", name);
            return false;
        }
        g_string_append_printf(rules, "%s%s:*:%" PRId64 "%s%s", rules->len ? ";" : "", rule,
                               err ? qblk_json_get_int(err) : 5,
                               once && qblk_json_get_bool(once) ? ":once" : "", at);
    }
    qblk_opts_set(opts, key, rules->str);
    return true;
}

/* One member: objects become "prefix.key." keys, a string reference the
 * plain key, null "" (no backing), booleans on/off, numbers decimal. */
static bool flatten_member(const char *key, const QblkJson *val, const char *prefix,
                           QblkOpts *opts, GError **errp)
{
    g_autofree char *full = g_strdup_printf("%s%s", prefix, key);
    g_autofree char *str = NULL;

    switch (qblk_json_type(val)) {
    case QBLK_JSON_OBJECT: {
        g_autofree char *sub = g_strdup_printf("%s.", full);

        return flatten_json(val, sub, opts, errp);
    }
    case QBLK_JSON_ARRAY:
        if (!strcmp(key, "inject-error")) {
            return flatten_blkdebug_rules(val, prefix, opts, errp);
        }
        qblk_error_set(errp, "Parameter '%s' is not supported", full);
        return false;
    case QBLK_JSON_NULL:
        str = g_strdup("");
        break;
    case QBLK_JSON_BOOL:
        str = g_strdup(qblk_json_get_bool(val) ? "on" : "off");
        break;
    case QBLK_JSON_INT:
    case QBLK_JSON_UINT:
        str = g_strdup_printf("%" PRId64, qblk_json_get_int(val));
        break;
    case QBLK_JSON_DOUBLE:
        str = g_strdup_printf("%.17g", qblk_json_get_double(val));
        break;
    case QBLK_JSON_STRING:
        str = g_strdup(qblk_json_get_string(val));
        break;
    }
    qblk_opts_set(opts, full, str);
    return true;
}

static bool flatten_json(const QblkJson *obj, const char *prefix, QblkOpts *opts,
                         GError **errp)
{
    for (guint i = 0; i < qblk_json_size(obj); i++) {
        const char *key;
        const QblkJson *val = qblk_json_nth(obj, i, &key);

        if (!flatten_member(key, val, prefix, opts, errp)) {
            return false;
        }
    }
    return true;
}

/* Options of the file driver that change nothing here (cache hints, a
 * batch size) are dropped rather than refused, as the schema has them. */
static void drop_hint_options(QblkOpts *opts, const char *prefix)
{
    static const char *const hints[] = { "aio-max-batch", "drop-cache",
                                         "x-check-cache-dropped" };
    g_autofree const char **keys = NULL;
    guint n;

    keys = qblk_opts_keys(opts, &n);
    for (guint i = 0; i < n; i++) {
        const char *last = strrchr(keys[i], '.');

        last = last ? last + 1 : keys[i];
        for (size_t k = 0; k < G_N_ELEMENTS(hints); k++) {
            if (!strcmp(last, hints[k]) && g_str_has_prefix(keys[i], prefix)) {
                g_free(qblk_opts_take(opts, keys[i]));
                break;
            }
        }
    }
}

/* Opens a monitor-owned node from opts (consumed). */
static bool coroutine_fn blockdev_open(QblkOpts *opts, GError **errp)
{
    BlockDriverState *bs;

    if (!qblk_opts_has(opts, "driver")) {
        qblk_opts_free(opts);
        qblk_error_set(errp, "Parameter 'driver' is missing");
        return false;
    }
    if (!qblk_opts_has(opts, "node-name")) {
        qblk_opts_free(opts);
        qblk_error_set(errp, "'node-name' must be specified for the root node");
        return false;
    }
    drop_hint_options(opts, "");
    /* blockdev-add's defaults: writable unless read-only, discards ignored,
     * never probed (the driver is given). */
    bs = bdrv_co_open(NULL, opts, BDRV_O_RDWR, NULL, errp);
    if (!bs) {
        return false;
    }
    if (!monitor_nodes) {
        monitor_nodes = g_ptr_array_new();
    }
    g_ptr_array_add(monitor_nodes, bs);
    return true;
}

bool coroutine_fn qmp_co_blockdev_add_opts(QblkOpts *opts, GError **errp)
{
    return blockdev_open(opts, errp);
}

static QblkJson *coroutine_fn qmp_blockdev_add(const QblkJson *args, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();

    if (!flatten_json(args, "", opts, errp)) {
        qblk_opts_free(opts);
        return NULL;
    }
    return blockdev_open(opts, errp) ? qblk_json_object() : NULL;
}

/* ----- blockdev-del ----- */

/* QEMU's refusals, in its order: a job, a user (an export), a parent that
 * uses it as backing, not the monitor's, any other holder (a parent node,
 * a filter's bottom). */
static bool check_deletable(BlockDriverState *bs, GError **errp)
{
    const char *name = bdrv_get_node_name(bs);
    BdrvChild *c;

    if (!bdrv_check_not_in_use_by_job(bs, errp)) {
        return false;
    }
    if (qmp_node_is_exported(bs)) {
        qblk_error_set(errp, "Node %s is in use", name);
        return false;
    }
    for (c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        if (!bdrv_child_parent(c)) {
            qblk_error_set(errp, "Node %s is in use", name);
            return false;
        }
    }
    for (c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        if (!strcmp(bdrv_child_name(c), "backing")) {
            qblk_error_set(errp, "Node '%s' is busy: node is used as backing hd of '%s'",
                           name, bdrv_get_node_name(bdrv_child_parent(c)));
            return false;
        }
    }
    if (!monitor_owns(bs)) {
        qblk_error_set(errp, "Node %s is not owned by the monitor", name);
        return false;
    }
    if (bdrv_get_refcnt(bs) > 1) {
        qblk_error_set(errp, "Block device %s is in use", name);
        return false;
    }
    return true;
}

static QblkJson *coroutine_fn qmp_blockdev_del(const QblkJson *args, GError **errp)
{
    BlockDriverState *bs = bdrv_lookup_node(qmp_arg_str(args, "node-name"), errp);

    if (!bs || !check_deletable(bs, errp)) {
        return NULL;
    }
    g_ptr_array_remove(monitor_nodes, bs);
    bdrv_co_unref(bs);
    return qblk_json_object();
}

void coroutine_fn qmp_co_blockdev_close_all(void)
{
    /* Newest first: a node added later may use an older one. */
    while (monitor_nodes && monitor_nodes->len) {
        BlockDriverState *bs = g_ptr_array_steal_index(monitor_nodes,
                                                       monitor_nodes->len - 1);

        bdrv_co_unref(bs);
    }
    g_clear_pointer(&monitor_nodes, g_ptr_array_unref);
}

/* ----- query-named-block-nodes ----- */

/* Whether bs is a filter (its data is its file child's). */
static bool is_filter_node(BlockDriverState *bs)
{
    const char *drv = bdrv_format_name(bs);

    return !strcmp(drv, "copy-on-read") || !strcmp(drv, "blkdebug") ||
           !strcmp(drv, "log-writes");
}

/* QEMU's full_open_options of bs: the options that open the same tree
 * again ({driver, file: {...}, backing: ... when overridden}); *plain
 * says whether bs's own filename does as much, so QMP shows it rather
 * than "json:" and these options (QEMU's bdrv_refresh_filename). */
static QblkJson *node_open_options(BlockDriverState *bs, bool *plain)
{
    QblkJson *o;
    const char *drv = bdrv_format_name(bs);
    BlockDriverState *file = bdrv_file_child(bs);
    BlockDriverState *backing = bdrv_backing(bs);
    bool file_plain = true, backing_plain, overridden = bdrv_backing_overridden(bs);

    /* A filter a job inserted without a name is implicit: it shows as
     * its child, as QEMU shows it. */
    if (file && !strcmp(drv, "copy-on-read") && bdrv_get_node_name(bs)[0] == '#') {
        return node_open_options(file, plain);
    }
    o = qblk_json_object();
    qblk_json_set_str(o, "driver", drv);
    if (!file) {
        /* A protocol. null-co's filename cannot carry its size. */
        if (!strcmp(drv, "null-co")) {
            int64_t len = bdrv_getlength(bs);

            *plain = len == (1LL << 30);
            if (!*plain) {
                qblk_json_set_int(o, "size", len);
            }
        } else {
            qblk_json_set_str(o, "filename", bdrv_filename(bs));
            *plain = true;
        }
        return o;
    }
    qblk_json_set(o, bdrv_child_name(bdrv_next_child(bs, NULL)),
                  node_open_options(file, &file_plain));
    if (overridden) {
        qblk_json_set(o, "backing", backing ? node_open_options(backing, &backing_plain)
                                            : qblk_json_null());
    }
    /* A filter never takes its child's name; a format does when that is a
     * protocol's own name and nothing was overridden. */
    *plain = file_plain && !overridden && !bdrv_file_child(file) && !is_filter_node(bs);
    return o;
}

/* The filename QMP shows for bs (caller frees). */
static char *node_display_filename(BlockDriverState *bs)
{
    bool plain;
    g_autoptr(QblkJson) opts = node_open_options(bs, &plain);
    g_autofree char *json = NULL;

    if (plain) {
        return g_strdup(bdrv_filename(bs));
    }
    json = qblk_json_to_string(opts, false);
    return g_strdup_printf("json:%s", json);
}

/* ImageInfo (with backing-image when chain is set: the backing node, or a
 * filter's child, as QEMU walks the chain), members in the schema's
 * order. */
static QblkJson *image_info_json(BlockDriverState *bs, bool chain, int *depth)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(BdrvImageInfo) info = bdrv_query_image_info(bs, &err);
    BlockDriverState *backing = is_filter_node(bs) ? bdrv_file_child(bs) : bdrv_backing(bs);
    g_autofree char *filename = node_display_filename(bs);
    QblkJson *obj;

    if (!info) {
        return qblk_json_object();
    }
    obj = bdrv_image_info_to_json(info);
    qblk_json_set_str(obj, "filename", filename);
    /* QEMU counts lengths in 512-byte sectors, rounding a file's size up. */
    qblk_json_set_int(obj, "virtual-size", (info->virtual_size + 511) & ~(int64_t)511);
    if (chain && backing) {
        (*depth)++;
        qblk_json_set(obj, "backing-image", image_info_json(backing, true, depth));
    }
    return obj;
}

/* BlockDeviceInfo, members in the schema's order (printed in QDict
 * order). Throttling and the write threshold are not supported: zeroes,
 * as QEMU shows them unset. */
static QblkJson *block_device_info(BlockDriverState *bs, bool flat)
{
    static const char *const throttle[] = { "bps", "bps_rd", "bps_wr", "iops", "iops_rd",
                                            "iops_wr" };
    QblkJson *obj = qblk_json_object();
    QblkJson *cache = qblk_json_object();
    BlockDriverState *backing = bdrv_backing(bs);
    int flags = bdrv_get_open_flags(bs);
    int depth = 0;
    QblkJson *image;
    g_autofree char *filename = node_display_filename(bs);

    qblk_json_set_str(obj, "file", filename);
    qblk_json_set_str(obj, "node-name", bdrv_get_node_name(bs));
    qblk_json_set_bool(obj, "ro", bdrv_is_read_only(bs));
    qblk_json_set_str(obj, "drv", bdrv_format_name(bs));
    if (backing) {
        g_autofree char *backing_name = node_display_filename(backing);

        qblk_json_set_str(obj, "backing_file", backing_name);
    }
    image = image_info_json(bs, !flat, &depth);
    qblk_json_set_int(obj, "backing_file_depth", depth);
    qblk_json_set_bool(obj, "encrypted", false);
    qblk_json_set_str(obj, "detect_zeroes",
                      bdrv_detect_zeroes_name(bdrv_get_detect_zeroes(bs)));
    for (size_t i = 0; i < G_N_ELEMENTS(throttle); i++) {
        qblk_json_set_int(obj, throttle[i], 0);
    }
    qblk_json_set(obj, "image", image);
    qblk_json_set_bool(cache, "writeback", true);
    qblk_json_set_bool(cache, "direct", flags & BDRV_O_NOCACHE);
    qblk_json_set_bool(cache, "no-flush", flags & BDRV_O_NO_FLUSH);
    qblk_json_set(obj, "cache", cache);
    qblk_json_set_int(obj, "write_threshold", 0);
    return obj;
}

static QblkJson *coroutine_fn qmp_query_named_block_nodes(const QblkJson *args,
                                                          GError **errp)
{
    bool flat = qmp_arg_bool(args, "flat", false);
    g_autoptr(GPtrArray) nodes = g_ptr_array_new();
    QblkJson *list = qblk_json_array();

    for (BlockDriverState *bs = bdrv_next_node(NULL); bs; bs = bdrv_next_node(bs)) {
        g_ptr_array_add(nodes, bs);
    }
    /* Newest first, as QEMU lists them. */
    for (guint i = nodes->len; i-- > 0;) {
        qblk_json_append(list, block_device_info(nodes->pdata[i], flat));
    }
    return list;
}

/* ----- block_resize ----- */

static QblkJson *coroutine_fn qmp_block_resize(const QblkJson *args, GError **errp)
{
    const char *device = qmp_arg_str(args, "device");
    BlockDriverState *bs = bdrv_lookup_bs(device, qmp_arg_str(args, "node-name"), errp);
    int64_t size = qmp_arg_int(args, "size", 0);
    g_autoptr(GError) busy = NULL;
    BdrvUser *u;
    int ret;

    if (!bs) {
        return NULL;
    }
    if (size < 0) {
        qblk_error_set(errp, "Parameter 'size' expects a >0 size");
        return NULL;
    }
    if (!bdrv_check_not_in_use_by_job(bs, &busy)) {
        /* QEMU prints the device argument, "(null)" when it had none. */
        qblk_error_set(errp, "Device '%s' is in use", device ? device : "(null)");
        return NULL;
    }
    u = bdrv_attach_user(bs, "an unnamed block device", BLK_PERM_RESIZE, BLK_PERM_ALL, errp);
    if (!u) {
        return NULL;
    }
    /* A truncate is a request like any other (tracked, serialised): no
     * drained section, which would hold it back until its own end. */
    ret = bdrv_co_truncate(bs, size, false, PREALLOC_MODE_OFF, errp);
    bdrv_detach_user(u);
    return ret < 0 ? NULL : qblk_json_object();
}

/* ----- blockdev-snapshot, change-backing-file ----- */

/* The node a backing child of another node cannot be snapshotted or
 * changed under it (QEMU's op blockers). */
static bool check_not_backing(BlockDriverState *bs, GError **errp)
{
    for (BdrvChild *c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        if (bdrv_child_parent(c) && !strcmp(bdrv_child_name(c), "backing")) {
            qblk_error_set(errp, "Node '%s' is busy: node is used as backing hd of '%s'",
                           bdrv_get_node_name(bs), bdrv_get_node_name(bdrv_child_parent(c)));
            return false;
        }
    }
    return bdrv_check_not_in_use_by_job(bs, errp);
}

static QblkJson *coroutine_fn qmp_blockdev_snapshot(const QblkJson *args, GError **errp)
{
    BlockDriverState *old_bs, *overlay;

    old_bs = bdrv_lookup_bs(qmp_arg_str(args, "node"), qmp_arg_str(args, "node"), errp);
    if (!old_bs || !check_not_backing(old_bs, errp)) {
        return NULL;
    }
    if (!bdrv_is_read_only(old_bs) && bdrv_co_flush(old_bs) < 0) {
        qblk_error_set(errp, "Could not flush '%s'", bdrv_get_node_name(old_bs));
        return NULL;
    }
    overlay = bdrv_lookup_bs(qmp_arg_str(args, "overlay"), qmp_arg_str(args, "overlay"), errp);
    if (!overlay) {
        return NULL;
    }
    for (BdrvChild *c = bdrv_next_parent(overlay, NULL); c; c = bdrv_next_parent(overlay, c)) {
        if (!bdrv_child_parent(c)) {
            qblk_error_set(errp, "The overlay is already in use");
            return NULL;
        }
    }
    if (!check_not_backing(overlay, errp)) {
        return NULL;
    }
    if (bdrv_backing(overlay)) {
        qblk_error_set(errp, "The overlay already has a backing image");
        return NULL;
    }
    if (!bdrv_supports_backing(overlay)) {
        qblk_error_set(errp, "The overlay does not support backing images");
        return NULL;
    }
    /* QEMU's bdrv_append: the overlay takes old_bs as backing in memory
     * (its header is not rewritten) and takes old_bs's place for every
     * parent and user; old_bs then goes read-only. */
    if (bdrv_co_attach_backing(overlay, old_bs, errp) < 0) {
        return NULL;
    }
    if (!bdrv_co_replace_node(old_bs, overlay, errp)) {
        bdrv_co_attach_backing(overlay, NULL, NULL);
        return NULL;
    }
    if (!bdrv_is_read_only(old_bs)) {
        bdrv_co_reopen(old_bs, bdrv_get_open_flags(old_bs) & ~BDRV_O_RDWR, NULL);
    }
    return qblk_json_object();
}

/* QEMU's root: no parent node (users may hold it). */
static bool is_root_node(BlockDriverState *bs)
{
    for (BdrvChild *c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        if (bdrv_child_parent(c)) {
            return false;
        }
    }
    return true;
}

static bool chain_contains(BlockDriverState *top, BlockDriverState *bs)
{
    for (; top; top = bdrv_backing(top) ? bdrv_backing(top) : bdrv_file_child(top)) {
        if (top == bs) {
            return true;
        }
    }
    return false;
}

static QblkJson *coroutine_fn qmp_change_backing_file(const QblkJson *args, GError **errp)
{
    const char *device = qmp_arg_str(args, "device");
    const char *backing_file = qmp_arg_str(args, "backing-file");
    BlockDriverState *bs = bdrv_lookup_bs(device, device, errp), *image;
    g_autoptr(GError) local_err = NULL;
    bool ro;
    int ret;

    if (!bs) {
        return NULL;
    }
    if (!is_root_node(bs)) {
        qblk_error_set(errp, "Need a root block node");
        return NULL;
    }
    image = bdrv_lookup_bs(NULL, qmp_arg_str(args, "image-node-name"), errp);
    if (!image) {
        return NULL;
    }
    if (!bdrv_backing(image)) {
        qblk_error_set(errp, "not allowing backing file change on an image without a "
                       "backing file");
        return NULL;
    }
    if (!bdrv_check_not_in_use_by_job(bs, errp)) {
        return NULL;
    }
    if (!chain_contains(bs, image)) {
        qblk_error_set(errp, "'%s' and image file are not in the same chain", device);
        return NULL;
    }
    /* A read-only image is made writable for the change, then read-only
     * again, as QEMU does. */
    ro = bdrv_is_read_only(image);
    if (ro && bdrv_co_reopen(image, bdrv_get_open_flags(image) | BDRV_O_RDWR, errp) < 0) {
        return NULL;
    }
    /* As QEMU 7.2 does, the image's own format is recorded as the backing
     * format (qcow2 stores it; QED keeps only "not raw"). */
    ret = bdrv_co_change_backing_file(image, backing_file, bdrv_format_name(image),
                                      &local_err);
    if (ro) {
        bdrv_co_reopen(image, bdrv_get_open_flags(image) & ~BDRV_O_RDWR, NULL);
    }
    if (ret < 0) {
        qblk_error_set(errp, "Could not change backing file to '%s'", backing_file);
        return NULL;
    }
    return qblk_json_object();
}

static const QmpCommand block_commands[] = {
    { "blockdev-add", qmp_blockdev_add },
    { "blockdev-del", qmp_blockdev_del },
    { "query-named-block-nodes", qmp_query_named_block_nodes },
    { "block_resize", qmp_block_resize },
    { "blockdev-snapshot", qmp_blockdev_snapshot },
    { "change-backing-file", qmp_change_backing_file },
};

void qmp_register_block_commands(void)
{
    qmp_block_schema_add();
    qmp_register_commands(block_commands, G_N_ELEMENTS(block_commands));
}
