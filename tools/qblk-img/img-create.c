/* qblk-img create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u]
 *                 [-o options] filename [size]
 *
 * The option set is the format driver's create_opts followed by those of
 * the protocol the filename names (its "file" driver unless it starts with
 * "<protocol>:"), without repeating a name — the order qemu-img prints in
 * its "Formatting" line. -o values are checked against their type here, as
 * qemu-img's QemuOpts parser does, so the error texts are qemu-img's; the
 * driver then gets every given value as typed, plus "size",
 * "backing_file" and "backing_fmt".
 *
 * Order of checks (each error is "qblk-img: <filename>: <msg>"): format,
 * protocol, creation support, -o parsing, size given twice, backing
 * support, backing sanity, opening the backing image (size, format), size
 * present; then the Formatting line (flushed) and the driver's create. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qblk/block_int.h"
#include "util/cutils.h"
#include "util/error.h"
#include "qblk-img.h"

/* The merged option set of one create. */
typedef struct CreateOpts {
    GPtrArray *descs;      /* const QblkOptDesc*, print order */
    char **value;          /* per desc: the value as given (NULL: not given) */
    uint64_t *num;         /* per desc: the parsed number (size/number types) */
} CreateOpts;

static void create_opts_free(CreateOpts *co)
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
    g_free(co);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CreateOpts, create_opts_free)

