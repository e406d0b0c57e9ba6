/*
 * mg_proxy_reply — what the client of a proxied request gets: the head of a backend's answer
 * (its kept headers, then ours), the gateway's own answers when no backend answer is passed on,
 * the end of a committed answer (clean or cut), and the request's accounting and release.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "mg_access.h"
#include "mg_admit.h"
#include "mg_attempt.h"
#include "mg_auth.h"
#include "mg_budget.h"
#include "mg_budget_redis.h"
#include "mg_limit_redis.h"
#include "mg_balancer.h"
#include "mg_conf_types.h"
#include "mg_conn.h"
#include "mg_failover.h"
#include "mg_hdr.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_log.h"
#include "mg_plan.h"
#include "mg_price.h"
#include "mg_proxy.h"
#include "mg_proxy_int.h"
#include "mg_relay.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_resume.h"
#include "mg_stats.h"
#include "mg_status.h"
#include "mg_wire.h"
#include "mg_worker.h"

/* ---- ending a request --------------------------------------------------------------------- */

void
mg_proxy_release(struct preq *p)
{
    /* a probe that never got its outcome (not tried, or aborted) must not hold the claim */
    mg_plan_give_back(&p->plan, NULL, mg_now_ms());
    if (p->rs != NULL) {
        mg_proxy_resume_free(p);
    }
    mg_attempt_deinit(&p->at);
    event_del(&p->resume);
    event_del(&p->retry);
    mg_relay_deinit(&p->relay);
    mg_head_deinit(&p->last.head);
    mg_buf_deinit(&p->last.body);
    if (p->hub != NULL) {
        p->api->hub->close(p->hub);
    }
    mg_buf_deinit(&p->hub_body);
    mg_buf_deinit(&p->native_body);
    mg_buf_deinit(&p->dropped);
    if (p->tr != NULL) {
        mg_proxy_trace_free(p);
    }
    free(p->path);
    free(p->upath);
    free(p->query);
    mg_conf_unref(p->conf);
    mg_pool_put(&p->w->requests, p);
}

/*
 * The request's access log line and metrics; backend is the one whose answer the client got,
 * cut is 1 for an answer that broke after commit (code upstream_stream_error).
 */
static int
ok_status(int status)
{
    return status >= 200 && status < 300;
}

/*
 * What the answer r accounts cost, in micro-dollars: its tokens at the prices of the model sent
 * upstream (the entry's override, else the client's) on backend. An unpriced model costs 0 and
 * is logged once (only when the config has prices at all: without them nothing is priced).
 */
static int64_t
cost_of(struct preq *p, const struct mg_backend *backend, const struct mg_access_rec *r)
{
    const struct mg_rule_backend *e = p->at.entry;
    const char *model = e != NULL && e->model != NULL ? e->model : p->model;
    const struct mg_price *price;
    struct mg_price_usage u;

    if (r->input_tokens < 0 && r->output_tokens < 0) {
        return 0;
    }
    price = mg_price_lookup(p->conf, backend, model);
    if (price == NULL) {
        if ((p->conf->prices.n > 0 || backend->prices.n > 0) &&
            mg_price_warn_once(model)) {
            mg_log_warn("no price for model \"%s\" (backend %s): its requests cost 0", model,
                        backend->name);
        }
        return 0;
    }
    u.input = r->input_tokens;
    u.output = r->output_tokens;
    /* cache counts as the backend reported them (not for an estimate) */
    u.cached = p->relay.have_usage && !r->usage_estimated ? p->relay.usage.cached : 0;
    u.written = p->relay.have_usage && !r->usage_estimated ? p->relay.usage.written : 0;
    return mg_price_cost(price, &u);
}

