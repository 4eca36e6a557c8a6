/* What nbd/server.c (sockets, exports, handshake) and nbd/transmission.c
 * (commands) share: the server, export and client objects. */
#ifndef QBLK_NBD_INTERNAL_H
#define QBLK_NBD_INTERNAL_H

#include "nbd/nbd.h"
#include "nbd/nbd-proto.h"
#include "util/coroutine.h"

/* Requests served at once per client, as QEMU 7.2 (the receiver stops
 * reading while this many are in flight). */
#define NBD_MAX_IN_FLIGHT 16

struct NbdExport {
    NbdServer *srv;
    char *name;
    char *description;
    BlockDriverState *bs;
    bool writable;
    bool allocation_depth;
    bool writethrough;
    bool copy_on_read;
    /* Every READ must reach the node, holes included, because reading is
     * what fills an overlay: copy_on_read, or a copy-on-read filter node
     * exported (the daemon's guest copy-on-read). */
    bool reads_populate;
    bool removed;           /* no longer found by name */
    unsigned users;         /* clients in transmission on it */
    uint64_t size;          /* node size rounded down to 512, as QEMU */
    uint32_t min_block;     /* the node's request alignment */
    void (*deleted)(void *opaque);
    void *opaque;
};

struct NbdServer {
    NbdServerOptions opts;
    char *unix_path;
    int listen_fd;
    guint accept_watch;
    bool paused;            /* nbd_server_set_accepting(false) */
    GHashTable *exports;    /* name -> NbdExport */
    GList *clients;
    unsigned nclients;
    CoQueue stop_waiters;   /* nbd_co_server_stop waits for the clients */
    bool stopping;          /* a detached server has no listen_fd to tell it */
};

typedef struct NbdClient {
    NbdServer *srv;
    int fd;
    NbdExport *exp;
    bool structured;
    bool no_zeroes;
    bool meta_base;         /* base:allocation selected */
    bool meta_depth;        /* qemu:allocation-depth selected */
    char *meta_export;      /* the export SET_META_CONTEXT named */
    CoMutex send_lock;      /* one reply (or chunk) on the wire at a time */
    unsigned in_flight;
    CoQueue in_flight_queue;   /* the receiver waits here for a free slot */
} NbdClient;

/* Reads exactly len bytes; 0, or -errno (-EPIPE at end of stream). */
int coroutine_fn nbd_co_recv(NbdClient *c, void *buf, size_t len);
/* Sends head then data (data may be NULL), whole; 0 or -errno. The
 * caller holds send_lock when replies may interleave. */
int coroutine_fn nbd_co_send(NbdClient *c, const void *head, size_t head_len,
                             const void *data, size_t data_len);

/* The transmission flags the export advertises to this client. */
uint16_t nbd_export_tx_flags(NbdExport *exp, NbdClient *c);

/* Serves requests until the client disconnects or breaks the protocol;
 * returns when no request of the client is in flight any more. */
void coroutine_fn nbd_co_transmission(NbdClient *c);

#endif
