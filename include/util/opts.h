/* Key=value option sets ("a=b,c=d", ",," escapes a comma) for open,
 * create and --image-opts. Drivers "take" the keys they understand; keys
 * left over after open are reported as unsupported. */
#ifndef QBLK_UTIL_OPTS_H
#define QBLK_UTIL_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* Keys and values are owned (g_strdup) by the set; insertion order kept. */
typedef struct QblkOpts QblkOpts;

QblkOpts *qblk_opts_new(void);
void qblk_opts_free(QblkOpts *opts);
QblkOpts *qblk_opts_copy(const QblkOpts *opts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QblkOpts, qblk_opts_free)

/* Parses "k=v,k2=v2" into opts. A first element without '=' is stored
 * under implied_key when that is non-NULL, else it is an error. An empty
 * string or an empty element is an error ("Invalid option list: ..."). */
bool qblk_opts_parse(QblkOpts *opts, const char *str, const char *implied_key,
                     GError **errp);

/* qemu-img's check of an -o argument before anything is parsed: not
 * empty, no leading comma, an even run of trailing commas (",," is a
 * literal comma). */
bool qblk_opts_valid_list(const char *str);
/* True if one element of the list is exactly "help" or "?" (QEMU's
 * has_help_option). */
bool qblk_opts_has_help(const char *list);
/* One element of a QemuOpts list (create's and amend's -o) at p:
 * "key=value" (",," a literal comma), or a flag: "name" is name=on,
 * "noname" name=off. Sets *key and *value (caller frees) and returns
 * the position after the element (at its ',' or the end). */
const char *qblk_opts_next_element(const char *p, char **key, char **value);

void qblk_opts_set(QblkOpts *opts, const char *key, const char *value);
const char *qblk_opts_get(const QblkOpts *opts, const char *key);
bool qblk_opts_has(const QblkOpts *opts, const char *key);
/* Removes key; returns its value (caller frees) or NULL. */
char *qblk_opts_take(QblkOpts *opts, const char *key);
/* Removes key and parses it; *out = def when absent. "on/off/true/false". */
bool qblk_opts_take_bool(QblkOpts *opts, const char *key, bool def, bool *out,
                         GError **errp);
/* Size with qemu's suffixes (qblk_strtosz). */
bool qblk_opts_take_size(QblkOpts *opts, const char *key, int64_t def,
                         int64_t *out, GError **errp);
/* Moves every "prefix.rest" key into a new set as "rest". */
QblkOpts *qblk_opts_take_prefix(QblkOpts *opts, const char *prefix);
/* Keys in insertion order (NULL-terminated, free with g_free, not g_strfreev). */
const char **qblk_opts_keys(const QblkOpts *opts, guint *n);
guint qblk_opts_count(const QblkOpts *opts);

#endif
