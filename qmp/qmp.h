/* What command files (qmp/ *-commands.c) see of the QMP monitor: a schema
 * in QAPI syntax, a handler per command, events. The monitor itself
 * (framing, greeting, negotiation, argument checking) is monitor.c and
 * dispatch.c; only the daemon program includes this header. */
#ifndef QBLK_QMP_QMP_H
#define QBLK_QMP_QMP_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "qblk/block.h"
#include "util/coroutine.h"
#include "util/error.h"
#include "util/json.h"
#include "util/opts.h"

/*
 * A command handler runs in a coroutine of the monitor that received the
 * command; the monitor reads that client's next command only after it
 * returns (replies come in command order, as QEMU's without out-of-band).
 * Before it runs, the arguments passed the schema check (dispatch.c):
 * every required member present, no unknown member, every value of its
 * declared type and every enum value one of the enum's names, with QEMU's
 * messages. args is borrowed and never NULL ({} when the client sent
 * none). Returns the "return" value, which the caller takes
 * (qblk_json_object() for commands without data), or NULL with *errp set
 * (its QBLK_ERROR code picks the QMP class: qblk_error_class()).
 * A handler calls only bdrv_co_* and job functions, never a sync wrapper.
 */
typedef QblkJson *coroutine_fn QmpCommandFunc(const QblkJson *args, GError **errp);

typedef struct QmpCommand {
    const char *name;
    QmpCommandFunc *fn;
} QmpCommand;

/*
 * Adds QAPI definitions, one JSON object after another in QAPI's own
 * syntax (single-quoted strings allowed):
 *   { 'enum': 'BlockdevOnError', 'data': [ 'report', 'ignore', ... ] }
 *   { 'struct': 'JobInfo', 'data': { 'id': 'str', '*error': 'str' } }
 *   { 'union': 'BlockdevOptions', 'base': { 'driver': 'BlockdevDriver', ... },
 *     'discriminator': 'driver', 'data': { 'file': 'BlockdevOptionsFile' } }
 *   { 'alternate': 'BlockdevRef', 'data': { 'definition': 'BlockdevOptions',
 *     'reference': 'str' } }
 *   { 'command': 'block-stream', 'data': { '*job-id': 'str', 'device': 'str' } }
 *   { 'command': 'blockdev-add', 'data': 'BlockdevOptions', 'boxed': true }
 *   { 'command': 'query-jobs', 'returns': [ 'JobInfo' ] }
 *   { 'event': 'JOB_STATUS_CHANGE', 'data': { 'id': 'str', 'status': 'JobStatus' } }
 * Built-in types: str, int, int64, uint32, uint64, size, bool, number,
 * null, any; '[T]' is a list. Definitions may refer to types defined
 * later (resolved when the daemon starts: qmp_schema_finish()). The same
 * definitions drive argument checking, query-commands and
 * query-qmp-schema. Aborts on a malformed definition (a bug).
 */
void qmp_schema_add(const char *qapi_text);

/* Registers handlers for commands the schema defines (abort if it does
 * not define one: a bug). */
void qmp_register_commands(const QmpCommand *cmds, size_t n);

/* Sends {"timestamp": {...}, "event": name, "data": data} to every monitor
 * that finished capabilities negotiation. data (taken) may be NULL. Never
 * yields; safe outside coroutines. */
void qmp_event_emit(const char *name, QblkJson *data);

/* ----- Reading checked arguments (args as a handler receives it) ----- */

bool qmp_arg_has(const QblkJson *args, const char *name);
const char *qmp_arg_str(const QblkJson *args, const char *name);   /* NULL if absent */
int64_t qmp_arg_int(const QblkJson *args, const char *name, int64_t def);
bool qmp_arg_bool(const QblkJson *args, const char *name, bool def);
/* The index of an enum member's value in names (NULL-terminated), def if
 * absent. The schema check already refused unknown values. */
int qmp_arg_enum(const QblkJson *args, const char *name, const char *const *names, int def);

/* ----- Registration of each command file (called by the daemon's main) ----- */

void qmp_register_control_commands(void);   /* qmp_capabilities, query-*, quit */
void qmp_register_block_commands(void);     /* blockdev-*, query-named-block-nodes, ... */
void qmp_register_job_commands(void);       /* block-stream, block-commit, job verbs */
void qmp_register_export_commands(void);    /* nbd-server-*, block-export-* */

/* ----- Hooks of the block command file for the daemon's main ----- */

/* --blockdev in dotted-key form (the JSON form goes through blockdev-add's
 * schema check): opts (consumed) as bdrv_co_open takes them; the node is
 * owned by the monitor like one blockdev-add made. */
bool coroutine_fn qmp_co_blockdev_add_opts(QblkOpts *opts, GError **errp);
/* Shutdown: drops every monitor-owned node (flushed and closed once the
 * last user is gone). */
void coroutine_fn qmp_co_blockdev_close_all(void);

/* ----- Hooks of the export command file ----- */

/* --nbd-server (NbdServerOptions: flat SocketAddress) and --export
 * (BlockExportOptions), dotted keys or JSON, as qemu-storage-daemon. */
bool qmp_cli_nbd_server(const char *arg, GError **errp);
bool qmp_cli_export(const char *arg, GError **errp);
/* The command line is done: the NBD server it started takes clients. */
void qmp_cli_done(void);
/* Whether an export serves bs (blockdev-del refuses "Node %s is in use"). */
bool qmp_node_is_exported(BlockDriverState *bs);
/* Shutdown: stops the NBD server (its clients' requests finish first) and
 * removes every export, before the nodes close. */
void coroutine_fn qmp_co_exports_close_all(void);

#endif
