/*
 * mg_http_shared — the request steps that wait on Redis (shared:): a limited key's admission
 * decided by Redis's GCRA script, and the conversation store's ids read from Redis before the
 * request uses them. A waiting request is watched (its client may leave: the wait is cancelled)
 * and goes on inside mg_conn_resume(), as if it had just been read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_admit.h"
#include "mg_api_types.h"
#include "mg_auth.h"
#include "mg_budget_redis.h"
#include "mg_conf_types.h"
#include "mg_conn.h"
#include "mg_health_shared.h"
#include "mg_http_int.h"
#include "mg_limit_redis.h"
#include "mg_proxy.h"
#include "mg_redis.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_resp_redis.h"
#include "mg_stored.h"
#include "mg_shared_conf.h"
#include "mg_runtime.h"
#include "mg_util.h"
#include "mg_worker.h"

/* ---- limits and budgets --------------------------------------------------------------------- */

/*
 * A routed request of a key with shared limits or a budget waits on Redis: the budget's spend is
 * read (GET, after the spend this instance still owes) and the limit script runs, both pipelined
 * on the worker's connection; once both answered (or timed out) the request goes on.
 */
struct limit_wait {
    const struct mg_http_next *next;
    struct mg_worker  *w;
    struct mg_req     *req;
    struct mg_admitted a;
    struct mg_limit_redis_call call;
    struct mg_budget_redis_call bcall;
    int                pending;        /* answers still awaited */
    int                limited;        /* the key has limits: the script decides them */
    int                result;         /* the script's, MG_LIMIT_SHARED_* */
    int                budget_ok;      /* the spend was read (or the key has no budget) */
    struct mg_limit_info info;
};

/* Redis could not decide the limits: locally (on_error: open) or 503 (closed). */
static void
unavailable(const struct mg_http_next *next, struct mg_worker *w, struct mg_req *req,
            struct mg_admitted *a)
{
    struct mg_refusal ref;

    if (w->conf->shared.closed) {
        mg_refusal_set(&ref, 503, "shared_state_unavailable", NULL,
                       "The rate limits of this key are shared and cannot be read now; retry");
    } else if (mg_admit_take_limit(a, &ref) == 0) {
        mg_proxy_handle(w, req, a);
        return;
    }
    mg_admit_give_back_budget(a);
    next->refused(w, req, &ref, a->model);
}

/* Both answers are in (or were never asked): the budget, then the limits. */
static void
decide(struct limit_wait *lw)
{
    struct mg_refusal ref;

    if (!lw->budget_ok && lw->w->conf->shared.closed) {
        mg_refusal_set(&ref, 503, "shared_state_unavailable", NULL,
                       "The budget of this key is shared and cannot be read now; retry");
        lw->next->refused(lw->w, lw->req, &ref, lw->a.model);
        return;
    }
    if (mg_admit_take_budget(lw->w->conf, &lw->a, &ref) != 0) {
        lw->next->refused(lw->w, lw->req, &ref, lw->a.model);
        return;
    }
    if (!lw->limited) {
        mg_proxy_handle(lw->w, lw->req, &lw->a);
    } else if (lw->result == MG_LIMIT_SHARED_ADMITTED) {
        lw->a.reserved = lw->info.reserved;
        lw->a.shared = 1;
        lw->a.shared_info = lw->info;
        mg_proxy_handle(lw->w, lw->req, &lw->a);
    } else if (lw->result == MG_LIMIT_SHARED_REFUSED) {
        mg_admit_give_back_budget(&lw->a);
        mg_admit_refuse_limit(&lw->a, &lw->info, &ref);
        lw->next->refused(lw->w, lw->req, &ref, lw->a.model);
    } else {
        unavailable(lw->next, lw->w, lw->req, &lw->a);
    }
}

/* Inside mg_conn_resume(): the decision applied. */
static void
limit_go_on(void *arg)
{
    struct limit_wait *lw = arg;

    decide(lw);
    free(lw);
}

/* One answer in; the last one resumes the request. */
static void
answered(struct limit_wait *lw)
{
    struct mg_conn *c = lw->req->conn;

    if (--lw->pending > 0) {
        return;
    }
    mg_conn_watch(c, NULL, NULL, NULL);
    mg_conn_resume(c, limit_go_on, lw);
}

static void
limit_done(void *arg, int result, const struct mg_limit_info *info)
{
    struct limit_wait *lw = arg;

    lw->result = result;
    if (info != NULL) {
        lw->info = *info;
    }
    answered(lw);
}

static void
budget_done(void *arg, int ok)
{
    struct limit_wait *lw = arg;

    lw->budget_ok = ok;
    answered(lw);
}

static void
limit_gone(void *arg)
{
    struct limit_wait *lw = arg;

    mg_limit_redis_cancel(&lw->call);
    mg_budget_redis_cancel(&lw->bcall);
    free(lw);
}

