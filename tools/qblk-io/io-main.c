/* qblk-io: exercises an image request by request with qemu-io's command
 * line, command language and output. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tools/qblk-io/io.h"
#include "tools/common/events.h"
#include "trace/control.h"
#include "util/error.h"
#include "util/main-loop.h"

BlockDriverState *io_bs;
BdrvUser *io_user;
bool io_writethrough;
bool io_misalign;
char *io_open_name;
QblkOpts *io_open_opts;
int io_open_flags;

static void usage(const char *name)
{
    printf("Usage: %s [OPTIONS]... [-c STRING]... [file]\n"
           "qblk disk exerciser\n"
           "\n"
           "  --image-opts         treat file as option string\n"
           "  -c, --cmd STRING     execute command with its arguments\n"
           "                       from the given string\n"
           "  -f, --format FMT     specifies the block driver to use\n"
           "  -r, --read-only      export read-only\n"
           "  -s, --snapshot       use snapshot file\n"
           "  -n, --nocache        disable host cache, short for -t none\n"
           "  -C, --copy-on-read   enable copy-on-read\n"
           "  -m, --misalign       misalign allocations for O_DIRECT\n"
           "  -k, --native-aio     use kernel AIO implementation\n"
           "                       (Linux only, prefer use of -i)\n"
           "  -i, --aio=MODE       use AIO mode (threads, native or io_uring)\n"
           "  -t, --cache=MODE     use the given cache mode for the image\n"
           "  -d, --discard=MODE   use the given discard mode for the image\n"
           "  -T, --trace [enable=]<pattern>\n"
           "                       enable matching trace points ('list' names them)\n"
           "  -U, --force-share    force shared permissions\n"
           "  -h, --help           display this help and exit\n"
           "  -V, --version        output version information and exit\n"
           "\n"
           "See '%s -c help' for information on available commands.\n",
           name, name);
}

bool io_parse_discard(const char *mode, int *flags)
{
    if (!strcmp(mode, "ignore") || !strcmp(mode, "off")) {
        *flags &= ~BDRV_O_UNMAP;
    } else if (!strcmp(mode, "unmap") || !strcmp(mode, "on")) {
        *flags |= BDRV_O_UNMAP;
    } else {
        return false;
    }
    return true;
}

/* QEMU's qemu-io prints qcow2's "Failed to flush the L2 table cache" here
 * and still exits 0; qblk-io names the failure for every format and exits
 * 1, since writes it acknowledged may not be in the image. */
int io_close_image(void)
{
    int ret;

    /* Requests still in flight hold references: the close must be ours. */
    bdrv_drain(io_bs);
    io_user = NULL;
    ret = bdrv_unref_flush(io_bs);
    io_bs = NULL;
    if (ret < 0) {
        error_report("Failed to flush the image before closing it: %s", strerror(-ret));
    }
    return ret;
}

void io_user_perm(int flags, uint64_t *perm, uint64_t *shared)
{
    bdrv_user_perm_for_flags(flags & BDRV_O_RDWR ? flags | BDRV_O_RESIZE : flags, perm,
                             shared);
}

int io_open_image(const char *name, QblkOpts *opts, int flags, bool image_opts)
{
    GError *err = NULL;
    bool probed_raw = false;
    uint64_t perm, shared;

    if (name != io_open_name) {
        g_free(io_open_name);
        io_open_name = g_strdup(name);
    }
    if (opts != io_open_opts) {
        g_clear_pointer(&io_open_opts, qblk_opts_free);
        io_open_opts = qblk_opts_copy(opts);
    }
    io_open_flags = flags;
    io_bs = bdrv_open(name, opts, flags, &probed_raw, &err);
    io_user_perm(flags, &perm, &shared);
    if (io_bs && !(io_user = bdrv_attach_user(io_bs, "qblk-io", perm, shared, &err))) {
        bdrv_unref(io_bs);
        io_bs = NULL;
    }
    if (!io_bs) {
        if (image_opts) {
            error_report("can't open: %s", err->message);
        } else {
            error_report("can't open device %s: %s", name, err->message);
        }
        g_error_free(err);
        return -1;
    }
    if (probed_raw) {
        fprintf(stderr,
                "WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                "         Automatically detecting the format is dangerous for raw images, "
                "write operations on block 0 will be restricted.\n"
                "         Specify the 'raw' format explicitly to remove the restrictions.\n",
                bdrv_filename(io_bs));
    }
    return 0;
}

