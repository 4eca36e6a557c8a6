/* The dispatcher: checks a request's shape and its arguments against the
 * schema with QEMU 7.2's messages and paths, runs the command's handler
 * and builds the reply. Also the registration entry point. */
#include <string.h>

#include "qmp/dispatch.h"
#include "util/cutils.h"

/* ----- Registration ----- */

void qmp_register_commands(const QmpCommand *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        QmpCommandDef *def = qmp_schema_command(cmds[i].name);
        if (!def) {
            g_error("qmp: command '%s' has no schema definition", cmds[i].name);
        }
        def->fn = cmds[i].fn;
    }
}

/* ----- The argument check ----- */

/* The word QEMU's "expected: ..." uses for a type. */
static const char *expected_name(const QmpType *t)
{
    switch (t->kind) {
    case QMP_TYPE_BUILTIN:
        switch (t->builtin) {
        case QMP_BUILTIN_STR: return "string";
        case QMP_BUILTIN_INT:
        case QMP_BUILTIN_UINT: return "integer";
        case QMP_BUILTIN_NUMBER: return "number";
        case QMP_BUILTIN_BOOL: return "boolean";
        case QMP_BUILTIN_NULL: return "null";
        case QMP_BUILTIN_ANY: return "any";
        }
        break;
    case QMP_TYPE_ENUM: return "string";
    case QMP_TYPE_STRUCT:
    case QMP_TYPE_UNION: return "object";
    case QMP_TYPE_ARRAY: return "array";
    case QMP_TYPE_ALTERNATE: return t->name;
    }
    return "?";
}

static bool check_object(const QmpType *t, const QblkJson *obj, const char *prefix,
                         GError **errp);

/* Does v's JSON type fit t (no deeper look)? */
static bool json_fits(const QmpType *t, const QblkJson *v)
{
    QblkJsonType jt = qblk_json_type(v);

    switch (t->kind) {
    case QMP_TYPE_BUILTIN:
        switch (t->builtin) {
        case QMP_BUILTIN_STR: return jt == QBLK_JSON_STRING;
        case QMP_BUILTIN_INT: return jt == QBLK_JSON_INT;
        case QMP_BUILTIN_UINT: return jt == QBLK_JSON_INT || jt == QBLK_JSON_UINT;
        case QMP_BUILTIN_NUMBER:
            return jt == QBLK_JSON_INT || jt == QBLK_JSON_UINT || jt == QBLK_JSON_DOUBLE;
        case QMP_BUILTIN_BOOL: return jt == QBLK_JSON_BOOL;
        case QMP_BUILTIN_NULL: return jt == QBLK_JSON_NULL;
        case QMP_BUILTIN_ANY: return true;
        }
        return false;
    case QMP_TYPE_ENUM: return jt == QBLK_JSON_STRING;
    case QMP_TYPE_STRUCT:
    case QMP_TYPE_UNION: return jt == QBLK_JSON_OBJECT;
    case QMP_TYPE_ARRAY: return jt == QBLK_JSON_ARRAY;
    case QMP_TYPE_ALTERNATE: return false;
    }
    return false;
}

/* The branch of an alternate that a value of v's JSON type takes. */
static const QmpType *alternate_branch(const QmpType *t, const QblkJson *v)
{
    for (guint i = 0; i < t->members->len; i++) {
        const QmpMember *m = t->members->pdata[i];
        if (json_fits(m->type, v)) {
            return m->type;
        }
    }
    return NULL;
}

/* int8..uint32: QEMU's "Parameter 'x' expects uint32_t" (the member's
 * own name, as in the enum message). A negative value for an unsigned
 * type is out of range, as QEMU reads it as a huge uint64. */
