/* Throughput of each buffer_is_zero() variant on all-zero buffers, relative
 * to a compiler-vectorized OR-reduce, the bound a zero scan should reach. */
#include "util/bufferiszero.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_TRIALS 4

/*
 * The baseline: no early exit, just a reduction the compiler is free to
 * vectorize.  GCC only vectorizes this at -O3 (the -O2 "very cheap" cost
 * model rejects it), so ask for vectorization explicitly; otherwise the
 * baseline would be scalar and the comparison meaningless.
 */
#if defined(__clang__)
#define BASELINE_OPT
#else
#define BASELINE_OPT __attribute__((optimize("tree-vectorize")))
#endif

BASELINE_OPT
static uint64_t or_reduce_default(const uint64_t *p, size_t n)
{
    uint64_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc;
}

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_OR_REDUCE_AVX512 1
BASELINE_OPT __attribute__((target("avx512f")))
static uint64_t or_reduce_avx512(const uint64_t *p, size_t n)
{
    uint64_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        acc |= p[i];
    }
    return acc;
}
#endif

static uint64_t (*or_reduce)(const uint64_t *p, size_t n) = or_reduce_default;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* -1 selects the OR-reduce baseline, otherwise a BizVariant. */
static unsigned long run(int which, const void *buf, size_t len,
                         unsigned long iters)
{
    unsigned long hits = 0;

    for (unsigned long i = 0; i < iters; i++) {
        /* Clobber memory so the call can't be hoisted or merged across
         * iterations; the result feeds hits so it can't be dropped. */
        asm volatile("" ::: "memory");
        if (which < 0) {
            hits += or_reduce(buf, len / 8) == 0;
        } else {
            hits += buffer_is_zero(buf, len);
        }
    }
    return hits;
}

/* Best of N_TRIALS runs of ~cell_time/N_TRIALS each, in GB/s. */
static double measure(int which, const void *buf, size_t len, double cell_time)
{
    double trial_time = cell_time / N_TRIALS;
    unsigned long iters = 1;
    double best = 0;
    double t;

    if (which >= 0 && !buffer_is_zero_select(which)) {
        return 0;
    }

    /* Calibrate: grow until one batch takes a noticeable fraction. */
    for (;;) {
        double t0 = now();
        unsigned long hits = run(which, buf, len, iters);

        t = now() - t0;
        if (hits != iters) {
            fprintf(stderr, "wrong result on zero buffer\n");
            exit(1);
        }
        if (t >= trial_time / 4 || iters >= (1ul << 40)) {
            break;
        }
        iters *= 2;
    }
    iters = (unsigned long)(iters * (trial_time / (t > 0 ? t : 1e-9))) + 1;

    for (int trial = 0; trial < N_TRIALS; trial++) {
        double t0 = now();
        unsigned long hits = run(which, buf, len, iters);
        double gbs;

        t = now() - t0;
        if (hits != iters) {
            fprintf(stderr, "wrong result on zero buffer\n");
            exit(1);
        }
        gbs = (double)len * iters / t / 1e9;
        if (gbs > best) {
            best = gbs;
        }
    }
    return best;
}

static void size_name(char *s, size_t n, size_t len)
{
    if (len >= (1u << 20)) {
        snprintf(s, n, "%zu MiB", len >> 20);
    } else {
        snprintf(s, n, "%zu KiB", len >> 10);
    }
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = { 4 << 10, 64 << 10, 1 << 20, 64 << 20 };
    double cell_time = 0.2;
    char name[32];

    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        cell_time = 0.02;
    } else if (argc > 1) {
        fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
        return 2;
    }

#ifdef HAVE_OR_REDUCE_AVX512
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        or_reduce = or_reduce_avx512;
    }
#endif

    buffer_is_zero_init();
    printf("default variant: %s\n\n",
           buffer_is_zero_variant_name(buffer_is_zero_current()));
    printf("%-9s %15s", "size", "or-reduce GB/s");
    for (int v = 0; v < BIZ__MAX; v++) {
        if (buffer_is_zero_variant_available(v)) {
            snprintf(name, sizeof(name), "%s GB/s (ratio)",
                     buffer_is_zero_variant_name(v));
            printf("  %22s", name);
        }
    }
    printf("  %14s\n", "best/or-reduce");

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t len = sizes[i];
        /* Reused across all iterations so small sizes stay cache-hot. */
        void *buf = aligned_alloc(64, len);
        double base, best = 0;

        if (!buf) {
            perror("aligned_alloc");
            return 1;
        }
        memset(buf, 0, len);

        base = measure(-1, buf, len, cell_time);
        size_name(name, sizeof(name), len);
        printf("%-9s %15.1f", name, base);
        for (int v = 0; v < BIZ__MAX; v++) {
            if (buffer_is_zero_variant_available(v)) {
                double gbs = measure(v, buf, len, cell_time);
                char cell[40];

                snprintf(cell, sizeof(cell), "%.1f (%.2f)", gbs, gbs / base);
                printf("  %22s", cell);
                if (gbs > best) {
                    best = gbs;
                }
            }
        }
        printf("  %14.2f\n", best / base);
        fflush(stdout);
        free(buf);
    }
    return 0;
}
