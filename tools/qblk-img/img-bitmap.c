/* qblk-img bitmap (--merge SOURCE | --add | --remove | --clear | --enable |
 *                  --disable)... [-b source_file [-F source_fmt]]
 *                  [-g granularity] [--image-opts | -f fmt] filename bitmap
 *
 * The actions run in the order given on one bitmap of an image opened
 * read-write; the image stores its bitmaps when it is closed. Messages
 * and exit codes are qemu-img 7.2's. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "qblk-img.h"
#include "tools/common/report.h"
#include "util/error.h"

enum {
    OPTION_IMAGE_OPTS = 256, OPTION_OBJECT, OPTION_ADD, OPTION_REMOVE, OPTION_CLEAR,
    OPTION_ENABLE, OPTION_DISABLE, OPTION_MERGE,
};

typedef struct BitmapAction {
    BdrvBitmapOpKind kind;
    const char *src;                /* merge: the source bitmap */
} BitmapAction;

static const char *const action_names[] = {
    [BDRV_BITMAP_ADD] = "add", [BDRV_BITMAP_REMOVE] = "remove",
    [BDRV_BITMAP_CLEAR] = "clear", [BDRV_BITMAP_ENABLE] = "enable",
    [BDRV_BITMAP_DISABLE] = "disable", [BDRV_BITMAP_MERGE] = "merge",
};

/* Runs each action in turn; false after reporting the first failure. */
static bool run_actions(BlockDriverState *bs, GArray *actions, const char *name,
                        uint32_t granularity, const char *src_file, const char *src_fmt)
{
    for (guint i = 0; i < actions->len; i++) {
        const BitmapAction *a = &g_array_index(actions, BitmapAction, i);
        BdrvBitmapOp op = { .kind = a->kind, .name = name, .granularity = granularity,
                            .src_bs = bs, .src_name = a->src };
        BlockDriverState *src = NULL;
        GError *err = NULL;
        int ret;

        if (a->kind == BDRV_BITMAP_MERGE && src_file) {
            src = img_open(src_file, src_fmt, false, 0);
            if (!src) {
                return false;
            }
            op.src_bs = src;
        }
        ret = bdrv_bitmap_op(bs, &op, &err);
        if (src) {
            bdrv_unref(src);
        }
        if (ret < 0) {
            error_report("Operation %s on bitmap %s failed: %s", action_names[a->kind], name,
                         err ? err->message : g_strerror(-ret));
            g_clear_error(&err);
            return false;
        }
    }
    return true;
}

int img_bitmap(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, OPTION_OBJECT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "add", no_argument, NULL, OPTION_ADD },
        { "remove", no_argument, NULL, OPTION_REMOVE },
        { "clear", no_argument, NULL, OPTION_CLEAR },
        { "enable", no_argument, NULL, OPTION_ENABLE },
        { "disable", no_argument, NULL, OPTION_DISABLE },
        { "merge", required_argument, NULL, OPTION_MERGE },
        { "granularity", required_argument, NULL, 'g' },
        { "source-file", required_argument, NULL, 'b' },
        { "source-format", required_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(GArray) actions = g_array_new(FALSE, FALSE, sizeof(BitmapAction));
    const char *fmt = NULL, *src_file = NULL, *src_fmt = NULL;
    bool image_opts = false, add = false, merge = false;
    int64_t granularity = 0;
    BlockDriverState *bs;
    bool ok;
    int c;

    while ((c = getopt_long(argc, argv, ":b:f:F:g:h", long_options, NULL)) != -1) {
        BitmapAction a = { 0 };

        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'b': src_file = optarg; continue;
        case 'f': fmt = optarg; continue;
        case 'F': src_fmt = optarg; continue;
        case 'g':
            granularity = img_cvtnum("granularity", optarg, INT64_MAX);
            if (granularity < 0) {
                return 1;
            }
            continue;
        case OPTION_IMAGE_OPTS: image_opts = true; continue;
        case OPTION_OBJECT:
            error_report("--object is not supported");
            return 1;
        case OPTION_ADD: a.kind = BDRV_BITMAP_ADD; add = true; break;
        case OPTION_REMOVE: a.kind = BDRV_BITMAP_REMOVE; break;
        case OPTION_CLEAR: a.kind = BDRV_BITMAP_CLEAR; break;
        case OPTION_ENABLE: a.kind = BDRV_BITMAP_ENABLE; break;
        case OPTION_DISABLE: a.kind = BDRV_BITMAP_DISABLE; break;
        case OPTION_MERGE: a.kind = BDRV_BITMAP_MERGE; a.src = optarg; merge = true; break;
        default:
            continue;
        }
        g_array_append_val(actions, a);
    }
    if (!actions->len) {
        error_report("Need at least one of --add, --remove, --clear, --enable, --disable, "
                     "or --merge");
        return 1;
    }
    if (granularity && !add) {
        error_report("granularity only supported with --add");
        return 1;
    }
    if (src_file && !merge) {
        error_report("Merge bitmap source file only supported with --merge");
        return 1;
    }
    if (src_fmt && !src_file) {
        error_report("-F only supported with -b");
        return 1;
    }
    if (optind != argc - 2) {
        error_report("Expecting filename and bitmap name");
        return 1;
    }
    if (image_opts && fmt) {
        return img_usage_error("--image-opts and --format are mutually exclusive");
    }
    bs = img_open(argv[optind], fmt, image_opts, BDRV_O_RDWR);
    if (!bs) {
        return 1;
    }
    /* qemu-img passes the granularity on as 32 bits: a multiple of 4 GiB
     * becomes 0, which it then rejects (1 is rejected the same way). */
    ok = run_actions(bs, actions, argv[optind + 1],
                     granularity && !(uint32_t)granularity ? 1 : (uint32_t)granularity,
                     src_file, src_fmt);
    /* The bitmaps are stored in this close: its failure fails the command. */
    if (!img_close(bs, argv[optind])) {
        return 1;
    }
    return ok ? 0 : 1;
}
