/* qemu-storage-daemon's command line: options run in the order given,
 * errors printed as "<option> <argument>: <message>" like qsd 7.2. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "qmp/dispatch.h"
#include "qmp/json-parse.h"
#include "qmp/monitor.h"
#include "trace/control.h"
#include "util/main-loop.h"
#include "util/opts.h"

enum {
    OPT_BLOCKDEV = 256,
    OPT_CHARDEV,
    OPT_DAEMONIZE,
    OPT_EXPORT,
    OPT_MONITOR,
    OPT_NBD_SERVER,
    OPT_OBJECT,
    OPT_PIDFILE,
};

static const struct option long_options[] = {
    { "blockdev", required_argument, NULL, OPT_BLOCKDEV },
    { "chardev", required_argument, NULL, OPT_CHARDEV },
    { "daemonize", no_argument, NULL, OPT_DAEMONIZE },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "help", no_argument, NULL, 'h' },
    { "monitor", required_argument, NULL, OPT_MONITOR },
    { "nbd-server", required_argument, NULL, OPT_NBD_SERVER },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "pidfile", required_argument, NULL, OPT_PIDFILE },
    { "trace", required_argument, NULL, 'T' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

/* '-' first: non-options come back in order as option 1. */
static const char short_options[] = "-hT:V";

static void usage(void)
{
    printf("Usage: %s [options]\n"
           "qblk storage daemon (the command line of QEMU's qemu-storage-daemon)\n"
           "\n"
           "  -h, --help             display this help and exit\n"
           "  -T, --trace [enable=]<pattern>\n"
           "                         enable matching trace points ('list' names them)\n"
           "  -V, --version          output version information and exit\n"
           "\n"
           "  --blockdev [driver=]<driver>[,node-name=<N>][,discard=ignore|unmap]\n"
           "             [,cache.direct=on|off][,cache.no-flush=on|off]\n"
           "             [,read-only=on|off][,auto-read-only=on|off]\n"
           "             [,force-share=on|off][,detect-zeroes=on|off|unmap]\n"
           "             [,driver specific parameters...]\n"
           "  --blockdev <JSON object, as blockdev-add takes it>\n"
           "                         configure a block backend\n"
           "\n"
           "  --chardev socket,id=<id>,path=<path>,server=on,wait=off\n"
           "                         a listening unix socket for a monitor\n"
           "\n"
           "  --daemonize            daemonize the process, and have the parent exit\n"
           "                         once startup is complete\n"
           "\n"
           "  --monitor [chardev=]name[,mode=control]\n"
           "                         configure a QMP monitor\n"
           "\n"
           "  --export [type=]nbd,id=<id>,node-name=<node-name>[,name=<export-name>]\n"
           "           [,writable=on|off][,writethrough=on|off][,description=<text>]\n"
           "           [,allocation-depth=on|off]\n"
           "                         export the specified block node over NBD\n"
           "                         (requires --nbd-server)\n"
           "\n"
           "  --nbd-server addr.type=inet,addr.host=<host>,addr.port=<port>\n"
           "               [,max-connections=<n>]\n"
           "  --nbd-server addr.type=unix,addr.path=<path>[,max-connections=<n>]\n"
           "                         start an NBD server for exporting block nodes\n"
           "\n"
           "  --pidfile <path>       write process ID to a file after startup\n"
           "\n"
           "--object is not supported.\n",
           qblk_progname());
}

void daemon_cli_scan(int argc, char **argv, DaemonOptions *opts)
{
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage();
            exit(0);
        case 'V':
            printf("%s version %s\n", qblk_progname(), QBLK_VERSION);
            exit(0);
        case 'T':
            /* "list" prints the trace points; like QEMU's "help", then exit. */
            if (!strcmp(optarg, "list") || !strcmp(optarg, "help") ||
                !strcmp(optarg, "enable=list") || !strcmp(optarg, "enable=help")) {
                qblk_trace_enable(optarg);
                exit(0);
            }
            break;
        case OPT_DAEMONIZE:
            opts->daemonize = true;
            break;
        case OPT_PIDFILE:
            g_free(opts->pidfile);
            opts->pidfile = g_strdup(optarg);
            break;
        case 1:
            error_report("%s: Unexpected argument", optarg);
            exit(1);
        case '?':
            /* getopt's own messages, which qsd prints too. */
            if (optopt >= OPT_BLOCKDEV) {
                error_report("option '%s' requires an argument", argv[optind - 1]);
            } else if (optopt == 'T') {
                error_report("option requires an argument -- 'T'");
            } else if (optopt) {
                error_report("invalid option -- '%c'", optopt);
            } else {
                error_report("unrecognized option '%s'", argv[optind - 1]);
            }
            exit(1);
        default:
            break;
        }
    }
}

