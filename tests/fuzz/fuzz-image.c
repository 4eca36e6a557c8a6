/* Fuzz target for format FUZZ_FORMAT (qed, qcow2): opens arbitrary bytes as
 * an image and asserts what must hold for any input. Built as a libFuzzer
 * target with -Dfuzzing=true (clang), otherwise linked with replay-main.c,
 * the replayer of corpus files.
 *
 * For each input:
 *  - read-only open (backing file not opened): reading a range twice gives
 *    the same bytes; block status and check run without crashing;
 *  - an image the harness creates itself with the library (once per
 *    cluster size, copied for each input) and writes patterns and zeroes
 *    into (how, derived from the input) reads back as written, even after
 *    reopening, and checks clean;
 *  - a writable copy of the input takes writes, zero writes and discards
 *    (a write that succeeded reads back, unless the input is a QED image
 *    with corruptions: see writable_copy_checks), then `check -r all`; the check
 *    after it must be clean unless the repair said it could not repair,
 *    and an input that probed as FUZZ_FORMAT must still do so.
 * A violated assertion prints why and aborts, which libFuzzer and the
 * replayer both report. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "qblk/block.h"
#include "util/main-loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SELF_SIZE (1 << 20)     /* the harness's own image */
#define IO_MAX    (64 << 10)    /* largest request the harness sends */

static void G_GNUC_PRINTF(2, 3) require(bool ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        return;
    }
    fprintf(stderr, "fuzz-" FUZZ_FORMAT ": assertion failed: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* The choices of the write phases come from a hash of the input, so each
 * input gets its own and a corpus file replays the same ones every time
 * (xorshift64 seeded with FNV-1a of the input). */
static uint64_t rng_state;

static void rng_seed(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < size; i++) {
        h = (h ^ data[i]) * 0x100000001b3ULL;
    }
    rng_state = h | 1;
}

static uint64_t rng(uint64_t below)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return below ? rng_state % below : 0;
}

/* A memfd holding `size` bytes of data, and its path for bdrv_open. */
static int memfd_with(const uint8_t *data, size_t size, char **path)
{
    int fd = memfd_create("fuzz-" FUZZ_FORMAT, 0);

    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        abort();
    }
    *path = g_strdup_printf("/proc/self/fd/%d", fd);
    return fd;
}

static BlockDriverState *open_image(const char *path, int flags, bool probe)
{
    QblkOpts *opts = qblk_opts_new();

    if (!probe) {
        qblk_opts_set(opts, "driver", FUZZ_FORMAT);
    }
    return bdrv_open(path, opts, flags | BDRV_O_NO_BACKING, NULL, NULL);
}

/* The format probing finds for path ("" when it does not open); caller frees. */
static char *probed_format(const char *path)
{
    BlockDriverState *bs = open_image(path, 0, true);
    char *name = g_strdup(bs ? bdrv_format_name(bs) : "");

    if (bs) {
        bdrv_unref(bs);
    }
    return name;
}

static void require_probes_as_format(const char *path, const char *when)
{
    g_autofree char *name = probed_format(path);

    require(strcmp(name, FUZZ_FORMAT) == 0, "%s, the image no longer probes as " FUZZ_FORMAT
            " (%s)", when, *name ? name : "does not open");
}

/* Reads [at, at+n) twice: when both reads succeed they must agree. */
static void read_twice(BlockDriverState *bs, int64_t at, int64_t n)
{
    static uint8_t a[IO_MAX], b[IO_MAX];

    if (bdrv_pread(bs, at, n, a, 0) == 0 && bdrv_pread(bs, at, n, b, 0) == 0) {
        require(memcmp(a, b, n) == 0, "two reads of %" PRId64 "+%" PRId64 " differ", at, n);
    }
}

