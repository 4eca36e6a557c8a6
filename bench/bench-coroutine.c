/* Coroutine switch cost: qblk's enter+yield round trip against a plain
 * swapcontext round trip (what a naive ucontext design pays) and against
 * creating a coroutine from the pool. */
#include <stdio.h>
#include <ucontext.h>
#include "util/coroutine.h"
#include "util/main-loop.h"

#define ROUNDS 2000000

static void coroutine_fn yield_loop(void *opaque)
{
    for (;;) {
        qco_yield();
    }
}

static void coroutine_fn empty_entry(void *opaque)
{
}

static ucontext_t main_uc, co_uc;

static void uc_loop(void)
{
    for (;;) {
        swapcontext(&co_uc, &main_uc);
    }
}

static double ns_per(int64_t start, long n)
{
    return (double)(qblk_clock_ns() - start) / n;
}

int main(void)
{
    static char uc_stack[1 << 16];
    Coroutine *co = qco_create(yield_loop, NULL);
    double qblk_ns, uc_ns, create_ns;
    int64_t t;

    qblk_loop_init();
    qco_enter(co);          /* warm: first entry builds nothing more */
    t = qblk_clock_ns();
    for (long i = 0; i < ROUNDS; i++) {
        qco_enter(co);
    }
    qblk_ns = ns_per(t, ROUNDS);

    getcontext(&co_uc);
    co_uc.uc_stack.ss_sp = uc_stack;
    co_uc.uc_stack.ss_size = sizeof(uc_stack);
    co_uc.uc_link = NULL;
    makecontext(&co_uc, uc_loop, 0);
    swapcontext(&main_uc, &co_uc);
    t = qblk_clock_ns();
    for (long i = 0; i < ROUNDS; i++) {
        swapcontext(&main_uc, &co_uc);
    }
    uc_ns = ns_per(t, ROUNDS);

    qco_enter(qco_create(empty_entry, NULL));
    t = qblk_clock_ns();
    for (long i = 0; i < ROUNDS; i++) {
        qco_enter(qco_create(empty_entry, NULL));
    }
    create_ns = ns_per(t, ROUNDS);

    printf("%-44s %10s %10s\n", "coroutine operation (round trip)", "ns/op", "ratio");
    printf("%-44s %10.1f %10s\n", "qblk enter+yield (sigsetjmp/siglongjmp)", qblk_ns, "1.00");
    printf("%-44s %10.1f %9.2fx\n", "swapcontext pair (sigprocmask each switch)",
           uc_ns, uc_ns / qblk_ns);
    printf("%-44s %10.1f %9.2fx\n", "qblk create+run+finish (pooled stack)",
           create_ns, create_ns / qblk_ns);
    printf("ratio = ns/op relative to qblk enter+yield (higher is slower)\n");
    return 0;
}
