/* qblk-img rebase: makes an image name another backing file. Safe mode
 * first copies into the image what reads differently through the old and
 * the new backing chains (zero ranges as zero writes); -u only rewrites
 * the link. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "img-progress.h"
#include "qblk-img.h"
#include "util/bufferiszero.h"
#include "util/error.h"

#define REBASE_CHUNK (1024 * 1024)

enum { OPTION_IMAGE_OPTS = 256 };

typedef struct Rebase {
    BlockDriverState *bs;          /* the image, opened read-write */
    BlockDriverState *old_chain;   /* its current backing chain, or NULL */
    BlockDriverState *new_chain;   /* the new one (opened here), or NULL */
    BlockDriverState *common;      /* new_chain's image inside old_chain, or NULL */
    int64_t cluster;               /* the image's unit of allocation */
    ImgProgress progress;
} Rebase;

/* [off, off+n) as read through chain: zeroes past its end (or with no
 * chain), ranges that block status calls zero are not read. */
static int read_chain(BlockDriverState *chain, int64_t off, int64_t n, uint8_t *buf)
{
    int64_t len = chain ? bdrv_getlength(chain) : 0;

    if (len < 0) {
        return (int)len;
    }
    while (n > 0) {
        int64_t pnum;
        int st;

        if (off >= len) {
            memset(buf, 0, n);
            return 0;
        }
        st = bdrv_block_status_above(chain, NULL, off, MIN(n, len - off), &pnum);
        if (st < 0) {
            return st;
        }
        if (st & BDRV_BLOCK_ZERO) {
            memset(buf, 0, pnum);
        } else {
            st = bdrv_pread(chain, off, pnum, buf, 0);
            if (st < 0) {
                return st;
            }
        }
        off += pnum;
        buf += pnum;
        n -= pnum;
    }
    return 0;
}

static int write_run(Rebase *r, int64_t off, int64_t n, const uint8_t *data, bool zero)
{
    int ret = zero ? bdrv_pwrite_zeroes(r->bs, off, n, 0) : bdrv_pwrite(r->bs, off, n, data, 0);

    if (ret < 0) {
        error_report("error while writing to COW image: %s", strerror(-ret));
    }
    return ret;
}

/* Writes the old chain's content of [off, off+n) into the image, cluster
 * by cluster, wherever the new chain would read something else. Adjacent
 * clusters of the same kind (data, zeroes) go in one request. */
static int write_differences(Rebase *r, int64_t off, int64_t n, const uint8_t *old_buf,
                             const uint8_t *new_buf)
{
    int64_t run_start = 0, run_len = 0;
    bool run_zero = false;

    for (int64_t pos = 0; pos < n;) {
        int64_t unit = MIN(r->cluster - (off + pos) % r->cluster, n - pos);
        bool differs = memcmp(old_buf + pos, new_buf + pos, unit) != 0;
        bool zero = differs && buffer_is_zero(old_buf + pos, unit);

        if (run_len && (!differs || zero != run_zero)) {
            if (write_run(r, off + run_start, run_len, old_buf + run_start, run_zero) < 0) {
                return -1;
            }
            run_len = 0;
        }
        if (differs) {
            if (!run_len) {
                run_start = pos;
                run_zero = zero;
            }
            run_len += unit;
        }
        pos += unit;
    }
    return run_len ? write_run(r, off + run_start, run_len, old_buf + run_start, run_zero) : 0;
}

static int copy_differences(Rebase *r)
{
    int64_t len = bdrv_getlength(r->bs);
    g_autofree uint8_t *old_buf = g_malloc(REBASE_CHUNK), *new_buf = g_malloc(REBASE_CHUNK);

    for (int64_t off = 0; off < len;) {
        int64_t n = MIN(len - off, REBASE_CHUNK - off % REBASE_CHUNK), pnum;
        int st = bdrv_is_allocated(r->bs, off, n, &pnum);

        if (st < 0) {
            error_report("error while reading image metadata: %s", strerror(-st));
            return st;
        }
        n = pnum;
        /* The image's own data wins whatever lies below it. Where the old
         * chain only passes the new backing image's content through, the
         * two chains cannot differ. */
        if (st == 0 && r->common) {
            st = bdrv_block_status_above(r->old_chain, r->common, off, n, &pnum);
            if (st < 0) {
                error_report("error while reading image metadata: %s", strerror(-st));
                return st;
            }
            n = pnum;
            st = !(st & BDRV_BLOCK_ALLOCATED);
        }
        if (st == 0) {
            st = read_chain(r->old_chain, off, n, old_buf);
            if (st < 0) {
                error_report("error while reading from old backing file: %s", strerror(-st));
                return st;
            }
            st = read_chain(r->new_chain, off, n, new_buf);
            if (st < 0) {
                error_report("error while reading from new backing file: %s", strerror(-st));
                return st;
            }
            if (write_differences(r, off, n, old_buf, new_buf) < 0) {
                return -EIO;
            }
        }
        off += n;
        img_progress_update(&r->progress, 100.0 * off / len, off);
    }
    return 0;
}

