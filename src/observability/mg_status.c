/*
 * mg_status — the status page's per-worker rings and counters, merged on demand.
 *
 * One writer per table (its worker): counters move by a relaxed load and store, entries for a new
 * name are allocated once and published by a release store of their pointer, and a ring slot is
 * reused by its writer when its 10 s window comes round again (cleared, then its epoch stored).
 * A reader on another thread may see a slot being cleared: a page is a view, not an account.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_status.h"
#include "mg_util.h"

#define WORKERS_MAX 256
#define NB          40     /* histogram buckets: half steps of log2 from 1 ms */
#define RECENT      30     /* slots in "the last 5 minutes" */

struct slot {
    _Atomic int64_t      epoch;   /* now / 10 s of its window; -1 before the first */
    atomic_uint_fast32_t requests, errors;
    atomic_uint_fast32_t lat[NB], ttft[NB];
};

struct backend {
    char                 name[64];
    atomic_uint_fast64_t requests, errors;
    struct slot          ring[MG_STATUS_SLOTS];
    char                 result[MG_STATUS_RESULTS][24];   /* writer-only until published */
    atomic_int           nresults;
    atomic_uint_fast64_t result_count[MG_STATUS_RESULTS];
};

struct counts {
    char                 name[64];
    atomic_uint_fast64_t requests, errors, input, output;
};

struct mg_status {
    struct mg_status_registry *reg;
    _Atomic(struct backend *)  backends[MG_STATUS_BACKENDS];
    _Atomic(struct counts *)   keys[MG_STATUS_KEYS];
    struct counts              rules[MG_STATUS_RULES];
};

struct mg_status_registry {
    pthread_mutex_t      lock;
    struct mg_status    *tables[WORKERS_MAX];
    int64_t              started_s;
    atomic_uint_fast64_t reloads_ok, reloads_error;
    _Atomic int64_t      last_reload_s;
};

