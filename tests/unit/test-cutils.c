/* Checks the qemu-io/qemu-img parsers and formatters against the outputs
 * recorded from QEMU 7.2 in docs/cli.md (sections 1.3-1.5, 2.1, 2.4). */
#include "util/cutils.h"
#include "tools/common/report.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- qblk_strtosz -------------------------------------------------------- */

static void check_sz(const char *str, int64_t expect, bool expect_hex)
{
    int64_t res = -42;
    bool hex = !expect_hex;
    int ret = qblk_strtosz(str, &res, &hex);

    if (ret != 0) {
        g_error("strtosz(\"%s\") failed with %d", str, ret);
    }
    g_assert_cmpint(res, ==, expect);
    g_assert_cmpint(hex, ==, expect_hex);
}

static void check_sz_err(const char *str, int expect_err)
{
    int64_t res = -42;
    int ret = qblk_strtosz(str, &res, NULL);

    if (ret != expect_err) {
        g_error("strtosz(\"%s\") returned %d (result %" G_GINT64_FORMAT
                "), expected %d", str, ret, res, expect_err);
    }
    /* A failed parse must leave the output alone. */
    g_assert_cmpint(res, ==, -42);
}

static void test_strtosz_valid(void)
{
    check_sz("0", 0, false);
    check_sz("1000", 1000, false);
    check_sz("010", 10, false);
    check_sz("+512", 512, false);
    check_sz("10b", 10, false);
    check_sz("1B", 1, false);
    check_sz("1k", 1024, false);
    check_sz("1K", 1024, false);
    check_sz("1m", 1 << 20, false);
    check_sz("1.5M", 3 << 19, false);
    check_sz("1g", INT64_C(1) << 30, false);
    check_sz("1T", INT64_C(1) << 40, false);
    check_sz("1p", INT64_C(1) << 50, false);
    check_sz("1e", INT64_C(1) << 60, false);
    check_sz("7E", INT64_C(7) << 60, false);
    check_sz("9223372036854775807", INT64_MAX, false);
    check_sz("0x1000", 4096, false);
    check_sz("0X10", 16, false);
    check_sz("0xE", 14, false);
}

static void test_strtosz_fraction(void)
{
    check_sz("1.5k", 1536, false);
    check_sz("5.k", 5120, false);
    check_sz("1.1k", 1126, false);
    check_sz("1.999k", 2047, false);
    check_sz("1.0005k", 1025, false);
    check_sz("0.0004k", 0, false);
    check_sz("0.5k", 512, false);
    /* Rounds to 1.0 as a double; QEMU's conversion then drops it. */
    check_sz("1.999999999999999999999k", 1024, false);
}

static void test_strtosz_hex_suffix(void)
{
    int64_t res;
    bool hex = false;

    check_sz("0x1k", 1024, true);
    check_sz("0x2M", 2 << 20, true);
    check_sz("0x10b", 0x10b, false); /* b is a hex digit here */
    check_sz("0x3G", INT64_C(3) << 30, true);
    /* The flag may be NULL. */
    g_assert_cmpint(qblk_strtosz("0x1k", &res, NULL), ==, 0);
    g_assert_cmpint(res, ==, 1024);
    /* QEMU warns before it sees the junk after the suffix. */
    g_assert_cmpint(qblk_strtosz("0x1kb", &res, &hex), ==, -EINVAL);
    g_assert_true(hex);
    g_assert_cmpint(qblk_strtosz("1kb", &res, &hex), ==, -EINVAL);
    g_assert_false(hex);
}

static void test_strtosz_invalid(void)
{
    static const char *const bad[] = {
        "1kb", "1KiB", "1kB", "1k5", "1.5", "2.5B", ".5k", "1e3", "1.e3k",
        "0x1.8k", "0x", "00x10", "-1", "-0", " -1", "-1k", "abc", "b", "",
        "1 ", "k", "1.5x", "0xg",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        check_sz_err(bad[i], -EINVAL);
    }
    check_sz_err(NULL, -EINVAL);
}

static void test_strtosz_range(void)
{
    check_sz_err("8E", -ERANGE);
    check_sz_err("9E", -ERANGE);
    check_sz_err("16E", -ERANGE);
    check_sz_err("9223372036854775808", -ERANGE);
    check_sz_err("18446744073709551615", -ERANGE);
    check_sz_err("18446744073709551616", -ERANGE);
    check_sz_err("99999999999999999999k", -ERANGE);
    check_sz_err("0x10000000000000000", -ERANGE);
    check_sz_err("0x8000000000000000", -ERANGE);
    check_sz_err("8388608T", -ERANGE);
    check_sz("8388607T", INT64_C(8388607) << 40, false);
}

