/* qblk-storage-daemon: sets up the QMP monitor and the block nodes the
 * command line asks for, runs the one event loop until quit or a signal,
 * then shuts down cleanly (jobs cancelled, nodes flushed and closed,
 * pidfile and sockets removed). */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "tools/common/server-process.h"
#include "qblk/job.h"
#include "qmp/monitor.h"
#include "qmp/qmp.h"
#include "qmp/schema.h"
#include "util/main-loop.h"

static void coroutine_fn shutdown_co_entry(void *opaque)
{
    bool *done = opaque;

    job_co_cancel_all();
    qmp_co_exports_close_all();
    qmp_co_blockdev_close_all();
    *done = true;
}

static void daemon_shutdown(void)
{
    bool done = false;

    qco_enter(qco_create(shutdown_co_entry, &done));
    while (!done) {
        qblk_loop_iterate(true);
    }
    qmp_monitor_close_all();
    server_pidfile_remove();
}

int main(int argc, char **argv)
{
    DaemonOptions opts = { 0 };
    g_autoptr(GError) err = NULL;

    qblk_set_progname(argv[0]);
    daemon_cli_scan(argc, argv, &opts);
    if (opts.daemonize) {
        server_process_fork();
    }
    qblk_loop_init();
    server_process_stop_signals(qmp_request_shutdown);

    qmp_register_control_commands();
    qmp_register_block_commands();
    qmp_register_job_commands();
    qmp_register_export_commands();
    qmp_schema_finish();

    if (!daemon_cli_process(argc, argv)) {
        daemon_shutdown();
        return 1;
    }
    if (opts.pidfile && !server_pidfile_write(opts.pidfile, &err)) {
        error_report("cannot create PID file: %s", err->message);
        daemon_shutdown();
        return 1;
    }
    qmp_cli_done();
    qmp_monitors_start();
    server_process_ready(true);

    while (!qmp_shutdown_requested()) {
        qblk_loop_iterate(true);
    }
    daemon_shutdown();
    g_free(opts.pidfile);
    return 0;
}
