/* The "log-writes" filter: passes every request to its "file" child and
 * appends each write (with its data), zero write, discard, truncate and
 * flush that the child completed to a log file, so tests/crash can rebuild
 * what a disk could hold after a power cut at any point.
 *
 * Options: log=PATH (required), append=on|off (default off), the child
 * under "file". Nodes of one process naming the same log path share it
 * (one order for all of them), each as its own stream: a log-writes node
 * above a format and one below it record the guest's requests and the
 * disk's in one timeline. The first node to open a path truncates it.
 *
 * With append=on the log is shared with other processes instead (an NBD
 * client's guest stream, the server's disk stream): it is not truncated,
 * every record is one write(2) on an O_APPEND descriptor under flock, the
 * stream ids follow those already in the log, and the layout is version 2
 * (a flush names the byte offset where the log ended, log-writes.h). A
 * record appended after a reply arrives then follows every record the
 * other process appended before replying, which is what the replayer
 * needs to read one timeline.
 *
 * Records are appended when the child acknowledges a request, so the log
 * is in completion order. A flush remembers how many records the log held
 * when it started: exactly those completed before it and are durable when
 * it completes (requests run concurrently; a write completing while the
 * flush runs is not covered). Writes, zero writes and discards also get a
 * START record, so a reader knows which requests were in flight at a point.
 * The layout is in log-writes.h. The log is written with plain write(2) in
 * the loop thread: a test tool, so simplicity and exact order win over
 * speed; nodes without this driver pay nothing. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "block/drivers/log-writes.h"
#include "qblk/block_int.h"
#include "util/bswap.h"

/* One open log file, shared by the nodes of this process naming it. */
typedef struct LogWritesFile {
    char *path;
    int fd;
    unsigned users;
    unsigned next_stream;
    uint64_t next_seq;
    uint64_t nrecords;
    bool append;            /* shared with other processes (version 2) */
    int error;              /* first failed write to the log (-errno), sticky */
} LogWritesFile;

typedef struct LogWritesState {
    LogWritesFile *log;
    uint8_t stream;
} LogWritesState;

/* Paths to LogWritesFile: only touched in the loop thread. */
static GHashTable *log_writes_files;

static int log_writes_write_all(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -errno : -EIO;
        }
        done += n;
    }
    return 0;
}

/* flock, retried on EINTR; an append log's every record and every look at
 * its end happen under LOCK_EX, so no process sees another's half record. */
