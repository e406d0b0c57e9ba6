/*
 * mg_stats — Prometheus metrics. Each worker writes its own counters (plain relaxed atomic
 * stores: one writer, no lock, no locked instruction on the request path); a scrape reads every
 * worker's and adds them up. Counters live outside config snapshots, so reloads keep them: the
 * workers' tables and the reload counters hang off a registry (struct mg_stats_registry) that the
 * runtime holds.
 */
#ifndef MG_STATS_H
#define MG_STATS_H

#include <stdint.h>

#include "mg_util.h"

struct mg_stats;

/* Every worker's table and the reload counters; one per runtime (tests make their own). */
struct mg_stats_registry;

/* An empty registry. */
struct mg_stats_registry *mg_stats_registry_create(void);
/* Frees the registry. NULL is a no-op. Only once every table in it was destroyed. */
void mg_stats_registry_destroy(struct mg_stats_registry *reg);

/* A worker's metrics, registered in reg for mg_stats_render(). */
struct mg_stats *mg_stats_create(struct mg_stats_registry *reg);
/* Unregisters and frees. NULL is a no-op. Only once the worker has stopped. */
void mg_stats_destroy(struct mg_stats *st);

/* The code of an answer cut after commit (rendered as code="upstream_stream_error"). */
#define MG_STATS_STREAM_ERROR (-1)

/*
 * One request answered: status code (or MG_STATS_STREAM_ERROR), duration, time to its first body
 * byte (-1 when none).
 */
void mg_stats_request(struct mg_stats *st, const char *model, const char *backend, int code,
                      int64_t dur_us, int64_t ttft_us);
/* The time the gateway itself spent on one request (the wait for backends excluded). */
void mg_stats_overhead(struct mg_stats *st, int64_t us);

/* Tokens a backend reported (-1: not reported). */
void mg_stats_tokens(struct mg_stats *st, const char *model, const char *backend, int64_t input,
                     int64_t output);
/*
 * One request of a client key (its name) and the status it got, with the tokens its answer
 * reported (-1: none): modelgate_key_requests_total and modelgate_key_tokens_total.
 */
void mg_stats_key(struct mg_stats *st, const char *key, int code, int64_t input, int64_t output);
/* One attempt on a backend and how it ended ("ok", "http_503", "timeout", "error"). */
void mg_stats_attempt(struct mg_stats *st, const char *backend, const char *result);
/* A priced answer: micro-dollars to key's (NULL: "") model's on backend's cost counter. */
void mg_stats_cost(struct mg_stats *st, const char *key, const char *model, const char *backend,
                   int64_t micro);
/* A resumed stream ended: result "ok" (completed) or "failed"; rule is the rule's index. */
void mg_stats_resume(struct mg_stats *st, const char *rule, const char *result);
/*
 * The GenAI histograms of one answered request (mg_stats_genai.c): the client's model, the
 * answering backend's gen_ai.provider.name, its duration and time to first token (-1: none) and
 * the tokens of its answer (-1: none).
 */
void mg_stats_genai(struct mg_stats *st, const char *model, const char *provider, int64_t dur_us,
                    int64_t ttft_us, int64_t input, int64_t output);
/* n spans the tracer dropped: its queue was full, or (export_failed) their export failed. */
void mg_stats_trace_dropped(struct mg_stats *st, int export_failed, uint64_t n);
/* Requests of this worker not finished yet. */
void mg_stats_inflight(struct mg_stats *st, int n);
/* A SIGHUP reload, applied (ok=1) or refused. */
void mg_stats_reload(struct mg_stats_registry *reg, int ok);

/*
 * Appends the Prometheus text exposition (format 0.0.4) of all workers in reg to out. Any thread.
 * Other owners append their own families after it (mg_health_render).
 */
/* One answer translated from upstream_api into the client's api (modelgate_translations_total). */
void mg_stats_translation(struct mg_stats *st, const char *api, const char *upstream_api);

void mg_stats_render(struct mg_stats_registry *reg, struct mg_buf *out);

/* Appends `name="v"` (after a comma when comma), v escaped as the exposition format wants. */
void mg_stats_label(struct mg_buf *out, const char *name, const char *v, int comma);

#endif
