/* The "blkdebug" filter: passes every request through to its "image" child
 * and fails chosen ones with a chosen errno, to test error paths.
 *
 * Rules come from the option "inject" (rules separated by ';') and/or from
 * the file named by "config" (rules separated by ';' or newlines, '#'
 * starts a comment). Both may be given; file rules come first. A rule is
 *
 *     EVENT:NTH:ERRNO[:once|:always][:@OFFSET]
 *
 *   EVENT  read | write | flush | zero (write-zeroes) | discard | truncate
 *   NTH    1, 2, ... counts the requests of that event type from 1, every
 *          request counting whether it fails or not; '*' is the same as 1
 *   ERRNO  a positive number (5) or a name (EIO, ENOSPC, ENOTSUP, ...)
 *   always (the default): the NTH request and every later one fail
 *   once   only the NTH request fails
 *   @OFFSET only requests whose range covers byte OFFSET count and fail
 *          (QEMU's inject-error "sector", in bytes)
 *
 * So "read:3:5:once;write:*:ENOSPC" fails the third read with EIO and every
 * write with ENOSPC. When several rules match, the first one listed wins.
 *
 * The errno is returned as is, so "zero:*:ENOTSUP" makes the block core
 * take its write-zeroes fallback. Discards reach this driver only on a node
 * opened with discard=unmap; flush rules fire before the core flushes the
 * child. A failed truncate says so in its error message (QEMU's blkdebug
 * has no truncate I/O type: this event is qblk's, so fault sweeps reach
 * resize and shrink; qcow2 and QED grow their files by writing, not by
 * truncating). The filename form "blkdebug:CONFIG:IMAGE" is split by
 * blkdebug_parse_filename, which the core calls for that prefix.
 *
 * As in QEMU, the limits the core enforces on this node can be set, to
 * test the core's alignment and splitting: align (a power of two),
 * max-transfer, opt-write-zero, max-write-zero, opt-discard, max-discard
 * (each a multiple of align).
 *
 * With log=on the node records every request it passes to the image, in
 * order (block/blkdebug.h), so a test can check that a driver flushes
 * between writes that must reach the disk in order.
 *
 * With stats=PATH (or a line "stats=PATH" in the config file) the node
 * appends one line to PATH when it closes:
 *     read=N write=N flush=N zero=N discard=N fired=N fallback=N truncate=N clean=N
 * the requests of each kind it saw (failed or not), how many it failed,
 * how many of those were zero writes with BDRV_REQ_NO_FALLBACK (whose
 * caller has a fallback, so their error need not reach the user), and how
 * many were flushes with nothing written since the last flush this node
 * passed on (nothing at risk: QEMU's core skips such flushes altogether),
 * so a fault sweep (tests/faults) learns the I/O indexes a tool run has
 * and whether an injected fault was hit, through any tool's filename
 * ("blkdebug:CONFIG:IMAGE"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "block/drivers/blkdebug.h"
#include "qblk/block_int.h"

typedef enum {
    BLKDBG_READ,
    BLKDBG_WRITE,
    BLKDBG_FLUSH,
    BLKDBG_ZERO,
    BLKDBG_DISCARD,
    BLKDBG_TRUNCATE,
    BLKDBG__MAX,
} BlkdebugEvent;

static const char *const blkdebug_event_names[BLKDBG__MAX] = {
    [BLKDBG_READ] = "read",
    [BLKDBG_WRITE] = "write",
    [BLKDBG_FLUSH] = "flush",
    [BLKDBG_ZERO] = "zero",
    [BLKDBG_DISCARD] = "discard",
    [BLKDBG_TRUNCATE] = "truncate",
};

static const struct {
    const char *name;
    int value;
} blkdebug_errno_names[] = {
    { "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO }, { "ENXIO", ENXIO },
    { "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EACCES", EACCES },
    { "EBUSY", EBUSY }, { "EEXIST", EEXIST }, { "EINVAL", EINVAL }, { "EFBIG", EFBIG },
    { "ENOSPC", ENOSPC }, { "EROFS", EROFS }, { "ENOSYS", ENOSYS },
    { "ENOTSUP", ENOTSUP }, { "EOPNOTSUPP", EOPNOTSUPP }, { "ETIMEDOUT", ETIMEDOUT },
    { "ENOMEDIUM", ENOMEDIUM }, { "EDQUOT", EDQUOT },
};

typedef struct BlkdebugRule {
    BlkdebugEvent event;
    uint64_t nth;           /* >= 1 */
    int error;              /* positive errno */
    bool once;
    bool fired;
    int64_t at;             /* a byte the request must cover, or -1 */
    uint64_t count;         /* requests matched so far (with at) */
} BlkdebugRule;

