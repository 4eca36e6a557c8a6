/* qblk's user API: open images, issue requests (coroutine or synchronous),
 * query status and metadata. Tools and the storage daemon use only this. */
#ifndef QBLK_BLOCK_H
#define QBLK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include "util/coroutine.h"
#include "util/iov.h"
#include "util/opts.h"

typedef struct BlockDriverState BlockDriverState;
typedef struct BlockDriver BlockDriver;

/* Flags carried by each request. A driver declares which write flags it
 * honours natively (supported_write_flags / supported_zero_flags); the
 * block core emulates or drops the others as documented per flag. */
typedef enum {
    /* Read: populate the top image from its backing chain (copy-on-read). */
    BDRV_REQ_COPY_ON_READ = 0x1,
    /* Write: the data is all zeroes (no buffer). Internal to the core. */
    BDRV_REQ_ZERO_WRITE   = 0x2,
    /* Zero write: the driver may deallocate instead of writing zeroes. */
    BDRV_REQ_MAY_UNMAP    = 0x4,
    /* Write: data is stable on return. Emulated with one flush when the
     * driver does not honour it. */
    BDRV_REQ_FUA          = 0x10,
    /* Write: store the data compressed (whole clusters of unallocated
     * space; drivers that cannot fail with -ENOTSUP, no fallback). */
    BDRV_REQ_WRITE_COMPRESSED = 0x20,
    /* Write: the data equals what reads already return (copy-on-read), so
     * losing it in a crash loses nothing: drivers may order its metadata
     * lazily. */
    BDRV_REQ_WRITE_UNCHANGED = 0x40,
    /* Zero write: fail with -ENOTSUP rather than write zero buffers. */
    BDRV_REQ_NO_FALLBACK  = 0x100,
    /* Internal: the request is serialised against overlapping ones. */
    BDRV_REQ_SERIALISING  = 0x200,
} BdrvRequestFlags;

/* Open flags. */
enum {
    BDRV_O_RDWR          = 0x0002,
    BDRV_O_SNAPSHOT      = 0x0008,  /* writes go to a temporary overlay (qemu-io -s) */
    BDRV_O_NOCACHE       = 0x0020,  /* O_DIRECT on the host file */
    BDRV_O_NO_FLUSH      = 0x0200,  /* cache=unsafe: flushes do nothing */
    BDRV_O_COPY_ON_READ  = 0x0400,
    BDRV_O_NO_BACKING    = 0x0100,  /* do not open the backing file */
    BDRV_O_UNMAP         = 0x4000,  /* discard passes through */
    BDRV_O_CHECK         = 0x8000,  /* opened by a checker: no repair on open */
    BDRV_O_RESIZE        = 0x0004,  /* the tool's user takes 'resize' (qemu-img resize) */
    BDRV_O_FORCE_SHARE   = 0x10000, /* option force-share=on: links into the node share
                                     * everything (read-only nodes only) */
    BDRV_O_AUTO_RDONLY   = 0x20000, /* option auto-read-only=on: a protocol node that
                                     * cannot be opened for writing (EACCES, EPERM,
                                     * EROFS) opens read-only instead, and so do the
                                     * nodes above it */
};

/* Permissions a user of a node takes (and shares or not), with QEMU 7.2's
 * bit values: file-posix locks byte 100+i for each permission held and
 * 200+i for each one not shared (i = bit index), as QEMU does. */
typedef enum {
    BLK_PERM_CONSISTENT_READ = 0x01,
    BLK_PERM_WRITE           = 0x02,
    BLK_PERM_WRITE_UNCHANGED = 0x04,
    BLK_PERM_RESIZE          = 0x08,
    BLK_PERM_GRAPH_MOD       = 0x10,   /* qblk only: not one of QEMU 7.2's lock bytes */
    BLK_PERM_ALL             = 0x1f,
} BlockPermission;

/* A cache mode name (none/off, directsync, writethrough, writeback,
 * unsafe) into open flags (BDRV_O_NOCACHE, BDRV_O_NO_FLUSH) and whether
 * writes must be written through; false for an unknown name. */
bool bdrv_parse_cache_mode(const char *mode, int *flags, bool *writethrough);

/* Largest request length for read/write (qemu-io's limit); write-zeroes,
 * discard and block status take any 64-bit length. */
#define BDRV_REQUEST_MAX_BYTES 2147483136LL

/* Largest image length: INT64_MAX rounded down to 1 GiB, as QEMU's. */
#define BDRV_MAX_LENGTH (INT64_MAX & ~((1LL << 30) - 1))

/* Block status bits (bdrv_co_block_status). */
#define BDRV_BLOCK_DATA          0x01  /* reads come from the host, not implicit zeroes */
#define BDRV_BLOCK_ZERO          0x02  /* reads as zeroes */
#define BDRV_BLOCK_OFFSET_VALID  0x04  /* *map is a host offset in *file */
#define BDRV_BLOCK_RAW           0x08  /* driver: ask *file at *map instead */
#define BDRV_BLOCK_ALLOCATED     0x10  /* this layer decides the content */
#define BDRV_BLOCK_EOF           0x20  /* the range reaches end of image */
#define BDRV_BLOCK_RECURSE       0x40  /* driver: zero-ness may be refined by *file */
#define BDRV_BLOCK_COMPRESSED    0x80

