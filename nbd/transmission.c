/* NBD transmission: the receive loop of one client and one coroutine per
 * request, replies (simple or structured) sent as requests finish, so a
 * connection's requests are answered out of order. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include "nbd/internal.h"
#include "util/bufferiszero.h"

typedef struct NbdRequestCtx {
    NbdClient *c;
    NbdRequest req;
    uint8_t *data;          /* WRITE payload */
} NbdRequestCtx;

/* Request buffers up to NBD_POOL_BUF_SIZE are reused: a fresh malloc of
 * a few hundred KiB is a fresh mmap whose every page faults on first
 * touch, which costs as much as the read itself. One free list for the
 * process: every client's coroutines run in the one loop thread. Kept at
 * most NBD_POOL_MAX, so the pool never holds more than the peak in flight
 * did. */
#define NBD_POOL_BUF_SIZE (1024 * 1024)
#define NBD_POOL_MAX 64

static void *buf_pool[NBD_POOL_MAX];
static unsigned buf_pool_len;

static void *nbd_buf_get(size_t len)
{
    if (len > NBD_POOL_BUF_SIZE) {
        return g_try_malloc(len);
    }
    if (buf_pool_len) {
        return buf_pool[--buf_pool_len];
    }
    return g_try_malloc(NBD_POOL_BUF_SIZE);
}

static void nbd_buf_put(void *buf, size_t len)
{
    if (buf && len <= NBD_POOL_BUF_SIZE && buf_pool_len < NBD_POOL_MAX) {
        buf_pool[buf_pool_len++] = buf;
    } else {
        g_free(buf);
    }
}

/* errno to the wire, as QEMU 7.2 maps it. */
static uint32_t wire_errno(int err)
{
    switch (err) {
    case 0: return 0;
    case EPERM: case EROFS: return NBD_EPERM;
    case EIO: return NBD_EIO;
    case ENOMEM: return NBD_ENOMEM;
    case EDQUOT: case EFBIG: case ENOSPC: return NBD_ENOSPC;
    case EOVERFLOW: return NBD_EOVERFLOW;
    case ENOTSUP: return NBD_ENOTSUP;
    case ESHUTDOWN: return NBD_ESHUTDOWN;
    default: return NBD_EINVAL;
    }
}

static int coroutine_fn send_locked(NbdClient *c, const void *h, size_t hl,
                                    const void *d, size_t dl)
{
    int ret;

    qco_mutex_lock(&c->send_lock);
    ret = nbd_co_send(c, h, hl, d, dl);
    qco_mutex_unlock(&c->send_lock);
    return ret;
}

static int coroutine_fn send_simple(NbdClient *c, uint64_t handle, int err,
                                    const void *data, size_t len)
{
    uint8_t h[NBD_SIMPLE_REPLY_SIZE];

    nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(h + 4, wire_errno(err));
    nbd_put64(h + 8, handle);
    return send_locked(c, h, sizeof(h), err ? NULL : data, len);
}

/* One structured chunk: header, then `fixed` (the chunk's own fields),
 * then data; payload length is their sum. */
static int coroutine_fn send_chunk(NbdClient *c, uint64_t handle, uint16_t flags,
                                   uint16_t type, const uint8_t *fixed, size_t flen,
                                   const void *data, size_t dlen)
{
    uint8_t h[NBD_CHUNK_HEADER_SIZE + 16];

    nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(h + 4, flags);
    nbd_put16(h + 6, type);
    nbd_put64(h + 8, handle);
    nbd_put32(h + 16, flen + dlen);
    if (flen) {     /* a NONE chunk has no fields: fixed is NULL, memcpy's UB */
        memcpy(h + NBD_CHUNK_HEADER_SIZE, fixed, flen);
    }
    return send_locked(c, h, NBD_CHUNK_HEADER_SIZE + flen, data, dlen);
}

/* A failed request: an ERROR chunk with the message to a structured
 * client, a simple reply otherwise. */
static int coroutine_fn send_error(NbdClient *c, uint64_t handle, int err, const char *msg)
{
    uint8_t f[6];

    if (!c->structured) {
        return send_simple(c, handle, err, NULL, 0);
    }
    nbd_put32(f, wire_errno(err));
    nbd_put16(f + 4, strlen(msg));
    return send_chunk(c, handle, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, f, 6,
                      msg, strlen(msg));
}

