/* qblk-storage-daemon's parts: the command line (daemon-cli.c), the
 * process set-up (daemon-process.c: daemonize, pidfile, signals) and
 * main (daemon-main.c: run the loop, shut down). */
#ifndef QBLK_DAEMON_H
#define QBLK_DAEMON_H

#include <stdbool.h>
#include <glib.h>

typedef struct DaemonOptions {
    bool daemonize;
    char *pidfile;
} DaemonOptions;

/* First pass over argv: -h, -V (print and exit 0), usage errors (exit 1),
 * and the options that shape the process (--daemonize, --pidfile). */
void daemon_cli_scan(int argc, char **argv, DaemonOptions *opts);
/* Second pass: --blockdev, --chardev, --monitor, --trace in command-line
 * order, as qemu-storage-daemon runs them. Reports the first error
 * ("<option> <arg>: <message>") and returns false. */
bool daemon_cli_process(int argc, char **argv);

/* Forks twice (new session, no session leader); the parent waits until
 * the daemon calls daemon_ready() and exits 0 then, or 1 if the daemon
 * dies first (it reported its error on the shared stderr). */
void daemon_fork(void);
/* Startup done: the daemon detaches (chdir "/", stdio to /dev/null) and
 * lets the parent exit. */
void daemon_ready(void);
/* Writes and locks the pidfile (absolute path kept for removal). */
bool daemon_write_pidfile(const char *path, GError **errp);
void daemon_remove_pidfile(void);
/* SIGTERM, SIGINT, SIGHUP ask for shutdown; SIGPIPE is ignored. */
void daemon_install_signals(void);

#endif
