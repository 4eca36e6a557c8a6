/* QMP input. A byte-at-a-time lexer cuts the stream into tokens and a
 * streamer counts brackets to find where each message ends (QEMU's rules:
 * objects may follow each other without separators, a top-level scalar or
 * a stray closing bracket is a message of its own, a bad byte ends the
 * message with "stray '...'" and the lexer skips to the next delimiter).
 * A small recursive check of the token list produces QEMU's parse errors;
 * a well-formed message is rewritten in plain JSON (single quotes gone)
 * and parsed by json-glib into a QblkJson tree. */
#include <errno.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "qmp/json-parse.h"

typedef enum {
    TOK_LCURLY, TOK_RCURLY, TOK_LSQUARE, TOK_RSQUARE, TOK_COLON, TOK_COMMA,
    TOK_STRING, TOK_INTEGER, TOK_FLOAT, TOK_KEYWORD,
} TokenType;

typedef struct Token {
    TokenType type;
    size_t start, len;             /* in QmpJsonSplitter.text */
} Token;

typedef enum {
    LEX_START,
    LEX_STRING,
    LEX_KEYWORD,
    LEX_RECOVERY,                  /* after a bad byte: skip to a delimiter */
    /* numbers, by what was read last */
    LEX_NUM_MINUS, LEX_NUM_ZERO, LEX_NUM_INT, LEX_NUM_DOT, LEX_NUM_FRAC,
    LEX_NUM_E, LEX_NUM_ESIGN, LEX_NUM_EXP,
} LexState;

struct QmpJsonSplitter {
    QmpJsonEmitFunc *emit;
    void *opaque;
    LexState state;
    char quote;                    /* LEX_STRING: ' or " */
    bool escape;                   /* LEX_STRING: after a backslash */
    size_t token_start;            /* where the token being lexed starts in text */
    GString *text;                 /* every token of the message in progress */
    GArray *tokens;                /* Token */
    int braces, brackets;
};

/* ----- Checking the token list and writing it as plain JSON ----- */

typedef struct Parser {
    const char *text;
    const Token *tokens;
    guint n, pos;
    GString *out;                  /* the plain JSON given to json-glib */
    char *error;                   /* the first error, without "JSON parse error, " */
    guint depth;
} Parser;

static const Token *parser_peek(Parser *p)
{
    return p->pos < p->n ? &p->tokens[p->pos] : NULL;
}

