/* The create-options model (block/create.c) and the backing-name rule it
 * shares with opening: QEMU's protocol-prefix behaviour, qemu-img's order
 * of checks and messages, and the Formatting line's items. */
#include <glib.h>
#include <glib/gstdio.h>
#include "qblk/block.h"

/* Image name, stored backing name, what QEMU 7.2 resolves it to. */
static const char *const resolve_cases[][3] = {
    { "d/t.qcow2", "b.raw", "d/b.raw" },
    { "./d/t.qcow2", "b.raw", "./d/b.raw" },
    { "t.qcow2", "b.raw", "b.raw" },
    { "d/t.qcow2", "/abs/b.raw", "/abs/b.raw" },
    { "d/t.qcow2", "foo:bar", "foo:bar" },          /* a protocol name stays */
    { "d/t.qcow2", "x/y:z", "d/x/y:z" },            /* '/' before ':': a path */
    { "nbd://h/a", "b", "nbd://h/b" },
    { "null-co://", "b", "null-co://b" },           /* never into the prefix */
    { "blkdebug::d/t.qcow2", "b", "blkdebug::d/b" },
    { "proto:t", "b", "proto:b" },
};

static void test_resolve_backing_name(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(resolve_cases); i++) {
        g_autofree char *got = bdrv_resolve_backing_name(resolve_cases[i][0],
                                                         resolve_cases[i][1]);

        g_assert_cmpstr(got, ==, resolve_cases[i][2]);
    }
}

static char *prepare_error(const BdrvCreateRequest *req)
{
    GError *err = NULL;
    g_autofree char *hint = NULL;
    BdrvCreateOpts *co = bdrv_create_prepare(req, &hint, &err);
    char *msg;

    g_assert_null(co);
    g_assert_nonnull(err);
    msg = g_strdup(err->message);
    g_error_free(err);
    return msg;
}

/* qemu-img's messages, and its order: the format before the protocol. */
static void test_prepare_errors(void)
{
    static const struct {
        BdrvCreateRequest req;
        const char *msg;
    } cases[] = {
        { { .filename = "foo:bar", .fmt = "raw", .size = 1 }, "Unknown protocol 'foo'" },
        { { .filename = "foo:bar", .fmt = "nope", .size = 1 }, "Unknown file format 'nope'" },
        { { .filename = "null-co://", .fmt = "raw", .size = 1 },
          "Protocol driver 'null-co' does not support image creation" },
        { { .filename = "x.raw", .fmt = "raw", .options = "size=1M", .size = 1 },
          "The image size must be specified only once" },
        { { .filename = "x.raw", .fmt = "raw", .options = "nosuch=1", .size = 1 },
          "Invalid parameter 'nosuch'" },
        { { .filename = "x.raw", .fmt = "raw", .options = "size=1M,size=x" },
          "Parameter 'size' expects a non-negative number below 2^64" },
        { { .filename = "x.raw", .fmt = "raw", .backing = "b.raw", .size = 1 },
          "Backing file not supported for file format 'raw'" },
        { { .filename = "x.qcow2", .fmt = "qcow2", .backing = "x.qcow2", .size = 1 },
          "Error: Trying to create an image with the same filename as the backing file" },
        { { .filename = "x.qcow2", .fmt = "qcow2", .backing = "b", .no_backing_probe = true,
            .size = 1 }, "Backing file specified without backing format" },
        { { .filename = "x.raw", .fmt = "raw", .size = -1 },
          "Image creation needs a size parameter" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *msg = prepare_error(&cases[i].req);

        g_assert_cmpstr(msg, ==, cases[i].msg);
    }
}

/* Given values and defaults in print order, numbers as parsed, commas in
 * strings doubled; a flag element is name=on. */
static void test_describe(void)
{
    BdrvCreateRequest req = {
        .filename = "x.qcow2", .fmt = "qcow2", .options = "cluster_size=4k,lazy_refcounts",
        .backing = "a,b.qcow2", .backing_fmt = "qcow2", .no_backing_probe = true,
        .size = 1048576,
    };
    g_autofree char *hint = NULL;
    GError *err = NULL;
    g_autoptr(BdrvCreateOpts) co = bdrv_create_prepare(&req, &hint, &err);
    g_auto(GStrv) items = NULL;
    g_autofree char *line = NULL;

    g_assert_no_error(err);
    items = bdrv_create_opts_describe(co);
    line = g_strjoinv(" ", items);
    g_assert_cmpstr(line, ==, "cluster_size=4096 extended_l2=off compression_type=zlib "
                    "size=1048576 backing_file=a,,b.qcow2 backing_fmt=qcow2 "
                    "lazy_refcounts=on refcount_bits=16");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/create/resolve-backing-name", test_resolve_backing_name);
    g_test_add_func("/create/prepare-errors", test_prepare_errors);
    g_test_add_func("/create/describe", test_describe);
    return g_test_run();
}
