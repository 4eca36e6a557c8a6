/* Permissions in the node graph: what each link takes on its node and
 * lets others take (QEMU's default policy), conflict checks, and the
 * cumulative permissions pushed to drivers (file-posix's image locks). */
#include <string.h>
#include "block/internal.h"

/* QEMU's names, for messages; graph-mod is qblk's own. */
static const char *const perm_name_table[] = {
    "consistent read", "write", "write unchanged", "resize", "change children",
};

const char *bdrv_perm_name(unsigned bit)
{
    g_assert(bit < G_N_ELEMENTS(perm_name_table));
    return perm_name_table[bit];
}

static char *perm_names(uint64_t perm)
{
    GString *s = g_string_new(NULL);

    for (size_t i = 0; i < G_N_ELEMENTS(perm_name_table); i++) {
        if (perm & (1ull << i)) {
            g_string_append_printf(s, "%s%s", s->len ? ", " : "", perm_name_table[i]);
        }
    }
    return g_string_free(s, false);
}

/* How the holder appears in messages: "node 'X'" or the user's name. */
static char *holder_desc(BdrvChild *c)
{
    return c->parent ? g_strdup_printf("node '%s'", c->parent->node_name) : g_strdup(c->name);
}

static const char *link_name(BdrvChild *c)
{
    return c->parent ? c->name : "root";
}

/* QEMU's defaults. A backing child is read (consistent read if the
 * parent's holders read) and may change under us only if every holder of
 * the parent lets it; a filter (blkdebug) or raw passes its holders'
 * permissions through; a format's file child is always read for the
 * metadata, written and resized while the format is writable, and never
 * shared for write or resize. force-share on the child shares all. */
static void child_perm(BdrvChild *c, uint64_t cum_perm, uint64_t cum_shared,
                       uint64_t *perm, uint64_t *shared)
{
    BlockDriverState *parent = c->parent;

    if (c == parent->backing_link) {
        *perm = cum_perm & BLK_PERM_CONSISTENT_READ;
        *shared = (cum_shared & BLK_PERM_WRITE ? BLK_PERM_WRITE | BLK_PERM_RESIZE : 0) |
                  BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED | BLK_PERM_GRAPH_MOD;
    } else if (parent->drv->is_filter || parent->drv == &bdrv_raw) {
        *perm = cum_perm & ~(uint64_t)BLK_PERM_GRAPH_MOD;
        *shared = cum_shared | BLK_PERM_GRAPH_MOD;
    } else {
        *perm = (cum_perm & ~(uint64_t)BLK_PERM_GRAPH_MOD) | BLK_PERM_CONSISTENT_READ;
        if (!parent->read_only) {
            *perm |= BLK_PERM_WRITE | BLK_PERM_RESIZE;
        }
        *shared = (cum_shared | BLK_PERM_GRAPH_MOD) &
                  ~(uint64_t)(BLK_PERM_WRITE | BLK_PERM_RESIZE);
    }
    if (c->bs->force_share) {
        *shared = BLK_PERM_ALL;
    }
}

/* Parents before children (reverse post-order), each node once. */
static void topo_visit(BlockDriverState *bs, GPtrArray *post, GHashTable *seen)
{
    if (!bs || g_hash_table_contains(seen, bs)) {
        return;
    }
    g_hash_table_add(seen, bs);
    topo_visit(bs->file, post, seen);
    topo_visit(bs->backing, post, seen);
    g_ptr_array_add(post, bs);
}

static bool check_pair(BlockDriverState *bs, BdrvChild *a, BdrvChild *b, GError **errp)
{
    uint64_t conflict = b->perm & ~a->shared;
    g_autofree char *names = NULL, *needs = NULL, *unshares = NULL;

    if (!conflict) {
        return true;
    }
    names = perm_names(conflict);
    needs = holder_desc(b);
    unshares = holder_desc(a);
    qblk_error_set(errp, "Permission conflict on node '%s': permissions '%s' are both "
                   "required by %s (uses node '%s' as '%s' child) and unshared by %s "
                   "(uses node '%s' as '%s' child).", bs->node_name, names, needs,
                   bs->node_name, link_name(b), unshares, bs->node_name, link_name(a));
    return false;
}

/* The cumulative permissions of bs's links, or an error for a conflict
 * between two of them. Pairs are tried as QEMU does: for each link,
 * newest first, what it does not share against every other link's needs;
 * so when two links each refuse the other (two formats on one file), the
 * older one is named as the one requiring. */
