/* Checks every buffer_is_zero() variant the CPU can run against a byte loop,
 * over all short lengths and alignments and a few large buffers. */
#include "util/bufferiszero.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#define MAX_LEN     4096
#define MAX_ALIGN   64
/* 0xff guards on both sides make any over-read give a wrong answer even
 * without ASan, as long as it strays by less than this. */
#define GUARD       64

static BizVariant variants[BIZ__MAX];
static int n_variants;

static bool ref_is_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static void check_variants(const unsigned char *p, size_t len, bool expect,
                           size_t align, long pos)
{
    for (int i = 0; i < n_variants; i++) {
        buffer_is_zero_select(variants[i]);
        if (buffer_is_zero(p, len) != expect) {
            g_test_message("variant %s len %zu align %zu nonzero at %ld: "
                           "expected %d",
                           buffer_is_zero_variant_name(variants[i]),
                           len, align, pos, expect);
            g_assert_cmpint(!expect, ==, expect);
        }
    }
}

static void check_pos(unsigned char *w, size_t len, size_t align, size_t pos,
                      bool use_ref)
{
    w[pos] = 0x01 << (pos & 7);
    /* The reference is redundant when we know the answer by construction;
     * skipping it on long buffers keeps the sweep fast under sanitizers. */
    if (use_ref) {
        g_assert_false(ref_is_zero(w, len));
    }
    check_variants(w, len, false, align, (long)pos);
    w[pos] = 0;
}

/* Positions where an off-by-one in head/body/tail splitting would hide. */
static void check_long(unsigned char *w, size_t len, size_t align,
                       uint32_t *seed)
{
    size_t head = (MAX_ALIGN - ((uintptr_t)w & (MAX_ALIGN - 1))) & (MAX_ALIGN - 1);
    size_t body_end = (((uintptr_t)w + len) & ~(uintptr_t)(MAX_ALIGN - 1)) -
                      (uintptr_t)w;
    size_t cand[] = {
        0, 1, len / 2, len - 2, len - 1,
        head, head ? head - 1 : 1, head + 63, head + 256,
        body_end, body_end - 1, body_end - 64, body_end - 65,
        0, 0,
    };
    *seed = *seed * 1103515245u + 12345u;
    cand[13] = (*seed >> 8) % len;
    *seed = *seed * 1103515245u + 12345u;
    cand[14] = (*seed >> 8) % len;

    for (size_t i = 0; i < G_N_ELEMENTS(cand); i++) {
        if (cand[i] < len) {
            check_pos(w, len, align, cand[i], false);
        }
    }
}

static void test_lengths_alignments(void)
{
    unsigned char *buf = g_malloc(MAX_ALIGN + GUARD + MAX_LEN + GUARD);
    /* Start from a 64-byte boundary so "align" really is the alignment. */
    unsigned char *base = (unsigned char *)
        (((uintptr_t)buf + GUARD + MAX_ALIGN - 1) & ~(uintptr_t)(MAX_ALIGN - 1));
    uint32_t seed = 1;

    for (size_t align = 0; align < MAX_ALIGN; align++) {
        unsigned char *w = base + align;

        memset(buf, 0xff, MAX_ALIGN + GUARD + MAX_LEN + GUARD);
        for (size_t len = 0; len <= MAX_LEN; len++) {
            if (len) {
                w[len - 1] = 0;     /* grow the zero window by one byte */
            }
            g_assert_true(ref_is_zero(w, len));
            check_variants(w, len, true, align, -1);

            if (len <= 256) {
                for (size_t pos = 0; pos < len; pos++) {
                    check_pos(w, len, align, pos, true);
                }
            } else {
                check_long(w, len, align, &seed);
            }
        }
    }
    g_free(buf);
}

/* Exact-size allocations so that ASan sees any read past the end. */
static void test_exact_alloc(void)
{
    for (size_t len = 0; len <= 512; len++) {
        unsigned char *p = g_malloc0(len);

        check_variants(p, len, true, 0, -1);
        if (len) {
            check_pos(p, len, 0, len - 1, true);
            check_pos(p, len, 0, 0, true);
        }
        g_free(p);
    }
}

static void test_large(gconstpointer opaque)
{
    size_t len = GPOINTER_TO_SIZE(opaque);
    unsigned char *p = g_malloc0(len);
    size_t pos[] = { 0, len / 2, len - 2, len - 1 };

    check_variants(p, len, true, 0, -1);
    for (size_t i = 0; i < G_N_ELEMENTS(pos); i++) {
        check_pos(p, len, 0, pos[i], false);
        /* check_pos restores the byte; make sure the buffer is zero again. */
        check_variants(p, len, true, 0, -1);
    }
    /* Also at an odd offset, so the vector paths take the unaligned head. */
    check_variants(p + 1, len - 1, true, 1, -1);
    check_pos(p + 1, len - 1, 1, len - 2, false);
    g_free(p);
}

