/* The daemon's NBD server and block exports: nbd-server-start/-stop,
 * block-export-add/-del, query-block-exports, the old nbd-server-add and
 * -remove, BLOCK_EXPORT_DELETED, and the --nbd-server and --export command
 * line options, all over nbd/ with QEMU 7.2's members and messages. */
#include <string.h>

#include "nbd/nbd.h"
#include "qmp/keyval.h"
#include "qmp/qmp.h"
#include "util/cutils.h"

static const char export_schema[] =
    /* qapi/sockets.json: the flat address (command line, block exports)
     * and the legacy one nbd-server-start takes over QMP. */
    "{ 'enum': 'SocketAddressType', 'data': [ 'inet', 'unix', 'vsock', 'fd' ] }"
    "{ 'struct': 'InetSocketAddress', 'data': { 'host': 'str', 'port': 'str',"
    "  '*numeric': 'bool', '*to': 'uint16', '*ipv4': 'bool', '*ipv6': 'bool',"
    "  '*keep-alive': 'bool', '*mptcp': 'bool' } }"
    "{ 'struct': 'UnixSocketAddress', 'data': { 'path': 'str', '*abstract': 'bool',"
    "  '*tight': 'bool' } }"
    "{ 'struct': 'VsockSocketAddress', 'data': { 'cid': 'str', 'port': 'str' } }"
    "{ 'struct': 'String', 'data': { 'str': 'str' } }"
    "{ 'union': 'SocketAddress', 'base': { 'type': 'SocketAddressType' },"
    "  'discriminator': 'type', 'data': { 'inet': 'InetSocketAddress',"
    "  'unix': 'UnixSocketAddress', 'vsock': 'VsockSocketAddress', 'fd': 'String' } }"
    "{ 'struct': 'InetSocketAddressWrapper', 'data': { 'data': 'InetSocketAddress' } }"
    "{ 'struct': 'UnixSocketAddressWrapper', 'data': { 'data': 'UnixSocketAddress' } }"
    "{ 'struct': 'VsockSocketAddressWrapper', 'data': { 'data': 'VsockSocketAddress' } }"
    "{ 'struct': 'StringWrapper', 'data': { 'data': 'String' } }"
    "{ 'enum': 'SocketAddressLegacyType', 'data': [ 'inet', 'unix', 'vsock', 'fd' ] }"
    "{ 'union': 'SocketAddressLegacy', 'base': { 'type': 'SocketAddressLegacyType' },"
    "  'discriminator': 'type', 'data': { 'inet': 'InetSocketAddressWrapper',"
    "  'unix': 'UnixSocketAddressWrapper', 'vsock': 'VsockSocketAddressWrapper',"
    "  'fd': 'StringWrapper' } }"
    /* qapi/block-export.json */
    "{ 'struct': 'NbdServerOptions', 'data': { 'addr': 'SocketAddress',"
    "  '*tls-creds': 'str', '*tls-authz': 'str', '*max-connections': 'uint32' } }"
    "{ 'enum': 'BlockExportType', 'data': [ 'nbd', 'vhost-user-blk', 'fuse', 'vduse-blk' ] }"
    "{ 'struct': 'BlockDirtyBitmapOrStr', 'data': { 'node': 'str', 'name': 'str' } }"
    "{ 'alternate': 'BlockDirtyBitmapOrStrAlt', 'data': { 'local': 'str',"
    "  'external': 'BlockDirtyBitmapOrStr' } }"
    "{ 'struct': 'BlockExportOptionsNbd', 'data': { '*name': 'str', '*description': 'str',"
    "  '*bitmaps': [ 'BlockDirtyBitmapOrStrAlt' ], '*allocation-depth': 'bool' } }"
    "{ 'struct': 'BlockExportOptionsVhostUserBlk', 'data': { 'addr': 'SocketAddress',"
    "  '*logical-block-size': 'size', '*num-queues': 'uint16' } }"
    "{ 'struct': 'BlockExportOptionsFuse', 'data': { 'mountpoint': 'str',"
    "  '*growable': 'bool', '*allow-other': 'OnOffAuto' } }"
    "{ 'struct': 'BlockExportOptionsVduseBlk', 'data': { 'name': 'str',"
    "  '*num-queues': 'uint16', '*queue-size': 'uint16', '*logical-block-size': 'size',"
    "  '*serial': 'str' } }"
    "{ 'union': 'BlockExportOptions', 'base': { 'type': 'BlockExportType', 'id': 'str',"
    "  '*fixed-iothread': 'bool', '*iothread': 'str', 'node-name': 'str',"
    "  '*writable': 'bool', '*writethrough': 'bool' },"
    "  'discriminator': 'type', 'data': { 'nbd': 'BlockExportOptionsNbd',"
    "  'vhost-user-blk': 'BlockExportOptionsVhostUserBlk',"
    "  'fuse': 'BlockExportOptionsFuse', 'vduse-blk': 'BlockExportOptionsVduseBlk' } }"
    "{ 'enum': 'BlockExportRemoveMode', 'data': [ 'safe', 'hard' ] }"
    "{ 'struct': 'BlockExportInfo', 'data': { 'id': 'str', 'type': 'BlockExportType',"
    "  'node-name': 'str', 'shutting-down': 'bool' } }"
    "{ 'command': 'nbd-server-start', 'data': { 'addr': 'SocketAddressLegacy',"
    "  '*tls-creds': 'str', '*tls-authz': 'str', '*max-connections': 'uint32' } }"
    "{ 'command': 'nbd-server-stop' }"
    "{ 'command': 'block-export-add', 'data': 'BlockExportOptions', 'boxed': true }"
    "{ 'command': 'block-export-del', 'data': { 'id': 'str',"
    "  '*mode': 'BlockExportRemoveMode' } }"
    "{ 'command': 'query-block-exports', 'returns': [ 'BlockExportInfo' ] }"
    "{ 'command': 'nbd-server-add', 'data': { 'device': 'str', '*name': 'str',"
    "  '*description': 'str', '*writable': 'bool', '*bitmap': 'str' } }"
    "{ 'enum': 'NbdServerRemoveMode', 'data': [ 'safe', 'hard' ] }"
    "{ 'command': 'nbd-server-remove', 'data': { 'name': 'str',"
    "  '*mode': 'NbdServerRemoveMode' } }"
    "{ 'event': 'BLOCK_EXPORT_DELETED', 'data': { 'id': 'str' } }";

