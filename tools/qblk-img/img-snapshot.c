/* qblk-img snapshot: lists internal snapshots (-l, the default) in
 * qemu-img's table (the printer is shared with info), and creates (-c),
 * applies (-a) and deletes (-d) them, with qemu-img's messages. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "util/json.h"
#include "qblk-img.h"
#include "util/cutils.h"
#include "tools/common/report.h"
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

typedef enum { SNAPSHOT_LIST, SNAPSHOT_APPLY, SNAPSHOT_CREATE, SNAPSHOT_DELETE } SnapshotAction;

int img_snapshot(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    bool image_opts = false, force_share = false, chosen = false;
    SnapshotAction action = SNAPSHOT_LIST;
    const char *name = NULL;
    BdrvSnapshotInfo *list;
    BlockDriverState *bs;
    GError *err = NULL;
    int c, n, ret = 0;

    while ((c = getopt_long(argc, argv, ":la:c:d:hqU", long_options, NULL)) != -1) {
        SnapshotAction next = action;

        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'l': next = SNAPSHOT_LIST; break;
        case 'a': next = SNAPSHOT_APPLY; name = optarg; break;
        case 'c': next = SNAPSHOT_CREATE; name = optarg; break;
        case 'd': next = SNAPSHOT_DELETE; name = optarg; break;
        case 'q': continue;
        case 'U': force_share = img_force_share = true; continue;
        case OPTION_IMAGE_OPTS: image_opts = true; continue;
        }
        if (chosen) {
            return img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
        }
        chosen = true;
        action = next;
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (action != SNAPSHOT_LIST && force_share) {
        error_report("Could not open '%s': force-share=on can only be used with read-only "
                     "images", argv[optind]);
        return 1;
    }
    bs = img_open(argv[optind], NULL, image_opts, action == SNAPSHOT_LIST ? 0 : BDRV_O_RDWR);
    if (!bs) {
        return 1;
    }
    switch (action) {
    case SNAPSHOT_LIST:
        n = bdrv_snapshot_list(bs, &list);
        if (n > 0) {
            printf("Snapshot list:\n");
            img_print_snapshot_table(list, n);
        }
        bdrv_snapshot_list_free(list, MAX(n, 0));
        ret = n < 0 ? n : 0;
        break;
    case SNAPSHOT_CREATE:
        ret = bdrv_snapshot_create(bs, name, &err);
        break;
    case SNAPSHOT_APPLY:
        ret = bdrv_snapshot_goto(bs, name, &err);
        break;
    case SNAPSHOT_DELETE:
        ret = bdrv_snapshot_delete(bs, name, &err);
        break;
    }
    error_report_err(err);
    if (!img_close(bs, argv[optind])) {
        return 1;
    }
    return ret < 0 ? 1 : 0;
}
