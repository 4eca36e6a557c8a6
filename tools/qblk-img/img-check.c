/* qblk-img check: runs the format's consistency check (and repair with
 * -r), printing qemu-img's summary and returning its exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "qblk/block.h"
#include "util/json.h"
#include "tools/common/events.h"
#include "tools/qblk-img/img-progress.h"
#include "tools/qblk-img/qblk-img.h"
#include "util/error.h"

enum { OPTION_OUTPUT = 256, OPTION_IMAGE_OPTS };

/* Exit codes of qemu-img check. */
enum { CHECK_OK = 0, CHECK_FAILED = 1, CHECK_CORRUPT = 2, CHECK_LEAKS = 3,
       CHECK_UNSUPPORTED = 63 };

static void print_human(const BdrvCheckResult *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions) {
            printf("\n%d errors were found on the image.\n"
                   "Data may be corrupted, or further writes to the image may corrupt it.\n",
                   r->corruptions);
        }
        if (r->leaks) {
            printf("\n%d leaked clusters were found on the image.\n"
                   "This means waste of disk space, but no harm to data.\n", r->leaks);
        }
        if (r->check_errors) {
            printf("\n%d internal errors have occurred during the check.\n", r->check_errors);
        }
    }
    if (r->total_clusters && r->allocated_clusters) {
        printf("%lld/%lld = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
               (long long)r->allocated_clusters, (long long)r->total_clusters,
               r->allocated_clusters * 100.0 / r->total_clusters,
               r->fragmented_clusters * 100.0 / r->allocated_clusters,
               r->compressed_clusters * 100.0 / r->allocated_clusters);
    }
    if (r->image_end_offset) {
        printf("Image end offset: %lld\n", (long long)r->image_end_offset);
    }
}

static void set_nonzero(QblkJson *obj, const char *key, int64_t v)
{
    if (v) {
        qblk_json_set_int(obj, key, v);
    }
}

static void print_json(const BdrvCheckResult *r, const BdrvCheckResult *fixed,
                       const char *filename, const char *format)
{
    g_autoptr(QblkJson) obj = qblk_json_object();

    qblk_json_set_str(obj, "filename", filename);
    qblk_json_set_str(obj, "format", format);
    qblk_json_set_int(obj, "check-errors", r->check_errors);
    set_nonzero(obj, "corruptions", r->corruptions);
    set_nonzero(obj, "leaks", r->leaks);
    set_nonzero(obj, "corruptions-fixed", fixed ? fixed->corruptions_fixed : 0);
    set_nonzero(obj, "leaks-fixed", fixed ? fixed->leaks_fixed : 0);
    set_nonzero(obj, "image-end-offset", r->image_end_offset);
    set_nonzero(obj, "total-clusters", r->total_clusters);
    set_nonzero(obj, "allocated-clusters", r->allocated_clusters);
    set_nonzero(obj, "fragmented-clusters", r->fragmented_clusters);
    set_nonzero(obj, "compressed-clusters", r->compressed_clusters);
    qblk_json_print(stdout, obj);
}

static void report_progress(void *opaque, double percent)
{
    img_progress_update(opaque, percent, 0);
}

int img_check(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL;
    bool quiet = false, image_opts = false, json = false, show_progress = false;
    BdrvCheckMode fix = BDRV_FIX_NONE;
    ImgProgress progress;
    BdrvCheckResult first, res;
    bool repaired = false;
    BlockDriverState *bs;
    int c, ret, status;

    while ((c = getopt_long(argc, argv, ":f:hpr:qT:U", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'p': show_progress = true; break;   /* qblk's own: qemu-img check has no -p */
        case 'q': quiet = true; break;
        case 'T': break;   /* source cache mode: qblk keeps none */
        case 'U': img_force_share = true; break;
        case 'r':
            if (!strcmp(optarg, "leaks")) {
                fix = BDRV_FIX_LEAKS;
            } else if (!strcmp(optarg, "all")) {
                fix = BDRV_FIX_LEAKS | BDRV_FIX_ERRORS;
            } else {
                return img_usage_error("Unknown option value for -r (expecting 'leaks' or "
                                       "'all'): %s", optarg);
            }
            break;
        case OPTION_OUTPUT: output = optarg; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (!img_parse_output(output, &json)) {
        return CHECK_FAILED;
    }
    bs = img_open(argv[optind], fmt, image_opts,
                  BDRV_O_CHECK | BDRV_O_NO_BACKING | (fix ? BDRV_O_RDWR : 0));
    if (!bs) {
        return CHECK_FAILED;
    }
    bdrv_set_check_report(bs, tools_print_check_message, NULL);
    /* JSON output stays one document: no progress lines in it. */
    img_progress_init(&progress, show_progress && !quiet && !json, 1.0);
    img_progress_print(&progress, 0);
    ret = bdrv_check_with_progress(bs, &first, fix, report_progress, &progress);
    if (ret == 0) {
        img_progress_print(&progress, 100);
    }
    img_progress_end(&progress);
    if (ret == -ENOTSUP) {
        error_report("This image format does not support checks");
        bdrv_unref(bs);
        return CHECK_UNSUPPORTED;
    }
    res = first;
    if (ret == 0 && fix && (first.corruptions_fixed || first.leaks_fixed)) {
        repaired = true;
        if (!quiet && !json) {
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n    %d corruptions\n\n"
                   "Double checking the fixed image now...\n",
                   first.leaks_fixed, first.corruptions_fixed);
        }
        ret = bdrv_check(bs, &res, BDRV_FIX_NONE);
    }
    if (ret < 0) {
        error_report("Check failed: %s", strerror(-ret));
        img_close(bs, argv[optind]);
        return CHECK_FAILED;
    }
    if (!quiet) {
        if (json) {
            print_json(&res, repaired ? &first : NULL, argv[optind], bdrv_format_name(bs));
        } else {
            print_human(&res);
        }
    }
    /* A repair not flushed to the image repaired nothing (qemu-img says
     * nothing and exits as the check found). */
    if (!img_close(bs, argv[optind])) {
        return CHECK_FAILED;
    }
    status = res.check_errors ? CHECK_FAILED : res.corruptions ? CHECK_CORRUPT :
             res.leaks ? CHECK_LEAKS : CHECK_OK;
    return status;
}
