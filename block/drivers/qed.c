/* The QED format driver: header, open-time validation, create, close,
 * grow and the need-check flag. Data paths are in qed-rw.c, tables in
 * qed-table.c, the consistency check in qed-check.c. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/header-commit.h"
#include "block/drivers/qed.h"
#include "util/main-loop.h"

void qed_header_decode(const uint8_t *buf, QedHeader *h)
{
    h->magic = qblk_ld_le32(buf + QED_HDR_OFF(magic));
    h->cluster_size = qblk_ld_le32(buf + QED_HDR_OFF(cluster_size));
    h->table_size = qblk_ld_le32(buf + QED_HDR_OFF(table_size));
    h->header_size = qblk_ld_le32(buf + QED_HDR_OFF(header_size));
    h->features = qblk_ld_le64(buf + QED_HDR_OFF(features));
    h->compat_features = qblk_ld_le64(buf + QED_HDR_OFF(compat_features));
    h->autoclear_features = qblk_ld_le64(buf + QED_HDR_OFF(autoclear_features));
    h->l1_table_offset = qblk_ld_le64(buf + QED_HDR_OFF(l1_table_offset));
    h->image_size = qblk_ld_le64(buf + QED_HDR_OFF(image_size));
    h->backing_filename_offset = qblk_ld_le32(buf + QED_HDR_OFF(backing_filename_offset));
    h->backing_filename_size = qblk_ld_le32(buf + QED_HDR_OFF(backing_filename_size));
}

void qed_header_encode(const QedHeader *h, uint8_t *buf)
{
    qblk_st_le32(buf + QED_HDR_OFF(magic), h->magic);
    qblk_st_le32(buf + QED_HDR_OFF(cluster_size), h->cluster_size);
    qblk_st_le32(buf + QED_HDR_OFF(table_size), h->table_size);
    qblk_st_le32(buf + QED_HDR_OFF(header_size), h->header_size);
    qblk_st_le64(buf + QED_HDR_OFF(features), h->features);
    qblk_st_le64(buf + QED_HDR_OFF(compat_features), h->compat_features);
    qblk_st_le64(buf + QED_HDR_OFF(autoclear_features), h->autoclear_features);
    qblk_st_le64(buf + QED_HDR_OFF(l1_table_offset), h->l1_table_offset);
    qblk_st_le64(buf + QED_HDR_OFF(image_size), h->image_size);
    qblk_st_le32(buf + QED_HDR_OFF(backing_filename_offset), h->backing_filename_offset);
    qblk_st_le32(buf + QED_HDR_OFF(backing_filename_size), h->backing_filename_size);
}

static bool is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

bool qed_valid_cluster_size(uint64_t cs)
{
    return is_pow2(cs) && cs >= QED_MIN_CLUSTER_SIZE && cs <= QED_MAX_CLUSTER_SIZE;
}

bool qed_valid_table_size(uint64_t ts)
{
    return is_pow2(ts) && ts >= QED_MIN_TABLE_SIZE && ts <= QED_MAX_TABLE_SIZE;
}

uint64_t qed_max_image_size(uint32_t cluster_size, uint32_t table_size)
{
    uint64_t n = (uint64_t)table_size * cluster_size / sizeof(uint64_t);

    return n * n * cluster_size;
}

bool qed_valid_cluster_offset(const BDRVQEDState *s, uint64_t offset)
{
    uint64_t cs = s->header.cluster_size;
    /* QEMU sizes the file in whole sectors, then whole clusters: a last
     * cluster that ends short by a sector or more (a crash kept an in-place
     * write past the allocating write it lost) is outside the file, so its
     * reference is an error (repaired away), not data. Cut by less than a
     * sector it still counts (iotest 063). New clusters go after it anyway. */
    uint64_t sectors_end = (s->file_length + 511) & ~(uint64_t)511;
    uint64_t whole = sectors_end & ~(cs - 1);

    if (whole != sectors_end && offset >= whole && offset < sectors_end) {
        return false;
    }
    return !(offset & (cs - 1)) && offset >= (uint64_t)s->header.header_size * cs &&
           offset < s->file_size;
}