static int create_opts_find(const CreateOpts *co, const char *name)
{
    for (guint i = 0; i < co->descs->len; i++) {
        const QblkOptDesc *d = g_ptr_array_index(co->descs, i);

        if (strcmp(d->name, name) == 0) {
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
static CreateOpts *create_opts_new(const BlockDriver *fmt, const BlockDriver *proto)
{
    CreateOpts *co = g_new0(CreateOpts, 1);

    co->descs = g_ptr_array_new();
    append_descs(co->descs, fmt->create_opts);
    if (proto) {
        append_descs(co->descs, proto->create_opts);
    }
    co->value = g_new0(char *, co->descs->len);
    co->num = g_new0(uint64_t, co->descs->len);
    return co;
}

static const char *create_opts_get(const CreateOpts *co, const char *name)
{
    int i = create_opts_find(co, name);

    return i < 0 ? NULL : co->value[i];
}

static void create_opts_set(CreateOpts *co, int i, const char *value, uint64_t num)
{
    g_free(co->value[i]);
    co->value[i] = g_strdup(value);
    co->num[i] = num;
}

static void create_opts_set_size(CreateOpts *co, int64_t size)
{
    g_autofree char *text = g_strdup_printf("%" PRId64, size);

    create_opts_set(co, create_opts_find(co, "size"), text, (uint64_t)size);
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
 * *hint may be set to text printed after the message. */
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
            warn_report("Using a multiplier suffix on hex numbers is deprecated: %s", value);
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

/* Copies a value up to the next lone ',' (",," is one comma) into *out and
 * returns the position after it. */
static const char *read_value(const char *p, char **out)
{
    GString *v = g_string_new(NULL);

    while (*p && !(*p == ',' && p[1] != ',')) {
        if (*p == ',') {
            p++;              /* the first of ",," */
        }
        g_string_append_c(v, *p++);
    }
    *out = g_string_free(v, FALSE);
    return p;
}

/* "k=v,flag,noflag,...": a bare name means name=on, "noname" name=off;
 * "id" is ignored; a later value of a name replaces an earlier one. */
static bool create_opts_parse(CreateOpts *co, const char *params, char **hint,
                              GError **errp)
{
    const char *p = params;

    while (*p) {
        size_t len = strcspn(p, "=,");
        g_autofree char *name = g_strndup(p, len);
        g_autofree char *value = NULL;
        uint64_t num = 0;
        int i;

        if (p[len] == '=') {
            p = read_value(p + len + 1, &value);
        } else {
            p += len;
            if (g_str_has_prefix(name, "no")) {
                memmove(name, name + 2, strlen(name + 2) + 1);
                value = g_strdup("off");
            } else {
                value = g_strdup("on");
            }
        }
        if (*p == ',') {
            p++;
        }
        if (strcmp(name, "id") == 0) {
            continue;
        }
        i = create_opts_find(co, name);
        if (i < 0) {
            qblk_error_set(errp, "Invalid parameter '%s'", name);
            return false;
        }
        if (!parse_typed(g_ptr_array_index(co->descs, i), value, &num, hint, errp)) {
            return false;
        }
        create_opts_set(co, i, value, num);
    }
    return true;
}

/* qemu-img's check of each -o argument (before anything is parsed): not
 * empty, no leading comma, no odd run of trailing commas. */
static bool valid_option_list(const char *arg)
{
    size_t len = strlen(arg), i = len;

    if (!arg[0] || arg[0] == ',') {
        return false;
    }
    while (i > 0 && arg[i - 1] == ',') {
        i--;
    }
    return (len - i) % 2 == 0;
}

/* True if one element of the list is exactly "help" or "?". */
static bool wants_help(const char *list)
{
    const char *p = list;

    while (*p) {
        g_autofree char *elem = NULL;

        p = read_value(p, &elem);
        if (*p) {
            p++;
        }
        if (strcmp(elem, "help") == 0 || strcmp(elem, "?") == 0) {
            return true;
        }
    }
    return false;
}

/* ----- Drivers and paths ----- */

/* "<name>:" before any '/' names a protocol; anything else is a file. */
static bool has_protocol(const char *path)
{
    return path[strcspn(path, ":/")] == ':';
}

static const BlockDriver *find_protocol(const char *filename, GError **errp)
{
    g_autofree char *name = NULL;
    const BlockDriver *drv;

    if (!has_protocol(filename)) {
        return bdrv_find_format("file");
    }
    name = g_strndup(filename, strcspn(filename, ":"));
    drv = bdrv_find_format(name);
    if (!drv || !(drv->is_protocol || drv->is_filter)) {
        qblk_error_set(errp, "Unknown protocol '%s'", name);
        return NULL;
    }
    return drv;
}

static bool can_create(const BlockDriver *drv)
{
    return drv->create_opts && drv->co_create;
}

/* The backing file name as the new image will resolve it: absolute and
 * protocol names as they are, others relative to the image's directory
 * (everything up to its last '/', or after a protocol prefix). */
static char *backing_path(const char *image, const char *backing)
{
    const char *slash, *colon;
    size_t keep = 0;

    if (g_path_is_absolute(backing) || has_protocol(backing)) {
        return g_strdup(backing);
    }
    slash = strrchr(image, '/');
    colon = has_protocol(image) ? strchr(image, ':') : NULL;
    if (slash) {
        keep = (size_t)(slash - image) + 1;
    }
    if (colon && (size_t)(colon - image) + 1 > keep) {
        keep = (size_t)(colon - image) + 1;
    }
    g_autofree char *dir = g_strndup(image, keep);

    return g_strconcat(dir, backing, NULL);
}

/* ----- -o help ----- */

static const char *type_name(QblkOptType type)
{
    switch (type) {
    case QBLK_OPT_STRING: return "str";
    case QBLK_OPT_BOOL:   return "bool (on/off)";
    case QBLK_OPT_NUMBER: return "num";
    case QBLK_OPT_SIZE:   return "size";
    }
    return "?";
}

static gint compare_lines(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lists the options of fmt (and of filename's protocol when a filename is
 * given), one line each, sorted. Returns the exit status. */
static int print_option_help(const char *filename, const char *fmt)
{
    const BlockDriver *drv = bdrv_find_format(fmt);
    const BlockDriver *proto = NULL;
    g_autoptr(CreateOpts) co = NULL;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);

    if (!drv) {
        error_report("Unknown file format '%s'", fmt);
        return 1;
    }
    if (!can_create(drv)) {
        error_report("Format driver '%s' does not support image creation", fmt);
        return 1;
    }
    if (filename) {
        GError *err = NULL;

        proto = find_protocol(filename, &err);
        if (!proto) {
            error_report_err(err);
            return 1;
        }
        if (!can_create(proto)) {
            error_report("Protocol driver '%s' does not support image creation",
                         proto->format_name);
            return 1;
        }
    }
    co = create_opts_new(drv, proto);
    for (guint i = 0; i < co->descs->len; i++) {
        const QblkOptDesc *d = g_ptr_array_index(co->descs, i);
        GString *line = g_string_new(NULL);

        g_string_append_printf(line, "  %s=<%s>", d->name, type_name(d->type));
        if (d->help) {
            while (line->len < 24) {
                g_string_append_c(line, ' ');
            }
            g_string_append_printf(line, " - %s", d->help);
        }
        g_ptr_array_add(lines, g_string_free(line, FALSE));
    }
    g_ptr_array_sort(lines, compare_lines);

    if (filename) {
        printf("Supported options:\n");
    } else {
        printf("Supported %s options:\n", fmt);
    }
    for (guint i = 0; i < lines->len; i++) {
        printf("%s\n", (const char *)g_ptr_array_index(lines, i));
    }
    if (!filename) {
        printf("\n"
               "The protocol level may support further options.\n"
               "Specify the target filename to include those options.\n");
    }
    return 0;
}

/* ----- Creating ----- */

typedef struct CreateArgs {
    const char *filename;
    const char *fmt;
    const char *base;          /* -b */
    const char *base_fmt;      /* -F */
    const char *options;       /* every -o, joined with ',' */
    int64_t size;              /* positional size, -1 if none */
    bool unsafe;               /* -u: do not open the backing file */
    bool quiet;
} CreateArgs;

/* "size=1048576 backing_file=a.qcow2 ...": every given option and every
 * default, in the option set's order; commas in strings doubled. */
static void print_formatting_line(const CreateArgs *a, const CreateOpts *co)
{
    const char *sep = "";

    printf("Formatting '%s', fmt=%s ", a->filename, a->fmt);
    for (guint i = 0; i < co->descs->len; i++) {
        const QblkOptDesc *d = g_ptr_array_index(co->descs, i);
        const char *value = co->value[i] ? co->value[i] : d->def_value;

        if (!value) {
            continue;
        }
        printf("%s%s=", sep, d->name);
        if (d->type == QBLK_OPT_STRING) {
            for (const char *p = value; *p; p++) {
                if (*p == ',') {
                    putchar(',');
                }
                putchar(*p);
            }
        } else if ((d->type == QBLK_OPT_SIZE || d->type == QBLK_OPT_NUMBER) && co->value[i]) {
            printf("%" PRId64, (int64_t)co->num[i]);
        } else {
            printf("%s", value);
        }
        sep = " ";
    }
    printf("\n");
    fflush(stdout);
}

/* Opens the backing image (as the new image will find it) to learn its
 * format and, if *size is -1, its size. */
static bool probe_backing(const CreateArgs *a, const char *backing_file,
                          const char *backing_fmt, int64_t *size, char **hint,
                          GError **errp)
{
    g_autofree char *full = backing_path(a->filename, backing_file);
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

static bool create_image(const CreateArgs *a, char **hint, GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(a->fmt);
    const BlockDriver *proto;
    g_autoptr(CreateOpts) co = NULL;
    g_autoptr(QblkOpts) opts = NULL;
    const char *backing_file, *backing_fmt, *cluster;
    int64_t size = a->size;
    int size_idx, ret;

    if (!drv) {
        qblk_error_set(errp, "Unknown file format '%s'", a->fmt);
        return false;
    }
    proto = find_protocol(a->filename, errp);
    if (!proto) {
        return false;
    }
    if (!can_create(drv)) {
        qblk_error_set(errp, "Format driver '%s' does not support image creation",
                       drv->format_name);
        return false;
    }
    if (!can_create(proto)) {
        qblk_error_set(errp, "Protocol driver '%s' does not support image creation",
                       proto->format_name);
        return false;
    }
    co = create_opts_new(drv, proto);
    size_idx = create_opts_find(co, "size");
    g_assert(size_idx >= 0);   /* every creatable driver lists "size" */
    if (a->options && !create_opts_parse(co, a->options, hint, errp)) {
        return false;
    }

    if (co->value[size_idx]) {
        if (a->size != -1) {
            qblk_error_set(errp, "The image size must be specified only once");
            return false;
        }
        size = (int64_t)co->num[size_idx];
    } else if (size != -1) {
        create_opts_set_size(co, size);
    }

    if (a->base) {
        int i = create_opts_find(co, "backing_file");

        if (i < 0 || !drv->supports_backing) {
            qblk_error_set(errp, "Backing file not supported for file format '%s'", a->fmt);
            return false;
        }
        create_opts_set(co, i, a->base, 0);
    }
    if (a->base_fmt) {
        int i = create_opts_find(co, "backing_fmt");

        if (i < 0) {
            qblk_error_set(errp, "Backing file format not supported for file format '%s'",
                           a->fmt);
            return false;
        }
        create_opts_set(co, i, a->base_fmt, 0);
    }

    backing_file = create_opts_get(co, "backing_file");
    backing_fmt = create_opts_get(co, "backing_fmt");
    if (backing_file) {
        if (strcmp(a->filename, backing_file) == 0) {
            qblk_error_set(errp, "Error: Trying to create an image with the same "
                           "filename as the backing file");
            return false;
        }
        if (!*backing_file) {
            qblk_error_set(errp, "Expected backing file name, got empty string");
            return false;
        }
        if (!a->unsafe) {
            if (!probe_backing(a, backing_file, backing_fmt, &size, hint, errp)) {
                return false;
            }
            if (!co->value[size_idx]) {
                create_opts_set_size(co, size);
            }
        } else if (!backing_fmt) {
            qblk_error_set(errp, "Backing file specified without backing format");
            return false;
        }
    }
    if (size == -1) {
        qblk_error_set(errp, "Image creation needs a size parameter");
        return false;
    }

    if (!a->quiet) {
        print_formatting_line(a, co);
    }

    opts = qblk_opts_new();
    for (guint i = 0; i < co->descs->len; i++) {
        if (co->value[i]) {
            qblk_opts_set(opts, ((const QblkOptDesc *)g_ptr_array_index(co->descs, i))->name,
                          co->value[i]);
        }
    }
    ret = bdrv_create(a->fmt, a->filename, opts, errp);
    if (ret == -EFBIG) {
        /* "Too large" says more than the driver's own message would. */
        int i = create_opts_find(co, "cluster_size");
        bool hint_cluster = false;

        cluster = i < 0 ? NULL : create_opts_get(co, "cluster_size");
        if (cluster) {
            hint_cluster = co->num[i] != 0;
        } else if (i >= 0) {
            const char *def = ((const QblkOptDesc *)g_ptr_array_index(co->descs, i))->def_value;
            int64_t v = 0;

            hint_cluster = def && qblk_strtosz(def, &v, NULL) == 0 && v != 0;
        }
        g_clear_error(errp);
        qblk_error_set(errp, "The image size is too large for file format '%s'%s", a->fmt,
                       hint_cluster ? " (try using a larger cluster size)" : "");
    }
    return ret >= 0;
}

int64_t img_cvtnum(const char *name, const char *arg, int64_t max)
{
    return img_cvtnum_full(name, arg, 0, max);
}

int64_t img_cvtnum_full(const char *name, const char *arg, int64_t min, int64_t max)
{
    bool hex_suffix = false;
    int64_t size;
    int ret = qblk_strtosz(arg, &size, &hex_suffix);

    if (hex_suffix) {
        warn_report("Using a multiplier suffix on hex numbers is deprecated: %s", arg);
    }
    if (ret < 0 && ret != -ERANGE) {
        error_report("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", name);
        error_report("kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
        return -1;
    }
    if (ret == -ERANGE || size < min || size > max) {
        error_report("Invalid %s specified. Must be between %" PRId64 " and %" PRId64 ".", name,
                     min, max);
        return -1;
    }
    return size;
}

int64_t img_parse_image_size(const char *arg)
{
    return img_cvtnum("image size", arg, INT64_MAX);
}

bool img_append_option_list(char **options, const char *arg)
{
    char *joined;

    if (!valid_option_list(arg)) {
        error_report("Invalid option list: %s", arg);
        return false;
    }
    joined = *options ? g_strconcat(*options, ",", arg, NULL) : g_strdup(arg);
    g_free(*options);
    *options = joined;
    return true;
}

QblkOpts *img_parse_format_options(const BlockDriver *drv, const char *options, char **hint,
                                   GError **errp)
{
    g_autoptr(CreateOpts) co = create_opts_new(drv, bdrv_find_format("file"));
    QblkOpts *opts;

    if (options && !create_opts_parse(co, options, hint, errp)) {
        return NULL;
    }
    opts = qblk_opts_new();
    for (guint i = 0; i < co->descs->len; i++) {
        if (co->value[i]) {
            qblk_opts_set(opts, ((const QblkOptDesc *)g_ptr_array_index(co->descs, i))->name,
                          co->value[i]);
        }
    }
    return opts;
}

bool img_create_target(const char *filename, const char *fmt, const char *options,
                       const char *base, const char *base_fmt, int64_t size, GError **errp)
{
    CreateArgs a = {
        .filename = filename, .fmt = fmt, .base = base, .base_fmt = base_fmt,
        .options = options, .size = size, .unsafe = true, .quiet = true,
    };
    g_autofree char *hint = NULL;

    return create_image(&a, &hint, errp);
}

int img_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    CreateArgs a = { .fmt = "raw", .size = -1 };
    g_autofree char *options = NULL;
    g_autofree char *hint = NULL;
    GError *err = NULL;
    int c;

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", long_options, NULL)) != -1) {
        switch (c) {
        case ':':
        case '?':
        case 'h':
            return img_common_option(c, argv);
        case 'F':
            a.base_fmt = optarg;
            break;
        case 'b':
            a.base = optarg;
            break;
        case 'f':
            a.fmt = optarg;
            break;
        case 'o':
            if (!img_append_option_list(&options, optarg)) {
                return 1;
            }
            break;
        case 'q':
            a.quiet = true;
            break;
        case 'u':
            a.unsafe = true;
            break;
        }
    }

    a.filename = optind < argc ? argv[optind] : NULL;
    if (options && wants_help(options)) {
        return print_option_help(a.filename, a.fmt);
    }
    if (!a.filename) {
        return img_usage_error("Expecting image file name");
    }
    optind++;
    if (optind < argc) {
        a.size = img_parse_image_size(argv[optind++]);
        if (a.size < 0) {
            return 1;
        }
    }
    if (optind != argc) {
        return img_usage_error("Unexpected argument: %s", argv[optind]);
    }

    a.options = options;
    if (!create_image(&a, &hint, &err)) {
        error_report("%s: %s", a.filename, err->message);
        g_error_free(err);
        if (hint) {
            fputs(hint, stderr);
        }
        return 1;
    }
    return 0;
}