static int coroutine_fn send_result(NbdClient *c, uint64_t handle, int ret)
{
    if (ret < 0) {
        return send_error(c, handle, -ret, g_strerror(-ret));
    }
    return send_simple(c, handle, 0, NULL, 0);
}

/* ----- Commands ----- */

/* Granule of the zero detection on data read for a structured reply:
 * large enough that a HOLE chunk's header and syscall cost less than
 * the bytes it spares the socket and the client. */
#define NBD_ZERO_GRANULE (64 * 1024)

/* Sends the read data p[0, len) at export offset off: all-zero runs of
 * whole granules as OFFSET_HOLE (the spec lets any range that reads as
 * zeroes go out as a hole, allocated or not), the rest as OFFSET_DATA.
 * Zeroes stored as data (a raw image's, a backing's read through
 * copy-on-read) then cost neither socket copy nor client copy. */
static int coroutine_fn send_read_data(NbdClient *c, uint64_t handle, uint64_t off,
                                       const uint8_t *p, uint64_t len, bool last)
{
    uint8_t f[12];

    while (len) {
        bool zero = false;
        size_t run = len;
        uint16_t done;
        int ret;

        if (len >= NBD_ZERO_GRANULE) {
            run = buffer_zero_run(p, len, NBD_ZERO_GRANULE, off, &zero);
        } else {
            zero = buffer_is_zero(p, len);
        }
        done = last && run == len ? NBD_REPLY_FLAG_DONE : 0;
        nbd_put64(f, off);
        if (zero) {
            nbd_put32(f + 8, run);
            ret = send_chunk(c, handle, done, NBD_REPLY_TYPE_OFFSET_HOLE, f, 12, NULL, 0);
        } else {
            ret = send_chunk(c, handle, done, NBD_REPLY_TYPE_OFFSET_DATA, f, 8, p, run);
        }
        if (ret < 0) {
            return ret;
        }
        off += run;
        p += run;
        len -= run;
    }
    return 0;
}

/* Structured READ: zero ranges (by block status through the chain) go
 * out as OFFSET_HOLE unread; what is read goes through send_read_data,
 * so its all-zero granules become holes too (QEMU sends them as data:
 * a difference tests/nbd/libnbd-check names). Block status is skipped
 * on a copy-on-read export, which must read every range, and for a read
 * of at most one zero granule (its two lseeks on a file cost more than
 * reading the few KiB). DF asks for one data chunk, no holes. */
static int coroutine_fn co_read_structured(NbdClient *c, const NbdRequest *r, uint8_t *buf)
{
    BlockDriverState *bs = c->exp->bs;
    uint64_t off = r->offset, end = r->offset + r->length;
    /* A copy-on-read node must see every read, holes included: that is
     * what fills its overlay (zeroes as zero clusters). DF asks for one
     * data chunk. */
    bool cor = c->exp->reads_populate, df = r->flags & NBD_CMD_FLAG_DF;
    bool small = r->length <= NBD_ZERO_GRANULE;
    uint8_t f[12];
    int ret;

    if (r->length == 0) {
        return send_chunk(c, r->handle, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE,
                          NULL, 0, NULL, 0);
    }
    while (off < end) {
        int64_t pnum = end - off;
        bool zero = false;
        uint16_t done;

        if (!df && !cor && !small) {
            ret = bdrv_co_block_status_above(bs, NULL, off, end - off, &pnum);
            if (ret < 0) {
                return send_error(c, r->handle, -ret, "block status failed");
            }
            if (pnum <= 0 || pnum > (int64_t)(end - off)) {
                pnum = end - off;
            }
            zero = ret & BDRV_BLOCK_ZERO;
        }
        done = off + pnum == end ? NBD_REPLY_FLAG_DONE : 0;
        if (zero) {
            nbd_put64(f, off);
            nbd_put32(f + 8, pnum);
            ret = send_chunk(c, r->handle, done, NBD_REPLY_TYPE_OFFSET_HOLE, f, 12, NULL, 0);
        } else {
            uint8_t *p = buf + (off - r->offset);
            ret = bdrv_co_pread(bs, off, pnum, p, 0);
            if (ret < 0) {
                return send_error(c, r->handle, -ret, "reading from file failed");
            }
            if (df) {
                nbd_put64(f, off);
                ret = send_chunk(c, r->handle, done, NBD_REPLY_TYPE_OFFSET_DATA, f, 8, p, pnum);
            } else {
                ret = send_read_data(c, r->handle, off, p, pnum, done);
            }
        }
        if (ret < 0) {
            return ret;
        }
        off += pnum;
    }
    return 0;
}

