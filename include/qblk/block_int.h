/* The driver-author API: the BlockDriver table every driver exports, the
 * BlockDriverState fields a driver may read and set, and the limits the
 * block core enforces on the driver's behalf. */
#ifndef QBLK_BLOCK_INT_H
#define QBLK_BLOCK_INT_H

#include "qblk/block.h"
#include "util/error.h"

/* Alignment and size limits for one node, set by the driver's open (or
 * refresh_limits). The core guarantees every request the driver sees
 * respects them. 0 means "no constraint". */
typedef struct BlockLimits {
    uint32_t request_alignment;    /* reads/writes: offsets and lengths multiple of this (>= 1) */
    uint32_t min_mem_alignment;    /* buffer address alignment the host needs (O_DIRECT) */
    int64_t max_transfer;          /* largest read/write */
    uint32_t pwrite_zeroes_alignment; /* zero writes below this go to the fallback */
    int64_t max_pwrite_zeroes;     /* largest zero write in one driver call */
    uint32_t pdiscard_alignment;
    int64_t max_pdiscard;
} BlockLimits;

typedef struct BdrvTrackedRequest BdrvTrackedRequest;

struct BlockDriverState {
    const BlockDriver *drv;
    void *opaque;                  /* drv->instance_size bytes, zeroed */
    char *filename;                /* the file this node reads (protocol: the path) */
    char *exact_filename;          /* what the user named (for messages) */
    int open_flags;                /* BDRV_O_* */
    bool read_only;
    bool probed_raw;               /* raw chosen by probing: block 0 restricted */
    unsigned copy_on_read;         /* users that enabled copy-on-read */
    bool no_flush;
    bool discard_unmap;
    BdrvDetectZeroes detect_zeroes; /* option detect-zeroes (block/io.c) */
    bool growable;                 /* requests may pass the end (a format's file child) */
    int refcnt;

    BlockDriverState *file;        /* protocol/child node (format and filter drivers) */
    BlockDriverState *backing;     /* opened backing image, or NULL */
    char *backing_file;            /* name as stored in the image header */
    char *backing_format;          /* format as stored, or NULL */
    char *full_backing_filename;   /* backing_file resolved against this image's dir */
    /* What the backing link is expected to be (QEMU's auto_backing_file):
     * the backing node's filename when opened from the header, else the
     * header's name; a backing node with another filename (or none where
     * the header names one) is an override (bdrv_backing_overridden). */
    char *auto_backing_file;

    BlockLimits bl;
    /* Declared by the driver's open. Request flags the driver honours natively. */
    unsigned supported_write_flags;   /* subset of FUA */
    unsigned supported_zero_flags;    /* subset of MAY_UNMAP | FUA | NO_FALLBACK */
    /* This node's co_pwrite_zeroes would refuse every request with -ENOTSUP
     * (null-co zeroes=none): the core writes zero buffers without asking. */
    bool no_native_zeroes;
    /* The driver keeps no image state in memory and each byte of the node
     * is the same byte of bs->file (raw): the core takes multi-writer
     * safety from bs->file. Filters (is_filter) are so implicitly. */
    bool maps_file_1to1;
    /* Computed by the block core from the declarations above and the
     * driver's callbacks (bdrv_refresh_capabilities); drivers only read it. */
    BlockCapabilities caps;

    unsigned in_flight;
    struct BdrvTrackedRequest *tracked_requests;  /* newest first, linked by next/prev */
    unsigned nb_serialising;       /* of them serialising: without any, plain
                                    * requests need not look at the list */

    /* The node graph (block/graph.c, perm.c): the name, the links behind
     * file and backing (file_link also for a filter's "image"), the links
     * into this node, and the cumulative permissions last given to
     * drv->set_perm. */
    char node_name[BDRV_NODE_NAME_MAX + 1];
    BdrvChild *file_link, *backing_link;
    GSList *parents;               /* of BdrvChild, newest first */
    uint64_t cum_perm, cum_shared;
    bool force_share;              /* BDRV_O_FORCE_SHARE */
    /* Drained sections (block/drain.c). */
    unsigned quiesce_counter;
    CoQueue quiesce_queue;         /* requests waiting for the section's end */
    CoQueue drain_waiters;         /* drained_begin waiting for in_flight == 0 */

