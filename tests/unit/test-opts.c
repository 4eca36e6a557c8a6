/* Unit tests for QblkOpts (QEMU's option-list syntax, its error messages,
 * order, typed take accessors) and for the error helpers. */
#include <errno.h>
#include <glib.h>

#include "util/error.h"
#include "util/opts.h"
#include "util/warn.h"

/* Parses str and returns "k=v;k=v" in order, or "ERR:<message>". */
static char *parse_str(const char *str, const char *implied)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree const char **keys = NULL;
    guint n, i;

    if (!qblk_opts_parse(opts, str, implied, &err)) {
        g_assert_nonnull(err);
        return g_strdup_printf("ERR:%s", err->message);
    }
    g_assert_null(err);
    keys = qblk_opts_keys(opts, &n);
    g_assert_null(keys[n]);
    for (i = 0; i < n; i++) {
        g_string_append_printf(out, "%s%s=%s", i ? ";" : "", keys[i],
                               qblk_opts_get(opts, keys[i]));
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void check(const char *str, const char *implied, const char *want)
{
    g_autofree char *got = parse_str(str, implied);

    g_assert_cmpstr(got, ==, want);
}

static void test_parse(void)
{
    check("a=b", NULL, "a=b");
    check("size=1G,cluster_size=64k,b=", NULL, "size=1G;cluster_size=64k;b=");
    check("z=1,a=2,m=3", NULL, "z=1;a=2;m=3");
    check("a=x,,y", NULL, "a=x,y");
    check("a=x,,,b=y", NULL, "a=x,;b=y");
    check("a=x,,", NULL, "a=x,");
    check("a=b=c", NULL, "a=b=c");
    /* A repeated key keeps its first position and takes the last value. */
    check("a=1,b=2,a=3", NULL, "a=3;b=2");
}

static void test_parse_errors(void)
{
    check("", NULL, "ERR:Invalid option list: ");
    check(",a=b", NULL, "ERR:Invalid option list: ,a=b");
    check("a=b,", NULL, "ERR:Invalid option list: a=b,");
    check("a=b,,,", NULL, "ERR:Invalid option list: a=b,,,");
    check("x", NULL, "ERR:Invalid parameter 'x'");
    check("a=b,flag", NULL, "ERR:Invalid parameter 'flag'");
    check("a=b,flag", "file", "ERR:Invalid parameter 'flag'");
    check("=v", NULL, "ERR:Invalid parameter ''");
}

static void test_implied(void)
{
    check("disk.img", "filename", "filename=disk.img");
    check("disk.img,format=raw", "filename", "filename=disk.img;format=raw");
    check("a,,b.img,x=1", "filename", "filename=a,b.img;x=1");
    check("k=v", "filename", "k=v");
}

static void test_set_get_take(void)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autoptr(QblkOpts) copy = NULL;
    g_autofree char *v = NULL;
    g_autofree const char **keys = NULL;

    qblk_opts_set(opts, "one", "1");
    qblk_opts_set(opts, "two", "2");
    qblk_opts_set(opts, "three", "3");
    qblk_opts_set(opts, "one", "uno");
    g_assert_cmpuint(qblk_opts_count(opts), ==, 3);
    g_assert_cmpstr(qblk_opts_get(opts, "one"), ==, "uno");
    g_assert_true(qblk_opts_has(opts, "two"));
    g_assert_false(qblk_opts_has(opts, "four"));
    g_assert_null(qblk_opts_get(opts, "four"));

    copy = qblk_opts_copy(opts);
    v = qblk_opts_take(opts, "two");
    g_assert_cmpstr(v, ==, "2");
    g_assert_null(qblk_opts_take(opts, "two"));
    g_assert_cmpuint(qblk_opts_count(opts), ==, 2);

    keys = qblk_opts_keys(opts, NULL);
    g_assert_cmpstr(keys[0], ==, "one");
    g_assert_cmpstr(keys[1], ==, "three");
    g_assert_null(keys[2]);

    /* The copy is independent and ordered the same. */
    g_assert_cmpuint(qblk_opts_count(copy), ==, 3);
    g_assert_cmpstr(qblk_opts_get(copy, "two"), ==, "2");
    g_clear_pointer(&keys, g_free);
    keys = qblk_opts_keys(copy, NULL);
    g_assert_cmpstr(keys[1], ==, "two");
}

