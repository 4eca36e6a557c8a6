/* The servers' process set-up: --daemonize / --fork (the parent leaves
 * only once the child serves), --pidfile / --pid-file, stop signals. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib-unix.h>

#include "server-process.h"
#include "util/error.h"

static int ready_fd = -1;          /* child: write end of the parent's pipe */
static char *pidfile_path;         /* absolute, set once written */
static int pidfile_fd = -1;

void server_process_fork(void)
{
    int fds[2];
    pid_t pid;
    char ok;

    if (pipe(fds) < 0) {
        error_report("cannot fork into the background: %s", strerror(errno));
        exit(1);
    }
    pid = fork();
    if (pid < 0) {
        error_report("cannot fork into the background: %s", strerror(errno));
        exit(1);
    }
    if (pid > 0) {
        /* Parent: one byte means the server is ready; EOF means it failed
         * and has said why on the stderr we share. */
        close(fds[1]);
        waitpid(pid, NULL, 0);
        exit(read(fds[0], &ok, 1) == 1 ? 0 : 1);
    }
    /* As QEMU: a new session, then a second fork so that the server is no
     * session leader and never gets a controlling terminal. */
    close(fds[0]);
    setsid();
    pid = fork();
    if (pid < 0) {
        error_report("cannot fork into the background: %s", strerror(errno));
        _exit(1);
    }
    if (pid > 0) {
        _exit(0);
    }
    ready_fd = fds[1];
}

void server_process_ready(bool chdir_root)
{
    int devnull;

    if (ready_fd < 0) {
        return;
    }
    /* As qemu-storage-daemon: no hold on the cwd (qemu-nbd keeps it).
     * Paths given so far are already open or absolute. */
    if (chdir_root && chdir("/") < 0) {
        /* "/" always exists; nothing sensible to do otherwise. */
    }
    devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        if (devnull > STDERR_FILENO) {
            close(devnull);
        }
    }
    if (write(ready_fd, "", 1) != 1) {
        /* The parent is gone; the server runs on regardless. */
    }
    close(ready_fd);
    ready_fd = -1;
}

bool server_pidfile_write(const char *path, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *absdir = realpath(dir, NULL);
    char buf[32];
    int fd;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        qblk_error_set_errno(errp, errno, "Could not create '%s'", path);
        return false;
    }
    if (lockf(fd, F_TLOCK, 0) < 0) {
        qblk_error_set_errno(errp, errno, "Cannot lock pid file");
        close(fd);
        return false;
    }
    snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf)) {
        qblk_error_set_errno(errp, errno, "Failed to write PID file");
        close(fd);
        return false;
    }
    pidfile_fd = fd;
    pidfile_path = absdir ? g_build_filename(absdir, base, NULL) : g_strdup(path);
    return true;
}

void server_pidfile_remove(void)
{
    if (pidfile_path) {
        unlink(pidfile_path);
        g_clear_pointer(&pidfile_path, g_free);
        close(pidfile_fd);
        pidfile_fd = -1;
    }
}

static void (*stop_callback)(void);

static gboolean on_stop_signal(gpointer opaque)
{
    stop_callback();
    return G_SOURCE_CONTINUE;
}

void server_process_stop_signals(void (*stop)(void))
{
    stop_callback = stop;
    signal(SIGPIPE, SIG_IGN);
    g_unix_signal_add(SIGTERM, on_stop_signal, NULL);
    g_unix_signal_add(SIGINT, on_stop_signal, NULL);
    g_unix_signal_add(SIGHUP, on_stop_signal, NULL);
}
