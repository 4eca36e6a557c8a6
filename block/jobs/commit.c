/* Commit: writes what the top image (and the layers between it and the
 * base) holds into the base, zeroes as zero writes, chunk by chunk with
 * progress and a cancellation point between chunks. qblk-img commit drives
 * it today; the job core (block-commit) will drive the same coroutine. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "qblk/block_int.h"
#include "util/bufferiszero.h"

#define COMMIT_DEFAULT_CHUNK (2 * 1024 * 1024)

/*
 * The base made writable: the chain's own base node is reopened
 * read-write, and read-only again at the end (QEMU does the same). A
 * second node on the same file would have its own caches, and the image
 * locks the chain's node holds would refuse it.
 */
static BlockDriverState *coroutine_fn commit_co_acquire_writable_base(BlockDriverState *base,
                                                                      GError **errp)
{
    GError *err = NULL;

    if (bdrv_co_reopen(base, (base->open_flags | BDRV_O_RDWR) & ~BDRV_O_FORCE_SHARE,
                       &err) < 0) {
        qblk_error_set(errp, "Could not open the base image '%s' for writing: %s",
                       bdrv_filename(base), err->message);
        g_error_free(err);
        return NULL;
    }
    bdrv_ref(base);
    return base;
}

/* Back to read-only, which also writes the base out and leaves it clean
 * (QED clears its need-check flag there): a failure is the commit's. */
static int coroutine_fn commit_co_release_writable_base(BlockDriverState *base,
                                                        BlockDriverState *rw, GError **errp)
{
    int ret = bdrv_co_reopen(base, rw->open_flags & ~BDRV_O_RDWR, errp);

    bdrv_co_unref(rw);
    return ret;
}

/* Copies one chunk [off, off+n) that is allocated above base; on failure
 * *is_read says whether reading the top failed. */
static int coroutine_fn commit_co_chunk(BlockDriverState *top, BlockDriverState *dst,
                                        int64_t off, int64_t n, int status, uint8_t *buf,
                                        bool *is_read)
{
    int ret;

    *is_read = false;
    if (status & BDRV_BLOCK_ZERO) {
        return bdrv_co_pwrite_zeroes(dst, off, n, BDRV_REQ_MAY_UNMAP);
    }
    ret = bdrv_co_pread(top, off, n, buf, 0);
    if (ret < 0) {
        *is_read = true;
        return ret;
    }
    return buffer_is_zero(buf, n) ? bdrv_co_pwrite_zeroes(dst, off, n, BDRV_REQ_MAY_UNMAP)
                                  : bdrv_co_pwrite(dst, off, n, buf, 0);
}

/* Every range allocated above base, into dst; progress after each chunk. */
static int coroutine_fn commit_co_copy(BlockDriverState *top, BlockDriverState *base,
                                       BlockDriverState *dst, int64_t len,
                                       const BdrvCommitOptions *opts, GError **errp)
{
    int64_t chunk = opts->chunk_size > 0 ? opts->chunk_size : COMMIT_DEFAULT_CHUNK;
    g_autofree uint8_t *buf = g_malloc(chunk);
    int skipped_error = 0;
    int64_t skipped_at = 0;

    for (int64_t off = 0; off < len;) {
        int64_t n;
        int st, ret = 0;
        bool is_read = false;

        if (opts->cancel && *opts->cancel) {
            qblk_error_set_errno(errp, ECANCELED, "Commit cancelled at offset %" PRId64, off);
            return -ECANCELED;
        }
        st = bdrv_co_block_status_above(top, base, off, len - off, &n);
        if (st < 0) {
            qblk_error_set(errp, "Block status error at offset %" PRId64 ": %s", off,
                           strerror(-st));
            return st;
        }
        n = MIN(n, chunk);
        if (st & BDRV_BLOCK_ALLOCATED) {
            ret = commit_co_chunk(top, dst, off, n, st, buf, &is_read);
        }
        if (ret < 0 && opts->chunk_error) {
            int action = opts->chunk_error(opts->opaque, ret, is_read);

            if (action == 0) {
                continue;                      /* the same chunk again */
            }
            if (action > 0) {
                if (!skipped_error) {
                    skipped_error = ret;
                    skipped_at = off;
                }
                ret = 0;
            } else {
                ret = action;
            }
        }
        if (ret < 0) {
            qblk_error_set(errp, "Error while committing at offset %" PRId64 ": %s", off,
                           strerror(-ret));
            return ret;
        }
        off += n;
        if (opts->progress) {
            opts->progress(opts->opaque, off, len);
        }
        if (opts->after_chunk) {
            opts->after_chunk(opts->opaque, n, (st & BDRV_BLOCK_ALLOCATED) != 0);
        }
    }
    if (skipped_error) {
        qblk_error_set(errp, "Error while committing at offset %" PRId64 ": %s", skipped_at,
                       strerror(-skipped_error));
        return skipped_error;
    }
    return 0;
}

int coroutine_fn bdrv_co_commit(BlockDriverState *top, BlockDriverState *base,
                                const BdrvCommitOptions *opts, GError **errp)
{
    static const BdrvCommitOptions no_opts;
    int64_t len = bdrv_getlength(top);
    BlockDriverState *dst;
    int ret, flush_ret, release_ret;

    opts = opts ? opts : &no_opts;
    if (len < 0) {
        qblk_error_set_errno(errp, (int)-len, "Could not get the length of '%s'",
                             bdrv_filename(top));
        return (int)len;
    }
    dst = commit_co_acquire_writable_base(base, errp);
    if (!dst) {
        return -EIO;
    }
    if (opts->progress) {
        opts->progress(opts->opaque, 0, len);
    }
    ret = 0;
    if (bdrv_getlength(dst) < len) {
        ret = bdrv_co_truncate(dst, len, false, PREALLOC_MODE_OFF, errp);
    }
    if (ret >= 0) {
        ret = commit_co_copy(top, base, dst, len, opts, errp);
        /* Even a cancelled commit leaves what it copied stable in the base. */
        if (ret >= 0 || ret == -ECANCELED) {
            flush_ret = bdrv_co_flush(dst);
            if (flush_ret < 0 && ret >= 0) {
                qblk_error_set_errno(errp, -flush_ret, "Could not flush the base image '%s'",
                                     bdrv_filename(base));
                ret = flush_ret;
            }
        }
    }
    /* The first error is the one reported. */
    release_ret = commit_co_release_writable_base(base, dst, ret < 0 ? NULL : errp);
    if (ret >= 0 && release_ret < 0) {
        ret = release_ret;
    }
    return ret < 0 ? ret : 0;
}
