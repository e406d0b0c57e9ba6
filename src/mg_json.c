/*
 * mg_json — validating single-pass scanner for request bodies (see mg_json.h for why).
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mg_json.h"

struct scan {
    const unsigned char *p;
    const unsigned char *end;
    const unsigned char *base;
    int depth;
};

static inline void
skip_ws(struct scan *s)
{
    while (s->p < s->end && *s->p <= ' ' &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not valid. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n, i;
    unsigned cp;

    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 ||
        cp > 0x10FFFF))) {
        return 0;
    }
    return n;
}

static void
put_utf8(char *buf, size_t *o, size_t cap, unsigned cp, int *overflow)
{
    unsigned char tmp[4];
    size_t n, i;

    if (cp < 0x80) {
        tmp[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (unsigned char)(0xC0 | (cp >> 6));
        tmp[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (unsigned char)(0xE0 | (cp >> 12));
        tmp[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        tmp[0] = (unsigned char)(0xF0 | (cp >> 18));
        tmp[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    for (i = 0; i < n; i++) {
        if (buf == NULL) {
            continue;
        }
        if (*o + 1 >= cap) {
            *overflow = 1;
            return;
        }
        buf[(*o)++] = (char)tmp[i];
    }
}

static int
read_hex4(struct scan *s, unsigned *v)
{
    int i, h;

    if (s->end - s->p < 4) {
        return MG_JSON_INVALID;
    }
    *v = 0;
    for (i = 0; i < 4; i++) {
        h = hexval(s->p[i]);
        if (h < 0) {
            return MG_JSON_INVALID;
        }
        *v = (*v << 4) | (unsigned)h;
    }
    s->p += 4;
    return MG_JSON_OK;
}

/*
 * Skips the run of plain string bytes at s->p (printable ASCII other than '"' and '\\'): the bulk
 * of every prompt. With SSE2, 16 bytes per step; a 256 KiB prompt is then a few tens of
 * microseconds, not the better part of a millisecond.
 */
static inline const unsigned char *
plain_run(const unsigned char *p, const unsigned char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1F);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* bytes < 0x20 or >= 0x80: signed v <= 0x1F catches both (0x80..0xFF are negative) */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, _mm_add_epi8(ctl, _mm_set1_epi8(1))));
        int mask = _mm_movemask_epi8(bad);
        if (mask != 0) {
            return p + __builtin_ctz((unsigned)mask);
        }
        p += 16;
    }
#endif
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
        p++;
    }
    return p;
}

/*
 * Scans a string starting at the opening quote. When buf is not NULL the decoded text goes there
 * (NUL-terminated); *overflow is set when it does not fit.
 */
/* The escape after a backslash (s->p past the backslash) as a code point; surrogates paired. */
static int
scan_escape(struct scan *s, unsigned *cp)
{
    unsigned lo;

    if (s->p >= s->end) {
        return MG_JSON_INVALID;
    }
    switch (*s->p++) {
    case '"': *cp = '"'; return MG_JSON_OK;
    case '\\': *cp = '\\'; return MG_JSON_OK;
    case '/': *cp = '/'; return MG_JSON_OK;
    case 'b': *cp = '\b'; return MG_JSON_OK;
    case 'f': *cp = '\f'; return MG_JSON_OK;
    case 'n': *cp = '\n'; return MG_JSON_OK;
    case 'r': *cp = '\r'; return MG_JSON_OK;
    case 't': *cp = '\t'; return MG_JSON_OK;
    case 'u':
        break;
    default:
        return MG_JSON_INVALID;
    }
    if (read_hex4(s, cp) != MG_JSON_OK) {
        return MG_JSON_INVALID;
    }
    if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
        return MG_JSON_INVALID;   /* a low surrogate alone */
    }
    if (*cp < 0xD800 || *cp > 0xDBFF) {
        return MG_JSON_OK;
    }
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') {
        return MG_JSON_INVALID;
    }
    s->p += 2;
    if (read_hex4(s, &lo) != MG_JSON_OK || lo < 0xDC00 || lo > 0xDFFF) {
        return MG_JSON_INVALID;
    }
    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
    return MG_JSON_OK;
}

