/* qcow2 driver internals shared by its files: on-disk constants, the
 * per-image state, the metadata cache, refcounts, mapping and check. */
#ifndef QBLK_BLOCK_QCOW2_H
#define QBLK_BLOCK_QCOW2_H

/*
 * On-disk layout. Every integer is big-endian. The file is a sequence of
 * clusters (1 << cluster_bits bytes, 512 B to 2 MiB); apart from the header
 * in cluster 0, any cluster may hold anything, and every cluster in use,
 * metadata included, is counted in the refcounts.
 *
 *  cluster 0
 *  +--------+------------+------------------------------+---------------+
 *  | header | extensions | backing file name (no NUL)   |    unused     |
 *  +--------+------------+------------------------------+---------------+
 *  0        header_length (72 in v2, >= 104 in v3)
 *
 *  Header (Qcow2DiskHeader below): magic "QFI\xfb", version, backing name
 *  offset and size, cluster_bits, virtual size, crypt method, L1 size and
 *  offset, refcount table offset and clusters, snapshot count and offset;
 *  v3 adds the feature bitmaps, refcount_order, header_length and the
 *  compression type. Extensions: { u32 type, u32 len, data padded to 8 },
 *  ending with type 0.
 *
 *  Guest offset -> data:
 *
 *  +----------+        +----------+        +--------------+
 *  | L1 table | -----> | L2 table | -----> | data cluster |
 *  +----------+        +----------+        +--------------+
 *  l1_size u64s,       one cluster of      guest bytes
 *  contiguous          u64 entries
 *
 *  L1 entry: bit 63 COPIED (refcount 1), bits 9-55 the L2 table's offset.
 *  L2 entry: bit 63 COPIED, bit 62 COMPRESSED, bit 0 ZERO, bits 9-55 the
 *  data cluster's offset (compressed: a byte offset and a sector count).
 *  l2_index = (offset >> cluster_bits) % (cluster_size / 8),
 *  l1_index = (offset >> cluster_bits) / (cluster_size / 8).
 *
 *  Host cluster -> reference count:
 *
 *  +-----------------+        +----------------+
 *  | refcount table  | -----> | refcount block | --> one refcount_bits-wide
 *  +-----------------+        +----------------+     entry per host cluster
 *  refcount_table_clusters    one cluster
 *  clusters of u64 offsets    (refcount_bits = 1 << refcount_order)
 *
 *  Snapshots: a table of variable-length entries at snapshots_offset, each
 *  naming its own L1 table; clusters they share have refcount >= 2.
 *  A fresh image: cluster 0 header, 1 refcount table, 2 refcount block,
 *  3 L1 table.
 */

#include <stddef.h>
#include "qblk/block_int.h"
#include "util/bswap.h"

#define QCOW2_MAGIC                 0x514649fbu   /* "QFI\xfb" big-endian */
#define QCOW2_V2_HEADER_SIZE        72u
#define QCOW2_V3_HEADER_SIZE        104u
#define QCOW2_MIN_CLUSTER_BITS      9
#define QCOW2_MAX_CLUSTER_BITS      21
#define QCOW2_MAX_L1_BYTES          (32u * 1024 * 1024)
#define QCOW2_MAX_REFTABLE_BYTES    (8u * 1024 * 1024)
#define QCOW2_MAX_SNAPSHOTS         65536u
#define QCOW2_MAX_BACKING_NAME      1023u
/* How far past the file's end allocation looks for a free cluster before
 * it calls the refcounts corrupt (a crash leaves only a few leaked). */
#define QCOW2_MAX_SCAN_PAST_END     (UINT64_C(1) << 20)

