/* qblk-io's asynchronous commands: aio_read and aio_write report when the
 * request completes (during a later command's loop run, aio_flush, or
 * exit); their completion errors never change the exit status. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "tools/qblk-io/io.h"
#include "util/cutils.h"
#include "tools/common/report.h"

typedef struct AioCtx {
    void *buf;
    QIOVector qiov;
    int64_t offset, bytes;
    int pattern;            /* -1: no verification */
    bool write, csv, quiet, verbose;
    struct timespec start;
} AioCtx;

static int usage_fail(const char *name)
{
    io_print_usage(io_find_cmd(name));
    return -1;
}

static void aio_done(void *opaque, int ret)
{
    AioCtx *ctx = opaque;

    if (ret < 0) {
        /* qemu-io says "readv" for aio_read failures. */
        printf("%s failed: %s\n", ctx->write ? "aio_write" : "readv", strerror(-ret));
    } else if (ctx->write) {
        if (!ctx->quiet) {
            io_report("wrote", &ctx->start, ctx->offset, ctx->bytes, ctx->csv);
        }
    } else {
        if (ctx->pattern >= 0) {
            io_verify_pattern(ctx->buf, ctx->pattern, ctx->offset, ctx->bytes);
        }
        if (!ctx->quiet) {
            if (ctx->verbose) {
                qblk_hexdump(stdout, ctx->buf, ctx->offset, ctx->bytes);
            }
            io_report("read", &ctx->start, ctx->offset, ctx->bytes, ctx->csv);
        }
    }
    if (ctx->buf) {
        qiov_destroy(&ctx->qiov);
        io_buf_free(ctx->buf);
    }
    g_free(ctx);
}

static int aio_read_f(int argc, char **argv)
{
    AioCtx *ctx = g_new0(AioCtx, 1);
    int c;

    ctx->pattern = -1;
    while ((c = getopt(argc, argv, "CP:iqv")) != -1) {
        switch (c) {
        case 'C': ctx->csv = true; break;
        case 'P':
            if (!io_parse_pattern(optarg, &ctx->pattern)) {
                g_free(ctx);
                return -1;
            }
            break;
        case 'i':
            printf("injecting invalid read request\n");
            g_free(ctx);
            return 0;   /* qemu-io counts it a success */
        case 'q': ctx->quiet = true; break;
        case 'v': ctx->verbose = true; break;
        default:
            g_free(ctx);
            return usage_fail("aio_read");
        }
    }
    if (optind > argc - 2) {
        g_free(ctx);
        return usage_fail("aio_read");
    }
    if (!io_parse_num(argv[optind], &ctx->offset)) {
        g_free(ctx);
        return -1;
    }
    ctx->buf = io_build_iov(argv + optind + 1, argc - optind - 1, 0xab, &ctx->qiov,
                            &ctx->bytes);
    if (!ctx->buf) {
        g_free(ctx);
        return -1;
    }
    ctx->start = io_now();
    bdrv_aio_submit(io_bs, BDRV_AIO_READ, ctx->offset, ctx->bytes, &ctx->qiov, 0,
                    aio_done, ctx);
    return 0;
}

