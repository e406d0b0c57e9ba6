/*
 * mg_limit — per-key token buckets held as "full again at" times (GCRA), one atomic each; token
 * reservations and their settlement; a request's token estimate; the x-ratelimit-* header
 * values. The arithmetic is in nanoseconds on 128-bit intermediates, so no product of a capacity
 * and a time overflows.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_limit.h"
#include "mg_util.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "a bucket must be a lock-free 64-bit atomic");

#define MINUTE_NS  60000000000LL
#define MS_NS      1000000LL
#define NOW_MAX_NS ((int64_t)1 << 61)    /* 73 years of uptime */
#define DEBT_MAX   ((int64_t)1 << 61)    /* a cost at most: sums with a deficit still fit */

typedef __int128 wide;   /* an arithmetic type, not a struct: products of capacity and time */

struct bucket {
    _Atomic int64_t full_at;    /* ns; <= now means full */
    _Atomic int64_t cap;        /* units per minute; 0 = no limit */
};

struct mg_limit {
    struct mg_limit *next;
    struct bucket    req;
    struct bucket    tok;
    char             name[];
};

static pthread_mutex_t  reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mg_limit *reg_head, **reg_tail = &reg_head;

static int64_t
to_ns(int64_t now_ms)
{
    if (now_ms <= 0) {
        return 0;
    }
    return now_ms >= NOW_MAX_NS / MS_NS ? NOW_MAX_NS : now_ms * MS_NS;
}

/* Ceiling division of non-negative numbers. */
static int64_t
ceil_div(wide a, wide b)
{
    return (int64_t)((a + b - 1) / b);
}

static int64_t
load(const _Atomic int64_t *a)
{
    /* Each word is a whole state of its own and publishes nothing else: relaxed suffices. */
    return atomic_load_explicit((_Atomic int64_t *)a, memory_order_relaxed);
}

/* How far the bucket is from full: full_at - now, at least 0. */
static int64_t
deficit(int64_t full_at, int64_t now)
{
    return full_at > now ? full_at - now : 0;
}

/*
 * Time (ns) until the bucket holds k units (1 <= k <= cap): level >= k <=> d <= T * (cap - k) /
 * cap, rounded down, so that the deficit after the take, d + cost(k), is at most T (one minute).
 */
static int64_t
wait_for(int64_t d, int64_t k, int64_t cap)
{
    int64_t room = (int64_t)((wide)MINUTE_NS * (cap - k) / cap);

    return d > room ? d - room : 0;
}

/* The cost of k units in time, rounded down (a take is at most 1 ns generous). */
static int64_t
cost(int64_t k, int64_t cap)
{
    wide c = (wide)k * MINUTE_NS / cap;

    return c > DEBT_MAX ? DEBT_MAX : (int64_t)c;
}

static void
describe(int64_t cap, int64_t d, struct mg_limit_bucket_info *bi)
{
    int64_t used;

    bi->limit = cap;
    if (cap == 0) {
        bi->remaining = 0;
        bi->reset_ms = 0;
        return;
    }
    used = ceil_div((wide)d * cap, MINUTE_NS);
    bi->remaining = used >= cap ? 0 : cap - used;
    bi->reset_ms = ceil_div(d, MS_NS);
}

static int64_t
ms_up(int64_t ns)
{
    return ceil_div(ns, MS_NS);
}

struct mg_limit *
mg_limit_get(const char *name)
{
    struct mg_limit *l;
    size_t len = strlen(name);

    pthread_mutex_lock(&reg_lock);
    for (l = reg_head; l != NULL; l = l->next) {
        if (strcmp(l->name, name) == 0) {
            break;
        }
    }
    if (l == NULL) {
        l = mg_calloc(1, sizeof(*l) + len + 1);
        atomic_init(&l->req.full_at, 0);
        atomic_init(&l->req.cap, 0);
        atomic_init(&l->tok.full_at, 0);
        atomic_init(&l->tok.cap, 0);
        memcpy(l->name, name, len + 1);
        *reg_tail = l;
        reg_tail = &l->next;
    }
    pthread_mutex_unlock(&reg_lock);
    return l;
}

const char *
mg_limit_name(const struct mg_limit *l)
{
    return l->name;
}