    /* Set during bdrv_check_with_progress (else NULL). */
    BdrvProgressFunc *check_progress;
    void *check_progress_opaque;
    /* Where check findings go (bdrv_set_check_report; NULL: dropped). */
    BdrvCheckReportFunc *check_report;
    void *check_report_opaque;
};

/* For drivers' co_check: reports how far the check is (0..100). */
void bdrv_check_report_progress(BlockDriverState *bs, double percent);
/* For drivers' co_check: one finding, one line as qemu-img prints it
 * (no newline), to the node's check report function. Never print. */
void bdrv_check_report(BlockDriverState *bs, BdrvCheckMsgKind kind, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* For drivers: tells the process's corruption handler (never print). */
void bdrv_report_corruption(const BdrvCorruptionEvent *ev);



/* One driver. Every callback is optional unless marked required; the
 * comment says what the block core does when it is missing. The core
 * never modifies a driver table. */
struct BlockDriver {
    const char *format_name;       /* required */
    size_t instance_size;
    /* Protocol drivers open a host resource by filename and have no file
     * child; format and filter drivers sit on bs->file. */
    bool is_protocol;
    bool is_filter;                /* passes data through (blkdebug) */
    bool supports_backing;
    const char *child_key;         /* option prefix of the file child ("file", "image") */
    /* The filename prefix that names this driver when no "driver" option
     * is given ("null-co://", "blkdebug:"); NULL: none. Protocols so named
     * are a format's file child; filters so named open directly. */
    const char *protocol_prefix;
    /* Turns a filename carrying protocol_prefix into options (e.g.
     * "blkdebug:CONFIG:IMAGE" into config and image.filename); the core
     * then drops the filename. Missing: the filename is passed to open as
     * the "filename" option, prefix and all. */
    bool (*parse_filename)(const char *filename, QblkOpts *options, GError **errp);
    /* For a driver named by several prefixes (nbd:, nbd+unix://, ...):
     * whether it claims this filename, used like protocol_prefix (which
     * it may leave NULL). Missing: protocol_prefix alone decides. */
    bool (*claims_filename)(const char *filename);

    /* Score 0..100 for a header sample (format drivers). Missing: never chosen by probing. */
    int (*probe)(const uint8_t *buf, int buf_size, const char *filename);
    /* Exactly one of open and co_open is required. options: the driver
     * takes what it understands (leftovers are an error). bs->file is
     * already open for format/filter drivers. Must set bs->bl as needed.
     * Both run in coroutine context (the core opens inside a coroutine):
     * co_open may yield (read its metadata with bdrv_co_*); open must not
     * yield and must not run the event loop. */
    int (*open)(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp);
    int coroutine_fn (*co_open)(BlockDriverState *bs, QblkOpts *options, int flags,
                                GError **errp);
    /* At most one of close and co_close; called in coroutine context once
     * the node is drained and (if writable) flushed; children are still
     * open. co_close may yield; close must not, nor run the loop. co_close
     * returns the first error of what it writes on the way out (a format's
     * last tables, flags, bitmaps), -errno, which bdrv_unref_flush passes
     * on; the node is closed either way. */
    void (*close)(BlockDriverState *bs);
    int coroutine_fn (*co_close)(BlockDriverState *bs);
    /* The node's cumulative permissions changed (perm: BLK_PERM_* held by
     * any parent or user; shared: those every one of them shares). Called by
     * the graph after open and whenever a user or parent comes, goes or
     * changes its permissions. All-or-nothing: on error nothing changed.
     * file-posix turns them into QEMU-compatible OFD locks, so another
     * process's conflicting use is refused here. Missing: nothing to do. */
    int (*set_perm)(BlockDriverState *bs, uint64_t perm, uint64_t shared, GError **errp);
    /* Reopen with new flags (BDRV_O_RDWR, NOCACHE, NO_FLUSH may change;
     * bs->open_flags still holds the old ones). prepare: acquire and check
     * what the new flags need without changing what requests see; called
     * on every reopened node, parents before children, before any commit,
     * so a format going read-only flushes and marks its image clean here
     * while its file is still writable. commit: switch over, cannot fail
     * (children first). abort: release what a successful prepare acquired.
     * Missing: nothing to do at this level. */
    int coroutine_fn (*co_reopen_prepare)(BlockDriverState *bs, int flags, GError **errp);
    void (*reopen_commit)(BlockDriverState *bs, int flags);
    void (*reopen_abort)(BlockDriverState *bs, int flags);
    /* Missing: "Driver '%s' does not support image creation". */
    int coroutine_fn (*co_create)(const char *filename, QblkOpts *options, GError **errp);
    const QblkOptDesc *create_opts; /* NULL-name terminated */
    /* Names of the create options an existing image can change (NULL
     * terminated), and the change. Missing: no amendment. */
    const char *const *amend_opts;
    int coroutine_fn (*co_amend)(BlockDriverState *bs, QblkOpts *opts,
                                 BdrvProgressFunc *progress, void *opaque, GError **errp);

    /* Required (reads). offset/bytes respect bs->bl.request_alignment. */
    int coroutine_fn (*co_preadv)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  QIOVector *qiov, BdrvRequestFlags flags);
    /* Missing: writes fail with -ENOTSUP (read-only driver). flags ⊆ supported_write_flags. */
    int coroutine_fn (*co_pwritev)(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                   QIOVector *qiov, BdrvRequestFlags flags);
    /* Missing or -ENOTSUP: the core writes zero buffers (unless NO_FALLBACK).
     * Any other error is returned as is. flags ⊆ supported_zero_flags. */
    int coroutine_fn (*co_pwrite_zeroes)(BlockDriverState *bs, int64_t offset,
                                         int64_t bytes, BdrvRequestFlags flags);
    /* Missing or -ENOTSUP: discard succeeds doing nothing (it is advisory). */
    int coroutine_fn (*co_pdiscard)(BlockDriverState *bs, int64_t offset, int64_t bytes);
    /* Flushes the driver's own state to bs->file (format) or to stable
     * storage (protocol). The core flushes bs->file afterwards. Missing: nothing
     * to flush at this level. */
    int coroutine_fn (*co_flush)(BlockDriverState *bs);
    /* Missing: the whole range is DATA|ALLOCATED (protocol: also
     * OFFSET_VALID at the same offset in bs itself). */
    int coroutine_fn (*co_block_status)(BlockDriverState *bs, bool want_zero,
                                        int64_t offset, int64_t bytes, int64_t *pnum,
                                        int64_t *map, BlockDriverState **file);
    /* Missing: "Image format driver does not support resize" (-ENOTSUP). */
    int coroutine_fn (*co_truncate)(BlockDriverState *bs, int64_t offset, bool exact,
                                    PreallocMode prealloc, GError **errp);
    /* Missing: -ENOTSUP ("This image format does not support checks"). */
    int coroutine_fn (*co_check)(BlockDriverState *bs, BdrvCheckResult *res,
                                 BdrvCheckMode fix);
    /* Required for protocol drivers; formats may leave it missing to
     * mean "same as bs->file". */
    int64_t (*getlength)(BlockDriverState *bs);
    /* Missing: the sum over bs->file (or -ENOTSUP for protocols). */
    int64_t (*get_allocated_file_size)(BlockDriverState *bs);
    /* Missing: cluster size 0, vm state offset 0. */
    int (*get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);
    /* Drops all data of this layer so reads see the backing chain again
     * (after a commit). Missing: -ENOTSUP, the commit leaves it as is. */
    int coroutine_fn (*co_make_empty)(BlockDriverState *bs);
    /* Missing: no internal snapshots. Same contract as bdrv_snapshot_list. */
    int (*snapshot_list)(BlockDriverState *bs, BdrvSnapshotInfo **list);
    /* Missing: -ENOTSUP. See bdrv_snapshot_create/goto/delete. */
    int coroutine_fn (*co_snapshot_create)(BlockDriverState *bs, const char *name);
    int coroutine_fn (*co_snapshot_goto)(BlockDriverState *bs, const char *id_or_name);
    int coroutine_fn (*co_snapshot_delete)(BlockDriverState *bs, const char *name);
    /* VM state (qemu-io read/write -b): bytes at pos of the area the
     * format keeps for it. Missing: -ENOTSUP. */
    int coroutine_fn (*co_save_vmstate)(BlockDriverState *bs, QIOVector *qiov, int64_t pos);
    int coroutine_fn (*co_load_vmstate)(BlockDriverState *bs, QIOVector *qiov, int64_t pos);
    /* Persistent dirty bitmaps. Missing: the image cannot store any
     * (see bdrv_co_bitmap_op). */
    int coroutine_fn (*co_bitmap_op)(BlockDriverState *bs, const BdrvBitmapOp *op,
                                     GError **errp);
    /* Missing: no format-specific information. See bdrv_get_specific_info. */
    GVariant *(*get_specific_info)(BlockDriverState *bs);
    /* Rewrites the image's link to its backing file on disk (file NULL:
     * none; fmt may be NULL); the core updates bs->backing_* and flushes.
     * The open backing node, if any, stays attached. Missing: -ENOTSUP. */
    int coroutine_fn (*co_change_backing_file)(BlockDriverState *bs, const char *file,
                                               const char *fmt);
    /* See bdrv_measure; options were checked against create_opts. Not in
     * a coroutine. Missing: "does not support size measurement". */
    int (*measure)(QblkOpts *options, BlockDriverState *in_bs, BlockMeasureInfo *info,
                   GError **errp);
};