static void test_take_bool(void)
{
    static const char *const yes[] = { "on", "yes", "true", "y" };
    static const char *const no[] = { "off", "no", "false", "n" };
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autoptr(GError) err = NULL;
    bool b;
    guint i;

    for (i = 0; i < G_N_ELEMENTS(yes); i++) {
        qblk_opts_set(opts, "k", yes[i]);
        b = false;
        g_assert_true(qblk_opts_take_bool(opts, "k", false, &b, NULL));
        g_assert_true(b);
        qblk_opts_set(opts, "k", no[i]);
        g_assert_true(qblk_opts_take_bool(opts, "k", true, &b, NULL));
        g_assert_false(b);
    }
    g_assert_cmpuint(qblk_opts_count(opts), ==, 0);
    g_assert_true(qblk_opts_take_bool(opts, "absent", true, &b, NULL));
    g_assert_true(b);

    qblk_opts_set(opts, "read-only", "maybe");
    g_assert_false(qblk_opts_take_bool(opts, "read-only", false, &b, &err));
    g_assert_error(err, QBLK_ERROR, QBLK_ERROR_FAILED);
    g_assert_cmpstr(err->message, ==, "Parameter 'read-only' expects 'on' or 'off'");
    g_assert_false(qblk_opts_has(opts, "read-only"));
}

static void test_take_size(void)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    GError *err = NULL;
    int64_t sz;

    g_assert_true(qblk_opts_parse(opts, "a=64k,b=1G,c=512,d=1.5M,e=x,f=-1,"
                                  "g=99999E", NULL, NULL));
    g_assert_true(qblk_opts_take_size(opts, "a", 0, &sz, NULL));
    g_assert_cmpint(sz, ==, 65536);
    g_assert_true(qblk_opts_take_size(opts, "b", 0, &sz, NULL));
    g_assert_cmpint(sz, ==, 1073741824);
    g_assert_true(qblk_opts_take_size(opts, "c", 0, &sz, NULL));
    g_assert_cmpint(sz, ==, 512);
    g_assert_true(qblk_opts_take_size(opts, "d", 0, &sz, NULL));
    g_assert_cmpint(sz, ==, 1572864);
    g_assert_true(qblk_opts_take_size(opts, "absent", 42, &sz, NULL));
    g_assert_cmpint(sz, ==, 42);

    g_assert_false(qblk_opts_take_size(opts, "e", 0, &sz, &err));
    g_assert_cmpstr(err->message, ==, "Parameter 'e' expects a size");
    g_clear_error(&err);
    g_assert_false(qblk_opts_take_size(opts, "f", 0, &sz, &err));
    g_assert_cmpstr(err->message, ==, "Parameter 'f' expects a size");
    g_clear_error(&err);
    g_assert_false(qblk_opts_take_size(opts, "g", 0, &sz, &err));
    g_assert_cmpstr(err->message, ==,
                    "Value '99999E' is out of range for parameter 'g'");
    g_clear_error(&err);
    g_assert_cmpuint(qblk_opts_count(opts), ==, 0);
}

