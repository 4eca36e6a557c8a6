/* Fuzz target for the NBD server: the input is what a client sends (after
 * a first byte that picks the export), served over a socketpair by a
 * detached server. Built as a libFuzzer target with -Dfuzzing=true (clang),
 * otherwise linked with replay-main.c, the replayer of corpus files.
 *
 * Input byte 0 (the export's setup):
 *   bits 0-1  0: raw file; 1: qcow2 over it; 2: QED over it; 3: qcow2 with
 *             512-byte clusters over it (many extents). The overlays hold
 *             some clusters of their own (data and zeroes) and lean on the
 *             raw backing file for the rest;
 *   bit 2 writable, bit 3 copy-on-read, bit 4 qemu:allocation-depth,
 *   bit 5 writethrough, bit 6 a size that is no multiple of 512,
 *   bit 7 export a copy-on-read filter node over it (the daemon's guest
 *   copy-on-read: reads and BLOCK_STATUS populate the overlay).
 * The export is named "" with that setup; a second one, "fz", exports the
 * same node read-only with a description and allocation depth.
 * The rest of the input goes to the server as one stream, then the client
 * shuts its write side and drains the replies until the server closes.
 *
 * For each input: no sanitizer report, the session ends within
 * SESSION_LIMIT_S, the server's replies have the protocol's shapes (see
 * "The replies" below), and afterwards the node still reads whole and,
 * for qcow2/QED, checks clean (no corruption or leak left by any request). */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>
#include "nbd/internal.h"
#include "qblk/block.h"
#include "util/main-loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IMAGE_SIZE      (4 << 20)
#define ODD_TAIL        1000        /* bit 6: bytes past the last 512 boundary */
#define SESSION_LIMIT_S 30          /* a session that runs longer hangs */
#define NODE_NAME       "fuzz-node"  /* the node under the filter of bit 7 */

enum {
    SETUP_FORMAT = 0x03,
    SETUP_WRITABLE = 0x04,
    SETUP_COR = 0x08,
    SETUP_DEPTH = 0x10,
    SETUP_WRITETHROUGH = 0x20,
    SETUP_ODD_SIZE = 0x40,
    SETUP_COR_FILTER = 0x80,
};

static void G_GNUC_PRINTF(2, 3) require(bool ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        return;
    }
    fprintf(stderr, "fuzz-nbd: assertion failed: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ----- The image ----- */

static void fill(uint8_t *buf, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)(seed + i * 7);
    }
}

/* The raw file: sparse, with data at the start, at 1 MiB and unaligned
 * near 3 MiB, and in its last bytes (past the export when odd-sized). */
static void make_raw(const char *path, int64_t size)
{
    static const struct { int64_t at, n; } runs[] = {
        { 0, 65536 }, { 1 << 20, 8192 }, { (3 << 20) + 512, 4096 + 100 },
    };
    static uint8_t buf[65536];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    require(fd >= 0 && ftruncate(fd, size) == 0, "cannot create %s: %s", path,
            g_strerror(errno));
    for (size_t i = 0; i < G_N_ELEMENTS(runs); i++) {
        fill(buf, runs[i].n, 1 + i);
        require(pwrite(fd, buf, runs[i].n, runs[i].at) == runs[i].n, "write to %s", path);
    }
    fill(buf, 700, 9);
    require(pwrite(fd, buf, 700, size - 700) == 700, "write to %s", path);
    close(fd);
}

/* An overlay over the raw file with clusters of its own: data over a part
 * of the raw data and over a hole, zeroes over raw data. */
