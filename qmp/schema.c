/* The QAPI schema: definitions in QAPI's own syntax are read into QmpType
 * descriptions, resolved once every definition is in (types may refer to
 * later ones), and shown to clients as query-qmp-schema's SchemaInfo list,
 * with type names hidden behind numbers as QEMU 7.2 does. */
#include <string.h>

#include "qmp/json-parse.h"
#include "qmp/schema.h"

typedef struct QmpEventDef {
    char *name;
    QmpType *data;                 /* NULL: no data */
    char *data_ref;                /* type name until resolved */
} QmpEventDef;

static struct {
    GHashTable *types;             /* name -> QmpType* (builtins, named, arrays) */
    GPtrArray *anon_types;         /* inline data of commands/events/union bases */
    GHashTable *commands;          /* name -> QmpCommandDef* */
    GPtrArray *command_list;       /* definition order */
    GPtrArray *entities;           /* commands and events in definition order: (kind, def) */
    bool finished;
} schema;

typedef struct Entity {
    bool is_event;
    void *def;
} Entity;

static const struct {
    const char *name;
    QmpBuiltin builtin;
    int bits;
} builtins[] = {
    { "str", QMP_BUILTIN_STR },
    { "int", QMP_BUILTIN_INT }, { "int8", QMP_BUILTIN_INT, 8 }, { "int16", QMP_BUILTIN_INT, 16 },
    { "int32", QMP_BUILTIN_INT, 32 }, { "int64", QMP_BUILTIN_INT },
    { "uint8", QMP_BUILTIN_UINT, 8 }, { "uint16", QMP_BUILTIN_UINT, 16 },
    { "uint32", QMP_BUILTIN_UINT, 32 }, { "uint64", QMP_BUILTIN_UINT },
    { "size", QMP_BUILTIN_UINT },
    { "number", QMP_BUILTIN_NUMBER },
    { "bool", QMP_BUILTIN_BOOL },
    { "null", QMP_BUILTIN_NULL },
    { "any", QMP_BUILTIN_ANY },
};

static void schema_init(void)
{
    if (schema.types) {
        return;
    }
    schema.types = g_hash_table_new(g_str_hash, g_str_equal);
    schema.anon_types = g_ptr_array_new();
    schema.commands = g_hash_table_new(g_str_hash, g_str_equal);
    schema.command_list = g_ptr_array_new();
    schema.entities = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < G_N_ELEMENTS(builtins); i++) {
        QmpType *t = g_new0(QmpType, 1);
        t->kind = QMP_TYPE_BUILTIN;
        t->name = g_strdup(builtins[i].name);
        t->builtin = builtins[i].builtin;
        t->bits = builtins[i].bits;
        t->resolved = true;
        g_hash_table_insert(schema.types, t->name, t);
    }
}

/* ----- Reading definitions ----- */

G_NORETURN static void schema_bug(const char *what, const char *name)
{
    g_error("qmp schema: %s '%s'", what, name ? name : "?");
}

/* A type reference: "T", ["T"] (QAPI's list syntax) or "[T]". */
static char *type_ref(const QblkJson *v, const char *where)
{
    if (qblk_json_type(v) == QBLK_JSON_STRING) {
        return g_strdup(qblk_json_get_string(v));
    }
    if (qblk_json_type(v) == QBLK_JSON_ARRAY && qblk_json_size(v) == 1 &&
        qblk_json_type(qblk_json_nth(v, 0, NULL)) == QBLK_JSON_STRING) {
        return g_strdup_printf("[%s]", qblk_json_get_string(qblk_json_nth(v, 0, NULL)));
    }
    if (qblk_json_type(v) == QBLK_JSON_OBJECT && qblk_json_get(v, "type")) {
        return type_ref(qblk_json_get(v, "type"), where);
    }
    schema_bug("bad type reference in", where);
}