#define QCOW2_INCOMPAT_DIRTY        UINT64_C(0x1)
#define QCOW2_INCOMPAT_CORRUPT      UINT64_C(0x2)
#define QCOW2_INCOMPAT_DATA_FILE    UINT64_C(0x4)
#define QCOW2_INCOMPAT_COMPRESSION  UINT64_C(0x8)
#define QCOW2_INCOMPAT_EXTL2        UINT64_C(0x10)
#define QCOW2_INCOMPAT_SUPPORTED    (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
                                     QCOW2_INCOMPAT_COMPRESSION)
#define QCOW2_COMPAT_LAZY_REFCOUNTS UINT64_C(0x1)

#define QCOW2_EXT_END               0x00000000u
#define QCOW2_EXT_BACKING_FORMAT    0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE     0x6803f857u
#define QCOW2_EXT_BITMAPS           0x23852875u
#define QCOW2_AUTOCLEAR_BITMAPS     UINT64_C(1)

#define QCOW2_OFLAG_COPIED          (UINT64_C(1) << 63)
#define QCOW2_OFLAG_COMPRESSED      (UINT64_C(1) << 62)
#define QCOW2_OFLAG_ZERO            UINT64_C(1)
#define QCOW2_L1E_OFFSET_MASK       UINT64_C(0x00fffffffffffe00)
#define QCOW2_L1E_RESERVED_MASK     UINT64_C(0x7f000000000001ff)
#define QCOW2_L2E_OFFSET_MASK       UINT64_C(0x00fffffffffffe00)
#define QCOW2_L2E_RESERVED_MASK     UINT64_C(0x3f000000000001fe)
#define QCOW2_REFT_OFFSET_MASK      UINT64_C(0xfffffffffffffe00)

/* The header as it lies on disk, big-endian: only its offsets and sizes
 * are used (QCOW2_HDR_OFF/LEN). Byte arrays, so no one reads a field as a
 * host integer; Qcow2Header is the decoded form. */
typedef struct Qcow2DiskHeader {
    uint8_t magic[4];
    uint8_t version[4];
    uint8_t backing_file_offset[8];
    uint8_t backing_file_size[4];
    uint8_t cluster_bits[4];
    uint8_t size[8];
    uint8_t crypt_method[4];
    uint8_t l1_size[4];
    uint8_t l1_table_offset[8];
    uint8_t refcount_table_offset[8];
    uint8_t refcount_table_clusters[4];
    uint8_t nb_snapshots[4];
    uint8_t snapshots_offset[8];
    /* version 3 from here (QCOW2_V2_HEADER_SIZE) */
    uint8_t incompatible_features[8];
    uint8_t compatible_features[8];
    uint8_t autoclear_features[8];
    uint8_t refcount_order[4];
    uint8_t header_length[4];
    /* present when header_length > QCOW2_V3_HEADER_SIZE */
    uint8_t compression_type[1];
    uint8_t padding[7];
} Qcow2DiskHeader;

#define QCOW2_HDR_OFF(field)    offsetof(Qcow2DiskHeader, field)
#define QCOW2_HDR_LEN(field)    sizeof(((Qcow2DiskHeader *)0)->field)
/* "offset, length" of one field, for qcow2_co_write_header_field. */
#define QCOW2_HDR_FIELD(field)  QCOW2_HDR_OFF(field), QCOW2_HDR_LEN(field)

G_STATIC_ASSERT(QCOW2_HDR_OFF(snapshots_offset) == 64);
G_STATIC_ASSERT(QCOW2_HDR_OFF(incompatible_features) == QCOW2_V2_HEADER_SIZE);
G_STATIC_ASSERT(QCOW2_HDR_OFF(compression_type) == QCOW2_V3_HEADER_SIZE);
G_STATIC_ASSERT(sizeof(Qcow2DiskHeader) == 112);

typedef struct Qcow2Header {
    uint32_t magic;
    uint32_t version;
    uint64_t backing_file_offset;
    uint32_t backing_file_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt_method;
    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t incompatible_features;
    uint64_t compatible_features;
    uint64_t autoclear_features;
    uint32_t refcount_order;
    uint32_t header_length;
    uint8_t compression_type;
} Qcow2Header;

