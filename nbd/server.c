/* The NBD server: listening socket, exports by name, per-client coroutine
 * socket I/O and the fixed-newstyle handshake (options up to GO or
 * EXPORT_NAME). Commands are served by transmission.c. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>
#include "nbd/internal.h"
#include "util/error.h"
#include "util/main-loop.h"
#include "util/sockets.h"

/* ----- Coroutine socket I/O ----- */

static gboolean fd_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    qco_wake(opaque);
    return G_SOURCE_REMOVE;
}

/* Parks the coroutine until fd is ready for cond (or hung up). */
static void coroutine_fn wait_fd(int fd, GIOCondition cond)
{
    g_unix_fd_add(fd, cond | G_IO_HUP | G_IO_ERR, fd_ready, qco_self());
    qco_yield();
}

int coroutine_fn nbd_co_recv(NbdClient *c, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = recv(c->fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= n;
        } else if (n == 0) {
            return -EPIPE;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wait_fd(c->fd, G_IO_IN);
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

int coroutine_fn nbd_co_send(NbdClient *c, const void *head, size_t head_len,
                             const void *data, size_t data_len)
{
    struct iovec iov[2] = {
        { (void *)head, head_len },
        { (void *)data, data ? data_len : 0 },
    };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

    while (iov[0].iov_len || iov[1].iov_len) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wait_fd(c->fd, G_IO_OUT);
                continue;
            }
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        for (int i = 0; i < 2 && n; i++) {
            size_t k = MIN((size_t)n, iov[i].iov_len);
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= k;
        }
        if (!iov[0].iov_len) {      /* skip the empty first entry */
            msg.msg_iov = &iov[1];
            msg.msg_iovlen = 1;
        }
    }
    return 0;
}

/* ----- Exports ----- */

NbdExport *nbd_export_find(NbdServer *srv, const char *name)
{
    return g_hash_table_lookup(srv->exports, name);
}

NbdExport *nbd_export_add(NbdServer *srv, BlockDriverState *bs,
                          const NbdExportOptions *opts, GError **errp)
{
    NbdExport *exp;
    int64_t len = bdrv_getlength(bs);

    if (strlen(opts->name) > NBD_MAX_STRING_SIZE) {
        qblk_error_set(errp, "export name '%s' too long", opts->name);
        return NULL;
    }
    if (opts->description && strlen(opts->description) > NBD_MAX_STRING_SIZE) {
        qblk_error_set(errp, "description '%s' too long", opts->description);
        return NULL;
    }
    if (nbd_export_find(srv, opts->name)) {
        qblk_error_set(errp, "NBD server already has export named '%s'", opts->name);
        return NULL;
    }
    if (opts->writable && bdrv_is_read_only(bs)) {
        qblk_error_set(errp, "Cannot export read-only node as writable");
        return NULL;
    }
    if (len < 0) {
        qblk_error_set_errno(errp, -len, "Failed to determine the NBD export's length");
        return NULL;
    }
    exp = g_new0(NbdExport, 1);
    exp->srv = srv;
    exp->name = g_strdup(opts->name);
    exp->description = g_strdup(opts->description);
    exp->writable = opts->writable;
    exp->allocation_depth = opts->allocation_depth;
    exp->writethrough = opts->writethrough;
    exp->copy_on_read = opts->copy_on_read;
    exp->deleted = opts->deleted;
    exp->opaque = opts->opaque;
    if (exp->copy_on_read) {
        bdrv_enable_copy_on_read(bs);
    }
    exp->reads_populate = exp->copy_on_read ||
                          g_strcmp0(bdrv_format_name(bs), "copy-on-read") == 0;
    exp->size = (uint64_t)len & ~511ULL;
    /* QED's request alignment is 512, raw's and qcow2's 1 (formats.md
     * §3.11); the block layer does not publish alignment otherwise. */
    exp->min_block = g_strcmp0(bdrv_format_name(bs), "qed") == 0 ? 512 : 1;
    bdrv_ref(bs);
    exp->bs = bs;
    g_hash_table_insert(srv->exports, exp->name, exp);
    return exp;
}