/* The driver registry, an explicit array (no constructor magic). */
extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_null_co;
extern const BlockDriver bdrv_blkdebug;
extern const BlockDriver bdrv_qcow2;
extern const BlockDriver bdrv_qed;
extern const BlockDriver bdrv_copy_on_read;
extern const BlockDriver bdrv_nbd;
extern const BlockDriver bdrv_log_writes;
#ifdef QBLK_HAVE_RBD
extern const BlockDriver bdrv_rbd;
#endif

/* Helpers for drivers. */

/* For format drivers: reads [pos, pos+n) of bs's backing chain into qiov
 * at qiov_off; zeroes without a backing file and past its end. */
int coroutine_fn bdrv_co_read_backing(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                      QIOVector *qiov, size_t qiov_off);
/* The format driver that probing would choose for this header sample
 * (raw when nothing else claims it). */
const BlockDriver *bdrv_probe_buffer(const uint8_t *buf, int len, const char *filename);
/* Shared read-only buffer of zeroes, BDRV_ZERO_BUF_SIZE bytes. */
#define BDRV_ZERO_BUF_SIZE (1024 * 1024)
const void *bdrv_zero_buffer(void);

/* The driver a filename names by its prefix when no driver is given (the
 * one whose protocol_prefix starts it; "file" when none does). */
const BlockDriver *bdrv_find_protocol(const char *filename);

/* QEMU's name of the permission with bit index bit (BLK_PERM_*), as its
 * messages use it ("consistent read", "write", ...). */
const char *bdrv_perm_name(unsigned bit);
/* Whether a filename starts with "<name>:" before any '/' (QEMU's
 * path_has_protocol). */
bool bdrv_path_has_protocol(const char *path);

/* For format drivers' co_create: creates filename empty with the protocol
 * it names (bdrv_co_create_file with size 0) and opens it read-write
 * with that protocol into *file (one reference: drop it with
 * bdrv_co_unref). 0, or the create's -errno (-EIO when the open fails)
 * with *errp set and *file NULL. */
int coroutine_fn bdrv_co_create_open_file(const char *filename, BlockDriverState **file,
                                          GError **errp);

#endif
