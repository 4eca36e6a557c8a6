/* QED driver internals shared by its files: the on-disk constants, the
 * per-image state, and the table, read/write and check entry points. */
#ifndef QBLK_BLOCK_QED_H
#define QBLK_BLOCK_QED_H

/*
 * On-disk layout. All fields are little-endian. The file is a sequence of
 * clusters (cluster_size bytes, 4 KiB to 64 MiB). The first header_size
 * clusters are the header area; after it, tables and data clusters come in
 * any order. Every table, L1 or L2, is table_size contiguous clusters of
 * u64 entries (N = table_size * cluster_size / 8 of them).
 *
 *  +--------+------------------------------------------+
 *  | header | backing file name (no NUL), rest unused  |  header_size clusters
 *  +--------+------------------------------------------+
 *  0        64
 *
 *  Header (QedDiskHeader below): magic "QED\0", cluster_size, table_size,
 *  header_size, features, compat_features, autoclear_features,
 *  l1_table_offset, image_size, backing_filename_offset and _size.
 *
 *  Guest offset -> data:
 *
 *  +----------+        +----------+        +--------------+
 *  | L1 table | -----> | L2 table | -----> | data cluster |
 *  +----------+        +----------+        +--------------+
 *  at l1_table_offset  table_size clusters guest bytes
 *
 *  L1 entry: 0 = no L2 table, else the L2 table's file offset.
 *  L2 entry: 0 = unallocated (read the backing file or zeroes),
 *            1 = zero cluster, else the data cluster's file offset.
 *  l2_index = (offset / cluster_size) % N,  l1_index = offset / cluster_size / N.
 *
 *  There are no refcounts: the need-check feature bit marks an image whose
 *  tables may point at clusters past the end of the file after a crash.
 */

#include <stddef.h>
#include "qblk/block_int.h"
#include "util/bswap.h"

#define QED_MAGIC                     0x00444551u   /* "QED\0" little-endian */
#define QED_HEADER_SIZE               64
#define QED_F_BACKING_FILE            UINT64_C(0x01)
#define QED_F_NEED_CHECK              UINT64_C(0x02)
#define QED_F_BACKING_FORMAT_NO_PROBE UINT64_C(0x04)
#define QED_FEATURE_MASK              UINT64_C(0x07)
#define QED_MIN_CLUSTER_SIZE          4096u
#define QED_MAX_CLUSTER_SIZE          (64u * 1024 * 1024)
#define QED_DEFAULT_CLUSTER_SIZE      65536u
#define QED_MIN_TABLE_SIZE            1u
#define QED_MAX_TABLE_SIZE            16u
#define QED_DEFAULT_TABLE_SIZE        4u
#define QED_ZERO_CLUSTER              UINT64_C(1) /* L2 value: reads as zeroes */
#define QED_BACKING_NAME_MAX          4095u

/* The header as it lies on disk, little-endian: only its offsets are used
 * (QED_HDR_OFF). Byte arrays, so no one reads a field as a host integer;
 * QedHeader is the decoded form. */
typedef struct QedDiskHeader {
    uint8_t magic[4];
    uint8_t cluster_size[4];
    uint8_t table_size[4];
    uint8_t header_size[4];
    uint8_t features[8];
    uint8_t compat_features[8];
    uint8_t autoclear_features[8];
    uint8_t l1_table_offset[8];
    uint8_t image_size[8];
    uint8_t backing_filename_offset[4];
    uint8_t backing_filename_size[4];
} QedDiskHeader;

#define QED_HDR_OFF(field)      offsetof(QedDiskHeader, field)

G_STATIC_ASSERT(QED_HDR_OFF(l1_table_offset) == 40);
G_STATIC_ASSERT(sizeof(QedDiskHeader) == QED_HEADER_SIZE);

typedef struct QedHeader {
    uint32_t magic;
    uint32_t cluster_size;
    uint32_t table_size;            /* clusters per table */
    uint32_t header_size;           /* clusters in the header area */
    uint64_t features;
    uint64_t compat_features;
    uint64_t autoclear_features;
    uint64_t l1_table_offset;
    uint64_t image_size;
    uint32_t backing_filename_offset;
    uint32_t backing_filename_size;
} QedHeader;

/* One cached L2 table, entries in host byte order. */
typedef struct QedL2Table {
    uint64_t offset;                /* 0: slot unused */
    uint64_t *entries;
    uint64_t last_use;
    unsigned pins;                  /* pinned tables are never evicted */
} QedL2Table;

typedef struct BDRVQEDState {
    QedHeader header;
    uint64_t *l1_table;             /* host byte order */
    uint32_t table_nelems;
    uint32_t l2_shift, l1_shift;
    uint64_t table_bytes;
    uint64_t file_size;             /* allocation end, a cluster multiple */
    uint64_t file_length;           /* the file's length at open, for messages */
    /* Allocating writes (and any metadata change) run one at a time. */
    CoMutex alloc_lock;
    QedL2Table *l2_cache;
    unsigned l2_cache_len;
    uint64_t use_clock;
    /* Need-check is cleared once allocations have been idle this long. */
    BlockDriverState *bs;
    int64_t idle_clear_ns;
    guint idle_timer;
    bool idle_clear_running;
    /* Copy-on-read entries over a backing file wait in memory (their
     * tables pinned) until one flush has made all their data stable: then
     * the tables are written. A crash before that only loses copies. */
    GArray *dirty_tables;           /* QedDirtyTable */
    uint32_t l1_dirty_first, l1_dirty_end;   /* empty when equal */
    guint commit_timer;
    bool commit_running;
    /* Woken when a timer's coroutine (idle clear, commit) ends: close
     * waits here for one that has started. */
    CoQueue background_done;
    /* Metadata map (qed-meta.c): host cluster index -> owning structure,
     * for the header, the L1 table and every L2 table the L1 names. */
    GTree *meta;
    /* L2 tables (offset -> what they overlap) that overlap the header,
     * the L1 table or another L2 table: writes through them are refused.
     * NULL while there is none. */
    GHashTable *bad_tables;
    bool overlap_reported;          /* the first refused write was reported */
} BDRVQEDState;

