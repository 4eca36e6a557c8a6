/* Reopen without closing: a node and its file children switch between
 * read-only and read-write (and cache modes) in a drained section, the
 * drivers preparing every node before any commits, then the permissions
 * are recomputed. The backing chain stays as it is (read-only). */
#include <errno.h>
#include "block/internal.h"

#define REOPEN_FLAGS (BDRV_O_RDWR | BDRV_O_NOCACHE | BDRV_O_NO_FLUSH | BDRV_O_FORCE_SHARE)

typedef struct {
    BlockDriverState *bs;
    int old_flags, new_flags;
} ReopenNode;

/* bs and its file children, top first. */
static GArray *reopen_nodes(BlockDriverState *bs, int flags)
{
    GArray *a = g_array_new(false, false, sizeof(ReopenNode));

    for (BlockDriverState *p = bs; p; p = p->file) {
        ReopenNode n = { p, p->open_flags,
                         (p->open_flags & ~REOPEN_FLAGS) | (flags & REOPEN_FLAGS) };

        g_array_append_val(a, n);
    }
    return a;
}

/* Each driver's own state out to its file, then the host file to disk:
 * bdrv_co_flush without entering the drained node. */
static int coroutine_fn flush_nodes(GArray *a)
{
    for (guint i = 0; i < a->len; i++) {
        BlockDriverState *p = g_array_index(a, ReopenNode, i).bs;

        if (!p->read_only && p->drv->co_flush && !(p->no_flush && p->drv->is_protocol)) {
            int ret = p->drv->co_flush(p);

            if (ret < 0) {
                return ret;
            }
        }
    }
    return 0;
}

static void set_state(BlockDriverState *p, int flags)
{
    p->open_flags = flags;
    p->read_only = !(flags & BDRV_O_RDWR);
    p->no_flush = flags & BDRV_O_NO_FLUSH;
    p->force_share = flags & BDRV_O_FORCE_SHARE;
}

/* Prepares every node (parents first), then commits (children first). */
static int coroutine_fn switch_flags(GArray *a, bool back, GError **errp)
{
    guint i;
    int ret = 0;

    for (i = 0; i < a->len; i++) {
        ReopenNode *n = &g_array_index(a, ReopenNode, i);
        int flags = back ? n->old_flags : n->new_flags;

        if (n->bs->drv->co_reopen_prepare) {
            ret = n->bs->drv->co_reopen_prepare(n->bs, flags, errp);
            if (ret < 0) {
                break;
            }
        }
    }
    if (ret < 0) {
        while (i-- > 0) {
            ReopenNode *n = &g_array_index(a, ReopenNode, i);

            if (n->bs->drv->reopen_abort) {
                n->bs->drv->reopen_abort(n->bs, back ? n->old_flags : n->new_flags);
            }
        }
        return ret;
    }
    for (i = a->len; i-- > 0;) {
        ReopenNode *n = &g_array_index(a, ReopenNode, i);
        int flags = back ? n->old_flags : n->new_flags;

        if (n->bs->drv->reopen_commit) {
            n->bs->drv->reopen_commit(n->bs, flags);
        }
        set_state(n->bs, flags);
    }
    return 0;
}

int coroutine_fn bdrv_co_reopen(BlockDriverState *bs, int flags, GError **errp)
{
    g_autoptr(GArray) a = NULL;
    int ret;

    if ((flags & BDRV_O_RDWR) && (flags & BDRV_O_FORCE_SHARE)) {
        qblk_error_set(errp, "force-share=on can only be used with read-only images");
        return -EINVAL;
    }
    a = reopen_nodes(bs, flags);
    bdrv_co_drained_begin(bs);
    ret = flush_nodes(a);
    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Could not flush '%s'", bs->node_name);
        goto out;
    }
    ret = switch_flags(a, false, errp);
    if (ret < 0) {
        goto out;
    }
    if (!bdrv_refresh_perms(bs, errp)) {
        /* Going back re-acquires what we just had: best effort. */
        switch_flags(a, true, NULL);
        bdrv_refresh_perms(bs, NULL);
        ret = -EPERM;
    }
out:
    bdrv_co_drained_end(bs);
    return ret;
}
