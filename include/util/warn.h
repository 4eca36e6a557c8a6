/* Warnings the library has for a person (QEMU's deprecation notices),
 * handed to the program instead of printed: the library never prints. */
#ifndef QBLK_UTIL_WARN_H
#define QBLK_UTIL_WARN_H

#include <glib.h>

/* msg: the warning's text, without "warning: " or a newline; valid
 * during the call only. */
typedef void QblkWarnFunc(void *opaque, const char *msg);
/* The process's warning handler (NULL: warnings are dropped). The tools
 * print them with warn_report; the daemon will log them. */
void qblk_set_warn_handler(QblkWarnFunc *fn, void *opaque);
/* Hands one warning to the handler. */
void qblk_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#endif
