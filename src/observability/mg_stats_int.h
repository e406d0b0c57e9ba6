/*
 * mg_stats_int — what mg_stats.c and mg_stats_genai.c share: a worker's GenAI table hangs off its
 * struct mg_stats and is rendered with the rest. Not a public header.
 */
#ifndef MG_STATS_INT_H
#define MG_STATS_INT_H

#include <stddef.h>

#include "mg_util.h"

struct mg_genai;
struct mg_stats;

/* A worker's GenAI histograms and trace export counters (empty). */
struct mg_genai *mg_genai_create(void);
/* NULL is a no-op. */
void mg_genai_destroy(struct mg_genai *g);
/* The worker's table, made with its struct mg_stats. */
struct mg_genai *mg_stats_genai_table(struct mg_stats *st);
/* The GenAI families and the span drop counter, merged over n tables (NULL ones skipped). */
void mg_genai_render(struct mg_genai *const *t, size_t n, struct mg_buf *out);

#endif
