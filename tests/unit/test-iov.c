/* Unit tests for QIOVector: building, slicing across element boundaries,
 * copying in and out, and zero detection. */
#include <string.h>
#include <glib.h>

#include "util/iov.h"

/* Three non-adjacent pieces of one buffer: [0,10) [20,25) [40,64). */
static char pool[64];

static void build3(QIOVector *q)
{
    qiov_init(q, 1);
    qiov_add(q, pool, 10);
    qiov_add(q, pool + 20, 5);
    qiov_add(q, pool + 40, 24);
}

static void test_init_add(void)
{
    QIOVector q;

    build3(&q);
    g_assert_cmpint(q.niov, ==, 3);
    g_assert_cmpuint(q.size, ==, 39);
    g_assert_cmpint(q.nalloc, >=, 3);
    qiov_reset(&q);
    g_assert_cmpint(q.niov, ==, 0);
    g_assert_cmpuint(q.size, ==, 0);
    qiov_destroy(&q);
    g_assert_null(q.iov);
}

static void test_add_merges_adjacent(void)
{
    QIOVector q;

    qiov_init(&q, 0);
    qiov_add(&q, pool, 8);
    qiov_add(&q, pool + 8, 8);
    g_assert_cmpint(q.niov, ==, 1);
    g_assert_cmpuint(q.iov[0].iov_len, ==, 16);
    g_assert_cmpuint(q.size, ==, 16);
    qiov_add(&q, pool + 32, 4);
    g_assert_cmpint(q.niov, ==, 2);
    g_assert_cmpuint(q.size, ==, 20);
    qiov_destroy(&q);
}

static void test_init_buf(void)
{
    QIOVector q;

    qiov_init_buf(&q, pool, sizeof(pool));
    g_assert_cmpint(q.nalloc, ==, -1);
    g_assert_true(q.iov == &q.local);
    g_assert_cmpuint(q.size, ==, sizeof(pool));
    /* Growing a single-buffer vector moves it to the heap. */
    qiov_add(&q, pool + 8, 4);
    g_assert_cmpint(q.niov, ==, 2);
    g_assert_cmpint(q.nalloc, >, 0);
    g_assert_true(q.iov[0].iov_base == pool);
    g_assert_cmpuint(q.size, ==, sizeof(pool) + 4);
    qiov_destroy(&q);

    qiov_init_buf(&q, pool, 4);
    qiov_destroy(&q);  /* harmless */
}

static void test_slice(void)
{
    QIOVector q, s;

    build3(&q);
    /* Inside one element: no allocation. */
    qiov_init_slice(&s, &q, 11, 3);
    g_assert_cmpint(s.nalloc, ==, -1);
    g_assert_true(s.iov[0].iov_base == pool + 21);
    g_assert_cmpuint(s.size, ==, 3);
    qiov_destroy(&s);

    /* Starting exactly at an element boundary. */
    qiov_init_slice(&s, &q, 10, 5);
    g_assert_cmpint(s.niov, ==, 1);
    g_assert_true(s.iov[0].iov_base == pool + 20);
    qiov_destroy(&s);

    /* Across all three. */
    qiov_init_slice(&s, &q, 8, 10);
    g_assert_cmpint(s.niov, ==, 3);
    g_assert_true(s.iov[0].iov_base == pool + 8);
    g_assert_cmpuint(s.iov[0].iov_len, ==, 2);
    g_assert_cmpuint(s.iov[1].iov_len, ==, 5);
    g_assert_true(s.iov[2].iov_base == pool + 40);
    g_assert_cmpuint(s.iov[2].iov_len, ==, 3);
    g_assert_cmpuint(s.size, ==, 10);
    qiov_destroy(&s);

    /* Empty slice at the very end. */
    qiov_init_slice(&s, &q, 39, 0);
    g_assert_cmpuint(s.size, ==, 0);
    qiov_destroy(&s);
    qiov_destroy(&q);
}

