/* Block-core internals shared by block.c and the core files in block/; never
 * included by drivers or tools. */
#ifndef QBLK_BLOCK_INTERNAL_H
#define QBLK_BLOCK_INTERNAL_H

#include "qblk/block_int.h"

typedef enum {
    BDRV_TRACKED_READ,
    BDRV_TRACKED_WRITE,
    BDRV_TRACKED_DISCARD,
    BDRV_TRACKED_TRUNCATE,
} BdrvTrackedType;

/* One request in flight on a node. Requests wait for earlier overlapping
 * requests when either side is serialising (read-modify-write,
 * copy-on-read); waits only ever go to lower sequence numbers, so they
 * cannot form a cycle. */
struct BdrvTrackedRequest {
    BlockDriverState *bs;
    uint64_t seq;
    int64_t offset, bytes;            /* the request as issued */
    int64_t overlap_offset, overlap_bytes; /* the range it guards */
    BdrvTrackedType type;
    bool serialising;
    CoQueue wait_queue;               /* requests waiting for this one */
    BdrvTrackedRequest *prev, *next;  /* bs->tracked_requests */
};

/* Starts tracking; if serialise_align > 0 the request is serialising over
 * its range widened to that alignment. Then waits for conflicts. */
void coroutine_fn bdrv_co_tracked_begin(BdrvTrackedRequest *req, BlockDriverState *bs,
                                        int64_t offset, int64_t bytes,
                                        BdrvTrackedType type, int64_t serialise_align);
void bdrv_tracked_end(BdrvTrackedRequest *req);

/* Aligned driver-level transfers, inside an already tracked request. */
int coroutine_fn bdrv_co_aligned_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        QIOVector *qiov, BdrvRequestFlags flags);
/* A flush from inside a request already in flight on bs (emulated FUA):
 * it must not wait for a drained section to end, since the section waits
 * for that very request. */
int coroutine_fn bdrv_co_flush_in_request(BlockDriverState *bs);
/* The same for an allocation query (a copy-on-read deciding what to copy). */
int coroutine_fn bdrv_co_is_allocated_in_request(BlockDriverState *bs, int64_t offset,
                                                 int64_t bytes, int64_t *pnum);
int coroutine_fn bdrv_co_aligned_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                         QIOVector *qiov, BdrvRequestFlags flags);
/* Writes any byte range inside an already tracked (and, if unaligned,
 * serialising) request, doing read-modify-write for unaligned edges. */
int coroutine_fn bdrv_co_do_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                    QIOVector *qiov, BdrvRequestFlags flags);
/* Zero write inside a tracked request (block/io-zero.c). */
int coroutine_fn bdrv_co_do_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                          int64_t bytes, BdrvRequestFlags flags);

/* ----- The request preamble (block/request.c) -----
 * Every request type enters a node the same way:
 *   ret = bdrv_request_check(bs, type, offset, bytes, flags);  (refusals, trace)
 *   ... early returns that do no I/O (zero length, discard ignored) ...
 *   bdrv_co_request_begin(&req, bs, type, offset, bytes, serialise_align);
 *   ... the request ...
 *   bdrv_request_end(&req);
 * begin is where drained sections will hold new requests and where users'
 * permissions will be checked; end is where a drain learns a node is idle. */
typedef enum {
    BDRV_REQUEST_READ,
    BDRV_REQUEST_WRITE,
    BDRV_REQUEST_ZERO,
    BDRV_REQUEST_DISCARD,
    BDRV_REQUEST_FLUSH,
    BDRV_REQUEST_BLOCK_STATUS,
    BDRV_REQUEST_TRUNCATE,
} BdrvRequestType;

typedef struct BdrvRequest {
    BlockDriverState *bs;
    BdrvRequestType type;
    bool tracked;                  /* tr is in bs->tracked_requests */
    BdrvTrackedRequest tr;
} BdrvRequest;

/* The refusals shared by every request type, in this order: -ENOMEDIUM
 * without a driver; -EPERM when the type modifies the node (write, zero,
 * discard, truncate) and bs is read-only; for read, write, zero and
 * discard, -EIO when bdrv_check_request refuses the range; for write,
 * -ENOTSUP when flags ask for compression the node cannot do. Then it
 * traces read, write, zero, discard and flush (block status traces its
 * answer, truncate after its own size checks). */
