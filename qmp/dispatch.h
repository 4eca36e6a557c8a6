/* The dispatcher: one request (as the splitter delivered it) to one reply,
 * with QEMU's checks of the request's shape and of the arguments against
 * the schema. Private to qmp/ and the daemon program. */
#ifndef QBLK_QMP_DISPATCH_H
#define QBLK_QMP_DISPATCH_H

#include "qmp/qmp.h"
#include "qmp/schema.h"

/* What the dispatcher keeps of one monitor connection. */
typedef struct QmpSession {
    bool negotiated;               /* qmp_capabilities succeeded */
    bool oob;                      /* ... with enable: ['oob'] */
} QmpSession;

/* Handles one request: request (taken) as parsed, or parse_err (taken)
 * when it could not be. Returns the reply object. Runs the command's
 * handler, so it must run in a coroutine. */
QblkJson *coroutine_fn qmp_co_dispatch(QmpSession *session, QblkJson *request,
                                       GError *parse_err);

/* The schema check of a command's arguments, QEMU's messages. */
bool qmp_check_args(const QmpCommandDef *cmd, const QblkJson *args, GError **errp);

/* Checks args against command name's schema and runs its handler (the
 * daemon's --blockdev JSON form goes through blockdev-add this way).
 * Returns the handler's return value or NULL with *errp set. */
QblkJson *coroutine_fn qmp_co_run_command(const char *name, const QblkJson *args,
                                          GError **errp);

#endif
