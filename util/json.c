/* The JSON value tree of img-json.h and its two printers: JSON text in
 * qemu-img's layout and key order, and qemu-img's human "key: value" dump. */
#include <inttypes.h>
#include <string.h>

#include "util/cutils.h"
#include "util/json.h"

typedef struct QblkJsonMember {
    char *key;
    QblkJson *value;
} QblkJsonMember;

struct QblkJson {
    QblkJsonType type;
    bool insertion_order;          /* objects: print in insertion order */
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        char *s;
        GPtrArray *members;        /* objects: QblkJsonMember*, insertion order */
        GPtrArray *elements;       /* arrays: QblkJson* */
    };
};

static QblkJson *json_new(QblkJsonType type)
{
    QblkJson *v = g_new0(QblkJson, 1);

    v->type = type;
    return v;
}

QblkJson *qblk_json_null(void)
{
    return json_new(QBLK_JSON_NULL);
}

QblkJson *qblk_json_bool(bool value)
{
    QblkJson *v = json_new(QBLK_JSON_BOOL);

    v->b = value;
    return v;
}

QblkJson *qblk_json_int(int64_t value)
{
    QblkJson *v = json_new(QBLK_JSON_INT);

    v->i = value;
    return v;
}

QblkJson *qblk_json_uint(uint64_t value)
{
    QblkJson *v = json_new(QBLK_JSON_UINT);

    v->u = value;
    return v;
}

QblkJson *qblk_json_double(double value)
{
    QblkJson *v = json_new(QBLK_JSON_DOUBLE);

    v->d = value;
    return v;
}

QblkJson *qblk_json_string(const char *value)
{
    QblkJson *v = json_new(QBLK_JSON_STRING);

    v->s = g_strdup(value);
    return v;
}

static void member_free(gpointer p)
{
    QblkJsonMember *m = p;

    g_free(m->key);
    qblk_json_free(m->value);
    g_free(m);
}

QblkJson *qblk_json_object(void)
{
    QblkJson *v = json_new(QBLK_JSON_OBJECT);

    v->members = g_ptr_array_new_with_free_func(member_free);
    return v;
}

QblkJson *qblk_json_object_ordered(void)
{
    QblkJson *v = qblk_json_object();

    v->insertion_order = true;
    return v;
}

QblkJson *qblk_json_array(void)
{
    QblkJson *v = json_new(QBLK_JSON_ARRAY);

    v->elements = g_ptr_array_new_with_free_func((GDestroyNotify)qblk_json_free);
    return v;
}

void qblk_json_free(QblkJson *value)
{
    if (!value) {
        return;
    }
    switch (value->type) {
    case QBLK_JSON_STRING:
        g_free(value->s);
        break;
    case QBLK_JSON_OBJECT:
        g_ptr_array_free(value->members, TRUE);
        break;
    case QBLK_JSON_ARRAY:
        g_ptr_array_free(value->elements, TRUE);
        break;
    default:
        break;
    }
    g_free(value);
}

QblkJson *qblk_json_copy(const QblkJson *value)
{
    QblkJson *copy;

    switch (value->type) {
    case QBLK_JSON_STRING:
        return qblk_json_string(value->s);
    case QBLK_JSON_OBJECT:
        copy = qblk_json_object();
        copy->insertion_order = value->insertion_order;
        for (guint i = 0; i < value->members->len; i++) {
            QblkJsonMember *m = g_ptr_array_index(value->members, i);

            qblk_json_set(copy, m->key, qblk_json_copy(m->value));
        }
        return copy;
    case QBLK_JSON_ARRAY:
        copy = qblk_json_array();
        for (guint i = 0; i < value->elements->len; i++) {
            qblk_json_append(copy, qblk_json_copy(g_ptr_array_index(value->elements, i)));
        }
        return copy;
    default:
        copy = json_new(value->type);
        *copy = *value;
        return copy;
    }
}

static QblkJsonMember *find_member(const QblkJson *obj, const char *key)
{
    for (guint i = 0; i < obj->members->len; i++) {
        QblkJsonMember *m = g_ptr_array_index(obj->members, i);

        if (strcmp(m->key, key) == 0) {
            return m;
        }
    }
    return NULL;
}