static bool check_range(const QmpType *t, const QblkJson *v, const char *leaf, GError **errp)
{
    bool fits;

    if (!t->bits) {
        return true;
    }
    if (t->builtin == QMP_BUILTIN_INT) {
        int64_t i = qblk_json_get_int(v);
        fits = i >= -(INT64_C(1) << (t->bits - 1)) && i < (INT64_C(1) << (t->bits - 1));
    } else {
        fits = qblk_json_type(v) == QBLK_JSON_INT && qblk_json_get_int(v) >= 0 &&
               qblk_json_get_int(v) < (INT64_C(1) << t->bits);
    }
    if (!fits) {
        qblk_error_set(errp, "Parameter '%s' expects %sint%d_t", leaf,
                       t->builtin == QMP_BUILTIN_UINT ? "u" : "", t->bits);
    }
    return fits;
}

/* path: the member's full name ("addr.data.path", "options[0]"); leaf:
 * its own name, which QEMU's enum message uses ("null" for a list
 * element, as QEMU prints it). */
static bool check_value(const QmpType *t, const QblkJson *v, const char *path,
                        const char *leaf, GError **errp)
{
    if (t->kind == QMP_TYPE_ALTERNATE) {
        const QmpType *branch = alternate_branch(t, v);
        if (!branch) {
            qblk_error_set(errp, "Invalid parameter type for '%s', expected: %s", path,
                           expected_name(t));
            return false;
        }
        t = branch;
    }
    if (!json_fits(t, v)) {
        qblk_error_set(errp, "Invalid parameter type for '%s', expected: %s", path,
                       expected_name(t));
        return false;
    }
    switch (t->kind) {
    case QMP_TYPE_BUILTIN:
        return check_range(t, v, leaf, errp);
    case QMP_TYPE_ENUM: {
        const char *s = qblk_json_get_string(v);
        for (guint i = 0; i < t->values->len; i++) {
            if (!strcmp(t->values->pdata[i], s)) {
                return true;
            }
        }
        qblk_error_set(errp, "Parameter '%s' does not accept value '%s'", leaf, s);
        return false;
    }
    case QMP_TYPE_STRUCT:
    case QMP_TYPE_UNION: {
        g_autofree char *prefix = g_strdup_printf("%s.", path);
        return check_object(t, v, prefix, errp);
    }
    case QMP_TYPE_ARRAY:
        for (guint i = 0; i < qblk_json_size(v); i++) {
            g_autofree char *elem = g_strdup_printf("%s[%u]", path, i);
            if (!check_value(t->element, qblk_json_nth(v, i, NULL), elem, "null", errp)) {
                return false;
            }
        }
        return true;
    default:
        return true;
    }
}

static bool check_members(GPtrArray *members, const QblkJson *obj, const char *prefix,
                          GError **errp)
{
    for (guint i = 0; members && i < members->len; i++) {
        const QmpMember *m = members->pdata[i];
        const QblkJson *v = qblk_json_get(obj, m->name);
        g_autofree char *path = g_strdup_printf("%s%s", prefix, m->name);
        if (!v) {
            if (!m->optional) {
                qblk_error_set(errp, "Parameter '%s' is missing", path);
                return false;
            }
            continue;
        }
        if (!check_value(m->type, v, path, m->name, errp)) {
            return false;
        }
    }
    return true;
}

/* An object's keys in the order QEMU's QDict iterates them (which picks
 * the member QEMU complains about first in a request). Free with g_free. */
static const char **keys_in_qdict_order(const QblkJson *obj, guint *n)
{
    const char **keys;

    *n = qblk_json_size(obj);
    keys = g_new0(const char *, *n + 1);
    for (guint i = 0; i < *n; i++) {
        qblk_json_nth(obj, i, &keys[i]);
    }
    qblk_qdict_order(keys, *n);
    return keys;
}

/* Which undeclared member QEMU names: its visitor puts the object's keys
 * into a GHashTable in QDict order, removes each member as it reads it
 * (declared members in schema order), and names the first key the table
 * then iterates. The same GLib table, fed the same way, picks the same
 * key (removals may shrink and rehash it, so they are replayed too). */
