/* The node graph: node names, links and users, permission conflicts,
 * frozen chains, set_backing (link and header), reopen ro<->rw, and
 * drained sections holding other coroutines' requests. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block_int.h"
#include "block/drivers/null.h"
#include "block/drivers/qcow2.h"
#include "util/main-loop.h"
#include "unit-helpers.h"

static char *tmpdir;

static char *path(const char *name)
{
    return g_build_filename(tmpdir, name, NULL);
}

static BlockDriverState *open_str(const char *optstr, int flags, GError **errp)
{
    QblkOpts *opts = qblk_opts_new();

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, NULL));
    return bdrv_open(NULL, opts, flags, NULL, errp);
}

static BlockDriverState *open_ok(const char *optstr, int flags)
{
    GError *err = NULL;
    BlockDriverState *bs = open_str(optstr, flags, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

static char *open_fails(const char *optstr, int flags)
{
    GError *err = NULL;
    char *msg;

    g_assert_null(open_str(optstr, flags, &err));
    g_assert_nonnull(err);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* A qcow2 image of 1 MiB, with backing (NULL: none). Returns its path. */
static char *make_qcow2(const char *name, const char *backing)
{
    g_autoptr(QblkOpts) o = qblk_opts_new();
    char *p = path(name);

    qblk_opts_set(o, "size", "1M");
    if (backing) {
        qblk_opts_set(o, "backing_file", backing);
        qblk_opts_set(o, "backing_fmt", "qcow2");
    }
    g_assert_cmpint(bdrv_create("qcow2", p, o, NULL), ==, 0);
    return p;
}

static int count_parents(BlockDriverState *bs)
{
    int n = 0;

    for (BdrvChild *c = bdrv_next_parent(bs, NULL); c; c = bdrv_next_parent(bs, c)) {
        n++;
    }
    return n;
}

static void test_names(void)
{
    BlockDriverState *a, *b;
    g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
    const char *gen;
    bool seen_a = false, seen_b = false;
    GError *err = NULL;

    a = open_ok("driver=null-co,node-name=disk-1.a_b", 0);
    g_assert_cmpstr(bdrv_get_node_name(a), ==, "disk-1.a_b");
    g_assert_true(bdrv_find_node("disk-1.a_b") == a);
    g_assert_null(bdrv_find_node("nosuch"));
    g_assert_null(bdrv_lookup_node("nosuch", &err));
    g_assert_cmpstr(err->message, ==, "Failed to find node with node-name='nosuch'");
    g_clear_error(&err);

    e1 = open_fails("driver=null-co,node-name=disk-1.a_b", 0);
    g_assert_cmpstr(e1, ==, "Duplicate nodes with node-name='disk-1.a_b'");
    e2 = open_fails("driver=null-co,node-name=1abc", 0);
    g_assert_cmpstr(e2, ==, "Invalid node-name: '1abc'");
    e3 = open_fails("driver=null-co,node-name=a b", 0);
    g_assert_cmpstr(e3, ==, "Invalid node-name: 'a b'");
    e4 = open_fails("driver=null-co,node-name=a2345678901234567890123456789012", 0);
    g_assert_cmpstr(e4, ==, "Node name too long");
    /* 31 characters is the limit, not over it. */
    b = open_ok("driver=null-co,node-name=a234567890123456789012345678901", 0);
    bdrv_unref(b);

    /* No name given: "#block" and a number, unique. */
    b = open_ok("driver=null-co", 0);
    gen = bdrv_get_node_name(b);
    g_assert_true(g_str_has_prefix(gen, "#block"));
    g_assert_true(g_ascii_isdigit(gen[6]));
    g_assert_true(bdrv_find_node(gen) == b);
    for (BlockDriverState *n = bdrv_next_node(NULL); n; n = bdrv_next_node(n)) {
        seen_a |= n == a;
        seen_b |= n == b;
    }
    g_assert_true(seen_a && seen_b);

    /* A closed node's name is free again. */
    bdrv_unref(a);
    g_assert_null(bdrv_find_node("disk-1.a_b"));
    a = open_ok("driver=null-co,node-name=disk-1.a_b", 0);
    bdrv_unref(a);
    bdrv_unref(b);
}

