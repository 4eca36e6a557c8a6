/* Host file I/O from coroutines, engine chosen per request (per node): one
 * io_uring per process, watched by the event loop through an eventfd, and
 * the worker-thread pool; both serve requests at once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* fallocate, FALLOC_FL_* */
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include <liburing.h>

#include "util/error.h"
#include "util/warn.h"
#include "util/io-engine.h"
#include "util/main-loop.h"

/* The CQ ring gets twice this, so capping in-flight requests at the SQ
 * size means completions can never overflow. */
#define RING_ENTRIES 128
/* preadv and IORING_OP_READV reject more than IOV_MAX (1024) elements. */
#define MAX_IOV 1024
/* Results travel as int (cqe->res, the pool's return value); the kernel
 * stops a single transfer at ~2 GiB anyway. */
#define MAX_CHUNK (1 << 30)
/* A persistent EAGAIN must end as an error, not a hang. */
#define EAGAIN_RETRIES 100
#define EAGAIN_BACKOFF_NS 1000000

typedef struct UringState {
    struct io_uring ring;
    int efd;
    guint watch;
    unsigned inflight;          /* prepared SQEs not yet completed */
    bool submit_scheduled;
    CoQueue slot_waiters;
    bool op_ok[QBLK_IO_WRITE_GROW + 1];     /* WRITE_GROW stays false */
} UringState;

typedef struct UringReq {
    Coroutine *co;
    int res;
} UringReq;

/* What AUTO resolves to; AUTO here means "not chosen yet". The ring is
 * set up by the first node that asks for io_uring and shared by all of
 * them; uring_failed remembers that setting it up failed, so every later
 * io_uring node falls back to threads without asking the kernel again.
 * Loop-thread state, no locking. */
static QblkAioMode default_mode = QBLK_AIO_AUTO;
/* QBLK_AIO named the default: it then serves every request of AUTO nodes,
 * big cached transfers included. */
static bool default_named;
static UringState *uring;
static bool uring_failed;
/* QBLK_AIO=inline (the fuzz targets, whose files are on tmpfs): the
 * default is THREADS, and every request for the thread pool runs in the
 * loop thread instead, then goes once through the loop as if it had been
 * in flight. On tmpfs io_uring hands every request to a kernel worker, so
 * either engine cost two context switches per request. 0: QBLK_AIO not
 * read yet; 1: inline; -1: not. */
static int threads_inline;

static bool pool_is_inline(void)
{
    if (!threads_inline) {
        threads_inline = g_strcmp0(g_getenv("QBLK_AIO"), "inline") == 0 ? 1 : -1;
    }
    return threads_inline > 0;
}

/* ----- io_uring ----- */

/* Submission is batched: every request prepared during one loop
 * iteration goes to the kernel in a single io_uring_enter. */
static void uring_submit_bh(void *opaque G_GNUC_UNUSED)
{
    UringState *u = uring;

    u->submit_scheduled = false;
    while (io_uring_sq_ready(&u->ring) > 0) {
        int ret = io_uring_submit(&u->ring);

        if (ret == -EINTR) {
            continue;
        }
        if (ret == -EAGAIN || ret == -EBUSY || ret == 0) {
            /* Out of kernel resources for now; completions reaped in this
             * loop iteration free some, so try again in the next one. */
            u->submit_scheduled = true;
            qblk_bh_schedule(uring_submit_bh, NULL);
            return;
        }
        if (ret < 0) {
            /* The SQEs stay queued, so there is no request to fail them on;
             * every cause left (EFAULT, EINVAL, EBADF) is a bug. */
            g_error("io_uring_submit: %s", g_strerror(-ret));
        }
    }
}

static void uring_reap(UringState *u)
{
    struct io_uring_cqe *cqe;

    while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
        UringReq *req = io_uring_cqe_get_data(cqe);

        req->res = cqe->res;
        io_uring_cqe_seen(&u->ring, cqe);
        u->inflight--;
        /* req lives on the coroutine's stack: it is gone once entered. */
        qco_enter(req->co);
        qco_queue_next(&u->slot_waiters);
    }
}