/* ---- qblk_cvtstr --------------------------------------------------------- */

static void check_cvt(double v, const char *expect)
{
    char buf[64];

    qblk_cvtstr(v, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, expect);
}

static void test_cvtstr(void)
{
    check_cvt(512, "512 bytes");
    check_cvt(1, "1 bytes");
    check_cvt(0, "0 bytes");
    check_cvt(4096, "4 KiB");
    check_cvt(64 << 20, "64 MiB");
    check_cvt(1 << 30, "1 GiB");
    check_cvt(3584, "3.500 KiB");
    check_cvt(3 << 19, "1.500 MiB");
    check_cvt(868.254782, "868.254782 bytes");
    check_cvt(0.748196, "0.748196 bytes");
    check_cvt(0x370000, "3.438 MiB");
    check_cvt(1.0005, "1 bytes");
    check_cvt(INFINITY, "inf EiB");
    check_cvt(0x1p60, "1 EiB");
    check_cvt(0x1p50 * 1.5, "1.500 PiB");
    check_cvt(0x1p40 * 2, "2 TiB");
    check_cvt(1023, "1023 bytes");
    check_cvt(1024, "1 KiB");
    check_cvt(884.741 * 1024, "884.741 KiB");
    check_cvt(35.038 * 1024 * 1024, "35.038 MiB");
}

static void test_cvtstr_small_buffer(void)
{
    char buf[8];

    /* QEMU keeps size - 5 characters of the number for a 4-char suffix. */
    qblk_cvtstr(123456.0 * 1024, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "120 MiB");
    qblk_cvtstr(512, buf, 1);
    g_assert_cmpstr(buf, ==, "");
}

/* ---- time strings and the report ---------------------------------------- */

static void check_time(time_t sec, long nsec, const char *expect,
                       const char *expect_compact)
{
    struct timespec t = { .tv_sec = sec, .tv_nsec = nsec };
    char buf[64];

    qblk_timestr(&t, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, expect);
    qblk_timestr_compact(&t, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, expect_compact);
}

static void test_timestr(void)
{
    check_time(0, 0, "00.00 sec", "0:00:00.00");
    check_time(0, 150000000, "00.15 sec", "0:00:00.15");
    check_time(0, 5575264, "00.01 sec", "0:00:00.01");
    check_time(1, 500000000, "0:00:01.50", "0:00:01.50");
    check_time(61, 550000000, "0:01:01.55", "0:01:01.55");
    check_time(5482, 340000000, "1:31:22.34", "1:31:22.34");
    check_time(36000, 0, "10:00:00.00", "10:00:00.00");
}

static char *report(const struct timespec *t, const char *op, int64_t offset,
                    int64_t count, bool csv)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    g_assert_nonnull(f);
    qblk_print_report(f, op, t, offset, count, count, 1, csv);
    fclose(f);
    return text;
}

static void check_report(time_t sec, long nsec, const char *op, int64_t offset,
                         int64_t count, const char *expect)
{
    struct timespec t = { .tv_sec = sec, .tv_nsec = nsec };
    char *text = report(&t, op, offset, count, false);

    g_assert_cmpstr(text, ==, expect);
    free(text);
}

/* Only the first line and "<SIZE>, " survive the iotests filters; check
 * those for a range of sizes with a real, varying elapsed time. */
static void test_report_filtered_part(void)
{
    static const struct {
        const char *op;
        int64_t offset, count;
        const char *line1, *size;
    } cases[] = {
        { "wrote", 0, 4096, "wrote 4096/4096 bytes at offset 0\n", "4 KiB, " },
        { "read", 0, 67108864, "read 67108864/67108864 bytes at offset 0\n", "64 MiB, " },
        { "read", 0, 0, "read 0/0 bytes at offset 0\n", "0 bytes, " },
        { "read", 512, 512, "read 512/512 bytes at offset 512\n", "512 bytes, " },
        { "wrote", 1024, 3584, "wrote 3584/3584 bytes at offset 1024\n", "3.500 KiB, " },
        { "discard", 65536, 65536, "discard 65536/65536 bytes at offset 65536\n", "64 KiB, " },
        { "read", INT64_C(4294967296), 1, "read 1/1 bytes at offset 4294967296\n", "1 bytes, " },
    };
    struct timespec t0, t1, dt;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text, *nl;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        dt = qblk_timespec_sub(&t1, &t0);
        text = report(&dt, cases[i].op, cases[i].offset, cases[i].count, false);
        nl = strchr(text, '\n');
        g_assert_nonnull(nl);
        g_assert_cmpint(strncmp(text, cases[i].line1, strlen(cases[i].line1)), ==, 0);
        g_assert_true(g_str_has_prefix(nl + 1, cases[i].size));
        g_assert_true(g_str_has_suffix(text, " ops/sec)\n"));
        free(text);
    }
}

