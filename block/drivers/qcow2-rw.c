/* qcow2 data paths: reads (data, zero, compressed, backing), in-place and
 * allocating writes with copy of shared clusters, v3 zero clusters,
 * discard and block status. */
#include <errno.h>
#include <string.h>
#include "block/drivers/qcow2.h"
#include "util/bufferiszero.h"

/* Reads one compressed cluster, decompressed, into buf (cluster_size). */
static int coroutine_fn read_compressed(BlockDriverState *bs, uint64_t entry, uint8_t *buf)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t coffset = entry & s->coffset_mask;
    uint64_t nsect = ((entry >> s->csize_shift) & s->csize_mask) + 1;
    uint64_t csize = nsect * 512 - (coffset & 511);
    int64_t flen = bdrv_getlength(bs->file);
    g_autofree uint8_t *in = NULL;
    int ret;

    if (flen < 0) {
        return (int)flen;
    }
    if (coffset >= (uint64_t)flen) {
        return qcow2_co_mark_corrupt(bs, "compressed cluster at %#" G_GINT64_MODIFIER "x "
                                     "lies past the end of the file", coffset);
    }
    /* The descriptor may round past the end of the file. */
    csize = MIN(csize, (uint64_t)flen - coffset);
    in = g_malloc(csize);
    ret = bdrv_co_pread(bs->file, coffset, csize, in, 0);
    if (ret < 0) {
        return ret;
    }
    if (qcow2_decompress(s, in, csize, buf, s->cluster_size) < 0) {
        return -EIO;
    }
    return 0;
}

int coroutine_fn qcow2_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 QIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t done = 0;

    while (done < (uint64_t)bytes) {
        uint64_t pos = offset + done, entry, n;
        uint64_t in_cluster = pos & (s->cluster_size - 1);
        QIOVector part;
        int ret;

        qco_mutex_lock(&s->lock);
        ret = qcow2_co_get_mapping(bs, pos, bytes - done, &entry, &n);
        qco_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
        switch (qcow2_cluster_type(s, entry)) {
        case QCOW2_CLUSTER_UNALLOCATED:
            ret = bdrv_co_read_backing(bs, pos, n, qiov, done);
            break;
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            qiov_memset(qiov, done, 0, n);
            break;
        case QCOW2_CLUSTER_NORMAL:
            qiov_init_slice(&part, qiov, done, n);
            ret = bdrv_co_preadv(bs->file, (entry & QCOW2_L2E_OFFSET_MASK) + in_cluster, n,
                                 &part, 0);
            qiov_destroy(&part);
            break;
        case QCOW2_CLUSTER_COMPRESSED: {
            g_autofree uint8_t *buf = g_malloc(s->cluster_size);

            ret = read_compressed(bs, entry, buf);
            if (ret == 0) {
                qiov_from_buf(qiov, done, buf + in_cluster, n);
            }
            break;
        }
        }
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* Fills buf with the current content of guest range [pos, pos+len) inside
 * a cluster whose L2 entry is entry (for copy-on-write). */
static int coroutine_fn read_old(BlockDriverState *bs, uint64_t entry, uint64_t pos,
                                 uint64_t len, uint8_t *buf)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t in_cluster = pos & (s->cluster_size - 1);
    QIOVector v;
    int ret;

    if (!len) {
        return 0;
    }
    switch (qcow2_cluster_type(s, entry)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        qiov_init_buf(&v, buf, len);
        return bdrv_co_read_backing(bs, pos, len, &v, 0);
    case QCOW2_CLUSTER_NORMAL:
        return bdrv_co_pread(bs->file, (entry & QCOW2_L2E_OFFSET_MASK) + in_cluster, len, buf, 0);
    case QCOW2_CLUSTER_COMPRESSED: {
        g_autofree uint8_t *cbuf = g_malloc(s->cluster_size);

        ret = read_compressed(bs, entry, cbuf);
        if (ret == 0) {
            memcpy(buf, cbuf + in_cluster, len);
        }
        return ret;
    }
    default:
        memset(buf, 0, len);
        return 0;
    }
}

