/* qblk-img commit: writes what the top image (and the layers between it
 * and the base) holds into the base image, zeroes as zero writes, then
 * empties the top unless -d. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/bufferiszero.h"
#include "util/error.h"

#define COMMIT_CHUNK (2 * 1024 * 1024)

/* Copies every range allocated above base into base_rw. */
static int copy_to_base(BlockDriverState *top, BlockDriverState *base, BlockDriverState *base_rw,
                        ImgProgress *progress)
{
    int64_t len = bdrv_getlength(top);
    g_autofree uint8_t *buf = g_malloc(COMMIT_CHUNK);

    for (int64_t off = 0; off < len;) {
        int64_t n;
        int st = bdrv_block_status_above(top, base, off, len - off, &n), ret = 0;

        if (st < 0) {
            error_report("Block status error at offset %" PRId64 ": %s", off, strerror(-st));
            return st;
        }
        n = MIN(n, COMMIT_CHUNK);
        if (st & BDRV_BLOCK_ALLOCATED) {
            if (st & BDRV_BLOCK_ZERO) {
                ret = bdrv_pwrite_zeroes(base_rw, off, n, BDRV_REQ_MAY_UNMAP);
            } else {
                ret = bdrv_pread(top, off, n, buf, 0);
                if (ret == 0) {
                    ret = buffer_is_zero(buf, n) ? bdrv_pwrite_zeroes(base_rw, off, n, BDRV_REQ_MAY_UNMAP)
                                                 : bdrv_pwrite(base_rw, off, n, buf, 0);
                }
            }
        }
        if (ret < 0) {
            error_report("Error while committing at offset %" PRId64 ": %s", off,
                         strerror(-ret));
            return ret;
        }
        off += n;
        img_progress_update(progress, 100.0 * off / len, off);
    }
    return 0;
}

int img_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *base_name = NULL;
    bool quiet = false, drop = false, show_progress = false;
    BlockDriverState *top, *base, *base_rw = NULL;
    GError *err = NULL;
    ImgProgress progress;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":f:t:b:r:dpqh", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'b': base_name = optarg; break;
        case 'd': drop = true; break;
        case 'p': show_progress = true; break;
        case 'q': quiet = true; break;
        case 't': case 'r': break;  /* cache mode and rate limit: no effect here */
        }
    }
    img_progress_init(&progress, show_progress && !quiet, 1.0);
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    top = img_open(argv[optind], fmt, false, BDRV_O_RDWR);
    if (!top) {
        return 1;
    }
    base = bdrv_backing(top);
    if (!base) {
        error_report("Image does not have a backing file");
        goto out;
    }
    if (base_name) {
        base = img_find_in_chain(bdrv_backing(top), base_name);
        if (!base) {
            error_report("Did not find '%s' in the backing chain of '%s'", base_name,
                         argv[optind]);
            goto out;
        }
    }
    {
        QblkOpts *o = qblk_opts_new();

        qblk_opts_set(o, "driver", bdrv_format_name(base));
        base_rw = bdrv_open(bdrv_filename(base), o, BDRV_O_RDWR | BDRV_O_NO_BACKING, NULL,
                            &err);
    }
    if (!base_rw) {
        error_report("Could not open the base image '%s' for writing: %s",
                     bdrv_filename(base), err->message);
        g_error_free(err);
        goto out;
    }
    img_progress_print(&progress, 0);
    if (bdrv_getlength(base_rw) < bdrv_getlength(top) &&
        bdrv_truncate(base_rw, bdrv_getlength(top), false, PREALLOC_MODE_OFF, &err) < 0) {
        error_report_err(err);
        goto out;
    }
    if (copy_to_base(top, base, base_rw, &progress) < 0 || bdrv_flush(base_rw) < 0) {
        goto out;
    }
    /* The base holds everything now; the top can let go of it. A format
     * that cannot empty itself keeps its data (it reads the same). */
    if (!drop && base == bdrv_backing(top)) {
        int r = bdrv_make_empty(top);

        if (r < 0 && r != -ENOTSUP) {
            error_report("Could not empty %s: %s", argv[optind], strerror(-r));
            goto out;
        }
    }
    ret = 0;
    img_progress_print(&progress, 100);
    img_progress_end(&progress);
    if (!quiet) {
        printf("Image committed.\n");
    }
out:
    if (base_rw) {
        bdrv_unref(base_rw);
    }
    bdrv_unref(top);
    return ret;
}