bool qed_valid_table_offset(const BDRVQEDState *s, uint64_t offset)
{
    uint64_t last = offset + (uint64_t)(s->header.table_size - 1) * s->header.cluster_size;

    return qed_valid_cluster_offset(s, offset) && last >= offset &&
           qed_valid_cluster_offset(s, last);
}

static int qed_probe(const uint8_t *buf, int buf_size, const char *filename)
{
    return buf_size >= QED_HEADER_SIZE && qblk_ld_le32(buf) == QED_MAGIC ? 100 : 0;
}

/* Rewrites the first sector with the header fields, keeping whatever else
 * lives there (the backing name follows the header). */
int coroutine_fn qed_co_write_header(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    uint8_t sector[512];
    int ret = bdrv_co_pread(bs->file, 0, sizeof(sector), sector, 0);

    if (ret < 0) {
        return ret;
    }
    qed_header_encode(&s->header, sector);
    return bdrv_co_pwrite(bs->file, 0, sizeof(sector), sector, 0);
}

int coroutine_fn qed_co_set_need_check(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    if (s->header.features & QED_F_NEED_CHECK) {
        return 0;
    }
    s->header.features |= QED_F_NEED_CHECK;
    ret = qed_co_write_header(bs);
    if (ret == 0) {
        /* The flag must be on disk before any table can be half-written. */
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

/* Clears the need-check flag after everything before it is stable. */
int coroutine_fn qed_co_clear_need_check(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    if (!(s->header.features & QED_F_NEED_CHECK)) {
        return 0;
    }
    ret = bdrv_co_flush(bs->file);
    if (ret < 0) {
        return ret;
    }
    s->header.features &= ~QED_F_NEED_CHECK;
    ret = qed_co_write_header(bs);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

static void coroutine_fn idle_clear_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQEDState *s = bs->opaque;

    /* Holding the allocation lock keeps new allocations out meanwhile. */
    qco_mutex_lock(&s->alloc_lock);
    qed_co_clear_need_check(bs);
    qco_mutex_unlock(&s->alloc_lock);
    s->idle_clear_running = false;
    qco_queue_restart_all(&s->background_done);
}

static void idle_timer_fired(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQEDState *s = bs->opaque;

    s->idle_timer = 0;
    s->idle_clear_running = true;
    qco_enter(qco_create(idle_clear_entry, bs));
}

static void coroutine_fn commit_entry(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQEDState *s = bs->opaque;

    qco_mutex_lock(&s->alloc_lock);
    qed_co_commit_tables(bs);
    qco_mutex_unlock(&s->alloc_lock);
    s->commit_running = false;
    qco_queue_restart_all(&s->background_done);
}

static void commit_timer_fired(void *opaque)
{
    BlockDriverState *bs = opaque;
    BDRVQEDState *s = bs->opaque;

    s->commit_timer = 0;
    s->commit_running = true;
    qco_enter(qco_create(commit_entry, bs));
}

/* Entries waiting in memory reach the disk within this much time. */
#define QED_COMMIT_DELAY_NS (100 * 1000 * 1000)

void qed_allocation_done(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;

    if (qed_tables_dirty(s) && !s->commit_timer && !s->commit_running) {
        s->commit_timer = qblk_timer_add_ns(QED_COMMIT_DELAY_NS, commit_timer_fired, bs);
    }

    if (!(s->header.features & QED_F_NEED_CHECK) || s->alloc_lock.locked ||
        !qco_queue_empty(&s->alloc_lock.waiters)) {
        return;
    }
    if (s->idle_timer) {
        g_source_remove(s->idle_timer);
    }
    s->idle_timer = qblk_timer_add_ns(s->idle_clear_ns, idle_timer_fired, bs);
}

static bool check_header(BlockDriverState *bs, GError **errp)
{
    BDRVQEDState *s = bs->opaque;
    QedHeader *h = &s->header;
    uint64_t max;

    if (h->magic != QED_MAGIC) {
        qblk_error_set(errp, "Image not in QED format");
        return false;
    }
    if (h->features & ~QED_FEATURE_MASK) {
        qblk_error_set(errp, "Unsupported QED features: 0x%" PRIx64,
                       h->features & ~QED_FEATURE_MASK);
        return false;
    }
    if (!qed_valid_cluster_size(h->cluster_size)) {
        qblk_error_set(errp, "QED cluster_size %" PRIu32 " is invalid (a power of 2 in "
                       "[4096, 67108864])", h->cluster_size);
        return false;
    }
    if (!qed_valid_table_size(h->table_size)) {
        qblk_error_set(errp, "QED table_size %" PRIu32 " is invalid (a power of 2 in "
                       "[1, 16])", h->table_size);
        return false;
    }
    max = qed_max_image_size(h->cluster_size, h->table_size);
    if (h->image_size % 512 || h->image_size > max) {
        qblk_error_set(errp, "QED image_size %" PRIu64 " is invalid (a multiple of 512 "
                       "up to %" PRIu64 ")", h->image_size, max);
        return false;
    }
    if (h->header_size == 0 || h->header_size > UINT32_MAX / h->cluster_size) {
        qblk_error_set(errp, "QED header_size %" PRIu32 " is invalid", h->header_size);
        return false;
    }
    if (!qed_valid_table_offset(s, h->l1_table_offset)) {
        qblk_error_set(errp, "QED l1_table_offset 0x%" PRIx64 " is invalid (file size %"
                       PRIu64 ")", h->l1_table_offset, s->file_length);
        return false;
    }
    if (h->features & QED_F_BACKING_FILE) {
        uint64_t end = (uint64_t)h->backing_filename_offset + h->backing_filename_size;

        if (h->backing_filename_size == 0) {
            qblk_error_set(errp, "QED backing file name is empty (backing_filename_size 0)");
            return false;
        }
        if (end > (uint64_t)h->header_size * h->cluster_size ||
            h->backing_filename_size > QED_BACKING_NAME_MAX) {
            qblk_error_set(errp, "QED backing file name (offset %" PRIu32 ", size %" PRIu32
                           ") lies outside the header", h->backing_filename_offset,
                           h->backing_filename_size);
            return false;
        }
    }
    return true;
}

static int coroutine_fn qed_co_read_metadata(BlockDriverState *bs, int flags, GError **errp)
{
    BDRVQEDState *s = bs->opaque;
    uint8_t buf[QED_HEADER_SIZE];
    int64_t flen = bdrv_getlength(bs->file);
    int ret;

    if (flen < 0) {
        qblk_error_set_errno(errp, (int)-flen, "Could not get the QED file length");
        return (int)flen;
    }
    if (flen < QED_HEADER_SIZE) {
        qblk_error_set(errp, "Image not in QED format");
        return -EINVAL;
    }
    ret = bdrv_co_pread(bs->file, 0, sizeof(buf), buf, 0);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not read the QED header");
        return ret;
    }
    qed_header_decode(buf, &s->header);
    s->file_length = (uint64_t)flen;
    if (s->header.magic == QED_MAGIC && qed_valid_cluster_size(s->header.cluster_size)) {
        /* A cut-short last cluster still belongs to the image (QEMU reads
         * it zero-filled): new clusters go after it, never onto it. */
        s->file_size = ((uint64_t)flen + s->header.cluster_size - 1) &
                       ~((uint64_t)s->header.cluster_size - 1);
    }
    if (!check_header(bs, errp)) {
        return (s->header.features & ~QED_FEATURE_MASK) ? -ENOTSUP : -EINVAL;
    }
    s->table_nelems = s->header.table_size * (s->header.cluster_size / sizeof(uint64_t));
    s->table_bytes = (uint64_t)s->header.table_size * s->header.cluster_size;
    s->l2_shift = __builtin_ctz(s->header.cluster_size);
    s->l1_shift = s->l2_shift + __builtin_ctz(s->table_nelems);

    if (s->header.features & QED_F_BACKING_FILE) {
        g_autofree char *name = g_malloc0(s->header.backing_filename_size + 1);

        ret = bdrv_co_pread(bs->file, s->header.backing_filename_offset,
                            s->header.backing_filename_size, name, 0);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read the QED backing file name");
            return ret;
        }
        bs->backing_file = g_steal_pointer(&name);
        if (s->header.features & QED_F_BACKING_FORMAT_NO_PROBE) {
            bs->backing_format = g_strdup("raw");
        }
    }

    s->l1_table = g_try_malloc(s->table_bytes);
    if (!s->l1_table) {
        qblk_error_set(errp, "Cannot allocate the QED L1 table (%" PRIu64 " bytes)",
                       s->table_bytes);
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, s->header.l1_table_offset, s->table_bytes, s->l1_table, 0);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not read the QED L1 table");
        return ret;
    }
    for (uint32_t i = 0; i < s->table_nelems; i++) {
        s->l1_table[i] = GUINT64_FROM_LE(s->l1_table[i]);
    }
    qed_l2_cache_init(s);
    qed_meta_build(s);

    if (flags & BDRV_O_RDWR) {
        if (s->header.autoclear_features) {
            s->header.autoclear_features = 0;
            ret = qed_co_write_header(bs);
            if (ret == 0) {
                ret = bdrv_co_flush(bs->file);
            }
            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not clear QED autoclear bits");
                return ret;
            }
        }
        if ((s->header.features & QED_F_NEED_CHECK) && !(flags & BDRV_O_CHECK)) {
            BdrvCheckResult res = { 0 };

            /* A writer stopped without closing: repair before writing. */
            ret = qed_co_check(bs, &res, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
            if (ret < 0 || res.corruptions || res.check_errors) {
                qblk_error_set(errp, "QED image is corrupt and could not be repaired "
                               "(%d corruptions, %d errors)", res.corruptions,
                               res.check_errors);
                return ret < 0 ? ret : -EINVAL;
            }
            ret = qed_co_clear_need_check(bs);
            if (ret < 0) {
                qblk_error_set_errno(errp, -ret, "Could not clear the QED need-check flag");
                return ret;
            }
        }
    }
    return 0;
}

