/* The request log of a blkdebug node opened with log=on, so tests can
 * assert the order in which writes and flushes reached its image. */
#ifndef QBLK_BLOCK_BLKDEBUG_H
#define QBLK_BLOCK_BLKDEBUG_H

#include <stdint.h>
#include <glib.h>
#include "qblk/block.h"

typedef struct BlkdebugLogEntry {
    char event;         /* 'r'ead, 'w'rite, 'f'lush, 'z'ero write, 'd'iscard */
    int64_t offset;     /* 0 for flushes */
    int64_t bytes;
} BlkdebugLogEntry;

/* Every request the node passed on to its image (injected failures are
 * not), oldest first; NULL if bs is not blkdebug or log=on was not given.
 * Valid until the node is closed. */
const GArray *blkdebug_log(BlockDriverState *bs);

#endif
