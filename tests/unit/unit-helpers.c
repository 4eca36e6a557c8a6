/* Fixtures shared by the unit tests (see unit-helpers.h): each was copied
 * into several tests before, with the same assertions. */
#include <glib.h>
#include <glib/gstdio.h>
#include "unit-helpers.h"

BlockDriverState *unit_open_opts(const char *optstr, int flags)
{
    QblkOpts *opts = qblk_opts_new();
    GError *err = NULL;
    BlockDriverState *bs;

    g_assert_true(qblk_opts_parse(opts, optstr, NULL, &err));
    bs = bdrv_open(NULL, opts, flags, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

char *unit_create(const char *dir, const char *fmt, const char *name, const char *optstr)
{
    char *path = g_build_filename(dir, name, NULL);
    g_autoptr(QblkOpts) opts = qblk_opts_new();
    GError *err = NULL;

    g_unlink(path);
    g_assert_true(qblk_opts_parse(opts, optstr, NULL, &err));
    g_assert_cmpint(bdrv_create(fmt, path, opts, &err), ==, 0);
    g_assert_no_error(err);
    return path;
}

char *unit_tmpdir_new(const char *tmpl)
{
    char *dir = g_dir_make_tmp(tmpl, NULL);

    g_assert_nonnull(dir);
    return dir;
}

void unit_tmpdir_remove(char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);

    for (const char *n; d && (n = g_dir_read_name(d));) {
        g_autofree char *p = g_build_filename(dir, n, NULL);

        g_unlink(p);
    }
    g_rmdir(dir);
    g_free(dir);
}

int unit_pool_threads(void)
{
    g_autoptr(GDir) dir = g_dir_open("/proc/self/task", 0, NULL);
    const char *tid;
    int n = 0;

    g_assert_nonnull(dir);
    while ((tid = g_dir_read_name(dir))) {
        g_autofree char *path = g_strdup_printf("/proc/self/task/%s/comm", tid);
        g_autofree char *comm = NULL;

        if (g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, "qblk-worker")) {
            n++;
        }
    }
    return n;
}
