/* The "file" protocol driver: a host file (or block device) read and
 * written through the io engine, zeroed and discarded with fallocate,
 * mapped with SEEK_DATA/SEEK_HOLE, locked against other processes with
 * QEMU's OFD lock bytes. Fallbacks belong to the block core: an
 * operation the filesystem refuses answers -ENOTSUP, and the refusal is
 * remembered so the next request does not ask the kernel again. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include "block/drivers/file-posix-lock.h"
#include "qblk/block_int.h"
#include "util/io-engine.h"

typedef struct FileState {
    int fd;
    /* This node's engine (aio=); AUTO: the process default, resolved by
     * the engine at the first request. */
    QblkAioMode aio;
    /* Opened without O_DIRECT: transfers go through the page cache. */
    bool cached, reopen_cached;
    /* Answers "not supported" already received from this file's
     * filesystem; once set, the call is never made again. */
    bool no_zero_range;     /* fallocate FALLOC_FL_ZERO_RANGE */
    bool no_punch_hole;     /* fallocate FALLOC_FL_PUNCH_HOLE */
    bool no_falloc;         /* fallocate mode 0 */
    bool no_seek_data;      /* lseek SEEK_DATA/SEEK_HOLE */
    /* The file's length as this node last saw it: writes past it grow the
     * file and take the engine's path for that (see QBLK_IO_WRITE_GROW). */
    int64_t size_hint;
    /* The file's length, or -1: ask the file. Cached as QEMU caches a
     * node's size (an fstat per request was most of convert's system
     * calls): this node's own growing writes, zero ranges and truncates
     * update or forget it. */
    int64_t length;
    /* locking=on|auto with OFD locks available; off: no lock taken and no
     * other process's lock looked at. */
    bool use_lock;
    /* Lock bytes this fd holds, as permission bits: 100+i for each bit of
     * locked_perm, 200+i for each bit of locked_unshared. */
    unsigned locked_perm, locked_unshared;
    /* Reopen: the descriptor opened with the new flags and its limits,
     * swapped in at commit (-1 between reopens). */
    int reopen_fd;
    BlockLimits reopen_bl;
} FileState;

/* Largest alignment O_DIRECT probing considers (and the safe guess). */
#define FILE_MAX_ALIGN 4096

/* QEMU accepts "file:" in front of a path. */
static const char *file_strip_prefix(const char *filename)
{
    return g_str_has_prefix(filename, "file:") ? filename + 5 : filename;
}

static int64_t file_fd_length(int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (S_ISBLK(st.st_mode)) {
        /* st_size is 0 for block devices. */
        off_t end = lseek(fd, 0, SEEK_END);

        return end < 0 ? -errno : end;
    }
    return st.st_size;
}

static int64_t file_length(FileState *s)
{
    if (s->length < 0) {
        int64_t len = file_fd_length(s->fd);

        if (len < 0) {
            return len;
        }
        s->length = len;
    }
    return s->length;
}

/* After a request that may have extended the file to end: a failure may
 * have extended it partly, so the length is asked again. */
static void file_note_end(FileState *s, int64_t end, int ret)
{
    if (ret < 0) {
        s->length = -1;
    } else if (s->length >= 0 && end > s->length) {
        s->length = end;
    }
}

/* ----- Image locking (file-posix-lock.c) ----- */

/* set_perm: the bytes for (perm, shared), all or nothing. The union of the
 * old and new bytes is taken before the check, so that two processes
 * racing for conflicting sets cannot both miss the other; only then are
 * the bytes the old set alone needed dropped. A change that only gives
 * up permissions checks nothing (no one can object), as in QEMU. */
static int file_set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared, GError **errp)
{
    FileState *s = bs->opaque;
    unsigned new_perm = perm & FILE_LOCK_MASK, new_unshared = ~shared & FILE_LOCK_MASK;
    unsigned old_perm = s->locked_perm, old_unshared = s->locked_unshared;
    int ret;

    if (!s->use_lock) {
        return 0;
    }
    ret = file_lock_apply(s->fd, old_perm | new_perm, old_unshared | new_unshared,
                          &s->locked_perm, &s->locked_unshared, false, errp);
    if (ret == 0 && ((new_perm & ~old_perm) || (new_unshared & ~old_unshared))) {
        ret = file_lock_check(s->fd, perm, shared, file_strip_prefix(bs->filename), errp);
    }
    if (ret == 0) {
        ret = file_lock_apply(s->fd, new_perm, new_unshared, &s->locked_perm,
                              &s->locked_unshared, true, errp);
    }
    if (ret < 0) {
        /* Only unlocks and re-locks of bytes this fd held a moment ago:
         * nothing another process can refuse. */
        file_lock_apply(s->fd, old_perm, old_unshared, &s->locked_perm,
                        &s->locked_unshared, true, NULL);
    }
    return ret;
}

