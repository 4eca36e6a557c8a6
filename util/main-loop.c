/* The event loop: GLib's default context plus one custom source that runs
 * bottom halves, so scheduling one costs a list push, not a GSource. */
#include <pthread.h>
#include <time.h>
#include <glib.h>
#include "util/main-loop.h"

typedef struct BottomHalf {
    void (*fn)(void *opaque);
    void *opaque;
    struct BottomHalf *next;
} BottomHalf;

typedef struct BhSource {
    GSource source;
    GMutex lock;
    BottomHalf *head, *tail;
} BhSource;

static BhSource *bh_source;
static pthread_t loop_thread;
static GOnce loop_once = G_ONCE_INIT;

static bool bh_pending(BhSource *s)
{
    bool pending;

    g_mutex_lock(&s->lock);
    pending = s->head != NULL;
    g_mutex_unlock(&s->lock);
    return pending;
}

static gboolean bh_prepare(GSource *source, gint *timeout)
{
    bool pending = bh_pending((BhSource *)source);

    *timeout = pending ? 0 : -1;
    return pending;
}

static gboolean bh_check(GSource *source)
{
    return bh_pending((BhSource *)source);
}

static gboolean bh_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    BhSource *s = (BhSource *)source;
    BottomHalf *list;

    /* Take the whole list: halves scheduled while these run wait for the
     * next iteration, so a half that reschedules itself cannot starve
     * the rest of the loop. */
    g_mutex_lock(&s->lock);
    list = s->head;
    s->head = s->tail = NULL;
    g_mutex_unlock(&s->lock);

    while (list) {
        BottomHalf *bh = list;

        list = bh->next;
        bh->fn(bh->opaque);
        g_free(bh);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs bh_funcs = {
    .prepare = bh_prepare,
    .check = bh_check,
    .dispatch = bh_dispatch,
};

static gpointer loop_setup(gpointer unused)
{
    bh_source = (BhSource *)g_source_new(&bh_funcs, sizeof(BhSource));
    g_mutex_init(&bh_source->lock);
    g_source_attach(&bh_source->source, NULL);
    loop_thread = pthread_self();
    return NULL;
}

void qblk_loop_init(void)
{
    g_once(&loop_once, loop_setup, NULL);
}

bool qblk_loop_iterate(bool blocking)
{
    qblk_loop_init();
    return g_main_context_iteration(NULL, blocking);
}

void qblk_bh_schedule(void (*fn)(void *opaque), void *opaque)
{
    BottomHalf *bh = g_new(BottomHalf, 1);

    qblk_loop_init();
    bh->fn = fn;
    bh->opaque = opaque;
    bh->next = NULL;
    g_mutex_lock(&bh_source->lock);
    if (bh_source->tail) {
        bh_source->tail->next = bh;
    } else {
        bh_source->head = bh;
    }
    bh_source->tail = bh;
    g_mutex_unlock(&bh_source->lock);
    /* The loop thread re-runs prepare before it next polls; any other
     * thread must interrupt a poll that may already be blocking. */
    if (!pthread_equal(pthread_self(), loop_thread)) {
        g_main_context_wakeup(NULL);
    }
}

typedef struct Timer {
    void (*fn)(void *opaque);
    void *opaque;
} Timer;

static gboolean timer_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    Timer *t = data;

    t->fn(t->opaque);
    return G_SOURCE_REMOVE;
}

/* No prepare/check: the source's ready time alone makes it fire. */
static GSourceFuncs timer_funcs = {
    .dispatch = timer_dispatch,
};

guint qblk_timer_add_ns(int64_t ns, void (*fn)(void *opaque), void *opaque)
{
    Timer *t = g_new(Timer, 1);
    GSource *src = g_source_new(&timer_funcs, sizeof(GSource));
    guint id;

    qblk_loop_init();
    t->fn = fn;
    t->opaque = opaque;
    /* Ready time in microseconds rather than g_timeout's milliseconds. */
    g_source_set_ready_time(src, g_get_monotonic_time() + (ns > 0 ? (ns + 999) / 1000 : 0));
    g_source_set_callback(src, NULL, t, g_free);
    id = g_source_attach(src, NULL);
    g_source_unref(src);
    return id;
}

int64_t qblk_clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
