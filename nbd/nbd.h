/* The NBD server: exports (a named view of a node) and a server listening
 * on a unix socket or TCP address, serving clients on the event loop. */
#ifndef QBLK_NBD_H
#define QBLK_NBD_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "qblk/block.h"

typedef struct NbdServer NbdServer;
typedef struct NbdExport NbdExport;

typedef struct NbdExportOptions {
    const char *name;           /* required; "" is a valid name */
    const char *description;    /* NULL: none */
    bool writable;
    bool allocation_depth;      /* offer qemu:allocation-depth */
    bool writethrough;          /* every write is FUA (cache=writethrough) */
    /* Copy-on-read for the export's life (qblk's own): every READ reads
     * through the node (holes too) so its overlay fills. CACHE requests
     * copy up in any case where the node can (QEMU's prefetch). */
    bool copy_on_read;
    /* Called once the export is gone for good (after nbd_export_remove,
     * when its last client has left, or at server stop): the daemon's
     * BLOCK_EXPORT_DELETED. May be NULL. */
    void (*deleted)(void *opaque);
    void *opaque;
} NbdExportOptions;

typedef struct NbdServerOptions {
    const char *unix_path;      /* one of unix_path or host/port */
    const char *host;           /* NULL: any */
    const char *port;           /* NULL: 10809 */
    int max_connections;        /* 0: unlimited */
    /* Called (in the loop) when a client disconnects and none is left;
     * qblk-nbd without --persistent exits there. */
    void (*last_client_gone)(void *opaque);
    void *opaque;
} NbdServerOptions;

/* Starts listening. NULL with *errp set on failure. */
NbdServer *nbd_server_start(const NbdServerOptions *opts, GError **errp);
/* Stops listening, disconnects every client (their requests in flight
 * finish first), removes every export and frees the server. The first
 * runs the event loop and must not be called in a coroutine; the second
 * is for coroutines (a QMP handler) that are not the server's own. */
void nbd_server_stop(NbdServer *srv);
void coroutine_fn nbd_co_server_stop(NbdServer *srv);
/* A server with no listening socket (opts' socket fields unused), whose
 * clients come through nbd_server_serve_fd: the fuzzer's and tests'. */
NbdServer *nbd_server_new_detached(const NbdServerOptions *opts);
/* Serves one client on fd, a connected stream socket (made non-blocking;
 * the server owns it and closes it when the client leaves). */
void nbd_server_serve_fd(NbdServer *srv, int fd);
/* Clients connected now. */
unsigned nbd_server_client_count(NbdServer *srv);
/* Leaves new clients in the listen backlog (false) or takes them again:
 * the daemon pauses while its command line runs (opening nodes runs the
 * event loop), so a client that connects at once finds every export. */
void nbd_server_set_accepting(NbdServer *srv, bool accepting);

/* Adds an export of bs (takes a reference to bs). NULL with *errp set if
 * the name is taken or too long, or writable on a read-only node. */
NbdExport *nbd_export_add(NbdServer *srv, BlockDriverState *bs,
                          const NbdExportOptions *opts, GError **errp);
NbdExport *nbd_export_find(NbdServer *srv, const char *name);
/* The exports now (query-block-exports); g_list_free the list only. */
GList *nbd_server_exports(NbdServer *srv);
const char *nbd_export_name(NbdExport *exp);
BlockDriverState *nbd_export_bs(NbdExport *exp);
/* Whether clients use the export now (block-export-del "safe" refuses). */
bool nbd_export_in_use(NbdExport *exp);
/* Removes the export: new clients no longer find it; the clients using it
 * are disconnected (hard), and its node reference is dropped when the last
 * of them is gone. */
void nbd_export_remove(NbdExport *exp);

#endif