/* True when the copied-around parts of a cluster are all zeroes. */
static bool zero_cow(const uint8_t *head, uint64_t head_len, const uint8_t *tail,
                     uint64_t tail_len)
{
    return (!head_len || buffer_is_zero(head, head_len)) &&
           (!tail_len || buffer_is_zero(tail, tail_len));
}

void coroutine_fn qcow2_co_wait_inflight(BlockDriverState *bs, uint64_t offset,
                                         uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t start = offset & ~(cs - 1), end = (offset + bytes + cs - 1) & ~(cs - 1);
    GList *l;

again:
    for (l = s->inflight; l; l = l->next) {
        Qcow2InflightAlloc *a = l->data;

        if (a->start < end && start < a->end) {
            qco_queue_wait(&a->waiters, &s->lock);
            goto again;
        }
    }
}

/* Marks guest clusters [a->start, a->end) in flight and drops the lock,
 * so their data can be written while other requests wait for them. */
static void coroutine_fn inflight_begin(BDRVQcow2State *s, Qcow2InflightAlloc *a)
{
    qco_queue_init(&a->waiters);
    s->inflight = g_list_prepend(s->inflight, a);
    qco_mutex_unlock(&s->lock);
}

/* Retakes the lock and lets the requests waiting for a go on. */
static void coroutine_fn inflight_end(BDRVQcow2State *s, Qcow2InflightAlloc *a)
{
    qco_mutex_lock(&s->lock);
    s->inflight = g_list_remove(s->inflight, a);
    qco_queue_restart_all(&a->waiters);
}

/* Writes [pos, pos+n) (one run of one entry type, from get_mapping) into
 * clusters of its own: fresh ones, or for a zero-allocated cluster we own,
 * the one it already has. The rest of each cluster keeps what it read
 * before. Called with the lock held; the data is written without it, the
 * clusters marked in flight meanwhile; returns with the lock held. */
static int coroutine_fn alloc_write(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                    uint64_t entry, QIOVector *data, size_t data_off)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t start = pos & ~(cs - 1);
    uint64_t end = (pos + n + cs - 1) & ~(cs - 1);
    uint64_t head = pos - start, tail = end - (pos + n);
    uint64_t k = (end - start) >> s->cluster_bits;
    Qcow2ClusterType type = qcow2_cluster_type(s, entry);
    bool reuse = type == QCOW2_CLUSTER_ZERO_ALLOC && (entry & QCOW2_OFLAG_COPIED);
    g_autofree uint8_t *head_buf = head ? g_malloc(head) : NULL;
    g_autofree uint8_t *tail_buf = tail ? g_malloc(tail) : NULL;
    g_autofree uint64_t *values = g_new(uint64_t, k);
    uint64_t old_host = entry & QCOW2_L2E_OFFSET_MASK;
    Qcow2InflightAlloc inflight = { .start = start, .end = end };
    int64_t host;
    QIOVector v;
    int ret;

    ret = qcow2_co_prepare_l2(bs, start);
    if (ret < 0) {
        return ret;
    }
    if (reuse) {
        host = old_host;
    } else {
        host = qcow2_co_alloc_clusters(bs, k);
        if (host < 0) {
            return (int)host;
        }
    }
    ret = qcow2_co_check_write(bs, host, end - start, QCOW2_META_NONE);
    if (ret < 0) {
        return ret;
    }
    inflight_begin(s, &inflight);

    ret = read_old(bs, entry, start, head, head_buf);
    if (ret == 0) {
        /* A compressed run is one cluster; others are contiguous. */
        uint64_t tail_entry = entry;

        if (type == QCOW2_CLUSTER_NORMAL) {
            tail_entry = entry + (((pos + n) & ~(cs - 1)) - start);
        }
        ret = read_old(bs, tail_entry, pos + n, tail, tail_buf);
    }
    if (ret == 0 && (head || tail) && zero_cow(head_buf, head, tail_buf, tail) &&
        bdrv_co_pwrite_zeroes(bs->file, host, end - start, BDRV_REQ_NO_FALLBACK) == 0) {
        /* The host zeroed the clusters cheaply: only the guest data is
         * left to write, not the zeroes around it. */
        qiov_init_slice(&v, data, data_off, n);
        ret = bdrv_co_pwritev(bs->file, host + head, n, &v, 0);
        qiov_destroy(&v);
    } else if (ret == 0) {
        qiov_init_padded(&v, head_buf, head, data, data_off, n, tail_buf, tail);
        ret = bdrv_co_pwritev(bs->file, host, end - start, &v, 0);
        qiov_destroy(&v);
    }

    inflight_end(s, &inflight);
    if (ret < 0) {
        /* Nothing points at the new clusters yet: give them back. */
        if (!reuse) {
            qcow2_co_update_refcount(bs, host, k << s->cluster_bits, -1);
        }
        return ret;
    }
    for (uint64_t i = 0; i < k; i++) {
        values[i] = ((uint64_t)host + (i << s->cluster_bits)) | QCOW2_OFLAG_COPIED;
    }
    ret = qcow2_co_set_l2_entries(bs, start, k, values);
    if (ret < 0 || reuse) {
        return ret;
    }
    /* Drop this image's reference to what the clusters held before. */
    if (type == QCOW2_CLUSTER_COMPRESSED) {
        return qcow2_co_free_l2_entry(bs, entry);
    }
    if (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC) {
        return qcow2_co_update_refcount(bs, old_host, k << s->cluster_bits, -1);
    }
    return 0;
}