static void test_take_prefix(void)
{
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    g_autoptr(QblkOpts) file = NULL;
    g_autoptr(QblkOpts) backing = NULL;
    g_autofree const char **keys = NULL;

    g_assert_true(qblk_opts_parse(opts, "driver=qcow2,file.driver=file,"
                                  "file.filename=a.img,filex=1,"
                                  "backing.file.filename=b.img,file.aio=threads",
                                  NULL, NULL));
    file = qblk_opts_take_prefix(opts, "file");
    g_assert_cmpuint(qblk_opts_count(file), ==, 3);
    keys = qblk_opts_keys(file, NULL);
    g_assert_cmpstr(keys[0], ==, "driver");
    g_assert_cmpstr(keys[1], ==, "filename");
    g_assert_cmpstr(keys[2], ==, "aio");
    g_assert_cmpstr(qblk_opts_get(file, "filename"), ==, "a.img");

    /* A prefix given with its dot works the same. */
    backing = qblk_opts_take_prefix(opts, "backing.");
    g_assert_cmpstr(qblk_opts_get(backing, "file.filename"), ==, "b.img");

    g_clear_pointer(&keys, g_free);
    keys = qblk_opts_keys(opts, NULL);
    g_assert_cmpstr(keys[0], ==, "driver");
    g_assert_cmpstr(keys[1], ==, "filex");
    g_assert_null(keys[2]);
}

static void test_error_helpers(void)
{
    GError *err = NULL;

    qblk_error_set(NULL, "ignored %d", 1);
    qblk_error_set_errno(&err, ENOENT, "Could not open '%s'", "x.img");
    g_assert_cmpstr(err->message, ==,
                    "Could not open 'x.img': No such file or directory");
    qblk_error_prepend(&err, "%s: ", "drive0");
    g_assert_cmpstr(err->message, ==,
                    "drive0: Could not open 'x.img': No such file or directory");
    g_clear_error(&err);
    qblk_error_prepend(&err, "nothing to prefix");
    g_assert_null(err);

    g_assert_cmpint(qblk_errno_not_supported(-EOPNOTSUPP), ==, -ENOTSUP);
    g_assert_cmpint(qblk_errno_not_supported(-ENOTTY), ==, -ENOTSUP);
    g_assert_cmpint(qblk_errno_not_supported(-ENOSYS), ==, -ENOTSUP);
    g_assert_cmpint(qblk_errno_not_supported(-EINVAL), ==, -EINVAL);
    g_assert_cmpint(qblk_errno_not_supported(-EIO), ==, -EIO);

    g_assert_cmpstr(qblk_progname(), ==, "qblk");
    qblk_set_progname("/usr/bin/qblk-img");
    g_assert_cmpstr(qblk_progname(), ==, "qblk-img");
}

static void warn_to_stderr(void *opaque, const char *msg)
{
    warn_report("%s", msg);
}

/* The report helpers' exact stderr format, checked in a subprocess. */
static void test_reports(void)
{
    if (g_test_subprocess()) {
        qblk_set_progname("./tools/qblk-io");
        error_report("bad %s", "thing");
        warn_report("odd %d", 7);
        error_report_err(g_error_new_literal(QBLK_ERROR, QBLK_ERROR_INVALID,
                                             "from GError"));
        error_report_err(NULL);
        {
            g_autoptr(QblkOpts) opts = qblk_opts_new();
            int64_t sz;

            /* The library never prints its warnings: without a handler
             * they are dropped, with one they reach it (the tools' one
             * prints like this). */
            qblk_opts_set(opts, "size", "0x20k");
            qblk_opts_take_size(opts, "size", 0, &sz, NULL);
            qblk_set_warn_handler(warn_to_stderr, NULL);
            qblk_opts_set(opts, "size", "0x10k");
            qblk_opts_take_size(opts, "size", 0, &sz, NULL);
            qblk_set_warn_handler(NULL, NULL);
        }
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("qblk-io: bad thing\n"
                              "qblk-io: warning: odd 7\n"
                              "qblk-io: from GError\n"
                              "qblk-io: warning: Using a multiplier suffix on "
                              "hex numbers is deprecated: 0x10k\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/opts/parse", test_parse);
    g_test_add_func("/opts/parse-errors", test_parse_errors);
    g_test_add_func("/opts/implied", test_implied);
    g_test_add_func("/opts/set-get-take", test_set_get_take);
    g_test_add_func("/opts/take-bool", test_take_bool);
    g_test_add_func("/opts/take-size", test_take_size);
    g_test_add_func("/opts/take-prefix", test_take_prefix);
    g_test_add_func("/error/helpers", test_error_helpers);
    g_test_add_func("/error/reports", test_reports);
    return g_test_run();
}