/* locking=on|off|auto: on and auto lock with OFD locks where the kernel
 * has them (Linux 3.15); without them auto locks nothing and on fails
 * (QEMU would fall back to process-wide POSIX locks, which any close of
 * the same file in this process would drop). */
static bool file_parse_locking(const char *locking, int fd, bool *use_lock, GError **errp)
{
    bool on = locking && strcmp(locking, "on") == 0;
    bool have_ofd;

    if (locking && strcmp(locking, "off") == 0) {
        *use_lock = false;
        return true;
    }
    have_ofd = file_lock_have_ofd(fd);
    if (on && !have_ofd) {
        qblk_error_set(errp, "locking=on: OFD locks are not supported on this host");
        return false;
    }
    *use_lock = have_ofd;
    return true;
}

/* ----- Open and close ----- */

/* A pread that fails with anything but EINVAL says nothing about
 * alignment, so only EINVAL counts as "misaligned". */
static bool file_read_aligned(int fd, void *buf, size_t len)
{
    return pread(fd, buf, len, 0) >= 0 || errno != EINVAL;
}

/* O_DIRECT wants offsets, lengths and buffer addresses aligned to what the
 * device and the filesystem accept; find the smallest that works. A 1-byte
 * read that succeeds proves nothing (empty file, or O_DIRECT ignored), so
 * the answer is then the safe FILE_MAX_ALIGN. */
static void file_probe_alignment(int fd, bool is_blk, BlockLimits *bl)
{
    static const size_t sizes[] = { 1, 512, 1024, 2048, FILE_MAX_ALIGN };
    unsigned sector = 0;
    size_t req = 0, mem = 0;
    uint8_t *buf;

    if (is_blk && ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0) {
        req = sector;
    }
    buf = aligned_alloc(FILE_MAX_ALIGN, 2 * MAX(FILE_MAX_ALIGN, (size_t)sector));
    if (!buf) {
        g_error("out of memory probing O_DIRECT alignment");
    }
    for (size_t i = 0; !req && i < G_N_ELEMENTS(sizes); i++) {
        if (file_read_aligned(fd, buf, sizes[i])) {
            req = sizes[i] == 1 ? FILE_MAX_ALIGN : sizes[i];
        }
    }
    if (!req) {
        req = FILE_MAX_ALIGN;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        if (file_read_aligned(fd, buf + sizes[i], req)) {
            mem = sizes[i] == 1 ? FILE_MAX_ALIGN : sizes[i];
            break;
        }
    }
    free(buf);
    bl->request_alignment = req;
    bl->min_mem_alignment = mem ? mem : FILE_MAX_ALIGN;
}

/* "aio": this node's engine; nodes of one process may use different ones.
 * "native" is io_uring here, with QEMU's O_DIRECT demand. */
static bool file_parse_aio(const char *aio, int flags, QblkAioMode *mode, GError **errp)
{
    if (!aio) {
        *mode = QBLK_AIO_AUTO;
    } else if (strcmp(aio, "threads") == 0) {
        *mode = QBLK_AIO_THREADS;
    } else if (strcmp(aio, "io_uring") == 0) {
        *mode = QBLK_AIO_IO_URING;
    } else if (strcmp(aio, "native") == 0) {
        if (!(flags & BDRV_O_NOCACHE)) {
            qblk_error_set(errp, "aio=native was specified, but it requires "
                           "cache.direct=on, which was not specified.");
            return false;
        }
        *mode = QBLK_AIO_IO_URING;
    } else {
        qblk_error_set(errp, "invalid parameter value: %s", aio);
        return false;
    }
    return true;
}

