/* qblk-img amend: changes options of an existing image (-o), with
 * qemu-img amend's syntax, checks and messages; the format does the
 * change (bdrv_amend). */
#include <getopt.h>
#include <stdio.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/error.h"

enum { OPTION_IMAGE_OPTS = 256, OPTION_FORCE };

static void amend_progress(void *opaque, double percent)
{
    img_progress_report(opaque, percent);
}

int img_amend(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force", no_argument, NULL, OPTION_FORCE },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *cache = NULL;
    g_autofree char *options = NULL;
    g_autofree char *hint = NULL;
    bool quiet = false, progress = false, image_opts = false;
    int flags = BDRV_O_RDWR, c, ret = 1;
    BlockDriverState *bs;
    QblkOpts *opts = NULL;
    g_autoptr(QblkOpts) raw = NULL;
    GError *err = NULL;
    ImgProgress prog;
    bool writethrough;

    while ((c = getopt_long(argc, argv, ":ho:f:t:pq", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'o':
            if (!img_append_option_list(&options, optarg)) {
                return 1;
            }
            break;
        case 'f': fmt = optarg; break;
        case 't': cache = optarg; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_FORCE: break;
        }
    }
    if (!options) {
        return img_usage_error("Must specify options (-o)");
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (cache && !bdrv_parse_cache_mode(cache, &flags, &writethrough)) {
        error_report("Invalid cache option: %s", cache);
        return 1;
    }
    bs = img_open(argv[optind], fmt, image_opts, flags);
    if (!bs) {
        return 1;
    }
    raw = qblk_opts_new();
    if (!qblk_opts_parse(raw, options, NULL, &err) || !bdrv_amend_check(bs, raw, &err)) {
        error_report("%s", err->message);
        g_clear_error(&err);
        goto out;
    }
    opts = bdrv_create_parse_options(bdrv_find_format(bdrv_format_name(bs)), options, &hint,
                                     &err);
    if (!opts) {
        error_report("%s", err->message);
        if (hint) {
            fputs(hint, stderr);
        }
        g_clear_error(&err);
        goto out;
    }
    img_progress_init(&prog, progress && !quiet, 1.0);
    img_progress_print(&prog, 0);
    if (bdrv_amend(bs, opts, amend_progress, &prog, &err) < 0) {
        img_progress_end(&prog);
        error_report("%s", err ? err->message : "Error while amending options");
        g_clear_error(&err);
        goto out;
    }
    img_progress_print(&prog, 100);
    img_progress_end(&prog);
    ret = 0;
out:
    qblk_opts_free(opts);
    if (!img_close(bs, argv[optind])) {
        return 1;
    }
    return ret;
}