static void qed_free_state(BDRVQEDState *s)
{
    qed_meta_free(s);
    g_clear_pointer(&s->l1_table, g_free);
    if (s->l2_cache) {
        qed_l2_cache_free(s);
    }
}

static int coroutine_fn qed_co_open(BlockDriverState *bs, QblkOpts *options, int flags,
                                    GError **errp)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    qco_mutex_init(&s->alloc_lock);
    s->bs = bs;
    if (!qblk_opts_take_size(options, "need-check-idle-ms", 5000, &s->idle_clear_ns, errp)) {
        return -EINVAL;
    }
    s->idle_clear_ns *= 1000000;
    qco_queue_init(&s->background_done);
    ret = qed_co_read_metadata(bs, flags, errp);
    if (ret < 0) {
        qed_free_state(s);
        return ret;
    }
    bs->bl.request_alignment = 1;
    bs->bl.pwrite_zeroes_alignment = s->header.cluster_size;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_WRITE_UNCHANGED |
                               BDRV_REQ_NO_FALLBACK;
    bs->supported_write_flags = BDRV_REQ_WRITE_UNCHANGED;
    return 0;
}

/* Going read-only writes what a clean close writes, timers stopped first;
 * going read-write refuses an image whose need-check flag only an open
 * repairs. */