static void test_api(void)
{
    BizVariant best = BIZ_PORTABLE;

    g_assert_cmpstr(buffer_is_zero_variant_name(BIZ_PORTABLE), ==, "portable");
    g_assert_cmpstr(buffer_is_zero_variant_name(BIZ_SSE2), ==, "sse2");
    g_assert_cmpstr(buffer_is_zero_variant_name(BIZ_AVX2), ==, "avx2");
    g_assert_cmpstr(buffer_is_zero_variant_name(BIZ_AVX512), ==, "avx512");
    g_assert_null(buffer_is_zero_variant_name(BIZ__MAX));
    g_assert_true(buffer_is_zero_variant_available(BIZ_PORTABLE));
    g_assert_false(buffer_is_zero_variant_available(BIZ__MAX));
    g_assert_false(buffer_is_zero_select(BIZ__MAX));

    for (int v = 0; v < BIZ__MAX; v++) {
        if (buffer_is_zero_variant_available(v)) {
            best = v;
        }
    }
    /* main() ran no select yet, so lazy init must have picked the best. */
    g_assert_cmpint(buffer_is_zero_current(), ==, best);
    buffer_is_zero_init();
    g_assert_cmpint(buffer_is_zero_current(), ==, best);

    for (int v = 0; v < BIZ__MAX; v++) {
        if (buffer_is_zero_variant_available(v)) {
            g_assert_true(buffer_is_zero_select(v));
            g_assert_cmpint(buffer_is_zero_current(), ==, v);
            /* init after select must not override the forced choice */
            buffer_is_zero_init();
            g_assert_cmpint(buffer_is_zero_current(), ==, v);
        } else {
            g_assert_false(buffer_is_zero_select(v));
        }
    }
}

/* Runs group granules of one kind; granules follow the phase, so the
 * first one may be short (copy-on-read's image alignment). */
static void test_zero_run(void)
{
    uint8_t buf[40] = { 0 };
    bool zero;

    buf[12] = 1;                         /* granule [10, 20) of phase 0 is data */
    g_assert_cmpuint(buffer_zero_run(buf, 40, 10, 0, &zero), ==, 10);
    g_assert_true(zero);
    g_assert_cmpuint(buffer_zero_run(buf + 10, 30, 10, 10, &zero), ==, 10);
    g_assert_false(zero);
    g_assert_cmpuint(buffer_zero_run(buf + 20, 20, 10, 20, &zero), ==, 20);
    g_assert_true(zero);
    /* Phase 5: granules end at 5, 15, 25, ...; [5, 15) holds the data. */
    g_assert_cmpuint(buffer_zero_run(buf, 40, 10, 5, &zero), ==, 5);
    g_assert_true(zero);
    g_assert_cmpuint(buffer_zero_run(buf + 5, 35, 10, 10, &zero), ==, 10);
    g_assert_false(zero);
    /* The last granule is clipped at the buffer's end. */
    g_assert_cmpuint(buffer_zero_run(buf + 15, 25, 10, 20, &zero), ==, 25);
    g_assert_true(zero);
    g_assert_cmpuint(buffer_zero_run(buf, 0, 10, 0, &zero), ==, 0);
}

int main(int argc, char **argv)
{
    static const size_t large[] = { 4096, 64 << 10, 1 << 20, 64 << 20 };
    static const unsigned char z[100];

    g_test_init(&argc, &argv, NULL);

    /* Before anything selects a variant: exercises the lazy init path. */
    g_assert_true(buffer_is_zero(z, sizeof(z)));

    for (int v = 0; v < BIZ__MAX; v++) {
        if (buffer_is_zero_variant_available(v)) {
            variants[n_variants++] = v;
        }
    }

    g_test_add_func("/bufferiszero/api", test_api);
    g_test_add_func("/bufferiszero/lengths-alignments", test_lengths_alignments);
    g_test_add_func("/bufferiszero/exact-alloc", test_exact_alloc);
    g_test_add_func("/bufferiszero/zero-run", test_zero_run);
    for (size_t i = 0; i < G_N_ELEMENTS(large); i++) {
        char *path = g_strdup_printf("/bufferiszero/large/%zu", large[i]);
        g_test_add_data_func(path, GSIZE_TO_POINTER(large[i]), test_large);
        g_free(path);
    }
    return g_test_run();
}