/* One block export the monitor made; keyed by its id until the NBD layer
 * says it is gone (then BLOCK_EXPORT_DELETED). */
typedef struct MonitorExport {
    char *id;
    char *node_name;
    NbdExport *exp;
    bool shutting_down;
} MonitorExport;

static NbdServer *nbd_server;
static GPtrArray *exports;      /* MonitorExport*, newest first, as QEMU lists */

static MonitorExport *export_find(const char *id)
{
    for (guint i = 0; exports && i < exports->len; i++) {
        MonitorExport *me = exports->pdata[i];
        if (!strcmp(me->id, id)) {
            return me;
        }
    }
    return NULL;
}

static void export_deleted(void *opaque)
{
    MonitorExport *me = opaque;
    QblkJson *data = qblk_json_object();

    qblk_json_set_str(data, "id", me->id);
    g_ptr_array_remove(exports, me);
    qmp_event_emit("BLOCK_EXPORT_DELETED", data);
    g_free(me->id);
    g_free(me->node_name);
    g_free(me);
}

/* ----- The server ----- */

/* addr is the flat SocketAddress (the command line's form, or the legacy
 * form's data merged in). */
static bool nbd_server_start_addr(const QblkJson *addr, const char *tls_creds,
                                  const char *tls_authz, int64_t max_connections,
                                  GError **errp)
{
    const char *type = qmp_arg_str(addr, "type");
    NbdServerOptions opts = { .max_connections = (int)max_connections };

    if (nbd_server) {
        qblk_error_set(errp, "NBD server already running");
        return false;
    }
    if (tls_creds) {
        /* qblk has no --object, so no credentials can exist. */
        qblk_error_set(errp, "No TLS credentials with id '%s'", tls_creds);
        return false;
    }
    if (tls_authz) {
        qblk_error_set(errp, "'tls-authz' requires that 'tls-creds' is set");
        return false;
    }
    if (!strcmp(type, "unix")) {
        if (qmp_arg_bool(addr, "abstract", false)) {
            qblk_error_set(errp, "abstract unix sockets are not supported");
            return false;
        }
        opts.unix_path = qmp_arg_str(addr, "path");
    } else if (!strcmp(type, "inet")) {
        opts.host = qmp_arg_str(addr, "host");
        opts.port = qmp_arg_str(addr, "port");
    } else {
        qblk_error_set(errp, "NBD server address type '%s' is not supported "
                       "(only 'unix' and 'inet')", type);
        return false;
    }
    nbd_server = nbd_server_start(&opts, errp);
    if (!nbd_server) {
        return false;
    }
    if (!exports) {
        exports = g_ptr_array_new();
    }
    return true;
}

