/* qblk-img: the image utility. It takes qemu-img's command lines and prints
 * qemu-img 7.2's output byte for byte (with its own program name).
 *
 * main() parses the global options (-h, -V, -T), looks the command up in
 * the one command table below and runs its handler, which lives in
 * tools/img-<command>.c. A command that is not in the table is "not found",
 * exactly as qemu-img says for names it does not know. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "qblk/block.h"
#include "trace/control.h"
#include "util/error.h"
#include "qblk-img.h"
#include "tools/common/events.h"

#ifndef QBLK_VERSION
#define QBLK_VERSION "0.1.0"
#endif

#define IMG_VERSION_TEXT \
    "qblk-img version " QBLK_VERSION "\n" \
    "Copyright (c) 2026 the qblk developers\n"

typedef struct ImgCmd {
    const char *name;
    int (*handler)(int argc, char **argv);
    const char *syntax;            /* the line under "Command syntax:" */
} ImgCmd;

/* The command table, in qemu-img's help order. */
static const ImgCmd img_cmds[] = {
    { "amend", img_amend,
      "amend [--image-opts] [-p] [-q] [-f fmt] [-t cache] [--force] -o options filename" },
    { "bench", img_bench,
      "bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval] [-i aio] [-n] "
      "[--no-drain] [-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] "
      "[-t cache] [-w] [-U] filename" },
    { "bitmap", img_bitmap,
      "bitmap (--merge SOURCE | --add | --remove | --clear | --enable | --disable)... "
      "[-b source_file [-F source_fmt]] [-g granularity] [--image-opts | -f fmt] "
      "filename bitmap" },
    { "commit", img_commit,
      "commit [--image-opts] [-q] [-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename" },
    { "compare", img_compare,
      "compare [--image-opts] [-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] "
      "filename1 filename2" },
    { "convert", img_convert,
      "convert [--image-opts] [--target-image-opts] [--target-is-zero] [-U] [-c] [-p] [-q] [-n] [-f fmt] "
      "[-O output_fmt] [-B backing_file [-F backing_fmt]] [-o options] [-S sparse_size] "
      "[-m num_coroutines] [-W] filename [filename2 [...]] output_filename" },
    { "create", img_create,
      "create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]" },
    { "check", img_check,
      "check [--object objectdef] [--image-opts] [-q] [-p] [-f fmt] [--output=ofmt] "
      "[-r [leaks | all]] [-T src_cache] [-U] filename" },
    { "dd", img_dd,
      "dd [--image-opts] [-U] [-f fmt] [-O output_fmt] [bs=block_size] [count=blocks] "
      "[skip=blocks] if=input of=output" },
    { "info", img_info,
      "info [--image-opts] [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename" },
    { "map", img_map,
      "map [--object objectdef] [--image-opts] [-f fmt] [--start-offset=offset] "
      "[--max-length=len] [--output=ofmt] [-U] filename" },
    { "measure", img_measure,
      "measure [--output=ofmt] [-O output_fmt] [-o options] [--size N | [--image-opts] "
      "[-f fmt] filename]" },
    { "snapshot", img_snapshot,
      "snapshot [--image-opts] [-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename" },
    { "rebase", img_rebase,
      "rebase [--image-opts] [-U] [-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] "
      "-b backing_file [-F backing_fmt] filename" },
    { "resize", img_resize,
      "resize [--image-opts] [-f fmt] [--preallocation=prealloc] [-q] [--shrink] "
      "filename [+ | -]size" },
};

int img_help(void)
{
    const char *const *formats = bdrv_format_names();

    printf(IMG_VERSION_TEXT
           "usage: qblk-img [standard options] command [command options]\n"
           "qblk disk image utility\n"
           "\n"
           "    '-h', '--help'       display this help and exit\n"
           "    '-V', '--version'    output version information and exit\n"
           "    '-T', '--trace'      [enable=]<pattern>\n"
           "                         enable the matching trace points ('list' names them)\n"
           "\n"
           "Command syntax:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(img_cmds); i++) {
        printf("  %s\n", img_cmds[i].syntax);
    }
    printf("\n"
           "Command parameters:\n"
           "  'filename' is a disk image filename\n"
           "  'fmt' is the disk image format; without it the format is probed\n"
           "  'size' is the disk image size in bytes, optionally with one of the\n"
           "    suffixes 'k' or 'K' (kilobyte, 1024), 'M' (1024k), 'G' (1024M),\n"
           "    'T' (1024G), 'P' (1024T) or 'E' (1024P); 'b' means bytes\n"
           "  'options' is a comma-separated list of name=value options of the\n"
           "    format; '-o help' lists them\n"
           "  'backing_file' and 'backing_fmt' name the base image and its format\n"
           "  'ofmt' is the output format: 'human' (the default) or 'json'\n"
           "  '-u' creates the image without opening its backing file (the size\n"
           "       must then be given)\n"
           "  '-q' quiet mode: print nothing but errors\n"
           "  '-U' is accepted for compatibility (qblk takes no image locks)\n"
           "  '--backing-chain' describes every image of the backing chain, top first\n"
           "  '--image-opts' treats 'filename' as an option string such as\n"
           "       driver=raw,file.filename=disk.img\n"
           "  '-h' with or without a command shows this help and lists the supported formats\n"
           "\n"
           "Supported formats:");
    for (size_t i = 0; formats[i]; i++) {
        printf(" %s", formats[i]);
    }
    printf("\n\n"
           "qblk reads and writes the same images as QEMU and takes qemu-img's command lines.\n");
    return 0;
}