typedef struct BlkdebugState {
    GArray *rules;          /* BlkdebugRule, in the order given */
    uint64_t count[BLKDBG__MAX];
    GArray *log;            /* BlkdebugLogEntry; NULL unless log=on */
    char *stats;            /* the stats file, or NULL */
    uint64_t fired;         /* requests failed by a rule */
    uint64_t fired_fallback;    /* those that were NO_FALLBACK zero writes */
    uint64_t fired_clean;       /* flushes failed with nothing to flush */
    bool dirty;             /* a write, zero, discard or truncate passed on
                             * since the last flush passed on */
} BlkdebugState;

static const char blkdebug_log_codes[BLKDBG__MAX] = {
    [BLKDBG_READ] = 'r', [BLKDBG_WRITE] = 'w', [BLKDBG_FLUSH] = 'f',
    [BLKDBG_ZERO] = 'z', [BLKDBG_DISCARD] = 'd',
};

const GArray *blkdebug_log(BlockDriverState *bs)
{
    if (!bs || bs->drv != &bdrv_blkdebug) {
        return NULL;
    }
    return ((BlkdebugState *)bs->opaque)->log;
}

/* ----- Rule parsing ----- */

static bool blkdebug_parse_errno(const char *str, int *out)
{
    guint64 val;

    for (size_t i = 0; i < G_N_ELEMENTS(blkdebug_errno_names); i++) {
        if (g_ascii_strcasecmp(str, blkdebug_errno_names[i].name) == 0) {
            *out = blkdebug_errno_names[i].value;
            return true;
        }
    }
    if (!g_ascii_string_to_unsigned(str, 10, 1, 4095, &val, NULL)) {
        return false;
    }
    *out = (int)val;
    return true;
}

/* Parses one rule; `where` names its origin for the error message. */
static bool blkdebug_parse_rule(const char *text, const char *where, BlkdebugRule *rule,
                                GError **errp)
{
    g_auto(GStrv) f = g_strsplit(text, ":", -1);
    guint n = g_strv_length(f);
    guint64 nth;
    int ev;

    *rule = (BlkdebugRule) { .at = -1 };
    for (guint i = 0; i < n; i++) {
        g_strstrip(f[i]);
    }
    if (n >= 4 && f[n - 1][0] == '@') {
        guint64 at;

        if (!g_ascii_string_to_unsigned(f[n - 1] + 1, 10, 0, INT64_MAX, &at, NULL)) {
            qblk_error_set(errp, "%sInvalid blkdebug rule '%s': '%s' is not a byte offset",
                           where, text, f[n - 1]);
            return false;
        }
        rule->at = (int64_t)at;
        g_free(f[n - 1]);
        f[--n] = NULL;
    }
    if (n < 3 || n > 4) {
        qblk_error_set(errp, "%sInvalid blkdebug rule '%s': expected "
                       "EVENT:NTH:ERRNO[:once|always][:@OFFSET]", where, text);
        return false;
    }
    for (ev = 0; ev < BLKDBG__MAX; ev++) {
        if (strcmp(f[0], blkdebug_event_names[ev]) == 0) {
            break;
        }
    }
    if (ev == BLKDBG__MAX) {
        qblk_error_set(errp, "%sInvalid blkdebug rule '%s': unknown event '%s' "
                       "(expected read, write, flush, zero, discard or truncate)", where,
                       text, f[0]);
        return false;
    }
    rule->event = ev;
    if (strcmp(f[1], "*") == 0) {
        nth = 1;
    } else if (!g_ascii_string_to_unsigned(f[1], 10, 1, G_MAXUINT64, &nth, NULL)) {
        qblk_error_set(errp, "%sInvalid blkdebug rule '%s': '%s' is not a request "
                       "number (expected a positive integer or '*')", where, text, f[1]);
        return false;
    }
    rule->nth = nth;
    if (!blkdebug_parse_errno(f[2], &rule->error)) {
        qblk_error_set(errp, "%sInvalid blkdebug rule '%s': '%s' is not an errno "
                       "(expected 1-4095 or a name such as EIO)", where, text, f[2]);
        return false;
    }
    if (n == 4) {
        if (strcmp(f[3], "once") == 0) {
            rule->once = true;
        } else if (strcmp(f[3], "always") != 0) {
            qblk_error_set(errp, "%sInvalid blkdebug rule '%s': '%s' must be 'once' "
                           "or 'always'", where, text, f[3]);
            return false;
        }
    }
    return true;
}

