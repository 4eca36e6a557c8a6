/* QED data paths: reads through the tables, in-place and allocating
 * writes, zero clusters, and block status. */
#include <errno.h>
#include <string.h>
#include "block/drivers/qed.h"

int coroutine_fn qed_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags)
{
    uint64_t done = 0;

    while (done < (uint64_t)bytes) {
        QedClusterState state;
        uint64_t host, n;
        int ret = qed_co_find_run(bs, offset + done, bytes - done, &state, &host, &n);

        if (ret < 0) {
            return ret;
        }
        if (state == QED_UNALLOC) {
            ret = bdrv_co_read_backing(bs, offset + done, n, qiov, done);
        } else if (state == QED_ZERO) {
            /* A zero cluster shadows the backing file. */
            qiov_memset(qiov, done, 0, n);
        } else {
            QIOVector part;

            qiov_init_slice(&part, qiov, done, n);
            ret = bdrv_co_preadv(bs->file, host, n, &part, 0);
            qiov_destroy(&part);
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* Writes the clusters around [pos, pos+n) to fresh space at the end of
 * the file: the guest data, and the rest of each cluster from the backing
 * file (unallocated) or as zeroes (a zero cluster, as the QED spec says).
 * Caller holds alloc_lock. */
static int coroutine_fn alloc_write(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                    QIOVector *data, size_t data_off, QedClusterState state,
                                    BdrvRequestFlags flags)
{
    bool lazy = bs->backing && (flags & BDRV_REQ_WRITE_UNCHANGED);
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t start = pos & ~(cs - 1);
    uint64_t end = (pos + n + cs - 1) & ~(cs - 1);
    uint64_t head = pos - start, tail = end - (pos + n);
    g_autofree uint8_t *head_buf = head ? g_malloc(head) : NULL;
    g_autofree uint8_t *tail_buf = tail ? g_malloc(tail) : NULL;
    uint64_t host;
    QIOVector v;
    int ret = qed_meta_check_table(bs, pos);

    /* (Checked first: a refused write changes nothing, not even the
     * need-check flag or the file's length.) */
    if (ret < 0) {
        return ret;
    }
    if (!bs->backing) {
        /* Without a backing file nothing orders data before metadata, so
         * the image is marked for a check until it is closed cleanly. */
        ret = qed_co_set_need_check(bs);
        if (ret < 0) {
            return ret;
        }
    }
    if (state == QED_ZERO) {
        if (head) {
            memset(head_buf, 0, head);
        }
        if (tail) {
            memset(tail_buf, 0, tail);
        }
    } else {
        QIOVector part;

        if (head) {
            qiov_init_buf(&part, head_buf, head);
            ret = bdrv_co_read_backing(bs, start, head, &part, 0);
        }
        if (ret == 0 && tail) {
            qiov_init_buf(&part, tail_buf, tail);
            ret = bdrv_co_read_backing(bs, pos + n, tail, &part, 0);
        }
        if (ret < 0) {
            return ret;
        }
    }

    host = s->file_size;
    s->file_size += end - start;
    qiov_init_padded(&v, head_buf, head, data, data_off, n, tail_buf, tail);
    ret = bdrv_co_pwritev(bs->file, host, end - start, &v, 0);
    qiov_destroy(&v);
    if (ret == 0 && bs->backing && !lazy) {
        /* With a backing file the tables must never point at unwritten
         * data: flush before they change. Copy-on-read data instead waits
         * for one flush covering many copies (qed_co_commit_tables). */
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        return ret;
    }
    return qed_co_set_entries(bs, start, end - start, host, lazy);
}

int coroutine_fn qed_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t done = 0;

    while (done < (uint64_t)bytes) {
        uint64_t pos = offset + done, host, n;
        QedClusterState state;
        int ret = qed_co_find_run(bs, pos, bytes - done, &state, &host, &n);

        if (ret == 0 && state != QED_DATA) {
            /* Allocation is serialised; another writer may have allocated
             * these clusters while this one waited. */
            qco_mutex_lock(&s->alloc_lock);
            ret = qed_co_find_run(bs, pos, bytes - done, &state, &host, &n);
            if (ret == 0 && state != QED_DATA) {
                /* (alloc_write's new clusters lie past every table; it
                 * checks the table it will update.) */
                ret = alloc_write(bs, pos, n, qiov, done, state, flags);
                qco_mutex_unlock(&s->alloc_lock);
                qed_allocation_done(bs);
                if (ret < 0) {
                    return ret;
                }
                done += n;
                continue;
            }
            qco_mutex_unlock(&s->alloc_lock);
        }
        if (ret < 0) {
            return qed_meta_check_invalid(bs, pos, state, host, ret);
        }
        ret = qed_meta_check_data(bs, pos, host, n);
        if (ret < 0) {
            return ret;
        }
        {
            QIOVector part;

            qiov_init_slice(&part, qiov, done, n);
            ret = bdrv_co_pwritev(bs->file, host, n, &part, 0);
            qiov_destroy(&part);
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* Whole clusters only (the core sends unaligned heads and tails as plain
 * writes). Unallocated clusters become zero clusters, metadata only.
 * Allocated clusters keep their L2 entry and their host range is zeroed
 * in the file (punched out when the caller allows unmapping, so the space
 * goes back to the host; kept allocated otherwise, as an NBD client's
 * NO_HOLE asks): the cluster stays referenced, so qemu-img check stays
 * clean (an L2 value of 1 would leave the freed cluster as a leak, since
 * QED has no free list). */
int coroutine_fn qed_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t done = 0;
    int ret = 0;

    if ((offset & (cs - 1)) ||
        ((bytes & (cs - 1)) && (uint64_t)(offset + bytes) != s->header.image_size)) {
        return -ENOTSUP;
    }
    qco_mutex_lock(&s->alloc_lock);
    while (done < (uint64_t)bytes && ret == 0) {
        uint64_t pos = offset + done, host, n;
        QedClusterState state;

        ret = qed_co_find_run(bs, pos, bytes - done, &state, &host, &n);
        if (ret < 0) {
            ret = qed_meta_check_invalid(bs, pos, state, host, ret);
            break;
        }
        if (state == QED_UNALLOC) {
            /* Refused before anything (the need-check flag) changes. */
            ret = qed_meta_check_table(bs, pos);
            if (ret == 0 && !bs->backing) {
                ret = qed_co_set_need_check(bs);
            }
            if (ret == 0) {
                ret = qed_co_set_entries(bs, pos, n, QED_ZERO_CLUSTER,
                                         bs->backing && (flags & BDRV_REQ_WRITE_UNCHANGED));
            }
        } else if (state == QED_DATA) {
            uint64_t clusters = (n + cs - 1) & ~(cs - 1);

            ret = qed_meta_check_data(bs, pos, host, clusters);
            if (ret == 0) {
                ret = bdrv_co_pwrite_zeroes(bs->file, host, clusters,
                                            flags & (BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK));
            }
        }
        done += n;
    }
    qco_mutex_unlock(&s->alloc_lock);
    qed_allocation_done(bs);
    return ret;
}

int coroutine_fn qed_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file)
{
    QedClusterState state;
    uint64_t host, n;
    int ret = qed_co_find_run(bs, offset, bytes, &state, &host, &n);

    if (ret < 0) {
        return ret;
    }
    *pnum = n;
    if (state == QED_UNALLOC) {
        return 0;
    }
    if (state == QED_ZERO) {
        return BDRV_BLOCK_ZERO;
    }
    *map = host;
    *file = bs->file;
    return BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID | BDRV_BLOCK_RECURSE;
}
