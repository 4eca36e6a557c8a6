/* The nbd driver's requests: reads (spread over the connection pool),
 * writes with FUA, write-zeroes with NO_HOLE / FAST_ZERO, trim, flush and
 * block status from base:allocation; each retried across a reconnection
 * for at most reconnect-delay. */
#include <errno.h>
#include <string.h>
#include "block/drivers/nbd.h"
#include "util/iov.h"
#include "util/main-loop.h"

typedef enum NbdOp {
    NBD_OP_READ,
    NBD_OP_WRITE,
    NBD_OP_ZERO,
    NBD_OP_TRIM,
    NBD_OP_FLUSH,
    NBD_OP_STATUS,
} NbdOp;

typedef struct NbdReq {
    NbdOp op;
    void *buf;
    uint64_t count, offset;
    uint32_t flags;             /* LIBNBD_CMD_FLAG_* */
} NbdReq;

static int nbd_extent_cb(void *user_data, const char *metacontext, uint64_t offset,
                         uint32_t *entries, size_t nr_entries, int *error)
{
    NbdCmd *cmd = user_data;

    if (strcmp(metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || nr_entries < 2) {
        return 0;
    }
    if (cmd->extent_len == 0) {
        cmd->extent_len = entries[0];
        cmd->extent_flags = entries[1];
    }
    if (cmd->extents) {
        g_array_append_vals(cmd->extents, entries, nr_entries & ~(size_t)1);
    }
    return 0;
}

/* Reads and block status go to the pool (multi-conn), the rest to the
 * first connection, which is the one that waits for reconnect-delay; a
 * broken pool connection is tried again once the first is back. */
static NbdConn *coroutine_fn nbd_co_pick_conn(NbdState *s, NbdOp op)
{
    if ((op == NBD_OP_READ || op == NBD_OP_STATUS) && s->nb_conns > 1) {
        for (unsigned i = 0; i < s->nb_conns; i++) {
            NbdConn *c = &s->conns[s->next_read_conn++ % s->nb_conns];

            if (nbd_conn_is_ready(c) || (c != &s->conns[0] && nbd_conn_co_revive(c))) {
                return c;
            }
        }
    }
    return &s->conns[0];
}

static int64_t nbd_submit(struct nbd_handle *h, const NbdReq *req, NbdCmd *cmd)
{
    nbd_completion_callback done = { .callback = nbd_cmd_complete, .user_data = cmd };

    switch (req->op) {
    case NBD_OP_READ:
        return nbd_aio_pread(h, req->buf, req->count, req->offset, done, req->flags);
    case NBD_OP_WRITE:
        return nbd_aio_pwrite(h, req->buf, req->count, req->offset, done, req->flags);
    case NBD_OP_ZERO:
        return nbd_aio_zero(h, req->count, req->offset, done, req->flags);
    case NBD_OP_TRIM:
        return nbd_aio_trim(h, req->count, req->offset, done, req->flags);
    case NBD_OP_FLUSH:
        return nbd_aio_flush(h, done, req->flags);
    case NBD_OP_STATUS: {
        nbd_extent_callback extent = { .callback = nbd_extent_cb, .user_data = cmd };

        return nbd_aio_block_status(h, req->count, req->offset, extent, done, req->flags);
    }
    }
    return -1;
}

static int coroutine_fn nbd_co_request_extents(NbdState *s, const NbdReq *req, NbdCmd *cmd,
                                               GArray *extents);

static int coroutine_fn nbd_co_request(NbdState *s, const NbdReq *req, NbdCmd *cmd)
{
    return nbd_co_request_extents(s, req, cmd, NULL);
}

/* Runs req to its reply (block status: its extents into extents, if
 * set). A server's error is returned as is; a broken
 * connection is reconnected and the request sent again while
 * reconnect-delay allows, else -EIO. */
static int coroutine_fn nbd_co_request_extents(NbdState *s, const NbdReq *req, NbdCmd *cmd,
                                               GArray *extents)
{
    int64_t deadline = -1;

    for (;;) {
        NbdConn *c = nbd_co_pick_conn(s, req->op);
        int ret;

        if (!nbd_conn_is_ready(c) && nbd_conn_co_reconnect(c) < 0) {
            return -EIO;
        }
        if (req->op == NBD_OP_WRITE || req->op == NBD_OP_ZERO || req->op == NBD_OP_TRIM) {
            s->unflushed = true;
        }
        memset(cmd, 0, sizeof(*cmd));
        cmd->co = qco_self();
        cmd->extents = extents;
        if (extents) {
            g_array_set_size(extents, 0);
        }
        ret = nbd_conn_co_wait(c, cmd, nbd_submit(c->h, req, cmd));
        if (ret == 0 || nbd_conn_is_ready(c)) {
            return ret;
        }
        /* The connection broke under the request. */
        if (s->reconnect_delay_ns == 0) {
            return -EIO;
        }
        if (deadline < 0) {
            deadline = qblk_clock_ns() + s->reconnect_delay_ns;
        } else if (qblk_clock_ns() >= deadline) {
            return -EIO;
        }
    }
}

static int coroutine_fn nbd_co_read_range(NbdState *s, uint8_t *buf, int64_t offset,
                                          int64_t bytes)
{
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_READ, .buf = buf, .count = bytes, .offset = offset };

    return nbd_co_request(s, &req, &cmd);
}

