/* Stackful coroutines: ucontext builds each stack's first frame once, then
 * every switch is a sigsetjmp/siglongjmp pair (no signal-mask syscall). */
#undef _FORTIFY_SOURCE  /* __longjmp_chk rejects jumps between stacks */
#include <errno.h>
#include <string.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <glib.h>
#include "util/coroutine.h"
#include "util/main-loop.h"

#if defined(__SANITIZE_ADDRESS__)
#define QBLK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QBLK_ASAN 1
#endif
#endif

#ifdef QBLK_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* 1 MiB like a small thread; deep driver stacks stay far below it. ASan's
 * redzones roughly double frame sizes, so it gets more. */
#ifdef QBLK_ASAN
#define CO_STACK_SIZE (2u << 20)
#else
#define CO_STACK_SIZE (1u << 20)
#endif
/* The pool keeps as many finished coroutines as were recently alive at
 * once (a queue depth of 1,000 would otherwise create and unmap hundreds of
 * stacks per wave of requests), at least CO_POOL_MIN and at most
 * CO_POOL_LIMIT: a pooled stack keeps the pages it touched. */
#define CO_POOL_MIN 64
#define CO_POOL_LIMIT 1024

struct Coroutine {
    CoroutineEntry *entry;
    void *opaque;
    Coroutine *caller;       /* who entered us; NULL when not running */
    sigjmp_buf env;
    void *map;               /* mmap base: guard page, then the stack */
    size_t map_size;
    const void *stack_bottom;
    size_t stack_size;
    bool scheduled;          /* a qco_wake is pending */
    bool terminated;
    void *asan_fake_stack;
    Coroutine *pool_next;
};

/* The thread's own stack, as a pseudo-coroutine that is never pooled. */
static __thread Coroutine leader;
static __thread Coroutine *current;
/* The coroutine we are leaving, read by the one we switch to (ASan needs
 * the leader's stack bounds, which only the switch can tell). */
static __thread Coroutine *switching_from;
static __thread sigjmp_buf *creation_env;

static Coroutine *pool;
static unsigned pool_count, pool_max = CO_POOL_MIN, live_count;

static void asan_start_switch(void **fake_save, Coroutine *to)
{
#ifdef QBLK_ASAN
    __sanitizer_start_switch_fiber(fake_save, to->stack_bottom, to->stack_size);
#else
    (void)fake_save;
    (void)to;
#endif
}

static void asan_finish_switch(void *fake)
{
#ifdef QBLK_ASAN
    const void *bottom;
    size_t size;

    __sanitizer_finish_switch_fiber(fake, &bottom, &size);
    if (switching_from == &leader) {
        leader.stack_bottom = bottom;
        leader.stack_size = size;
    }
#else
    (void)fake;
#endif
}

Coroutine *qco_self(void)
{
    return current;
}

bool qco_in_coroutine(void)
{
    return current != NULL;
}

static Coroutine *self_or_leader(void)
{
    return current ? current : &leader;
}

/* Leaves `from` for `to`; returns when something switches back to `from`. */
static void co_switch(Coroutine *from, Coroutine *to, bool terminating)
{
    if (!sigsetjmp(from->env, 0)) {
        switching_from = from;
        asan_start_switch(terminating ? NULL : &from->asan_fake_stack, to);
        current = to == &leader ? NULL : to;
        siglongjmp(to->env, 1);
    }
    asan_finish_switch(from->asan_fake_stack);
}

static void co_trampoline(int lo, int hi)
{
    Coroutine *co = (Coroutine *)(((uintptr_t)(unsigned)hi << 32) | (unsigned)lo);
    Coroutine *creator = switching_from;

    asan_finish_switch(NULL);
    if (!sigsetjmp(co->env, 0)) {
        switching_from = co;
        asan_start_switch(&co->asan_fake_stack, creator);
        siglongjmp(*creation_env, 1);
    }
    asan_finish_switch(co->asan_fake_stack);
    /* Pooled coroutines loop here: each entry after reuse resumes at the
     * switch inside the previous iteration. */
    for (;;) {
        co->entry(co->opaque);
        co->terminated = true;
        co_switch(co, co->caller, true);
    }
}

