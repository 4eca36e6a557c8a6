/* Zero-buffer detection with runtime SIMD dispatch: scanning guest data for
 * zeroes sits on the write path, so it has to run at memory bandwidth. */
#include "util/bufferiszero.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define BIZ_X86 1
#include <immintrin.h>
#else
#define BIZ_X86 0
#endif

typedef bool (*BizFn)(const void *buf, size_t len);

/* may_alias: the buffer may hold any type; memcpy keeps unaligned loads
 * defined behaviour and still compiles to a single mov. */
typedef uint64_t __attribute__((may_alias)) biz_u64;

static inline uint64_t ldu64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint32_t ldu32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/*
 * len < 16.  Two overlapping loads cover any length in [n, 2n], which avoids
 * a byte loop and keeps every access inside the buffer.
 */
static inline bool small_is_zero(const unsigned char *p, size_t len)
{
    if (len >= 8) {
        return (ldu64(p) | ldu64(p + len - 8)) == 0;
    }
    if (len >= 4) {
        return (ldu32(p) | ldu32(p + len - 4)) == 0;
    }
    if (len == 0) {
        return true;
    }
    /* 1..3 bytes: first, middle and last cover them all. */
    return (p[0] | p[len >> 1] | p[len - 1]) == 0;
}

static bool buffer_zero_portable(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end;
    const biz_u64 *w, *e;
    uint64_t t;

    if (len < 16) {
        return small_is_zero(p, len);
    }
    end = p + len;

    /* Unaligned head and tail words let the body use aligned loads only. */
    t = ldu64(p) | ldu64(end - 8);
    if (t) {
        return false;
    }
    w = (const biz_u64 *)(((uintptr_t)p + 8) & ~(uintptr_t)7);
    e = (const biz_u64 *)((uintptr_t)end & ~(uintptr_t)7);

    /* One branch per 64 bytes instead of per word. */
    for (; e - w >= 8; w += 8) {
        t = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
        if (t) {
            return false;
        }
    }
    for (; w < e; w++) {
        t |= *w;
    }
    return t == 0;
}

#if BIZ_X86

__attribute__((target("sse2")))
static inline bool sse2_zero(__m128i v)
{
    return _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) == 0xffff;
}

/* 16 <= len < 32 */
__attribute__((target("sse2")))
static inline bool sse2_pair_is_zero(const unsigned char *p, size_t len)
{
    __m128i a = _mm_loadu_si128((const __m128i *)p);
    __m128i b = _mm_loadu_si128((const __m128i *)(p + len - 16));
    return sse2_zero(_mm_or_si128(a, b));
}

__attribute__((target("sse2")))
static bool buffer_zero_sse2(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end;
    const __m128i *q, *e;
    __m128i t;

    if (len < 16) {
        return small_is_zero(p, len);
    }
    end = p + len;

    t = _mm_or_si128(_mm_loadu_si128((const __m128i *)p),
                     _mm_loadu_si128((const __m128i *)(end - 16)));
    if (!sse2_zero(t)) {
        return false;
    }
    /* Head covers [p, q), tail covers [e, end); q <= e since len >= 16. */
    q = (const __m128i *)(((uintptr_t)p + 16) & ~(uintptr_t)15);
    e = (const __m128i *)((uintptr_t)end & ~(uintptr_t)15);

    if (e - q >= 4) {
        for (; e - q > 4; q += 4) {
            t = _mm_or_si128(_mm_or_si128(_mm_load_si128(q), _mm_load_si128(q + 1)),
                             _mm_or_si128(_mm_load_si128(q + 2), _mm_load_si128(q + 3)));
            if (!sse2_zero(t)) {
                return false;
            }
        }
        /* Re-reading part of the last block beats a remainder loop. */
        q = e - 4;
        t = _mm_or_si128(_mm_or_si128(_mm_load_si128(q), _mm_load_si128(q + 1)),
                         _mm_or_si128(_mm_load_si128(q + 2), _mm_load_si128(q + 3)));
        return sse2_zero(t);
    }
    for (; q < e; q++) {
        t = _mm_or_si128(t, _mm_load_si128(q));
    }
    return sse2_zero(t);
}

