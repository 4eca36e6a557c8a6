/* The node graph: node names and lookup, the links between nodes (file,
 * backing) and from users, the in-memory backing link changed together
 * with the header, and frozen chains. Permissions are in perm.c. */
#include <errno.h>
#include <string.h>
#include "block/internal.h"
#include "qblk/job.h"
#include "util/cutils.h"

/* Every node from bdrv_graph_add_node to bdrv_graph_remove_node, oldest
 * first (not only fully open ones: a name is taken from the start). */
static GList *graph_nodes;
static unsigned next_generated;

const char *bdrv_get_node_name(BlockDriverState *bs)
{
    return bs->node_name;
}

BlockDriverState *bdrv_find_node(const char *name)
{
    for (GList *l = graph_nodes; l; l = l->next) {
        BlockDriverState *bs = l->data;

        if (!strcmp(bs->node_name, name)) {
            return bs;
        }
    }
    return NULL;
}

BlockDriverState *bdrv_lookup_node(const char *name, GError **errp)
{
    BlockDriverState *bs = bdrv_find_node(name);

    if (!bs) {
        qblk_error_set(errp, "Failed to find node with node-name='%s'", name);
    }
    return bs;
}

BlockDriverState *bdrv_lookup_bs(const char *device, const char *node, GError **errp)
{
    BlockDriverState *bs = node ? bdrv_find_node(node) : NULL;

    if (!bs) {
        qblk_error_set(errp, "Cannot find device='%s' nor node-name='%s'",
                       device ? device : "", node ? node : "");
    }
    return bs;
}

BlockDriverState *bdrv_next_node(BlockDriverState *bs)
{
    GList *l = bs ? g_list_find(graph_nodes, bs) : graph_nodes;

    if (bs && l) {
        l = l->next;
    }
    return l ? l->data : NULL;
}

bool bdrv_check_node_name(const char *name, GError **errp)
{
    if (!qblk_id_wellformed(name)) {
        qblk_error_set(errp, "Invalid node-name: '%s'", name);
        return false;
    }
    if (strlen(name) > BDRV_NODE_NAME_MAX) {
        qblk_error_set(errp, "Node name too long");
        return false;
    }
    if (bdrv_find_node(name)) {
        qblk_error_set(errp, "Duplicate nodes with node-name='%s'", name);
        return false;
    }
    return true;
}

void bdrv_graph_add_node(BlockDriverState *bs, const char *node_name)
{
    if (node_name) {
        g_strlcpy(bs->node_name, node_name, sizeof(bs->node_name));
    } else {
        /* '#' is never valid in a given name, so the counter alone makes
         * generated names unique. */
        g_snprintf(bs->node_name, sizeof(bs->node_name), "#block%u", next_generated++);
    }
    bs->cum_perm = UINT64_MAX;     /* no set_perm call yet */
    bs->cum_shared = BLK_PERM_ALL;
    qco_queue_init(&bs->quiesce_queue);
    qco_queue_init(&bs->drain_waiters);
    graph_nodes = g_list_append(graph_nodes, bs);
}

void bdrv_graph_remove_node(BlockDriverState *bs)
{
    /* Users do not hold references: the node's end detaches them. Parent
     * nodes do, so none is left. */
    while (bs->parents) {
        BdrvChild *c = bs->parents->data;

        g_assert(!c->parent);
        bdrv_graph_unlink(c);
    }
    graph_nodes = g_list_remove(graph_nodes, bs);
}

BdrvChild *bdrv_graph_link(BlockDriverState *parent, BlockDriverState *child,
                           const char *name)
{
    BdrvChild *c = g_new0(BdrvChild, 1);

    c->name = g_strdup(name);
    c->parent = parent;
    c->bs = child;
    c->shared = BLK_PERM_ALL;
    child->parents = g_slist_prepend(child->parents, c);
    return c;
}

void bdrv_graph_unlink(BdrvChild *c)
{
    c->bs->parents = g_slist_remove(c->bs->parents, c);
    g_free(c->name);
    g_free(c);
}

void bdrv_graph_unlink_children(BlockDriverState *bs)
{
    BdrvChild *links[] = { bs->file_link, bs->backing_link };

    bs->file_link = bs->backing_link = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(links); i++) {
        if (links[i]) {
            BlockDriverState *child = links[i]->bs;

            bdrv_graph_unlink(links[i]);
            /* Giving up permissions: nothing to refuse. */
            bdrv_refresh_perms(child, NULL);
        }
    }
}

BdrvChild *bdrv_next_child(BlockDriverState *bs, BdrvChild *prev)
{
    if (!prev) {
        return bs->file_link ? bs->file_link : bs->backing_link;
    }
    return prev == bs->file_link ? bs->backing_link : NULL;
}

BdrvChild *bdrv_next_parent(BlockDriverState *bs, BdrvChild *prev)
{
    GSList *l = prev ? g_slist_find(bs->parents, prev) : bs->parents;

    if (prev && l) {
        l = l->next;
    }
    return l ? l->data : NULL;
}