static QblkJson *coroutine_fn qmp_nbd_server_start(const QblkJson *args, GError **errp)
{
    const QblkJson *legacy = qblk_json_get(args, "addr");
    g_autoptr(QblkJson) addr = qblk_json_copy(qblk_json_get(legacy, "data"));

    qblk_json_set_str(addr, "type", qmp_arg_str(legacy, "type"));
    if (!nbd_server_start_addr(addr, qmp_arg_str(args, "tls-creds"),
                               qmp_arg_str(args, "tls-authz"),
                               qmp_arg_int(args, "max-connections", 0), errp)) {
        return NULL;
    }
    return qblk_json_object();
}

static bool check_server_running(GError **errp)
{
    if (!nbd_server) {
        qblk_error_set(errp, "NBD server not running");
        return false;
    }
    return true;
}

/* Stops the server, its exports removed (BLOCK_EXPORT_DELETED each). */
static void coroutine_fn server_co_stop(void)
{
    NbdServer *srv = nbd_server;

    /* Cleared first: nothing may add an export while the clients leave. */
    nbd_server = NULL;
    nbd_co_server_stop(srv);
}

static QblkJson *coroutine_fn qmp_nbd_server_stop(const QblkJson *args, GError **errp)
{
    (void)args;
    if (!check_server_running(errp)) {
        return NULL;
    }
    server_co_stop();
    return qblk_json_object();
}

/* ----- Exports ----- */

/* A node some writable parent uses as its 'file' resizes it at will, which
 * an export's fixed size cannot allow (QEMU's permission check refuses
 * it with this text). */
static bool check_exportable(BlockDriverState *bs, GError **errp)
{
    const char *name = bdrv_get_node_name(bs);

    for (BdrvChild *c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        BlockDriverState *parent = bdrv_child_parent(c);
        if (parent && !strcmp(bdrv_child_name(c), "file") && !bdrv_is_read_only(parent)) {
            qblk_error_set(errp, "Permission conflict on node '%s': permissions 'resize' "
                           "are both required by node '%s' (uses node '%s' as 'file' "
                           "child) and unshared by an unnamed block device (uses node "
                           "'%s' as 'root' child).", name, bdrv_get_node_name(parent),
                           name, name);
            return false;
        }
    }
    return true;
}