static void test_report_exact(void)
{
    /* Elapsed times chosen so the rates match lines in cli.md 1.4. */
    check_report(0, 5575264, "wrote", 0, 3584,
                 "wrote 3584/3584 bytes at offset 0\n"
                 "3.500 KiB, 1 ops; 00.01 sec (627.773 KiB/sec and 179.3637 ops/sec)\n");
    check_report(1, 502383358, "read", 0, 512,
                 "read 512/512 bytes at offset 0\n"
                 "512 bytes, 1 ops; 0:00:01.50 (340.791847 bytes/sec and 0.6656 ops/sec)\n");
    check_report(0, 150000000, "read", 0, 512,
                 "read 512/512 bytes at offset 0\n"
                 "512 bytes, 1 ops; 00.15 sec (3.333 KiB/sec and 6.6667 ops/sec)\n");
    check_report(0, 0, "discard", 0, 512,
                 "discard 512/512 bytes at offset 0\n"
                 "512 bytes, 1 ops; 00.00 sec (inf EiB/sec and inf ops/sec)\n");
}

static void test_report_csv(void)
{
    struct timespec t = { .tv_sec = 1, .tv_nsec = 500715918 };
    char *text = report(&t, "read", 0, 512, true);

    g_assert_cmpstr(text, ==, "512,1,0:00:01.50,341.170,0.666\n");
    free(text);

    t = (struct timespec){ .tv_sec = 5482, .tv_nsec = 480000000 };
    text = report(&t, "wrote", 0, 4096, true);
    g_assert_cmpstr(text, ==, "4096,1,1:31:22.48,0.747,0.000\n");
    free(text);
}

static void test_timespec_sub(void)
{
    struct timespec a = { 5, 900000000 }, b = { 7, 100000000 }, r;

    r = qblk_timespec_sub(&b, &a);
    g_assert_cmpint(r.tv_sec, ==, 1);
    g_assert_cmpint(r.tv_nsec, ==, 200000000);
    r = qblk_timespec_sub(&b, &b);
    g_assert_cmpint(r.tv_sec, ==, 0);
    g_assert_cmpint(r.tv_nsec, ==, 0);
    a = (struct timespec){ 3, 100 };
    b = (struct timespec){ 3, 250 };
    r = qblk_timespec_sub(&b, &a);
    g_assert_cmpint(r.tv_sec, ==, 0);
    g_assert_cmpint(r.tv_nsec, ==, 150);
}

/* ---- qblk_size_to_str ---------------------------------------------------- */

static void test_size_to_str(void)
{
    static const struct {
        uint64_t v;
        const char *s;
    } cases[] = {
        { 0, "0 B" },
        { 512, "512 B" },
        { 1024, "1 KiB" },
        { 1536, "1.5 KiB" },
        { 200704, "196 KiB" },
        { 34078720, "32.5 MiB" },
        { 1022976, "999 KiB" },
        { 1024000, "0.977 MiB" },
        { 1048064, "1 MiB" },
        { 1048576, "1 MiB" },
        { 123457024, "118 MiB" },
        { 1073741824, "1 GiB" },
        { UINT64_C(1073741824000), "0.977 TiB" },
        { UINT64_C(3628388371968), "3.3 TiB" },
        { 999, "999 B" },
        { 1000, "0.977 KiB" },
        /* Still KiB (below 1000 KiB), so %0.3g rounds it to 1e+03. */
        { 1023999, "1e+03 KiB" },
        { UINT64_C(1) << 60, "1 EiB" },
        { UINT64_MAX, "16 EiB" },
    };
    char buf[32];

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        qblk_size_to_str(cases[i].v, buf, sizeof(buf));
        g_assert_cmpstr(buf, ==, cases[i].s);
    }
}

/* ---- qblk_hexdump -------------------------------------------------------- */

static char *dump(const void *buf, int64_t offset, int64_t len)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    g_assert_nonnull(f);
    qblk_hexdump(f, buf, offset, len);
    fclose(f);
    return text;
}

static void check_dump(const void *buf, int64_t offset, int64_t len,
                       const char *expect)
{
    char *text = dump(buf, offset, len);

    g_assert_cmpstr(text, ==, expect);
    free(text);
}