static int file_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    FileState *s = bs->opaque;
    g_autofree char *filename = qblk_opts_take(options, "filename");
    g_autofree char *aio = qblk_opts_take(options, "aio");
    g_autofree char *locking = qblk_opts_take(options, "locking");
    g_autofree char *pr_manager = qblk_opts_take(options, "pr-manager");
    QblkAioMode mode;
    const char *path;
    struct stat st;
    int oflags, err;

    s->fd = -1;
    if (!filename || !*filename) {
        qblk_error_set(errp, "The 'file' block driver requires a file name");
        return -EINVAL;
    }
    if (!file_parse_aio(aio, flags, &mode, errp)) {
        return -EINVAL;
    }
    if (pr_manager) {
        /* qblk has no persistent reservation managers (QEMU's objects). */
        qblk_error_set(errp, "No persistent reservation manager with id '%s'", pr_manager);
        return -EINVAL;
    }
    if (locking && strcmp(locking, "on") && strcmp(locking, "off") &&
        strcmp(locking, "auto")) {
        qblk_error_set(errp, "invalid parameter value: %s", locking);
        return -EINVAL;
    }
    /* A named engine is set up now; AUTO waits for the first request. */
    s->aio = aio ? qblk_io_engine_init(mode) : QBLK_AIO_AUTO;

    path = file_strip_prefix(filename);
    oflags = O_CLOEXEC | ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & BDRV_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    s->cached = !(oflags & O_DIRECT);
    s->fd = open(path, oflags);
    if (s->fd < 0 && (flags & BDRV_O_AUTO_RDONLY) && (flags & BDRV_O_RDWR) &&
        (errno == EACCES || errno == EPERM || errno == EROFS)) {
        /* auto-read-only: a file we may not write is opened read-only. */
        oflags = (oflags & ~O_RDWR) | O_RDONLY;
        s->fd = open(path, oflags);
        if (s->fd >= 0) {
            bs->read_only = true;
            bs->open_flags &= ~BDRV_O_RDWR;
        }
    }
    if (s->fd < 0) {
        err = errno;
        qblk_error_set_errno(errp, err, "Could not open '%s'", path);
        return -err;
    }
    if (fstat(s->fd, &st) < 0) {
        err = errno;
        qblk_error_set_errno(errp, err, "Could not stat '%s'", path);
        goto fail;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
        qblk_error_set(errp, "'file' driver requires '%s' to be a regular file", path);
        err = EINVAL;
        goto fail;
    }

    if (!file_parse_locking(locking, s->fd, &s->use_lock, errp)) {
        err = ENOTSUP;
        goto fail;
    }

    /* Devices never grow: their writes never take the growing path. */
    s->size_hint = S_ISREG(st.st_mode) ? st.st_size : INT64_MAX;
    s->length = -1;
    bs->bl.request_alignment = 1;
    if (oflags & O_DIRECT) {
        file_probe_alignment(s->fd, S_ISBLK(st.st_mode), &bs->bl);
    }
    /* One fallocate covers any length as metadata: never split. */
    bs->bl.max_pwrite_zeroes = 0;
    bs->supported_write_flags = 0;   /* FUA: the core flushes after the write */
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    return 0;

fail:
    close(s->fd);
    s->fd = -1;
    return -err;
}

static void file_close(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    if (s->fd >= 0) {
        /* Closing the (only) fd of this open file description drops its
         * lock bytes. */
        close(s->fd);
        s->fd = -1;
        s->locked_perm = s->locked_unshared = 0;
    }
}

/* ----- Data path ----- */

/* The engine for a read or write of `bytes` (see qblk_io_engine_for_cached). */
static QblkAioMode file_engine(FileState *s, int64_t bytes)
{
    return s->cached ? qblk_io_engine_for_cached(s->aio, bytes) : s->aio;
}

static int coroutine_fn file_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                       QIOVector *qiov, BdrvRequestFlags flags)
{
    FileState *s = bs->opaque;

    return qblk_co_io(file_engine(s, bytes), s->fd, QBLK_IO_READ, offset, bytes, qiov, 0);
}

static int coroutine_fn file_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        QIOVector *qiov, BdrvRequestFlags flags)
{
    FileState *s = bs->opaque;
    bool grow = offset + bytes > s->size_hint;
    int ret = qblk_co_io(file_engine(s, bytes), s->fd, grow ? QBLK_IO_WRITE_GROW : QBLK_IO_WRITE,
                         offset, bytes, qiov, 0);

    if (ret == 0 && grow) {
        s->size_hint = MAX(s->size_hint, offset + bytes);
    }
    if (grow || ret < 0 || offset + bytes > s->length) {
        file_note_end(s, offset + bytes, ret);
    }
    return ret;
}

