/*
 * mg_stats_genai — the OpenTelemetry GenAI metrics in Prometheus form, per worker and merged at
 * scrape time like mg_stats' series: gen_ai_server_time_to_first_token_seconds,
 * gen_ai_server_time_per_output_token_seconds, gen_ai_server_request_duration_seconds and
 * gen_ai_client_token_usage, by gen_ai_request_model and gen_ai_provider_name, with the semantic
 * conventions' bucket boundaries; and modelgate_trace_spans_dropped_total{reason}.
 *
 * One writer per table (its worker): relaxed loads and stores, no locked instruction. A (model,
 * provider) pair is published by a release store of `used` after its labels were written. The
 * table is fixed: past GENAI_SOFT pairs a new model counts as "other" (clients choose models).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_stats.h"
#include "mg_stats_int.h"

#define GENAI_MAX  256
#define GENAI_SOFT (GENAI_MAX * 3 / 4)
#define BMAX       16

enum { H_TTFT, H_TPOT, H_DUR, H_IN, H_OUT, H_N };

/* the conventions' explicit bucket boundaries (seconds, or tokens) */
static const double b_ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
static const double b_tpot[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
                                1.0, 2.5};
static const double b_dur[] = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                               10.24, 20.48, 40.96, 81.92};
static const double b_tok[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                               4194304, 16777216, 67108864};

static const struct {
    const double *b;
    size_t        n;
    double        unit;   /* sum and observations are integers: microseconds, or tokens */
} bounds[H_N] = {
    {b_ttft, sizeof(b_ttft) / sizeof(double), 1e6}, {b_tpot, sizeof(b_tpot) / sizeof(double), 1e6},
    {b_dur, sizeof(b_dur) / sizeof(double), 1e6},   {b_tok, sizeof(b_tok) / sizeof(double), 1},
    {b_tok, sizeof(b_tok) / sizeof(double), 1},
};

enum { DROP_QUEUE, DROP_EXPORT, DROP_N };
static const char *const drop_reason[DROP_N] = {"queue_full", "export_failed"};

struct ghist {
    atomic_uint_fast64_t bucket[BMAX + 1];   /* not cumulative; [n] is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum;
};

struct gentry {
    atomic_int   used;
    char        *model;
    char        *provider;
    struct ghist h[H_N];
};

struct mg_genai {
    struct gentry        e[GENAI_MAX];
    int                  nused;            /* writer only */
    atomic_uint_fast64_t dropped[DROP_N];
};

struct mg_genai *
mg_genai_create(void)
{
    return mg_calloc(1, sizeof(struct mg_genai));
}

void
mg_genai_destroy(struct mg_genai *g)
{
    size_t i;

    if (g == NULL) {
        return;
    }
    for (i = 0; i < GENAI_MAX; i++) {
        free(g->e[i].model);
        free(g->e[i].provider);
    }
    free(g);
}

static inline void
bump(atomic_uint_fast64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static void
observe(struct ghist *h, int which, int64_t v)
{
    double x = (double)v / bounds[which].unit;
    size_t i;

    for (i = 0; i < bounds[which].n && x > bounds[which].b[i]; i++) {
    }
    bump(&h->bucket[i], 1);
    bump(&h->count, 1);
    bump(&h->sum, v > 0 ? (uint64_t)v : 0);
}

static uint64_t
hash2(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;

    for (; *a; a++) {
        h = (h ^ (unsigned char)*a) * 1099511628211ull;
    }
    h = (h ^ 0xff) * 1099511628211ull;
    for (; *b; b++) {
        h = (h ^ (unsigned char)*b) * 1099511628211ull;
    }
    return h;
}

static struct gentry *
lookup(struct mg_genai *g, const char *model, const char *provider, int create)
{
    size_t i, n;

    for (n = 0, i = hash2(model, provider) % GENAI_MAX; n < GENAI_MAX;
         n++, i = (i + 1) % GENAI_MAX) {
        struct gentry *e = &g->e[i];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            if (!create) {
                return NULL;
            }
            e->model = mg_strdup(model);
            e->provider = mg_strdup(provider);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            g->nused++;
            return e;
        }
        if (strcmp(e->model, model) == 0 && strcmp(e->provider, provider) == 0) {
            return e;
        }
    }
    return NULL;
}

void
mg_genai_observe(struct mg_genai *g, const char *model, const char *provider, int64_t dur_us,
                 int64_t ttft_us, int64_t input, int64_t output)
{
    struct gentry *e = lookup(g, model, provider, 0);

    if (e == NULL) {
        e = lookup(g, g->nused < GENAI_SOFT ? model : "other", provider, 1);
        if (e == NULL) {
            return;
        }
    }
    observe(&e->h[H_DUR], H_DUR, dur_us);
    if (ttft_us >= 0) {
        observe(&e->h[H_TTFT], H_TTFT, ttft_us);
        /* the decode time shared by the tokens after the first (as vLLM reports it) */
        if (output > 1 && dur_us > ttft_us) {
            observe(&e->h[H_TPOT], H_TPOT, (dur_us - ttft_us) / (output - 1));
        }
    }
    if (input >= 0) {
        observe(&e->h[H_IN], H_IN, input);
    }
    if (output >= 0) {
        observe(&e->h[H_OUT], H_OUT, output);
    }
}

void
mg_genai_dropped(struct mg_genai *g, int export_failed, uint64_t n)
{
    bump(&g->dropped[export_failed ? DROP_EXPORT : DROP_QUEUE], n);
}

/* ---- scrape ------------------------------------------------------------------------------ */

