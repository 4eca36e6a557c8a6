/* qblk-img dd: copies an image into a new one block by block, with
 * qemu-img dd's operands (if=, of=, bs=, count=, skip=) and its meaning of
 * them: the output ends at count blocks of the input and starts at skip. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "qblk-img.h"
#include "util/error.h"

enum { OPTION_IMAGE_OPTS = 256 };

typedef struct {
    const char *in, *out;
    int64_t bs, count, skip;
    bool has_count, has_skip;
} DdArgs;

/* One NAME=VALUE operand; false after reporting. */
static bool dd_operand(DdArgs *dd, const char *arg)
{
    const char *eq = strchr(arg, '=');
    g_autofree char *name = eq ? g_strndup(arg, eq - arg) : g_strdup(arg);
    const char *value = eq ? eq + 1 : "";

    if (!strcmp(name, "if")) {
        dd->in = value;
    } else if (!strcmp(name, "of")) {
        dd->out = value;
    } else if (!strcmp(name, "bs")) {
        dd->bs = img_cvtnum_full("bs", value, 1, INT32_MAX);
        return dd->bs >= 0;
    } else if (!strcmp(name, "count")) {
        dd->count = img_cvtnum("count", value, INT64_MAX);
        dd->has_count = true;
        return dd->count >= 0;
    } else if (!strcmp(name, "skip")) {
        dd->skip = img_cvtnum("skip", value, INT64_MAX);
        dd->has_skip = true;
        return dd->skip >= 0;
    } else {
        error_report("unrecognized operand %s", name);
        return false;
    }
    return true;
}

int img_dd(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    DdArgs dd = { .bs = 512 };
    const char *fmt = NULL, *out_fmt = "raw";
    bool image_opts = false, skip_past;
    BlockDriverState *in = NULL, *out = NULL;
    g_autofree uint8_t *buf = NULL;
    int64_t size, in_pos, out_pos = 0;
    GError *err = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":hf:O:U", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'U': img_force_share = true; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (!dd_operand(&dd, argv[i])) {
            return 1;
        }
    }
    if (!dd.in || !dd.out) {
        error_report("Must specify both input and output files");
        return 1;
    }
    in = img_open(dd.in, fmt, image_opts, 0);
    if (!in) {
        return 1;
    }
    size = bdrv_getlength(in);
    if (size < 0) {
        error_report("Failed to get size for '%s'", dd.in);
        goto out;
    }
    /* As qemu-img: count is where the output ends in the input, so the
     * output holds count - skip blocks; a skip past that makes it empty. */
    if (dd.has_count && dd.count <= INT64_MAX / dd.bs && dd.count * dd.bs < size) {
        size = dd.count * dd.bs;
    }
    skip_past = dd.has_skip && (dd.skip > INT64_MAX / dd.bs || size < dd.skip * dd.bs);
    in_pos = skip_past ? size : dd.skip * dd.bs;
    if (!img_create_target(dd.out, out_fmt, NULL, NULL, NULL, size - in_pos, &err)) {
        error_report("%s: error while creating output image: %s", dd.out, err->message);
        g_clear_error(&err);
        goto out;
    }
    if (skip_past) {
        /* Like dd(1): an empty output, and a word about it. */
        error_report("%s: cannot skip to specified offset", dd.in);
    }
    out = img_open(dd.out, out_fmt, false, BDRV_O_RDWR);
    if (!out) {
        goto out;
    }
    buf = g_malloc(dd.bs);
    while (in_pos < size) {
        int64_t n = MIN(dd.bs, size - in_pos);
        int r = bdrv_pread(in, in_pos, n, buf, 0);

        if (r < 0) {
            error_report("error while reading from input image file: %s", strerror(-r));
            goto out;
        }
        r = bdrv_pwrite(out, out_pos, n, buf, 0);
        if (r < 0) {
            error_report("error while writing to output image file: %s", strerror(-r));
            goto out;
        }
        in_pos += n;
        out_pos += n;
    }
    ret = 0;
out:
    if (out && !img_close(out, dd.out)) {
        ret = 1;
    }
    bdrv_unref(in);
    return ret;
}
