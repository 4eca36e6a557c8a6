/* Trace point control and the stderr log backend (the USDT backend needs
 * no run-time code: the probes are compiled into each trace_* function). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <glib.h>
#include "trace/control.h"
#include "util/error.h"

bool qblk_trace_enable(const char *pattern)
{
    bool matched = false;

    if (g_str_has_prefix(pattern, "enable=")) {
        pattern += strlen("enable=");
    }
    if (strcmp(pattern, "list") == 0 || strcmp(pattern, "help") == 0) {
        for (unsigned i = 0; i < qblk_trace_event_count; i++) {
            printf("%s\n", qblk_trace_event_names[i]);
        }
        return true;
    }
    for (unsigned i = 0; i < qblk_trace_event_count; i++) {
        if (g_pattern_match_simple(pattern, qblk_trace_event_names[i])) {
            qblk_trace_state[i] = true;
            matched = true;
        }
    }
    if (!matched) {
        warn_report("trace event '%s' does not exist", pattern);
    }
    return matched;
}

void qblk_trace_log(const char *name, const char *fmt, ...)
{
    struct timeval tv;
    va_list ap;

    gettimeofday(&tv, NULL);
    /* One fprintf per part would interleave with other threads' output;
     * build the line first. */
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%d@%ld.%06ld:%s %s", (int)getpid(), (long)tv.tv_sec,
            (long)tv.tv_usec, name, msg);
}
