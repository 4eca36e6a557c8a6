/* The "rbd" protocol driver's shared state: one open Ceph RBD image
 * (block/drivers/rbd.c opens, creates and resizes it; rbd-io.c does its
 * asynchronous I/O and block status). */
#ifndef QBLK_BLOCK_DRIVERS_RBD_H
#define QBLK_BLOCK_DRIVERS_RBD_H

#include <rados/librados.h>
#include <rbd/librbd.h>
#include "qblk/block_int.h"
#include "util/coroutine.h"

typedef struct RbdExtentCache RbdExtentCache;

typedef struct RbdState {
    rados_t cluster;
    rados_ioctx_t ioctx;
    rbd_image_t image;
    char *pool, *namespace, *image_name, *snapshot;
    uint64_t object_size;
    /* Cached: librbd answers rbd_get_size from memory, but a resize by this
     * node must be seen by the next request before librbd's refresh. */
    uint64_t image_size;
    CoMutex resize_lock;           /* growing writes resize one at a time */
    /* Bumped when a change to the image starts and when it ends: block
     * status cached from before is stale (rbd-io.c). */
    uint64_t gen;
    RbdExtentCache *extent_cache;
} RbdState;

/* rbd-io.c: the data path, completed through librbd's callbacks. */
int coroutine_fn rbd_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn rbd_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn rbd_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags);
int coroutine_fn rbd_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes);
int coroutine_fn rbd_co_flush(BlockDriverState *bs);
int coroutine_fn rbd_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file);
/* Grows the image to at least new_size (writes past the end of a format's
 * file child). rbd.c's truncate uses it too. */
int coroutine_fn rbd_co_resize(BlockDriverState *bs, uint64_t new_size);
/* Drops the cached block status (close). */
void rbd_extent_cache_free(RbdState *s);

#endif
