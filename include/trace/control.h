/* Run-time control of trace points: which are enabled, and the stderr log
 * backend they write to. The points themselves are generated. */
#ifndef QBLK_TRACE_CONTROL_H
#define QBLK_TRACE_CONTROL_H

#include <stdbool.h>

extern bool qblk_trace_state[];
extern const char *const qblk_trace_event_names[];
extern const unsigned qblk_trace_event_count;

/* Enables every trace point whose name matches the glob. "list" prints
 * the names instead. Accepts qemu's "enable=PATTERN" form too. Returns
 * false (after printing an error) when nothing matched. */
bool qblk_trace_enable(const char *pattern);
/* Writes "<pid>@<seconds>.<usec>:<name> <message>" to stderr. */
void qblk_trace_log(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
