/*
 * mg_health — passive health per backend name: one packed 64-bit word per backend, changed by
 * compare-and-swap, in a registry (held by the runtime) that outlives config snapshots.
 *
 * The word: bit 0 down, bit 1 a probe is out, bits 2-7 the number of counted cooldowns in this
 * streak (the next one is cooldown << that), bits 8-21 failures in a row while up, bits 22-63 the
 * end of the cooldown (or of the probe claim) in ms. One word means a reader never sees, say, the
 * new cooldown end with the old failure count, and a transition is one CAS.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_health.h"
#include "mg_stats.h"
#include "mg_util.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2,
               "the health word must be a lock-free 64-bit atomic");

#define STEP_MAX  63
#define TIME_BITS 42
#define TIME_MAX  (((int64_t)1 << TIME_BITS) - 1)

struct mg_health {
    struct mg_health     *next;
    _Atomic uint64_t      word;
    atomic_uint_fast64_t  cooldowns;
    /* active checks: when the next may start (ms; set one interval after a cooldown starts,
     * moved on by each claim), apart from the word: the passive state never waits on it */
    _Atomic int64_t       check_at;
    char                  name[];
};

/* The word unpacked. */
struct hstate {
    int     down;
    int     probing;
    int     step;
    int     fails;
    int64_t until;
};

struct mg_health_registry {
    pthread_mutex_t   lock;     /* guards the list, not the states */
    struct mg_health *head, **tail;
};

static int64_t
clamp_time(int64_t t)
{
    return t < 0 ? 0 : t > TIME_MAX ? TIME_MAX : t;
}

static struct hstate
decode(uint64_t w)
{
    struct hstate s;

    s.down = (int)(w & 1);
    s.probing = (int)((w >> 1) & 1);
    s.step = (int)((w >> 2) & 0x3f);
    s.fails = (int)((w >> 8) & 0x3fff);
    s.until = (int64_t)(w >> 22);
    return s;
}

static uint64_t
encode(const struct hstate *s)
{
    return (uint64_t)(s->down != 0) | (uint64_t)(s->probing != 0) << 1
           | (uint64_t)s->step << 2 | (uint64_t)s->fails << 8
           | (uint64_t)clamp_time(s->until) << 22;
}

static uint64_t
load(const struct mg_health *st)
{
    /* The word is the whole state and publishes nothing else: relaxed is enough throughout. */
    return atomic_load_explicit(&((struct mg_health *)st)->word, memory_order_relaxed);
}

/* On failure *w is reloaded, as atomic_compare_exchange does. */
static int
cas(struct mg_health *st, uint64_t *w, const struct hstate *s)
{
    return atomic_compare_exchange_weak_explicit(&st->word, w, encode(s), memory_order_relaxed,
                                                 memory_order_relaxed);
}

/* cooldown << step, at most max_cooldown (exact, no overflow). */
static int64_t
streak_len(const struct mg_health_conf *conf, int step)
{
    int64_t len = conf->cooldown_ms < 0 ? 0 : conf->cooldown_ms > TIME_MAX ? TIME_MAX
                  : conf->cooldown_ms;
    int64_t max = conf->max_cooldown_ms < len ? len : conf->max_cooldown_ms > TIME_MAX ? TIME_MAX
                  : conf->max_cooldown_ms;

    while (step-- > 0 && len < max) {
        len = len > max / 2 ? max : len * 2;
    }
    return len < max ? len : max;
}

static int
threshold(const struct mg_health_conf *conf)
{
    return conf->failures > MG_HEALTH_FAILURES_MAX ? MG_HEALTH_FAILURES_MAX : conf->failures;
}

struct mg_health_registry *
mg_health_registry_create(void)
{
    struct mg_health_registry *reg = mg_calloc(1, sizeof(*reg));

    mg_mutex_init(&reg->lock);
    reg->tail = &reg->head;
    return reg;
}

