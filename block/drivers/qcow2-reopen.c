/* qcow2 reopen: going read-only writes everything out (the dirty bitmaps
 * stored) and leaves the image clean (dirty bit clear), as a close would; going read-write
 * refuses images that a read-write open would refuse or repair. */
#include <errno.h>
#include "block/drivers/qcow2.h"

int coroutine_fn qcow2_co_reopen_prepare(BlockDriverState *bs, int flags, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (bs->read_only && (flags & BDRV_O_RDWR)) {
        if (s->header.incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
            qblk_error_set(errp, "qcow2: Image is corrupt; cannot be opened read/write");
            return -EACCES;
        }
        if (s->header.incompatible_features & QCOW2_INCOMPAT_DIRTY) {
            /* Its refcounts may be stale: only an open repairs them. */
            qblk_error_set(errp, "qcow2: Image is dirty; open it read/write again so "
                           "that it is repaired first");
            return -EBUSY;
        }
        /* Writes mark the bitmaps again once they are loaded (in use). */
        s->bitmaps_need_load = s->bitmaps_in_use;
        return 0;
    }
    if (bs->read_only || (flags & BDRV_O_RDWR)) {
        return 0;
    }
    /* The file is still writable: every node prepares before any commits. */
    qco_mutex_lock(&s->lock);
    ret = qcow2_co_bitmaps_store(bs);
    /* Should the reopen not happen, the next write loads them again. */
    s->bitmaps_need_load = s->bitmaps_in_use;
    if (ret == 0) {
        ret = qcow2_co_flush_caches(bs);
    }
    if (ret == 0 && (s->header.incompatible_features & QCOW2_INCOMPAT_DIRTY)) {
        s->header.incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
        ret = qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(incompatible_features));
        if (ret < 0) {
            s->header.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
        }
    }
    qco_mutex_unlock(&s->lock);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not write out the qcow2 image");
    }
    return ret;
}
