/* qblk-io's image and control commands: flush, truncate, length, info,
 * map, alloc, open, close, sleep, help, quit, abort, sigraise. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tools/qblk-io/io.h"
#include "util/json.h"
#include "util/cutils.h"
#include "tools/common/report.h"
#include "util/error.h"
#include "util/main-loop.h"

static int usage_fail(const char *name)
{
    io_print_usage(io_find_cmd(name));
    return -1;
}

static const char *cvt(int64_t value, char *buf, size_t size)
{
    qblk_cvtstr((double)value, buf, size);
    return buf;
}

static int flush_f(int argc, char **argv)
{
    int ret = bdrv_flush(io_bs);

    if (ret < 0) {
        printf("flush failed: %s\n", strerror(-ret));
        return -1;
    }
    return 0;
}

static int truncate_f(int argc, char **argv)
{
    PreallocMode prealloc = PREALLOC_MODE_OFF;
    GError *err = NULL;
    int64_t offset;
    int c;

    while ((c = getopt(argc, argv, "m:")) != -1) {
        switch (c) {
        case 'm': {
            int mode = prealloc_mode_parse(optarg);

            if (mode < 0) {
                error_report("Invalid preallocation mode '%s'", optarg);
                return -1;
            }
            prealloc = mode;
            break;
        }
        default:
            return usage_fail("truncate");
        }
    }
    if (optind >= argc) {
        return usage_fail("truncate");
    }
    if (!io_parse_num(argv[optind], &offset)) {
        return -1;
    }
    if (bdrv_truncate(io_bs, offset, false, prealloc, &err) < 0) {
        error_report_err(err);
        return -1;
    }
    return 0;
}

static int length_f(int argc, char **argv)
{
    int64_t len = bdrv_getlength(io_bs);
    char s[64];

    if (len < 0) {
        printf("getlength: %s\n", strerror((int)-len));
        return -1;
    }
    printf("%s\n", cvt(len, s, sizeof(s)));
    return 0;
}

static int info_f(int argc, char **argv)
{
    GVariant *specific;
    BlockDriverInfo bdi;
    char s1[64], s2[64];

    printf("format name: %s\n", bdrv_format_name(io_bs));
    if (bdrv_get_info(io_bs, &bdi) < 0) {
        return -1;
    }
    printf("cluster size: %s\n", cvt(bdi.cluster_size, s1, sizeof(s1)));
    printf("vm state offset: %s\n", cvt(bdi.vm_state_offset, s2, sizeof(s2)));
    specific = bdrv_get_specific_info(io_bs);
    if (specific) {
        QblkJson *info = qblk_json_from_specific_info(specific);

        printf("Format specific information:\n");
        qblk_json_dump_human(stdout, qblk_json_get(info, "data"), 1);
        qblk_json_free(info);
        g_variant_unref(specific);
    }
    return 0;
}

/* Length of the run from offset with one allocation state (top layer). */
static int map_run(int64_t offset, int64_t bytes, int64_t *pnum)
{
    int64_t num;
    int first = bdrv_is_allocated(io_bs, offset, bytes, &num);

    if (first < 0) {
        return first;
    }
    *pnum = num;
    while (num > 0 && *pnum < bytes) {
        int ret = bdrv_is_allocated(io_bs, offset + *pnum, bytes - *pnum, &num);

        if (ret < 0) {
            return ret;
        }
        if (!!ret != !!first || num == 0) {
            break;
        }
        *pnum += num;
    }
    return first;
}

static int map_f(int argc, char **argv)
{
    int64_t len = bdrv_getlength(io_bs), offset = 0;

    if (len < 0) {
        error_report("Failed to query image length: %s", strerror((int)-len));
        return -1;
    }
    while (offset < len) {
        char s1[64], s2[64];
        int64_t num;
        int ret = map_run(offset, len - offset, &num);

        if (ret < 0) {
            error_report("Failed to get allocation status: %s", strerror(-ret));
            return -1;
        }
        if (num == 0) {
            error_report("Unexpected end of image");
            return -1;
        }
        printf("%s (0x%llx) bytes %s at offset %s (0x%llx)\n", cvt(num, s1, sizeof(s1)),
               (unsigned long long)num, ret ? "    allocated" : "not allocated",
               cvt(offset, s2, sizeof(s2)), (unsigned long long)offset);
        offset += num;
    }
    return 0;
}