/* 'data': { '*name': type, ... } into members. */
static GPtrArray *read_members(const QblkJson *data, const char *where)
{
    GPtrArray *members = g_ptr_array_new();

    if (!data) {
        return members;            /* { 'struct': 'Empty' } */
    }
    if (qblk_json_type(data) != QBLK_JSON_OBJECT) {
        schema_bug("members must be an object in", where);
    }
    for (guint i = 0; i < qblk_json_size(data); i++) {
        const char *key;
        QblkJson *v = qblk_json_nth(data, i, &key);
        QmpMember *m = g_new0(QmpMember, 1);
        m->optional = key[0] == '*';
        m->name = g_strdup(key + m->optional);
        m->type_name = type_ref(v, where);
        g_ptr_array_add(members, m);
    }
    return members;
}

static QmpType *type_new(QmpTypeKind kind, const char *name)
{
    QmpType *t = g_new0(QmpType, 1);

    t->kind = kind;
    t->name = g_strdup(name);
    if (name) {
        if (g_hash_table_contains(schema.types, name)) {
            schema_bug("duplicate type", name);
        }
        g_hash_table_insert(schema.types, t->name, t);
    } else {
        g_ptr_array_add(schema.anon_types, t);
    }
    return t;
}

/* A command's or event's 'data': an inline struct (returned) or a type
 * name (stored in *ref, resolved by qmp_schema_finish). */
static QmpType *read_data(const QblkJson *data, const char *where, char **ref)
{
    QmpType *t;

    if (!data) {
        return NULL;
    }
    if (qblk_json_type(data) == QBLK_JSON_OBJECT) {
        t = type_new(QMP_TYPE_STRUCT, NULL);
        t->members = read_members(data, where);
        return t;
    }
    *ref = type_ref(data, where);
    return NULL;
}

static void read_definition(const QblkJson *def)
{
    const char *name;
    QmpType *t;

    if ((name = qmp_arg_str(def, "enum"))) {
        const QblkJson *data = qblk_json_get(def, "data");
        t = type_new(QMP_TYPE_ENUM, name);
        t->values = g_ptr_array_new();
        for (guint i = 0; data && i < qblk_json_size(data); i++) {
            QblkJson *v = qblk_json_nth(data, i, NULL);
            if (qblk_json_type(v) == QBLK_JSON_OBJECT) {
                v = qblk_json_get(v, "name");
            }
            g_ptr_array_add(t->values, g_strdup(qblk_json_get_string(v)));
        }
        t->resolved = true;
    } else if ((name = qmp_arg_str(def, "struct"))) {
        t = type_new(QMP_TYPE_STRUCT, name);
        t->members = read_members(qblk_json_get(def, "data"), name);
        t->base_name = g_strdup(qmp_arg_str(def, "base"));
    } else if ((name = qmp_arg_str(def, "union"))) {
        const QblkJson *base = qblk_json_get(def, "base");
        const QblkJson *data = qblk_json_get(def, "data");
        t = type_new(QMP_TYPE_UNION, name);
        if (base && qblk_json_type(base) == QBLK_JSON_OBJECT) {
            t->members = read_members(base, name);
        } else {
            t->members = g_ptr_array_new();
            t->base_name = g_strdup(qmp_arg_str(def, "base"));
        }
        t->discriminator = g_strdup(qmp_arg_str(def, "discriminator"));
        if (!t->discriminator) {
            schema_bug("union without discriminator", name);
        }
        t->variants = read_members(data, name);
    } else if ((name = qmp_arg_str(def, "alternate"))) {
        t = type_new(QMP_TYPE_ALTERNATE, name);
        t->members = read_members(qblk_json_get(def, "data"), name);
    } else if ((name = qmp_arg_str(def, "command"))) {
        QmpCommandDef *cmd = g_new0(QmpCommandDef, 1);
        Entity *e = g_new0(Entity, 1);
        const QblkJson *ret = qblk_json_get(def, "returns");
        cmd->name = g_strdup(name);
        cmd->args = read_data(qblk_json_get(def, "data"), name, &cmd->args_ref);
        cmd->boxed = qmp_arg_bool(def, "boxed", false);
        if (ret) {
            cmd->ret_ref = type_ref(ret, name);
        }
        if (g_hash_table_contains(schema.commands, name)) {
            schema_bug("duplicate command", name);
        }
        g_hash_table_insert(schema.commands, cmd->name, cmd);
        g_ptr_array_add(schema.command_list, cmd);
        e->def = cmd;
        g_ptr_array_add(schema.entities, e);
    } else if ((name = qmp_arg_str(def, "event"))) {
        QmpEventDef *ev = g_new0(QmpEventDef, 1);
        Entity *e = g_new0(Entity, 1);
        ev->name = g_strdup(name);
        ev->data = read_data(qblk_json_get(def, "data"), name, &ev->data_ref);
        e->is_event = true;
        e->def = ev;
        g_ptr_array_add(schema.entities, e);
    } else {
        schema_bug("unknown definition kind", NULL);
    }
    schema.finished = false;
}