typedef enum {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,
    QCOW2_CLUSTER_ZERO_ALLOC,
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

/* One cached metadata cluster (an L2 table or a refcount block), in disk
 * byte order. */
typedef struct Qcow2CacheEntry {
    uint64_t offset;                /* 0: slot unused */
    uint8_t *data;
    uint64_t last_use;
    unsigned pins;
    bool dirty;
} Qcow2CacheEntry;

typedef struct Qcow2Cache {
    Qcow2CacheEntry *entries;
    unsigned len;
    uint64_t clock;
    /* Another cache whose dirty entries must reach the disk, and the
     * disk be flushed, before this one writes (refcounts before L2). */
    struct Qcow2Cache *depends;
    bool is_l2;
} Qcow2Cache;

typedef struct Qcow2Snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;                /* UINT64_MAX when not recorded */
    uint8_t *extra;                 /* the extra data as read, kept when rewritten */
    uint32_t extra_size;
} Qcow2Snapshot;

/* Guest clusters [start, end) being allocated: their data is written
 * outside the lock, so other requests touching them wait here. */
typedef struct Qcow2InflightAlloc {
    uint64_t start, end;
    CoQueue waiters;
} Qcow2InflightAlloc;

/* What a host cluster holds, for the metadata map (qcow2-meta.c). */
typedef enum {
    QCOW2_META_NONE,                /* guest data, or free */
    QCOW2_META_HEADER,
    QCOW2_META_L1,
    QCOW2_META_REFTABLE,
    QCOW2_META_REFBLOCK,
    QCOW2_META_L2,
    QCOW2_META_SNAPSHOTS,
    QCOW2_META_INACTIVE_L1,
    QCOW2_META_INACTIVE_L2,
    QCOW2_META_BITMAP_DIR,
    QCOW2_META_BITMAP_TABLE,
    QCOW2_META_BITMAP_DATA,
    QCOW2_META__MAX
} Qcow2MetaKind;

/* Called for each host range a structure references. */
typedef void Qcow2RefFn(void *opaque, uint64_t offset, uint64_t len, Qcow2MetaKind kind);

/* One persistent dirty bitmap (qcow2-bitmap.c). */
typedef struct Qcow2Bitmap {
    char *name;
    uint32_t granularity_bits;
    uint32_t disk_flags;            /* QCOW2_BME_* as the directory on disk says */
    bool enabled;                   /* auto: guest writes mark it */
    /* In use at open (a writer that did not close): kept as found on
     * disk, never marked nor stored, as QEMU keeps it. */
    bool inconsistent;
    bool on_disk;                   /* in the directory on disk */
    uint64_t table_offset;          /* on disk */
    uint32_t table_size;            /* entries */
    uint8_t *bits;                  /* loaded ones: one bit per granule, LSB first */
    uint64_t nbits;
} Qcow2Bitmap;