QblkJson *qblk_json_set(QblkJson *obj, const char *key, QblkJson *value)
{
    QblkJsonMember *m;

    g_assert(obj->type == QBLK_JSON_OBJECT);
    m = find_member(obj, key);
    if (m) {
        qblk_json_free(m->value);
        m->value = value;
        return value;
    }
    m = g_new(QblkJsonMember, 1);
    m->key = g_strdup(key);
    m->value = value;
    g_ptr_array_add(obj->members, m);
    return value;
}

void qblk_json_set_str(QblkJson *obj, const char *key, const char *value)
{
    qblk_json_set(obj, key, qblk_json_string(value));
}

void qblk_json_set_int(QblkJson *obj, const char *key, int64_t value)
{
    qblk_json_set(obj, key, qblk_json_int(value));
}

void qblk_json_set_bool(QblkJson *obj, const char *key, bool value)
{
    qblk_json_set(obj, key, qblk_json_bool(value));
}

QblkJson *qblk_json_append(QblkJson *arr, QblkJson *value)
{
    g_assert(arr->type == QBLK_JSON_ARRAY);
    g_ptr_array_add(arr->elements, value);
    return value;
}

QblkJsonType qblk_json_type(const QblkJson *value)
{
    return value->type;
}

QblkJson *qblk_json_get(const QblkJson *obj, const char *key)
{
    QblkJsonMember *m;

    if (!obj || obj->type != QBLK_JSON_OBJECT) {
        return NULL;
    }
    m = find_member(obj, key);
    return m ? m->value : NULL;
}

guint qblk_json_size(const QblkJson *value)
{
    switch (value->type) {
    case QBLK_JSON_OBJECT:
        return value->members->len;
    case QBLK_JSON_ARRAY:
        return value->elements->len;
    default:
        return 0;
    }
}

/* The members of obj in print order (g_free the array, not the members). */
const char *qblk_json_get_string(const QblkJson *value)
{
    g_assert(value->type == QBLK_JSON_STRING);
    return value->s;
}

int64_t qblk_json_get_int(const QblkJson *value)
{
    if (value->type == QBLK_JSON_UINT) {
        return value->u > INT64_MAX ? INT64_MAX : (int64_t)value->u;
    }
    g_assert(value->type == QBLK_JSON_INT);
    return value->i;
}

bool qblk_json_get_bool(const QblkJson *value)
{
    g_assert(value->type == QBLK_JSON_BOOL);
    return value->b;
}

double qblk_json_get_double(const QblkJson *value)
{
    switch (value->type) {
    case QBLK_JSON_INT:
        return (double)value->i;
    case QBLK_JSON_UINT:
        return (double)value->u;
    default:
        g_assert(value->type == QBLK_JSON_DOUBLE);
        return value->d;
    }
}

QblkJson *qblk_json_nth(const QblkJson *value, guint i, const char **key)
{
    if (value->type == QBLK_JSON_OBJECT) {
        QblkJsonMember *m = g_ptr_array_index(value->members, i);

        if (key) {
            *key = m->key;
        }
        return m->value;
    }
    g_assert(value->type == QBLK_JSON_ARRAY);
    if (key) {
        *key = NULL;
    }
    return g_ptr_array_index(value->elements, i);
}

QblkJson *qblk_json_take(QblkJson *obj, const char *key)
{
    g_assert(obj->type == QBLK_JSON_OBJECT);
    for (guint i = 0; i < obj->members->len; i++) {
        QblkJsonMember *m = g_ptr_array_index(obj->members, i);

        if (!strcmp(m->key, key)) {
            QblkJson *v = m->value;

            m->value = NULL;
            g_ptr_array_remove_index(obj->members, i);
            return v;
        }
    }
    return NULL;
}

static QblkJsonMember **members_in_print_order(const QblkJson *obj, guint *n)
{
    guint len = obj->members->len;
    QblkJsonMember **out = g_new(QblkJsonMember *, len + 1);
    g_autofree const char **keys = g_new(const char *, len + 1);

    for (guint i = 0; i < len; i++) {
        keys[i] = ((QblkJsonMember *)g_ptr_array_index(obj->members, i))->key;
    }
    if (!obj->insertion_order) {
        qblk_qdict_order(keys, len);
    }
    for (guint i = 0; i < len; i++) {
        out[i] = find_member(obj, keys[i]);
    }
    out[len] = NULL;
    *n = len;
    return out;
}

/* ----- JSON text ----- */

