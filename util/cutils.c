/* Number parsing (qemu_strtosz) and QDict key order, shared by the library
 * and the tools. Plain libc only, so that any layer can use it. The
 * tools' output formatting lives in tools/common/report.c. */
#include "util/cutils.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

/* ---- qemu_strtosz ------------------------------------------------------- */

static int64_t suffix_multiplier(unsigned char c)
{
    switch (c) {
    case 'b': case 'B': return 1;
    case 'k': case 'K': return INT64_C(1) << 10;
    case 'm': case 'M': return INT64_C(1) << 20;
    case 'g': case 'G': return INT64_C(1) << 30;
    case 't': case 'T': return INT64_C(1) << 40;
    case 'p': case 'P': return INT64_C(1) << 50;
    case 'e': case 'E': return INT64_C(1) << 60;
    default: return 0;
    }
}

/* strtoull with QEMU's error mapping: no digits is -EINVAL, overflow
 * -ERANGE; *end is set in both cases, as QEMU's callers rely on it. */
static int parse_u64(const char *s, const char **end, int base, uint64_t *val)
{
    char *ep;

    errno = 0;
    *val = strtoull(s, &ep, base);
    *end = ep;
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (errno != 0) {
        return -errno;
    }
    return ep == s ? -EINVAL : 0;
}

int qblk_strtosz_u64(const char *str, uint64_t *result, bool *hex_with_suffix)
{
    const char *end;
    uint64_t val;
    /* The fraction as 0.64 fixed point, so the product with the multiplier
     * is exact and only the final rounding to a byte loses anything. */
    uint64_t frac = 0;
    bool hex = false;
    int64_t mul;
    int ret;

    if (hex_with_suffix) {
        *hex_with_suffix = false;
    }
    if (!str) {
        return -EINVAL;
    }

    /* Decimal first, even with a leading 0: "010" is ten, not eight.
     * Overflow is reported before the sign check, as QEMU does. */
    ret = parse_u64(str, &end, 10, &val);
    if (ret) {
        return ret;
    }
    if (memchr(str, '-', (size_t)(end - str))) {
        return -EINVAL;
    }

    if (val == 0 && (*end == 'x' || *end == 'X')) {
        ret = parse_u64(str, &end, 16, &val);
        if (ret) {
            return ret;
        }
        if (*end == '.') {
            return -EINVAL;
        }
        hex = true;
    } else if (*end == '.') {
        const char *f = end;
        char *fe;
        double d;

        errno = 0;
        d = strtod(f, &fe);
        if (fe == f || errno != 0) {
            /* QEMU steps over just the '.' here, which is what makes "5.k"
             * valid; on underflow it steps one past strtod's end instead. */
            end = fe + 1;
        } else if (memchr(f, 'e', (size_t)(fe - f)) ||
                   memchr(f, 'E', (size_t)(fe - f))) {
            return -EINVAL;
        } else {
            end = fe;
            /* When the digits round to 1.0 as a double, QEMU's conversion
             * of 2^64 to uint64_t yields 0 on x86-64, so "1.999...9k" is
             * 1024; reproduce that without the undefined conversion. */
            frac = d < 1.0 ? (uint64_t)(d * 0x1p64) : 0;
        }
    }

    mul = suffix_multiplier((unsigned char)*end);
    if (mul > 0) {
        if (hex && hex_with_suffix) {
            *hex_with_suffix = true;
        }
        end++;
    } else {
        mul = 1;
    }
    if (*end != '\0') {
        return -EINVAL;
    }

    if (mul == 1) {
        if (frac != 0) {
            return -EINVAL;
        }
    } else {
        unsigned __int128 whole = (unsigned __int128)val * (uint64_t)mul;
        unsigned __int128 part = (unsigned __int128)frac * (uint64_t)mul;

        /* part is 64.64 fixed point: the high half is whole bytes, bit 63
         * of the low half decides rounding (.5 goes up). */
        whole += (uint64_t)(part >> 64);
        whole += ((uint64_t)part) >> 63;
        if (whole >> 64) {
            return -ERANGE;
        }
        val = (uint64_t)whole;
    }
    *result = val;
    return 0;
}

int qblk_strtosz(const char *str, int64_t *result, bool *hex_with_suffix)
{
    uint64_t val;
    int ret = qblk_strtosz_u64(str, &val, hex_with_suffix);

    /* qemu-io and qemu-img both refuse what does not fit an int64_t. */
    if (ret == 0 && val > INT64_MAX) {
        ret = -ERANGE;
    }
    if (ret == 0) {
        *result = (int64_t)val;
    }
    return ret;
}

/* ---- QDict key order ---------------------------------------------------- */

#define QDICT_BUCKETS 512

unsigned qblk_qdict_bucket(const char *key)
{
    const unsigned char *s = (const unsigned char *)key;
    uint32_t h = UINT32_C(0x238F13AF) * (uint32_t)strlen(key);

    for (uint32_t i = 0; s[i]; i++) {
        h += (uint32_t)s[i] << (i * 5 % 24);
    }
    h = UINT32_C(1103515243) * h + 12345;
    return h % QDICT_BUCKETS;
}

void qblk_qdict_order(const char **keys, size_t n)
{
    /* Insertion sort over the insertion order: each new key goes in front
     * of every earlier key of the same or a higher bucket, which is exactly
     * QDict's "newest first within a bucket". Key lists are short. */
    for (size_t i = 1; i < n; i++) {
        const char *key = keys[i];
        unsigned b = qblk_qdict_bucket(key);
        size_t j = i;

        while (j > 0 && qblk_qdict_bucket(keys[j - 1]) >= b) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = key;
    }
}

bool qblk_id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("-._", *p)) {
            return false;
        }
    }
    return true;
}
