/* Internal header of the "nbd" protocol driver (libnbd client): the
 * server address, the connection pool and the request helpers shared by
 * nbd.c (table, open/close), nbd-addr.c (filenames and options),
 * nbd-conn.c (connections on the event loop) and nbd-io.c (requests). */
#ifndef QBLK_BLOCK_NBD_H
#define QBLK_BLOCK_NBD_H

#include <libnbd.h>
#include "qblk/block_int.h"
#include "util/coroutine.h"

/* At most this many connections when the server offers multi-conn. */
#define NBD_MAX_CONNS 4
/* Largest read/write per command (QEMU's servers refuse more). */
#define NBD_MAX_TRANSFER (32 * 1024 * 1024)
/* Largest zero/trim/status length: the protocol's lengths are 32-bit;
 * 1 GiB keeps every power-of-two alignment. */
#define NBD_MAX_STATUS_LEN (1024 * 1024 * 1024)
/* Reads from this size on ask base:allocation first and skip zeroes. */
#define NBD_SPARSE_READ_MIN (64 * 1024)

typedef enum NbdAddrType {
    NBD_ADDR_NONE,
    NBD_ADDR_UNIX,
    NBD_ADDR_INET,
} NbdAddrType;

/* Where the export is, as the options name it. */
typedef struct NbdAddr {
    NbdAddrType type;
    char *path;                 /* unix */
    char *host, *port;          /* inet */
    char *export;               /* "" by default */
} NbdAddr;

typedef struct NbdState NbdState;

/* One libnbd handle driven by the event loop: a GLib fd watch follows
 * libnbd's wanted direction, and completions wake the waiting
 * coroutines from inside nbd_aio_notify_*(). */
typedef struct NbdConn {
    NbdState *s;
    struct nbd_handle *h;       /* NULL while disconnected */
    int fd;
    guint watch;                /* GSource id, 0 when none */
    unsigned watch_cond;        /* GIOCondition of watch */
    Coroutine *connect_waiter;  /* the coroutine running a (re)connection */
    guint connect_timer;        /* bounds the attempt (GSource id, 0: none) */
    bool connect_timed_out;
    bool connecting;            /* a (re)connection is in progress */
    CoQueue reconnect_waiters;  /* requests waiting for it */
    unsigned in_flight;
    /* A pool connection (not the first) that broke is tried again once
     * per reconnection of the first: the generation of its last try. */
    unsigned generation;
} NbdConn;

struct NbdState {
    NbdAddr addr;
    int64_t reconnect_delay_ns;
    int64_t size;
    bool read_only;
    /* What the server offered at the first connection. */
    bool can_flush, can_fua, can_trim, can_zero, can_fast_zero;
    bool has_base_allocation;
    /* A write, zero write or trim was sent since the last flush began:
     * a flush without one has nothing to make durable, and would wait
     * for reconnect-delay when the server is gone. */
    bool unflushed;
    /* The last data range block status reported: reads inside it go
     * straight to the server (convert asks for status, then reads). */
    int64_t data_start, data_end;
    unsigned nb_conns;
    unsigned next_read_conn;    /* round robin over the pool */
    unsigned generation;        /* successful reconnections of the first */
    NbdConn conns[NBD_MAX_CONNS];
};

/* nbd-addr.c */
void nbd_addr_clear(NbdAddr *addr);
/* The driver's parse_filename: a URI (nbd://, nbd+tcp://, nbd+unix://)
 * or a legacy "nbd:" name into server.* and export options. */
bool nbd_parse_filename(const char *filename, QblkOpts *options, GError **errp);
/* Takes server.*, export and filename out of options into addr. */
bool nbd_addr_take(QblkOpts *options, NbdAddr *addr, GError **errp);
/* "nbd+unix:///EXPORT?socket=PATH" / "nbd://HOST:PORT/EXPORT", as QEMU names it. */
char *nbd_addr_to_uri(const NbdAddr *addr);
/* "/path" or "host:port", for "Failed to connect to '%s'". */
char *nbd_addr_to_string(const NbdAddr *addr);

/* nbd-conn.c */
/* Connects c (handshake included), yielding in the event loop meanwhile.
 * 0, or -errno with *errp set in QEMU's words. */
int coroutine_fn nbd_conn_co_connect(NbdConn *c, GError **errp);
/* Closes c's handle (sending NBD_CMD_DISC when it is still up). */
void nbd_conn_close(NbdConn *c);
/* Whether c can take requests. */
bool nbd_conn_is_ready(const NbdConn *c);
/* Makes c ready again after its connection broke: reconnects, retrying
 * until reconnect-delay has passed (one attempt when it is 0); requests
 * arriving meanwhile wait for the same attempt. 0 or -EIO. */
int coroutine_fn nbd_conn_co_reconnect(NbdConn *c);
/* One attempt to bring back a broken pool connection, made when the
 * first connection has reconnected since c's last attempt. Whether c
 * is ready. */
bool coroutine_fn nbd_conn_co_revive(NbdConn *c);

/* One command in flight on a connection. */
typedef struct NbdCmd {
    Coroutine *co;
    bool done, waiting;
    int err;                    /* errno from libnbd's completion */
    /* Block status: the first extent (length 0 until received), and
     * when extents is set, all of them as (length, flags) pairs. */
    uint32_t extent_len, extent_flags;
    GArray *extents;            /* of uint32_t */
} NbdCmd;

/* Completion callback for NbdCmd (user_data = the NbdCmd). */
int nbd_cmd_complete(void *user_data, int *error);
/* After submitting a command on c (cookie from nbd_aio_*): updates the
 * watch and waits for the completion. Returns 0 or -errno. */
int coroutine_fn nbd_conn_co_wait(NbdConn *c, NbdCmd *cmd, int64_t cookie);

/* nbd-io.c: the driver's request callbacks. */
int coroutine_fn nbd_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn nbd_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn nbd_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags);
int coroutine_fn nbd_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes);
int coroutine_fn nbd_co_flush(BlockDriverState *bs);
int coroutine_fn nbd_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file);

#endif
