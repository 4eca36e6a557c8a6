/* qblk-img's -p progress line, shared by every command that has one.
 * Piped, it prints qemu-img's exact updates ("    (12.50/100%)\r"); on a
 * terminal the same line also carries a bar, the rate and the ETA. */
#ifndef QBLK_TOOLS_IMG_PROGRESS_H
#define QBLK_TOOLS_IMG_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ImgProgress {
    bool on;             /* -p given and not -q */
    bool terminal;       /* stdout is a tty: bar, rate, ETA */
    double min_step;     /* percent the work must move between updates */
    double last;         /* last percentage printed */
    int64_t start_us;
    int64_t bytes;       /* work done, for the rate */
} ImgProgress;

/* min_step: qemu-img's per-command minimum (1% for convert, 2% compare). */
void img_progress_init(ImgProgress *p, bool on, double min_step);
/* Prints pct when it has moved at least min_step since the last update
 * (never 100: the end is printed with img_progress_print). bytes: work
 * done so far, for the rate. */
void img_progress_update(ImgProgress *p, double pct, int64_t bytes);
/* Prints pct unconditionally (the 0 at the start, the 100 at the end). */
void img_progress_print(ImgProgress *p, double pct);
/* A step a library operation reported, printed as qemu-img prints such
 * steps: 0 and 100 always, other values once they are more than min_step
 * away from the last one printed. */
void img_progress_report(ImgProgress *p, double pct);
/* Ends the line. */
void img_progress_end(ImgProgress *p);

#endif