/* Reads [offset, offset+bytes) into buf asking the server for data only
 * where base:allocation says it is not zero: zero ranges (a backing
 * file's holes under copy-on-read) never cross the network, whatever
 * the server does with structured replies. */
static int coroutine_fn nbd_co_read_sparse(NbdState *s, uint8_t *buf, int64_t offset,
                                           int64_t bytes)
{
    g_autoptr(GArray) extents = g_array_new(false, false, sizeof(uint32_t));
    int64_t pos = offset, end = offset + bytes;

    while (pos < end) {
        NbdCmd cmd;
        NbdReq req = { .op = NBD_OP_STATUS, .offset = pos, .count = end - pos };
        int64_t data_start = -1;
        int ret;

        g_array_set_size(extents, 0);
        memset(&cmd, 0, sizeof(cmd));
        ret = nbd_co_request_extents(s, &req, &cmd, extents);
        if (ret < 0) {
            return ret;
        }
        if (extents->len < 2) {
            return -EIO;
        }
        /* Adjacent data extents become one read. */
        for (guint i = 0; i + 1 < extents->len && pos < end; i += 2) {
            uint32_t len = g_array_index(extents, uint32_t, i);
            uint32_t flags = g_array_index(extents, uint32_t, i + 1);
            int64_t n = MIN((int64_t)len, end - pos);

            if (len == 0) {
                return -EIO;
            }
            if (flags & LIBNBD_STATE_ZERO) {
                if (data_start >= 0) {
                    ret = nbd_co_read_range(s, buf + (data_start - offset), data_start,
                                            pos - data_start);
                    if (ret < 0) {
                        return ret;
                    }
                    data_start = -1;
                }
                memset(buf + (pos - offset), 0, n);
            } else if (data_start < 0) {
                data_start = pos;
            }
            pos += n;
        }
        if (data_start >= 0) {
            ret = nbd_co_read_range(s, buf + (data_start - offset), data_start,
                                    pos - data_start);
            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

/* libnbd takes one buffer: a single-element vector's own, else a bounce
 * buffer (*bounce, freed by the caller) the caller fills or drains. */
static void *nbd_flat_buf(QIOVector *qiov, int64_t bytes, void **bounce)
{
    if (qiov->niov == 1) {
        return qiov->iov[0].iov_base;
    }
    return *bounce = g_malloc(bytes);
}

int coroutine_fn nbd_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_READ, .count = bytes, .offset = offset };
    g_autofree void *bounce = NULL;
    int ret;

    req.buf = nbd_flat_buf(qiov, bytes, &bounce);
    if (s->has_base_allocation && bytes >= NBD_SPARSE_READ_MIN && offset + bytes <= s->size &&
        !(offset >= s->data_start && offset + bytes <= s->data_end)) {
        ret = nbd_co_read_sparse(s, req.buf, offset, bytes);
    } else {
        ret = nbd_co_request(s, &req, &cmd);
    }
    if (ret == 0 && bounce) {
        qiov_from_buf(qiov, 0, bounce, bytes);
    }
    return ret;
}

int coroutine_fn nbd_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_WRITE, .count = bytes, .offset = offset };
    g_autofree void *bounce = NULL;

    if (flags & BDRV_REQ_FUA) {
        req.flags |= LIBNBD_CMD_FLAG_FUA;
    }
    req.buf = nbd_flat_buf(qiov, bytes, &bounce);
    if (bounce) {
        qiov_to_buf(qiov, 0, bounce, bytes);
    }
    return nbd_co_request(s, &req, &cmd);
}

