/* How the tools show what the library reports instead of printing: check
 * findings and corruption events, in QEMU 7.2's words. */
#ifndef QBLK_TOOLS_COMMON_EVENTS_H
#define QBLK_TOOLS_COMMON_EVENTS_H

#include "qblk/block.h"
#include "util/warn.h"

/* A BdrvCheckReportFunc: the finding's line on stderr. */
void tools_print_check_message(void *opaque, BdrvCheckMsgKind kind, const char *msg);
/* A BdrvCorruptionFunc: qemu-img's/qemu-io's "<prog>: qcow2: ..." line. */
void tools_print_corruption(void *opaque, const BdrvCorruptionEvent *ev);
/* A QblkWarnFunc: "<prog>: warning: <msg>". */
void tools_print_warning(void *opaque, const char *msg);

#endif
