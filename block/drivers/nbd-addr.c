/* The nbd driver's names for an export: URIs (nbd://HOST[:PORT]/EXPORT,
 * nbd+unix:///EXPORT?socket=PATH), legacy "nbd:" filenames and the
 * server.* / export options they become, with QEMU's error texts. */
#include <errno.h>
#include <string.h>
#include "block/drivers/nbd.h"

#define NBD_DEFAULT_PORT "10809"

void nbd_addr_clear(NbdAddr *addr)
{
    g_free(addr->path);
    g_free(addr->host);
    g_free(addr->port);
    g_free(addr->export);
    memset(addr, 0, sizeof(*addr));
}

/* "scheme://[host[:port]]/[export][?socket=PATH]". QEMU answers every
 * malformed URI with the same text. */
static bool nbd_parse_uri(const char *uri, QblkOpts *options, GError **errp)
{
    const char *rest = strstr(uri, "://");
    g_autofree char *scheme = NULL, *authority = NULL, *path = NULL, *query = NULL;
    g_autofree char *export = NULL, *socket = NULL;
    bool is_unix;
    const char *p, *q;

    if (!rest) {
        goto invalid;
    }
    scheme = g_strndup(uri, rest - uri);
    if (strcmp(scheme, "nbd") == 0 || strcmp(scheme, "nbd+tcp") == 0) {
        is_unix = false;
    } else if (strcmp(scheme, "nbd+unix") == 0) {
        is_unix = true;
    } else {
        goto invalid;
    }
    p = rest + 3;
    q = p + strcspn(p, "/?#");
    authority = g_strndup(p, q - p);
    p = q;
    if (*p == '#') {
        goto invalid;
    }
    q = p + strcspn(p, "?#");
    path = g_strndup(p, q - p);
    p = q;
    if (*p == '?') {
        q = p + 1 + strcspn(p + 1, "#");
        query = g_strndup(p + 1, q - p - 1);
        p = q;
    }
    if (*p) {
        goto invalid;               /* a fragment */
    }

    /* The export is the path after its leading '/', URI-decoded. */
    export = g_uri_unescape_string(path[0] == '/' ? path + 1 : path, NULL);
    if (!export) {
        goto invalid;
    }

    if (is_unix) {
        /* Exactly one parameter, socket=PATH, and no host. */
        if (*authority || !query || !g_str_has_prefix(query, "socket=") ||
            strchr(query, '&') || strchr(query, ';')) {
            goto invalid;
        }
        socket = g_uri_unescape_string(query + strlen("socket="), NULL);
        if (!socket || !*socket) {
            goto invalid;
        }
        qblk_opts_set(options, "server.type", "unix");
        qblk_opts_set(options, "server.path", socket);
    } else {
        g_autofree char *host = NULL;
        const char *port = NULL;
        char *colon;

        if ((query && *query) || !*authority) {
            goto invalid;
        }
        host = g_strdup(authority);
        if (host[0] == '[') {
            char *end = strchr(host, ']');

            if (!end) {
                goto invalid;
            }
            *end = '\0';
            memmove(host, host + 1, strlen(host + 1) + 1);
            colon = end[1] == ':' ? end + 1 : NULL;
        } else {
            colon = strrchr(host, ':');
            if (colon) {
                *colon = '\0';
            }
        }
        if (colon) {
            port = host[0] == '\0' ? NULL : colon + 1;
            if (!port || !*port) {
                goto invalid;
            }
        }
        if (!*host) {
            goto invalid;
        }
        qblk_opts_set(options, "server.type", "inet");
        qblk_opts_set(options, "server.host", host);
        qblk_opts_set(options, "server.port", port ? port : NBD_DEFAULT_PORT);
    }
    if (*export) {
        qblk_opts_set(options, "export", export);
    }
    return true;

invalid:
    qblk_error_set(errp, "No valid URL specified");
    return false;
}

