/* The daemon's command-line form of a QAPI type (--nbd-server, --export):
 * dotted keys typed by the schema, or a JSON object, checked as QMP checks
 * a command's arguments so both forms give QEMU's messages. */
#include <errno.h>
#include <string.h>

#include "qmp/dispatch.h"
#include "qmp/json-parse.h"
#include "qmp/keyval.h"
#include "qmp/schema.h"
#include "util/cutils.h"

/* The member called name of a struct or union (its base members, then
 * the variant its discriminator selects in obj), or NULL. */
static const QmpMember *find_member(const QmpType *t, const QblkJson *obj, const char *name)
{
    for (guint i = 0; t->members && i < t->members->len; i++) {
        const QmpMember *m = t->members->pdata[i];
        if (!strcmp(m->name, name)) {
            return m;
        }
    }
    if (t->kind == QMP_TYPE_UNION) {
        const QblkJson *tag = qblk_json_get(obj, t->discriminator);
        for (guint i = 0; tag && t->variants && i < t->variants->len; i++) {
            const QmpMember *v = t->variants->pdata[i];
            if (qblk_json_type(tag) == QBLK_JSON_STRING &&
                !strcmp(v->name, qblk_json_get_string(tag))) {
                return find_member(v->type, NULL, name);
            }
        }
    }
    return NULL;
}

/* A string from the command line as the scalar type wants it; a value the
 * type cannot take stays a string, so the schema check names it. */
static QblkJson *typed_scalar(const QmpType *t, const char *key, const char *s,
                              GError **errp)
{
    if (t && t->kind == QMP_TYPE_BUILTIN) {
        switch (t->builtin) {
        case QMP_BUILTIN_BOOL:
            if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "true")) {
                return qblk_json_bool(true);
            }
            if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "false")) {
                return qblk_json_bool(false);
            }
            qblk_error_set(errp, "Parameter '%s' expects 'on' or 'off'", key);
            return NULL;
        case QMP_BUILTIN_INT:
        case QMP_BUILTIN_UINT: {
            char *end;
            errno = 0;
            long long v = strtoll(s, &end, 0);
            if (*s && !*end && !errno) {
                return qblk_json_int(v);
            }
            qblk_error_set(errp, "Parameter '%s' expects %s", key,
                           "integer");
            return NULL;
        }
        default:
            break;
        }
    }
    return qblk_json_string(s);
}

/* Puts value at the dotted path under obj, creating the objects between,
 * with the schema type t of obj guiding each level (NULL: untyped). */
static bool set_path(QblkJson *obj, const QmpType *t, const char *path, const char *full,
                     const char *value, GError **errp)
{
    const char *dot = strchr(path, '.');
    g_autofree char *name = dot ? g_strndup(path, dot - path) : g_strdup(path);
    const QmpMember *m = t ? find_member(t, obj, name) : NULL;
    const QmpType *mt = m ? m->type : NULL;
    QblkJson *child = qblk_json_get(obj, name);

    if (!dot) {
        QblkJson *v;
        if (child) {
            qblk_error_set(errp, "Parameter '%s' is set twice", full);
            return false;
        }
        v = typed_scalar(mt, full, value, errp);
        if (!v) {
            return false;
        }
        qblk_json_set(obj, name, v);
        return true;
    }
    if (!child) {
        child = qblk_json_set(obj, name, qblk_json_object());
    } else if (qblk_json_type(child) != QBLK_JSON_OBJECT) {
        qblk_error_set(errp, "Parameter '%s' used inconsistently", full);
        return false;
    }
    if (mt && mt->kind != QMP_TYPE_STRUCT && mt->kind != QMP_TYPE_UNION) {
        mt = NULL;
    }
    return set_path(child, mt, dot + 1, full, value, errp);
}

/* Keys sorted so a union's discriminator ("type") is set before the keys
 * its variant types, at every level: shorter paths first. */
static gint by_depth(gconstpointer a, gconstpointer b, gpointer unused)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int dx = 0, dy = 0;

    (void)unused;

    for (const char *p = x; *p; p++) {
        dx += *p == '.';
    }
    for (const char *p = y; *p; p++) {
        dy += *p == '.';
    }
    return dx - dy;
}

QblkJson *qmp_keyval_parse(const char *arg, const char *implied_key, const char *type_name,
                           GError **errp)
{
    QmpType *type;
    g_autoptr(QblkJson) obj = NULL;
    QmpCommandDef check = { 0 };

    qmp_schema_finish();
    type = qmp_schema_type(type_name);
    g_assert(type);
    if (arg[0] == '{') {
        obj = qmp_json_parse(arg, errp);
        if (!obj) {
            return NULL;
        }
        if (qblk_json_type(obj) != QBLK_JSON_OBJECT) {
            qblk_error_set(errp, "Invalid JSON object given");
            return NULL;
        }
    } else {
        g_autoptr(QblkOpts) opts = qblk_opts_new();
        g_autofree const char **keys = NULL;
        guint n;

        if (!qblk_opts_parse(opts, arg, implied_key, errp)) {
            return NULL;
        }
        keys = qblk_opts_keys(opts, &n);
        g_qsort_with_data(keys, n, sizeof(*keys), by_depth, NULL);
        obj = qblk_json_object();
        /* The discriminators first, so variant members get their types. */
        for (guint pass = 0; pass < 2; pass++) {
            for (guint i = 0; i < n; i++) {
                const char *leaf = strrchr(keys[i], '.');
                bool is_tag = !strcmp(leaf ? leaf + 1 : keys[i], "type");
                if (is_tag != (pass == 0)) {
                    continue;
                }
                if (!set_path(obj, type, keys[i], keys[i], qblk_opts_get(opts, keys[i]),
                              errp)) {
                    return NULL;
                }
            }
        }
    }
    check.name = (char *)type_name;
    check.args = type;
    check.boxed = true;
    if (!qmp_check_args(&check, obj, errp)) {
        return NULL;
    }
    return g_steal_pointer(&obj);
}
