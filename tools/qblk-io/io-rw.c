/* qblk-io's synchronous data commands: read, write, readv, writev and
 * discard, with qemu-io's option checks, messages and reports. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "tools/qblk-io/io.h"
#include "util/cutils.h"
#include "tools/common/report.h"

#define MAX_BYTES BDRV_REQUEST_MAX_BYTES

static int usage_fail(const char *name)
{
    io_print_usage(io_find_cmd(name));
    return -1;
}

static bool check_sector_aligned(int64_t offset, int64_t count)
{
    if (offset & 511) {
        printf("%lld is not a sector-aligned value for 'offset'\n", (long long)offset);
        return false;
    }
    if (count & 511) {
        printf("%lld is not a sector-aligned value for 'count'\n", (long long)count);
        return false;
    }
    return true;
}

/* Output after a successful read: pattern check, dump, report. */
static int finish_read(void *buf, int64_t offset, int64_t count, int pattern,
                       int64_t pat_off, int64_t pat_len, bool verbose, bool quiet,
                       bool csv, const struct timespec *start)
{
    int ret = 0;

    if (pattern >= 0 &&
        !io_verify_pattern((char *)buf + pat_off, pattern, offset + pat_off, pat_len)) {
        ret = -1;
    }
    if (quiet) {
        return ret;
    }
    if (verbose) {
        qblk_hexdump(stdout, buf, offset, count);
    }
    io_report("read", start, offset, count, csv);
    return ret;
}

static int read_f(int argc, char **argv)
{
    bool csv = false, quiet = false, verbose = false, vmstate = false;
    bool lflag = false, sflag = false;
    int64_t offset, count, pat_off = 0, pat_len = 0;
    int pattern = -1, c, ret;
    struct timespec start;
    void *buf;

    while ((c = getopt(argc, argv, "bCl:pP:qs:v")) != -1) {
        switch (c) {
        case 'b': vmstate = true; break;
        case 'C': csv = true; break;
        case 'l':
            lflag = true;
            if (!io_parse_num(optarg, &pat_len)) {
                return -1;
            }
            break;
        case 'p': break;    /* accepted for old scripts */
        case 'P':
            if (!io_parse_pattern(optarg, &pattern)) {
                return -1;
            }
            break;
        case 'q': quiet = true; break;
        case 's':
            sflag = true;
            if (!io_parse_num(optarg, &pat_off)) {
                return -1;
            }
            break;
        case 'v': verbose = true; break;
        default: return usage_fail("read");
        }
    }
    if (optind != argc - 2) {
        return usage_fail("read");
    }
    if (!io_parse_num(argv[optind], &offset) || !io_parse_num(argv[optind + 1], &count)) {
        return -1;
    }
    if (count > MAX_BYTES) {
        printf("length cannot exceed %lld, given %s\n", (long long)MAX_BYTES, argv[optind + 1]);
        return -1;
    }
    if (pattern < 0 && (lflag || sflag)) {
        return usage_fail("read");
    }
    if (!lflag) {
        pat_len = count - pat_off;
    }
    if (pat_len < 0 || pat_off + pat_len > count) {
        printf("pattern verification range exceeds end of read data\n");
        return -1;
    }
    if (vmstate && !check_sector_aligned(offset, count)) {
        return -1;
    }

    buf = io_buf_alloc(count, 0xab);
    start = io_now();
    ret = vmstate ? bdrv_load_vmstate(io_bs, buf, offset, count)
                  : bdrv_pread(io_bs, offset, count, buf, 0);
    if (ret < 0) {
        printf("read failed: %s\n", strerror(-ret));
        io_buf_free(buf);
        return -1;
    }
    ret = finish_read(buf, offset, count, pattern, pat_off, pat_len, verbose, quiet, csv,
                      &start);
    io_buf_free(buf);
    return ret;
}