static int coroutine_fn qed_co_reopen_prepare(BlockDriverState *bs, int flags, GError **errp)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    if (bs->read_only && (flags & BDRV_O_RDWR) && (s->header.features & QED_F_NEED_CHECK)) {
        qblk_error_set(errp, "QED image needs a check; open it read/write again so "
                       "that it is repaired first");
        return -EBUSY;
    }
    if (bs->read_only || (flags & BDRV_O_RDWR)) {
        return 0;
    }
    if (s->idle_timer) {
        g_source_remove(s->idle_timer);
        s->idle_timer = 0;
    }
    if (s->commit_timer) {
        g_source_remove(s->commit_timer);
        s->commit_timer = 0;
    }
    while (s->idle_clear_running || s->commit_running) {
        qco_queue_wait(&s->background_done, NULL);
    }
    qco_mutex_lock(&s->alloc_lock);
    ret = qed_co_commit_tables(bs);
    if (ret == 0) {
        ret = qed_co_clear_need_check(bs);
    }
    qco_mutex_unlock(&s->alloc_lock);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not write out the QED image");
    }
    return ret;
}

static int coroutine_fn qed_co_close(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret = 0;

    if (s->idle_timer) {
        g_source_remove(s->idle_timer);
        s->idle_timer = 0;
    }
    if (s->commit_timer) {
        g_source_remove(s->commit_timer);
        s->commit_timer = 0;
    }
    /* A timer's coroutine already started finishes first (it holds
     * tables this close frees); it wakes us when done. */
    while (s->idle_clear_running || s->commit_running) {
        qco_queue_wait(&s->background_done, NULL);
    }
    /* A clean close: the image is consistent again. */
    if (!bs->read_only) {
        ret = qed_co_commit_tables(bs);
        if (ret == 0) {
            ret = qed_co_clear_need_check(bs);
        }
    }
    qed_free_state(s);
    return ret;
}

