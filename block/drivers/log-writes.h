/* The on-disk layout of a log-writes log (block/drivers/log-writes.c), for
 * the driver and for readers in C; tests/crash/logfmt.py reads the same.
 *
 *   header  16 bytes: "QBLKLOGW", u32 version (1 or 2), u32 crc32 of bytes 0..11
 *   records one after another, each a 48-byte head and data_len bytes:
 *
 *     0  u32 crc32 of bytes 4..47 of the head and of the data
 *     4  u8  op (LogWritesOp)          5  u8 stream (node id within the log)
 *     6  u16 flags (BDRV_REQ_* of the request)
 *     8  u32 data_len                 12  i32 ret (0 or -errno of the request)
 *    16  u64 seq: the request's number, taken when it started (a START record
 *        and its completion record share it)
 *    24  u64 offset (TRUNCATE: the new length)
 *    32  u64 length
 *    40  u64 aux: FLUSH: where the log ended when the flush started (those
 *        records are durable once this record is reached): in version 1
 *        the number of records, in version 2 the byte offset;
 *        START: the op that started
 *
 * All numbers little-endian. Records are appended when a request completes
 * (START when it starts), so their order is the order of completion.
 *
 * Version 2 is a log that several processes append to (the driver's
 * append=on, tests/crash/logfmt.py's LogAppender): each record is one
 * write(2) under flock(LOCK_EX) on an O_APPEND descriptor, stream ids are
 * unique across the processes, and a FLUSH's aux is a byte offset since no
 * process knows how many records the others wrote. */
#ifndef QBLK_BLOCK_LOG_WRITES_H
#define QBLK_BLOCK_LOG_WRITES_H

#define LOG_WRITES_MAGIC "QBLKLOGW"
#define LOG_WRITES_VERSION 1
#define LOG_WRITES_VERSION_APPEND 2
#define LOG_WRITES_HEADER_SIZE 16
#define LOG_WRITES_RECORD_HEAD 48

typedef enum {
    LOG_WRITES_WRITE = 1,    /* data: the bytes written */
    LOG_WRITES_ZERO = 2,     /* flags: MAY_UNMAP, NO_FALLBACK, FUA */
    LOG_WRITES_DISCARD = 3,
    LOG_WRITES_TRUNCATE = 4, /* offset: the new length */
    LOG_WRITES_FLUSH = 5,
    LOG_WRITES_START = 6,    /* a write, zero write or discard began: its op in aux */
    LOG_WRITES_STREAM = 7,   /* a node opened the log: data "CHILD-DRIVER\0CHILD-FILENAME" */
} LogWritesOp;

#endif