/* Appends the ';'-separated rules of one line (empty ones are skipped). */
static bool blkdebug_parse_list(BlkdebugState *s, const char *list, const char *where,
                                GError **errp)
{
    g_auto(GStrv) items = g_strsplit(list, ";", -1);

    for (guint i = 0; items[i]; i++) {
        BlkdebugRule rule;

        g_strstrip(items[i]);
        if (!*items[i]) {
            continue;
        }
        if (!blkdebug_parse_rule(items[i], where, &rule, errp)) {
            return false;
        }
        g_array_append_val(s->rules, rule);
    }
    return true;
}

static bool blkdebug_read_config(BlkdebugState *s, const char *path, GError **errp)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GError *local_err = NULL;

    if (!g_file_get_contents(path, &text, NULL, &local_err)) {
        qblk_error_set(errp, "Could not read blkdebug config file '%s': %s", path,
                       local_err->message);
        g_error_free(local_err);
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        g_autofree char *where = g_strdup_printf("%s:%u: ", path, i + 1);
        char *hash = strchr(lines[i], '#');

        if (hash) {
            *hash = '\0';
        }
        g_strstrip(lines[i]);
        if (g_str_has_prefix(lines[i], "stats=")) {
            g_free(s->stats);
            s->stats = g_strdup(lines[i] + strlen("stats="));
            continue;
        }
        if (!blkdebug_parse_list(s, lines[i], where, errp)) {
            return false;
        }
    }
    return true;
}

/* ----- Open and close ----- */

/* Sets the BlockLimits named by the options; 0 (the default) means none. */
static bool blkdebug_take_limits(BlockDriverState *bs, QblkOpts *options, GError **errp)
{
    static const char *const names[] = {
        "max-transfer", "opt-write-zero", "max-write-zero", "opt-discard", "max-discard",
    };
    int64_t val[G_N_ELEMENTS(names)];
    int64_t align;

    if (!qblk_opts_take_size(options, "align", 0, &align, errp)) {
        return false;
    }
    if (align < 0 || align > G_MAXINT32 || (align & (align - 1))) {
        qblk_error_set(errp, "Cannot meet constraints with align %" PRId64, align);
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!qblk_opts_take_size(options, names[i], 0, &val[i], errp)) {
            return false;
        }
        if (val[i] < 0 || val[i] > G_MAXINT32 || (align && val[i] % align)) {
            qblk_error_set(errp, "Cannot meet constraints with %s %" PRId64, names[i],
                           val[i]);
            return false;
        }
    }
    bs->bl.request_alignment = align ? align : 1;
    bs->bl.max_transfer = val[0];
    bs->bl.pwrite_zeroes_alignment = val[1];
    bs->bl.max_pwrite_zeroes = val[2];
    bs->bl.pdiscard_alignment = val[3];
    bs->bl.max_pdiscard = val[4];
    return true;
}