static int
scan_string(struct scan *s, char *buf, size_t cap, size_t *outlen, int *overflow)
{
    size_t o = 0;
    unsigned cp;

    s->p++;   /* opening quote */
    for (;;) {
        const unsigned char *run = s->p;
        s->p = plain_run(s->p, s->end);
        if (buf != NULL && s->p > run) {
            size_t n = (size_t)(s->p - run);
            if (o + n + 1 > cap) {
                *overflow = 1;
                buf = NULL;
            } else {
                memcpy(buf + o, run, n);
                o += n;
            }
        }
        if (s->p >= s->end) {
            return MG_JSON_INVALID;
        }
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            if (buf != NULL) {
                buf[o] = '\0';
            }
            if (outlen != NULL) {
                *outlen = o;
            }
            return MG_JSON_OK;
        }
        if (c < 0x20) {
            return MG_JSON_INVALID;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(s->p, s->end);
            if (n == 0) {
                return MG_JSON_INVALID;
            }
            if (buf != NULL) {
                if (o + n + 1 > cap) {
                    *overflow = 1;
                    buf = NULL;
                } else {
                    memcpy(buf + o, s->p, n);
                    o += n;
                }
            }
            s->p += n;
            continue;
        }
        /* backslash */
        s->p++;
        if (scan_escape(s, &cp) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (buf != NULL) {
            put_utf8(buf, &o, cap, cp, overflow);
            if (*overflow) {
                buf = NULL;
            }
        }
    }
}

static int
scan_number(struct scan *s)
{
    const unsigned char *p = s->p, *e = s->end;

    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e) {
        return MG_JSON_INVALID;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return MG_JSON_INVALID;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') {
            return MG_JSON_INVALID;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return MG_JSON_INVALID;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    s->p = p;
    return MG_JSON_OK;
}

static int
scan_literal(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return MG_JSON_INVALID;
    }
    s->p += n;
    return MG_JSON_OK;
}

static int scan_value(struct scan *s);

/* Past the opening bracket at s->p: 1 when an item follows, 0 when the container is empty (and
 * now closed), -1 when the input ends. */
static int
open_container(struct scan *s, unsigned char close)
{
    s->p++;
    skip_ws(s);
    if (s->p >= s->end) {
        return -1;
    }
    if (*s->p == close) {
        s->p++;
        return 0;
    }
    return 1;
}

/* After an item: 1 past a ',' with another item to come, 0 past the closing bracket, -1 for
 * anything else (a trailing comma included). */
static int
next_item(struct scan *s, unsigned char close)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        skip_ws(s);
        return s->p < s->end && *s->p != close ? 1 : -1;
    }
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    return -1;
}

/* A member's key and its colon; leaves s->p on the value. The key is decoded into key when it
 * is not NULL (see scan_string). */
static int
scan_key(struct scan *s, char *key, size_t cap, size_t *klen, int *over)
{
    if (*s->p != '"' || scan_string(s, key, cap, klen, over) != MG_JSON_OK) {
        return MG_JSON_INVALID;
    }
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':') {
        return MG_JSON_INVALID;
    }
    s->p++;
    skip_ws(s);
    return s->p < s->end ? MG_JSON_OK : MG_JSON_INVALID;
}