static void test_hexdump(void)
{
    static const char txt[] = "Hello, World! 0123456789";
    unsigned char bin[16] = { 0x0a, 0x00, 0x7f, 0xff };
    unsigned char zero[16] = { 0 };
    unsigned char mixed[16];

    check_dump(txt, 0, 20,
               "00000000:  48 65 6c 6c 6f 2c 20 57 6f 72 6c 64 21 20 30 31  Hello..World..01\n"
               "00000010:  32 33 34 35  2345\n");
    check_dump(txt + 3, 3, 21,
               "00000003:  6c 6f 2c 20 57 6f 72 6c 64 21 20 30 31 32 33 34  lo..World..01234\n"
               "00000013:  35 36 37 38 39  56789\n");
    check_dump(txt, 0, 8, "00000000:  48 65 6c 6c 6f 2c 20 57  Hello..W\n");
    check_dump(bin, 0x20, 16,
               "00000020:  0a 00 7f ff 00 00 00 00 00 00 00 00 00 00 00 00  ................\n");
    check_dump(zero, INT64_C(0x123456789), 16,
               "123456789:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................\n");
    check_dump(zero, INT64_C(0x100000000), 1, "100000000:  00  .\n");
    check_dump(zero, 0, 0, "");

    /* Only ASCII letters and digits show; punctuation and high bytes don't. */
    for (int i = 0; i < 16; i++) {
        mixed[i] = (unsigned char)("aZ9_~ \t\x80\xe9\xffzA0@[`"[i]);
    }
    check_dump(mixed, 0xfffffff0, 16,
               "fffffff0:  61 5a 39 5f 7e 20 09 80 e9 ff 7a 41 30 40 5b 60  aZ9.......zA0...\n");
}

static void test_hexdump_large(void)
{
    enum { LEN = 4096 + 7 };
    unsigned char *buf = g_malloc(LEN);
    char *text;
    size_t lines = 0;

    for (int i = 0; i < LEN; i++) {
        buf[i] = (unsigned char)i;
    }
    text = dump(buf, 0, LEN);
    for (char *p = text; *p; p++) {
        lines += *p == '\n';
    }
    g_assert_cmpuint(lines, ==, (LEN + 15) / 16);
    g_assert_true(g_str_has_prefix(text,
        "00000000:  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................\n"
        "00000010:  10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f  ................\n"
        "00000020:  20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d 2e 2f  ................\n"
        "00000030:  30 31 32 33 34 35 36 37 38 39 3a 3b 3c 3d 3e 3f  0123456789......\n"));
    g_assert_true(g_str_has_suffix(text,
        "00001000:  00 01 02 03 04 05 06  .......\n"));
    free(text);
    g_free(buf);
}

/* ---- qblk_parse_pattern -------------------------------------------------- */