int img_usage_error(const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    error_report("%s", msg);
    fprintf(stderr, "Try '%s --help' for more information\n", qblk_progname());
    return 1;
}

int img_missing_argument(const char *arg)
{
    return img_usage_error("missing argument for option '%s'", arg);
}

int img_unrecognized_option(const char *arg)
{
    return img_usage_error("unrecognized option '%s'", arg);
}

bool img_force_share;

BlockDriverState *img_open(const char *filename, const char *fmt, bool image_opts, int flags)
{
    return img_open_opts(filename, fmt, image_opts, flags, NULL);
}

BlockDriverState *img_open_opts(const char *filename, const char *fmt, bool image_opts,
                                int flags, QblkOpts *extra)
{
    bool probed_raw = false;
    QblkOpts *opts = extra ? extra : qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;
    uint64_t perm, shared;

    /* qemu-img refuses -U for a read-write open; qblk's commands have
     * always accepted and ignored it there, so they still do. */
    if (img_force_share && !(flags & BDRV_O_RDWR)) {
        flags |= BDRV_O_FORCE_SHARE;
    }
    if (image_opts) {
        if (fmt) {
            qblk_opts_free(opts);
            error_report("--image-opts and --format are mutually exclusive");
            return NULL;
        }
        if (!qblk_opts_parse(opts, filename, NULL, &err)) {
            qblk_opts_free(opts);
            error_report_err(err);
            return NULL;
        }
        bs = bdrv_open(NULL, opts, flags, NULL, &err);
    } else {
        if (fmt) {
            qblk_opts_set(opts, "driver", fmt);
        }
        bs = bdrv_open(filename, opts, flags, &probed_raw, &err);
    }
    bdrv_user_perm_for_flags(flags, &perm, &shared);
    if (bs && !bdrv_attach_user(bs, "qblk-img", perm, shared, &err)) {
        bdrv_unref(bs);
        bs = NULL;
    }
    if (!bs) {
        error_report("Could not open '%s': %s", filename, err->message);
        g_error_free(err);
    } else if (probed_raw && (flags & BDRV_O_RDWR)) {
        fprintf(stderr,
                "WARNING: Image format was not specified for '%s' and probing guessed raw.\n"
                "         Automatically detecting the format is dangerous for raw images, "
                "write operations on block 0 will be restricted.\n"
                "         Specify the 'raw' format explicitly to remove the restrictions.\n",
                filename);
    }
    return bs;
}

/* qemu-img drops the error of the close's flush (it prints what qcow2
 * says at best and exits 0) although the command's writes may not be in
 * the image then: every writer closes through here and fails instead. */
bool img_close(BlockDriverState *bs, const char *name)
{
    int ret = bdrv_unref_flush(bs);

    if (ret < 0) {
        error_report("error while flushing %s: %s", name, strerror(-ret));
        return false;
    }
    return true;
}

BlockDriverState *img_find_in_chain(BlockDriverState *chain, const char *file)
{
    struct stat want, have;

    if (stat(file, &want) < 0) {
        return NULL;
    }
    for (BlockDriverState *p = chain; p; p = bdrv_backing(p)) {
        if (stat(bdrv_filename(p), &have) == 0 && have.st_dev == want.st_dev &&
            have.st_ino == want.st_ino) {
            return p;
        }
    }
    return NULL;
}

bool img_parse_output(const char *output, bool *json)
{
    *json = output && !strcmp(output, "json");
    if (output && !*json && strcmp(output, "human")) {
        error_report("--output must be used with human or json as argument.");
        return false;
    }
    return true;
}

int img_common_option(int c, char **argv)
{
    if (c == ':') {
        return img_missing_argument(argv[optind - 1]);
    }
    if (c == 'h') {
        return img_help();
    }
    return img_unrecognized_option(argv[optind - 1]);
}

/* -T: enables trace points now. "list"/"help" print the names and end the
 * program, as qemu-img's "-T help" does. Returns true when it did that. */
static bool trace_option(const char *arg)
{
    const char *pattern = g_str_has_prefix(arg, "enable=") ? arg + strlen("enable=") : arg;

    qblk_trace_enable(arg);   /* prints its own message when nothing matches */
    return strcmp(pattern, "list") == 0 || strcmp(pattern, "help") == 0;
}

int main(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "trace", required_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmdname;
    int c;

    qblk_set_progname(argv[0]);
    /* The library reports corruption and warnings to us; we print it as QEMU does. */
    bdrv_set_corruption_handler(tools_print_corruption, NULL);
    qblk_set_warn_handler(tools_print_warning, NULL);
    if (argc < 2) {
        return img_usage_error("Not enough arguments");
    }
    /* '+': the options end at the command name; ':': we report errors. */
    while ((c = getopt_long(argc, argv, "+:hVT:", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'V':
            printf(IMG_VERSION_TEXT);
            return 0;
        case 'T':
            if (trace_option(optarg)) {
                return 0;
            }
            break;
        }
    }
    if (optind >= argc) {
        return 0;             /* only global options: qemu-img is silent too */
    }

    cmdname = argv[optind];
    argc -= optind;
    argv += optind;
    optind = 0;               /* glibc: restart scanning from argv[1] */

    for (size_t i = 0; i < G_N_ELEMENTS(img_cmds); i++) {
        if (strcmp(cmdname, img_cmds[i].name) == 0) {
            int ret = img_cmds[i].handler(argc, argv);

            fflush(stdout);
            return ret;
        }
    }
    return img_usage_error("Command not found: %s", cmdname);
}
