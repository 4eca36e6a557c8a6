/* qblk-img bench: a fixed number of equal reads or writes, `depth` in
 * flight, at offsets stepping through the image (wrapping at its end),
 * optionally with a flush every N requests; prints the run time. */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "qblk-img.h"
#include "util/error.h"
#include "util/iov.h"
#include "util/main-loop.h"

enum { OPTION_PATTERN = 256, OPTION_FLUSH_INTERVAL, OPTION_NO_DRAIN, OPTION_IMAGE_OPTS };

typedef struct Bench Bench;

typedef struct BenchSlot {
    Bench *b;
    void *buf;
    QIOVector qiov;
} BenchSlot;

struct Bench {
    BlockDriverState *bs;
    bool write, drain;
    int64_t count, submitted, done;
    int64_t offset, step, bufsize, image_size;
    int64_t flush_interval, flushes_sent;
    int depth, in_flight;
    bool flushing;                 /* a draining flush holds new requests back */
    int ret;
    BenchSlot *slots, **free_slots;
    int nb_slots, nb_free;
};

static void bench_submit(Bench *b);

static void request_done(void *opaque, int ret)
{
    BenchSlot *slot = opaque;
    Bench *b = slot->b;

    b->in_flight--;
    b->done++;
    b->free_slots[b->nb_free++] = slot;
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    bench_submit(b);
}

static void flush_done(void *opaque, int ret)
{
    Bench *b = opaque;

    b->in_flight--;
    b->flushing = false;
    if (ret < 0 && b->ret == 0) {
        b->ret = ret;
    }
    bench_submit(b);
}

/* Fills the queue up to depth; a flush is due after every flush_interval
 * requests (with draining: once those requests have all completed). */
static void bench_submit(Bench *b)
{
    BenchSlot *slot;

    while (b->ret == 0 && !b->flushing && b->submitted < b->count) {
        if (b->flush_interval && b->submitted / b->flush_interval > b->flushes_sent) {
            if (b->drain && b->in_flight) {
                return;         /* the last completion comes back here */
            }
            b->flushes_sent++;
            b->flushing = b->drain;
            b->in_flight++;
            bdrv_aio_submit(b->bs, BDRV_AIO_FLUSH, 0, 0, NULL, 0, flush_done, b);
            continue;
        }
        if (!b->nb_free) {
            return;
        }
        slot = b->free_slots[--b->nb_free];
        b->in_flight++;
        b->submitted++;
        bdrv_aio_submit(b->bs, b->write ? BDRV_AIO_WRITE : BDRV_AIO_READ, b->offset,
                        b->bufsize, &slot->qiov, 0, request_done, slot);
        b->offset += b->step;
        if (b->image_size) {
            b->offset %= b->image_size;
        }
    }
}

/* qemu_strtoul-style: a whole-string number in [min, max], or -1. */
static int64_t parse_int(const char *arg, int64_t min, int64_t max)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(arg, &end, 0);
    if (errno || end == arg || *end || v < min || v > max) {
        return -1;
    }
    return v;
}

static bool alloc_slots(Bench *b, int pattern)
{
    /* Never more buffers than requests (qemu-img allocates depth of them,
     * and a large depth times a large size overflows there). */
    int n = (int)MIN((int64_t)b->depth, MAX(b->count, 1));

    b->slots = g_new0(BenchSlot, n);
    b->free_slots = g_new0(BenchSlot *, n);
    for (int i = 0; i < n; i++) {
        b->nb_slots++;
        if (posix_memalign(&b->slots[i].buf, 4096, MAX(b->bufsize, 1))) {
            b->slots[i].buf = NULL;
            error_report("Could not allocate %d buffers of %" PRId64 " bytes", n, b->bufsize);
            return false;
        }
        memset(b->slots[i].buf, pattern, b->bufsize);
        qiov_init_buf(&b->slots[i].qiov, b->slots[i].buf, b->bufsize);
        b->slots[i].b = b;
        b->free_slots[b->nb_free++] = &b->slots[i];
    }
    return true;
}

static void free_slots(Bench *b)
{
    for (int i = 0; i < b->nb_slots; i++) {
        free(b->slots[i].buf);
    }
    g_free(b->slots);
    g_free(b->free_slots);
}

