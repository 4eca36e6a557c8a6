/* Unit tests for the slice-based rate limiter, on a fake clock. */
#include <glib.h>

#include "util/ratelimit.h"

#define MS 1000000LL

static void test_unlimited(void)
{
    RateLimit rl = { 0 };

    g_assert_cmpint(ratelimit_calculate_delay(&rl, 1 << 30, 0), ==, 0);
    ratelimit_set_speed(&rl, 0, 100 * MS);
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 1ULL << 40, 5), ==, 0);
}

static void test_quota(void)
{
    RateLimit rl = { 0 };
    int64_t now = 1000 * MS;

    /* 1 MB/s in 100 ms slices: 100 000 bytes per slice. */
    ratelimit_set_speed(&rl, 1000000, 100 * MS);
    g_assert_cmpuint(rl.bytes_per_slice, ==, 100000);
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 40000, now), ==, 0);
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 40000, now + 10 * MS), ==, 0);
    /* 120 000 bytes: paid for 120 ms after the slice started. */
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 40000, now + 20 * MS), ==,
                    100 * MS);
    /* Not waiting makes it worse, not better. */
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 30000, now + 20 * MS), ==,
                    130 * MS);
    /* After waiting it out, a new slice starts with a full quota. */
    now += 150 * MS;
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 99999, now), ==, 0);
    g_assert_cmpint(ratelimit_calculate_delay(&rl, 1, now), ==, 100 * MS);
}

static void test_steady_rate(void)
{
    RateLimit rl = { 0 };
    int64_t now = 0, start = 0;
    uint64_t sent = 0;
    int i;

    /* 10 MB/s with 64 KiB chunks, sleeping exactly as told. */
    ratelimit_set_speed(&rl, 10000000, 100 * MS);
    for (i = 0; i < 1000; i++) {
        now += ratelimit_calculate_delay(&rl, 65536, now);
        sent += 65536;
    }
    /* 65.5 MB at 10 MB/s: about 6.5 s, give or take one slice. */
    g_assert_cmpint(now - start, >=, 6400 * MS);
    g_assert_cmpint(now - start, <=, 6700 * MS);
    g_assert_cmpuint(sent, ==, 65536000);
}

static void test_tiny_speed(void)
{
    RateLimit rl = { 0 };

    ratelimit_set_speed(&rl, 1, 100 * MS);
    g_assert_cmpuint(rl.bytes_per_slice, ==, 1);
    ratelimit_set_speed(&rl, 1000, 0);   /* default slice */
    g_assert_cmpint(rl.slice_ns, >, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ratelimit/unlimited", test_unlimited);
    g_test_add_func("/ratelimit/quota", test_quota);
    g_test_add_func("/ratelimit/steady-rate", test_steady_rate);
    g_test_add_func("/ratelimit/tiny-speed", test_tiny_speed);
    return g_test_run();
}