/* One compressed cluster at guest offset pos (cluster aligned); data is
 * cluster_size bytes (zero padded at the image's end). */
static int coroutine_fn write_compressed_cluster(BlockDriverState *bs, uint64_t pos,
                                                 const uint8_t *data)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, entry, n, nsect, value;
    g_autofree uint8_t *out = g_malloc(cs);
    Qcow2InflightAlloc inflight = { .start = pos, .end = pos + cs };
    ssize_t len = qcow2_compress(s, data, cs, out, cs - 1);
    int64_t host;
    int ret;

    if (len < 0) {
        /* Does not shrink: stored as an ordinary cluster, as QEMU does. */
        QIOVector v;

        qiov_init_buf(&v, (void *)data, MIN(cs, s->header.size - pos));
        return qcow2_co_pwritev(bs, pos, MIN(cs, s->header.size - pos), &v, 0);
    }
    qco_mutex_lock(&s->lock);
    qcow2_co_wait_inflight(bs, pos, cs);
    ret = qcow2_co_get_mapping(bs, pos, cs, &entry, &n);
    if (ret == 0 && (entry & QCOW2_L2E_OFFSET_MASK)) {
        ret = -EIO;     /* compression never overwrites allocated clusters */
    }
    if (ret == 0) {
        ret = qcow2_co_prepare_l2(bs, pos);
    }
    host = ret < 0 ? ret : qcow2_co_alloc_bytes(bs, len);
    if (host >= 0) {
        ret = qcow2_co_check_write(bs, host, len, QCOW2_META_NONE);
    }
    if (host < 0 || ret < 0) {
        qco_mutex_unlock(&s->lock);
        return host < 0 ? (int)host : ret;
    }
    inflight_begin(s, &inflight);

    ret = bdrv_co_pwrite(bs->file, host, len, out, 0);

    inflight_end(s, &inflight);
    if (ret == 0) {
        nsect = ((host + len - 1) >> 9) - ((uint64_t)host >> 9);
        value = (uint64_t)host | QCOW2_OFLAG_COMPRESSED | (nsect << s->csize_shift);
        ret = qcow2_co_set_l2_entries(bs, pos, 1, &value);
    }
    if (ret < 0) {
        qcow2_co_update_refcount(bs, host, len, -1);
    }
    qco_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn qcow2_co_pwritev_compressed(BlockDriverState *bs, uint64_t offset,
                                             uint64_t bytes, QIOVector *qiov)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    g_autofree uint8_t *buf = g_malloc(cs);

    if ((offset & (cs - 1)) || ((bytes & (cs - 1)) && offset + bytes != s->header.size)) {
        return -EINVAL;
    }
    for (uint64_t done = 0; done < bytes; done += cs) {
        uint64_t n = MIN(cs, bytes - done);
        int ret;

        memset(buf, 0, cs);
        qiov_to_buf(qiov, done, buf, n);
        ret = write_compressed_cluster(bs, offset + done, buf);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

int coroutine_fn qcow2_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  QIOVector *qiov, BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t done = 0;

    if (!(flags & BDRV_REQ_WRITE_UNCHANGED)) {
        qcow2_co_bitmaps_mark(bs, offset, bytes);
    }
    if (flags & BDRV_REQ_WRITE_COMPRESSED) {
        return qcow2_co_pwritev_compressed(bs, offset, bytes, qiov);
    }

    while (done < (uint64_t)bytes) {
        uint64_t pos = offset + done, entry, n;
        QIOVector part;
        int ret;

        qco_mutex_lock(&s->lock);
        qcow2_co_wait_inflight(bs, pos, bytes - done);
        ret = qcow2_co_get_mapping(bs, pos, bytes - done, &entry, &n);
        if (ret == 0 && !(qcow2_cluster_type(s, entry) == QCOW2_CLUSTER_NORMAL &&
                          (entry & QCOW2_OFLAG_COPIED))) {
            ret = alloc_write(bs, pos, n, entry, qiov, done);
            qco_mutex_unlock(&s->lock);
            if (ret < 0) {
                return ret;
            }
            done += n;
            continue;
        }
        if (ret == 0) {
            ret = qcow2_co_check_write(bs, (entry & QCOW2_L2E_OFFSET_MASK) +
                                       (pos & (s->cluster_size - 1)), n, QCOW2_META_NONE);
        }
        qco_mutex_unlock(&s->lock);
        if (ret < 0) {
            return ret;
        }
        qiov_init_slice(&part, qiov, done, n);
        ret = bdrv_co_pwritev(bs->file, (entry & QCOW2_L2E_OFFSET_MASK) +
                              (pos & (s->cluster_size - 1)), n, &part, 0);
        qiov_destroy(&part);
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/* True when [off, off+len) of the chain starting at bs reads as zeroes,
 * judged from block status alone (no data is read). */
static int coroutine_fn chain_is_zero(BlockDriverState *bs, int64_t off, int64_t len)
{
    while (len > 0) {
        int64_t pnum;
        int ret = bdrv_co_block_status_above(bs, NULL, off, len, &pnum);

        if (ret <= 0 || !(ret & BDRV_BLOCK_ZERO)) {
            return ret < 0 ? ret : 0;
        }
        off += pnum;
        len -= pnum;
    }
    return 1;
}

/* A zero write that does not cover whole clusters is done here only when
 * the rest of the cluster already reads as zeroes: the cluster becomes a
 * zero cluster. Otherwise the core writes zero buffers. */
static int coroutine_fn zero_partial(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                     uint64_t *start, uint64_t *len)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t c0 = offset & ~(cs - 1), c1 = (offset + bytes + cs - 1) & ~(cs - 1);
    uint64_t size = s->header.size, entry, n;
    int ret;

    if (c1 - c0 > cs) {
        return -ENOTSUP;        /* the core splits requests at the alignment */
    }
    c1 = MIN(c1, size);
    ret = qcow2_co_get_mapping(bs, c0, c1 - c0, &entry, &n);
    if (ret < 0) {
        return ret;
    }
    switch (qcow2_cluster_type(s, entry)) {
    case QCOW2_CLUSTER_ZERO_PLAIN:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        break;
    case QCOW2_CLUSTER_UNALLOCATED:
        ret = chain_is_zero(bs->backing, c0, offset - c0);
        if (ret > 0) {
            ret = chain_is_zero(bs->backing, offset + bytes, c1 - (offset + bytes));
        }
        if (ret <= 0) {
            return ret < 0 ? ret : -ENOTSUP;
        }
        break;
    default:
        return -ENOTSUP;
    }
    *start = c0;
    *len = cs;
    return 0;
}

int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t pos = offset, end = offset + bytes;
    int ret = 0;

    if (s->header.version < 3 && bs->backing) {
        return -ENOTSUP;
    }
    if (!(flags & BDRV_REQ_WRITE_UNCHANGED)) {
        qcow2_co_bitmaps_mark(bs, offset, bytes);
    }
    qco_mutex_lock(&s->lock);
    qcow2_co_wait_inflight(bs, offset, bytes);
    if ((offset | bytes) & (cs - 1) && end != s->header.size) {
        uint64_t start, len;

        ret = zero_partial(bs, offset, bytes, &start, &len);
        if (ret < 0) {
            qco_mutex_unlock(&s->lock);
            return ret;
        }
        pos = start;
        end = start + len;
    } else if (offset & (cs - 1)) {
        qco_mutex_unlock(&s->lock);
        return -ENOTSUP;
    }
    if (s->header.version < 3) {
        /* No zero flag, but without a backing file unallocated clusters
         * read as zeroes: discard whole clusters, as QEMU does. */
        ret = qcow2_co_discard_clusters(bs, pos, end - pos, false);
        qco_mutex_unlock(&s->lock);
        return ret;
    }
    while (pos < end && ret == 0) {
        uint64_t entry, n, k;
        Qcow2ClusterType type;
        g_autofree uint64_t *values = NULL;
        bool unmap;

        ret = qcow2_co_get_mapping(bs, pos, end - pos, &entry, &n);
        if (ret < 0) {
            break;
        }
        type = qcow2_cluster_type(s, entry);
        k = (n + cs - 1) >> s->cluster_bits;
        unmap = type == QCOW2_CLUSTER_COMPRESSED ||
                ((flags & BDRV_REQ_MAY_UNMAP) &&
                 (type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC));
        if (!(type == QCOW2_CLUSTER_ZERO_PLAIN && entry == QCOW2_OFLAG_ZERO) &&
            !(type == QCOW2_CLUSTER_ZERO_ALLOC && !unmap)) {
            values = g_new(uint64_t, k);
            for (uint64_t i = 0; i < k; i++) {
                uint64_t old = unmap || type == QCOW2_CLUSTER_UNALLOCATED ||
                               type == QCOW2_CLUSTER_ZERO_PLAIN ? 0
                               : entry + (type == QCOW2_CLUSTER_NORMAL ? i << s->cluster_bits : 0);

                values[i] = old | QCOW2_OFLAG_ZERO;
            }
            ret = qcow2_co_set_l2_entries(bs, pos, k, values);
            if (ret == 0 && unmap) {
                ret = type == QCOW2_CLUSTER_COMPRESSED ? qcow2_co_free_l2_entry(bs, entry)
                      : qcow2_co_update_refcount(bs, entry & QCOW2_L2E_OFFSET_MASK,
                                                 k << s->cluster_bits, -1);
            }
        }
        pos += n;
    }
    qco_mutex_unlock(&s->lock);
    return ret;
}

