/* qblk-img info [--image-opts] [-f fmt] [--output=human|json]
 *               [--backing-chain] [-U] filename
 *
 * Each image is opened read-only without its backing file (info works on
 * an image whose backing file is missing) and described by the library's
 * BdrvImageInfo (block/info.c), qemu-img's ImageInfo; this file prints it.
 * With --backing-chain the backing files are then
 * opened one by one, top first, by their resolved names; every record is
 * collected before anything is printed, so an error leaves stdout empty.
 *
 * JSON output is the ImageInfo as QEMU's QAPI visitor builds it: members
 * inserted in the schema's order (filename, format, dirty-flag,
 * actual-size, virtual-size, cluster-size, encrypted, backing-filename,
 * full-backing-filename, backing-filename-format, snapshots,
 * format-specific), printed in QDict bucket order by img-json. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "qblk/info-json.h"
#include "util/cutils.h"
#include "tools/common/report.h"
#include "util/error.h"
#include "util/json.h"
#include "qblk-img.h"

static void print_human(const BdrvImageInfo *info)
{
    char vsize[64], dsize[64];

    qblk_size_to_str((uint64_t)info->virtual_size, vsize, sizeof(vsize));
    if (info->has_actual_size) {
        qblk_size_to_str((uint64_t)info->actual_size, dsize, sizeof(dsize));
    } else {
        g_strlcpy(dsize, "unavailable", sizeof(dsize));
    }
    printf("image: %s\n"
           "file format: %s\n"
           "virtual size: %s (%" PRId64 " bytes)\n"
           "disk size: %s\n",
           info->filename, info->format, vsize, info->virtual_size, dsize);
    if (info->has_cluster_size) {
        printf("cluster_size: %" PRId64 "\n", info->cluster_size);
    }
    if (info->has_dirty_flag && info->dirty_flag) {
        printf("cleanly shut down: no\n");
    }
    if (info->backing_filename) {
        printf("backing file: %s", info->backing_filename);
        if (!info->full_backing_filename) {
            printf(" (cannot determine actual path)");
        } else if (strcmp(info->backing_filename, info->full_backing_filename) != 0) {
            printf(" (actual path: %s)", info->full_backing_filename);
        }
        printf("\n");
    }
    if (info->backing_filename_format) {
        printf("backing file format: %s\n", info->backing_filename_format);
    }
    if (info->nb_snapshots) {
        printf("Snapshot list:\n");
        img_print_snapshot_table(info->snapshots, info->nb_snapshots);
    }
    if (info->format_specific) {
        g_autoptr(QblkJson) specific = qblk_json_from_specific_info(info->format_specific);
        QblkJson *data = qblk_json_get(specific, "data");

        printf("Format specific information:\n");
        if (data) {
            qblk_json_dump_human(stdout, data, 1);
        }
    }
}

/* BdrvImageInfo* of the image and, with chain, of its backing files; NULL
 * after reporting an error. */
static GPtrArray *collect_image_infos(const char *filename, const char *fmt,
                                      bool image_opts, bool chain)
{
    g_autoptr(GPtrArray) infos =
        g_ptr_array_new_with_free_func((GDestroyNotify)bdrv_image_info_free);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autofree char *next_name = g_strdup(filename);
    g_autofree char *next_fmt = g_strdup(fmt);

    while (next_name) {
        BlockDriverState *bs;
        BdrvImageInfo *info;
        GError *err = NULL;

        if (g_hash_table_contains(seen, next_name)) {
            error_report("Backing file '%s' creates an infinite loop.", next_name);
            return NULL;
        }
        g_hash_table_add(seen, g_strdup(next_name));

        bs = img_open(next_name, next_fmt, image_opts, BDRV_O_NO_BACKING);
        if (!bs) {
            return NULL;
        }
        info = bdrv_query_image_info(bs, &err);
        bdrv_unref(bs);
        if (!info) {
            error_report_err(err);
            return NULL;
        }
        g_ptr_array_add(infos, info);

        /* Only the top image takes -f and --image-opts. */
        g_clear_pointer(&next_name, g_free);
        g_clear_pointer(&next_fmt, g_free);
        image_opts = false;
        if (chain) {
            if (info->full_backing_filename) {
                next_name = g_strdup(info->full_backing_filename);
            } else if (info->backing_filename) {
                error_report("Could not determine absolute backing filename, but "
                             "backing filename '%s' present", info->backing_filename);
                return NULL;
            }
            next_fmt = g_strdup(info->backing_filename_format);
        }
    }
    return g_steal_pointer(&infos);
}

enum {
    OPTION_OUTPUT = 256,
    OPTION_BACKING_CHAIN,
    OPTION_IMAGE_OPTS,
};

int img_info(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, OPTION_OUTPUT },
        { "backing-chain", no_argument, NULL, OPTION_BACKING_CHAIN },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *output = NULL, *filename;
    bool chain = false, image_opts = false, json = false;
    g_autoptr(GPtrArray) infos = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":f:hU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f':
            fmt = optarg;
            break;
        case 'U':
            img_force_share = true;
            break;
        case OPTION_OUTPUT:
            output = optarg;
            break;
        case OPTION_BACKING_CHAIN:
            chain = true;
            break;
        case OPTION_IMAGE_OPTS:
            image_opts = true;
            break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    filename = argv[optind];

    if (!img_parse_output(output, &json)) {
        return 1;
    }

    infos = collect_image_infos(filename, fmt, image_opts, chain);
    if (!infos) {
        return 1;
    }

    if (json) {
        g_autoptr(QblkJson) doc = chain ? qblk_json_array() : NULL;

        for (guint i = 0; i < infos->len; i++) {
            BdrvImageInfo *info = g_ptr_array_index(infos, i);
            QblkJson *obj = bdrv_image_info_to_json(info);

            if (chain) {
                qblk_json_append(doc, obj);
            } else {
                doc = obj;
            }
        }
        qblk_json_print(stdout, doc);
    } else {
        for (guint i = 0; i < infos->len; i++) {
            if (i > 0) {
                printf("\n");
            }
            print_human(g_ptr_array_index(infos, i));
        }
    }
    return 0;
}
