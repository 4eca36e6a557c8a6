/* QIOVector: a growable iovec array plus slicing, copying and zero checks
 * over byte ranges that may span any number of its elements. */
#include <assert.h>
#include <string.h>
#include <glib.h>

#include "util/bufferiszero.h"
#include "util/iov.h"

void qiov_init(QIOVector *qiov, int alloc_hint)
{
    if (alloc_hint < 1) {
        alloc_hint = 1;
    }
    qiov->iov = g_new(struct iovec, alloc_hint);
    qiov->niov = 0;
    qiov->nalloc = alloc_hint;
    qiov->size = 0;
    qiov->local = (struct iovec){ 0 };
}

void qiov_init_buf(QIOVector *qiov, void *buf, size_t len)
{
    qiov->local.iov_base = buf;
    qiov->local.iov_len = len;
    qiov->iov = &qiov->local;
    qiov->niov = 1;
    qiov->nalloc = -1;
    qiov->size = len;
}

/* Makes room for `extra` more elements, moving a `local` vector to the heap
 * the first time it has to grow. */
static void qiov_reserve(QIOVector *qiov, int extra)
{
    int need = qiov->niov + extra;

    if (qiov->nalloc == -1) {
        int n = MAX(need, 4);
        struct iovec *iov = g_new(struct iovec, n);

        if (qiov->niov) {
            iov[0] = qiov->local;
        }
        qiov->iov = iov;
        qiov->nalloc = n;
        return;
    }
    if (need > qiov->nalloc) {
        int n = MAX(need, qiov->nalloc * 2);

        qiov->iov = g_renew(struct iovec, qiov->iov, n);
        qiov->nalloc = n;
    }
}

void qiov_add(QIOVector *qiov, void *base, size_t len)
{
    /* Merging with a contiguous predecessor keeps vectors built piecewise
     * (padding, slices of one buffer) short for preadv's IOV_MAX. */
    if (qiov->niov > 0) {
        struct iovec *last = &qiov->iov[qiov->niov - 1];

        if ((char *)last->iov_base + last->iov_len == (char *)base) {
            last->iov_len += len;
            qiov->size += len;
            return;
        }
    }
    qiov_reserve(qiov, 1);
    qiov->iov[qiov->niov].iov_base = base;
    qiov->iov[qiov->niov].iov_len = len;
    qiov->niov++;
    qiov->size += len;
}

/* Finds the element holding byte `offset`; *skip is the offset inside it. */
static int qiov_find(const QIOVector *qiov, size_t offset, size_t *skip)
{
    int i = 0;

    while (i < qiov->niov && offset >= qiov->iov[i].iov_len) {
        offset -= qiov->iov[i].iov_len;
        i++;
    }
    *skip = offset;
    return i;
}

void qiov_concat(QIOVector *dst, const QIOVector *src, size_t offset, size_t len)
{
    size_t skip;
    int i;

    assert(offset <= src->size && len <= src->size - offset);
    for (i = qiov_find(src, offset, &skip); len > 0; i++, skip = 0) {
        size_t n = MIN(src->iov[i].iov_len - skip, len);

        if (n) {
            qiov_add(dst, (char *)src->iov[i].iov_base + skip, n);
        }
        len -= n;
    }
}

void qiov_init_slice(QIOVector *qiov, const QIOVector *src, size_t offset, size_t len)
{
    size_t skip;
    int i;

    assert(offset <= src->size && len <= src->size - offset);
    i = qiov_find(src, offset, &skip);
    /* The common case, a slice inside one element, needs no allocation. */
    if (len == 0 || (i < src->niov && src->iov[i].iov_len - skip >= len)) {
        void *base = len ? (char *)src->iov[i].iov_base + skip : NULL;

        qiov_init_buf(qiov, base, len);
        return;
    }
    qiov_init(qiov, 4);
    qiov_concat(qiov, src, offset, len);
}

void qiov_reset(QIOVector *qiov)
{
    qiov->niov = 0;
    qiov->size = 0;
}

void qiov_destroy(QIOVector *qiov)
{
    if (qiov->nalloc > 0) {
        g_free(qiov->iov);
    }
    qiov->iov = NULL;
    qiov->niov = 0;
    qiov->nalloc = 0;
    qiov->size = 0;
}

/* Calls fn on each piece of [offset, offset+len) clamped to the vector;
 * stops early when fn returns false. Returns the bytes visited. */
typedef bool (*PieceFn)(void *base, size_t n, size_t pos, void *opaque);

static size_t qiov_walk(const QIOVector *qiov, size_t offset, size_t len,
                        PieceFn fn, void *opaque)
{
    size_t skip, pos = 0;
    int i;

    if (offset >= qiov->size) {
        return 0;
    }
    len = MIN(len, qiov->size - offset);
    for (i = qiov_find(qiov, offset, &skip); pos < len; i++, skip = 0) {
        size_t n = MIN(qiov->iov[i].iov_len - skip, len - pos);

        if (n && !fn((char *)qiov->iov[i].iov_base + skip, n, pos, opaque)) {
            break;
        }
        pos += n;
    }
    return pos;
}

static bool piece_from_buf(void *base, size_t n, size_t pos, void *opaque)
{
    memcpy(base, (const char *)opaque + pos, n);
    return true;
}

static bool piece_to_buf(void *base, size_t n, size_t pos, void *opaque)
{
    memcpy((char *)opaque + pos, base, n);
    return true;
}

static bool piece_memset(void *base, size_t n, size_t pos G_GNUC_UNUSED,
                         void *opaque)
{
    memset(base, *(int *)opaque, n);
    return true;
}

static bool piece_is_zero(void *base, size_t n, size_t pos G_GNUC_UNUSED,
                          void *opaque)
{
    if (!buffer_is_zero(base, n)) {
        *(bool *)opaque = false;
        return false;
    }
    return true;
}

size_t qiov_from_buf(const QIOVector *qiov, size_t offset, const void *buf, size_t len)
{
    return qiov_walk(qiov, offset, len, piece_from_buf, (void *)buf);
}

size_t qiov_to_buf(const QIOVector *qiov, size_t offset, void *buf, size_t len)
{
    return qiov_walk(qiov, offset, len, piece_to_buf, buf);
}

size_t qiov_memset(const QIOVector *qiov, size_t offset, int c, size_t len)
{
    return qiov_walk(qiov, offset, len, piece_memset, &c);
}

bool qiov_is_zero(const QIOVector *qiov, size_t offset, size_t len)
{
    bool zero = true;

    qiov_walk(qiov, offset, len, piece_is_zero, &zero);
    return zero;
}

void qiov_init_padded(QIOVector *qiov, void *head, size_t head_len, const QIOVector *src,
                      size_t offset, size_t len, void *tail, size_t tail_len)
{
    qiov_init(qiov, 3);
    if (head_len) {
        qiov_add(qiov, head, head_len);
    }
    qiov_concat(qiov, src, offset, len);
    if (tail_len) {
        qiov_add(qiov, tail, tail_len);
    }
}
