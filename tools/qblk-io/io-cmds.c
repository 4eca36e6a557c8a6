/* qblk-io's command dispatcher and the helpers every command shares:
 * tokenising, argument-count checks, help, numbers, buffers, reports. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/qblk-io/io.h"
#include "util/cutils.h"
#include "tools/common/report.h"
#include "util/error.h"

static const IoCmd *const io_tables[] = { io_rw_cmds, io_aio_cmds, io_misc_cmds };

const IoCmd *io_find_cmd(const char *name)
{
    for (size_t t = 0; t < G_N_ELEMENTS(io_tables); t++) {
        for (const IoCmd *ct = io_tables[t]; ct->name; ct++) {
            if (!strcmp(ct->name, name) || (ct->altname && !strcmp(ct->altname, name))) {
                return ct;
            }
        }
    }
    return NULL;
}

static int cmd_compare(const void *a, const void *b)
{
    return strcmp((*(const IoCmd *const *)a)->name, (*(const IoCmd *const *)b)->name);
}

void io_for_each_cmd(void (*fn)(const IoCmd *ct))
{
    g_autoptr(GPtrArray) all = g_ptr_array_new();

    for (size_t t = 0; t < G_N_ELEMENTS(io_tables); t++) {
        for (const IoCmd *ct = io_tables[t]; ct->name; ct++) {
            g_ptr_array_add(all, (gpointer)ct);
        }
    }
    qsort(all->pdata, all->len, sizeof(gpointer), cmd_compare);
    for (guint i = 0; i < all->len; i++) {
        fn(all->pdata[i]);
    }
}

void io_print_usage(const IoCmd *ct)
{
    printf("%s %s -- %s\n", ct->name, ct->args ? ct->args : "", ct->oneline);
}

static int check_argcount(const IoCmd *ct, int nargs)
{
    if (nargs >= ct->argmin && (ct->argmax == -1 || nargs <= ct->argmax)) {
        return 0;
    }
    if (ct->argmax == -1) {
        fprintf(stderr, "bad argument count %d to %s, expected at least %d arguments\n",
                nargs, ct->name, ct->argmin);
    } else if (ct->argmin == ct->argmax) {
        fprintf(stderr, "bad argument count %d to %s, expected %d arguments\n",
                nargs, ct->name, ct->argmin);
    } else {
        fprintf(stderr, "bad argument count %d to %s, expected between %d and %d arguments\n",
                nargs, ct->name, ct->argmin, ct->argmax);
    }
    return -1;
}

int io_run_line(const char *line, bool *quit)
{
    g_auto(GStrv) words = g_strsplit(line, " ", -1);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    const IoCmd *ct;

    /* Only single spaces separate words; empty words vanish. */
    for (char **w = words; *w; w++) {
        if (**w) {
            g_ptr_array_add(argv, *w);
        }
    }
    if (argv->len == 0) {
        return 0;
    }
    ct = io_find_cmd(argv->pdata[0]);
    if (!ct) {
        fprintf(stderr, "command \"%s\" not found\n", (char *)argv->pdata[0]);
        return -1;
    }
    if (!strcmp(ct->name, "quit")) {
        *quit = true;
        return 0;
    }
    if (!ct->nofile_ok && !io_bs) {
        fprintf(stderr, "no file open, try 'help open'\n");
        return -1;
    }
    if (check_argcount(ct, argv->len - 1) < 0) {
        return -1;
    }
    if (ct->needs_write && bdrv_is_read_only(io_bs)) {
        error_report("Block node is read-only");
        return -1;
    }
    g_ptr_array_add(argv, NULL);
    optind = 0;     /* glibc: reinitialise getopt for this argv */
    return ct->fn(argv->len - 1, (char **)argv->pdata);
}

bool io_parse_num(const char *str, int64_t *out)
{
    bool hex_suffix = false;
    int ret = qblk_strtosz(str, out, &hex_suffix);

    if (hex_suffix) {
        warn_report("Using a multiplier suffix on hex numbers is deprecated: %s", str);
    }
    if (ret == -ERANGE) {
        printf("Parsing error: argument too large -- %s\n", str);
        return false;
    }
    if (ret < 0) {
        printf("Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- %s\n",
               str);
        return false;
    }
    return true;
}

bool io_parse_pattern(const char *arg, int *out)
{
    int p = qblk_parse_pattern(arg);

    if (p < 0) {
        printf("%s is not a valid pattern byte\n", arg);
        return false;
    }
    *out = p;
    return true;
}

#define MISALIGN_OFFSET 16

void *io_buf_alloc(int64_t len, int pattern)
{
    size_t extra = io_misalign ? MISALIGN_OFFSET : 0;
    void *p;

    /* Page alignment lets O_DIRECT use the buffer without a bounce. */
    if (posix_memalign(&p, 4096, MAX(len, 1) + extra)) {
        fprintf(stderr, "qblk-io: out of memory for a %lld-byte buffer\n", (long long)len);
        exit(1);
    }
    memset((char *)p + extra, pattern, len);
    return (char *)p + extra;
}

void io_buf_free(void *buf)
{
    if (buf) {
        free((char *)buf - (io_misalign ? MISALIGN_OFFSET : 0));
    }
}

void *io_build_iov(char **args, int nargs, int pattern, QIOVector *qiov, int64_t *total)
{
    g_autofree int64_t *lens = g_new(int64_t, nargs);
    int64_t sum = 0, pos = 0;
    char *buf;

    for (int i = 0; i < nargs; i++) {
        if (!io_parse_num(args[i], &lens[i])) {
            return NULL;
        }
        if (lens[i] > BDRV_REQUEST_MAX_BYTES) {
            printf("Argument '%s' exceeds maximum size %lld\n", args[i],
                   (long long)BDRV_REQUEST_MAX_BYTES);
            return NULL;
        }
        if (sum > BDRV_REQUEST_MAX_BYTES - lens[i]) {
            printf("The total number of bytes exceed the maximum size %lld\n",
                   (long long)BDRV_REQUEST_MAX_BYTES);
            return NULL;
        }
        sum += lens[i];
    }
    buf = io_buf_alloc(sum, pattern);
    qiov_init(qiov, nargs);
    for (int i = 0; i < nargs; i++) {
        qiov_add(qiov, buf + pos, lens[i]);
        pos += lens[i];
    }
    *total = sum;
    return buf;
}

bool io_verify_pattern(const void *buf, int pattern, int64_t report_offset, int64_t len)
{
    const unsigned char *p = buf;

    for (int64_t i = 0; i < len; i++) {
        if (p[i] != pattern) {
            printf("Pattern verification failed at offset %lld, %lld bytes\n",
                   (long long)report_offset, (long long)len);
            return false;
        }
    }
    return true;
}

struct timespec io_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

void io_report(const char *op, const struct timespec *start, int64_t offset,
               int64_t bytes, bool csv)
{
    struct timespec end = io_now();
    struct timespec elapsed = qblk_timespec_sub(&end, start);

    qblk_print_report(stdout, op, &elapsed, offset, bytes, bytes, 1, csv);
}
