/* The create-options model: a format's and its protocol's create options
 * merged in qemu-img's print order, -o values checked against their types
 * with QemuOpts' messages, the backing image probed for its format and
 * size, and the image created. qemu-img create prints what this settles;
 * blockdev-create will call the same functions. Nothing here prints. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblk/block_int.h"
#include "util/cutils.h"
#include "util/warn.h"

struct BdrvCreateOpts {
    char *filename;        /* set by bdrv_create_prepare */
    char *fmt;
    GPtrArray *descs;      /* const QblkOptDesc*, print order */
    char **value;          /* per desc: the value as given (NULL: not given) */
    uint64_t *num;         /* per desc: the parsed number (size/number types) */
};

void bdrv_create_opts_free(BdrvCreateOpts *co)
{
    if (!co) {
        return;
    }
    for (guint i = 0; i < co->descs->len; i++) {
        g_free(co->value[i]);
    }
    g_free(co->value);
    g_free(co->num);
    g_ptr_array_free(co->descs, TRUE);
    g_free(co->filename);
    g_free(co->fmt);
    g_free(co);
}

guint bdrv_create_opts_count(const BdrvCreateOpts *co)
{
    return co->descs->len;
}

const QblkOptDesc *bdrv_create_opts_desc(const BdrvCreateOpts *co, guint i)
{
    return g_ptr_array_index(co->descs, i);
}