/* block-export-add's work (args checked against BlockExportOptions). */
static bool export_add(const QblkJson *args, GError **errp)
{
    const char *id = qmp_arg_str(args, "id");
    const char *type = qmp_arg_str(args, "type");
    const char *node_name = qmp_arg_str(args, "node-name");
    const char *iothread = qmp_arg_str(args, "iothread");
    const QblkJson *bitmaps = qblk_json_get(args, "bitmaps");
    BlockDriverState *bs;
    MonitorExport *me;
    NbdExportOptions opts = { 0 };

    if (strcmp(type, "nbd")) {
        qblk_error_set(errp, "Export type '%s' is not supported by qblk-storage-daemon "
                       "(only 'nbd')", type);
        return false;
    }
    if (!check_server_running(errp)) {
        return false;
    }
    if (!qblk_id_wellformed(id)) {
        qblk_error_set(errp, "Invalid block export id");
        return false;
    }
    if (export_find(id)) {
        qblk_error_set(errp, "Block export id '%s' is already in use", id);
        return false;
    }
    bs = bdrv_lookup_bs(NULL, node_name, errp);
    if (!bs) {
        return false;
    }
    if (iothread) {
        qblk_error_set(errp, "iothread \"%s\" not found", iothread);
        return false;
    }
    if (bitmaps && qblk_json_size(bitmaps)) {
        const QblkJson *b = qblk_json_nth(bitmaps, 0, NULL);
        const char *bname = qblk_json_type(b) == QBLK_JSON_STRING ? qblk_json_get_string(b)
                                                                 : qmp_arg_str(b, "name");
        /* qblk has no dirty bitmaps, so none can be found. */
        qblk_error_set(errp, "Bitmap '%s' is not found", bname);
        return false;
    }
    opts.name = qmp_arg_str(args, "name") ? qmp_arg_str(args, "name") : node_name;
    if (nbd_export_find(nbd_server, opts.name)) {
        qblk_error_set(errp, "NBD server already has export named '%s'", opts.name);
        return false;
    }
    if (!check_exportable(bs, errp)) {
        return false;
    }
    me = g_new0(MonitorExport, 1);
    opts.description = qmp_arg_str(args, "description");
    opts.writable = qmp_arg_bool(args, "writable", false);
    opts.writethrough = qmp_arg_bool(args, "writethrough", false);
    opts.allocation_depth = qmp_arg_bool(args, "allocation-depth", false);
    opts.deleted = export_deleted;
    opts.opaque = me;
    me->exp = nbd_export_add(nbd_server, bs, &opts, errp);
    if (!me->exp) {
        g_free(me);
        return false;
    }
    me->id = g_strdup(id);
    me->node_name = g_strdup(node_name);
    g_ptr_array_insert(exports, 0, me);
    return true;
}

static QblkJson *coroutine_fn qmp_block_export_add(const QblkJson *args, GError **errp)
{
    return export_add(args, errp) ? qblk_json_object() : NULL;
}

/* block-export-del and nbd-server-remove: the export whose id is
 * args[id_key], removed in args' mode (safe when absent). */
static bool export_del(const QblkJson *args, const char *id_key, GError **errp)
{
    static const char *const modes[] = { "safe", "hard", NULL };
    bool hard = qmp_arg_enum(args, "mode", modes, 0) == 1;
    const char *id = qmp_arg_str(args, id_key);
    MonitorExport *me = export_find(id);

    if (!me) {
        qblk_error_set(errp, "Export '%s' is not found", id);
        return false;
    }
    if (me->shutting_down) {
        qblk_error_set(errp, "Export '%s' is already shutting down", id);
        return false;
    }
    if (!hard && nbd_export_in_use(me->exp)) {
        qblk_error_set(errp, "export '%s' still in use", id);
        return false;
    }
    me->shutting_down = true;
    nbd_export_remove(me->exp);     /* may free me (BLOCK_EXPORT_DELETED) */
    return true;
}

static QblkJson *coroutine_fn qmp_block_export_del(const QblkJson *args, GError **errp)
{
    return export_del(args, "id", errp) ? qblk_json_object() : NULL;
}