static BlockDriverState *make_overlay(const char *fmt, const char *path, const char *raw,
                                      int64_t size, const char *cluster)
{
    g_autoptr(QblkOpts) create = qblk_opts_new();
    g_autofree char *size_str = g_strdup_printf("%" G_GINT64_FORMAT, size);
    g_autoptr(GError) err = NULL;
    static uint8_t buf[12288];
    QblkOpts *open_opts = qblk_opts_new();
    BlockDriverState *bs;

    qblk_opts_set(create, "size", size_str);
    qblk_opts_set(create, "backing_file", raw);
    qblk_opts_set(create, "backing_fmt", "raw");
    qblk_opts_set(create, "cluster_size", cluster);
    require(bdrv_create(fmt, path, create, &err) == 0, "create %s: %s", fmt,
            err ? err->message : "?");
    qblk_opts_set(open_opts, "driver", fmt);
    bs = bdrv_open(path, open_opts, BDRV_O_RDWR | BDRV_O_UNMAP, NULL, &err);
    require(bs != NULL, "open %s: %s", path, err ? err->message : "?");
    fill(buf, sizeof(buf), 20);
    require(bdrv_pwrite(bs, 32768, 8192, buf, 0) == 0, "overlay write");
    require(bdrv_pwrite(bs, 2 << 20, sizeof(buf), buf, 0) == 0, "overlay write");
    require(bdrv_pwrite_zeroes(bs, 1 << 20, 4096, 0) == 0, "overlay zero write");
    return bs;
}

/* A file as it was written: its size and its data extents (SEEK_DATA),
 * so a copy has the same holes (raw block status reports them). */
typedef struct FileCopy {
    off_t size;
    GArray *extents;    /* of Extent */
} FileCopy;

typedef struct Extent {
    off_t at;
    GBytes *data;
} Extent;

static FileCopy *file_copy_take(const char *path)
{
    FileCopy *fc = g_new0(FileCopy, 1);
    int fd = open(path, O_RDONLY);
    off_t at = 0, end;

    require(fd >= 0, "cannot open %s: %s", path, g_strerror(errno));
    fc->size = lseek(fd, 0, SEEK_END);
    fc->extents = g_array_new(FALSE, FALSE, sizeof(Extent));
    while (at < fc->size && (at = lseek(fd, at, SEEK_DATA)) >= 0) {
        Extent e = { .at = at };
        uint8_t *buf;

        end = lseek(fd, at, SEEK_HOLE);
        require(end > at, "SEEK_HOLE in %s", path);
        buf = g_malloc(end - at);
        require(pread(fd, buf, end - at, at) == end - at, "read %s", path);
        e.data = g_bytes_new_take(buf, end - at);
        g_array_append_val(fc->extents, e);
        at = end;
    }
    close(fd);
    return fc;
}

static void file_copy_put(const FileCopy *fc, const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    require(fd >= 0 && ftruncate(fd, fc->size) == 0, "cannot create %s: %s", path,
            g_strerror(errno));
    for (guint i = 0; i < fc->extents->len; i++) {
        const Extent *e = &g_array_index(fc->extents, Extent, i);
        gsize n;
        const void *data = g_bytes_get_data(e->data, &n);

        require(pwrite(fd, data, n, e->at) == (ssize_t)n, "write to %s", path);
    }
    close(fd);
}

/* The node for setup byte `setup`, its files in dir (which the caller
 * unlinks once the node is open: the node keeps them open). The files of
 * each format and size are made once per process, through the library,
 * and copied for each input (the same bytes and holes, in the same dir, so
 * the overlay's backing file name still holds). */