/* Opens the new backing chain for safe mode: its name is relative to the
 * image's directory, as it will be once stored. */
static BlockDriverState *open_chain(const char *path, const char *fmt, int flags,
                                    GError **errp)
{
    QblkOpts *o = qblk_opts_new();

    qblk_opts_set(o, "driver", fmt);
    return bdrv_open(path, o, flags, NULL, errp);
}

static BlockDriverState *open_new_chain(const char *image, const char *name, const char *fmt)
{
    g_autofree char *path = bdrv_resolve_backing_name(image, name);
    GError *err = NULL;
    BlockDriverState *bs = open_chain(path, fmt, 0, &err);

    if (!bs) {
        /* A chain that includes the image itself is refused by the image's
         * own lock; sharing everything, it opens to say so plainly. */
        bs = open_chain(path, fmt, BDRV_O_FORCE_SHARE, NULL);
        if (!bs || !img_find_in_chain(bs, image)) {
            error_report("Could not open new backing file '%s': %s", name, err->message);
            g_error_free(err);
            bdrv_unref(bs);
            return NULL;
        }
        g_error_free(err);
    }
    if (img_find_in_chain(bs, image)) {
        error_report("Could not open new backing file '%s': its backing chain includes '%s'",
                     name, image);
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

int img_rebase(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, OPTION_IMAGE_OPTS },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = NULL, *backing = NULL, *backing_fmt = NULL, *filename;
    bool quiet = false, unsafe = false, show_progress = false, image_opts = false;
    Rebase r = { 0 };
    BlockDriverInfo bdi;
    int c, ret = 1, flags = BDRV_O_RDWR;
    GError *gerr = NULL;
    bool writethrough;

    while ((c = getopt_long(argc, argv, ":hf:F:b:upt:T:qU", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'f': fmt = optarg; break;
        case 'F': backing_fmt = optarg; break;
        case 'b': backing = optarg; break;
        case 'u': unsafe = true; break;
        case 'p': show_progress = true; break;
        case 'q': quiet = true; break;
        case 't':
            if (!bdrv_parse_cache_mode(optarg, &flags, &writethrough)) {
                error_report("Invalid cache option: %s", optarg);
                return 1;
            }
            break;
        case 'T': case 'U': break;     /* reads use the default cache mode */
        case OPTION_IMAGE_OPTS: image_opts = true; break;
        }
    }
    if (!unsafe && !backing) {
        return img_usage_error("Must specify backing file (-b) or use unsafe mode (-u)");
    }
    if (optind != argc - 1) {
        return img_usage_error("Expecting one image file name");
    }
    filename = argv[optind];
    backing = backing ? backing : "";
    if (backing_fmt && !bdrv_find_format(backing_fmt)) {
        error_report("Invalid format name: '%s'", backing_fmt);
        return 1;
    }
    img_progress_init(&r.progress, show_progress && !quiet, 1.0);
    r.bs = img_open(filename, fmt, image_opts, flags | (unsafe ? BDRV_O_NO_BACKING : 0));
    if (!r.bs) {
        return 1;
    }
    /* Refused before anything is written (qemu-img copies first, then fails). */
    if (!bdrv_supports_backing(r.bs)) {
        error_report("Could not change the backing file to '%s': %s", backing,
                     strerror(ENOTSUP));
        goto out;
    }
    if (*backing && !backing_fmt) {
        error_report("Could not change the backing file to '%s': "
                     "backing format must be specified", backing);
        goto out;
    }
    img_progress_print(&r.progress, 0);
    if (!unsafe) {
        r.old_chain = bdrv_backing(r.bs);
        if (*backing) {
            r.new_chain = open_new_chain(filename, backing, backing_fmt);
            if (!r.new_chain) {
                goto out;
            }
            r.common = img_find_in_chain(r.old_chain, bdrv_filename(r.new_chain));
            if (r.common && strcmp(bdrv_format_name(r.common), bdrv_format_name(r.new_chain))) {
                r.common = NULL;        /* the same file read as another format */
            }
        }
        r.cluster = bdrv_get_info(r.bs, &bdi) == 0 && bdi.cluster_size ? bdi.cluster_size : 65536;
        if (copy_differences(&r) < 0) {
            goto out;
        }
        ret = bdrv_flush(r.bs);
        if (ret < 0) {
            error_report("error while flushing %s: %s", filename, strerror(-ret));
            ret = 1;
            goto out;
        }
        ret = 1;
    }
    /* The data is stable before the link changes: a crash in between
     * leaves an image that reads the same through either chain. */
    if (bdrv_change_backing_file(r.bs, backing, backing_fmt, &gerr) < 0) {
        error_report_err(gerr);
        goto out;
    }
    ret = 0;
out:
    if (r.new_chain) {
        bdrv_unref(r.new_chain);
    }
    /* The new link is written out in this close (qemu-img drops its
     * error and exits 0). */
    if (!img_close(r.bs, filename)) {
        ret = 1;
    }
    if (ret == 0) {
        img_progress_print(&r.progress, 100);
        img_progress_print(&r.progress, 100);
    }
    img_progress_end(&r.progress);
    return ret;
}