/* ----- Open, create, close -----
 *
 * The control path is coroutine-first: every operation that does I/O has
 * a bdrv_co_* version, to be called in coroutine context (a server's
 * handlers, jobs, drivers' co_create). The names without _co_ are
 * synchronous wrappers for the edge (tools' main, tests): each runs its
 * bdrv_co_* version in a new coroutine and runs the event loop until it
 * is done, and aborts when called inside a coroutine (a loop spun there
 * would run other coroutines on this one's stack and could wait for
 * itself). The exceptions, callable both ways because they do no I/O and
 * never run the loop, say so ("Mixed"). */

/* Opens an image. `filename` may be NULL when options name everything.
 * options (consumed; may be NULL) keys: driver, file.*, backing.*,
 * backing (="" or "null" for none), copy-on-read, cache.direct,
 * cache.no-flush, discard, read-only, and driver-specific keys.
 * flags: BDRV_O_*. Without "driver" the format is probed; a raw
 * result is marked probed (block 0 writes restricted) and *probed_raw
 * (if non-NULL) is set. Returns a node with one reference. */
BlockDriverState *coroutine_fn bdrv_co_open(const char *filename, QblkOpts *options,
                                            int flags, bool *probed_raw, GError **errp);
BlockDriverState *bdrv_open(const char *filename, QblkOpts *options, int flags,
                            bool *probed_raw, GError **errp);
/* Mixed. */
void bdrv_ref(BlockDriverState *bs);
/* Mixed. How many references bs has (its opener's, one per parent link,
 * and other holders', e.g. a copy-on-read filter's bottom). */
int bdrv_get_refcnt(BlockDriverState *bs);
/* Drops a reference (bs may be NULL); the last one drains, flushes if
 * writable, closes. In a coroutine use bdrv_co_unref: bdrv_unref aborts
 * there even when the reference is not the last, so the bug shows in
 * every run, not only in the one that closes. */
void coroutine_fn bdrv_co_unref(BlockDriverState *bs);
void bdrv_unref(BlockDriverState *bs);
/* bdrv_unref for a writer that must know its writes reached the image:
 * when the reference is the last, the close's flushes (every writable
 * node of the graph, top-down, before and after its driver's close) are
 * checked and the first error comes back as -errno. 0 when nothing
 * failed, when bs is NULL or read-only (nothing flushed), and when
 * another reference keeps bs open (nothing closed, so nothing to say:
 * its last holder learns it). */
int coroutine_fn bdrv_co_unref_flush(BlockDriverState *bs);
int bdrv_unref_flush(BlockDriverState *bs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BlockDriverState, bdrv_unref)

/* Creates an image of format fmt (options, not consumed, include "size"
 * and the driver's create options). 0 or -errno with *errp set. */
int coroutine_fn bdrv_co_create(const char *fmt, const char *filename, QblkOpts *options,
                                GError **errp);
int bdrv_create(const char *fmt, const char *filename, QblkOpts *options,
                GError **errp);
/* Creates filename with the protocol driver its prefix names ("file"
 * for a plain path; bdrv_find_protocol), options as for that driver's
 * create (not consumed). For formats creating their host file. */
int coroutine_fn bdrv_co_create_file(const char *filename, QblkOpts *options, GError **errp);
const BlockDriver *bdrv_find_format(const char *name);
/* Drivers' names in alphabetical order (NULL-terminated, static). */
const char *const *bdrv_format_names(void);

/* ----- Properties ----- */

/* Option detect-zeroes: what a write whose buffer is all zeroes becomes
 * (QEMU's BlockdevDetectZeroesOptions, same order). */
typedef enum {
    BDRV_DETECT_ZEROES_OFF,     /* a plain write */
    BDRV_DETECT_ZEROES_ON,      /* a zero write (where the driver zeroes natively) */
    BDRV_DETECT_ZEROES_UNMAP,   /* a zero write that may unmap (needs discard=unmap) */
} BdrvDetectZeroes;
/* QEMU's names: "off", "on", "unmap". */
const char *bdrv_detect_zeroes_name(BdrvDetectZeroes mode);
BdrvDetectZeroes bdrv_get_detect_zeroes(BlockDriverState *bs);
/* Whether bs's backing link is not what its header would open (QEMU's
 * bdrv_backing_overridden): a backing node given by reference or attached
 * whose filename is not the header's name, or none where the header names
 * one. Reopening bs from its filename alone would then give another tree. */
bool bdrv_backing_overridden(BlockDriverState *bs);
/* The BDRV_O_* flags the node was opened with (after auto-read-only and
 * reopen: BDRV_O_RDWR, NOCACHE, NO_FLUSH, UNMAP as they are now). */
int bdrv_get_open_flags(BlockDriverState *bs);