static int coroutine_fn co_read(NbdClient *c, const NbdRequest *r)
{
    uint8_t *buf = nbd_buf_get(r->length);
    int ret;

    if (!buf) {
        return send_error(c, r->handle, ENOMEM, "out of memory");
    }
    if (r->flags & NBD_CMD_FLAG_FUA) {
        ret = bdrv_co_flush(c->exp->bs);
        if (ret < 0) {
            ret = send_result(c, r->handle, ret);
            goto out;
        }
    }
    if (c->structured) {
        ret = co_read_structured(c, r, buf);
    } else {
        ret = bdrv_co_pread(c->exp->bs, r->offset, r->length, buf, 0);
        ret = send_simple(c, r->handle, ret < 0 ? -ret : 0, buf, r->length);
    }
out:
    nbd_buf_put(buf, r->length);
    return ret;
}

/* CACHE: a prefetch read that copies up through copy-on-read where the
 * node can (QEMU's choice), so an overlay fills without data sent. */
static int coroutine_fn co_cache(NbdClient *c, const NbdRequest *r)
{
    BlockDriverState *bs = c->exp->bs;
    BlockCapabilities caps;
    uint8_t *buf = nbd_buf_get(r->length);
    int ret;

    if (!buf) {
        return send_error(c, r->handle, ENOMEM, "out of memory");
    }
    bdrv_get_capabilities(bs, &caps);
    ret = bdrv_co_pread(bs, r->offset, r->length, buf,
                        caps.copy_on_read && !bdrv_is_read_only(bs) ?
                        BDRV_REQ_COPY_ON_READ : 0);
    nbd_buf_put(buf, r->length);
    return send_result(c, r->handle, ret);
}

