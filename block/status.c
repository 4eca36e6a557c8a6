/* Block status: what a range of a node is (data, zero, allocated here or
 * below), with the core's defaults for drivers that cannot tell. */
#include <errno.h>
#include "block/internal.h"
#include "trace-events.h"

/* in_request: asked from inside a request already in flight on bs (a
 * copy-on-read deciding what to copy), which must not wait for a drained
 * section: the section waits for that request. */
static int coroutine_fn block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file, bool in_request)
{
    int64_t len, local_map = 0;
    BlockDriverState *local_file = NULL;
    int ret;

    *pnum = 0;
    ret = bdrv_request_check(bs, BDRV_REQUEST_BLOCK_STATUS, offset, bytes, 0);
    if (ret < 0) {
        return ret;
    }
    len = bdrv_getlength(bs);
    if (len < 0) {
        return (int)len;
    }
    if (offset < 0 || bytes < 0) {
        return -EINVAL;
    }
    if (offset >= len || bytes == 0) {
        return offset >= len ? BDRV_BLOCK_EOF : 0;
    }
    bytes = MIN(bytes, len - offset);

    if (bs->caps.block_status != BDRV_CAP_NATIVE) {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED;
        if (bs->drv->is_protocol) {
            ret |= BDRV_BLOCK_OFFSET_VALID;
            local_map = offset;
            local_file = bs;
        }
    } else {
        BdrvRequest req;

        if (!in_request) {
            bdrv_co_request_begin(&req, bs, BDRV_REQUEST_BLOCK_STATUS, offset, bytes, 0);
        }
        ret = bs->drv->co_block_status(bs, want_zero, offset, bytes, pnum,
                                       &local_map, &local_file);
        if (!in_request) {
            bdrv_request_end(&req);
        }
        if (ret < 0) {
            *pnum = 0;
            return ret;
        }
        /* The driver's answer covers a non-empty prefix of the request. */
        g_assert(*pnum > 0 && *pnum <= bytes);
        g_assert(!(ret & BDRV_BLOCK_OFFSET_VALID) || local_file);
    }

    if (ret & BDRV_BLOCK_RAW) {
        /* The driver maps 1:1 onto its file: let the file answer. */
        int64_t wanted = *pnum;

        g_assert((ret & BDRV_BLOCK_OFFSET_VALID) && local_file);
        ret = block_status(local_file, want_zero, local_map, wanted, pnum,
                           &local_map, &local_file, false);
        if (ret < 0) {
            return ret;
        }
        if (*pnum == 0) {
            /* Past the end of a file whose length is no multiple of 512: the
             * format rounds its size up, and reads there return zeroes.
             * (An empty answer would stall every caller that walks on.) */
            *pnum = wanted;
            ret = BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID;
        }
        ret |= BDRV_BLOCK_ALLOCATED;
        ret &= ~BDRV_BLOCK_EOF;
    } else if (ret & (BDRV_BLOCK_DATA | BDRV_BLOCK_ZERO)) {
        ret |= BDRV_BLOCK_ALLOCATED;
    } else if (bs->backing == NULL && !(ret & BDRV_BLOCK_ALLOCATED) && want_zero) {
        /* Unallocated with no backing file reads as zeroes. */
        ret |= BDRV_BLOCK_ZERO;
    }

    if (want_zero && (ret & BDRV_BLOCK_RECURSE) && (ret & BDRV_BLOCK_DATA) &&
        !(ret & BDRV_BLOCK_ZERO) && (ret & BDRV_BLOCK_OFFSET_VALID) && local_file) {
        /* The format stores data here, but its file may know it is a hole. */
        int64_t file_pnum;
        int file_ret = block_status(local_file, want_zero, local_map, *pnum,
                                    &file_pnum, NULL, NULL, false);

        /* The answer holds only as far as the file's own answer does. */
        if (file_ret >= 0 && file_pnum > 0) {
            *pnum = MIN(*pnum, file_pnum);
            ret |= file_ret & BDRV_BLOCK_ZERO;
        }
    }
    ret &= ~BDRV_BLOCK_RECURSE;
    if (offset + *pnum == len) {
        ret |= BDRV_BLOCK_EOF;
    }
    if (map) {
        *map = local_map;
    }
    if (file) {
        *file = local_file;
    }
    return ret;
}