void
mg_proxy_account(struct preq *p, int status, const struct mg_backend *backend, int cut)
{
    struct mg_access_rec r;
    int ok;

    memset(&r, 0, sizeof(r));
    r.request_id = p->request_id;
    r.method = p->method != NULL ? p->method : "POST";
    r.path = p->path;
    r.model = p->model;
    r.rule = p->rule_index;
    r.backends = p->plan.tried;
    r.nbackends = p->plan.ntried;
    r.status = status;
    r.error = cut ? "upstream_stream_error" : NULL;
    r.bytes_in = (int64_t)p->client.body_len;
    r.bytes_out = p->wire.bytes;
    r.duration_us = mg_now_us() - p->t0;
    r.ttfb_us = p->wire.t_first ? p->wire.t_first - p->t0 : -1;
    r.input_tokens = -1;
    r.output_tokens = -1;
    if (backend != NULL && p->relay.have_usage) {
        r.input_tokens = p->relay.usage.input;
        r.output_tokens = p->relay.usage.output;
    } else if (backend != NULL && p->at.phase == MG_PHASE_RELAY && !p->relay.no_usage &&
               ok_status(status)) {
        /* a 2xx answer that ended without reported usage (a cut, a client gone, a backend that
         * reports none): an estimate; an error answer is no usage */
        r.input_tokens = (int64_t)p->client.body_len / 4;
        /* of what the backend sent, never of a translation's re-rendered answer: a stream's
         * output events (about a token each; its bytes are mostly JSON around them) */
        r.output_tokens = p->relay.sse ? p->relay.out_events
                        : (p->via_hub ? p->relay.bytes_in : p->wire.bytes) / 4;
        r.usage_estimated = 1;
    }
    if (p->rs != NULL && p->rs->st.continuing) {
        /* a resumed stream: every attempt that relayed, as its backend reported it (the ended
         * ones are debited already; the relay's usage is now the client's, all attempts') */
        const struct mg_resume *rs = &p->rs->st;
        int64_t in = rs->cur_in >= 0 ? rs->cur_in : r.input_tokens;
        int64_t out = rs->cur_out >= 0 ? rs->cur_out : r.output_tokens;
        r.resumed = rs->spliced;
        r.input_tokens = mg_tokens_add(rs->debit_in, in > 0 && !cut ? in : 0);
        r.output_tokens = mg_tokens_add(rs->debit_out, out > 0 && !cut ? out : 0);
    }
    r.stream = p->jr.stream;
    r.key = p->key != NULL ? p->key->name : NULL;
    r.api = p->api->name;
    if (backend != NULL) {   /* chat reaches a schema as it speaks chat; a native API as itself */
        r.upstream_api = p->via_hub || p->api == &mg_api_chat ? p->at.schema->chat_api
                                                              : p->api->name;
        if (strcmp(r.upstream_api, r.api) != 0 && ok_status(status)) {
            mg_stats_translation(p->w->stats, r.api, r.upstream_api);
        }
    }
    if (p->via_hub && p->hub != NULL && p->api->hub->answer_id != NULL) {
        r.response_id = p->api->hub->answer_id(p->hub);
    }
    /* the reservation becomes the answer's usage; error answers and requests that got no
     * answer (a refusal of ours, all attempts failed, the client gone first) debit nothing */
    ok = status >= 200 && status < 300;
    if (p->shared_limit) {   /* reserved in Redis: settled there, not waited for */
        mg_limit_redis_settle(p->w->redis, p->conf->shared.prefix, p->key->name,
                              p->key->tokens_per_minute, p->reserved,
                              ok ? mg_tokens_add(r.input_tokens, r.output_tokens) : 0,
                              p->conf->shared.store_timeout_ms);
    } else {
        mg_auth_settle(p->key, p->reserved, ok ? r.input_tokens : 0,
                       ok ? r.output_tokens : 0, mg_now_ms());
    }
    p->reserved = 0;
    r.cost_known = backend != NULL && ok;
    r.cost_micro = r.cost_known ? cost_of(p, backend, &r) : 0;
    if (r.cost_micro > 0) {
        mg_stats_cost(p->w->stats, r.key, p->model, backend->name, r.cost_micro);
    }
    if (p->key != NULL && p->key->budget != NULL) {
        mg_budget_settle(p->key->budget, (int64_t)time(NULL), p->budget_reserved,
                         r.cost_micro > 0 ? r.cost_micro : 0);
        p->budget_reserved = 0;
        if (p->conf->shared.on && r.cost_micro > 0) {   /* spend lives in Redis: added there */
            mg_budget_redis_flush(p->w->redis, p->conf->shared.prefix, p->key->budget,
                                  (int64_t)time(NULL), p->conf->shared.store_timeout_ms);
        }
    }
    if (backend != NULL) {
        int whole = ok && !cut;   /* first token and per-token times of answers that ended well */
        mg_stats_genai(p->w->stats, p->model, mg_proxy_provider(backend), r.duration_us,
                       whole ? r.ttfb_us : -1, r.input_tokens, whole ? r.output_tokens : -1);
    }
    if (p->tr != NULL) {
        mg_proxy_trace_end(p, &r, backend, cut);
    }
    mg_status_request(p->w->status, p->rule_index, r.key, cut || status >= 500,
                      ok ? r.input_tokens : -1, ok ? r.output_tokens : -1);
    p->shared_limit = 0;
    mg_reply_account(p->w, p->req, &r, backend ? backend->name : NULL, 1);
}

