/* Output formatting of the qemu-io and qemu-img front ends, byte for byte
 * as QEMU 7.2 prints: qemu-io's statistics report and hexdump, qemu-img's
 * sizes. Tools only: the library never prints. */
#ifndef QBLK_TOOLS_COMMON_REPORT_H
#define QBLK_TOOLS_COMMON_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* qemu-io cvtstr: "512 bytes", "4 KiB", "3.500 KiB", "868.254782 bytes",
 * "inf EiB".  Truncates to size like QEMU does for its 64-byte buffers. */
void qblk_cvtstr(double value, char *buf, size_t size);

/* qemu-io elapsed time: "00.15 sec" under 1 s, "H:MM:SS.ss" from 1 s on. */
void qblk_timestr(const struct timespec *elapsed, char *buf, size_t size);

/* The time field of "-C" output: always "H:MM:SS.ss". */
void qblk_timestr_compact(const struct timespec *elapsed, char *buf, size_t size);

/* The qemu-io statistics report for op "read"/"wrote"/"discard":
 *   "<op> <total>/<count> bytes at offset <offset>\n"
 *   "<SIZE>, <cnt> ops; <TIME> (<RATE>/sec and <OPS> ops/sec)\n"
 * or with csv: "total,cnt,H:MM:SS.ss,bytes_per_sec(%.3f),ops_per_sec(%.3f)\n". */
void qblk_print_report(FILE *f, const char *op, const struct timespec *elapsed,
                       int64_t offset, int64_t count, int64_t total, int cnt,
                       bool csv);

/* qemu-img size_to_str: "0 B", "1.5 KiB", "0.977 MiB", "3.3 TiB". */
void qblk_size_to_str(uint64_t value, char *buf, size_t size);

/* qemu-io -v dump of len bytes at buf, which were read from image offset. */
void qblk_hexdump(FILE *f, const void *buf, int64_t offset, int64_t len);

/* A -P pattern byte (strtol base 0, so a leading 0 is octal): 0..255, or -1
 * when out of range or followed by anything. */
int qblk_parse_pattern(const char *arg);

/* b - a, normalised so that 0 <= tv_nsec < 1e9. */
struct timespec qblk_timespec_sub(const struct timespec *b, const struct timespec *a);

#endif
