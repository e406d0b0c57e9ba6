/*
 * mg_stats_int — what mg_stats.c and mg_stats_genai.c share: a worker's GenAI table hangs off its
 * struct mg_stats and is rendered with the rest. Not a public header.
 */
#ifndef MG_STATS_INT_H
#define MG_STATS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

struct mg_genai;
struct mg_stats;

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
