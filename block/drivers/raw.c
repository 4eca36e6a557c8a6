/* The raw format: the image is the file, byte for byte. Everything passes
 * through to the file child; the virtual size is the file size rounded up
 * to 512 (the tail reads as zeroes), as QEMU shows it. The options offset
 * and size make the image a window of the file instead (QEMU's). */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/internal.h"
#include "util/bswap.h"

#define RAW_SECTOR 512

static int raw_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return 1;   /* anything is raw, with the lowest confidence */
}

typedef struct RawState {
    int64_t offset;            /* where the image starts in the file */
    int64_t size;              /* its fixed length, or -1: to the file's end */
} RawState;

/* offset and size, with QEMU 7.2's checks against the file's length. */
static int raw_take_window(BlockDriverState *bs, QblkOpts *options, GError **errp)
{
    RawState *s = bs->opaque;
    int64_t flen;

    if (!qblk_opts_take_size(options, "offset", 0, &s->offset, errp) ||
        !qblk_opts_take_size(options, "size", -1, &s->size, errp)) {
        return -EINVAL;
    }
    if (s->offset == 0 && s->size < 0) {
        return 0;
    }
    flen = bdrv_getlength(bs->file);
    if (flen < 0) {
        qblk_error_set_errno(errp, (int)-flen, "Could not get the size of the file");
        return (int)flen;
    }
    if (s->offset > flen) {
        qblk_error_set(errp, "Offset (%" PRId64 ") cannot be greater than size of the "
                       "containing file (%" PRId64 ")", s->offset, flen);
        return -EINVAL;
    }
    if (s->size >= 0 && s->size % RAW_SECTOR) {
        qblk_error_set(errp, "Specified size is not multiple of %d", RAW_SECTOR);
        return -EINVAL;
    }
    if (s->size >= 0 && s->offset + s->size > flen) {
        /* QEMU's text, two spaces included. */
        qblk_error_set(errp, "The sum of offset (%" PRId64 ") and size (%" PRId64 ") has to "
                       "be smaller or equal to the  actual size of the containing file "
                       "(%" PRId64 ")", s->offset, s->size, flen);
        return -EINVAL;
    }
    return 0;
}

static int raw_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    RawState *s = bs->opaque;
    int ret = raw_take_window(bs, options, errp);

    if (ret < 0) {
        return ret;
    }
    bs->supported_write_flags = BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK | BDRV_REQ_FUA;
    bs->maps_file_1to1 = s->offset == 0 && s->size < 0;
    return 0;
}

static int64_t raw_offset(BlockDriverState *bs)
{
    return ((RawState *)bs->opaque)->offset;
}

static int coroutine_fn raw_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      QIOVector *qiov, BdrvRequestFlags flags)
{
    return bdrv_co_preadv(bs->file, raw_offset(bs) + offset, bytes, qiov, flags);
}

/* Block-0 signatures QEMU probes that no qblk driver claims yet: a probed
 * raw image must not take one on, or QEMU would open it as that format. */
static bool foreign_signature(const uint8_t *head)
{
    static const struct { const char *magic; size_t len; } sigs[] = {
        { "QED\0", 4 }, { "KDMV", 4 }, { "COWD", 4 }, { "conectix", 8 },
        { "vhdxfile", 8 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++) {
        if (!memcmp(head, sigs[i].magic, sigs[i].len)) {
            return true;
        }
    }
    /* qcow2: magic, then a big-endian version of at least 2. */
    return !memcmp(head, "QFI\xfb", 4) &&
           qblk_ld_be32(head + 4) >= 2;
}

/* A probed raw image must not turn into another format by a write to its
 * first sector: that would let a guest choose how its host opens it. */
static int coroutine_fn raw_check_probe_safe(BlockDriverState *bs, int64_t offset,
                                             int64_t bytes, QIOVector *qiov)
{
    uint8_t head[RAW_SECTOR];
    int64_t n;
    int ret;

    if (!bs->probed_raw || offset >= RAW_SECTOR) {
        return 0;
    }
    ret = bdrv_co_pread(bs->file, 0, RAW_SECTOR, head, 0);
    if (ret < 0) {
        return ret;
    }
    n = MIN(bytes, RAW_SECTOR - offset);
    if (qiov) {
        qiov_to_buf(qiov, 0, head + offset, n);
    } else {
        memset(head + offset, 0, n);
    }
    if (foreign_signature(head) || bdrv_probe_buffer(head, RAW_SECTOR, NULL) != &bdrv_raw) {
        return -EPERM;
    }
    return 0;
}

static int coroutine_fn raw_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                       QIOVector *qiov, BdrvRequestFlags flags)
{
    int ret = raw_check_probe_safe(bs, offset, bytes, qiov);

    return ret < 0 ? ret : bdrv_co_pwritev(bs->file, raw_offset(bs) + offset, bytes, qiov,
                                           flags);
}