void
mg_health_registry_destroy(struct mg_health_registry *reg)
{
    struct mg_health *st, *next;

    if (reg == NULL) {
        return;
    }
    for (st = reg->head; st != NULL; st = next) {
        next = st->next;
        free(st);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

struct mg_health *
mg_health_get(struct mg_health_registry *reg, const char *name)
{
    struct mg_health *st;
    size_t len = strlen(name);

    pthread_mutex_lock(&reg->lock);
    for (st = reg->head; st != NULL; st = st->next) {
        if (strcmp(st->name, name) == 0) {
            break;
        }
    }
    if (st == NULL) {
        st = mg_calloc(1, sizeof(*st) + len + 1);
        atomic_init(&st->word, 0);
        atomic_init(&st->cooldowns, 0);
        atomic_init(&st->check_at, 0);
        memcpy(st->name, name, len + 1);
        *reg->tail = st;
        reg->tail = &st->next;
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

const char *
mg_health_name(const struct mg_health *st)
{
    return st->name;
}

int
mg_health_cooling(const struct mg_health *st, int64_t now)
{
    struct hstate s = decode(load(st));

    if (!s.down) {
        return 0;
    }
    return clamp_time(now) < s.until ? MG_HEALTH_COOLING : MG_HEALTH_PROBE_DUE;
}

int
mg_health_try_probe(struct mg_health *st, int64_t now, int64_t *claim)
{
    uint64_t w = load(st);
    struct hstate s;

    now = clamp_time(now);
    for (;;) {
        s = decode(w);
        if (!s.down || now < s.until) {
            return 0;
        }
        s.probing = 1;
        s.until = clamp_time(now + MG_HEALTH_PROBE_TTL_MS);
        if (cas(st, &w, &s)) {
            /* a later claim starts after this one ended, so its end differs: it names the claim */
            if (claim != NULL) {
                *claim = s.until;
            }
            return 1;
        }
    }
}

void
mg_health_probe_cancel(struct mg_health *st, int64_t claim, int64_t now)
{
    uint64_t w = load(st);
    struct hstate s;

    now = clamp_time(now);
    do {
        s = decode(w);
        if (!s.down || !s.probing || s.until != claim) {
            return;
        }
        s.probing = 0;
        s.until = now < s.until ? now : s.until;
    } while (!cas(st, &w, &s));
}

/*
 * The one place where reports turn into transitions. ra_ms > 0 for a Retry-After failure, 0 for a
 * plain one. See the rules in mg_health.h.
 */
static int
fail(struct mg_health *st, const struct mg_health_conf *conf, int64_t now, int64_t ra_ms)
{
    uint64_t w = load(st);
    struct hstate s;
    int64_t ra, len;
    int counted, ret;

    now = clamp_time(now);
    ra = ra_ms < conf->max_cooldown_ms ? ra_ms : conf->max_cooldown_ms;
    ra = ra > TIME_MAX ? TIME_MAX : ra;
    for (;;) {
        s = decode(w);
        counted = threshold(conf) > 0;
        if (!s.down) {
            /* Up: count; the count (or a Retry-After) may start the first cooldown. */
            if (counted && s.fails + 1 < threshold(conf)) {
                if (ra <= 0) {
                    s.fails++;
                    if (cas(st, &w, &s)) {
                        return MG_HEALTH_SAME;
                    }
                    continue;
                }
                counted = 0;
            } else if (!counted && ra <= 0) {
                return MG_HEALTH_SAME;
            }
            ret = MG_HEALTH_WENT_DOWN;
        } else if (!s.probing && now < s.until) {
            /* Cooldown running: only a longer Retry-After changes it (and starts nothing new). */
            if (ra <= 0 || now + ra <= s.until) {
                return MG_HEALTH_SAME;
            }
            s.until = now + ra;
            if (cas(st, &w, &s)) {
                return MG_HEALTH_SAME;
            }
            continue;
        } else if (!counted && ra <= 0) {
            /* Counting off and no Retry-After: give the probe back, the next request probes. */
            if (!s.probing) {
                return MG_HEALTH_SAME;
            }
            s.probing = 0;
            s.until = now < s.until ? now : s.until;
            if (cas(st, &w, &s)) {
                return MG_HEALTH_SAME;
            }
            continue;
        } else {
            /* Cooldown over or a probe out: this failure is the backend's answer to it. */
            ret = MG_HEALTH_AGAIN;
        }
        len = counted ? streak_len(conf, s.step) : 0;
        if (ra > len) {
            len = ra;
        }
        if (counted && s.step < STEP_MAX) {
            s.step++;
        }
        s.down = 1;
        s.probing = 0;
        s.fails = 0;
        s.until = now + len;
        if (cas(st, &w, &s)) {
            atomic_fetch_add_explicit(&st->cooldowns, 1, memory_order_relaxed);
            if (ret == MG_HEALTH_WENT_DOWN) {   /* the first check one interval from now */
                atomic_store_explicit(&st->check_at, now + conf->check_interval_ms,
                                      memory_order_relaxed);
            }
            return ret;
        }
    }
}

int
mg_health_failure(struct mg_health *st, const struct mg_health_conf *conf, int64_t now)
{
    return fail(st, conf, now, 0);
}

int
mg_health_retry_after(struct mg_health *st, const struct mg_health_conf *conf, int64_t now,
                      int64_t retry_after_ms)
{
    return fail(st, conf, now, retry_after_ms > 0 ? retry_after_ms : 0);
}

int
mg_health_success(struct mg_health *st, const struct mg_health_conf *conf, int64_t now)
{
    uint64_t w = load(st);
    struct hstate s;
    int ret;

    (void)conf;
    now = clamp_time(now);
    for (;;) {
        s = decode(w);
        if (!s.down) {
            /* The common case: an up backend with no failures costs one load, no write. */
            if (s.fails == 0) {
                return MG_HEALTH_SAME;
            }
            ret = MG_HEALTH_SAME;
        } else if (!s.probing && now < s.until) {
            return MG_HEALTH_SAME;
        } else {
            ret = MG_HEALTH_CAME_UP;
        }
        memset(&s, 0, sizeof(s));
        if (cas(st, &w, &s)) {
            return ret;
        }
    }
}

int
mg_health_check_claim(struct mg_health *st, int64_t now, int64_t interval_ms)
{
    int64_t at = atomic_load_explicit(&st->check_at, memory_order_relaxed);

    if (interval_ms <= 0 || !decode(load(st)).down) {
        return 0;   /* never a check to a backend that is not cooling */
    }
    if (at > now + interval_ms) {
        at = now + interval_ms;   /* set under a longer interval (a reload shortened it) */
        atomic_store_explicit(&st->check_at, at, memory_order_relaxed);
    }
    return now >= at && atomic_compare_exchange_strong_explicit(
        &st->check_at, &at, now + interval_ms, memory_order_relaxed, memory_order_relaxed);
}

int
mg_health_check_ok(struct mg_health *st, int64_t now)
{
    uint64_t w = load(st);
    struct hstate s;

    (void)now;
    for (;;) {
        s = decode(w);
        if (!s.down) {
            return MG_HEALTH_SAME;
        }
        memset(&s, 0, sizeof(s));   /* up: the streak and its cooldown length reset */
        if (cas(st, &w, &s)) {
            return MG_HEALTH_CAME_UP;
        }
    }
}

int
mg_health_up(const struct mg_health *st)
{
    return !decode(load(st)).down;
}

uint64_t
mg_health_cooldowns(const struct mg_health *st)
{
    return atomic_load_explicit(&((struct mg_health *)st)->cooldowns, memory_order_relaxed);
}

int64_t
mg_health_cooldown_left(const struct mg_health *st, int64_t now)
{
    struct hstate s = decode(load(st));

    now = clamp_time(now);
    return s.down && s.until > now ? s.until - now : 0;
}

void
mg_health_foreach(struct mg_health_registry *reg, void (*fn)(struct mg_health *st, void *arg),
                  void *arg)
{
    struct mg_health *st;

    pthread_mutex_lock(&reg->lock);
    for (st = reg->head; st != NULL; st = st->next) {
        fn(st, arg);
    }
    pthread_mutex_unlock(&reg->lock);
}

/* ---- metrics ---- */

static void
health_up(struct mg_health *st, void *arg)
{
    mg_buf_adds(arg, "modelgate_backend_up{");
    mg_stats_label(arg, "backend", mg_health_name(st), 0);
    mg_buf_printf(arg, "} %d\n", mg_health_up(st));
}

static void
health_cooldowns(struct mg_health *st, void *arg)
{
    mg_buf_adds(arg, "modelgate_backend_cooldowns_total{");
    mg_stats_label(arg, "backend", mg_health_name(st), 0);
    mg_buf_printf(arg, "} %llu\n", (unsigned long long)mg_health_cooldowns(st));
}

void
mg_health_render(struct mg_health_registry *health, struct mg_buf *out)
{
    mg_buf_adds(out, "# HELP modelgate_backend_up 1 while a backend is not cooling down.\n"
                     "# TYPE modelgate_backend_up gauge\n");
    mg_health_foreach(health, health_up, out);
    mg_buf_adds(out, "# HELP modelgate_backend_cooldowns_total Cooldowns a backend entered.\n"
                     "# TYPE modelgate_backend_cooldowns_total counter\n");
    mg_health_foreach(health, health_cooldowns, out);
}
