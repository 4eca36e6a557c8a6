/* util/bswap.h: each load reads the bytes in its order at any alignment,
 * each store writes exactly its width and round-trips through the load. */
#include <string.h>
#include <glib.h>
#include "util/bswap.h"

static const uint8_t bytes[] = { 0xaa, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xbb };

static void test_load(void)
{
    /* From offset 1, so an aligned-only implementation would be caught. */
    const uint8_t *p = bytes + 1;

    g_assert_cmphex(qblk_ld_be16(p), ==, 0x0102);
    g_assert_cmphex(qblk_ld_be32(p), ==, 0x01020304);
    g_assert_cmphex(qblk_ld_be64(p), ==, 0x0102030405060708ULL);
    g_assert_cmphex(qblk_ld_le16(p), ==, 0x0201);
    g_assert_cmphex(qblk_ld_le32(p), ==, 0x04030201);
    g_assert_cmphex(qblk_ld_le64(p), ==, 0x0807060504030201ULL);
    /* The top bit must not sign-extend. */
    g_assert_cmphex(qblk_ld_be32((const uint8_t *)"\xff\0\0\x80"), ==, 0xff000080);
    g_assert_cmphex(qblk_ld_le64((const uint8_t *)"\0\0\0\x80\0\0\0\xff"), ==,
                    0xff00000080000000ULL);
}

/* Stores v at offset 1 of a 0x5a-filled buffer; the guard bytes stay. */
static void check_store(void (*store)(uint8_t *, uint64_t), unsigned width,
                        const uint8_t *want)
{
    uint8_t buf[10];

    memset(buf, 0x5a, sizeof(buf));
    store(buf + 1, 0x0102030405060708ULL);
    g_assert_cmpmem(buf + 1, width, want, width);
    g_assert_cmphex(buf[0], ==, 0x5a);
    g_assert_cmphex(buf[1 + width], ==, 0x5a);
}

static void st_be16(uint8_t *p, uint64_t v) { qblk_st_be16(p, (uint16_t)v); }
static void st_be32(uint8_t *p, uint64_t v) { qblk_st_be32(p, (uint32_t)v); }
static void st_be64(uint8_t *p, uint64_t v) { qblk_st_be64(p, v); }
static void st_le16(uint8_t *p, uint64_t v) { qblk_st_le16(p, (uint16_t)v); }
static void st_le32(uint8_t *p, uint64_t v) { qblk_st_le32(p, (uint32_t)v); }
static void st_le64(uint8_t *p, uint64_t v) { qblk_st_le64(p, v); }

static void test_store(void)
{
    check_store(st_be16, 2, (const uint8_t *)"\x07\x08");
    check_store(st_be32, 4, (const uint8_t *)"\x05\x06\x07\x08");
    check_store(st_be64, 8, (const uint8_t *)"\x01\x02\x03\x04\x05\x06\x07\x08");
    check_store(st_le16, 2, (const uint8_t *)"\x08\x07");
    check_store(st_le32, 4, (const uint8_t *)"\x08\x07\x06\x05");
    check_store(st_le64, 8, (const uint8_t *)"\x08\x07\x06\x05\x04\x03\x02\x01");
}

static void test_round_trip(void)
{
    uint8_t b[8];
    uint64_t v = 0xfedcba9876543210ULL;

    qblk_st_be64(b, v);
    g_assert_cmphex(qblk_ld_be64(b), ==, v);
    g_assert_cmphex(qblk_ld_le64(b), ==, GUINT64_SWAP_LE_BE(v));
    qblk_st_le64(b, v);
    g_assert_cmphex(qblk_ld_le64(b), ==, v);
    g_assert_cmphex(qblk_ld_be32(b), ==, GUINT32_SWAP_LE_BE((uint32_t)v));
    qblk_st_le16(b, 0xbeef);
    g_assert_cmphex(qblk_ld_be16(b), ==, 0xefbe);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bswap/load", test_load);
    g_test_add_func("/bswap/store", test_store);
    g_test_add_func("/bswap/round-trip", test_round_trip);
    return g_test_run();
}
