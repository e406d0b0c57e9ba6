/*
 * mg_jload — JSON text into jansson values, for the translators. jansson's own json_loadb() reads
 * a character at a time through a stream with a callback and a buffer per token: on the small
 * bodies a translation reads (a request, an answer, a stream chunk) it was the largest cost of a
 * translated request (docs/benchmarks.md, issue 21). This reader walks the bytes once and builds
 * the same values, with jansson's rules: an object or an array at the top, strings valid UTF-8
 * without NUL, integers that fit json_int_t (else an error), reals that are finite, the last of
 * two members of the same name kept (or the body refused with MG_JLOAD_NO_DUPLICATES).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_util.h"

#define DEPTH_MAX 2048   /* jansson's JSON_PARSER_MAX_DEPTH */

struct rd {
    const unsigned char *p, *end;
    int                  flags;
    struct mg_buf        str;   /* a string being decoded */
};

static void
ws(struct rd *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) {
        r->p++;
    }
}

static int
hex4(const unsigned char *p, unsigned *v)
{
    int i, d;

    *v = 0;
    for (i = 0; i < 4; i++) {
        if ((d = mg_hexval(p[i])) < 0) {
            return -1;
        }
        *v = *v << 4 | (unsigned)d;
    }
    return 0;
}

static int
put_utf8(struct mg_buf *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return mg_buf_add(b, u, n);
}

/* The length of the valid UTF-8 sequence at p (a byte >= 0x80), or 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], cp;
    size_t n, i;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;   /* overlong, a surrogate, or past Unicode */
    }
    return n;
}

/* A string at r->p (past its quote) decoded into r->str; r->p past its closing quote. */
static int
string(struct rd *r)
{
    const unsigned char *run;
    unsigned cp, lo;
    size_t n;

    mg_buf_reset(&r->str);
    for (;;) {
        run = r->p;
        while (r->p < r->end && *r->p >= 0x20 && *r->p < 0x80 && *r->p != '"' && *r->p != '\\') {
            r->p++;
        }
        if (r->p > run && mg_buf_add(&r->str, run, (size_t)(r->p - run)) != MG_OK) {
            return -1;
        }
        if (r->p >= r->end) {
            return -1;
        }
        if (*r->p == '"') {
            r->p++;
            return 0;
        }
        if (*r->p < 0x20) {
            return -1;   /* a control character must be escaped */
        }
        if (*r->p >= 0x80) {
            if ((n = utf8_len(r->p, r->end)) == 0 || mg_buf_add(&r->str, r->p, n) != MG_OK) {
                return -1;
            }
            r->p += n;
            continue;
        }
        /* a backslash */
        if (r->end - r->p < 2) {
            return -1;
        }
        switch (r->p[1]) {
        case '"': case '\\': case '/':
            cp = r->p[1]; r->p += 2; break;
        case 'b': cp = '\b'; r->p += 2; break;
        case 'f': cp = '\f'; r->p += 2; break;
        case 'n': cp = '\n'; r->p += 2; break;
        case 'r': cp = '\r'; r->p += 2; break;
        case 't': cp = '\t'; r->p += 2; break;
        case 'u':
            if (r->end - r->p < 6 || hex4(r->p + 2, &cp) != 0) {
                return -1;
            }
            r->p += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;   /* a low surrogate first */
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u' ||
                    hex4(r->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    return -1;
                }
                r->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                return -1;   /* NUL in a string: jansson refuses it too */
            }
            break;
        default:
            return -1;
        }
        if (put_utf8(&r->str, cp) != MG_OK) {
            return -1;
        }
    }
}

static json_t *value(struct rd *r, int depth);

