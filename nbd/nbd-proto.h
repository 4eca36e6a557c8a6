/* The NBD protocol's constants and its big-endian wire encoding, as the
 * NBD spec (fixed newstyle, structured replies) and QEMU 7.2 use them. */
#ifndef QBLK_NBD_PROTO_H
#define QBLK_NBD_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define NBD_INIT_MAGIC          0x4e42444d41474943ULL   /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC          0x49484156454F5054ULL   /* "IHAVEOPT" */
#define NBD_REP_MAGIC           0x0003e889045565a9ULL
#define NBD_REQUEST_MAGIC       0x25609513U
#define NBD_SIMPLE_REPLY_MAGIC  0x67446698U
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efU

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE 0x1
#define NBD_FLAG_NO_ZEROES      0x2
#define NBD_FLAG_C_FIXED_NEWSTYLE 0x1
#define NBD_FLAG_C_NO_ZEROES    0x2

/* Options. */
enum {
    NBD_OPT_EXPORT_NAME = 1,
    NBD_OPT_ABORT = 2,
    NBD_OPT_LIST = 3,
    NBD_OPT_PEEK_EXPORT = 4,
    NBD_OPT_STARTTLS = 5,
    NBD_OPT_INFO = 6,
    NBD_OPT_GO = 7,
    NBD_OPT_STRUCTURED_REPLY = 8,
    NBD_OPT_LIST_META_CONTEXT = 9,
    NBD_OPT_SET_META_CONTEXT = 10,
};

/* Option reply types; errors have bit 31 set. */
#define NBD_REP_ACK             1U
#define NBD_REP_SERVER          2U
#define NBD_REP_INFO            3U
#define NBD_REP_META_CONTEXT    4U
#define NBD_REP_ERR_UNSUP       0x80000001U
#define NBD_REP_ERR_POLICY      0x80000002U
#define NBD_REP_ERR_INVALID     0x80000003U
#define NBD_REP_ERR_PLATFORM    0x80000004U
#define NBD_REP_ERR_TLS_REQD    0x80000005U
#define NBD_REP_ERR_UNKNOWN     0x80000006U
#define NBD_REP_ERR_SHUTDOWN    0x80000007U
#define NBD_REP_ERR_BLOCK_SIZE_REQD 0x80000008U
#define NBD_REP_ERR_TOO_BIG     0x80000009U

/* INFO items. */
enum {
    NBD_INFO_EXPORT = 0,
    NBD_INFO_NAME = 1,
    NBD_INFO_DESCRIPTION = 2,
    NBD_INFO_BLOCK_SIZE = 3,
};

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS          0x0001
#define NBD_FLAG_READ_ONLY          0x0002
#define NBD_FLAG_SEND_FLUSH         0x0004
#define NBD_FLAG_SEND_FUA           0x0008
#define NBD_FLAG_ROTATIONAL         0x0010
#define NBD_FLAG_SEND_TRIM          0x0020
#define NBD_FLAG_SEND_WRITE_ZEROES  0x0040
#define NBD_FLAG_SEND_DF            0x0080
#define NBD_FLAG_CAN_MULTI_CONN     0x0100
#define NBD_FLAG_SEND_RESIZE        0x0200
#define NBD_FLAG_SEND_CACHE         0x0400
#define NBD_FLAG_SEND_FAST_ZERO     0x0800

/* Commands and their flags. */
enum {
    NBD_CMD_READ = 0,
    NBD_CMD_WRITE = 1,
    NBD_CMD_DISC = 2,
    NBD_CMD_FLUSH = 3,
    NBD_CMD_TRIM = 4,
    NBD_CMD_CACHE = 5,
    NBD_CMD_WRITE_ZEROES = 6,
    NBD_CMD_BLOCK_STATUS = 7,
};
#define NBD_CMD_FLAG_FUA        0x01
#define NBD_CMD_FLAG_NO_HOLE    0x02
#define NBD_CMD_FLAG_DF         0x04
#define NBD_CMD_FLAG_REQ_ONE    0x08
#define NBD_CMD_FLAG_FAST_ZERO  0x10

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE     0x1
enum {
    NBD_REPLY_TYPE_NONE = 0,
    NBD_REPLY_TYPE_OFFSET_DATA = 1,
    NBD_REPLY_TYPE_OFFSET_HOLE = 2,
    NBD_REPLY_TYPE_BLOCK_STATUS = 5,
    NBD_REPLY_TYPE_ERROR = 0x8001,
    NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002,
};

/* base:allocation extent flags. */
#define NBD_STATE_HOLE  0x1
#define NBD_STATE_ZERO  0x2

/* Error values on the wire. */
#define NBD_EPERM       1
#define NBD_EIO         5
#define NBD_ENOMEM      12
#define NBD_EINVAL      22
#define NBD_ENOSPC      28
#define NBD_EOVERFLOW   75
#define NBD_ENOTSUP     95
#define NBD_ESHUTDOWN   108

/* Sizes: messages on the wire, and QEMU 7.2's limits. */
#define NBD_REQUEST_SIZE        28
#define NBD_SIMPLE_REPLY_SIZE   16
#define NBD_CHUNK_HEADER_SIZE   20
#define NBD_MAX_STRING_SIZE     4096
#define NBD_MAX_BUFFER_SIZE     (32 * 1024 * 1024)
#define NBD_MAX_OPTION_SIZE     NBD_MAX_BUFFER_SIZE

/* Meta context ids as QEMU numbers them. */
#define NBD_META_ID_BASE_ALLOCATION     0
#define NBD_META_ID_ALLOCATION_DEPTH    1

/* Big-endian stores and loads into byte buffers (no alignment needed). */
static inline void nbd_put16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

static inline void nbd_put32(uint8_t *p, uint32_t v)
{
    nbd_put16(p, v >> 16);
    nbd_put16(p + 2, v);
}

static inline void nbd_put64(uint8_t *p, uint64_t v)
{
    nbd_put32(p, v >> 32);
    nbd_put32(p + 4, v);
}

static inline uint16_t nbd_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get32(const uint8_t *p)
{
    return (uint32_t)nbd_get16(p) << 16 | nbd_get16(p + 2);
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
    return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

/* A request header, decoded. */
typedef struct NbdRequest {
    uint16_t flags;
    uint16_t type;
    uint64_t handle;
    uint64_t offset;
    uint32_t length;
} NbdRequest;

/* Decodes 28 bytes (all fields, so a bad request can still be answered
 * by its handle); returns false on a bad magic. */
static inline bool nbd_decode_request(const uint8_t *p, NbdRequest *req)
{
    req->flags = nbd_get16(p + 4);
    req->type = nbd_get16(p + 6);
    req->handle = nbd_get64(p + 8);
    req->offset = nbd_get64(p + 16);
    req->length = nbd_get32(p + 24);
    return nbd_get32(p) == NBD_REQUEST_MAGIC;
}

#endif
