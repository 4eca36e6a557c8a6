/* Fuzz target for the QMP monitor (qmp/: JSON splitter and parser,
 * negotiation, schema-checked dispatch, the command handlers): the input is
 * what one client sends, over a unix socket to a monitor set up as the
 * daemon sets up its own. Built as a libFuzzer target with -Dfuzzing=true
 * (clang), otherwise linked with replay-main.c, the replayer of corpus files.
 *
 * The monitor drops a client's queued commands when it reads EOF, so the
 * client does not shut its side after the input: it sends END, a bad byte
 * (which ends any message in progress, as in QEMU's lexer) and a command
 * with a known id, and closes once that command's reply came (replies come
 * in order, so every command of the input ran) or the monitor hung up.
 *
 * For each input: no sanitizer report, the session ends within
 * SESSION_LIMIT_S, the monitor answers END unless it hung up, and
 * everything the monitor sent is a sequence of JSON objects, each ending in "\r\n": first
 * the greeting {"QMP": ...}, then only replies ("return" or "error") and
 * events ("event"). Afterwards jobs, exports and nodes are dropped as at
 * the daemon's shutdown, so each input starts from an empty daemon.
 *
 * The process works in a private directory (under /dev/shm when there is
 * one), so the relative file names of blockdev-add and blockdev-create
 * stay inside it; run libFuzzer with absolute corpus paths (make fuzz
 * does). FUZZ_QMP_REPLIES=1 prints what the monitor sent. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "qblk/job.h"
#include "qmp/monitor.h"
#include "qmp/qmp.h"
#include "qmp/schema.h"
#include "util/main-loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SESSION_LIMIT_S 30      /* a session that runs longer hangs */
#define END_ID "fuzz-qmp-end-6d1f"
static const char end_msg[] = "\xff\n{\"execute\": \"query-version\", \"id\": \"" END_ID "\"}\n";

static void G_GNUC_PRINTF(2, 3) require(bool ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        return;
    }
    fprintf(stderr, "fuzz-qmp: assertion failed: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ----- The images, as tests/qmp names them ----- */

/* Small images under the names the tests/qmp scripts (and so the seed
 * corpus) open: a raw base with data, QED and qcow2 overlays on it and a
 * qcow2 chain, so blockdev-add, jobs and exports find real nodes. */
static const struct {
    const char *name, *fmt, *backing, *backing_fmt, *compat;
} images[] = {
    { "base.raw", "raw" },
    { "base-raw.raw", "raw" },
    { "base.qcow2", "qcow2" },
    { "base-qed.qed", "qed" },
    { "base-qcow2v3.qcow2", "qcow2", NULL, NULL, "1.1" },
    { "mid.qcow2", "qcow2", "base.qcow2", "qcow2" },
    { "top.qcow2", "qcow2", "mid.qcow2", "qcow2" },
    { "top.qed", "qed", "base.raw", "raw" },
    { "t2.qed", "qed", "base.raw", "raw" },
    { "t2.qcow2", "qcow2", "base.raw", "raw" },
    { "top-raw.qcow2", "qcow2", "base-raw.raw", "raw", "0.10" },
    { "top-qed.qcow2", "qcow2", "base-qed.qed", "qed" },
    { "top-qcow2v3.qed", "qed", "base-qcow2v3.qcow2", "qcow2" },
    { "disk.qcow2", "qcow2" },
    { "snap.qcow2", "qcow2" },
};
#define IMAGE_SIZE 1048576

static GBytes *image_bytes[G_N_ELEMENTS(images)];

static void make_image(int i)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autoptr(GError) err = NULL;
    static uint8_t buf[64 << 10];
    BlockDriverState *bs;
    gchar *text;
    gsize len;

    qblk_opts_set(opts, "size", G_STRINGIFY(IMAGE_SIZE));
    if (images[i].backing) {
        qblk_opts_set(opts, "backing_file", images[i].backing);
        qblk_opts_set(opts, "backing_fmt", images[i].backing_fmt);
    }
    if (images[i].compat) {
        qblk_opts_set(opts, "compat", images[i].compat);
    }
    /* raw images are plain files, made by the protocol driver. */
    require(bdrv_create(strcmp(images[i].fmt, "raw") ? images[i].fmt : "file", images[i].name,
                        opts, &err) == 0, "create %s: %s",
            images[i].name, err ? err->message : "?");
    bs = bdrv_open(images[i].name, NULL, BDRV_O_RDWR | BDRV_O_NO_BACKING, NULL, &err);
    require(bs != NULL, "open %s: %s", images[i].name, err ? err->message : "?");
    /* Data in a few places, a different pattern per image. */
    memset(buf, 0x11 + i, sizeof(buf));
    for (int64_t at = (i % 3) * sizeof(buf); at < IMAGE_SIZE; at += 4 * sizeof(buf)) {
        require(bdrv_pwrite(bs, at, sizeof(buf), buf, 0) == 0, "write %s", images[i].name);
    }
    bdrv_unref(bs);
    require(g_file_get_contents(images[i].name, &text, &len, NULL), "read %s", images[i].name);
    image_bytes[i] = g_bytes_new_take(text, len);
}