static void test_concat(void)
{
    QIOVector q, d;

    build3(&q);
    qiov_init(&d, 0);
    qiov_add(&d, pool + 60, 1);
    qiov_concat(&d, &q, 5, 30);
    g_assert_cmpuint(d.size, ==, 31);
    g_assert_cmpint(d.niov, ==, 4);
    g_assert_true(d.iov[1].iov_base == pool + 5);
    g_assert_cmpuint(d.iov[3].iov_len, ==, 20);
    qiov_concat(&d, &q, 0, 0);
    g_assert_cmpuint(d.size, ==, 31);
    qiov_destroy(&d);
    qiov_destroy(&q);
}

static void test_copy(void)
{
    QIOVector q;
    char src[39], dst[39];
    int i;

    for (i = 0; i < 39; i++) {
        src[i] = 'a' + i % 26;
    }
    memset(pool, 0, sizeof(pool));
    build3(&q);
    g_assert_cmpuint(qiov_from_buf(&q, 0, src, sizeof(src)), ==, 39);
    g_assert_cmpint(pool[9], ==, src[9]);
    g_assert_cmpint(pool[20], ==, src[10]);
    g_assert_cmpint(pool[40], ==, src[15]);
    g_assert_cmpint(pool[15], ==, 0);   /* gaps untouched */

    memset(dst, 0, sizeof(dst));
    g_assert_cmpuint(qiov_to_buf(&q, 7, dst, 100), ==, 32);  /* clamped */
    g_assert_cmpmem(dst, 32, src + 7, 32);
    g_assert_cmpuint(qiov_to_buf(&q, 39, dst, 1), ==, 0);
    g_assert_cmpuint(qiov_to_buf(&q, 500, dst, 1), ==, 0);

    g_assert_cmpuint(qiov_memset(&q, 12, 'Z', 5), ==, 5);
    g_assert_cmpint(pool[21], ==, src[11]);
    g_assert_cmpint(pool[22], ==, 'Z');
    g_assert_cmpint(pool[24], ==, 'Z');
    g_assert_cmpint(pool[40], ==, 'Z');
    g_assert_cmpint(pool[41], ==, 'Z');
    g_assert_cmpint(pool[42], ==, src[17]);
    qiov_destroy(&q);
}

static void test_is_zero(void)
{
    QIOVector q;

    memset(pool, 0, sizeof(pool));
    build3(&q);
    g_assert_true(qiov_is_zero(&q, 0, q.size));
    g_assert_true(qiov_is_zero(&q, 5, 0));
    pool[15] = 1;                       /* in a gap: not part of q */
    g_assert_true(qiov_is_zero(&q, 0, q.size));
    pool[41] = 1;                       /* byte 16 of q */
    g_assert_false(qiov_is_zero(&q, 0, q.size));
    g_assert_true(qiov_is_zero(&q, 0, 16));
    g_assert_false(qiov_is_zero(&q, 16, 1));
    g_assert_true(qiov_is_zero(&q, 17, q.size - 17));
    qiov_destroy(&q);
}

static void test_many(void)
{
    QIOVector q, s;
    static char big[4096];
    int i;

    qiov_init(&q, 0);
    for (i = 0; i < 2048; i++) {
        qiov_add(&q, big + (i % 2048) * 2, 1);  /* never adjacent */
    }
    g_assert_cmpint(q.niov, ==, 2048);
    qiov_init_slice(&s, &q, 100, 1500);
    g_assert_cmpint(s.niov, ==, 1500);
    qiov_destroy(&s);
    qiov_destroy(&q);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/iov/init-add", test_init_add);
    g_test_add_func("/iov/add-merges-adjacent", test_add_merges_adjacent);
    g_test_add_func("/iov/init-buf", test_init_buf);
    g_test_add_func("/iov/slice", test_slice);
    g_test_add_func("/iov/concat", test_concat);
    g_test_add_func("/iov/copy", test_copy);
    g_test_add_func("/iov/is-zero", test_is_zero);
    g_test_add_func("/iov/many", test_many);
    return g_test_run();
}