const char *bdrv_format_name(BlockDriverState *bs);
const char *bdrv_filename(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
int64_t bdrv_getlength(BlockDriverState *bs);  /* bytes or -errno; no I/O, so coroutine-safe */
/* Host bytes used by the image (all files), -ENOTSUP if unknown. */
int64_t bdrv_get_allocated_file_size(BlockDriverState *bs);
BlockDriverState *bdrv_backing(BlockDriverState *bs);
BlockDriverState *bdrv_file_child(BlockDriverState *bs);
/* Whether bs is a filter (copy-on-read, blkdebug): it shows its file's
 * contents unchanged, so a chain's contents continue below it. */
bool bdrv_is_filter(BlockDriverState *bs);
/* The next layer down a chain: a filter's file, else the backing node. */
BlockDriverState *bdrv_filtered_or_backing(BlockDriverState *bs);
const char *bdrv_backing_file(BlockDriverState *bs); /* as stored, or NULL */
const char *bdrv_backing_format(BlockDriverState *bs);
/* Copy-on-read users are counted, so a stream job and a copy-on-read
 * export on one node do not clobber each other: reads copy up while at
 * least one user has it enabled (opening with BDRV_O_COPY_ON_READ or
 * copy-on-read=on is one such user). Each disable undoes one enable. */
void bdrv_enable_copy_on_read(BlockDriverState *bs);
void bdrv_disable_copy_on_read(BlockDriverState *bs);

/* ----- Capabilities -----
 * What a node does with each kind of request, computed by the block core
 * once after its driver's open (and again after a reopen) from what the
 * driver declares: its callbacks and supported flags. The block core
 * dispatches by them, and a server derives what it advertises from them
 * (NBD: SEND_WRITE_ZEROES, SEND_FAST_ZERO, SEND_FUA, SEND_TRIM,
 * CAN_MULTI_CONN). They describe this node's own level: a node that
 * passes a request to its child (raw, blkdebug) is NATIVE for it, and the
 * child's capability applies there. A read-only node keeps the
 * capabilities of its driver; its writes fail before any of them counts. */
typedef enum {
    BDRV_CAP_NONE,      /* the node cannot do it at all */
    BDRV_CAP_EMULATE,   /* the block core does it with other requests */
    BDRV_CAP_NATIVE,    /* the driver does it */
} BdrvCapability;

/* Whether several writers (NBD connections, jobs, devices) writing the
 * same node at once all see one consistent image. */
typedef enum {
    BDRV_MULTI_WRITER_NONE,     /* no driver */
    /* Consistent for every user going through this node in this process
     * (they share its metadata caches and locks: qcow2, QED); a second
     * process writing the same file would corrupt it. */
    BDRV_MULTI_WRITER_PROCESS,
    /* The data lives only in the host resource, nothing is cached in
     * memory (file, null-co, and raw or filters above them): writers in
     * any process see one image. */
    BDRV_MULTI_WRITER_HOST,
} BdrvMultiWriter;

typedef struct BlockCapabilities {
    /* Zero writes. NATIVE: handed to the driver, which may still decline
     * one with -ENOTSUP (the core then writes zero buffers); EMULATE: the
     * core writes zero buffers without asking the driver; NONE: the driver
     * cannot write. */
    BdrvCapability zero;
    /* BDRV_REQ_NO_FALLBACK is honoured all the way down: a zero write
     * with it is done cheaply or refused at once with -ENOTSUP (EMULATE
     * nodes always refuse; NATIVE nodes whose driver takes the flag). */
    bool fast_zero;
    /* BDRV_REQ_FUA. NATIVE: the driver takes it; EMULATE: the core flushes
     * after the write; NONE: the driver cannot write. */
    BdrvCapability fua;
    /* Discard. NATIVE: reaches the driver (it has a discard and the node
     * was opened with discard=unmap); NONE: succeeds doing nothing, as
     * discard is advisory (never EMULATE). */
    BdrvCapability discard;
    /* Block status. NATIVE: the driver tells; EMULATE: every range is
     * reported as allocated data. */
    BdrvCapability block_status;
    BdrvMultiWriter multi_writer;
    /* Reads can copy up from a backing chain into this node (the format
     * has backing files, writes and block status). */
    bool copy_on_read;
} BlockCapabilities;
/* Copies bs's capabilities into *caps (all NONE/false without a driver). */
void bdrv_get_capabilities(BlockDriverState *bs, BlockCapabilities *caps);

typedef struct BlockDriverInfo {
    int64_t cluster_size;    /* 0: none */
    int64_t vm_state_offset;
    bool is_dirty;
} BlockDriverInfo;
int bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi);
/* The driver's format-specific facts as a GVariant "(sa{sv})": the format
 * name and its fields (strings, int64 and booleans), or NULL when the
 * driver has none. Caller unrefs. */
GVariant *bdrv_get_specific_info(BlockDriverState *bs);

/* Empties the image (every cluster unallocated again); the caller flushes.
 * -ENOTSUP (and *errp) when the format cannot; the caller may ignore that
 * one (a commit leaves the top as it is). */
int coroutine_fn bdrv_co_make_empty(BlockDriverState *bs, GError **errp);
int bdrv_make_empty(BlockDriverState *bs);   /* the same, without the message */

/* Makes the image name another backing file (file NULL or "": none) with
 * format fmt (NULL or "": unrecorded), on disk and flushed. Only the link
 * changes; the caller has already made the data right (see qblk-img
 * rebase). -ENOTSUP when the format has no backing files, -ENOSPC when
 * the name does not fit the header, -EACCES read-only; *errp then says
 * "Could not change the backing file to '<file>': <why>". */
int coroutine_fn bdrv_co_change_backing_file(BlockDriverState *bs, const char *file,
                                             const char *fmt, GError **errp);
int bdrv_change_backing_file(BlockDriverState *bs, const char *file, const char *fmt,
                             GError **errp);
/* A backing file name as stored in image, resolved as opening does and
 * as QEMU does: absolute and "<protocol>:" names as they are, a relative
 * name relative to the directory part of image's name as written (after
 * its protocol prefix, if any). Caller frees. */
char *bdrv_resolve_backing_name(const char *image, const char *backing);
/* What an image of some format needs on its host file: for the data of
 * an existing image, or for an empty image of some size. */
