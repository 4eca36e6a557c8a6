/* One libnbd connection on qblk's event loop: non-blocking connect and
 * handshake, a GLib fd watch that follows nbd_aio_get_direction(),
 * completions that wake the waiting coroutine, and reconnection bounded
 * by reconnect-delay. */
#include <errno.h>
#include <string.h>
#include <glib-unix.h>
#include "block/drivers/nbd.h"
#include "util/main-loop.h"

/* Pause between two connection attempts while reconnecting. */
#define NBD_RECONNECT_PAUSE_NS (100 * 1000 * 1000LL)
/* Bound on one connection attempt, handshake included: a server that
 * accepts and never answers (or a host that drops the SYNs) must not
 * hang the open. */
#define NBD_CONNECT_TIMEOUT_NS (15 * 1000 * 1000 * 1000LL)

static void nbd_conn_update_watch(NbdConn *c);

static gboolean nbd_conn_fd_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    NbdConn *c = opaque;
    Coroutine *waiter = c->connect_waiter;

    /* The watch is replaced below whatever libnbd wants next. */
    c->watch = 0;
    c->watch_cond = 0;
    if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
        nbd_aio_notify_read(c->h);
    }
    if ((cond & G_IO_OUT) && c->h && !nbd_aio_is_dead(c->h) && !nbd_aio_is_closed(c->h)) {
        nbd_aio_notify_write(c->h);
    }
    /* Errors surface through the completions (ENOTCONN for commands in
     * flight when the connection dies) and through the handle's state. */
    nbd_conn_update_watch(c);
    if (waiter) {
        c->connect_waiter = NULL;
        qco_wake(waiter);
    }
    return G_SOURCE_REMOVE;
}

static void nbd_conn_remove_watch(NbdConn *c)
{
    if (c->watch) {
        g_source_remove(c->watch);
        c->watch = 0;
        c->watch_cond = 0;
    }
}

/* Keeps one watch on the socket for the direction libnbd waits for. */
static void nbd_conn_update_watch(NbdConn *c)
{
    unsigned dir, cond = 0;
    int fd;

    if (!c->h || nbd_aio_is_dead(c->h) || nbd_aio_is_closed(c->h)) {
        nbd_conn_remove_watch(c);
        return;
    }
    fd = nbd_aio_get_fd(c->h);
    dir = nbd_aio_get_direction(c->h);
    if (dir & LIBNBD_AIO_DIRECTION_READ) {
        cond |= G_IO_IN;
    }
    if (dir & LIBNBD_AIO_DIRECTION_WRITE) {
        cond |= G_IO_OUT;
    }
    if (fd < 0 || !cond) {
        nbd_conn_remove_watch(c);
        return;
    }
    if (c->watch && c->watch_cond == cond && c->fd == fd) {
        return;
    }
    nbd_conn_remove_watch(c);
    c->fd = fd;
    c->watch_cond = cond;
    c->watch = g_unix_fd_add(fd, cond | G_IO_HUP | G_IO_ERR, nbd_conn_fd_ready, c);
}

bool nbd_conn_is_ready(const NbdConn *c)
{
    return c->h && nbd_aio_is_ready(c->h) + nbd_aio_is_processing(c->h) > 0;
}

/* libnbd's message for a failed handshake, in QEMU's words where QEMU
 * has its own: a refused export name, a refused connection. */
static void nbd_conn_set_error(NbdConn *c, int err, const char *msg, GError **errp)
{
    g_autofree char *where = nbd_addr_to_string(&c->s->addr);

    if (msg && strstr(msg, "server has no export named")) {
        qblk_error_set(errp, "Requested export not available\n"
                       "server reported: export '%s' not present", c->s->addr.export);
    } else if (err) {
        qblk_error_set(errp, "Failed to connect to '%s': %s", where, g_strerror(err));
    } else {
        qblk_error_set(errp, "Failed to connect to '%s': %s", where,
                       msg ? msg : "connection closed during handshake");
    }
}

static void nbd_conn_connect_timeout(void *opaque)
{
    NbdConn *c = opaque;
    Coroutine *waiter = c->connect_waiter;

    c->connect_timer = 0;
    c->connect_timed_out = true;
    if (waiter) {
        c->connect_waiter = NULL;
        qco_wake(waiter);
    }
}

