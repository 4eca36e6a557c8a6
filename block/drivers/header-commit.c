/* Header rewrites in steps that a power cut cannot leave half done, where
 * the layout allows it (the design note is above header_co_commit). */
#include <string.h>
#include "block/drivers/header-commit.h"

/* What a torn write keeps whole (the crash model's unit, and a disk's). */
#define HDR_SECTOR 512u

static uint64_t sector_round_up(uint64_t n)
{
    return (n + HDR_SECTOR - 1) / HDR_SECTOR * HDR_SECTOR;
}

static bool reads_byte(const HeaderReads *r, uint64_t b)
{
    return b < r->fixed_end || (b >= r->name_off && b < r->name_off + r->name_len);
}

static uint64_t reads_end(const HeaderReads *r)
{
    return MAX(r->fixed_end, r->name_off + r->name_len);
}

/* One commit of target over cur (cur: what the file holds), planned in
 * memory. Sectors 1.. become stage: target, except that bytes cur reads
 * and target does not keep cur's value (so cur's header stays whole until
 * sector 0 flips to target's); false when stage changes a byte cur reads
 * there (a torn or lost write would then break cur's header). */
static bool plan_commit(const HeaderCommitOps *ops, const uint8_t *cur,
                        const uint8_t *target, uint64_t span, uint64_t area, uint8_t *stage)
{
    HeaderReads rc = ops->reads(cur, area), rt = ops->reads(target, area);

    memcpy(stage, target, span);
    for (uint64_t b = HDR_SECTOR; b < span; b++) {
        if (reads_byte(&rc, b) && !reads_byte(&rt, b)) {
            stage[b] = cur[b];
        } else if (stage[b] != cur[b] && reads_byte(&rc, b)) {
            return false;
        }
    }
    return true;
}

/* Whether target reads no byte past sector 0 that differs from cur: then
 * sector 0 alone switches headers (e.g. a backing file removed, the
 * extensions moving into sector 0), the rest following as unread bytes. */
static bool flips_first(const HeaderCommitOps *ops, const uint8_t *cur, const uint8_t *target,
                        uint64_t span, uint64_t area)
{
    HeaderReads rt = ops->reads(target, area);

    for (uint64_t b = HDR_SECTOR; b < span; b++) {
        if (cur[b] != target[b] && reads_byte(&rt, b)) {
            return false;
        }
    }
    return true;
}

/* Writes the sectors of [from, span) where want differs from cur, as one
 * request from the first such sector to the last (the ones between are
 * rewritten unchanged), then records them in cur. */
static int coroutine_fn write_changed(BlockDriverState *bs, const HeaderCommitOps *ops,
                                      uint8_t *cur, const uint8_t *want,
                                      uint64_t from, uint64_t span, bool *wrote)
{
    uint64_t first = span, last = from;
    int ret;

    for (uint64_t sec = from; sec < span; sec += HDR_SECTOR) {
        uint64_t n = MIN(HDR_SECTOR, span - sec);

        if (memcmp(cur + sec, want + sec, n)) {
            first = MIN(first, sec);
            last = sec + n;
        }
    }
    *wrote = first < last;
    if (!*wrote) {
        return 0;
    }
    ret = ops->write(bs, first, last - first, want + first);
    if (ret == 0) {
        memcpy(cur + first, want + first, last - first);
    }
    return ret;
}

/* Runs a planned commit: stage's sectors 1.., a flush, target's sector 0
 * (one sector: whole or not at all), a flush. */
