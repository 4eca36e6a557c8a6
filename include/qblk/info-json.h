/* QAPI's ImageInfo and SnapshotInfo as JSON trees: one builder for what
 * qemu-img info --output=json prints and what QMP's
 * query-named-block-nodes returns in its "image" member. */
#ifndef QBLK_INFO_JSON_H
#define QBLK_INFO_JSON_H

#include "qblk/block.h"
#include "util/json.h"

/* The members of ImageInfo that info holds (QDict order, as QEMU prints
 * them); callers add or replace the ones their command words differently
 * (QMP's filename and 512-byte-rounded virtual-size, backing-image). */
QblkJson *bdrv_image_info_to_json(const BdrvImageInfo *info);
/* The SnapshotInfo list of n snapshots. */
QblkJson *bdrv_snapshots_to_json(const BdrvSnapshotInfo *list, int n);

#endif
