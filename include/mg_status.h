/*
 * mg_status — the numbers of the status page (/status, /status.json): per worker, one writer,
 * relaxed atomics, no lock on the request path. Each backend has a ring of 90 slots of 10 s (the
 * last 15 minutes): requests, errors, and latency and time-to-first-token histograms (log2 with
 * half steps, 1 ms to ~1000 s); lifetime counts per backend (with attempts by result), per rule
 * index and per client key name. A page view merges every worker's tables (mg_status_backend,
 * _rule, _key). Tables are fixed-size: past MG_STATUS_BACKENDS backends or MG_STATUS_KEYS keys
 * new names are not counted.
 */
#ifndef MG_STATUS_H
#define MG_STATUS_H

#include <stddef.h>
#include <stdint.h>

#define MG_STATUS_SLOTS    90     /* ring length */
#define MG_STATUS_STEP_S   10     /* seconds a slot */
#define MG_STATUS_BACKENDS 64
#define MG_STATUS_RULES    256
#define MG_STATUS_KEYS     256
#define MG_STATUS_RESULTS  16     /* attempt results kept per backend */

struct mg_status;
struct mg_status_registry;

struct mg_status_registry *mg_status_registry_create(void);
/* NULL is a no-op; only once every table in it was destroyed. */
void mg_status_registry_destroy(struct mg_status_registry *reg);
/* A worker's tables, registered in reg. */
struct mg_status *mg_status_create(struct mg_status_registry *reg);
/* Unregisters and frees. NULL is a no-op. */
void mg_status_destroy(struct mg_status *st);

/*
 * One attempt on backend ended at now_ms with result (modelgate_backend_attempts_total's values):
 * failed (it did not give the client its answer, or its answer broke), its duration and time
 * to first byte in microseconds (-1: none). Backends' rings count attempts.
 */
void mg_status_attempt(struct mg_status *st, int64_t now_ms, const char *backend,
                       const char *result, int failed, int64_t dur_us, int64_t ttft_us);
/* One request of rule (index, < 0: none) and key (name, NULL: none): an error (>= 500, or cut),
 * its tokens (-1: none). */
void mg_status_request(struct mg_status *st, int rule, const char *key, int error,
                       int64_t input, int64_t output);

/* A SIGHUP reload applied (ok) or refused, at Unix time wall_s. */
void mg_status_reload(struct mg_status_registry *reg, int ok, int64_t wall_s);

/* The instance's counters: start (Unix s), reloads applied and refused, last applied (0: none). */
void mg_status_instance(struct mg_status_registry *reg, int64_t *started_s, uint64_t *ok,
                        uint64_t *error, int64_t *last_reload_s, int *workers);

/* One backend merged over workers. Quantiles in seconds, -1 without samples. */
struct mg_status_backend_view {
    uint64_t requests, errors;          /* since the start */
    uint64_t recent_requests, recent_errors;   /* the last 5 minutes */
    double   latency_p50, latency_p99, ttft_p50, ttft_p99;   /* the last 5 minutes */
    uint64_t series_requests[MG_STATUS_SLOTS];   /* oldest first, the current slot last */
    uint64_t series_errors[MG_STATUS_SLOTS];
    size_t   nresults;
    char     result[MG_STATUS_RESULTS][24];
    uint64_t result_count[MG_STATUS_RESULTS];
};
void mg_status_backend(struct mg_status_registry *reg, const char *name, int64_t now_ms,
                       struct mg_status_backend_view *v);
void mg_status_rule(struct mg_status_registry *reg, int index, uint64_t *requests,
                    uint64_t *errors, uint64_t *input, uint64_t *output);
void mg_status_key(struct mg_status_registry *reg, const char *name, uint64_t *requests,
                   uint64_t *input, uint64_t *output);

#endif
