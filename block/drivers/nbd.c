/* The "nbd" protocol driver: an export of a remote NBD server (libnbd),
 * named nbd+unix:///EXPORT?socket=PATH, nbd://HOST[:PORT]/EXPORT, the
 * legacy nbd:unix:PATH / nbd:HOST:PORT[:exportname=E], or by options:
 *   server.type=unix,server.path=PATH | server.type=inet,server.host=H,server.port=P
 *   export=NAME          the export (default "")
 *   reconnect-delay=N    after the connection breaks, requests wait up to
 *                        N seconds for a reconnection, then fail with EIO
 *                        (default 0: they fail at once; the next request
 *                        tries to reconnect once)
 * Reads are spread over up to NBD_MAX_CONNS connections when the server
 * offers multi-conn; everything else uses the first one. */
#include <errno.h>
#include <string.h>
#include "block/drivers/nbd.h"

static bool nbd_claims_filename(const char *filename)
{
    /* Every "nbd:" and "nbd+SCHEME:" name: an unknown scheme is refused
     * by parse_filename in QEMU's words. */
    return g_str_has_prefix(filename, "nbd:") ||
           (g_str_has_prefix(filename, "nbd+") && strchr(filename, ':') &&
            !memchr(filename, '/', strcspn(filename, ":")));
}

static bool nbd_parse_name(const char *filename, QblkOpts *options, GError **errp)
{
    size_t scheme_len = strcspn(filename, ":");

    if (g_str_has_prefix(filename, "nbd+") &&
        strncmp(filename, "nbd+unix:", 9) != 0 && strncmp(filename, "nbd+tcp:", 8) != 0) {
        qblk_error_set(errp, "Unknown protocol '%.*s'", (int)scheme_len, filename);
        return false;
    }
    return nbd_parse_filename(filename, options, errp);
}

static bool nbd_take_delay(QblkOpts *options, int64_t *ns, GError **errp)
{
    g_autofree char *str = qblk_opts_take(options, "reconnect-delay");
    guint64 val = 0;

    if (str && !g_ascii_string_to_unsigned(str, 10, 0, UINT32_MAX, &val, NULL)) {
        qblk_error_set(errp, "Parameter 'reconnect-delay' expects uint32_t");
        return false;
    }
    *ns = (int64_t)val * 1000000000LL;
    return true;
}

/* The server's offers, read once from the first connection. */
static void nbd_read_offers(BlockDriverState *bs, struct nbd_handle *h)
{
    NbdState *s = bs->opaque;
    int64_t min = nbd_get_block_size(h, LIBNBD_SIZE_MINIMUM);
    int64_t max = nbd_get_block_size(h, LIBNBD_SIZE_MAXIMUM);

    s->size = nbd_get_size(h);
    s->read_only = nbd_is_read_only(h) > 0;
    s->can_flush = nbd_can_flush(h) > 0;
    s->can_fua = nbd_can_fua(h) > 0;
    s->can_trim = nbd_can_trim(h) > 0;
    s->can_zero = nbd_can_zero(h) > 0;
    s->can_fast_zero = nbd_can_fast_zero(h) > 0;
    s->has_base_allocation = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) > 0;

    bs->bl.request_alignment = min > 0 ? (uint32_t)min : 1;
    bs->bl.max_transfer = max > 0 ? MIN(max, NBD_MAX_TRANSFER) : NBD_MAX_TRANSFER;
    bs->bl.max_pwrite_zeroes = NBD_MAX_STATUS_LEN;
    bs->bl.max_pdiscard = NBD_MAX_STATUS_LEN;
    bs->supported_write_flags = s->can_fua ? BDRV_REQ_FUA : 0;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP |
                               (s->can_fua ? BDRV_REQ_FUA : 0) |
                               (s->can_fast_zero ? BDRV_REQ_NO_FALLBACK : 0);
    bs->no_native_zeroes = !s->can_zero;
}

static int coroutine_fn nbd_co_open(BlockDriverState *bs, QblkOpts *options, int flags,
                                    GError **errp)
{
    NbdState *s = bs->opaque;
    g_autofree char *tls_creds = NULL;
    int ret;

    for (unsigned i = 0; i < NBD_MAX_CONNS; i++) {
        s->conns[i].s = s;
        s->conns[i].fd = -1;
        qco_queue_init(&s->conns[i].reconnect_waiters);
    }
    if (!nbd_addr_take(options, &s->addr, errp) ||
        !nbd_take_delay(options, &s->reconnect_delay_ns, errp)) {
        ret = -EINVAL;
        goto fail;
    }
    /* No objects exist here to name TLS credentials: QEMU's words for a
     * credentials id it does not know. */
    tls_creds = qblk_opts_take(options, "tls-creds");
    if (tls_creds) {
        qblk_error_set(errp, "No TLS credentials with id '%s'", tls_creds);
        ret = -EINVAL;
        goto fail;
    }
    ret = nbd_conn_co_connect(&s->conns[0], errp);
    if (ret < 0) {
        goto fail;
    }
    s->nb_conns = 1;
    nbd_read_offers(bs, s->conns[0].h);
    if (s->size < 0) {
        qblk_error_set(errp, "Failed to get the export size");
        ret = -EIO;
        goto fail;
    }
    if (s->read_only && (flags & BDRV_O_RDWR)) {
        if (!(flags & BDRV_O_AUTO_RDONLY)) {
            /* QEMU's words for opening a read-only export for writing. */
            qblk_error_set_errno(errp, EACCES, "Could not open image");
            ret = -EACCES;
            goto fail;
        }
        bs->read_only = true;
        bs->open_flags &= ~BDRV_O_RDWR;
    }
    /* More connections for reads; a server that refuses them leaves
     * the pool smaller. */
    if (nbd_can_multi_conn(s->conns[0].h) > 0) {
        while (s->nb_conns < NBD_MAX_CONNS &&
               nbd_conn_co_connect(&s->conns[s->nb_conns], NULL) == 0) {
            s->nb_conns++;
        }
    }
    g_free(bs->filename);
    bs->filename = nbd_addr_to_uri(&s->addr);
    return 0;

fail:
    for (unsigned i = 0; i < NBD_MAX_CONNS; i++) {
        nbd_conn_close(&s->conns[i]);
    }
    nbd_addr_clear(&s->addr);
    return ret;
}

static void nbd_close_node(BlockDriverState *bs)
{
    NbdState *s = bs->opaque;

    for (unsigned i = 0; i < NBD_MAX_CONNS; i++) {
        nbd_conn_close(&s->conns[i]);
    }
    nbd_addr_clear(&s->addr);
}

static int64_t nbd_getlength(BlockDriverState *bs)
{
    return ((NbdState *)bs->opaque)->size;
}

const BlockDriver bdrv_nbd = {
    .format_name = "nbd",
    .instance_size = sizeof(NbdState),
    .is_protocol = true,
    .claims_filename = nbd_claims_filename,
    .parse_filename = nbd_parse_name,

    .co_open = nbd_co_open,
    .close = nbd_close_node,

    .co_preadv = nbd_co_preadv,
    .co_pwritev = nbd_co_pwritev,
    .co_pwrite_zeroes = nbd_co_pwrite_zeroes,
    .co_pdiscard = nbd_co_pdiscard,
    .co_flush = nbd_co_flush,
    .co_block_status = nbd_co_block_status,
    .getlength = nbd_getlength,
};
