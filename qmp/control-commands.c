/* QMP's own commands: qmp_capabilities, query-version, query-commands,
 * query-qmp-schema and quit, with their QAPI definitions (7.2's
 * qapi/control.json and introspect.json). */
#include "qmp/dispatch.h"
#include "qmp/monitor.h"

static const char control_schema[] =
    "{ 'enum': 'QMPCapability', 'data': [ 'oob' ] }"
    "{ 'command': 'qmp_capabilities', 'data': { '*enable': [ 'QMPCapability' ] } }"
    "{ 'struct': 'VersionTriple', 'data': { 'major': 'int', 'minor': 'int', 'micro': 'int' } }"
    "{ 'struct': 'VersionInfo', 'data': { 'qemu': 'VersionTriple', 'package': 'str' } }"
    "{ 'command': 'query-version', 'returns': 'VersionInfo' }"
    "{ 'struct': 'CommandInfo', 'data': { 'name': 'str' } }"
    "{ 'command': 'query-commands', 'returns': [ 'CommandInfo' ] }"
    "{ 'command': 'quit' }"
    "{ 'enum': 'SchemaMetaType', 'data': [ 'builtin', 'enum', 'array', 'object',"
    "  'alternate', 'command', 'event' ] }"
    "{ 'struct': 'SchemaInfo', 'data': { 'name': 'str', 'meta-type': 'SchemaMetaType' } }"
    "{ 'command': 'query-qmp-schema', 'returns': [ 'SchemaInfo' ] }";

QblkJson *qmp_version_info(void)
{
    QblkJson *info = qblk_json_object();
    QblkJson *qemu = qblk_json_set(info, "qemu", qblk_json_object());

    /* 7.2.0: the QEMU release whose QMP surface qblk speaks. Members go
     * in in schema order, as QEMU's QDict gets them (the printed order
     * depends on it where keys share a hash bucket). */
    qblk_json_set_int(qemu, "major", 7);
    qblk_json_set_int(qemu, "minor", 2);
    qblk_json_set_int(qemu, "micro", 0);
    qblk_json_set_str(info, "package", "qblk " QBLK_VERSION);
    return info;
}

/* The dispatcher refuses it before negotiation's end and after, and
 * records the session's capabilities; the schema check refused any
 * capability but 'oob'. */
static QblkJson *coroutine_fn qmp_co_capabilities(const QblkJson *args, GError **errp)
{
    return qblk_json_object();
}

static QblkJson *coroutine_fn qmp_co_query_version(const QblkJson *args, GError **errp)
{
    return qmp_version_info();
}

/* The commands that have a handler, newest definition first as QEMU
 * lists them. */
static QblkJson *coroutine_fn qmp_co_query_commands(const QblkJson *args, GError **errp)
{
    GPtrArray *cmds = qmp_schema_commands();
    QblkJson *list = qblk_json_array();

    for (guint i = cmds->len; i-- > 0;) {
        const QmpCommandDef *cmd = cmds->pdata[i];
        if (cmd->fn) {
            QblkJson *info = qblk_json_append(list, qblk_json_object());
            qblk_json_set_str(info, "name", cmd->name);
        }
    }
    return list;
}

static QblkJson *coroutine_fn qmp_co_query_qmp_schema(const QblkJson *args, GError **errp)
{
    return qmp_schema_introspect();
}

/* Replies {} first; the daemon's main loop sees the request and shuts
 * down once this reply is out. */
static QblkJson *coroutine_fn qmp_co_quit(const QblkJson *args, GError **errp)
{
    qmp_request_shutdown();
    return qblk_json_object();
}

void qmp_register_control_commands(void)
{
    static const QmpCommand cmds[] = {
        { "qmp_capabilities", qmp_co_capabilities },
        { "query-version", qmp_co_query_version },
        { "query-commands", qmp_co_query_commands },
        { "quit", qmp_co_quit },
        { "query-qmp-schema", qmp_co_query_qmp_schema },
    };

    qmp_schema_add(control_schema);
    qmp_register_commands(cmds, G_N_ELEMENTS(cmds));
}
