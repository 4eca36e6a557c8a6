/* qcow2 persistent dirty bitmaps, kept as QEMU keeps them: the directory
 * parsed at open; on a read-write open every consistent bitmap loaded and
 * flagged in use on disk, guest writes marking the enabled ones, and on
 * close (or reopen read-only) all stored to new clusters before the old
 * ones are freed. The operations of qemu-img bitmap are in
 * qcow2-bitmap-ops.c.
 *
 * Directory entry (big-endian, padded to 8): u64 table offset, u32 table
 * entries, u32 flags (1 in use, 2 auto), u8 type (1), u8 granularity
 * bits, u16 name length, u32 extra data length, extra data, name. A table
 * entry is a data cluster's offset (bits 9-55), 0 for all zeroes or 1 for
 * all ones; a data cluster holds cluster_size * 8 bits, LSB first. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2-bitmap.h"

#define BME_TYPE_DIRTY_TRACKING 1
#define BME_FLAGS_KNOWN         (QCOW2_BME_IN_USE | QCOW2_BME_AUTO | 4u)
#define BME_TABLE_OFFSET_MASK   UINT64_C(0x00fffffffffffe00)

/* A table or data cluster of a bitmap as loaded, freed once replaced. */
typedef struct Qcow2BitmapRange {
    uint64_t offset, len;
    Qcow2MetaKind kind;
    const Qcow2Bitmap *owner;
} Qcow2BitmapRange;

void qcow2_bitmap_free_one(Qcow2Bitmap *bm)
{
    if (bm) {
        g_free(bm->name);
        g_free(bm->bits);
        g_free(bm);
    }
}

void qcow2_bitmaps_free(BDRVQcow2State *s)
{
    g_clear_pointer(&s->bitmaps, g_ptr_array_unref);
    g_clear_pointer(&s->bitmaps_old, g_array_unref);
    s->bitmaps_loaded = false;
    s->bitmaps_need_load = false;
}

void qcow2_bitmaps_ensure_list(BDRVQcow2State *s)
{
    if (!s->bitmaps) {
        s->bitmaps = g_ptr_array_new_with_free_func((GDestroyNotify)qcow2_bitmap_free_one);
    }
    if (!s->bitmaps_old) {
        s->bitmaps_old = g_array_new(FALSE, FALSE, sizeof(Qcow2BitmapRange));
    }
}

uint64_t qcow2_bitmap_nbits(uint64_t size, uint32_t granularity_bits)
{
    return (size + (UINT64_C(1) << granularity_bits) - 1) >> granularity_bits;
}

uint32_t qcow2_bitmap_table_size(const BDRVQcow2State *s, uint64_t nbits)
{
    uint64_t per_cluster = (uint64_t)s->cluster_size * 8;

    return (uint32_t)((nbits + per_cluster - 1) / per_cluster);
}

/* Bytes of an in-memory bitmap: whole clusters, as stored. */
static uint64_t bits_bytes(const BDRVQcow2State *s, uint64_t nbits)
{
    return (uint64_t)MAX(qcow2_bitmap_table_size(s, nbits), 1) * s->cluster_size;
}

Qcow2Bitmap *qcow2_bitmap_find(BDRVQcow2State *s, const char *name, guint *index)
{
    for (guint i = 0; s->bitmaps && i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);

        if (!strcmp(bm->name, name)) {
            if (index) {
                *index = i;
            }
            return bm;
        }
    }
    return NULL;
}

static void remember_old(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind,
                         const Qcow2Bitmap *owner)
{
    Qcow2BitmapRange r = { offset, len, kind, owner };

    g_array_append_val(s->bitmaps_old, r);
}

/* Frees the remembered clusters of owner (NULL: of every bitmap). */
int coroutine_fn qcow2_co_bitmaps_free_old(BlockDriverState *bs, const Qcow2Bitmap *owner)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = 0;

    for (guint i = 0; i < s->bitmaps_old->len;) {
        Qcow2BitmapRange r = g_array_index(s->bitmaps_old, Qcow2BitmapRange, i);

        if (owner && r.owner != owner) {
            i++;
            continue;
        }
        g_array_remove_index(s->bitmaps_old, i);
        qcow2_meta_remove(s, r.offset, r.len, r.kind);
        if (ret == 0) {
            ret = qcow2_co_update_refcount(bs, r.offset, r.len, -1);
        }
        if (ret == 0 && r.kind == QCOW2_META_BITMAP_DATA) {
            /* QEMU always discards freed bitmap data (the file's space
             * returns); a file that cannot discard keeps it. */
            bdrv_co_pdiscard(bs->file, (int64_t)r.offset, (int64_t)r.len);
        }
    }
    return ret;
}