/* -s: the buffer repeats the file's contents. */
static bool fill_from_file(const char *path, char *buf, int64_t count)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        perror(path);
        return false;
    }
    close(fd);
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        fprintf(stderr, "%s: cannot read the file\n", path);
        return false;
    }
    if (len == 0) {
        fprintf(stderr, "%s: file is empty\n", path);
        return false;
    }
    for (int64_t i = 0; i < count; i += len) {
        memcpy(buf + i, data, MIN((int64_t)len, count - i));
    }
    return true;
}

static int write_f(int argc, char **argv)
{
    bool csv = false, quiet = false, vmstate = false, compressed = false;
    bool zero = false, pflag = false;
    const char *source = NULL;
    BdrvRequestFlags flags = 0;
    int64_t offset, count;
    int pattern = 0xcd, c, ret;
    struct timespec start;
    char *buf = NULL;

    while ((c = getopt(argc, argv, "bcCfnpP:qs:uz")) != -1) {
        switch (c) {
        case 'b': vmstate = true; break;
        case 'c': compressed = true; break;
        case 'C': csv = true; break;
        case 'f': flags |= BDRV_REQ_FUA; break;
        case 'n': flags |= BDRV_REQ_NO_FALLBACK; break;
        case 'p': break;    /* accepted for old scripts */
        case 'P':
            pflag = true;
            if (!io_parse_pattern(optarg, &pattern)) {
                return -1;
            }
            break;
        case 'q': quiet = true; break;
        case 's': source = optarg; break;
        case 'u': flags |= BDRV_REQ_MAY_UNMAP; break;
        case 'z': zero = true; break;
        default: return usage_fail("write");
        }
    }
    if (vmstate && zero) {
        printf("-b and -z cannot be specified at the same time\n");
        return -1;
    }
    if ((flags & BDRV_REQ_FUA) && (vmstate || compressed)) {
        printf("-f and -b or -c cannot be specified at the same time\n");
        return -1;
    }
    if ((flags & BDRV_REQ_MAY_UNMAP) && !zero) {
        printf("-u requires -z to be specified\n");
        return -1;
    }
    if ((flags & BDRV_REQ_NO_FALLBACK) && !zero) {
        printf("-n requires -z to be specified\n");
        return -1;
    }
    if (zero + pflag + (source != NULL) > 1) {
        printf("Only one of -z, -P, and -s can be specified at the same time\n");
        return -1;
    }
    if (optind != argc - 2) {
        return usage_fail("write");
    }
    if (!io_parse_num(argv[optind], &offset) || !io_parse_num(argv[optind + 1], &count)) {
        return -1;
    }
    /* qblk's one deliberate difference: a zero write is one request of
     * any length (the image's end is the only limit). */
    if (count > MAX_BYTES && !zero) {
        printf("length cannot exceed %lld without -n, given %s\n", (long long)MAX_BYTES,
               argv[optind + 1]);
        return -1;
    }
    if ((vmstate || compressed) && !check_sector_aligned(offset, count)) {
        return -1;
    }
    if (io_writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    if (!zero) {
        buf = io_buf_alloc(count, pattern);
        if (source && !fill_from_file(source, buf, count)) {
            io_buf_free(buf);
            return -1;
        }
    }

    start = io_now();
    if (vmstate) {
        ret = bdrv_save_vmstate(io_bs, buf, offset, count);
    } else if (compressed) {
        ret = bdrv_pwrite(io_bs, offset, count, buf, flags | BDRV_REQ_WRITE_COMPRESSED);
    } else if (zero) {
        ret = bdrv_pwrite_zeroes(io_bs, offset, count, flags);
    } else {
        ret = bdrv_pwrite(io_bs, offset, count, buf, flags);
    }
    io_buf_free(buf);
    if (ret < 0) {
        printf("write failed: %s\n", strerror(-ret));
        return -1;
    }
    if (!quiet) {
        io_report("wrote", &start, offset, count, csv);
    }
    return 0;
}

static int readv_f(int argc, char **argv)
{
    bool csv = false, quiet = false, verbose = false;
    int pattern = -1, c, ret;
    int64_t offset, total;
    struct timespec start;
    QIOVector qiov;
    void *buf;

    while ((c = getopt(argc, argv, "CP:qv")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'P':
            if (!io_parse_pattern(optarg, &pattern)) {
                return -1;
            }
            break;
        case 'q': quiet = true; break;
        case 'v': verbose = true; break;
        default: return usage_fail("readv");
        }
    }
    if (optind > argc - 2) {
        return usage_fail("readv");
    }
    if (!io_parse_num(argv[optind], &offset)) {
        return -1;
    }
    buf = io_build_iov(argv + optind + 1, argc - optind - 1, 0xab, &qiov, &total);
    if (!buf) {
        return -1;
    }
    start = io_now();
    ret = bdrv_preadv(io_bs, offset, &qiov, 0);
    if (ret < 0) {
        printf("readv failed: %s\n", strerror(-ret));
        ret = -1;
    } else {
        ret = finish_read(buf, offset, total, pattern, 0, total, verbose, quiet, csv, &start);
    }
    qiov_destroy(&qiov);
    io_buf_free(buf);
    return ret;
}

static int writev_f(int argc, char **argv)
{
    bool csv = false, quiet = false;
    BdrvRequestFlags flags = 0;
    int pattern = 0xcd, c, ret;
    int64_t offset, total;
    struct timespec start;
    QIOVector qiov;
    void *buf;

    while ((c = getopt(argc, argv, "CfP:q")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'f': flags |= BDRV_REQ_FUA; break;
        case 'P':
            if (!io_parse_pattern(optarg, &pattern)) {
                return -1;
            }
            break;
        case 'q': quiet = true; break;
        default: return usage_fail("writev");
        }
    }
    if (optind > argc - 2) {
        return usage_fail("writev");
    }
    if (!io_parse_num(argv[optind], &offset)) {
        return -1;
    }
    buf = io_build_iov(argv + optind + 1, argc - optind - 1, pattern, &qiov, &total);
    if (!buf) {
        return -1;
    }
    if (io_writethrough) {
        flags |= BDRV_REQ_FUA;
    }
    start = io_now();
    ret = bdrv_pwritev(io_bs, offset, &qiov, flags);
    qiov_destroy(&qiov);
    io_buf_free(buf);
    if (ret < 0) {
        printf("writev failed: %s\n", strerror(-ret));
        return -1;
    }
    if (!quiet) {
        io_report("wrote", &start, offset, total, csv);
    }
    return 0;
}

static int discard_f(int argc, char **argv)
{
    bool csv = false, quiet = false;
    int64_t offset, count;
    struct timespec start;
    int c, ret;

    while ((c = getopt(argc, argv, "Cq")) != -1) {
        switch (c) {
        case 'C': csv = true; break;
        case 'q': quiet = true; break;
        default: return usage_fail("discard");
        }
    }
    if (optind != argc - 2) {
        return usage_fail("discard");
    }
    if (!io_parse_num(argv[optind], &offset) || !io_parse_num(argv[optind + 1], &count)) {
        return -1;
    }
    if (count > MAX_BYTES) {
        printf("length cannot exceed %lld, given %s\n", (long long)MAX_BYTES, argv[optind + 1]);
        return -1;
    }
    start = io_now();
    ret = bdrv_pdiscard(io_bs, offset, count);
    if (ret < 0) {
        printf("discard failed: %s\n", strerror(-ret));
        return -1;
    }
    if (!quiet) {
        io_report("discard", &start, offset, count, csv);
    }
    return 0;
}

static const char read_help[] =
"\n"
" reads a range of bytes from the given offset\n"
"\n"
" Example:\n"
" 'read -v 512 1k' - dumps 1 kilobyte read from 512 bytes into the file\n"
"\n"
" Reads a segment of the currently open file, optionally dumping it to the\n"
" standard output stream (with -v option) for subsequent inspection.\n"
" -b, -- read from the VM state rather than the virtual disk\n"
" -C, -- report statistics in a machine parsable format\n"
" -l, -- length for pattern verification (only with -P)\n"
" -p, -- ignored for backwards compatibility\n"
" -P, -- use a pattern to verify read data\n"
" -q, -- quiet mode, do not show I/O statistics\n"
" -s, -- start offset for pattern verification (only with -P)\n"
" -v, -- dump buffer to standard output\n"
"\n";

static const char write_help[] =
"\n"
" writes a range of bytes from the given offset\n"
"\n"
" Example:\n"
" 'write 512 1k' - writes 1 kilobyte at 512 bytes into the open file\n"
"\n"
" Writes into a segment of the currently open file, using a buffer\n"
" filled with a set pattern (0xcdcdcdcd).\n"
" -b, -- write to the VM state rather than the virtual disk\n"
" -c, -- write compressed data with blk_write_compressed\n"
" -f, -- use Force Unit Access semantics\n"
" -n, -- with -z, don't allow slow fallback\n"
" -p, -- ignored for backwards compatibility\n"
" -P, -- use different pattern to fill file\n"
" -s, -- use a pattern file to fill the write buffer\n"
" -C, -- report statistics in a machine parsable format\n"
" -q, -- quiet mode, do not show I/O statistics\n"
" -u, -- with -z, allow unmapping\n"
" -z, -- write zeroes using blk_co_pwrite_zeroes\n"
"\n";

static const char readv_help[] =
"\n"
" reads a range of bytes from the given offset into multiple buffers\n"
"\n"
" Example:\n"
" 'readv -v 512 1k 1k ' - dumps 2 kilobytes read from 512 bytes into the file\n"
"\n"
" Reads a segment of the currently open file, optionally dumping it to the\n"
" standard output stream (with -v option) for subsequent inspection.\n"
" Uses multiple iovec buffers if more than one byte range is specified.\n"
" -C, -- report statistics in a machine parsable format\n"
" -P, -- use a pattern to verify read data\n"
" -v, -- dump buffer to standard output\n"
" -q, -- quiet mode, do not show I/O statistics\n"
"\n";

static const char writev_help[] =
"\n"
" writes a range of bytes from the given offset source from multiple buffers\n"
"\n"
" Example:\n"
" 'writev 512 1k 1k' - writes 2 kilobytes at 512 bytes into the open file\n"
"\n"
" Writes into a segment of the currently open file, using a buffer\n"
" filled with a set pattern (0xcdcdcdcd).\n"
" -P, -- use different pattern to fill file\n"
" -C, -- report statistics in a machine parsable format\n"
" -f, -- use Force Unit Access semantics\n"
" -q, -- quiet mode, do not show I/O statistics\n"
"\n";

static const char discard_help[] =
"\n"
" discards a range of bytes from the given offset\n"
"\n"
" Example:\n"
" 'discard 512 1k' - discards 1 kilobyte from 512 bytes into the file\n"
"\n"
" Discards a segment of the currently open file.\n"
" -C, -- report statistics in a machine parsable format\n"
" -q, -- quiet mode, do not show I/O statistics\n"
"\n";

const IoCmd io_rw_cmds[] = {
    { "read", "r", read_f, 2, -1, false, false,
      "[-abCqv] [-P pattern [-s off] [-l len]] off len",
      "reads a number of bytes at a specified offset", read_help },
    { "write", "w", write_f, 2, -1, false, true,
      "[-bcCfnquz] [-P pattern | -s source_file] off len",
      "writes a number of bytes at a specified offset", write_help },
    { "readv", NULL, readv_f, 2, -1, false, false,
      "[-Cqv] [-P pattern] off len [len..]",
      "reads a number of bytes at a specified offset", readv_help },
    { "writev", NULL, writev_f, 2, -1, false, true,
      "[-Cfq] [-P pattern] off len [len..]",
      "writes a number of bytes at a specified offset", writev_help },
    { "discard", "d", discard_f, 2, -1, false, true,
      "[-Cq] off len",
      "discards a number of bytes at a specified offset", discard_help },
    { NULL },
};