/* Reads commands from stdin after a "<prog>> " prompt until EOF or quit. */
static bool interactive_loop(const char *prog)
{
    g_autofree char *prompt = g_strdup_printf("%s> ", prog);
    bool failed = false, quit = false;
    char *line = NULL;
    size_t cap = 0;

    while (!quit) {
        ssize_t n;

        fputs(prompt, stdout);
        fflush(stdout);
        n = getline(&line, &cap, stdin);
        if (n < 0) {
            break;
        }
        if (n > 0 && line[n - 1] == '\n') {
            line[n - 1] = '\0';
        }
        if (io_run_line(line, &quit) < 0) {
            failed = true;
        }
    }
    free(line);
    return !failed;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "cmd", required_argument, NULL, 'c' },
        { "format", required_argument, NULL, 'f' },
        { "read-only", no_argument, NULL, 'r' },
        { "snapshot", no_argument, NULL, 's' },
        { "nocache", no_argument, NULL, 'n' },
        { "copy-on-read", no_argument, NULL, 'C' },
        { "misalign", no_argument, NULL, 'm' },
        { "native-aio", no_argument, NULL, 'k' },
        { "aio", required_argument, NULL, 'i' },
        { "discard", required_argument, NULL, 'd' },
        { "cache", required_argument, NULL, 't' },
        { "trace", required_argument, NULL, 'T' },
        { "force-share", no_argument, NULL, 'U' },
        { "image-opts", no_argument, NULL, 'I' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(GPtrArray) cmds = g_ptr_array_new();
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autofree char *prog = g_path_get_basename(argv[0]);
    int flags = BDRV_O_RDWR | BDRV_O_UNMAP;
    const char *format = NULL;
    bool readonly = false, image_opts = false, force_share = false;
    bool writethrough = false, failed = false, quit = false;
    int c;

    qblk_set_progname(argv[0]);
    /* The library reports corruption and warnings to us; we print it as QEMU does. */
    bdrv_set_corruption_handler(tools_print_corruption, NULL);
    qblk_set_warn_handler(tools_print_warning, NULL);
    argv[0] = prog;     /* getopt's messages name the program like QEMU's */
    qblk_loop_init();
    while ((c = getopt_long(argc, argv, "hVc:d:f:rsnCmki:t:T:U", long_options, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(prog);
            return 0;
        case 'V':
            printf("%s version %s\n", prog, QBLK_VERSION);
            printf("Copyright (c) 2026 the qblk developers\n");
            return 0;
        case 'c': g_ptr_array_add(cmds, optarg); break;
        case 'f': format = optarg; break;
        case 'r': readonly = true; break;
        case 's': flags |= BDRV_O_SNAPSHOT; break;
        case 'n': flags |= BDRV_O_NOCACHE; writethrough = false; break;
        case 'C': flags |= BDRV_O_COPY_ON_READ; break;
        case 'm': io_misalign = true; break;
        case 'k': qblk_opts_set(opts, "file.aio", "native"); break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            qblk_opts_set(opts, "file.aio", optarg);
            break;
        case 'd':
            if (!io_parse_discard(optarg, &flags)) {
                error_report("Invalid discard option: %s", optarg);
                return 1;
            }
            break;
        case 't':
            if (!bdrv_parse_cache_mode(optarg, &flags, &writethrough)) {
                error_report("Invalid cache option: %s", optarg);
                return 1;
            }
            break;
        case 'T':
            qblk_trace_enable(optarg);
            break;
        case 'U': force_share = true; break;
        case 'I': image_opts = true; break;
        default:
            usage(prog);
            return 1;
        }
    }
    if (argc - optind > 1) {
        usage(prog);
        return 1;
    }
    if (format && image_opts) {
        error_report("--image-opts and -f are mutually exclusive");
        return 1;
    }
    if (readonly) {
        flags &= ~BDRV_O_RDWR;
    }
    if (optind < argc) {
        const char *name = argv[optind];
        int ret;

        if (force_share && !readonly) {
            error_report("can't open device %s: force-share=on can only be used with "
                         "read-only images", name);
            return 1;
        }
        if (force_share) {
            flags |= BDRV_O_FORCE_SHARE;
        }
        if (image_opts) {
            GError *err = NULL;

            if (!qblk_opts_parse(opts, name, NULL, &err)) {
                error_report("can't open: %s", err->message);
                g_error_free(err);
                return 1;
            }
            ret = io_open_image(NULL, g_steal_pointer(&opts), flags, true);
        } else {
            if (format) {
                qblk_opts_set(opts, "driver", format);
            }
            ret = io_open_image(name, g_steal_pointer(&opts), flags, false);
        }
        if (ret < 0) {
            return 1;
        }
        io_writethrough = writethrough;
    }

    if (cmds->len == 0) {
        failed = !interactive_loop(prog);
    }
    for (guint i = 0; i < cmds->len && !quit; i++) {
        if (io_run_line(cmds->pdata[i], &quit) < 0) {
            failed = true;
        }
    }
    /* Outstanding aio requests still report before the process ends. */
    if (io_bs && io_close_image() < 0) {
        failed = true;
    }
    g_free(io_open_name);
    g_clear_pointer(&io_open_opts, qblk_opts_free);
    return failed ? 1 : 0;
}