const char *bdrv_child_name(BdrvChild *c)
{
    return c->name;
}

BlockDriverState *bdrv_child_bs(BdrvChild *c)
{
    return c->bs;
}

BlockDriverState *bdrv_child_parent(BdrvChild *c)
{
    return c->parent;
}

uint64_t bdrv_child_perm(BdrvChild *c)
{
    return c->perm;
}

uint64_t bdrv_child_shared(BdrvChild *c)
{
    return c->shared;
}

BdrvUser *bdrv_attach_user(BlockDriverState *bs, const char *name, uint64_t perm,
                           uint64_t shared, GError **errp)
{
    BdrvChild *u = bdrv_graph_link(NULL, bs, name);

    u->perm = perm;
    u->shared = shared;
    if (!bdrv_refresh_perms(bs, errp)) {
        bdrv_graph_unlink(u);
        return NULL;
    }
    return u;
}

void bdrv_detach_user(BdrvUser *u)
{
    BlockDriverState *bs;

    if (!u) {
        return;
    }
    bs = u->bs;
    bdrv_graph_unlink(u);
    bdrv_refresh_perms(bs, NULL);
}

bool bdrv_user_set_perm(BdrvUser *u, uint64_t perm, uint64_t shared, GError **errp)
{
    uint64_t old_perm = u->perm, old_shared = u->shared;

    u->perm = perm;
    u->shared = shared;
    if (!bdrv_refresh_perms(u->bs, errp)) {
        u->perm = old_perm;
        u->shared = old_shared;
        return false;
    }
    return true;
}

void bdrv_user_set_drain_ops(BdrvUser *u, void (*pause)(void *opaque),
                             void (*resume)(void *opaque), void *opaque)
{
    u->pause = pause;
    u->resume = resume;
    u->opaque = opaque;
}

/* ----- Frozen chains ----- */

static bool frozen_error(BdrvChild *c, GError **errp)
{
    qblk_error_set(errp, "Cannot change '%s' link from '%s' to '%s'", c->name,
                   c->parent->node_name, c->bs->node_name);
    return false;
}

bool bdrv_freeze_backing_chain(BlockDriverState *top, BlockDriverState *base,
                               GError **errp)
{
    BlockDriverState *p;

    for (p = top; p && p != base; p = p->backing) {
        if (p->backing_link && p->backing_link->frozen) {
            return frozen_error(p->backing_link, errp);
        }
    }
    if (p != base) {
        qblk_error_set(errp, "'%s' is not in the backing chain of '%s'", base->node_name,
                       top->node_name);
        return false;
    }
    for (p = top; p != base; p = p->backing) {
        if (p->backing_link) {
            p->backing_link->frozen = true;
        }
    }
    return true;
}

void bdrv_unfreeze_backing_chain(BlockDriverState *top, BlockDriverState *base)
{
    for (BlockDriverState *p = top; p && p != base; p = p->backing) {
        if (p->backing_link) {
            g_assert(p->backing_link->frozen);
            p->backing_link->frozen = false;
        }
    }
}

/* ----- Changing the backing link ----- */

/* Whether every holder of bs lets the graph below it change. */
static bool graph_mod_allowed(BlockDriverState *bs, GError **errp)
{
    for (GSList *l = bs->parents; l; l = l->next) {
        BdrvChild *c = l->data;

        if (!(c->shared & BLK_PERM_GRAPH_MOD)) {
            qblk_error_set(errp, "Cannot change the backing link of node '%s': %s%s%s "
                           "(uses node '%s' as '%s' child) does not allow graph changes",
                           bs->node_name, c->parent ? "node '" : "",
                           c->parent ? c->parent->node_name : c->name,
                           c->parent ? "'" : "", bs->node_name,
                           c->parent ? c->name : "root");
            return false;
        }
    }
    return true;
}

/* Whether node is from or below 'from'. */
static bool reaches(BlockDriverState *from, BlockDriverState *node)
{
    return from && (from == node || reaches(from->file, node) || reaches(from->backing, node));
}

static bool set_backing_check(BlockDriverState *bs, BlockDriverState *nb, bool header,
                              GError **errp)
{
    BdrvChild *old = bs->backing_link;

    if (old && old->frozen) {
        return frozen_error(old, errp);
    }
    if (!bs->drv->co_change_backing_file) {
        qblk_error_set(errp, "Node '%s' (%s) cannot have a backing file", bs->node_name,
                       bs->drv->format_name);
        return false;
    }
    if (header && bs->read_only) {
        qblk_error_set(errp, "Block node is read-only");
        return false;
    }
    if (reaches(nb, bs)) {
        qblk_error_set(errp, "Making '%s' a backing child of '%s' would create a cycle",
                       nb->node_name, bs->node_name);
        return false;
    }
    return graph_mod_allowed(bs, errp);
}