int coroutine_fn qcow2_co_bitmaps_read_dir(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *dir = NULL;
    int64_t flen = bdrv_getlength(bs->file);
    uint64_t pos = 0;
    int ret;

    qcow2_bitmaps_ensure_list(s);
    g_ptr_array_set_size(s->bitmaps, 0);
    ret = qcow2_co_read_bitmap_dir(bs, &dir, errp);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < s->bitmaps_nb; i++) {
        const uint8_t *e = dir + pos;
        uint32_t name_len, extra, gb;
        Qcow2Bitmap *bm;

        if (pos + 24 > s->bitmaps_dir_size) {
            qblk_error_set(errp, "bitmap directory entry %" PRIu32 " runs past the "
                           "directory's end", i);
            return -EINVAL;
        }
        name_len = qblk_ld_be16(e + 18);
        extra = qblk_ld_be32(e + 20);
        gb = e[17];
        if (pos + 24 + (uint64_t)extra + name_len > s->bitmaps_dir_size || !name_len ||
            name_len > 1023 || e[16] != BME_TYPE_DIRTY_TRACKING || gb < 9 || gb > 31 ||
            (qblk_ld_be32(e + 12) & ~BME_FLAGS_KNOWN) || extra) {
            qblk_error_set(errp, "bitmap directory entry %" PRIu32 " is invalid or "
                           "unsupported", i);
            return -EINVAL;
        }
        bm = g_new0(Qcow2Bitmap, 1);
        bm->name = g_strndup((const char *)e + 24, name_len);
        bm->granularity_bits = gb;
        bm->table_offset = qblk_ld_be64(e);
        bm->table_size = qblk_ld_be32(e + 8);
        bm->disk_flags = qblk_ld_be32(e + 12);
        bm->enabled = bm->disk_flags & QCOW2_BME_AUTO;
        bm->inconsistent = bm->disk_flags & QCOW2_BME_IN_USE;
        bm->on_disk = true;
        bm->nbits = qcow2_bitmap_nbits(s->header.size, gb);
        g_ptr_array_add(s->bitmaps, bm);
        if (bm->table_size != qcow2_bitmap_table_size(s, bm->nbits) ||
            (bm->table_offset & (s->cluster_size - 1)) ||
            bm->table_offset + (uint64_t)bm->table_size * 8 > (uint64_t)flen) {
            qblk_error_set(errp, "bitmap '%s': table (offset %#" PRIx64 ", %" PRIu32
                           " entries) is invalid", bm->name, bm->table_offset, bm->table_size);
            return -EINVAL;
        }
        pos += (24 + (uint64_t)extra + name_len + 7) & ~UINT64_C(7);
    }
    return 0;
}

/* The bits of bm as stored on disk (a fresh buffer of bits_bytes). With
 * old set, the table and data clusters are remembered for freeing. */
int coroutine_fn qcow2_co_bitmap_read_bits(BlockDriverState *bs, Qcow2Bitmap *bm, bool old,
                                           uint8_t **out)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    g_autofree uint8_t *bits = g_try_malloc0(bits_bytes(s, bm->nbits));
    g_autofree uint64_t *table = NULL;
    int ret;

    if (!bits) {
        return -ENOMEM;
    }
    ret = qcow2_co_read_table(bs, bm->table_offset, bm->table_size, &table);
    if (ret < 0) {
        return ret;
    }
    if (old) {
        remember_old(s, bm->table_offset, (uint64_t)bm->table_size * 8,
                     QCOW2_META_BITMAP_TABLE, bm);
    }
    for (uint32_t j = 0; j < bm->table_size; j++) {
        uint64_t data = table[j] & BME_TABLE_OFFSET_MASK;

        if (data) {
            ret = bdrv_co_pread(bs->file, data, cs, bits + (uint64_t)j * cs, 0);
            if (ret < 0) {
                return ret;
            }
            if (old) {
                remember_old(s, data, cs, QCOW2_META_BITMAP_DATA, bm);
            }
        } else if (table[j] & 1) {
            memset(bits + (uint64_t)j * cs, 0xff, cs);
        }
    }
    *out = g_steal_pointer(&bits);
    return 0;
}

/* A directory in one of the modes of qcow2-bitmap.h. */

