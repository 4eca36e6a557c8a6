/* GError helpers for the control path, the "not supported" errno mapping
 * for the I/O path, and the stderr reports the tools print. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "util/error.h"

G_DEFINE_QUARK(qblk-error-quark, qblk_error)

/* QMP's names, indexed by QblkErrorCode. */
static const char *const error_classes[] = {
    [QBLK_ERROR_FAILED] = "GenericError",
    [QBLK_ERROR_NOT_SUPPORTED] = "GenericError",
    [QBLK_ERROR_INVALID] = "GenericError",
    [QBLK_ERROR_COMMAND_NOT_FOUND] = "CommandNotFound",
    [QBLK_ERROR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
    [QBLK_ERROR_DEVICE_NOT_FOUND] = "DeviceNotFound",
    [QBLK_ERROR_KVM_MISSING_CAP] = "KVMMissingCap",
};

const char *qblk_error_class(const GError *err)
{
    if (err && err->domain == QBLK_ERROR && err->code >= 0 &&
        err->code < (int)G_N_ELEMENTS(error_classes)) {
        return error_classes[err->code];
    }
    return "GenericError";
}

/* errnum 0: the message alone; otherwise ": strerror(errnum)" follows. */
static void error_setv(GError **errp, QblkErrorCode code, int errnum, const char *fmt,
                       va_list ap)
{
    g_autofree char *msg = NULL;

    if (!errp) {
        return;
    }
    msg = g_strdup_vprintf(fmt, ap);
    if (errnum) {
        /* g_strerror is thread-safe and never returns NULL, unlike strerror. */
        g_set_error(errp, QBLK_ERROR, code, "%s: %s", msg, g_strerror(errnum));
    } else {
        g_set_error_literal(errp, QBLK_ERROR, code, msg);
    }
}

void qblk_error_set(GError **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, QBLK_ERROR_FAILED, 0, fmt, ap);
    va_end(ap);
}

void qblk_error_set_code(GError **errp, QblkErrorCode code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, code, 0, fmt, ap);
    va_end(ap);
}

void qblk_error_set_errno(GError **errp, int errnum, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_setv(errp, QBLK_ERROR_FAILED, errnum, fmt, ap);
    va_end(ap);
}

void qblk_error_prepend(GError **errp, const char *fmt, ...)
{
    va_list ap;
    char *prefix, *msg;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strconcat(prefix, (*errp)->message, NULL);
    g_free((*errp)->message);
    (*errp)->message = msg;
    g_free(prefix);
}

int qblk_errno_not_supported(int ret)
{
    /* On Linux ENOTSUP == EOPNOTSUPP; the case still matters elsewhere. */
    switch (ret) {
    case -EOPNOTSUPP:
    case -ENOTTY:
    case -ENOSYS:
        return -ENOTSUP;
    default:
        return ret;
    }
}

static char *progname;

void qblk_set_progname(const char *argv0)
{
    g_free(progname);
    progname = argv0 ? g_path_get_basename(argv0) : NULL;
}

const char *qblk_progname(void)
{
    return progname ? progname : "qblk";
}

/* One fprintf per report so concurrent writers do not interleave mid-line. */
static void report(const char *kind, const char *fmt, va_list ap)
{
    char *msg = g_strdup_vprintf(fmt, ap);

    fprintf(stderr, "%s: %s%s\n", qblk_progname(), kind, msg);
    g_free(msg);
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("", fmt, ap);
    va_end(ap);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report("warning: ", fmt, ap);
    va_end(ap);
}

void error_report_err(GError *err)
{
    if (!err) {
        return;
    }
    error_report("%s", err->message);
    g_error_free(err);
}