static void collect_definition(void *opaque, QblkJson *value, GError *err)
{
    if (err) {
        g_error("qmp schema: %s", err->message);
    }
    g_ptr_array_add(opaque, value);
}

void qmp_schema_add(const char *qapi_text)
{
    g_autoptr(GPtrArray) defs = g_ptr_array_new_with_free_func((GDestroyNotify)qblk_json_free);
    QmpJsonSplitter *s = qmp_json_splitter_new(collect_definition, defs);

    schema_init();
    /* Definitions follow each other without commas: the splitter cuts them. */
    qmp_json_splitter_feed(s, qapi_text, strlen(qapi_text));
    qmp_json_splitter_feed(s, " ", 1);
    if (qmp_json_splitter_pending(s)) {
        g_error("qmp schema: unfinished definition");
    }
    qmp_json_splitter_free(s);
    for (guint i = 0; i < defs->len; i++) {
        read_definition(defs->pdata[i]);
    }
}

/* ----- Resolution ----- */

static QmpType *resolve_name(const char *name, const char *where)
{
    QmpType *t = g_hash_table_lookup(schema.types, name);
    size_t len = strlen(name);

    if (t) {
        return t;
    }
    if (len > 2 && name[0] == '[' && name[len - 1] == ']') {
        g_autofree char *elem = g_strndup(name + 1, len - 2);
        t = type_new(QMP_TYPE_ARRAY, name);
        t->element = resolve_name(elem, where);
        t->resolved = true;
        return t;
    }
    g_error("qmp schema: unknown type '%s' in '%s'", name, where);
}

static void resolve_members(GPtrArray *members, const char *where)
{
    for (guint i = 0; members && i < members->len; i++) {
        QmpMember *m = members->pdata[i];
        m->type = resolve_name(m->type_name, where);
    }
}

static void resolve_type(QmpType *t)
{
    const char *where = t->name ? t->name : "inline data";

    if (t->resolved) {
        return;
    }
    t->resolved = true;
    resolve_members(t->members, where);
    if (t->base_name) {
        /* A base's members come first, as QEMU lists them. */
        QmpType *base = resolve_name(t->base_name, where);
        if (base->kind != QMP_TYPE_STRUCT) {
            g_error("qmp schema: base of '%s' is not a struct", where);
        }
        resolve_type(base);
        for (guint i = 0; i < base->members->len; i++) {
            g_ptr_array_insert(t->members, i, base->members->pdata[i]);
        }
    }
    if (t->kind == QMP_TYPE_UNION) {
        QmpType *tag = NULL;
        for (guint i = 0; i < t->members->len; i++) {
            QmpMember *m = t->members->pdata[i];
            if (!strcmp(m->name, t->discriminator)) {
                tag = m->type;
            }
        }
        if (!tag || tag->kind != QMP_TYPE_ENUM) {
            g_error("qmp schema: discriminator of '%s' is not an enum member", where);
        }
        resolve_members(t->variants, where);
    }
}

void qmp_schema_finish(void)
{
    schema_init();
    if (schema.finished) {
        return;
    }
    for (guint i = 0; i < schema.entities->len; i++) {
        Entity *e = schema.entities->pdata[i];
        if (e->is_event) {
            QmpEventDef *ev = e->def;
            if (ev->data_ref) {
                ev->data = resolve_name(ev->data_ref, ev->name);
            }
        } else {
            QmpCommandDef *cmd = e->def;
            if (cmd->args_ref) {
                cmd->args = resolve_name(cmd->args_ref, cmd->name);
            }
            if (cmd->ret_ref) {
                cmd->ret = resolve_name(cmd->ret_ref, cmd->name);
            }
        }
    }
    /* Arrays created while resolving are resolved on creation; iterating
     * a snapshot keeps the hash table unchanged under the loop. */
    {
        g_autoptr(GList) types = g_hash_table_get_values(schema.types);
        for (GList *l = types; l; l = l->next) {
            resolve_type(l->data);
        }
    }
    for (guint i = 0; i < schema.anon_types->len; i++) {
        resolve_type(schema.anon_types->pdata[i]);
    }
    schema.finished = true;
}