void
mg_proxy_attempt_done(struct preq *p, struct mg_attempt *a, const char *result, int failed)
{
    int64_t now = mg_now_us();
    int relayed = a->phase == MG_PHASE_RELAY;   /* the client's answer: timed from arrival */

    mg_stats_attempt(p->w->stats, a->backend->name, result);
    mg_status_attempt(p->w->status, now / 1000, a->backend->name, result, failed,
                      relayed ? now - p->t0 : (now / 1000 - a->t_sent) * 1000,
                      relayed && p->wire.t_first ? p->wire.t_first - p->t0 : -1);
}

/* Accounts a request whose client is gone: with the status it got, or 499 before any. */
void
mg_proxy_account_gone(struct preq *p)
{
    int committed = p->at.phase == MG_PHASE_RELAY;

    if (p->rs != NULL && p->rs->st.continuing && !committed) {   /* between two backends */
        mg_proxy_account(p, (int)p->rs->status, p->rs->backend, 1);
        return;
    }
    mg_proxy_account(p, committed ? (int)p->at.head.status : 499,
                     committed ? p->at.backend : NULL, 0);
}

/* Before the final reply: the client is no longer watched for us. */
void
mg_proxy_detach_client(struct preq *p)
{
    mg_conn_watch(p->req->conn, NULL, NULL, NULL);
    event_del(&p->resume);
}

/* Drops the client's connection and the upstream transfer; the request is over. */
void
mg_proxy_drop_connection(struct preq *p)
{
    struct mg_conn *conn = p->req->conn;

    mg_attempt_stop(&p->at);
    p->req = NULL;
    mg_conn_abort(conn);   /* frees the request */
    mg_proxy_release(p);
}

/* ---- replies ---------------------------------------------------------------------------- */

/* The gateway's own time on the request so far, in microseconds. */
static int64_t
overhead_us(struct preq *p)
{
    int64_t now = mg_now_us(), spent = p->overhead;

    if (p->busy_since != 0) {
        spent += now - p->busy_since;   /* in the middle of relaying the first bytes */
    } else if (p->plan.ntried == 0) {
        spent = now - p->t0;            /* never got to a backend: all of it */
    }
    return spent;
}

/* With overhead_header: x-modelgate-overhead-us on a reply the gateway makes itself. */
static void
overhead_header(struct preq *p)
{
    if (p->conf->overhead_header) {
        p->req->overhead_us = overhead_us(p);
    }
}

/*
 * Starts the head of a backend's answer to the client: its kept headers (its length only when
 * the body goes unchanged: mg_wire frames the body), then ours.
 */
