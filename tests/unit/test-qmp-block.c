/* The block-node QMP handlers (qmp/block-commands.c) called the way the
 * monitor calls them: in a coroutine, with arguments that passed the
 * schema check. This file stands in for the monitor (registration and
 * the argument readers of qmp/qmp.h), so the handlers are tested without
 * it; query-named-block-nodes is compared with qemu-storage-daemon 7.2's
 * reply for the same images and commands. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include "qmp/qmp.h"
#include "qblk/block.h"
#include "unit-helpers.h"

static char *tmpdir;

/* ----- The monitor's part of qmp.h, for this test ----- */

static const QmpCommand *commands;
static size_t n_commands;
static bool schema_added;

void qmp_schema_add(const char *qapi_text)
{
    g_assert_nonnull(strstr(qapi_text, "'command': 'blockdev-add'"));
    schema_added = true;
}

void qmp_register_commands(const QmpCommand *cmds, size_t n)
{
    commands = cmds;
    n_commands = n;
}

void qmp_event_emit(const char *name, QblkJson *data)
{
    qblk_json_free(data);
}

/* The export command file is not linked: no node is exported here. */
bool qmp_node_is_exported(BlockDriverState *bs)
{
    (void)bs;
    return false;
}

/* ----- Running a command ----- */

static QblkJson *from_node(JsonNode *n)
{
    switch (json_node_get_node_type(n)) {
    case JSON_NODE_NULL:
        return qblk_json_null();
    case JSON_NODE_ARRAY: {
        QblkJson *arr = qblk_json_array();
        JsonArray *a = json_node_get_array(n);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            qblk_json_append(arr, from_node(json_array_get_element(a, i)));
        }
        return arr;
    }
    case JSON_NODE_OBJECT: {
        QblkJson *obj = qblk_json_object();
        JsonObject *o = json_node_get_object(n);
        g_autoptr(GList) members = json_object_get_members(o);

        for (GList *l = members; l; l = l->next) {
            qblk_json_set(obj, l->data, from_node(json_object_get_member(o, l->data)));
        }
        return obj;
    }
    case JSON_NODE_VALUE:
        break;
    }
    switch (json_node_get_value_type(n)) {
    case G_TYPE_BOOLEAN:
        return qblk_json_bool(json_node_get_boolean(n));
    case G_TYPE_INT64:
        return qblk_json_int(json_node_get_int(n));
    case G_TYPE_DOUBLE:
        return qblk_json_double(json_node_get_double(n));
    default:
        return qblk_json_string(json_node_get_string(n));
    }
}

/* The arguments as the monitor would pass them: "$D" is the test's
 * directory. */
static QblkJson *parse_args(const char *text)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_auto(GStrv) parts = g_strsplit(text, "$D", -1);
    g_autofree char *full = g_strjoinv(tmpdir, parts);

    g_assert_true(json_parser_load_from_data(p, full, -1, NULL));
    return from_node(json_parser_get_root(p));
}

typedef struct {
    QmpCommandFunc *fn;
    QblkJson *args;
    QblkJson *ret;
    GError *err;
} Call;

static void coroutine_fn call_entry(void *opaque)
{
    Call *c = opaque;

    c->ret = c->fn(c->args, &c->err);
}

/* Runs a command; its reply as QMP prints it ("$D" for the directory),
 * or "error: <desc>". */
static char *run(const char *name, const char *args)
{
    Call c = { .args = parse_args(args ? args : "{}") };
    g_autofree char *text = NULL;
    g_auto(GStrv) parts = NULL;

    for (size_t i = 0; i < n_commands; i++) {
        if (!strcmp(commands[i].name, name)) {
            c.fn = commands[i].fn;
        }
    }
    g_assert_nonnull(c.fn);
    bdrv_run_co(call_entry, &c);
    qblk_json_free(c.args);
    if (!c.ret) {
        g_assert_nonnull(c.err);
        text = g_strdup_printf("error: %s", c.err->message);
        g_error_free(c.err);
    } else {
        g_assert_null(c.err);
        text = qblk_json_to_string(c.ret, false);
        qblk_json_free(c.ret);
    }
    parts = g_strsplit(text, tmpdir, -1);
    return g_strjoinv("$D", parts);
}

static void run_ok(const char *name, const char *args)
{
    g_autofree char *r = run(name, args);

    g_assert_cmpstr(r, ==, "{}");
}