int coroutine_fn nbd_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_ZERO, .count = bytes, .offset = offset };

    if (!s->can_zero) {
        return -ENOTSUP;
    }
    /* Without MAY_UNMAP the range must stay allocated. */
    if (!(flags & BDRV_REQ_MAY_UNMAP)) {
        req.flags |= LIBNBD_CMD_FLAG_NO_HOLE;
    }
    if (flags & BDRV_REQ_NO_FALLBACK) {
        if (!s->can_fast_zero) {
            return -ENOTSUP;
        }
        req.flags |= LIBNBD_CMD_FLAG_FAST_ZERO;
    }
    if (flags & BDRV_REQ_FUA) {
        req.flags |= LIBNBD_CMD_FLAG_FUA;
    }
    return nbd_co_request(s, &req, &cmd);
}

int coroutine_fn nbd_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_TRIM, .count = bytes, .offset = offset };

    if (!s->can_trim) {
        return -ENOTSUP;
    }
    return nbd_co_request(s, &req, &cmd);
}

int coroutine_fn nbd_co_flush(BlockDriverState *bs)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_FLUSH };
    int ret;

    if (!s->can_flush || !s->unflushed) {
        return 0;
    }
    s->unflushed = false;
    ret = nbd_co_request(s, &req, &cmd);
    if (ret < 0) {
        s->unflushed = true;
    }
    return ret;
}

int coroutine_fn nbd_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file)
{
    NbdState *s = bs->opaque;
    NbdCmd cmd;
    NbdReq req = { .op = NBD_OP_STATUS, .offset = offset,
                   .flags = LIBNBD_CMD_FLAG_REQ_ONE };
    int ret;

    if (map) {
        *map = offset;
    }
    if (file) {
        *file = bs;
    }
    if (offset >= s->size) {
        *pnum = bytes;
        return (bytes ? BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID : 0) | BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, s->size - offset);
    if (!s->has_base_allocation) {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
        goto out;
    }
    /* The protocol's lengths are 32-bit. */
    req.count = MIN(bytes, (int64_t)NBD_MAX_STATUS_LEN);
    ret = nbd_co_request(s, &req, &cmd);
    if (ret < 0) {
        return ret;
    }
    if (cmd.extent_len == 0) {
        return -EIO;            /* no base:allocation extent in the reply */
    }
    *pnum = MIN((int64_t)cmd.extent_len, (int64_t)req.count);
    ret = BDRV_BLOCK_OFFSET_VALID;
    if (!(cmd.extent_flags & LIBNBD_STATE_HOLE)) {
        ret |= BDRV_BLOCK_DATA;
    }
    if (cmd.extent_flags & LIBNBD_STATE_ZERO) {
        ret |= BDRV_BLOCK_ZERO;
    } else {
        s->data_start = offset;
        s->data_end = offset + *pnum;
    }
out:
    if (offset + *pnum == s->size) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}