/* One code point of the modified UTF-8 that QEMU's JSON writer accepts, at
 * *p (which is not at the terminating NUL); advances *p past the bytes
 * consumed. Returns -1 for anything QEMU replaces with U+FFFD: a stray
 * continuation byte, 0xFE/0xFF, a truncated sequence, an overlong form
 * (except 0xC0 0x80 for U+0000), a surrogate, a noncharacter or a value
 * beyond U+10FFFF. */
static int32_t next_code_point(const unsigned char **p)
{
    static const int32_t smallest[] = { 0x80, 0x800, 0x10000, 0x200000, 0x4000000 };
    const unsigned char *s = *p;
    unsigned lead = *s++;
    int nbytes = 0;
    int32_t cp;

    if (lead < 0x80) {
        *p = s;
        return (int32_t)lead;
    }
    if (lead >= 0xFE || !(lead & 0x40)) {
        *p = s;
        return -1;
    }
    while (lead & (0x80u >> nbytes)) {
        nbytes++;                          /* 2..6 */
    }
    cp = (int32_t)(lead & (0x7Fu >> nbytes));
    for (int i = 1; i < nbytes; i++) {
        if ((*s & 0xC0) != 0x80) {
            *p = s;                        /* the offending byte is reread */
            return -1;
        }
        cp = (cp << 6) | (*s++ & 0x3F);
    }
    *p = s;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE) {
        return -1;
    }
    if (cp < smallest[nbytes - 2] && !(cp == 0 && nbytes == 2)) {
        return -1;
    }
    return cp;
}

static void append_quoted(GString *out, const char *str)
{
    const unsigned char *p = (const unsigned char *)str;

    g_string_append_c(out, '"');
    while (*p) {
        int32_t cp = next_code_point(&p);

        switch (cp) {
        case '"':  g_string_append(out, "\\\""); continue;
        case '\\': g_string_append(out, "\\\\"); continue;
        case '\b': g_string_append(out, "\\b");  continue;
        case '\f': g_string_append(out, "\\f");  continue;
        case '\n': g_string_append(out, "\\n");  continue;
        case '\r': g_string_append(out, "\\r");  continue;
        case '\t': g_string_append(out, "\\t");  continue;
        default:
            break;
        }
        if (cp < 0) {
            cp = 0xFFFD;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            g_string_append_printf(out, "\\u%04X\\u%04X", (unsigned)(0xD800 + (cp >> 10)),
                                   (unsigned)(0xDC00 + (cp & 0x3FF)));
        } else if (cp < 0x20 || cp >= 0x7F) {
            g_string_append_printf(out, "\\u%04X", (unsigned)cp);
        } else {
            g_string_append_c(out, (char)cp);
        }
    }
    g_string_append_c(out, '"');
}

static void append_newline(GString *out, bool pretty, int level)
{
    if (pretty) {
        g_string_append_printf(out, "\n%*s", level * 4, "");
    }
}

static void append_value(GString *out, const QblkJson *v, bool pretty, int level)
{
    const char *sep = "";
    const char *comma = pretty ? "," : ", ";

    switch (v->type) {
    case QBLK_JSON_NULL:
        g_string_append(out, "null");
        break;
    case QBLK_JSON_BOOL:
        g_string_append(out, v->b ? "true" : "false");
        break;
    case QBLK_JSON_INT:
        g_string_append_printf(out, "%" PRId64, v->i);
        break;
    case QBLK_JSON_UINT:
        g_string_append_printf(out, "%" PRIu64, v->u);
        break;
    case QBLK_JSON_DOUBLE:
        g_string_append_printf(out, "%.17g", v->d);
        break;
    case QBLK_JSON_STRING:
        append_quoted(out, v->s);
        break;
    case QBLK_JSON_OBJECT: {
        guint n;
        g_autofree QblkJsonMember **members = members_in_print_order(v, &n);

        g_string_append_c(out, '{');
        for (guint i = 0; i < n; i++) {
            g_string_append(out, sep);
            append_newline(out, pretty, level + 1);
            append_quoted(out, members[i]->key);
            g_string_append(out, ": ");
            append_value(out, members[i]->value, pretty, level + 1);
            sep = comma;
        }
        /* QEMU's pretty printer breaks the line even in an empty one. */
        if (n || pretty) {
            append_newline(out, pretty, level);
        }
        g_string_append_c(out, '}');
        break;
    }
    case QBLK_JSON_ARRAY:
        g_string_append_c(out, '[');
        for (guint i = 0; i < v->elements->len; i++) {
            g_string_append(out, sep);
            append_newline(out, pretty, level + 1);
            append_value(out, g_ptr_array_index(v->elements, i), pretty, level + 1);
            sep = comma;
        }
        if (v->elements->len || pretty) {
            append_newline(out, pretty, level);
        }
        g_string_append_c(out, ']');
        break;
    }
}

