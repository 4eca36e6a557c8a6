/* What qblk-img's command files share with its main (tools/qblk-img.c):
 * the handlers of the command table and the usage-error helpers.
 *
 * A handler gets argv with argv[0] = the command name and getopt already
 * reset (optind = 0); it returns the process exit status and never exits
 * itself. */
#ifndef QBLK_TOOLS_QBLK_IMG_H
#define QBLK_TOOLS_QBLK_IMG_H

#include <glib.h>

#include "qblk/block.h"
#include "util/json.h"

int img_bench(int argc, char **argv);
int img_bitmap(int argc, char **argv);
int img_check(int argc, char **argv);
int img_commit(int argc, char **argv);
int img_compare(int argc, char **argv);
int img_convert(int argc, char **argv);
int img_create(int argc, char **argv);
int img_amend(int argc, char **argv);
int img_dd(int argc, char **argv);
int img_info(int argc, char **argv);
int img_map(int argc, char **argv);
int img_measure(int argc, char **argv);
int img_rebase(int argc, char **argv);
int img_resize(int argc, char **argv);
int img_snapshot(int argc, char **argv);

/* The "ID TAG VM SIZE ..." table of qemu-img info and snapshot -l. */
void img_print_snapshot_table(const BdrvSnapshotInfo *list, int n);

/* Prints the full help text on stdout (for -h/--help of every command).
 * Returns 0, the exit status that goes with it. */
int img_help(void);

/* "qblk-img: <msg>\nTry 'qblk-img --help' for more information\n" on
 * stderr. Returns 1, the exit status of a usage error. */
int img_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* The two getopt failures, with qemu-img's wording. `arg` is
 * argv[optind - 1] as qemu-img reports it. */
int img_missing_argument(const char *arg);
int img_unrecognized_option(const char *arg);
/* -U given: read-only opens share everything (force-share=on). */
extern bool img_force_share;
/* Opens an image for a command (flags BDRV_O_*; BDRV_O_RESIZE for
 * resize), attached as the user "qblk-img" with qemu-img's permissions,
 * reporting "Could not open 'X': ..." and returning NULL on failure. */
BlockDriverState *img_open(const char *filename, const char *fmt, bool image_opts, int flags);
/* img_open with more open options (taken; may be NULL), e.g. "file.aio". */
BlockDriverState *img_open_opts(const char *filename, const char *fmt, bool image_opts,
                                int flags, QblkOpts *extra);
/* Drops the command's reference to an image it opened; when that closes
 * it, a failed flush (the drivers' caches, the files') is reported as
 * "error while flushing NAME: ..." and gives false. */
bool img_close(BlockDriverState *bs, const char *name);
/* The layer of chain (chain itself, then its backing files) that is the
 * same file as `file` (same device and inode), or NULL. */
BlockDriverState *img_find_in_chain(BlockDriverState *chain, const char *file);
/* Creates a convert target: like create, but silent and without opening
 * the backing file (its format must be given). */
bool img_create_target(const char *filename, const char *fmt, const char *options,
                       const char *base, const char *base_fmt, int64_t size, GError **errp);
/* Adds one -o argument to the comma-joined *options, after qemu-img's
 * check of the list ("Invalid option list: ..."); false after reporting. */
bool img_append_option_list(char **options, const char *arg);
/* qemu-img's cvtnum: a size with suffixes in [0, max]; -1 after printing
 * "Invalid <name> specified. ...". */
int64_t img_cvtnum(const char *name, const char *arg, int64_t max);
/* The same in [min, max]. */
int64_t img_cvtnum_full(const char *name, const char *arg, int64_t min, int64_t max);
/* img_cvtnum for an image size. */
int64_t img_parse_image_size(const char *arg);
/* --output=human|json: sets *json; false after reporting anything else. */
bool img_parse_output(const char *output, bool *json);
/* Every command's answer to getopt's ':' and '?' and to -h (exit status). */
int img_common_option(int c, char **argv);

/* info's "snapshots" array. */

#endif