static inline void
bump(atomic_uint_fast64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline void
bump32(atomic_uint_fast32_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline uint64_t
get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct mg_status_registry *
mg_status_registry_create(void)
{
    struct mg_status_registry *reg = mg_calloc(1, sizeof(*reg));

    mg_mutex_init(&reg->lock);
    reg->started_s = (int64_t)time(NULL);
    return reg;
}

void
mg_status_registry_destroy(struct mg_status_registry *reg)
{
    if (reg != NULL) {
        pthread_mutex_destroy(&reg->lock);
        free(reg);
    }
}

struct mg_status *
mg_status_create(struct mg_status_registry *reg)
{
    struct mg_status *st = mg_calloc(1, sizeof(*st));
    int i;

    st->reg = reg;
    pthread_mutex_lock(&reg->lock);
    for (i = 0; i < WORKERS_MAX && reg->tables[i] != NULL; i++) {
    }
    if (i < WORKERS_MAX) {
        reg->tables[i] = st;
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

void
mg_status_destroy(struct mg_status *st)
{
    int i;

    if (st == NULL) {
        return;
    }
    pthread_mutex_lock(&st->reg->lock);
    for (i = 0; i < WORKERS_MAX; i++) {
        if (st->reg->tables[i] == st) {
            st->reg->tables[i] = NULL;
        }
    }
    pthread_mutex_unlock(&st->reg->lock);
    for (i = 0; i < MG_STATUS_BACKENDS; i++) {
        free(atomic_load(&st->backends[i]));
    }
    for (i = 0; i < MG_STATUS_KEYS; i++) {
        free(atomic_load(&st->keys[i]));
    }
    free(st);
}

static size_t
slot_of(const char *name, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (; *name; name++) {
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    }
    return (size_t)(h % n);
}

/* The backend's entry (made when new and create is set), or NULL. */
static struct backend *
backend_of(struct mg_status *st, const char *name, int create)
{
    size_t i = slot_of(name, MG_STATUS_BACKENDS), n;

    for (n = 0; n < MG_STATUS_BACKENDS; n++, i = (i + 1) % MG_STATUS_BACKENDS) {
        struct backend *b = atomic_load_explicit(&st->backends[i], memory_order_acquire);
        if (b == NULL) {
            size_t k;
            if (!create || strlen(name) >= sizeof(b->name)) {
                return NULL;
            }
            b = mg_calloc(1, sizeof(*b));
            snprintf(b->name, sizeof(b->name), "%s", name);
            for (k = 0; k < MG_STATUS_SLOTS; k++) {
                atomic_init(&b->ring[k].epoch, -1);
            }
            atomic_store_explicit(&st->backends[i], b, memory_order_release);
            return b;
        }
        if (strcmp(b->name, name) == 0) {
            return b;
        }
    }
    return NULL;
}

static struct counts *
key_of(struct mg_status *st, const char *name, int create)
{
    size_t i = slot_of(name, MG_STATUS_KEYS), n;

    for (n = 0; n < MG_STATUS_KEYS; n++, i = (i + 1) % MG_STATUS_KEYS) {
        struct counts *c = atomic_load_explicit(&st->keys[i], memory_order_acquire);
        if (c == NULL) {
            if (!create || strlen(name) >= sizeof(c->name)) {
                return NULL;
            }
            c = mg_calloc(1, sizeof(*c));
            snprintf(c->name, sizeof(c->name), "%s", name);
            atomic_store_explicit(&st->keys[i], c, memory_order_release);
            return c;
        }
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

/* Half steps of log2 of microseconds, from 1 ms (1024 us) up. */
static int
bucket(int64_t us)
{
    int msb, b;

    if (us < 1024) {
        return 0;
    }
    msb = 63 - __builtin_clzll((unsigned long long)us);
    b = 2 * (msb - 10) + (int)((us >> (msb - 1)) & 1);
    return b < NB ? b : NB - 1;
}

/* The upper bound of bucket b, in seconds. */
static double
bucket_top(int b)
{
    double lo = (double)(1ull << (b / 2 + 10));

    return (b % 2 == 0 ? lo * 1.5 : lo * 2) / 1e6;
}

void
mg_status_attempt(struct mg_status *st, int64_t now_ms, const char *backend, const char *result,
                  int failed, int64_t dur_us, int64_t ttft_us)
{
    struct backend *b = backend_of(st, backend, 1);
    int64_t e = now_ms / (MG_STATUS_STEP_S * 1000);
    struct slot *s;
    int i, n;

    if (b == NULL) {
        return;
    }
    s = &b->ring[e % MG_STATUS_SLOTS];
    if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != e) {   /* a new window */
        size_t k;
        atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&s->errors, 0, memory_order_relaxed);
        for (k = 0; k < NB; k++) {
            atomic_store_explicit(&s->lat[k], 0, memory_order_relaxed);
            atomic_store_explicit(&s->ttft[k], 0, memory_order_relaxed);
        }
        atomic_store_explicit(&s->epoch, e, memory_order_release);
    }
    bump(&b->requests, 1);
    bump32(&s->requests);
    if (failed) {
        bump(&b->errors, 1);
        bump32(&s->errors);
    }
    if (dur_us >= 0) {
        bump32(&s->lat[bucket(dur_us)]);
    }
    if (ttft_us >= 0) {
        bump32(&s->ttft[bucket(ttft_us)]);
    }
    n = atomic_load_explicit(&b->nresults, memory_order_relaxed);
    for (i = 0; i < n && strcmp(b->result[i], result) != 0; i++) {
    }
    if (i == n) {
        if (n == MG_STATUS_RESULTS || strlen(result) >= sizeof(b->result[0])) {
            return;
        }
        memcpy(b->result[n], result, strlen(result) + 1);
        atomic_store_explicit(&b->nresults, n + 1, memory_order_release);
    }
    bump(&b->result_count[i], 1);
}

void
mg_status_request(struct mg_status *st, int rule, const char *key, int error, int64_t input,
                  int64_t output)
{
    if (rule >= 0 && rule < MG_STATUS_RULES) {
        struct counts *r = &st->rules[rule];
        bump(&r->requests, 1);
        if (error) {
            bump(&r->errors, 1);
        }
        if (input > 0) {
            bump(&r->input, (uint64_t)input);
        }
        if (output > 0) {
            bump(&r->output, (uint64_t)output);
        }
    }
    if (key != NULL) {
        struct counts *k = key_of(st, key, 1);
        if (k != NULL) {
            bump(&k->requests, 1);
            if (input > 0) {
                bump(&k->input, (uint64_t)input);
            }
            if (output > 0) {
                bump(&k->output, (uint64_t)output);
            }
        }
    }
}

void
mg_status_reload(struct mg_status_registry *reg, int ok, int64_t wall_s)
{
    atomic_fetch_add(ok ? &reg->reloads_ok : &reg->reloads_error, 1);
    if (ok) {
        atomic_store(&reg->last_reload_s, wall_s);
    }
}

void
mg_status_instance(struct mg_status_registry *reg, int64_t *started_s, uint64_t *ok,
                   uint64_t *error, int64_t *last_reload_s, int *workers)
{
    int i;

    *started_s = reg->started_s;
    *ok = atomic_load(&reg->reloads_ok);
    *error = atomic_load(&reg->reloads_error);
    *last_reload_s = atomic_load(&reg->last_reload_s);
    pthread_mutex_lock(&reg->lock);
    for (*workers = 0, i = 0; i < WORKERS_MAX; i++) {
        *workers += reg->tables[i] != NULL;
    }
    pthread_mutex_unlock(&reg->lock);
}

/* The smallest bucket top under which q of the samples fall; -1 without samples. */
static double
quantile(const uint64_t *h, double q)
{
    uint64_t total = 0, cum = 0;
    int b;

    for (b = 0; b < NB; b++) {
        total += h[b];
    }
    if (total == 0) {
        return -1;
    }
    for (b = 0; b < NB; b++) {
        cum += h[b];
        if ((double)cum >= q * (double)total) {
            return bucket_top(b);
        }
    }
    return bucket_top(NB - 1);
}

void
mg_status_backend(struct mg_status_registry *reg, const char *name, int64_t now_ms,
                  struct mg_status_backend_view *v)
{
    int64_t now_e = now_ms / (MG_STATUS_STEP_S * 1000);
    uint64_t lat[NB] = {0}, ttft[NB] = {0};
    int w, i, k, r;

    memset(v, 0, sizeof(*v));
    pthread_mutex_lock(&reg->lock);
    for (w = 0; w < WORKERS_MAX; w++) {
        struct backend *b;
        if (reg->tables[w] == NULL || (b = backend_of(reg->tables[w], name, 0)) == NULL) {
            continue;
        }
        v->requests += get(&b->requests);
        v->errors += get(&b->errors);
        for (i = 0; i < MG_STATUS_SLOTS; i++) {   /* i: slots ago */
            int64_t e = now_e - i;
            struct slot *s = &b->ring[e % MG_STATUS_SLOTS];
            uint64_t rq, er;
            if (atomic_load_explicit(&s->epoch, memory_order_acquire) != e) {
                continue;
            }
            rq = atomic_load_explicit(&s->requests, memory_order_relaxed);
            er = atomic_load_explicit(&s->errors, memory_order_relaxed);
            v->series_requests[MG_STATUS_SLOTS - 1 - i] += rq;
            v->series_errors[MG_STATUS_SLOTS - 1 - i] += er;
            if (i < RECENT) {
                v->recent_requests += rq;
                v->recent_errors += er;
                for (k = 0; k < NB; k++) {
                    lat[k] += atomic_load_explicit(&s->lat[k], memory_order_relaxed);
                    ttft[k] += atomic_load_explicit(&s->ttft[k], memory_order_relaxed);
                }
            }
        }
        for (r = 0; r < atomic_load_explicit(&b->nresults, memory_order_acquire); r++) {
            size_t j;
            for (j = 0; j < v->nresults && strcmp(v->result[j], b->result[r]) != 0; j++) {
            }
            if (j == v->nresults) {
                memcpy(v->result[j], b->result[r], sizeof(v->result[j]));
                v->nresults++;
            }
            v->result_count[j] += get(&b->result_count[r]);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    v->latency_p50 = quantile(lat, 0.5);
    v->latency_p99 = quantile(lat, 0.99);
    v->ttft_p50 = quantile(ttft, 0.5);
    v->ttft_p99 = quantile(ttft, 0.99);
}

void
mg_status_rule(struct mg_status_registry *reg, int index, uint64_t *requests, uint64_t *errors,
               uint64_t *input, uint64_t *output)
{
    int w;

    *requests = *errors = *input = *output = 0;
    if (index < 0 || index >= MG_STATUS_RULES) {
        return;
    }
    pthread_mutex_lock(&reg->lock);
    for (w = 0; w < WORKERS_MAX; w++) {
        struct counts *r;
        if (reg->tables[w] == NULL) {
            continue;
        }
        r = &reg->tables[w]->rules[index];
        *requests += get(&r->requests);
        *errors += get(&r->errors);
        *input += get(&r->input);
        *output += get(&r->output);
    }
    pthread_mutex_unlock(&reg->lock);
}

void
mg_status_key(struct mg_status_registry *reg, const char *name, uint64_t *requests,
              uint64_t *input, uint64_t *output)
{
    int w;

    *requests = *input = *output = 0;
    pthread_mutex_lock(&reg->lock);
    for (w = 0; w < WORKERS_MAX; w++) {
        struct counts *k;
        if (reg->tables[w] == NULL || (k = key_of(reg->tables[w], name, 0)) == NULL) {
            continue;
        }
        *requests += get(&k->requests);
        *input += get(&k->input);
        *output += get(&k->output);
    }
    pthread_mutex_unlock(&reg->lock);
}
