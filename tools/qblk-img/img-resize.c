/* qblk-img resize: grow or (with --shrink) shrink an image to an absolute
 * or relative size, with qemu-img's messages and exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "qblk-img.h"
#include "util/cutils.h"
#include "util/error.h"

enum { OPTION_SHRINK = 256, OPTION_PREALLOCATION, OPTION_IMAGE_OPTS };

/* The size argument: absolute, or +N / -N relative to the current size. */
static bool parse_resize_size(const char *arg, int *sign, int64_t *n)
{
    uint64_t val;
    int ret;

    *sign = arg[0] == '+' ? 1 : arg[0] == '-' ? -1 : 0;
    ret = qblk_strtosz_u64(arg + (*sign != 0), &val, NULL);
    if (ret == -ERANGE) {
        error_report("Value '%s' is out of range for parameter 'size'", arg + (*sign != 0));
        return false;
    }
    /* A size from 2^63 on is negative once it is the signed size QEMU
     * resizes to: its later check says the new size must be positive. */
    *n = (int64_t)val;
    if (ret < 0) {
        error_report("Parameter 'size' expects a non-negative number below 2^64");
        fprintf(stderr, "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                "peta-\nand exabytes, respectively.\n");
        return false;
    }
    return true;
}

int img_resize(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, OPTION_PREALLOCATION },
        { "shrink", no_argument, NULL, OPTION_SHRINK },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *size_arg;
    bool quiet = false, shrink = false, image_opts = false;
    int prealloc = PREALLOC_MODE_OFF, sign, c, ret;
    int64_t n, cur, total;
    BlockDriverState *bs;
    GError *err = NULL;

    /* The last argument is the size even when it starts with '-': take it
     * out before getopt sees it. */
    if (argc < 3) {
        return img_usage_error("Not enough arguments");
    }
    size_arg = argv[--argc];
    argv[argc] = NULL;
    while ((c = getopt_long(argc, argv, ":f:hq", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'q': quiet = true; break;
        case OPTION_SHRINK: shrink = true; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_PREALLOCATION:
            prealloc = prealloc_mode_parse(optarg);
            if (prealloc < 0) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return 1;
            }
            break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting image file name and size");
    }
    if (!parse_resize_size(size_arg, &sign, &n)) {
        return 1;
    }
    bs = img_open(argv[optind], fmt, image_opts, BDRV_O_RDWR | BDRV_O_RESIZE);
    if (!bs) {
        return 1;
    }
    cur = bdrv_getlength(bs);
    /* Wrapping arithmetic, as QEMU's (built with -fwrapv): a size past
     * 2^63 wraps negative and is refused below, never undefined. */
    total = sign ? (int64_t)((uint64_t)cur + (uint64_t)sign * (uint64_t)n) : n;
    if (cur < 0) {
        error_report("Could not get the image size: %s", strerror((int)-cur));
        ret = 1;
    } else if (total <= 0) {
        error_report("New image size must be positive");
        ret = 1;
    } else if (total < cur && !shrink) {
        error_report("Use the --shrink option to perform a shrink operation.");
        warn_report("Shrinking an image will delete all data beyond the shrunken image's "
                    "end. Before performing such an operation, make sure there is no "
                    "important data there.");
        ret = 1;
    } else if (bdrv_truncate(bs, total, false, prealloc, &err) < 0) {
        error_report_err(err);
        ret = 1;
    } else {
        ret = 0;
    }
    /* qemu-img prints qcow2's close errors and exits 0 (with "Image
     * resized."); the new size may not be in the image then. */
    if (!img_close(bs, argv[optind])) {
        ret = 1;
    }
    if (ret == 0 && !quiet) {
        printf("Image resized.\n");
    }
    return ret;
}
