/* qemu-img bitmap's operations on a qcow2 image's persistent bitmaps
 * (add, remove, clear, enable, disable, merge), in memory until the
 * image is closed, with QEMU 7.2's checks and messages; and the bitmaps
 * list of qemu-img info. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include "block/drivers/qcow2-bitmap.h"

#define BME_MAX_BITMAPS      65535u
#define BME_MAX_NAME         1023u
#define BME_MAX_TABLE_SIZE   UINT64_C(0x8000000)
#define BME_MAX_PHYS_SIZE    UINT64_C(0x20000000)

static uint64_t dir_entry_size(size_t name_len)
{
    return (24 + name_len + 7) & ~(uint64_t)7;
}

/* QEMU's qcow2_co_can_store_new_dirty_bitmap. */
static bool can_store_new(BlockDriverState *bs, const char *name, uint32_t granularity,
                          GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t nbits = qcow2_bitmap_nbits(s->header.size, (uint32_t)__builtin_ctz(granularity));
    uint64_t dir_size = 0;
    const char *why = NULL;
    g_autofree char *why_buf = NULL;

    for (guint i = 0; i < s->bitmaps->len; i++) {
        dir_size += dir_entry_size(strlen(((Qcow2Bitmap *)g_ptr_array_index(s->bitmaps,
                                                                             i))->name));
    }
    if (s->header.version < 3) {
        why = "Cannot store dirty bitmaps in qcow2 v2 files";
    } else if (strlen(name) > BME_MAX_NAME) {
        why = why_buf = g_strdup_printf("Name length exceeds maximum (%u characters)",
                                        BME_MAX_NAME);
    } else if (qcow2_bitmap_table_size(s, nbits) > BME_MAX_TABLE_SIZE ||
               (nbits + 7) / 8 > BME_MAX_PHYS_SIZE) {
        why = "Too much space will be occupied by the bitmap. Use larger granularity";
    } else if (s->bitmaps->len >= BME_MAX_BITMAPS) {
        why = "Maximum number of persistent bitmaps is already reached";
    } else if (dir_size + dir_entry_size(strlen(name)) > QCOW2_BITMAP_DIR_MAX) {
        why = "Not enough space in the bitmap directory";
    }
    if (why) {
        qblk_error_set(errp, "Can't make bitmap '%s' persistent in '%s': %s", name,
                       bdrv_get_node_name(bs), why);
        return false;
    }
    return true;
}

static Qcow2Bitmap *find_usable(BDRVQcow2State *s, const char *name, GError **errp)
{
    Qcow2Bitmap *bm = qcow2_bitmap_find(s, name, NULL);

    if (!bm) {
        qblk_error_set(errp, "Dirty bitmap '%s' not found", name);
    } else if (bm->inconsistent) {
        qblk_error_set(errp, "Bitmap '%s' is inconsistent and cannot be used\n"
                       "Try block-dirty-bitmap-remove to delete this bitmap from disk", name);
        bm = NULL;
    }
    return bm;
}

/* Sets in dst every granule of dst that overlaps a set granule of src
 * (bitmaps of one image size, granularities may differ). */
static void merge_bits(Qcow2Bitmap *dst, const Qcow2Bitmap *src, const uint8_t *src_bits,
                       uint64_t size)
{
    for (uint64_t b = 0; b < src->nbits; b++) {
        uint64_t start, end;

        if (!(src_bits[b >> 3] & (1u << (b & 7)))) {
            if (!(b & 7) && !src_bits[b >> 3]) {
                b += 7;
            }
            continue;
        }
        start = b << src->granularity_bits;
        end = MIN((b + 1) << src->granularity_bits, size);
        qcow2_bitmap_set_range(dst->bits, start >> dst->granularity_bits,
                               ((end - 1) >> dst->granularity_bits) + 1);
    }
}

static int coroutine_fn do_merge(BlockDriverState *bs, const BdrvBitmapOp *op, GError **errp)
{
    BDRVQcow2State *s = bs->opaque, *ss;
    Qcow2Bitmap *dst = find_usable(s, op->name, errp), *src;
    g_autofree uint8_t *src_copy = NULL;
    const uint8_t *src_bits;

    if (!dst) {
        return -ENOENT;
    }
    if (op->src_bs->drv != bs->drv) {
        qblk_error_set(errp, "Dirty bitmap '%s' not found", op->src_name);
        return -ENOENT;
    }
    ss = op->src_bs->opaque;
    src = ss->bitmaps ? find_usable(ss, op->src_name, errp) : NULL;
    if (!src) {
        if (!ss->bitmaps) {
            qblk_error_set(errp, "Dirty bitmap '%s' not found", op->src_name);
        }
        return -ENOENT;
    }
    if (ss->header.size != s->header.size) {
        qblk_error_set(errp, "Bitmaps are of different sizes (destination size is %" PRIu64
                       ", source size is %" PRIu64 ") and can't be merged", s->header.size,
                       ss->header.size);
        return -EINVAL;
    }
    src_bits = src->bits;
    if (!src_bits) {
        /* A source image opened read-only: its bits are on disk. */
        int ret = qcow2_co_bitmap_read_bits(op->src_bs, src, false, &src_copy);

        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not read bitmap '%s'", src->name);
            return ret;
        }
        src_bits = src_copy;
    }
    merge_bits(dst, src, src_bits, s->header.size);
    return 0;
}

