/* Large I/O buffers in transparent huge pages: one fault per 2 MiB when
 * first touched instead of 512. */
#include <stdlib.h>
#include <sys/mman.h>
#include <glib.h>

#include "util/bigbuf.h"

#define BIGBUF_ALIGN ((size_t)2 << 20)

void *qblk_bigbuf_new(size_t size)
{
    /* Whole huge pages: the rounding costs address space, not memory,
     * since only touched pages are backed. */
    size_t len = (MAX(size, 1) + BIGBUF_ALIGN - 1) & ~(BIGBUF_ALIGN - 1);
    void *buf = NULL;

    if (posix_memalign(&buf, BIGBUF_ALIGN, len)) {
        g_error("out of memory allocating a %zu-byte I/O buffer", len);
    }
#ifdef MADV_HUGEPAGE
    /* Only a hint: with THP off (or "never") the buffer is plain pages. */
    madvise(buf, len, MADV_HUGEPAGE);
#endif
    return buf;
}

void qblk_bigbuf_free(void *buf)
{
    free(buf);
}