int bdrv_request_check(BlockDriverState *bs, BdrvRequestType type, int64_t offset,
                       int64_t bytes, BdrvRequestFlags flags);
/* Waits while a drained section is open on bs; then counts the request
 * in flight and, for read, write, zero, discard and truncate, tracks
 * [offset, offset+bytes) (serialising over that range widened to
 * serialise_align when > 0), waiting for conflicting requests. Returns 0,
 * or (only after such a wait, nothing counted) -ENOMEDIUM, or -EPERM for
 * a modifying type when the section left bs read-only. */
int coroutine_fn bdrv_co_request_begin(BdrvRequest *req, BlockDriverState *bs,
                                       BdrvRequestType type, int64_t offset,
                                       int64_t bytes, int64_t serialise_align);
void bdrv_request_end(BdrvRequest *req);

/* Request validity: -EIO for negative or overflowing ranges, and for
 * ranges past the end of a node that is not growable. */
int bdrv_check_request(BlockDriverState *bs, int64_t offset, int64_t bytes);

/* True while any open node has a request in flight (block.c keeps the list). */
bool bdrv_any_in_flight(void);
/* In-flight count outside the preamble (async requests until their callback). */
void bdrv_inc_in_flight(BlockDriverState *bs);
void bdrv_dec_in_flight(BlockDriverState *bs);

/* Computes bs->caps from its driver's declarations (block/capabilities.c).
 * Called after the driver's open; call it again after a reopen or a
 * change of bs->file, children first (raw and filters read bs->file's). */
void bdrv_refresh_capabilities(BlockDriverState *bs);

int64_t bdrv_round_up(int64_t n, int64_t align);

/* Copy-on-read (block/cor.c): the unit copied up, and the read path used
 * inside an already tracked, serialising read. */
int64_t bdrv_cor_cluster_size(BlockDriverState *bs);
int coroutine_fn bdrv_co_copy_on_read(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      QIOVector *qiov);

/* ----- The node graph (block/graph.c, perm.c, drain.c) ----- */

/* A link into bs: from parent's file/image or backing child, or from a
 * user (parent NULL). A parent's link owns the reference the parent holds
 * on bs (released by open.c's close, or by bdrv_co_set_backing); a user's
 * link owns none. */
struct BdrvChild {
    char *name;
    BlockDriverState *parent;
    BlockDriverState *bs;
    uint64_t perm, shared;
    bool frozen;                   /* bdrv_freeze_backing_chain */
    void (*pause)(void *opaque);   /* users: drained sections */
    void (*resume)(void *opaque);
    void *opaque;
};

/* open.c's hooks. add_node gives bs its name (checked with
 * bdrv_check_node_name; NULL: generated) and lists it; remove_node
 * detaches users left and unlists it. link creates parent's link to
 * child (no permission check: open.c refreshes once the node is whole);
 * unlink_children drops bs's links to its children, whose permissions
 * shrink, before open.c releases them. */
void bdrv_graph_add_node(BlockDriverState *bs, const char *node_name);
void bdrv_graph_remove_node(BlockDriverState *bs);
BdrvChild *bdrv_graph_link(BlockDriverState *parent, BlockDriverState *child,
                           const char *name);
void bdrv_graph_unlink(BdrvChild *c);
void bdrv_graph_unlink_children(BlockDriverState *bs);

/* perm.c: recomputes the permissions of every link below bs and of bs's
 * and its descendants' cumulative permissions, checks them for conflicts
 * and gives changed ones to drv->set_perm; all-or-nothing. */
bool bdrv_refresh_perms(BlockDriverState *bs, GError **errp);

/* drain.c: requests entering bs wait here while a drained section is
 * open on it; dec_in_flight wakes a drained_begin waiting for the last
 * request. */
void coroutine_fn bdrv_co_wait_unquiesced(BlockDriverState *bs);
void bdrv_drain_wake(BlockDriverState *bs);
/* How many coroutines wait in bdrv_co_drain (dec_in_flight wakes them only
 * then); bdrv_drain_busy: bs, a child of it, or (NULL) any node is busy. */
extern unsigned bdrv_drain_all_waiting;
bool bdrv_drain_busy(BlockDriverState *bs);

#endif