static void
configure(struct bucket *b, int64_t cap1, int64_t now)
{
    int64_t cap0 = load(&b->cap), f, d, d1;
    wide num;

    cap1 = cap1 <= 0 ? 0 : cap1 > MG_LIMIT_MAX ? MG_LIMIT_MAX : cap1;
    if (cap1 == cap0) {
        return;
    }
    f = load(&b->full_at);
    do {
        if (cap0 == 0 || cap1 == 0) {
            d1 = 0;     /* a new limit starts full; a dropped one is forgotten */
        } else {
            /*
             * Keep the level L = cap0 - d * cap0 / T, clamped to cap1 from above:
             * d1 = (cap1 - min(L, cap1)) * T / cap1 = (cap1 * T - cap0 * T + d * cap0) / cap1.
             */
            d = deficit(f, now);
            num = (wide)cap1 * MINUTE_NS - (wide)cap0 * MINUTE_NS + (wide)d * cap0;
            d1 = num <= 0 ? 0 : num / cap1 > DEBT_MAX ? DEBT_MAX : (int64_t)(num / cap1);
        }
    } while (!atomic_compare_exchange_weak_explicit(&b->full_at, &f, now + d1,
                                                    memory_order_relaxed, memory_order_relaxed));
    atomic_store_explicit(&b->cap, cap1, memory_order_relaxed);
}

void
mg_limit_configure(struct mg_limit *l, int64_t requests_per_minute, int64_t tokens_per_minute,
                   int64_t now)
{
    configure(&l->req, requests_per_minute, to_ns(now));
    configure(&l->tok, tokens_per_minute, to_ns(now));
}

/*
 * Takes k units from b (capacity cap) when it holds them: 1, with *f its new full_at. Otherwise
 * 0, nothing taken, *wait the time until it would hold them. *f is the value last read.
 */
