/* The QMP input splitter and parser: message boundaries in a byte stream,
 * QEMU 7.2's error texts (recorded from qemu-storage-daemon), numbers,
 * single quotes, and the limits that keep a client's memory bounded. */
#include <string.h>
#include <glib.h>

#include "qmp/json-parse.h"

/* Every message of a feed as text: the compact JSON or "ERR: <message>". */
typedef struct Collected {
    GPtrArray *out;
} Collected;

static void collect(void *opaque, QblkJson *value, GError *err)
{
    Collected *c = opaque;

    if (err) {
        g_ptr_array_add(c->out, g_strdup_printf("ERR: %s", err->message));
        g_error_free(err);
    } else {
        g_ptr_array_add(c->out, qblk_json_to_string(value, false));
        qblk_json_free(value);
    }
}

/* Feeds input (whole, then again one byte at a time) and returns the
 * messages joined by " | ". */
static char *split(const char *input, size_t len, bool bytewise)
{
    Collected c = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonSplitter *s = qmp_json_splitter_new(collect, &c);

    if (bytewise) {
        for (size_t i = 0; i < len; i++) {
            qmp_json_splitter_feed(s, input + i, 1);
        }
    } else {
        qmp_json_splitter_feed(s, input, len);
    }
    qmp_json_splitter_free(s);
    g_ptr_array_add(c.out, NULL);
    char *joined = g_strjoinv(" | ", (char **)c.out->pdata);
    g_ptr_array_free(c.out, TRUE);
    return joined;
}

static const struct {
    const char *in;
    const char *out;
} cases[] = {
    /* boundaries */
    { "{\"execute\":\"a\"}{\"execute\":\"b\"}", "{\"execute\": \"a\"} | {\"execute\": \"b\"}" },
    { "  {\"a\": [1, {\"b\": []}]}\n", "{\"a\": [1, {\"b\": []}]}" },
    { "{'execute': 'q\"v', 'id': 'it\\'s'}", "{\"execute\": \"q\\\"v\", \"id\": \"it's\"}" },
    { "[1] \"str\" 1 ", "[1] | \"str\" | 1" },
    /* QEMU's parse errors */
    { "{\"execute\"}", "ERR: JSON parse error, missing : in object pair" },
    { "{\"execute\":}", "ERR: JSON parse error, expecting value" },
    { "{3:1}", "ERR: JSON parse error, key is not a string in object" },
    { "{\"a\":1 \"b\":2}", "ERR: JSON parse error, expected separator in dict" },
    { "{\"a\":1,}", "ERR: JSON parse error, expecting value" },
    { "[1,]", "ERR: JSON parse error, expecting value" },
    { "}", "ERR: JSON parse error, expecting value" },
    { "tru ", "ERR: JSON parse error, invalid keyword 'tru'" },
    { "{\"e\":\"\\uzzzz\"}", "ERR: JSON parse error, \\uzzzz is not a valid Unicode character" },
    { "{\"e\":\"\\ud83d\"}", "ERR: JSON parse error, \\ud83d is not a valid Unicode character" },
    { "{\"e\":\"a\\qb\"}", "ERR: JSON parse error, invalid escape sequence in string" },
    { "{\"e\":\"\xc3\x28\"}", "ERR: JSON parse error, invalid UTF-8 sequence in string" },
    { "\"\xff\"", "ERR: JSON parse error, stray '\"\xff'" },
    /* a stray byte ends the message; the lexer skips to a delimiter */
    { "{\"e\":\"a\x01" "b\"}\n{}", "ERR: JSON parse error, stray '\"a\x01' | "
                                  "ERR: JSON parse error, expecting value | {}" },
    { "{\"id\": %d}", "ERR: JSON parse error, stray '%' | ERR: JSON parse error, expecting value" },
    { "{\"a\":%x \"s\"}", "ERR: JSON parse error, stray '%' | ERR: JSON parse error, expecting value" },
    { "{\"a\":%x\n\"s\"}", "ERR: JSON parse error, stray '%' | \"s\" | "
                           "ERR: JSON parse error, expecting value" },
    { "{\"id\": 1.}", "ERR: JSON parse error, stray '1.}'" },
    { "{\"id\": 01}", "ERR: JSON parse error, stray '01' | ERR: JSON parse error, expecting value" },
    { "{\"id\": -}", "ERR: JSON parse error, stray '-}'" },
    { "{\"id\":1,\"id\":2}", "ERR: JSON parse error, duplicate key" },
    /* numbers as QEMU keeps them */
    { "{\"id\":1.5e3}", "{\"id\": 1500}" },
    { "{\"id\":-0}", "{\"id\": 0}" },
    { "{\"id\":18446744073709551615}", "{\"id\": 18446744073709551615}" },
    { "{\"id\":12345678901234567890123}", "{\"id\": 1.2345678901234568e+22}" },
    { "{\"id\":\"\\ud83d\\ude00\"}", "{\"id\": \"\\uD83D\\uDE00\"}" },
};