/* Writes the entries waiting in memory; the core flushes the file next. */
static int coroutine_fn qed_co_flush(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    int ret;

    if (!qed_tables_dirty(s)) {
        return 0;
    }
    qco_mutex_lock(&s->alloc_lock);
    ret = qed_co_commit_tables(bs);
    qco_mutex_unlock(&s->alloc_lock);
    return ret;
}

static int64_t qed_getlength(BlockDriverState *bs)
{
    return ((BDRVQEDState *)bs->opaque)->header.image_size;
}

static int qed_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVQEDState *s = bs->opaque;

    bdi->cluster_size = s->header.cluster_size;
    bdi->is_dirty = !!(s->header.features & QED_F_NEED_CHECK);
    return 0;
}

static int coroutine_fn qed_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                        PreallocMode prealloc, GError **errp)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t old = s->header.image_size;
    int ret;

    if (prealloc != PREALLOC_MODE_OFF) {
        qblk_error_set(errp, "Unsupported preallocation mode '%s'",
                       prealloc == PREALLOC_MODE_METADATA ? "metadata" :
                       prealloc == PREALLOC_MODE_FALLOC ? "falloc" : "full");
        return -ENOTSUP;
    }
    if (offset % 512 ||
        (uint64_t)offset > qed_max_image_size(s->header.cluster_size, s->header.table_size)) {
        qblk_error_set(errp, "Invalid image size specified");
        return -EINVAL;
    }
    if ((uint64_t)offset < old) {
        qblk_error_set(errp, "Shrinking images is currently not supported");
        return -ENOTSUP;
    }
    s->header.image_size = offset;
    ret = qed_co_write_header(bs);
    if (ret < 0) {
        s->header.image_size = old;
        qblk_error_set_errno(errp, -ret, "Failed to update the image size");
    }
    return ret;
}

/* For header_co_commit: a QED header reads its 64 bytes and its name. */
static HeaderReads qed_header_reads(const uint8_t *buf, uint64_t area)
{
    uint64_t off = MIN(qblk_ld_le32(buf + offsetof(QedDiskHeader, backing_filename_offset)),
                       area);
    uint64_t len = qblk_ld_le32(buf + offsetof(QedDiskHeader, backing_filename_size));

    return (HeaderReads) {
        .fixed_end = QED_HEADER_SIZE, .name_off = off, .name_len = MIN(len, area - off),
    };
}

static void qed_header_set_name_offset(uint8_t *buf, uint64_t off)
{
    qblk_st_le32(buf + offsetof(QedDiskHeader, backing_filename_offset), (uint32_t)off);
}

static int coroutine_fn qed_header_co_write(BlockDriverState *bs, uint64_t off, uint64_t len,
                                            const uint8_t *buf)
{
    return bdrv_co_pwrite(bs->file, off, len, buf, 0);
}