void
mg_http_shared_admit(struct mg_worker *w, struct mg_req *req, const struct mg_http_next *next)
{
    const struct mg_shared_conf *sc = &w->conf->shared;
    const struct mg_key *k = req->key;
    struct limit_wait *lw = mg_calloc(1, sizeof(*lw));
    struct mg_refusal ref;

    if (mg_admit_route_only(w->conf, req, &lw->a, &ref) != 0) {
        next->refused(w, req, &ref, lw->a.model[0] ? lw->a.model : NULL);
        free(lw);
        return;
    }
    lw->next = next;
    lw->w = w;
    lw->req = req;
    lw->budget_ok = 1;
    lw->limited = mg_auth_limited(k);
    lw->result = MG_LIMIT_SHARED_UNAVAILABLE;
    if (k->budget != NULL) {
        if (mg_budget_redis_read(&lw->bcall, w->redis, sc->prefix, k->budget,
                                 (int64_t)time(NULL), sc->timeout_ms, budget_done, lw) == 0) {
            lw->pending++;
        } else {
            mg_redis_log_limited("a budget's spend could not be read (Redis down)");
            lw->budget_ok = 0;
        }
    }
    if (lw->limited) {
        if (mg_limit_redis_admit(&lw->call, w->redis, sc->prefix, k->name, k->requests_per_minute,
                                 k->tokens_per_minute, mg_admit_estimate(&lw->a), sc->timeout_ms,
                                 limit_done, lw) == 0) {
            lw->pending++;
        } else {
            mg_redis_log_limited("a shared limit decision could not be sent (Redis down)");
        }
    }
    if (lw->pending == 0) {   /* nothing to wait for: decided now */
        decide(lw);
        free(lw);
        return;
    }
    mg_conn_watch(req->conn, limit_gone, NULL, lw);
}

/* ---- the conversation store ----------------------------------------------------------------- */

#define FETCH_IDS 8   /* ids read for one request: its previous_response_id and referenced items' */

struct fetch_wait {
    const struct mg_http_next *next;
    struct mg_worker    *w;
    struct mg_req       *req;
    int                  n, pending, ok;
    struct mg_resp_fetch f[FETCH_IDS];
};

/* Inside mg_conn_resume(): the request goes on (closed: a store Redis could not read is 503). */
static void
fetch_go_on(void *arg)
{
    struct fetch_wait *fw = arg;
    struct mg_refusal ref;

    if (!fw->ok && fw->w->conf->shared.closed) {
        mg_refusal_set(&ref, 503, "shared_state_unavailable", NULL,
                       "The stored responses are shared and cannot be read now; retry");
        fw->next->refused(fw->w, fw->req, &ref, NULL);
        return;
    }
    fw->next->dispatch(fw->w, fw->req);
}

static void
fetch_done(void *arg, int ok)
{
    struct fetch_wait *fw = arg;
    struct mg_conn *c = fw->req->conn;

    fw->ok &= ok;
    if (--fw->pending > 0) {
        return;
    }
    mg_conn_watch(c, NULL, NULL, NULL);
    mg_conn_resume(c, fetch_go_on, fw);
    free(fw);
}

static void
fetch_gone(void *arg)
{
    struct fetch_wait *fw = arg;
    int i;

    for (i = 0; i < fw->n; i++) {
        mg_resp_redis_fetch_cancel(&fw->f[i]);
    }
    free(fw);
}

/*
 * An id worth asking Redis for (SPEC: checked before any lookup): the gateway's own (resp_mg and
 * 32 hex digits) or a backend's of at most 128 printable bytes.
 */
