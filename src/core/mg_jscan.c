/*
 * mg_jscan — the validating JSON scanner under mg_json: strings (UTF-8 checked, escapes decoded
 * when asked), numbers, literals, containers to MG_JSON_MAX_DEPTH, RFC 8259 throughout. It reads
 * values without building anything; the request scan, the stream-chunk reader and the top-level
 * name checks are written on it.
 */
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mg_jscan.h"

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
read_hex4(struct mg_jscan *s, unsigned *v)
{
    int i, h;

    if (s->end - s->p < 4) {
        return MG_JSON_INVALID;
    }
    *v = 0;
    for (i = 0; i < 4; i++) {
        h = mg_hexval(s->p[i]);
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
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
        bad = _mm_or_si128(bad, _mm_cmplt_epi8(v, _mm_add_epi8(ctl, _mm_set1_epi8(1))));
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
 * The escape after a backslash (s->p past the backslash) as a code point; surrogates paired.
 * Kept inline in scan_string, its hot caller: out of line it costs 3% on a chat body.
 */
static inline __attribute__((always_inline)) int
scan_escape(struct mg_jscan *s, unsigned *cp)
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

/*
 * Scans a string starting at the opening quote. When buf is not NULL the decoded text goes there
 * (NUL-terminated); *overflow is set when it does not fit.
 */
static int
scan_string(struct mg_jscan *s, char *buf, size_t cap, size_t *outlen, int *overflow)
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
scan_number(struct mg_jscan *s)
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
scan_literal(struct mg_jscan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return MG_JSON_INVALID;
    }
    s->p += n;
    return MG_JSON_OK;
}

/* Past the opening bracket at s->p: 1 when an item follows, 0 when the container is empty (and
 * now closed), -1 when the input ends. */
static int scan_value(struct mg_jscan *s);

static int
open_container(struct mg_jscan *s, unsigned char close)
{
    s->p++;
    mg_jscan_ws(s);
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
next_item(struct mg_jscan *s, unsigned char close)
{
    mg_jscan_ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        mg_jscan_ws(s);
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
scan_key(struct mg_jscan *s, char *key, size_t cap, size_t *klen, int *over)
{
    if (*s->p != '"' || scan_string(s, key, cap, klen, over) != MG_JSON_OK) {
        return MG_JSON_INVALID;
    }
    return mg_jscan_colon(s);
}

int
mg_jscan_colon(struct mg_jscan *s)
{
    mg_jscan_ws(s);
    if (s->p >= s->end || *s->p != ':') {
        return MG_JSON_INVALID;
    }
    s->p++;
    mg_jscan_ws(s);
    return s->p < s->end ? MG_JSON_OK : MG_JSON_INVALID;
}

static int
scan_container(struct mg_jscan *s, int object)
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
scan_value(struct mg_jscan *s)
{
    mg_jscan_ws(s);
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

/* The exported names: the scanner's own calls stay static, which lets the compiler specialise
 * and inline them (out of line, a chat body's scan took 4% more instructions). */

int
mg_jscan_string(struct mg_jscan *s, char *buf, size_t cap, size_t *outlen, int *overflow)
{
    return scan_string(s, buf, cap, outlen, overflow);
}

int
mg_jscan_value(struct mg_jscan *s)
{
    return scan_value(s);
}

int
mg_jscan_open(struct mg_jscan *s, unsigned char close)
{
    return open_container(s, close);
}

int
mg_jscan_next(struct mg_jscan *s, unsigned char close)
{
    return next_item(s, close);
}

int
mg_jscan_key(struct mg_jscan *s, char *key, size_t cap, size_t *klen, int *over)
{
    return scan_key(s, key, cap, klen, over);
}

const unsigned char *
mg_jscan_plain_run(const unsigned char *p, const unsigned char *end)
{
    return plain_run(p, end);
}

int
mg_jscan_escape(struct mg_jscan *s, unsigned *cp)
{
    return scan_escape(s, cp);
}