void
mg_stats_label(struct mg_buf *out, const char *name, const char *v, int comma)
{
    mg_buf_printf(out, "%s%s=\"", comma ? "," : "", name);
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            mg_buf_add(out, "\\", 1);
            mg_buf_add(out, v, 1);
        } else if (*v == '\n') {
            mg_buf_adds(out, "\\n");
        } else {
            mg_buf_add(out, v, 1);
        }
    }
    mg_buf_adds(out, "\"");
}


struct gmerged {
    const char *model;
    const char *provider;
    uint64_t    bucket[H_N][BMAX + 1];
    uint64_t    count[H_N];
    uint64_t    sum[H_N];
};

static void
render_family(struct mg_buf *out, const struct gmerged *m, size_t nm, int which,
              const char *name, const char *type)
{
    size_t j, i;

    for (j = 0; j < nm; j++) {
        uint64_t cum = 0, count = m[j].count[which];
        if (count == 0) {
            continue;
        }
        for (i = 0; i <= bounds[which].n; i++) {
            cum += m[j].bucket[which][i];
            mg_buf_printf(out, "%s_bucket{", name);
            mg_stats_label(out, "gen_ai_request_model", m[j].model, 0);
            mg_stats_label(out, "gen_ai_provider_name", m[j].provider, 1);
            if (type != NULL) {
                mg_stats_label(out, "gen_ai_token_type", type, 1);
            }
            if (i < bounds[which].n) {
                mg_buf_printf(out, ",le=\"%.15g\"} %llu\n", bounds[which].b[i],
                              (unsigned long long)cum);
            } else {
                /* count is read last and may have moved on: +Inf must equal _count */
                if (count < cum) {
                    count = cum;
                }
                mg_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)count);
            }
        }
        for (i = 0; i < 2; i++) {
            mg_buf_printf(out, "%s_%s{", name, i == 0 ? "sum" : "count");
            mg_stats_label(out, "gen_ai_request_model", m[j].model, 0);
            mg_stats_label(out, "gen_ai_provider_name", m[j].provider, 1);
            if (type != NULL) {
                mg_stats_label(out, "gen_ai_token_type", type, 1);
            }
            if (i == 0) {
                mg_buf_printf(out, "} %.6f\n", (double)m[j].sum[which] / bounds[which].unit);
            } else {
                mg_buf_printf(out, "} %llu\n", (unsigned long long)count);
            }
        }
    }
}

static void
header(struct mg_buf *out, const char *name, const char *help)
{
    mg_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

void
mg_genai_render(struct mg_genai *const *t, size_t n, struct mg_buf *out)
{
    struct gmerged *m = NULL;
    size_t nm = 0, cap = 0, w, i, j, k, b;
    uint64_t dropped[DROP_N] = {0};

    for (w = 0; w < n; w++) {
        if (t[w] == NULL) {
            continue;
        }
        for (k = 0; k < DROP_N; k++) {
            dropped[k] += atomic_load_explicit(&t[w]->dropped[k], memory_order_relaxed);
        }
        for (i = 0; i < GENAI_MAX; i++) {
            const struct gentry *e = &t[w]->e[i];
            if (!atomic_load_explicit(&e->used, memory_order_acquire)) {
                continue;
            }
            for (j = 0; j < nm; j++) {   /* few distinct pairs: a scan is enough */
                if (strcmp(m[j].model, e->model) == 0 &&
                    strcmp(m[j].provider, e->provider) == 0) {
                    break;
                }
            }
            if (j == nm) {
                if (nm == cap) {
                    cap = cap ? 2 * cap : 16;
                    m = mg_realloc(m, cap * sizeof(*m));
                }
                memset(&m[nm], 0, sizeof(*m));
                m[nm].model = e->model;
                m[nm].provider = e->provider;
                nm++;
            }
            for (k = 0; k < H_N; k++) {
                for (b = 0; b <= bounds[k].n; b++) {
                    m[j].bucket[k][b] += atomic_load_explicit(&e->h[k].bucket[b],
                                                              memory_order_relaxed);
                }
                m[j].sum[k] += atomic_load_explicit(&e->h[k].sum, memory_order_relaxed);
                m[j].count[k] += atomic_load_explicit(&e->h[k].count, memory_order_relaxed);
            }
        }
    }
    header(out, "gen_ai_server_time_to_first_token_seconds",
           "Time to generate the first token (to the first byte of the answer's body).");
    render_family(out, m, nm, H_TTFT, "gen_ai_server_time_to_first_token_seconds", NULL);
    header(out, "gen_ai_server_time_per_output_token_seconds",
           "Time per output token after the first.");
    render_family(out, m, nm, H_TPOT, "gen_ai_server_time_per_output_token_seconds", NULL);
    header(out, "gen_ai_server_request_duration_seconds", "Duration of GenAI requests.");
    render_family(out, m, nm, H_DUR, "gen_ai_server_request_duration_seconds", NULL);
    header(out, "gen_ai_client_token_usage", "Input and output tokens used, per request.");
    render_family(out, m, nm, H_IN, "gen_ai_client_token_usage", "input");
    render_family(out, m, nm, H_OUT, "gen_ai_client_token_usage", "output");
    free(m);
    mg_buf_adds(out, "# HELP modelgate_trace_spans_dropped_total Spans not exported, by reason.\n"
                     "# TYPE modelgate_trace_spans_dropped_total counter\n");
    for (k = 0; k < DROP_N; k++) {
        mg_buf_printf(out, "modelgate_trace_spans_dropped_total{reason=\"%s\"} %llu\n",
                      drop_reason[k], (unsigned long long)dropped[k]);
    }
}