static int
scan_container(struct scan *s, int object)
{
    unsigned char close = object ? '}' : ']';
    int more, rc;

    if (++s->depth > MG_JSON_MAX_DEPTH) {
        return MG_JSON_INVALID;
    }
    for (more = open_container(s, close); more == 1; more = next_item(s, close)) {
        if (object && scan_key(s, NULL, 0, NULL, NULL) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if ((rc = scan_value(s)) != MG_JSON_OK) {
            return rc;
        }
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    s->depth--;
    return MG_JSON_OK;
}

static int
scan_value(struct scan *s)
{
    skip_ws(s);
    if (s->p >= s->end) {
        return MG_JSON_INVALID;
    }
    switch (*s->p) {
    case '{': return scan_container(s, 1);
    case '[': return scan_container(s, 0);
    case '"': return scan_string(s, NULL, 0, NULL, NULL);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default: return scan_number(s);
    }
}

/*
 * The value of "stream_options": records whether include_usage is true and, if not, the edit that
 * would make it so (see struct mg_json_req).
 */
static int
scan_stream_options(struct scan *s, struct mg_json_req *out)
{
    const unsigned char *start = s->p;
    int more, members = 0;

    out->include_usage = 0;
    if (*s->p != '{') {
        if (scan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        out->usage_at = (size_t)(start - s->base);
        out->usage_del = (size_t)(s->p - start);
        out->usage_ins = "{\"include_usage\":true}";
        return MG_JSON_OK;
    }
    /* by default: insert as the first member, right after the brace */
    out->usage_at = (size_t)(start + 1 - s->base);
    out->usage_del = 0;
    out->usage_ins = NULL;
    for (more = open_container(s, '}'); more == 1; more = next_item(s, '}')) {
        const unsigned char *v;
        char key[16];
        size_t klen = 0;
        int over = 0;

        if (scan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        members++;
        v = s->p;
        if (scan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (!over && klen == 13 && memcmp(key, "include_usage", 13) == 0) {
            out->include_usage = s->p - v == 4 && memcmp(v, "true", 4) == 0;
            out->usage_at = (size_t)(v - s->base);
            out->usage_del = (size_t)(s->p - v);
            out->usage_ins = "true";
        }
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    if (out->usage_ins == NULL) {
        /* an empty object ("{}", "{ }") takes the member alone; else it goes before the first */
        out->usage_ins = members == 0 ? "\"include_usage\":true" : "\"include_usage\":true,";
    }
    return MG_JSON_OK;
}

/* ---- stream chunks ------------------------------------------------------------------------- */

/* 1 when the value at s->p holds something: not null, "", [] or {} (s->p does not move). */
static int
holds_something(const struct scan *s)
{
    const unsigned char *p = s->p;
    unsigned char open = *p;

    switch (open) {
    case 'n':
        return 0;
    case '"':
        return s->end - p > 1 && p[1] != '"';
    case '[':
    case '{':
        for (p++; p < s->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++) {
        }
        return p < s->end && *p != (open == '[' ? ']' : '}');
    default:
        return 1;
    }
}

#define KEY_IS(lit) (!over && klen == sizeof(lit) - 1 && memcmp(key, lit, klen) == 0)

/* The members of a choice's "delta" (s->p on its '{'): output unless only "role" holds any. */
static int
chunk_delta(struct scan *s, int *kind)
{
    int more;

    if (++s->depth > MG_JSON_MAX_DEPTH) {
        return MG_JSON_INVALID;
    }
    for (more = open_container(s, '}'); more == 1; more = next_item(s, '}')) {
        char key[8];
        size_t klen = 0;
        int over = 0;

        if (scan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (!KEY_IS("role") && holds_something(s)) {
            *kind |= MG_JSON_CHUNK_OUTPUT;
        }
        if (scan_value(s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
    }
    s->depth--;
    return more == 0 ? MG_JSON_OK : MG_JSON_INVALID;
}

/* One element of "choices" (any value; only objects are read). */
static int
chunk_choice(struct scan *s, int *kind)
{
    int more;

    skip_ws(s);
    if (s->p >= s->end || *s->p != '{') {
        return scan_value(s);
    }
    if (++s->depth > MG_JSON_MAX_DEPTH) {
        return MG_JSON_INVALID;
    }
    for (more = open_container(s, '}'); more == 1; more = next_item(s, '}')) {
        char key[16];
        size_t klen = 0;
        int over = 0, rc;

        if (scan_key(s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (KEY_IS("delta") && *s->p == '{') {
            rc = chunk_delta(s, kind);
        } else {
            if (KEY_IS("text") && holds_something(s)) {
                *kind |= MG_JSON_CHUNK_OUTPUT;
            } else if (KEY_IS("finish_reason") && *s->p != 'n') {
                *kind |= MG_JSON_CHUNK_OUTPUT | MG_JSON_CHUNK_FINISH;
            }
            rc = scan_value(s);
        }
        if (rc != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
    }
    s->depth--;
    return more == 0 ? MG_JSON_OK : MG_JSON_INVALID;
}

int
mg_json_chunk_kind(const char *data, size_t len)
{
    struct scan s = {(const unsigned char *)data, (const unsigned char *)data + len,
                     (const unsigned char *)data, 1};
    int kind = 0, more;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        return 0;
    }
    for (more = open_container(&s, '}'); more == 1; more = next_item(&s, '}')) {
        char key[16];
        size_t klen = 0;
        int over = 0, rc = MG_JSON_OK, items;

        if (scan_key(&s, key, sizeof(key), &klen, &over) != MG_JSON_OK) {
            return 0;
        }
        if (KEY_IS("choices") && *s.p == '[') {
            s.depth++;
            for (items = open_container(&s, ']'); items == 1 && rc == MG_JSON_OK;
                 items = next_item(&s, ']')) {
                rc = chunk_choice(&s, &kind);
            }
            s.depth--;
            if (rc != MG_JSON_OK || items != 0) {
                return 0;
            }
            continue;
        }
        if (KEY_IS("usage") && *s.p != 'n') {
            kind |= MG_JSON_CHUNK_OUTPUT;
        }
        if (scan_value(&s) != MG_JSON_OK) {
            return 0;
        }
    }
    skip_ws(&s);
    return more == 0 && s.p == s.end ? kind : 0;
}

#undef KEY_IS

/*
 * 1 for the keys that bound an answer's length (the token limit's estimate adds the value):
 * max_tokens, max_completion_tokens, and the Responses API's max_output_tokens.
 */
static int
max_tokens_key(const char *key, size_t klen)
{
    return (klen == 10 && memcmp(key, "max_tokens", 10) == 0) ||
           (klen == 21 && memcmp(key, "max_completion_tokens", 21) == 0) ||
           (klen == 17 && memcmp(key, "max_output_tokens", 17) == 0);
}

/* The whole number p[0..e) (digits only), saturated at MG_TOKENS_MAX; 0 for any other value. */
static int64_t
whole_number(const unsigned char *p, const unsigned char *e)
{
    int64_t n = 0;

    for (; p < e; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        n = n > MG_TOKENS_MAX ? n : n * 10 + (*p - '0');
    }
    return n > MG_TOKENS_MAX ? MG_TOKENS_MAX : n;
}

int
mg_json_scan_request(const char *body, size_t len, char *buf, size_t bufsize,
                     struct mg_json_req *out)
{
    struct scan s = {(const unsigned char *)body, (const unsigned char *)body + len,
                     (const unsigned char *)body, 0};
    int have_model = 0, model_long = 0, more, rc;
    char key[24];

    memset(out, 0, sizeof(*out));
    out->model = buf;
    skip_ws(&s);
    if (s.p >= s.end) {
        return MG_JSON_INVALID;
    }
    if (*s.p != '{') {
        if (scan_value(&s) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        skip_ws(&s);
        return s.p == s.end ? MG_JSON_NOT_OBJECT : MG_JSON_INVALID;
    }
    s.depth = 1;
    for (more = open_container(&s, '}'); more == 1; more = next_item(&s, '}')) {
        size_t klen = 0;
        int koverflow = 0;

        if (scan_key(&s, key, sizeof(key), &klen, &koverflow) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        if (!koverflow && klen == 5 && memcmp(key, "model", 5) == 0) {
            if (*s.p == '"') {
                int overflow = 0;
                out->model_start = (size_t)(s.p - s.base);
                if (scan_string(&s, buf, bufsize, &out->model_len, &overflow) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                out->model_end = (size_t)(s.p - s.base);
                have_model = 1;
                model_long = overflow;
            } else {
                if (scan_value(&s) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                have_model = 0;
            }
        } else if (!koverflow && klen == 14 && memcmp(key, "stream_options", 14) == 0) {
            if ((rc = scan_stream_options(&s, out)) != MG_JSON_OK) {
                return rc;
            }
        } else if (!koverflow && max_tokens_key(key, klen)) {
            const unsigned char *v = s.p;
            int64_t n;
            if (scan_value(&s) != MG_JSON_OK) {
                return MG_JSON_INVALID;
            }
            n = whole_number(v, s.p);
            out->max_tokens = n > out->max_tokens ? n : out->max_tokens;
        } else if (!koverflow && klen == 6 && memcmp(key, "stream", 6) == 0) {
            out->stream = (size_t)(s.end - s.p) >= 4 && memcmp(s.p, "true", 4) == 0;
            if (scan_value(&s) != MG_JSON_OK) {
                return MG_JSON_INVALID;
            }
        } else if ((rc = scan_value(&s)) != MG_JSON_OK) {
            return rc;
        }
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    out->obj_end = (size_t)(s.p - 1 - s.base);
    if (out->usage_ins == NULL) {   /* no stream_options: add it as the last member */
        out->usage_at = out->obj_end;
        out->usage_del = 0;
        out->usage_ins = ",\"stream_options\":{\"include_usage\":true}";
    }
    skip_ws(&s);
    if (s.p != s.end) {
        return MG_JSON_INVALID;
    }
    if (!have_model) {
        return MG_JSON_NO_MODEL;
    }
    return model_long ? MG_JSON_MODEL_LONG : MG_JSON_OK;
}

int
mg_json_quote(struct mg_buf *out, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;
    int rc = mg_buf_add(out, "\"", 1);

    for (i = 0; i < len && rc == MG_OK; i++) {
        unsigned char c = (unsigned char)str[i];
        char esc[7];
        size_t n = 2;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        rc = mg_buf_add(out, str + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (rc == MG_OK) {
            rc = mg_buf_add(out, esc, n);
        }
    }
    if (rc == MG_OK) {
        rc = mg_buf_add(out, str + run, len - run);
    }
    return rc == MG_OK ? mg_buf_add(out, "\"", 1) : rc;
}

int
mg_json_rewrite(const char *body, size_t len, const struct mg_json_req *req, const char *model,
                int add_usage, struct mg_buf *out)
{
    /* at most two edits, which never overlap: applied in the order they appear in the body */
    struct { size_t at, del; const char *ins; int quote; } e[2];
    size_t n = 0, pos = 0, i;
    int rc = MG_OK;

    if (model != NULL) {
        e[n].at = req->model_start;
        e[n].del = req->model_end - req->model_start;
        e[n].ins = model;
        e[n++].quote = 1;
    }
    if (add_usage && !req->include_usage && req->usage_ins != NULL) {
        e[n].at = req->usage_at;
        e[n].del = req->usage_del;
        e[n].ins = req->usage_ins;
        e[n++].quote = 0;
    }
    if (n == 2 && e[1].at < e[0].at) {
        e[0] = e[1];
        e[1].at = req->model_start;
        e[1].del = req->model_end - req->model_start;
        e[1].ins = model;
        e[1].quote = 1;
    }
    for (i = 0; i < n && rc == MG_OK; i++) {
        rc = mg_buf_add(out, body + pos, e[i].at - pos);
        if (rc == MG_OK) {
            rc = e[i].quote ? mg_json_quote(out, e[i].ins, strlen(e[i].ins))
                            : mg_buf_adds(out, e[i].ins);
        }
        pos = e[i].at + e[i].del;
    }
    return rc == MG_OK ? mg_buf_add(out, body + pos, len - pos) : rc;
}

