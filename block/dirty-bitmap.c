/* Persistent dirty bitmaps at the block core: qemu-img bitmap's checks
 * that do not depend on the format (name, granularity, whether the format
 * stores bitmaps at all), then the driver's co_bitmap_op. */
#include <errno.h>
#include "block/internal.h"

/* QEMU's default: the cluster size, within 4 KiB .. 64 KiB. */
static uint32_t default_granularity(BlockDriverState *bs)
{
    BlockDriverInfo bdi = { 0 };
    uint64_t g = 4096;

    if (bdrv_get_info(bs, &bdi) >= 0 && bdi.cluster_size) {
        g = MAX(g, (uint64_t)bdi.cluster_size);
    }
    return (uint32_t)MIN(g, 65536);
}

int coroutine_fn bdrv_co_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op,
                                   GError **errp)
{
    BdrvBitmapOp o = *op;

    if (o.kind == BDRV_BITMAP_ADD) {
        if (!o.name || !o.name[0]) {
            qblk_error_set(errp, "Bitmap name cannot be empty");
            return -EINVAL;
        }
        if (!o.granularity) {
            o.granularity = default_granularity(bs);
        } else if (o.granularity < 512 || (o.granularity & (o.granularity - 1))) {
            qblk_error_set(errp, "Granularity must be power of 2 and at least 512");
            return -EINVAL;
        }
        if (!bs->drv->co_bitmap_op) {
            qblk_error_set(errp, "Can't store persistent bitmaps to %s: Operation not "
                           "supported", bdrv_get_node_name(bs));
            return -ENOTSUP;
        }
    } else if (!bs->drv->co_bitmap_op) {
        qblk_error_set(errp, "Dirty bitmap '%s' not found", o.name);
        return -ENOENT;
    }
    if (o.kind == BDRV_BITMAP_MERGE && !o.src_bs) {
        o.src_bs = bs;
    }
    if (bs->read_only) {
        qblk_error_set(errp, "Bitmaps of a read-only image cannot change");
        return -EACCES;
    }
    return bs->drv->co_bitmap_op(bs, &o, errp);
}

typedef struct BitmapOpCall {
    BlockDriverState *bs;
    const BdrvBitmapOp *op;
    GError **errp;
    int ret;
} BitmapOpCall;

static void coroutine_fn bitmap_op_entry(void *opaque)
{
    BitmapOpCall *c = opaque;

    c->ret = bdrv_co_bitmap_op(c->bs, c->op, c->errp);
}

int bdrv_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op, GError **errp)
{
    BitmapOpCall c = { .bs = bs, .op = op, .errp = errp };

    bdrv_run_co(bitmap_op_entry, &c);
    return c.ret;
}