/* Whether a file changed since it was last stat()ed shows in its ctime
 * where the file system keeps fine-grained ctimes once they were read
 * (tmpfs since Linux 6.13): then restore_images rewrites only the images
 * an input changed. Checked once by changing a file right after a stat;
 * elsewhere every image is rewritten for each input. */
static bool ctime_shows_change;
static struct stat restored[G_N_ELEMENTS(images)];

static bool same_ctime(const struct stat *a, const struct stat *b)
{
    return a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void probe_ctime(void)
{
    int fd = open("ctime-probe", O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct stat a, b;

    require(fd >= 0, "ctime-probe: %s", g_strerror(errno));
    ctime_shows_change = true;
    for (int i = 0; i < 100 && ctime_shows_change; i++) {
        ctime_shows_change = fstat(fd, &a) == 0 && pwrite(fd, "x", 1, i) == 1 &&
                             fstat(fd, &b) == 0 && !same_ctime(&a, &b);
    }
    close(fd);
    unlink("ctime-probe");
}

static bool image_unchanged(size_t i)
{
    struct stat st;

    return ctime_shows_change && stat(images[i].name, &st) == 0 &&
           st.st_ino == restored[i].st_ino && st.st_size == restored[i].st_size &&
           same_ctime(&st, &restored[i]);
}

/* Puts every image back as made and removes any other file (what
 * blockdev-create made), the socket excepted. */
static void restore_images(void)
{
    GDir *d = g_dir_open(".", 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        bool ours = strcmp(name, "qmp.sock") == 0;

        for (size_t i = 0; i < G_N_ELEMENTS(images) && !ours; i++) {
            ours = strcmp(name, images[i].name) == 0;
        }
        if (!ours) {
            unlink(name);
        }
    }
    if (d) {
        g_dir_close(d);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(images); i++) {
        gsize len;
        const char *data = g_bytes_get_data(image_bytes[i], &len);

        if (image_unchanged(i)) {
            continue;
        }
        unlink(images[i].name);
        require(g_file_set_contents(images[i].name, data, len, NULL), "restore %s",
                images[i].name);
        /* Read after the write: a change after this one shows. */
        require(stat(images[i].name, &restored[i]) == 0, "stat %s", images[i].name);
    }
}

/* ----- The daemon, once per process ----- */

static char *workdir;
static char *socket_path;

static void remove_workdir(void)
{
    GDir *d = g_dir_open(workdir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(workdir, name, NULL);
        unlink(p);
    }
    if (d) {
        g_dir_close(d);
    }
    rmdir(workdir);
}

static void daemon_setup(void)
{
    const char *base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm"
                                                                   : g_get_tmp_dir();
    g_autofree char *tmpl = g_build_filename(base, "fuzz-qmp-XXXXXX", NULL);
    g_autoptr(GError) err = NULL;

    workdir = g_strdup(g_mkdtemp(tmpl));
    require(workdir != NULL, "mkdtemp in %s: %s", base, g_strerror(errno));
    require(chdir(workdir) == 0, "chdir %s: %s", workdir, g_strerror(errno));
    atexit(remove_workdir);
    socket_path = g_build_filename(workdir, "qmp.sock", NULL);

    qblk_loop_init();
    probe_ctime();
    for (size_t i = 0; i < G_N_ELEMENTS(images); i++) {
        make_image(i);
    }
    restore_images();       /* as every input will find them (and their ctimes) */
    qmp_register_control_commands();
    qmp_register_block_commands();
    qmp_register_job_commands();
    qmp_register_export_commands();
    qmp_schema_finish();
    require(qmp_chardev_add_socket("m0", socket_path, &err), "chardev: %s",
            err ? err->message : "?");
    require(qmp_monitor_add("m0", &err), "monitor: %s", err ? err->message : "?");
    qmp_cli_done();
    qmp_monitors_start();
}

static void coroutine_fn reset_co_entry(void *opaque)
{
    bool *done = opaque;

    job_co_cancel_all();
    qmp_co_exports_close_all();
    qmp_co_blockdev_close_all();
    *done = true;
}

/* Back to an empty daemon, as its shutdown leaves the block layer. */
static void daemon_reset(void)
{
    bool done = false;
    int64_t deadline = g_get_monotonic_time() + SESSION_LIMIT_S * G_USEC_PER_SEC;

    qco_enter(qco_create(reset_co_entry, &done));
    while (!done) {
        require(g_get_monotonic_time() < deadline, "the reset did not end within %d s",
                SESSION_LIMIT_S);
        qblk_loop_iterate(true);
    }
}

/* ----- The client ----- */

typedef struct FuzzClient {
    int fd;
    const uint8_t *data;     /* the input, then END */
    size_t len, sent;
    bool end_queued;
    GString *in;            /* everything the monitor sent */
    bool eof;
    guint out_watch, in_watch;
} FuzzClient;

static gboolean client_out(gint fd, GIOCondition cond, gpointer opaque)
{
    FuzzClient *fc = opaque;

    while (fc->sent < fc->len || !fc->end_queued) {
        ssize_t n;

        if (fc->sent == fc->len) {
            fc->data = (const uint8_t *)end_msg;
            fc->len = sizeof(end_msg) - 1;
            fc->sent = 0;
            fc->end_queued = true;
        }
        n = send(fd, fc->data + fc->sent, fc->len - fc->sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return G_SOURCE_CONTINUE;
        }
        if (n < 0) {
            break;      /* the monitor hung up: it may, on input it refuses */
        }
        fc->sent += n;
    }
    fc->out_watch = 0;
    return G_SOURCE_REMOVE;
}

static gboolean client_in(gint fd, GIOCondition cond, gpointer opaque)
{
    FuzzClient *fc = opaque;
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);

    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
        return G_SOURCE_CONTINUE;
    }
    if (n <= 0) {
        fc->eof = true;
        fc->in_watch = 0;
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(fc->in, buf, n);
    return G_SOURCE_CONTINUE;
}

/* Wakes the loop now and then, so the deadline is checked. */
static gboolean tick(gpointer opaque)
{
    return G_SOURCE_CONTINUE;
}

static int client_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    require(fd >= 0, "socket: %s", g_strerror(errno));
    require(strlen(socket_path) < sizeof(sa.sun_path), "socket path too long");
    strcpy(sa.sun_path, socket_path);
    require(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s",
            socket_path, g_strerror(errno));
    g_unix_set_fd_nonblocking(fd, TRUE, NULL);
    return fd;
}