static int blkdebug_open(BlockDriverState *bs, QblkOpts *options, int flags, GError **errp)
{
    BlkdebugState *s = bs->opaque;
    g_autofree char *config = qblk_opts_take(options, "config");
    g_autofree char *inject = qblk_opts_take(options, "inject");
    char *stats = qblk_opts_take(options, "stats");
    bool log;

    if (!bs->file) {
        qblk_error_set(errp, "blkdebug needs an image to filter (image.filename)");
        return -EINVAL;
    }
    if (!blkdebug_take_limits(bs, options, errp) ||
        !qblk_opts_take_bool(options, "log", false, &log, errp)) {
        return -EINVAL;
    }
    s->rules = g_array_new(FALSE, FALSE, sizeof(BlkdebugRule));
    s->stats = stats;
    if ((config && *config && !blkdebug_read_config(s, config, errp)) ||
        (inject && !blkdebug_parse_list(s, inject, "", errp))) {
        g_array_free(s->rules, TRUE);
        s->rules = NULL;
        g_clear_pointer(&s->stats, g_free);
        return -EINVAL;
    }
    if (log) {
        s->log = g_array_new(FALSE, FALSE, sizeof(BlkdebugLogEntry));
    }

    /* The child's own entry points align and emulate; say so only where a
     * flag would otherwise be handled twice. */
    bs->supported_write_flags = BDRV_REQ_FUA;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    return 0;
}

/* Appends this node's counts to its stats file (best effort: a test that
 * finds no line fails on its own). */
static void blkdebug_write_stats(BlkdebugState *s)
{
    FILE *f = fopen(s->stats, "a");

    if (!f) {
        return;
    }
    fprintf(f, "read=%" PRIu64 " write=%" PRIu64 " flush=%" PRIu64 " zero=%" PRIu64
            " discard=%" PRIu64 " fired=%" PRIu64 " fallback=%" PRIu64 " truncate=%" PRIu64
            " clean=%" PRIu64 "\n", s->count[BLKDBG_READ], s->count[BLKDBG_WRITE],
            s->count[BLKDBG_FLUSH], s->count[BLKDBG_ZERO], s->count[BLKDBG_DISCARD], s->fired,
            s->fired_fallback, s->count[BLKDBG_TRUNCATE], s->fired_clean);
    fclose(f);
}

static void blkdebug_close(BlockDriverState *bs)
{
    BlkdebugState *s = bs->opaque;

    if (s->stats) {
        blkdebug_write_stats(s);
        g_clear_pointer(&s->stats, g_free);
    }

    if (s->rules) {
        g_array_free(s->rules, TRUE);
        s->rules = NULL;
    }
    if (s->log) {
        g_array_free(s->log, TRUE);
        s->log = NULL;
    }
}

/* Counts one request of type ev; returns -errno if a rule fails it, else
 * logs it as passed on to the image. */
static int blkdebug_check(BlockDriverState *bs, BlkdebugEvent ev, int64_t offset,
                          int64_t bytes, BdrvRequestFlags flags)
{
    BlkdebugState *s = bs->opaque;
    uint64_t n = ++s->count[ev];

    for (guint i = 0; i < s->rules->len; i++) {
        BlkdebugRule *r = &g_array_index(s->rules, BlkdebugRule, i);

        uint64_t nth = n;

        if (r->event != ev) {
            continue;
        }
        if (r->at >= 0) {
            /* Only requests covering the byte count, as QEMU's sector. */
            if (r->at < offset || r->at >= offset + MAX(bytes, 1)) {
                continue;
            }
            nth = ++r->count;
        }
        if (nth >= r->nth && !(r->once && r->fired)) {
            r->fired = true;
            s->fired++;
            s->fired_fallback += !!(flags & BDRV_REQ_NO_FALLBACK);
            s->fired_clean += ev == BLKDBG_FLUSH && !s->dirty;
            return -r->error;
        }
    }
    if (ev != BLKDBG_READ) {
        s->dirty = ev != BLKDBG_FLUSH;
    }
    /* The log holds the request kinds of blkdebug.h; truncates are not one. */
    if (s->log && ev != BLKDBG_TRUNCATE) {
        BlkdebugLogEntry e = { blkdebug_log_codes[ev], offset, bytes };

        g_array_append_val(s->log, e);
    }
    return 0;
}