/* ----- --blockdev ----- */

typedef struct BlockdevCall {
    const char *arg;
    QblkJson *json;                /* the JSON form, parsed */
    bool done, ok;
    GError *err;
} BlockdevCall;

static void coroutine_fn blockdev_co_entry(void *opaque)
{
    BlockdevCall *call = opaque;

    if (call->json) {
        /* The JSON form: blockdev-add's own schema check and handler. */
        g_autoptr(QblkJson) ret = qmp_co_run_command("blockdev-add", call->json, &call->err);
        call->ok = ret != NULL;
    } else {
        QblkOpts *opts = qblk_opts_new();
        if (qblk_opts_parse(opts, call->arg, "driver", &call->err)) {
            call->ok = qmp_co_blockdev_add_opts(opts, &call->err);
        } else {
            qblk_opts_free(opts);
        }
    }
    call->done = true;
}

/* qsd takes an argument starting with '{' as JSON, anything else as
 * dotted keys (so "[1]" is a driver name). */
static bool process_blockdev(const char *arg, GError **errp)
{
    BlockdevCall call = { .arg = arg };
    g_autoptr(QblkJson) json = NULL;

    if (arg[0] == '{') {
        /* Parsed here, outside the coroutine: deep input recurses. */
        json = qmp_json_parse(arg, errp);
        if (!json) {
            return false;
        }
        call.json = json;
    }
    qco_enter(qco_create(blockdev_co_entry, &call));
    while (!call.done) {
        qblk_loop_iterate(true);
    }
    if (!call.ok) {
        g_propagate_error(errp, call.err);
    }
    return call.ok;
}

/* ----- --chardev, --monitor ----- */

static bool opts_take_onoff(QblkOpts *opts, const char *key, int *out, GError **errp)
{
    bool b;

    if (!qblk_opts_has(opts, key)) {
        *out = -1;
        return true;
    }
    if (!qblk_opts_take_bool(opts, key, false, &b, errp)) {
        return false;
    }
    *out = b;
    return true;
}

/* --chardev's QemuOpts syntax: a first element without '=' is the
 * backend; later ones are flags ("server", "nowait"), short forms QEMU 7.2
 * still takes with a deprecation warning, worded as QEMU's. */
static bool chardev_opts_parse(QblkOpts *opts, const char *arg, GError **errp)
{
    const char *p = arg;

    if (!qblk_opts_valid_list(arg)) {
        qblk_error_set(errp, "Invalid option list: %s", arg);
        return false;
    }
    for (bool first = true; *p; first = false) {
        size_t len = strcspn(p, "=,");
        bool flag = p[len] != '=';
        g_autofree char *key = NULL, *value = NULL;

        if (first && flag) {
            /* The backend name, ",," standing for a comma. */
            GString *name = g_string_new(NULL);
            while (*p && (*p != ',' || p[1] == ',')) {
                g_string_append_c(name, *p);
                p += *p == ',' ? 2 : 1;
            }
            key = g_string_free(name, FALSE);
            qblk_opts_set(opts, "backend", key);
        } else {
            p = qblk_opts_next_element(p, &key, &value);
            if (flag) {
                g_autofree char *written = g_strndup(p - len, len);
                fprintf(stderr, "%s: --chardev %s: warning: short-form boolean option '%s' "
                        "deprecated\nPlease use %s=%s instead\n", qblk_progname(), arg,
                        written, key, value);
            }
            qblk_opts_set(opts, key, value);
        }
        if (*p == ',') {
            p++;
        }
    }
    return true;
}