static void test_parse_pattern(void)
{
    g_assert_cmpint(qblk_parse_pattern("077"), ==, 63);
    g_assert_cmpint(qblk_parse_pattern("0xcd"), ==, 0xcd);
    g_assert_cmpint(qblk_parse_pattern("0"), ==, 0);
    g_assert_cmpint(qblk_parse_pattern("1"), ==, 1);
    g_assert_cmpint(qblk_parse_pattern("255"), ==, 255);
    g_assert_cmpint(qblk_parse_pattern("0xff"), ==, 255);
    g_assert_cmpint(qblk_parse_pattern("0377"), ==, 255);
    g_assert_cmpint(qblk_parse_pattern("0x100"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("256"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("-1"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("abc"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("1k"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("08"), ==, -1);
    g_assert_cmpint(qblk_parse_pattern("99999999999999999999999"), ==, -1);
}

/* ---- QDict order --------------------------------------------------------- */

static void test_qdict_bucket(void)
{
    static const struct {
        const char *key;
        unsigned bucket;
    } cases[] = {
        /* ImageInfo */
        { "backing-image", 80 }, { "compressed", 90 },
        { "backing-filename-format", 206 }, { "children", 206 },
        { "snapshots", 263 }, { "virtual-size", 309 }, { "filename", 313 },
        { "cluster-size", 316 }, { "format", 337 }, { "actual-size", 351 },
        { "format-specific", 354 }, { "full-backing-filename", 360 },
        { "encrypted", 413 }, { "backing-filename", 475 }, { "dirty-flag", 501 },
        /* format-specific wrapper */
        { "type", 425 }, { "data", 505 },
        /* qcow2 data */
        { "compat", 16 }, { "compression-type", 88 }, { "lazy-refcounts", 107 },
        { "bitmaps", 114 }, { "refcount-bits", 122 }, { "data-file", 182 },
        { "encrypt", 339 }, { "data-file-raw", 354 }, { "corrupt", 477 },
        { "extended-l2", 503 },
        /* bitmap entry */
        { "flags", 20 }, { "name", 39 }, { "granularity", 241 },
        /* vmdk */
        { "cid", 105 }, { "parent-cid", 147 }, { "create-type", 251 },
        { "extents", 427 },
        /* snapshot entry */
        { "icount", 18 }, { "vm-clock-nsec", 26 }, { "date-sec", 111 },
        { "date-nsec", 230 }, { "vm-clock-sec", 397 }, { "id", 486 },
        { "vm-state-size", 494 },
        /* ImageCheck */
        { "image-end-offset", 30 }, { "compressed-clusters", 67 },
        { "total-clusters", 169 }, { "corruptions", 181 },
        { "corruptions-fixed", 203 }, { "check-errors", 204 }, { "leaks", 246 },
        { "leaks-fixed", 290 }, { "allocated-clusters", 304 },
        { "fragmented-clusters", 484 },
        /* measure */
        { "required", 243 }, { "fully-allocated", 328 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (qblk_qdict_bucket(cases[i].key) != cases[i].bucket) {
            g_error("bucket(\"%s\") = %u, expected %u", cases[i].key,
                    qblk_qdict_bucket(cases[i].key), cases[i].bucket);
        }
    }
    g_assert_cmpuint(qblk_qdict_bucket(""), <, 512);
}

static void check_order(const char **keys, size_t n, const char *const *expect)
{
    qblk_qdict_order(keys, n);
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpstr(keys[i], ==, expect[i]);
    }
}

static void test_qdict_order(void)
{
    /* ImageInfo in QAPI field order -> the ov.qcow2 JSON of cli.md 2.4.2. */
    const char *info[] = {
        "filename", "format", "dirty-flag", "actual-size", "virtual-size",
        "cluster-size", "backing-filename", "full-backing-filename",
        "backing-filename-format", "format-specific",
    };
    static const char *const info_out[] = {
        "backing-filename-format", "virtual-size", "filename", "cluster-size",
        "format", "actual-size", "format-specific", "full-backing-filename",
        "backing-filename", "dirty-flag",
    };
    const char *snap[] = {
        "id", "name", "vm-state-size", "date-sec", "date-nsec",
        "vm-clock-sec", "vm-clock-nsec", "icount",
    };
    static const char *const snap_out[] = {
        "icount", "vm-clock-nsec", "name", "date-sec", "date-nsec",
        "vm-clock-sec", "id", "vm-state-size",
    };
    /* Same bucket (206): whichever went in later is printed first. */
    const char *same1[] = { "format", "backing-filename-format", "children" };
    static const char *const same1_out[] = { "children", "backing-filename-format", "format" };
    const char *same2[] = { "children", "format", "backing-filename-format" };
    static const char *const same2_out[] = { "backing-filename-format", "children", "format" };
    const char *one[] = { "type" };
    static const char *const one_out[] = { "type" };

    check_order(info, G_N_ELEMENTS(info), info_out);
    check_order(snap, G_N_ELEMENTS(snap), snap_out);
    check_order(same1, G_N_ELEMENTS(same1), same1_out);
    check_order(same2, G_N_ELEMENTS(same2), same2_out);
    check_order(one, 1, one_out);
    qblk_qdict_order(NULL, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cutils/strtosz/valid", test_strtosz_valid);
    g_test_add_func("/cutils/strtosz/fraction", test_strtosz_fraction);
    g_test_add_func("/cutils/strtosz/hex-suffix", test_strtosz_hex_suffix);
    g_test_add_func("/cutils/strtosz/invalid", test_strtosz_invalid);
    g_test_add_func("/cutils/strtosz/range", test_strtosz_range);
    g_test_add_func("/cutils/cvtstr", test_cvtstr);
    g_test_add_func("/cutils/cvtstr/small-buffer", test_cvtstr_small_buffer);
    g_test_add_func("/cutils/timestr", test_timestr);
    g_test_add_func("/cutils/report/filtered-part", test_report_filtered_part);
    g_test_add_func("/cutils/report/exact", test_report_exact);
    g_test_add_func("/cutils/report/csv", test_report_csv);
    g_test_add_func("/cutils/timespec-sub", test_timespec_sub);
    g_test_add_func("/cutils/size-to-str", test_size_to_str);
    g_test_add_func("/cutils/hexdump", test_hexdump);
    g_test_add_func("/cutils/hexdump/large", test_hexdump_large);
    g_test_add_func("/cutils/parse-pattern", test_parse_pattern);
    g_test_add_func("/cutils/qdict/bucket", test_qdict_bucket);
    g_test_add_func("/cutils/qdict/order", test_qdict_order);
    return g_test_run();
}