static bool cumulate(BlockDriverState *bs, uint64_t *perm, uint64_t *shared, GError **errp)
{
    *perm = 0;
    *shared = BLK_PERM_ALL;
    for (GSList *a = bs->parents; a; a = a->next) {
        for (GSList *b = bs->parents; b; b = b->next) {
            if (a != b && !check_pair(bs, a->data, b->data, errp)) {
                return false;
            }
        }
        *perm |= ((BdrvChild *)a->data)->perm;
        *shared &= ((BdrvChild *)a->data)->shared;
    }
    if ((*perm & BLK_PERM_WRITE) && bs->read_only) {
        qblk_error_set(errp, "Block node is read-only");
        return false;
    }
    return true;
}

typedef struct {
    BlockDriverState *bs;
    uint64_t old_perm, old_shared, perm, shared;
    uint64_t file_perm, file_shared, backing_perm, backing_shared; /* old link values */
} PermUpdate;

static bool perm_changed(const PermUpdate *u)
{
    return u->perm != u->old_perm || u->shared != u->old_shared;
}

static void restore_links(PermUpdate *u, guint n)
{
    for (guint i = 0; i < n; i++) {
        if (u[i].bs->file_link) {
            u[i].bs->file_link->perm = u[i].file_perm;
            u[i].bs->file_link->shared = u[i].file_shared;
        }
        if (u[i].bs->backing_link) {
            u[i].bs->backing_link->perm = u[i].backing_perm;
            u[i].bs->backing_link->shared = u[i].backing_shared;
        }
    }
}

static int apply(BlockDriverState *bs, uint64_t perm, uint64_t shared, GError **errp)
{
    if (perm == UINT64_MAX) {      /* back to "never set": nothing held */
        perm = 0;
        shared = BLK_PERM_ALL;
    }
    return bs->drv->set_perm ? bs->drv->set_perm(bs, perm, shared, errp) : 0;
}

bool bdrv_refresh_perms(BlockDriverState *bs, GError **errp)
{
    g_autoptr(GPtrArray) post = g_ptr_array_new();
    g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
    g_autofree PermUpdate *u = NULL;
    guint n, i;

    topo_visit(bs, post, seen);
    n = post->len;
    u = g_new0(PermUpdate, n);
    /* Pass 1: compute top-down, checking each node's links. */
    for (i = 0; i < n; i++) {
        BlockDriverState *node = post->pdata[n - 1 - i];
        BdrvChild *links[] = { node->file_link, node->backing_link };

        u[i].bs = node;
        u[i].old_perm = node->cum_perm;
        u[i].old_shared = node->cum_shared;
        if (node->file_link) {
            u[i].file_perm = node->file_link->perm;
            u[i].file_shared = node->file_link->shared;
        }
        if (node->backing_link) {
            u[i].backing_perm = node->backing_link->perm;
            u[i].backing_shared = node->backing_link->shared;
        }
        if (!cumulate(node, &u[i].perm, &u[i].shared, errp)) {
            restore_links(u, i + 1);
            return false;
        }
        for (size_t k = 0; k < G_N_ELEMENTS(links); k++) {
            if (links[k]) {
                child_perm(links[k], u[i].perm, u[i].shared, &links[k]->perm,
                           &links[k]->shared);
            }
        }
    }
    /* Pass 2: give the drivers what changed; undo all on a refusal. */
    for (i = 0; i < n; i++) {
        if (!perm_changed(&u[i])) {
            continue;
        }
        if (apply(u[i].bs, u[i].perm, u[i].shared, errp) < 0) {
            while (i-- > 0) {
                if (perm_changed(&u[i])) {
                    apply(u[i].bs, u[i].old_perm, u[i].old_shared, NULL);
                }
            }
            restore_links(u, n);
            return false;
        }
    }
    for (i = 0; i < n; i++) {
        u[i].bs->cum_perm = u[i].perm;
        u[i].bs->cum_shared = u[i].shared;
    }
    return true;
}

void bdrv_get_cumulative_perm(BlockDriverState *bs, uint64_t *perm, uint64_t *shared)
{
    *perm = bs->cum_perm == UINT64_MAX ? 0 : bs->cum_perm;
    *shared = bs->cum_shared;
}

void bdrv_user_perm_for_flags(int flags, uint64_t *perm, uint64_t *shared)
{
    *perm = BLK_PERM_CONSISTENT_READ;
    if (flags & BDRV_O_RDWR) {
        *perm |= BLK_PERM_WRITE;
    }
    if (flags & BDRV_O_RESIZE) {
        *perm |= BLK_PERM_RESIZE;
    }
    /* Measured on QEMU 7.2: qemu-io and qemu-img share everything (two
     * qemu-io may write one raw image at once); what protects an image
     * is its format's file link, which never shares write or resize. */
    *shared = BLK_PERM_ALL;
}