typedef struct QedDirtyTable {
    uint64_t offset;
    uint32_t first, end;            /* dirty entries [first, end) */
    bool is_new;                    /* never written: write it whole */
} QedDirtyTable;

/* QED_BAD_*: set with -EINVAL by qed_co_find_run, the raw invalid L1
 * (table) or L2 (data) entry in *host. */
typedef enum { QED_UNALLOC, QED_ZERO, QED_DATA, QED_BAD_TABLE, QED_BAD_DATA } QedClusterState;

typedef enum { QED_META_NONE, QED_META_HEADER, QED_META_L1, QED_META_L2 } QedMetaKind;

/* qed.c */
void qed_header_decode(const uint8_t *buf, QedHeader *h);
void qed_header_encode(const QedHeader *h, uint8_t *buf);
int coroutine_fn qed_co_write_header(BlockDriverState *bs);
int coroutine_fn qed_co_set_need_check(BlockDriverState *bs);
int coroutine_fn qed_co_clear_need_check(BlockDriverState *bs);
/* Called after an allocating request, lock released: (re)arms the timer
 * that clears need-check when no allocation follows for a while. */
void qed_allocation_done(BlockDriverState *bs);
bool qed_valid_cluster_offset(const BDRVQEDState *s, uint64_t offset);
bool qed_valid_table_offset(const BDRVQEDState *s, uint64_t offset);
uint64_t qed_max_image_size(uint32_t cluster_size, uint32_t table_size);
/* The spec's limits (open and create share them, with their own texts):
 * a power of two within [QED_MIN_*, QED_MAX_*]. */
bool qed_valid_cluster_size(uint64_t cs);
bool qed_valid_table_size(uint64_t ts);

/* qed-table.c */
void qed_l2_cache_init(BDRVQEDState *s);
void qed_l2_cache_free(BDRVQEDState *s);
/* The cached L2 table at offset, read if needed. The pointer is valid
 * until the caller next yields, unless pinned. */
int coroutine_fn qed_co_get_l2(BlockDriverState *bs, uint64_t offset, QedL2Table **out);
void qed_l2_insert(BDRVQEDState *s, uint64_t offset, uint64_t *entries);
/* Writes entries [first, first+n) of a table (host order) in whole sectors. */
int coroutine_fn qed_co_write_entries(BlockDriverState *bs, uint64_t table_offset,
                                      const uint64_t *entries, uint32_t first, uint32_t n);
/* The state of the clusters from pos on (at most len bytes, never past
 * the L2 span of pos): *n bytes of one state; *host is the data offset
 * at pos for QED_DATA. -EINVAL for an invalid table or entry. */
int coroutine_fn qed_co_find_run(BlockDriverState *bs, uint64_t pos, uint64_t len,
                                 QedClusterState *state, uint64_t *host, uint64_t *n);
/* Sets the L2 entries for the clusters [pos, pos+n) (cluster aligned,
 * one L2 span) to values host, host+cs, ... (or all QED_ZERO_CLUSTER when
 * host is QED_ZERO_CLUSTER), allocating the L2 table when needed. lazy
 * (copy-on-read over a backing file): the entries wait in memory for a
 * commit. Otherwise they are on disk on return (after the data: the
 * caller flushed). Caller holds alloc_lock. */
int coroutine_fn qed_co_set_entries(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                    uint64_t host, bool lazy);

/* Writes the table entries still waiting in memory, after one flush of
 * the data they point at. Caller holds alloc_lock. */
int coroutine_fn qed_co_commit_tables(BlockDriverState *bs);
bool qed_tables_dirty(const BDRVQEDState *s);

/* qed-rw.c */
int coroutine_fn qed_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                               QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn qed_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                QIOVector *qiov, BdrvRequestFlags flags);
int coroutine_fn qed_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                                      BdrvRequestFlags flags);
int coroutine_fn qed_co_block_status(BlockDriverState *bs, bool want_zero, int64_t offset,
                                     int64_t bytes, int64_t *pnum, int64_t *map,
                                     BlockDriverState **file);

/* qed-meta.c: the metadata map. No lookup yields. */
/* (Re)builds the map from the header and the L1 table in memory. */
void qed_meta_build(BDRVQEDState *s);
void qed_meta_free(BDRVQEDState *s);
/* Records a newly allocated L2 table. */
void qed_meta_add_table(BDRVQEDState *s, uint64_t offset);
/* The structure (kind, *owner its first byte) holding a cluster of
 * [offset, offset+len); QED_META_NONE when none does. O(log n). */
QedMetaKind qed_meta_lookup(const BDRVQEDState *s, uint64_t offset, uint64_t len,
                            uint64_t *owner);
/* 0, or -EIO (reported once per image) when a write at guest offset pos
 * would go through an L2 table that overlaps other metadata. */
int qed_meta_check_table(BlockDriverState *bs, uint64_t pos);
/* The same, and also when host range [host, host+n) of a data cluster
 * overlaps metadata. */
int qed_meta_check_data(BlockDriverState *bs, uint64_t pos, uint64_t host, uint64_t n);
/* For a write whose qed_co_find_run failed with ret: -EIO (reported)
 * when the invalid entry points into the header area, else ret. */
int qed_meta_check_invalid(BlockDriverState *bs, uint64_t pos, QedClusterState state,
                           uint64_t raw, int ret);

/* qed-check.c */
int coroutine_fn qed_co_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix);

#endif
