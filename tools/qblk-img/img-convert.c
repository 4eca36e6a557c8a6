/* qblk-img convert: copies the guest contents of one or more images (joined
 * end to end) into a new or existing image. Block status skips what reads
 * as zeroes without reading it; read data is scanned with buffer_is_zero()
 * at the -S granularity so zeroes become holes or zero clusters, never
 * data; -B leaves out what the backing image already holds; -c compresses.
 * A target this command created is removed again when the copy fails. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/bigbuf.h"
#include "util/bufferiszero.h"
#include "util/cutils.h"
#include "util/coroutine.h"
#include "util/error.h"
#include "util/main-loop.h"

enum { OPTION_IMAGE_OPTS = 256, OPTION_TARGET_IS_ZERO, OPTION_TARGET_IMAGE_OPTS };

#define CONVERT_CHUNK (2 * 1024 * 1024)
#define MAX_SPARSE (16 * 1024 * 1024)

typedef struct {
    BlockDriverState **src;
    int64_t *src_len;
    int nb_src;
    BlockDriverState *dst;
    BlockDriverState *backing;      /* -B image, compared against */
    int64_t total;
    int64_t sparse;                 /* -S: 0 disables zero detection */
    bool compress, target_zero, show_progress;
    ImgProgress progress;
    int64_t cluster;                /* target cluster size (compression unit) */
    /* Workers claim the next piece under claim_lock (block status decides
     * its extent), read it in parallel, and write in claim order unless
     * out_of_order (-W). */
    int64_t *src_base;              /* target offset of each source */
    CoMutex claim_lock;
    int cur_src;
    int64_t cur_off, copied;
    uint64_t next_seq, write_seq;
    CoQueue write_turn;
    bool out_of_order;
    int running, ret;
    /* The last block status answer, [status_start, status_end) of source
     * status_src: a run longer than one piece is asked about once. */
    int status_src, status;
    int64_t status_start, status_end;
} Convert;

/* Writes [off, off+n) of the target from buf, which holds that range of
 * the source: runs of all-zero granules (-S, or the cluster size with -c)
 * become zero writes, or nothing where the target already reads zeroes. */
static int coroutine_fn write_range(Convert *c, int64_t off, int64_t n, const uint8_t *buf)
{
    int64_t gran = c->compress ? c->cluster : c->sparse, done = 0;

    while (done < n) {
        bool zero = false;
        int64_t run = n - done;
        int ret;

        /* Neighbouring granules of the same kind go in one request. */
        if (c->sparse || c->compress) {
            run = buffer_zero_run(buf + done, n - done, gran, done, &zero);
        }
        if (zero) {
            ret = c->target_zero ? 0 : bdrv_co_pwrite_zeroes(c->dst, off + done, run, 0);
        } else {
            /* Compression stores whole clusters only (the last may end at
             * the image's end); anything else is written plainly. */
            bool whole = (off + done) % c->cluster == 0 &&
                         ((off + done + run) % c->cluster == 0 || off + done + run == c->total);

            ret = bdrv_co_pwrite(c->dst, off + done, run, buf + done,
                                 c->compress && whole ? BDRV_REQ_WRITE_COMPRESSED : 0);
        }
        if (ret < 0) {
            error_report("error while writing at byte %" PRId64 ": %s", off + done,
                         strerror(-ret));
            return ret;
        }
        done += run;
    }
    return 0;
}

/* With -B: writes only the clusters of [off, off+n) whose contents differ
 * from the backing image's (which reads zeroes past its end). */
static int coroutine_fn write_differing(Convert *c, int64_t off, int64_t n, const uint8_t *buf,
                                        uint8_t *bbuf)
{
    int64_t blen = bdrv_getlength(c->backing), gran = MAX(c->cluster, 512);
    int64_t avail = blen > off ? MIN(n, blen - off) : 0;
    int ret;

    memset(bbuf, 0, n);
    ret = avail ? bdrv_co_pread(c->backing, off, avail, bbuf, 0) : 0;
    if (ret < 0) {
        error_report("error while reading the backing file at byte %" PRId64 ": %s", off,
                     strerror(-ret));
        return ret;
    }
    for (int64_t d = 0, len; d < n && ret == 0; d += len) {
        len = MIN(gran - (off + d) % gran, n - d);

        if (memcmp(buf + d, bbuf + d, len)) {
            /* Zeroes over non-zero backing data must be written as zeroes. */
            ret = buffer_is_zero(buf + d, len)
                  ? bdrv_co_pwrite_zeroes(c->dst, off + d, len, 0)
                  : bdrv_co_pwrite(c->dst, off + d, len, buf + d,
                                   c->compress && len == c->cluster ? BDRV_REQ_WRITE_COMPRESSED
                                                                    : 0);
        }
    }
    return ret;
}