GList *nbd_server_exports(NbdServer *srv)
{
    return g_hash_table_get_values(srv->exports);
}

const char *nbd_export_name(NbdExport *exp)
{
    return exp->name;
}

BlockDriverState *nbd_export_bs(NbdExport *exp)
{
    return exp->bs;
}

bool nbd_export_in_use(NbdExport *exp)
{
    return exp->users > 0;
}

/* Export removal may come from a coroutine (a QMP handler, the last
 * client's own coroutine) or from main(). */
static void export_free(NbdExport *exp)
{
    if (exp->copy_on_read) {
        bdrv_disable_copy_on_read(exp->bs);
    }
    if (qco_in_coroutine()) {
        bdrv_co_unref(exp->bs);
    } else {
        bdrv_unref(exp->bs);
    }
    if (exp->deleted) {
        exp->deleted(exp->opaque);
    }
    g_free(exp->name);
    g_free(exp->description);
    g_free(exp);
}

void nbd_export_remove(NbdExport *exp)
{
    NbdServer *srv = exp->srv;

    g_hash_table_steal(srv->exports, exp->name);
    exp->removed = true;
    for (GList *l = srv->clients; l; l = l->next) {
        NbdClient *c = l->data;
        if (c->exp == exp) {
            shutdown(c->fd, SHUT_RDWR);     /* its coroutine ends and lets go */
        }
    }
    if (!exp->users) {
        export_free(exp);
    }
}

uint16_t nbd_export_tx_flags(NbdExport *exp, NbdClient *c)
{
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                     NBD_FLAG_SEND_CACHE;

    if (exp->writable) {
        flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    } else {
        flags |= NBD_FLAG_READ_ONLY;
    }
    if (c->structured) {
        flags |= NBD_FLAG_SEND_DF;
    }
    /* Every connection shares the one node in this process, so a flush
     * on any covers the writes acknowledged on all of them. */
    if (exp->srv->opts.max_connections != 1) {
        flags |= NBD_FLAG_CAN_MULTI_CONN;
    }
    return flags;
}

/* ----- Handshake ----- */

static int coroutine_fn send_rep(NbdClient *c, uint32_t opt, uint32_t type,
                                 const void *data, uint32_t len)
{
    uint8_t h[20];

    nbd_put64(h, NBD_REP_MAGIC);
    nbd_put32(h + 8, opt);
    nbd_put32(h + 12, type);
    nbd_put32(h + 16, len);
    return nbd_co_send(c, h, sizeof(h), data, len);
}