typedef struct BlockMeasureInfo {
    uint64_t required;          /* with the data (or empty), preallocation counted */
    uint64_t fully_allocated;   /* with every cluster allocated */
    uint64_t bitmaps;           /* persistent bitmaps carried over */
    bool has_bitmaps;           /* the source can have such bitmaps */
} BlockMeasureInfo;
/* Measures a new image of format fmt made with the create options
 * `options` (as for bdrv_create; "size" when in_bs is NULL), holding
 * in_bs's content when in_bs is given (its length is then the size). */
int bdrv_measure(const char *fmt, QblkOpts *options, BlockDriverState *in_bs,
                 BlockMeasureInfo *info, GError **errp);
/* How far a long operation has come, 0..100. */
typedef void BdrvProgressFunc(void *opaque, double percent);
/* Changes options of an existing image (qemu-img amend): opts holds
 * create option names the format lists as amendable, values as given.
 * -ENOTSUP when the format amends nothing, -EACCES read-only. progress
 * (may be NULL) hears the format's own steps, as qemu-img amend -p shows
 * them. */
int coroutine_fn bdrv_co_amend(BlockDriverState *bs, QblkOpts *opts,
                               BdrvProgressFunc *progress, void *opaque, GError **errp);
int bdrv_amend(BlockDriverState *bs, QblkOpts *opts, BdrvProgressFunc *progress, void *opaque,
               GError **errp);
/* Mixed. Whether the node's format amends at all and every name in opts
 * is one it can amend (qemu-img's errors otherwise; a create-only option
 * says so on a second line). */
bool bdrv_amend_check(BlockDriverState *bs, QblkOpts *opts, GError **errp);
/* Whether the format can record a backing file at all. */
bool bdrv_supports_backing(BlockDriverState *bs);

/* ----- The node graph (block/graph.c, perm.c, drain.c, reopen.c) ----- */

/* A link to a node: from a parent node (its "file"/"image" or "backing"
 * child) or from a user that is not a node (a tool, an export, a job),
 * with the permissions the holder takes on the node and those it lets
 * others take. A user is a link without a parent node. */
typedef struct BdrvChild BdrvChild;
typedef struct BdrvChild BdrvUser;

/* Longest node name (QEMU's limit), without the terminating NUL. */
#define BDRV_NODE_NAME_MAX 31

/* Every node has a name: the node-name option, else a generated
 * "#blockN" (no user-given name can start with '#'). */
const char *bdrv_get_node_name(BlockDriverState *bs);
/* The node named name, or NULL. */
BlockDriverState *bdrv_find_node(const char *name);
/* bdrv_find_node, with QEMU's error when there is none: "Failed to find
 * node with node-name='X'". */
BlockDriverState *bdrv_lookup_node(const char *name, GError **errp);
/* QEMU's bdrv_lookup_bs: a node by device or node name. qblk has no
 * devices (BlockBackend names), so only node finds one; both names (NULL
 * shown as '') are in the error, "Cannot find device='x' nor
 * node-name='y'". */
BlockDriverState *bdrv_lookup_bs(const char *device, const char *node, GError **errp);
/* Iterates over every open node, oldest first: bdrv_next_node(NULL) is
 * the first, NULL after the last. */
BlockDriverState *bdrv_next_node(BlockDriverState *bs);
/* Whether name is acceptable as a new node-name: QEMU's rules (at most 31
 * characters, a letter first, then only letters, digits, '-', '.', '_')
 * and not in use; errors "Invalid node-name: 'X'", "Duplicate nodes
 * with node-name='X'". */
bool bdrv_check_node_name(const char *name, GError **errp);

/* Walk a node's links: children (file or image first, then backing) and
 * parents (parent nodes' links and users, newest first); prev NULL gives
 * the first, NULL after the last. */
BdrvChild *bdrv_next_child(BlockDriverState *bs, BdrvChild *prev);
BdrvChild *bdrv_next_parent(BlockDriverState *bs, BdrvChild *prev);
/* The link's name ("file", "image", "backing" or the user's name), the
 * node it points to, the parent node (NULL for a user), and permissions. */
const char *bdrv_child_name(BdrvChild *c);
BlockDriverState *bdrv_child_bs(BdrvChild *c);
BlockDriverState *bdrv_child_parent(BdrvChild *c);
uint64_t bdrv_child_perm(BdrvChild *c);
uint64_t bdrv_child_shared(BdrvChild *c);
/* What all of a node's parents and users hold (perm) and all share
 * (shared; BLK_PERM_ALL without any), as last given to the driver. */
void bdrv_get_cumulative_perm(BlockDriverState *bs, uint64_t *perm, uint64_t *shared);

/* Attaches a user named name (it appears in conflict messages, e.g.
 * "export 'e1'") to bs with perm/shared (BLK_PERM_*). Refused, with
 * nothing changed, when a holder of bs (or of a node below it whose
 * permissions change) does not share what the user takes or takes what
 * it does not share: "Permission conflict on node 'N': permissions
 * 'write' are both required by U (uses node 'N' as 'root' child) and
 * unshared by V (uses node 'N' as 'backing' child)." (QEMU 7.2's text);
 * also write or resize on a read-only node: "Block node is read-only".
 * A user takes no reference: it must not outlive the node, whose close
 * detaches any user still attached. */
BdrvUser *bdrv_attach_user(BlockDriverState *bs, const char *name, uint64_t perm,
                           uint64_t shared, GError **errp);
