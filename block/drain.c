/* Drained sections: while one is open on a node, its users are paused and
 * new requests entering the node wait, so a graph change or a reopen sees
 * no request in flight. Sections nest (a counter). */
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

void bdrv_drain_wake(BlockDriverState *bs)
{
    if (bs->in_flight == 0 && bs->quiesce_counter > 0) {
        qco_queue_restart_all(&bs->drain_waiters);
    }
}