static int log_writes_lock(int fd, int how)
{
    while (flock(fd, how) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

static int log_writes_append(LogWritesFile *lf, uint8_t *buf, size_t len)
{
    int ret;

    if (lf->error) {
        return lf->error;
    }
    ret = lf->append ? log_writes_lock(lf->fd, LOCK_EX) : 0;
    if (ret == 0) {
        ret = log_writes_write_all(lf->fd, buf, len);
        if (lf->append) {
            int unlocked = log_writes_lock(lf->fd, LOCK_UN);
            ret = ret < 0 ? ret : unlocked;
        }
    }
    if (ret < 0) {
        lf->error = ret;
        return ret;
    }
    lf->nrecords++;
    return 0;
}

/* What a flush record's aux names: where the log ends now (a record count,
 * or in an append log the byte offset, taken under the lock so it falls
 * between two records). */
static int log_writes_end(LogWritesFile *lf, uint64_t *end)
{
    off_t pos;
    int ret;

    if (!lf->append) {
        *end = lf->nrecords;
        return 0;
    }
    ret = log_writes_lock(lf->fd, LOCK_EX);
    if (ret < 0) {
        return ret;
    }
    pos = lseek(lf->fd, 0, SEEK_END);
    ret = pos < 0 ? -errno : 0;
    log_writes_lock(lf->fd, LOCK_UN);
    *end = (uint64_t)pos;
    return ret;
}

/* Appends one record; data (data_len bytes) is the request's payload, taken
 * from qiov when given, else from buf. */
static int log_writes_record(LogWritesState *s, LogWritesOp op, BdrvRequestFlags flags,
                             int ret, uint64_t seq, uint64_t offset, uint64_t length,
                             uint64_t aux, const QIOVector *qiov, const void *data,
                             size_t data_len)
{
    g_autofree uint8_t *rec = g_malloc(LOG_WRITES_RECORD_HEAD + data_len);

    rec[4] = op;
    rec[5] = s->stream;
    qblk_st_le16(rec + 6, (uint16_t)flags);
    qblk_st_le32(rec + 8, (uint32_t)data_len);
    qblk_st_le32(rec + 12, (uint32_t)ret);
    qblk_st_le64(rec + 16, seq);
    qblk_st_le64(rec + 24, offset);
    qblk_st_le64(rec + 32, length);
    qblk_st_le64(rec + 40, aux);
    if (qiov) {
        qiov_to_buf(qiov, 0, rec + LOG_WRITES_RECORD_HEAD, data_len);
    } else if (data_len) {
        memcpy(rec + LOG_WRITES_RECORD_HEAD, data, data_len);
    }
    qblk_st_le32(rec, (uint32_t)crc32(0, rec + 4, LOG_WRITES_RECORD_HEAD - 4 + data_len));
    return log_writes_append(s->log, rec, LOG_WRITES_RECORD_HEAD + data_len);
}

/* ----- Open and close ----- */

static void log_writes_fill_header(uint8_t *head, uint32_t version)
{
    memcpy(head, LOG_WRITES_MAGIC, 8);
    qblk_st_le32(head + 8, version);
    qblk_st_le32(head + 12, (uint32_t)crc32(0, head, 12));
}

/* An append log, with its lock held: an empty file gets the version 2
 * header; a present one must be version 2, and the first stream id free
 * in it becomes this process's. Reading stops at a cut-off tail (the
 * replayer reports it). */
static int log_writes_join(LogWritesFile *lf, GError **errp)
{
    uint8_t head[LOG_WRITES_HEADER_SIZE];
    g_autofree gchar *buf = NULL;
    gsize len = 0, pos;
    GError *err = NULL;
    int ret;

    if (!g_file_get_contents(lf->path, &buf, &len, &err)) {
        qblk_error_set(errp, "Could not read log '%s': %s", lf->path, err->message);
        g_error_free(err);
        return -EIO;
    }
    if (len == 0) {
        log_writes_fill_header(head, LOG_WRITES_VERSION_APPEND);
        ret = log_writes_write_all(lf->fd, head, sizeof(head));
        if (ret < 0) {
            qblk_error_set(errp, "Could not write log '%s': %s", lf->path, g_strerror(-ret));
        }
        return ret;
    }
    log_writes_fill_header(head, LOG_WRITES_VERSION_APPEND);
    if (len < LOG_WRITES_HEADER_SIZE || memcmp(buf, head, LOG_WRITES_HEADER_SIZE) != 0) {
        qblk_error_set(errp, "Log '%s' is not a log-writes log of version %d (append=on "
                       "joins only such a log or an empty file)", lf->path,
                       LOG_WRITES_VERSION_APPEND);
        return -EINVAL;
    }
    for (pos = LOG_WRITES_HEADER_SIZE; pos + LOG_WRITES_RECORD_HEAD <= len;
         pos += LOG_WRITES_RECORD_HEAD + qblk_ld_le32((uint8_t *)buf + pos + 8)) {
        const uint8_t *rec = (const uint8_t *)buf + pos;

        if (rec[4] == LOG_WRITES_STREAM && rec[5] >= lf->next_stream) {
            lf->next_stream = rec[5] + 1u;
        }
    }
    return 0;
}

static LogWritesFile *log_writes_file_get(const char *path, bool append, GError **errp)
{
    LogWritesFile *lf;
    uint8_t head[LOG_WRITES_HEADER_SIZE];
    int fd, ret;

    if (!log_writes_files) {
        log_writes_files = g_hash_table_new(g_str_hash, g_str_equal);
    }
    lf = g_hash_table_lookup(log_writes_files, path);
    if (lf) {
        if (lf->append != append) {
            qblk_error_set(errp, "Log '%s' is already open with append=%s", path,
                           lf->append ? "on" : "off");
            return NULL;
        }
        lf->users++;
        return lf;
    }
    fd = open(path, append ? O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC
                           : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        qblk_error_set(errp, "Could not open log '%s': %s", path, g_strerror(errno));
        return NULL;
    }
    lf = g_new0(LogWritesFile, 1);
    lf->path = g_strdup(path);
    lf->fd = fd;
    lf->users = 1;
    lf->append = append;
    if (append) {
        ret = log_writes_lock(fd, LOCK_EX);
        if (ret < 0) {
            qblk_error_set(errp, "Could not lock log '%s': %s", path, g_strerror(-ret));
        } else {
            ret = log_writes_join(lf, errp);
            log_writes_lock(fd, LOCK_UN);
        }
    } else {
        log_writes_fill_header(head, LOG_WRITES_VERSION);
        ret = log_writes_append(lf, head, sizeof(head));
        if (ret < 0) {
            qblk_error_set(errp, "Could not write log '%s': %s", path, g_strerror(-ret));
        }
    }
    if (ret < 0) {
        close(fd);
        g_free(lf->path);
        g_free(lf);
        return NULL;
    }
    lf->nrecords = 0;
    g_hash_table_insert(log_writes_files, lf->path, lf);
    return lf;
}

static void log_writes_file_put(LogWritesFile *lf)
{
    if (--lf->users) {
        return;
    }
    g_hash_table_remove(log_writes_files, lf->path);
    close(lf->fd);
    g_free(lf->path);
    g_free(lf);
}

static int log_writes_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    LogWritesState *s = bs->opaque;
    g_autofree char *path = qblk_opts_take(options, "log");
    g_autofree char *ident = NULL;
    size_t ident_len;
    bool append;

    if (!bs->file) {
        qblk_error_set(errp, "log-writes needs a node to filter (file.filename)");
        return -EINVAL;
    }
    if (!path || !*path) {
        qblk_error_set(errp, "Parameter 'log' is missing");
        return -EINVAL;
    }
    if (!qblk_opts_take_bool(options, "append", false, &append, errp)) {
        return -EINVAL;
    }
    s->log = log_writes_file_get(path, append, errp);
    if (!s->log) {
        return -EIO;
    }
    s->stream = (uint8_t)s->log->next_stream++;
    ident = g_strdup_printf("%s%c%s", bs->file->drv->format_name, 0,
                            bs->file->filename ? bs->file->filename : "");
    ident_len = strlen(bs->file->drv->format_name) + 1 +
                strlen(bs->file->filename ? bs->file->filename : "");
    if (log_writes_record(s, LOG_WRITES_STREAM, 0, 0, 0, 0, 0, 0, NULL, ident,
                          ident_len) < 0) {
        qblk_error_set(errp, "Could not write log '%s': %s", path,
                       g_strerror(-s->log->error));
        log_writes_file_put(s->log);
        s->log = NULL;
        return -EIO;
    }
    bs->supported_write_flags = bs->file->supported_write_flags &
                                (BDRV_REQ_FUA | BDRV_REQ_WRITE_COMPRESSED);
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK | BDRV_REQ_FUA;
    return 0;
}

static void log_writes_close(BlockDriverState *bs)
{
    LogWritesState *s = bs->opaque;

    if (s->log) {
        log_writes_file_put(s->log);
        s->log = NULL;
    }
}

/* ----- Requests ----- */

/* A request's sequence number, and its START record. */
static int log_writes_start(LogWritesState *s, LogWritesOp op, BdrvRequestFlags flags,
                            int64_t offset, int64_t bytes, uint64_t *seq)
{
    *seq = s->log->next_seq++;
    return log_writes_record(s, LOG_WRITES_START, flags, 0, *seq, offset, bytes, op,
                             NULL, NULL, 0);
}

/* The child's answer, after recording it; a log that cannot be written
 * fails the request (a silent gap would make the log lie). */
static int log_writes_done(int ret, int logged)
{
    return ret < 0 ? ret : logged;
}

static int coroutine_fn log_writes_co_preadv(BlockDriverState *bs, int64_t offset,
                                             int64_t bytes, QIOVector *qiov,
                                             BdrvRequestFlags flags)
{
    /* Copy-on-read enabled on this node is meant for the image below. */
    if (bs->copy_on_read) {
        flags |= BDRV_REQ_COPY_ON_READ;
    }
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn log_writes_co_pwritev(BlockDriverState *bs, int64_t offset,
                                              int64_t bytes, QIOVector *qiov,
                                              BdrvRequestFlags flags)
{
    LogWritesState *s = bs->opaque;
    uint64_t seq;
    int ret = log_writes_start(s, LOG_WRITES_WRITE, flags, offset, bytes, &seq);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
    return log_writes_done(ret, log_writes_record(s, LOG_WRITES_WRITE, flags, ret, seq,
                                                     offset, bytes, 0, qiov, NULL,
                                                     (size_t)bytes));
}

static int coroutine_fn log_writes_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                                    int64_t bytes, BdrvRequestFlags flags)
{
    LogWritesState *s = bs->opaque;
    uint64_t seq;
    int ret = log_writes_start(s, LOG_WRITES_ZERO, flags, offset, bytes, &seq);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
    return log_writes_done(ret, log_writes_record(s, LOG_WRITES_ZERO, flags, ret, seq,
                                                     offset, bytes, 0, NULL, NULL, 0));
}

static int coroutine_fn log_writes_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                               int64_t bytes)
{
    LogWritesState *s = bs->opaque;
    uint64_t seq;
    int ret = log_writes_start(s, LOG_WRITES_DISCARD, 0, offset, bytes, &seq);

    if (ret < 0) {
        return ret;
    }
    ret = bdrv_co_pdiscard(bs->file, offset, bytes);
    return log_writes_done(ret, log_writes_record(s, LOG_WRITES_DISCARD, 0, ret, seq,
                                                     offset, bytes, 0, NULL, NULL, 0));
}