int coroutine_fn qcow2_co_discard_clusters(BlockDriverState *bs, uint64_t offset,
                                           uint64_t bytes, bool full)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint64_t pos = offset, end = offset + bytes;
    int ret = 0;

    while (pos < end && ret == 0) {
        uint64_t entry, n, k, new_entry = 0;
        Qcow2ClusterType type;
        bool allocated;
        g_autofree uint64_t *values = NULL;

        ret = qcow2_co_get_mapping(bs, pos, end - pos, &entry, &n);
        if (ret < 0) {
            break;
        }
        type = qcow2_cluster_type(s, entry);
        allocated = type == QCOW2_CLUSTER_NORMAL || type == QCOW2_CLUSTER_ZERO_ALLOC ||
                    type == QCOW2_CLUSTER_COMPRESSED;
        k = (n + cs - 1) >> s->cluster_bits;
        /* Discarded clusters read as zeroes where the format can say so,
         * rather than exposing the backing file again. */
        if (!full && (bs->backing || allocated) && s->header.version >= 3) {
            new_entry = QCOW2_OFLAG_ZERO;
        }
        if (entry != new_entry || allocated) {
            values = g_new(uint64_t, k);
            for (uint64_t i = 0; i < k; i++) {
                values[i] = new_entry;
            }
            ret = qcow2_co_set_l2_entries(bs, pos, k, values);
            if (ret == 0 && type == QCOW2_CLUSTER_COMPRESSED) {
                ret = qcow2_co_free_l2_entry(bs, entry);
            } else if (ret == 0 && allocated) {
                ret = qcow2_co_update_refcount(bs, entry & QCOW2_L2E_OFFSET_MASK,
                                               k << s->cluster_bits, -1);
            }
        }
        pos += n;
    }
    return ret;
}

