/* Drained sections: while one is open on a node, its users are paused and
 * new requests entering the node wait, so a graph change or a reopen sees
 * no request in flight. Sections nest (a counter). bdrv_co_drain waits
 * for a node (or all) to go idle, woken by the last request ending. */
#include "block/internal.h"
#include "util/main-loop.h"

static void pause_users(BlockDriverState *bs, bool pause)
{
    for (GSList *l = bs->parents; l; l = l->next) {
        BdrvChild *c = l->data;
        void (*fn)(void *) = pause ? c->pause : c->resume;

        if (!c->parent && fn) {
            fn(c->opaque);
        }
    }
}

static void begin(BlockDriverState *bs)
{
    if (bs->quiesce_counter++ == 0) {
        pause_users(bs, true);
    }
}

void coroutine_fn bdrv_co_drained_begin(BlockDriverState *bs)
{
    begin(bs);
    while (bs->in_flight > 0) {
        qco_queue_wait(&bs->drain_waiters, NULL);
    }
}

void bdrv_drained_begin(BlockDriverState *bs)
{
    g_assert(!qco_in_coroutine());
    begin(bs);
    while (bs->in_flight > 0) {
        qblk_loop_iterate(true);
    }
}

void coroutine_fn bdrv_co_drained_end(BlockDriverState *bs)
{
    bdrv_drained_end(bs);
}

/* Callable both ways: it never waits. */
void bdrv_drained_end(BlockDriverState *bs)
{
    g_assert(bs->quiesce_counter > 0);
    if (--bs->quiesce_counter == 0) {
        pause_users(bs, false);
        qco_queue_restart_all(&bs->quiesce_queue);
    }
}

void coroutine_fn bdrv_co_wait_unquiesced(BlockDriverState *bs)
{
    while (bs->quiesce_counter > 0) {
        qco_queue_wait(&bs->quiesce_queue, NULL);
    }
}

/* Coroutines in bdrv_co_drain wait here; any node going idle wakes them
 * to look again (a drain covers a node, its children, or every node). */
static CoQueue drain_all_queue = { 0 };
unsigned bdrv_drain_all_waiting;

static bool node_busy(BlockDriverState *bs)
{
    return bs && (bs->in_flight > 0 || node_busy(bs->file) || node_busy(bs->backing));
}

bool bdrv_drain_busy(BlockDriverState *bs)
{
    return bs ? node_busy(bs) : bdrv_any_in_flight();
}

void coroutine_fn bdrv_co_drain(BlockDriverState *bs)
{
    while (bdrv_drain_busy(bs)) {
        bdrv_drain_all_waiting++;
        qco_queue_wait(&drain_all_queue, NULL);
        bdrv_drain_all_waiting--;
    }
}

void bdrv_drain_wake(BlockDriverState *bs)
{
    if (bs->in_flight != 0) {
        return;
    }
    if (bs->quiesce_counter > 0) {
        qco_queue_restart_all(&bs->drain_waiters);
    }
    if (bdrv_drain_all_waiting > 0) {
        qco_queue_restart_all(&drain_all_queue);
    }
}