static int aio_write_f(int argc, char **argv)
{
    AioCtx *ctx = g_new0(AioCtx, 1);
    BdrvRequestFlags flags = 0;
    bool zero = false;
    int pattern = 0xcd, c;

    ctx->write = true;
    while ((c = getopt(argc, argv, "CfiP:quz")) != -1) {
        switch (c) {
        case 'C': ctx->csv = true; break;
        case 'f': flags |= BDRV_REQ_FUA; break;
        case 'i':
            printf("injecting invalid write request\n");
            g_free(ctx);
            return 0;   /* qemu-io counts it a success */
        case 'P':
            if (!io_parse_pattern(optarg, &pattern)) {
                g_free(ctx);
                return -1;
            }
            break;
        case 'q': ctx->quiet = true; break;
        case 'u': flags |= BDRV_REQ_MAY_UNMAP; break;
        case 'z': zero = true; break;
        default:
            g_free(ctx);
            return usage_fail("aio_write");
        }
    }
    if (optind > argc - 2) {
        g_free(ctx);
        return usage_fail("aio_write");
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zero) {
        printf("-u requires -z to be specified\n");
        g_free(ctx);
        return -1;
    }
    if (zero && optind != argc - 2) {
        printf("-z supports only a single length parameter\n");
        g_free(ctx);
        return -1;
    }
    if (!io_parse_num(argv[optind], &ctx->offset)) {
        g_free(ctx);
        return -1;
    }
    if (io_writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    if (zero) {
        if (!io_parse_num(argv[optind + 1], &ctx->bytes)) {
            g_free(ctx);
            return -1;
        }
        ctx->start = io_now();
        bdrv_aio_submit(io_bs, BDRV_AIO_ZERO, ctx->offset, ctx->bytes, NULL, flags,
                        aio_done, ctx);
        return 0;
    }
    ctx->buf = io_build_iov(argv + optind + 1, argc - optind - 1, pattern, &ctx->qiov,
                            &ctx->bytes);
    if (!ctx->buf) {
        g_free(ctx);
        return -1;
    }
    ctx->start = io_now();
    bdrv_aio_submit(io_bs, BDRV_AIO_WRITE, ctx->offset, ctx->bytes, &ctx->qiov, flags,
                    aio_done, ctx);
    return 0;
}

static int aio_flush_f(int argc, char **argv)
{
    bdrv_drain(io_bs);
    return 0;
}

static const char aio_read_help[] =
"\n"
" asynchronously reads a range of bytes from the given offset\n"
"\n"
" Example:\n"
" 'aio_read -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
"\n"
" Reads a segment of the currently open file, optionally dumping it to the\n"
" standard output stream (with -v option) for subsequent inspection.\n"
" The read is performed asynchronously and the aio_flush command must be\n"
" used to ensure all outstanding aio requests have been completed.\n"
" Note that due to its asynchronous nature, this command will be\n"
" considered successful once the request is submitted, independently\n"
" of potential I/O errors or pattern mismatches.\n"
" -C, -- report statistics in a machine parsable format\n"
" -P, -- use a pattern to verify read data\n"
" -i, -- treat request as invalid, for exercising stats\n"
" -v, -- dump buffer to standard output\n"
" -q, -- quiet mode, do not show I/O statistics\n"
"\n";

static const char aio_write_help[] =
"\n"
" asynchronously writes a range of bytes from the given offset source\n"
" from multiple buffers\n"
"\n"
" Example:\n"
" 'aio_write 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
"\n"
" Writes into a segment of the currently open file, using a buffer\n"
" filled with a set pattern (0xcdcdcdcd).\n"
" The write is performed asynchronously and the aio_flush command must be\n"
" used to ensure all outstanding aio requests have been completed.\n"
" Note that due to its asynchronous nature, this command will be\n"
" considered successful once the request is submitted, independently\n"
" of potential I/O errors or pattern mismatches.\n"
" -P, -- use different pattern to fill file\n"
" -C, -- report statistics in a machine parsable format\n"
" -f, -- use Force Unit Access semantics\n"
" -i, -- treat request as invalid, for exercising stats\n"
" -q, -- quiet mode, do not show I/O statistics\n"
" -u, -- with -z, allow unmapping\n"
" -z, -- write zeroes using blk_aio_pwrite_zeroes\n"
"\n";

const IoCmd io_aio_cmds[] = {
    { "aio_read", NULL, aio_read_f, 2, -1, false, false,
      "[-Ciqv] [-P pattern] off len [len..]",
      "asynchronously reads a number of bytes", aio_read_help },
    { "aio_write", NULL, aio_write_f, 2, -1, false, true,
      "[-Cfiquz] [-P pattern] off len [len..]",
      "asynchronously writes a number of bytes", aio_write_help },
    { "aio_flush", NULL, aio_flush_f, 0, 0, false, false, NULL,
      "completes all outstanding aio requests", NULL },
    { NULL },
};
