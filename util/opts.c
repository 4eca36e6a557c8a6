/* Ordered key=value option sets and QEMU's "a=b,c=d" option-list syntax,
 * with typed "take" accessors for drivers. */
#include <errno.h>
#include <string.h>
#include <glib.h>

#include "util/cutils.h"
#include "util/error.h"
#include "util/opts.h"
#include "util/warn.h"

struct QblkOpts {
    GHashTable *values;  /* key -> value; owns both strings */
    GPtrArray *order;    /* borrowed keys (the hash table's), insertion order */
};

QblkOpts *qblk_opts_new(void)
{
    QblkOpts *opts = g_new(QblkOpts, 1);

    opts->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    opts->order = g_ptr_array_new();
    return opts;
}

void qblk_opts_free(QblkOpts *opts)
{
    if (!opts) {
        return;
    }
    g_ptr_array_free(opts->order, TRUE);
    g_hash_table_destroy(opts->values);
    g_free(opts);
}

QblkOpts *qblk_opts_copy(const QblkOpts *opts)
{
    QblkOpts *copy = qblk_opts_new();
    guint i;

    for (i = 0; i < opts->order->len; i++) {
        const char *key = g_ptr_array_index(opts->order, i);

        qblk_opts_set(copy, key, g_hash_table_lookup(opts->values, key));
    }
    return copy;
}

/* Like QDict: setting an existing key replaces its value in place, so it
 * keeps its original position. */
void qblk_opts_set(QblkOpts *opts, const char *key, const char *value)
{
    char *k;

    if (g_hash_table_lookup_extended(opts->values, key, (gpointer *)&k, NULL)) {
        g_hash_table_insert(opts->values, g_strdup(key), g_strdup(value));
        /* insert kept the old key string (and freed our new one), so the
         * borrowed pointer in `order` is still valid. */
        return;
    }
    k = g_strdup(key);
    g_hash_table_insert(opts->values, k, g_strdup(value));
    g_ptr_array_add(opts->order, k);
}

const char *qblk_opts_get(const QblkOpts *opts, const char *key)
{
    return g_hash_table_lookup(opts->values, key);
}

bool qblk_opts_has(const QblkOpts *opts, const char *key)
{
    return g_hash_table_contains(opts->values, key);
}

char *qblk_opts_take(QblkOpts *opts, const char *key)
{
    char *k, *v;

    if (!g_hash_table_steal_extended(opts->values, key, (gpointer *)&k,
                                     (gpointer *)&v)) {
        return NULL;
    }
    g_ptr_array_remove(opts->order, k);
    g_free(k);
    return v;
}

bool qblk_opts_take_bool(QblkOpts *opts, const char *key, bool def, bool *out,
                         GError **errp)
{
    g_autofree char *v = qblk_opts_take(opts, key);

    if (!v) {
        *out = def;
        return true;
    }
    /* The spellings QEMU's qapi_bool_parse accepts. */
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
        !strcmp(v, "y")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
        !strcmp(v, "n")) {
        *out = false;
        return true;
    }
    qblk_error_set(errp, "Parameter '%s' expects 'on' or 'off'", key);
    return false;
}

bool qblk_opts_take_size(QblkOpts *opts, const char *key, int64_t def,
                         int64_t *out, GError **errp)
{
    g_autofree char *v = qblk_opts_take(opts, key);
    bool hex_suffix = false;
    int64_t size;
    int ret;

    if (!v) {
        *out = def;
        return true;
    }
    ret = qblk_strtosz(v, &size, &hex_suffix);
    if (hex_suffix) {
        /* QEMU 7.2 warns before it even checks the rest of the string. */
        qblk_warn("Using a multiplier suffix on hex numbers is deprecated: %s", v);
    }
    if (ret == -ERANGE) {
        qblk_error_set(errp, "Value '%s' is out of range for parameter '%s'",
                       v, key);
        return false;
    }
    if (ret < 0) {
        qblk_error_set(errp, "Parameter '%s' expects a size", key);
        return false;
    }
    *out = size;
    return true;
}

