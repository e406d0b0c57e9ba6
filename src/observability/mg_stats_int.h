/*
 * mg_stats_int — what mg_stats.c, mg_stats_genai.c and mg_stats_cost.c share: a worker's
 * struct mg_stats, with its GenAI and cost tables hung off it and rendered with the rest. Not a
 * public header.
 */
#ifndef MG_STATS_INT_H
#define MG_STATS_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

struct mg_cost;
struct mg_genai;

#define SERIES_MAX 4096
#define NBUCKETS   16   /* the request histograms' bucket bounds (mg_stats.c) */

/* A worker's tables: one writer (the worker), read by scrapes on any thread. */
struct series {
    atomic_int           used;
    int                  kind;
    int                  code;
    char                *a;      /* model, or backend for K_ATT */
    char                *b;      /* backend, or result for K_ATT */
    atomic_uint_fast64_t value;
};

struct hist {
    atomic_uint_fast64_t bucket[NBUCKETS + 1];   /* not cumulative; the last is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

struct mg_stats {
    struct mg_stats_registry *reg;
    struct series s[SERIES_MAX];
    int           nused;          /* writer only */
    struct hist   duration;
    struct hist   ttft;
    struct hist   overhead;
    atomic_int    inflight;
    struct mg_genai *genai;       /* the GenAI families (mg_stats_genai.c) */
    struct mg_cost  *cost;        /* modelgate_cost_usd_total (mg_stats_cost.c) */
};

/* A worker's cost counters (empty); NULL is a no-op for destroy. */
struct mg_cost *mg_cost_create(void);
void mg_cost_destroy(struct mg_cost *c);
/* modelgate_cost_usd_total, merged over n tables (NULL ones skipped). */
void mg_cost_render(struct mg_cost *const *t, size_t n, struct mg_buf *out);


/* A worker's GenAI histograms and trace export counters (empty). */
struct mg_genai *mg_genai_create(void);
/* NULL is a no-op. */
void mg_genai_destroy(struct mg_genai *g);
/* The worker's table, made with its struct mg_stats. */
/* One answer's GenAI histograms; spans the tracer dropped (mg_stats_genai, _trace_dropped). */
void mg_genai_observe(struct mg_genai *g, const char *model, const char *provider,
                      int64_t dur_us, int64_t ttft_us, int64_t input, int64_t output);
void mg_genai_dropped(struct mg_genai *g, int export_failed, uint64_t n);
/* The GenAI families and the span drop counter, merged over n tables (NULL ones skipped). */
void mg_genai_render(struct mg_genai *const *t, size_t n, struct mg_buf *out);

#endif
