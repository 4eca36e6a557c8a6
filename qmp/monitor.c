/* The QMP monitor: listening unix sockets, one monitor per connected
 * client (greeting, its own negotiation state, its own queue of requests
 * run one at a time in order, each in a new coroutine), non-blocking
 * output with a buffer, and events to every negotiated client.
 *
 * Lifetime: a client is referenced by its connection and by the command
 * coroutine running for it. A client that disconnects mid-command is
 * closed at once; the command finishes and its reply is dropped; the
 * memory goes when the last reference does. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>

#include "qmp/dispatch.h"
#include "qmp/json-parse.h"
#include "qmp/monitor.h"
#include "util/main-loop.h"
#include "util/sockets.h"

/* A client may have this many parsed requests waiting before the monitor
 * stops reading from it (QEMU's queue length), or this much unsent
 * output; reading resumes when both drop. Memory per client stays bounded
 * by these and the splitter's limits. */
#define QMP_MAX_QUEUED_REQUESTS 8
#define QMP_MAX_PENDING_OUTPUT  (1u << 20)
/* Events keep coming to a client that stopped reading altogether; past
 * this much unsent output it is dropped rather than let grow without end. */
#define QMP_MAX_UNREAD_OUTPUT   (64u << 20)

typedef struct QmpChardev {
    char *id;
    char *path;
    int fd;
    bool monitored;                /* a monitor is attached */
    guint watch;                   /* accepting clients */
} QmpChardev;

/* Clients are accepted only once qmp_monitors_start() ran: until then the
 * daemon is still opening the command line's nodes (in coroutines, with
 * the loop running), and a command must not see a node half opened. */
static bool monitors_started;

typedef struct QmpRequest {
    QblkJson *value;
    GError *err;
} QmpRequest;

typedef struct QmpClient {
    int refcnt;
    int fd;                        /* -1 once disconnected */
    guint in_watch, out_watch;
    QmpSession session;
    QmpJsonSplitter *splitter;
    GQueue requests;               /* QmpRequest* */
    bool busy;                     /* a command coroutine runs for it */
    GString *out;
} QmpClient;

static GPtrArray *chardevs;        /* QmpChardev* */
static GList *clients;             /* connected QmpClient* */
static bool shutdown_requested;

static void client_update_reading(QmpClient *c);
static void client_kick(QmpClient *c);

/* ----- Client lifetime ----- */

static void request_free(QmpRequest *r)
{
    qblk_json_free(r->value);
    if (r->err) {
        g_error_free(r->err);
    }
    g_free(r);
}

static void client_unref(QmpClient *c)
{
    if (--c->refcnt > 0) {
        return;
    }
    g_assert(c->fd < 0);
    g_queue_clear_full(&c->requests, (GDestroyNotify)request_free);
    g_string_free(c->out, TRUE);
    g_free(c);
}

static void client_disconnect(QmpClient *c)
{
    if (c->fd < 0) {
        return;
    }
    if (c->in_watch) {
        g_source_remove(c->in_watch);
        c->in_watch = 0;
    }
    if (c->out_watch) {
        g_source_remove(c->out_watch);
        c->out_watch = 0;
    }
    close(c->fd);
    c->fd = -1;
    qmp_json_splitter_free(c->splitter);
    c->splitter = NULL;
    g_queue_clear_full(&c->requests, (GDestroyNotify)request_free);
    g_string_truncate(c->out, 0);
    clients = g_list_remove(clients, c);
    client_unref(c);
}

/* ----- Output ----- */

/* Writes as much buffered output as the socket takes. Returns false if
 * the client is gone. */
static bool client_flush(QmpClient *c)
{
    while (c->out->len) {
        ssize_t n = send(c->fd, c->out->str, c->out->len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n <= 0) {
            client_disconnect(c);
            return false;
        }
        g_string_erase(c->out, 0, n);
    }
    return true;
}

static gboolean client_writable(gint fd, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;
    gboolean ret = G_SOURCE_REMOVE;   /* also when client_disconnect removed it */

    c->refcnt++;
    if (client_flush(c)) {
        if (c->out->len) {
            ret = G_SOURCE_CONTINUE;
        } else {
            c->out_watch = 0;
            client_update_reading(c);
        }
    }
    client_unref(c);
    return ret;
}

