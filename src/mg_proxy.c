/*
 * mg_proxy — the life of one proxied request.
 *
 *   admitted -> ranked entries (balancer, health) -> attempt (mg_attempt) -> relay (mg_relay)
 *            -> commit -> done;  a failed attempt -> same-backend retry or the next entry
 *
 * Nothing of an answer reaches the client before the relay's gate commits it (the first body
 * byte, or a stream's first event with output), so every earlier failure (connect error, timeout,
 * reset, fail-over status, error event, a stall before the first token) can still move on. A
 * fail-over answer is kept (bounded) in case it turns out to be the last one. Once committed,
 * the backend never changes: a failure then ends a stream with one error event.
 *
 * The client's connection is watched the whole time (mg_conn reads it while the request is
 * handled) so a client that leaves aborts its upstream transfer at once.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "mg_access.h"
#include "mg_admit.h"
#include "mg_attempt.h"
#include "mg_auth.h"
#include "mg_balancer.h"
#include "mg_conf.h"
#include "mg_conn.h"
#include "mg_failover.h"
#include "mg_hdr.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_log.h"
#include "mg_plan.h"
#include "mg_proxy.h"
#include "mg_relay.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_stats.h"
#include "mg_wire.h"
#include "mg_worker.h"

/*
 * The upstream is paused while the wire says the client is congested (MG_WIRE_HWM queued) and
 * resumes once the queue is written; the stream's own state comes on top of what is queued
 * (docs/benchmarks.md: ~100 KiB in all per stalled stream).
 */
#define REQ_ID_MAX  128

/* The last fail-over answer, passed through when every attempt failed. */
struct last_answer {
    int                      have;
    long                     status;
    struct mg_resp_head      head;
    struct mg_buf            body;
    const struct mg_backend *backend;
    const struct mg_schema  *schema;
    int                      cut;          /* its body did not arrive whole */
    int                      timeout;      /* the last failure was a timeout */
    char                     error[256];   /* "backend: short reason", fit for a client */
};

struct preq {
    struct mg_worker         *w;
    struct mg_req            *req;         /* NULL once the client has gone */
    struct mg_conf           *conf;
    const struct mg_rule     *rule;
    int                       rule_index;
    const struct mg_key      *key;         /* the client's key, in conf; NULL without auth */
    int64_t                   reserved;    /* tokens admission reserved; settled in account() */
    char                     *path;
    char                     *upath;
    char                     *query;
    struct mg_json_req        jr;
    struct mg_client_req      client;      /* what schemas build attempts from */
    char                      model[MG_MODEL_MAX];
    char                      request_id[REQ_ID_MAX + 1];
    const struct mg_api      *api;         /* the client's API (mg_api) */
    int64_t                   t0;          /* arrival, mg_now_us() */
    int64_t                   overhead;    /* us the gateway itself spent (waits excluded) */
    int64_t                   busy_since;  /* a callback of ours began, 0 outside one */
    struct mg_plan            plan;        /* the order of attempts, and what moves it */
    struct mg_attempt         at;          /* the current attempt */
    struct event              retry;       /* the pause before a same-backend retry */
    struct last_answer        last;
    struct mg_relay           relay;       /* the committed answer's stages */
    struct event              resume;      /* unpause the upstream once the client drained */
    struct mg_wire            wire;        /* the answer to the client; counts its bytes */
};

static void start_attempt(struct preq *p);

/* ---- ending a request --------------------------------------------------------------------- */

static void
release(struct preq *p)
{
    /* a probe that never got its outcome (not tried, or aborted) must not hold the claim */
    mg_plan_give_back(&p->plan, NULL, mg_now_ms());
    mg_attempt_deinit(&p->at);
    event_del(&p->resume);
    event_del(&p->retry);
    mg_relay_deinit(&p->relay);
    mg_head_deinit(&p->last.head);
    mg_buf_deinit(&p->last.body);
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
static void
account(struct preq *p, int status, const struct mg_backend *backend, int cut)
{
    struct mg_access_rec r;
    int ok;

    memset(&r, 0, sizeof(r));
    r.request_id = p->request_id;
    r.method = "POST";
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
    } else if (backend != NULL && p->at.phase == MG_PHASE_RELAY && !p->relay.no_usage) {
        /* an answer that ended without reported usage (a cut, a client gone): an estimate */
        r.input_tokens = (int64_t)p->client.body_len / 4;
        r.output_tokens = p->wire.bytes / 4;
    }
    r.stream = p->jr.stream;
    r.key = p->key != NULL ? p->key->name : NULL;
    /* the reservation becomes the answer's usage; error answers and requests that got no
     * answer (a refusal of ours, all attempts failed, the client gone first) debit nothing */
    ok = status >= 200 && status < 300;
    mg_auth_settle(p->key, p->reserved, ok ? r.input_tokens : 0, ok ? r.output_tokens : 0,
                   mg_now_ms());
    p->reserved = 0;
    mg_reply_account(p->w, p->req, &r, backend ? backend->name : NULL, 1);
}