static void test_links(void)
{
    g_autofree char *base = make_qcow2("links-base.qcow2", NULL);
    g_autofree char *top = make_qcow2("links-top.qcow2", base);
    g_autofree char *o = g_strdup_printf("driver=qcow2,node-name=top,file.filename=%s,"
                                         "file.node-name=topf,backing.node-name=base", top);
    BlockDriverState *bs = open_ok(o, BDRV_O_RDWR);
    BlockDriverState *file = bdrv_find_node("topf"), *bk = bdrv_find_node("base");
    BdrvChild *c = bdrv_next_child(bs, NULL);
    uint64_t perm, shared;

    g_assert_true(file == bdrv_file_child(bs) && bk == bdrv_backing(bs));
    g_assert_cmpstr(bdrv_child_name(c), ==, "file");
    g_assert_true(bdrv_child_bs(c) == file && bdrv_child_parent(c) == bs);
    c = bdrv_next_child(bs, c);
    g_assert_cmpstr(bdrv_child_name(c), ==, "backing");
    g_assert_true(bdrv_child_bs(c) == bk);
    g_assert_null(bdrv_next_child(bs, c));
    g_assert_null(bdrv_next_child(file, NULL));

    /* The format writes its file and lets nobody else write or resize it. */
    c = bdrv_next_parent(file, NULL);
    g_assert_true(bdrv_child_parent(c) == bs);
    g_assert_null(bdrv_next_parent(file, c));
    bdrv_get_cumulative_perm(file, &perm, &shared);
    g_assert_cmphex(perm, ==, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE | BLK_PERM_RESIZE);
    g_assert_cmphex(shared & (BLK_PERM_WRITE | BLK_PERM_RESIZE), ==, 0);
    /* Without users nobody reads through the backing link. */
    g_assert_cmphex(bdrv_child_perm(bdrv_next_parent(bk, NULL)), ==, 0);
    g_assert_cmpint(count_parents(bs), ==, 0);
    bdrv_unref(bs);
}

