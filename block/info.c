/* ImageInfo: what qemu-img info shows of one image and what QMP's
 * query-named-block-nodes will return, assembled from an open node. The
 * tools print it; nothing here prints. */
#include <errno.h>

#include "qblk/block_int.h"
#include "qblk/info-json.h"

void bdrv_image_info_free(BdrvImageInfo *info)
{
    if (!info) {
        return;
    }
    g_free(info->filename);
    g_free(info->format);
    g_free(info->backing_filename);
    g_free(info->full_backing_filename);
    g_free(info->backing_filename_format);
    if (info->format_specific) {
        g_variant_unref(info->format_specific);
    }
    bdrv_snapshot_list_free(info->snapshots, info->nb_snapshots);
    g_free(info);
}

BdrvImageInfo *bdrv_query_image_info(BlockDriverState *bs, GError **errp)
{
    BdrvImageInfo *info;
    BlockDriverInfo bdi;
    int64_t size = bdrv_getlength(bs);
    const char *backing = bdrv_backing_file(bs);

    if (size < 0) {
        qblk_error_set_errno(errp, (int)-size, "Can't get image size '%s'", bdrv_filename(bs));
        return NULL;
    }
    info = g_new0(BdrvImageInfo, 1);
    info->filename = g_strdup(bdrv_filename(bs));
    info->format = g_strdup(bdrv_format_name(bs));
    info->virtual_size = size;
    info->actual_size = bdrv_get_allocated_file_size(bs);
    info->has_actual_size = info->actual_size >= 0;
    if (bdrv_get_info(bs, &bdi) >= 0) {
        info->has_cluster_size = bdi.cluster_size != 0;
        info->cluster_size = bdi.cluster_size;
        info->has_dirty_flag = true;
        info->dirty_flag = bdi.is_dirty;
    }
    info->format_specific = bdrv_get_specific_info(bs);
    if (backing && *backing) {
        const char *fmt = bdrv_backing_format(bs);

        info->backing_filename = g_strdup(backing);
        info->full_backing_filename = g_strdup(bs->full_backing_filename);
        info->backing_filename_format = fmt && *fmt ? g_strdup(fmt) : NULL;
    }
    /* A format without snapshots, or a snapshot table it cannot read,
     * shows none (as qemu-img info). */
    info->nb_snapshots = bdrv_snapshot_list(bs, &info->snapshots);
    if (info->nb_snapshots < 0) {
        info->nb_snapshots = 0;
    }
    return info;
}

QblkJson *bdrv_snapshots_to_json(const BdrvSnapshotInfo *list, int n)
{
    QblkJson *arr = qblk_json_array();

    for (int i = 0; i < n; i++) {
        const BdrvSnapshotInfo *sn = &list[i];
        QblkJson *o = qblk_json_object();

        if (sn->icount != UINT64_MAX) {
            qblk_json_set_int(o, "icount", (int64_t)sn->icount);
        }
        qblk_json_set_int(o, "vm-clock-nsec", (int64_t)(sn->vm_clock_nsec % 1000000000));
        qblk_json_set_str(o, "name", sn->name);
        qblk_json_set_int(o, "date-sec", sn->date_sec);
        qblk_json_set_int(o, "date-nsec", sn->date_nsec);
        qblk_json_set_int(o, "vm-clock-sec", (int64_t)(sn->vm_clock_nsec / 1000000000));
        qblk_json_set_str(o, "id", sn->id);
        qblk_json_set_int(o, "vm-state-size", (int64_t)sn->vm_state_size);
        qblk_json_append(arr, o);
    }
    return arr;
}

QblkJson *bdrv_image_info_to_json(const BdrvImageInfo *info)
{
    QblkJson *obj = qblk_json_object();

    qblk_json_set_str(obj, "filename", info->filename);
    qblk_json_set_str(obj, "format", info->format);
    if (info->has_dirty_flag) {
        qblk_json_set_bool(obj, "dirty-flag", info->dirty_flag);
    }
    if (info->has_actual_size) {
        qblk_json_set_int(obj, "actual-size", info->actual_size);
    }
    qblk_json_set_int(obj, "virtual-size", info->virtual_size);
    if (info->has_cluster_size) {
        qblk_json_set_int(obj, "cluster-size", info->cluster_size);
    }
    if (info->backing_filename) {
        qblk_json_set_str(obj, "backing-filename", info->backing_filename);
    }
    if (info->full_backing_filename) {
        qblk_json_set_str(obj, "full-backing-filename", info->full_backing_filename);
    }
    if (info->backing_filename_format) {
        qblk_json_set_str(obj, "backing-filename-format", info->backing_filename_format);
    }
    if (info->format_specific) {
        qblk_json_set(obj, "format-specific",
                      qblk_json_from_specific_info(info->format_specific));
    }
    if (info->nb_snapshots) {
        qblk_json_set(obj, "snapshots",
                      bdrv_snapshots_to_json(info->snapshots, info->nb_snapshots));
    }
    return obj;
}
