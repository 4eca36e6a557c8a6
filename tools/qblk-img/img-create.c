/* qblk-img create [-q] [-f fmt] [-b backing_file [-F backing_fmt]] [-u]
 *                 [-o options] filename [size]
 *
 * Parses the command line and prints; the library's create-options model
 * (block/create.c) does the rest: the option set (the format's create
 * options, then its protocol's), -o values checked with qemu-img's
 * messages, the backing image probe, and the create. Each error is
 * "qblk-img: <filename>: <msg>", the Formatting line comes just before
 * the create. Also the size parsers and -o helpers the other commands
 * share. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/cutils.h"
#include "util/error.h"
#include "qblk-img.h"

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
    g_autoptr(BdrvCreateOpts) co = NULL;
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
    GError *err = NULL;

    co = bdrv_create_opts_for_help(fmt, filename, &err);
    if (!co) {
        error_report_err(err);
        return 1;
    }
    for (guint i = 0; i < bdrv_create_opts_count(co); i++) {
        const QblkOptDesc *d = bdrv_create_opts_desc(co, i);
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

/* "Formatting 'x', fmt=qcow2 size=1048576 ...", flushed before the create. */
static void print_formatting_line(const BdrvCreateRequest *req, const BdrvCreateOpts *co)
{
    g_auto(GStrv) items = bdrv_create_opts_describe(co);
    g_autofree char *joined = g_strjoinv(" ", items);

    printf("Formatting '%s', fmt=%s %s\n", req->filename, req->fmt, joined);
    fflush(stdout);
}

static bool create_image(const BdrvCreateRequest *req, bool quiet, char **hint, GError **errp)
{
    g_autoptr(BdrvCreateOpts) co = bdrv_create_prepare(req, hint, errp);

    if (!co) {
        return false;
    }
    if (!quiet) {
        print_formatting_line(req, co);
    }
    return bdrv_create_opts_run(co, errp) == 0;
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

    if (!qblk_opts_valid_list(arg)) {
        error_report("Invalid option list: %s", arg);
        return false;
    }
    joined = *options ? g_strconcat(*options, ",", arg, NULL) : g_strdup(arg);
    g_free(*options);
    *options = joined;
    return true;
}

bool img_create_target(const char *filename, const char *fmt, const char *options,
                       const char *base, const char *base_fmt, int64_t size, GError **errp)
{
    BdrvCreateRequest req = {
        .filename = filename, .fmt = fmt, .backing = base, .backing_fmt = base_fmt,
        .options = options, .size = size, .no_backing_probe = true,
    };
    g_autofree char *hint = NULL;

    return create_image(&req, true, &hint, errp);
}

int img_create(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    BdrvCreateRequest a = { .fmt = "raw", .size = -1 };
    bool quiet = false;
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
            a.backing_fmt = optarg;
            break;
        case 'b':
            a.backing = optarg;
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
            quiet = true;
            break;
        case 'u':
            a.no_backing_probe = true;
            break;
        }
    }

    a.filename = optind < argc ? argv[optind] : NULL;
    if (options && qblk_opts_has_help(options)) {
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
    if (!create_image(&a, quiet, &hint, &err)) {
        error_report("%s: %s", a.filename, err->message);
        g_error_free(err);
        if (hint) {
            fputs(hint, stderr);
        }
        return 1;
    }
    return 0;
}
