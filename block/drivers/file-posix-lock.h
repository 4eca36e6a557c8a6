/* QEMU 7.2's image locks on a host fd, shared by file-posix's set_perm
 * and create: OFD byte locks that QEMU's tools and qblk's see alike. */
#ifndef QBLK_FILE_POSIX_LOCK_H
#define QBLK_FILE_POSIX_LOCK_H

#include "qblk/block_int.h"

/* While a user holds permission bit i it keeps a shared OFD lock on byte
 * 100+i of the file, and while it does not share bit i one on byte 200+i.
 * A user wanting bit i looks for a lock on 200+i; one not sharing bit i
 * looks for a lock on 100+i. Only QEMU 7.2's four permissions have bytes
 * (GRAPH_MOD is qblk's own and stays within the process). OFD locks belong
 * to the open file description: closing the fd drops them all, and another
 * fd on the same file, even in this process, is another user. */
#define FILE_LOCK_PERM_BASE   100
#define FILE_LOCK_SHARED_BASE 200
#define FILE_LOCK_NPERMS      4
#define FILE_LOCK_MASK        ((1u << FILE_LOCK_NPERMS) - 1)

/* Whether the host has OFD locks (Linux 3.15 on). */
bool file_lock_have_ofd(int fd);

/* Locks bytes 100+i for the bits of perm and 200+i for the bits of
 * unshared (both within FILE_LOCK_MASK) that *locked_perm and
 * *locked_unshared (what fd holds) lack; with `unlock`, also drops the
 * bytes held beyond them. The two masks follow every change, so after a
 * failure ("Failed to lock byte N: ...") they are exact and the caller can
 * restore its previous set with another call. */
int file_lock_apply(int fd, unsigned perm, unsigned unshared, unsigned *locked_perm,
                    unsigned *locked_unshared, bool unlock, GError **errp);

/* 0 when no other user's lock forbids taking perm while sharing only
 * shared: none may hold "not shared" (200+i) for a bit of perm, nor hold
 * (100+i) a bit missing from shared. Else -EAGAIN (or -errno) and QEMU's
 * 'Failed to get "write" lock' / 'Failed to get shared "write" lock',
 * with its hint "Is another process using the image [filename]?" on a
 * second line. */
int file_lock_check(int fd, uint64_t perm, uint64_t shared, const char *filename,
                    GError **errp);

/* What QEMU's create takes on the file it is about to empty: write and
 * resize, sharing all but resize, then the check above; nothing where the
 * host has no OFD locks. The locks go with the fd. */
int file_lock_for_create(int fd, const char *path, GError **errp);

#endif