static json_t *
number(struct rd *r)
{
    const unsigned char *s = r->p;
    char tmp[64], *endp;
    int real = 0;
    size_t n;

    if (r->p < r->end && *r->p == '-') {
        r->p++;
    }
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') {
        return NULL;
    }
    if (*r->p == '0') {
        r->p++;
    } else {
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }
    }
    if (r->p < r->end && *r->p == '.') {
        real = 1;
        r->p++;
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') {
            return NULL;
        }
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        real = 1;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) {
            r->p++;
        }
        if (r->p >= r->end || *r->p < '0' || *r->p > '9') {
            return NULL;
        }
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            r->p++;
        }
    }
    n = (size_t)(r->p - s);
    if (n >= sizeof(tmp)) {
        if (!real) {
            return NULL;   /* too big an integer */
        }
        /* a long real: strtod reads it from a copy */
        char *big = mg_strndup((const char *)s, n);
        double d;
        errno = 0;
        d = strtod(big, &endp);
        free(big);
        return errno == ERANGE && (d > 1 || d < -1) ? NULL : json_real(d);
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(tmp, &endp, 10);
        return errno == ERANGE ? NULL : json_integer((json_int_t)v);
    } else {
        double d = strtod(tmp, &endp);
        if (errno == ERANGE && (d > 1 || d < -1)) {
            return NULL;   /* overflow: jansson refuses it ("real number overflow") */
        }
        return json_real(d);
    }
}

static json_t *
object(struct rd *r, int depth)
{
    json_t *o = json_object(), *v;
    char *key;

    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        ws(r);
        if (r->p >= r->end || *r->p != '"') {
            break;
        }
        r->p++;
        if (string(r) != 0 || memchr(r->str.data ? r->str.data : "", 0, r->str.len) != NULL) {
            break;
        }
        key = mg_strndup(r->str.data ? r->str.data : "", r->str.len);
        ws(r);
        if (r->p >= r->end || *r->p != ':') {
            free(key);
            break;
        }
        r->p++;
        v = value(r, depth + 1);
        if (v == NULL || ((r->flags & MG_JLOAD_NO_DUPLICATES) && json_object_get(o, key))) {
            json_decref(v);
            free(key);
            break;
        }
        json_object_set_new_nocheck(o, key, v);
        free(key);
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return o;
        }
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *
array(struct rd *r, int depth)
{
    json_t *a = json_array(), *v;

    ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        v = value(r, depth + 1);
        if (v == NULL || json_array_append_new(a, v) != 0) {
            break;
        }
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        break;
    }
    json_decref(a);
    return NULL;
}

static int
literal(struct rd *r, const char *lit, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0) {
        return -1;
    }
    r->p += n;
    return 0;
}

static json_t *
value(struct rd *r, int depth)
{
    if (depth >= DEPTH_MAX) {
        return NULL;
    }
    ws(r);
    if (r->p >= r->end) {
        return NULL;
    }
    switch (*r->p) {
    case '{':
        r->p++;
        return object(r, depth);
    case '[':
        r->p++;
        return array(r, depth);
    case '"':
        r->p++;
        if (string(r) != 0) {
            return NULL;
        }
        return json_stringn_nocheck(r->str.data ? r->str.data : "", r->str.len);
    case 't':
        return literal(r, "true", 4) == 0 ? json_true() : NULL;
    case 'f':
        return literal(r, "false", 5) == 0 ? json_false() : NULL;
    case 'n':
        return literal(r, "null", 4) == 0 ? json_null() : NULL;
    default:
        return number(r);
    }
}

json_t *
mg_jload(const char *text, size_t len, int flags)
{
    struct rd r = {(const unsigned char *)text, (const unsigned char *)text + len, flags,
                   {0}};
    json_t *v = NULL;

    if (text == NULL) {
        return NULL;
    }
    mg_buf_init(&r.str, len + 1);   /* no string is longer than the text */
    ws(&r);
    if (r.p < r.end && (*r.p == '{' || *r.p == '[')) {
        v = value(&r, 0);
    }
    if (v != NULL && !(flags & MG_JLOAD_PREFIX)) {
        ws(&r);
        if (r.p != r.end) {   /* something after the value */
            json_decref(v);
            v = NULL;
        }
    }
    mg_buf_deinit(&r.str);
    return v;
}