/* "nbd:unix:PATH[:exportname=E]" or "nbd:HOST:PORT[:exportname=E]". */
static bool nbd_parse_legacy(const char *filename, QblkOpts *options, GError **errp)
{
    g_autofree char *spec = g_strdup(filename + strlen("nbd:"));
    char *export = strstr(spec, ":exportname=");
    char *colon;

    if (export) {
        *export = '\0';
        qblk_opts_set(options, "export", export + strlen(":exportname="));
    }
    if (!*spec) {
        return true;                /* open says the address is missing */
    }
    if (g_str_has_prefix(spec, "unix:")) {
        qblk_opts_set(options, "server.type", "unix");
        qblk_opts_set(options, "server.path", spec + strlen("unix:"));
        return true;
    }
    colon = strrchr(spec, ':');
    if (!colon || colon == spec) {
        qblk_error_set(errp, "error parsing address '%s'", spec);
        return false;
    }
    *colon = '\0';
    qblk_opts_set(options, "server.type", "inet");
    qblk_opts_set(options, "server.host", spec);
    qblk_opts_set(options, "server.port", colon + 1);
    return true;
}

bool nbd_parse_filename(const char *filename, QblkOpts *options, GError **errp)
{
    if (qblk_opts_has(options, "server.type") || qblk_opts_has(options, "export")) {
        qblk_error_set(errp, "host/port/export/path and a file name may not be "
                       "specified at the same time");
        return false;
    }
    if (strstr(filename, "://")) {
        return nbd_parse_uri(filename, options, errp);
    }
    if (g_str_has_prefix(filename, "nbd:")) {
        return nbd_parse_legacy(filename, options, errp);
    }
    qblk_error_set(errp, "No valid URL specified");
    return false;
}

bool nbd_addr_take(QblkOpts *options, NbdAddr *addr, GError **errp)
{
    g_autofree char *filename = qblk_opts_take(options, "filename");
    g_autofree char *type = NULL;

    /* driver=nbd,filename=URI: the same as naming the URI. */
    if (filename && !nbd_parse_filename(filename, options, errp)) {
        return false;
    }
    type = qblk_opts_take(options, "server.type");
    addr->export = qblk_opts_take(options, "export");
    if (!addr->export) {
        addr->export = g_strdup("");
    }
    if (!type) {
        if (qblk_opts_has(options, "server.path") || qblk_opts_has(options, "server.host")) {
            qblk_error_set(errp, "Parameter 'type' is missing");
        } else {
            qblk_error_set(errp, "NBD server address missing");
        }
        return false;
    }
    if (strcmp(type, "unix") == 0) {
        addr->type = NBD_ADDR_UNIX;
        addr->path = qblk_opts_take(options, "server.path");
        if (!addr->path) {
            qblk_error_set(errp, "Parameter 'path' is missing");
            return false;
        }
    } else if (strcmp(type, "inet") == 0) {
        addr->type = NBD_ADDR_INET;
        addr->host = qblk_opts_take(options, "server.host");
        addr->port = qblk_opts_take(options, "server.port");
        if (!addr->host) {
            qblk_error_set(errp, "Parameter 'host' is missing");
            return false;
        }
        if (!addr->port) {
            qblk_error_set(errp, "Parameter 'port' is missing");
            return false;
        }
    } else {
        qblk_error_set(errp, "Parameter 'type' does not accept value '%s'", type);
        return false;
    }
    return true;
}

char *nbd_addr_to_uri(const NbdAddr *addr)
{
    g_autofree char *export = g_uri_escape_string(addr->export, "/", false);
    const char *slash = *addr->export ? "/" : "";

    if (addr->type == NBD_ADDR_UNIX) {
        g_autofree char *path = g_uri_escape_string(addr->path, "/", false);

        return g_strdup_printf("nbd+unix://%s%s?socket=%s", slash, export, path);
    }
    if (strchr(addr->host, ':')) {
        return g_strdup_printf("nbd://[%s]:%s%s%s", addr->host, addr->port, slash, export);
    }
    return g_strdup_printf("nbd://%s:%s%s%s", addr->host, addr->port, slash, export);
}

char *nbd_addr_to_string(const NbdAddr *addr)
{
    if (addr->type == NBD_ADDR_UNIX) {
        return g_strdup(addr->path);
    }
    return g_strdup_printf("%s:%s", addr->host, addr->port);
}