QblkOpts *qblk_opts_take_prefix(QblkOpts *opts, const char *prefix)
{
    g_autofree char *dotted = g_str_has_suffix(prefix, ".")
                              ? g_strdup(prefix) : g_strconcat(prefix, ".", NULL);
    size_t plen = strlen(dotted);
    QblkOpts *sub = qblk_opts_new();
    guint i = 0;

    while (i < opts->order->len) {
        const char *key = g_ptr_array_index(opts->order, i);

        if (strncmp(key, dotted, plen) == 0) {
            g_autofree char *k = g_strdup(key);
            g_autofree char *v = qblk_opts_take(opts, k);

            qblk_opts_set(sub, k + plen, v);
            continue;  /* take removed index i; the next key moved into it */
        }
        i++;
    }
    return sub;
}

const char **qblk_opts_keys(const QblkOpts *opts, guint *n)
{
    const char **keys = g_new(const char *, opts->order->len + 1);
    guint i;

    for (i = 0; i < opts->order->len; i++) {
        keys[i] = g_ptr_array_index(opts->order, i);
    }
    keys[i] = NULL;
    if (n) {
        *n = opts->order->len;
    }
    return keys;
}

guint qblk_opts_count(const QblkOpts *opts)
{
    return opts->order->len;
}

/* Copies a value up to the next lone ',' (",," is a literal comma) into
 * out; returns the position after the value (at its ',' or the end). */
static const char *parse_value(const char *p, GString *out)
{
    while (*p) {
        if (*p == ',') {
            if (p[1] != ',') {
                break;
            }
            p++;
        }
        g_string_append_c(out, *p++);
    }
    return p;
}

bool qblk_opts_valid_list(const char *str)
{
    size_t len = strlen(str), i = len;

    if (!str[0] || str[0] == ',') {
        return false;
    }
    while (i > 0 && str[i - 1] == ',') {
        i--;
    }
    return (len - i) % 2 == 0;
}

bool qblk_opts_has_help(const char *list)
{
    const char *p = list;

    while (*p) {
        g_autoptr(GString) elem = g_string_new(NULL);

        p = parse_value(p, elem);
        if (*p) {
            p++;
        }
        if (strcmp(elem->str, "help") == 0 || strcmp(elem->str, "?") == 0) {
            return true;
        }
    }
    return false;
}

const char *qblk_opts_next_element(const char *p, char **key, char **value)
{
    size_t len = strcspn(p, "=,");
    g_autoptr(GString) v = g_string_new(NULL);

    *key = g_strndup(p, len);
    if (p[len] == '=') {
        p = parse_value(p + len + 1, v);
        *value = g_strdup(v->str);
        return p;
    }
    /* A flag: "name" is name=on, "noname" name=off. */
    if (g_str_has_prefix(*key, "no")) {
        memmove(*key, *key + 2, strlen(*key + 2) + 1);
        *value = g_strdup("off");
    } else {
        *value = g_strdup("on");
    }
    return p + len;
}

bool qblk_opts_parse(QblkOpts *opts, const char *str, const char *implied_key,
                     GError **errp)
{
    const char *p = str;
    bool first = true;

    if (!qblk_opts_valid_list(str)) {
        qblk_error_set(errp, "Invalid option list: %s", str);
        return false;
    }
    while (*p) {
        size_t len = strcspn(p, "=,");
        g_autofree char *key = NULL;
        g_autoptr(GString) value = g_string_new(NULL);

        if (p[len] != '=') {
            if (!(first && implied_key)) {
                key = g_strndup(p, len);
                qblk_error_set(errp, "Invalid parameter '%s'", key);
                return false;
            }
            key = g_strdup(implied_key);
            p = parse_value(p, value);
        } else {
            key = g_strndup(p, len);
            p = parse_value(p + len + 1, value);
        }
        if (!*key) {
            qblk_error_set(errp, "Invalid parameter ''");
            return false;
        }
        qblk_opts_set(opts, key, value->str);
        first = false;
        if (*p == ',') {
            p++;
            if (!*p) {
                /* Unreachable after qblk_opts_valid_list; kept as a guard. */
                qblk_error_set(errp, "Invalid option list: %s", str);
                return false;
            }
        }
    }
    return true;
}