static BlockDriverState *make_node(const char *dir, uint8_t setup)
{
    static const char *const formats[] = { "raw", "qcow2", "qed", "qcow2" };
    static const char *const clusters[] = { "", "4096", "4096", "512" };
    static FileCopy *made_raw[8], *made_overlay[8];
    int fmt = setup & SETUP_FORMAT;
    int variant = fmt | (setup & SETUP_ODD_SIZE ? 4 : 0);
    int64_t size = IMAGE_SIZE + (setup & SETUP_ODD_SIZE ? ODD_TAIL : 0);
    /* Copy-on-read needs a node it can write. */
    int flags = setup & (SETUP_WRITABLE | SETUP_COR | SETUP_COR_FILTER) ?
                BDRV_O_RDWR | BDRV_O_UNMAP : 0;
    g_autofree char *raw = g_build_filename(dir, "base.raw", NULL);
    g_autofree char *overlay = g_build_filename(dir, "overlay", NULL);
    g_autoptr(GError) err = NULL;
    QblkOpts *opts;
    BlockDriverState *bs;

    if (!made_raw[variant]) {
        make_raw(raw, size);
        made_raw[variant] = file_copy_take(raw);
        if (fmt) {
            bdrv_unref(make_overlay(formats[fmt], overlay, raw, size, clusters[fmt]));
            made_overlay[variant] = file_copy_take(overlay);
        }
    }
    file_copy_put(made_raw[variant], raw);
    opts = qblk_opts_new();
    qblk_opts_set(opts, "driver", formats[fmt]);
    qblk_opts_set(opts, "node-name", NODE_NAME);
    if (fmt) {
        file_copy_put(made_overlay[variant], overlay);
        bs = bdrv_open(overlay, opts, flags, NULL, &err);
    } else {
        bs = bdrv_open(raw, opts, flags, NULL, &err);
    }
    require(bs != NULL, "open %s: %s", fmt ? overlay : raw, err ? err->message : "?");
    return bs;
}

/* A copy-on-read filter over the node make_node opened. */
static BlockDriverState *open_cor_filter(void)
{
    QblkOpts *opts = qblk_opts_new();
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    qblk_opts_set(opts, "driver", "copy-on-read");
    qblk_opts_set(opts, "file", NODE_NAME);
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, NULL, &err);
    require(bs != NULL, "copy-on-read filter: %s", err ? err->message : "?");
    return bs;
}

static void remove_files(const char *dir)
{
    const char *names[] = { "base.raw", "overlay" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = g_build_filename(dir, names[i], NULL);
        unlink(p);
    }
}

/* One directory per process for the node's files (their names are in the
 * overlays made once), removed at exit. */
static char *work_dir;

static void remove_work_dir(void)
{
    remove_files(work_dir);
    rmdir(work_dir);
}

static const char *node_dir(void)
{
    const char *base;
    char *tmpl;

    if (work_dir) {
        return work_dir;
    }
    base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
    tmpl = g_build_filename(base, "fuzz-nbd-XXXXXX", NULL);
    require(g_mkdtemp(tmpl) != NULL, "mkdtemp in %s: %s", base, g_strerror(errno));
    work_dir = tmpl;
    atexit(remove_work_dir);
    return work_dir;
}

/* ----- The replies: a streaming check of what the server sends -----
 *
 * The greeting, then option replies (or EXPORT_NAME's bare reply), then,
 * once structured replies are on, every transmission reply: these need no
 * knowledge of the requests (a simple reply carries data only for a READ,
 * and a structured client's READs are answered in chunks). With simple
 * replies only, the check stops at transmission. It holds each message to
 * its shape: lengths that match the type, extents and holes of non-zero
 * length inside the export, known error values. */

typedef enum {
    WANT_GREETING, WANT_OPTION, WANT_OPTION_REPLY, WANT_EXPORT_NAME_TAIL, WANT_TX,
    WANT_SIMPLE, WANT_CHUNK, WANT_CHUNK_FIELDS, WANT_EXTENT, WANT_NOTHING, UNCHECKED,
} ReplyState;

typedef struct ReplyCheck {
    ReplyState state;
    uint64_t export_size;
    bool no_zeroes;         /* the client's flag: EXPORT_NAME's reply has no padding */
    bool structured;        /* the server acknowledged STRUCTURED_REPLY */
    uint8_t head[28];
    size_t want, have;      /* head bytes the state needs, and has */
    uint64_t skip;          /* payload bytes to pass over first */
    bool skip_zeroes;       /* ... which must be zero */
    uint16_t chunk_type;
    uint32_t chunk_len, extents_left;
    uint64_t extents_sum;
} ReplyCheck;