/* The next piece of the source at off: as block status reports it, at
 * most one buffer, and (with -c) ending on a target cluster boundary. */
static int64_t piece_len(Convert *c, int64_t dst_off, int64_t off, int64_t len, int64_t n)
{
    int64_t chunk = MIN(n, CONVERT_CHUNK);

    if (!c->compress && n > CONVERT_CHUNK) {
        /* Cut by the buffer, not by block status: end on a target cluster
         * boundary. A run starting inside a cluster otherwise cuts every
         * piece after it inside one too, and each such cluster is written
         * twice (its zero padding when allocated, then the next piece's
         * data over it): 475 extra writes for an ext4 image into QED. */
        int64_t end = dst_off + off + chunk;

        end -= end % c->cluster;
        if (end > dst_off + off) {
            chunk = end - (dst_off + off);
        }
    }

    if (c->compress) {
        int64_t end = MIN(len, off + CONVERT_CHUNK), abs_end = dst_off + end;

        if (end < len) {
            abs_end -= abs_end % c->cluster;
        }
        if (abs_end <= dst_off + off) {
            abs_end = MIN(dst_off + len, dst_off + off + c->cluster - (dst_off + off) % c->cluster);
        }
        chunk = abs_end - (dst_off + off);
    }
    return chunk;
}

typedef struct {
    BlockDriverState *src;
    int64_t src_off, dst_off, len;
    bool zero;                      /* reads as zeroes: nothing to read */
    uint64_t seq;
} Piece;

/* The next piece, or false when everything is claimed (or failed). */
static bool coroutine_fn claim(Convert *c, Piece *p)
{
    bool ok = false;

    qco_mutex_lock(&c->claim_lock);
    while (c->ret == 0 && c->cur_src < c->nb_src) {
        int64_t len = c->src_len[c->cur_src], n;
        int st;

        if (c->cur_off >= len) {
            c->cur_src++;
            c->cur_off = 0;
            continue;
        }
        p->src = c->src[c->cur_src];
        p->src_off = c->cur_off;
        p->dst_off = c->src_base[c->cur_src] + c->cur_off;
        if (c->status_src == c->cur_src && p->src_off >= c->status_start &&
            p->src_off < c->status_end) {
            st = c->status;
            n = c->status_end - p->src_off;
        } else {
            st = bdrv_co_block_status_above(p->src, NULL, p->src_off, len - p->src_off, &n);
            if (st >= 0) {
                c->status_src = c->cur_src;
                c->status = st;
                c->status_start = p->src_off;
                c->status_end = p->src_off + n;
            }
        }
        if (st < 0) {
            error_report("error while reading block status at offset %" PRId64 ": %s",
                         p->src_off, strerror(-st));
            c->ret = st;
            break;
        }
        p->len = piece_len(c, c->src_base[c->cur_src], p->src_off, len, n);
        /* A zero run is one piece however long (no buffer needed), unless
         * compression has to see whole clusters. */
        p->zero = (st & BDRV_BLOCK_ZERO) && !(c->compress && p->len > n);
        if (p->zero && c->sparse && !c->backing && !c->compress) {
            p->len = n;
        }
        p->seq = c->next_seq++;
        c->cur_off += p->len;
        ok = true;
        break;
    }
    qco_mutex_unlock(&c->claim_lock);
    return ok;
}

/* One of the -m parallel workers. The read of a piece overlaps other
 * workers' I/O; its writes wait for their turn unless -W. */
static void coroutine_fn convert_worker(void *opaque)
{
    Convert *c = opaque;
    /* In huge pages: first touching 8 x 2 MiB of small pages costs about
     * a tenth of a second of faults on a virtual machine. */
    uint8_t *buf = qblk_bigbuf_new(CONVERT_CHUNK);
    uint8_t *bbuf = c->backing ? qblk_bigbuf_new(CONVERT_CHUNK) : NULL;
    Piece p;

    while (claim(c, &p)) {
        int ret = 0;

        if (!p.zero) {
            ret = bdrv_co_pread(p.src, p.src_off, p.len, buf, 0);
            if (ret < 0) {
                error_report("error while reading at byte %" PRId64 ": %s", p.src_off,
                             strerror(-ret));
            }
        }
        while (!c->out_of_order && c->write_seq != p.seq) {
            qco_queue_wait(&c->write_turn, NULL);
        }
        if (ret == 0 && c->ret == 0) {
            if (p.zero && c->sparse && !c->backing && !c->compress) {
                /* A zero run of any length, never read. */
                ret = c->target_zero ? 0 : bdrv_co_pwrite_zeroes(c->dst, p.dst_off, p.len, 0);
            } else {
                if (p.zero) {
                    memset(buf, 0, p.len);
                }
                ret = c->backing ? write_differing(c, p.dst_off, p.len, buf, bbuf)
                                 : write_range(c, p.dst_off, p.len, buf);
            }
        }
        if (ret < 0 && c->ret == 0) {
            c->ret = ret;
        }
        c->write_seq++;
        qco_queue_restart_all(&c->write_turn);
        c->copied += p.len;
        img_progress_update(&c->progress, 100.0 * c->copied / MAX(c->total, 1), c->copied);
    }
    qblk_bigbuf_free(buf);
    qblk_bigbuf_free(bbuf);
    c->running--;
}

