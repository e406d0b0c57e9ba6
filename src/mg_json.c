/*
 * mg_json — validating single-pass scanner for request bodies (see mg_json.h for why).
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
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
 * The escape after a backslash (s->p past the backslash) as a code point; surrogates paired.
 * Kept inline in scan_string, its hot caller: out of line it costs 3% on a chat body.
 */
static inline __attribute__((always_inline)) int
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

/*
 * Scans a string starting at the opening quote. When buf is not NULL the decoded text goes there
 * (NUL-terminated); *overflow is set when it does not fit.
 */
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

/* ---- the top-level object of a request ----------------------------------------------------- */

/*
 * Top-level names are compared decoded, and there may be 100k of them. Up to
 * MG_JSON_NAMES_INLINE (every usual body) they are compared pair by pair, most pairs told apart by
 * their decoded length alone; beyond, they go into an open-addressing hash table built once their
 * number is known: O(n) expected. The hash is a polynomial over the code points modulo 2^61 - 1
 * whose base is drawn at random once per process, then mixed: a client that does not know the
 * base cannot write names that collide or crowd one part of the table (two different names of
 * n code points collide with probability at most n / 2^61 over the base), so names are decoded
 * and compared text to text about as often as there are duplicates, and there is at most one.
 */
#define P61 (((uint64_t)1 << 61) - 1)
#define NAMES_MAX ((size_t)1 << 30)   /* top-level members (a body of 5 GiB or more) */

struct tname {
    const unsigned char *at;          /* the name's first byte, past its opening quote */
    uint32_t             len : 31;    /* decoded length in bytes (2^31 - 1 for longer ones) */
    uint32_t             escaped : 1; /* holds an escape: its bytes are not its text */
    uint32_t             hash;        /* see name_hash(), once computed */
};

struct names {
    struct tname *v;            /* local, or an allocated array once local is full */
    size_t        n, cap;
    struct tname  local[MG_JSON_NAMES_INLINE];
};

/* Process-wide on purpose, not in the runtime: drawn once, then never changes. */
static _Atomic uint64_t name_base;

