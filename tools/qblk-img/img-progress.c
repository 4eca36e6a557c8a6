/* The -p progress line of qblk-img (see img-progress.h). */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "img-progress.h"

#define BAR_WIDTH 30

void img_progress_init(ImgProgress *p, bool on, double min_step)
{
    *p = (ImgProgress) {
        .on = on,
        .terminal = on && isatty(STDOUT_FILENO),
        .min_step = min_step,
        .start_us = g_get_monotonic_time(),
    };
}

static void print_rate_and_eta(const ImgProgress *p, double pct)
{
    double secs = (g_get_monotonic_time() - p->start_us) / 1e6;
    char bar[BAR_WIDTH + 1];
    int filled = (int)(pct * BAR_WIDTH / 100);

    for (int i = 0; i < BAR_WIDTH; i++) {
        bar[i] = i < filled ? '#' : '-';
    }
    bar[BAR_WIDTH] = 0;
    printf(" [%s]", bar);
    if (secs > 0 && p->bytes > 0) {
        printf(" %.1f MiB/s", p->bytes / secs / (1024 * 1024));
    }
    if (pct > 0 && pct < 100) {
        int64_t eta = (int64_t)(secs * (100 - pct) / pct);

        printf(" ETA %" PRId64 ":%02" PRId64, eta / 60, eta % 60);
    }
    /* Clears what a longer previous line left behind. */
    printf("\033[K");
}

void img_progress_print(ImgProgress *p, double pct)
{
    if (!p->on) {
        return;
    }
    printf("    (%.2f/100%%)", pct);
    if (p->terminal) {
        print_rate_and_eta(p, pct);
    }
    printf("\r");
    fflush(stdout);
    p->last = pct;
}

void img_progress_update(ImgProgress *p, double pct, int64_t bytes)
{
    p->bytes = bytes;
    if (p->on && pct < 100 && pct - p->last >= p->min_step) {
        img_progress_print(p, pct);
    }
}

void img_progress_report(ImgProgress *p, double pct)
{
    if (pct == 0 || pct == 100 || pct > p->last + p->min_step || pct < p->last - p->min_step) {
        img_progress_print(p, pct);
    }
}

void img_progress_end(ImgProgress *p)
{
    if (p->on) {
        printf("\n");
        fflush(stdout);
    }
}
