/* Coroutine wait queues and mutexes. Waiter records live on the waiting
 * coroutine's stack, so queues never allocate. */
#include <stdio.h>
#include <stdlib.h>
#include "util/coroutine.h"

struct CoWaiter {
    Coroutine *co;
    CoWaiter *next;
};

void qco_queue_init(CoQueue *q)
{
    q->head = q->tail = NULL;
}

bool qco_queue_empty(const CoQueue *q)
{
    return q->head == NULL;
}

void coroutine_fn qco_queue_wait(CoQueue *q, CoMutex *mutex)
{
    CoWaiter w = { .co = qco_self() };

    if (!w.co) {
        fprintf(stderr, "qblk: qco_queue_wait outside a coroutine\n");
        abort();
    }
    if (q->tail) {
        q->tail->next = &w;
    } else {
        q->head = &w;
    }
    q->tail = &w;
    if (mutex) {
        qco_mutex_unlock(mutex);
    }
    qco_yield();
    if (mutex) {
        qco_mutex_lock(mutex);
    }
}

bool qco_queue_next(CoQueue *q)
{
    CoWaiter *w = q->head;

    if (!w) {
        return false;
    }
    q->head = w->next;
    if (!q->head) {
        q->tail = NULL;
    }
    /* w lives on the waiter's stack: read it before the waiter can run. */
    qco_wake(w->co);
    return true;
}

void qco_queue_restart_all(CoQueue *q)
{
    while (qco_queue_next(q)) {
    }
}

void qco_mutex_init(CoMutex *m)
{
    m->locked = false;
    m->holder = NULL;
    qco_queue_init(&m->waiters);
}

void coroutine_fn qco_mutex_lock(CoMutex *m)
{
    /* A woken waiter may find the lock taken again by a coroutine that ran
     * in between; it simply queues again. */
    while (m->locked) {
        qco_queue_wait(&m->waiters, NULL);
    }
    m->locked = true;
    m->holder = qco_self();
}

void coroutine_fn qco_mutex_unlock(CoMutex *m)
{
    if (!m->locked || m->holder != qco_self()) {
        fprintf(stderr, "qblk: CoMutex unlocked by a coroutine not holding it\n");
        abort();
    }
    m->locked = false;
    m->holder = NULL;
    qco_queue_next(&m->waiters);
}
