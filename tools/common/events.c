/* The tools' printers for what the library reports through callbacks
 * (check findings, corruption events, warnings), with QEMU 7.2's text. */
#include <stdio.h>

#include "tools/common/events.h"
#include "util/error.h"

void tools_print_check_message(void *opaque, BdrvCheckMsgKind kind, const char *msg)
{
    /* qemu-img prints every kind the same way: the line as it is. */
    fprintf(stderr, "%s\n", msg);
}

void tools_print_corruption(void *opaque, const BdrvCorruptionEvent *ev)
{
    if (ev->marked) {
        error_report("%s: Marking image as corrupt: %s; further corruption events will "
                     "be suppressed", ev->format, ev->msg);
    } else {
        error_report("%s: Image is corrupt: %s", ev->format, ev->msg);
    }
}

void tools_print_warning(void *opaque, const char *msg)
{
    warn_report("%s", msg);
}