static int opts_find(const BdrvCreateOpts *co, const char *name)
{
    for (guint i = 0; i < co->descs->len; i++) {
        if (strcmp(bdrv_create_opts_desc(co, i)->name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void append_descs(GPtrArray *descs, const QblkOptDesc *table)
{
    for (const QblkOptDesc *d = table; d && d->name; d++) {
        bool dup = false;

        for (guint i = 0; i < descs->len && !dup; i++) {
            dup = strcmp(((const QblkOptDesc *)g_ptr_array_index(descs, i))->name,
                         d->name) == 0;
        }
        if (!dup) {
            g_ptr_array_add(descs, (gpointer)d);
        }
    }
}

/* fmt's options, then proto's (proto may be NULL). */
static BdrvCreateOpts *opts_new(const BlockDriver *fmt, const BlockDriver *proto)
{
    BdrvCreateOpts *co = g_new0(BdrvCreateOpts, 1);

    co->descs = g_ptr_array_new();
    append_descs(co->descs, fmt->create_opts);
    if (proto) {
        append_descs(co->descs, proto->create_opts);
    }
    co->value = g_new0(char *, co->descs->len);
    co->num = g_new0(uint64_t, co->descs->len);
    return co;
}

static const char *opts_get(const BdrvCreateOpts *co, const char *name)
{
    int i = opts_find(co, name);

    return i < 0 ? NULL : co->value[i];
}

static void opts_set(BdrvCreateOpts *co, int i, const char *value, uint64_t num)
{
    g_free(co->value[i]);
    co->value[i] = g_strdup(value);
    co->num[i] = num;
}

static void opts_set_size(BdrvCreateOpts *co, int64_t size)
{
    g_autofree char *text = g_strdup_printf("%" PRId64, size);

    opts_set(co, opts_find(co, "size"), text, (uint64_t)size);
}

/* The given values as the drivers take them. */
static QblkOpts *opts_to_qblk_opts(const BdrvCreateOpts *co)
{
    QblkOpts *opts = qblk_opts_new();

    for (guint i = 0; i < co->descs->len; i++) {
        if (co->value[i]) {
            qblk_opts_set(opts, bdrv_create_opts_desc(co, i)->name, co->value[i]);
        }
    }
    return opts;
}

/* ----- Parsing "-o" (qemu-img's QemuOpts rules) ----- */

/* qemu_strtou64 with base 0 and the whole string consumed. */
static int parse_u64(const char *str, uint64_t *out)
{
    char *end;

    errno = 0;
    *out = strtoull(str, &end, 0);
    if (errno == 0 && end == str) {
        return -EINVAL;
    }
    if (*end) {
        return -EINVAL;
    }
    return -errno;
}

/* Checks value against d's type; sets *num for numbers and sizes. On error
 * *hint may be set to text for a person after the message. */
static bool parse_typed(const QblkOptDesc *d, const char *value, uint64_t *num,
                        char **hint, GError **errp)
{
    static const char *const yes[] = { "on", "yes", "true", "y", NULL };
    static const char *const no[] = { "off", "no", "false", "n", NULL };
    bool hex_suffix = false;
    int64_t size;
    int ret;

    switch (d->type) {
    case QBLK_OPT_STRING:
        return true;
    case QBLK_OPT_BOOL:
        if (g_strv_contains(yes, value) || g_strv_contains(no, value)) {
            return true;
        }
        qblk_error_set(errp, "Parameter '%s' expects 'on' or 'off'", d->name);
        return false;
    case QBLK_OPT_NUMBER:
        ret = parse_u64(value, num);
        if (ret == -ERANGE) {
            qblk_error_set(errp, "Value '%s' is too large for parameter '%s'", value, d->name);
            return false;
        }
        if (ret < 0) {
            qblk_error_set(errp, "Parameter '%s' expects a number", d->name);
            return false;
        }
        return true;
    case QBLK_OPT_SIZE:
        ret = qblk_strtosz(value, &size, &hex_suffix);
        if (hex_suffix) {
            qblk_warn("Using a multiplier suffix on hex numbers is deprecated: %s", value);
        }
        if (ret == -ERANGE) {
            qblk_error_set(errp, "Value '%s' is out of range for parameter '%s'",
                           value, d->name);
            return false;
        }
        if (ret < 0) {
            qblk_error_set(errp, "Parameter '%s' expects a non-negative number below 2^64",
                           d->name);
            *hint = g_strdup("Optional suffix k, M, G, T, P or E means kilo-, mega-, "
                             "giga-, tera-, peta-\nand exabytes, respectively.\n");
            return false;
        }
        *num = (uint64_t)size;
        return true;
    }
    g_assert_not_reached();
}

/* Element by element, as QemuOpts checks them: "id" is ignored, an
 * unknown name or a bad value stops at once, a later value replaces an
 * earlier one. */
static bool opts_parse(BdrvCreateOpts *co, const char *params, char **hint, GError **errp)
{
    const char *p = params;

    while (*p) {
        g_autofree char *name = NULL;
        g_autofree char *value = NULL;
        uint64_t num = 0;
        int i;

        p = qblk_opts_next_element(p, &name, &value);
        if (*p == ',') {
            p++;
        }
        if (strcmp(name, "id") == 0) {
            continue;
        }
        i = opts_find(co, name);
        if (i < 0) {
            qblk_error_set(errp, "Invalid parameter '%s'", name);
            return false;
        }
        if (!parse_typed(bdrv_create_opts_desc(co, i), value, &num, hint, errp)) {
            return false;
        }
        opts_set(co, i, value, num);
    }
    return true;
}

QblkOpts *bdrv_create_parse_options(const BlockDriver *drv, const char *options, char **hint,
                                    GError **errp)
{
    g_autoptr(BdrvCreateOpts) co = opts_new(drv, &bdrv_file);

    if (options && !opts_parse(co, options, hint, errp)) {
        return NULL;
    }
    return opts_to_qblk_opts(co);
}

/* ----- Drivers ----- */

bool bdrv_driver_can_create(const BlockDriver *drv)
{
    return drv->create_opts && drv->co_create;
}

/* The protocol the image file is created with. bdrv_find_protocol falls
 * back to the file driver for any name; qemu-img refuses a "<name>:"
 * prefix that no protocol claims. */
static const BlockDriver *create_protocol(const char *filename, GError **errp)
{
    const BlockDriver *proto = bdrv_find_protocol(filename);
    size_t len = strcspn(filename, ":");

    if (bdrv_path_has_protocol(filename) &&
        (strlen(proto->format_name) != len || strncmp(proto->format_name, filename, len))) {
        qblk_error_set(errp, "Unknown protocol '%.*s'", (int)len, filename);
        return NULL;
    }
    return proto;
}

static bool can_create(const BlockDriver *drv, bool protocol, GError **errp)
{
    if (!bdrv_driver_can_create(drv)) {
        qblk_error_set(errp, "%s driver '%s' does not support image creation",
                       protocol ? "Protocol" : "Format", drv->format_name);
        return false;
    }
    return true;
}

static const BlockDriver *find_format(const char *fmt, GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(fmt);

    if (!drv) {
        qblk_error_set(errp, "Unknown file format '%s'", fmt);
    }
    return drv;
}

BdrvCreateOpts *bdrv_create_opts_for_help(const char *fmt, const char *filename, GError **errp)
{
    const BlockDriver *drv = find_format(fmt, errp);
    const BlockDriver *proto = NULL;

    if (!drv || !can_create(drv, false, errp)) {
        return NULL;
    }
    if (filename) {
        proto = create_protocol(filename, errp);
        if (!proto || !can_create(proto, true, errp)) {
            return NULL;
        }
    }
    return opts_new(drv, proto);
}

/* ----- Preparing and running a create ----- */

/* Opens the backing image (as the new image will find it) to learn its
 * format and, if *size is -1, its size. */
static bool probe_backing(const char *filename, const char *backing_file,
                          const char *backing_fmt, int64_t *size, char **hint, GError **errp)
{
    g_autofree char *full = bdrv_resolve_backing_name(filename, backing_file);
    QblkOpts *opts = qblk_opts_new();
    g_autoptr(BlockDriverState) bs = NULL;

    if (backing_fmt) {
        qblk_opts_set(opts, "driver", backing_fmt);
    }
    /* Read-only, and with its own backing chain, as qemu-img opens it. */
    bs = bdrv_open(full, opts, 0, NULL, errp);
    if (!bs) {
        *hint = g_strdup("Could not open backing image.\n");
        return false;
    }
    if (!backing_fmt) {
        qblk_error_set(errp, "Backing file specified without backing format");
        *hint = g_strdup_printf("Detected format of %s.", bdrv_format_name(bs));
        return false;
    }
    if (*size == -1) {
        int64_t len = bdrv_getlength(bs);

        if (len < 0) {
            qblk_error_set_errno(errp, (int)-len, "Could not get size of '%s'", backing_file);
            return false;
        }
        *size = len;
    }
    return true;
}

/* -b and -F into the option set, then the backing file's checks and
 * probe; *size becomes the backing image's when not given. */
static bool prepare_backing(BdrvCreateOpts *co, const BlockDriver *drv,
                            const BdrvCreateRequest *req, int64_t *size, char **hint,
                            GError **errp)
{
    const char *backing_file, *backing_fmt;

    if (req->backing) {
        int i = opts_find(co, "backing_file");

        if (i < 0 || !drv->supports_backing) {
            qblk_error_set(errp, "Backing file not supported for file format '%s'", req->fmt);
            return false;
        }
        opts_set(co, i, req->backing, 0);
    }
    if (req->backing_fmt) {
        int i = opts_find(co, "backing_fmt");

        if (i < 0) {
            qblk_error_set(errp, "Backing file format not supported for file format '%s'",
                           req->fmt);
            return false;
        }
        opts_set(co, i, req->backing_fmt, 0);
    }
    backing_file = opts_get(co, "backing_file");
    backing_fmt = opts_get(co, "backing_fmt");
    if (!backing_file) {
        return true;
    }
    if (strcmp(req->filename, backing_file) == 0) {
        qblk_error_set(errp, "Error: Trying to create an image with the same "
                       "filename as the backing file");
        return false;
    }
    if (!*backing_file) {
        qblk_error_set(errp, "Expected backing file name, got empty string");
        return false;
    }
    if (req->no_backing_probe) {
        if (!backing_fmt) {
            qblk_error_set(errp, "Backing file specified without backing format");
            return false;
        }
        return true;
    }
    return probe_backing(req->filename, backing_file, backing_fmt, size, hint, errp);
}

BdrvCreateOpts *bdrv_create_prepare(const BdrvCreateRequest *req, char **hint, GError **errp)
{
    const BlockDriver *drv = find_format(req->fmt, errp);
    const BlockDriver *proto;
    g_autoptr(BdrvCreateOpts) co = NULL;
    int64_t size = req->size;
    int size_idx;

    if (!drv) {
        return NULL;
    }
    proto = create_protocol(req->filename, errp);
    if (!proto || !can_create(drv, false, errp) || !can_create(proto, true, errp)) {
        return NULL;
    }
    co = opts_new(drv, proto);
    co->filename = g_strdup(req->filename);
    co->fmt = g_strdup(req->fmt);
    size_idx = opts_find(co, "size");
    g_assert(size_idx >= 0);   /* every creatable driver lists "size" */
    if (req->options && !opts_parse(co, req->options, hint, errp)) {
        return NULL;
    }

    if (co->value[size_idx]) {
        if (req->size != -1) {
            qblk_error_set(errp, "The image size must be specified only once");
            return NULL;
        }
        size = (int64_t)co->num[size_idx];
    } else if (size != -1) {
        opts_set_size(co, size);
    }

    if (!prepare_backing(co, drv, req, &size, hint, errp)) {
        return NULL;
    }
    if (!co->value[size_idx] && size != -1) {
        opts_set_size(co, size);
    }
    if (size == -1) {
        qblk_error_set(errp, "Image creation needs a size parameter");
        return NULL;
    }
    return g_steal_pointer(&co);
}

char **bdrv_create_opts_describe(const BdrvCreateOpts *co)
{
    GPtrArray *items = g_ptr_array_new();

    for (guint i = 0; i < co->descs->len; i++) {
        const QblkOptDesc *d = bdrv_create_opts_desc(co, i);
        const char *value = co->value[i] ? co->value[i] : d->def_value;
        GString *item;

        if (!value) {
            continue;
        }
        item = g_string_new(NULL);
        g_string_append_printf(item, "%s=", d->name);
        if (d->type == QBLK_OPT_STRING) {
            for (const char *p = value; *p; p++) {
                if (*p == ',') {
                    g_string_append_c(item, ',');
                }
                g_string_append_c(item, *p);
            }
        } else if ((d->type == QBLK_OPT_SIZE || d->type == QBLK_OPT_NUMBER) && co->value[i]) {
            g_string_append_printf(item, "%" PRId64, (int64_t)co->num[i]);
        } else {
            g_string_append(item, value);
        }
        g_ptr_array_add(items, g_string_free(item, FALSE));
    }
    g_ptr_array_add(items, NULL);
    return (char **)g_ptr_array_free(items, FALSE);
}

/* Whether "try a larger cluster size" can help: the format has a cluster
 * size, given or by default, that is not 0. */
static bool has_cluster_size(const BdrvCreateOpts *co)
{
    int i = opts_find(co, "cluster_size");
    const char *def;
    int64_t v = 0;

    if (i < 0) {
        return false;
    }
    if (co->value[i]) {
        return co->num[i] != 0;
    }
    def = bdrv_create_opts_desc(co, i)->def_value;
    return def && qblk_strtosz(def, &v, NULL) == 0 && v != 0;
}

int bdrv_create_opts_run(const BdrvCreateOpts *co, GError **errp)
{
    g_autoptr(QblkOpts) opts = opts_to_qblk_opts(co);
    int ret = bdrv_create(co->fmt, co->filename, opts, errp);

    if (ret == -EFBIG) {
        /* "Too large" says more than the driver's own message would. */
        g_clear_error(errp);
        qblk_error_set(errp, "The image size is too large for file format '%s'%s", co->fmt,
                       has_cluster_size(co) ? " (try using a larger cluster size)" : "");
    }
    return ret < 0 ? ret : 0;
}