static int
id_ok(const char *id)
{
    size_t i, n = strlen(id);

    if (strncmp(id, "resp_mg", 7) == 0) {
        for (i = 7; i < n && ((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'));
             i++) {
        }
        return n == 39 && i == n;
    }
    for (i = 0; i < n; i++) {
        if (id[i] <= ' ' || id[i] >= 0x7f) {
            return 0;
        }
    }
    return n > 0 && n <= 128;
}

static int
is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* Adds id to ids (n of them, at most FETCH_IDS, each once). */
static void
add_id(char ids[][MG_RESP_STORE_NAME_MAX + 1], int *n, const char *id)
{
    int i;

    for (i = 0; i < *n; i++) {
        if (strcmp(ids[i], id) == 0) {
            return;
        }
    }
    if (*n < FETCH_IDS && id_ok(id)) {
        snprintf(ids[(*n)++], MG_RESP_STORE_NAME_MAX + 1, "%s", id);
    }
}

/*
 * The Responses an item_reference names ("msg_mg<32 hex>_<n>", "fc_mg<32 hex>_<n>": an item of
 * resp_mg<32 hex>), found in the body's text without parsing it (a false find costs one read).
 */
static void
referenced(const struct mg_req *req, char ids[][MG_RESP_STORE_NAME_MAX + 1], int *n)
{
    static const char *const kinds[] = {"\"msg_mg", "\"fc_mg"};
    const char *end = req->body + req->body_len, *p;
    char rid[40];
    size_t k, i;

    if (mg_find(req->body, req->body_len, "item_reference", 14) == NULL) {
        return;
    }
    for (k = 0; k < 2; k++) {
        size_t kl = strlen(kinds[k]);
        for (p = req->body; (p = mg_find(p, (size_t)(end - p), kinds[k], kl)) != NULL; p += kl) {
            const char *hex = p + kl;
            for (i = 0; i < 32 && hex + i < end && is_hex(hex[i]); i++) {
            }
            if (i == 32 && hex + 32 < end && hex[32] == '_') {
                snprintf(rid, sizeof(rid), "resp_mg%.32s", hex);
                add_id(ids, n, rid);
            }
        }
    }
}

int
mg_http_shared_fetch(struct mg_worker *w, struct mg_req *req, const struct mg_http_next *next)
{
    char ids[FETCH_IDS][MG_RESP_STORE_NAME_MAX + 1], id[MG_RESP_STORE_NAME_MAX + 1];
    const char *key = req->key != NULL ? req->key->name : "";
    struct fetch_wait *fw;
    struct mg_refusal ref;
    int n = 0, i;

    if (req->route == ROUTE_STORED) {
        int items;
        if (mg_stored_id(req->path, id, sizeof(id), &items) && id[0] != '\0') {
            add_id(ids, &n, id);   /* /{id} or /{id}/input_items */
        }
    } else if (req->route == ROUTE_PROXY && req->api != NULL && req->api->previous != NULL) {
        if (req->api->previous(req->body, req->body_len, id, sizeof(id)) != MG_API_PREV_NONE) {
            add_id(ids, &n, id);
        }
        referenced(req, ids, &n);
    }
    if (n == 0) {
        return 0;   /* nothing to read, or no id that is stored anywhere: no Redis */
    }
    fw = mg_calloc(1, sizeof(*fw));
    fw->next = next;
    fw->w = w;
    fw->req = req;
    fw->ok = 1;
    fw->pending = 1;   /* held until every read is sent */
    for (i = 0; i < n; i++) {
        if (mg_resp_redis_fetch(&fw->f[fw->n], w->responses, ids[i], key, fetch_done, fw) != 0) {
            fw->ok = 0;
            break;
        }
        fw->n++;
        fw->pending++;
    }
    if (fw->n == 0) {
        free(fw);
        if (w->conf->shared.closed) {
            mg_refusal_set(&ref, 503, "shared_state_unavailable", NULL,
                           "The stored responses are shared and cannot be read now; retry");
            next->refused(w, req, &ref, NULL);
            return 1;
        }
        mg_redis_log_limited("reading %s from Redis: not connected; answered from this "
                             "instance's own store", ids[0]);
        return 0;
    }
    mg_conn_watch(req->conn, fetch_gone, NULL, fw);
    fw->pending--;   /* every read sent: the last answer goes on */
    return 1;
}

/* ---- the worker's connection ---------------------------------------------------------------- */

/* The worker's Redis connection for conf's shared: (none without it), and the store's binding. */
static void
connect_for(struct mg_worker *w, const struct mg_conf *conf)
{
    struct mg_redis_url u;

    if (conf->shared.on) {
        mg_shared_conf_url(&conf->shared, &u);
        w->redis = mg_redis_create(w->base, &u);
    }
}

static void
bind_store(struct mg_worker *w, const struct mg_conf *conf)
{
    mg_resp_redis_bind(w->redis, conf->shared.prefix, conf->shared.store_timeout_ms,
                       conf->responses_store.ttl_ms);
    mg_health_shared_bind(w->redis, conf->shared.prefix);
}

/* Worker 0 keeps the instance's subscriber to the shared cooldowns. */
static void
subscribe_for(struct mg_worker *w, const struct mg_conf *conf)
{
    struct mg_redis_url u;

    if (w->id == 0 && conf->shared.on) {
        mg_shared_conf_url(&conf->shared, &u);
        w->cool = mg_health_shared_create(w->base, &u, conf, w->rt->health, w->redis);
    }
}

void
mg_http_shared_start(struct mg_worker *w)
{
    connect_for(w, w->conf);
    bind_store(w, w->conf);
    subscribe_for(w, w->conf);
}

void
mg_http_shared_apply(struct mg_worker *w, const struct mg_conf *conf)
{
    /* a reload keeps the connection when shared: names the same Redis */
    if (!mg_shared_conf_same(&w->conf->shared, &conf->shared)) {
        mg_health_shared_destroy(w->cool);
        w->cool = NULL;
        mg_redis_destroy(w->redis);   /* requests waiting on it decide without it */
        w->redis = NULL;
        connect_for(w, conf);
        subscribe_for(w, conf);
    } else if (w->cool != NULL) {
        mg_health_shared_conf(w->cool, conf, w->redis);   /* its backends may have changed */
    }
    bind_store(w, conf);
}

void
mg_http_shared_stop(struct mg_worker *w)
{
    mg_resp_redis_bind(NULL, NULL, 0, 0);
    mg_health_shared_bind(NULL, NULL);
    mg_health_shared_destroy(w->cool);
    w->cool = NULL;
    mg_redis_destroy(w->redis);
    w->redis = NULL;
}