static int coroutine_fn send_rep_err(NbdClient *c, uint32_t opt, uint32_t type,
                                     const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static int coroutine_fn send_rep_err(NbdClient *c, uint32_t opt, uint32_t type,
                                     const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return send_rep(c, opt, type, msg, strlen(msg));
}

static int coroutine_fn send_rep_server(NbdClient *c, NbdExport *exp)
{
    size_t nlen = strlen(exp->name), dlen = exp->description ? strlen(exp->description) : 0;
    g_autofree uint8_t *p = g_malloc(4 + nlen + dlen);

    nbd_put32(p, nlen);
    memcpy(p + 4, exp->name, nlen);
    if (dlen) {
        memcpy(p + 4 + nlen, exp->description, dlen);
    }
    return send_rep(c, NBD_OPT_LIST, NBD_REP_SERVER, p, 4 + nlen + dlen);
}

static int coroutine_fn send_info(NbdClient *c, uint32_t opt, uint16_t type,
                                  const void *data, size_t len)
{
    g_autofree uint8_t *p = g_malloc(2 + len);

    nbd_put16(p, type);
    memcpy(p + 2, data, len);
    return send_rep(c, opt, NBD_REP_INFO, p, 2 + len);
}

/* A name given as u32 length + bytes at *pos within len; NULL (and an
 * ERR_INVALID sent, result in *ret) when it does not fit or is too long. */
static char *coroutine_fn take_name(NbdClient *c, uint32_t opt, const uint8_t *data,
                                    uint32_t len, uint32_t *pos, int *ret)
{
    uint32_t nlen;

    if (len - *pos < 4) {
        *ret = send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option length mismatch");
        return NULL;
    }
    nlen = nbd_get32(data + *pos);
    *pos += 4;
    if (nlen > len - *pos) {
        *ret = send_rep_err(c, opt, NBD_REP_ERR_INVALID, "name length is incorrect");
        return NULL;
    }
    if (nlen > NBD_MAX_STRING_SIZE) {
        *ret = send_rep_err(c, opt, NBD_REP_ERR_INVALID, "name too long");
        return NULL;
    }
    *pos += nlen;
    return g_strndup((const char *)data + *pos - nlen, nlen);
}

/* INFO and GO. Returns 1 when GO succeeded (transmission starts), 0 to
 * keep haggling, -errno to drop the client. */
static int coroutine_fn opt_info_go(NbdClient *c, uint32_t opt, const uint8_t *data,
                                    uint32_t len)
{
    uint32_t pos = 0;
    int ret = 0;
    g_autofree char *name = take_name(c, opt, data, len, &pos, &ret);
    bool want_name = false, want_block = false;
    NbdExport *exp;
    uint8_t buf[14];
    uint32_t min;
    uint16_t n;

    if (!name) {
        return ret;
    }
    if (len - pos < 2) {
        return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option length mismatch");
    }
    n = nbd_get16(data + pos);
    pos += 2;
    if (len - pos != 2u * n) {
        return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "request data length mismatch");
    }
    for (uint16_t i = 0; i < n; i++) {
        uint16_t item = nbd_get16(data + pos + 2 * i);
        want_name |= item == NBD_INFO_NAME;
        want_block |= item == NBD_INFO_BLOCK_SIZE;
    }
    exp = nbd_export_find(c->srv, name);
    if (!exp) {
        return send_rep_err(c, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present", name);
    }
    if (want_name && (ret = send_info(c, opt, NBD_INFO_NAME, name, strlen(name))) < 0) {
        return ret;
    }
    if (exp->description &&
        (ret = send_info(c, opt, NBD_INFO_DESCRIPTION, exp->description,
                         strlen(exp->description))) < 0) {
        return ret;
    }
    /* QEMU sends the block sizes always; the minimum is the node's
     * alignment only to a client that can honour it. */
    min = (want_block || opt == NBD_OPT_INFO) ? exp->min_block : 1;
    nbd_put32(buf, min);
    nbd_put32(buf + 4, MAX(4096, min));
    nbd_put32(buf + 8, NBD_MAX_BUFFER_SIZE);
    if ((ret = send_info(c, opt, NBD_INFO_BLOCK_SIZE, buf, 12)) < 0) {
        return ret;
    }
    nbd_put64(buf, exp->size);
    nbd_put16(buf + 8, nbd_export_tx_flags(exp, c));
    if ((ret = send_info(c, opt, NBD_INFO_EXPORT, buf, 10)) < 0) {
        return ret;
    }
    if (opt == NBD_OPT_INFO && !want_block && exp->min_block > 1) {
        return send_rep_err(c, opt, NBD_REP_ERR_BLOCK_SIZE_REQD,
                            "request NBD_INFO_BLOCK_SIZE to use this export");
    }
    if ((ret = send_rep(c, opt, NBD_REP_ACK, NULL, 0)) < 0) {
        return ret;
    }
    if (opt == NBD_OPT_GO) {
        c->exp = exp;
        return 1;
    }
    return 0;
}

/* Matches one meta context query against the export's contexts: sets
 * *base / *depth for what it names (exact names; LIST also namespace
 * wildcards). */
static void match_query(NbdExport *exp, const char *q, size_t qlen, bool list,
                        bool *base, bool *depth)
{
    if ((qlen == 15 && !memcmp(q, "base:allocation", 15)) ||
        (list && qlen == 5 && !memcmp(q, "base:", 5))) {
        *base = true;
    }
    if (exp->allocation_depth &&
        ((qlen == 21 && !memcmp(q, "qemu:allocation-depth", 21)) ||
         (list && qlen == 5 && !memcmp(q, "qemu:", 5)))) {
        *depth = true;
    }
}

static int coroutine_fn send_meta(NbdClient *c, uint32_t opt, uint32_t id, const char *name)
{
    size_t n = strlen(name);
    g_autofree uint8_t *p = g_malloc(4 + n);

    nbd_put32(p, id);
    memcpy(p + 4, name, n);
    return send_rep(c, opt, NBD_REP_META_CONTEXT, p, 4 + n);
}

static int coroutine_fn opt_meta(NbdClient *c, uint32_t opt, const uint8_t *data, uint32_t len)
{
    bool list = opt == NBD_OPT_LIST_META_CONTEXT, base = false, depth = false;
    uint32_t pos = 0, nq;
    int ret = 0;
    g_autofree char *name = NULL;
    NbdExport *exp;

    /* QEMU 7.2 lists contexts to any client; setting them needs
     * structured replies. */
    if (!list && !c->structured) {
        return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
                            "request option '%s' when structured reply is not negotiated",
                            list ? "list meta context" : "set meta context");
    }
    name = take_name(c, opt, data, len, &pos, &ret);
    if (!name) {
        return ret;
    }
    exp = nbd_export_find(c->srv, name);
    if (!exp) {
        return send_rep_err(c, opt, NBD_REP_ERR_UNKNOWN, "export '%s' not present", name);
    }
    if (len - pos < 4) {
        return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option length mismatch");
    }
    nq = nbd_get32(data + pos);
    pos += 4;
    if (list && nq == 0) {
        base = true;
        depth = exp->allocation_depth;
    }
    for (uint32_t i = 0; i < nq; i++) {
        uint32_t qlen;
        if (len - pos < 4 || (qlen = nbd_get32(data + pos)) > len - pos - 4) {
            return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option length mismatch");
        }
        pos += 4;
        if (qlen <= NBD_MAX_STRING_SIZE) {
            match_query(exp, (const char *)data + pos, qlen, list, &base, &depth);
        }
        pos += qlen;
    }
    if (pos != len) {
        return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "option length mismatch");
    }
    if (base && (ret = send_meta(c, opt, list ? 0 : NBD_META_ID_BASE_ALLOCATION,
                                 "base:allocation")) < 0) {
        return ret;
    }
    if (depth && (ret = send_meta(c, opt, list ? 0 : NBD_META_ID_ALLOCATION_DEPTH,
                                  "qemu:allocation-depth")) < 0) {
        return ret;
    }
    if (!list) {
        c->meta_base = base;
        c->meta_depth = depth;
        g_free(c->meta_export);
        c->meta_export = g_strdup(name);
    }
    return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
}

