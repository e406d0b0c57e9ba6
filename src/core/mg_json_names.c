/*
 * mg_json_names — the checks on a request's top-level names: none given twice (compared decoded,
 * in O(n) expected however many there are) and none that is "model" or "stream" in another case.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "mg_json_names.h"

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
        struct mg_jscan e = {p + 1, end, p, 0};
        if (mg_jscan_escape(&e, &cp) != MG_JSON_OK) {
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
name_hash(const struct mg_json_name *t, uint64_t base, const unsigned char *end)
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
name_eq(const struct mg_json_name *a, const struct mg_json_name *b, const unsigned char *end)
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
int
mg_json_names_duplicate(struct mg_json_names *ns, const unsigned char *end)
{
    struct mg_json_name *v = ns->v;
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
names_add(struct mg_json_names *ns, const unsigned char *at, size_t len, int escaped)
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
int
mg_json_names_variant(const char *name, size_t n, const char *word)
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
int
mg_json_names_take(struct mg_jscan *s, char *buf, size_t cap, struct mg_json_names *ns,
                   const char **name, size_t *len)
{
    const unsigned char *at = s->p + 1, *e;
    int over = 0;

    if (*s->p != '"') {
        return MG_JSON_INVALID;
    }
    e = mg_jscan_plain_run(at, s->end);
    if (e < s->end && *e == '"') {
        /* the usual name: plain ASCII, so its bytes are its text */
        *name = (const char *)at;
        *len = (size_t)(e - at);
        s->p = e + 1;
    } else {
        if (mg_jscan_string(s, buf, cap, len, &over) != MG_JSON_OK) {
            return MG_JSON_INVALID;
        }
        *name = over ? NULL : buf;
        *len = over ? decoded_len(at, s->end) : *len;
    }
    /* an escape always takes more bytes than what it stands for */
    if (names_add(ns, at, *len, (size_t)(s->p - 1 - at) != *len) != MG_JSON_OK) {
        return MG_JSON_INVALID;
    }
    return mg_jscan_colon(s);
}

void
mg_json_names_init(struct mg_json_names *ns)
{
    ns->v = ns->local;
    ns->n = 0;
    ns->cap = MG_JSON_NAMES_INLINE;
}

void
mg_json_names_deinit(struct mg_json_names *ns)
{
    if (ns->v != ns->local) {
        free(ns->v);
    }
    ns->v = ns->local;
    ns->n = 0;
}
