/* Request tracking: every request in flight on a node is listed so that
 * serialising requests (read-modify-write, copy-on-read) exclude
 * overlapping ones. */
#include "block/internal.h"
#include "trace-events.h"

static uint64_t next_seq = 1;

static bool ranges_overlap(int64_t a, int64_t alen, int64_t b, int64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* The earliest request that req must wait for, or NULL. */
static BdrvTrackedRequest *find_conflict(BdrvTrackedRequest *req)
{
    for (BdrvTrackedRequest *other = req->bs->tracked_requests; other; other = other->next) {
        if (other == req || other->seq > req->seq) {
            continue;
        }
        if (!req->serialising && !other->serialising) {
            continue;
        }
        if (ranges_overlap(req->overlap_offset, req->overlap_bytes,
                           other->overlap_offset, other->overlap_bytes)) {
            return other;
        }
    }
    return NULL;
}

void coroutine_fn bdrv_co_tracked_begin(BdrvTrackedRequest *req, BlockDriverState *bs,
                                        int64_t offset, int64_t bytes,
                                        BdrvTrackedType type, int64_t serialise_align)
{
    *req = (BdrvTrackedRequest) {
        .bs = bs,
        .seq = next_seq++,
        .offset = offset,
        .bytes = bytes,
        .overlap_offset = offset,
        .overlap_bytes = bytes,
        .type = type,
    };
    qco_queue_init(&req->wait_queue);
    if (serialise_align > 0) {
        int64_t start = offset - offset % serialise_align;
        int64_t end = offset + bytes;

        /* A request reaching INT64_MAX (truncate) is already unbounded. */
        if (end % serialise_align && end <= INT64_MAX - serialise_align) {
            end = bdrv_round_up(end, serialise_align);
        }

        req->serialising = true;
        req->overlap_offset = start;
        req->overlap_bytes = end - start;
    }
    req->next = bs->tracked_requests;
    if (req->next) {
        req->next->prev = req;
    }
    bs->tracked_requests = req;
    bs->nb_serialising += req->serialising;
    /* Two plain requests never wait for each other: with thousands in
     * flight, scanning for nothing would make each request O(n). */
    if (!req->serialising && bs->nb_serialising == 0) {
        return;
    }

    for (;;) {
        BdrvTrackedRequest *other = find_conflict(req);

        if (!other) {
            break;
        }
        trace_bdrv_request_wait_serialising(bs, offset, bytes);
        qco_queue_wait(&other->wait_queue, NULL);
    }
}

void bdrv_tracked_end(BdrvTrackedRequest *req)
{
    BlockDriverState *bs = req->bs;

    if (req->prev) {
        req->prev->next = req->next;
    } else {
        bs->tracked_requests = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    }
    bs->nb_serialising -= req->serialising;
    qco_queue_restart_all(&req->wait_queue);
}