static QblkJson *coroutine_fn qmp_query_block_exports(const QblkJson *args, GError **errp)
{
    QblkJson *list = qblk_json_array();

    (void)args;
    (void)errp;
    for (guint i = 0; exports && i < exports->len; i++) {
        MonitorExport *me = exports->pdata[i];
        QblkJson *info = qblk_json_append(list, qblk_json_object());

        qblk_json_set_str(info, "id", me->id);
        qblk_json_set_str(info, "type", "nbd");
        qblk_json_set_str(info, "node-name", me->node_name);
        qblk_json_set_bool(info, "shutting-down", me->shutting_down);
    }
    return list;
}

/* The deprecated pair: an export whose id is its name. */
static QblkJson *coroutine_fn qmp_nbd_server_add(const QblkJson *args, GError **errp)
{
    const char *device = qmp_arg_str(args, "device");
    const char *name = qmp_arg_str(args, "name");
    g_autoptr(QblkJson) opts = qblk_json_object();

    if (!check_server_running(errp)) {
        return NULL;
    }
    qblk_json_set_str(opts, "type", "nbd");
    qblk_json_set_str(opts, "id", name ? name : device);
    qblk_json_set_str(opts, "node-name", device);
    qblk_json_set_str(opts, "name", name ? name : device);
    if (qmp_arg_str(args, "description")) {
        qblk_json_set_str(opts, "description", qmp_arg_str(args, "description"));
    }
    qblk_json_set_bool(opts, "writable", qmp_arg_bool(args, "writable", false));
    if (qmp_arg_str(args, "bitmap")) {
        qblk_error_set(errp, "Bitmap '%s' is not found", qmp_arg_str(args, "bitmap"));
        return NULL;
    }
    return export_add(opts, errp) ? qblk_json_object() : NULL;
}

static QblkJson *coroutine_fn qmp_nbd_server_remove(const QblkJson *args, GError **errp)
{
    return export_del(args, "name", errp) ? qblk_json_object() : NULL;
}

void qmp_register_export_commands(void)
{
    static const QmpCommand cmds[] = {
        { "nbd-server-start", qmp_nbd_server_start },
        { "nbd-server-stop", qmp_nbd_server_stop },
        { "block-export-add", qmp_block_export_add },
        { "block-export-del", qmp_block_export_del },
        { "query-block-exports", qmp_query_block_exports },
        { "nbd-server-add", qmp_nbd_server_add },
        { "nbd-server-remove", qmp_nbd_server_remove },
    };

    qmp_schema_add(export_schema);
    qmp_register_commands(cmds, G_N_ELEMENTS(cmds));
}

bool qmp_node_is_exported(BlockDriverState *bs)
{
    for (guint i = 0; exports && i < exports->len; i++) {
        MonitorExport *me = exports->pdata[i];
        if (nbd_export_bs(me->exp) == bs) {
            return true;
        }
    }
    return false;
}

/* ----- The command line and shutdown ----- */

bool qmp_cli_nbd_server(const char *arg, GError **errp)
{
    g_autoptr(QblkJson) opts = qmp_keyval_parse(arg, NULL, "NbdServerOptions", errp);

    if (!opts || !nbd_server_start_addr(qblk_json_get(opts, "addr"),
                                        qmp_arg_str(opts, "tls-creds"),
                                        qmp_arg_str(opts, "tls-authz"),
                                        qmp_arg_int(opts, "max-connections", 0), errp)) {
        return false;
    }
    /* Clients wait until the whole command line is done (its exports). */
    nbd_server_set_accepting(nbd_server, false);
    return true;
}

void qmp_cli_done(void)
{
    if (nbd_server) {
        nbd_server_set_accepting(nbd_server, true);
    }
}

bool qmp_cli_export(const char *arg, GError **errp)
{
    g_autoptr(QblkJson) opts = qmp_keyval_parse(arg, "type", "BlockExportOptions", errp);

    return opts && export_add(opts, errp);
}

void coroutine_fn qmp_co_exports_close_all(void)
{
    if (nbd_server) {
        server_co_stop();
    }
    g_clear_pointer(&exports, g_ptr_array_unref);
}
