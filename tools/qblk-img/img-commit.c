/* qblk-img commit: parses the options, runs the library's commit
 * (block/jobs/commit.c) with -p progress, then empties the top unless -d. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/error.h"

/* The library's progress, as qemu-img commit -p shows it: the 0 once the
 * base is writable, then the percentage after each chunk. */
static void commit_progress(void *opaque, int64_t done, int64_t total)
{
    ImgProgress *progress = opaque;

    if (done == 0) {
        img_progress_print(progress, 0);
    } else {
        img_progress_update(progress, 100.0 * done / total, done);
    }
}

int img_commit(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *base_name = NULL;
    bool quiet = false, drop = false, show_progress = false;
    BlockDriverState *top, *base;
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
    if (bdrv_commit(top, base, &(BdrvCommitOptions) { .progress = commit_progress,
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
    ret = 0;
    img_progress_print(&progress, 100);
    img_progress_end(&progress);
    if (!quiet) {
        printf("Image committed.\n");
    }
out:
    bdrv_unref(top);
    return ret;
}
