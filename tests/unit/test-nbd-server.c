/* The NBD server's export and server lifecycle as the storage daemon will
 * drive it: removing an export in use (its clients are dropped, then it
 * is deleted), stopping the server from a coroutine, add's refusals. A
 * client thread does the handshake with blocking sockets while the test
 * runs the event loop. */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>
#include "nbd/nbd.h"
#include "nbd/nbd-proto.h"
#include "unit-helpers.h"
#include "util/main-loop.h"

typedef struct TestClient {
    const char *sock;
    const char *name;
    gint ready;         /* in transmission */
    gint gone;          /* the server closed the connection */
    gint failed;
} TestClient;

static bool recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) {
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/* Greeting, GO for the export, then waits for the server to hang up. */
static gpointer client_thread(gpointer opaque)
{
    TestClient *t = opaque;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    uint8_t buf[4096];
    size_t nlen = strlen(t->name);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(sun.sun_path, t->sock);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || !recv_all(fd, buf, 18)) {
        goto fail;
    }
    nbd_put32(buf, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    nbd_put64(buf + 4, NBD_OPTS_MAGIC);
    nbd_put32(buf + 12, NBD_OPT_GO);
    nbd_put32(buf + 16, 4 + nlen + 2);
    nbd_put32(buf + 20, nlen);
    memcpy(buf + 24, t->name, nlen);
    nbd_put16(buf + 24 + nlen, 0);
    if (send(fd, buf, 26 + nlen, MSG_NOSIGNAL) != (ssize_t)(26 + nlen)) {
        goto fail;
    }
    for (;;) {                  /* option replies up to ACK */
        uint32_t type, len;
        if (!recv_all(fd, buf, 20)) {
            goto fail;
        }
        type = nbd_get32(buf + 12);
        len = nbd_get32(buf + 16);
        if (len > sizeof(buf) || !recv_all(fd, buf, len) || type & 0x80000000) {
            goto fail;
        }
        if (type == NBD_REP_ACK) {
            break;
        }
    }
    g_atomic_int_set(&t->ready, 1);
    while (recv(fd, buf, sizeof(buf), 0) > 0) {
        /* nothing is sent to an idle client */
    }
    g_atomic_int_set(&t->gone, 1);
    close(fd);
    return NULL;
fail:
    g_atomic_int_set(&t->failed, 1);
    close(fd);
    return NULL;
}

/* Runs the loop until *flag is set (or 10 s pass: a failure). */
static void loop_until(gint *flag)
{
    int64_t deadline = qblk_clock_ns() + 10 * G_TIME_SPAN_SECOND * 1000;

    while (!g_atomic_int_get(flag)) {
        g_assert_cmpint(qblk_clock_ns(), <, deadline);
        if (!qblk_loop_iterate(false)) {
            g_usleep(1000);
        }
    }
}

static void count_deleted(void *opaque)
{
    ++*(int *)opaque;
}

typedef struct Fixture {
    char *dir, *sock;
    BlockDriverState *bs;
    NbdServer *srv;
    int deleted;
} Fixture;

static void fixture_setup(Fixture *f, bool read_only)
{
    g_autofree char *img = NULL, *opts = NULL;
    NbdServerOptions so = { 0 };

    f->dir = unit_tmpdir_new("test-nbd-XXXXXX");
    img = unit_create(f->dir, "raw", "disk.raw", "size=1M");
    opts = g_strdup_printf("driver=raw,file.driver=file,file.filename=%s", img);
    f->bs = unit_open_opts(opts, read_only ? 0 : BDRV_O_RDWR);
    f->sock = g_build_filename(f->dir, "sock", NULL);
    so.unix_path = f->sock;
    f->srv = nbd_server_start(&so, NULL);
    g_assert_nonnull(f->srv);
}

static void fixture_teardown(Fixture *f)
{
    bdrv_unref(f->bs);
    g_free(f->sock);
    unit_tmpdir_remove(f->dir);
}

static NbdExport *add_export(Fixture *f, const char *name)
{
    NbdExportOptions eo = { .name = name, .writable = true, .deleted = count_deleted,
                            .opaque = &f->deleted };
    NbdExport *exp = nbd_export_add(f->srv, f->bs, &eo, NULL);

    g_assert_nonnull(exp);
    return exp;
}

static GThread *connect_client(Fixture *f, TestClient *t, const char *name)
{
    GThread *th;

    t->sock = f->sock;
    t->name = name;
    th = g_thread_new("client", client_thread, t);
    loop_until(&t->ready);
    g_assert_cmpint(g_atomic_int_get(&t->failed), ==, 0);
    return th;
}

static void test_remove_in_use(void)
{
    Fixture f = { 0 };
    TestClient t = { 0 };
    NbdExport *exp;
    GThread *th;
    GList *list;

    fixture_setup(&f, false);
    exp = add_export(&f, "a");
    add_export(&f, "b");
    list = nbd_server_exports(f.srv);
    g_assert_cmpint(g_list_length(list), ==, 2);
    g_list_free(list);
    g_assert_true(nbd_export_bs(exp) == f.bs);
    g_assert_false(nbd_export_in_use(exp));
    th = connect_client(&f, &t, "a");
    g_assert_true(nbd_export_in_use(exp));
    g_assert_cmpint(nbd_server_client_count(f.srv), ==, 1);

    nbd_export_remove(exp);     /* hard: the client is dropped */
    g_assert_null(nbd_export_find(f.srv, "a"));
    loop_until(&t.gone);
    g_thread_join(th);
    while (f.deleted < 1) {
        qblk_loop_iterate(true);
    }
    g_assert_cmpint(f.deleted, ==, 1);
    g_assert_nonnull(nbd_export_find(f.srv, "b"));
    nbd_server_stop(f.srv);
    g_assert_cmpint(f.deleted, ==, 2);
    fixture_teardown(&f);
}

static void coroutine_fn co_stop(void *opaque)
{
    nbd_co_server_stop(opaque);
}

static void test_co_stop(void)
{
    Fixture f = { 0 };
    TestClient t = { 0 };
    GThread *th;

    fixture_setup(&f, false);
    add_export(&f, "a");
    th = connect_client(&f, &t, "a");
    bdrv_run_co(co_stop, f.srv);    /* returns once the client is gone */
    g_thread_join(th);
    g_assert_cmpint(t.gone, ==, 1);
    g_assert_cmpint(f.deleted, ==, 1);
    g_assert_false(g_file_test(f.sock, G_FILE_TEST_EXISTS));
    fixture_teardown(&f);
}

static void test_add_refusals(void)
{
    Fixture f = { 0 };
    g_autofree char *long_name = g_strnfill(5000, 'n');
    NbdExportOptions eo = { 0 };
    GError *err = NULL;

    fixture_setup(&f, true);
    eo.name = "x";
    g_assert_nonnull(nbd_export_add(f.srv, f.bs, &eo, NULL));
    g_assert_null(nbd_export_add(f.srv, f.bs, &eo, &err));
    g_assert_cmpstr(err->message, ==, "NBD server already has export named 'x'");
    g_clear_error(&err);
    eo.name = long_name;
    g_assert_null(nbd_export_add(f.srv, f.bs, &eo, &err));
    g_clear_error(&err);
    eo.name = "w";
    eo.writable = true;
    g_assert_null(nbd_export_add(f.srv, f.bs, &eo, &err));
    g_assert_cmpstr(err->message, ==, "Cannot export read-only node as writable");
    g_clear_error(&err);
    nbd_server_stop(f.srv);
    fixture_teardown(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    g_test_add_func("/nbd-server/remove-in-use", test_remove_in_use);
    g_test_add_func("/nbd-server/co-stop", test_co_stop);
    g_test_add_func("/nbd-server/add-refusals", test_add_refusals);
    return g_test_run();
}
