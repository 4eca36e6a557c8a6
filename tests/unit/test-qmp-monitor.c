/* The QMP monitor in-process: a client that disconnects while its command
 * sleeps in a coroutine (the command finishes, the reply is dropped, the
 * next client is served; ASan guards the memory), commands of one client
 * run one at a time in order, and events reach negotiated clients only. */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib.h>

#include "qmp/dispatch.h"
#include "qmp/monitor.h"
#include "util/main-loop.h"

static int sleeps_started, sleeps_done, sleeps_running, sleeps_max_running;

/* x-sleep {ms}: yields for a while, as a real block command does. */
static QblkJson *coroutine_fn qmp_co_x_sleep(const QblkJson *args, GError **errp)
{
    sleeps_started++;
    sleeps_running++;
    sleeps_max_running = MAX(sleeps_max_running, sleeps_running);
    qco_sleep_ns(qmp_arg_int(args, "ms", 0) * 1000000);
    sleeps_running--;
    sleeps_done++;
    return qblk_json_int(sleeps_done);
}

static char *sock_path;

static void setup(void)
{
    static const QmpCommand cmds[] = { { "x-sleep", qmp_co_x_sleep } };
    g_autoptr(GError) err = NULL;
    static char *dir;

    if (dir) {
        return;
    }
    qblk_loop_init();
    qmp_register_control_commands();
    qmp_schema_add("{ 'command': 'x-sleep', 'data': { 'ms': 'int' }, 'returns': 'int' }"
                   "{ 'event': 'X_EVENT', 'data': { 'n': 'int' } }");
    qmp_register_commands(cmds, 1);
    dir = g_dir_make_tmp("qblk-qmp-monitor-XXXXXX", NULL);
    sock_path = g_build_filename(dir, "qmp.sock", NULL);
    g_assert_true(qmp_chardev_add_socket("m0", sock_path, &err));
    g_assert_true(qmp_monitor_add("m0", &err));
    qmp_monitors_start();
}

static int client_connect(void)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

    strcpy(addr.sun_path, sock_path);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    return fd;
}

static void client_send(int fd, const char *text)
{
    g_assert_cmpint(write(fd, text, strlen(text)), ==, (ssize_t)strlen(text));
}

/* Runs the loop until the client has n complete lines (or 5 s pass);
 * returns everything read. */
static char *client_read_lines(int fd, int n)
{
    GString *buf = g_string_new(NULL);
    gint64 end = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    while (g_get_monotonic_time() < end) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof(tmp));
        int lines = 0;
        if (r > 0) {
            g_string_append_len(buf, tmp, r);
        }
        for (const char *p = buf->str; (p = strstr(p, "\r\n")); p += 2) {
            lines++;
        }
        if (lines >= n) {
            break;
        }
        qblk_loop_iterate(false);
        g_usleep(1000);
    }
    return g_string_free(buf, FALSE);
}

static void run_loop_ms(int ms)
{
    gint64 end = g_get_monotonic_time() + ms * 1000;

    while (g_get_monotonic_time() < end) {
        qblk_loop_iterate(false);
        g_usleep(1000);
    }
}

static void test_disconnect_mid_command(void)
{
    int fd, fd2;
    g_autofree char *out = NULL;
    g_autofree char *out2 = NULL;

    setup();
    sleeps_started = sleeps_done = 0;
    fd = client_connect();
    g_free(client_read_lines(fd, 1));
    client_send(fd, "{'execute': 'qmp_capabilities'}{'execute': 'x-sleep', 'arguments': {'ms': 100}}"
                    "{'execute': 'x-sleep', 'arguments': {'ms': 1}}");
    out = client_read_lines(fd, 1);
    g_assert_nonnull(strstr(out, "{\"return\": {}}"));
    /* The first sleep is running: hang up under it. */
    while (sleeps_started == 0) {
        qblk_loop_iterate(true);
    }
    close(fd);
    run_loop_ms(300);
    /* It finished; the one queued behind it was dropped with the client. */
    g_assert_cmpint(sleeps_done, ==, 1);

    fd2 = client_connect();
    out2 = client_read_lines(fd2, 1);
    g_assert_nonnull(strstr(out2, "\"QMP\""));
    client_send(fd2, "{'execute': 'qmp_capabilities'}{'execute': 'query-version', 'id': 2}");
    g_free(out2);
    out2 = client_read_lines(fd2, 2);
    g_assert_nonnull(strstr(out2, "\"id\": 2"));
    close(fd2);
    run_loop_ms(20);
}

static void test_order(void)
{
    int fd;
    g_autofree char *out = NULL;

    setup();
    sleeps_done = sleeps_max_running = 0;
    fd = client_connect();
    g_free(client_read_lines(fd, 1));
    client_send(fd, "{'execute': 'qmp_capabilities'}"
                    "{'execute': 'x-sleep', 'arguments': {'ms': 30}, 'id': 'a'}"
                    "{'execute': 'x-sleep', 'arguments': {'ms': 1}, 'id': 'b'}"
                    "{'execute': 'x-sleep', 'arguments': {'ms': 'x'}, 'id': 'c'}");
    out = client_read_lines(fd, 4);
    g_assert_cmpint(sleeps_max_running, ==, 1);
    g_assert_cmpstr(out, ==, "{\"return\": {}}\r\n"
                    "{\"return\": 1, \"id\": \"a\"}\r\n"
                    "{\"return\": 2, \"id\": \"b\"}\r\n"
                    "{\"id\": \"c\", \"error\": {\"class\": \"GenericError\", \"desc\": "
                    "\"Invalid parameter type for 'ms', expected: integer\"}}\r\n");
    close(fd);
    run_loop_ms(20);
}

static void test_events(void)
{
    int quiet, negotiated;
    g_autofree char *out = NULL;
    g_autofree char *out_quiet = NULL;
    QblkJson *data = qblk_json_object();

    setup();
    quiet = client_connect();
    negotiated = client_connect();
    g_free(client_read_lines(quiet, 1));
    g_free(client_read_lines(negotiated, 1));
    client_send(negotiated, "{'execute': 'qmp_capabilities'}");
    g_free(client_read_lines(negotiated, 1));
    qblk_json_set_int(data, "n", 5);
    qmp_event_emit("X_EVENT", data);
    out = client_read_lines(negotiated, 1);
    g_assert_true(g_str_has_prefix(out, "{\"timestamp\": {\"seconds\": "));
    g_assert_nonnull(strstr(out, "\"microseconds\": "));
    g_assert_true(g_str_has_suffix(out, "}, \"event\": \"X_EVENT\", \"data\": {\"n\": 5}}\r\n"));
    client_send(quiet, "{'execute': 'query-commands'}");
    out_quiet = client_read_lines(quiet, 1);
    g_assert_null(strstr(out_quiet, "X_EVENT"));
    close(quiet);
    close(negotiated);
    run_loop_ms(20);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-monitor/disconnect-mid-command", test_disconnect_mid_command);
    g_test_add_func("/qmp-monitor/order", test_order);
    g_test_add_func("/qmp-monitor/events", test_events);
    return g_test_run();
}