static int coroutine_fn file_co_flush(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    if (bs->no_flush) {
        return 0;
    }
    return qblk_co_io(s->aio, s->fd, QBLK_IO_FDATASYNC, 0, 0, NULL, 0);
}

/* One fallocate call. A "not supported" answer is recorded in *refused so
 * that the mode is never tried again on this file. */
static int coroutine_fn file_co_fallocate(FileState *s, int mode, int64_t offset,
                                          int64_t len, bool *refused)
{
    int ret;

    if (*refused) {
        return -ENOTSUP;
    }
    ret = qblk_co_io(s->aio, s->fd, QBLK_IO_FALLOCATE, offset, len, NULL, mode);
    /* With a valid range, EINVAL from fallocate means the filesystem does
     * not know the mode; the shared helper cannot assume that for every
     * call, so it is mapped here. */
    ret = qblk_errno_not_supported(ret == -EINVAL ? -ENOTSUP : ret);
    if (ret == -ENOTSUP) {
        *refused = true;
    }
    return ret;
}

/* Zeroes by deallocating. PUNCH_HOLE cannot change the size, so a range
 * past the end first grows the file with a 1-byte plain fallocate at its
 * last byte: unlike ftruncate that never shrinks the file under a
 * concurrent extending write, and the punch frees that block again. */
static int coroutine_fn file_co_punch_zeroes(FileState *s, int64_t offset, int64_t bytes)
{
    int64_t end = offset + bytes;
    int64_t len;
    int ret;

    if (s->no_punch_hole) {
        return -ENOTSUP;
    }
    len = file_length(s);
    if (len < 0) {
        return (int)len;
    }
    if (end > len) {
        ret = file_co_fallocate(s, 0, end - 1, 1, &s->no_falloc);
        file_note_end(s, end, ret);
        if (ret < 0) {
            return ret;
        }
    }
    return file_co_fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes,
                             &s->no_punch_hole);
}

static int coroutine_fn file_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                              int64_t bytes, BdrvRequestFlags flags)
{
    FileState *s = bs->opaque;
    int ret;

    /* A hole only where this node's discard policy is unmap (a node of
     * its own defaults to ignore, one a format opened to unmap). */
    if ((flags & BDRV_REQ_MAY_UNMAP) && bs->discard_unmap) {
        ret = file_co_punch_zeroes(s, offset, bytes);
        if (ret != -ENOTSUP) {
            return ret;
        }
    }
    /* Without KEEP_SIZE, ZERO_RANGE also extends the file. */
    ret = file_co_fallocate(s, FALLOC_FL_ZERO_RANGE, offset, bytes, &s->no_zero_range);
    if (ret == 0 && offset + bytes > s->size_hint) {
        s->size_hint = offset + bytes;
    }
    if (ret != -ENOTSUP) {
        file_note_end(s, offset + bytes, ret);
    }
    return ret;
}

static int coroutine_fn file_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    FileState *s = bs->opaque;

    return file_co_fallocate(s, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, bytes,
                             &s->no_punch_hole);
}

/* Length of the data or hole run at offset (at most `bytes`), as
 * DATA or ZERO; 0 if SEEK_DATA is not supported. */
static int file_find_run(FileState *s, int64_t offset, int64_t bytes, int64_t *pnum)
{
    off_t data, hole;

    data = lseek(s->fd, offset, SEEK_DATA);
    if (data < 0) {
        int ret = -errno;

        if (ret == -ENXIO) {
            /* No data at or after offset: a hole up to the end. */
            *pnum = bytes;
            return BDRV_BLOCK_ZERO;
        }
        ret = qblk_errno_not_supported(ret);
        if (ret == -ENOTSUP) {
            s->no_seek_data = true;
            return 0;
        }
        return ret;
    }
    if (data > offset) {
        *pnum = MIN(bytes, data - offset);
        return BDRV_BLOCK_ZERO;
    }
    hole = lseek(s->fd, offset, SEEK_HOLE);
    if (hole <= offset) {
        /* The file changed under us, or SEEK_HOLE failed: data is always a
         * safe answer. */
        *pnum = bytes;
    } else {
        *pnum = MIN(bytes, hole - offset);
    }
    return BDRV_BLOCK_DATA;
}