static int coroutine_fn co_write_zeroes(NbdClient *c, const NbdRequest *r)
{
    BdrvRequestFlags flags = 0;
    BlockCapabilities caps;

    /* Whether a hole is made is each node's discard policy below. */
    if (!(r->flags & NBD_CMD_FLAG_NO_HOLE)) {
        flags |= BDRV_REQ_MAY_UNMAP;
    }
    if (r->flags & NBD_CMD_FLAG_FUA || c->exp->writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    if (r->flags & NBD_CMD_FLAG_FAST_ZERO) {
        bdrv_get_capabilities(c->exp->bs, &caps);
        if (!caps.fast_zero) {
            return send_error(c, r->handle, ENOTSUP, "writing to file failed");
        }
        flags |= BDRV_REQ_NO_FALLBACK;
    }
    return send_result(c, r->handle,
                       bdrv_co_pwrite_zeroes(c->exp->bs, r->offset, r->length, flags));
}

static int coroutine_fn co_trim(NbdClient *c, const NbdRequest *r)
{
    int ret = bdrv_co_pdiscard(c->exp->bs, r->offset, r->length);

    if (ret >= 0 && (r->flags & NBD_CMD_FLAG_FUA)) {
        ret = bdrv_co_flush(c->exp->bs);
    }
    return send_result(c, r->handle, ret);
}

/* ----- Block status ----- */

/* The allocation depth at off: 1 for bs itself, 2 for its backing, ...,
 * 0 when no layer has it; *pnum bytes share it. */
static int coroutine_fn depth_at(BlockDriverState *bs, int64_t off, int64_t bytes,
                                 int64_t *pnum)
{
    int depth = 1;

    /* A filter counts as a layer (QEMU's depths) but allocates nothing. */
    for (; bs; bs = bdrv_filtered_or_backing(bs), depth++) {
        int64_t n;
        int ret;

        if (bdrv_is_filter(bs)) {
            continue;
        }
        ret = bdrv_co_is_allocated(bs, off, bytes, &n);
        if (ret < 0) {
            return ret;
        }
        if (n <= 0) {
            break;          /* off lies past this layer's end: nothing below counts */
        }
        if (ret) {
            *pnum = n;
            return depth;
        }
        bytes = n;
    }
    *pnum = bytes;
    return 0;
}

/* What one BLOCK_STATUS may copy up (below), in reads of this size. */
#define NBD_POPULATE_MAX   (64 << 20)
#define NBD_POPULATE_CHUNK (4 << 20)

/*
 * On an export whose reads populate its overlay, BLOCK_STATUS first
 * copies up the ranges it would report as zeroes coming from below the
 * overlay: clients that skip zero ranges (nbdcopy, qemu-img convert)
 * never read them, yet they belong in the overlay, as zero clusters (a
 * copy-on-read of zeroes stores them so, metadata only). Bounded per
 * request: returns where it stopped (the reply then covers less, as the
 * spec allows), or -errno.
 */
static int64_t coroutine_fn co_populate_zeroes(NbdClient *c, uint64_t off, uint64_t end)
{
    BlockDriverState *top = c->exp->bs;
    g_autofree uint8_t *buf = NULL;
    uint64_t budget = NBD_POPULATE_MAX;

    while (bdrv_is_filter(top)) {
        top = bdrv_file_child(top);
    }
    if (bdrv_is_read_only(top) || !bdrv_backing(top)) {
        return end;
    }
    while (off < end) {
        int64_t pnum, zero_len;
        int ret = bdrv_co_is_allocated(top, off, end - off, &pnum);

        if (ret < 0) {
            return ret;
        }
        if (pnum <= 0) {
            break;
        }
        if (!ret) {
            ret = bdrv_co_block_status_above(top, NULL, off, pnum, &zero_len);
            if (ret < 0) {
                return ret;
            }
            pnum = MIN(pnum, MAX(zero_len, 1));
            if (ret & BDRV_BLOCK_ZERO) {
                pnum = MIN(pnum, NBD_POPULATE_CHUNK);
                if ((uint64_t)pnum > budget) {
                    return off;
                }
                if (!buf) {
                    buf = g_malloc(NBD_POPULATE_CHUNK);
                }
                ret = bdrv_co_pread(c->exp->bs, off, pnum, buf,
                                    c->exp->copy_on_read ? BDRV_REQ_COPY_ON_READ : 0);
                if (ret < 0) {
                    return ret;
                }
                budget -= pnum;
            }
        }
        off += pnum;
    }
    return end;
}

/* Most extents in one BLOCK_STATUS chunk (QEMU caps its replies too). */
#define NBD_MAX_EXTENTS (1 << 16)

/* Fills at most max extents (length, flags pairs) for one context,
 * merging runs with equal flags (so REQ_ONE's one extent covers the whole
 * first run, as QEMU's). Returns the count or -errno. */
static int coroutine_fn collect_extents(NbdClient *c, const NbdRequest *r, bool depth,
                                        uint8_t *out, int max)
{
    BlockDriverState *bs = c->exp->bs;
    uint64_t off = r->offset, end = MIN(r->offset + (uint64_t)r->length, c->exp->size);
    int n = 0;
    uint32_t last_flags = 0;

    if (!depth && c->exp->reads_populate) {
        int64_t upto = co_populate_zeroes(c, off, end);
        if (upto < 0) {
            return upto;
        }
        end = upto;
    }
    while (off < end) {
        int64_t pnum = 0;
        uint32_t flags;
        int ret = depth ? depth_at(bs, off, end - off, &pnum)
                        : bdrv_co_block_status_above(bs, NULL, off, end - off, &pnum);
        if (ret < 0) {
            return ret;
        }
        if (pnum <= 0 || pnum > (int64_t)(end - off)) {
            pnum = end - off;
        }
        flags = depth ? (uint32_t)ret
                      : (ret & BDRV_BLOCK_DATA ? 0 : NBD_STATE_HOLE) |
                        (ret & BDRV_BLOCK_ZERO ? NBD_STATE_ZERO : 0);
        if (n && flags == last_flags) {
            nbd_put32(out + 8 * (n - 1), nbd_get32(out + 8 * (n - 1)) + pnum);
        } else if (n == max) {
            break;
        } else {
            nbd_put32(out + 8 * n, pnum);
            nbd_put32(out + 8 * n + 4, flags);
            n++;
            last_flags = flags;
        }
        off += pnum;
    }
    return n;
}

static int coroutine_fn co_block_status(NbdClient *c, const NbdRequest *r)
{
    bool want[2] = { c->meta_base, c->meta_depth };
    uint32_t ids[2] = { NBD_META_ID_BASE_ALLOCATION, NBD_META_ID_ALLOCATION_DEPTH };
    int max = r->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_MAX_EXTENTS;
    g_autofree uint8_t *ext = g_malloc(8 * (size_t)max);
    int last = want[1] ? 1 : 0;

    for (int i = 0; i <= last; i++) {
        uint8_t id[4];
        int n, ret;

        if (!want[i]) {
            continue;
        }
        n = collect_extents(c, r, i == 1, ext, max);
        if (n < 0) {
            return send_error(c, r->handle, -n, "block status failed");
        }
        nbd_put32(id, ids[i]);
        ret = send_chunk(c, r->handle, i == last ? NBD_REPLY_FLAG_DONE : 0,
                         NBD_REPLY_TYPE_BLOCK_STATUS, id, 4, ext, 8 * (size_t)n);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

/* ----- Validation and dispatch ----- */

static const uint16_t allowed_flags[] = {
    [NBD_CMD_READ] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF,
    [NBD_CMD_WRITE] = NBD_CMD_FLAG_FUA,
    [NBD_CMD_DISC] = NBD_CMD_FLAG_FUA,
    [NBD_CMD_FLUSH] = NBD_CMD_FLAG_FUA,
    [NBD_CMD_TRIM] = NBD_CMD_FLAG_FUA,
    [NBD_CMD_CACHE] = NBD_CMD_FLAG_FUA,
    [NBD_CMD_WRITE_ZEROES] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO,
    [NBD_CMD_BLOCK_STATUS] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE,
};

/* QEMU 7.2's text, its stray space included (seen on the wire). */
static char *too_long_message(uint32_t len)
{
    return g_strdup_printf("len (%" PRIu32 " ) is larger than max len (%u)", len,
                           NBD_MAX_BUFFER_SIZE);
}

/* NULL when the request may run, else the message of its EINVAL (QEMU
 * 7.2 answers every validation failure with EINVAL). */
static char *validate(NbdClient *c, const NbdRequest *r)
{
    NbdExport *exp = c->exp;

    if (r->type > NBD_CMD_BLOCK_STATUS) {
        return g_strdup_printf("invalid request type (%u) received", r->type);
    }
    if (r->flags & ~allowed_flags[r->type] ||
        (r->flags & NBD_CMD_FLAG_DF && !c->structured)) {
        return g_strdup_printf("unsupported flags for command %u (got 0x%x)", r->type,
                               r->flags);
    }
    if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_CACHE) &&
        r->length > NBD_MAX_BUFFER_SIZE) {   /* WRITE's was refused on receipt */
        return too_long_message(r->length);
    }
    if (!exp->writable && (r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
                           r->type == NBD_CMD_WRITE_ZEROES)) {
        return g_strdup("Export is read-only");
    }
    if (r->type != NBD_CMD_FLUSH && r->type != NBD_CMD_DISC &&
        (r->offset > exp->size || r->length > exp->size - r->offset)) {
        return g_strdup_printf("operation past EOF; From: %" PRIu64 ", Len: %" PRIu32
                               ", Size: %" PRIu64, r->offset, r->length, exp->size);
    }
    if (r->type == NBD_CMD_BLOCK_STATUS) {
        if (!r->length) {
            return g_strdup("need non-zero length");
        }
        if (!c->meta_base && !c->meta_depth) {
            return g_strdup("CMD_BLOCK_STATUS not negotiated");
        }
    }
    return NULL;
}

static void coroutine_fn request_co_run(void *opaque)
{
    NbdRequestCtx *ctx = opaque;
    NbdClient *c = ctx->c;
    const NbdRequest *r = &ctx->req;
    BlockDriverState *bs = c->exp->bs;
    g_autofree char *err = validate(c, r);

    if (err) {
        send_error(c, r->handle, EINVAL, err);
    } else {
        switch (r->type) {
        case NBD_CMD_READ:
            co_read(c, r);
            break;
        case NBD_CMD_WRITE:
            send_result(c, r->handle, bdrv_co_pwrite(bs, r->offset, r->length, ctx->data,
                                                     r->flags & NBD_CMD_FLAG_FUA ||
                                                     c->exp->writethrough ?
                                                     BDRV_REQ_FUA : 0));
            break;
        case NBD_CMD_FLUSH:
            send_result(c, r->handle, bdrv_co_flush(bs));
            break;
        case NBD_CMD_TRIM:
            co_trim(c, r);
            break;
        case NBD_CMD_CACHE:
            co_cache(c, r);
            break;
        case NBD_CMD_WRITE_ZEROES:
            co_write_zeroes(c, r);
            break;
        case NBD_CMD_BLOCK_STATUS:
            co_block_status(c, r);
            break;
        }
    }
    nbd_buf_put(ctx->data, r->length);
    g_free(ctx);
    c->in_flight--;
    qco_queue_next(&c->in_flight_queue);
}

/* Send buffer of a unix socket client: the default (~200 KiB) holds
 * less than one 256 KiB read reply, so every reply took several sendmsg
 * calls and a wait for the client between them. Asked for as it is;
 * the kernel caps it at net.core.wmem_max. TCP keeps its autotuning. */
#define NBD_UNIX_SNDBUF (4 * 1024 * 1024)

static void tune_socket(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    int size = NBD_UNIX_SNDBUF;

    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && sa.ss_family == AF_UNIX) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
}

