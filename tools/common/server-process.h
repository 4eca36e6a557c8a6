/* What the two servers (qblk-storage-daemon, qblk-nbd) do the same way as
 * processes: fork into the background, a locked pidfile, stop signals. */
#ifndef QBLK_TOOLS_SERVER_PROCESS_H
#define QBLK_TOOLS_SERVER_PROCESS_H

#include <stdbool.h>
#include <glib.h>

/* Forks twice, as QEMU's servers do (a new session, then no session
 * leader, so never a controlling terminal); the parent waits until the
 * server calls server_process_ready() and exits 0 then, or 1 if the
 * server dies first (it reported its error on the shared stderr). */
void server_process_fork(void);
/* Startup done: a forked server detaches (stdio to /dev/null, and the
 * cwd to "/" when chdir_root) and lets the parent exit. Nothing when the
 * process did not fork. */
void server_process_ready(bool chdir_root);
/* Writes and locks the pidfile (its absolute path kept for removal). */
bool server_pidfile_write(const char *path, GError **errp);
void server_pidfile_remove(void);
/* SIGTERM, SIGINT and SIGHUP call stop() in the event loop; SIGPIPE is
 * ignored (a vanished client is an error return, not a death). */
void server_process_stop_signals(void (*stop)(void));

#endif