/* One message: compact JSON and CRLF, as QEMU sends them. */
static void client_send(QmpClient *c, const QblkJson *msg)
{
    g_autofree char *text = NULL;

    if (c->fd < 0) {
        return;
    }
    text = qblk_json_to_string(msg, false);
    g_string_append(c->out, text);
    g_string_append(c->out, "\r\n");
    if (c->out->len > QMP_MAX_UNREAD_OUTPUT) {
        client_disconnect(c);
        return;
    }
    if (c->out_watch || !client_flush(c)) {
        return;
    }
    if (c->out->len) {
        c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, client_writable, c);
        client_update_reading(c);
    }
}

/* ----- Input and requests ----- */

static void client_take_message(void *opaque, QblkJson *value, GError *err)
{
    QmpClient *c = opaque;
    QmpRequest *r = g_new0(QmpRequest, 1);

    r->value = value;
    r->err = err;
    g_queue_push_tail(&c->requests, r);
}

/* The watch is removed, when it must be, by client_update_reading or
 * client_disconnect (GLib allows that during dispatch), so this always
 * answers CONTINUE. */
static gboolean client_readable(gint fd, GIOCondition cond, gpointer opaque)
{
    QmpClient *c = opaque;
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);

    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    c->refcnt++;
    if (n <= 0) {
        client_disconnect(c);
    } else {
        qmp_json_splitter_feed(c->splitter, buf, n);
        client_kick(c);
    }
    client_unref(c);
    return G_SOURCE_CONTINUE;
}

/* Reads from the client only while its queue and output have room. */
static void client_update_reading(QmpClient *c)
{
    bool want = c->fd >= 0 && c->requests.length < QMP_MAX_QUEUED_REQUESTS &&
                c->out->len < QMP_MAX_PENDING_OUTPUT;

    if (want && !c->in_watch) {
        c->in_watch = g_unix_fd_add(c->fd, G_IO_IN, client_readable, c);
    } else if (!want && c->in_watch) {
        g_source_remove(c->in_watch);
        c->in_watch = 0;
    }
}

static void client_kick_bh(void *opaque);

static void coroutine_fn client_co_run_request(void *opaque)
{
    QmpClient *c = opaque;
    QmpRequest *r = g_queue_pop_head(&c->requests);
    QblkJson *reply = qmp_co_dispatch(&c->session, r->value, r->err);

    g_free(r);
    /* Dropped if the client went away meanwhile. */
    client_send(c, reply);
    qblk_json_free(reply);
    c->busy = false;
    /* The next request starts from the loop, not inside this coroutine;
     * the bottom half takes over this coroutine's reference. */
    qblk_bh_schedule(client_kick_bh, c);
}

/* Starts the next queued request if none runs. Holds a reference for the
 * coroutine; a call from the bottom half above drops that one's. */
static void client_kick_ref(QmpClient *c, bool from_bh)
{
    if (c->fd >= 0 && !c->busy && c->requests.length) {
        c->busy = true;
        c->refcnt++;
        qco_enter(qco_create(client_co_run_request, c));
    }
    if (c->fd >= 0) {
        client_update_reading(c);
    }
    if (from_bh) {
        client_unref(c);
    }
}

static void client_kick(QmpClient *c)
{
    client_kick_ref(c, false);
}

static void client_kick_bh(void *opaque)
{
    client_kick_ref(opaque, true);
}

/* ----- Accepting clients ----- */

static void client_greet(QmpClient *c)
{
    g_autoptr(QblkJson) greeting = qblk_json_object();
    QblkJson *qmp = qblk_json_set(greeting, "QMP", qblk_json_object());
    QblkJson *caps = qblk_json_array();

    qblk_json_set(qmp, "version", qmp_version_info());
    qblk_json_append(caps, qblk_json_string("oob"));
    qblk_json_set(qmp, "capabilities", caps);
    client_send(c, greeting);
}

static gboolean chardev_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    QmpClient *c;

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;   /* EAGAIN, ECONNABORTED, EMFILE: try again later */
    }
    c = g_new0(QmpClient, 1);
    c->refcnt = 1;
    c->fd = cfd;
    c->out = g_string_new(NULL);
    c->splitter = qmp_json_splitter_new(client_take_message, c);
    g_queue_init(&c->requests);
    clients = g_list_append(clients, c);
    /* The greeting may find the client gone already (and disconnect it). */
    c->refcnt++;
    client_greet(c);
    if (c->fd >= 0) {
        client_update_reading(c);
    }
    client_unref(c);
    return G_SOURCE_CONTINUE;
}