/* Detaches and frees u (NULL: nothing); the nodes' permissions shrink. */
void bdrv_detach_user(BdrvUser *u);
/* Changes u's permissions, all-or-nothing (same errors as attaching). */
bool bdrv_user_set_perm(BdrvUser *u, uint64_t perm, uint64_t shared, GError **errp);
/* The permissions qemu-img/qemu-io's user of a top node takes for open
 * flags: consistent read, write when BDRV_O_RDWR, resize when
 * BDRV_O_RESIZE; like QEMU 7.2's tools it shares everything (a format's
 * link to its file is what keeps other writers out). */
void bdrv_user_perm_for_flags(int flags, uint64_t *perm, uint64_t *shared);
/* Called with opaque when a drained section begins on the user's node
 * (pause: stop issuing requests) and when the last one ends (resume). */
void bdrv_user_set_drain_ops(BdrvUser *u, void (*pause)(void *opaque),
                             void (*resume)(void *opaque), void *opaque);

/* Makes new_backing (NULL: none) bs's backing node, in memory and in the
 * image header (its filename and format), flushed. The link takes a
 * reference on new_backing; the old backing node is detached and its
 * reference dropped. Refused with nothing changed when the backing link is
 * frozen ("Cannot change 'backing' link from 'X' to 'Y'"), when a holder
 * of bs does not share graph changes, on a permission conflict on
 * new_backing, and on a header error (-ENOTSUP, -ENOSPC, -EINVAL as
 * bdrv_change_backing_file). Returns 0 or -errno. */
int coroutine_fn bdrv_co_set_backing(BlockDriverState *bs, BlockDriverState *new_backing,
                                     GError **errp);
int bdrv_set_backing(BlockDriverState *bs, BlockDriverState *new_backing, GError **errp);
/* The same in memory only: the image header keeps the backing file it
 * names (QEMU's blockdev-snapshot), and a read-only bs may take one. */
int coroutine_fn bdrv_co_attach_backing(BlockDriverState *bs, BlockDriverState *new_backing,
                                        GError **errp);
/* Moves every link into from (parent nodes' children and users) to to,
 * except links from to itself or from nodes below it (QEMU's bdrv_append
 * after to's backing became from). All-or-nothing: false with *errp set
 * on a frozen link or a permission conflict on to. */
bool coroutine_fn bdrv_co_replace_node(BlockDriverState *from, BlockDriverState *to,
                                       GError **errp);

/* Freezes every backing link from top down to base (base itself not
 * included; base NULL: the whole chain) against graph changes while a job
 * runs. Fails when base is not below top or a link is frozen already. */
bool bdrv_freeze_backing_chain(BlockDriverState *top, BlockDriverState *base,
                               GError **errp);
void bdrv_unfreeze_backing_chain(BlockDriverState *top, BlockDriverState *base);

/* Reopens bs (and its file children) with the BDRV_O_RDWR,
 * BDRV_O_NOCACHE, BDRV_O_NO_FLUSH and BDRV_O_FORCE_SHARE bits of flags
 * (other bits are ignored); the node, its data and its backing node stay. Going read-only
 * flushes and leaves the image clean (qcow2 dirty bit, QED need-check
 * flag); permissions are recomputed. All-or-nothing. Runs in a drained
 * section of bs. Returns 0 or -errno. */
int coroutine_fn bdrv_co_reopen(BlockDriverState *bs, int flags, GError **errp);
int bdrv_reopen(BlockDriverState *bs, int flags, GError **errp);

/* Drained sections (nestable): begin waits until no request is in flight
 * on bs and pauses its users (their pause callbacks); until the matching
 * end, new requests entering bs wait, then run in order. Requests already
 * in flight still reach bs's children. */
void coroutine_fn bdrv_co_drained_begin(BlockDriverState *bs);
void coroutine_fn bdrv_co_drained_end(BlockDriverState *bs);
void bdrv_drained_begin(BlockDriverState *bs);
void bdrv_drained_end(BlockDriverState *bs);

/* ----- Internal snapshots ----- */
typedef struct BdrvSnapshotInfo {
    char *id;
    char *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount;               /* UINT64_MAX: not recorded */
} BdrvSnapshotInfo;
/* Mixed (the list is in memory). The image's internal snapshots: their
 * number (0 when the format has none), *list set to an array the caller
 * frees with bdrv_snapshot_list_free. */
int bdrv_snapshot_list(BlockDriverState *bs, BdrvSnapshotInfo **list);
void bdrv_snapshot_list_free(BdrvSnapshotInfo *list, int n);
/* Creates a snapshot of the disk named name (the id is the next free
 * number), applies the snapshot with that id (else that name), deletes
 * the first snapshot with that name; flushed. -ENOTSUP where the format
 * has no snapshots, -ENOENT for no such snapshot, -EACCES read-only;
 * *errp in qemu-img's words ("Could not create snapshot 'x': ..."). */
int coroutine_fn bdrv_co_snapshot_create(BlockDriverState *bs, const char *name,
                                         GError **errp);
int coroutine_fn bdrv_co_snapshot_goto(BlockDriverState *bs, const char *id_or_name,
                                       GError **errp);
int coroutine_fn bdrv_co_snapshot_delete(BlockDriverState *bs, const char *name,
                                         GError **errp);
int bdrv_snapshot_create(BlockDriverState *bs, const char *name, GError **errp);
int bdrv_snapshot_goto(BlockDriverState *bs, const char *id_or_name, GError **errp);
int bdrv_snapshot_delete(BlockDriverState *bs, const char *name, GError **errp);
/* Writes or reads size bytes at pos of the image's VM state area (qcow2:
 * clusters past the disk's end). -ENOTSUP where the format has none,
 * -EINVAL for a bad range, -EACCES saving read-only; *errp says which
 * (qemu-io prints only the errno, so the synchronous forms keep none). */