static gboolean uring_ready(gint fd, GIOCondition cond G_GNUC_UNUSED,
                            gpointer opaque G_GNUC_UNUSED)
{
    uint64_t count;

    /* Drain before reaping: a CQE posted after the read re-arms the fd. */
    while (read(fd, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
    if (uring) {
        uring_reap(uring);
    }
    return G_SOURCE_CONTINUE;
}

static bool uring_setup(void)
{
    UringState *u;
    struct io_uring_probe *probe;

    if (uring || uring_failed) {
        return uring != NULL;
    }
    u = g_new0(UringState, 1);
    uring_failed = true;    /* until the end proves otherwise */
    /* Fails with ENOSYS/EPERM in sandboxes and where io_uring is disabled. */
    if (io_uring_queue_init(RING_ENTRIES, &u->ring, 0) < 0) {
        g_free(u);
        return false;
    }
    u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (u->efd < 0 || io_uring_register_eventfd(&u->ring, u->efd) < 0) {
        if (u->efd >= 0) {
            close(u->efd);
        }
        io_uring_queue_exit(&u->ring);
        g_free(u);
        return false;
    }
    /* Ops the kernel lacks go to the thread pool instead. Kernels before
     * 5.6 have no probe, but do have the 5.1 ops. */
    probe = io_uring_get_probe_ring(&u->ring);
    u->op_ok[QBLK_IO_READ] = !probe || io_uring_opcode_supported(probe, IORING_OP_READV);
    u->op_ok[QBLK_IO_WRITE] = !probe || io_uring_opcode_supported(probe, IORING_OP_WRITEV);
    u->op_ok[QBLK_IO_FDATASYNC] = !probe || io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    u->op_ok[QBLK_IO_FALLOCATE] = probe && io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
    if (probe) {
        io_uring_free_probe(probe);
    }
    qco_queue_init(&u->slot_waiters);
    qblk_loop_init();
    u->watch = g_unix_fd_add(u->efd, G_IO_IN, uring_ready, NULL);
    uring = u;
    uring_failed = false;
    return true;
}

static int coroutine_fn uring_co_submit(int fd, QblkIoOp op, int64_t offset,
                                        int64_t len, const struct iovec *iov,
                                        int niov, int mode)
{
    UringState *u = uring;
    UringReq req = { .co = qco_self() };
    struct io_uring_sqe *sqe;

    while (u->inflight >= RING_ENTRIES) {
        qco_queue_wait(&u->slot_waiters, NULL);
    }
    sqe = io_uring_get_sqe(&u->ring);
    assert(sqe);  /* at most RING_ENTRIES prepared, so the SQ has room */
    switch (op) {
    case QBLK_IO_READ:
        io_uring_prep_readv(sqe, fd, iov, niov, offset);
        break;
    case QBLK_IO_WRITE:
    case QBLK_IO_WRITE_GROW:
        io_uring_prep_writev(sqe, fd, iov, niov, offset);
        break;
    case QBLK_IO_FDATASYNC:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    case QBLK_IO_FALLOCATE:
        io_uring_prep_fallocate(sqe, fd, mode, offset, len);
        break;
    }
    io_uring_sqe_set_data(sqe, &req);
    u->inflight++;
    if (!u->submit_scheduled) {
        u->submit_scheduled = true;
        qblk_bh_schedule(uring_submit_bh, NULL);
    }
    qco_yield();
    return req.res;
}

/* ----- thread pool ----- */

typedef struct ThreadReq {
    int fd;
    QblkIoOp op;
    int64_t offset, len;
    const struct iovec *iov;
    int niov;
    int mode;
} ThreadReq;

static int thread_io(void *opaque)
{
    ThreadReq *r = opaque;
    ssize_t ret = -1;

    switch (r->op) {
    case QBLK_IO_READ:
        ret = preadv(r->fd, r->iov, r->niov, r->offset);
        break;
    case QBLK_IO_WRITE:
    case QBLK_IO_WRITE_GROW:
        ret = pwritev(r->fd, r->iov, r->niov, r->offset);
        break;
    case QBLK_IO_FDATASYNC:
        ret = fdatasync(r->fd);
        break;
    case QBLK_IO_FALLOCATE:
        ret = fallocate(r->fd, r->mode, r->offset, r->len);
        break;
    }
    return ret < 0 ? -errno : (int)ret;
}

static void inline_done_bh(void *opaque)
{
    qco_enter(opaque);
}

/* ----- common ----- */

static int coroutine_fn engine_co_submit(QblkAioMode engine, int fd, QblkIoOp op,
                                         int64_t offset, int64_t len,
                                         const struct iovec *iov, int niov, int mode)
{
    ThreadReq r = {
        .fd = fd, .op = op, .offset = offset, .len = len,
        .iov = iov, .niov = niov, .mode = mode,
    };
    int ret;

    if (engine == QBLK_AIO_IO_URING && uring->op_ok[op]) {
        return uring_co_submit(fd, op, offset, len, iov, niov, mode);
    }
    if (!pool_is_inline()) {
        return qblk_co_run_in_thread(thread_io, &r);
    }
    ret = thread_io(&r);
    /* Other coroutines run meanwhile, as they would during the request. */
    qblk_bh_schedule(inline_done_bh, qco_self());
    qco_yield();
    return ret;
}

/* Turns transient failures into another attempt; returns true to retry. */
static bool coroutine_fn should_retry(int ret, int *eagain_count)
{
    if (ret == -EINTR) {
        return true;
    }
    if (ret == -EAGAIN && ++*eagain_count <= EAGAIN_RETRIES) {
        qco_sleep_ns(EAGAIN_BACKOFF_NS);
        return true;
    }
    return false;
}

/* Bytes from `done` on that one submission can carry: at most MAX_IOV
 * elements and MAX_CHUNK bytes. */
static size_t chunk_len(const QIOVector *qiov, size_t done)
{
    size_t skip = done, n = 0;
    int i = 0, k;

    while (i < qiov->niov && skip >= qiov->iov[i].iov_len) {
        skip -= qiov->iov[i].iov_len;
        i++;
    }
    for (k = 0; i < qiov->niov && k < MAX_IOV && n < MAX_CHUNK; i++) {
        /* Empty elements vanish in the slice, so they do not count. */
        if (qiov->iov[i].iov_len > skip) {
            n += qiov->iov[i].iov_len - skip;
            k++;
        }
        skip = 0;
    }
    return MIN(n, MIN(qiov->size - done, (size_t)MAX_CHUNK));
}

static int coroutine_fn co_rw(QblkAioMode engine, int fd, QblkIoOp op,
                              int64_t offset, QIOVector *qiov)
{
    size_t total = qiov->size, done = 0;
    int eagain = 0;

    while (done < total) {
        QIOVector part;
        int ret;

        if (done == 0 && qiov->niov <= MAX_IOV && total <= MAX_CHUNK) {
            ret = engine_co_submit(engine, fd, op, offset, total, qiov->iov,
                                   qiov->niov, 0);
        } else {
            qiov_init_slice(&part, qiov, done, chunk_len(qiov, done));
            ret = engine_co_submit(engine, fd, op, offset + done, part.size,
                                   part.iov, part.niov, 0);
            qiov_destroy(&part);
        }
        if (should_retry(ret, &eagain)) {
            continue;
        }
        if (ret < 0) {
            return ret;
        }
        if (ret == 0) {
            if (op == QBLK_IO_READ) {
                /* End of file: the unwritten tail of an image reads as
                 * zeroes. */
                qiov_memset(qiov, done, 0, total - done);
                return 0;
            }
            /* A regular file only writes nothing when it cannot grow. */
            return -ENOSPC;
        }
        done += ret;
    }
    return 0;
}

int coroutine_fn qblk_co_io(QblkAioMode engine, int fd, QblkIoOp op, int64_t offset,
                            int64_t len, QIOVector *qiov, int fallocate_mode)
{
    int ret, eagain = 0;

    /* The request yields: a caller outside a coroutine would have to spin
     * the loop, which is its own (or bdrv_run_co's) business. */
    assert(qco_in_coroutine());
    /* AUTO becomes the default; for IO_URING this only checks the ring is
     * there (a test's reset may have closed it since the node opened). */
    engine = qblk_io_engine_init(engine);
    if (offset < 0 || len < 0) {
        return -EINVAL;
    }
    switch (op) {
    case QBLK_IO_READ:
    case QBLK_IO_WRITE:
    case QBLK_IO_WRITE_GROW:
        /* The transfer size is qiov->size; len only matters to the other
         * ops (callers pass qiov->size). */
        if (!qiov) {
            return -EINVAL;
        }
        return co_rw(engine, fd, op, offset, qiov);
    case QBLK_IO_FDATASYNC:
    case QBLK_IO_FALLOCATE:
        do {
            ret = engine_co_submit(engine, fd, op, offset, len, NULL, 0, fallocate_mode);
        } while (should_retry(ret, &eagain));
        return ret;
    }
    return -EINVAL;
}

/* AUTO: QBLK_AIO from the environment, else io_uring where it works. */
static QblkAioMode default_engine(void)
{
    const char *env;

    if (default_mode != QBLK_AIO_AUTO) {
        return default_mode;
    }
    env = g_getenv("QBLK_AIO");
    if (env && (!strcmp(env, "threads") || pool_is_inline())) {
        default_mode = QBLK_AIO_THREADS;
        default_named = true;
        return default_mode;
    }
    default_named = env && !strcmp(env, "io_uring");
    if (env && *env && strcmp(env, "io_uring")) {
        qblk_warn("QBLK_AIO='%s' is neither 'io_uring' nor 'threads'; "
                  "choosing automatically", env);
    }
    default_mode = uring_setup() ? QBLK_AIO_IO_URING : QBLK_AIO_THREADS;
    return default_mode;
}

QblkAioMode qblk_io_engine_init(QblkAioMode mode)
{
    switch (mode) {
    case QBLK_AIO_THREADS:
        return QBLK_AIO_THREADS;
    case QBLK_AIO_IO_URING:
        /* An io_uring that cannot be set up is not an error: the pool does
         * the same job, only with more context switches. */
        return uring_setup() ? QBLK_AIO_IO_URING : QBLK_AIO_THREADS;
    case QBLK_AIO_AUTO:
    default:
        return default_engine();
    }
}

QblkAioMode qblk_io_engine_for_cached(QblkAioMode mode, int64_t bytes)
{
    if (mode != QBLK_AIO_AUTO || bytes < QBLK_IO_OFFLOAD_MIN) {
        return mode;
    }
    /* Resolves the default first, which tells whether QBLK_AIO named it. */
    mode = default_engine();
    return default_named ? mode : QBLK_AIO_THREADS;
}

const char *qblk_io_engine_name(QblkAioMode mode)
{
    return qblk_io_engine_init(mode) == QBLK_AIO_IO_URING ? "io_uring" : "threads";
}

void qblk_io_engine_reset(void)
{
    if (uring) {
        /* Tearing down a ring with requests in flight would leave their
         * coroutines waiting forever. */
        g_assert(uring->inflight == 0);
        g_source_remove(uring->watch);
        io_uring_unregister_eventfd(&uring->ring);
        close(uring->efd);
        io_uring_queue_exit(&uring->ring);
        g_clear_pointer(&uring, g_free);
    }
    uring_failed = false;
    default_mode = QBLK_AIO_AUTO;
    default_named = false;
    threads_inline = 0;
}