/* EXPORT_NAME: the old way into transmission, with no error reply. */
static int coroutine_fn opt_export_name(NbdClient *c, const uint8_t *data, uint32_t len)
{
    g_autofree char *name = NULL;
    NbdExport *exp;
    uint8_t buf[10 + 124] = { 0 };

    if (len > NBD_MAX_STRING_SIZE) {
        return -EINVAL;
    }
    name = g_strndup((const char *)data, len);
    exp = nbd_export_find(c->srv, name);
    if (!exp) {
        return -ENOENT;
    }
    nbd_put64(buf, exp->size);
    nbd_put16(buf + 8, nbd_export_tx_flags(exp, c));
    c->exp = exp;
    return nbd_co_send(c, buf, c->no_zeroes ? 10 : sizeof(buf), NULL, 0) < 0 ? -EPIPE : 1;
}

static const char *opt_name(uint32_t opt)
{
    switch (opt) {
    case NBD_OPT_PEEK_EXPORT: return "peek export";
    case NBD_OPT_STARTTLS: return "tls";
    default: return "<unknown>";
    }
}

/* One option. 1: transmission starts; 0: next option; < 0: drop. */
static int coroutine_fn handle_option(NbdClient *c, uint32_t opt, const uint8_t *data,
                                      uint32_t len)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return opt_export_name(c, data, len);
    case NBD_OPT_ABORT:
        send_rep(c, opt, NBD_REP_ACK, NULL, 0);
        return -ECONNABORTED;
    case NBD_OPT_LIST: {
        GHashTableIter it;
        gpointer v;
        int ret;
        if (len) {
            return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "no data expected");
        }
        g_hash_table_iter_init(&it, c->srv->exports);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
            if ((ret = send_rep_server(c, v)) < 0) {
                return ret;
            }
        }
        return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
    }
    case NBD_OPT_STARTTLS:
        return send_rep_err(c, opt, NBD_REP_ERR_POLICY, "TLS not configured");
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return opt_info_go(c, opt, data, len);
    case NBD_OPT_STRUCTURED_REPLY:
        if (len) {
            return send_rep_err(c, opt, NBD_REP_ERR_INVALID, "no data expected");
        }
        if (c->structured) {
            return send_rep_err(c, opt, NBD_REP_ERR_INVALID,
                                "structured reply already negotiated");
        }
        c->structured = true;
        return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        return opt_meta(c, opt, data, len);
    default:
        return send_rep_err(c, opt, NBD_REP_ERR_UNSUP, "Unsupported option %" G_GUINT32_FORMAT
                            " (%s)", opt, opt_name(opt));
    }
}