int coroutine_fn bdrv_co_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos,
                                      int64_t size, GError **errp);
int coroutine_fn bdrv_co_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos,
                                      int64_t size, GError **errp);
int bdrv_save_vmstate(BlockDriverState *bs, const void *buf, int64_t pos, int64_t size);
int bdrv_load_vmstate(BlockDriverState *bs, void *buf, int64_t pos, int64_t size);

/* ----- Persistent dirty bitmaps (qcow2 v3) ----- */

typedef enum {
    BDRV_BITMAP_ADD,
    BDRV_BITMAP_REMOVE,
    BDRV_BITMAP_CLEAR,
    BDRV_BITMAP_ENABLE,
    BDRV_BITMAP_DISABLE,
    BDRV_BITMAP_MERGE,
} BdrvBitmapOpKind;

typedef struct BdrvBitmapOp {
    BdrvBitmapOpKind kind;
    const char *name;
    uint32_t granularity;           /* add: 0 for the default */
    BlockDriverState *src_bs;       /* merge: the node holding src_name (may be bs) */
    const char *src_name;
} BdrvBitmapOp;

/* One operation of qemu-img bitmap on the image's persistent bitmaps,
 * kept in memory and stored when the image is closed. *errp in QEMU's
 * words without qemu-img's "Operation X on bitmap Y failed: " prefix. */
int coroutine_fn bdrv_co_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op,
                                   GError **errp);
int bdrv_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op, GError **errp);

/* ----- Consistency check ----- */

typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
} BdrvCheckResult;

typedef enum { BDRV_FIX_NONE = 0, BDRV_FIX_LEAKS = 1, BDRV_FIX_ERRORS = 2 } BdrvCheckMode;
/* Runs the driver's check (repairing what fix allows), calling
 * progress(opaque, percent) as it goes when progress is non-NULL.
 * -ENOTSUP when the format has none ("This image format does not
 * support checks"); other -errno when the check could not complete
 * ("Check failed: <strerror>"). */
int coroutine_fn bdrv_co_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                               BdrvProgressFunc *progress, void *opaque, GError **errp);
/* Synchronous forms (the errno alone). */
int bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix);
int bdrv_check_with_progress(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                             BdrvProgressFunc *progress, void *opaque);

/* ----- What the library reports instead of printing (block/report.c) -----
 * The library never prints: findings reach the user through these
 * callbacks (the tools print them as qemu-img/qemu-io do; the daemon will
 * turn them into QMP events). */

/* The kind of one line of a check's findings. */
typedef enum {
    BDRV_CHECK_MSG_ERROR,      /* a corruption or a failed step ("ERROR ...") */
    BDRV_CHECK_MSG_LEAK,       /* a leaked cluster left as it is ("Leaked ...") */
    BDRV_CHECK_MSG_REPAIR,     /* something being repaired ("Repairing ...") */
    BDRV_CHECK_MSG_INFO,       /* a step of the repair ("Rebuilding refcount structure") */
} BdrvCheckMsgKind;
/* One finding of a check: msg is the whole line as qemu-img prints it on
 * stderr, without the newline; valid during the call only. Called from the
 * check's coroutine, in the order the check finds things. */
typedef void BdrvCheckReportFunc(void *opaque, BdrvCheckMsgKind kind, const char *msg);
/* Where bs's checks report their findings from now on (fn NULL: they are
 * dropped, the counts in BdrvCheckResult stay right). */
void bdrv_set_check_report(BlockDriverState *bs, BdrvCheckReportFunc *fn, void *opaque);

/* A format found its metadata corrupt (QMP's BLOCK_IMAGE_CORRUPTED). */
typedef struct BdrvCorruptionEvent {
    BlockDriverState *bs;
    const char *format;        /* the driver's name ("qcow2") */
    const char *msg;           /* what is wrong */
    /* true: the image was just marked corrupt on disk, and further events
     * for it are suppressed; false: it could not be marked (read-only, or
     * a format version without the flag) and the request fails. */
    bool marked;
} BdrvCorruptionEvent;
typedef void BdrvCorruptionFunc(void *opaque, const BdrvCorruptionEvent *ev);
/* The process's corruption handler (NULL: none; events are dropped). */
void bdrv_set_corruption_handler(BdrvCorruptionFunc *fn, void *opaque);

/* ----- Image info (block/info.c) ----- */

/* One image as qemu-img info shows it and QMP's ImageInfo carries it. */
typedef struct BdrvImageInfo {
    char *filename;
    char *format;
    int64_t virtual_size;
    bool has_actual_size;
    int64_t actual_size;               /* host bytes used */
    bool has_cluster_size;
    int64_t cluster_size;
    bool has_dirty_flag;
    bool dirty_flag;                   /* not cleanly shut down */
    char *backing_filename;            /* as stored in the image, or NULL */
    char *full_backing_filename;       /* resolved as opening does, or NULL */
    char *backing_filename_format;     /* as stored, or NULL */
    GVariant *format_specific;         /* bdrv_get_specific_info's "(sa{sv})", or NULL */
    BdrvSnapshotInfo *snapshots;       /* internal snapshots (NULL when none) */
    int nb_snapshots;
} BdrvImageInfo;
/* Describes an open node (no I/O beyond reading metadata; not in a
 * coroutine). NULL with *errp set when its size cannot be read. Free
 * with bdrv_image_info_free. */