/* Accounts a request whose client is gone: with the status it got, or 499 before any. */
static void
account_gone(struct preq *p)
{
    int committed = p->at.phase == MG_PHASE_RELAY;

    account(p, committed ? (int)p->at.head.status : 499, committed ? p->at.backend : NULL, 0);
}

/* Before the final reply: the client is no longer watched for us. */
static void
detach_client(struct preq *p)
{
    mg_conn_watch(p->req->conn, NULL, NULL, NULL);
    event_del(&p->resume);
}

/* Drops the client's connection and the upstream transfer; the request is over. */
static void
drop_connection(struct preq *p)
{
    struct mg_conn *conn = p->req->conn;

    mg_attempt_stop(&p->at);
    p->req = NULL;
    mg_conn_abort(conn);   /* frees the request */
    release(p);
}

/* The client left (or a write to it failed) while the request was ours. */
static void
on_gone(void *arg)
{
    struct preq *p = arg;

    /* logged with the status the client got, or 499 (nginx's "client closed request") */
    mg_log_info("request %s: client left, aborting the upstream transfer", p->request_id);
    account_gone(p);
    mg_attempt_stop(&p->at);
    p->req = NULL;
    release(p);
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
static void
answer_head(struct preq *p, const struct mg_resp_head *h, const struct mg_backend *b,
            const char *ctype)
{
    struct mg_limit_header lh[MG_LIMIT_HEADERS_MAX];
    const char *name, *value;
    size_t pos = 0, i, n;
    int limited = mg_auth_limited(p->key);
    char v[24];

    mg_wire_begin(&p->wire, p->req, (int)h->status);
    while (mg_head_next(h, &pos, &name, &value)) {
        if (!mg_hdr_eq(name, "content-length") &&
            !(limited && mg_auth_is_ratelimit_header(name)) &&
            (ctype == NULL || !mg_hdr_eq(name, "content-type"))) {
            mg_wire_header(&p->wire, name, value);
            p->wire.have_date |= mg_hdr_eq(name, "date");   /* the backend's is kept (SPEC) */
        }
    }
    if (ctype != NULL) {   /* a translated stream, or our own error body */
        mg_wire_header(&p->wire, "Content-Type", ctype);
    }
    n = limited ? mg_auth_headers(p->key, mg_now_ms(), lh) : 0;
    for (i = 0; i < n; i++) {   /* a limited key's own x-ratelimit-* instead */
        mg_wire_header(&p->wire, lh[i].name, lh[i].value);
    }
    mg_wire_header(&p->wire, "x-modelgate-backend", b->name);
    mg_wire_header(&p->wire, "x-request-id", p->request_id);
    if (p->conf->overhead_header) {
        snprintf(v, sizeof(v), "%lld", (long long)overhead_us(p));
        mg_wire_header(&p->wire, "x-modelgate-overhead-us", v);
    }
}

/* Sends a gateway error (no backend response to pass through) and ends the request. */
static void
reply_error(struct preq *p, int status, const char *code, const char *param, const char *msg)
{
    account(p, status, NULL, 0);
    detach_client(p);
    overhead_header(p);
    mg_reply_key_headers(p->req, p->key);
    mg_reply_error(p->req, status, code, param, "%s", msg);
    release(p);
}

/*
 * Sends an answer read whole before it was committed (a 400, or the last fail-over answer) and
 * ends the request. A body that did not arrive whole is replaced by the gateway's own error.
 */
static void
reply_held(struct preq *p, const struct last_answer *l)
{
    struct mg_buf body;

    mg_buf_init(&body, 4 * MG_HELD_BODY_MAX);
    detach_client(p);
    if (l->cut) {
        mg_buf_printf(&body, "{\"error\":{\"message\":\"Backend %s answered %ld and its answer "
                      "was cut short\",\"type\":\"server_error\",\"param\":null,"
                      "\"code\":\"upstream_unavailable\"}}\n", l->backend->name, l->status);
    } else if (!l->schema->error_body(&p->client, &l->head, l->body.data, l->body.len, &body)) {
        mg_buf_add(&body, l->body.data ? l->body.data : "", l->body.len);
    }
    answer_head(p, &l->head, l->backend, l->cut ? "application/json" : NULL);
    mg_wire_send_head(&p->wire, (int64_t)body.len);
    mg_wire_body(&p->wire, body.data, body.len);
    mg_buf_deinit(&body);
    account(p, (int)l->status, l->backend, 0);   /* before the end, which may free the request */
    mg_wire_end(&p->wire);   /* may complete and free the request at once */
    release(p);
}

/* Every attempt failed: the last backend answer received, if any; else 502/504. */
static void
reply_all_failed(struct preq *p)
{
    struct last_answer *l = &p->last;
    char msg[512];

    if (l->have) {
        reply_held(p, l);
    } else if (l->timeout) {
        snprintf(msg, sizeof(msg), "No backend answered in time for model '%s' (%zu attempts; "
                 "last: %s)", p->model, p->plan.ntried, l->error);
        reply_error(p, 504, "upstream_timeout", NULL, msg);
    } else {
        snprintf(msg, sizeof(msg), "No backend could serve model '%s' (%zu attempts; last: %s)",
                 p->model, p->plan.ntried, l->error[0] ? l->error : "no backend could be tried");
        reply_error(p, 502, "upstream_unavailable", NULL, msg);
    }
}

/* ---- the answer ---------------------------------------------------------------------------- */

static void
on_drained(void *arg)
{
    struct preq *p = arg;

    if (p->at.paused) {
        event_active(&p->resume, EV_TIMEOUT, 0);
    }
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct preq *p = arg;

    mg_attempt_resume(&p->at);
}

/* The relay's gate decided: the client gets this answer. From a curl callback: no freeing. */
static void
on_commit(void *arg)
{
    struct preq *p = arg;
    struct mg_attempt *a = &p->at;

    mg_attempt_committed(a);
    mg_plan_give_back(&p->plan, a->backend->state, mg_now_ms());   /* none other is tried now */
    answer_head(p, &a->head, a->backend, p->relay.content_type);
    mg_wire_send_head(&p->wire, p->relay.keep_length && !a->head.chunked ?
                      a->head.content_length : -1);
}

/* The answer ended cleanly on the backend's side (the relay may still find it incomplete). */
static void
complete(struct preq *p, struct mg_attempt *a)
{
    if (p->relay.cut) {
        mg_log_warn("request %s: backend %s: %s", p->request_id, a->backend->name,
                    p->relay.why);
    }
    /* account first: mg_wire_end() may complete and free the request at once */
    account(p, (int)a->head.status, a->backend, p->relay.cut);
    detach_client(p);
    mg_wire_end(&p->wire);
    release(p);
}

/*
 * The committed answer broke. A stream ends with one error event and a clean end (never
 * [DONE]); any other body is cut by closing the connection, so the client sees it incomplete.
 */
static void
cut(struct preq *p, struct mg_attempt *a)
{
    char why[256];

    mg_log_warn("request %s: backend %s failed after the answer started: %s", p->request_id,
                a->backend->name, p->relay.why[0] ? p->relay.why : mg_attempt_error(a));
    snprintf(why, sizeof(why), "Backend %s failed during the answer: %s", a->backend->name,
             mg_attempt_reason(a));
    account(p, (int)a->head.status, a->backend, 1);
    if (!p->relay.sse) {
        drop_connection(p);
        return;
    }
    mg_relay_fail(&p->relay, why, strlen(why));
    detach_client(p);
    mg_wire_end(&p->wire);
    release(p);
}

/* ---- attempts ------------------------------------------------------------------------------ */

static void
on_head(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    struct preq *p = owner;
    int64_t t = mg_now_us();

    mg_relay_reset(&p->relay, a->head.sse, p->api);
    a->schema->relay(&p->relay, &p->client, &a->up, &a->head);
    p->overhead += mg_now_us() - t;
}

static size_t
on_body(void *owner, struct mg_attempt *a, const char *data, size_t len)
{
    struct preq *p = owner;

    if (p->req == NULL) {
        return 0;
    }
    /* backpressure is checked once, before the chain; the chain ends on the wire */
    if (p->relay.committed && mg_wire_congested(&p->wire)) {
        return MG_ATTEMPT_PAUSE;
    }
    p->busy_since = mg_now_us();
    mg_relay_write(&p->relay, data, len);
    p->overhead += mg_now_us() - p->busy_since;
    p->busy_since = 0;
    /* an error event before any output (this attempt fails over) or after it (the error event
     * is written): nothing more is read, and the outcome table reads why from the flags */
    a->flags |= mg_relay_verdict(&p->relay);
    return p->relay.failed || p->relay.cut ? 0 : len;
}

/* A failed attempt: what the next step and the final answer need to know of it. */
static void
note_failure(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    struct last_answer *l = &p->last;
    char result[32];

    mg_stats_attempt(p->w->stats, a->backend->name,
                     mg_outcome_result(o, a->head.status, result, sizeof(result)));
    mg_log_warn("request %s: backend %s failed: %s", p->request_id, a->backend->name,
                o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_CONTEXT
                    ? mg_attempt_reason(a) : mg_attempt_error(a));
    if (o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_CONTEXT) {
        struct mg_buf t;
        t = l->head.relay;   /* keep this answer: swap buffers, copy nothing */
        l->head = a->head;
        a->head.relay = t;
        t = l->body;
        l->body = a->held;
        a->held = t;
        l->have = 1;
        l->cut = a->held_cut;
        l->status = a->head.status;
        l->backend = a->backend;
        l->schema = a->schema;
        l->timeout = 0;
        return;
    }
    /* A backend answer seen earlier (l->have) stays: it says more than a bare 502. */
    l->timeout = o == MG_OUTCOME_FAIL_TIMEOUT;
    snprintf(l->error, sizeof(l->error), "%s: %s", a->backend->name, mg_attempt_reason(a));
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    start_attempt(arg);
}

/*
 * After a failed attempt: the same backend once more (after a pause), or a move to the next
 * entry (past the last, back to the first) while the rule's retries allow, or the end.
 */
static void
next_step(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    struct mg_failure f = {o, a->head.status, a->head.retry_after_s, a->rc,
                           a->backend->timeouts.total_ms};
    int64_t delay;

    switch (mg_plan_next(&p->plan, &f, &p->w->rng, &delay)) {
    case MG_PLAN_RETRY: {
        struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000 * 1000)};
        evtimer_add(&p->retry, &tv);   /* a new attempt, with fresh timers, on the same entry */
        return;
    }
    case MG_PLAN_MOVE:
        start_attempt(p);
        return;
    default:
        reply_all_failed(p);
    }
}