static bool process_chardev(const char *arg, GError **errp)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autofree char *backend = NULL, *id = NULL, *path = NULL;
    int server, wait;
    guint n;
    g_autofree const char **keys = NULL;

    if (!chardev_opts_parse(opts, arg, errp)) {
        return false;
    }
    backend = qblk_opts_take(opts, "backend");
    id = qblk_opts_take(opts, "id");
    path = qblk_opts_take(opts, "path");
    if (!opts_take_onoff(opts, "server", &server, errp) ||
        !opts_take_onoff(opts, "wait", &wait, errp)) {
        return false;
    }
    keys = qblk_opts_keys(opts, &n);
    if (n) {
        qblk_error_set(errp, "Invalid parameter '%s'", keys[0]);
        return false;
    }
    if (!backend || strcmp(backend, "socket") != 0) {
        static const char *const qemu_backends[] = {
            "braille", "dbus", "file", "memory", "msmouse", "mux", "null", "parallel",
            "pipe", "pty", "qemu-vdagent", "ringbuf", "serial", "spiceport", "spicevmc",
            "stdio", "testdev", "udp", "vc", NULL,
        };
        if (!backend || !g_strv_contains(qemu_backends, backend)) {
            qblk_error_set(errp, "'%s' is not a valid char driver name",
                           backend ? backend : "");
            return false;
        }
    }
    /* QEMU's order: the backend's name, the id, then the backend's options. */
    if (!id) {
        qblk_error_set(errp, "chardev: no id specified");
        return false;
    }
    if (strcmp(backend, "socket") != 0) {
        qblk_error_set(errp, "chardev backend '%s' is not supported (only 'socket')", backend);
        return false;
    }
    if (!path) {
        /* qsd 7.2 falls back to an fd socket and says this. */
        qblk_error_set(errp, "Unable to parse FD number ");
        return false;
    }
    if (server != 1) {
        if (wait != -1) {
            qblk_error_set(errp, "'wait' option is incompatible with socket in client "
                           "connect mode");
        } else {
            qblk_error_set(errp, "client mode sockets (server=off) are not supported");
        }
        return false;
    }
    if (wait != 0) {
        qblk_error_set(errp, "wait=on is not supported; use server=on,wait=off");
        return false;
    }
    return qmp_chardev_add_socket(id, path, errp);
}

static bool process_monitor(const char *arg, GError **errp)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autofree char *chardev = NULL, *mode = NULL;
    int pretty;
    guint n;
    g_autofree const char **keys = NULL;

    if (!qblk_opts_parse(opts, arg, "chardev", errp)) {
        return false;
    }
    chardev = qblk_opts_take(opts, "chardev");
    mode = qblk_opts_take(opts, "mode");
    if (!opts_take_onoff(opts, "pretty", &pretty, errp)) {
        return false;
    }
    keys = qblk_opts_keys(opts, &n);
    if (n) {
        qblk_error_set(errp, "Parameter '%s' is unexpected", keys[0]);
        return false;
    }
    if (!chardev) {
        qblk_error_set(errp, "Parameter 'chardev' is missing");
        return false;
    }
    if (mode && strcmp(mode, "control") && strcmp(mode, "readline")) {
        qblk_error_set(errp, "Parameter 'mode' does not accept value '%s'", mode);
        return false;
    }
    if (!qmp_monitor_add(chardev, errp)) {
        return false;
    }
    if (mode && !strcmp(mode, "readline")) {
        qblk_error_set(errp, "Only QMP is supported");
        return false;
    }
    if (pretty == 1) {
        qblk_error_set(errp, "pretty=on is not supported");
        return false;
    }
    return true;
}

bool daemon_cli_process(int argc, char **argv)
{
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        g_autoptr(GError) err = NULL;
        const char *name = NULL;
        bool ok = true;

        switch (c) {
        case 'T':
            /* A pattern that matches nothing is a warning, as in QEMU. */
            qblk_trace_enable(optarg);
            continue;
        case OPT_BLOCKDEV:
            name = "--blockdev";
            ok = process_blockdev(optarg, &err);
            break;
        case OPT_CHARDEV:
            name = "--chardev";
            ok = process_chardev(optarg, &err);
            break;
        case OPT_MONITOR:
            name = "--monitor";
            ok = process_monitor(optarg, &err);
            break;
        case OPT_NBD_SERVER:
            name = "--nbd-server";
            ok = qmp_cli_nbd_server(optarg, &err);
            break;
        case OPT_EXPORT:
            name = "--export";
            ok = qmp_cli_export(optarg, &err);
            break;
        case OPT_OBJECT:
            name = "--object";
            qblk_error_set(&err, "--object is not supported by qblk-storage-daemon "
                           "(it has no TLS, secrets or iothreads)");
            ok = false;
            break;
        default:
            continue;
        }
        if (!ok) {
            error_report("%s %s: %s", name, optarg, err->message);
            return false;
        }
    }
    return true;
}
