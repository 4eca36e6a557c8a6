/* qcow2 compressed clusters: raw deflate (zlib, no header) or zstd, as
 * the header's compression type says. */
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include "block/drivers/qcow2.h"

static int inflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    z_stream z = { 0 };
    int ret;

    if (inflateInit2(&z, -12) != Z_OK) {
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = in_len;
    z.next_out = out;
    z.avail_out = out_len;
    ret = inflate(&z, Z_FINISH);
    /* Output stops at one cluster; the input may carry padding. */
    ret = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0 ? 0 : -1;
    inflateEnd(&z);
    return ret;
}

static int zstd_cluster(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    ZSTD_inBuffer input = { in, in_len, 0 };
    ZSTD_outBuffer output = { out, out_len, 0 };
    int ret = -1;

    if (!dctx) {
        return -1;
    }
    /* Stream decoding: QEMU's frames may be followed by padding. */
    while (output.pos < output.size) {
        size_t r = ZSTD_decompressStream(dctx, &output, &input);

        if (ZSTD_isError(r) || (r != 0 && input.pos == input.size && output.pos < output.size)) {
            break;
        }
        if (r == 0 && output.pos < output.size) {
            break;
        }
    }
    if (output.pos == output.size) {
        ret = 0;
    }
    ZSTD_freeDCtx(dctx);
    return ret;
}

static ssize_t deflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap)
{
    z_stream z = { 0 };
    ssize_t ret;

    /* QEMU's parameters: raw deflate, 4 KiB window, memLevel 9. */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = in_len;
    z.next_out = out;
    z.avail_out = out_cap;
    ret = deflate(&z, Z_FINISH) == Z_STREAM_END ? (ssize_t)(out_cap - z.avail_out) : -1;
    deflateEnd(&z);
    return ret;
}

static ssize_t zstd_compress_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                                     size_t out_cap)
{
    size_t r = ZSTD_compress(out, out_cap, in, in_len, ZSTD_CLEVEL_DEFAULT);

    return ZSTD_isError(r) ? -1 : (ssize_t)r;
}

ssize_t qcow2_compress(const BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t out_cap)
{
    return s->header.compression_type == 1 ? zstd_compress_cluster(in, in_len, out, out_cap)
                                           : deflate_cluster(in, in_len, out, out_cap);
}

int qcow2_decompress(const BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t out_len)
{
    return s->header.compression_type == 1 ? zstd_cluster(in, in_len, out, out_len)
                                           : inflate_cluster(in, in_len, out, out_len);
}