typedef struct BDRVQcow2State {
    Qcow2Header header;
    uint32_t cluster_size;
    uint32_t cluster_bits;
    uint32_t l2_bits, l2_size;      /* entries per L2 table */
    uint32_t refcount_bits;
    uint32_t refblock_bits;         /* log2 entries per refcount block */
    uint64_t refcount_max;
    int csize_shift;
    uint64_t csize_mask, coffset_mask;

    uint64_t *l1_table;             /* host order */
    uint32_t l1_size;
    uint64_t *refcount_table;       /* host order */
    uint32_t refcount_table_size;   /* entries */
    uint64_t free_cluster_index;
    uint64_t free_byte_offset;      /* where the next compressed cluster may go, or 0 */
    uint64_t file_end;              /* bytes: end of the host file as we know it */

    Qcow2Snapshot *snapshots;
    uint32_t nb_snapshots;
    uint64_t snapshots_size;        /* bytes of the snapshot table, as parsed */
    char *backing_format_ext;       /* from the extension, or NULL */
    /* The bitmaps extension as found at open (nb 0: none). */
    uint32_t bitmaps_nb;
    uint64_t bitmaps_dir_size, bitmaps_dir_offset;
    /* The extension was valid at open (autoclear bit set): QEMU keeps the
     * bitmaps, so their clusters are referenced. */
    bool bitmaps_in_use;
    /* Qcow2Bitmap*, in directory order: parsed at every open; their
     * contents loaded (and their in-use flags set on disk) while the
     * image is open read-write (bitmaps_loaded). */
    GPtrArray *bitmaps;
    bool bitmaps_loaded;
    /* Reopened read-write: load before the first write marks them. */
    bool bitmaps_need_load;
    /* Host ranges of the directory and tables loaded, freed once the
     * new ones are stored (Qcow2BitmapRange). */
    GArray *bitmaps_old;
    /* Host cluster index -> the metadata kinds it holds (qcow2-meta.c). */
    GTree *meta;
    /* During check, refcount blocks past the end of the file read as
     * zeroes (as QEMU's check reads them) instead of failing. */
    bool in_check;

    Qcow2Cache l2_cache, refblock_cache;
    /* Every metadata lookup and change. */
    CoMutex lock;
    GList *inflight;                /* Qcow2InflightAlloc* */
    /* Far more clusters referenced than the host file holds: the image was
     * preallocated with metadata only, so data clusters may be host holes
     * (block status then asks the file). Found once, as QEMU does. */
    bool metadata_prealloc, metadata_prealloc_checked;
} BDRVQcow2State;

/* qcow2.c */
int coroutine_fn qcow2_co_write_header_field(BlockDriverState *bs, unsigned off,
                                             unsigned len);