static int alloc_f(int argc, char **argv)
{
    int64_t offset, count = 512, remaining, done = 0, sum = 0;
    char s[64];

    if (!io_parse_num(argv[1], &offset)) {
        return -1;
    }
    if (argc == 3 && !io_parse_num(argv[2], &count)) {
        return -1;
    }
    remaining = count;
    while (remaining > 0) {
        int64_t num;
        int ret = bdrv_is_allocated(io_bs, offset + done, remaining, &num);

        if (ret < 0) {
            printf("is_allocated failed: %s\n", strerror(-ret));
            return -1;
        }
        if (num == 0) {
            /* The end of the image cuts the range. */
            count -= remaining;
            break;
        }
        if (ret) {
            sum += num;
        }
        done += num;
        remaining -= num;
    }
    printf("%lld/%lld bytes allocated at offset %s\n", (long long)sum, (long long)count,
           cvt(offset, s, sizeof(s)));
    return 0;
}

static int open_f(int argc, char **argv)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    int flags = BDRV_O_RDWR | BDRV_O_UNMAP;
    bool readonly = false, force_share = false, writethrough = false;
    GError *err = NULL;
    int c;

    while ((c = getopt(argc, argv, "snCro:kt:d:i:U")) != -1) {
        switch (c) {
        case 's': flags |= BDRV_O_SNAPSHOT; break;
        case 'n':
            flags |= BDRV_O_NOCACHE;
            writethrough = false;
            break;
        case 'C': flags |= BDRV_O_COPY_ON_READ; break;
        case 'r': readonly = true; break;
        case 'o':
            if (!qblk_opts_parse(opts, optarg, NULL, &err)) {
                error_report_err(err);
                return -1;
            }
            break;
        case 'k': qblk_opts_set(opts, "file.aio", "native"); break;
        case 't':
            if (!bdrv_parse_cache_mode(optarg, &flags, &writethrough)) {
                error_report("Invalid cache option: %s", optarg);
                return -1;
            }
            break;
        case 'd':
            if (!io_parse_discard(optarg, &flags)) {
                error_report("Invalid discard option: %s", optarg);
                return -1;
            }
            break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return -1;
            }
            qblk_opts_set(opts, "file.aio", optarg);
            break;
        case 'U': force_share = true; break;
        default:
            return usage_fail("open");
        }
    }
    if (io_bs) {
        error_report("file open already, try 'help close'");
        return -1;
    }
    if (readonly) {
        flags &= ~BDRV_O_RDWR;
    }
    if (force_share && !readonly) {
        error_report("can't open device %s: force-share=on can only be used with "
                     "read-only images", optind < argc ? argv[optind] : "");
        return -1;
    }
    if (force_share) {
        flags |= BDRV_O_FORCE_SHARE;
    }
    if (optind == argc - 1) {
        return io_open_image(argv[optind], g_steal_pointer(&opts), flags, false) < 0
               ? -1 : (io_writethrough = writethrough, 0);
    }
    if (optind == argc && qblk_opts_count(opts) > 0) {
        return io_open_image(NULL, g_steal_pointer(&opts), flags, true) < 0
               ? -1 : (io_writethrough = writethrough, 0);
    }
    return usage_fail("open");
}

static int close_f(int argc, char **argv)
{
    return io_close_image() < 0 ? -1 : 0;
}

static void sleep_done(void *opaque)
{
    *(bool *)opaque = true;
}

static int sleep_f(int argc, char **argv)
{
    char *end;
    long ms = strtol(argv[1], &end, 0);
    bool done = false;

    if (*end || ms < 0) {
        printf("%s is not a valid number\n", argv[1]);
        return -1;
    }
    /* The loop keeps running: outstanding aio requests complete meanwhile. */
    qblk_timer_add_ns(ms * 1000000LL, sleep_done, &done);
    while (!done) {
        qblk_loop_iterate(true);
    }
    return 0;
}

static int quit_f(int argc, char **argv)
{
    return 0;   /* handled by the dispatcher */
}

static void help_oneline(const char *name, const IoCmd *ct)
{
    printf("%s ", name);
    if (ct->args) {
        printf("%s ", ct->args);
    }
    printf("-- %s\n", ct->oneline);
}

static void help_list_one(const IoCmd *ct)
{
    help_oneline(ct->name, ct);
}