/* Greeting and options. 0: in transmission with c->exp; < 0: drop. */
static int coroutine_fn negotiate(NbdClient *c)
{
    uint8_t buf[18];
    uint32_t cflags;
    int ret;

    nbd_put64(buf, NBD_INIT_MAGIC);
    nbd_put64(buf + 8, NBD_OPTS_MAGIC);
    nbd_put16(buf + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if ((ret = nbd_co_send(c, buf, 18, NULL, 0)) < 0 || (ret = nbd_co_recv(c, buf, 4)) < 0) {
        return ret;
    }
    cflags = nbd_get32(buf);
    if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        return -EINVAL;
    }
    c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
    for (;;) {
        g_autofree uint8_t *data = NULL;
        uint32_t opt, len;

        if ((ret = nbd_co_recv(c, buf, 16)) < 0) {
            return ret;
        }
        if (nbd_get64(buf) != NBD_OPTS_MAGIC) {
            return -EINVAL;
        }
        opt = nbd_get32(buf + 8);
        len = nbd_get32(buf + 12);
        if (len > NBD_MAX_OPTION_SIZE) {
            return -EINVAL;
        }
        data = g_malloc(len ? len : 1);
        if ((ret = nbd_co_recv(c, data, len)) < 0) {
            return ret;
        }
        ret = handle_option(c, opt, data, len);
        if (ret < 0) {
            return ret;
        }
        if (ret == 1) {
            return 0;
        }
    }
}

/* ----- Clients ----- */

static void server_update_accepting(NbdServer *srv);

static void coroutine_fn client_co_run(void *opaque)
{
    NbdClient *c = opaque;
    NbdServer *srv = c->srv;
    NbdExport *exp;

    if (negotiate(c) == 0) {
        exp = c->exp;
        exp->users++;
        if (!exp->removed) {
            nbd_co_transmission(c);
        }
        if (--exp->users == 0 && exp->removed) {
            export_free(exp);
        }
    }
    close(c->fd);
    srv->clients = g_list_remove(srv->clients, c);
    srv->nclients--;
    g_free(c->meta_export);
    g_free(c);
    if (srv->stopping) {
        qco_queue_restart_all(&srv->stop_waiters);
        return;
    }
    server_update_accepting(srv);
    if (!srv->nclients && srv->opts.last_client_gone) {
        srv->opts.last_client_gone(srv->opts.opaque);
    }
}

static void client_start(NbdServer *srv, int cfd)
{
    NbdClient *c = g_new0(NbdClient, 1);

    c->srv = srv;
    c->fd = cfd;
    qco_mutex_init(&c->send_lock);
    qco_queue_init(&c->in_flight_queue);
    srv->clients = g_list_append(srv->clients, c);
    srv->nclients++;
    qco_enter(qco_create(client_co_run, c));
}

