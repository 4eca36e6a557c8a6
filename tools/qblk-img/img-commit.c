/* qblk-img commit: parses the options, runs the library's commit
 * (block/jobs/commit.c) with -p progress, then empties the top unless -d. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/error.h"

/* qemu-img commit -p reports the share of the data above the base that
 * is copied (not of the image), and prints 0.00 and 100.00 on every poll
 * of its job, so its sequence varies from run to run. qblk prints the
 * shortest one QEMU prints: 0.00 at the start, 0.00 once the base is
 * writable, each step of more than 1% of the data, 100.00 when the data
 * is all copied (if there was any) and 100.00 at the end. */
typedef struct {
    ImgProgress line;
    int64_t data;               /* bytes allocated above the base */
    int64_t copied;
} CommitProgress;

static void commit_started(void *opaque, int64_t done, int64_t total)
{
    CommitProgress *p = opaque;

    if (done == 0) {
        img_progress_print(&p->line, 0);
    }
}

static void coroutine_fn commit_chunk_done(void *opaque, int64_t bytes, bool copied)
{
    CommitProgress *p = opaque;

    if (copied && p->data > 0) {
        p->copied += bytes;
        p->line.bytes = p->copied;
        img_progress_report(&p->line, MIN(100.0, 100.0 * (double)p->copied / (double)p->data));
    }
}

/* The bytes commit will copy: what is allocated above base. */
static int64_t data_above(BlockDriverState *top, BlockDriverState *base)
{
    int64_t len = bdrv_getlength(top), data = 0, n;

    for (int64_t off = 0; len > 0 && off < len; off += n) {
        int st = bdrv_block_status_above(top, base, off, len - off, &n);

        if (st < 0 || n <= 0) {
            return -1;
        }
        if (st & BDRV_BLOCK_ALLOCATED) {
            data += n;
        }
    }
    return data;
}

enum { OPTION_IMAGE_OPTS = 256, OPTION_OBJECT };

int img_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *base_name = NULL;
    bool quiet = false, drop = false, show_progress = false, image_opts = false;
    BlockDriverState *top, *base;
    GError *err = NULL;
    CommitProgress progress = { 0 };
    int c;

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
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_OBJECT:
            error_report("--object is not supported");
            return 1;
        }
    }
    img_progress_init(&progress.line, show_progress && !quiet, 1.0);
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    /* With --image-opts the name is an option string (the base may be
     * named in it through backing.*); img_open refuses -f with it. */
    top = img_open(argv[optind], fmt, image_opts, BDRV_O_RDWR);
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
    if (progress.line.on) {
        progress.data = data_above(top, base);
        img_progress_print(&progress.line, 0);
    }
    if (bdrv_commit(top, base, &(BdrvCommitOptions) {
                        .progress = commit_started, .after_chunk = commit_chunk_done,
                        .opaque = &progress }, &err) < 0) {
        error_report_err(err);
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
    img_progress_print(&progress.line, 100);
    img_progress_end(&progress.line);
    /* Closed before the message: the base's and the top's caches reach
     * their files in this close, and a failure there is no success. */
    if (!img_close(top, argv[optind])) {
        return 1;
    }
    if (!quiet) {
        printf("Image committed.\n");
    }
    return 0;
out:
    img_close(top, argv[optind]);
    return 1;
}