static const char *first_unexpected(const QblkJson *obj, GPtrArray *members, GPtrArray *variant)
{
    g_autoptr(GHashTable) left = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *lists[] = { members, variant };
    guint n;
    g_autofree const char **keys = keys_in_qdict_order(obj, &n);
    GHashTableIter iter;
    gpointer key;

    for (guint i = 0; i < n; i++) {
        g_hash_table_add(left, (gpointer)keys[i]);
    }
    for (guint l = 0; l < G_N_ELEMENTS(lists); l++) {
        for (guint i = 0; lists[l] && i < lists[l]->len; i++) {
            g_hash_table_remove(left, ((QmpMember *)lists[l]->pdata[i])->name);
        }
    }
    g_hash_table_iter_init(&iter, left);
    if (!g_hash_table_iter_next(&iter, &key, NULL)) {
        return NULL;
    }
    /* The key's storage is the object's, which outlives the table. */
    for (guint i = 0; i < n; i++) {
        if (!strcmp(keys[i], key)) {
            return keys[i];
        }
    }
    return NULL;
}

/* A struct's or union's members (base, then the variant the discriminator
 * picks), then the members nobody declared: QEMU's order of complaints. */
static bool check_object(const QmpType *t, const QblkJson *obj, const char *prefix,
                         GError **errp)
{
    GPtrArray *variant = NULL;
    const char *unexpected;

    if (!check_members(t->members, obj, prefix, errp)) {
        return false;
    }
    if (t->kind == QMP_TYPE_UNION) {
        const char *tag = qmp_arg_str(obj, t->discriminator);
        for (guint i = 0; tag && i < t->variants->len; i++) {
            const QmpMember *m = t->variants->pdata[i];
            if (!strcmp(m->name, tag)) {
                variant = m->type->members;
            }
        }
        if (!check_members(variant, obj, prefix, errp)) {
            return false;
        }
    }
    unexpected = first_unexpected(obj, t->members, variant);
    if (unexpected) {
        qblk_error_set(errp, "Parameter '%s%s' is unexpected", prefix, unexpected);
        return false;
    }
    return true;
}

bool qmp_check_args(const QmpCommandDef *cmd, const QblkJson *args, GError **errp)
{
    static const QmpType no_args = { .kind = QMP_TYPE_STRUCT };

    qmp_schema_finish();
    if (cmd->args && cmd->args->kind == QMP_TYPE_ALTERNATE) {
        return check_value(cmd->args, args, "null", "null", errp);
    }
    return check_object(cmd->args ? cmd->args : &no_args, args, "", errp);
}

/* ----- Running a request ----- */

static QblkJson *error_reply(const GError *err, QblkJson *id)
{
    QblkJson *reply = qblk_json_object();
    QblkJson *error = qblk_json_set(reply, "error", qblk_json_object());

    /* Lines after the first are what QEMU keeps as hints (the tools print
     * them, e.g. what an NBD server reported): its QMP replies leave them out. */
    const char *newline = strchr(err->message, '\n');
    g_autofree char *desc = g_strndup(err->message, newline ? (gsize)(newline - err->message)
                                                            : strlen(err->message));

    qblk_json_set_str(error, "class", qblk_error_class(err));
    qblk_json_set_str(error, "desc", desc);
    if (id) {
        qblk_json_set(reply, "id", id);
    }
    return reply;
}

QblkJson *coroutine_fn qmp_co_run_command(const char *name, const QblkJson *args,
                                          GError **errp)
{
    const QmpCommandDef *cmd = qmp_schema_command(name);
    g_autoptr(QblkJson) empty = qblk_json_object();
    g_autoptr(GError) err = NULL;
    QblkJson *ret;

    if (!cmd || !cmd->fn) {
        qblk_error_set_code(errp, QBLK_ERROR_COMMAND_NOT_FOUND,
                            "The command %s has not been found", name);
        return NULL;
    }
    if (!args) {
        args = empty;
    }
    if (!qmp_check_args(cmd, args, errp)) {
        return NULL;
    }
    ret = cmd->fn(args, &err);
    if (!ret && !err) {
        /* A handler bug; the client still gets a well-formed error. */
        qblk_error_set(&err, "The command %s failed without a reason", name);
    }
    if (!ret) {
        g_propagate_error(errp, g_steal_pointer(&err));
    }
    return ret;
}

/* The top level of a request: QEMU's checks, in QEMU's order. Returns the
 * command name or NULL with *errp set. */
