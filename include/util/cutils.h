/* Number parsing (QEMU's size syntax) and QDict key order, shared by the
 * library and the tools; every function reproduces QEMU 7.2 byte for byte.
 * The tools' printers are in tools/common/report.h. */
#ifndef QBLK_UTIL_CUTILS_H
#define QBLK_UTIL_CUTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* qemu_strtosz: decimal or 0x hex, one optional suffix b/k/M/G/T/P/E (any
 * case, default bytes), a fraction only together with a suffix above B
 * (rounded to the nearest byte, .5 up), nothing after the suffix, '+' allowed,
 * '-' rejected.  Returns 0 and sets *result; -EINVAL for malformed input;
 * -ERANGE above INT64_MAX.  *hex_with_suffix (may be NULL) becomes true when a
 * hex number carried a suffix, even if the string then fails to parse, because
 * QEMU prints its deprecation warning before it looks at what follows. */
int qblk_strtosz(const char *str, int64_t *result, bool *hex_with_suffix);
/* The same for QEMU's option sizes (e.g. resize's): -ERANGE only for what
 * does not fit 64 bits unsigned. */
int qblk_strtosz_u64(const char *str, uint64_t *result, bool *hex_with_suffix);

/* The QDict bucket (0..511) of key, which decides where qemu-img prints it. */
/* QEMU's id_wellformed: a letter, then letters, digits, '-', '.', '_'
 * (node names, job ids). */
bool qblk_id_wellformed(const char *id);
unsigned qblk_qdict_bucket(const char *key);

/* Reorders distinct keys, given in insertion order, into qemu-img's print
 * order: ascending bucket, and within a bucket the later-inserted key first. */
void qblk_qdict_order(const char **keys, size_t n);

#endif
