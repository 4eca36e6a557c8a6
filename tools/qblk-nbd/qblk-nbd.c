/* qblk-nbd: serves one image over NBD with qemu-nbd's command line (and
 * -C, copy-on-read, qblk's own). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "nbd/nbd.h"
#include "tools/common/server-process.h"
#include "util/error.h"
#include "util/main-loop.h"

static bool quit;

static void usage(const char *prog)
{
    printf("Usage: %s [OPTIONS] FILE\n"
           "qblk Disk Network Block Device Server (qemu-nbd's options)\n"
           "\n"
           "  -h, --help                display this help and exit\n"
           "  -V, --version             output version information and exit\n"
           "\n"
           "Connection properties:\n"
           "  -p, --port=PORT           port to listen on (default `10809')\n"
           "  -b, --bind=IFACE          interface to bind to (default `0.0.0.0')\n"
           "  -k, --socket=PATH         path to the unix socket\n"
           "  -e, --shared=NUM          device can be shared by NUM clients (default '1')\n"
           "  -t, --persistent          don't exit on the last connection\n"
           "  -x, --export-name=NAME    expose export by name (default is empty string)\n"
           "  -D, --description=TEXT    export a human-readable description\n"
           "\n"
           "  -A, --allocation-depth    expose the allocation depth\n"
           "  -C, --copy-on-read        copy up from the backing chain on every read\n"
           "      --fork                fork off the server process and exit the parent\n"
           "                            once the server is running\n"
           "      --pid-file=PATH       store the server's process ID in the given file\n"
           "\n"
           "Block device options:\n"
           "  -f, --format=FORMAT       set image format (raw, qcow2, qed)\n"
           "  -r, --read-only           export read-only\n"
           "  -s, --snapshot            redirect writes to a temporary overlay of FILE\n"
           "  -n, --nocache             disable host cache\n"
           "      --cache=MODE          set cache mode used to access the disk image, the\n"
           "                            valid options are: 'none', 'writeback' (default),\n"
           "                            'writethrough', 'directsync' and 'unsafe'\n"
           "      --aio=MODE            set AIO mode (native, io_uring or threads)\n"
           "      --discard=MODE        set discard mode (ignore, unmap)\n"
           "      --detect-zeroes=MODE  set detect-zeroes mode (off, on, unmap)\n"
           "      --image-opts          treat FILE as a full set of image options\n"
           "\n"
           "The kernel client (-c DEV) is not supported.\n", prog);
}

static void last_client_gone(void *opaque)
{
    quit = true;
}

static void on_stop_signal(void)
{
    quit = true;
}

enum {
    OPT_CACHE = 256, OPT_AIO, OPT_DISCARD, OPT_DETECT_ZEROES, OPT_IMAGE_OPTS, OPT_FORK,
    OPT_PID_FILE,
};

typedef struct ToolOptions {
    NbdServerOptions srv;
    NbdExportOptions exp;
    const char *format, *pid_file, *discard, *detect_zeroes, *aio;
    int flags;
    bool persistent, image_opts, fork_process;
} ToolOptions;

/* Parses argv into *t; returns the image argument, or NULL after printing
 * why (*status then holds the exit code). */