char *qblk_json_to_string(const QblkJson *value, bool pretty)
{
    GString *out = g_string_new(NULL);

    append_value(out, value, pretty, 0);
    return g_string_free(out, FALSE);
}

void qblk_json_print(FILE *f, const QblkJson *value)
{
    g_autofree char *text = qblk_json_to_string(value, true);

    fprintf(f, "%s\n", text);
}

/* ----- Human dump ----- */

static bool is_composite(const QblkJson *v)
{
    return v->type == QBLK_JSON_OBJECT || v->type == QBLK_JSON_ARRAY;
}

static void dump_scalar(FILE *f, const QblkJson *v)
{
    switch (v->type) {
    case QBLK_JSON_NULL:
        fputs("null", f);
        break;
    case QBLK_JSON_BOOL:
        fputs(v->b ? "true" : "false", f);
        break;
    case QBLK_JSON_INT:
        fprintf(f, "%" PRId64, v->i);
        break;
    case QBLK_JSON_UINT:
        fprintf(f, "%" PRIu64, v->u);
        break;
    case QBLK_JSON_DOUBLE:
        fprintf(f, "%.17g", v->d);
        break;
    case QBLK_JSON_STRING:
        fputs(v->s, f);
        break;
    default:
        g_assert_not_reached();
    }
}

/* Prints the label's value: a scalar on the label's line, a composite on
 * the following lines, one level deeper. */
static void dump_child(FILE *f, const QblkJson *v, int indent)
{
    if (is_composite(v)) {
        fputc('\n', f);
        qblk_json_dump_human(f, v, indent + 1);
    } else {
        fputc(' ', f);
        dump_scalar(f, v);
        fputc('\n', f);
    }
}

void qblk_json_dump_human(FILE *f, const QblkJson *value, int indent)
{
    if (value->type == QBLK_JSON_ARRAY) {
        for (guint i = 0; i < value->elements->len; i++) {
            fprintf(f, "%*s[%u]:", indent * 4, "", i);
            dump_child(f, g_ptr_array_index(value->elements, i), indent);
        }
    } else if (value->type == QBLK_JSON_OBJECT) {
        guint n;
        g_autofree QblkJsonMember **members = members_in_print_order(value, &n);

        for (guint i = 0; i < n; i++) {
            g_autofree char *label = g_strdelimit(g_strdup(members[i]->key), "-", ' ');

            fprintf(f, "%*s%s:", indent * 4, "", label);
            dump_child(f, members[i]->value, indent);
        }
    } else {
        dump_scalar(f, value);
        fputc('\n', f);
    }
}

/* One value of format-specific information: a scalar, a list (av, as,
 * aa{sv}) or a nested dictionary (a{sv}). */
static QblkJson *json_from_variant(GVariant *value)
{
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN)) {
        return qblk_json_bool(g_variant_get_boolean(value));
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)) {
        return qblk_json_int(g_variant_get_int64(value));
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
        return qblk_json_string(g_variant_get_string(value, NULL));
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARDICT)) {
        QblkJson *obj = qblk_json_object();
        GVariantIter iter;
        const char *key;
        GVariant *member;

        g_variant_iter_init(&iter, value);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &member)) {
            QblkJson *m = json_from_variant(member);

            if (m) {
                qblk_json_set(obj, key, m);
            }
        }
        return obj;
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
        g_autoptr(GVariant) inner = g_variant_get_variant(value);

        return json_from_variant(inner);
    }
    if (g_variant_is_of_type(value, G_VARIANT_TYPE_ARRAY)) {
        QblkJson *arr = qblk_json_array();
        gsize n = g_variant_n_children(value);

        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
            QblkJson *c = json_from_variant(child);

            if (c) {
                qblk_json_append(arr, c);
            }
        }
        return arr;
    }
    return NULL;
}

QblkJson *qblk_json_from_specific_info(GVariant *v)
{
    g_autoptr(GVariant) data = NULL;
    const char *type;
    QblkJson *obj = qblk_json_object();

    g_variant_get(v, "(&s@a{sv})", &type, &data);
    qblk_json_set_str(obj, "type", type);
    qblk_json_set(obj, "data", json_from_variant(data));
    return obj;
}
