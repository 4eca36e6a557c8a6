/* A small JSON value tree for machine-readable output (qblk-img, later QMP), printed
 * the way qemu-img 7.2 prints its QObjects (info, check, measure, ...).
 *
 * Why not json-glib: qemu-img's key order is not the insertion order. It
 * builds a QDict (a 512-bucket hash table) and prints it bucket by bucket,
 * so an object here remembers insertion order and is reordered with
 * qblk_qdict_order() when printed. Objects created with
 * qblk_json_object_ordered() keep insertion order instead (for output that
 * qemu-img prints field by field, like `map --output=json`).
 *
 * Layout of the pretty form (qobject_to_json_pretty): 4 spaces per level,
 * `"key": value`, members separated by ",\n", an empty object or array as
 * `{}` / `[]`. The compact form separates with ", " and has no newlines.
 * Strings are escaped like QEMU's qjson: `\"`, `\\`, `\b \f \n \r \t`,
 * every other code point below 0x20 or from 0x7F on as `\uXXXX` (upper-case
 * hex, surrogate pairs beyond the BMP); invalid (modified) UTF-8 becomes
 * `\uFFFD`.
 *
 * Ownership: a value added to an object or array belongs to it;
 * qblk_json_free() frees a whole tree. */
#ifndef QBLK_TOOLS_QBLK_JSON_H
#define QBLK_TOOLS_QBLK_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>

typedef enum {
    QBLK_JSON_NULL,
    QBLK_JSON_BOOL,
    QBLK_JSON_INT,      /* int64_t */
    QBLK_JSON_UINT,     /* uint64_t */
    QBLK_JSON_DOUBLE,
    QBLK_JSON_STRING,
    QBLK_JSON_OBJECT,
    QBLK_JSON_ARRAY,
} QblkJsonType;

typedef struct QblkJson QblkJson;

/* ----- Constructors (each returns a new tree the caller owns) ----- */

QblkJson *qblk_json_null(void);
QblkJson *qblk_json_bool(bool value);
QblkJson *qblk_json_int(int64_t value);
QblkJson *qblk_json_uint(uint64_t value);
QblkJson *qblk_json_double(double value);
QblkJson *qblk_json_string(const char *value);
/* An object printed in QDict order, as qemu-img prints QAPI objects. */
QblkJson *qblk_json_object(void);
/* An object printed in insertion order. */
QblkJson *qblk_json_object_ordered(void);
QblkJson *qblk_json_array(void);

/* A deep copy (same key orders). */
QblkJson *qblk_json_copy(const QblkJson *value);
void qblk_json_free(QblkJson *value);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QblkJson, qblk_json_free)

/* ----- Building ----- */

/* Sets obj[key] = value, taking value. Replacing an existing key keeps the
 * key's original insertion position (as qdict_put does). Returns value. */
QblkJson *qblk_json_set(QblkJson *obj, const char *key, QblkJson *value);
void qblk_json_set_str(QblkJson *obj, const char *key, const char *value);
void qblk_json_set_int(QblkJson *obj, const char *key, int64_t value);
void qblk_json_set_bool(QblkJson *obj, const char *key, bool value);
/* Appends value (taken) to arr. Returns value. */
QblkJson *qblk_json_append(QblkJson *arr, QblkJson *value);

/* ----- Reading ----- */

QblkJsonType qblk_json_type(const QblkJson *value);
/* obj[key] (borrowed) or NULL. */
QblkJson *qblk_json_get(const QblkJson *obj, const char *key);
/* Number of members of an object or elements of an array. */
guint qblk_json_size(const QblkJson *value);
/* Scalars' values; each asserts the type (QBLK_JSON_INT and _UINT both
 * read as integers, a UINT above INT64_MAX clamps). */
const char *qblk_json_get_string(const QblkJson *value);
int64_t qblk_json_get_int(const QblkJson *value);
bool qblk_json_get_bool(const QblkJson *value);
double qblk_json_get_double(const QblkJson *value); /* any number */
/* The i-th member of an object in insertion order (key and value
 * borrowed), or the i-th element of an array (key NULL). */
QblkJson *qblk_json_nth(const QblkJson *value, guint i, const char **key);
/* Removes obj[key] and returns it (the caller owns it), or NULL. */
QblkJson *qblk_json_take(QblkJson *obj, const char *key);

/* ----- Output ----- */

/* The JSON text (caller frees), pretty as qobject_to_json_pretty or compact
 * as qobject_to_json. No trailing newline. */
char *qblk_json_to_string(const QblkJson *value, bool pretty);
/* Pretty form followed by "\n", as qemu-img prints its JSON documents. */
void qblk_json_print(FILE *f, const QblkJson *value);
/* qemu-img's human form of a QAPI object (the "Format specific
 * information" block): one "key: value" line per scalar member, '-' in keys
 * shown as ' ', nested objects and lists ("[i]:") one level deeper, each
 * level indent * 4 spaces. value must be an object or an array. */
void qblk_json_dump_human(FILE *f, const QblkJson *value, int indent);
/* {type, data} from bdrv_get_specific_info()'s "(sa{sv})". */
QblkJson *qblk_json_from_specific_info(GVariant *v);

#endif