int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    int ret;

    qcow2_co_bitmaps_mark(bs, offset, bytes);
    /* Partial clusters are ignored, except a last partial cluster. */
    if ((offset & (cs - 1)) || ((bytes & (cs - 1)) && (uint64_t)(offset + bytes) != s->header.size)) {
        return -ENOTSUP;
    }
    qco_mutex_lock(&s->lock);
    qcow2_co_wait_inflight(bs, offset, bytes);
    ret = qcow2_co_discard_clusters(bs, offset, bytes, false);
    qco_mutex_unlock(&s->lock);
    return ret;
}

/* QEMU's test: more than 10/9 (and 2 more) as many clusters referenced
 * as the host file has allocated. */
static bool coroutine_fn detect_metadata_prealloc(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t real = bdrv_get_allocated_file_size(bs->file);
    uint64_t real_clusters, threshold, used = 0;

    if (real < 0) {
        return false;
    }
    real_clusters = (uint64_t)real >> s->cluster_bits;
    threshold = MAX(real_clusters * 10 / 9, real_clusters + 2);
    for (uint64_t i = 0; i < s->file_end >> s->cluster_bits && used <= threshold; i++) {
        uint64_t rc;

        if (qcow2_co_get_refcount(bs, i, &rc) < 0) {
            return false;
        }
        used += rc > 0;
    }
    return used > threshold;
}