static void read_only_checks(const char *path)
{
    BlockDriverState *bs = open_image(path, 0, false);
    int64_t len, off = 0;
    BdrvCheckResult res;

    if (!bs) {
        return;
    }
    len = bdrv_getlength(bs);
    const int64_t probes[] = { 0, len / 2, len - IO_MAX };
    for (size_t i = 0; i < G_N_ELEMENTS(probes); i++) {
        int64_t at = MAX(probes[i], 0);
        int64_t n = MIN((int64_t)IO_MAX, len - at);

        if (n > 0) {
            read_twice(bs, at, n);
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
    bdrv_unref(bs);
}

/* A random request inside the first `window` bytes of a len-byte image. */
static void pick_range(int64_t len, int64_t window, int64_t *at, int64_t *n)
{
    int64_t want;

    *at = rng(MIN(window, len));
    if (rng(4) == 0) {      /* whole, aligned clusters: the zero-cluster paths */
        *at &= ~(int64_t)65535;
    }
    want = 1 + rng(IO_MAX);     /* not inside MIN(), which evaluates it twice */
    *n = MIN(want, len - *at);
}

/* One write (pattern or zeroes) that must read back when it succeeded;
 * model (if non-NULL) records it. Returns the write's result. */
static int write_and_read_back(BlockDriverState *bs, int64_t at, int64_t n, uint8_t *model,
                               bool must_read_back)
{
    static uint8_t buf[IO_MAX], back[IO_MAX];
    bool zero = rng(3) == 0;
    int ret;

    if (zero) {
        memset(buf, 0, n);
        ret = bdrv_pwrite_zeroes(bs, at, n, rng(2) ? BDRV_REQ_MAY_UNMAP : 0);
    } else {
        memset(buf, 1 + rng(255), n);
        ret = bdrv_pwrite(bs, at, n, buf, 0);
    }
    if (ret == 0 && bdrv_pread(bs, at, n, back, 0) == 0 && must_read_back) {
        require(memcmp(buf, back, n) == 0, "%s of %" PRId64 "+%" PRId64 " does not read back",
                zero ? "zero write" : "write", at, n);
    }
    if (ret == 0 && model) {
        memcpy(model + at, buf, n);
    }
    return ret;
}

static void require_clean(BlockDriverState *bs, const char *when)
{
    BdrvCheckResult res = { 0 };
    int ret = bdrv_check(bs, &res, BDRV_FIX_NONE);

    require(ret == 0 && res.corruptions == 0 && res.leaks == 0 && res.check_errors == 0,
            "%s: check returned %d, %d corruptions, %d leaks, %d check errors", when, ret,
            res.corruptions, res.leaks, res.check_errors);
}

/* The whole image in one read (one request through the stack instead of
 * one per 64 KiB), then where it differs from the model. */
static void require_content(BlockDriverState *bs, const uint8_t *model, const char *when)
{
    static uint8_t buf[SELF_SIZE];

    require(bdrv_pread(bs, 0, SELF_SIZE, buf, 0) == 0, "%s, the image does not read", when);
    for (int64_t at = 0; at < SELF_SIZE; at += IO_MAX) {
        require(memcmp(buf + at, model + at, IO_MAX) == 0,
                "%s, %" PRId64 "+%d does not read as written", when, at, IO_MAX);
    }
}

/* A new empty image of cluster size `cluster`, as bdrv_create makes it:
 * made once per process and size (creation is deterministic), then copied
 * for each input, which costs a write instead of a create. */
static GBytes *new_image_bytes(const char *cluster)
{
    static GHashTable *made;    /* cluster size -> GBytes */
    GBytes *bytes = made ? g_hash_table_lookup(made, cluster) : NULL;
    g_autoptr(QblkOpts) opts = NULL;    /* bdrv_create does not take it */
    g_autofree char *path = NULL;
    g_autofree char *size = NULL;
    uint8_t *buf;
    off_t len;
    int fd;

    if (bytes) {
        return bytes;
    }
    opts = qblk_opts_new();
    size = g_strdup_printf("%d", SELF_SIZE);
    fd = memfd_with(NULL, 0, &path);
    qblk_opts_set(opts, "size", size);
    qblk_opts_set(opts, "cluster_size", cluster);
    require(bdrv_create(FUZZ_FORMAT, path, opts, NULL) == 0, "create of a new image failed");
    len = lseek(fd, 0, SEEK_END);
    buf = g_malloc(len);
    require(len > 0 && pread(fd, buf, len, 0) == len, "cannot read the new image");
    close(fd);
    if (!made) {
        made = g_hash_table_new(g_str_hash, g_str_equal);
    }
    bytes = g_bytes_new_take(buf, len);
    g_hash_table_insert(made, (gpointer)cluster, bytes);
    return bytes;
}

/* The library's own image, written by the harness, must check clean. */
static void self_written_checks(void)
{
    static const char *const clusters[] = { "512", "4096", "65536" };
    static uint8_t model[SELF_SIZE];    /* not allocated per input: fresh pages cost */
    g_autofree char *path = NULL;
    /* QED clusters are 4 KiB at least. */
    int cluster = strcmp(FUZZ_FORMAT, "qed") == 0 ? 1 + rng(2) : rng(3);
    GBytes *image = new_image_bytes(clusters[cluster]);
    int fd = memfd_with(g_bytes_get_data(image, NULL), g_bytes_get_size(image), &path);
    BlockDriverState *bs;
    g_autofree char *format = NULL;

    memset(model, 0, sizeof(model));
    bs = open_image(path, BDRV_O_RDWR, false);
    require(bs != NULL, "the new image does not open");
    for (int i = 0, ops = 1 + rng(8); i < ops; i++) {
        int64_t at, n;

        pick_range(SELF_SIZE, SELF_SIZE, &at, &n);
        require(write_and_read_back(bs, at, n, model, true) == 0,
                "write to %" PRId64 "+%" PRId64 " of the new image failed", at, n);
    }
    require_clean(bs, "the harness's image after its writes");
    require_content(bs, model, "the harness's image");
    bdrv_unref(bs);
    /* Reopened with probing: one open both probes and opens. */
    bs = open_image(path, 0, true);
    format = g_strdup(bs ? bdrv_format_name(bs) : "");
    require(strcmp(format, FUZZ_FORMAT) == 0, "after writes to the harness's image, the "
            "image no longer probes as " FUZZ_FORMAT " (%s)", *format ? format : "does not open");
    require_content(bs, model, "the harness's image reopened");
    require_clean(bs, "the harness's image reopened");
    bdrv_unref(bs);
    close(fd);
}

/* Writes into a copy of the input, then repair: what the repair leaves
 * must check clean, unless it said it could not repair, and an input that
 * probed as FUZZ_FORMAT still must. */
static void writable_copy_checks(const uint8_t *data, size_t size)
{
    g_autofree char *path = NULL;
    int fd = memfd_with(data, size, &path);
    g_autofree char *before = probed_format(path);
    BlockDriverState *bs = open_image(path, BDRV_O_RDWR | BDRV_O_UNMAP, false);
    BdrvCheckResult fixed = { 0 }, before_writes = { 0 };
    bool read_back = true;
    int64_t len;
    int ret;

    if (!bs) {
        close(fd);
        return;
    }
    /* A corrupt QED image may map a data cluster onto its own L2 table
     * (found/qed/data-cluster-is-l2-table): a write there rewrites the
     * table, so what it wrote cannot read back. QED has no overlap check
     * (nor has QEMU's); qcow2's refuses such writes, so there a write that
     * succeeded must always read back. */
    if (strcmp(FUZZ_FORMAT, "qed") == 0) {
        read_back = bdrv_check(bs, &before_writes, BDRV_FIX_NONE) == 0 &&
                    before_writes.corruptions == 0 && before_writes.check_errors == 0;
    }
    len = bdrv_getlength(bs);
    for (int i = 0, ops = len > 0 ? 1 + rng(6) : 0; i < ops; i++) {
        int64_t at, n;

        /* Mostly the first 4 MiB, sometimes the last clusters. */
        pick_range(len, 4 << 20, &at, &n);
        if (rng(4) == 0) {
            int64_t back = rng(IO_MAX);

            at = MAX(len - n - back, 0);
        }
        if (rng(4) == 0) {
            bdrv_pdiscard(bs, at, n);
        } else {
            write_and_read_back(bs, at, n, NULL, read_back);
        }
    }
    ret = bdrv_check(bs, &fixed, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    if (ret == 0 && fixed.check_errors == 0 && fixed.corruptions == 0 && fixed.leaks == 0) {
        require_clean(bs, "after check -r all, which reported no remaining errors");
    }
    bdrv_unref(bs);
    if (strcmp(before, FUZZ_FORMAT) == 0) {
        require_probes_as_format(path, "after writes to the input and check -r all");
    }
    close(fd);
}

/* The library's file I/O in the loop thread (QBLK_AIO=inline, unless
 * QBLK_AIO says otherwise): the images are on tmpfs, where io_uring hands
 * every request to a kernel worker and the pool to a thread, and those two
 * context switches per request took most of an execution's time. */
static void use_inline_io(void)
{
    static bool done;

    if (!done) {
        g_setenv("QBLK_AIO", "inline", FALSE);
        done = true;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *path = NULL;
    int fd;

    use_inline_io();
    qblk_loop_init();
    rng_seed(data, size);
    fd = memfd_with(data, size, &path);
    read_only_checks(path);
    close(fd);
    self_written_checks();
    writable_copy_checks(data, size);
    return 0;
}
