/* qblk-io's shared pieces: the command table type, the open image, and
 * the helpers every command uses (number parsing, reports, buffers). */
#ifndef QBLK_TOOLS_IO_H
#define QBLK_TOOLS_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "qblk/block.h"

typedef struct IoCmd {
    const char *name;
    const char *altname;
    /* Returns 0 on success, -1 when the command failed (exit status 1). */
    int (*fn)(int argc, char **argv);
    int argmin;
    int argmax;             /* -1: unlimited */
    bool nofile_ok;         /* runs without an open image */
    bool needs_write;       /* refused on a read-only image */
    const char *args;
    const char *oneline;
    const char *help;       /* long help text, or NULL */
} IoCmd;

/* The open image (NULL when none) and per-image settings. */
extern BlockDriverState *io_bs;
extern bool io_writethrough;   /* cache modes writethrough/directsync */
extern bool io_misalign;       /* -m: buffers start 16 bytes off */
/* The tool's link to io_bs, with qemu-io's permissions (it goes with
 * the node: set to NULL whenever io_bs is). */
extern BdrvUser *io_user;
/* What the image was opened with, for reopen (name NULL: image-opts). */
extern char *io_open_name;
extern QblkOpts *io_open_opts;
extern int io_open_flags;

/* Command tables (each ends with a NULL name). */
extern const IoCmd io_rw_cmds[];
extern const IoCmd io_aio_cmds[];
extern const IoCmd io_misc_cmds[];

/* Runs one command line; returns 0, -1 on failure. Sets *quit on quit. */
int io_run_line(const char *line, bool *quit);
const IoCmd *io_find_cmd(const char *name);
void io_print_usage(const IoCmd *ct);
/* Calls fn for every command in name order. */
void io_for_each_cmd(void (*fn)(const IoCmd *ct));

/* Number parsing as qemu-io: prints "Parsing error: ..." on failure. */
bool io_parse_num(const char *str, int64_t *out);
/* A -P byte; prints "<arg> is not a valid pattern byte" on failure. */
bool io_parse_pattern(const char *arg, int *out);

/* I/O buffers: filled with pattern (0xab for reads), honouring -m. */
void *io_buf_alloc(int64_t len, int pattern);
void io_buf_free(void *buf);
/* Builds a vector over one buffer from length arguments (readv etc.);
 * prints qemu-io's errors and returns NULL on bad lengths. */
void *io_build_iov(char **args, int nargs, int pattern, QIOVector *qiov, int64_t *total);
/* Compares buf with pattern; prints the mismatch message. */
bool io_verify_pattern(const void *buf, int pattern, int64_t report_offset,
                       int64_t len);

void io_report(const char *op, const struct timespec *start, int64_t offset,
               int64_t bytes, bool csv);
struct timespec io_now(void);

/* Opens the image for the command line or the open command. */
int io_open_image(const char *name, QblkOpts *opts, int flags, bool image_opts);
/* Closes the image (drained first). A writable one is flushed before and
 * a failed flush reported: the close drops its errors, so metadata held
 * in memory could otherwise fail to reach the file unseen. -errno if the
 * flush failed (the image is closed either way). */
int io_close_image(void);
/* qemu-io's permissions for open flags: truncate needs resize. */
void io_user_perm(int flags, uint64_t *perm, uint64_t *shared);
/* Parses a -d discard mode into flags; false if invalid. */
bool io_parse_discard(const char *mode, int *flags);

#endif
