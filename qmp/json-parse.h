/* QMP input: a streaming splitter that cuts one client's byte stream into
 * JSON messages the way QEMU 7.2's lexer and streamer do, and a parser
 * that turns each message into a QblkJson tree (json-glib does the tree). */
#ifndef QBLK_QMP_JSON_PARSE_H
#define QBLK_QMP_JSON_PARSE_H

#include <stddef.h>
#include <glib.h>

#include "util/error.h"
#include "util/json.h"

/* QEMU's limits: a message's tokens at most 64 MiB in all (so one token
 * too), at most 2 Mi tokens, nesting at most 1024 levels. Past one of them
 * the message so far is dropped with QEMU's error ("JSON token size limit
 * exceeded", "... count ...", "JSON nesting depth limit exceeded") and
 * splitting goes on, so a client's memory use stays bounded. */
#define QMP_JSON_MAX_TOKEN_SIZE  (64u << 20)
#define QMP_JSON_MAX_TOKEN_COUNT (2u << 20)
#define QMP_JSON_MAX_NESTING     1024

/* Called once per message: either value (taken by the callee) or err
 * (taken; its message is what QEMU replies, e.g. "JSON parse error,
 * expecting value"). */
typedef void QmpJsonEmitFunc(void *opaque, QblkJson *value, GError *err);

typedef struct QmpJsonSplitter QmpJsonSplitter;

QmpJsonSplitter *qmp_json_splitter_new(QmpJsonEmitFunc *emit, void *opaque);
/* Feeds len bytes; emits every message they complete, in order. */
void qmp_json_splitter_feed(QmpJsonSplitter *s, const char *buf, size_t len);
/* Bytes held for the message in progress (tests: memory stays bounded). */
size_t qmp_json_splitter_pending(const QmpJsonSplitter *s);
void qmp_json_splitter_free(QmpJsonSplitter *s);

/* Parses text holding exactly one JSON value (single-quoted strings
 * allowed): --blockdev's JSON form, QAPI definitions. At the end of the
 * text an unfinished value is "JSON parse error, premature EOI"; more than
 * one value is "Expecting at most one JSON value". */
QblkJson *qmp_json_parse(const char *text, GError **errp);

#endif
