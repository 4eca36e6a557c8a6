/* The daemon's command-line form of a QAPI type: dotted keys typed by the
 * schema (or a JSON object), checked as QMP arguments are. */
#ifndef QBLK_QMP_KEYVAL_H
#define QBLK_QMP_KEYVAL_H

#include "qmp/qmp.h"

/* arg as qemu-storage-daemon takes an option's value: "{...}" is JSON,
 * anything else "key=value,a.b=c" with implied_key (may be NULL) naming a
 * leading bare value. Values become the types type_name's members declare
 * (on/off/yes/no/true/false for bool, integers); the result passed the
 * schema check of type_name. NULL with *errp set otherwise. */
QblkJson *qmp_keyval_parse(const char *arg, const char *implied_key, const char *type_name,
                           GError **errp);

#endif