int coroutine_fn qcow2_co_mark_corrupt(BlockDriverState *bs, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
void qcow2_header_encode(const Qcow2Header *h, uint8_t *buf);
/* Appends one header extension at *pos (padded to 8 bytes); false when it
 * would not fit before end. */
bool qcow2_put_extension(uint8_t *buf, uint64_t *pos, uint64_t end, uint32_t type,
                         const void *data, uint32_t len);

/* Sets the refcount width and what follows from it (maximum, entries
 * per block); the header's refcount_order is the caller's. */
void qcow2_set_refcount_width(BDRVQcow2State *s, uint32_t bits);
/* A table of n big-endian entries at offset, in host order (freed by the
 * caller). */
int coroutine_fn qcow2_co_read_table(BlockDriverState *bs, uint64_t offset, uint32_t n,
                                     uint64_t **out);

/* qcow2-header.c */
/* header_co_commit for cluster 0: [0, len) becomes new, old being the
 * whole cluster as the file holds it; flushed when it took several
 * writes. */
int coroutine_fn qcow2_co_commit_header(BlockDriverState *bs, const uint8_t *old,
                                        const uint8_t *new, uint64_t len);

/* qcow2-meta.c */
void qcow2_meta_init(BDRVQcow2State *s);
void qcow2_meta_destroy(BDRVQcow2State *s);
void qcow2_meta_add(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind);
void qcow2_meta_remove(BDRVQcow2State *s, uint64_t offset, uint64_t len, Qcow2MetaKind kind);
/* The first kind other than own that holds a cluster of the host range
 * (and that cluster's offset in *where), or QCOW2_META_NONE. */
Qcow2MetaKind qcow2_meta_overlap(const BDRVQcow2State *s, uint64_t offset, uint64_t len,
                                 Qcow2MetaKind own, uint64_t *where);
bool qcow2_meta_is_metadata(const BDRVQcow2State *s, uint64_t cluster_index,
                            Qcow2MetaKind *kind);
const char *qcow2_meta_name(Qcow2MetaKind kind);
/* -EIO (image marked corrupt) when a write of structure own (NONE: guest
 * data) to [offset, offset+len) would land on another structure. */
int coroutine_fn qcow2_co_check_write(BlockDriverState *bs, uint64_t offset, uint64_t len,
                                      Qcow2MetaKind own);
/* The one way metadata reaches the file: checked, then written. */
int coroutine_fn qcow2_co_pwrite_meta(BlockDriverState *bs, Qcow2MetaKind own, uint64_t offset,
                                      uint64_t len, const void *buf);
/* Every structure the image holds at open: header, tables, refcount
 * blocks, snapshot and bitmap structures. */
int coroutine_fn qcow2_co_meta_build(BlockDriverState *bs, GError **errp);
/* Calls fn for the bitmap directory, each bitmap table and each bitmap
 * data cluster (nothing when bitmaps_in_use is false); -EINVAL with errp
 * set for a directory or table that cannot be valid. */
/* The bitmap directory's limits (QEMU's: 64 KiB entries of at most 1 KiB)
 * and its smallest entry. */
#define QCOW2_BITMAP_DIR_MAX       (1024u * 65535u)
#define QCOW2_BITMAP_DIR_ENTRY_MIN 24u
/* Checks the header's bitmap directory against the file and reads it into
 * *dir (g_free it); the check and the metadata map share it. */
int coroutine_fn qcow2_co_read_bitmap_dir(BlockDriverState *bs, uint8_t **dir, GError **errp);
int coroutine_fn qcow2_co_walk_bitmaps(BlockDriverState *bs, Qcow2RefFn *fn, void *opaque,
                                       GError **errp);

/* qcow2-bitmap.c */
#define QCOW2_BME_IN_USE            1u
#define QCOW2_BME_AUTO              2u
/* Parses the directory (any open; errors only when it must be used). */
int coroutine_fn qcow2_co_bitmaps_read_dir(BlockDriverState *bs, GError **errp);
/* Read-write: loads every consistent bitmap and marks it in use on disk. */
int coroutine_fn qcow2_co_bitmaps_load(BlockDriverState *bs, GError **errp);
/* Writes the loaded bitmaps to new clusters, the new directory, then
 * frees the old ones; in-use flags clear. Lock held. */
int coroutine_fn qcow2_co_bitmaps_store(BlockDriverState *bs);
/* A guest write, zero write or discard of [offset, offset+bytes). */
void coroutine_fn qcow2_co_bitmaps_mark(BlockDriverState *bs, uint64_t offset, uint64_t bytes);
void qcow2_bitmaps_resize(BDRVQcow2State *s, uint64_t size);
void qcow2_bitmaps_free(BDRVQcow2State *s);
int coroutine_fn qcow2_co_bitmap_op(BlockDriverState *bs, const BdrvBitmapOp *op,
                                    GError **errp);
/* "bitmaps" of the format-specific information, or NULL for none. */
GVariant *qcow2_bitmaps_info(BDRVQcow2State *s);

/* qcow2-cache.c */
/* Runtime options (qcow2-options.c): taken before the metadata is read,
 * applied (cache sizes) once it is. Sizes are -1 when not given. */
typedef struct Qcow2RuntimeOpts {
    int64_t cache_size, l2_cache_size, refcount_cache_size, l2_entry_size;
    bool lazy_refcounts, has_lazy_refcounts;
} Qcow2RuntimeOpts;
bool qcow2_take_runtime_options(QblkOpts *options, Qcow2RuntimeOpts *o, GError **errp);
bool coroutine_fn qcow2_co_apply_runtime_options(BlockDriverState *bs,
                                                 const Qcow2RuntimeOpts *o, GError **errp);

void qcow2_cache_init(Qcow2Cache *c, unsigned len, uint32_t cluster_size, bool is_l2);
void qcow2_cache_destroy(Qcow2Cache *c);
/* Loads (or, with fresh, zeroes without reading) the cluster at offset,
 * pinned until qcow2_cache_put. */
int coroutine_fn qcow2_co_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset,
                                    bool fresh, uint8_t **data);