static int
take(struct bucket *b, int64_t *f, int64_t k, int64_t cap, int64_t now, int64_t *wait)
{
    int64_t d, next;

    for (;;) {
        d = deficit(*f, now);
        *wait = wait_for(d, k, cap);
        if (*wait > 0) {
            return 0;
        }
        next = now + d + cost(k, cap);
        if (atomic_compare_exchange_weak_explicit(&b->full_at, f, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *f = next;
            return 1;
        }
    }
}

/*
 * Replaces `reserved` units taken from b by `used`: a debit of the difference, or a give-back.
 * The deficit stays within [0, T]: a give-back never fills the bucket past full, and a debit
 * never takes it below empty (the debt cap: whatever an answer used, the bucket is full again at
 * most a minute later). Costs are those of take(), so a full give-back undoes a take exactly.
 */
static void
adjust(struct bucket *b, int64_t cap, int64_t reserved, int64_t used, int64_t now)
{
    int64_t delta = cost(used, cap) - cost(reserved, cap), f, d;

    if (delta == 0) {
        return;
    }
    f = load(&b->full_at);
    do {
        d = deficit(f, now) + delta;
        d = d < 0 ? 0 : d > MINUTE_NS ? MINUTE_NS : d;
    } while (!atomic_compare_exchange_weak_explicit(&b->full_at, &f, now + d,
                                                    memory_order_relaxed, memory_order_relaxed));
}

int
mg_limit_admit(struct mg_limit *l, int64_t now_ms, int64_t tokens, struct mg_limit_info *info)
{
    int64_t now = to_ns(now_ms);
    int64_t rcap = load(&l->req.cap), tcap = load(&l->tok.cap);
    int64_t tf = load(&l->tok.full_at), rf = load(&l->req.full_at);
    int64_t twait = 0, rwait = 0, want = 0;
    int ok;

    if (tcap > 0) {
        /* capped at the capacity: a request larger than the whole limit passes a full bucket */
        want = tokens < 1 ? 1 : tokens > tcap ? tcap : tokens;
    }
    /* a look first: a key out of requests must not take (and then give back) tokens */
    if (rcap > 0) {
        rwait = wait_for(deficit(rf, now), 1, rcap);
    }
    ok = rwait == 0;
    if (tcap > 0) {
        if (ok) {
            ok = take(&l->tok, &tf, want, tcap, now, &twait);
        } else {
            twait = wait_for(deficit(tf, now), want, tcap);
        }
    }
    if (ok && rcap > 0 && !take(&l->req, &rf, 1, rcap, now, &rwait)) {
        /* another thread took the last request meanwhile: the tokens go back */
        ok = 0;
        if (tcap > 0) {
            adjust(&l->tok, tcap, want, 0, now);
            tf = load(&l->tok.full_at);
        }
    }
    if (info != NULL) {
        describe(rcap, deficit(rf, now), &info->requests);
        describe(tcap, deficit(tf, now), &info->tokens);
        info->retry_after_ms = ok ? 0 : ms_up(rwait > twait ? rwait : twait);
        info->reserved = ok ? want : 0;
    }
    return ok;
}

void
mg_limit_settle(struct mg_limit *l, int64_t reserved, int64_t used, int64_t now_ms)
{
    int64_t cap = load(&l->tok.cap);

    if (cap == 0) {
        return;
    }
    adjust(&l->tok, cap, reserved < 0 ? 0 : reserved, used < 0 ? 0 : used, to_ns(now_ms));
}

/* Bytes of the JSON string whose opening quote is at p (to its closing quote), or 0. */
static size_t
string_len(const char *p, const char *end)
{
    const char *q;

    for (q = p + 1; q < end && *q != '"'; q++) {
        if (*q == '\\') {
            q++;
        }
    }
    return q < end ? (size_t)(q + 1 - p) : 0;
}

static int
base64_byte(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=' || c == '\\';
}

/* A base64 payload at least this long is an image or a file, not a word in a tool's argument. */
#define BASE64_PART_MIN 64

static const char *
skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/*
 * 1 when the JSON string at v (n bytes, quotes included) is an inline file: a data URL, or, as
 * the value of a "data" member (member = 1), a long run of base64.
 */
static int
inline_file(const char *v, size_t n, int member)
{
    size_t i;

    if (n >= 7 && memcmp(v + 1, "data:", 5) == 0) {
        return 1;
    }
    if (!member || n - 2 < BASE64_PART_MIN) {
        return 0;
    }
    for (i = 1; i + 1 < n && base64_byte(v[i]); i++) {
    }
    return i + 1 == n;
}

/*
 * The inline files of a JSON body: each string that starts with "data:" (a data URL: OpenAI's
 * image_url and file_data, the Responses API's input_image and input_file) and each "data"
 * member whose string holds only base64 (Anthropic's base64 source, OpenAI's input_audio). Adds
 * their count to *parts and their bytes to *bytes. One search for `"data` over the body.
 */
static void
json_parts(const char *body, size_t len, size_t *parts, size_t *bytes)
{
    const char *end = body + len, *p = body, *v;
    size_t n;
    int member;

    while ((p = mg_find(p, (size_t)(end - p), "\"data", 5)) != NULL) {
        v = NULL;
        member = 0;
        if (p + 5 < end && p[5] == ':' && (p == body || p[-1] != '\\')) {
            v = p;                                   /* "data:...", a string of its own */
        } else if (p + 5 < end && p[5] == '"') {
            v = skip_blanks(p + 6, end);             /* "data": "..." */
            v = v < end && *v == ':' ? skip_blanks(v + 1, end) : end;
            v = v < end && *v == '"' ? v : NULL;
            member = 1;
        }
        if (v == NULL) {
            p += 5;
            continue;
        }
        if ((n = string_len(v, end)) == 0) {
            return;
        }
        if (inline_file(v, n, member)) {
            (*parts)++;
            *bytes += n;
        }
        p = v + n;
    }
}

/*
 * The file parts of a multipart/form-data body (it starts with its boundary line): each part
 * whose headers name a filename. Adds their count to *parts and their bytes (headers and
 * content, between the boundary lines) to *bytes.
 */
static void
multipart_parts(const char *body, size_t len, size_t *parts, size_t *bytes)
{
    const char *end = body + len, *p, *next, *hdr_end, *eol = memchr(body, '\n', len);
    char delim[80];
    size_t blen;

    if (eol == NULL) {
        return;
    }
    blen = (size_t)(eol - body) - (eol > body && eol[-1] == '\r');
    if (blen + 2 >= sizeof(delim)) {
        return;
    }
    delim[0] = '\n';                    /* parts end at (CR)LF + the boundary line */
    memcpy(delim + 1, body, blen);
    for (p = eol + 1; p < end; p = eol + 1) {
        next = mg_find(p, (size_t)(end - p), delim, blen + 1);
        if (next == NULL) {
            return;
        }
        hdr_end = mg_find(p, (size_t)(next - p), "\r\n\r\n", 4);
        if (hdr_end != NULL && mg_find(p, (size_t)(hdr_end - p), "filename=", 9) != NULL) {
            (*parts)++;
            *bytes += (size_t)(next - p) - (next > p && next[-1] == '\r');
        }
        eol = memchr(next + 1, '\n', (size_t)(end - next - 1));   /* the boundary line's end */
        if (eol == NULL) {
            return;                      /* the closing "--boundary--" */
        }
    }
}

int64_t
mg_limit_estimate(const char *body, size_t len, int64_t max_tokens)
{
    size_t parts = 0, bytes = 0;
    int64_t est;

    if (len >= 2 && body[0] == '-' && body[1] == '-') {
        multipart_parts(body, len, &parts, &bytes);
    } else {
        json_parts(body, len, &parts, &bytes);
    }
    bytes = bytes > len ? len : bytes;
    est = (int64_t)((len - bytes) / 4);
    est = mg_tokens_add(est, (int64_t)parts * MG_LIMIT_PART_TOKENS);
    return mg_tokens_add(est, max_tokens);
}

void
mg_limit_peek(const struct mg_limit *l, int64_t now_ms, struct mg_limit_info *info)
{
    int64_t now = to_ns(now_ms);

    describe(load(&l->req.cap), deficit(load(&l->req.full_at), now), &info->requests);
    describe(load(&l->tok.cap), deficit(load(&l->tok.full_at), now), &info->tokens);
    info->retry_after_ms = 0;
    info->reserved = 0;
}

/*
 * Decimal digits of v >= 0 at p; returns their count. Header values are written on every answer
 * to a limited key, so no printf here (six snprintf calls cost ~3,000 instructions a request).
 */
static size_t
put_int(char *p, int64_t v)
{
    char d[20];
    size_t n = 0, i;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++) {
        p[i] = d[n - 1 - i];
    }
    return n;
}

