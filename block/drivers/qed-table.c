/* QED tables: the bounded LRU cache of L2 tables, address translation
 * into runs of one cluster state, and table entry updates on disk. */
#include <errno.h>
#include <string.h>
#include "block/drivers/qed.h"

/* Memory for cached L2 tables; at least a few tables whatever their size. */
#define QED_L2_CACHE_BYTES (32u * 1024 * 1024)
#define QED_L2_CACHE_MIN   4u
#define QED_ENTRIES_PER_SECTOR 64u

void qed_l2_cache_init(BDRVQEDState *s)
{
    s->l2_cache_len = MAX(QED_L2_CACHE_MIN, QED_L2_CACHE_BYTES / s->table_bytes);
    s->l2_cache = g_new0(QedL2Table, s->l2_cache_len);
    s->dirty_tables = g_array_new(FALSE, FALSE, sizeof(QedDirtyTable));
}

void qed_l2_cache_free(BDRVQEDState *s)
{
    g_clear_pointer(&s->dirty_tables, g_array_unref);
    for (unsigned i = 0; i < s->l2_cache_len; i++) {
        g_free(s->l2_cache[i].entries);
    }
    g_clear_pointer(&s->l2_cache, g_free);
}

static QedL2Table *l2_find(BDRVQEDState *s, uint64_t offset)
{
    for (unsigned i = 0; i < s->l2_cache_len; i++) {
        if (s->l2_cache[i].offset == offset) {
            s->l2_cache[i].last_use = ++s->use_clock;
            return &s->l2_cache[i];
        }
    }
    return NULL;
}

void qed_l2_insert(BDRVQEDState *s, uint64_t offset, uint64_t *entries)
{
    QedL2Table *victim = NULL;

    for (unsigned i = 0; i < s->l2_cache_len; i++) {
        QedL2Table *t = &s->l2_cache[i];

        if (t->pins) {
            continue;
        }
        if (!t->offset) {
            victim = t;
            break;
        }
        if (!victim || t->last_use < victim->last_use) {
            victim = t;
        }
    }
    /* At most one table is pinned at a time (allocations are serialised),
     * so a victim always exists. */
    g_assert(victim);
    g_free(victim->entries);
    victim->offset = offset;
    victim->entries = entries;
    victim->last_use = ++s->use_clock;
}

int coroutine_fn qed_co_get_l2(BlockDriverState *bs, uint64_t offset, QedL2Table **out)
{
    BDRVQEDState *s = bs->opaque;
    QedL2Table *t = l2_find(s, offset);
    uint64_t *entries;
    int ret;

    if (t) {
        *out = t;
        return 0;
    }
    entries = g_try_malloc(s->table_bytes);
    if (!entries) {
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, offset, s->table_bytes, entries, 0);
    if (ret < 0) {
        g_free(entries);
        return ret;
    }
    for (uint32_t i = 0; i < s->table_nelems; i++) {
        entries[i] = GUINT64_FROM_LE(entries[i]);
    }
    /* Another coroutine may have loaded (and since changed) the table
     * while this one read it: the cached copy wins. */
    t = l2_find(s, offset);
    if (t) {
        g_free(entries);
    } else {
        qed_l2_insert(s, offset, entries);
        t = l2_find(s, offset);
    }
    *out = t;
    return 0;
}

int coroutine_fn qed_co_write_entries(BlockDriverState *bs, uint64_t table_offset,
                                      const uint64_t *entries, uint32_t first, uint32_t n)
{
    uint32_t start = first / QED_ENTRIES_PER_SECTOR * QED_ENTRIES_PER_SECTOR;
    uint32_t end = (first + n + QED_ENTRIES_PER_SECTOR - 1) / QED_ENTRIES_PER_SECTOR *
                   QED_ENTRIES_PER_SECTOR;
    g_autofree uint64_t *buf = g_new(uint64_t, end - start);

    for (uint32_t i = start; i < end; i++) {
        buf[i - start] = GUINT64_TO_LE(entries[i]);
    }
    return bdrv_co_pwrite(bs->file, table_offset + (uint64_t)start * sizeof(uint64_t),
                          (int64_t)(end - start) * sizeof(uint64_t), buf, 0);
}

static bool same_state(const BDRVQEDState *s, QedClusterState state, uint64_t first,
                       uint64_t k, uint64_t entry)
{
    switch (state) {
    case QED_UNALLOC:
        return entry == 0;
    case QED_ZERO:
        return entry == QED_ZERO_CLUSTER;
    default:
        return entry == first + k * s->header.cluster_size &&
               qed_valid_cluster_offset(s, entry);
    }
}

