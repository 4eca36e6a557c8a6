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

/* A copy of hdr whose name (hdr_reads') is also at slot, and read there. */
static uint8_t *name_moved(const HeaderCommitOps *ops, const uint8_t *hdr,
                           const HeaderReads *hdr_reads, uint64_t slot, uint64_t area)
{
    uint8_t *copy = g_memdup2(hdr, area);

    memcpy(copy + slot, hdr + hdr_reads->name_off, hdr_reads->name_len);
    ops->set_name_offset(copy, slot);
    return copy;
}

/* Plans commits of targets[0..n) in turn from old (stages[i] for each),
 * true when every one is torn-safe. */
static bool plan_steps(const HeaderCommitOps *ops, const uint8_t *old, uint8_t **targets,
                       uint8_t **stages, int n, uint64_t span, uint64_t area)
{
    g_autofree uint8_t *cur = g_memdup2(old, area);

    for (int i = 0; i < n; i++) {
        if (!plan_commit(ops, cur, targets[i], span, area, stages[i])) {
            return false;
        }
        /* What the file holds after commit i. */
        memcpy(cur + HDR_SECTOR, stages[i] + HDR_SECTOR, span - HDR_SECTOR);
        memcpy(cur, targets[i], HDR_SECTOR);
    }
    return true;
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
 * When one commit cannot do it, names move to slots past everything the
 * old and the new header read, each move a commit of its own: the new
 * name first (it would overwrite the old one: the usual rebase, same
 * extensions, same offset), or the old name first (the new extensions
 * would overwrite it: a v2 -> v3 upgrade with a long name), or both.
 * Last, the bytes no header reads any more get what the single write would
 * have left (for qcow2 zeroes where the old name was), then a flush: the
 * file ends byte for byte as before, so it keeps QEMU's layout.
 *
 * Falls back to the single write (torn-unsafe, as QEMU's) when a byte past
 * sector 0 that the old header reads must change in place (qcow2: an
 * extension past byte 512 updated, removed or shifted), or the area has no
 * room for the slots. A header that fits in sector 0 (and a qcow2 image of
 * 512-byte clusters) is one write, which is atomic.
 */
int coroutine_fn header_co_commit(BlockDriverState *bs, const HeaderCommitOps *ops,
                                  const uint8_t *old, const uint8_t *new, uint64_t len,
                                  uint64_t area)
{
    HeaderReads ro = ops->reads(old, area), rn;
    uint64_t span, slot, slot2;
    g_autofree uint8_t *final = g_memdup2(old, area), *cur = g_memdup2(old, area);
    g_autofree uint8_t *old_moved = NULL, *new_moved = NULL, *new_moved2 = NULL;
    uint8_t *stages[3] = { NULL }, **plan = NULL;
    int steps = 0, ret = 0;
    bool wrote;

    memcpy(final, new, len);
    rn = ops->reads(final, area);
    /* The slots: past what either header reads, the old name's first. */
    slot = MAX(reads_end(&ro), reads_end(&rn));
    slot2 = slot + ro.name_len;
    span = MIN(sector_round_up(MAX(len, slot2 + rn.name_len)), area);
    if (span <= HDR_SECTOR) {
        return ops->write(bs, 0, len, new);
    }
    if (rn.name_len && slot2 + rn.name_len <= area) {
        new_moved = name_moved(ops, final, &rn, slot, area);
        new_moved2 = name_moved(ops, final, &rn, slot2, area);
    }
    if (ro.name_len && rn.name_len && slot2 + rn.name_len <= area) {
        old_moved = name_moved(ops, old, &ro, slot, area);
    }
    uint8_t *plans[][4] = {
        { final }, { new_moved, final }, { old_moved, final },
        { old_moved, new_moved2, final },
    };
    for (int i = 0; i < 3; i++) {
        stages[i] = g_malloc(area);
    }
    for (size_t p = 0; p < G_N_ELEMENTS(plans) && !steps; p++) {
        int n = 0;

        while (n < 3 && plans[p][n]) {
            n++;
        }
        if (n && plans[p][n - 1] == final && plan_steps(ops, old, plans[p], stages, n, span, area)) {
            plan = plans[p];
            steps = n;
        } else if (p == 0 && flips_first(ops, old, final, span, area)) {
            /* Sector 0 first: the new header reads nothing else that changes. */
            memcpy(stages[0] + HDR_SECTOR, old + HDR_SECTOR, span - HDR_SECTOR);
            plan = plans[0];
            steps = 1;
        }
    }
    for (int i = 0; i < steps && ret == 0; i++) {
        ret = run_commit(bs, ops, cur, plan[i], stages[i], span);
    }
    if (ret == 0 && steps) {
        ret = write_changed(bs, ops, cur, final, HDR_SECTOR, span, &wrote);
        if (ret == 0 && wrote) {
            ret = bdrv_co_flush(bs->file);
        }
    }
    for (int i = 0; i < 3; i++) {
        g_free(stages[i]);
    }
    return steps ? ret : ops->write(bs, 0, len, new);
}