static void test_cases(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            g_autofree char *got = split(cases[i].in, strlen(cases[i].in), bytewise);
            if (strcmp(got, cases[i].out)) {
                g_test_message("input %s (bytewise %d)", cases[i].in, bytewise);
            }
            g_assert_cmpstr(got, ==, cases[i].out);
        }
    }
}

static void test_types(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(QblkJson) v = qmp_json_parse("{'a': 9223372036854775807, 'b': "
                                           "9223372036854775808, 'c': 1.0, 'd': null}", &err);

    g_assert_no_error(err);
    g_assert_cmpint(qblk_json_type(qblk_json_get(v, "a")), ==, QBLK_JSON_INT);
    g_assert_cmpint(qblk_json_type(qblk_json_get(v, "b")), ==, QBLK_JSON_UINT);
    g_assert_cmpint(qblk_json_type(qblk_json_get(v, "c")), ==, QBLK_JSON_DOUBLE);
    g_assert_cmpint(qblk_json_type(qblk_json_get(v, "d")), ==, QBLK_JSON_NULL);
}

static void test_parse_whole(void)
{
    g_autoptr(GError) err = NULL;
    QblkJson *v = qmp_json_parse("{", &err);

    g_assert_null(v);
    g_assert_cmpstr(err->message, ==, "JSON parse error, premature EOI");
    g_clear_error(&err);
    v = qmp_json_parse("{} {}", &err);
    g_assert_null(v);
    g_assert_cmpstr(err->message, ==, "Expecting at most one JSON value");
    g_clear_error(&err);
    v = qmp_json_parse("{'driver': 'null-co', 'size': 1}", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(qblk_json_get_string(qblk_json_get(v, "driver")), ==, "null-co");
    qblk_json_free(v);
}

/* 1025 open brackets: QEMU's nesting error, then each stray ']' is a
 * message of its own; 1024 still parse. */
static void test_nesting(void)
{
    GString *in = g_string_new(NULL);
    g_autofree char *got = NULL;

    for (int i = 0; i < 1024; i++) {
        g_string_append_c(in, '[');
    }
    for (int i = 0; i < 1024; i++) {
        g_string_append_c(in, ']');
    }
    got = split(in->str, in->len, false);
    g_assert_true(g_str_has_prefix(got, "[[[["));
    g_clear_pointer(&got, g_free);
    g_string_printf(in, "[[");
    for (int i = 0; i < 1024; i++) {
        g_string_append_c(in, '[');
    }
    got = split(in->str, in->len, false);
    g_assert_cmpstr(got, ==, "ERR: JSON nesting depth limit exceeded");
    g_string_free(in, TRUE);
}

/* A client sending an endless string or an endless run of brackets gets
 * errors and the splitter never holds more than the token limit. */
static void test_limits(void)
{
    Collected c = { g_ptr_array_new_with_free_func(g_free) };
    QmpJsonSplitter *s = qmp_json_splitter_new(collect, &c);
    size_t chunk = 1 << 20;
    g_autofree char *buf = g_malloc(chunk);
    size_t peak = 0;

    qmp_json_splitter_feed(s, "\"", 1);
    memset(buf, 'a', chunk);
    for (int i = 0; i < 100; i++) {
        qmp_json_splitter_feed(s, buf, chunk);
        peak = MAX(peak, qmp_json_splitter_pending(s));
    }
    g_assert_cmpuint(peak, <=, QMP_JSON_MAX_TOKEN_SIZE + chunk);
    g_assert_cmpuint(c.out->len, >=, 1);
    g_assert_cmpstr(c.out->pdata[0], ==, "ERR: JSON token size limit exceeded");

    /* The stream recovers: the next message parses. */
    qmp_json_splitter_feed(s, "\n{}", 3);
    g_assert_cmpstr(c.out->pdata[c.out->len - 1], ==, "{}");

    memset(buf, '[', chunk);
    for (int i = 0; i < 20; i++) {
        qmp_json_splitter_feed(s, buf, chunk);
        g_assert_cmpuint(qmp_json_splitter_pending(s), <, 1 << 20);
    }
    g_assert_cmpstr(c.out->pdata[c.out->len - 1], ==, "ERR: JSON nesting depth limit exceeded");
    qmp_json_splitter_free(s);
    g_ptr_array_free(c.out, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-json/cases", test_cases);
    g_test_add_func("/qmp-json/types", test_types);
    g_test_add_func("/qmp-json/parse-whole", test_parse_whole);
    g_test_add_func("/qmp-json/nesting", test_nesting);
    g_test_add_func("/qmp-json/limits", test_limits);
    return g_test_run();
}