static void test_conflicts(void)
{
    BlockDriverState *bs = open_ok("driver=null-co,node-name=shared-disk", BDRV_O_RDWR);
    BdrvUser *w, *r, *r2;
    GError *err = NULL;
    uint64_t perm, shared;

    w = bdrv_attach_user(bs, "export 'e1'", BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                         BLK_PERM_CONSISTENT_READ, &err);
    g_assert_no_error(err);
    /* A second writer: refused, naming node, permission and holder. */
    g_assert_null(bdrv_attach_user(bs, "block job 'j1'", BLK_PERM_WRITE,
                                   BLK_PERM_ALL, &err));
    g_assert_cmpstr(err->message, ==,
                    "Permission conflict on node 'shared-disk': permissions 'write' are both "
                    "required by block job 'j1' (uses node 'shared-disk' as 'root' child) and "
                    "unshared by export 'e1' (uses node 'shared-disk' as 'root' child).");
    g_clear_error(&err);
    g_assert_cmpint(count_parents(bs), ==, 1);
    /* A reader that does not let others write: refused the other way. */
    g_assert_null(bdrv_attach_user(bs, "reader", BLK_PERM_CONSISTENT_READ,
                                   BLK_PERM_CONSISTENT_READ, &err));
    g_assert_nonnull(strstr(err->message, "permissions 'write' are both required by "
                            "export 'e1'"));
    g_assert_nonnull(strstr(err->message, "unshared by reader"));
    g_clear_error(&err);
    bdrv_get_cumulative_perm(bs, &perm, &shared);
    g_assert_cmphex(perm, ==, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE);
    g_assert_cmphex(shared, ==, BLK_PERM_CONSISTENT_READ);

    /* A reader that shares everything fits; so does the writer again
     * once the first one has gone. */
    r = bdrv_attach_user(bs, "reader", BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL, &err);
    g_assert_no_error(err);
    bdrv_detach_user(w);
    r2 = bdrv_attach_user(bs, "writer", BLK_PERM_WRITE, BLK_PERM_ALL, &err);
    g_assert_no_error(err);
    /* Changing permissions is checked the same way and undone on refusal. */
    g_assert_false(bdrv_user_set_perm(r, BLK_PERM_CONSISTENT_READ, 0, &err));
    g_clear_error(&err);
    g_assert_cmphex(bdrv_child_shared(r), ==, BLK_PERM_ALL);
    bdrv_detach_user(r);
    bdrv_detach_user(r2);
    bdrv_get_cumulative_perm(bs, &perm, &shared);
    g_assert_cmphex(perm, ==, 0);
    g_assert_cmphex(shared, ==, BLK_PERM_ALL);

    /* The tools' user, as QEMU 7.2's (measured): shares everything. */
    bdrv_user_perm_for_flags(BDRV_O_RDWR | BDRV_O_RESIZE, &perm, &shared);
    g_assert_cmphex(perm, ==, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE | BLK_PERM_RESIZE);
    g_assert_cmphex(shared, ==, BLK_PERM_ALL);
    bdrv_user_perm_for_flags(0, &perm, &shared);
    g_assert_cmphex(perm, ==, BLK_PERM_CONSISTENT_READ);

    /* Write on a read-only node; force-share only read-only. */
    bdrv_unref(bs);
    bs = open_ok("driver=null-co", 0);
    g_assert_null(bdrv_attach_user(bs, "w", BLK_PERM_WRITE, BLK_PERM_ALL, &err));
    g_assert_cmpstr(err->message, ==, "Block node is read-only");
    g_clear_error(&err);
    bdrv_unref(bs);
    g_free(open_fails("driver=null-co,force-share=on", BDRV_O_RDWR));
    bs = open_ok("driver=null-co,force-share=on", 0);
    w = bdrv_attach_user(bs, "a", BLK_PERM_CONSISTENT_READ, 0, &err);
    g_assert_no_error(err);
    g_assert_cmphex(bdrv_child_shared(w), ==, 0);
    /* force-share widens what parent nodes share (the lock bytes); users
     * sharing nothing still conflict in the process, as in QEMU. */
    g_assert_null(bdrv_attach_user(bs, "b", BLK_PERM_CONSISTENT_READ, 0, &err));
    g_clear_error(&err);
    bdrv_detach_user(w);
    w = bdrv_attach_user(bs, "a", BLK_PERM_CONSISTENT_READ, 0, &err);
    g_assert_no_error(err);
    /* Read-write and force-share exclude each other on reopen too. */
    g_assert_cmpint(bdrv_reopen(bs, BDRV_O_RDWR | BDRV_O_FORCE_SHARE, &err), ==, -EINVAL);
    g_assert_cmpstr(err->message, ==, "force-share=on can only be used with read-only images");
    g_clear_error(&err);
    g_assert_cmpint(bdrv_reopen(bs, BDRV_O_RDWR, &err), ==, 0);
    bdrv_unref(bs);              /* detaches the user left */
}

/* The driver gets every change of the cumulative permissions; when it
 * refuses one (another process's lock), nothing changes anywhere. */