static int help_f(int argc, char **argv)
{
    const IoCmd *ct;

    if (argc == 1) {
        io_for_each_cmd(help_list_one);
        printf("\nUse 'help commandname' for extended help.\n");
        return 0;
    }
    ct = io_find_cmd(argv[1]);
    if (!ct) {
        printf("command %s not found\n", argv[1]);
        return -1;
    }
    help_oneline(argv[1], ct);
    if (ct->help) {
        fputs(ct->help, stdout);
    }
    return 0;
}

static int abort_f(int argc, char **argv)
{
    abort();
}

static int sigraise_f(int argc, char **argv)
{
    int64_t sig;

    if (!io_parse_num(argv[1], &sig)) {
        return -1;
    }
    if (sig > NSIG) {
        printf("signal argument '%s' is too large to be a valid signal\n", argv[1]);
        return -1;
    }
    /* The signal may end the process: what was printed must not be lost. */
    fflush(stdout);
    fflush(stderr);
    raise((int)sig);
    return 0;
}

/* No driver here has blkdebug's breakpoints: these answer as QEMU does
 * for such a driver (QEMU's wait_break would wait forever; ours fails). */
static int break_f(int argc, char **argv)
{
    printf("Could not set breakpoint: %s\n", strerror(ENOTSUP));
    return -1;
}

static int remove_break_f(int argc, char **argv)
{
    printf("Could not remove breakpoint %s: %s\n", argv[1], strerror(ENOTSUP));
    return -1;
}

static int resume_f(int argc, char **argv)
{
    printf("Could not resume request: %s\n", strerror(ENOTSUP));
    return -1;
}

static int wait_break_f(int argc, char **argv)
{
    printf("Could not wait for breakpoint %s: %s\n", argv[1], strerror(ENOTSUP));
    return -1;
}

/* Reopens by closing and opening again with the first open's name and
 * options; only the read-only flag and the cache mode can change. */
/* The node stays open: the tool's permissions shrink before a switch to
 * read-only and grow after one to read-write, as qemu-io's do. */
static int reopen_image(int flags)
{
    uint64_t perm, shared, old_perm = bdrv_child_perm(io_user);
    uint64_t old_shared = bdrv_child_shared(io_user);
    GError *err = NULL;

    io_user_perm(flags, &perm, &shared);
    bdrv_drain(io_bs);
    if (!(perm & BLK_PERM_WRITE) && !bdrv_user_set_perm(io_user, perm, shared, &err)) {
        error_report_err(err);
        return -1;
    }
    if (bdrv_reopen(io_bs, flags, &err) < 0) {
        bdrv_user_set_perm(io_user, old_perm, old_shared, NULL);
        error_report_err(err);
        return -1;
    }
    if ((perm & BLK_PERM_WRITE) && !bdrv_user_set_perm(io_user, perm, shared, &err)) {
        error_report_err(err);
        return -1;
    }
    return 0;
}

static int reopen_f(int argc, char **argv)
{
    int flags = io_open_flags, c;
    bool writethrough = io_writethrough, ro = false, rw = false;
    g_autoptr(QblkOpts) opts = NULL;
    GError *err = NULL;

    while ((c = getopt(argc, argv, "c:o:rw")) != -1) {
        switch (c) {
        case 'c':
            if (!bdrv_parse_cache_mode(optarg, &flags, &writethrough)) {
                error_report("Invalid cache option: %s", optarg);
                return -1;
            }
            break;
        case 'o':
            opts = qblk_opts_new();
            if (!qblk_opts_parse(opts, optarg, NULL, &err)) {
                error_report_err(err);
                return -1;
            }
            if (qblk_opts_count(opts) > 0) {
                guint n;
                g_autofree const char **keys = qblk_opts_keys(opts, &n);

                error_report("Cannot change the option '%s'", keys[0]);
                return -1;
            }
            break;
        case 'r':
            if (rw) {
                error_report("Only one -r/-w option may be given");
                return -1;
            }
            ro = true;
            break;
        case 'w':
            if (ro) {
                error_report("Only one -r/-w option may be given");
                return -1;
            }
            rw = true;
            break;
        default:
            return usage_fail("reopen");
        }
    }
    if (optind != argc) {
        return usage_fail("reopen");
    }
    if (ro) {
        flags &= ~BDRV_O_RDWR;
    } else if (rw) {
        /* As qemu-io: -U does not carry over to a read-write reopen. */
        flags = (flags | BDRV_O_RDWR) & ~BDRV_O_FORCE_SHARE;
    }
    if (reopen_image(flags) < 0) {
        return -1;
    }
    io_open_flags = flags;
    io_writethrough = writethrough;
    return 0;
}