static void run_fails(const char *name, const char *args, const char *desc)
{
    g_autofree char *r = run(name, args);
    g_autofree char *want = g_strdup_printf("error: %s", desc);

    g_assert_cmpstr(r, ==, want);
}

/* actual-size depends on the host's file system. */
static char *mask_actual_size(const char *s)
{
    g_autoptr(GRegex) re = g_regex_new("\"actual-size\": [0-9]+", 0, 0, NULL);

    return g_regex_replace_literal(re, s, -1, 0, "\"actual-size\": N", 0, NULL);
}

static void make_images(void)
{
    g_autofree char *base = unit_create(tmpdir, "raw", "base.raw", "size=1M");
    g_autofree char *opts = g_strdup_printf("size=1M,backing_file=%s,backing_fmt=raw", base);
    g_autofree char *top = unit_create(tmpdir, "qed", "top.qed", opts);
    g_autofree char *ov = unit_create(tmpdir, "qcow2", "ov.qcow2", "size=1M");
}

/* ----- The tests ----- */

/* qemu-storage-daemon 7.2's replies to query-named-block-nodes (flat,
 * then not) after these blockdev-adds on the same images, actual-size
 * masked: the members, their order and their values. */
static const char *const qsd_flat_reply =
#include "test-qmp-block-qsd.inc"
    ;

static void test_add_and_query(void)
{
    g_autofree char *flat = NULL, *full = NULL, *both = NULL, *masked = NULL;

    make_images();
    run_ok("blockdev-add", "{\"driver\": \"file\", \"node-name\": \"basef\", "
           "\"filename\": \"$D/base.raw\", \"read-only\": true}");
    run_ok("blockdev-add", "{\"driver\": \"raw\", \"node-name\": \"base\", \"file\": \"basef\", "
           "\"read-only\": true}");
    run_ok("blockdev-add", "{\"driver\": \"qed\", \"node-name\": \"top\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/top.qed\", \"node-name\": \"topf\"}, "
           "\"backing\": \"base\", \"detect-zeroes\": \"on\", \"cache\": {\"no-flush\": true}}");
    run_ok("blockdev-add", "{\"driver\": \"null-co\", \"node-name\": \"n0\"}");
    run_ok("blockdev-add", "{\"driver\": \"qcow2\", \"node-name\": \"ov\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/ov.qcow2\", \"node-name\": \"ovf\", "
           "\"cache\": {\"direct\": true}}, \"discard\": \"unmap\", "
           "\"detect-zeroes\": \"unmap\", \"backing\": null}");
    flat = run("query-named-block-nodes", "{\"flat\": true}");
    full = run("query-named-block-nodes", NULL);
    both = g_strdup_printf("%s\n%s\n", flat, full);
    masked = mask_actual_size(both);
    g_assert_cmpstr(masked, ==, qsd_flat_reply);
}

static void test_add_errors(void)
{
    run_fails("blockdev-add", "{\"driver\": \"file\", \"filename\": \"$D/base.raw\"}",
              "'node-name' must be specified for the root node");
    run_fails("blockdev-add", "{\"driver\": \"file\", \"node-name\": \"topf\", "
              "\"filename\": \"$D/top.qed\"}", "Duplicate nodes with node-name='topf'");
    run_fails("blockdev-add", "{\"driver\": \"qed\", \"node-name\": \"x\", \"file\": \"nosuch\"}",
              "Cannot find device='nosuch' nor node-name='nosuch'");
    run_fails("blockdev-add", "{\"driver\": \"qed\", \"node-name\": \"1bad\", \"file\": "
              "{\"driver\": \"file\", \"filename\": \"$D/top.qed\"}}", "Invalid node-name: '1bad'");
    run_fails("blockdev-add", "{\"driver\": \"null-co\", \"node-name\": \"n1\", "
              "\"detect-zeroes\": \"unmap\"}", "setting detect-zeroes to unmap is not allowed "
              "without setting discard operation to unmap");
    run_fails("blockdev-add", "{\"driver\": \"copy-on-read\", \"node-name\": \"c\", "
              "\"file\": \"top\", \"bottom\": \"nosuch\"}", "Bottom node 'nosuch' not found");
    g_assert_null(bdrv_find_node("c"));
}