/* Flushes the child here (the core flushes it once more afterwards, which
 * costs one cheap flush) so the record can follow the child's answer and
 * name what was complete when the flush started. */
static int coroutine_fn log_writes_co_flush(BlockDriverState *bs)
{
    LogWritesState *s = bs->opaque;
    uint64_t covers;
    uint64_t seq = s->log->next_seq++;
    int ret = log_writes_end(s->log, &covers);

    if (ret < 0) {
        s->log->error = ret;
        return ret;
    }
    ret = bdrv_co_flush(bs->file);
    return log_writes_done(ret, log_writes_record(s, LOG_WRITES_FLUSH, 0, ret, seq, 0, 0,
                                                     covers, NULL, NULL, 0));
}

static int coroutine_fn log_writes_co_truncate(BlockDriverState *bs, int64_t offset,
                                               bool exact, PreallocMode prealloc,
                                               GError **errp)
{
    LogWritesState *s = bs->opaque;
    uint64_t seq = s->log->next_seq++;
    int ret = bdrv_co_truncate(bs->file, offset, exact, prealloc, errp);
    int logged = log_writes_record(s, LOG_WRITES_TRUNCATE, 0, ret, seq, offset, 0, prealloc,
                                   NULL, NULL, 0);

    if (ret >= 0 && logged < 0) {
        qblk_error_set(errp, "Could not write log '%s': %s", s->log->path,
                       g_strerror(-logged));
    }
    return log_writes_done(ret, logged);
}

static int coroutine_fn log_writes_co_block_status(BlockDriverState *bs, bool want_zero,
                                                   int64_t offset, int64_t bytes,
                                                   int64_t *pnum, int64_t *map,
                                                   BlockDriverState **file)
{
    *pnum = bytes;
    *map = offset;
    *file = bs->file;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t log_writes_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

/* What the child says (qblk-io write -c needs the format's cluster size). */
static int log_writes_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bs->file, bdi);
}

const BlockDriver bdrv_log_writes = {
    .format_name = "log-writes",
    .instance_size = sizeof(LogWritesState),
    .is_filter = true,

    .open = log_writes_open,
    .close = log_writes_close,
    .co_preadv = log_writes_co_preadv,
    .co_pwritev = log_writes_co_pwritev,
    .co_pwrite_zeroes = log_writes_co_pwrite_zeroes,
    .co_pdiscard = log_writes_co_pdiscard,
    .co_flush = log_writes_co_flush,
    .co_block_status = log_writes_co_block_status,
    .co_truncate = log_writes_co_truncate,
    .getlength = log_writes_getlength,
    .get_info = log_writes_get_info,
};