static void
on_end(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    struct preq *p = owner;
    int clean = o == MG_OUTCOME_COMPLETE;   /* the transfer ended cleanly */

    if (clean) {
        /* what the relay still holds decides: a last event may be an error before any output,
         * or a translated answer may turn out unreadable (failures like any other), or the
         * stream may end unfinished (a cut); its verdict is flags the outcome table reads */
        mg_relay_end(&p->relay);
        a->flags |= mg_relay_verdict(&p->relay);
        o = a->outcome = mg_outcome_classify(a->phase, MG_AEV_END, MG_HEAD_PENDING, a->rc,
                                             a->flags);
        if (p->relay.failed) {
            snprintf(a->errbuf, sizeof(a->errbuf), "%s", p->relay.why);
        }
    }
    mg_plan_report(&p->plan, a->backend, o, a->head.status, a->head.retry_after_s, mg_now_ms());
    switch (o) {
    case MG_OUTCOME_COMPLETE:
        mg_stats_attempt(p->w->stats, a->backend->name, "ok");
        complete(p, a);
        return;
    case MG_OUTCOME_CUT:
        mg_stats_attempt(p->w->stats, a->backend->name, "cut");
        if (p->relay.cut && clean) {
            complete(p, a);   /* ended unfinished: its error event is written, the end is clean */
        } else {
            cut(p, a);
        }
        return;
    case MG_OUTCOME_FINAL: {
        struct last_answer l = {1, a->head.status, a->head, a->held, a->backend, a->schema, 0, 0,
                                ""};
        mg_stats_attempt(p->w->stats, a->backend->name, "ok");
        reply_held(p, &l);   /* frees the attempt (and so the buffers l shares with it) last */
        return;
    }
    default:
        note_failure(p, a, o);
        next_step(p, a, o);
    }
}