/* The hash's base, in [2, P61): drawn once per process (a race draws twice, one is kept). */
static uint64_t
hash_base(void)
{
    uint64_t b = atomic_load_explicit(&name_base, memory_order_relaxed), seen = 0;
    struct timespec ts;

    if (b != 0) {
        return b;
    }
    if (getrandom(&b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        /* no entropy yet (early boot): the clock and where the stack is are still unknown to a
         * client */
        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
            ts.tv_nsec = 0;
        }
        b = ((uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u) ^ (uint64_t)(uintptr_t)&ts;
    }
    b = b % (P61 - 2) + 2;
    if (!atomic_compare_exchange_strong(&name_base, &seen, b)) {
        b = seen;
    }
    return b;
}

static inline uint64_t
mulmod61(uint64_t a, uint64_t b)
{
    unsigned __int128 m = (unsigned __int128)a * b;
    uint64_t r = ((uint64_t)m & P61) + (uint64_t)(m >> 61);

    return r >= P61 ? r - P61 : r;
}

/*
 * The next code point of a string the scan has already validated (*pp inside it), or -1 at its
 * closing quote; end is the end of the body.
 */
static long
next_cp(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    unsigned cp, c = *p;
    size_t n, i;

    if (c == '"') {
        return -1;
    }
    if (c == '\\') {
        struct scan e = {p + 1, end, p, 0};
        if (scan_escape(&e, &cp) != MG_JSON_OK) {
            return -1;   /* not reached: the string was validated */
        }
        *pp = e.p;
        return (long)cp;
    }
    if (c < 0x80) {
        *pp = p + 1;
        return (long)c;
    }
    n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    cp = c & (0x7Fu >> n);
    for (i = 1; i < n; i++) {
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    *pp = p + n;
    return (long)cp;
}

/* The decoded length in bytes of the validated string at p (past its opening quote). */
static size_t
decoded_len(const unsigned char *p, const unsigned char *end)
{
    size_t n = 0;
    long cp;

    while ((cp = next_cp(&p, end)) >= 0) {
        n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    return n;
}

/* The polynomial, then mixed (murmur3's finalizer): names alike in all but one end alike. */
static uint32_t
name_hash(const struct tname *t, uint64_t base, const unsigned char *end)
{
    const unsigned char *p = t->at;
    uint64_t h = 0;
    long cp;

    for (;;) {
        if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            cp = *p++;   /* the usual byte, without a call */
        } else if ((cp = next_cp(&p, end)) < 0) {
            break;
        }
        h = mulmod61(h, base) + (uint64_t)cp + 1;
        h = h >= P61 ? h - P61 : h;
    }
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDu;
    h ^= h >> 33;
    return (uint32_t)(h >> 32);
}

/* 1 when two names whose hashes are set are the same text. */
static int
name_eq(const struct tname *a, const struct tname *b, const unsigned char *end)
{
    const unsigned char *p = a->at, *q = b->at;
    long x, y;

    if (a->len != b->len || a->hash != b->hash) {
        return 0;
    }
    do {
        x = next_cp(&p, end);
        y = next_cp(&q, end);
    } while (x == y && x >= 0);
    return x == y;
}

/* 1 when two of the names are the same decoded text. */
static int
has_duplicate(struct names *ns, const unsigned char *end)
{
    struct tname *v = ns->v;
    uint64_t base = 0;
    uint64_t *slot;
    uint32_t hashed = 0;
    size_t i, j, n = ns->n, cap = 64;
    int dup = 0;

    if (n <= MG_JSON_NAMES_INLINE) {
        /* most pairs differ in length; names without escapes are their bytes (in a chat body:
         * model, tools, top_p); a hash, computed once, for the others */
        for (i = 1; i < n; i++) {
            for (j = 0; j < i; j++) {
                if (v[i].len != v[j].len) {
                    continue;
                }
                if (!v[i].escaped && !v[j].escaped) {
                    if (memcmp(v[i].at, v[j].at, v[i].len) == 0) {
                        return 1;
                    }
                    continue;
                }
                base = base != 0 ? base : hash_base();
                if (!(hashed & (1u << i))) {
                    v[i].hash = name_hash(&v[i], base, end);
                    hashed |= 1u << i;
                }
                if (!(hashed & (1u << j))) {
                    v[j].hash = name_hash(&v[j], base, end);
                    hashed |= 1u << j;
                }
                if (name_eq(&v[i], &v[j], end)) {
                    return 1;
                }
            }
        }
        return 0;
    }
    /*
     * At most 3/4 full. A slot holds a name's hash and its index + 1: a probe reads the names
     * array (a cache miss, in a large body) only when the hashes are equal.
     */
    while (cap < n + n / 2) {
        cap *= 2;
    }
    slot = mg_calloc(cap, sizeof(*slot));
    base = hash_base();
    for (i = 0; i < n && !dup; i++) {
        uint64_t h = v[i].hash = name_hash(&v[i], base, end);
        for (j = h & (cap - 1); slot[j] != 0; j = (j + 1) & (cap - 1)) {
            if (slot[j] >> 32 == h && name_eq(&v[(uint32_t)slot[j] - 1], &v[i], end)) {
                dup = 1;
                break;
            }
        }
        slot[j] = h << 32 | (i + 1);
    }
    free(slot);
    return dup;
}

/* Keeps a top-level name for the duplicate check; MG_JSON_INVALID past NAMES_MAX names. */
static int
names_add(struct names *ns, const unsigned char *at, size_t len, int escaped)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap * 2;
        if (ns->n >= NAMES_MAX) {
            return MG_JSON_INVALID;
        }
        if (ns->v == ns->local) {
            ns->v = mg_malloc(cap * sizeof(*ns->v));
            memcpy(ns->v, ns->local, sizeof(ns->local));
        } else {
            ns->v = mg_realloc(ns->v, cap * sizeof(*ns->v));
        }
        ns->cap = cap;
    }
    ns->v[ns->n].at = at;
    ns->v[ns->n].len = len < 0x7FFFFFFF ? (uint32_t)len : 0x7FFFFFFF;
    ns->v[ns->n].escaped = escaped != 0;
    ns->v[ns->n].hash = 0;
    ns->n++;
    return MG_JSON_OK;
}

/*
 * 1 when name (decoded, n bytes) is word (lower-case ASCII letters) in another case, as a reader
 * that matches names ignoring case takes it: Go's encoding/json folds ASCII case and also takes
 * U+017F (long s) for s and U+212A (Kelvin sign) for k.
 */
