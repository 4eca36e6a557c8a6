/* Node capabilities: computed once from what the driver declares (its
 * callbacks, supported flags and the declarations in BlockDriverState),
 * then read by the request paths and by servers (bdrv_get_capabilities). */
#include <string.h>
#include "block/internal.h"

/* Multi-writer safety: the host resource is the image for protocols; a
 * node that adds nothing over its file (filters, raw) inherits the file's;
 * any other format caches metadata in this process. */
static BdrvMultiWriter multi_writer(BlockDriverState *bs)
{
    if (bs->drv->is_protocol) {
        return BDRV_MULTI_WRITER_HOST;
    }
    if ((bs->drv->is_filter || bs->maps_file_1to1) && bs->file) {
        return bs->file->caps.multi_writer;
    }
    return BDRV_MULTI_WRITER_PROCESS;
}

void bdrv_refresh_capabilities(BlockDriverState *bs)
{
    const BlockDriver *drv = bs->drv;
    BlockCapabilities *c = &bs->caps;

    memset(c, 0, sizeof(*c));
    if (!drv) {
        return;
    }
    if (!drv->co_pwritev) {
        c->zero = BDRV_CAP_NONE;
        c->fua = BDRV_CAP_NONE;
    } else {
        c->zero = drv->co_pwrite_zeroes && !bs->no_native_zeroes ? BDRV_CAP_NATIVE
                                                                  : BDRV_CAP_EMULATE;
        c->fua = (bs->supported_write_flags & BDRV_REQ_FUA) ? BDRV_CAP_NATIVE
                                                            : BDRV_CAP_EMULATE;
    }
    /* The core never turns NO_FALLBACK into zero buffers; below a native
     * driver it holds only if the driver is handed the flag. */
    c->fast_zero = c->zero == BDRV_CAP_EMULATE ||
                   (c->zero == BDRV_CAP_NATIVE &&
                    (bs->supported_zero_flags & BDRV_REQ_NO_FALLBACK));
    c->discard = drv->co_pdiscard && bs->discard_unmap ? BDRV_CAP_NATIVE : BDRV_CAP_NONE;
    c->block_status = drv->co_block_status ? BDRV_CAP_NATIVE : BDRV_CAP_EMULATE;
    c->multi_writer = multi_writer(bs);
    c->copy_on_read = drv->supports_backing && drv->co_pwritev && drv->co_block_status;
}

void bdrv_get_capabilities(BlockDriverState *bs, BlockCapabilities *caps)
{
    if (!bs->drv) {
        memset(caps, 0, sizeof(*caps));
        return;
    }
    *caps = bs->caps;
}
