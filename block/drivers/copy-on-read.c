/* The copy-on-read filter (QEMU's driver "copy-on-read"): every read of
 * its file child carries BDRV_REQ_COPY_ON_READ, so what a client reads
 * from the backing chain is stored in the file node; everything else
 * passes through. With "bottom" (a node of the file's backing chain), only
 * data found in the chain from the file's backing down to bottom is
 * copied; data only below bottom is read without copying (formats.md 5.5). */
#include <errno.h>
#include <string.h>
#include "block/internal.h"

typedef struct CorState {
    /* The lowest node whose data is copied (NULL: the whole chain). The
     * filter holds a reference, so the node outlives the filter. */
    BlockDriverState *bottom;
} CorState;

static int cor_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    CorState *s = bs->opaque;
    g_autofree char *bottom = qblk_opts_take(options, "bottom");

    /* Copying needs to write the file node (QEMU takes write-unchanged on
     * it and so refuses a read-only one with this text). */
    if (bs->file->read_only) {
        qblk_error_set(errp, "Block node is read-only");
        return -EPERM;
    }
    if (bottom) {
        BlockDriverState *p;

        s->bottom = bdrv_find_node(bottom);
        if (!s->bottom) {
            qblk_error_set(errp, "Bottom node '%s' not found", bottom);
            return -EINVAL;
        }
        if (s->bottom == bs->file) {
            /* QEMU copies from the whole chain then, as without bottom. */
            s->bottom = NULL;
            goto done;
        }
        for (p = bs->file->backing; p && p != s->bottom; p = p->backing) {
        }
        if (!p) {
            /* (QEMU 7.2 loops forever here; a refusal is kinder.) */
            qblk_error_set(errp, "Bottom node '%s' is not in the backing chain of '%s'",
                           bottom, bs->file->node_name);
            s->bottom = NULL;
            return -EINVAL;
        }
        bdrv_ref(s->bottom);
    }
done:
    bs->supported_write_flags = bs->file->supported_write_flags & BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK | BDRV_REQ_FUA;
    return 0;
}

static int coroutine_fn cor_co_close(BlockDriverState *bs)
{
    CorState *s = bs->opaque;

    return bdrv_co_unref_flush(s->bottom);
}

/* With a bottom: splits the read by where its data lives. Allocated in
 * the file node: a plain read; in the chain down to bottom: a
 * copy-on-read; only below bottom (or nowhere): a plain read. */
static int coroutine_fn cor_read_above_bottom(BlockDriverState *bs, CorState *s,
                                              int64_t offset, int64_t bytes,
                                              QIOVector *qiov, BdrvRequestFlags flags)
{
    BlockDriverState *file = bs->file;

    for (int64_t done = 0; done < bytes;) {
        int64_t pos = offset + done, n;
        BdrvRequestFlags piece_flags = flags & ~BDRV_REQ_COPY_ON_READ;
        QIOVector piece;
        int ret = bdrv_co_is_allocated(file, pos, bytes - done, &n);

        if (ret < 0) {
            return ret;
        }
        if (!ret && file->backing) {
            ret = bdrv_co_is_allocated_above(file->backing, s->bottom->backing, pos,
                                             MIN(n, bytes - done), &n);
            if (ret < 0) {
                return ret;
            }
            if (ret) {
                piece_flags |= BDRV_REQ_COPY_ON_READ;
            }
        }
        n = MAX(MIN(n, bytes - done), 1);
        qiov_init_slice(&piece, qiov, done, n);
        ret = bdrv_co_preadv(file, pos, n, &piece, piece_flags);
        qiov_destroy(&piece);
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

static int coroutine_fn cor_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      QIOVector *qiov, BdrvRequestFlags flags)
{
    CorState *s = bs->opaque;

    if (s->bottom) {
        return cor_read_above_bottom(bs, s, offset, bytes, qiov, flags);
    }
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags | BDRV_REQ_COPY_ON_READ);
}

static int coroutine_fn cor_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                       QIOVector *qiov, BdrvRequestFlags flags)
{
    return bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn cor_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                             int64_t bytes, BdrvRequestFlags flags)
{
    return bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn cor_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return bdrv_co_pdiscard(bs->file, offset, bytes);
}

static int coroutine_fn cor_co_block_status(BlockDriverState *bs, bool want_zero,
                                            int64_t offset, int64_t bytes, int64_t *pnum,
                                            int64_t *map, BlockDriverState **file)
{
    *pnum = bytes;
    *map = offset;
    *file = bs->file;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int coroutine_fn cor_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                        PreallocMode prealloc, GError **errp)
{
    return bdrv_co_truncate(bs->file, offset, exact, prealloc, errp);
}

static int64_t cor_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

/* What the file node says (qemu-img info shows the format's cluster size
 * on the filter, as QEMU does). */
static int cor_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bs->file, bdi);
}

const BlockDriver bdrv_copy_on_read = {
    .format_name = "copy-on-read",
    .instance_size = sizeof(CorState),
    .is_filter = true,

    .open = cor_open,
    .co_close = cor_co_close,
    .co_preadv = cor_co_preadv,
    .co_pwritev = cor_co_pwritev,
    .co_pwrite_zeroes = cor_co_pwrite_zeroes,
    .co_pdiscard = cor_co_pdiscard,
    .co_block_status = cor_co_block_status,
    .co_truncate = cor_co_truncate,
    .getlength = cor_getlength,
    .get_info = cor_get_info,
};