static int64_t parse_sparse(const char *arg)
{
    int64_t v = img_cvtnum("buffer size for sparse output", arg, INT64_MAX);

    if (v < 0) {
        return -1;
    }
    if (v % 512 || v > MAX_SPARSE) {
        error_report("Invalid buffer size for sparse output specified. Valid sizes are "
                     "multiples of 512 up to %d. Select 0 to disable sparse detection "
                     "(fully allocates output).", MAX_SPARSE);
        return -1;
    }
    return v;
}

int img_convert(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { "target-is-zero", no_argument, NULL, OPTION_TARGET_IS_ZERO },
        { "target-image-opts", no_argument, NULL, OPTION_TARGET_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *out_fmt = NULL, *base = NULL, *base_fmt = NULL, *out;
    g_autofree char *options = NULL, *opt_base = NULL, *opt_base_fmt = NULL;
    bool quiet = false, no_create = false, image_opts = false, created = false;
    bool target_image_opts = false;
    Convert c = { .sparse = 4096, .status_src = -1 };
    int64_t pos = 0;
    GError *err = NULL;
    int ch, ret = 1, coroutines = 8, dst_flags = BDRV_O_NO_FLUSH;
    bool writethrough;

    while ((ch = getopt_long(argc, argv, ":f:O:o:B:F:S:m:t:T:l:cnpqWUh", long_options,
                             NULL)) != -1) {
        switch (ch) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(ch, argv);
        case 'f': fmt = optarg; break;
        case 'O': out_fmt = optarg; break;
        case 'o':
            options = options ? g_strconcat(g_steal_pointer(&options), ",", optarg, NULL)
                              : g_strdup(optarg);
            break;
        case 'B': base = optarg; break;
        case 'F': base_fmt = optarg; break;
        case 'S':
            c.sparse = parse_sparse(optarg);
            if (c.sparse < 0) {
                return 1;
            }
            break;
        case 'm':
            coroutines = atoi(optarg);
            if (coroutines < 1 || coroutines > 16) {
                error_report("Invalid number of coroutines. Allowed number of coroutines is "
                             "between 1 and 16");
                return 1;
            }
            break;
        case 'c': c.compress = true; break;
        case 'n': no_create = true; break;
        case 'p': c.show_progress = true; break;
        case 'q': quiet = true; break;
        case 'l':
            error_report("Snapshot conversion (-l) is not supported by qblk-img");
            return 1;
        case 't':
            /* qemu-img's default for the target is unsafe: no flushes. */
            if (!bdrv_parse_cache_mode(optarg, &dst_flags, &writethrough)) {
                error_report("Invalid cache option: %s", optarg);
                return 1;
            }
            break;
        case 'W': c.out_of_order = true; break;
        case 'T': break;
        case 'U': img_force_share = true; break;
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        case OPTION_TARGET_IS_ZERO: c.target_zero = true; break;
        case OPTION_TARGET_IMAGE_OPTS: target_image_opts = true; break;
        }
    }
    img_progress_init(&c.progress, c.show_progress && !quiet, 1.0);
    if (argc - optind < 2) {
        error_report("Must specify image file name");
        return 1;
    }
    out = argv[argc - 1];
    if (c.target_zero && !no_create) {
        error_report("--target-is-zero requires use of -n flag");
        return 1;
    }
    if (target_image_opts && !no_create) {
        error_report("--target-image-opts requires use of -n flag");
        return 1;
    }
    if (target_image_opts && out_fmt) {
        error_report("--image-opts and --format are mutually exclusive");
        return 1;
    }
    if (!out_fmt && !target_image_opts) {
        out_fmt = "raw";
    }
    if (options && !base) {
        g_autoptr(QblkOpts) o = qblk_opts_new();

        /* -o backing_file=B means what -B B means, as in qemu-img: only
         * what reads differently from B is written (the target names B
         * through the options themselves). A list that does not parse is
         * left for the create step to report. */
        if (qblk_opts_parse(o, options, NULL, NULL) && qblk_opts_get(o, "backing_file")) {
            opt_base = g_strdup(qblk_opts_get(o, "backing_file"));
            opt_base_fmt = g_strdup(base_fmt ? base_fmt : qblk_opts_get(o, "backing_fmt"));
            base_fmt = opt_base_fmt;
        }
    }
    if ((base || opt_base) && !base_fmt) {
        error_report("Use of backing file requires explicit backing format");
        return 1;
    }
    c.nb_src = argc - 1 - optind;
    c.src = g_new0(BlockDriverState *, c.nb_src);
    c.src_len = g_new0(int64_t, c.nb_src);
    for (int i = 0; i < c.nb_src; i++) {
        c.src[i] = img_open(argv[optind + i], fmt, image_opts, 0);
        if (!c.src[i]) {
            goto out;
        }
        c.src_len[i] = bdrv_getlength(c.src[i]);
        if (c.src_len[i] < 0) {
            error_report("Could not get size of %s: %s", argv[optind + i],
                         strerror((int)-c.src_len[i]));
            goto out;
        }
        c.total += c.src_len[i];
    }
    if (c.compress && out_fmt && strcmp(out_fmt, "qcow2")) {
        error_report("Compression not supported for this file format");
        goto out;
    }
    if (!no_create) {
        if (!img_create_target(out, out_fmt, options, base, base_fmt, c.total, &err)) {
            error_report("%s", err->message);
            g_clear_error(&err);
            goto out;
        }
        created = true;
    }
    if (target_image_opts) {
        /* The target is a set of options (e.g. a filter over its file),
         * opened as the source's --image-opts are. */
        c.dst = img_open_opts(out, NULL, true, BDRV_O_RDWR | BDRV_O_NO_BACKING | dst_flags,
                              NULL);
        if (!c.dst) {
            goto out;
        }
        if (c.compress && strcmp(bdrv_format_name(c.dst), "qcow2")) {
            error_report("Compression not supported for this file format");
            goto out;
        }
    } else {
        QblkOpts *o = qblk_opts_new();
        uint64_t perm, shared;

        qblk_opts_set(o, "driver", out_fmt);
        c.dst = bdrv_open(out, o, BDRV_O_RDWR | BDRV_O_NO_BACKING | dst_flags, NULL, &err);
        bdrv_user_perm_for_flags(BDRV_O_RDWR, &perm, &shared);
        if (c.dst && !bdrv_attach_user(c.dst, "qblk-img", perm, shared, &err)) {
            g_clear_pointer(&c.dst, bdrv_unref);
        }
        if (!c.dst) {
            error_report("Could not open '%s': %s", out, err->message);
            g_clear_error(&err);
            goto out;
        }
    }
    if (no_create && bdrv_getlength(c.dst) < c.total) {
        error_report("output file is smaller than input file");
        goto out;
    }
    if (base || opt_base) {
        /* The name is the target's: relative to the target's folder. */
        g_autofree char *path = bdrv_resolve_backing_name(out, base ? base : opt_base);

        c.backing = img_open(path, base_fmt, false, 0);
        if (!c.backing) {
            goto out;
        }
    }
    {
        BlockDriverInfo bdi;

        c.cluster = bdrv_get_info(c.dst, &bdi) == 0 && bdi.cluster_size > 0 ? bdi.cluster_size
                                                                            : 65536;
    }
    /* A fresh target without a backing file reads zeroes everywhere. */
    if (created && !base) {
        c.target_zero = true;
    }
    c.src_base = g_new0(int64_t, c.nb_src);
    for (int i = 0; i < c.nb_src; i++) {
        c.src_base[i] = pos;
        pos += c.src_len[i];
    }
    qco_mutex_init(&c.claim_lock);
    qco_queue_init(&c.write_turn);
    img_progress_print(&c.progress, 0);
    c.running = coroutines;
    for (int i = 0; i < coroutines; i++) {
        qco_enter(qco_create(convert_worker, &c));
    }
    while (c.running) {
        qblk_loop_iterate(true);
    }
    ret = c.ret;
    if (ret == 0) {
        ret = bdrv_flush(c.dst);
        if (ret < 0) {
            error_report("error while flushing the target: %s", strerror(-ret));
        }
    }
    ret = ret < 0 ? 1 : 0;
    if (ret == 0) {
        /* 100% twice, as qemu-img prints it. */
        img_progress_print(&c.progress, 100);
        img_progress_print(&c.progress, 100);
    }
out:
    img_progress_end(&c.progress);
    /* What the target's driver writes while closing is checked too. */
    if (c.dst && !img_close(c.dst, out)) {
        ret = 1;
    }
    if (c.backing) {
        bdrv_unref(c.backing);
    }
    for (int i = 0; i < c.nb_src; i++) {
        if (c.src[i]) {
            bdrv_unref(c.src[i]);
        }
    }
    if (ret != 0 && created && unlink(out) == 0) {
        error_report("removed the incomplete target '%s'", out);
    }
    g_free(c.src);
    g_free(c.src_len);
    g_free(c.src_base);
    return ret;
}
