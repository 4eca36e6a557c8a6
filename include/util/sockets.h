/* Listening sockets the servers share (the QMP monitor, the NBD server). */
#ifndef QBLK_UTIL_SOCKETS_H
#define QBLK_UTIL_SOCKETS_H

#include <glib.h>

/* A non-blocking, close-on-exec unix socket listening at path (a stale
 * file there is replaced). The fd, or -1 with *errp set in QEMU's words. */
int qblk_listen_unix(const char *path, int backlog, GError **errp);

#endif