static int coroutine_fn raw_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                             int64_t bytes, BdrvRequestFlags flags)
{
    return bdrv_co_pwrite_zeroes(bs->file, raw_offset(bs) + offset, bytes, flags);
}

static int coroutine_fn raw_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return bdrv_co_pdiscard(bs->file, raw_offset(bs) + offset, bytes);
}

static int coroutine_fn raw_co_block_status(BlockDriverState *bs, bool want_zero,
                                            int64_t offset, int64_t bytes, int64_t *pnum,
                                            int64_t *map, BlockDriverState **file)
{
    *pnum = bytes;
    *map = raw_offset(bs) + offset;
    *file = bs->file;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    RawState *s = bs->opaque;
    int64_t len = s->size >= 0 ? s->size : bdrv_getlength(bs->file);

    if (len < 0 || s->size >= 0) {
        return len;
    }
    return bdrv_round_up(MAX(len - s->offset, 0), RAW_SECTOR);
}

static int coroutine_fn raw_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                        PreallocMode prealloc, GError **errp)
{
    RawState *s = bs->opaque;

    if (s->size >= 0) {
        qblk_error_set(errp, "Cannot resize fixed-size raw disks");
        return -ENOTSUP;
    }
    return bdrv_co_truncate(bs->file, s->offset + offset, exact, prealloc, errp);
}

static int coroutine_fn raw_co_create(const char *filename, QblkOpts *options, GError **errp)
{
    return bdrv_co_create_file(filename, options, errp);
}

/* The protocol's own options (preallocation, ...) are accepted by
 * bdrv_create on top of these. */
static const QblkOptDesc raw_create_opts[] = {
    { "size", QBLK_OPT_SIZE, "Virtual disk size", NULL },
    { NULL }
};

/* A raw image is as big as its disk, holes or not. */
static int raw_measure(QblkOpts *options, BlockDriverState *in_bs, BlockMeasureInfo *info,
                       GError **errp)
{
    int64_t size;

    if (in_bs) {
        size = bdrv_getlength(in_bs);
        if (size < 0) {
            qblk_error_set_errno(errp, (int)-size, "Unable to get image virtual_size");
            return (int)size;
        }
    } else if (!qblk_opts_take_size(options, "size", 0, &size, errp)) {
        return -EINVAL;
    }
    info->required = info->fully_allocated = bdrv_round_up(size, RAW_SECTOR);
    return 0;
}

static int raw_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    return bdrv_get_info(bs->file, bdi);
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .instance_size = sizeof(RawState),
    .probe = raw_probe,
    .open = raw_open,
    .co_create = raw_co_create,
    .create_opts = raw_create_opts,
    .co_preadv = raw_co_preadv,
    .co_pwritev = raw_co_pwritev,
    .co_pwrite_zeroes = raw_co_pwrite_zeroes,
    .co_pdiscard = raw_co_pdiscard,
    .co_block_status = raw_co_block_status,
    .co_truncate = raw_co_truncate,
    .getlength = raw_getlength,
    .get_info = raw_get_info,
    .measure = raw_measure,
};
