/* A small JSON value tree for qblk-img's machine-readable output, printed
 * the way qemu-img 7.2 prints its QObjects (info, check, measure, ...).
 *
 * Why not json-glib: qemu-img's key order is not the insertion order. It
 * builds a QDict (a 512-bucket hash table) and prints it bucket by bucket,
 * so an object here remembers insertion order and is reordered with
 * qblk_qdict_order() when printed. Objects created with
 * img_json_object_ordered() keep insertion order instead (for output that
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
 * img_json_free() frees a whole tree. */
#ifndef QBLK_TOOLS_IMG_JSON_H
#define QBLK_TOOLS_IMG_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <glib.h>
#include "qblk/block.h"

typedef enum {
    IMG_JSON_NULL,
    IMG_JSON_BOOL,
    IMG_JSON_INT,      /* int64_t */
    IMG_JSON_UINT,     /* uint64_t */
    IMG_JSON_DOUBLE,
    IMG_JSON_STRING,
    IMG_JSON_OBJECT,
    IMG_JSON_ARRAY,
} ImgJsonType;

typedef struct ImgJson ImgJson;

/* ----- Constructors (each returns a new tree the caller owns) ----- */

ImgJson *img_json_null(void);
ImgJson *img_json_bool(bool value);
ImgJson *img_json_int(int64_t value);
ImgJson *img_json_uint(uint64_t value);
ImgJson *img_json_double(double value);
ImgJson *img_json_string(const char *value);
/* An object printed in QDict order, as qemu-img prints QAPI objects. */
ImgJson *img_json_object(void);
/* An object printed in insertion order. */
ImgJson *img_json_object_ordered(void);
ImgJson *img_json_array(void);

/* A deep copy (same key orders). */
ImgJson *img_json_copy(const ImgJson *value);
void img_json_free(ImgJson *value);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImgJson, img_json_free)

/* ----- Building ----- */

/* Sets obj[key] = value, taking value. Replacing an existing key keeps the
 * key's original insertion position (as qdict_put does). Returns value. */
ImgJson *img_json_set(ImgJson *obj, const char *key, ImgJson *value);
void img_json_set_str(ImgJson *obj, const char *key, const char *value);
void img_json_set_int(ImgJson *obj, const char *key, int64_t value);
void img_json_set_bool(ImgJson *obj, const char *key, bool value);
/* Appends value (taken) to arr. Returns value. */
ImgJson *img_json_append(ImgJson *arr, ImgJson *value);

/* ----- Reading ----- */

ImgJsonType img_json_type(const ImgJson *value);
/* obj[key] (borrowed) or NULL. */
ImgJson *img_json_get(const ImgJson *obj, const char *key);
/* Number of members of an object or elements of an array. */
guint img_json_size(const ImgJson *value);

/* ----- Output ----- */

/* The JSON text (caller frees), pretty as qobject_to_json_pretty or compact
 * as qobject_to_json. No trailing newline. */
char *img_json_to_string(const ImgJson *value, bool pretty);
/* Pretty form followed by "\n", as qemu-img prints its JSON documents. */
void img_json_print(FILE *f, const ImgJson *value);
/* qemu-img's human form of a QAPI object (the "Format specific
 * information" block): one "key: value" line per scalar member, '-' in keys
 * shown as ' ', nested objects and lists ("[i]:") one level deeper, each
 * level indent * 4 spaces. value must be an object or an array. */
void img_json_dump_human(FILE *f, const ImgJson *value, int indent);
/* info's "snapshots" array. */
ImgJson *img_snapshots_to_json(const BdrvSnapshotInfo *list, int n);
/* {type, data} from bdrv_get_specific_info()'s "(sa{sv})". */
ImgJson *img_json_from_specific_info(GVariant *v);

#endif
