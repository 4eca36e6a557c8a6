/* qblk-img compare: guest-visible contents of two images, walking both
 * backing chains by block status so ranges that read as zeroes on both
 * sides are never read; qemu-img's messages and exit codes (0 identical,
 * 1 different, 2 open failure, 3 block status error, 4 read error). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/bufferiszero.h"
#include "util/error.h"

enum { OPTION_IMAGE_OPTS = 256 };

#define COMPARE_CHUNK (2 * 1024 * 1024)

/* Offset of the first 512-byte sector where a and b differ, or -1. */
static int64_t first_difference(const uint8_t *a, const uint8_t *b, int64_t len)
{
    for (int64_t i = 0; i < len; i += 512) {
        if (memcmp(a + i, b + i, MIN(512, len - i))) {
            return i;
        }
    }
    return -1;
}

/* Offset of the first sector that is not all zeroes, or -1. */
static int64_t first_nonzero(const uint8_t *a, int64_t len)
{
    for (int64_t i = 0; i < len; i += 512) {
        if (!buffer_is_zero(a + i, MIN(512, len - i))) {
            return i;
        }
    }
    return -1;
}

/* 0 identical so far, 1 different (reported), or 3/4 on errors. bs2 may
 * be NULL: the range must then read as zeroes in bs1. */
static int compare_range(BlockDriverState *bs1, BlockDriverState *bs2, int64_t start,
                         int64_t end, bool strict, bool quiet, uint8_t *buf1, uint8_t *buf2,
                         ImgProgress *prog, int64_t total)
{
    for (int64_t off = start; off < end;) {
        int64_t n1, n2, n;
        int s1 = bdrv_block_status_above(bs1, NULL, off, end - off, &n1);
        int s2 = bdrv_block_status_above(bs2, NULL, off, end - off, &n2);

        if (s1 < 0 || s2 < 0) {
            error_report("Block status error at offset %" PRId64 ": %s", off,
                         g_strerror(-(s1 < 0 ? s1 : s2)));
            return 3;
        }
        n = MIN(MIN(n1, n2), COMPARE_CHUNK);
        if (strict && s1 != s2) {
            if (!quiet) {
                printf("Strict mode: Offset %" PRId64 " block status mismatch!\n", off);
            }
            return 1;
        }
        if (!((s1 & BDRV_BLOCK_ZERO) && (s2 & BDRV_BLOCK_ZERO))) {
            int64_t diff;

            if (((s1 & BDRV_BLOCK_ZERO) ? 0 : bdrv_pread(bs1, off, n, buf1, 0)) < 0 ||
                ((s2 & BDRV_BLOCK_ZERO) ? 0 : bdrv_pread(bs2, off, n, buf2, 0)) < 0) {
                error_report("Error while reading offset %" PRId64, off);
                return 4;
            }
            if (s1 & BDRV_BLOCK_ZERO) {
                diff = first_nonzero(buf2, n);
            } else if (s2 & BDRV_BLOCK_ZERO) {
                diff = first_nonzero(buf1, n);
            } else {
                diff = first_difference(buf1, buf2, n);
            }
            if (diff >= 0) {
                if (!quiet) {
                    printf("Content mismatch at offset %" PRId64 "!\n", off + diff);
                }
                return 1;
            }
        }
        off += n;
        img_progress_update(prog, total ? 100.0 * off / total : 100.0, off);
    }
    return 0;
}

int img_compare(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt1 = NULL, *fmt2 = NULL;
    bool quiet = false, strict = false, image_opts = false;
    bool show_progress = false;
    ImgProgress prog;
    g_autofree uint8_t *buf1 = NULL, *buf2 = NULL;
    BlockDriverState *bs1, *bs2 = NULL;
    int64_t len1, len2;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":f:F:T:hpqsU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt1 = optarg; break;
        case 'F': fmt2 = optarg; break;
        case 'T': break;        /* cache mode: the default is fine for reads */
        case 'p': show_progress = true; break;
        case 'q': quiet = true; break;
        case 's': strict = true; break;
        case 'U': img_force_share = true; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    img_progress_init(&prog, show_progress && !quiet, 2.0);
    if (optind != argc - 2) {
        return img_usage_error("Expecting two image file names");
    }
    bs1 = img_open(argv[optind], fmt1, image_opts, 0);
    if (bs1) {
        bs2 = img_open(argv[optind + 1], fmt2, image_opts, 0);
    }
    if (!bs1 || !bs2) {
        if (bs1) {
            bdrv_unref(bs1);
        }
        return 2;
    }
    img_progress_print(&prog, 0);
    len1 = bdrv_getlength(bs1);
    len2 = bdrv_getlength(bs2);
    if (len1 < 0 || len2 < 0) {
        error_report("Can't get size of %s: %s", len1 < 0 ? argv[optind] : argv[optind + 1],
                     g_strerror((int)-(len1 < 0 ? len1 : len2)));
        ret = 4;
        goto out;
    }
    if (len1 != len2 && strict) {
        if (!quiet) {
            printf("Strict mode: Image size mismatch!\n");
        }
        ret = 1;
        goto out;
    }
    buf1 = g_malloc(COMPARE_CHUNK);
    buf2 = g_malloc(COMPARE_CHUNK);
    ret = compare_range(bs1, bs2, 0, MIN(len1, len2), strict, quiet, buf1, buf2, &prog,
                        MAX(len1, len2));
    if (ret == 0 && len1 != len2) {
        /* The bigger image's tail must read as zeroes. */
        BlockDriverState *big = len1 > len2 ? bs1 : bs2;

        if (!quiet) {
            printf("Warning: Image size mismatch!\n");
        }
        /* Against no image at all: a missing layer reads as zeroes. */
        ret = compare_range(big, NULL, MIN(len1, len2), MAX(len1, len2), false, quiet, buf1,
                            buf2, &prog, MAX(len1, len2));
    }
    if (ret == 0) {
        img_progress_print(&prog, 100);
        if (!quiet) {
            printf("Images are identical.\n");
        }
    }
out:
    img_progress_end(&prog);
    bdrv_unref(bs1);
    bdrv_unref(bs2);
    return ret;
}
