/* The readers command handlers use on arguments the dispatcher checked
 * (apart from dispatch.c, so unit tests of a command file can link them
 * without the monitor). */
#include <string.h>

#include "qmp/qmp.h"

bool qmp_arg_has(const QblkJson *args, const char *name)
{
    return qblk_json_get(args, name) != NULL;
}

const char *qmp_arg_str(const QblkJson *args, const char *name)
{
    QblkJson *v = qblk_json_get(args, name);

    return v && qblk_json_type(v) == QBLK_JSON_STRING ? qblk_json_get_string(v) : NULL;
}

int64_t qmp_arg_int(const QblkJson *args, const char *name, int64_t def)
{
    QblkJson *v = qblk_json_get(args, name);

    return v ? qblk_json_get_int(v) : def;
}

bool qmp_arg_bool(const QblkJson *args, const char *name, bool def)
{
    QblkJson *v = qblk_json_get(args, name);

    return v ? qblk_json_get_bool(v) : def;
}

int qmp_arg_enum(const QblkJson *args, const char *name, const char *const *names, int def)
{
    const char *s = qmp_arg_str(args, name);

    for (int i = 0; s && names[i]; i++) {
        if (!strcmp(names[i], s)) {
            return i;
        }
    }
    return def;
}
