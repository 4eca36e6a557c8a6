/* Output formatting of the qemu-io/qemu-img front ends (qemu-io's
 * statistics report, hexdump, sizes and times as QEMU prints them). Only
 * the tools print, so this lives beside them, not in the library. */
#include "tools/common/report.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- qemu-io report formatting ----------------------------------------- */

void qblk_cvtstr(double value, char *buf, size_t size)
{
    static const struct {
        double scale;
        const char *suffix;
    } units[] = {
        { 0x1p60, " EiB" }, { 0x1p50, " PiB" }, { 0x1p40, " TiB" },
        { 0x1p30, " GiB" }, { 0x1p20, " MiB" }, { 0x1p10, " KiB" },
    };
    const char *suffix = " bytes";
    /* Wide enough for "%.3f" of DBL_MAX / 2^60. */
    char num[400];
    size_t keep;
    char *trim;
    size_t i;

    if (size == 0) {
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (value >= units[i].scale) {
            suffix = units[i].suffix;
            snprintf(num, sizeof(num), "%.3f", value / units[i].scale);
            break;
        }
    }
    if (i == sizeof(units) / sizeof(units[0])) {
        snprintf(num, sizeof(num), "%f", value);
    }

    /* QEMU formats the number into size - strlen(suffix) bytes before it
     * looks for ".000", so an overlong number loses its tail first. */
    keep = size > strlen(suffix) ? size - strlen(suffix) - 1 : 0;
    if (strlen(num) > keep) {
        num[keep] = '\0';
    }
    /* Drops an all-zero fraction ("512.000000" -> "512"), and anything
     * after it, which also turns "1.000500" into "1". */
    trim = strstr(num, ".000");
    if (trim) {
        *trim = '\0';
    }
    snprintf(buf, size, "%s%s", num, suffix);
}

static void format_time(const struct timespec *t, char *buf, size_t size,
                        bool fixed)
{
    double frac = (double)t->tv_nsec / 1e9;
    unsigned hours = (unsigned)(t->tv_sec / 3600);
    unsigned minutes = (unsigned)((t->tv_sec / 60) % 60);
    double seconds = (double)(t->tv_sec % 60) + frac;

    if (fixed || t->tv_sec) {
        snprintf(buf, size, "%u:%02u:%05.2f", hours, minutes, seconds);
    } else {
        snprintf(buf, size, "%05.2f sec", frac);
    }
}

void qblk_timestr(const struct timespec *elapsed, char *buf, size_t size)
{
    format_time(elapsed, buf, size, false);
}

void qblk_timestr_compact(const struct timespec *elapsed, char *buf, size_t size)
{
    format_time(elapsed, buf, size, true);
}

/* Per-second rate; a zero elapsed time gives inf (or nan for 0/0), which the
 * report prints as QEMU does rather than guarding against. */
static double per_second(double value, const struct timespec *t)
{
    double seconds = (double)t->tv_sec + (double)t->tv_nsec / 1e9;

    return value / seconds;
}

void qblk_print_report(FILE *f, const char *op, const struct timespec *elapsed,
                       int64_t offset, int64_t count, int64_t total, int cnt,
                       bool csv)
{
    char ts[64];

    if (csv) {
        qblk_timestr_compact(elapsed, ts, sizeof(ts));
        fprintf(f, "%" PRId64 ",%d,%s,%.3f,%.3f\n", total, cnt, ts,
                per_second((double)total, elapsed),
                per_second((double)cnt, elapsed));
    } else {
        char size_text[64], rate_text[64];

        qblk_timestr(elapsed, ts, sizeof(ts));
        qblk_cvtstr((double)total, size_text, sizeof(size_text));
        qblk_cvtstr(per_second((double)total, elapsed), rate_text,
                    sizeof(rate_text));
        fprintf(f, "%s %" PRId64 "/%" PRId64 " bytes at offset %" PRId64 "\n",
                op, total, count, offset);
        fprintf(f, "%s, %d ops; %s (%s/sec and %.4f ops/sec)\n", size_text,
                cnt, ts, rate_text, per_second((double)cnt, elapsed));
    }
}

/* ---- qemu-img size_to_str ----------------------------------------------- */

void qblk_size_to_str(uint64_t value, char *buf, size_t size)
{
    static const char *const prefix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
    int exp;
    int unit;

    /* The binary exponent of value * 1024/1000 picks the unit, so the next
     * unit starts at 1000 of the previous one, not 1024.  Done in double
     * exactly like QEMU so the boundaries agree for huge values too. */
    frexp((double)value / (1000.0 / 1024.0), &exp);
    unit = (exp - 1) / 10;
    if (unit < 0) {
        unit = 0;
    }
    snprintf(buf, size, "%0.3g %sB",
             (double)value / (double)(UINT64_C(1) << (unit * 10)), prefix[unit]);
}

/* ---- qemu-io hexdump ----------------------------------------------------- */

void qblk_hexdump(FILE *f, const void *buf, int64_t offset, int64_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = buf;
    /* 16 offset digits + ":  " + 16 * 3 + " " + 16 + "\n" fits easily. */
    char line[128];

    for (int64_t i = 0; i < len; i += 16) {
        int n = len - i < 16 ? (int)(len - i) : 16;
        int pos;

        /* One fwrite per line: a -v read can dump megabytes. */
        pos = snprintf(line, sizeof(line), "%08" PRIx64 ":  ",
                       (uint64_t)offset + (uint64_t)i);
        for (int j = 0; j < n; j++) {
            line[pos++] = hex[p[i + j] >> 4];
            line[pos++] = hex[p[i + j] & 0xf];
            line[pos++] = ' ';
        }
        line[pos++] = ' ';
        for (int j = 0; j < n; j++) {
            unsigned char c = p[i + j];
            /* QEMU uses isalnum() in the C locale: ASCII letters and
             * digits only, independent of the caller's locale here. */
            bool show = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                        (c >= 'a' && c <= 'z');
            line[pos++] = show ? (char)c : '.';
        }
        line[pos++] = '\n';
        fwrite(line, 1, (size_t)pos, f);
    }
}

/* ---- small parsers ------------------------------------------------------ */

int qblk_parse_pattern(const char *arg)
{
    char *end;
    long v;

    /* No errno check: an overflowing value comes back as LONG_MAX/MIN,
     * which the range test rejects anyway. */
    v = strtol(arg, &end, 0);
    if (v < 0 || v > 255 || *end != '\0') {
        return -1;
    }
    return (int)v;
}

struct timespec qblk_timespec_sub(const struct timespec *b, const struct timespec *a)
{
    struct timespec r;

    r.tv_sec = b->tv_sec - a->tv_sec;
    r.tv_nsec = b->tv_nsec - a->tv_nsec;
    if (r.tv_nsec < 0) {
        r.tv_sec--;
        r.tv_nsec += 1000000000L;
    }
    return r;
}