/* ----- Pass-through ----- */

static int coroutine_fn blkdebug_co_preadv(BlockDriverState *bs, int64_t offset,
                                           int64_t bytes, QIOVector *qiov,
                                           BdrvRequestFlags flags)
{
    int ret = blkdebug_check(bs, BLKDBG_READ, offset, bytes, 0);

    return ret < 0 ? ret : bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwritev(BlockDriverState *bs, int64_t offset,
                                            int64_t bytes, QIOVector *qiov,
                                            BdrvRequestFlags flags)
{
    int ret = blkdebug_check(bs, BLKDBG_WRITE, offset, bytes, 0);

    return ret < 0 ? ret : bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn blkdebug_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                                                  int64_t bytes, BdrvRequestFlags flags)
{
    int ret = blkdebug_check(bs, BLKDBG_ZERO, offset, bytes, flags);

    return ret < 0 ? ret : bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn blkdebug_co_pdiscard(BlockDriverState *bs, int64_t offset,
                                             int64_t bytes)
{
    int ret = blkdebug_check(bs, BLKDBG_DISCARD, offset, bytes, 0);

    return ret < 0 ? ret : bdrv_co_pdiscard(bs->file, offset, bytes);
}

/* The core flushes bs->file after this returns: only the fault is ours. */
static int coroutine_fn blkdebug_co_flush(BlockDriverState *bs)
{
    return blkdebug_check(bs, BLKDBG_FLUSH, 0, 0, 0);
}

static int coroutine_fn blkdebug_co_block_status(BlockDriverState *bs, bool want_zero,
                                                 int64_t offset, int64_t bytes,
                                                 int64_t *pnum, int64_t *map,
                                                 BlockDriverState **file)
{
    *pnum = bytes;
    *map = offset;
    *file = bs->file;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static int coroutine_fn blkdebug_co_truncate(BlockDriverState *bs, int64_t offset,
                                             bool exact, PreallocMode prealloc,
                                             GError **errp)
{
    int ret = blkdebug_check(bs, BLKDBG_TRUNCATE, offset, 0, 0);

    if (ret < 0) {
        qblk_error_set_errno(errp, -ret, "Failed to resize the image to %" PRId64
                             " bytes (blkdebug)", offset);
        return ret;
    }
    return bdrv_co_truncate(bs->file, offset, exact, prealloc, errp);
}

static int64_t blkdebug_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

/* "blkdebug:CONFIG:IMAGE" → config=CONFIG (none when empty),
 * image.filename=IMAGE. */
static bool blkdebug_parse_filename(const char *filename, QblkOpts *options, GError **errp)
{
    const char *rest = filename + strlen("blkdebug:");
    const char *colon = strchr(rest, ':');

    if (!colon) {
        qblk_error_set(errp, "blkdebug requires both config file and image path");
        return false;
    }
    if (colon > rest) {
        g_autofree char *config = g_strndup(rest, colon - rest);
        qblk_opts_set(options, "config", config);
    }
    qblk_opts_set(options, "image.filename", colon + 1);
    return true;
}

const BlockDriver bdrv_blkdebug = {
    .format_name = "blkdebug",
    .instance_size = sizeof(BlkdebugState),
    .is_filter = true,
    .child_key = "image",
    .protocol_prefix = "blkdebug:",
    .parse_filename = blkdebug_parse_filename,

    .open = blkdebug_open,
    .close = blkdebug_close,
    .co_preadv = blkdebug_co_preadv,
    .co_pwritev = blkdebug_co_pwritev,
    .co_pwrite_zeroes = blkdebug_co_pwrite_zeroes,
    .co_pdiscard = blkdebug_co_pdiscard,
    .co_flush = blkdebug_co_flush,
    .co_block_status = blkdebug_co_block_status,
    .co_truncate = blkdebug_co_truncate,
    .getlength = blkdebug_getlength,
};
