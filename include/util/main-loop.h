/* The process's one event loop, on GLib's default GMainContext. Bottom
 * halves, timers and fd handlers all run in the loop thread. */
#ifndef QBLK_UTIL_MAIN_LOOP_H
#define QBLK_UTIL_MAIN_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* Sets up the loop (idempotent). Called by every tool's main(). */
void qblk_loop_init(void);

/* Runs one loop iteration; blocks for events when `blocking`. Returns
 * true if something was dispatched. */
bool qblk_loop_iterate(bool blocking);

/* Runs fn(opaque) once in the loop thread at the next iteration (a
 * "bottom half"). Thread-safe: may be called from any thread. */
void qblk_bh_schedule(void (*fn)(void *opaque), void *opaque);

/* Runs fn(opaque) once after ns nanoseconds. Returns a GSource id. */
guint qblk_timer_add_ns(int64_t ns, void (*fn)(void *opaque), void *opaque);

int64_t qblk_clock_ns(void); /* CLOCK_MONOTONIC */

#endif