static bool parser_fail(Parser *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool parser_fail(Parser *p, const char *fmt, ...)
{
    va_list ap;

    if (!p->error) {
        va_start(ap, fmt);
        p->error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
    }
    return false;
}

static int hex_value(char c)
{
    return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

/* Reads the 4 hex digits after "\u" at s (s points at 'u'); -1 if bad. */
static int read_u_escape(const char *s, const char *end)
{
    int v = 0;

    if (end - s < 5) {
        return -1;
    }
    for (int i = 1; i <= 4; i++) {
        int h = hex_value(s[i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* Decodes a string token (quotes included) into UTF-8 and writes it to
 * out as a plain JSON string with the tag character in front ('s' marks a
 * client string, see value_from_node; keys get none: tag 0). */
static bool parse_string(Parser *p, const Token *t, GString *out, char tag, GString **decoded)
{
    const char *s = p->text + t->start + 1;
    const char *end = p->text + t->start + t->len - 1;
    g_autoptr(GString) raw = g_string_new(NULL);

    while (s < end) {
        if (*s != '\\') {
            g_string_append_c(raw, *s++);
            continue;
        }
        s++;
        switch (*s) {
        case '"': case '\'': case '\\': case '/':
            g_string_append_c(raw, *s);
            break;
        case 'b': g_string_append_c(raw, '\b'); break;
        case 'f': g_string_append_c(raw, '\f'); break;
        case 'n': g_string_append_c(raw, '\n'); break;
        case 'r': g_string_append_c(raw, '\r'); break;
        case 't': g_string_append_c(raw, '\t'); break;
        case 'u': {
            int cp = read_u_escape(s, end);
            int len = 5;
            if (cp >= 0xD800 && cp < 0xDC00 && end - s >= 11 && s[5] == '\\' && s[6] == 'u') {
                int lo = read_u_escape(s + 6, end);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    len = 11;
                }
            }
            if (cp < 0 || (cp >= 0xD800 && cp < 0xE000)) {
                return parser_fail(p, "%.*s is not a valid Unicode character",
                                   (int)MIN(6, end - s + 1), s - 1);
            }
            g_string_append_unichar(raw, cp);
            s += len;
            continue;
        }
        default:
            return parser_fail(p, "invalid escape sequence in string");
        }
        s++;
    }
    if (!g_utf8_validate(raw->str, raw->len, NULL)) {
        return parser_fail(p, "invalid UTF-8 sequence in string");
    }
    if (decoded) {
        *decoded = g_string_new_len(raw->str, raw->len);
    }
    g_string_append_c(out, '"');
    if (tag) {
        g_string_append_c(out, tag);
    }
    for (const char *c = raw->str; c < raw->str + raw->len; c++) {
        if (*c == '"' || *c == '\\') {
            g_string_append_printf(out, "\\%c", *c);
        } else if ((unsigned char)*c < 0x20) {
            g_string_append_printf(out, "\\u%04x", (unsigned char)*c);
        } else {
            g_string_append_c(out, *c);
        }
    }
    g_string_append_c(out, '"');
    return true;
}

/* Integers that fit int64 go to json-glib as they are; larger ones would
 * be wrapped by it, so they travel as a tagged string: 'u' for a uint64,
 * else a double as QEMU makes of them. */
static void write_integer(Parser *p, const Token *t)
{
    g_autofree char *digits = g_strndup(p->text + t->start, t->len);
    char *end;
    guint64 u;

    errno = 0;
    g_ascii_strtoll(digits, &end, 10);
    if (errno == 0) {
        g_string_append(p->out, digits);
        return;
    }
    errno = 0;
    u = g_ascii_strtoull(digits, &end, 10);
    if (digits[0] != '-' && errno == 0) {
        g_string_append_printf(p->out, "\"u%" G_GUINT64_FORMAT "\"", u);
    } else {
        g_string_append_printf(p->out, "\"d%s\"", digits);
    }
}

static bool parse_value(Parser *p);

static bool parse_object(Parser *p)
{
    g_autoptr(GHashTable) keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const Token *t;

    g_string_append_c(p->out, '{');
    t = parser_peek(p);
    if (t && t->type == TOK_RCURLY) {
        p->pos++;
        g_string_append_c(p->out, '}');
        return true;
    }
    for (;;) {
        t = parser_peek(p);
        if (!t || t->type != TOK_STRING) {
            /* A key that is no value at all is "expecting value". */
            if (!t || t->type == TOK_RCURLY || t->type == TOK_RSQUARE ||
                t->type == TOK_COLON || t->type == TOK_COMMA) {
                return parser_fail(p, "expecting value");
            }
            if (!parse_value(p)) {
                return false;
            }
            return parser_fail(p, "key is not a string in object");
        }
        p->pos++;
        /* Keys carry no tag: json-glib keeps them apart from values. */
        GString *key = NULL;
        if (!parse_string(p, t, p->out, 0, &key)) {
            return false;
        }
        if (!g_hash_table_add(keys, g_string_free(key, FALSE))) {
            return parser_fail(p, "duplicate key");
        }
        t = parser_peek(p);
        if (!t || t->type != TOK_COLON) {
            return parser_fail(p, "missing : in object pair");
        }
        p->pos++;
        g_string_append_c(p->out, ':');
        if (!parse_value(p)) {
            return false;
        }
        t = parser_peek(p);
        if (t && t->type == TOK_RCURLY) {
            p->pos++;
            g_string_append_c(p->out, '}');
            return true;
        }
        if (!t || t->type != TOK_COMMA) {
            return parser_fail(p, "expected separator in dict");
        }
        p->pos++;
        g_string_append_c(p->out, ',');
    }
}

static bool parse_array(Parser *p)
{
    const Token *t;

    g_string_append_c(p->out, '[');
    t = parser_peek(p);
    if (t && t->type == TOK_RSQUARE) {
        p->pos++;
        g_string_append_c(p->out, ']');
        return true;
    }
    for (;;) {
        if (!parse_value(p)) {
            return false;
        }
        t = parser_peek(p);
        if (t && t->type == TOK_RSQUARE) {
            p->pos++;
            g_string_append_c(p->out, ']');
            return true;
        }
        if (!t || t->type != TOK_COMMA) {
            return parser_fail(p, "expected separator in array");
        }
        p->pos++;
        g_string_append_c(p->out, ',');
    }
}

static bool parse_value(Parser *p)
{
    const Token *t = parser_peek(p);
    bool ok;

    if (!t) {
        return parser_fail(p, "expecting value");
    }
    p->pos++;
    switch (t->type) {
    case TOK_LCURLY:
    case TOK_LSQUARE:
        p->depth++;
        ok = t->type == TOK_LCURLY ? parse_object(p) : parse_array(p);
        p->depth--;
        return ok;
    case TOK_STRING:
        return parse_string(p, t, p->out, 's', NULL);
    case TOK_INTEGER:
        write_integer(p, t);
        return true;
    case TOK_FLOAT:
        /* json-glib wants a digit after '.', as JSON does; so does the lexer. */
        g_string_append_len(p->out, p->text + t->start, t->len);
        return true;
    case TOK_KEYWORD: {
        g_autofree char *kw = g_strndup(p->text + t->start, t->len);
        if (strcmp(kw, "true") && strcmp(kw, "false") && strcmp(kw, "null")) {
            return parser_fail(p, "invalid keyword '%s'", kw);
        }
        g_string_append(p->out, kw);
        return true;
    }
    default:
        return parser_fail(p, "expecting value");
    }
}

/* ----- json-glib's tree to QblkJson ----- */

static QblkJson *value_from_node(JsonNode *node)
{
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_NULL:
        return qblk_json_null();
    case JSON_NODE_OBJECT: {
        JsonObject *o = json_node_get_object(node);
        QblkJson *obj = qblk_json_object();
        g_autoptr(GList) names = json_object_get_members(o);
        for (GList *l = names; l; l = l->next) {
            qblk_json_set(obj, l->data, value_from_node(json_object_get_member(o, l->data)));
        }
        return obj;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *a = json_node_get_array(node);
        QblkJson *arr = qblk_json_array();
        for (guint i = 0; i < json_array_get_length(a); i++) {
            qblk_json_append(arr, value_from_node(json_array_get_element(a, i)));
        }
        return arr;
    }
    case JSON_NODE_VALUE:
        break;
    }
    switch (json_node_get_value_type(node)) {
    case G_TYPE_BOOLEAN:
        return qblk_json_bool(json_node_get_boolean(node));
    case G_TYPE_INT64:
        return qblk_json_int(json_node_get_int(node));
    case G_TYPE_DOUBLE:
        return qblk_json_double(json_node_get_double(node));
    default: {
        /* Every string was tagged by parse_string or write_integer. */
        const char *s = json_node_get_string(node);
        if (s[0] == 'u') {
            return qblk_json_uint(g_ascii_strtoull(s + 1, NULL, 10));
        } else if (s[0] == 'd') {
            return qblk_json_double(g_ascii_strtod(s + 1, NULL));
        }
        return qblk_json_string(s + 1);
    }
    }
}

/* Checks and converts one complete message. */
static QblkJson *parse_tokens(const char *text, const Token *tokens, guint n, GError **errp)
{
    Parser p = { .text = text, .tokens = tokens, .n = n, .out = g_string_new(NULL) };
    g_autoptr(JsonParser) jp = NULL;
    g_autoptr(GError) local_err = NULL;
    QblkJson *value = NULL;

    if (!parse_value(&p)) {
        qblk_error_set(errp, "JSON parse error, %s", p.error);
        goto out;
    }
    jp = json_parser_new();
    if (!json_parser_load_from_data(jp, p.out->str, p.out->len, &local_err)) {
        /* Not expected: the text was checked above. */
        qblk_error_set(errp, "JSON parse error, %s", local_err->message);
        goto out;
    }
    value = value_from_node(json_parser_get_root(jp));
out:
    g_free(p.error);
    g_string_free(p.out, TRUE);
    return value;
}

/* ----- The streamer ----- */

static void splitter_reset(QmpJsonSplitter *s)
{
    g_array_set_size(s->tokens, 0);
    /* Give a huge message's memory back, keep a small buffer. */
    if (s->text->allocated_len > 65536) {
        g_string_free(s->text, TRUE);
        s->text = g_string_sized_new(1024);
    } else {
        g_string_truncate(s->text, 0);
    }
    s->braces = s->brackets = 0;
}

static void splitter_emit_error(QmpJsonSplitter *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void splitter_emit_error(QmpJsonSplitter *s, const char *fmt, ...)
{
    va_list ap;
    GError *err;

    va_start(ap, fmt);
    err = g_error_new_valist(QBLK_ERROR, QBLK_ERROR_FAILED, fmt, ap);
    va_end(ap);
    splitter_reset(s);
    s->emit(s->opaque, NULL, err);
}

static void splitter_emit_message(QmpJsonSplitter *s)
{
    GError *err = NULL;
    QblkJson *value = parse_tokens(s->text->str, (Token *)s->tokens->data,
                                   s->tokens->len, &err);

    splitter_reset(s);
    s->emit(s->opaque, value, err);
}

/* A token is complete: the last len bytes of text. */
static void splitter_push_token(QmpJsonSplitter *s, TokenType type)
{
    Token t = { .type = type, .start = s->token_start, .len = s->text->len - s->token_start };

    g_array_append_val(s->tokens, t);
    switch (type) {
    case TOK_LCURLY: s->braces++; break;
    case TOK_RCURLY: s->braces--; break;
    case TOK_LSQUARE: s->brackets++; break;
    case TOK_RSQUARE: s->brackets--; break;
    default: break;
    }
    if (s->braces < 0 || s->brackets < 0 || (s->braces == 0 && s->brackets == 0)) {
        splitter_emit_message(s);
    } else if (s->braces + s->brackets > QMP_JSON_MAX_NESTING) {
        splitter_emit_error(s, "JSON nesting depth limit exceeded");
    } else if (s->text->len > QMP_JSON_MAX_TOKEN_SIZE) {
        splitter_emit_error(s, "JSON token size limit exceeded");
    } else if (s->tokens->len > QMP_JSON_MAX_TOKEN_COUNT) {
        splitter_emit_error(s, "JSON token count limit exceeded");
    }
}

/* A byte no token may hold: the message ends with QEMU's "stray" error
 * naming the token so far (the bad byte included). */
static void splitter_stray(QmpJsonSplitter *s)
{
    g_autofree char *bad = g_strdup(s->text->str + s->token_start);

    s->state = LEX_RECOVERY;
    splitter_emit_error(s, "JSON parse error, stray '%s'", bad);
}

/* Where skipping after a bad byte stops (observed on qsd 7.2: brackets,
 * ':' ',' and newline; a space does not). */
static bool ends_recovery(char c)
{
    return c != 0 && strchr("{}[]:,\n", c);
}

/* Ends a complete number or keyword token (the byte after it is lexed
 * next). */
static void splitter_end_scalar(QmpJsonSplitter *s)
{
    switch (s->state) {
    case LEX_KEYWORD:
        splitter_push_token(s, TOK_KEYWORD);
        break;
    case LEX_NUM_ZERO:
    case LEX_NUM_INT:
        splitter_push_token(s, TOK_INTEGER);
        break;
    case LEX_NUM_FRAC:
    case LEX_NUM_EXP:
        splitter_push_token(s, TOK_FLOAT);
        break;
    default:
        g_assert_not_reached();
    }
    s->state = LEX_START;
}

static bool number_accepts(LexState st, char c, LexState *next)
{
    bool digit = g_ascii_isdigit(c);

    switch (st) {
    case LEX_NUM_MINUS:
        *next = c == '0' ? LEX_NUM_ZERO : LEX_NUM_INT;
        return digit;
    case LEX_NUM_ZERO:
    case LEX_NUM_INT:
        if (digit && st == LEX_NUM_INT) {
            *next = LEX_NUM_INT;
            return true;
        }
        *next = c == '.' ? LEX_NUM_DOT : LEX_NUM_E;
        return c == '.' || c == 'e' || c == 'E';
    case LEX_NUM_DOT:
        *next = LEX_NUM_FRAC;
        return digit;
    case LEX_NUM_FRAC:
        *next = digit ? LEX_NUM_FRAC : LEX_NUM_E;
        return digit || c == 'e' || c == 'E';
    case LEX_NUM_E:
        *next = digit ? LEX_NUM_EXP : LEX_NUM_ESIGN;
        return digit || c == '+' || c == '-';
    case LEX_NUM_ESIGN:
    case LEX_NUM_EXP:
        *next = LEX_NUM_EXP;
        return digit;
    default:
        return false;
    }
}

static bool number_complete(LexState st)
{
    return st == LEX_NUM_ZERO || st == LEX_NUM_INT || st == LEX_NUM_FRAC || st == LEX_NUM_EXP;
}

static void splitter_feed_char(QmpJsonSplitter *s, char c)
{
    LexState next;

    switch (s->state) {
    case LEX_RECOVERY:
        if (!ends_recovery(c)) {
            return;
        }
        s->state = LEX_START;
        break;
    case LEX_STRING:
        g_string_append_c(s->text, c);
        /* Control characters, and bytes no UTF-8 text holds (0xC0, 0xC1,
         * 0xF5..0xFF), end the string as QEMU's lexer does. */
        if ((unsigned char)c < 0x20 || (unsigned char)c == 0xC0 || (unsigned char)c == 0xC1 ||
            (unsigned char)c >= 0xF5) {
            splitter_stray(s);
        } else if (s->escape) {
            s->escape = false;
        } else if (c == '\\') {
            s->escape = true;
        } else if (c == s->quote) {
            s->state = LEX_START;
            splitter_push_token(s, TOK_STRING);
        } else if (s->text->len - s->token_start > QMP_JSON_MAX_TOKEN_SIZE) {
            s->state = LEX_RECOVERY;
            splitter_emit_error(s, "JSON token size limit exceeded");
        }
        return;
    case LEX_KEYWORD:
        if (g_ascii_isalpha(c)) {
            g_string_append_c(s->text, c);
            if (s->text->len - s->token_start > QMP_JSON_MAX_TOKEN_SIZE) {
                s->state = LEX_RECOVERY;
                splitter_emit_error(s, "JSON token size limit exceeded");
            }
            return;
        }
        splitter_end_scalar(s);
        break;
    case LEX_START:
        break;
    default: /* numbers */
        if (number_accepts(s->state, c, &next)) {
            g_string_append_c(s->text, c);
            s->state = next;
            if (s->text->len - s->token_start > QMP_JSON_MAX_TOKEN_SIZE) {
                s->state = LEX_RECOVERY;
                splitter_emit_error(s, "JSON token size limit exceeded");
            }
            return;
        }
        /* "1." "-" "1e" end badly, and so does "01": the byte that
         * ended them belongs to the stray token QEMU names. */
        if (!number_complete(s->state) || (s->state == LEX_NUM_ZERO && g_ascii_isdigit(c))) {
            g_string_append_c(s->text, c);
            splitter_stray(s);
            return;
        }
        splitter_end_scalar(s);
        break;
    }

    /* LEX_START: c begins a token (or is whitespace). */
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        return;
    }
    s->token_start = s->text->len;
    g_string_append_c(s->text, c);
    switch (c) {
    case '{': splitter_push_token(s, TOK_LCURLY); return;
    case '}': splitter_push_token(s, TOK_RCURLY); return;
    case '[': splitter_push_token(s, TOK_LSQUARE); return;
    case ']': splitter_push_token(s, TOK_RSQUARE); return;
    case ':': splitter_push_token(s, TOK_COLON); return;
    case ',': splitter_push_token(s, TOK_COMMA); return;
    case '"':
    case '\'':
        s->state = LEX_STRING;
        s->quote = c;
        s->escape = false;
        return;
    case '-':
        s->state = LEX_NUM_MINUS;
        return;
    case '0':
        s->state = LEX_NUM_ZERO;
        return;
    default:
        if (c >= '1' && c <= '9') {
            s->state = LEX_NUM_INT;
        } else if (g_ascii_isalpha(c)) {
            s->state = LEX_KEYWORD;
        } else {
            splitter_stray(s);
        }
    }
}

QmpJsonSplitter *qmp_json_splitter_new(QmpJsonEmitFunc *emit, void *opaque)
{
    QmpJsonSplitter *s = g_new0(QmpJsonSplitter, 1);

    s->emit = emit;
    s->opaque = opaque;
    s->text = g_string_sized_new(1024);
    s->tokens = g_array_new(FALSE, FALSE, sizeof(Token));
    return s;
}

void qmp_json_splitter_feed(QmpJsonSplitter *s, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        splitter_feed_char(s, buf[i]);
    }
}

size_t qmp_json_splitter_pending(const QmpJsonSplitter *s)
{
    return s->text->len + s->tokens->len * sizeof(Token);
}

void qmp_json_splitter_free(QmpJsonSplitter *s)
{
    if (s) {
        g_string_free(s->text, TRUE);
        g_array_free(s->tokens, TRUE);
        g_free(s);
    }
}

/* ----- Whole-text parsing ----- */

typedef struct ParseOne {
    QblkJson *value;
    GError *err;
    guint count;
} ParseOne;

static void parse_one_emit(void *opaque, QblkJson *value, GError *err)
{
    ParseOne *po = opaque;

    if (po->count++ == 0) {
        po->value = value;
        po->err = err;
        return;
    }
    qblk_json_free(value);
    if (err) {
        g_error_free(err);
    }
    if (!po->err) {
        qblk_json_free(g_steal_pointer(&po->value));
        po->err = g_error_new(QBLK_ERROR, QBLK_ERROR_FAILED, "Expecting at most one JSON value");
    }
}

QblkJson *qmp_json_parse(const char *text, GError **errp)
{
    ParseOne po = { 0 };
    QmpJsonSplitter *s = qmp_json_splitter_new(parse_one_emit, &po);

    qmp_json_splitter_feed(s, text, strlen(text));
    /* The end of the text ends a trailing number or keyword. */
    qmp_json_splitter_feed(s, " ", 1);
    if (!po.count && !po.err) {
        po.err = g_error_new(QBLK_ERROR, QBLK_ERROR_FAILED, "JSON parse error, premature EOI");
    } else if (s->tokens->len || s->state == LEX_STRING) {
        qblk_json_free(g_steal_pointer(&po.value));
        g_clear_error(&po.err);
        po.err = g_error_new(QBLK_ERROR, QBLK_ERROR_FAILED, "JSON parse error, premature EOI");
    }
    qmp_json_splitter_free(s);
    if (po.err) {
        g_propagate_error(errp, po.err);
        return NULL;
    }
    return po.value;
}
