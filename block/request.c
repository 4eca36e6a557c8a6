/* The one preamble every request type goes through (see block/internal.h):
 * refusals, trace point, in-flight count and request tracking. Drained
 * sections and users' permission checks hook in here, once for all. */
#include <errno.h>
#include "block/internal.h"
#include "trace-events.h"

int bdrv_check_request(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    if (offset < 0 || bytes < 0 || offset > INT64_MAX - bytes) {
        return -EIO;
    }
    if (!bs->growable) {
        int64_t len = bdrv_getlength(bs);

        if (len < 0) {
            return (int)len;
        }
        if (offset + bytes > len) {
            return -EIO;
        }
    }
    return 0;
}

void bdrv_inc_in_flight(BlockDriverState *bs)
{
    bs->in_flight++;
}

void bdrv_dec_in_flight(BlockDriverState *bs)
{
    g_assert(bs->in_flight > 0);
    bs->in_flight--;
    if (bs->quiesce_counter > 0 || bdrv_drain_all_waiting > 0) {
        bdrv_drain_wake(bs);
    }
}

static bool type_modifies(BdrvRequestType type)
{
    return type == BDRV_REQUEST_WRITE || type == BDRV_REQUEST_ZERO ||
           type == BDRV_REQUEST_DISCARD || type == BDRV_REQUEST_TRUNCATE;
}

/* Types whose range bdrv_check_request validates (block status answers
 * past the end with EOF; truncate checks a new length, not a range). */
static bool type_ranged(BdrvRequestType type)
{
    return type == BDRV_REQUEST_READ || type == BDRV_REQUEST_WRITE ||
           type == BDRV_REQUEST_ZERO || type == BDRV_REQUEST_DISCARD;
}

static void trace_request(BlockDriverState *bs, BdrvRequestType type, int64_t offset,
                          int64_t bytes, BdrvRequestFlags flags)
{
    switch (type) {
    case BDRV_REQUEST_READ:
        trace_bdrv_co_preadv(bs, offset, bytes, flags);
        break;
    case BDRV_REQUEST_WRITE:
        trace_bdrv_co_pwritev(bs, offset, bytes, flags);
        break;
    case BDRV_REQUEST_ZERO:
        trace_bdrv_co_pwrite_zeroes(bs, offset, bytes, flags);
        break;
    case BDRV_REQUEST_DISCARD:
        trace_bdrv_co_pdiscard(bs, offset, bytes);
        break;
    case BDRV_REQUEST_FLUSH:
        trace_bdrv_co_flush(bs);
        break;
    case BDRV_REQUEST_BLOCK_STATUS:
    case BDRV_REQUEST_TRUNCATE:
        break;
    }
}

/* The node's state, not the request's range: checked again after a
 * drained section, which may have closed or reopened the node. */
static int node_refusal(BlockDriverState *bs, BdrvRequestType type)
{
    if (!bs->drv) {
        return -ENOMEDIUM;
    }
    if (type_modifies(type) && bs->read_only) {
        return -EPERM;
    }
    return 0;
}

int bdrv_request_check(BlockDriverState *bs, BdrvRequestType type, int64_t offset,
                       int64_t bytes, BdrvRequestFlags flags)
{
    int refusal = node_refusal(bs, type);

    if (refusal < 0) {
        return refusal;
    }
    if (type_ranged(type)) {
        int ret = bdrv_check_request(bs, offset, bytes);

        if (ret < 0) {
            return ret;
        }
    }
    if (type == BDRV_REQUEST_WRITE && (flags & BDRV_REQ_WRITE_COMPRESSED) &&
        !(bs->supported_write_flags & BDRV_REQ_WRITE_COMPRESSED)) {
        return -ENOTSUP;
    }
    trace_request(bs, type, offset, bytes, flags);
    return 0;
}

int coroutine_fn bdrv_co_request_begin(BdrvRequest *req, BlockDriverState *bs,
                                       BdrvRequestType type, int64_t offset,
                                       int64_t bytes, int64_t serialise_align)
{
    static const BdrvTrackedType tracked_type[] = {
        [BDRV_REQUEST_READ] = BDRV_TRACKED_READ,
        [BDRV_REQUEST_WRITE] = BDRV_TRACKED_WRITE,
        [BDRV_REQUEST_ZERO] = BDRV_TRACKED_WRITE,
        [BDRV_REQUEST_DISCARD] = BDRV_TRACKED_DISCARD,
        [BDRV_REQUEST_TRUNCATE] = BDRV_TRACKED_TRUNCATE,
    };

    /* Drained sections hold new requests here, before they count in
     * flight; users' permissions (exports, jobs) will be checked here too.
     * A section may have reopened the node read-only meanwhile. */
    if (bs->quiesce_counter > 0) {
        int refusal;

        bdrv_co_wait_unquiesced(bs);
        refusal = node_refusal(bs, type);
        if (refusal < 0) {
            return refusal;
        }
    }
    /* Field by field: req->tr is set by bdrv_co_tracked_begin, and zeroing
     * it first is a cost every request would pay. */
    req->bs = bs;
    req->type = type;
    /* Flush and block status change no data: nothing to order them against. */
    req->tracked = type != BDRV_REQUEST_FLUSH && type != BDRV_REQUEST_BLOCK_STATUS;
    bdrv_inc_in_flight(bs);
    if (req->tracked) {
        bdrv_co_tracked_begin(&req->tr, bs, offset, bytes, tracked_type[type],
                              serialise_align);
    }
    return 0;
}

void bdrv_request_end(BdrvRequest *req)
{
    if (req->tracked) {
        bdrv_tracked_end(&req->tr);
    }
    bdrv_dec_in_flight(req->bs);
}