BdrvImageInfo *bdrv_query_image_info(BlockDriverState *bs, GError **errp);
void bdrv_image_info_free(BdrvImageInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BdrvImageInfo, bdrv_image_info_free)

/* ----- The create-options model (block/create.c) -----
 * What qemu-img create computes beyond parsing its command line, for the
 * tools and blockdev-create: the option set, value checks, the backing
 * image probe, defaults and the "Formatting" line's data. */

/* Create-option descriptors: drive -o help, the "Formatting" line and
 * parsing. Listed in the driver's fixed order (the order qemu-img prints). */
typedef enum { QBLK_OPT_STRING, QBLK_OPT_SIZE, QBLK_OPT_BOOL, QBLK_OPT_NUMBER } QblkOptType;
typedef struct QblkOptDesc {
    const char *name;
    QblkOptType type;
    const char *help;
    const char *def_value;         /* printed even when not given; NULL: only when given */
} QblkOptDesc;

/* Whether a driver can create images (create options and a create). */
bool bdrv_driver_can_create(const BlockDriver *drv);

/* The option set of one create: the format's create options, then those
 * of the protocol the file is created on, without repeating a name (the
 * order qemu-img prints them in), each with its value if given. */
typedef struct BdrvCreateOpts BdrvCreateOpts;
void bdrv_create_opts_free(BdrvCreateOpts *co);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BdrvCreateOpts, bdrv_create_opts_free)
guint bdrv_create_opts_count(const BdrvCreateOpts *co);
const QblkOptDesc *bdrv_create_opts_desc(const BdrvCreateOpts *co, guint i);

/* For "-o help": the options of format fmt and, when filename is not
 * NULL, of the protocol it names. NULL with *errp set for an unknown
 * format or protocol or one that cannot create (qemu-img's words and
 * order of checks). */
BdrvCreateOpts *bdrv_create_opts_for_help(const char *fmt, const char *filename, GError **errp);

/* Parses an -o list (QemuOpts rules, value types checked) against drv's
 * create options and the file protocol's, for amend and measure: the
 * given values, or NULL with *errp set and *hint possibly set to extra
 * lines for a person (caller frees). */
QblkOpts *bdrv_create_parse_options(const BlockDriver *drv, const char *options, char **hint,
                                    GError **errp);

/* One image to create, as qemu-img create and convert ask for it. */
typedef struct BdrvCreateRequest {
    const char *filename;
    const char *fmt;
    const char *options;       /* -o list (may be NULL) */
    const char *backing;       /* -b (may be NULL) */
    const char *backing_fmt;   /* -F (may be NULL) */
    int64_t size;              /* -1: from the options or the backing image */
    bool no_backing_probe;     /* -u: do not open the backing image */
} BdrvCreateRequest;
/* Checks a request and settles every value, in qemu-img's order of
 * checks: format, protocol, creation support, options, size given twice,
 * backing support and sanity, the backing image opened for its format and
 * (without a size) its size, a size present. NULL with *errp set and
 * *hint possibly set to extra lines for a person (caller frees). */
BdrvCreateOpts *bdrv_create_prepare(const BdrvCreateRequest *req, char **hint, GError **errp);
/* The "Formatting" line's options: "name=value" for every given option
 * and every default, in print order, as qemu-img prints them (numbers as
 * parsed, commas in strings doubled). NULL-terminated; g_strfreev. */
char **bdrv_create_opts_describe(const BdrvCreateOpts *co);
/* Creates the prepared image. Returns 0 or -errno with *errp set. Not in
 * a coroutine. */
int bdrv_create_opts_run(const BdrvCreateOpts *co, GError **errp);

/* ----- Commit (block/jobs/commit.c) ----- */

/* How far a job has come: done of total bytes. */
typedef void BdrvJobProgressFunc(void *opaque, int64_t done, int64_t total);
typedef struct BdrvCommitOptions {
    /* Called with done = 0 once the base is writable (before it grows to
     * the top's length), then after every chunk. NULL: no progress. */
    BdrvJobProgressFunc *progress;
    void *opaque;
    /* Checked before every chunk; once true, the commit stops with
     * -ECANCELED, the chunks reported done stay written (and flushed) in
     * the base. NULL: not cancellable. */
    const bool *cancel;
    int64_t chunk_size;        /* largest chunk copied at once; 0: 2 MiB */
    /* Called in the commit's coroutine after every chunk with the bytes
     * it covered and whether it copied anything; may yield (a job's pause
     * point and rate-limit sleep). NULL: none. */
    void coroutine_fn (*after_chunk)(void *opaque, int64_t bytes, bool copied);
    /* Called in the commit's coroutine when a chunk failed (ret < 0,
     * is_read: reading the top, else writing the base); may yield (a job
     * paused until resumed). Returns 0 to copy the chunk again, 1 to skip
     * it (the commit then fails at the end with the first such error), or
     * a negative errno to stop now. NULL: stop at the first error. */
    int coroutine_fn (*chunk_error)(void *opaque, int ret, bool is_read);
} BdrvCommitOptions;
/* Writes everything allocated above base in top's chain (top down to,
 * not including, base) into base, growing base to top's length first;
 * zero ranges become zero writes. base must be in top's backing chain.
 * Leaves top as it is (qblk-img commit empties it afterwards). opts may
 * be NULL. Returns 0 or -errno with *errp set. */
int coroutine_fn bdrv_co_commit(BlockDriverState *top, BlockDriverState *base,
                                const BdrvCommitOptions *opts, GError **errp);
