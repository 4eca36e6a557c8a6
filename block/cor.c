/* Copy-on-read for every format with a backing file: a read of clusters
 * the top image lacks copies them up from the backing chain, storing
 * all-zero clusters as zero writes (cheap in QED/qcow2) and the rest as
 * data, then serves the read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "block/internal.h"
#include "util/bufferiszero.h"
#include "trace-events.h"

/* Bounce buffer bound: copy-on-read memory stays constant per request. */
#define COR_MAX_CHUNK (1024 * 1024)
/* Reads into the caller's own buffer need no bounce: larger pieces. */
#define COR_MAX_DIRECT (16 * 1024 * 1024)

void bdrv_enable_copy_on_read(BlockDriverState *bs)
{
    bs->copy_on_read++;
}

void bdrv_disable_copy_on_read(BlockDriverState *bs)
{
    g_assert(bs->copy_on_read > 0);
    bs->copy_on_read--;
}

int64_t bdrv_cor_cluster_size(BlockDriverState *bs)
{
    BlockDriverInfo bdi;
    int64_t align = bs->bl.request_alignment ? bs->bl.request_alignment : 1;

    if (bdrv_get_info(bs, &bdi) == 0 && bdi.cluster_size > 0) {
        return MAX(bdi.cluster_size, align);
    }
    return MAX(65536, align);
}

/* The caller's memory for [offset, offset+bytes) when qiov is one buffer
 * that covers it (a stream job's chunk, most large reads): the piece is
 * then read in place, without a bounce buffer and its copy. */
static uint8_t *direct_buffer(QIOVector *qiov, int64_t want, int64_t want_len,
                              int64_t offset, int64_t bytes)
{
    if (qiov->niov != 1 || offset < want || offset + bytes > want + want_len) {
        return NULL;
    }
    return (uint8_t *)qiov->iov[0].iov_base + (offset - want);
}

/* Copies [offset, offset+bytes) (cluster aligned, unallocated in bs) up
 * from the backing chain, and copies the part inside [want, want+want_len)
 * into qiov at its place. buf is a bounce buffer, or the caller's memory
 * for exactly this piece (direct_buffer). */
static int coroutine_fn copy_up(BlockDriverState *bs, int64_t cluster, int64_t offset,
                                int64_t bytes, QIOVector *qiov, int64_t want,
                                int64_t want_len, uint8_t *buf, bool direct)
{
    QIOVector bounce;
    int ret;

    qiov_init_buf(&bounce, buf, bytes);
    ret = bdrv_co_aligned_preadv(bs, offset, bytes, &bounce, 0);
    if (ret < 0) {
        return ret;
    }
    /* Zero detection per cluster, so a chunk mixing data and zero clusters
     * stores each as what it is. */
    for (int64_t pos = 0; pos < bytes;) {
        bool zero;
        int64_t run = buffer_zero_run(buf + pos, bytes - pos, cluster, offset + pos, &zero);

        if (zero) {
            ret = bdrv_co_do_pwrite_zeroes(bs, offset + pos, run, BDRV_REQ_WRITE_UNCHANGED);
        } else {
            QIOVector data;

            qiov_init_buf(&data, buf + pos, run);
            ret = bdrv_co_do_pwritev(bs, offset + pos, run, &data, BDRV_REQ_WRITE_UNCHANGED);
        }
        if (ret < 0) {
            return ret;
        }
        pos += run;
    }

    int64_t start = MAX(offset, want);
    int64_t end = MIN(offset + bytes, want + want_len);

    if (!direct && end > start) {
        qiov_from_buf(qiov, start - want, buf + (start - offset), end - start);
    }
    return 0;
}

int coroutine_fn bdrv_co_copy_on_read(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      QIOVector *qiov)
{
    int64_t cluster = bdrv_cor_cluster_size(bs);
    int64_t len = bdrv_getlength(bs);
    int64_t start = offset - offset % cluster;
    int64_t end = MIN(bdrv_round_up(offset + bytes, cluster), len);
    uint8_t *buf = NULL;
    int ret = 0;

    trace_bdrv_co_copy_on_read(bs, offset, bytes);
    for (int64_t pos = start; pos < end;) {
        int64_t pnum;
        int alloc = bdrv_co_is_allocated_in_request(bs, pos, end - pos, &pnum);

        if (alloc < 0) {
            ret = alloc;
            break;
        }
        pnum = MAX(MIN(pnum, end - pos), 1);
        if (alloc) {
            /* Already in the top image: read the wanted part directly. */
            int64_t s = MAX(pos, offset), e = MIN(pos + pnum, offset + bytes);

            if (e > s) {
                QIOVector part;

                qiov_init_slice(&part, qiov, s - offset, e - s);
                ret = bdrv_co_aligned_preadv(bs, s, e - s, &part, 0);
                qiov_destroy(&part);
            }
        } else {
            /* Unallocated runs start and end on cluster boundaries except at
             * the end of the image. */
            uint8_t *direct;

            pnum = MIN(pnum, COR_MAX_DIRECT);
            direct = direct_buffer(qiov, offset, bytes, pos, pnum);
            if (!direct) {
                pnum = MIN(pnum, COR_MAX_CHUNK);
                if (pnum > cluster) {
                    pnum -= pnum % cluster;
                }
                direct = direct_buffer(qiov, offset, bytes, pos, pnum);
            }
            if (!direct && !buf) {
                buf = g_malloc(MIN(end - start, COR_MAX_CHUNK) + cluster);
            }
            ret = copy_up(bs, cluster, pos, pnum, qiov, offset, bytes, direct ? direct : buf,
                          direct != NULL);
        }
        if (ret < 0) {
            break;
        }
        pos += pnum;
    }
    g_free(buf);
    return ret;
}