/* 32 <= len < 64 */
__attribute__((target("avx2")))
static inline bool avx2_pair_is_zero(const unsigned char *p, size_t len)
{
    __m256i a = _mm256_loadu_si256((const __m256i *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(p + len - 32));
    __m256i t = _mm256_or_si256(a, b);
    return _mm256_testz_si256(t, t);
}

__attribute__((target("avx2")))
static bool buffer_zero_avx2(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end;
    const __m256i *q, *e;
    __m256i t;

    if (len < 32) {
        return len >= 16 ? sse2_pair_is_zero(p, len) : small_is_zero(p, len);
    }
    end = p + len;

    t = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)p),
                        _mm256_loadu_si256((const __m256i *)(end - 32)));
    if (!_mm256_testz_si256(t, t)) {
        return false;
    }
    q = (const __m256i *)(((uintptr_t)p + 32) & ~(uintptr_t)31);
    e = (const __m256i *)((uintptr_t)end & ~(uintptr_t)31);

    if (e - q >= 4) {
        for (; e - q > 4; q += 4) {
            t = _mm256_or_si256(
                    _mm256_or_si256(_mm256_load_si256(q), _mm256_load_si256(q + 1)),
                    _mm256_or_si256(_mm256_load_si256(q + 2), _mm256_load_si256(q + 3)));
            if (!_mm256_testz_si256(t, t)) {
                return false;
            }
        }
        q = e - 4;
        t = _mm256_or_si256(
                _mm256_or_si256(_mm256_load_si256(q), _mm256_load_si256(q + 1)),
                _mm256_or_si256(_mm256_load_si256(q + 2), _mm256_load_si256(q + 3)));
        return _mm256_testz_si256(t, t);
    }
    for (; q < e; q++) {
        t = _mm256_or_si256(t, _mm256_load_si256(q));
    }
    return _mm256_testz_si256(t, t);
}

/* OR of three vectors in one instruction (truth table 0xfe = a|b|c). */
#define OR3_512(a, b, c) _mm512_ternarylogic_epi64((a), (b), (c), 0xfe)

__attribute__((target("avx512f")))
static inline __m512i avx512_or4(const __m512i *q)
{
    return OR3_512(_mm512_load_si512(q),
                   _mm512_load_si512(q + 1),
                   _mm512_or_si512(_mm512_load_si512(q + 2),
                                   _mm512_load_si512(q + 3)));
}

__attribute__((target("avx512f")))
static bool buffer_zero_avx512(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    const unsigned char *end;
    const __m512i *q, *e;
    __m512i t;

    if (len < 64) {
        if (len >= 32) {
            return avx2_pair_is_zero(p, len);
        }
        return len >= 16 ? sse2_pair_is_zero(p, len) : small_is_zero(p, len);
    }
    end = p + len;

    t = _mm512_or_si512(_mm512_loadu_si512(p), _mm512_loadu_si512(end - 64));
    if (_mm512_test_epi64_mask(t, t)) {
        return false;
    }
    q = (const __m512i *)(((uintptr_t)p + 64) & ~(uintptr_t)63);
    e = (const __m512i *)((uintptr_t)end & ~(uintptr_t)63);

    if (e - q >= 4) {
        /* 4 vectors per test: measured faster than 8 on Zen 5 from L2. */
        for (; e - q > 4; q += 4) {
            t = avx512_or4(q);
            if (_mm512_test_epi64_mask(t, t)) {
                return false;
            }
        }
        t = avx512_or4(e - 4);
        return !_mm512_test_epi64_mask(t, t);
    }
    for (; q < e; q++) {
        t = _mm512_or_si512(t, _mm512_load_si512(q));
    }
    return !_mm512_test_epi64_mask(t, t);
}

#endif /* BIZ_X86 */