static void test_del(void)
{
    run_fails("blockdev-del", "{\"node-name\": \"nosuch\"}",
              "Failed to find node with node-name='nosuch'");
    run_fails("blockdev-del", "{\"node-name\": \"base\"}",
              "Node 'base' is busy: node is used as backing hd of 'top'");
    run_fails("blockdev-del", "{\"node-name\": \"basef\"}", "Block device basef is in use");
    run_fails("blockdev-del", "{\"node-name\": \"topf\"}", "Node topf is not owned by the monitor");
    /* A filter above top, then gone again. */
    run_ok("blockdev-add", "{\"driver\": \"copy-on-read\", \"node-name\": \"cor\", "
           "\"file\": \"top\"}");
    run_fails("blockdev-del", "{\"node-name\": \"top\"}", "Block device top is in use");
    run_ok("blockdev-del", "{\"node-name\": \"cor\"}");
    g_assert_null(bdrv_find_node("cor"));
    g_assert_nonnull(bdrv_find_node("top"));
}

static void test_resize(void)
{
    run_fails("block_resize", "{\"node-name\": \"nosuch\", \"size\": 1}",
              "Cannot find device='' nor node-name='nosuch'");
    run_fails("block_resize", "{\"device\": \"top\", \"size\": 1}",
              "Cannot find device='top' nor node-name=''");
    run_fails("block_resize", "{\"node-name\": \"top\", \"size\": -1}",
              "Parameter 'size' expects a >0 size");
    run_fails("block_resize", "{\"node-name\": \"top\", \"size\": 65536}",
              "Shrinking images is currently not supported");
    run_fails("block_resize", "{\"node-name\": \"n0\", \"size\": 65536}",
              "Image format driver does not support resize");
    run_ok("block_resize", "{\"node-name\": \"top\", \"size\": 2097152}");
    g_assert_cmpint(bdrv_getlength(bdrv_find_node("top")), ==, 2 << 20);
}

static void test_snapshot(void)
{
    BlockDriverState *top = bdrv_find_node("top"), *ov = bdrv_find_node("ov");
    BdrvUser *user;

    run_fails("blockdev-snapshot", "{\"node\": \"nosuch\", \"overlay\": \"ov\"}",
              "Cannot find device='nosuch' nor node-name='nosuch'");
    run_fails("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"nosuch\"}",
              "Cannot find device='nosuch' nor node-name='nosuch'");
    run_fails("blockdev-snapshot", "{\"node\": \"base\", \"overlay\": \"ov\"}",
              "Node 'base' is busy: node is used as backing hd of 'top'");
    run_fails("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"top\"}",
              "The overlay already has a backing image");
    run_fails("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"n0\"}",
              "The overlay does not support backing images");
    user = bdrv_attach_user(ov, "export 'e0'", BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL, NULL);
    run_fails("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"ov\"}",
              "The overlay is already in use");
    bdrv_detach_user(user);
    /* A user of top (an export) follows it to the overlay. */
    user = bdrv_attach_user(top, "export 'e1'", BLK_PERM_CONSISTENT_READ, BLK_PERM_ALL, NULL);
    g_assert_nonnull(user);
    run_ok("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"ov\"}");
    g_assert_true(bdrv_child_bs(user) == ov);
    run_fails("blockdev-del", "{\"node-name\": \"ov\"}", "Node ov is in use");
    bdrv_detach_user(user);
    /* In memory only, as QEMU: the overlay's header names no backing
     * file; the old top is read-only now. */
    g_assert_true(bdrv_backing(ov) == top);
    g_assert_null(bdrv_backing_file(ov));
    g_assert_true(bdrv_is_read_only(top));
    run_fails("blockdev-snapshot", "{\"node\": \"top\", \"overlay\": \"ov\"}",
              "Node 'top' is busy: node is used as backing hd of 'ov'");
}