int coroutine_fn qed_co_find_run(BlockDriverState *bs, uint64_t pos, uint64_t len,
                                 QedClusterState *state, uint64_t *host, uint64_t *n)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t l1_index = pos >> s->l1_shift;
    uint64_t span_end = (l1_index + 1) << s->l1_shift;
    uint64_t max = MIN(len, span_end - pos);
    uint64_t in_cluster = pos & (cs - 1);
    uint64_t l1 = s->l1_table[l1_index];
    uint64_t first, covered;
    uint32_t idx;
    QedL2Table *t;
    int ret;

    *host = 0;
    *state = QED_UNALLOC;
    if (!l1) {
        *n = max;
        return 0;
    }
    if (!qed_valid_table_offset(s, l1)) {
        *state = QED_BAD_TABLE;
        *host = l1;
        return -EINVAL;
    }
    ret = qed_co_get_l2(bs, l1, &t);
    if (ret < 0) {
        return ret;
    }
    idx = (pos >> s->l2_shift) & (s->table_nelems - 1);
    first = t->entries[idx];
    if (first == 0) {
        *state = QED_UNALLOC;
    } else if (first == QED_ZERO_CLUSTER) {
        *state = QED_ZERO;
    } else if (qed_valid_cluster_offset(s, first)) {
        *state = QED_DATA;
        *host = first + in_cluster;
    } else {
        *state = QED_BAD_DATA;
        *host = first;
        return -EINVAL;
    }
    covered = cs - in_cluster;
    for (uint32_t i = idx + 1; covered < max && i < s->table_nelems; i++) {
        if (!same_state(s, *state, first, i - idx, t->entries[i])) {
            break;
        }
        covered += cs;
    }
    *n = MIN(covered, max);
    return 0;
}

bool qed_tables_dirty(const BDRVQEDState *s)
{
    return (s->dirty_tables && s->dirty_tables->len) || s->l1_dirty_first != s->l1_dirty_end;
}

/* Records entries [first, first+count) of the table at offset as waiting;
 * the table stays pinned until they are written. */
static void mark_dirty(BDRVQEDState *s, QedL2Table *t, uint32_t first, uint32_t count,
                       bool is_new)
{
    for (guint i = 0; i < s->dirty_tables->len; i++) {
        QedDirtyTable *d = &g_array_index(s->dirty_tables, QedDirtyTable, i);

        if (d->offset == t->offset) {
            d->first = MIN(d->first, first);
            d->end = MAX(d->end, first + count);
            return;
        }
    }
    t->pins++;
    g_array_append_val(s->dirty_tables,
                       ((QedDirtyTable) { t->offset, first, first + count, is_new }));
}

static QedL2Table *cached(BDRVQEDState *s, uint64_t offset)
{
    for (unsigned i = 0; i < s->l2_cache_len; i++) {
        if (s->l2_cache[i].offset == offset) {
            return &s->l2_cache[i];
        }
    }
    return NULL;
}

int coroutine_fn qed_co_commit_tables(BlockDriverState *bs)
{
    BDRVQEDState *s = bs->opaque;
    bool new_tables = false;
    int ret;

    if (!qed_tables_dirty(s)) {
        return 0;
    }
    /* The data the entries point at must be stable first. */
    ret = bdrv_co_flush(bs->file);
    while (ret == 0 && s->dirty_tables->len) {
        QedDirtyTable d = g_array_index(s->dirty_tables, QedDirtyTable, 0);
        QedL2Table *t = cached(s, d.offset);

        g_assert(t && t->pins);
        if (d.is_new) {
            ret = qed_co_write_entries(bs, d.offset, t->entries, 0, s->table_nelems);
            new_tables = true;
        } else {
            ret = qed_co_write_entries(bs, d.offset, t->entries, d.first, d.end - d.first);
        }
        if (ret == 0) {
            t->pins--;
            g_array_remove_index(s->dirty_tables, 0);
        }
    }
    if (ret == 0 && new_tables) {
        /* New tables are complete on disk before L1 points at them. */
        ret = bdrv_co_flush(bs->file);
    }
    if (ret == 0 && s->l1_dirty_first != s->l1_dirty_end) {
        ret = qed_co_write_entries(bs, s->header.l1_table_offset, s->l1_table,
                                   s->l1_dirty_first, s->l1_dirty_end - s->l1_dirty_first);
        if (ret == 0) {
            s->l1_dirty_first = s->l1_dirty_end = 0;
        }
    }
    return ret;
}

/* Lazy update: entries change in memory now and reach the disk with the
 * next commit. */
