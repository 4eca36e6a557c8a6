/* Zero-buffer detection, used to skip writing or to punch holes for all-zero
 * blocks; dispatches at runtime to the widest SIMD unit the CPU offers. */
#ifndef QBLK_UTIL_BUFFERISZERO_H
#define QBLK_UTIL_BUFFERISZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True iff all @len bytes at @buf are zero; @len 0 is true; any alignment. */
bool buffer_is_zero(const void *buf, size_t len);

#include <stdint.h>

/* The run at the start of @buf[0, @len) made of granules that are all zero
 * or all non-zero, like the first one (*@zero says which): a writer stores
 * the run in one request, as a zero write or as data. Granules are @gran
 * bytes and end where (@phase + position) is a multiple of @gran, so
 * @phase aligns them to the image (pass the buffer's image offset) or to
 * the buffer (pass 0). Returns the run's length, > 0 when @len > 0. */
size_t buffer_zero_run(const void *buf, size_t len, size_t gran, uint64_t phase, bool *zero);

typedef enum {
    BIZ_PORTABLE,
    BIZ_SSE2,
    BIZ_AVX2,
    BIZ_AVX512,
    BIZ__MAX
} BizVariant;

/* "portable", "sse2", "avx2", "avx512"; NULL when @v is out of range. */
const char *buffer_is_zero_variant_name(BizVariant v);

/* Compiled in and supported by the running CPU. */
bool buffer_is_zero_variant_available(BizVariant v);

BizVariant buffer_is_zero_current(void);

/* Test/bench hook: force variant @v; false (and no change) if unavailable. */
bool buffer_is_zero_select(BizVariant v);

/* Picks the best available variant once; later calls are no-ops, so they
 * will not undo buffer_is_zero_select().  Optional: first use does it too. */
void buffer_is_zero_init(void);

#endif /* QBLK_UTIL_BUFFERISZERO_H */
