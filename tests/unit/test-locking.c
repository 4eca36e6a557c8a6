/* file-posix's image locks (the set_perm callback) seen from outside: which
 * of QEMU's lock bytes another open file description or process finds
 * held, conflicts refused with QEMU's messages, all-or-nothing changes,
 * release on close, and locking=off. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

#define CR BLK_PERM_CONSISTENT_READ
#define W  BLK_PERM_WRITE
#define WU BLK_PERM_WRITE_UNCHANGED
#define RS BLK_PERM_RESIZE

static char *tmpdir;

static char *make_image(const char *name)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 65536), ==, 0);
    close(fd);
    return path;
}

static BlockDriverState *open_node(const char *path, int flags, const char *extra)
{
    QblkOpts *opts = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;

    qblk_opts_set(opts, "driver", "file");
    if (extra) {
        g_assert_true(qblk_opts_parse(opts, extra, NULL, NULL));
    }
    bs = bdrv_open(path, opts, flags, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static int set_perm(BlockDriverState *bs, uint64_t perm, uint64_t shared, GError **errp)
{
    g_assert_nonnull(bs->drv->set_perm);
    return bs->drv->set_perm(bs, perm, shared, errp);
}

static int64_t file_size(const char *path)
{
    struct stat st;

    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_size;
}

/* The lock bytes 100..104 (bits 0..4) and 200..204 (bits 8..12) that an
 * open file description other than the node's finds held. */
static unsigned held_bytes(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned mask = 0;

    g_assert_cmpint(fd, >=, 0);
    for (int i = 0; i < 5; i++) {
        for (int row = 0; row < 2; row++) {
            struct flock fl = {
                .l_type = F_WRLCK, .l_whence = SEEK_SET,
                .l_start = (row ? 200 : 100) + i, .l_len = 1,
            };

            g_assert_cmpint(fcntl(fd, F_OFD_GETLK, &fl), ==, 0);
            if (fl.l_type != F_UNLCK) {
                mask |= 1u << (i + 8 * row);
            }
        }
    }
    close(fd);
    return mask;
}

/* The mask held_bytes() reports for bits held and bits not shared. */
#define BYTES(perm, unshared) ((unsigned)(perm) | ((unsigned)(unshared) << 8))

/* Another user: an fd of our own holding shared locks on `bytes`, as
 * QEMU's file-posix would. Returns the fd (close it to release). */
static int hold_bytes(const char *path, const int *bytes, int n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    for (int i = 0; i < n; i++) {
        struct flock fl = {
            .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = bytes[i], .l_len = 1,
        };

        g_assert_cmpint(fcntl(fd, F_OFD_SETLK, &fl), ==, 0);
    }
    return fd;
}

/* The bytes follow the permissions: held 100+i, not shared 200+i, only
 * for QEMU's four permissions; a downgrade drops bytes; close drops all. */
static void test_bytes(void)
{
    g_autofree char *path = make_image("bytes.img");
    BlockDriverState *bs = open_node(path, BDRV_O_RDWR, NULL);
    GError *err = NULL;

    g_assert_cmphex(held_bytes(path), ==, 0);   /* open alone takes none */
    /* qemu-io's qcow2 file child: read, write, resize; shares read and
     * write-unchanged only. */
    g_assert_cmpint(set_perm(bs, CR | W | RS, CR | WU, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR | W | RS, W | RS));
    /* GRAPH_MOD has no byte; sharing nothing locks all four 200+i. */
    g_assert_cmpint(set_perm(bs, BLK_PERM_ALL, 0, &err), ==, 0);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR | W | WU | RS, CR | W | WU | RS));
    g_assert_cmpint(set_perm(bs, CR, BLK_PERM_ALL, &err), ==, 0);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR, 0));
    g_assert_cmpint(set_perm(bs, 0, BLK_PERM_ALL, &err), ==, 0);
    g_assert_cmphex(held_bytes(path), ==, 0);
    g_assert_cmpint(set_perm(bs, CR | W, CR, &err), ==, 0);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR | W, W | WU | RS));
    bdrv_unref(bs);
    g_assert_cmphex(held_bytes(path), ==, 0);
    g_unlink(path);
}