static int coroutine_fn file_co_block_status(BlockDriverState *bs, bool want_zero,
                                             int64_t offset, int64_t bytes, int64_t *pnum,
                                             int64_t *map, BlockDriverState **file)
{
    FileState *s = bs->opaque;
    int64_t len = file_length(s);
    int ret = 0;

    if (len < 0) {
        return (int)len;
    }
    if (map) {
        *map = offset;
    }
    if (file) {
        *file = bs;
    }
    if (offset >= len) {
        /* Reads past the end return zeroes (the io engine fills them). */
        *pnum = bytes;
        return (bytes ? BDRV_BLOCK_ZERO | BDRV_BLOCK_OFFSET_VALID : 0) | BDRV_BLOCK_EOF;
    }
    bytes = MIN(bytes, len - offset);
    if (want_zero && !s->no_seek_data) {
        ret = file_find_run(s, offset, bytes, pnum);
        if (ret < 0) {
            return ret;
        }
    }
    if (ret == 0) {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA;
    }
    ret |= BDRV_BLOCK_OFFSET_VALID;
    if (offset + *pnum == len) {
        ret |= BDRV_BLOCK_EOF;
    }
    return ret;
}

/* ----- Size ----- */

static int64_t file_getlength(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    return file_length(s);
}

static int64_t file_get_allocated_file_size(BlockDriverState *bs)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

typedef struct FileResizeJob {
    int fd;
    int64_t offset, len;
} FileResizeJob;

static int file_ftruncate_fn(void *opaque)
{
    FileResizeJob *job = opaque;

    return ftruncate(job->fd, job->offset) < 0 ? -errno : 0;
}

static int file_posix_fallocate_fn(void *opaque)
{
    FileResizeJob *job = opaque;

    /* posix_fallocate returns the error instead of setting errno; glibc
     * writes zeroes itself where fallocate is not supported. */
    return -posix_fallocate(job->fd, job->offset, job->len);
}

static int coroutine_fn file_co_ftruncate(int fd, int64_t offset)
{
    FileResizeJob job = { .fd = fd, .offset = offset };

    return qblk_co_run_in_thread(file_ftruncate_fn, &job);
}

/* Writes real zeroes over [offset, end) and makes them stable. */
static int coroutine_fn file_co_write_zero_data(QblkAioMode aio, int fd, int64_t offset,
                                                int64_t end, GError **errp)
{
    int ret;

    while (offset < end) {
        int64_t n = MIN(end - offset, BDRV_ZERO_BUF_SIZE);
        QIOVector qiov;

        qiov_init_buf(&qiov, (void *)bdrv_zero_buffer(), n);
        ret = qblk_co_io(aio, fd, QBLK_IO_WRITE, offset, n, &qiov, 0);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not write zeros for preallocation");
            return ret;
        }
        offset += n;
    }
    ret = qblk_co_io(aio, fd, QBLK_IO_FDATASYNC, 0, 0, NULL, 0);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not flush file to disk");
    }
    return ret;
}

static const char *const file_prealloc_names[] = {
    [PREALLOC_MODE_OFF] = "off",
    [PREALLOC_MODE_METADATA] = "metadata",
    [PREALLOC_MODE_FALLOC] = "falloc",
    [PREALLOC_MODE_FULL] = "full",
};

/* Resizes a regular file from old_len to offset, allocating the new tail
 * as prealloc asks (zeroes written through engine `aio`). A failed
 * preallocation restores the old length. Shared by truncate and create. */
