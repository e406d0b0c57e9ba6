/*
 * mg_stats — per-worker series tables, merged at scrape time.
 *
 * A worker's table has a fixed capacity and is never resized, so a scraper on another thread can
 * walk it while the worker adds series: a series is published by a release store of `used` after
 * its labels were written, and its labels never change afterwards.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_stats.h"
#include "mg_stats_int.h"

#define SERIES_SOFT (SERIES_MAX * 3 / 4)   /* past this, new model names count as "other" */
#define WORKERS_MAX 256

enum kind { K_REQ, K_TOK_IN, K_TOK_OUT, K_ATT, K_KEY_REQ, K_KEY_TOK_IN, K_KEY_TOK_OUT, K_XLATE,
            K_RESUME, K_NKINDS };

static const double buckets[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                         10, 30, 60, 120, 300, 600};
/* the gateway's own time on a request: microseconds, not seconds (as many buckets) */
static const double fine[NBUCKETS] = {0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                                      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 1};

struct mg_stats_registry {
    pthread_mutex_t      lock;      /* workers come and go while a scrape walks the tables */
    struct mg_stats     *tables[WORKERS_MAX];   /* one a worker; NULL: a free slot */
    atomic_uint_fast64_t reloads_ok, reloads_error;
};

/* One writer per worker: a load and a store, no read-modify-write instruction needed. */
static inline void
bump(atomic_uint_fast64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* A token counter: saturates at MG_TOKENS_MAX (SPEC: usage sums never overflow). */
static inline void
bump_tokens(atomic_uint_fast64_t *c, int64_t by)
{
    int64_t v = (int64_t)atomic_load_explicit(c, memory_order_relaxed);

    atomic_store_explicit(c, (uint64_t)mg_tokens_add(v, by), memory_order_relaxed);
}

static int
is_tokens(int kind)
{
    return kind == K_TOK_IN || kind == K_TOK_OUT || kind == K_KEY_TOK_IN || kind == K_KEY_TOK_OUT;
}

struct mg_stats_registry *
mg_stats_registry_create(void)
{
    struct mg_stats_registry *reg = mg_calloc(1, sizeof(*reg));

    mg_mutex_init(&reg->lock);
    atomic_init(&reg->reloads_ok, 0);
    atomic_init(&reg->reloads_error, 0);
    return reg;
}

void
mg_stats_registry_destroy(struct mg_stats_registry *reg)
{
    if (reg == NULL) {
        return;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

struct mg_stats *
mg_stats_create(struct mg_stats_registry *reg)
{
    struct mg_stats *st = mg_calloc(1, sizeof(*st));
    int i;

    st->reg = reg;
    st->genai = mg_genai_create();
    st->cost = mg_cost_create();
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
mg_stats_destroy(struct mg_stats *st)
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
    for (i = 0; i < SERIES_MAX; i++) {
        free(st->s[i].a);
        free(st->s[i].b);
    }
    mg_genai_destroy(st->genai);
    mg_cost_destroy(st->cost);
    free(st);
}

void
mg_stats_genai(struct mg_stats *st, const char *model, const char *provider, int64_t dur_us,
               int64_t ttft_us, int64_t input, int64_t output)
{
    mg_genai_observe(st->genai, model, provider, dur_us, ttft_us, input, output);
}

void
mg_stats_trace_dropped(struct mg_stats *st, int export_failed, uint64_t n)
{
    mg_genai_dropped(st->genai, export_failed, n);
}

static uint64_t
hash(int kind, const char *a, const char *b, int code)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind ^ ((uint64_t)code << 8);

    for (; *a; a++) {
        h = (h ^ (unsigned char)*a) * 1099511628211ull;
    }
    h = (h ^ 0xff) * 1099511628211ull;
    for (; *b; b++) {
        h = (h ^ (unsigned char)*b) * 1099511628211ull;
    }
    return h;
}

/* The series for a key: found, or created when create is set and there is room; else NULL. */
static struct series *
lookup(struct mg_stats *st, int kind, const char *a, const char *b, int code, int create)
{
    size_t i, n;

    for (n = 0, i = hash(kind, a, b, code) % SERIES_MAX; n < SERIES_MAX;
         n++, i = (i + 1) % SERIES_MAX) {
        struct series *s = &st->s[i];
        if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
            if (!create) {
                return NULL;
            }
            s->kind = kind;
            s->code = code;
            s->a = mg_strdup(a);
            s->b = mg_strdup(b);
            atomic_store_explicit(&s->used, 1, memory_order_release);
            st->nused++;
            return s;
        }
        if (s->kind == kind && s->code == code && strcmp(s->a, a) == 0 && strcmp(s->b, b) == 0) {
            return s;
        }
    }
    return NULL;
}

/*
 * The series for a key, created when new. Past SERIES_SOFT, a key not seen yet is counted under
 * model "other": clients must not be able to grow the table with made-up model names.
 */
static struct series *
series_get(struct mg_stats *st, int kind, const char *a, const char *b, int code)
{
    struct series *s;

    /* backend and key names come from the config, not from clients: never folded */
    if (st->nused < SERIES_SOFT || kind >= K_ATT) {
        return lookup(st, kind, a, b, code, 1);
    }
    s = lookup(st, kind, a, b, code, 0);
    return s != NULL ? s : lookup(st, kind, "other", b, code, 1);
}

static void
observe_in(struct hist *h, const double *bounds, int64_t us)
{
    double sec = (double)us / 1e6;
    size_t i;

    for (i = 0; i < NBUCKETS && sec > bounds[i]; i++) {
    }
    bump(&h->bucket[i], 1);
    bump(&h->count, 1);
    bump(&h->sum_us, us > 0 ? (uint64_t)us : 0);
}

static void
observe(struct hist *h, int64_t us)
{
    observe_in(h, buckets, us);
}

void
mg_stats_overhead(struct mg_stats *st, int64_t us)
{
    observe_in(&st->overhead, fine, us);
}

void
mg_stats_request(struct mg_stats *st, const char *model, const char *backend, int code,
                 int64_t dur_us, int64_t ttft_us)
{
    struct series *s = series_get(st, K_REQ, model ? model : "", backend ? backend : "", code);

    if (s != NULL) {
        bump(&s->value, 1);
    }
    observe(&st->duration, dur_us);
    if (ttft_us >= 0) {
        observe(&st->ttft, ttft_us);
    }
}

void
mg_stats_tokens(struct mg_stats *st, const char *model, const char *backend, int64_t input,
                int64_t output)
{
    struct series *s;

    if (input > 0 && (s = series_get(st, K_TOK_IN, model, backend, 0)) != NULL) {
        bump_tokens(&s->value, input);
    }
    if (output > 0 && (s = series_get(st, K_TOK_OUT, model, backend, 0)) != NULL) {
        bump_tokens(&s->value, output);
    }
}

void
mg_stats_key(struct mg_stats *st, const char *key, int code, int64_t input, int64_t output)
{
    struct series *s;

    if ((s = series_get(st, K_KEY_REQ, key, "", code)) != NULL) {
        bump(&s->value, 1);
    }
    if (input > 0 && (s = series_get(st, K_KEY_TOK_IN, key, "", 0)) != NULL) {
        bump_tokens(&s->value, input);
    }
    if (output > 0 && (s = series_get(st, K_KEY_TOK_OUT, key, "", 0)) != NULL) {
        bump_tokens(&s->value, output);
    }
}

void
mg_stats_translation(struct mg_stats *st, const char *api, const char *upstream_api)
{
    struct series *s = series_get(st, K_XLATE, api, upstream_api, 0);

    if (s != NULL) {
        bump(&s->value, 1);
    }
}

void
mg_stats_resume(struct mg_stats *st, const char *rule, const char *result)
{
    struct series *s = series_get(st, K_RESUME, rule, result, 0);

    if (s != NULL) {
        bump(&s->value, 1);
    }
}

void
mg_stats_attempt(struct mg_stats *st, const char *backend, const char *result)
{
    struct series *s = series_get(st, K_ATT, backend, result, 0);

    if (s != NULL) {
        bump(&s->value, 1);
    }
}

void
mg_stats_inflight(struct mg_stats *st, int n)
{
    atomic_store_explicit(&st->inflight, n, memory_order_relaxed);
}

void
mg_stats_reload(struct mg_stats_registry *reg, int ok)
{
    atomic_fetch_add(ok ? &reg->reloads_ok : &reg->reloads_error, 1);
}

/* ---- scrape ------------------------------------------------------------------------------ */

struct merged {
    int         kind;
    int         code;
    const char *a;
    const char *b;
    uint64_t    value;
};


static void
render_hist(struct mg_buf *out, struct mg_stats *const *reg, const char *name, const char *help,
            int which)
{
    uint64_t b[NBUCKETS + 1] = {0}, count = 0, sum = 0, cum = 0;
    size_t i;
    int w;

    for (w = 0; w < WORKERS_MAX; w++) {
        struct hist *h;
        if (reg[w] == NULL) {
            continue;
        }
        h = which == 2 ? &reg[w]->overhead : which ? &reg[w]->ttft : &reg[w]->duration;
        for (i = 0; i <= NBUCKETS; i++) {
            b[i] += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        }
        count += atomic_load_explicit(&h->count, memory_order_relaxed);
        sum += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    }
    mg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i < NBUCKETS; i++) {
        cum += b[i];
        mg_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, which == 2 ? fine[i] : buckets[i],
                      (unsigned long long)cum);
    }
    cum += b[NBUCKETS];
    /* count is read last and may have moved on: +Inf must equal _count, so use the larger */
    if (count < cum) {
        count = cum;
    }
    mg_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                  (unsigned long long)count, name, (double)sum / 1e6, name,
                  (unsigned long long)count);
}