static QmpChardev *chardev_find(const char *id)
{
    for (guint i = 0; chardevs && i < chardevs->len; i++) {
        QmpChardev *cd = chardevs->pdata[i];
        if (!strcmp(cd->id, id)) {
            return cd;
        }
    }
    return NULL;
}

bool qmp_chardev_add_socket(const char *id, const char *path, GError **errp)
{
    QmpChardev *cd;
    int fd;

    if (chardev_find(id)) {
        /* qemu-storage-daemon 7.2's words for a duplicate id. */
        qblk_error_set(errp, "duplicate yank instance");
        return false;
    }
    fd = qblk_listen_unix(path, 1, errp);
    if (fd < 0) {
        return false;
    }
    if (!chardevs) {
        chardevs = g_ptr_array_new();
    }
    cd = g_new0(QmpChardev, 1);
    cd->id = g_strdup(id);
    /* Absolute, so that removal at exit works after --daemonize's chdir. */
    cd->path = g_canonicalize_filename(path, NULL);
    cd->fd = fd;
    g_ptr_array_add(chardevs, cd);
    return true;
}

bool qmp_monitor_add(const char *chardev_id, GError **errp)
{
    QmpChardev *cd = chardev_find(chardev_id);

    if (!cd) {
        qblk_error_set(errp, "chardev \"%s\" not found", chardev_id);
        return false;
    }
    if (cd->monitored) {
        qblk_error_set(errp, "Device '%s' is in use", chardev_id);
        return false;
    }
    qmp_schema_finish();
    cd->monitored = true;
    if (monitors_started) {
        cd->watch = g_unix_fd_add(cd->fd, G_IO_IN, chardev_accept, cd);
    }
    return true;
}

void qmp_monitors_start(void)
{
    monitors_started = true;
    for (guint i = 0; chardevs && i < chardevs->len; i++) {
        QmpChardev *cd = chardevs->pdata[i];

        if (cd->monitored && !cd->watch) {
            cd->watch = g_unix_fd_add(cd->fd, G_IO_IN, chardev_accept, cd);
        }
    }
}

/* ----- Events ----- */

void qmp_event_emit(const char *name, QblkJson *data)
{
    g_autoptr(QblkJson) event = qblk_json_object();
    QblkJson *ts = qblk_json_object();
    gint64 now = g_get_real_time();

    qblk_json_set_int(ts, "seconds", now / G_USEC_PER_SEC);
    qblk_json_set_int(ts, "microseconds", now % G_USEC_PER_SEC);
    qblk_json_set(event, "timestamp", ts);
    qblk_json_set_str(event, "event", name);
    if (data) {
        qblk_json_set(event, "data", data);
    }
    /* client_send may disconnect a client: walk a copy of the list. */
    g_autoptr(GList) targets = g_list_copy(clients);
    for (GList *l = targets; l; l = l->next) {
        QmpClient *c = l->data;
        if (c->session.negotiated) {
            client_send(c, event);
        }
    }
}

/* ----- Shutdown ----- */

void qmp_request_shutdown(void)
{
    shutdown_requested = true;
}

bool qmp_shutdown_requested(void)
{
    return shutdown_requested;
}

void qmp_monitor_close_all(void)
{
    gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC;

    /* quit's reply is in the output: give each client up to a second in
     * all to take what is left. */
    while (clients) {
        QmpClient *c = clients->data;
        struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
        gint64 left = deadline - g_get_monotonic_time();
        if (c->out->len && left > 0 && client_flush(c) && c->out->len) {
            poll(&pfd, 1, left / 1000 + 1);
            continue;
        }
        if (c->fd >= 0) {
            client_disconnect(c);
        }
    }
    for (guint i = 0; chardevs && i < chardevs->len; i++) {
        QmpChardev *cd = chardevs->pdata[i];
        if (cd->watch) {
            g_source_remove(cd->watch);
        }
        close(cd->fd);
        unlink(cd->path);
        g_free(cd->id);
        g_free(cd->path);
        g_free(cd);
    }
    g_clear_pointer(&chardevs, g_ptr_array_unref);
}