static const HeaderCommitOps qed_header_ops = {
    .reads = qed_header_reads,
    .set_name_offset = qed_header_set_name_offset,
    .write = qed_header_co_write,
};

/* The name goes right after the header, as QEMU writes it. Old name bytes
 * past the new end are left as they are (QEMU does the same): nothing
 * reads past backing_filename_size. A name longer than 448 bytes crosses
 * sector 0, so header_co_commit writes it in steps a power cut cannot
 * leave as a mix of both names. */
static int coroutine_fn qed_co_change_backing_file(BlockDriverState *bs, const char *file,
                                                   const char *fmt)
{
    BDRVQEDState *s = bs->opaque;
    QedHeader h = s->header;
    size_t name_len = file ? strlen(file) : 0;
    uint64_t hdr_area = (uint64_t)h.header_size * h.cluster_size, area, old_end;
    g_autofree uint8_t *old = NULL, *buf = NULL;
    int64_t flen = bdrv_getlength(bs->file);
    int ret;

    /* An unknown compatible feature may keep data after the header. */
    if (file && h.compat_features) {
        return -ENOTSUP;
    }
    if (name_len > QED_BACKING_NAME_MAX) {
        return -EINVAL;
    }
    if (QED_HEADER_SIZE + name_len > hdr_area) {
        return -ENOSPC;
    }
    if (flen < 0) {
        return (int)flen;
    }
    h.features &= ~(QED_F_BACKING_FILE | QED_F_BACKING_FORMAT_NO_PROBE);
    if (file) {
        h.features |= QED_F_BACKING_FILE;
        if (fmt && !strcmp(fmt, "raw")) {
            h.features |= QED_F_BACKING_FORMAT_NO_PROBE;
        }
    }
    h.backing_filename_offset = QED_HEADER_SIZE;
    h.backing_filename_size = (uint32_t)name_len;
    /* Room for both names and the slots header_co_commit may move them to
     * (past both, the old name's first). */
    old_end = (uint64_t)s->header.backing_filename_offset + s->header.backing_filename_size;
    area = MAX(old_end, QED_HEADER_SIZE + name_len) + s->header.backing_filename_size + name_len;
    area = MIN(hdr_area, (area + 511) / 512 * 512);
    old = g_malloc0(area);
    buf = g_malloc0(QED_HEADER_SIZE + name_len);
    qco_mutex_lock(&s->alloc_lock);
    ret = bdrv_co_pread(bs->file, 0, MIN(area, (uint64_t)flen), old, 0);
    if (ret == 0) {
        /* need-check may have changed while we waited; keep it as it is now. */
        h.features = (h.features & ~QED_F_NEED_CHECK) | (s->header.features & QED_F_NEED_CHECK);
        qed_header_encode(&h, buf);
        memcpy(buf + QED_HEADER_SIZE, file ? file : "", name_len);
        ret = header_co_commit(bs, &qed_header_ops, old, buf, QED_HEADER_SIZE + name_len, area);
    }
    if (ret == 0) {
        s->header = h;
    }
    qco_mutex_unlock(&s->alloc_lock);
    return ret;
}

extern const QblkOptDesc qed_create_opts[];
int coroutine_fn qed_co_create(const char *filename, QblkOpts *options, GError **errp);

const BlockDriver bdrv_qed = {
    .format_name = "qed",
    .instance_size = sizeof(BDRVQEDState),
    .supports_backing = true,
    .probe = qed_probe,
    .co_open = qed_co_open,
    .co_close = qed_co_close,
    .co_reopen_prepare = qed_co_reopen_prepare,
    .co_create = qed_co_create,
    .create_opts = qed_create_opts,
    .co_preadv = qed_co_preadv,
    .co_pwritev = qed_co_pwritev,
    .co_pwrite_zeroes = qed_co_pwrite_zeroes,
    .co_flush = qed_co_flush,
    .co_block_status = qed_co_block_status,
    .co_truncate = qed_co_truncate,
    .co_check = qed_co_check,
    .getlength = qed_getlength,
    .get_info = qed_get_info,
    .co_change_backing_file = qed_co_change_backing_file,
};