QmpCommandDef *qmp_schema_command(const char *name)
{
    schema_init();
    return g_hash_table_lookup(schema.commands, name);
}

GPtrArray *qmp_schema_commands(void)
{
    qmp_schema_finish();
    return schema.command_list;
}

QmpType *qmp_schema_type(const char *name)
{
    qmp_schema_finish();
    return g_hash_table_lookup(schema.types, name);
}

/* ----- query-qmp-schema ----- */

typedef struct Introspect {
    GHashTable *ids;               /* QmpType* -> its shown name */
    GPtrArray *queue;              /* types to describe, in numbering order */
    guint next;                    /* the next number */
    QmpType empty;                 /* the empty object: no arguments, no return */
} Introspect;

/* json-type and shown name of a builtin: every integer type is "int". */
static const char *builtin_shown(QmpBuiltin b, const char **json_type)
{
    static const char *const shown[] = {
        [QMP_BUILTIN_STR] = "str", [QMP_BUILTIN_INT] = "int", [QMP_BUILTIN_UINT] = "int",
        [QMP_BUILTIN_NUMBER] = "number", [QMP_BUILTIN_BOOL] = "bool",
        [QMP_BUILTIN_NULL] = "null", [QMP_BUILTIN_ANY] = "any",
    };
    static const char *const json[] = {
        [QMP_BUILTIN_STR] = "string", [QMP_BUILTIN_INT] = "int", [QMP_BUILTIN_UINT] = "int",
        [QMP_BUILTIN_NUMBER] = "number", [QMP_BUILTIN_BOOL] = "boolean",
        [QMP_BUILTIN_NULL] = "null", [QMP_BUILTIN_ANY] = "value",
    };

    if (json_type) {
        *json_type = json[b];
    }
    return shown[b];
}

static const char *type_id(Introspect *in, QmpType *t)
{
    const char *id = g_hash_table_lookup(in->ids, t);
    char *name;

    if (id) {
        return id;
    }
    if (t->kind == QMP_TYPE_BUILTIN) {
        /* int64, size, ... all show as the one "int" entry. */
        const char *shown = builtin_shown(t->builtin, NULL);
        QmpType *canon = g_hash_table_lookup(schema.types, shown);
        if (canon != t) {
            id = type_id(in, canon);
            g_hash_table_insert(in->ids, t, g_strdup(id));
            return id;
        }
        name = g_strdup(shown);
    } else if (t->kind == QMP_TYPE_ARRAY) {
        /* QEMU lists an array just before its element type. */
        guint slot = in->queue->len;
        g_ptr_array_add(in->queue, NULL);
        name = g_strdup_printf("[%s]", type_id(in, t->element));
        in->queue->pdata[slot] = t;
        g_hash_table_insert(in->ids, t, name);
        return name;
    } else {
        name = g_strdup_printf("%u", in->next++);
    }
    g_hash_table_insert(in->ids, t, name);
    g_ptr_array_add(in->queue, t);
    return name;
}

static QblkJson *describe_members(Introspect *in, GPtrArray *members, bool alternate)
{
    QblkJson *list = qblk_json_array();

    for (guint i = 0; i < members->len; i++) {
        QmpMember *m = members->pdata[i];
        QblkJson *o = qblk_json_append(list, qblk_json_object());
        if (!alternate) {
            qblk_json_set_str(o, "name", m->name);
            if (m->optional) {
                qblk_json_set(o, "default", qblk_json_null());
            }
        }
        qblk_json_set_str(o, "type", type_id(in, m->type));
    }
    return list;
}

