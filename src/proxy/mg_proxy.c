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
#include <time.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "mg_access.h"
#include "mg_admit.h"
#include "mg_attempt.h"
#include "mg_auth.h"
#include "mg_balancer.h"
#include "mg_chatreq.h"
#include "mg_conf_types.h"
#include "mg_conn.h"
#include "mg_failover.h"
#include "mg_hdr.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_log.h"
#include "mg_plan.h"
#include "mg_proxy.h"
#include "mg_proxy_int.h"
#include "mg_relay.h"
#include "mg_reply.h"
#include "mg_resp_store.h"
#include "mg_req.h"
#include "mg_resume.h"
#include "mg_stats.h"
#include "mg_wire.h"
#include "mg_worker.h"

static void start_attempt(struct preq *p);
static int  resume_step(struct preq *p, enum mg_resume_step step);

/* The client left (or a write to it failed) while the request was ours. */
static void
on_gone(void *arg)
{
    struct preq *p = arg;

    /* logged with the status the client got, or 499 (nginx's "client closed request") */
    mg_log_info("request %s: client left, aborting the upstream transfer", p->request_id);
    mg_proxy_account_gone(p);
    mg_attempt_stop(&p->at);
    p->req = NULL;
    mg_proxy_release(p);
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

    if (p->rs != NULL && mg_proxy_resume_commit(p)) {
        return;
    }
    mg_attempt_committed(a);
    mg_plan_give_back(&p->plan, a->backend->state, mg_now_ms());   /* none other is tried now */
    mg_proxy_answer_head(p, &a->head, a->backend, p->relay.content_type);
    mg_wire_send_head(&p->wire, p->relay.keep_length && !a->head.chunked ?
                      a->head.content_length : -1);
}

/* ---- attempts ------------------------------------------------------------------------------ */

