/* Unit tests for util/bigbuf: big I/O buffers are 2 MiB aligned, usable
 * over their whole length, and in huge pages where the kernel offers them
 * on request (THP "madvise" or "always"). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include "util/bigbuf.h"

#define MiB (1024 * 1024)

static void test_alignment(void)
{
    for (size_t size = 1; size <= 5 * MiB; size = size * 3 + 1) {
        uint8_t *buf = qblk_bigbuf_new(size);

        g_assert_cmpuint((uintptr_t)buf % (2 * MiB), ==, 0);
        memset(buf, 0xa5, size);
        g_assert_cmpuint(buf[size - 1], ==, 0xa5);
        qblk_bigbuf_free(buf);
    }
    qblk_bigbuf_free(NULL);
}

/* AnonHugePages of the mapping holding addr, in KiB (-1: not found). */
static long huge_kib_at(const void *addr)
{
    g_autofree char *smaps = NULL;
    g_auto(GStrv) lines = NULL;
    bool in = false;

    g_assert_true(g_file_get_contents("/proc/self/smaps", &smaps, NULL, NULL));
    lines = g_strsplit(smaps, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long start, end;
        long kib;

        if (sscanf(*l, "%lx-%lx ", &start, &end) == 2) {
            in = (uintptr_t)addr >= start && (uintptr_t)addr < end;
        } else if (in && sscanf(*l, "AnonHugePages: %ld kB", &kib) == 1) {
            return kib;
        }
    }
    return -1;
}

static void test_huge_pages(void)
{
    g_autofree char *mode = NULL;
    uint8_t *buf;

    if (!g_file_get_contents("/sys/kernel/mm/transparent_hugepage/enabled", &mode, NULL, NULL) ||
        (!strstr(mode, "[madvise]") && !strstr(mode, "[always]"))) {
        g_test_skip("transparent huge pages are off on this kernel");
        return;
    }
    buf = qblk_bigbuf_new(4 * MiB);
    memset(buf, 1, 4 * MiB);
    /* The kernel may fall back to small pages when it has no free 2 MiB
     * block; with gigabytes free it has one. */
    g_assert_cmpint(huge_kib_at(buf), >=, 2048);
    qblk_bigbuf_free(buf);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bigbuf/alignment", test_alignment);
    g_test_add_func("/bigbuf/huge-pages", test_huge_pages);
    return g_test_run();
}
