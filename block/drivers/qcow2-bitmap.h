/* Helpers shared by the qcow2 bitmap files (qcow2-bitmap.c keeps them,
 * qcow2-bitmap-ops.c changes them for qemu-img bitmap). */
#ifndef QBLK_BLOCK_QCOW2_BITMAP_H
#define QBLK_BLOCK_QCOW2_BITMAP_H

#include "block/drivers/qcow2.h"

void qcow2_bitmaps_ensure_list(BDRVQcow2State *s);
void qcow2_bitmap_free_one(Qcow2Bitmap *bm);
uint64_t qcow2_bitmap_nbits(uint64_t size, uint32_t granularity_bits);
uint32_t qcow2_bitmap_table_size(const BDRVQcow2State *s, uint64_t nbits);
Qcow2Bitmap *qcow2_bitmap_find(BDRVQcow2State *s, const char *name, guint *index);
/* Sets bits [first, end). */
void qcow2_bitmap_set_range(uint8_t *bits, uint64_t first, uint64_t end);
/* bm's bits as stored on disk, in a new buffer of whole clusters; with
 * old, its table and data clusters are remembered to be freed on store. */
int coroutine_fn qcow2_co_bitmap_read_bits(BlockDriverState *bs, Qcow2Bitmap *bm, bool old,
                                           uint8_t **out);
/* Frees the loaded table and data clusters of owner (NULL: all). */
int coroutine_fn qcow2_co_bitmaps_free_old(BlockDriverState *bs, const Qcow2Bitmap *owner);
/* Directories: ALL, one entry per bitmap of the list (on disk or new);
 * IN_USE, the same flagged in use (the consistent ones) while open;
 * AS_ON_DISK, only those on disk, flags as there. */
enum { QCOW2_BITMAP_DIR_ALL, QCOW2_BITMAP_DIR_IN_USE, QCOW2_BITMAP_DIR_AS_ON_DISK };
/* Writes a new directory (the mode above), points the header at it and
 * frees the old one. */
int coroutine_fn qcow2_co_bitmaps_write_dir(BlockDriverState *bs, int mode);

#endif
