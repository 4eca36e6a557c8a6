/* qblk-img map: the image's extents through its whole backing chain, in
 * qemu-img's JSON and human forms. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "qblk/block.h"
#include "tools/qblk-img/qblk-img.h"
#include "util/cutils.h"
#include "util/error.h"

enum { OPTION_OUTPUT = 256, OPTION_IMAGE_OPTS, OPTION_START, OPTION_LENGTH };

typedef struct Extent {
    int64_t start, length, offset;  /* offset -1: none */
    int depth;
    bool present, zero, data;
    const char *file;               /* name of the layer that answered */
} Extent;

/* Status of the range at off, asked layer by layer down the chain. */
static int chain_status(BlockDriverState *top, int64_t off, int64_t len, Extent *e)
{
    BlockDriverState *bs = top;
    int depth = 0;

    for (;;) {
        int64_t pnum = 0, map = -1;
        BlockDriverState *file = NULL;
        int ret = bdrv_block_status(bs, off, len, &pnum, &map, &file);

        if (ret < 0) {
            return ret;
        }
        if (pnum == 0) {
            return -EIO;
        }
        /* Past the end of a shorter backing file this layer reads zeroes
         * itself, as qemu-img reports it; the backing file has no answer. */
        bool past_backing = !(ret & BDRV_BLOCK_ALLOCATED) && bdrv_backing(bs) &&
                            off >= bdrv_getlength(bdrv_backing(bs));

        if ((ret & BDRV_BLOCK_ALLOCATED) || !bdrv_backing(bs) || past_backing) {
            *e = (Extent) {
                .start = off, .length = pnum, .depth = depth,
                .present = !!(ret & BDRV_BLOCK_ALLOCATED),
                .zero = past_backing || (ret & BDRV_BLOCK_ZERO),
                .data = !!(ret & BDRV_BLOCK_DATA),
                .offset = (ret & BDRV_BLOCK_OFFSET_VALID) ? map : -1,
                .file = bdrv_filename(bs),
            };
            return 0;
        }
        len = pnum;
        bs = bdrv_backing(bs);
        depth++;
    }
}

static bool mergeable(const Extent *a, const Extent *b)
{
    return a->present == b->present && a->zero == b->zero && a->data == b->data &&
           a->depth == b->depth && !strcmp(a->file, b->file) &&
           ((a->offset < 0 && b->offset < 0) ||
            (a->offset >= 0 && b->offset == a->offset + a->length));
}

static void print_json(const Extent *e, bool first)
{
    printf("%s{ \"start\": %" PRId64 ", \"length\": %" PRId64 ", \"depth\": %d, "
           "\"present\": %s, \"zero\": %s, \"data\": %s", first ? "[" : ",\n",
           e->start, e->length, e->depth, e->present ? "true" : "false",
           e->zero ? "true" : "false", e->data ? "true" : "false");
    if (e->offset >= 0) {
        printf(", \"offset\": %" PRId64, e->offset);
    }
    printf("}");
}

/* Human form: only extents holding data that is not zero (a
 * preallocated range is both and stays out, as in qemu-img); false when
 * such an extent has no plain mapping. */
static bool print_human(const Extent *e)
{
    if (!e->data || e->zero) {
        return true;
    }
    if (e->offset < 0) {
        return false;
    }
    printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", (uint64_t)e->start,
           (uint64_t)e->length, (uint64_t)e->offset, e->file);
    return true;
}

static bool parse_size_arg(const char *arg, int64_t *out)
{
    if (qblk_strtosz(arg, out, NULL) < 0) {
        error_report("Invalid argument: %s", arg);
        return false;
    }
    return true;
}

int img_map(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "start-offset", required_argument, NULL, OPTION_START },
        { "max-length", required_argument, NULL, OPTION_LENGTH },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL;
    bool image_opts = false, json = false, first = true, ok = true;
    int64_t start = 0, max_length = -1, len, end;
    Extent cur = { 0 };
    bool have = false;
    BlockDriverState *bs;
    int c, ret = 0;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'U': img_force_share = true; break;
        case OPTION_OUTPUT: output = optarg; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_START:
            if (!parse_size_arg(optarg, &start)) {
                return 1;
            }
            break;
        case OPTION_LENGTH:
            if (!parse_size_arg(optarg, &max_length)) {
                return 1;
            }
            break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (!img_parse_output(output, &json)) {
        return 1;
    }
    bs = img_open(argv[optind], fmt, image_opts, 0);
    if (!bs) {
        return 1;
    }
    len = bdrv_getlength(bs);
    if (len < 0) {
        error_report("Failed to get size for '%s'", argv[optind]);
        bdrv_unref(bs);
        return 1;
    }
    end = max_length >= 0 && max_length < len - start ? start + max_length : len;
    if (!json) {
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    } else if (len == 0) {
        cur = (Extent) { .offset = -1, .file = "" };
        print_json(&cur, true);
        first = false;
    }
    for (int64_t off = start; off < end && ok;) {
        Extent e;

        ret = chain_status(bs, off, end - off, &e);
        if (ret < 0) {
            error_report("Failed to get block status at offset %" PRId64 ": %s", off,
                         strerror(-ret));
            break;
        }
        if (have && mergeable(&cur, &e)) {
            cur.length += e.length;
        } else {
            if (have) {
                if (json) {
                    print_json(&cur, first);
                    first = false;
                } else {
                    ok = print_human(&cur);
                }
            }
            cur = e;
            have = true;
        }
        off += e.length;
    }
    if (have && ret == 0 && ok) {
        if (json) {
            print_json(&cur, first);
            first = false;
        } else {
            ok = print_human(&cur);
        }
    }
    if (json && !first) {
        printf("]\n");
    }
    if (!ok) {
        error_report("File contains external, encrypted or compressed clusters.");
    }
    bdrv_unref(bs);
    return ret < 0 || !ok ? 1 : 0;
}
