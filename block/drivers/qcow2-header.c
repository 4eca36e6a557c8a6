/* qcow2's header cluster for header_co_commit: what a reader of a header
 * uses, so that rewrites of cluster 0 can go in torn-safe steps. */
#include "block/drivers/header-commit.h"
#include "block/drivers/qcow2.h"

/* Open's walk (and QEMU's): the fields, then extensions until the end
 * marker (or the name), then the name. Open validated the list. */
static HeaderReads qcow2_header_reads(const uint8_t *buf, uint64_t area)
{
    uint64_t hl = qblk_ld_be32(buf + QCOW2_HDR_OFF(version)) >= 3 ?
                  qblk_ld_be32(buf + QCOW2_HDR_OFF(header_length)) : QCOW2_V2_HEADER_SIZE;
    uint64_t name_off = qblk_ld_be64(buf + QCOW2_HDR_OFF(backing_file_offset));
    uint64_t name_len = qblk_ld_be32(buf + QCOW2_HDR_OFF(backing_file_size));
    uint64_t limit = name_off && name_off < area ? name_off : area, off;

    hl = MIN(hl, area);
    for (off = hl; off + 8 <= limit;) {
        uint32_t type = qblk_ld_be32(buf + off), len = qblk_ld_be32(buf + off + 4);

        off += 8;
        if (type == QCOW2_EXT_END) {
            break;
        }
        off += ((uint64_t)len + 7) & ~UINT64_C(7);
    }
    name_off = MIN(name_off, area);
    return (HeaderReads) {
        .fixed_end = MIN(off, area),
        .name_off = name_off,
        .name_len = name_off ? MIN(name_len, area - name_off) : 0,
    };
}

static void qcow2_header_set_name_offset(uint8_t *buf, uint64_t off)
{
    qblk_st_be64(buf + QCOW2_HDR_OFF(backing_file_offset), off);
}

static int coroutine_fn qcow2_header_co_write(BlockDriverState *bs, uint64_t off,
                                              uint64_t len, const uint8_t *buf)
{
    return qcow2_co_pwrite_meta(bs, QCOW2_META_HEADER, off, len, buf);
}

static const HeaderCommitOps qcow2_header_ops = {
    .reads = qcow2_header_reads,
    .set_name_offset = qcow2_header_set_name_offset,
    .write = qcow2_header_co_write,
};

int coroutine_fn qcow2_co_commit_header(BlockDriverState *bs, const uint8_t *old,
                                        const uint8_t *new, uint64_t len)
{
    return header_co_commit(bs, &qcow2_header_ops, old, new, len,
                            ((BDRVQcow2State *)bs->opaque)->cluster_size);
}