/* Wanting write while another user does not share it (byte 201), and not
 * sharing write while another user writes (byte 101): QEMU's messages,
 * and the node's previous locks stay exactly as they were. */
static void test_conflicts(void)
{
    g_autofree char *path = make_image("conflict.img");
    g_autofree char *want_w = g_strdup_printf(
        "Failed to get \"write\" lock\nIs another process using the image [%s]?", path);
    g_autofree char *want_shared = g_strdup_printf(
        "Failed to get shared \"write\" lock\nIs another process using the image [%s]?",
        path);
    static const int not_sharing_write[] = { 100, 201 };
    static const int writing[] = { 100, 101 };
    BlockDriverState *bs = open_node(path, BDRV_O_RDWR, NULL);
    GError *err = NULL;
    int other;

    g_assert_cmpint(set_perm(bs, CR, BLK_PERM_ALL, &err), ==, 0);

    other = hold_bytes(path, not_sharing_write, 2);
    g_assert_cmpint(set_perm(bs, CR | W | RS, CR | WU, &err), ==, -EAGAIN);
    g_assert_cmpstr(err->message, ==, want_w);
    g_clear_error(&err);
    close(other);
    /* Only our byte 100 is left: nothing of the refused set. */
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR, 0));

    other = hold_bytes(path, writing, 2);
    g_assert_cmpint(set_perm(bs, CR, CR | WU | RS, &err), ==, -EAGAIN);
    g_assert_cmpstr(err->message, ==, want_shared);
    g_clear_error(&err);
    /* Sharing write again is fine while the other writes. */
    g_assert_cmpint(set_perm(bs, CR, BLK_PERM_ALL, &err), ==, 0);
    close(other);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR, 0));

    /* A refused upgrade from a held set restores that set, not less. */
    g_assert_cmpint(set_perm(bs, CR | W | RS, CR | WU, &err), ==, 0);
    other = hold_bytes(path, (const int[]){ 102 }, 1);   /* write-unchanged */
    g_assert_cmpint(set_perm(bs, CR | W | RS, CR, &err), ==, -EAGAIN);
    g_assert_true(g_str_has_prefix(err->message,
                                   "Failed to get shared \"write unchanged\" lock\n"));
    g_clear_error(&err);
    close(other);
    g_assert_cmphex(held_bytes(path), ==, BYTES(CR | W | RS, W | RS));
    bdrv_unref(bs);
    g_unlink(path);
}

/* Another process (a forked child keeps its node open) and another node of
 * this process on the same file are both "other users". */
static void test_other_process(void)
{
    g_autofree char *path = make_image("fork.img");
    int ready[2], quit[2];
    BlockDriverState *bs;
    GError *err = NULL;
    pid_t pid;
    char c;

    g_assert_cmpint(pipe(ready), ==, 0);
    g_assert_cmpint(pipe(quit), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        BlockDriverState *child = open_node(path, BDRV_O_RDWR, NULL);

        if (set_perm(child, CR | W | RS, CR | WU, NULL) < 0) {
            _exit(1);
        }
        c = 'r';
        if (write(ready[1], &c, 1) != 1 || read(quit[0], &c, 1) != 1) {
            _exit(1);
        }
        _exit(0);
    }
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);

    bs = open_node(path, 0, NULL);
    /* qemu-img info's wish: read, sharing read and write-unchanged. */
    g_assert_cmpint(set_perm(bs, CR, CR | WU, &err), ==, -EAGAIN);
    g_assert_true(g_str_has_prefix(err->message, "Failed to get shared \"write\" lock\n"));
    g_clear_error(&err);
    /* -U: sharing everything coexists with the writer. */
    g_assert_cmpint(set_perm(bs, CR, BLK_PERM_ALL, &err), ==, 0);
    g_assert_no_error(err);

    g_assert_cmpint(write(quit[1], "q", 1), ==, 1);
    g_assert_cmpint(waitpid(pid, &(int){ 0 }, 0), ==, pid);
    /* The child's exit dropped its locks: the refused wish now works. */
    g_assert_cmpint(set_perm(bs, CR, CR | WU, &err), ==, 0);
    g_assert_no_error(err);

    {
        BlockDriverState *twin = open_node(path, BDRV_O_RDWR, NULL);

        g_assert_cmpint(set_perm(twin, CR | W, BLK_PERM_ALL, &err), ==, -EAGAIN);
        g_assert_true(g_str_has_prefix(err->message, "Failed to get \"write\" lock\n"));
        g_clear_error(&err);
        bdrv_unref(twin);
    }
    bdrv_unref(bs);
    close(ready[0]);
    close(ready[1]);
    close(quit[0]);
    close(quit[1]);
    g_unlink(path);
}

