/* QED image creation: options, validation with qemu-img's messages, and
 * the fresh header, backing name and empty L1 table. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qed.h"

/* In qemu-img's order (the "Formatting" line); cluster_size is always
 * printed, table_size only when given. */
const QblkOptDesc qed_create_opts[] = {
    { "size", QBLK_OPT_SIZE, "Virtual disk size", NULL },
    { "backing_file", QBLK_OPT_STRING, "File name of a base image", NULL },
    { "backing_fmt", QBLK_OPT_STRING, "Image format of the base image", NULL },
    { "cluster_size", QBLK_OPT_SIZE, "Cluster size (in bytes)", "65536" },
    { "table_size", QBLK_OPT_SIZE, "L1/L2 table size (in clusters)", NULL },
    { NULL }
};

static bool take_u32(QblkOpts *options, const char *key, uint32_t def, uint32_t *out,
                     GError **errp)
{
    int64_t v;

    if (!qblk_opts_take_size(options, key, def, &v, errp)) {
        return false;
    }
    *out = v > UINT32_MAX ? 0 : (uint32_t)v;   /* 0 fails validation */
    return true;
}

int coroutine_fn qed_co_create(const char *filename, QblkOpts *options, GError **errp)
{
    g_autofree char *backing = qblk_opts_take(options, "backing_file");
    g_autofree char *backing_fmt = qblk_opts_take(options, "backing_fmt");
    g_autofree uint8_t *head = NULL;
    BlockDriverState *file;
    QedHeader h = { 0 };
    size_t name_len = backing ? strlen(backing) : 0;
    int64_t size;
    int ret;

    if (!qblk_opts_take_size(options, "size", 0, &size, errp) ||
        !take_u32(options, "cluster_size", QED_DEFAULT_CLUSTER_SIZE, &h.cluster_size, errp) ||
        !take_u32(options, "table_size", QED_DEFAULT_TABLE_SIZE, &h.table_size, errp)) {
        return -EINVAL;
    }
    if (!qed_valid_cluster_size(h.cluster_size)) {
        qblk_error_set(errp, "QED cluster size must be within range [%u, %u] and power of 2",
                       QED_MIN_CLUSTER_SIZE, QED_MAX_CLUSTER_SIZE);
        return -EINVAL;
    }
    if (!qed_valid_table_size(h.table_size)) {
        qblk_error_set(errp, "QED table size must be within range [%u, %u] and power of 2",
                       QED_MIN_TABLE_SIZE, QED_MAX_TABLE_SIZE);
        return -EINVAL;
    }
    size = (size + 511) & ~(int64_t)511;
    if ((uint64_t)size > qed_max_image_size(h.cluster_size, h.table_size)) {
        qblk_error_set(errp, "QED image size must be a non-zero multiple of cluster size "
                       "and less than %" PRIu64 " bytes",
                       qed_max_image_size(h.cluster_size, h.table_size));
        return -EINVAL;
    }
    if (QED_HEADER_SIZE + name_len > h.cluster_size) {
        qblk_error_set(errp, "Backing file name too long for the QED header (%zu bytes)",
                       name_len);
        return -EINVAL;
    }

    h.magic = QED_MAGIC;
    h.header_size = 1;
    h.l1_table_offset = h.cluster_size;
    h.image_size = size;
    if (backing) {
        h.features |= QED_F_BACKING_FILE;
        /* Only a raw backing file has its format recorded (never probed). */
        if (backing_fmt && !strcmp(backing_fmt, "raw")) {
            h.features |= QED_F_BACKING_FORMAT_NO_PROBE;
        }
        h.backing_filename_offset = QED_HEADER_SIZE;
        h.backing_filename_size = name_len;
    }

    ret = bdrv_co_create_open_file(filename, &file, errp);
    if (ret < 0) {
        return ret;
    }
    head = g_malloc0(512);
    qed_header_encode(&h, head);
    /* A backing name up to the header cluster may need more than 512. */
    if (name_len > 512 - QED_HEADER_SIZE) {
        head = g_realloc(head, QED_HEADER_SIZE + name_len);
    }
    if (backing) {
        memcpy(head + QED_HEADER_SIZE, backing, name_len);
    }
    /* The empty L1 table is a hole: it reads as zeroes. */
    ret = bdrv_co_truncate(file, (int64_t)(1 + h.table_size) * h.cluster_size, true,
                           PREALLOC_MODE_OFF, errp);
    if (ret == 0) {
        ret = bdrv_co_pwrite(file, 0, MAX(512, QED_HEADER_SIZE + name_len), head, 0);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not write the QED header");
        }
    }
    if (ret == 0) {
        ret = bdrv_co_flush(file);
    }
    bdrv_co_unref(file);
    return ret;
}