int img_bench(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "flush-interval", required_argument, NULL, OPTION_FLUSH_INTERVAL },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "pattern", required_argument, NULL, OPTION_PATTERN },
        { "no-drain", no_argument, NULL, OPTION_NO_DRAIN },
        { NULL, 0, NULL, 0 },
    };
    Bench b = { .count = 75000, .depth = 64, .bufsize = 4096, .step = -1, .drain = true };
    const char *fmt = NULL, *aio = NULL;
    bool image_opts = false, native = false, writethrough;
    int flags = 0, pattern = 0, c;
    QblkOpts *extra;
    int64_t start;

    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'c':
            b.count = parse_int(optarg, 0, INT_MAX);
            if (b.count < 0) {
                error_report("Invalid request count specified");
                return 1;
            }
            break;
        case 'd':
            /* Depth 0 would send nothing and wait forever. */
            b.depth = (int)parse_int(optarg, 1, INT_MAX);
            if (b.depth < 0) {
                error_report("Invalid queue depth specified");
                return 1;
            }
            break;
        case 'f': fmt = optarg; break;
        case 'n': native = true; break;
        case 'i':
            if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
                strcmp(optarg, "io_uring")) {
                error_report("Invalid aio option: %s", optarg);
                return 1;
            }
            aio = optarg;
            break;
        case 'o':
            b.offset = img_cvtnum("offset", optarg, INT64_MAX);
            if (b.offset < 0) {
                return 1;
            }
            break;
        case 'q': break;    /* qemu-img bench prints its lines even with -q */
        case 's':
            b.bufsize = img_cvtnum("buffer size", optarg, INT_MAX);
            if (b.bufsize < 0) {
                return 1;
            }
            break;
        case 'S':
            b.step = img_cvtnum("step_size", optarg, INT_MAX);
            if (b.step < 0) {
                return 1;
            }
            break;
        case 't':
            if (!bdrv_parse_cache_mode(optarg, &flags, &writethrough)) {
                error_report("Invalid cache mode");
                return 1;
            }
            break;
        case 'w': b.write = true; break;
        case 'U': img_force_share = true; break;
        case OPTION_PATTERN:
            pattern = (int)parse_int(optarg, 0, 0xff);
            if (pattern < 0) {
                error_report("Invalid pattern byte specified");
                return 1;
            }
            break;
        case OPTION_FLUSH_INTERVAL:
            b.flush_interval = parse_int(optarg, 0, INT_MAX);
            if (b.flush_interval < 0) {
                error_report("Invalid flush interval specified");
                return 1;
            }
            break;
        case OPTION_NO_DRAIN: b.drain = false; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    if (b.step <= 0) {
        b.step = b.bufsize;     /* -S 0 means the default too */
    }
    if (b.flush_interval && b.flush_interval < b.depth) {
        error_report("Flush interval can't be smaller than depth");
        return 1;
    }
    if (b.flush_interval && !b.write) {
        error_report("--flush-interval is only available in write tests");
        return 1;
    }
    extra = qblk_opts_new();
    if (aio || native) {
        qblk_opts_set(extra, "file.aio", aio ? aio : "native");
    }
    b.bs = img_open_opts(argv[optind], fmt, image_opts, flags | (b.write ? BDRV_O_RDWR : 0),
                         extra);
    if (!b.bs) {
        return 1;
    }
    b.image_size = bdrv_getlength(b.bs);
    if (b.image_size < 0) {
        error_report("Could not get the image size: %s", strerror((int)-b.image_size));
        bdrv_unref(b.bs);
        return 1;
    }
    if (!alloc_slots(&b, pattern)) {
        free_slots(&b);
        bdrv_unref(b.bs);
        return 1;
    }
    printf("Sending %" PRId64 " %s requests, %" PRId64 " bytes each, %d in parallel "
           "(starting at offset %" PRId64 ", step size %" PRId64 ")\n", b.count,
           b.write ? "write" : "read", b.bufsize, b.depth, b.offset, b.step);
    if (b.flush_interval) {
        printf("Sending flush every %" PRId64 " requests\n", b.flush_interval);
    }
    start = g_get_monotonic_time();
    bench_submit(&b);
    while (b.in_flight) {
        qblk_loop_iterate(true);
    }
    if (b.ret < 0) {
        error_report("Failed request: %s", strerror(-b.ret));
    } else {
        printf("Run completed in %3.3f seconds.\n", (g_get_monotonic_time() - start) / 1e6);
    }
    free_slots(&b);
    /* -w: the writes reach the image in this close (read-only: nothing). */
    if (!img_close(b.bs, argv[optind])) {
        return 1;
    }
    return b.ret < 0;
}