void qcow2_cache_put(Qcow2Cache *c, uint8_t *data);
void qcow2_cache_mark_dirty(Qcow2Cache *c, uint8_t *data);
int coroutine_fn qcow2_co_cache_flush(BlockDriverState *bs, Qcow2Cache *c);
/* Forgets the cluster at offset (freed), dropping pending writes. */
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
bool qcow2_cache_is_dirty(const Qcow2Cache *c);
/* Forgets every unpinned cluster (the structure it cached was replaced). */
void qcow2_cache_drop_all(Qcow2Cache *c);
/* Writes every dirty metadata cluster, refcounts first. */
/* qcow2-reopen.c: the driver's co_reopen_prepare. */
int coroutine_fn qcow2_co_reopen_prepare(BlockDriverState *bs, int flags, GError **errp);
int coroutine_fn qcow2_co_flush_caches(BlockDriverState *bs);

/* qcow2-refcount.c */
int coroutine_fn qcow2_co_get_refcount(BlockDriverState *bs, uint64_t cluster_index,
                                       uint64_t *refcount);
/* Adds addend to the refcounts of the clusters covering [offset, offset+len). */
int coroutine_fn qcow2_co_update_refcount(BlockDriverState *bs, uint64_t offset,
                                          uint64_t len, int64_t addend);
/* Host offset of n contiguous free clusters, their refcounts set to 1. */
int64_t coroutine_fn qcow2_co_alloc_clusters(BlockDriverState *bs, uint64_t n);
/* Host bytes for one compressed cluster, packed after the previous one;
 * the refcount of every cluster it touches counts it. */
int64_t coroutine_fn qcow2_co_alloc_bytes(BlockDriverState *bs, uint64_t size);
/* Frees one reference of the host clusters an L2 entry points at. */
int coroutine_fn qcow2_co_free_l2_entry(BlockDriverState *bs, uint64_t entry);
/* Sets cluster refcounts directly, growing refcount structures as needed
 * (check repair). */
int coroutine_fn qcow2_co_set_refcount(BlockDriverState *bs, uint64_t cluster_index,
                                       uint64_t value);
uint64_t qcow2_refblock_get(const BDRVQcow2State *s, const uint8_t *block, uint64_t i);
void qcow2_refblock_set(const BDRVQcow2State *s, uint8_t *block, uint64_t i, uint64_t v);

/* qcow2-cluster.c */
Qcow2ClusterType qcow2_cluster_type(const BDRVQcow2State *s, uint64_t l2_entry);
/* Host range of a compressed descriptor. */
void qcow2_compressed_range(const BDRVQcow2State *s, uint64_t entry, uint64_t *host,
                            uint64_t *len);
/* The L2 entry for the guest offset and how many following clusters
 * (up to bytes) share its type and, for data, are contiguous. Caller
 * holds the lock. -EIO (image marked corrupt) for invalid entries. */
int coroutine_fn qcow2_co_get_mapping(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                                      uint64_t *entry, uint64_t *n_bytes);
/* Sets the L2 entries of the clusters [offset, offset+n*cluster) to
 * values[i], allocating (or copying, if shared) the L2 table. Caller
 * holds the lock. */
int coroutine_fn qcow2_co_set_l2_entries(BlockDriverState *bs, uint64_t offset, uint64_t n,
                                         const uint64_t *values);
/* Makes the L2 table for offset writable now (allocating it before the
 * data clusters, which gives QEMU's layout). Lock held. */
int coroutine_fn qcow2_co_prepare_l2(BlockDriverState *bs, uint64_t offset);
int coroutine_fn qcow2_co_grow_l1(BlockDriverState *bs, uint32_t new_size);

/* qcow2-rw.c */
/* Waits (dropping and retaking the lock) until no allocation in flight
 * overlaps guest range [offset, offset+bytes). Lock held. */