static Coroutine *co_new(void)
{
    long page = sysconf(_SC_PAGESIZE);
    Coroutine *co = g_new0(Coroutine, 1);
    ucontext_t uc;
    sigjmp_buf env;
    uintptr_t p = (uintptr_t)co;

    co->map_size = CO_STACK_SIZE + page;
    co->map = mmap(NULL, co->map_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    /* Each live coroutine costs two mappings; vm.max_map_count (65530 by
     * default) bounds how many can exist at once. */
    if (co->map == MAP_FAILED) {
        fprintf(stderr, "qblk: cannot allocate a coroutine stack (too many requests in "
                "flight?): %s\n", strerror(errno));
        abort();
    }
    /* Guard page below the stack: an overflow faults instead of
     * silently corrupting the neighbouring allocation. */
    if (mprotect(co->map, page, PROT_NONE) < 0) {
        fprintf(stderr, "qblk: cannot protect a coroutine stack guard page (too many "
                "requests in flight?): %s\n", strerror(errno));
        abort();
    }
    co->stack_bottom = (char *)co->map + page;
    co->stack_size = CO_STACK_SIZE;

    if (getcontext(&uc) < 0) {
        abort();
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = (void *)co->stack_bottom;
    uc.uc_stack.ss_size = co->stack_size;
    uc.uc_stack.ss_flags = 0;
    makecontext(&uc, (void (*)(void))co_trampoline, 2,
                (int)(uint32_t)p, (int)(uint32_t)(p >> 32));

    /* Run the trampoline up to its first sigsetjmp, then come back. */
    creation_env = &env;
    if (!sigsetjmp(env, 0)) {
        Coroutine *self = self_or_leader();
        void *fake = NULL;

        switching_from = self;
        asan_start_switch(&fake, co);
        /* Our return path is env, so nothing needs saving here. */
        setcontext(&uc);
    }
    asan_finish_switch(self_or_leader()->asan_fake_stack);
    return co;
}

Coroutine *qco_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co = pool;

    if (co) {
        pool = co->pool_next;
        pool_count--;
        co->pool_next = NULL;
    } else {
        co = co_new();
    }
    if (++live_count > pool_max) {
        pool_max = MIN(live_count, CO_POOL_LIMIT);
    }
    co->entry = entry;
    co->opaque = opaque;
    co->terminated = false;
    co->scheduled = false;
    return co;
}

static void co_release(Coroutine *co)
{
    live_count--;
    if (pool_count < pool_max) {
        co->pool_next = pool;
        pool = co;
        pool_count++;
        return;
    }
    munmap(co->map, co->map_size);
    g_free(co);
}

unsigned qco_pool_size(void)
{
    return pool_count;
}

void qco_enter(Coroutine *co)
{
    Coroutine *self = self_or_leader();

    if (co->caller || co == self) {
        fprintf(stderr, "qblk: coroutine entered while running\n");
        abort();
    }
    if (co->scheduled) {
        fprintf(stderr, "qblk: coroutine entered while scheduled to be woken\n");
        abort();
    }
    co->caller = self;
    co_switch(self, co, false);
    if (co->terminated) {
        co->caller = NULL;
        co_release(co);
    }
}

void coroutine_fn qco_yield(void)
{
    Coroutine *self = current;
    Coroutine *caller;

    if (!self) {
        fprintf(stderr, "qblk: qco_yield outside a coroutine\n");
        abort();
    }
    caller = self->caller;
    self->caller = NULL;
    co_switch(self, caller, false);
}

static void wake_bh(void *opaque)
{
    Coroutine *co = opaque;

    co->scheduled = false;
    qco_enter(co);
}

void qco_wake(Coroutine *co)
{
    if (co->scheduled) {
        fprintf(stderr, "qblk: coroutine woken twice\n");
        abort();
    }
    co->scheduled = true;
    qblk_bh_schedule(wake_bh, co);
}

static void sleep_done(void *opaque)
{
    qco_enter(opaque);
}

void coroutine_fn qco_sleep_ns(int64_t ns)
{
    qblk_timer_add_ns(ns, sleep_done, qco_self());
    qco_yield();
}