static void test_change_backing_file(void)
{
    BlockDriverState *top = bdrv_find_node("top");

    run_fails("change-backing-file", "{\"device\": \"top\", \"image-node-name\": \"top\", "
              "\"backing-file\": \"x.raw\"}", "Need a root block node");
    run_fails("change-backing-file", "{\"device\": \"ov\", \"image-node-name\": \"nosuch\", "
              "\"backing-file\": \"x.raw\"}", "Cannot find device='' nor node-name='nosuch'");
    run_fails("change-backing-file", "{\"device\": \"ov\", \"image-node-name\": \"base\", "
              "\"backing-file\": \"x.raw\"}", "not allowing backing file change on an image "
              "without a backing file");
    /* top is read-only (below the overlay): made writable for the change. */
    run_ok("change-backing-file", "{\"device\": \"ov\", \"image-node-name\": \"top\", "
           "\"backing-file\": \"x.raw\"}");
    g_assert_cmpstr(bdrv_backing_file(top), ==, "x.raw");
    g_assert_true(bdrv_is_read_only(top));
}

static void coroutine_fn close_all_entry(void *opaque)
{
    qmp_co_blockdev_close_all();
}

static void coroutine_fn add_opts_entry(void *opaque)
{
    QblkOpts *opts = qblk_opts_new();
    GError **errp = opaque;

    qblk_opts_parse(opts, "driver=null-co,node-name=dotted,size=4096", NULL, NULL);
    g_assert_true(qmp_co_blockdev_add_opts(opts, errp));
    opts = qblk_opts_new();
    qblk_opts_parse(opts, "driver=null-co", NULL, NULL);
    g_assert_false(qmp_co_blockdev_add_opts(opts, errp));
}

static void test_dotted_and_close_all(void)
{
    GError *err = NULL;

    bdrv_run_co(add_opts_entry, &err);
    g_assert_cmpstr(err->message, ==, "'node-name' must be specified for the root node");
    g_error_free(err);
    g_assert_cmpint(bdrv_getlength(bdrv_find_node("dotted")), ==, 4096);
    bdrv_run_co(close_all_entry, NULL);
    g_assert_null(bdrv_next_node(NULL));
}

/* Filenames QEMU cannot reduce to a file name become "json:" and the
 * options that open the same tree: a backing given by reference under
 * another name than the header's, "backing": null under a header that
 * names one, a filter, null-co with a size, an overlay attached by
 * blockdev-snapshot. */
static const char *const qsd_json_reply =
#include "test-qmp-block-qsd-json.inc"
    ;

static char *mask_generated_names(const char *s)
{
    g_autoptr(GRegex) re = g_regex_new("\"node-name\": \"#block[0-9]+\"", 0, 0, NULL);

    return g_regex_replace_literal(re, s, -1, 0, "\"node-name\": \"#blockN\"", 0, NULL);
}

static void test_json_filenames(void)
{
    g_autofree char *b2 = unit_create(tmpdir, "raw", "b2.raw", "size=1M");
    g_autofree char *t2 = unit_create(tmpdir, "qed", "t2.qed",
                                      "size=1M,backing_file=b2.raw,backing_fmt=raw");
    g_autofree char *t3 = unit_create(tmpdir, "qed", "t3.qed",
                                      "size=1M,backing_file=b2.raw,backing_fmt=raw");
    g_autofree char *o2 = unit_create(tmpdir, "qcow2", "o2.qcow2", "size=1M");
    g_autofree char *flat = NULL, *line = NULL, *m1 = NULL, *m2 = NULL;

    run_ok("blockdev-add", "{\"driver\": \"file\", \"node-name\": \"b2f\", "
           "\"filename\": \"$D/b2.raw\", \"read-only\": true}");
    run_ok("blockdev-add", "{\"driver\": \"raw\", \"node-name\": \"b2\", \"file\": \"b2f\", "
           "\"read-only\": true}");
    run_ok("blockdev-add", "{\"driver\": \"qed\", \"node-name\": \"t2\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/t2.qed\"}, \"backing\": \"b2\"}");
    run_ok("blockdev-add", "{\"driver\": \"qed\", \"node-name\": \"t3\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/t3.qed\"}, \"backing\": null}");
    run_ok("blockdev-add", "{\"driver\": \"copy-on-read\", \"node-name\": \"c2\", "
           "\"file\": \"t3\"}");
    run_ok("blockdev-add", "{\"driver\": \"null-co\", \"node-name\": \"n2\", \"size\": 65536}");
    run_ok("blockdev-add", "{\"driver\": \"qcow2\", \"node-name\": \"o2\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/o2.qcow2\"}, \"backing\": null}");
    run_ok("blockdev-snapshot", "{\"node\": \"t2\", \"overlay\": \"o2\"}");
    flat = run("query-named-block-nodes", "{\"flat\": true}");
    line = g_strdup_printf("%s\n", flat);
    m1 = mask_actual_size(line);
    m2 = mask_generated_names(m1);
    g_assert_cmpstr(m2, ==, qsd_json_reply);
    bdrv_run_co(close_all_entry, NULL);
}