void coroutine_fn qcow2_co_wait_inflight(BlockDriverState *bs, uint64_t offset,
                                         uint64_t bytes);
int coroutine_fn qcow2_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                 QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn qcow2_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                  QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn qcow2_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                        BdrvRequestFlags flags);
/* Empties whole clusters: zero clusters where they must not show the
 * backing file (v3), unallocated otherwise or when full. Lock held. */
int coroutine_fn qcow2_co_discard_clusters(BlockDriverState *bs, uint64_t offset,
                                           uint64_t bytes, bool full);
/* Whole clusters (the last may end at the image's end), each stored
 * compressed when that saves space. Only unallocated or zero clusters. */
int coroutine_fn qcow2_co_pwritev_compressed(BlockDriverState *bs, uint64_t offset,
                                             uint64_t bytes, QIOVector *qiov);
int coroutine_fn qcow2_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes);
int coroutine_fn qcow2_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                       int64_t bytes, int64_t *pnum, int64_t *map,
                                       BlockDriverState **file);

/* qcow2-compress.c */
/* Compresses one cluster into out; the compressed size, or -1 when it
 * does not fit in out_cap. */
ssize_t qcow2_compress(const BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t out_cap);
/* Decompresses one cluster (deflate or zstd by the header) into out. */
int qcow2_decompress(const BDRVQcow2State *s, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t out_len);

/* qcow2-check.c */
int coroutine_fn qcow2_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                                BdrvCheckMode fix);

/* qcow2-rebuild.c */
/* Writes new refcount blocks and a new refcount table from refs (the
 * references check counted, *nb clusters; both grow with the clusters
 * the new structures take) and switches the header to them. */
int coroutine_fn qcow2_co_rebuild_refcounts(BlockDriverState *bs, uint32_t **refs, uint64_t *nb);

/* qcow2-amend.c */
extern const char *const qcow2_amend_opts[];
int coroutine_fn qcow2_co_amend(BlockDriverState *bs, QblkOpts *opts,
                                BdrvProgressFunc *progress, void *opaque, GError **errp);

/* qcow2-compat.c */
/* Appends the feature name table extension where QEMU writes one. */
bool qcow2_put_feature_table(uint8_t *buf, uint64_t *pos, uint64_t cluster_size);
/* v2 -> v3 and back, for amend; lock held. downgrade_check refuses (with
 * QEMU's words) what a downgrade cannot keep, before anything changes. */
int coroutine_fn qcow2_co_upgrade(BlockDriverState *bs, BdrvProgressFunc *progress,
                                  void *opaque, GError **errp);
int coroutine_fn qcow2_co_downgrade_check(BlockDriverState *bs, GError **errp);
int coroutine_fn qcow2_co_downgrade(BlockDriverState *bs, BdrvProgressFunc *progress,
                                    void *opaque, GError **errp);

/* qcow2-snapshot.c */
int coroutine_fn qcow2_co_snapshot_create(BlockDriverState *bs, const char *name);
int coroutine_fn qcow2_co_snapshot_goto(BlockDriverState *bs, const char *id_or_name);
int coroutine_fn qcow2_co_snapshot_delete(BlockDriverState *bs, const char *name);
void qcow2_snapshot_clear(Qcow2Snapshot *sn);
/* Writes the table anew (every entry's extra data complete), to new
 * clusters; lock held (check's repair of incomplete entries). */
int coroutine_fn qcow2_co_rewrite_snapshot_table(BlockDriverState *bs);

/* qcow2-create.c */
extern const QblkOptDesc qcow2_create_opts[];
int qcow2_measure(QblkOpts *options, BlockDriverState *in_bs, BlockMeasureInfo *info,
                  GError **errp);
int coroutine_fn qcow2_co_create(const char *filename, QblkOpts *options, GError **errp);

#endif