static void expect(ReplyCheck *rc, ReplyState state, size_t want)
{
    rc->state = state;
    rc->want = want;
    rc->have = 0;
}

static bool known_error(uint32_t e)
{
    return e == NBD_EPERM || e == NBD_EIO || e == NBD_ENOMEM || e == NBD_EINVAL ||
           e == NBD_ENOSPC || e == NBD_EOVERFLOW || e == NBD_ENOTSUP || e == NBD_ESHUTDOWN;
}

/* A chunk header is in head: its length against its type. */
static void check_chunk_head(ReplyCheck *rc)
{
    uint16_t flags = nbd_get16(rc->head + 4);
    uint32_t len = nbd_get32(rc->head + 16);

    rc->chunk_type = nbd_get16(rc->head + 6);
    rc->chunk_len = len;
    require(!(flags & ~NBD_REPLY_FLAG_DONE), "chunk flags 0x%x", flags);
    switch (rc->chunk_type) {
    case NBD_REPLY_TYPE_NONE:
        require(len == 0 && flags & NBD_REPLY_FLAG_DONE, "NONE chunk of %u bytes, flags %x",
                len, flags);
        expect(rc, WANT_TX, 4);
        return;
    case NBD_REPLY_TYPE_OFFSET_DATA:
        require(len > 8 && len - 8 <= NBD_MAX_BUFFER_SIZE, "OFFSET_DATA chunk of %u bytes", len);
        expect(rc, WANT_CHUNK_FIELDS, 8);
        return;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
        require(len == 12, "OFFSET_HOLE chunk of %u bytes", len);
        expect(rc, WANT_CHUNK_FIELDS, 12);
        return;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        require(len >= 12 && (len - 4) % 8 == 0, "BLOCK_STATUS chunk of %u bytes", len);
        expect(rc, WANT_CHUNK_FIELDS, 4);
        return;
    case NBD_REPLY_TYPE_ERROR:
        require(len >= 6, "ERROR chunk of %u bytes", len);
        require(flags & NBD_REPLY_FLAG_DONE, "ERROR chunk without DONE");
        expect(rc, WANT_CHUNK_FIELDS, 6);
        return;
    default:
        require(false, "chunk of unknown type 0x%x", rc->chunk_type);
    }
}

/* The fixed fields of a chunk are in head. */
static void check_chunk_fields(ReplyCheck *rc)
{
    uint64_t off;
    uint32_t n;

    switch (rc->chunk_type) {
    case NBD_REPLY_TYPE_OFFSET_DATA:
        off = nbd_get64(rc->head);
        n = rc->chunk_len - 8;
        require(off <= rc->export_size && n <= rc->export_size - off,
                "OFFSET_DATA %" PRIu64 "+%u past the export", off, n);
        rc->skip = n;
        break;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
        off = nbd_get64(rc->head);
        n = nbd_get32(rc->head + 8);
        require(n > 0 && off <= rc->export_size && n <= rc->export_size - off,
                "OFFSET_HOLE %" PRIu64 "+%u empty or past the export", off, n);
        break;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        n = nbd_get32(rc->head);
        require(n == NBD_META_ID_BASE_ALLOCATION || n == NBD_META_ID_ALLOCATION_DEPTH,
                "BLOCK_STATUS for context id %u", n);
        rc->extents_left = (rc->chunk_len - 4) / 8;
        rc->extents_sum = 0;
        expect(rc, WANT_EXTENT, 8);
        return;
    case NBD_REPLY_TYPE_ERROR:
        n = nbd_get32(rc->head);
        require(known_error(n), "ERROR chunk with error %u", n);
        require(nbd_get16(rc->head + 4) == rc->chunk_len - 6,
                "ERROR chunk's message of %u bytes in %u", nbd_get16(rc->head + 4),
                rc->chunk_len - 6);
        rc->skip = rc->chunk_len - 6;
        break;
    }
    expect(rc, WANT_TX, 4);
}