/* What the receiver read ahead of the request it decodes: a client with
 * many requests in flight sends their headers back to back, and one recv
 * of them all costs one syscall instead of one each. */
typedef struct RecvAhead {
    uint8_t data[16 * 1024];
    size_t start, end;
} RecvAhead;

/* Reads exactly len bytes like nbd_co_recv, from the read-ahead first,
 * then with one non-blocking recv of as much as the socket holds; when
 * it holds nothing, nbd_co_recv waits for the bytes (and reads no more).
 * Payloads larger than the read-ahead go straight to their buffer. */
static int coroutine_fn recv_ahead(NbdClient *c, RecvAhead *ra, void *buf, size_t len)
{
    uint8_t *p = buf;

    for (;;) {
        size_t n = MIN(len, ra->end - ra->start);
        ssize_t got;

        memcpy(p, ra->data + ra->start, n);
        ra->start += n;
        p += n;
        len -= n;
        if (!len) {
            return 0;
        }
        if (len >= sizeof(ra->data)) {
            return nbd_co_recv(c, p, len);
        }
        got = recv(c->fd, ra->data, sizeof(ra->data), MSG_DONTWAIT);
        if (got > 0) {
            ra->start = 0;
            ra->end = got;
        } else if (got == 0) {
            return -EPIPE;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return nbd_co_recv(c, p, len);
        } else if (errno != EINTR) {
            return -errno;
        }
    }
}