static QblkJson *describe_type(Introspect *in, QmpType *t)
{
    QblkJson *o = qblk_json_object();
    const char *json_type;

    qblk_json_set_str(o, "name", g_hash_table_lookup(in->ids, t));
    switch (t->kind) {
    case QMP_TYPE_BUILTIN:
        builtin_shown(t->builtin, &json_type);
        qblk_json_set_str(o, "meta-type", "builtin");
        qblk_json_set_str(o, "json-type", json_type);
        break;
    case QMP_TYPE_ENUM: {
        QblkJson *members = qblk_json_array();
        QblkJson *values = qblk_json_array();
        for (guint i = 0; i < t->values->len; i++) {
            QblkJson *m = qblk_json_append(members, qblk_json_object());
            qblk_json_set_str(m, "name", t->values->pdata[i]);
            qblk_json_append(values, qblk_json_string(t->values->pdata[i]));
        }
        qblk_json_set_str(o, "meta-type", "enum");
        qblk_json_set(o, "members", members);
        qblk_json_set(o, "values", values);
        break;
    }
    case QMP_TYPE_STRUCT:
    case QMP_TYPE_UNION:
        qblk_json_set_str(o, "meta-type", "object");
        qblk_json_set(o, "members", describe_members(in, t->members, false));
        if (t->kind == QMP_TYPE_UNION) {
            QblkJson *variants = qblk_json_array();
            for (guint i = 0; i < t->variants->len; i++) {
                QmpMember *m = t->variants->pdata[i];
                QblkJson *v = qblk_json_append(variants, qblk_json_object());
                qblk_json_set_str(v, "case", m->name);
                qblk_json_set_str(v, "type", type_id(in, m->type));
            }
            qblk_json_set_str(o, "tag", t->discriminator);
            qblk_json_set(o, "variants", variants);
        }
        break;
    case QMP_TYPE_ALTERNATE:
        qblk_json_set_str(o, "meta-type", "alternate");
        qblk_json_set(o, "members", describe_members(in, t->members, true));
        break;
    case QMP_TYPE_ARRAY:
        qblk_json_set_str(o, "meta-type", "array");
        qblk_json_set_str(o, "element-type", type_id(in, t->element));
        break;
    }
    return o;
}

QblkJson *qmp_schema_introspect(void)
{
    Introspect in = { 0 };
    QblkJson *list = qblk_json_array();

    qmp_schema_finish();
    in.ids = g_hash_table_new_full(NULL, NULL, NULL, g_free);
    in.queue = g_ptr_array_new();
    in.empty.kind = QMP_TYPE_STRUCT;
    in.empty.members = g_ptr_array_new();
    in.empty.resolved = true;
    /* Commands and events in definition order, then every type they
     * reach, numbered as first met (arguments before returns). */
    for (guint i = 0; i < schema.entities->len; i++) {
        Entity *e = schema.entities->pdata[i];
        QblkJson *o;
        /* A command defined but without a handler (yet) is not offered. */
        if (!e->is_event && !((QmpCommandDef *)e->def)->fn) {
            continue;
        }
        o = qblk_json_append(list, qblk_json_object());
        if (e->is_event) {
            QmpEventDef *ev = e->def;
            qblk_json_set_str(o, "name", ev->name);
            qblk_json_set_str(o, "meta-type", "event");
            qblk_json_set_str(o, "arg-type", type_id(&in, ev->data ? ev->data : &in.empty));
        } else {
            QmpCommandDef *cmd = e->def;
            qblk_json_set_str(o, "name", cmd->name);
            qblk_json_set_str(o, "meta-type", "command");
            qblk_json_set_str(o, "arg-type", type_id(&in, cmd->args ? cmd->args : &in.empty));
            qblk_json_set_str(o, "ret-type", type_id(&in, cmd->ret ? cmd->ret : &in.empty));
        }
    }
    for (guint i = 0; i < in.queue->len; i++) {
        qblk_json_append(list, describe_type(&in, in.queue->pdata[i]));
    }
    g_ptr_array_free(in.empty.members, TRUE);
    g_ptr_array_free(in.queue, TRUE);
    g_hash_table_destroy(in.ids);
    return list;
}
