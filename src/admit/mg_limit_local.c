/*
 * mg_limit_local — the in-process limit store: per-key token buckets held as "full again at"
 * times (GCRA), one atomic each, in a registry by key name; token reservations and their
 * settlement. The arithmetic is in nanoseconds on 128-bit intermediates, so no product of a
 * capacity and a time overflows.
 *
 * Each bucket is ONE 64-bit atomic, the time (ns) at which it will be full again: its level at
 * `now` is N - (full_at - now) * N / 60 s, and taking k units moves full_at to max(full_at, now)
 * + k * 60 s / N with one compare-and-swap. One word because a level + timestamp pair does not fit
 * 64 bits with sub-unit precision for big token limits. Nanoseconds because each take or
 * settlement is then rounded (down) by less than 1 ns, so a bucket is generous by less than
 * takes * N / 6e10 units: a 100,000-per-minute request limit run flat out for a minute admits
 * exactly 200,000 (burst + refill), and a 7,000,000-token bucket debited 1,000 times a minute lets
 * through under 0.12 tokens too many. Refill itself is computed from the elapsed time exactly.
 *
 * get() takes the store's mutex (a snapshot going into service); everything else is lock-free and
 * safe from any worker thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_limit_store.h"
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

/* One key's buckets: the common part first, as every store's entries begin. */
struct entry {
    struct mg_limit  base;
    struct entry    *next;
    struct bucket    req;
    struct bucket    tok;
    char             name[];
};

struct store {
    struct mg_limit_store base;
    pthread_mutex_t       lock;     /* guards the list, not the buckets */
    struct entry         *head, **tail;
};

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

static struct mg_limit_store *
local_create(void)
{
    struct store *s = mg_calloc(1, sizeof(*s));

    s->base.ops = &mg_limit_local_ops;
    mg_mutex_init(&s->lock);
    s->tail = &s->head;
    return &s->base;
}

static void
local_destroy(struct mg_limit_store *store)
{
    struct store *s = (struct store *)store;
    struct entry *e, *next;

    for (e = s->head; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static struct mg_limit *
local_get(struct mg_limit_store *store, const char *name)
{
    struct store *s = (struct store *)store;
    struct entry *e;
    size_t len = strlen(name);

    pthread_mutex_lock(&s->lock);
    for (e = s->head; e != NULL; e = e->next) {
        if (strcmp(e->name, name) == 0) {
            break;
        }
    }
    if (e == NULL) {
        e = mg_calloc(1, sizeof(*e) + len + 1);
        atomic_init(&e->req.full_at, 0);
        atomic_init(&e->req.cap, 0);
        atomic_init(&e->tok.full_at, 0);
        atomic_init(&e->tok.cap, 0);
        memcpy(e->name, name, len + 1);
        e->base.store = store;
        e->base.name = e->name;
        *s->tail = e;
        s->tail = &e->next;
    }
    pthread_mutex_unlock(&s->lock);
    return &e->base;
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

static void
local_configure(struct mg_limit *l, int64_t requests_per_minute, int64_t tokens_per_minute,
                int64_t now)
{
    struct entry *e = (struct entry *)l;

    configure(&e->req, requests_per_minute, to_ns(now));
    configure(&e->tok, tokens_per_minute, to_ns(now));
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

static int
local_admit(struct mg_limit *lim, int64_t now_ms, int64_t tokens, struct mg_limit_info *info)
{
    struct entry *l = (struct entry *)lim;
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

static void
local_settle(struct mg_limit *lim, int64_t reserved, int64_t used, int64_t now_ms)
{
    struct entry *l = (struct entry *)lim;
    int64_t cap = load(&l->tok.cap);

    if (cap == 0) {
        return;
    }
    adjust(&l->tok, cap, reserved < 0 ? 0 : reserved, used < 0 ? 0 : used, to_ns(now_ms));
}

static void
local_peek(const struct mg_limit *lim, int64_t now_ms, struct mg_limit_info *info)
{
    const struct entry *l = (const struct entry *)lim;
    int64_t now = to_ns(now_ms);

    describe(load(&l->req.cap), deficit(load(&l->req.full_at), now), &info->requests);
    describe(load(&l->tok.cap), deficit(load(&l->tok.full_at), now), &info->tokens);
    info->retry_after_ms = 0;
    info->reserved = 0;
}

const struct mg_limit_store_ops mg_limit_local_ops = {
    .name = "local",
    .create = local_create,
    .destroy = local_destroy,
    .get = local_get,
    .configure = local_configure,
    .admit = local_admit,
    .settle = local_settle,
    .peek = local_peek,
};
