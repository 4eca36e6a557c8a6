/* Fixtures shared by the unit tests: a node opened from an option string,
 * an image created in a directory, and a test's temporary directory. */
#ifndef QBLK_TESTS_UNIT_HELPERS_H
#define QBLK_TESTS_UNIT_HELPERS_H

#include "qblk/block.h"

/* Opens the node optstr describes ("driver=...,key=value,..."); asserts
 * that it opens. The caller unrefs it. */
BlockDriverState *unit_open_opts(const char *optstr, int flags);
/* Creates image name in dir with format fmt and options optstr (may be
 * ""), replacing any file of that name; asserts success. Returns the
 * image's path, which the caller frees. */
char *unit_create(const char *dir, const char *fmt, const char *name, const char *optstr);
/* A new empty directory from tmpl (a name ending in XXXXXX) under the
 * system's temporary directory; asserts that it was made. */
char *unit_tmpdir_new(const char *tmpl);
/* Deletes the files a test left in dir, then dir, and frees the name. */
void unit_tmpdir_remove(char *dir);

/* How many thread-pool workers ("qblk-worker") this process has now. */
int unit_pool_threads(void);

#endif