static void
on_head(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    struct preq *p = owner;
    int64_t t = mg_now_us();

    if (p->rs != NULL && p->rs->st.continuing) {   /* spliced into the answer under way */
        mg_proxy_resume_head(p, a, o);
    } else if (p->via_hub) {   /* the gate reads chat's rules; the API's stage comes last */
        mg_relay_reset(&p->relay, a->head.sse, &mg_api_chat);
        a->schema->relay(&p->relay, &p->hub_client, &a->up, &a->head);
        if (a->head.status >= 200 && a->head.status <= 299) {
            p->api->hub->relay(p->hub, &p->relay);
        } else if (p->api->hub->relay_error != NULL) {
            p->api->hub->relay_error(p->hub, &p->relay, (int)a->head.status);
        }
    } else {
        mg_relay_reset(&p->relay, a->head.sse, p->api);
        a->schema->relay(&p->relay, &p->client, &a->up, &a->head);
        if (p->api->relay != NULL && a->head.status >= 200 && a->head.status <= 299) {
            p->api->relay(&p->relay, &p->env, a->backend->name);
        }
    }
    if (p->rs != NULL && !p->rs->st.continuing) {
        mg_proxy_resume_first(p, a);
    }
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

    mg_proxy_attempt_done(p, a, mg_outcome_result(o, a->head.status, result, sizeof(result)), 1);
    if (o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_CONTEXT) {   /* an answer it held */
        mg_log_warn("request %s: backend %s answered %ld (%s)", p->request_id, a->backend->name,
                    a->head.status, mg_attempt_reason(a));
    } else {
        mg_log_warn("request %s: backend %s failed: %s", p->request_id, a->backend->name,
                    mg_attempt_error(a));
    }
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
        l->via_hub = p->via_hub;
        l->timeout = 0;
        l->nocred = 0;
        return;
    }
    /* A backend answer seen earlier (l->have) stays: it says more than a bare 502. */
    l->timeout = o == MG_OUTCOME_FAIL_TIMEOUT;
    l->nocred = 0;
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
        mg_proxy_reply_all_failed(p);
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
    if (p->tr != NULL) {
        mg_proxy_trace_attempt_end(p, a, o);
    }
    if (p->rs != NULL && resume_step(p, mg_proxy_resume_failed(p, a, o))) {
        return;
    }
    switch (o) {
    case MG_OUTCOME_COMPLETE:
        mg_proxy_attempt_done(p, a, "ok", 0);
        if (p->rs != NULL) {
            mg_proxy_resume_complete(p);
        }
        mg_proxy_complete(p, a);
        return;
    case MG_OUTCOME_CUT:
        mg_proxy_attempt_done(p, a, "cut", 1);
        if (p->rs != NULL && resume_step(p, mg_proxy_resume_cut(p, a))) {
            return;
        }
        if (p->relay.cut && clean) {
            /* ended unfinished: its error event is written, the end is clean */
            mg_proxy_complete(p, a);
        } else {
            mg_proxy_cut(p, a);
        }
        return;
    case MG_OUTCOME_FINAL: {
        struct last_answer l = {1, a->head.status, a->head, a->held, a->backend, a->schema, 0,
                                p->via_hub, 0, 0, ""};
        mg_proxy_attempt_done(p, a, "ok", 0);
        /* frees the attempt (and so the buffers l shares with it) last */
        mg_proxy_reply_held(p, &l);
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

/*
 * What resume made of a failure: 1 when it took it (the stream ended, or the continuation is
 * started here), 0 when the request goes on as without resume.
 */
static int
resume_step(struct preq *p, enum mg_resume_step step)
{
    if (step == MG_RESUME_NEXT) {
        start_attempt(p);
    }
    return step != MG_RESUME_NO;
}

/* Starts an attempt on the current entry; one that cannot even start counts as a failure. */
static void
start_attempt(struct preq *p)
{
    int64_t t_start = mg_now_us();
    const struct mg_rule_backend *e;
    const struct mg_backend *b;
    int rc, resumed = p->rs != NULL && p->rs->st.continuing;

    for (;;) {
        e = mg_plan_entry(&p->plan);
        b = &p->conf->backends[e->backend];
        mg_attempt_reset(&p->at, b, e);
        p->at.stream = p->jr.stream;
        p->via_hub = mg_api_mode(p->api, b) == MG_API_HUB;
        /* a continuation through a hub: the hub writes its chat body, and edits it */
        rc = p->via_hub ? mg_proxy_hub_build(p, b, e)
           : resumed ? mg_proxy_resume_build(p, b, e) : mg_proxy_native_build(p, b, e);
        if (resumed && rc != MG_OK) {   /* a continuation that cannot be built: a failure */
            break;
        }
        if (rc == MG_SCHEMA_EINVAL) {
            mg_proxy_reply_error(p, 400, p->at.up.code != NULL ? p->at.up.code : "invalid_value",
                                 p->at.up.param[0] ? p->at.up.param : NULL, p->at.up.why);
            return;
        }
        if (rc != MG_SCHEMA_ESKIP) {
            break;
        }
        mg_log_debug("request %s: backend %s left out: %s", p->request_id, b->name,
                     p->at.up.why);
        if (!mg_plan_leave_out(&p->plan)) {
            if (p->plan.ntried > 0) {
                mg_proxy_reply_all_failed(p);
            } else {
                mg_proxy_reply_error(p, 400, "unsupported_parameter",
                                     p->at.up.param[0] ? p->at.up.param : NULL, p->at.up.why);
            }
            return;
        }
    }
    mg_plan_tried(&p->plan, e, b->name);
    if (rc == MG_OK && p->tr != NULL) {
        mg_proxy_trace_attempt(p);
    }
    if (rc == MG_OK && mg_attempt_start(&p->at) == MG_OK) {
        int64_t now = mg_now_us();
        /* the work before each attempt: from arrival for the first, from the retry for others */
        p->overhead += now - (p->plan.ntried == 1 ? p->t0 : t_start);
        return;
    }
    p->last.nocred = rc == MG_SCHEMA_ENOCRED;
    if (p->last.nocred) {   /* its credential source has none valid now: it logs why */
        mg_log_warn("request %s: backend %s has no usable credentials", p->request_id, b->name);
        snprintf(p->last.error, sizeof(p->last.error), "%s: no usable credentials", b->name);
        /* a failure of the backend, as a refused connection would be: it counts for health */
        mg_plan_report(&p->plan, b, MG_OUTCOME_FAIL_ERROR, 0, -1, mg_now_ms());
    } else {
        mg_log_error("request %s: cannot start a transfer to backend %s", p->request_id,
                     b->name);
        snprintf(p->last.error, sizeof(p->last.error), "%s: cannot start a transfer", b->name);
    }
    p->last.timeout = 0;
    p->plan.retried = 1;   /* nothing to retry on this entry */
    if (p->tr != NULL) {
        mg_proxy_trace_attempt_end(p, &p->at, MG_OUTCOME_FAIL_ERROR);
    }
    if (resumed && resume_step(p, mg_proxy_resume_failed(p, &p->at, MG_OUTCOME_FAIL_ERROR))) {
        return;
    }
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

/*
 * The entries a request that continues a backend's conversation may reach (pin, into backend),
 * or NULL: a recorded id pins the backend that answered it; an unrecorded one reaches native
 * entries only, and none at all with auth (one key must never reach another's conversations
 * through the gateway's credential).
 */
static const struct mg_plan_pin *
pin_of(struct preq *p, struct mg_plan_pin *pin, char *backend, size_t size)
{
    if (p->api->previous == NULL ||
        p->api->previous(p->client.body, p->client.body_len, p->prev_id,
                         sizeof(p->prev_id)) != MG_API_PREV_NATIVE) {
        return NULL;
    }
    pin->native_only = 1;
    pin->backend = NULL;
    if (p->w->responses != NULL && p->prev_id[0] != '\0' &&
        mg_resp_store_lookup(p->w->responses, p->prev_id, p->env.key, mg_now_ms(), backend,
                             size) == MG_OK) {
        pin->backend = backend;
    } else if (p->conf->auth) {
        pin->backend = "";   /* no entry */
    }
    return pin;
}

/* The request's state, up to its plan (rule_index < 0: its own rule, p->pass_rule). */
static struct preq *
setup(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a, int rule_index)
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
    p->rule = rule_index >= 0 ? &conf->rules[rule_index] : &p->pass_rule;
    p->rule_index = rule_index;
    p->key = a->key;
    p->reserved = a->reserved;
    p->budget_reserved = a->budget_reserved;
    p->shared_limit = a->shared;
    if (a->shared) {
        p->shared_info = a->shared_info;
    }
    p->t0 = req->t0_us;
    take_request(p, a, req);
    if (conf->tracing.on) {
        mg_proxy_trace_begin(p, req);
    }
    p->env.responses = w->responses;
    p->env.key = p->key != NULL ? p->key->name : "";
    p->env.now_ms = mg_now_ms();
    mg_attempt_init(&p->at, w->base, w->upstream, (size_t)conf->max_body_size + 64 * 1024,
                    &attempt_ops, p);
    mg_relay_init(&p->relay, mg_wire_emit, &p->wire, on_commit, p);
    if (p->tr != NULL) {
        mg_proxy_trace_watch(p);
    }
    mg_head_init(&p->last.head);
    mg_buf_init(&p->last.body, MG_HELD_BODY_MAX);
    /* a chat body the hub makes may be larger than the client's (tools spelled out) */
    mg_buf_init(&p->hub_body, 2 * (size_t)conf->max_body_size + 64 * 1024);
    mg_buf_init(&p->dropped, 16 * 1024);
    mg_buf_init(&p->native_body, 2 * (size_t)conf->max_body_size + 64 * 1024);
    event_assign(&p->resume, w->base, -1, 0, on_resume, p);
    evtimer_assign(&p->retry, w->base, on_retry, p);
    mg_conn_watch(req->conn, on_gone, on_drained, p);
    return p;
}

void
mg_proxy_handle(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a)
{
    struct preq *p = setup(w, req, a, a->rule);
    struct mg_plan_pin pin;
    char backend[MG_RESP_STORE_NAME_MAX + 1];

    mg_plan_init(&p->plan, p->conf, p->rule, p->api, pin_of(p, &pin, backend, sizeof(backend)),
                 &w->rng, mg_now_ms());
    if (p->plan.nranked == 0 && p->plan.pinned_out) {
        char msg[MG_RESP_STORE_NAME_MAX + 64];
        snprintf(msg, sizeof(msg), "Previous response with id '%s' not found.", p->prev_id);
        mg_proxy_reply_error(p, 400, "previous_response_not_found", "previous_response_id", msg);
        return;
    }
    if (p->plan.nranked == 0 && p->plan.unserved) {
        char msg[512];
        snprintf(msg, sizeof(msg), "No backend for model '%s' serves %s", p->model, p->path);
        if (p->api->unserved_status == 404) {
            mg_proxy_reply_error(p, 404, "not_found", NULL, msg);
        } else {
            mg_proxy_reply_error(p, 400, "unsupported_endpoint", NULL, msg);
        }
        return;
    }
    if (p->plan.nranked == 0) {
        mg_proxy_reply_error(p, 502, "upstream_unavailable", NULL,
                             "The rule for this model has no enabled backend");
        return;
    }
    if (p->rule->resume) {
        mg_proxy_resume_setup(p);
    }
    start_attempt(p);
}

void
mg_proxy_pass(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a,
              size_t backend, const char *method)
{
    struct preq *p = setup(w, req, a, -1);

    p->method = method;
    p->pass_entry.backend = backend;
    p->pass_entry.weight = 1;
    p->pass_rule.backends = &p->pass_entry;
    p->pass_rule.nbackends = 1;
    p->pass_rule.retries_set = 1;   /* no other entry */
    mg_plan_init(&p->plan, p->conf, p->rule, p->api, NULL, &w->rng, mg_now_ms());
    if (p->plan.nranked == 0) {
        mg_proxy_reply_error(p, 502, "upstream_unavailable", NULL,
                             "The backend that made this response does not serve it now");
        return;
    }
    start_attempt(p);
}