/* Adds up the same series across workers (a hash, not a scan: up to 4096 series a worker). */
static size_t
merge_workers(struct mg_stats *const *reg, struct merged **out, int *inflight)
{
    struct merged *m;
    size_t *slot;     /* open addressing over m: index + 1, 0 when empty */
    size_t nm = 0, cap = 0, nslots, i, j;
    struct merged *dst;
    uint64_t v;
    int w;

    for (w = 0; w < WORKERS_MAX; w++) {
        if (reg[w] != NULL) {
            cap += SERIES_MAX;
        }
    }
    m = mg_calloc(cap ? cap : 1, sizeof(*m));
    for (nslots = 64; nslots < 2 * cap; nslots *= 2) {
    }
    slot = mg_calloc(nslots, sizeof(*slot));
    for (w = 0; w < WORKERS_MAX; w++) {
        if (reg[w] == NULL) {
            continue;
        }
        *inflight += atomic_load_explicit(&reg[w]->inflight, memory_order_relaxed);
        for (i = 0; i < SERIES_MAX; i++) {
            struct series *s = &reg[w]->s[i];
            if (!atomic_load_explicit(&s->used, memory_order_acquire)) {
                continue;
            }
            for (j = hash(s->kind, s->a, s->b, s->code) & (nslots - 1); slot[j] != 0;
                 j = (j + 1) & (nslots - 1)) {
                struct merged *x = &m[slot[j] - 1];
                if (x->kind == s->kind && x->code == s->code && strcmp(x->a, s->a) == 0 &&
                    strcmp(x->b, s->b) == 0) {
                    break;
                }
            }
            if (slot[j] == 0) {
                m[nm].kind = s->kind;
                m[nm].code = s->code;
                m[nm].a = s->a;
                m[nm].b = s->b;
                slot[j] = ++nm;
            }
            v = atomic_load_explicit(&s->value, memory_order_relaxed);
            dst = &m[slot[j] - 1];
            dst->value = is_tokens(s->kind) ? (uint64_t)mg_tokens_add((int64_t)dst->value,
                                                                      (int64_t)v)
                                            : dst->value + v;
        }
    }
    free(slot);
    *out = m;
    return nm;
}

