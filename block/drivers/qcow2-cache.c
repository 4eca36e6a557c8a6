/* qcow2 metadata cache: a bounded LRU of L2 tables or refcount blocks,
 * written back lazily. Before L2 tables reach the disk, the refcount
 * blocks and the data they point at are made stable, so a crash can leak
 * clusters but never leave a table pointing at unreferenced space. */
#include <errno.h>
#include <string.h>
#include "block/drivers/qcow2.h"

void qcow2_cache_init(Qcow2Cache *c, unsigned len, uint32_t cluster_size, bool is_l2)
{
    c->len = len;
    c->entries = g_new0(Qcow2CacheEntry, len);
    for (unsigned i = 0; i < len; i++) {
        c->entries[i].data = g_malloc(cluster_size);
    }
    c->is_l2 = is_l2;
}

void qcow2_cache_destroy(Qcow2Cache *c)
{
    for (unsigned i = 0; i < c->len; i++) {
        g_free(c->entries[i].data);
    }
    g_clear_pointer(&c->entries, g_free);
    c->len = 0;
}

/* Writes one dirty entry; order: first make what it depends on stable
 * (skipped for the second and later entries of one flush pass). */
static int coroutine_fn write_entry(BlockDriverState *bs, Qcow2Cache *c, Qcow2CacheEntry *e,
                                    bool order)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    if (!e->dirty) {
        return 0;
    }
    if (order && c->depends) {
        if (qcow2_cache_is_dirty(c->depends)) {
            /* Ends with a flush of the file, which also makes the data
             * written so far stable. */
            ret = qcow2_co_cache_flush(bs, c->depends);
            if (ret < 0) {
                return ret;
            }
            order = false;
        }
    }
    if (order && c->is_l2) {
        /* Data written into newly allocated clusters must be stable before
         * a table points at it. */
        ret = bdrv_co_flush(bs->file);
        if (ret < 0) {
            return ret;
        }
    }
    ret = qcow2_co_pwrite_meta(bs, c->is_l2 ? QCOW2_META_L2 : QCOW2_META_REFBLOCK, e->offset,
                               s->cluster_size, e->data);
    if (ret == 0) {
        e->dirty = false;
    }
    return ret;
}

int coroutine_fn qcow2_co_cache_flush(BlockDriverState *bs, Qcow2Cache *c)
{
    bool wrote = false;
    int ret = 0;

    for (unsigned i = 0; i < c->len && ret == 0; i++) {
        if (c->entries[i].dirty) {
            /* One data flush covers every table written in this pass. */
            ret = write_entry(bs, c, &c->entries[i], !wrote);
            wrote = true;
        }
    }
    if (ret == 0 && wrote && !c->is_l2) {
        /* Refcount blocks are stable before anything that depends on them. */
        ret = bdrv_co_flush(bs->file);
    }
    return ret;
}

int coroutine_fn qcow2_co_flush_caches(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    int ret = qcow2_co_cache_flush(bs, &s->refblock_cache);

    return ret < 0 ? ret : qcow2_co_cache_flush(bs, &s->l2_cache);
}

static Qcow2CacheEntry *find(Qcow2Cache *c, uint64_t offset)
{
    for (unsigned i = 0; i < c->len; i++) {
        if (c->entries[i].offset == offset) {
            return &c->entries[i];
        }
    }
    return NULL;
}

static Qcow2CacheEntry *find_data(Qcow2Cache *c, uint8_t *data)
{
    for (unsigned i = 0; i < c->len; i++) {
        if (c->entries[i].data == data) {
            return &c->entries[i];
        }
    }
    g_assert_not_reached();
}

int coroutine_fn qcow2_co_cache_get(BlockDriverState *bs, Qcow2Cache *c, uint64_t offset,
                                    bool fresh, uint8_t **data)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2CacheEntry *e = find(c, offset);
    int ret;

    if (!e) {
        Qcow2CacheEntry *victim = NULL;

        for (unsigned i = 0; i < c->len; i++) {
            Qcow2CacheEntry *t = &c->entries[i];

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
        if (!victim) {
            return -ENOMEM;     /* every slot pinned: a bug, not an I/O error */
        }
        victim->pins++;
        ret = write_entry(bs, c, victim, true);
        victim->pins--;
        if (ret < 0) {
            return ret;
        }
        victim->offset = 0;
        if (fresh) {
            memset(victim->data, 0, s->cluster_size);
        } else {
            victim->pins++;
            ret = bdrv_co_pread(bs->file, offset, s->cluster_size, victim->data, 0);
            victim->pins--;
            if (ret < 0) {
                return ret;
            }
            /* Another coroutine may have loaded it meanwhile. */
            e = find(c, offset);
            if (e) {
                goto found;
            }
        }
        victim->offset = offset;
        e = victim;
    } else if (fresh) {
        memset(e->data, 0, s->cluster_size);
    }
found:
    e->last_use = ++c->clock;
    e->pins++;
    *data = e->data;
    return 0;
}

void qcow2_cache_put(Qcow2Cache *c, uint8_t *data)
{
    Qcow2CacheEntry *e = find_data(c, data);

    g_assert(e->pins > 0);
    e->pins--;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, uint8_t *data)
{
    find_data(c, data)->dirty = true;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e = find(c, offset);

    if (e && !e->pins) {
        e->offset = 0;
        e->dirty = false;
    }
}

bool qcow2_cache_is_dirty(const Qcow2Cache *c)
{
    for (unsigned i = 0; i < c->len; i++) {
        if (c->entries[i].dirty) {
            return true;
        }
    }
    return false;
}

void qcow2_cache_drop_all(Qcow2Cache *c)
{
    for (unsigned i = 0; i < c->len; i++) {
        if (!c->entries[i].pins) {
            c->entries[i].offset = 0;
            c->entries[i].dirty = false;
        }
    }
}
