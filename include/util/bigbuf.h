/* Large I/O buffers (megabytes, reused for many requests) backed by
 * transparent huge pages where the kernel allows it. */
#ifndef QBLK_UTIL_BIGBUF_H
#define QBLK_UTIL_BIGBUF_H

#include <stddef.h>

/* A buffer of @size bytes, aligned to 2 MiB and marked MADV_HUGEPAGE, so
 * that first touching it costs a fault per 2 MiB instead of one per 4 KiB
 * page (on a virtual machine a 4 KiB fault can cost tens of microseconds:
 * 16 MiB of convert buffers took ~100 ms of faults). Its contents are
 * undefined; aborts when out of memory, as g_malloc does. Free it with
 * qblk_bigbuf_free(). */
void *qblk_bigbuf_new(size_t size);
/* Frees a buffer from qblk_bigbuf_new(); NULL is ignored. */
void qblk_bigbuf_free(void *buf);

#endif
