/* I/O vectors: a growable struct iovec array with its total size, and the
 * helpers the block layer needs to slice, fill and inspect them. */
#ifndef QBLK_UTIL_IOV_H
#define QBLK_UTIL_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct QIOVector {
    struct iovec *iov;
    int niov;
    int nalloc;     /* -1: iov points at `local` (single buffer, no alloc) */
    size_t size;
    struct iovec local;
} QIOVector;

void qiov_init(QIOVector *qiov, int alloc_hint);
/* A one-element vector over buf; needs no qiov_destroy (harmless if called). */
void qiov_init_buf(QIOVector *qiov, void *buf, size_t len);
/* A new vector describing bytes [offset, offset+len) of src (no copy). */
void qiov_init_slice(QIOVector *qiov, const QIOVector *src, size_t offset, size_t len);
void qiov_add(QIOVector *qiov, void *base, size_t len);
/* Appends the iovecs for bytes [offset, offset+len) of src. */
void qiov_concat(QIOVector *dst, const QIOVector *src, size_t offset, size_t len);
void qiov_reset(QIOVector *qiov);
/* head_len bytes of head (if any), then len bytes of src from offset, then
 * tail_len bytes of tail (if any): a cluster written around guest data. */
void qiov_init_padded(QIOVector *qiov, void *head, size_t head_len, const QIOVector *src,
                      size_t offset, size_t len, void *tail, size_t tail_len);
void qiov_destroy(QIOVector *qiov);

size_t qiov_from_buf(const QIOVector *qiov, size_t offset, const void *buf, size_t len);
size_t qiov_to_buf(const QIOVector *qiov, size_t offset, void *buf, size_t len);
size_t qiov_memset(const QIOVector *qiov, size_t offset, int c, size_t len);
/* buffer_is_zero over bytes [offset, offset+len). */
bool qiov_is_zero(const QIOVector *qiov, size_t offset, size_t len);

#endif