static int coroutine_fn file_co_resize(QblkAioMode aio, int fd, int64_t old_len,
                                       int64_t offset, PreallocMode prealloc,
                                       GError **errp)
{
    FileResizeJob job = { .fd = fd, .offset = old_len, .len = offset - old_len };
    int ret;

    if (prealloc != PREALLOC_MODE_OFF && offset < old_len) {
        qblk_error_set(errp, "Cannot use preallocation for shrinking files");
        return -ENOTSUP;
    }
    switch (prealloc) {
    case PREALLOC_MODE_OFF:
        ret = file_co_ftruncate(fd, offset);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not resize file");
        }
        return ret;
    case PREALLOC_MODE_FALLOC:
        if (offset == old_len) {
            return 0;
        }
        ret = qblk_co_run_in_thread(file_posix_fallocate_fn, &job);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not preallocate new data");
        }
        break;
    case PREALLOC_MODE_FULL:
        if (offset == old_len) {
            return 0;
        }
        /* Setting the final size first lets the filesystem plan the
         * allocation of what follows. */
        ret = file_co_ftruncate(fd, offset);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not resize file");
            return ret;
        }
        ret = file_co_write_zero_data(aio, fd, old_len, offset, errp);
        break;
    default:
        qblk_error_set(errp, "Unsupported preallocation mode: %s",
                       (unsigned)prealloc < G_N_ELEMENTS(file_prealloc_names)
                       ? file_prealloc_names[prealloc] : "?");
        return -ENOTSUP;
    }
    if (ret < 0) {
        file_co_ftruncate(fd, old_len);
    }
    return ret;
}

static int coroutine_fn file_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                         PreallocMode prealloc, GError **errp)
{
    FileState *s = bs->opaque;
    struct stat st;
    int64_t len;

    if (fstat(s->fd, &st) < 0) {
        int err = errno;

        qblk_error_set_errno(errp, err, "Could not stat file");
        return -err;
    }
    if (S_ISREG(st.st_mode)) {
        /* A regular file always takes the new size, exact or not. */
        int ret = file_co_resize(s->aio, s->fd, st.st_size, offset, prealloc, errp);

        s->length = -1;
        s->size_hint = MAX(file_length(s), 0);
        return ret;
    }
    if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
        qblk_error_set(errp, "Resizing this file is not supported");
        return -ENOTSUP;
    }
    /* A device has the size it has; a request that fits is fine. */
    len = file_fd_length(s->fd);
    if (len >= 0 && offset != len && exact) {
        qblk_error_set(errp, "Cannot resize device files");
        return -ENOTSUP;
    }
    if (len >= 0 && offset > len) {
        qblk_error_set(errp, "Cannot grow device files");
        return -EINVAL;
    }
    return 0;
}

/* ----- Create ----- */

static int coroutine_fn file_co_create(const char *filename, QblkOpts *options,
                                       GError **errp)
{
    g_autofree char *prealloc_str = NULL;
    const char *path = file_strip_prefix(filename);
    int prealloc = PREALLOC_MODE_OFF;
    int64_t size, extent_size_hint;
    bool nocow;
    struct stat st;
    int fd, ret;

    if (!qblk_opts_take_size(options, "size", 0, &size, errp)) {
        return -EINVAL;
    }
    prealloc_str = qblk_opts_take(options, "preallocation");
    if (prealloc_str) {
        prealloc = prealloc_mode_parse(prealloc_str);
        if (prealloc < 0) {
            qblk_error_set(errp, "invalid parameter value: %s", prealloc_str);
            return -EINVAL;
        }
    }
    /* Accepted for compatibility; both only tune the host filesystem. */
    if (!qblk_opts_take_bool(options, "nocow", false, &nocow, errp) ||
        !qblk_opts_take_size(options, "extent_size_hint", 1024 * 1024, &extent_size_hint,
                             errp)) {
        return -EINVAL;
    }

    /* Not O_TRUNC: an image another process uses must survive. */
    fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);   /* RDWR: read locks */
    if (fd < 0) {
        int err = errno;

        qblk_error_set_errno(errp, err, "Could not create '%s'", path);
        return -err;
    }
    ret = file_lock_for_create(fd, path, errp);
    /* What O_TRUNC would have done: only regular files are emptied. */
    if (ret == 0 && (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0))) {
        ret = -errno;
        qblk_error_set_errno(errp, -ret, "Could not resize file");
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    /* Like QEMU: whole sectors, and the first block allocated so that
     * O_DIRECT alignment probing later reads real data. */
    size = (size + 511) & ~(int64_t)511;
    ret = file_co_resize(QBLK_AIO_AUTO, fd, 0, size, prealloc, errp);
    if (ret == 0 && size > 0 && prealloc == PREALLOC_MODE_OFF) {
        static const char zeroes[4096];

        if (pwrite(fd, zeroes, MIN(size, (int64_t)sizeof(zeroes)), 0) < 0) {
            ret = -errno;
            qblk_error_set_errno(errp, -ret, "Could not write to the new file");
        }
    }
    if (close(fd) < 0 && ret == 0) {
        ret = -errno;
        qblk_error_set_errno(errp, -ret, "Could not close the new file");
    }
    return ret;
}