static void test_set_perm(void)
{
    BlockDriverState *bs = open_ok("driver=raw,file.driver=null-co,file.node-name=pn,"
                                   "file.refuse-perm=2", BDRV_O_RDWR);
    BlockDriverState *file = bdrv_find_node("pn");
    const NullStats *st = null_co_stats(file);
    BdrvChild *link = bdrv_next_child(bs, NULL);
    GError *err = NULL;
    BdrvUser *u;
    unsigned calls;

    g_assert_cmpuint(st->set_perm_calls, >=, 1);      /* after open */
    g_assert_cmphex(st->perm, ==, 0);
    g_assert_cmphex(st->shared, ==, BLK_PERM_ALL);
    u = bdrv_attach_user(bs, "reader", BLK_PERM_CONSISTENT_READ,
                         BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED, &err);
    g_assert_no_error(err);
    /* raw passes its user's permissions through to its file. */
    g_assert_cmphex(st->perm, ==, BLK_PERM_CONSISTENT_READ);
    g_assert_cmphex(st->shared, ==, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE_UNCHANGED |
                    BLK_PERM_GRAPH_MOD);
    calls = st->set_perm_calls;

    g_assert_false(bdrv_user_set_perm(u, BLK_PERM_CONSISTENT_READ | BLK_PERM_WRITE,
                                      BLK_PERM_CONSISTENT_READ, &err));
    g_assert_cmpstr(err->message, ==, "null-co refuses permissions 0x2");
    g_clear_error(&err);
    g_assert_cmpuint(st->set_perm_calls, ==, calls);
    g_assert_cmphex(bdrv_child_perm(u), ==, BLK_PERM_CONSISTENT_READ);
    g_assert_cmphex(bdrv_child_perm(link), ==, BLK_PERM_CONSISTENT_READ);
    g_assert_cmphex(bdrv_child_shared(link) & BLK_PERM_WRITE_UNCHANGED, !=, 0);
    g_assert_null(bdrv_attach_user(bs, "writer", BLK_PERM_WRITE, BLK_PERM_ALL, &err));
    g_clear_error(&err);
    g_assert_cmphex(bdrv_child_perm(link), ==, BLK_PERM_CONSISTENT_READ);
    g_assert_cmpint(count_parents(bs), ==, 1);

    /* Giving permissions up reaches the driver too. */
    bdrv_detach_user(u);
    g_assert_cmphex(st->perm, ==, 0);
    g_assert_cmpuint(st->set_perm_calls, ==, calls + 1);
    bdrv_unref(bs);

    /* force-share (inherited by the file child): its parent shares all,
     * so another process may write (qemu-io -U). */
    bs = open_ok("driver=raw,force-share=on,file.driver=null-co,file.node-name=pn", 0);
    st = null_co_stats(bdrv_find_node("pn"));
    u = bdrv_attach_user(bs, "reader", BLK_PERM_CONSISTENT_READ, BLK_PERM_CONSISTENT_READ,
                         &err);
    g_assert_no_error(err);
    g_assert_cmphex(st->perm, ==, BLK_PERM_CONSISTENT_READ);
    g_assert_cmphex(st->shared, ==, BLK_PERM_ALL);
    bdrv_unref(bs);
}

/* A user on the file node below a writable format cannot write it. */
static void test_conflict_below(void)
{
    g_autofree char *img = make_qcow2("below.qcow2", NULL);
    g_autofree char *o = g_strdup_printf("driver=qcow2,file.filename=%s,file.node-name=bf",
                                         img);
    BlockDriverState *bs = open_ok(o, BDRV_O_RDWR);
    GError *err = NULL;

    g_assert_null(bdrv_attach_user(bdrv_find_node("bf"), "tool", BLK_PERM_CONSISTENT_READ,
                                   BLK_PERM_CONSISTENT_READ, &err));
    g_assert_nonnull(strstr(err->message, "Permission conflict on node 'bf': permissions "
                            "'write, resize' are both required by node '"));
    g_assert_nonnull(strstr(err->message, "(uses node 'bf' as 'file' child)"));
    g_clear_error(&err);
    bdrv_unref(bs);
}

