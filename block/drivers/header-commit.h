/* Rewrites of an image's header area that a power cut leaves reading as
 * the old header or the new one, never a mix (qcow2 and QED use it). */
#ifndef QBLK_BLOCK_HEADER_COMMIT_H
#define QBLK_BLOCK_HEADER_COMMIT_H

#include <stdbool.h>
#include <stdint.h>
#include "qblk/block_int.h"

/* The bytes of the header area a reader of one header version uses: its
 * fields and extensions, [0, fixed_end), and its backing file name. */
typedef struct HeaderReads {
    uint64_t fixed_end, name_off, name_len;
} HeaderReads;

typedef struct HeaderCommitOps {
    /* What a reader of the header in buf (area bytes) reads. */
    HeaderReads (*reads)(const uint8_t *buf, uint64_t area);
    /* Points the header in buf at a name at off (the size unchanged). */
    void (*set_name_offset)(uint8_t *buf, uint64_t off);
    /* Writes [off, off + len) of the file (the format's checked write). */
    int coroutine_fn (*write)(BlockDriverState *bs, uint64_t off, uint64_t len,
                              const uint8_t *buf);
} HeaderCommitOps;

/*
 * Makes [0, len) of the header area new, where old holds the area's first
 * area bytes as the file has them (len <= area). The file ends as one
 * write of new over [0, len) would leave it; where the layout allows, the
 * writes go in steps (see header-commit.c) so that a power cut at any
 * point leaves either header whole, and the file is flushed after them.
 * Otherwise it is that one write (torn-unsafe), and nothing is flushed.
 */
int coroutine_fn header_co_commit(BlockDriverState *bs, const HeaderCommitOps *ops,
                                  const uint8_t *old, const uint8_t *new, uint64_t len,
                                  uint64_t area);

#endif