static const struct mg_attempt_ops attempt_ops = {
    .head = on_head,
    .body = on_body,
    .end = on_end,
};

/* Starts an attempt on the current entry; one that cannot even start counts as a failure. */
static void
start_attempt(struct preq *p)
{
    int64_t t_start = mg_now_us();
    const struct mg_rule_backend *e;
    const struct mg_backend *b;
    int rc;

    for (;;) {
        e = mg_plan_entry(&p->plan);
        b = &p->conf->backends[e->backend];
        mg_attempt_reset(&p->at, b, e);
        rc = p->at.schema->build(&p->client, b, e, &p->at.up);
        if (rc == MG_SCHEMA_EINVAL) {
            reply_error(p, 400, "invalid_value", p->at.up.param[0] ? p->at.up.param : NULL,
                        p->at.up.why);
            return;
        }
        if (rc != MG_SCHEMA_ESKIP) {
            break;
        }
        mg_log_debug("request %s: backend %s left out: %s", p->request_id, b->name,
                     p->at.up.why);
        if (!mg_plan_leave_out(&p->plan)) {
            if (p->plan.ntried > 0) {
                reply_all_failed(p);
            } else {
                reply_error(p, 400, "unsupported_parameter",
                            p->at.up.param[0] ? p->at.up.param : NULL, p->at.up.why);
            }
            return;
        }
    }
    mg_plan_tried(&p->plan, e, b->name);
    if (rc == MG_OK && mg_attempt_start(&p->at) == MG_OK) {
        int64_t now = mg_now_us();
        /* the work before each attempt: from arrival for the first, from the retry for others */
        p->overhead += now - (p->plan.ntried == 1 ? p->t0 : t_start);
        return;
    }
    mg_log_error("request %s: cannot start a transfer to backend %s", p->request_id, b->name);
    snprintf(p->last.error, sizeof(p->last.error), "%s: cannot start a transfer", b->name);
    p->last.timeout = 0;
    p->plan.retried = 1;   /* nothing to retry on this entry */
    next_step(p, &p->at, MG_OUTCOME_FAIL_ERROR);
}