/* blkdebug's inject-error list reaches the driver: a read covering the
 * sector fails once with the errno. */
static void test_blkdebug_inject_error(void)
{
    BlockDriverState *bs;
    char buf[512];

    run_ok("blockdev-add", "{\"driver\": \"raw\", \"node-name\": \"bd\", \"file\": "
           "{\"driver\": \"blkdebug\", \"inject-error\": [{\"event\": \"read_aio\", "
           "\"errno\": 28, \"sector\": 128, \"once\": true}, {\"event\": \"write_aio\", "
           "\"iotype\": \"write\"}], \"image\": {\"driver\": \"null-co\"}}}");
    bs = bdrv_find_node("bd");
    g_assert_cmpint(bdrv_pread(bs, 0, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pread(bs, 65536, 512, buf, 0), ==, -ENOSPC);
    g_assert_cmpint(bdrv_pread(bs, 65536, 512, buf, 0), ==, 0);
    g_assert_cmpint(bdrv_pwrite(bs, 0, 512, buf, 0), ==, -EIO);
    run_ok("blockdev-del", "{\"node-name\": \"bd\"}");
}

/* A chain opened from the headers (relative backing names, a qcow2 v2
 * base under a QED under a qcow2 v3), with a copy-on-read filter on top:
 * generated nodes, full backing names, and the filter's chain walked
 * through its child. */
static const char *const qsd_chain_reply =
#include "test-qmp-block-qsd-chain.inc"
    ;

static void test_header_chain(void)
{
    g_autofree char *base = unit_create(tmpdir, "qcow2", "c-base.qcow2", "size=1M,compat=0.10");
    g_autofree char *mid = unit_create(tmpdir, "qed", "c-mid.qed",
                                       "size=1M,backing_file=c-base.qcow2,backing_fmt=qcow2");
    g_autofree char *top = unit_create(tmpdir, "qcow2", "c-top.qcow2",
                                       "size=1M,backing_file=c-mid.qed,backing_fmt=qed");
    g_autofree char *flat = NULL, *full = NULL, *both = NULL, *m1 = NULL, *m2 = NULL;

    run_ok("blockdev-add", "{\"driver\": \"qcow2\", \"node-name\": \"ctop\", \"file\": "
           "{\"driver\": \"file\", \"filename\": \"$D/c-top.qcow2\"}}");
    run_ok("blockdev-add", "{\"driver\": \"copy-on-read\", \"node-name\": \"ccor\", "
           "\"file\": \"ctop\"}");
    flat = run("query-named-block-nodes", "{\"flat\": true}");
    full = run("query-named-block-nodes", NULL);
    both = g_strdup_printf("%s\n%s\n", flat, full);
    m1 = mask_actual_size(both);
    m2 = mask_generated_names(m1);
    g_assert_cmpstr(m2, ==, qsd_chain_reply);
    bdrv_run_co(close_all_entry, NULL);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = unit_tmpdir_new("qblk-qmp-block-XXXXXX");
    qmp_register_block_commands();
    g_assert_true(schema_added);
    /* One sequence: each test continues with the previous one's nodes. */
    g_test_add_func("/qmp-block/add-and-query", test_add_and_query);
    g_test_add_func("/qmp-block/add-errors", test_add_errors);
    g_test_add_func("/qmp-block/del", test_del);
    g_test_add_func("/qmp-block/resize", test_resize);
    g_test_add_func("/qmp-block/snapshot", test_snapshot);
    g_test_add_func("/qmp-block/change-backing-file", test_change_backing_file);
    g_test_add_func("/qmp-block/dotted-and-close-all", test_dotted_and_close_all);
    g_test_add_func("/qmp-block/json-filenames", test_json_filenames);
    g_test_add_func("/qmp-block/blkdebug-inject-error", test_blkdebug_inject_error);
    g_test_add_func("/qmp-block/header-chain", test_header_chain);
    ret = g_test_run();
    unit_tmpdir_remove(tmpdir);
    return ret;
}