static int coroutine_fn run_commit(BlockDriverState *bs, const HeaderCommitOps *ops,
                                   uint8_t *cur, const uint8_t *target,
                                   const uint8_t *stage, uint64_t span)
{
    bool wrote;
    int ret = write_changed(bs, ops, cur, stage, HDR_SECTOR, span, &wrote);

    if (ret == 0 && wrote) {
        ret = bdrv_co_flush(bs->file);
    }
    if (ret == 0) {
        ret = write_changed(bs, ops, cur, target, 0, MIN(HDR_SECTOR, span), &wrote);
    }
    if (ret == 0 && wrote) {
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

/*
 * A rewrite of the header area used to be one write of [0, len). A power
 * cut may keep only its first sectors: sector 0 (the fields, with the new
 * name's offset and size) without the rest (the name, extensions past
 * byte 512), a header naming a mix of old and new bytes. So the new bytes
 * go down in commits, each leaving at every point a header that reads only
 * bytes of one version:
 *
 *   1. sectors 1.. take the target's bytes, except bytes the current header
 *      reads (those keep their value, so the current header stays whole
 *      whatever part of this write lands); flush;
 *   2. sector 0 alone (fields and pointers switch at once); flush.
 *
 * When the new header reads no byte past sector 0 that changes (a backing
 * file removed), sector 0 goes first and step 1 is left to the end.
 *
 * When the new name would overwrite the old one (the usual case: the same
 * extensions, so the same offset), one commit cannot do it: the name goes
 * first to a slot past both the old and the new layout (a commit pointing
 * there), then to its final place (a second commit). Last, the bytes no
 * header reads any more get what the single write would have left (for
 * qcow2 zeroes where the old name was), then a flush: the file ends byte
 * for byte as before, so it keeps QEMU's layout.
 *
 * Falls back to the single write (torn-unsafe, as QEMU's) when a byte past
 * sector 0 that the old header reads must change (qcow2: an extension
 * added, removed or resized before others; a version change), or the
 * area has no room for the second slot. A header that fits in sector 0
 * (and a qcow2 image of 512-byte clusters) is one write, which is atomic.
 */
int coroutine_fn header_co_commit(BlockDriverState *bs, const HeaderCommitOps *ops,
                                  const uint8_t *old, const uint8_t *new, uint64_t len,
                                  uint64_t area)
{
    HeaderReads ro = ops->reads(old, area), rn;
    uint64_t span, slot;
    g_autofree uint8_t *final = g_memdup2(old, area), *cur = g_memdup2(old, area);
    g_autofree uint8_t *stage = g_malloc(area), *mid = NULL, *mid_stage = NULL;
    bool wrote;
    int ret;

    memcpy(final, new, len);
    rn = ops->reads(final, area);
    slot = MAX(reads_end(&ro), reads_end(&rn));
    span = MIN(sector_round_up(MAX(len, slot)), area);
    if (span <= HDR_SECTOR) {
        goto single;
    }
    if (plan_commit(ops, cur, final, span, area, stage)) {
        /* One commit does it. */
    } else if (flips_first(ops, cur, final, span, area)) {
        /* Sector 0 first: the new header reads nothing else that changes. */
        memcpy(stage + HDR_SECTOR, cur + HDR_SECTOR, span - HDR_SECTOR);
    } else {
        /* Through a second slot for the name, past everything both read. */
        if (!rn.name_len || slot + rn.name_len > area) {
            goto single;
        }
        span = MIN(sector_round_up(MAX(span, slot + rn.name_len)), area);
        mid = g_memdup2(final, area);
        mid_stage = g_malloc(area);
        memcpy(mid + slot, final + rn.name_off, rn.name_len);
        ops->set_name_offset(mid, slot);
        if (!plan_commit(ops, cur, mid, span, area, mid_stage)) {
            goto single;
        }
        /* What the file holds after the first commit, to plan the second. */
        memcpy(cur + HDR_SECTOR, mid_stage + HDR_SECTOR, span - HDR_SECTOR);
        memcpy(cur, mid, HDR_SECTOR);
        if (!plan_commit(ops, cur, final, span, area, stage)) {
            goto single;
        }
        memcpy(cur, old, area);
        ret = run_commit(bs, ops, cur, mid, mid_stage, span);
        if (ret < 0) {
            return ret;
        }
    }
    ret = run_commit(bs, ops, cur, final, stage, span);
    if (ret == 0) {
        ret = write_changed(bs, ops, cur, final, HDR_SECTOR, span, &wrote);
        if (ret == 0 && wrote) {
            ret = bdrv_co_flush(bs->file);
        }
    }
    return ret;

single:
    return ops->write(bs, 0, len, new);
}