static const char reopen_help[] =
"\n"
" Changes the open options of an already opened image\n"
"\n"
" Example:\n"
" 'reopen -o lazy-refcounts=on' - activates lazy refcount writeback on a qcow2 image\n"
"\n"
" -r, -- Reopen the image read-only\n"
" -w, -- Reopen the image read-write\n"
" -c, -- Change the cache mode to the given value\n"
" -o, -- Changes block driver options (cf. 'open' command)\n"
"\n";

static const char open_help[] =
"\n"
" opens a new file in the requested mode\n"
"\n"
" Example:\n"
" 'open -n -o driver=raw /tmp/data' - opens raw data file read-write, uncached\n"
"\n"
" Opens a file for subsequent use by all of the other qemu-io commands.\n"
" -r, -- open file read-only\n"
" -s, -- use snapshot file\n"
" -C, -- use copy-on-read\n"
" -n, -- disable host cache, short for -t none\n"
" -U, -- force shared permissions\n"
" -k, -- use kernel AIO implementation (Linux only, prefer use of -i)\n"
" -i, -- use AIO mode (threads, native or io_uring)\n"
" -t, -- use the given cache mode for the image\n"
" -d, -- use the given discard mode for the image\n"
" -o, -- options to be given to the block driver\n";

static const char sigraise_help[] =
"\n"
" raises the given signal\n"
"\n"
" Example:\n"
" 'sigraise 15' - raises SIGTERM\n"
"\n"
" Invokes raise(signal), where \"signal\" is the mandatory integer argument\n"
" given to sigraise.\n"
"\n";

const IoCmd io_misc_cmds[] = {
    { "flush", "f", flush_f, 0, 0, false, false, NULL,
      "flush all in-core file state to disk", NULL },
    { "truncate", "t", truncate_f, 1, 3, false, true, "[-m prealloc_mode] off",
      "truncates the current file at the given offset", NULL },
    { "length", "l", length_f, 0, 0, false, false, NULL,
      "gets the length of the current file", NULL },
    { "info", "i", info_f, 0, 0, false, false, NULL,
      "prints information about the current file", NULL },
    { "map", NULL, map_f, 0, 0, false, false, "",
      "prints the allocated areas of a file", NULL },
    { "alloc", "a", alloc_f, 1, 2, false, false, "offset [count]",
      "checks if offset is allocated in the file", NULL },
    { "open", "o", open_f, 1, -1, true, false,
      "[-rsCnkU] [-t cache] [-d discard] [-o options] [path]",
      "open the file specified by path", open_help },
    { "close", "c", close_f, 0, 0, false, false, NULL,
      "close the current open file", NULL },
    { "sleep", NULL, sleep_f, 1, 1, true, false, NULL,
      "waits for the given value in milliseconds", NULL },
    { "quit", "q", quit_f, 0, -1, true, false, NULL, "exit the program", NULL },
    { "help", "?", help_f, 0, 1, true, false, "[command]",
      "help for one or all commands", NULL },
    { "abort", NULL, abort_f, 0, 0, true, false, NULL,
      "simulate a program crash using abort(3)", NULL },
    { "sigraise", NULL, sigraise_f, 1, 1, true, false, "signal",
      "raises a signal", sigraise_help },
    { "break", NULL, break_f, 2, 2, false, false, "event tag",
      "sets a breakpoint on event and tags the stopped request as tag", NULL },
    { "remove_break", NULL, remove_break_f, 1, 1, false, false, "tag",
      "remove a breakpoint by tag", NULL },
    { "resume", NULL, resume_f, 1, 1, false, false, "tag",
      "resumes the request tagged as tag", NULL },
    { "wait_break", NULL, wait_break_f, 1, 1, false, false, "tag",
      "waits for the suspension of a request", NULL },
    { "reopen", NULL, reopen_f, 0, -1, false, false, "[(-r|-w)] [-c cache] [-o options]",
      "reopens an image with new options", reopen_help },
    { NULL },
};
