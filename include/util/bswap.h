/* Loads and stores of big- and little-endian integers at any byte address,
 * for on-disk structures (qcow2 is big-endian, QED little-endian). */
#ifndef QBLK_UTIL_BSWAP_H
#define QBLK_UTIL_BSWAP_H

#include <stdint.h>

/* Byte by byte, so p needs no alignment and the host's order never matters;
 * compilers turn each into one load or store plus a byte swap. */

static inline uint16_t qblk_ld_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t qblk_ld_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t qblk_ld_be64(const uint8_t *p)
{
    return (uint64_t)qblk_ld_be32(p) << 32 | qblk_ld_be32(p + 4);
}

static inline void qblk_st_be16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = (uint8_t)v;
}

static inline void qblk_st_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = v >> (24 - 8 * i);
    }
}

static inline void qblk_st_be64(uint8_t *p, uint64_t v)
{
    qblk_st_be32(p, v >> 32);
    qblk_st_be32(p + 4, (uint32_t)v);
}

static inline uint16_t qblk_ld_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t qblk_ld_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t qblk_ld_le64(const uint8_t *p)
{
    return (uint64_t)qblk_ld_le32(p) | (uint64_t)qblk_ld_le32(p + 4) << 32;
}

static inline void qblk_st_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = v >> 8;
}

static inline void qblk_st_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = v >> (8 * i);
    }
}

static inline void qblk_st_le64(uint8_t *p, uint64_t v)
{
    qblk_st_le32(p, (uint32_t)v);
    qblk_st_le32(p + 4, (uint32_t)(v >> 32));
}

#endif