static void test_freeze_and_set_backing(void)
{
    g_autofree char *a = make_qcow2("sb-a.qcow2", NULL);
    g_autofree char *b = make_qcow2("sb-b.qcow2", NULL);
    g_autofree char *top = make_qcow2("sb-top.qcow2", a);
    g_autofree char *o = g_strdup_printf("driver=qcow2,node-name=sbtop,file.filename=%s,"
                                         "backing.node-name=sba", top);
    g_autofree char *ob = g_strdup_printf("driver=qcow2,node-name=sbb,file.filename=%s", b);
    BlockDriverState *bs = open_ok(o, BDRV_O_RDWR);
    BlockDriverState *old = bdrv_find_node("sba");
    BlockDriverState *nb = open_ok(ob, 0);
    GError *err = NULL;
    BdrvUser *u;
    int old_refs;

    bdrv_ref(old);               /* keep it to look at after the change */
    old_refs = old->refcnt;
    g_assert_true(bdrv_freeze_backing_chain(bs, NULL, &err));
    g_assert_false(bdrv_freeze_backing_chain(bs, NULL, &err));
    g_clear_error(&err);
    g_assert_cmpint(bdrv_set_backing(bs, nb, &err), <, 0);
    g_assert_cmpstr(err->message, ==, "Cannot change 'backing' link from 'sbtop' to 'sba'");
    g_clear_error(&err);
    g_assert_true(bdrv_backing(bs) == old);
    g_assert_cmpstr(bdrv_backing_file(bs), ==, a);
    bdrv_unfreeze_backing_chain(bs, NULL);
    /* A holder that does not let the graph below it change. */
    u = bdrv_attach_user(bs, "job", BLK_PERM_CONSISTENT_READ,
                         BLK_PERM_ALL & ~BLK_PERM_GRAPH_MOD, &err);
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_set_backing(bs, nb, &err), <, 0);
    g_assert_cmpstr(err->message, ==, "Cannot change the backing link of node 'sbtop': job "
                    "(uses node 'sbtop' as 'root' child) does not allow graph changes");
    g_clear_error(&err);
    g_assert_true(bdrv_backing(bs) == old);
    bdrv_detach_user(u);

    g_assert_cmpint(bdrv_set_backing(bs, nb, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(bdrv_backing(bs) == nb);
    g_assert_cmpstr(bdrv_backing_file(bs), ==, b);
    g_assert_cmpint(old->refcnt, ==, old_refs - 1);
    g_assert_cmpint(count_parents(old), ==, 0);
    g_assert_cmpint(count_parents(nb), ==, 1);
    bdrv_unref(old);
    g_assert_null(bdrv_find_node("sba"));      /* closed: the link held the last ref */
    bdrv_unref(nb);
    bdrv_unref(bs);
    g_assert_null(bdrv_find_node("sbb"));

    /* The header says so too. */
    g_free(o);
    o = g_strdup_printf("driver=qcow2,file.filename=%s", top);
    bs = open_ok(o, 0);
    g_assert_cmpstr(bdrv_backing_file(bs), ==, b);
    g_assert_cmpstr(bdrv_backing_format(bs), ==, "qcow2");
    g_assert_cmpstr(bdrv_format_name(bdrv_backing(bs)), ==, "qcow2");
    bdrv_unref(bs);

    /* None at all. */
    bs = open_ok(o, BDRV_O_RDWR);
    g_assert_cmpint(bdrv_set_backing(bs, NULL, &err), ==, 0);
    g_assert_null(bdrv_backing(bs));
    g_assert_null(bdrv_backing_file(bs));
    bdrv_unref(bs);
}

static uint64_t header_incompat(const char *file)
{
    uint8_t buf[8];
    int fd = open(file, O_RDONLY);

    g_assert_cmpint(pread(fd, buf, 8, 72), ==, 8);
    close(fd);
    return GUINT64_FROM_BE(*(uint64_t *)buf);
}

static void test_reopen(void)
{
    g_autofree char *img = make_qcow2("reopen.qcow2", NULL);
    g_autofree char *o = g_strdup_printf("driver=qcow2,file.filename=%s", img);
    BlockDriverState *bs = open_ok(o, 0), *other;
    BDRVQcow2State *s = bs->opaque;
    char buf[4096], back[4096];
    uint8_t dirty[8] = { 0, 0, 0, 0, 0, 0, 0, QCOW2_INCOMPAT_DIRTY };
    GError *err = NULL;
    uint64_t perm, shared;

    memset(buf, 0x5a, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0), ==, -EPERM);
    g_assert_cmpint(bdrv_reopen(bs, BDRV_O_RDWR, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(bdrv_is_read_only(bs) || bdrv_is_read_only(bdrv_file_child(bs)));
    bdrv_get_cumulative_perm(bdrv_file_child(bs), &perm, &shared);
    g_assert_cmphex(perm & BLK_PERM_WRITE, ==, BLK_PERM_WRITE);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0), ==, 0);

    /* As a lazy-refcounts writer leaves it: dirty on disk and in memory. */
    g_assert_cmpint(bdrv_pwrite(bdrv_file_child(bs), 72, 8, dirty, 0), ==, 0);
    s->header.incompatible_features |= QCOW2_INCOMPAT_DIRTY;
    g_assert_cmphex(header_incompat(img) & QCOW2_INCOMPAT_DIRTY, !=, 0);

    g_assert_cmpint(bdrv_reopen(bs, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_true(bdrv_is_read_only(bs) && bdrv_is_read_only(bdrv_file_child(bs)));
    g_assert_cmphex(header_incompat(img) & QCOW2_INCOMPAT_DIRTY, ==, 0);
    bdrv_get_cumulative_perm(bdrv_file_child(bs), &perm, &shared);
    g_assert_cmphex(perm & BLK_PERM_WRITE, ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0), ==, -EPERM);
    g_assert_cmpint(bdrv_pread(bs, 0, sizeof(back), back, 0), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    /* Everything reached the file: another reader sees the data. */
    other = open_ok(o, 0);
    memset(back, 0, sizeof(back));
    g_assert_cmpint(bdrv_pread(other, 0, sizeof(back), back, 0), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    bdrv_unref(other);

    /* A read-write user keeps the node read-write. */
    g_assert_cmpint(bdrv_reopen(bs, BDRV_O_RDWR, &err), ==, 0);
    g_assert_nonnull(bdrv_attach_user(bs, "tool", BLK_PERM_WRITE, BLK_PERM_ALL, &err));
    g_assert_cmpint(bdrv_reopen(bs, 0, &err), <, 0);
    g_assert_cmpstr(err->message, ==, "Block node is read-only");
    g_clear_error(&err);
    g_assert_false(bdrv_is_read_only(bs));
    g_assert_cmpint(bdrv_pwrite(bs, 4096, sizeof(buf), buf, 0), ==, 0);
    bdrv_unref(bs);

    bs = open_ok(o, 0);
    g_assert_cmpint(bdrv_pread(bs, 4096, sizeof(back), back, 0), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    bdrv_unref(bs);
}

static uint64_t qed_features(const char *file)
{
    uint8_t buf[8];
    int fd = open(file, O_RDONLY);

    g_assert_cmpint(pread(fd, buf, 8, 16), ==, 8);
    close(fd);
    return GUINT64_FROM_LE(*(uint64_t *)buf);
}

/* QED: the need-check flag an allocating write sets is cleared when the
 * image goes read-only, and the data stays. */
static void test_reopen_qed(void)
{
    g_autofree char *img = path("reopen.qed");
    g_autofree char *o = g_strdup_printf("driver=qed,file.filename=%s", img);
    g_autoptr(QblkOpts) c = qblk_opts_new();
    BlockDriverState *bs;
    char buf[4096], back[4096];
    GError *err = NULL;

    qblk_opts_set(c, "size", "1M");
    g_assert_cmpint(bdrv_create("qed", img, c, NULL), ==, 0);
    bs = open_ok(o, BDRV_O_RDWR);
    memset(buf, 0xa5, sizeof(buf));
    g_assert_cmpint(bdrv_pwrite(bs, 65536, sizeof(buf), buf, 0), ==, 0);
    g_assert_cmphex(qed_features(img) & 2, ==, 2);
    g_assert_cmpint(bdrv_reopen(bs, 0, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmphex(qed_features(img) & 2, ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 65536, sizeof(back), back, 0), ==, 0);
    g_assert_cmpmem(buf, sizeof(buf), back, sizeof(back));
    g_assert_cmpint(bdrv_reopen(bs, BDRV_O_RDWR, &err), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, sizeof(buf), buf, 0), ==, 0);
    bdrv_unref(bs);
    g_assert_cmphex(qed_features(img) & 2, ==, 0);
}

typedef struct {
    BlockDriverState *bs;
    bool done;
    int ret;
} ReadCo;

static void coroutine_fn read_entry(void *opaque)
{
    ReadCo *r = opaque;
    char buf[512];
    QIOVector qiov;

    qiov_init_buf(&qiov, buf, sizeof(buf));
    r->ret = bdrv_co_preadv(r->bs, 0, sizeof(buf), &qiov, 0);
    qiov_destroy(&qiov);
    r->done = true;
}

typedef struct {
    BlockDriverState *bs;
    ReadCo *busy;
    bool saw_busy_done, done;
} DrainerCo;

/* A coroutine's drained section: begin returns once the request in
 * flight has finished (woken by it, not polling). */
static void coroutine_fn drainer_entry(void *opaque)
{
    DrainerCo *d = opaque;

    bdrv_co_drained_begin(d->bs);
    d->saw_busy_done = d->busy->done;
    bdrv_co_drained_end(d->bs);
    d->done = true;
}

typedef struct {
    int paused, resumed;
} DrainCounts;

static void on_pause(void *opaque)
{
    ((DrainCounts *)opaque)->paused++;
}

static void on_resume(void *opaque)
{
    ((DrainCounts *)opaque)->resumed++;
}

static void test_drain(void)
{
    BlockDriverState *bs = open_ok("driver=null-co,latency-ns=5000000", BDRV_O_RDWR);
    ReadCo first = { bs }, second = { bs };
    BdrvUser *u = bdrv_attach_user(bs, "export", BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL,
                                   NULL);
    DrainCounts n = { 0, 0 };

    bdrv_user_set_drain_ops(u, on_pause, on_resume, &n);
    /* A request in flight when the section begins: begin waits for it. */
    qco_enter(qco_create(read_entry, &first));
    g_assert_false(first.done);
    bdrv_drained_begin(bs);
    g_assert_true(first.done);
    g_assert_cmpint(n.paused, ==, 1);

    /* A request issued inside the section waits for its end. */
    qco_enter(qco_create(read_entry, &second));
    for (int i = 0; i < 20; i++) {
        qblk_loop_iterate(false);
        g_usleep(1000);
    }
    g_assert_false(second.done);
    g_assert_cmpuint(bs->in_flight, ==, 0);
    bdrv_drained_begin(bs);          /* nested */
    bdrv_drained_end(bs);
    qblk_loop_iterate(false);
    g_assert_false(second.done);
    bdrv_drained_end(bs);
    g_assert_cmpint(n.paused, ==, 1);    /* once for the nested sections */
    g_assert_cmpint(n.resumed, ==, 1);
    while (!second.done) {
        qblk_loop_iterate(true);
    }
    g_assert_cmpint(second.ret, ==, 0);

    /* The coroutine form. */
    {
        ReadCo third = { bs };
        DrainerCo d = { bs, &third };

        qco_enter(qco_create(read_entry, &third));
        qco_enter(qco_create(drainer_entry, &d));
        for (int i = 0; i < 2000 && !d.done; i++) {
            qblk_loop_iterate(false);
            g_usleep(100);
        }
        g_assert_true(d.done);
        g_assert_true(d.saw_busy_done);
    }
    bdrv_unref(bs);
}

typedef struct {
    BlockDriverState *bs;
    BdrvRequestFlags flags;
    bool write;
    bool done;
    int ret;
} NestedCo;

static void coroutine_fn plain_drainer_entry(void *opaque)
{
    DrainerCo *d = opaque;

    bdrv_co_drained_begin(d->bs);
    bdrv_co_drained_end(d->bs);
    d->done = true;
}

static void coroutine_fn nested_entry(void *opaque)
{
    NestedCo *r = opaque;
    g_autofree char *buf = g_malloc0(192 * 1024);

    r->ret = r->write ? bdrv_co_pwrite(r->bs, 0, 192 * 1024, buf, r->flags)
                      : bdrv_co_pread(r->bs, 0, 192 * 1024, buf, r->flags);
    r->done = true;
}

/* A drained section that begins while a request is in flight must not wait
 * for what that request asks of its own node on the way (a copy-on-read's
 * allocation query between the runs it copies, an emulated FUA's flush):
 * those ran through the public entry points, waited for the section to end
 * while the section waited for them, and every client of the node hung
 * (a stream finishing under NBD load). */
static void test_drain_nested(void)
{
    g_autofree char *img = path("nested.qcow2");
    g_autofree char *o = g_strdup_printf("driver=qcow2,file.driver=file,file.filename=%s,"
                                         "backing.driver=null-co,backing.size=1M,"
                                         "backing.read-zeroes=on,backing.latency-ns=5000000",
                                         img);
    g_autofree char *created = unit_create(tmpdir, "qcow2", "nested.qcow2", "size=1M");
    BlockDriverState *bs;
    char one[512] = { 1 };

    g_assert_nonnull(created);
    bs = open_ok(o, BDRV_O_RDWR);
    /* The middle cluster is allocated, so the read copies two runs and asks
     * for the allocation after the first (whose backing read yields). */
    g_assert_cmpint(bdrv_pwrite(bs, 64 * 1024, sizeof(one), one, 0), ==, 0);
    for (int fua = 0; fua < 2; fua++) {
        NestedCo r = { bs, fua ? BDRV_REQ_FUA : BDRV_REQ_COPY_ON_READ, fua };
        DrainerCo d = { bs, NULL };

        qco_enter(qco_create(nested_entry, &r));
        g_assert_false(r.done);
        qco_enter(qco_create(plain_drainer_entry, &d));
        for (int i = 0; i < 20000 && !d.done; i++) {
            qblk_loop_iterate(false);
            g_usleep(100);
        }
        g_assert_true(d.done);
        g_assert_true(r.done);
        g_assert_cmpint(r.ret, ==, 0);
    }
    bdrv_unref(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    qblk_loop_init();
    tmpdir = unit_tmpdir_new("qblk-graph-XXXXXX");

    g_test_add_func("/graph/names", test_names);
    g_test_add_func("/graph/links", test_links);
    g_test_add_func("/graph/conflicts", test_conflicts);
    g_test_add_func("/graph/conflict-below", test_conflict_below);
    g_test_add_func("/graph/set-perm", test_set_perm);
    g_test_add_func("/graph/freeze-set-backing", test_freeze_and_set_backing);
    g_test_add_func("/graph/reopen", test_reopen);
    g_test_add_func("/graph/reopen-qed", test_reopen_qed);
    g_test_add_func("/graph/drain", test_drain);
    g_test_add_func("/graph/drain-nested", test_drain_nested);
    ret = g_test_run();
    g_autoptr(GDir) d = g_dir_open(tmpdir, 0, NULL);
    for (const char *n; d && (n = g_dir_read_name(d));) {
        g_autofree char *p = path(n);
        g_unlink(p);
    }
    unit_tmpdir_remove(tmpdir);
    return ret;
}