static int
case_variant(const char *name, size_t n, const char *word)
{
    const unsigned char *p = (const unsigned char *)name, *e = p + n;

    for (; *word != '\0'; word++) {
        if (p < e && (*p | 0x20) == (unsigned char)*word) {
            p++;
        } else if (*word == 's' && e - p >= 2 && p[0] == 0xC5 && p[1] == 0xBF) {
            p += 2;
        } else if (*word == 'k' && e - p >= 3 && p[0] == 0xE2 && p[1] == 0x84 && p[2] == 0xAA) {
            p += 3;
        } else {
            return 0;
        }
    }
    return p == e;
}

/*
 * A top-level member's name (s->p on its opening quote) and its colon; leaves s->p on the value
 * and the name in ns. *name is its decoded text when it fits buf (or needs no decoding), else
 * NULL (no name the scan looks for is that long); *len its decoded length.
 */
static int
top_name(struct scan *s, char *buf, size_t cap, struct names *ns, const char **name,
         size_t *len)
{
    const unsigned char *at = s->p + 1, *e;
    int over = 0;

    if (*s->p != '"') {
        return MG_JSON_INVALID;
    }
    e = plain_run(at, s->end);
    if (e < s->end && *e == '"') {
        /* the usual name: plain ASCII, so its bytes are its text */
        *name = (const char *)at;
        *len = (size_t)(e - at);
        s->p = e + 1;
    } else {
        if (scan_string(s, buf, cap, len, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        *name = over ? NULL : buf;
        *len = over ? decoded_len(at, s->end) : *len;
    }
    /* an escape always takes more bytes than what it stands for */
    if (names_add(ns, at, *len, (size_t)(s->p - 1 - at) != *len) != MG_JSON_OK) {
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

/* What the JSON value starting with c is, for an error message. */
static const char *
kind_of(unsigned char c)
{
    switch (c) {
    case '"': return "a string";
    case '{': return "an object";
    case '[': return "an array";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* Records the first parameter with a wrong value (its value is [v, s->p)). */
static void
bad_value(struct mg_json_req *out, const struct scan *s, const unsigned char *v,
          const char *param, const char *want, const char *got)
{
    if (out->bad_param == NULL) {
        out->bad_param = param;
        out->bad_want = want;
        out->bad_got = got;
        out->bad_at = (size_t)(v - s->base);
        out->bad_len = (size_t)(s->p - v);
    }
}

#define LIMIT_WANT "an integer from 1 to 2147483647"
_Static_assert(MG_JSON_MAX_TOKENS == 2147483647, "LIMIT_WANT names MG_JSON_MAX_TOKENS");

/*
 * A max_tokens-like limit: null, or an integer from 1 to MG_JSON_MAX_TOKENS written as one
 * (OpenAI refuses 1.5, "10", 0 and -1; 1e3 and 10.0 are numbers jansson, and so the translating
 * schemas, do not take for integers).
 */
static int
scan_limit(struct scan *s, const char *param, struct mg_json_req *out)
{
    const unsigned char *v = s->p, *p;
    uint64_t n = 0;
    int rc;

    if ((rc = scan_value(s)) != MG_JSON_OK || *v == 'n') {
        return rc;
    }
    if (*v != '-' && (*v < '0' || *v > '9')) {
        bad_value(out, s, v, param, LIMIT_WANT, kind_of(*v));
        return MG_JSON_OK;
    }
    for (p = v; p < s->p && *p >= '0' && *p <= '9' && n <= MG_JSON_MAX_TOKENS; p++) {
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == s->p && n >= 1 && n <= MG_JSON_MAX_TOKENS) {
        /* the largest limit given bounds the answer: the token limit's estimate adds it */
        out->max_tokens = (int64_t)n > out->max_tokens ? (int64_t)n : out->max_tokens;
        return MG_JSON_OK;
    }
    for (p = v; p < s->p && *p != '.' && *p != 'e' && *p != 'E'; p++) {
    }
    bad_value(out, s, v, param, LIMIT_WANT,
              p < s->p ? "a decimal number" : "an integer out of range");
    return MG_JSON_OK;
}

/* The top-level object's members (s->p on its '{'); what mg_json_scan_request answers. */
static int
scan_top(struct scan *s, char *buf, size_t bufsize, struct mg_json_req *out,
         struct names *ns)
{
    int have_model = 0, model_long = 0, more, rc;
    const char *variant = NULL;
    char key[24];

    s->depth = 1;
    for (more = open_container(s, '}'); more == 1; more = next_item(s, '}')) {
        const unsigned char *v;
        const char *name;
        size_t len;

        if (top_name(s, key, sizeof(key), ns, &name, &len) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        v = s->p;
#define NAME_IS(lit) (name != NULL && len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
        if (NAME_IS("model")) {
            if (*s->p == '"') {
                int overflow = 0;
                out->model_start = (size_t)(s->p - s->base);
                if (scan_string(s, buf, bufsize, &out->model_len, &overflow) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                out->model_end = (size_t)(s->p - s->base);
                have_model = 1;
                model_long = overflow;
            } else {
                if (scan_value(s) != MG_JSON_OK) {
                    return MG_JSON_INVALID;
                }
                have_model = 0;
            }
        } else if (NAME_IS("stream")) {
            if (scan_value(s) != MG_JSON_OK) {
                return MG_JSON_INVALID;
            }
            out->stream = *v == 't';
            if (*v != 't' && *v != 'f' && *v != 'n') {
                bad_value(out, s, v, "stream", "a boolean", kind_of(*v));
            }
        } else if (NAME_IS("stream_options")) {
            if ((rc = scan_stream_options(s, out)) != MG_JSON_OK) {
                return rc;
            }
        } else if (NAME_IS("max_tokens") || NAME_IS("max_completion_tokens") ||
                   NAME_IS("max_output_tokens")) {
            /* name points into the body or key: the parameter's name must outlive both */
            const char *param = len == 10 ? "max_tokens" : len == 21 ? "max_completion_tokens"
                                                                     : "max_output_tokens";
            if ((rc = scan_limit(s, param, out)) != MG_JSON_OK) {
                return rc;
            }
        } else {
            /* a variant of model or stream starts with m, s or the long s (0xC5 0xBF) */
            unsigned char c0 = name != NULL && len != 0 ? (unsigned char)name[0] : 0;
            if (variant == NULL && len >= 5 && len <= 7 &&
                ((c0 | 0x20) == 'm' || (c0 | 0x20) == 's' || c0 == 0xC5)) {
                variant = case_variant(name, len, "model")    ? "model"
                          : case_variant(name, len, "stream") ? "stream" : NULL;
            }
            if ((rc = scan_value(s)) != MG_JSON_OK) {
                return rc;
            }
        }
#undef NAME_IS
    }
    if (more < 0) {
        return MG_JSON_INVALID;
    }
    out->obj_end = (size_t)(s->p - 1 - s->base);
    if (out->usage_ins == NULL) {   /* no stream_options: add it as the last member */
        out->usage_at = out->obj_end;
        out->usage_del = 0;
        out->usage_ins = ",\"stream_options\":{\"include_usage\":true}";
    }
    skip_ws(s);
    if (s->p != s->end) {
        return MG_JSON_INVALID;
    }
    if (has_duplicate(ns, s->end)) {
        return MG_JSON_DUPLICATE;
    }
    if (variant != NULL) {
        out->bad_param = variant;
        out->bad_want = out->bad_got = NULL;
        out->bad_at = out->bad_len = 0;
        return MG_JSON_NAME_CASE;
    }
    if (out->bad_param != NULL) {
        return MG_JSON_BAD_VALUE;
    }
    if (!have_model) {
        return MG_JSON_NO_MODEL;
    }
    return model_long ? MG_JSON_MODEL_LONG : MG_JSON_OK;
}

int
mg_json_scan_request(const char *body, size_t len, char *buf, size_t bufsize,
                     struct mg_json_req *out)
{
    struct scan s = {(const unsigned char *)body, (const unsigned char *)body + len,
                     (const unsigned char *)body, 0};
    struct names ns;
    int rc;

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
    ns.v = ns.local;
    ns.n = 0;
    ns.cap = MG_JSON_NAMES_INLINE;
    rc = scan_top(&s, buf, bufsize, out, &ns);
    if (ns.v != ns.local) {
        free(ns.v);
    }
    return rc;
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

