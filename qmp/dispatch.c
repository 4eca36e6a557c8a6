/* Placeholder until the monitor lands: registration entry points. */
#include <string.h>

#include "qmp/qmp.h"

void qmp_schema_add(const char *qapi_text)
{
    (void)qapi_text;
}

void qmp_register_commands(const QmpCommand *cmds, size_t n)
{
    (void)cmds;
    (void)n;
}

void qmp_event_emit(const char *name, QblkJson *data)
{
    (void)name;
    qblk_json_free(data);
}

bool qmp_arg_has(const QblkJson *args, const char *name)
{
    return qblk_json_get(args, name) != NULL;
}

const char *qmp_arg_str(const QblkJson *args, const char *name)
{
    QblkJson *v = qblk_json_get(args, name);

    return v ? qblk_json_get_string(v) : NULL;
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