/* The same, run to completion; never call it inside a coroutine. */
int bdrv_commit(BlockDriverState *top, BlockDriverState *base, const BdrvCommitOptions *opts,
                GError **errp);

/* ----- Coroutine request entry points (return 0 or -errno) ----- */

int coroutine_fn bdrv_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 QIOVector *qiov, BdrvRequestFlags flags);
/* The same from and to one buffer. */
int coroutine_fn bdrv_co_pread(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               void *buf, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                const void *buf, BdrvRequestFlags flags);
/* Writes zeroes over [offset, offset+bytes), any 64-bit length. The driver's
 * co_pwrite_zeroes when it has one; when missing or -ENOTSUP, plain writes of
 * at most 1 MiB from one shared zero buffer, unless BDRV_REQ_NO_FALLBACK,
 * which returns -ENOTSUP. Heads and tails not aligned to the driver's
 * zero alignment are written as plain zero writes. */
int coroutine_fn bdrv_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                       int64_t bytes, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes);
/* Flushes bs and then everything below it. */
int coroutine_fn bdrv_co_flush(BlockDriverState *bs);
/* Status of the range starting at offset in this layer. Sets *pnum (> 0
 * unless offset is at the end), and map and file when OFFSET_VALID (both may be NULL).
 * Returns BDRV_BLOCK_* or -errno. */
int coroutine_fn bdrv_co_block_status(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum, int64_t *map,
                                      BlockDriverState **file);
/* 1 if [offset, offset+*pnum) is allocated in bs itself, 0 if not. */
int coroutine_fn bdrv_co_is_allocated(BlockDriverState *bs, int64_t offset,
                                      int64_t bytes, int64_t *pnum);
/* Status of the range through bs's backing chain down to (not including)
 * base (NULL: the whole chain), as the layer that decides its content
 * answers: BDRV_BLOCK_ALLOCATED, _ZERO and _DATA. Past a shorter layer's
 * end, that layer decides (zeroes): ZERO | ALLOCATED. Unallocated down to
 * base: 0; past the end of the whole chain (base NULL): BDRV_BLOCK_ZERO. */
int coroutine_fn bdrv_co_block_status_above(BlockDriverState *bs, BlockDriverState *base,
                                            int64_t offset, int64_t bytes, int64_t *pnum);
/* 1 if allocated in any layer from bs down to (not including) base. */
int coroutine_fn bdrv_co_is_allocated_above(BlockDriverState *bs, BlockDriverState *base,
                                            int64_t offset, int64_t bytes, int64_t *pnum);

typedef enum {
    PREALLOC_MODE_OFF,
    PREALLOC_MODE_METADATA,
    PREALLOC_MODE_FALLOC,
    PREALLOC_MODE_FULL,
} PreallocMode;
/* Parses "off/metadata/falloc/full"; -1 if unknown. */
int prealloc_mode_parse(const char *str);
int coroutine_fn bdrv_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                                  PreallocMode prealloc, GError **errp);

/* ----- Synchronous wrappers (never call these inside a coroutine) ----- */

int bdrv_pread(BlockDriverState *bs, int64_t offset, int64_t bytes, void *buf,
               BdrvRequestFlags flags);
int bdrv_pwrite(BlockDriverState *bs, int64_t offset, int64_t bytes, const void *buf,
                BdrvRequestFlags flags);
int bdrv_preadv(BlockDriverState *bs, int64_t offset, QIOVector *qiov,
                BdrvRequestFlags flags);
int bdrv_pwritev(BlockDriverState *bs, int64_t offset, QIOVector *qiov,
                 BdrvRequestFlags flags);
int bdrv_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       BdrvRequestFlags flags);
int bdrv_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes);
int bdrv_flush(BlockDriverState *bs);
int bdrv_block_status(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum, int64_t *map, BlockDriverState **file);
int bdrv_block_status_above(BlockDriverState *bs, BlockDriverState *base, int64_t offset,
                            int64_t bytes, int64_t *pnum);
int bdrv_is_allocated(BlockDriverState *bs, int64_t offset, int64_t bytes,
                      int64_t *pnum);
int bdrv_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                  PreallocMode prealloc, GError **errp);

/* ----- Asynchronous requests (for qblk-io's aio_* and servers) ----- */

/* Completion: cb(opaque, ret) is called exactly once, from the event loop,
 * never before the submitting call has returned. */
typedef void BdrvCompletionFunc(void *opaque, int ret);
typedef enum { BDRV_AIO_READ, BDRV_AIO_WRITE, BDRV_AIO_ZERO, BDRV_AIO_FLUSH,
               BDRV_AIO_DISCARD } BdrvAioType;
void bdrv_aio_submit(BlockDriverState *bs, BdrvAioType type, int64_t offset,
                     int64_t bytes, QIOVector *qiov, BdrvRequestFlags flags,
                     BdrvCompletionFunc *cb, void *opaque);
/* Waits until no request is in flight on bs or below it (NULL: on any
 * node). The coroutine form lets the loop run meanwhile by yielding. */
void coroutine_fn bdrv_co_drain(BlockDriverState *bs);
void bdrv_drain(BlockDriverState *bs);

/* The one run-to-completion helper behind every synchronous wrapper:
 * runs entry(opaque) in a new coroutine and runs the event loop until
 * entry returns. Aborts when called inside a coroutine. */
void bdrv_run_co(CoroutineEntry *entry, void *opaque);

#endif
