/* Host I/O for the posix file driver: io_uring when the kernel allows it,
 * else a thread pool. QBLK_AIO=io_uring|threads forces either. */
#ifndef QBLK_UTIL_IO_ENGINE_H
#define QBLK_UTIL_IO_ENGINE_H

#include <stdint.h>
#include "util/coroutine.h"
#include "util/iov.h"

typedef enum {
    QBLK_IO_READ,
    QBLK_IO_WRITE,
    QBLK_IO_FDATASYNC,
    QBLK_IO_FALLOCATE,  /* len bytes at offset, mode in `fallocate_mode` */
    /* A write past the end of the file. Always run in the thread pool:
     * io_uring punts such writes to its workers and runs those for one
     * file one at a time, while threads let the filesystem overlap them. */
    QBLK_IO_WRITE_GROW,
} QblkIoOp;

typedef enum {
    QBLK_AIO_AUTO,
    QBLK_AIO_IO_URING,
    QBLK_AIO_THREADS,
} QblkAioMode;

/* Chooses the engine (once). AUTO reads QBLK_AIO from the environment and
 * falls back to threads when io_uring_queue_init fails. Returns the mode
 * chosen. */
QblkAioMode qblk_io_engine_init(QblkAioMode mode);
const char *qblk_io_engine_name(void);

/* Submits one request and yields until it completes; returns 0 or a
 * negative errno. Short transfers are resumed internally; a read that
 * reaches end of file zero-fills the rest of qiov and succeeds (the tail
 * of a file whose size is not a multiple of 512 reads as zeroes). */
int coroutine_fn qblk_co_io(int fd, QblkIoOp op, int64_t offset, int64_t len,
                            QIOVector *qiov, int fallocate_mode);

/* Runs fn(opaque) in a worker thread and yields until it returns; returns
 * its result. fn must not touch loop-thread state. */
int coroutine_fn qblk_co_run_in_thread(int (*fn)(void *opaque), void *opaque);

/* Tests only: forgets the chosen engine (closing the io_uring) so the next
 * qblk_io_engine_init() chooses again. No request may be in flight. */
void qblk_io_engine_reset(void);

#endif