/* In QEMU's table order (the order of the "Formatting" line); -o help
 * sorts by name. */
static const QblkOptDesc file_create_opts[] = {
    { "size", QBLK_OPT_SIZE, "Virtual disk size", NULL },
    { "nocow", QBLK_OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)", NULL },
    { "preallocation", QBLK_OPT_STRING,
      "Preallocation mode (allowed values: off, falloc, full)", NULL },
    { "extent_size_hint", QBLK_OPT_SIZE,
      "Extent size hint for the image file, 0 to disable", NULL },
    { NULL }
};

/* No clusters, never dirty; answering at all lets tools report that. */
static int file_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return 0;
}

/* ----- Reopen: a second descriptor in the new mode replaces the first ----- */

static int coroutine_fn file_co_reopen_prepare(BlockDriverState *bs, int flags,
                                               GError **errp)
{
    FileState *s = bs->opaque;
    const char *path = file_strip_prefix(bs->filename);
    int oflags = O_CLOEXEC | ((flags & BDRV_O_RDWR) ? O_RDWR : O_RDONLY);
    g_autofree char *self = g_strdup_printf("/proc/self/fd/%d", s->fd);
    struct stat st;
    int err;

    if (flags & BDRV_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    s->reopen_cached = !(oflags & O_DIRECT);
    /* Through the descriptor we have, the file is the same one even when
     * it was renamed or unlinked (a -s overlay); by name without /proc. */
    s->reopen_fd = open(self, oflags);
    if (s->reopen_fd < 0 && errno == ENOENT) {
        s->reopen_fd = open(path, oflags);
    }
    if (s->reopen_fd < 0 || fstat(s->reopen_fd, &st) < 0) {
        err = errno;
        qblk_error_set_errno(errp, err, "Could not reopen '%s'", path);
        if (s->reopen_fd >= 0) {
            close(s->reopen_fd);
        }
        s->reopen_fd = -1;
        return -err;
    }
    s->reopen_bl = bs->bl;
    s->reopen_bl.request_alignment = 1;
    s->reopen_bl.min_mem_alignment = 0;
    if (oflags & O_DIRECT) {
        file_probe_alignment(s->reopen_fd, S_ISBLK(st.st_mode), &s->reopen_bl);
    }
    return 0;
}

static void file_reopen_commit(BlockDriverState *bs, int flags)
{
    FileState *s = bs->opaque;
    unsigned perm = s->locked_perm, unshared = s->locked_unshared;

    /* The new descriptor takes the lock bytes before the old one lets
     * them go with its close, so no other process sees a gap. They are
     * shared locks, which never conflict with each other: this cannot
     * fail (the graph's set_perm after the reopen checks what changes). */
    if (s->use_lock) {
        s->locked_perm = s->locked_unshared = 0;
        file_lock_apply(s->reopen_fd, perm, unshared, &s->locked_perm,
                        &s->locked_unshared, true, NULL);
    }
    close(s->fd);
    s->fd = s->reopen_fd;
    s->cached = s->reopen_cached;
    s->reopen_fd = -1;
    bs->bl = s->reopen_bl;
}

static void file_reopen_abort(BlockDriverState *bs, int flags)
{
    FileState *s = bs->opaque;

    close(s->reopen_fd);
    s->reopen_fd = -1;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(FileState),
    .is_protocol = true,

    .open = file_open,
    .close = file_close,
    .set_perm = file_set_perm,
    .co_reopen_prepare = file_co_reopen_prepare,
    .reopen_commit = file_reopen_commit,
    .reopen_abort = file_reopen_abort,
    .co_create = file_co_create,
    .create_opts = file_create_opts,

    .co_preadv = file_co_preadv,
    .co_pwritev = file_co_pwritev,
    .co_pwrite_zeroes = file_co_pwrite_zeroes,
    .co_pdiscard = file_co_pdiscard,
    .co_flush = file_co_flush,
    .co_block_status = file_co_block_status,
    .co_truncate = file_co_truncate,
    .getlength = file_getlength,
    .get_allocated_file_size = file_get_allocated_file_size,
    .get_info = file_get_info,
};