static uint8_t *build_dir(BDRVQcow2State *s, int mode, uint64_t *len, uint32_t *nb)
{
    GByteArray *dir = g_byte_array_new();

    *nb = 0;
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);
        uint32_t name_len = (uint32_t)strlen(bm->name);
        uint64_t entry_len = (24 + name_len + 7) & ~UINT64_C(7);
        uint32_t flags = (bm->enabled ? QCOW2_BME_AUTO : 0) |
                         (mode == QCOW2_BITMAP_DIR_IN_USE ? QCOW2_BME_IN_USE : 0);
        uint8_t *e;

        if (mode == QCOW2_BITMAP_DIR_AS_ON_DISK && !bm->on_disk) {
            continue;
        }
        if (bm->inconsistent || mode == QCOW2_BITMAP_DIR_AS_ON_DISK) {
            flags = bm->disk_flags;
        }
        (*nb)++;

        g_byte_array_set_size(dir, dir->len + (guint)entry_len);
        e = dir->data + dir->len - entry_len;
        memset(e, 0, entry_len);
        qblk_st_be64(e, bm->table_offset);
        qblk_st_be32(e + 8, bm->table_size);
        qblk_st_be32(e + 12, flags);
        e[16] = BME_TYPE_DIRTY_TRACKING;
        e[17] = (uint8_t)bm->granularity_bits;
        qblk_st_be16(e + 18, (uint16_t)name_len);
        memcpy(e + 24, bm->name, name_len);
    }
    *len = dir->len;
    return g_byte_array_free(dir, FALSE);
}

static void set_disk_flags(BDRVQcow2State *s, bool in_use)
{
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);

        if (!bm->inconsistent) {
            bm->disk_flags = (bm->enabled ? QCOW2_BME_AUTO : 0) |
                             (in_use ? QCOW2_BME_IN_USE : 0);
        }
        bm->on_disk = true;
    }
}

int coroutine_fn qcow2_co_bitmaps_load(BlockDriverState *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *dir = NULL;
    uint64_t dir_len;
    uint32_t nb;
    int ret;

    s->bitmaps_need_load = false;
    qcow2_bitmaps_ensure_list(s);
    g_array_set_size(s->bitmaps_old, 0);
    if (!s->bitmaps_in_use) {
        g_ptr_array_set_size(s->bitmaps, 0);
        s->bitmaps_loaded = true;
        return 0;
    }
    ret = qcow2_co_bitmaps_read_dir(bs, errp);
    if (ret < 0) {
        return ret;
    }
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);

        if (bm->inconsistent) {
            continue;
        }
        ret = qcow2_co_bitmap_read_bits(bs, bm, true, &bm->bits);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not load bitmap '%s'", bm->name);
            return ret;
        }
    }
    /* In use on disk from now on: a crash leaves them inconsistent. */
    dir = build_dir(s, QCOW2_BITMAP_DIR_IN_USE, &dir_len, &nb);
    g_assert(dir_len == s->bitmaps_dir_size);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_BITMAP_DIR, s->bitmaps_dir_offset, dir_len, dir);
    if (ret == 0) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not mark the bitmaps in use");
        return ret;
    }
    set_disk_flags(s, true);
    s->bitmaps_loaded = true;
    return 0;
}

void coroutine_fn qcow2_co_bitmaps_mark(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t end = MIN(offset + bytes, s->header.size);

    if (s->bitmaps_need_load) {
        qco_mutex_lock(&s->lock);
        if (s->bitmaps_need_load && qcow2_co_bitmaps_load(bs, NULL) < 0) {
            /* Not maintained from here on: QEMU must not trust them. */
            s->bitmaps_loaded = false;
            s->header.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
            qcow2_co_write_header_field(bs, QCOW2_HDR_FIELD(autoclear_features));
        }
        qco_mutex_unlock(&s->lock);
    }
    if (!s->bitmaps_loaded || offset >= end) {
        return;
    }
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);
        uint64_t first = offset >> bm->granularity_bits;
        uint64_t last = (end - 1) >> bm->granularity_bits;

        if (!bm->bits || !bm->enabled) {
            continue;
        }
        qcow2_bitmap_set_range(bm->bits, first, last + 1);
    }
}

void qcow2_bitmap_set_range(uint8_t *bits, uint64_t first, uint64_t end)
{
    for (uint64_t b = first; b < end; b++) {
        if (!(b & 7) && end - b >= 8) {
            uint64_t bytes = (end - b) >> 3;

            memset(bits + (b >> 3), 0xff, bytes);
            b += bytes * 8 - 1;
            continue;
        }
        bits[b >> 3] |= (uint8_t)(1u << (b & 7));
    }
}

