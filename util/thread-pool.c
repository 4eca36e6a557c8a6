/* Worker threads for blocking calls (the "threads" I/O engine and
 * qblk_co_run_in_thread): a coroutine queues work and yields; a bottom
 * half re-enters it in the loop thread once a worker is done. */
#include <assert.h>
#include <unistd.h>
#include <glib.h>

#include "util/io-engine.h"
#include "util/main-loop.h"

/* Enough to keep a disk queue busy; more only adds contention. */
#define MAX_WORKERS 16

typedef struct PoolItem {
    int (*fn)(void *opaque);
    void *opaque;
    int ret;
    Coroutine *co;
} PoolItem;

static GAsyncQueue *work_queue;
static int n_workers;       /* only touched in the loop thread */
static pid_t pool_pid;

static void pool_done_bh(void *opaque)
{
    PoolItem *item = opaque;

    qco_enter(item->co);
}

static gpointer worker_main(gpointer data)
{
    GAsyncQueue *queue = data;

    for (;;) {
        PoolItem *item = g_async_queue_pop(queue);

        item->ret = item->fn(item->opaque);
        /* The BH list is lock-protected, which orders item->ret before the
         * loop thread reads it. */
        qblk_bh_schedule(pool_done_bh, item);
    }
    return NULL;
}

static void pool_submit(PoolItem *item)
{
    /* Threads do not survive fork(): a daemonised child starts over. */
    if (!work_queue || pool_pid != getpid()) {
        qblk_loop_init();  /* completions come back as bottom halves */
        work_queue = g_async_queue_new();
        n_workers = 0;
        pool_pid = getpid();
    }
    g_async_queue_push(work_queue, item);
    /* length = queued items minus workers blocked in pop: positive means
     * nobody is free for this item. A worker about to pop makes us start
     * one more than needed, which is harmless. */
    if (g_async_queue_length(work_queue) > 0 && n_workers < MAX_WORKERS) {
        GError *err = NULL;
        GThread *t = g_thread_try_new("qblk-worker", worker_main,
                                      g_async_queue_ref(work_queue), &err);

        if (t) {
            g_thread_unref(t);
            n_workers++;
        } else {
            g_async_queue_unref(work_queue);
            /* Existing workers will get to it; with none, nothing would. */
            if (n_workers == 0) {
                g_error("cannot start an I/O worker thread: %s", err->message);
            }
            g_error_free(err);
        }
    }
}

int coroutine_fn qblk_co_run_in_thread(int (*fn)(void *opaque), void *opaque)
{
    PoolItem item = { .fn = fn, .opaque = opaque, .ret = 0 };

    if (!qco_in_coroutine()) {
        /* Nothing to yield to: blocking the caller is the same contract. */
        return fn(opaque);
    }
    item.co = qco_self();
    pool_submit(&item);
    qco_yield();
    return item.ret;
}