int coroutine_fn nbd_conn_co_connect(NbdConn *c, GError **errp)
{
    const NbdAddr *addr = &c->s->addr;
    struct nbd_handle *h = nbd_create();
    int rc, err;
    g_autofree char *msg = NULL;

    if (!h) {
        qblk_error_set(errp, "%s", nbd_get_error());
        return -ENOMEM;
    }
    if (nbd_set_export_name(h, addr->export) < 0 ||
        nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) {
        qblk_error_set(errp, "%s", nbd_get_error());
        nbd_close(h);
        return -EINVAL;
    }
    c->h = h;
    if (addr->type == NBD_ADDR_UNIX) {
        rc = nbd_aio_connect_unix(h, addr->path);
    } else {
        rc = nbd_aio_connect_tcp(h, addr->host, addr->port);
    }
    /* The handshake runs in the loop; nbd_conn_fd_ready wakes us on
     * each step. libnbd's last error is per thread: catch it as soon as
     * the handle stops connecting. */
    c->connect_timed_out = false;
    c->connect_timer = qblk_timer_add_ns(NBD_CONNECT_TIMEOUT_NS, nbd_conn_connect_timeout, c);
    while (rc >= 0 && nbd_aio_is_connecting(h) && !c->connect_timed_out) {
        nbd_conn_update_watch(c);
        if (!c->watch) {
            break;
        }
        c->connect_waiter = qco_self();
        qco_yield();
    }
    c->connect_waiter = NULL;
    if (c->connect_timer) {
        g_source_remove(c->connect_timer);
        c->connect_timer = 0;
    }
    if (c->connect_timed_out) {
        g_autofree char *where = nbd_addr_to_string(&c->s->addr);

        nbd_conn_remove_watch(c);
        nbd_close(h);
        c->h = NULL;
        qblk_error_set(errp, "Failed to connect to '%s': %s", where, g_strerror(ETIMEDOUT));
        return -ETIMEDOUT;
    }
    if (rc >= 0 && nbd_aio_is_ready(h)) {
        nbd_conn_update_watch(c);
        return 0;
    }
    err = nbd_get_errno();
    msg = g_strdup(nbd_get_error());
    nbd_conn_remove_watch(c);
    nbd_close(h);
    c->h = NULL;
    nbd_conn_set_error(c, err == ENOTCONN ? 0 : err, msg, errp);
    return err ? -err : -EIO;
}

void nbd_conn_close(NbdConn *c)
{
    nbd_conn_remove_watch(c);
    if (c->h) {
        /* Queues NBD_CMD_DISC (sent now if the socket takes it) without
         * waiting for the server, which may be gone. */
        if (nbd_aio_is_ready(c->h)) {
            nbd_aio_disconnect(c->h, 0);
        }
        nbd_close(c->h);
        c->h = NULL;
    }
}

/* Connects c again: 0, a failed connection's -errno, or -ESTALE when the server has another export now (it shrank, grew or
 * was replaced), which stays closed: requests fail rather than read or
 * write the wrong bytes. */
static int coroutine_fn nbd_conn_co_reopen(NbdConn *c)
{
    int ret;

    nbd_conn_close(c);
    ret = nbd_conn_co_connect(c, NULL);
    if (ret < 0) {
        return ret;
    }
    if (nbd_get_size(c->h) != c->s->size) {
        nbd_conn_close(c);
        return -ESTALE;
    }
    return 0;
}

int coroutine_fn nbd_conn_co_reconnect(NbdConn *c)
{
    int64_t deadline = qblk_clock_ns() + c->s->reconnect_delay_ns;

    if (nbd_conn_is_ready(c)) {
        return 0;
    }
    if (c->connecting) {
        qco_queue_wait(&c->reconnect_waiters, NULL);
        return nbd_conn_is_ready(c) ? 0 : -EIO;
    }
    c->connecting = true;
    for (;;) {
        int ret = nbd_conn_co_reopen(c);
        int64_t now;

        if (ret == 0 || ret == -ESTALE) {
            break;
        }
        now = qblk_clock_ns();
        if (now >= deadline) {
            break;
        }
        qco_sleep_ns(MIN(NBD_RECONNECT_PAUSE_NS, deadline - now));
    }
    c->connecting = false;
    qco_queue_restart_all(&c->reconnect_waiters);
    if (!nbd_conn_is_ready(c)) {
        return -EIO;
    }
    if (c == &c->s->conns[0]) {
        c->s->generation++;
    }
    return 0;
}

bool coroutine_fn nbd_conn_co_revive(NbdConn *c)
{
    NbdState *s = c->s;
    bool ok;

    if (nbd_conn_is_ready(c)) {
        return true;
    }
    /* The server is back when the first connection is: otherwise each
     * read would wait for a connection attempt of its own. */
    if (c->connecting || c->generation == s->generation || !nbd_conn_is_ready(&s->conns[0])) {
        return false;
    }
    c->generation = s->generation;
    c->connecting = true;
    ok = nbd_conn_co_reopen(c) == 0;
    c->connecting = false;
    qco_queue_restart_all(&c->reconnect_waiters);
    return ok;
}

int nbd_cmd_complete(void *user_data, int *error)
{
    NbdCmd *cmd = user_data;

    cmd->err = *error;
    cmd->done = true;
    if (cmd->waiting) {
        qco_wake(cmd->co);
    }
    return 1;                   /* retire the command */
}

int coroutine_fn nbd_conn_co_wait(NbdConn *c, NbdCmd *cmd, int64_t cookie)
{
    if (cookie < 0) {
        int err = nbd_get_errno();

        return -(err ? err : EIO);
    }
    c->in_flight++;
    nbd_conn_update_watch(c);
    while (!cmd->done) {
        cmd->waiting = true;
        qco_yield();
        cmd->waiting = false;
    }
    c->in_flight--;
    return cmd->err ? -cmd->err : 0;
}