/* head holds a whole message part of rc->want bytes: check it, say what
 * comes next. */
static void reply_step(ReplyCheck *rc)
{
    static const uint8_t greeting[18] = {
        'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C', 'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T',
        0, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES,
    };
    uint32_t opt, type, len;

    switch (rc->state) {
    case WANT_GREETING:
        require(memcmp(rc->head, greeting, 18) == 0, "bad greeting");
        expect(rc, WANT_OPTION, 8);
        return;
    case WANT_OPTION:
        if (nbd_get64(rc->head) != NBD_REP_MAGIC) {     /* EXPORT_NAME's reply */
            require(nbd_get64(rc->head) == rc->export_size,
                    "EXPORT_NAME reply (or an option reply with a bad magic)");
            expect(rc, WANT_EXPORT_NAME_TAIL, 2);
            return;
        }
        rc->want = 20;      /* keep the magic, read the rest of the header */
        rc->state = WANT_OPTION_REPLY;
        return;
    case WANT_OPTION_REPLY:
        opt = nbd_get32(rc->head + 8);
        type = nbd_get32(rc->head + 12);
        len = nbd_get32(rc->head + 16);
        require(type == NBD_REP_ACK || type == NBD_REP_SERVER || type == NBD_REP_INFO ||
                type == NBD_REP_META_CONTEXT ||
                (type >= NBD_REP_ERR_UNSUP && type <= NBD_REP_ERR_TOO_BIG),
                "option reply type 0x%x", type);
        require(type != NBD_REP_ACK || len == 0, "ACK with %u bytes", len);
        require(len <= 2 * NBD_MAX_STRING_SIZE + 64, "option reply of %u bytes", len);
        rc->skip = len;
        if (type == NBD_REP_ACK && opt == NBD_OPT_STRUCTURED_REPLY) {
            rc->structured = true;
        }
        if (type == NBD_REP_ACK && opt == NBD_OPT_GO) {
            expect(rc, rc->structured ? WANT_TX : UNCHECKED, 4);
        } else if (type == NBD_REP_ACK && opt == NBD_OPT_ABORT) {
            expect(rc, WANT_NOTHING, 1);
        } else {
            expect(rc, WANT_OPTION, 8);
        }
        return;
    case WANT_EXPORT_NAME_TAIL:
        rc->skip = rc->no_zeroes ? 0 : 124;
        rc->skip_zeroes = true;
        expect(rc, rc->structured ? WANT_TX : UNCHECKED, 4);
        return;
    case WANT_TX:
        if (nbd_get32(rc->head) == NBD_SIMPLE_REPLY_MAGIC) {
            rc->state = WANT_SIMPLE;
            rc->want = NBD_SIMPLE_REPLY_SIZE;
            return;
        }
        require(nbd_get32(rc->head) == NBD_STRUCTURED_REPLY_MAGIC,
                "reply magic 0x%08x", nbd_get32(rc->head));
        rc->state = WANT_CHUNK;
        rc->want = NBD_CHUNK_HEADER_SIZE;
        return;
    case WANT_SIMPLE:
        /* A structured client's simple replies carry no data. */
        require(nbd_get32(rc->head + 4) == 0 || known_error(nbd_get32(rc->head + 4)),
                "simple reply with error %u", nbd_get32(rc->head + 4));
        expect(rc, WANT_TX, 4);
        return;
    case WANT_CHUNK:
        check_chunk_head(rc);
        return;
    case WANT_CHUNK_FIELDS:
        check_chunk_fields(rc);
        return;
    case WANT_EXTENT:
        len = nbd_get32(rc->head);
        require(len > 0, "extent of length 0");
        rc->extents_sum += len;
        require(rc->extents_sum <= rc->export_size, "extents past the export's size");
        rc->extents_left--;
        expect(rc, rc->extents_left ? WANT_EXTENT : WANT_TX, rc->extents_left ? 8 : 4);
        return;
    case WANT_NOTHING:
        require(false, "bytes after the ACK of ABORT");
        return;
    case UNCHECKED:
        return;
    }
}

