/* Coroutines: stackful, cooperative, single-threaded (one event loop per
 * process). Every function that may yield carries coroutine_fn and _co_. */
#ifndef QBLK_UTIL_COROUTINE_H
#define QBLK_UTIL_COROUTINE_H

#include <stdbool.h>
#include <stdint.h>

/* Marker only: documents that a function may yield and must be called
 * from coroutine context. */
#define coroutine_fn

typedef struct Coroutine Coroutine;
typedef void coroutine_fn CoroutineEntry(void *opaque);

/* Creates a coroutine that will run entry(opaque) when first entered.
 * Stacks come from a pool (guard page below each stack). The coroutine
 * frees itself when entry returns. Never fails (aborts on OOM). */
Coroutine *qco_create(CoroutineEntry *entry, void *opaque);

/* Runs co until it yields or terminates. May be called from outside any
 * coroutine or from another coroutine (which is then its caller and is
 * resumed when co yields). Entering a coroutine that is running or
 * already scheduled to be entered is a bug and aborts. */
void qco_enter(Coroutine *co);

/* Suspends the current coroutine, returning control to whoever entered it. */
void coroutine_fn qco_yield(void);

/* The running coroutine, or NULL outside coroutine context. */
Coroutine *qco_self(void);
bool qco_in_coroutine(void);

/* Enters co from the event loop at its next iteration (never
 * recursively); safe to call from completion callbacks. Must be called
 * in the loop thread. */
void qco_wake(Coroutine *co);

/* Sleeps ns nanoseconds of CLOCK_MONOTONIC, letting the loop run. */
void coroutine_fn qco_sleep_ns(int64_t ns);

/* Number of stacks currently cached in the pool (tests). */
unsigned qco_pool_size(void);

/* ----- Locks and queues (coroutine-lock.c) ----- */

typedef struct CoWaiter CoWaiter;

/* FIFO of coroutines waiting for some condition. */
typedef struct CoQueue {
    CoWaiter *head, *tail;
} CoQueue;

typedef struct CoMutex CoMutex;

void qco_queue_init(CoQueue *q);
/* Waits until woken by qco_queue_next/restart_all. If mutex is non-NULL it
 * is released while waiting and taken again before returning. */
void coroutine_fn qco_queue_wait(CoQueue *q, CoMutex *mutex);
/* Wakes the first waiter (through qco_wake). Returns false if none. */
bool qco_queue_next(CoQueue *q);
void qco_queue_restart_all(CoQueue *q);
bool qco_queue_empty(const CoQueue *q);

struct CoMutex {
    bool locked;
    Coroutine *holder;
    CoQueue waiters;
};

void qco_mutex_init(CoMutex *m);
void coroutine_fn qco_mutex_lock(CoMutex *m);
void coroutine_fn qco_mutex_unlock(CoMutex *m);

#endif
