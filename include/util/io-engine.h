/* Host I/O for the posix file driver, engine chosen per node: io_uring when
 * the kernel allows it, else a thread pool. QBLK_AIO=io_uring|threads sets
 * what nodes that name no engine get (QBLK_AIO=inline, for the fuzz targets:
 * threads, whose requests then run in the loop thread). */
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

/* The engine a node asking for `mode` gets, set up on first use. AUTO is
 * QBLK_AIO from the environment (chosen once per process), else io_uring
 * where io_uring_queue_init works; IO_URING falls back to THREADS where it
 * does not. Both engines serve nodes of one process at once. Returns
 * IO_URING or THREADS. */
QblkAioMode qblk_io_engine_init(QblkAioMode mode);
/* Where a node asking for `mode` sends a read or write of `bytes` through
 * the page cache (not O_DIRECT). io_uring copies cached data inside
 * io_uring_enter, in the loop thread: a copy of megabytes there holds up
 * every other coroutine (convert's zero scan, the next submissions), while
 * a pool thread copies on another core meanwhile. So an AUTO node's cached
 * transfers of at least QBLK_IO_OFFLOAD_MIN bytes go to the thread pool
 * (QEMU's default engine runs all of them there); smaller ones, and nodes
 * with an engine named per node or in QBLK_AIO, keep theirs. */
#define QBLK_IO_OFFLOAD_MIN (256 * 1024)
QblkAioMode qblk_io_engine_for_cached(QblkAioMode mode, int64_t bytes);
/* "io_uring" or "threads": qblk_io_engine_init(mode)'s answer by name. */
const char *qblk_io_engine_name(QblkAioMode mode);

/* Submits one request to `engine` (as qblk_io_engine_init resolves it)
 * and yields until it completes; returns 0 or a negative errno. Must run
 * in a coroutine (asserted). Short transfers are resumed internally; a
 * read that reaches end of file zero-fills the rest of qiov and succeeds
 * (the tail of a file whose size is not a multiple of 512 reads as
 * zeroes). */
int coroutine_fn qblk_co_io(QblkAioMode engine, int fd, QblkIoOp op, int64_t offset,
                            int64_t len, QIOVector *qiov, int fallocate_mode);

/* Runs fn(opaque) in a worker thread and yields until it returns; returns
 * its result. fn must not touch loop-thread state. */
int coroutine_fn qblk_co_run_in_thread(int (*fn)(void *opaque), void *opaque);

/* Tests only: forgets the default engine and closes the io_uring, so the
 * next qblk_io_engine_init() chooses again. No request may be in flight
 * and no node may still use the ring. */
void qblk_io_engine_reset(void);

#endif
