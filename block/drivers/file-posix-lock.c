/* QEMU 7.2's image locks on a host fd (OFD byte locks, see
 * file-posix-lock.h): taking, dropping and checking them. */
#include <errno.h>
#include <fcntl.h>
#include "block/drivers/file-posix-lock.h"

/* Takes (shared) or drops the lock on one byte. */
static int file_lock_byte(int fd, int off, bool lock)
{
    struct flock fl = {
        .l_type = lock ? F_RDLCK : F_UNLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };

    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 0 when no other open file description holds a lock on byte off; a
 * negative errno (-EAGAIN: one does) otherwise. */
static int file_lock_byte_test(int fd, int off)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        return -errno;
    }
    return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

/* Brings one row of bytes (base+i) to `want`: locks the missing ones and,
 * with `unlock`, drops the others. *locked follows every change, so that
 * a failure part way leaves it exact for the caller's restore. */
static int file_lock_row(int fd, int base, unsigned want, unsigned *locked,
                         bool unlock, GError **errp)
{
    for (int i = 0; i < FILE_LOCK_NPERMS; i++) {
        unsigned bit = 1u << i;
        bool lock = want & bit;
        int ret;

        if (lock == !!(*locked & bit) || (!lock && !unlock)) {
            continue;
        }
        ret = file_lock_byte(fd, base + i, lock);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Failed to %s byte %d",
                                 lock ? "lock" : "unlock", base + i);
            return ret;
        }
        *locked ^= bit;
    }
    return 0;
}

int file_lock_apply(int fd, unsigned perm, unsigned unshared, unsigned *locked_perm,
                    unsigned *locked_unshared, bool unlock, GError **errp)
{
    int ret = file_lock_row(fd, FILE_LOCK_PERM_BASE, perm & FILE_LOCK_MASK, locked_perm,
                            unlock, errp);

    if (ret < 0) {
        return ret;
    }
    return file_lock_row(fd, FILE_LOCK_SHARED_BASE, unshared & FILE_LOCK_MASK,
                         locked_unshared, unlock, errp);
}

/* QEMU's checks, in its order and with its messages. */
int file_lock_check(int fd, uint64_t perm, uint64_t shared, const char *filename,
                    GError **errp)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < FILE_LOCK_NPERMS; i++) {
            uint64_t bit = 1ull << i;
            int ret;

            if (pass == 0 ? !(perm & bit) : (shared & bit)) {
                continue;
            }
            ret = file_lock_byte_test(fd, (pass == 0 ? FILE_LOCK_SHARED_BASE
                                                    : FILE_LOCK_PERM_BASE) + i);
            if (ret < 0) {
                /* QEMU prints its hint on a line of its own; the tools
                 * print the message as one, so the newline is in it. */
                qblk_error_set(errp, "Failed to get %s\"%s\" lock\n"
                               "Is another process using the image [%s]?",
                               pass == 0 ? "" : "shared ", bdrv_perm_name(i), filename);
                return ret;
            }
        }
    }
    return 0;
}

bool file_lock_have_ofd(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

    /* Kernels before 3.15 answer EINVAL to the unknown command; any other
     * failure is about this fd, not about OFD locks. */
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 || errno != EINVAL;
}

/* QEMU's create has no locking option: it always locks where it can. */
int file_lock_for_create(int fd, const char *path, GError **errp)
{
    const uint64_t perm = BLK_PERM_WRITE | BLK_PERM_RESIZE;
    const uint64_t shared = BLK_PERM_ALL & ~BLK_PERM_RESIZE;
    unsigned locked_perm = 0, locked_unshared = 0;
    int ret;

    if (!file_lock_have_ofd(fd)) {
        return 0;   /* nothing to take */
    }
    ret = file_lock_apply(fd, perm, ~shared & FILE_LOCK_MASK, &locked_perm, &locked_unshared,
                          false, errp);
    if (ret == 0) {
        ret = file_lock_check(fd, perm, shared, path, errp);
    }
    return ret;
}