/* As QEMU: a bitmap on disk leaves the directory at once (a new one is
 * written) and its clusters are freed; one added in this session is
 * just forgotten. */
static int coroutine_fn do_remove(BlockDriverState *bs, const char *name, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    guint index;
    Qcow2Bitmap *bm = qcow2_bitmap_find(s, name, &index);
    int ret = 0;

    if (!bm) {
        qblk_error_set(errp, "Dirty bitmap '%s' not found", name);
        return -ENOENT;
    }
    if (bm->on_disk) {
        if (bm->inconsistent) {
            /* Its clusters were not loaded: found now, to be freed. */
            g_autofree uint8_t *unused = NULL;

            ret = qcow2_co_bitmap_read_bits(bs, bm, true, &unused);
        }
        bm->on_disk = false;
        if (ret == 0) {
            ret = qcow2_co_bitmaps_write_dir(bs, QCOW2_BITMAP_DIR_AS_ON_DISK);
        }
        if (ret == 0) {
            ret = qcow2_co_bitmaps_free_old(bs, bm);
        }
        if (ret < 0) {
            bm->on_disk = true;
            qblk_error_set_errno(errp, -ret, "Could not remove bitmap '%s'", name);
            return ret;
        }
    }
    g_ptr_array_remove_index(s->bitmaps, index);
    return 0;
}

static int coroutine_fn bitmap_op_locked(BlockDriverState *bs, const BdrvBitmapOp *op,
                                         GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Bitmap *bm;

    if (!s->bitmaps_loaded) {
        int ret = qcow2_co_bitmaps_load(bs, errp);

        if (ret < 0) {
            return ret;
        }
    }
    switch (op->kind) {
    case BDRV_BITMAP_ADD:
        if (!can_store_new(bs, op->name, op->granularity, errp)) {
            return -EINVAL;
        }
        if (qcow2_bitmap_find(s, op->name, NULL)) {
            qblk_error_set(errp, "Bitmap already exists: %s", op->name);
            return -EEXIST;
        }
        bm = g_new0(Qcow2Bitmap, 1);
        bm->name = g_strdup(op->name);
        bm->granularity_bits = (uint32_t)__builtin_ctz(op->granularity);
        bm->enabled = true;
        bm->nbits = qcow2_bitmap_nbits(s->header.size, bm->granularity_bits);
        bm->bits = g_malloc0((uint64_t)MAX(qcow2_bitmap_table_size(s, bm->nbits), 1) *
                             s->cluster_size);
        g_ptr_array_add(s->bitmaps, bm);
        return 0;
    case BDRV_BITMAP_REMOVE:
        return do_remove(bs, op->name, errp);
    case BDRV_BITMAP_CLEAR:
        bm = find_usable(s, op->name, errp);
        if (bm) {
            memset(bm->bits, 0, (uint64_t)MAX(qcow2_bitmap_table_size(s, bm->nbits), 1) *
                   s->cluster_size);
        }
        return bm ? 0 : -ENOENT;
    case BDRV_BITMAP_ENABLE:
    case BDRV_BITMAP_DISABLE:
        bm = find_usable(s, op->name, errp);
        if (bm) {
            bm->enabled = op->kind == BDRV_BITMAP_ENABLE;
        }
        return bm ? 0 : -ENOENT;
    case BDRV_BITMAP_MERGE:
        return do_merge(bs, op, errp);
    }
    g_assert_not_reached();
}

int coroutine_fn qcow2_co_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op,
                                    GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qco_mutex_lock(&s->lock);
    ret = bitmap_op_locked(bs, op, errp);
    qco_mutex_unlock(&s->lock);
    return ret;
}

/* As QEMU reads it, from the directory on disk: flags (in-use, auto),
 * name, granularity. */
GVariant *qcow2_bitmaps_info(BDRVQcow2State *s)
{
    GVariantBuilder list;
    bool any = false;

    g_variant_builder_init(&list, G_VARIANT_TYPE("av"));
    for (guint i = 0; s->bitmaps_in_use && s->bitmaps && i < s->bitmaps->len; i++) {
        Qcow2Bitmap *bm = g_ptr_array_index(s->bitmaps, i);
        GVariantBuilder entry, flags;

        if (!bm->on_disk) {
            continue;
        }
        g_variant_builder_init(&flags, G_VARIANT_TYPE("as"));
        if (bm->disk_flags & QCOW2_BME_IN_USE) {
            g_variant_builder_add(&flags, "s", "in-use");
        }
        if (bm->disk_flags & QCOW2_BME_AUTO) {
            g_variant_builder_add(&flags, "s", "auto");
        }
        g_variant_builder_init(&entry, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&entry, "{sv}", "flags", g_variant_builder_end(&flags));
        g_variant_builder_add(&entry, "{sv}", "name", g_variant_new_string(bm->name));
        g_variant_builder_add(&entry, "{sv}", "granularity",
                              g_variant_new_int64(INT64_C(1) << bm->granularity_bits));
        g_variant_builder_add(&list, "v", g_variant_builder_end(&entry));
        any = true;
    }
    if (!any) {
        g_variant_builder_clear(&list);
        return NULL;
    }
    return g_variant_builder_end(&list);
}