/* Puts link (or none) in bs's backing place and refreshes permissions. */
static bool swap_backing(BlockDriverState *bs, BdrvChild *link, GError **errp)
{
    bs->backing_link = link;
    bs->backing = link ? link->bs : NULL;
    return bdrv_refresh_perms(bs, errp);
}

static int coroutine_fn set_backing(BlockDriverState *bs, BlockDriverState *nb, bool header,
                                    GError **errp)
{
    BdrvChild *old = bs->backing_link, *link = NULL;
    BlockDriverState *old_bs = old ? old->bs : NULL;
    const char *file = nb ? nb->filename : NULL;
    const char *fmt = nb ? nb->drv->format_name : NULL;
    int ret;

    if (!set_backing_check(bs, nb, header, errp)) {
        return -EPERM;
    }
    bdrv_co_drained_begin(bs);
    if (old) {
        /* Out of nb's parents while permissions are checked, so a node in
         * both chains is not held twice. */
        old->bs->parents = g_slist_remove(old->bs->parents, old);
    }
    if (nb) {
        bdrv_ref(nb);
        link = bdrv_graph_link(bs, nb, "backing");
    }
    if (!swap_backing(bs, link, errp)) {
        ret = -EPERM;
        goto undo;
    }
    if (header) {
        ret = bs->drv->co_change_backing_file(bs, file, fmt);
        if (ret < 0) {
            qblk_error_set_errno(errp, -ret, "Could not change the backing file of '%s'",
                                 bs->node_name);
            goto undo;
        }
        g_free(bs->backing_file);
        g_free(bs->backing_format);
        g_free(bs->full_backing_filename);
        bs->backing_file = g_strdup(file);
        bs->backing_format = g_strdup(fmt);
        bs->full_backing_filename = g_strdup(file);
        g_free(bs->auto_backing_file);
        bs->auto_backing_file = g_strdup(file);
    }
    bdrv_co_drained_end(bs);
    if (old) {
        bdrv_graph_unlink(old);   /* already out of old_bs's parents */
        bdrv_refresh_perms(old_bs, NULL);
        bdrv_co_unref(old_bs);
    }
    if (!header) {
        return 0;
    }
    ret = bdrv_co_flush(bs);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not flush '%s'", bs->node_name);
    }
    return ret;

undo:
    if (link) {
        bdrv_graph_unlink(link);
        bdrv_co_unref(nb);
    }
    if (old) {
        old->bs->parents = g_slist_prepend(old->bs->parents, old);
    }
    swap_backing(bs, old, NULL);
    bdrv_co_drained_end(bs);
    return ret;
}

int coroutine_fn bdrv_co_set_backing(BlockDriverState *bs, BlockDriverState *nb,
                                     GError **errp)
{
    return set_backing(bs, nb, true, errp);
}

int coroutine_fn bdrv_co_attach_backing(BlockDriverState *bs, BlockDriverState *nb,
                                        GError **errp)
{
    return set_backing(bs, nb, false, errp);
}

/* ----- Putting a node in another's place ----- */

/* Points link c (into from) at to: the nodes' parent lists and, for a
 * parent node, its file or backing field. References are the caller's. */
static void retarget_link(BdrvChild *c, BlockDriverState *from, BlockDriverState *to)
{
    from->parents = g_slist_remove(from->parents, c);
    to->parents = g_slist_prepend(to->parents, c);
    c->bs = to;
    if (c->parent) {
        if (c == c->parent->file_link) {
            c->parent->file = to;
        } else {
            c->parent->backing = to;
        }
    }
}

bool coroutine_fn bdrv_co_replace_node(BlockDriverState *from, BlockDriverState *to,
                                       GError **errp)
{
    GSList *moved = NULL;
    bool ok = true;

    /* Every link into from except to's own backing link now points at to;
     * parent nodes hold a reference on what they point at. */
    for (GSList *l = from->parents; l;) {
        BdrvChild *c = l->data;

        l = l->next;
        if (c->parent == to || (c->parent && reaches(to, c->parent))) {
            continue;
        }
        if (c->frozen) {
            qblk_error_set(errp, "Cannot change '%s' link from '%s' to '%s'", c->name,
                           c->parent->node_name, from->node_name);
            ok = false;
            break;
        }
        retarget_link(c, from, to);
        if (c->parent) {
            bdrv_ref(to);
        }
        moved = g_slist_prepend(moved, c);
    }
    if (ok && (!moved || bdrv_refresh_perms(to, errp))) {
        bdrv_refresh_perms(from, NULL);
        for (GSList *l = moved; l; l = l->next) {
            if (((BdrvChild *)l->data)->parent) {
                bdrv_co_unref(from);
            }
        }
        g_slist_free(moved);
        return true;
    }
    /* Undo: every moved link back to from. */
    for (GSList *l = moved; l; l = l->next) {
        BdrvChild *c = l->data;

        retarget_link(c, to, from);
        if (c->parent) {
            bdrv_co_unref(to);
        }
    }
    g_slist_free(moved);
    bdrv_refresh_perms(from, NULL);
    return false;
}