/* ---- entry ------------------------------------------------------------------------------- */

/* The request's own copy of what admission found. */
static void
take_request(struct preq *p, const struct mg_admitted *a, const struct mg_req *req)
{
    p->path = mg_strdup(a->path);
    p->upath = mg_strdup(a->upath);
    p->query = a->query ? mg_strdup(a->query) : NULL;
    p->jr = a->jr;
    memcpy(p->model, a->model, a->jr.model_len + 1);
    p->jr.model = p->model;
    p->api = a->api;
    p->client.upath = p->upath;
    p->client.query = p->query;
    p->client.body = a->body;
    p->client.body_len = a->body_len;
    p->client.jr = &p->jr;
    p->client.headers = &req->headers;
    p->client.request_id = p->request_id;
    p->client.has_request_id = req->has_request_id;
    p->client.has_ctype = mg_headers_get(&req->headers, "content-type") != NULL;
    memcpy(p->request_id, req->request_id, sizeof(p->request_id));
}

void
mg_proxy_handle(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a)
{
    struct mg_conf *conf = w->conf;
    struct preq *p = mg_pool_get(&w->requests, sizeof(*p));

    /* the request's own fields; the parts after them (plan, attempt, relay, events) are set up
     * whole by their own init below, so the 6 KiB state is not cleared twice */
    memset(p, 0, offsetof(struct preq, plan));
    memset(&p->last, 0, sizeof(p->last));
    memset(&p->wire, 0, sizeof(p->wire));

    p->w = w;
    p->req = req;
    p->conf = mg_conf_ref(conf);
    p->rule = &conf->rules[a->rule];
    p->rule_index = a->rule;
    p->key = a->key;
    p->reserved = a->reserved;
    p->t0 = req->t0_us;
    take_request(p, a, req);
    mg_attempt_init(&p->at, w->base, w->upstream, (size_t)conf->max_body_size + 64 * 1024,
                    &attempt_ops, p);
    mg_relay_init(&p->relay, mg_wire_emit, &p->wire, on_commit, p);
    mg_head_init(&p->last.head);
    mg_buf_init(&p->last.body, MG_HELD_BODY_MAX);
    event_assign(&p->resume, w->base, -1, 0, on_resume, p);
    evtimer_assign(&p->retry, w->base, on_retry, p);
    mg_conn_watch(req->conn, on_gone, on_drained, p);

    mg_plan_init(&p->plan, conf, p->rule, p->api, &w->rng, mg_now_ms());
    if (p->plan.nranked == 0 && p->plan.unserved) {
        char msg[512];
        snprintf(msg, sizeof(msg), "No backend for model '%s' serves %s", p->model, p->path);
        reply_error(p, 400, "unsupported_endpoint", NULL, msg);
        return;
    }
    if (p->plan.nranked == 0) {
        reply_error(p, 502, "upstream_unavailable", NULL,
                    "The rule for this model has no enabled backend");
        return;
    }
    start_attempt(p);
}
