/*
 * mg_limit — per-key token buckets held as "full again at" times (GCRA), one atomic each, and
 * the x-ratelimit-* header values. The arithmetic is in nanoseconds on 128-bit intermediates, so
 * no product of a capacity and a time overflows.
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
#define DEBT_MAX   ((int64_t)1 << 61)    /* full_at - now at most; now + DEBT_MAX fits */

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

/* Time (ns) until the bucket holds one whole unit: level >= 1 <=> d * cap <= T * (cap - 1). */
static int64_t
wait_for_one(int64_t d, int64_t cap)
{
    int64_t room = (int64_t)((wide)MINUTE_NS * (cap - 1) / cap);

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

int
mg_limit_admit(struct mg_limit *l, int64_t now_ms, struct mg_limit_info *info)
{
    int64_t now = to_ns(now_ms);
    int64_t rcap = load(&l->req.cap), tcap = load(&l->tok.cap);
    int64_t tf = load(&l->tok.full_at), rf = load(&l->req.full_at);
    int64_t twait = 0, rwait = 0, rd = 0, next;
    int ok;

    if (tcap > 0) {
        twait = wait_for_one(deficit(tf, now), tcap);
    }
    ok = twait == 0;
    if (rcap > 0) {
        for (;;) {
            rd = deficit(rf, now);
            rwait = wait_for_one(rd, rcap);
            if (!ok || rwait > 0) {
                ok = 0;
                break;
            }
            next = now + rd + cost(1, rcap);
            if (atomic_compare_exchange_weak_explicit(&l->req.full_at, &rf, next,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                rd = next - now;
                break;
            }
        }
    }
    if (info != NULL) {
        describe(rcap, rd, &info->requests);
        describe(tcap, deficit(tf, now), &info->tokens);
        info->retry_after_ms = ok ? 0 : ms_up(rwait > twait ? rwait : twait);
    }
    return ok;
}

void
mg_limit_debit_tokens(struct mg_limit *l, int64_t tokens, int64_t now_ms)
{
    int64_t now = to_ns(now_ms), cap = load(&l->tok.cap), f, d;

    if (cap == 0 || tokens <= 0) {
        return;
    }
    f = load(&l->tok.full_at);
    do {
        d = deficit(f, now) + cost(tokens, cap);
        d = d > DEBT_MAX ? DEBT_MAX : d;
    } while (!atomic_compare_exchange_weak_explicit(&l->tok.full_at, &f, now + d,
                                                    memory_order_relaxed, memory_order_relaxed));
}

void
mg_limit_peek(const struct mg_limit *l, int64_t now_ms, struct mg_limit_info *info)
{
    int64_t now = to_ns(now_ms);

    describe(load(&l->req.cap), deficit(load(&l->req.full_at), now), &info->requests);
    describe(load(&l->tok.cap), deficit(load(&l->tok.full_at), now), &info->tokens);
    info->retry_after_ms = 0;
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
