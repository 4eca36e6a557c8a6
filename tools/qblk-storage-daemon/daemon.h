/* qblk-storage-daemon's parts: the command line (daemon-cli.c) and main
 * (daemon-main.c: run the loop, shut down); the process set-up it shares
 * with qblk-nbd is tools/common/server-process.c. */
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

#endif