void qcow2_bitmaps_resize(BDRVQcow2State *s, uint64_t size)
{
    for (guint i = 0; s->bitmaps && i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);
        uint64_t nbits = qcow2_bitmap_nbits(size, bm->granularity_bits);
        uint64_t old_bytes = bits_bytes(s, bm->nbits), new_bytes = bits_bytes(s, nbits);

        if (bm->bits) {
            /* Bits past the new end read clean if the image grows again. */
            for (uint64_t b = nbits; b < MIN(bm->nbits, old_bytes * 8); b++) {
                bm->bits[b >> 3] &= (uint8_t)~(1u << (b & 7));
            }
            bm->bits = g_realloc(bm->bits, new_bytes);
            if (new_bytes > old_bytes) {
                memset(bm->bits + old_bytes, 0, new_bytes - old_bytes);
            }
        }
        bm->nbits = nbits;
    }
}

/* Writes bm's bits to new data clusters (all-zero clusters get none) and
 * a new table; bm then names them. */
static int coroutine_fn store_one(BlockDriverState *bs, Qcow2Bitmap *bm)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size;
    uint32_t n = qcow2_bitmap_table_size(s, bm->nbits);
    uint64_t table_bytes = (uint64_t)n * 8;
    g_autofree uint8_t *table = g_malloc0(MAX(table_bytes, 8));
    int64_t host;
    int ret;

    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *chunk = bm->bits + (uint64_t)j * cs;
        bool zero = true;

        for (uint64_t k = 0; k < cs && zero; k++) {
            zero = !chunk[k];
        }
        if (zero) {
            continue;
        }
        host = qcow2_co_alloc_clusters(bs, 1);
        if (host < 0) {
            return (int)host;
        }
        qcow2_meta_add(s, host, cs, QCOW2_META_BITMAP_DATA);
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_BITMAP_DATA, host, cs, chunk);
        if (ret < 0) {
            return ret;
        }
        qblk_st_be64(table + 8 * j, (uint64_t)host);
    }
    host = qcow2_co_alloc_clusters(bs, MAX((table_bytes + cs - 1) / cs, 1));
    if (host < 0) {
        return (int)host;
    }
    qcow2_meta_add(s, host, table_bytes, QCOW2_META_BITMAP_TABLE);
    ret = qcow2_co_pwrite_meta(bs, QCOW2_META_BITMAP_TABLE, host, table_bytes, table);
    if (ret < 0) {
        return ret;
    }
    bm->table_offset = (uint64_t)host;
    bm->table_size = n;
    return 0;
}

/* The header with the bitmaps extension set to ext (NULL: removed),
 * rebuilt as change_backing_file rebuilds it: the other extensions in
 * their order, the end marker, the backing file name; one write covering
 * every byte the old layout used. */