static int coroutine_fn set_entries_deferred(BlockDriverState *bs, uint64_t l1_index,
                                             uint32_t idx, uint32_t count, uint64_t host)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    bool is_new = !s->l1_table[l1_index];
    QedL2Table *t;
    int ret;

    if (is_new) {
        uint64_t *entries = g_try_malloc0(s->table_bytes);

        if (!entries) {
            return -ENOMEM;
        }
        /* The table's space is written (empty) now, not at the commit:
         * on a full disk the copy fails here, instead of every copied
         * cluster waiting for a table that can never be written. Data
         * first, as before any table write (once per new table). */
        ret = bdrv_co_flush(bs->file);
        if (ret == 0) {
            ret = bdrv_co_pwrite(bs->file, s->file_size, s->table_bytes, entries, 0);
        }
        if (ret < 0) {
            g_free(entries);
            return ret;
        }
        qed_l2_insert(s, s->file_size, entries);
        qed_meta_add_table(s, s->file_size);
        s->l1_table[l1_index] = s->file_size;
        s->file_size += s->table_bytes;
        if (s->l1_dirty_first == s->l1_dirty_end) {
            s->l1_dirty_first = l1_index;
            s->l1_dirty_end = l1_index + 1;
        } else {
            s->l1_dirty_first = MIN(s->l1_dirty_first, l1_index);
            s->l1_dirty_end = MAX(s->l1_dirty_end, l1_index + 1);
        }
    }
    ret = qed_co_get_l2(bs, s->l1_table[l1_index], &t);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < count; i++) {
        t->entries[idx + i] = host == QED_ZERO_CLUSTER ? host : host + i * cs;
    }
    mark_dirty(s, t, idx, count, is_new);
    /* Pinned tables cannot be evicted: keep room in the cache. */
    if (s->dirty_tables->len + 2 >= s->l2_cache_len) {
        return qed_co_commit_tables(bs);
    }
    return 0;
}

int coroutine_fn qed_co_set_entries(BlockDriverState *bs, uint64_t pos, uint64_t n,
                                    uint64_t host, bool lazy)
{
    BDRVQEDState *s = bs->opaque;
    uint64_t cs = s->header.cluster_size;
    uint64_t l1_index = pos >> s->l1_shift;
    uint32_t idx = (pos >> s->l2_shift) & (s->table_nelems - 1);
    uint32_t count = (n + cs - 1) / cs;
    QedL2Table *t;
    int ret;

    /* Entries written into a table that overlaps other metadata would
     * rewrite that metadata. */
    ret = qed_meta_check_table(bs, pos);
    if (ret < 0) {
        return ret;
    }
    if (lazy) {
        return set_entries_deferred(bs, l1_index, idx, count, host);
    }
    /* Entries written now must not land in a table (or next to entries)
     * that is still waiting: write the waiting ones first. */
    ret = qed_co_commit_tables(bs);
    if (ret < 0) {
        return ret;
    }
    if (!s->l1_table[l1_index]) {
        /* A new table goes after the data; it is complete on disk before
         * the L1 entry points at it. */
        uint64_t offset = s->file_size;
        uint64_t *entries = g_try_malloc0(s->table_bytes);
        uint64_t *le;

        if (!entries) {
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < count; i++) {
            entries[idx + i] = host == QED_ZERO_CLUSTER ? host : host + i * cs;
        }
        le = g_try_malloc(s->table_bytes);
        if (!le) {
            g_free(entries);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < s->table_nelems; i++) {
            le[i] = GUINT64_TO_LE(entries[i]);
        }
        s->file_size += s->table_bytes;
        ret = bdrv_co_pwrite(bs->file, offset, s->table_bytes, le, 0);
        g_free(le);
        if (ret == 0) {
            ret = bdrv_co_flush(bs->file);
        }
        if (ret < 0) {
            g_free(entries);
            return ret;
        }
        qed_l2_insert(s, offset, entries);
        qed_meta_add_table(s, offset);
        s->l1_table[l1_index] = offset;
        return qed_co_write_entries(bs, s->header.l1_table_offset, s->l1_table,
                                    l1_index, 1);
    }
    ret = qed_co_get_l2(bs, s->l1_table[l1_index], &t);
    if (ret < 0) {
        return ret;
    }
    for (uint32_t i = 0; i < count; i++) {
        t->entries[idx + i] = host == QED_ZERO_CLUSTER ? host : host + i * cs;
    }
    /* Pinned while its sector is written: an evicted and re-read copy
     * would miss the new entries. */
    t->pins++;
    ret = qed_co_write_entries(bs, t->offset, t->entries, idx, count);
    t->pins--;
    return ret;
}