int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum, int64_t *map,
                                      BlockDriverState **file)
{
    int64_t local_pnum;
    int ret = block_status(bs, true, offset, bytes, pnum ? pnum : &local_pnum, map, file,
                           false);

    trace_bdrv_co_block_status(bs, offset, bytes, ret, pnum ? *pnum : local_pnum);
    return ret;
}

static int coroutine_fn is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                     int64_t *pnum, bool in_request)
{
    int64_t local_pnum;
    int ret = block_status(bs, false, offset, bytes, pnum ? pnum : &local_pnum, NULL, NULL,
                           in_request);

    if (ret < 0) {
        return ret;
    }
    return !!(ret & BDRV_BLOCK_ALLOCATED);
}

int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum)
{
    return is_allocated(bs, offset, bytes, pnum, false);
}

int coroutine_fn bdrv_co_is_allocated_in_request(BlockDriverState *bs, int64_t offset,
                                                 int64_t bytes, int64_t *pnum)
{
    return is_allocated(bs, offset, bytes, pnum, true);
}

int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *bs, BlockDriverState *base,
                                            int64_t offset, int64_t bytes, int64_t *pnum)
{
    int64_t n = bytes;

    /* The first layer that decides the start of the range wins; the run
     * ends where any layer above it changes its answer. A filter decides
     * nothing: the chain goes on through its file. */
    for (BlockDriverState *p = bs; p && p != base; p = bdrv_filtered_or_backing(p)) {
        int64_t len = bdrv_getlength(p), cur;
        int ret;

        if (bdrv_is_filter(p)) {
            continue;
        }
        if (len < 0) {
            return (int)len;
        }
        if (offset >= len) {
            /* Past the end of a shorter backing layer: reads as zeroes
             * decided by the layer above, which is unallocated here. */
            continue;
        }
        ret = bdrv_co_is_allocated(p, offset, n, &cur);
        if (ret < 0) {
            return ret;
        }
        if (ret) {
            *pnum = MIN(n, cur);
            return 1;
        }
        n = MIN(n, cur);
    }
    *pnum = n;
    return 0;
}

int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                                            int64_t offset, int64_t bytes, int64_t *pnum)
{
    int64_t n = bytes;

    /* Unlike allocation, content stops at a shorter layer's end: reads
     * there return zeroes without looking further down. A filter shows
     * the chain below it. */
    BlockDriverState *p;

    for (p = bs; p && p != base; p = bdrv_filtered_or_backing(p)) {
        int64_t len = bdrv_getlength(p), cur;
        int ret;

        if (bdrv_is_filter(p)) {
            continue;
        }
        if (len < 0) {
            return (int)len;
        }
        if (offset >= len) {
            /* This layer decides: zeroes, whatever lies below. */
            *pnum = n;
            return BDRV_BLOCK_ZERO | BDRV_BLOCK_ALLOCATED;
        }
        ret = block_status(p, true, offset, MIN(n, len - offset), &cur, NULL, NULL, false);
        if (ret < 0) {
            return ret;
        }
        n = MIN(n, cur);
        if (ret & (BDRV_BLOCK_ALLOCATED | BDRV_BLOCK_ZERO)) {
            *pnum = n;
            return ret & (BDRV_BLOCK_ZERO | BDRV_BLOCK_DATA | BDRV_BLOCK_ALLOCATED);
        }
    }
    *pnum = n;
    /* Past the whole chain reads are zeroes; above base they are base's. */
    return p ? 0 : BDRV_BLOCK_ZERO;
}