void coroutine_fn nbd_co_transmission(NbdClient *c)
{
    uint8_t h[NBD_REQUEST_SIZE];
    g_autofree RecvAhead *ra = g_new0(RecvAhead, 1);

    tune_socket(c->fd);

    for (;;) {
        NbdRequestCtx *ctx;
        NbdRequest req;

        while (c->in_flight >= NBD_MAX_IN_FLIGHT) {
            qco_queue_wait(&c->in_flight_queue, NULL);
        }
        if (c->exp->removed || recv_ahead(c, ra, h, sizeof(h)) < 0) {
            break;
        }
        /* After a bad magic or a WRITE payload over 32 MiB (left unread)
         * the stream is lost: EINVAL, then the client is dropped (QEMU). */
        if (!nbd_decode_request(h, &req)) {
            g_autofree char *msg = g_strdup_printf("invalid magic (got 0x%" PRIx32 ")",
                                                   nbd_get32(h));
            send_error(c, req.handle, EINVAL, msg);
            break;
        }
        if (req.type == NBD_CMD_DISC) {
            break;
        }
        if (req.type == NBD_CMD_WRITE && req.length > NBD_MAX_BUFFER_SIZE) {
            g_autofree char *msg = too_long_message(req.length);
            send_error(c, req.handle, EINVAL, msg);
            break;
        }
        ctx = g_new0(NbdRequestCtx, 1);
        ctx->c = c;
        ctx->req = req;
        if (req.type == NBD_CMD_WRITE) {
            ctx->data = nbd_buf_get(req.length);
            if (!ctx->data) {
                g_free(ctx);
                break;
            }
            if (recv_ahead(c, ra, ctx->data, req.length) < 0) {
                nbd_buf_put(ctx->data, req.length);
                g_free(ctx);
                break;
            }
        }
        c->in_flight++;
        qco_enter(qco_create(request_co_run, ctx));
    }
    /* DISC, end of stream or a broken header: the requests in flight
     * still answer (or fail to), then the connection closes. */
    while (c->in_flight) {
        qco_queue_wait(&c->in_flight_queue, NULL);
    }
}