static void replies_feed(ReplyCheck *rc, const uint8_t *buf, size_t n)
{
    while (n && rc->state != UNCHECKED) {
        if (rc->skip) {
            size_t k = MIN(rc->skip, n);
            if (rc->skip_zeroes) {
                for (size_t i = 0; i < k; i++) {
                    require(buf[i] == 0, "EXPORT_NAME reply's padding is not zero");
                }
            }
            rc->skip -= k;
            buf += k;
            n -= k;
            continue;
        }
        rc->skip_zeroes = false;
        while (n && rc->have < rc->want) {
            rc->head[rc->have++] = *buf++;
            n--;
        }
        if (rc->have == rc->want) {
            reply_step(rc);
        }
    }
}

/* At the end of the stream: no message cut short. */
static void replies_end(ReplyCheck *rc)
{
    bool between = rc->skip == 0 && rc->have == 0 &&
                   (rc->state == WANT_OPTION || rc->state == WANT_TX ||
                    rc->state == WANT_NOTHING || rc->state == WANT_GREETING);

    require(between || rc->state == UNCHECKED, "the replies end inside a message (state %d)",
            rc->state);
}

/* ----- The client: writes the input, drains the replies ----- */

typedef struct FuzzClient {
    int fd;
    const uint8_t *data;
    size_t len, sent;
    guint out_watch, in_watch;
    bool eof;           /* the server closed its end */
    FILE *replies;      /* $FUZZ_NBD_REPLIES: where the server's bytes go (seed checks) */
    ReplyCheck check;
} FuzzClient;

static gboolean client_out(gint fd, GIOCondition cond, gpointer opaque)
{
    FuzzClient *fc = opaque;

    while (fc->sent < fc->len) {
        ssize_t n = send(fd, fc->data + fc->sent, fc->len - fc->sent, MSG_NOSIGNAL);
        if (n > 0) {
            fc->sent += n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return G_SOURCE_CONTINUE;
        } else {
            break;      /* the server is gone: the rest of the input stays unsent */
        }
    }
    shutdown(fd, SHUT_WR);
    fc->out_watch = 0;
    return G_SOURCE_REMOVE;
}

static gboolean client_in(gint fd, GIOCondition cond, gpointer opaque)
{
    FuzzClient *fc = opaque;
    static uint8_t buf[1 << 16];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            if (fc->replies) {
                fwrite(buf, 1, n, fc->replies);
            }
            replies_feed(&fc->check, buf, n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return G_SOURCE_CONTINUE;
        }
        fc->eof = true;
        fc->in_watch = 0;
        return G_SOURCE_REMOVE;
    }
}

/* Wakes the loop now and then so a session that makes no progress is
 * seen to hang. */
static gboolean tick(gpointer opaque)
{
    return G_SOURCE_CONTINUE;
}

