/*
 * mg_runtime — the state that outlives snapshots, created once by the server, and the step that
 * binds a snapshot to it.
 */
#include <stdlib.h>

#include "mg_auth.h"
#include "mg_budget.h"
#include "mg_catalog.h"
#include "mg_conf_types.h"
#include "mg_cred.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_resp_store.h"
#include "mg_schema.h"
#include "mg_runtime.h"
#include "mg_stats.h"
#include "mg_status.h"
#include "mg_util.h"

struct mg_runtime *
mg_runtime_create(const char *limit_store)
{
    struct mg_limit_store *limits = mg_limit_store_create(limit_store);
    struct mg_runtime *rt;

    if (limits == NULL) {
        return NULL;
    }
    rt = mg_calloc(1, sizeof(*rt));
    rt->limits = limits;
    rt->health = mg_health_registry_create();
    rt->seen = mg_catalog_seen_create();
    rt->stats = mg_stats_registry_create();
    rt->status = mg_status_registry_create();
    rt->responses = mg_resp_store_create("local");
    rt->creds = mg_cred_registry_create();
    rt->budgets = mg_budget_registry_create();
    mg_mutex_init(&rt->conf_lock);
    return rt;
}

void
mg_runtime_destroy(struct mg_runtime *rt)
{
    if (rt == NULL) {
        return;
    }
    mg_cred_registry_destroy(rt->creds);   /* its refreshers stop first */
    mg_stats_registry_destroy(rt->stats);
    mg_status_registry_destroy(rt->status);
    mg_resp_store_destroy(rt->responses);
    mg_catalog_seen_destroy(rt->seen);
    mg_health_registry_destroy(rt->health);
    mg_limit_store_destroy(rt->limits);
    mg_budget_registry_destroy(rt->budgets);
    mg_conf_unref(rt->conf);
    pthread_mutex_destroy(&rt->conf_lock);
    free(rt);
}

/* b's credential source by its name and credential config: a reload that keeps both keeps it. */
static void
bind_cred(struct mg_runtime *rt, struct mg_backend *b)
{
    const struct mg_schema *sc = mg_schema_get(b->schema);
    const struct mg_cred_source_ops *ops;
    struct mg_buf key;
    void *arg = NULL;

    if (sc->cred == NULL || b->cred != NULL) {
        return;
    }
    mg_buf_init(&key, 4096);
    mg_buf_adds(&key, b->name);
    mg_buf_adds(&key, "\n");
    ops = sc->cred(b, &key, &arg);
    if (ops != NULL) {
        b->cred = mg_cred_source_get(rt->creds, key.data, b->name, ops, arg);
    }
    mg_buf_deinit(&key);
}

void
mg_runtime_bind(struct mg_runtime *rt, struct mg_conf *conf, int64_t now)
{
    struct mg_conf *old;
    size_t i;

    for (i = 0; i < conf->nbackends; i++) {
        conf->backends[i].state = mg_health_get(rt->health, conf->backends[i].name);
        bind_cred(rt, &conf->backends[i]);
    }
    /* off the request path: the start, or the reload, waits for the new sources' first fetch */
    mg_cred_registry_wait(rt->creds, MG_CRED_FIRST_WAIT_MS);
    mg_auth_apply(rt->limits, conf->keys, conf->nkeys, now);
    for (i = 0; i < conf->nkeys; i++) {   /* only keys with a budget reach their spend */
        struct mg_key *k = &conf->keys[i];
        if (k->budget_usd > 0) {
            k->budget = mg_budget_get(rt->budgets, k->name);
            mg_budget_configure(k->budget, k->budget_usd, k->budget_per);
        }
    }
    mg_catalog_remember(rt->seen, conf->catalog, conf->ncatalog);
    mg_resp_store_configure(rt->responses, conf->responses_store.size,
                            conf->responses_store.ttl_ms, now);
    pthread_mutex_lock(&rt->conf_lock);
    old = rt->conf;
    rt->conf = mg_conf_ref(conf);
    pthread_mutex_unlock(&rt->conf_lock);
    mg_conf_unref(old);
}

struct mg_conf *
mg_runtime_conf(struct mg_runtime *rt)
{
    struct mg_conf *conf;

    pthread_mutex_lock(&rt->conf_lock);
    conf = rt->conf != NULL ? mg_conf_ref(rt->conf) : NULL;
    pthread_mutex_unlock(&rt->conf_lock);
    return conf;
}