/* locking=off takes nothing and looks at nobody; on and auto lock. */
static void test_locking_option(void)
{
    g_autofree char *path = make_image("opt.img");
    static const int not_sharing_anything[] = { 200, 201, 202, 203 };
    GError *err = NULL;
    BlockDriverState *bs;
    int other;

    bs = open_node(path, BDRV_O_RDWR, "locking=off");
    other = hold_bytes(path, not_sharing_anything, 4);
    g_assert_cmpint(set_perm(bs, CR | W | RS, CR | WU, &err), ==, 0);
    g_assert_no_error(err);
    close(other);
    g_assert_cmphex(held_bytes(path), ==, 0);
    bdrv_unref(bs);

    for (int i = 0; i < 2; i++) {
        bs = open_node(path, BDRV_O_RDWR, i ? "locking=on" : "locking=auto");
        g_assert_cmpint(set_perm(bs, CR | W, BLK_PERM_ALL, &err), ==, 0);
        g_assert_cmphex(held_bytes(path), ==, BYTES(CR | W, 0));
        bdrv_unref(bs);
    }
    g_unlink(path);
}

static int create_file(const char *path, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();
    int ret;

    qblk_opts_set(opts, "size", "4096");
    ret = bdrv_create("file", path, opts, errp);
    qblk_opts_free(opts);
    return ret;
}

/* Creating takes write and resize, sharing all but resize, as QEMU's
 * create does: an image whose user does not share write (qemu-io on a
 * qcow2 image) is refused before it is emptied; a user sharing
 * everything (qemu-io on a raw image) is not in the way. */
static void test_create(void)
{
    g_autofree char *path = make_image("create.img");
    g_autofree char *want = g_strdup_printf(
        "Failed to get \"write\" lock\nIs another process using the image [%s]?", path);
    static const int qcow2_user[] = { 100, 101, 103, 201, 203 };
    static const int raw_user[] = { 100, 101 };
    GError *err = NULL;
    int other;

    other = hold_bytes(path, qcow2_user, G_N_ELEMENTS(qcow2_user));
    g_assert_cmpint(create_file(path, &err), ==, -EAGAIN);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);
    close(other);
    g_assert_cmpint(file_size(path), ==, 65536);    /* not truncated */

    other = hold_bytes(path, raw_user, G_N_ELEMENTS(raw_user));
    g_assert_cmpint(create_file(path, &err), ==, 0);
    g_assert_no_error(err);
    close(other);
    g_assert_cmpint(file_size(path), ==, 4096);
    /* The creator's locks went with its fd. */
    g_assert_cmphex(held_bytes(path), ==, 0);
    g_unlink(path);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-lock-XXXXXX");

    g_test_add_func("/locking/bytes", test_bytes);
    g_test_add_func("/locking/conflicts", test_conflicts);
    g_test_add_func("/locking/other-process", test_other_process);
    g_test_add_func("/locking/locking-option", test_locking_option);
    g_test_add_func("/locking/create", test_create);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
