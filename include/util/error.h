/* Error helpers for the control path (GError, one domain whose codes map
 * onto QMP's error classes) and the mapping of host "not supported"
 * errnos on the I/O path. */
#ifndef QBLK_UTIL_ERROR_H
#define QBLK_UTIL_ERROR_H

#include <glib.h>

#define QBLK_ERROR qblk_error_quark()
GQuark qblk_error_quark(void);

/* Error codes in QBLK_ERROR; the message is what a person reads, the code
 * says which QMP error class a monitor reports (qblk_error_class). QMP
 * knows five classes and puts nearly everything in GenericError, so the
 * first three codes (kept apart for callers that test them) all map
 * there. */
typedef enum {
    QBLK_ERROR_FAILED,              /* GenericError */
    QBLK_ERROR_NOT_SUPPORTED,       /* GenericError */
    QBLK_ERROR_INVALID,             /* GenericError */
    QBLK_ERROR_COMMAND_NOT_FOUND,   /* CommandNotFound: no such command, or not yet */
    QBLK_ERROR_DEVICE_NOT_ACTIVE,   /* DeviceNotActive: e.g. no such block job */
    QBLK_ERROR_DEVICE_NOT_FOUND,    /* DeviceNotFound: no such device or node */
    QBLK_ERROR_KVM_MISSING_CAP,     /* KVMMissingCap: listed for completeness */
} QblkErrorCode;

/* The QMP class name ("GenericError", "DeviceNotFound", ...) of err:
 * its code's class for QBLK_ERROR, "GenericError" for any other domain
 * or code (and for NULL). Static string. */
const char *qblk_error_class(const GError *err);

/* Sets *errp (if errp) to a QBLK_ERROR_FAILED error with printf-style text. */
void qblk_error_set(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* The same with the given code (hence QMP class). */
void qblk_error_set_code(GError **errp, QblkErrorCode code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* The same, with ": <strerror(errnum)>" appended. errnum is positive. */
void qblk_error_set_errno(GError **errp, int errnum, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Prefixes an existing error's message: "<prefix><old message>". */
void qblk_error_prepend(GError **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Maps the different errnos with which kernels and filesystems say "not
 * supported" (EOPNOTSUPP, ENOTTY, ENOSYS) to -ENOTSUP; returns others
 * unchanged. ret is a negative errno. EINVAL is left alone: it also means
 * a genuinely bad request, so only a caller that knows its fallocate mode
 * is the sole suspect (e.g. an old kernel without ZERO_RANGE) may treat
 * it as "not supported". */
int qblk_errno_not_supported(int ret);

/* ----- Reporting for the tools (stderr) ----- */

/* Remembers basename(argv0) as the prefix of every report. */
void qblk_set_progname(const char *argv0);
/* The name set above, or "qblk" before it is set. */
const char *qblk_progname(void);
/* "<progname>: <msg>\n" on stderr. */
void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* "<progname>: warning: <msg>\n" on stderr. */
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Reports err->message like error_report, then frees err (NULL: no-op). */
void error_report_err(GError *err);

#endif