int coroutine_fn qcow2_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                       int64_t bytes, int64_t *pnum, int64_t *map,
                                       BlockDriverState **file)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t entry, n;
    int ret;

    qco_mutex_lock(&s->lock);
    if (!s->metadata_prealloc_checked) {
        s->metadata_prealloc = detect_metadata_prealloc(bs);
        s->metadata_prealloc_checked = true;
    }
    ret = qcow2_co_get_mapping(bs, offset, bytes, &entry, &n);
    qco_mutex_unlock(&s->lock);
    if (ret < 0) {
        return ret;
    }
    *pnum = n;
    switch (qcow2_cluster_type(s, entry)) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return 0;
    case QCOW2_CLUSTER_ZERO_PLAIN:
        return BDRV_BLOCK_ZERO;
    case QCOW2_CLUSTER_COMPRESSED:
        return BDRV_BLOCK_DATA | BDRV_BLOCK_COMPRESSED;
    case QCOW2_CLUSTER_ZERO_ALLOC:
        ret = BDRV_BLOCK_ZERO;
        break;
    default:
        ret = BDRV_BLOCK_DATA | (s->metadata_prealloc ? BDRV_BLOCK_RECURSE : 0);
        break;
    }
    *map = (entry & QCOW2_L2E_OFFSET_MASK) + (offset & (s->cluster_size - 1));
    *file = bs->file;
    return ret | BDRV_BLOCK_OFFSET_VALID;
}