void
mg_proxy_answer_head(struct preq *p, const struct mg_resp_head *h, const struct mg_backend *b,
                     const char *ctype)
{
    struct mg_limit_header lh[MG_LIMIT_HEADERS_MAX];
    const char *name, *value;
    size_t pos = 0, i, n;
    int limited = mg_auth_limited(p->key);
    char v[32];

    mg_wire_begin(&p->wire, p->req, (int)h->status);
    while (mg_head_next(h, &pos, &name, &value)) {
        if (!mg_hdr_eq(name, "content-length") &&
            !(limited && mg_auth_is_ratelimit_header(name)) &&
            /* the gateway's own CORS headers, not the backend's (mg_cors) */
            !(p->req->cors_origin[0] != '\0' && strncasecmp(name, "access-control-", 15) == 0) &&
            (ctype == NULL || !mg_hdr_eq(name, "content-type"))) {
            mg_wire_header(&p->wire, name, value);
            p->wire.have_date |= mg_hdr_eq(name, "date");   /* the backend's is kept (SPEC) */
        }
    }
    if (ctype != NULL) {   /* a translated stream, or our own error body */
        mg_wire_header(&p->wire, "Content-Type", ctype);
    }
    n = !limited ? 0 : p->shared_limit ? mg_limit_headers(&p->shared_info, lh)
                                        : mg_auth_headers(p->key, mg_now_ms(), lh);
    for (i = 0; i < n; i++) {   /* a limited key's own x-ratelimit-* instead */
        mg_wire_header(&p->wire, lh[i].name, lh[i].value);
    }
    if (mg_admit_budget_remaining(p->key, v, sizeof(v))) {
        mg_wire_header(&p->wire, "x-modelgate-budget-remaining-usd", v);
    }
    mg_wire_header(&p->wire, "x-modelgate-backend", b->name);
    if (p->via_hub && p->dropped.len > 0) {   /* the hosted tools a translated request left out */
        mg_wire_header(&p->wire, "x-modelgate-dropped-tools", p->dropped.data);
    }
    mg_wire_header(&p->wire, "x-request-id", p->request_id);
    if (p->conf->overhead_header) {
        snprintf(v, sizeof(v), "%lld", (long long)overhead_us(p));
        mg_wire_header(&p->wire, "x-modelgate-overhead-us", v);
    }
}

/* Sends a gateway error (no backend response to pass through) and ends the request. */
void
mg_proxy_reply_error(struct preq *p, int status, const char *code, const char *param,
                     const char *msg)
{
    mg_proxy_account(p, status, NULL, 0);
    mg_proxy_detach_client(p);
    overhead_header(p);
    mg_admit_key_headers(p->req, p->key);
    mg_reply_error(p->req, status, code, param, "%s", msg);
    mg_proxy_release(p);
}

/*
 * Sends an answer read whole before it was committed (a 400, or the last fail-over answer) and
 * ends the request. A body that did not arrive whole is replaced by the gateway's own error.
 */
void
mg_proxy_reply_held(struct preq *p, const struct last_answer *l)
{
    struct mg_buf body;

    mg_buf_init(&body, 4 * MG_HELD_BODY_MAX);
    mg_proxy_detach_client(p);
    if (l->cut) {
        mg_buf_printf(&body, "{\"error\":{\"message\":\"Backend %s answered %ld and its answer "
                      "was cut short\",\"type\":\"server_error\",\"param\":null,"
                      "\"code\":\"upstream_unavailable\"}}\n", l->backend->name, l->status);
    } else if (l->via_hub) {   /* the schema's error in chat's shape, then the API's */
        struct mg_buf chat;
        mg_buf_init(&chat, 4 * MG_HELD_BODY_MAX);
        if (!l->schema->error_body(&p->hub_client, &l->head, l->body.data, l->body.len, &chat)) {
            mg_buf_add(&chat, l->body.data ? l->body.data : "", l->body.len);
        }
        if (p->api->hub->error_body == NULL
            || !p->api->hub->error_body(p->hub, (int)l->status, chat.data ? chat.data : "",
                                        chat.len, &body)) {
            mg_buf_add(&body, chat.data ? chat.data : "", chat.len);
        }
        mg_buf_deinit(&chat);
    } else if (!l->schema->error_body(&p->client, &l->head, l->body.data, l->body.len, &body)) {
        mg_buf_add(&body, l->body.data ? l->body.data : "", l->body.len);
    }
    /* a cut body is replaced by ours; one a hub translated is JSON whatever the backend sent */
    mg_proxy_answer_head(p, &l->head, l->backend,
                         l->cut || l->via_hub ? "application/json" : NULL);
    mg_wire_send_head(&p->wire, (int64_t)body.len);
    mg_wire_body(&p->wire, body.data, body.len);
    mg_buf_deinit(&body);
    /* before the end, which may free the request */
    mg_proxy_account(p, (int)l->status, l->backend, 0);
    mg_wire_end(&p->wire);   /* may complete and free the request at once */
    mg_proxy_release(p);
}