/* The counter families, from the merged series. */
static void
render_counters(struct mg_buf *out, const struct merged *m, size_t nm)
{
    static const char *const names[K_NKINDS] = {"modelgate_requests_total", "modelgate_tokens_total",
                                                "modelgate_tokens_total",
                                                "modelgate_backend_attempts_total"};
    size_t j;
    int k;

    mg_buf_adds(out, "# HELP modelgate_requests_total Requests answered, by model, backend and "
                     "status code.\n# TYPE modelgate_requests_total counter\n");
    for (k = 0; k <= K_ATT; k++) {
        if (k == K_TOK_IN) {
            mg_buf_adds(out, "# HELP modelgate_tokens_total Tokens reported by backends.\n"
                             "# TYPE modelgate_tokens_total counter\n");
        } else if (k == K_ATT) {
            mg_buf_adds(out, "# HELP modelgate_backend_attempts_total Attempts on backends, by "
                             "how they ended.\n# TYPE modelgate_backend_attempts_total counter\n");
        }
        for (j = 0; j < nm; j++) {
            if (m[j].kind != k) {
                continue;
            }
            mg_buf_printf(out, "%s{", names[k]);
            if (k == K_ATT) {
                mg_stats_label(out, "backend", m[j].a, 0);
                mg_stats_label(out, "result", m[j].b, 1);
            } else {
                mg_stats_label(out, "model", m[j].a, 0);
                mg_stats_label(out, "backend", m[j].b, 1);
                if (k == K_REQ) {
                    if (m[j].code == MG_STATS_STREAM_ERROR) {
                        mg_buf_adds(out, ",code=\"upstream_stream_error\"");
                    } else {
                        mg_buf_printf(out, ",code=\"%d\"", m[j].code);
                    }
                } else {
                    mg_buf_printf(out, ",type=\"%s\"", k == K_TOK_IN ? "input" : "output");
                }
            }
            mg_buf_printf(out, "} %llu\n", (unsigned long long)m[j].value);
        }
    }
}

/* Requests whose client API the backend did not speak, by both. */
static void
render_translations(struct mg_buf *out, const struct merged *m, size_t nm)
{
    size_t j;

    mg_buf_adds(out, "# HELP modelgate_translations_total Answers translated between the client's "
                     "API and the backend's, by both.\n"
                     "# TYPE modelgate_translations_total counter\n");
    for (j = 0; j < nm; j++) {
        if (m[j].kind == K_XLATE) {
            mg_buf_adds(out, "modelgate_translations_total{");
            mg_stats_label(out, "api", m[j].a, 0);
            mg_stats_label(out, "upstream_api", m[j].b, 1);
            mg_buf_printf(out, "} %llu\n", (unsigned long long)m[j].value);
        }
    }
}

