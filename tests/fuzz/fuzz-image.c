/* Fuzz target: open an image of format FUZZ_FORMAT (qed, qcow2) from
 * arbitrary bytes (read-only, backing file not opened), read a few ranges,
 * walk block status, run the check. Built as a libFuzzer target with
 * -Dfuzzing=true (clang), otherwise as a runner that replays corpus files
 * given on the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include "qblk/block.h"
#include "util/main-loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(BlockDriverState *bs)
{
    static uint8_t buf[65536];
    int64_t len = bdrv_getlength(bs), off = 0;
    BdrvCheckResult res;
    const int64_t probes[] = { 0, len / 2, len - (int64_t)sizeof(buf) };

    for (size_t i = 0; i < G_N_ELEMENTS(probes); i++) {
        int64_t at = MAX(probes[i], 0);
        int64_t n = MIN((int64_t)sizeof(buf), len - at);

        if (n > 0) {
            bdrv_pread(bs, at, n, buf, 0);
        }
    }
    for (int steps = 0; steps < 64 && off < len; steps++) {
        int64_t pnum = 0;

        if (bdrv_block_status(bs, off, len - off, &pnum, NULL, NULL) < 0 || pnum <= 0) {
            break;
        }
        off += pnum;
    }
    bdrv_check(bs, &res, BDRV_FIX_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-" FUZZ_FORMAT, 0);
    g_autofree char *path = NULL;
    QblkOpts *opts;
    BlockDriverState *bs;

    qblk_loop_init();
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        abort();
    }
    path = g_strdup_printf("/proc/self/fd/%d", fd);
    opts = qblk_opts_new();
    qblk_opts_set(opts, "driver", FUZZ_FORMAT);
    bs = bdrv_open(path, opts, BDRV_O_NO_BACKING, NULL, NULL);
    if (bs) {
        exercise(bs);
        bdrv_unref(bs);
    }
    close(fd);
    return 0;
}

#ifndef QBLK_LIBFUZZER
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        g_autofree char *data = NULL;
        gsize len;

        if (!g_file_get_contents(argv[i], &data, &len, NULL)) {
            fprintf(stderr, "cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    }
    printf("%d inputs replayed\n", argc - 1);
    return 0;
}
#endif
