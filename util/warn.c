/* The library's warnings, delivered to the handler the program sets
 * (see util/warn.h) rather than printed. */
#include "util/warn.h"

static QblkWarnFunc *warn_handler;
static void *warn_opaque;

void qblk_set_warn_handler(QblkWarnFunc *fn, void *opaque)
{
    warn_handler = fn;
    warn_opaque = opaque;
}

void qblk_warn(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (!warn_handler) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    warn_handler(warn_opaque, msg);
}
