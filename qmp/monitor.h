/* The QMP monitor's server side: unix-socket chardevs, the monitors
 * attached to them (one per connected client), and shutdown. Used by the
 * daemon program and control-commands.c. */
#ifndef QBLK_QMP_MONITOR_H
#define QBLK_QMP_MONITOR_H

#include <stdbool.h>
#include <glib.h>

#include "util/json.h"

/* A listening unix socket named id at path (an old socket file there is
 * replaced), as --chardev socket,id=..,path=..,server=on,wait=off. */
bool qmp_chardev_add_socket(const char *id, const char *path, GError **errp);
/* Serves QMP on chardev id: every client that connects gets the greeting
 * and a monitor of its own, from qmp_monitors_start() on (connections
 * before it wait in the socket's backlog). */
bool qmp_monitor_add(const char *chardev_id, GError **errp);
/* Starts accepting clients on every monitor: the daemon calls it once its
 * command line is processed, as QEMU's monitors serve only then. */
void qmp_monitors_start(void);

/* quit (and the daemon's signals) ask for shutdown through this; the
 * daemon's main loop polls it. */
void qmp_request_shutdown(void);
bool qmp_shutdown_requested(void);

/* Shutdown: writes what is left in each client's output (bounded wait),
 * closes every connection and listening socket and removes the socket
 * files. */
void qmp_monitor_close_all(void);

/* {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "qblk <version>"},
 * the greeting's and query-version's VersionInfo. */
QblkJson *qmp_version_info(void);

#endif