/* Streams continued on a prefill entry, by rule (its index) and how they ended. */
static void
render_resumes(struct mg_buf *out, const struct merged *m, size_t nm)
{
    size_t j;

    mg_buf_adds(out, "# HELP modelgate_resumes_total Streams cut after commit that were continued "
                     "on a prefill entry, by rule and how they ended.\n"
                     "# TYPE modelgate_resumes_total counter\n");
    for (j = 0; j < nm; j++) {
        if (m[j].kind == K_RESUME) {
            mg_buf_adds(out, "modelgate_resumes_total{");
            mg_stats_label(out, "rule", m[j].a, 0);
            mg_stats_label(out, "result", m[j].b, 1);
            mg_buf_printf(out, "} %llu\n", (unsigned long long)m[j].value);
        }
    }
}

/* The client keys' families (without auth, or before a key is used, they have no samples). */
static void
render_key_counters(struct mg_buf *out, const struct merged *m, size_t nm)
{
    size_t j;

    mg_buf_adds(out, "# HELP modelgate_key_requests_total Requests that presented a valid client "
                     "key, by key name and status code.\n"
                     "# TYPE modelgate_key_requests_total counter\n");
    for (j = 0; j < nm; j++) {
        if (m[j].kind == K_KEY_REQ) {
            mg_buf_adds(out, "modelgate_key_requests_total{");
            mg_stats_label(out, "key", m[j].a, 0);
            mg_buf_printf(out, ",code=\"%d\"} %llu\n", m[j].code, (unsigned long long)m[j].value);
        }
    }
    mg_buf_adds(out, "# HELP modelgate_key_tokens_total Tokens of the answers to each client key."
                     "\n# TYPE modelgate_key_tokens_total counter\n");
    for (j = 0; j < nm; j++) {
        if (m[j].kind == K_KEY_TOK_IN || m[j].kind == K_KEY_TOK_OUT) {
            mg_buf_adds(out, "modelgate_key_tokens_total{");
            mg_stats_label(out, "key", m[j].a, 0);
            mg_buf_printf(out, ",type=\"%s\"} %llu\n",
                          m[j].kind == K_KEY_TOK_IN ? "input" : "output",
                          (unsigned long long)m[j].value);
        }
    }
}

void
mg_stats_render(struct mg_stats_registry *reg, struct mg_buf *out)
{
    struct merged *m;
    size_t nm;
    int inflight = 0;

    pthread_mutex_lock(&reg->lock);
    nm = merge_workers(reg->tables, &m, &inflight);
    render_counters(out, m, nm);
    render_key_counters(out, m, nm);
    render_translations(out, m, nm);
    render_resumes(out, m, nm);
    render_hist(out, reg->tables, "modelgate_request_duration_seconds",
                "Time from a request's arrival to the end of its answer.", 0);
    render_hist(out, reg->tables, "modelgate_overhead_seconds",
                "Time the gateway itself spent on a request (parsing, routing, building the "
                "upstream request, relaying), the wait for backends excluded.", 2);
    render_hist(out, reg->tables, "modelgate_time_to_first_token_seconds",
                "Time from a request's arrival to the first byte of its answer's body.", 1);
    {
        struct mg_genai *g[WORKERS_MAX];
        int w;
        for (w = 0; w < WORKERS_MAX; w++) {
            g[w] = reg->tables[w] != NULL ? reg->tables[w]->genai : NULL;
        }
        mg_genai_render(g, WORKERS_MAX, out);
        for (w = 0; w < WORKERS_MAX; w++) {
            g[w] = reg->tables[w] != NULL ? (void *)reg->tables[w]->cost : NULL;
        }
        mg_cost_render((struct mg_cost *const *)g, WORKERS_MAX, out);
    }
    pthread_mutex_unlock(&reg->lock);
    free(m);
    mg_buf_printf(out, "# HELP modelgate_inflight_requests Requests being handled now.\n"
                       "# TYPE modelgate_inflight_requests gauge\nmodelgate_inflight_requests %d\n",
                  inflight);
    mg_buf_printf(out, "# HELP modelgate_config_reloads_total SIGHUP reloads, by result.\n"
                       "# TYPE modelgate_config_reloads_total counter\n"
                       "modelgate_config_reloads_total{result=\"ok\"} %llu\n"
                       "modelgate_config_reloads_total{result=\"error\"} %llu\n",
                  (unsigned long long)atomic_load(&reg->reloads_ok),
                  (unsigned long long)atomic_load(&reg->reloads_error));
}