static const char *parse_args(int argc, char **argv, ToolOptions *t, int *status)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "port", required_argument, NULL, 'p' },
        { "bind", required_argument, NULL, 'b' },
        { "socket", required_argument, NULL, 'k' },
        { "shared", required_argument, NULL, 'e' },
        { "persistent", no_argument, NULL, 't' },
        { "export-name", required_argument, NULL, 'x' },
        { "description", required_argument, NULL, 'D' },
        { "allocation-depth", no_argument, NULL, 'A' },
        { "copy-on-read", no_argument, NULL, 'C' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "snapshot", no_argument, NULL, 's' },
        { "nocache", no_argument, NULL, 'n' },
        { "connect", required_argument, NULL, 'c' },
        { "cache", required_argument, NULL, OPT_CACHE },
        { "aio", required_argument, NULL, OPT_AIO },
        { "discard", required_argument, NULL, OPT_DISCARD },
        { "detect-zeroes", required_argument, NULL, OPT_DETECT_ZEROES },
        { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
        { "fork", no_argument, NULL, OPT_FORK },
        { "pid-file", required_argument, NULL, OPT_PID_FILE },
        { NULL, 0, NULL, 0 },
    };
    bool writethrough = false;
    int c;
    char *end;

    *status = 1;
    t->srv.max_connections = 1;
    t->exp.name = "";
    t->exp.writable = true;
    t->flags = BDRV_O_RDWR;
    while ((c = getopt_long(argc, argv, "hVp:b:k:e:tx:D:ACf:rsnc:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(argv[0]); *status = 0; return NULL;
        case 'V': printf("qblk-nbd version " QBLK_VERSION "\n"); *status = 0; return NULL;
        case 'p': t->srv.port = optarg; break;
        case 'b': t->srv.host = optarg; break;
        case 'k': t->srv.unix_path = optarg; break;
        case 'e':
            errno = 0;
            t->srv.max_connections = strtol(optarg, &end, 0);
            if (errno || *end || t->srv.max_connections < 0) {
                error_report("Invalid shared device number '%s'", optarg);
                return NULL;
            }
            break;
        case 't': t->persistent = true; break;
        case 'x': t->exp.name = optarg; break;
        case 'D': t->exp.description = optarg; break;
        case 'A': t->exp.allocation_depth = true; break;
        case 'C': t->exp.copy_on_read = true; break;
        case 'f': t->format = optarg; break;
        case 'r': t->exp.writable = false; t->flags &= ~BDRV_O_RDWR; break;
        case 's': t->flags |= BDRV_O_SNAPSHOT; break;
        case 'n': t->flags |= BDRV_O_NOCACHE; break;
        case 'c':
            error_report("-c %s: the kernel NBD client is not supported by qblk-nbd; "
                         "serve with -k SOCKET or -p PORT and connect a user-space client",
                         optarg);
            return NULL;
        case OPT_CACHE:
            if (!bdrv_parse_cache_mode(optarg, &t->flags, &writethrough)) {
                error_report("Invalid cache mode `%s'", optarg);
                return NULL;
            }
            break;
        case OPT_AIO:
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio mode '%s'", optarg);
                return NULL;
            }
            t->aio = optarg;
            break;
        case OPT_DISCARD:
            if (!strcmp(optarg, "unmap") || !strcmp(optarg, "on")) {
                t->flags |= BDRV_O_UNMAP;
            } else if (strcmp(optarg, "ignore") && strcmp(optarg, "off")) {
                error_report("Invalid discard mode `%s'", optarg);
                return NULL;
            }
            t->discard = optarg;
            break;
        case OPT_DETECT_ZEROES: t->detect_zeroes = optarg; break;
        case OPT_IMAGE_OPTS: t->image_opts = true; break;
        case OPT_FORK: t->fork_process = true; break;
        case OPT_PID_FILE: t->pid_file = optarg; break;
        default:
            error_report("Try `%s --help' for more information.", argv[0]);
            return NULL;
        }
    }
    t->exp.writethrough = writethrough;
    if (argc - optind != 1) {
        error_report("Invalid number of arguments");
        error_report("Try `%s --help' for more information.", argv[0]);
        return NULL;
    }
    if (t->format && t->image_opts) {
        error_report("--image-opts and --format are mutually exclusive");
        return NULL;
    }
    if (t->srv.unix_path && (t->srv.port || t->srv.host)) {
        error_report("-k and -p/-b are mutually exclusive");
        return NULL;
    }
    if (t->detect_zeroes && !strcmp(t->detect_zeroes, "unmap") &&
        !(t->flags & BDRV_O_UNMAP)) {
        error_report("setting detect-zeroes to unmap is not allowed without setting "
                     "discard operation to unmap");
        return NULL;
    }
    if (!t->srv.unix_path && !t->srv.host) {
        t->srv.host = "0.0.0.0";
    }
    return argv[optind];
}

static BlockDriverState *open_image(const char *file, ToolOptions *t)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;

    if (t->image_opts) {
        if (!qblk_opts_parse(opts, file, NULL, &err)) {
            error_report_err(err);
            return NULL;
        }
        file = NULL;
    } else if (t->format) {
        qblk_opts_set(opts, "driver", t->format);
    }
    if (t->aio) {
        qblk_opts_set(opts, "file.aio", t->aio);
    }
    if (t->detect_zeroes) {
        qblk_opts_set(opts, "detect-zeroes", t->detect_zeroes);
    }
    bs = bdrv_open(file, g_steal_pointer(&opts), t->flags, NULL, &err);
    if (!bs) {
        error_report("Failed to blk_new_open '%s': %s", file ? file : "", err->message);
        g_error_free(err);
    }
    return bs;
}

int main(int argc, char **argv)
{
    ToolOptions t = { 0 };
    const char *file;
    BlockDriverState *bs;
    NbdServer *srv;
    GError *err = NULL;
    int status;

    qblk_set_progname(argv[0]);
    file = parse_args(argc, argv, &t, &status);
    if (!file) {
        return status;
    }
    if (t.fork_process) {
        server_process_fork();
    }
    qblk_loop_init();
    bs = open_image(file, &t);
    if (!bs) {
        return EXIT_FAILURE;
    }
    t.srv.last_client_gone = t.persistent ? NULL : last_client_gone;
    srv = nbd_server_start(&t.srv, &err);
    if (!srv || !nbd_export_add(srv, bs, &t.exp, &err)) {
        error_report_err(err);
        if (srv) {
            nbd_server_stop(srv);
        }
        bdrv_unref(bs);
        return EXIT_FAILURE;
    }
    bdrv_unref(bs);     /* the export holds it */
    if (t.pid_file && !server_pidfile_write(t.pid_file, &err)) {
        error_report("Failed to write pid file: %s", err->message);
        g_clear_error(&err);
        nbd_server_stop(srv);
        return EXIT_FAILURE;
    }
    server_process_stop_signals(on_stop_signal);
    /* qemu-nbd keeps its working directory. */
    server_process_ready(false);
    while (!quit) {
        qblk_loop_iterate(true);
    }
    nbd_server_stop(srv);
    server_pidfile_remove();
    return EXIT_SUCCESS;
}
