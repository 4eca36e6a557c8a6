/* qblk-img snapshot: lists internal snapshots (-l, the default) in
 * qemu-img's table; the table printer is shared with info. Creating,
 * applying and deleting snapshots is not implemented yet. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include "img-json.h"
#include "qblk-img.h"
#include "util/cutils.h"
#include "util/error.h"

enum { OPTION_IMAGE_OPTS = 256 };

void img_print_snapshot_table(const BdrvSnapshotInfo *list, int n)
{
    printf("ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n");
    for (int i = 0; i < n; i++) {
        const BdrvSnapshotInfo *sn = &list[i];
        uint64_t secs = sn->vm_clock_nsec / 1000000000;
        char size[64], date[64], clock[64], icount[32] = "";
        time_t t = sn->date_sec;
        struct tm tm;

        qblk_size_to_str(sn->vm_state_size, size, sizeof(size));
        localtime_r(&t, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64,
                 secs / 3600, (secs / 60) % 60, secs % 60,
                 (sn->vm_clock_nsec / 1000000) % 1000);
        if (sn->icount != UINT64_MAX) {
            snprintf(icount, sizeof(icount), "%" PRId64, (int64_t)sn->icount);
        }
        printf("%-9s %-17s %7s%20s%13s%11s\n", sn->id, sn->name, size, date, clock, icount);
    }
}

ImgJson *img_snapshots_to_json(const BdrvSnapshotInfo *list, int n)
{
    ImgJson *arr = img_json_array();

    for (int i = 0; i < n; i++) {
        const BdrvSnapshotInfo *sn = &list[i];
        ImgJson *o = img_json_object();

        if (sn->icount != UINT64_MAX) {
            img_json_set_int(o, "icount", (int64_t)sn->icount);
        }
        img_json_set_int(o, "vm-clock-nsec", (int64_t)(sn->vm_clock_nsec % 1000000000));
        img_json_set_str(o, "name", sn->name);
        img_json_set_int(o, "date-sec", sn->date_sec);
        img_json_set_int(o, "date-nsec", sn->date_nsec);
        img_json_set_int(o, "vm-clock-sec", (int64_t)(sn->vm_clock_nsec / 1000000000));
        img_json_set_str(o, "id", sn->id);
        img_json_set_int(o, "vm-state-size", (int64_t)sn->vm_state_size);
        img_json_append(arr, o);
    }
    return arr;
}

int img_snapshot(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    bool image_opts = false;
    const char *action = NULL;
    BdrvSnapshotInfo *list;
    BlockDriverState *bs;
    int c, n;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'l': break;
        case 'a': action = "-a (apply)"; break;
        case 'c': action = "-c (create)"; break;
        case 'd': action = "-d (delete)"; break;
        case 'q':
        case 'U': break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (action) {
        error_report("snapshot %s is not supported by qblk-img yet; it only lists snapshots",
                     action);
        return 1;
    }
    bs = img_open(argv[optind], NULL, image_opts, 0);
    if (!bs) {
        return 1;
    }
    n = bdrv_snapshot_list(bs, &list);
    if (n > 0) {
        printf("Snapshot list:\n");
        img_print_snapshot_table(list, n);
    }
    bdrv_snapshot_list_free(list, MAX(n, 0));
    bdrv_unref(bs);
    return n < 0 ? 1 : 0;
}