static const char *check_request(QmpSession *session, const QblkJson *req, bool *oob,
                                 GError **errp)
{
    const char *name = NULL;
    guint n;
    g_autofree const char **keys = keys_in_qdict_order(req, &n);

    for (guint i = 0; i < n; i++) {
        const char *key = keys[i];
        QblkJson *v = qblk_json_get(req, key);
        if (!strcmp(key, "execute") || (!strcmp(key, "exec-oob") && session->oob)) {
            if (qblk_json_type(v) != QBLK_JSON_STRING) {
                qblk_error_set(errp, "QMP input member '%s' must be a string", key);
                return NULL;
            }
        } else if (!strcmp(key, "arguments")) {
            if (qblk_json_type(v) != QBLK_JSON_OBJECT) {
                qblk_error_set(errp, "QMP input member 'arguments' must be an object");
                return NULL;
            }
        } else if (strcmp(key, "id") != 0) {
            qblk_error_set(errp, "QMP input member '%s' is unexpected", key);
            return NULL;
        }
    }
    name = qmp_arg_str(req, "execute");
    *oob = false;
    if (session->oob && qmp_arg_has(req, "exec-oob")) {
        if (name) {
            qblk_error_set(errp, "QMP input member 'execute' clashes with 'exec-oob'");
            return NULL;
        }
        name = qmp_arg_str(req, "exec-oob");
        *oob = true;
    }
    if (!name) {
        qblk_error_set(errp, "QMP input lacks member 'execute'");
    }
    return name;
}

QblkJson *coroutine_fn qmp_co_dispatch(QmpSession *session, QblkJson *request,
                                       GError *parse_err)
{
    g_autoptr(QblkJson) req = request;
    g_autoptr(GError) err = parse_err;
    g_autoptr(QblkJson) ret = NULL;
    QblkJson *id = NULL;
    const char *name;
    bool oob;
    QblkJson *reply;

    if (err) {
        return error_reply(err, NULL);
    }
    if (qblk_json_type(req) != QBLK_JSON_OBJECT) {
        qblk_error_set(&err, "QMP input must be a JSON object");
        return error_reply(err, NULL);
    }
    id = qblk_json_take(req, "id");
    name = check_request(session, req, &oob, &err);
    if (!name) {
        return error_reply(err, id);
    }
    if (oob) {
        /* No qblk command is out-of-band capable, as none of qsd's are. */
        qblk_error_set(&err, "The command %s does not support OOB", name);
        return error_reply(err, id);
    }
    if (!session->negotiated && strcmp(name, "qmp_capabilities") != 0) {
        qblk_error_set_code(&err, QBLK_ERROR_COMMAND_NOT_FOUND,
                            "Expecting capabilities negotiation with 'qmp_capabilities'");
        return error_reply(err, id);
    }
    if (session->negotiated && !strcmp(name, "qmp_capabilities")) {
        /* QEMU checks the arguments before it says so. */
        const QmpCommandDef *cmd = qmp_schema_command(name);
        g_autoptr(QblkJson) empty = qblk_json_object();
        const QblkJson *args = qblk_json_get(req, "arguments");
        if (qmp_check_args(cmd, args ? args : empty, &err)) {
            qblk_error_set_code(&err, QBLK_ERROR_COMMAND_NOT_FOUND,
                                "Capabilities negotiation is already complete, command ignored");
        }
        return error_reply(err, id);
    }
    ret = qmp_co_run_command(name, qblk_json_get(req, "arguments"), &err);
    if (!ret) {
        return error_reply(err, id);
    }
    if (!strcmp(name, "qmp_capabilities")) {
        /* The schema check let only 'oob' through. */
        const QblkJson *args = qblk_json_get(req, "arguments");
        const QblkJson *enable = args ? qblk_json_get(args, "enable") : NULL;
        session->negotiated = true;
        session->oob = enable && qblk_json_size(enable) > 0;
    }
    reply = qblk_json_object();
    qblk_json_set(reply, "return", g_steal_pointer(&ret));
    if (id) {
        qblk_json_set(reply, "id", id);
    }
    return reply;
}