static gboolean server_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    NbdServer *srv = opaque;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;   /* EAGAIN, ECONNABORTED, EMFILE: try again later */
    }
    client_start(srv, cfd);
    server_update_accepting(srv);
    return G_SOURCE_CONTINUE;
}

void nbd_server_serve_fd(NbdServer *srv, int fd)
{
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    client_start(srv, fd);
}

/* At max-connections the server stops accepting: a further client waits
 * in the listen backlog until one leaves, as with QEMU. */
static void server_update_accepting(NbdServer *srv)
{
    bool full = srv->paused || (srv->opts.max_connections > 0 &&
                                srv->nclients >= (unsigned)srv->opts.max_connections);

    if (srv->listen_fd < 0) {
        return;
    }
    if (full && srv->accept_watch) {
        g_source_remove(srv->accept_watch);
        srv->accept_watch = 0;
    } else if (!full && !srv->accept_watch) {
        srv->accept_watch = g_unix_fd_add(srv->listen_fd, G_IO_IN, server_accept, srv);
    }
}

unsigned nbd_server_client_count(NbdServer *srv)
{
    return srv->nclients;
}

void nbd_server_set_accepting(NbdServer *srv, bool accepting)
{
    srv->paused = !accepting;
    server_update_accepting(srv);
}

/* ----- Listening ----- */

static int listen_inet(const char *host, const char *port, GError **errp)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res, *ai;
    int fd = -1, rc, err = 0;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        qblk_error_set(errp, "address resolution failed for %s:%s: %s",
                       host ? host : "", port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
            break;
        }
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        qblk_error_set_errno(errp, err, "Failed to bind socket");
    }
    return fd;
}

NbdServer *nbd_server_new_detached(const NbdServerOptions *opts)
{
    NbdServer *srv = g_new0(NbdServer, 1);

    qblk_loop_init();
    srv->opts = *opts;
    srv->opts.unix_path = srv->opts.host = srv->opts.port = NULL;
    srv->listen_fd = -1;
    srv->exports = g_hash_table_new(g_str_hash, g_str_equal);
    qco_queue_init(&srv->stop_waiters);
    return srv;
}

NbdServer *nbd_server_start(const NbdServerOptions *opts, GError **errp)
{
    NbdServer *srv;
    int fd;

    qblk_loop_init();
    fd = opts->unix_path ? qblk_listen_unix(opts->unix_path, SOMAXCONN, errp)
                         : listen_inet(opts->host, opts->port ? opts->port : "10809", errp);
    if (fd < 0) {
        return NULL;
    }
    srv = nbd_server_new_detached(opts);
    srv->unix_path = g_strdup(opts->unix_path);
    srv->opts.unix_path = srv->unix_path;
    srv->listen_fd = fd;
    server_update_accepting(srv);
    return srv;
}

/* Stops accepting and asks every client to go (shutdown wakes its
 * coroutine, which finishes the requests in flight and frees it). */
static void server_begin_stop(NbdServer *srv)
{
    if (srv->accept_watch) {
        g_source_remove(srv->accept_watch);
        srv->accept_watch = 0;
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
        srv->listen_fd = -1;
    }
    srv->stopping = true;
    if (srv->unix_path) {
        unlink(srv->unix_path);
    }
    srv->opts.last_client_gone = NULL;
    for (GList *l = srv->clients; l; l = l->next) {
        shutdown(((NbdClient *)l->data)->fd, SHUT_RDWR);
    }
}

static void server_free(NbdServer *srv)
{
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, srv->exports);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        export_free(v);
    }
    g_hash_table_destroy(srv->exports);
    g_free(srv->unix_path);
    g_free(srv);
}

void nbd_server_stop(NbdServer *srv)
{
    server_begin_stop(srv);
    while (srv->clients) {
        qblk_loop_iterate(true);
    }
    server_free(srv);
}

void coroutine_fn nbd_co_server_stop(NbdServer *srv)
{
    server_begin_stop(srv);
    while (srv->clients) {
        qco_queue_wait(&srv->stop_waiters, NULL);
    }
    server_free(srv);
}