/* Serves the input to one client on a socketpair until both are done. */
static void run_session(NbdServer *srv, uint64_t export_size, const uint8_t *data, size_t size)
{
    int sv[2];
    FuzzClient fc = { .data = data, .len = size };
    const char *replies = g_getenv("FUZZ_NBD_REPLIES");
    int64_t deadline = g_get_monotonic_time() + SESSION_LIMIT_S * G_USEC_PER_SEC;
    guint ticker;

    require(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    fc.fd = sv[0];
    fc.check.export_size = export_size;
    fc.check.no_zeroes = size >= 4 && data[3] & NBD_FLAG_C_NO_ZEROES;
    expect(&fc.check, WANT_GREETING, 18);
    if (replies) {
        fc.replies = fopen(replies, "wb");
        require(fc.replies != NULL, "cannot open %s", replies);
    }
    g_unix_set_fd_nonblocking(fc.fd, TRUE, NULL);
    nbd_server_serve_fd(srv, sv[1]);
    fc.out_watch = g_unix_fd_add(fc.fd, G_IO_OUT, client_out, &fc);
    fc.in_watch = g_unix_fd_add(fc.fd, G_IO_IN | G_IO_HUP, client_in, &fc);
    ticker = g_timeout_add(200, tick, NULL);
    while (!fc.eof || nbd_server_client_count(srv)) {
        require(g_get_monotonic_time() < deadline, "the session did not end within %d s "
                "(sent %zu of %zu bytes)", SESSION_LIMIT_S, fc.sent, fc.len);
        qblk_loop_iterate(true);
    }
    g_source_remove(ticker);
    replies_end(&fc.check);
    if (fc.out_watch) {
        g_source_remove(fc.out_watch);
    }
    close(fc.fd);
    if (fc.replies) {
        fclose(fc.replies);
    }
}

/* ----- After the session ----- */

static void require_sound(BlockDriverState *bs, uint8_t setup)
{
    int64_t len = bdrv_getlength(bs);
    /* Static: a fresh buffer per input would cost its page faults every
     * time; 1 MiB, so the node is read in a few requests. */
    static uint8_t buf[1 << 20];
    BdrvCheckResult res = { 0 };
    int ret;

    for (int64_t at = 0; at < len; at += sizeof(buf)) {
        int64_t n = MIN((int64_t)sizeof(buf), len - at);

        require(bdrv_pread(bs, at, n, buf, 0) == 0, "the node no longer reads at %" PRId64, at);
    }
    if (setup & SETUP_FORMAT) {
        ret = bdrv_check(bs, &res, BDRV_FIX_NONE);
        require(ret == 0 && res.corruptions == 0 && res.leaks == 0 && res.check_errors == 0,
                "after the session, check returned %d, %d corruptions, %d leaks, "
                "%d check errors", ret, res.corruptions, res.leaks, res.check_errors);
    }
}

/* The library's file I/O in the loop thread (QBLK_AIO=inline, unless
 * QBLK_AIO says otherwise): the images are on tmpfs, where io_uring hands
 * every request to a kernel worker and the pool to a thread, and those two
 * context switches per request took most of an execution's time. */
static void use_inline_io(void)
{
    static bool done;

    if (!done) {
        g_setenv("QBLK_AIO", "inline", FALSE);
        done = true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t setup = size ? data[0] : 0;
    const char *dir;
    NbdServerOptions sopts = { 0 };
    NbdExportOptions main_opts = {
        .name = "",
        .writable = setup & SETUP_WRITABLE,
        .copy_on_read = setup & SETUP_COR,
        .allocation_depth = setup & SETUP_DEPTH,
        .writethrough = setup & SETUP_WRITETHROUGH,
    };
    NbdExportOptions side_opts = {
        .name = "fz", .description = "fuzz side export", .allocation_depth = true,
    };
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs, *exported;
    NbdServer *srv;

    use_inline_io();
    qblk_loop_init();
    dir = node_dir();
    bs = make_node(dir, setup);
    remove_files(dir);
    exported = setup & SETUP_COR_FILTER ? open_cor_filter() : bs;
    srv = nbd_server_new_detached(&sopts);
    require(nbd_export_add(srv, exported, &main_opts, &err) != NULL, "export: %s",
            err ? err->message : "?");
    require(nbd_export_add(srv, exported, &side_opts, &err) != NULL, "side export: %s",
            err ? err->message : "?");
    run_session(srv, bdrv_getlength(exported) & ~511, size ? data + 1 : data,
                size ? size - 1 : 0);
    nbd_server_stop(srv);
    if (exported != bs) {
        bdrv_unref(exported);
    }
    require_sound(bs, setup);
    bdrv_unref(bs);
    return 0;
}