/*
 * Every attempt failed: 502 credentials_unavailable when the last had no credentials; else the
 * last backend answer received, if any; else 502/504.
 */
void
mg_proxy_reply_all_failed(struct preq *p)
{
    struct last_answer *l = &p->last;
    char msg[512];

    if (l->nocred) {   /* the last attempt could not even be signed or authorized */
        snprintf(msg, sizeof(msg), "No backend could serve model '%s' (%zu attempts; last: %s)",
                 p->model, p->plan.ntried, l->error);
        mg_proxy_reply_error(p, 502, "credentials_unavailable", NULL, msg);
    } else if (l->have) {
        mg_proxy_reply_held(p, l);
    } else if (l->timeout) {
        snprintf(msg, sizeof(msg), "No backend answered in time for model '%s' (%zu attempt%s; "
                 "last: %s)", p->model, p->plan.ntried, p->plan.ntried == 1 ? "" : "s", l->error);
        mg_proxy_reply_error(p, 504, "upstream_timeout", NULL, msg);
    } else {
        snprintf(msg, sizeof(msg), "No backend could serve model '%s' (%zu attempt%s; last: %s)",
                 p->model, p->plan.ntried, p->plan.ntried == 1 ? "" : "s",
                 l->error[0] ? l->error : "no backend could be tried");
        mg_proxy_reply_error(p, 502, "upstream_unavailable", NULL, msg);
    }
}

/* The answer ended cleanly on the backend's side (the relay may still find it incomplete). */
void
mg_proxy_complete(struct preq *p, struct mg_attempt *a)
{
    if (p->relay.cut) {
        mg_log_warn("request %s: backend %s: %s", p->request_id, a->backend->name,
                    p->relay.why);
    }
    /* account first: mg_wire_end() may complete and free the request at once */
    mg_proxy_account(p, (int)a->head.status, a->backend, p->relay.cut);
    mg_proxy_detach_client(p);
    mg_wire_end(&p->wire);
    mg_proxy_release(p);
}

/*
 * The committed answer broke. A stream ends with one error event and a clean end (never
 * [DONE]); any other body is cut by closing the connection, so the client sees it incomplete.
 */
void
mg_proxy_cut(struct preq *p, struct mg_attempt *a)
{
    char why[256];

    mg_log_warn("request %s: backend %s failed after the answer started: %s", p->request_id,
                a->backend->name, p->relay.why[0] ? p->relay.why : mg_attempt_error(a));
    snprintf(why, sizeof(why), "Backend %s failed during the answer: %s", a->backend->name,
             mg_attempt_reason(a));
    mg_proxy_account(p, (int)a->head.status, a->backend, 1);
    if (!p->relay.sse) {
        mg_proxy_drop_connection(p);
        return;
    }
    mg_relay_fail(&p->relay, why, strlen(why));
    mg_proxy_detach_client(p);
    mg_wire_end(&p->wire);
    mg_proxy_release(p);
}

