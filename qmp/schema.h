/* The QAPI schema the command files declare (qmp_schema_add), resolved
 * into type descriptions that drive argument checking (dispatch.c),
 * query-commands and query-qmp-schema. Private to qmp/. */
#ifndef QBLK_QMP_SCHEMA_H
#define QBLK_QMP_SCHEMA_H

#include "qmp/qmp.h"

typedef enum {
    QMP_TYPE_BUILTIN,
    QMP_TYPE_ENUM,
    QMP_TYPE_STRUCT,
    QMP_TYPE_UNION,
    QMP_TYPE_ALTERNATE,
    QMP_TYPE_ARRAY,
} QmpTypeKind;

/* What JSON a built-in type accepts. */
typedef enum {
    QMP_BUILTIN_STR,
    QMP_BUILTIN_INT,               /* int, int8..int64: an integer within int64 */
    QMP_BUILTIN_UINT,              /* uint8..uint64, size: any integer */
    QMP_BUILTIN_NUMBER,            /* any number */
    QMP_BUILTIN_BOOL,
    QMP_BUILTIN_NULL,
    QMP_BUILTIN_ANY,
} QmpBuiltin;

typedef struct QmpType QmpType;

typedef struct QmpMember {
    char *name;                    /* alternates: the branch name; unions' variants: the case */
    bool optional;
    char *type_name;
    QmpType *type;                 /* resolved by qmp_schema_finish() */
} QmpMember;

struct QmpType {
    QmpTypeKind kind;
    char *name;                    /* NULL for a command's or event's inline data */
    QmpBuiltin builtin;
    int bits;                      /* int8..int32, uint8..uint32: range checked; else 0 */
    GPtrArray *values;             /* enum: char* */
    GPtrArray *members;            /* struct, union (base members first), alternate: QmpMember* */
    char *base_name;               /* struct's 'base', union's named base */
    char *discriminator;           /* union */
    GPtrArray *variants;           /* union: QmpMember* (name = case, type a struct) */
    QmpType *element;              /* array */
    bool resolved;
};

typedef struct QmpCommandDef {
    char *name;
    QmpType *args;                 /* NULL: takes no arguments */
    bool boxed;
    QmpType *ret;                  /* NULL: returns {} */
    QmpCommandFunc *fn;            /* NULL until registered */
    char *args_ref, *ret_ref;      /* type names until resolved */
} QmpCommandDef;

/* Resolves every type reference (aborts on an unknown type: a bug).
 * Idempotent; qmp_schema_add afterwards needs another call. */
void qmp_schema_finish(void);

/* The command, or NULL. */
QmpCommandDef *qmp_schema_command(const char *name);
/* Every command in definition order (QmpCommandDef*). */
GPtrArray *qmp_schema_commands(void);
/* A named type, or NULL. */
QmpType *qmp_schema_type(const char *name);

/* query-qmp-schema's return value: QEMU 7.2's SchemaInfo list (commands
 * without a registered handler left out, as query-commands does). */
QblkJson *qmp_schema_introspect(void);

#endif