static int coroutine_fn write_header_ext(BlockDriverState *bs, const uint8_t *ext)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t cs = s->cluster_size, hl = s->header.header_length;
    uint64_t old_end = s->header.backing_file_offset ? s->header.backing_file_offset : cs;
    uint64_t pos = hl, off, used_end, name_len = s->header.backing_file_size;
    g_autofree uint8_t *old = g_malloc0(cs), *buf = g_malloc0(cs);
    bool placed = false;
    int ret;

    ret = bdrv_co_pread(bs->file, 0, cs, old, 0);
    if (ret < 0) {
        return ret;
    }
    memcpy(buf, old, hl);
    qblk_st_be64(buf + QCOW2_HDR_OFF(autoclear_features), s->header.autoclear_features);
    for (off = hl; off + 8 <= old_end;) {
        uint32_t type = qblk_ld_be32(old + off), len = qblk_ld_be32(old + off + 4);
        bool ok = true;

        if (type == QCOW2_EXT_END) {
            off += 8;
            break;
        }
        if (type == QCOW2_EXT_BITMAPS) {
            if (ext && !placed) {
                ok = qcow2_put_extension(buf, &pos, cs, type, ext, 24);
            }
            placed = true;
        } else {
            ok = qcow2_put_extension(buf, &pos, cs, type, old + off + 8, len);
        }
        if (!ok) {
            return -ENOSPC;
        }
        off += 8 + ((len + 7) & ~7u);
    }
    if (ext && !placed && !qcow2_put_extension(buf, &pos, cs, QCOW2_EXT_BITMAPS, ext, 24)) {
        return -ENOSPC;
    }
    used_end = MAX(off, s->header.backing_file_offset + s->header.backing_file_size);
    if (pos + 8 + name_len > cs) {
        return -ENOSPC;
    }
    pos += 8;
    if (s->header.backing_file_offset) {
        memcpy(buf + pos, old + s->header.backing_file_offset, name_len);
        qblk_st_be64(buf + QCOW2_HDR_OFF(backing_file_offset), pos);
    }
    pos += name_len;
    /* Torn-safe where only bytes the old header does not read change past
     * sector 0 (an extension added after the others, or in sector 0);
     * an update in place of an extension past byte 512 is one write. */
    ret = qcow2_co_commit_header(bs, old, buf, MAX(pos, MIN(used_end, cs)));
    if (ret == 0) {
        if (s->header.backing_file_offset) {
            s->header.backing_file_offset = pos - name_len;
        }
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

/* QEMU's update_ext_header_and_dir: the directory (build_dir's mode)
 * written to new clusters, the header pointed at it (the autoclear bit set
 * while there are bitmaps, the extension gone without), the old directory
 * freed. */
int coroutine_fn qcow2_co_bitmaps_write_dir(BlockDriverState *bs, int mode)
{
    BDRVQcow2State *s = bs->opaque;
    g_autofree uint8_t *dir = NULL;
    uint64_t dir_len, dir_offset = 0, cs = s->cluster_size;
    uint64_t old_offset = s->bitmaps_in_use ? s->bitmaps_dir_offset : 0;
    uint64_t old_size = s->bitmaps_in_use ? s->bitmaps_dir_size : 0;
    uint8_t ext[24] = { 0 };
    uint32_t nb;
    int ret;

    dir = build_dir(s, mode, &dir_len, &nb);
    if (dir_len) {
        int64_t host = qcow2_co_alloc_clusters(bs, (dir_len + cs - 1) / cs);

        if (host < 0) {
            return (int)host;
        }
        dir_offset = (uint64_t)host;
        qcow2_meta_add(s, dir_offset, dir_len, QCOW2_META_BITMAP_DIR);
        ret = qcow2_co_pwrite_meta(bs, QCOW2_META_BITMAP_DIR, dir_offset, dir_len, dir);
        if (ret < 0) {
            return ret;
        }
    }
    /* The new clusters' refcounts reach the disk before the header names
     * them; the old ones are freed only once it does. */
    ret = qcow2_co_flush_caches(bs);
    if (ret < 0) {
        return ret;
    }
    qblk_st_be32(ext, nb);
    qblk_st_be64(ext + 8, dir_len);
    qblk_st_be64(ext + 16, dir_offset);
    if (nb) {
        s->header.autoclear_features |= QCOW2_AUTOCLEAR_BITMAPS;
    } else {
        s->header.autoclear_features &= ~QCOW2_AUTOCLEAR_BITMAPS;
    }
    ret = write_header_ext(bs, nb ? ext : NULL);
    if (ret < 0) {
        return ret;
    }
    s->bitmaps_nb = nb;
    s->bitmaps_dir_size = dir_len;
    s->bitmaps_dir_offset = dir_offset;
    s->bitmaps_in_use = nb > 0;
    if (old_size) {
        qcow2_meta_remove(s, old_offset, old_size, QCOW2_META_BITMAP_DIR);
        ret = qcow2_co_update_refcount(bs, old_offset, old_size, -1);
    }
    return ret;
}

int coroutine_fn qcow2_co_bitmaps_store(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    /* Nothing on disk and nothing added: the header stays as it is. */
    if (!s->bitmaps_loaded || (!s->bitmaps_in_use && !s->bitmaps->len)) {
        return 0;
    }
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);

        if (!bm->inconsistent && !bm->nbits) {
            /* A disk of size 0 has no bits to store: QEMU loses such
             * bitmaps too, and a table of 0 entries would be invalid. */
            g_ptr_array_remove_index(s->bitmaps, i--);
            continue;
        }
        if (!bm->inconsistent) {
            ret = store_one(bs, bm);
            if (ret < 0) {
                return ret;
            }
        }
    }
    ret = qcow2_co_bitmaps_write_dir(bs, QCOW2_BITMAP_DIR_ALL);
    if (ret < 0) {
        return ret;
    }
    set_disk_flags(s, false);
    ret = qcow2_co_bitmaps_free_old(bs, NULL);
    if (ret < 0) {
        return ret;
    }
    for (guint i = 0; i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);

        g_clear_pointer(&bm->bits, g_free);
    }
    s->bitmaps_loaded = false;
    return qcow2_co_flush_caches(bs);
}
