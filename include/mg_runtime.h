/*
 * mg_runtime — the state that outlives config snapshots, in one object: passive health by
 * backend name, the limit store (rate-limit buckets by key name), the catalog's first-load times
 * and the metrics registry (every worker's table, the reload counters).
 *
 * As redis keeps its server state in one struct, but passed, never global: mg_server creates one
 * runtime, binds each snapshot to it as the snapshot goes into service, and each worker reaches it
 * as w->rt; the modules take the part they need as an argument. Tests build as many isolated
 * runtimes (or single registries) as they like.
 *
 * What stays process-wide, on purpose: the error log's level (mg_log: stderr is the process's,
 * and any thread logs without a context), the access log's descriptor (mg_access: one file for
 * the process, reopened on SIGUSR1), the JSON name-hash seed (mg_json: drawn once, never changes)
 * and per-thread caches (mg_wire's Date line, the SigV4 signing keys) that belong to a worker's
 * thread and hold nothing another thread could see.
 */
#ifndef MG_RUNTIME_H
#define MG_RUNTIME_H

#include <pthread.h>
#include <stdint.h>

struct mg_budget_registry;
struct mg_catalog_seen;
struct mg_conf;
struct mg_cred_registry;
struct mg_health_registry;
struct mg_limit_store;
struct mg_resp_store;
struct mg_stats_registry;
struct mg_status_registry;

struct mg_runtime {
    struct mg_health_registry *health;   /* passive health by backend name */
    struct mg_limit_store     *limits;   /* rate-limit buckets by key name */
    struct mg_catalog_seen    *seen;     /* the catalog's first-load times */
    struct mg_stats_registry  *stats;    /* metrics: workers' tables, reload counters */
    struct mg_status_registry *status;   /* the status page: workers' rings, reloads */
    pthread_mutex_t            conf_lock;
    struct mg_conf            *conf;     /* the snapshot bound last (for the status page) */
    struct mg_resp_store      *responses;   /* translated Responses kept for their ids */
    struct mg_cred_registry   *creds;    /* cloud credential sources, by backend and config */
    struct mg_budget_registry *budgets;  /* keys' spend by name (budget:) */
};

/*
 * A runtime with empty registries and a limit store of the kind called limit_store ("local").
 * NULL when there is no such store.
 */
struct mg_runtime *mg_runtime_create(const char *limit_store);

/*
 * Frees the runtime and everything in it. Only when no thread uses it any more and every snapshot
 * bound to it is no longer read (their pointers into it dangle). NULL is a no-op.
 */
void mg_runtime_destroy(struct mg_runtime *rt);

/*
 * conf goes into service (start, or a reload that passed validation): its backends get their
 * health states and credential sources (waiting up to MG_CRED_FIRST_WAIT_MS for a new source's
 * first fetch) and its keys their buckets and spend, by name, with the keys' limits and budgets
 * set from now on; its
 * catalog's created times are remembered. Call it before any other thread sees conf; never for a
 * config that is only checked (-t) or refused. now: monotonic milliseconds.
 */
void mg_runtime_bind(struct mg_runtime *rt, struct mg_conf *conf, int64_t now);

/* The snapshot bound last, referenced (the caller unrefs it), or NULL. Any thread. */
struct mg_conf *mg_runtime_conf(struct mg_runtime *rt);

#endif