static const struct {
    const char *name;
    BizFn fn;   /* NULL: not compiled for this architecture */
} biz_variants[BIZ__MAX] = {
    [BIZ_PORTABLE] = { "portable", buffer_zero_portable },
#if BIZ_X86
    [BIZ_SSE2]     = { "sse2",     buffer_zero_sse2 },
    [BIZ_AVX2]     = { "avx2",     buffer_zero_avx2 },
    [BIZ_AVX512]   = { "avx512",   buffer_zero_avx512 },
#else
    [BIZ_SSE2]     = { "sse2",     NULL },
    [BIZ_AVX2]     = { "avx2",     NULL },
    [BIZ_AVX512]   = { "avx512",   NULL },
#endif
};

static bool buffer_zero_lazy(const void *buf, size_t len);

/*
 * Written with atomics because init may race with callers on other threads;
 * every racer computes the same choice, so last-writer-wins is harmless.
 */
static BizFn biz_fn = buffer_zero_lazy;
static int biz_cur = BIZ_PORTABLE;
static bool biz_inited;

const char *buffer_is_zero_variant_name(BizVariant v)
{
    if ((unsigned)v >= BIZ__MAX) {
        return NULL;
    }
    return biz_variants[v].name;
}

bool buffer_is_zero_variant_available(BizVariant v)
{
    if ((unsigned)v >= BIZ__MAX || !biz_variants[v].fn) {
        return false;
    }
#if BIZ_X86
    /* libgcc/compiler-rt also check XCR0, so OS support for the register
     * state is covered, not just the CPUID bit. */
    __builtin_cpu_init();
    switch (v) {
    case BIZ_SSE2:
        return __builtin_cpu_supports("sse2");
    case BIZ_AVX2:
        return __builtin_cpu_supports("avx2");
    case BIZ_AVX512:
        return __builtin_cpu_supports("avx512f");
    default:
        break;
    }
#endif
    return true;
}

static void biz_set(BizVariant v)
{
    __atomic_store_n(&biz_cur, (int)v, __ATOMIC_RELAXED);
    __atomic_store_n(&biz_fn, biz_variants[v].fn, __ATOMIC_RELEASE);
    __atomic_store_n(&biz_inited, true, __ATOMIC_RELEASE);
}

bool buffer_is_zero_select(BizVariant v)
{
    if (!buffer_is_zero_variant_available(v)) {
        return false;
    }
    biz_set(v);
    return true;
}

void buffer_is_zero_init(void)
{
    if (__atomic_load_n(&biz_inited, __ATOMIC_ACQUIRE)) {
        return;
    }
    for (int v = BIZ__MAX - 1; v > BIZ_PORTABLE; v--) {
        if (buffer_is_zero_variant_available((BizVariant)v)) {
            biz_set((BizVariant)v);
            return;
        }
    }
    biz_set(BIZ_PORTABLE);
}

BizVariant buffer_is_zero_current(void)
{
    buffer_is_zero_init();
    return (BizVariant)__atomic_load_n(&biz_cur, __ATOMIC_RELAXED);
}

static bool buffer_zero_lazy(const void *buf, size_t len)
{
    buffer_is_zero_init();
    return __atomic_load_n(&biz_fn, __ATOMIC_ACQUIRE)(buf, len);
}

bool buffer_is_zero(const void *buf, size_t len)
{
    return __atomic_load_n(&biz_fn, __ATOMIC_ACQUIRE)(buf, len);
}

/* Bytes from position pos of a buffer of len to the next granule end. */
static size_t granule_len(size_t pos, size_t len, size_t gran, uint64_t phase)
{
    size_t to_end = gran - (size_t)((phase + pos) % gran);

    return to_end < len - pos ? to_end : len - pos;
}

size_t buffer_zero_run(const void *buf, size_t len, size_t gran, uint64_t phase, bool *zero)
{
    const uint8_t *p = buf;
    size_t run = len ? granule_len(0, len, gran, phase) : 0;

    *zero = buffer_is_zero(p, run);
    while (run < len) {
        size_t next = granule_len(run, len, gran, phase);

        if (buffer_is_zero(p + run, next) != *zero) {
            break;
        }
        run += next;
    }
    return run;
}
