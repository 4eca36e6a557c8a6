/* qblk-img measure: how much host space an image of the output format
 * needs, empty (--size) or holding an existing image's data. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include "qblk-img.h"
#include "util/json.h"
#include "util/error.h"

enum { OPTION_OUTPUT = 256, OPTION_SIZE, OPTION_IMAGE_OPTS, OPTION_OBJECT };

static void print_result(const BlockMeasureInfo *info, bool json)
{
    if (json) {
        g_autoptr(QblkJson) obj = qblk_json_object();

        if (info->has_bitmaps) {
            qblk_json_set(obj, "bitmaps", qblk_json_uint(info->bitmaps));
        }
        qblk_json_set(obj, "required", qblk_json_uint(info->required));
        qblk_json_set(obj, "fully-allocated", qblk_json_uint(info->fully_allocated));
        qblk_json_print(stdout, obj);
        return;
    }
    printf("required size: %" PRIu64 "\n", info->required);
    printf("fully allocated size: %" PRIu64 "\n", info->fully_allocated);
    if (info->has_bitmaps) {
        printf("bitmaps size: %" PRIu64 "\n", info->bitmaps);
    }
}

int img_measure(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "size", required_argument, NULL, OPTION_SIZE },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = "raw", *snapshot = NULL, *output = NULL;
    g_autofree char *options = NULL, *hint = NULL;
    g_autoptr(QblkOpts) opts = NULL;
    const BlockDriver *drv;
    BlockDriverState *in_bs = NULL;
    BlockMeasureInfo info;
    bool json = false, image_opts = false;
    int64_t size = -1;
    GError *err = NULL;
    int c, ret;

    while ((c = getopt_long(argc, argv, ":hf:O:o:l:U", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o':
            if (!img_append_option_list(&options, optarg)) {
                return 1;
            }
            break;
        case 'l': snapshot = optarg; break;
        case 'U': img_force_share = true; break;
        case OPTION_OUTPUT: output = optarg; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_OBJECT:
            error_report("--object is not supported");
            return 1;
        case OPTION_SIZE:
            size = img_parse_image_size(optarg);
            if (size < 0) {
                return 1;
            }
            break;
        }
    }
    if (output && !img_parse_output(output, &json)) {
        return 1;
    }
    if (argc - optind > 1) {
        error_report("At most one filename argument is allowed.");
        return 1;
    }
    if (optind < argc && size >= 0) {
        error_report("--size N cannot be used together with a filename.");
        return 1;
    }
    if (optind == argc && (image_opts || fmt || snapshot)) {
        error_report("--image-opts, -f, and -l require a filename argument.");
        return 1;
    }
    if (optind == argc && size < 0) {
        error_report("Either --size N or one filename must be specified.");
        return 1;
    }
    if (optind < argc) {
        in_bs = img_open(argv[optind], fmt, image_opts, 0);
        if (!in_bs) {
            return 1;
        }
        if (snapshot) {
            error_report("Failed to load snapshot: qblk cannot read internal snapshots");
            bdrv_unref(in_bs);
            return 1;
        }
    }
    ret = 1;
    drv = bdrv_find_format(out_fmt);
    if (!drv || !bdrv_driver_can_create(drv)) {
        error_report(drv ? "Format driver '%s' does not support image creation"
                         : "Unknown file format '%s'", out_fmt);
        goto out;
    }
    opts = bdrv_create_parse_options(drv, options, &hint, &err);
    if (!opts) {
        error_report_err(err);
        if (hint) {
            fputs(hint, stderr);
        }
        error_report("Invalid options for file format '%s'", out_fmt);
        goto out;
    }
    if (size >= 0) {
        g_autofree char *text = g_strdup_printf("%" PRId64, size);

        qblk_opts_set(opts, "size", text);
    }
    if (bdrv_measure(out_fmt, opts, in_bs, &info, &err) < 0) {
        error_report_err(err);
        goto out;
    }
    print_result(&info, json);
    ret = 0;
out:
    if (in_bs) {
        bdrv_unref(in_bs);
    }
    return ret;
}
