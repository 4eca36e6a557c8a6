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
 *   bit 7 max-connections 1.
 * The export is named "" with that setup; a second one, "fz", exports the
 * same node read-only with a description and allocation depth.
 * The rest of the input goes to the server as one stream, then the client
 * shuts its write side and drains the replies until the server closes.
 *
 * For each input: no sanitizer report, the session ends within
 * SESSION_LIMIT_S, and afterwards the node still reads whole and, for
 * qcow2/QED, checks clean (no corruption or leak left by any request). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib-unix.h>
#include "nbd/nbd.h"
#include "qblk/block.h"
#include "util/main-loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IMAGE_SIZE      (4 << 20)
#define ODD_TAIL        1000        /* bit 6: bytes past the last 512 boundary */
#define SESSION_LIMIT_S 30          /* a session that runs longer hangs */

enum {
    SETUP_FORMAT = 0x03,
    SETUP_WRITABLE = 0x04,
    SETUP_COR = 0x08,
    SETUP_DEPTH = 0x10,
    SETUP_WRITETHROUGH = 0x20,
    SETUP_ODD_SIZE = 0x40,
    SETUP_ONE_CONN = 0x80,
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
                                      int64_t size, const char *cluster, int flags)
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
    if (!(flags & BDRV_O_RDWR)) {
        bdrv_unref(bs);
        open_opts = qblk_opts_new();
        qblk_opts_set(open_opts, "driver", fmt);
        bs = bdrv_open(path, open_opts, flags, NULL, &err);
        require(bs != NULL, "reopen %s: %s", path, err ? err->message : "?");
    }
    return bs;
}

/* The node for setup byte `setup`, its files in dir (which the caller
 * removes once the node is open: the node keeps them open). */
static BlockDriverState *make_node(const char *dir, uint8_t setup)
{
    static const char *const formats[] = { "raw", "qcow2", "qed", "qcow2" };
    static const char *const clusters[] = { "", "4096", "4096", "512" };
    int fmt = setup & SETUP_FORMAT;
    int64_t size = IMAGE_SIZE + (setup & SETUP_ODD_SIZE ? ODD_TAIL : 0);
    /* Copy-on-read needs a node it can write. */
    int flags = setup & (SETUP_WRITABLE | SETUP_COR) ? BDRV_O_RDWR | BDRV_O_UNMAP : 0;
    g_autofree char *raw = g_build_filename(dir, "base.raw", NULL);
    g_autofree char *overlay = g_build_filename(dir, "overlay", NULL);
    g_autoptr(GError) err = NULL;
    QblkOpts *opts;
    BlockDriverState *bs;

    make_raw(raw, size);
    if (fmt) {
        return make_overlay(formats[fmt], overlay, raw, size, clusters[fmt], flags);
    }
    opts = qblk_opts_new();
    qblk_opts_set(opts, "driver", "raw");
    bs = bdrv_open(raw, opts, flags, NULL, &err);
    require(bs != NULL, "open %s: %s", raw, err ? err->message : "?");
    return bs;
}

static void remove_dir(const char *dir)
{
    const char *names[] = { "base.raw", "overlay" };

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = g_build_filename(dir, names[i], NULL);
        unlink(p);
    }
    rmdir(dir);
}

/* ----- The client: writes the input, drains the replies ----- */

typedef struct FuzzClient {
    int fd;
    const uint8_t *data;
    size_t len, sent;
    guint out_watch, in_watch;
    bool eof;           /* the server closed its end */
    FILE *replies;      /* $FUZZ_NBD_REPLIES: where the server's bytes go (seed checks) */
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
static void run_session(NbdServer *srv, const uint8_t *data, size_t size)
{
    int sv[2];
    FuzzClient fc = { .data = data, .len = size };
    const char *replies = g_getenv("FUZZ_NBD_REPLIES");
    int64_t deadline = g_get_monotonic_time() + SESSION_LIMIT_S * G_USEC_PER_SEC;
    guint ticker;

    require(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    fc.fd = sv[0];
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
    g_autofree uint8_t *buf = g_malloc(len);
    BdrvCheckResult res = { 0 };
    int ret;

    require(bdrv_pread(bs, 0, len, buf, 0) == 0, "the node no longer reads whole");
    if (setup & SETUP_FORMAT) {
        ret = bdrv_check(bs, &res, BDRV_FIX_NONE);
        require(ret == 0 && res.corruptions == 0 && res.leaks == 0 && res.check_errors == 0,
                "after the session, check returned %d, %d corruptions, %d leaks, "
                "%d check errors", ret, res.corruptions, res.leaks, res.check_errors);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t setup = size ? data[0] : 0;
    const char *base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm"
                                                                   : g_get_tmp_dir();
    g_autofree char *tmpl = g_build_filename(base, "fuzz-nbd-XXXXXX", NULL);
    char *dir;
    NbdServerOptions sopts = { .max_connections = setup & SETUP_ONE_CONN ? 1 : 0 };
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
    BlockDriverState *bs;
    NbdServer *srv;

    qblk_loop_init();
    dir = g_mkdtemp(tmpl);
    require(dir != NULL, "mkdtemp in %s: %s", base, g_strerror(errno));
    bs = make_node(dir, setup);
    remove_dir(dir);
    srv = nbd_server_new_detached(&sopts);
    require(nbd_export_add(srv, bs, &main_opts, &err) != NULL, "export: %s",
            err ? err->message : "?");
    require(nbd_export_add(srv, bs, &side_opts, &err) != NULL, "side export: %s",
            err ? err->message : "?");
    run_session(srv, size ? data + 1 : data, size ? size - 1 : 0);
    nbd_server_stop(srv);
    require_sound(bs, setup);
    bdrv_unref(bs);
    return 0;
}