size_t
mg_limit_format_duration(int64_t ms, char *buf, size_t len)
{
    char t[64];
    size_t n = 0;
    int64_t frac;

    if (ms <= 0) {
        t[n++] = '0';
    } else if (ms < 1000) {
        n += put_int(t, ms);
        t[n++] = 'm';
    } else {
        if (ms >= 3600000) {
            n += put_int(t + n, ms / 3600000);
            t[n++] = 'h';
        }
        if (ms >= 60000) {
            n += put_int(t + n, ms / 60000 % 60);
            t[n++] = 'm';
        }
        n += put_int(t + n, ms / 1000 % 60);
        frac = ms % 1000;
        if (frac > 0) {
            /* ".5", ".25", ".125": the milliseconds with trailing zeros dropped, as Go does */
            t[n++] = '.';
            t[n++] = (char)('0' + frac / 100);
            if (frac % 100 != 0) {
                t[n++] = (char)('0' + frac / 10 % 10);
                if (frac % 10 != 0) {
                    t[n++] = (char)('0' + frac % 10);
                }
            }
        }
    }
    t[n++] = 's';
    if (len > 0) {
        size_t c = n < len ? n : len - 1;
        memcpy(buf, t, c);
        buf[c] = '\0';
    }
    return n;
}

static size_t
add_trio(const struct mg_limit_bucket_info *bi, const char *const names[3],
         struct mg_limit_header *out)
{
    if (bi->limit <= 0) {
        return 0;
    }
    out[0].name = names[0];
    out[0].value[put_int(out[0].value, bi->limit)] = '\0';
    out[1].name = names[1];
    out[1].value[put_int(out[1].value, bi->remaining)] = '\0';
    out[2].name = names[2];
    mg_limit_format_duration(bi->reset_ms, out[2].value, sizeof(out[2].value));
    return 3;
}

size_t
mg_limit_headers(const struct mg_limit_info *info, struct mg_limit_header *out)
{
    static const char *const req[3] = {
        "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests"
    };
    static const char *const tok[3] = {
        "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"
    };
    size_t n = 0;

    n += add_trio(&info->requests, req, out + n);
    n += add_trio(&info->tokens, tok, out + n);
    if (info->retry_after_ms > 0) {
        out[n].name = "Retry-After";
        out[n].value[put_int(out[n].value, info->retry_after_ms / 1000 +
                                          (info->retry_after_ms % 1000 != 0))] = '\0';
        n++;
    }
    return n;
}

void
mg_limit_reset(void)
{
    struct mg_limit *l, *next;

    pthread_mutex_lock(&reg_lock);
    for (l = reg_head; l != NULL; l = next) {
        next = l->next;
        free(l);
    }
    reg_head = NULL;
    reg_tail = &reg_head;
    pthread_mutex_unlock(&reg_lock);
}