/* ----- The replies ----- */

/* Each message is one JSON object ending in "\r\n"; the first is the
 * greeting, the others replies and events. */
static void require_replies(const GString *in)
{
    g_auto(GStrv) lines = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    guint n;

    require(in->len >= 2 && in->str[in->len - 2] == '\r' && in->str[in->len - 1] == '\n',
            "the monitor's output (%zu bytes) does not end in \\r\\n", in->len);
    lines = g_strsplit(in->str, "\r\n", -1);
    n = g_strv_length(lines) - 1;     /* the last is the empty rest */
    for (guint i = 0; i < n; i++) {
        g_autoptr(GError) err = NULL;
        JsonObject *obj;

        require(json_parser_load_from_data(parser, lines[i], -1, &err), "message %u is no "
                "JSON (%s): %.200s", i, err ? err->message : "?", lines[i]);
        require(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)), "message %u is no "
                "object: %.200s", i, lines[i]);
        obj = json_node_get_object(json_parser_get_root(parser));
        if (i == 0) {
            require(json_object_has_member(obj, "QMP"), "the first message is no greeting: "
                    "%.200s", lines[i]);
        } else {
            require(json_object_has_member(obj, "return") + json_object_has_member(obj, "error")
                    + json_object_has_member(obj, "event") == 1, "message %u is neither one "
                    "reply nor one event: %.200s", i, lines[i]);
        }
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
    static bool ready;
    FuzzClient fc = { .data = data, .len = size };
    int64_t deadline;
    guint ticker;

    if (!ready) {
        use_inline_io();
        daemon_setup();
        ready = true;
    }
    fc.in = g_string_new(NULL);
    fc.fd = client_connect();
    fc.out_watch = g_unix_fd_add(fc.fd, G_IO_OUT, client_out, &fc);
    fc.in_watch = g_unix_fd_add(fc.fd, G_IO_IN | G_IO_HUP, client_in, &fc);
    ticker = g_timeout_add(200, tick, NULL);
    deadline = g_get_monotonic_time() + SESSION_LIMIT_S * G_USEC_PER_SEC;
    while (!fc.eof && !(strstr(fc.in->str, "\"" END_ID "\"") &&
                        g_str_has_suffix(fc.in->str, "\r\n"))) {
        require(g_get_monotonic_time() < deadline, "the session did not end within %d s "
                "(%s)", SESSION_LIMIT_S, fc.end_queued ? "input sent" : "input not all sent");
        qblk_loop_iterate(true);
    }
    g_source_remove(ticker);
    if (fc.out_watch) {
        g_source_remove(fc.out_watch);
    }
    if (fc.in_watch) {
        g_source_remove(fc.in_watch);
    }
    close(fc.fd);
    if (g_getenv("FUZZ_QMP_REPLIES")) {     /* to see what an input does */
        fwrite(fc.in->str, 1, fc.in->len, stderr);
    }
    require(strstr(fc.in->str, "\"" END_ID "\"") != NULL, "the monitor hung up before it "
            "answered the command after the input (sent %zu bytes)", size);
    require_replies(fc.in);
    g_string_free(fc.in, TRUE);
    daemon_reset();
    restore_images();
    return 0;
}
