/*
 * mg_proxy — the life of one proxied request.
 *
 *   admitted -> balancer order -> attempt 1..n (mg_attempt) -> commit -> relay (mg_relay) -> done
 *
 * An attempt commits when its head is final (the schema classifies it): only then does the
 * client see a byte, so every earlier failure (connect error, timeout, reset, fail-over status)
 * can still move on to the next backend. A fail-over answer is kept (bounded) in case it turns
 * out to be the last one.
 *
 * The client's connection is watched the whole time (a MSG_PEEK read event: evhttp does not read
 * while a request is being handled) so a client that leaves aborts its upstream transfer at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>

#include "mg_access.h"
#include "mg_admit.h"
#include "mg_attempt.h"
#include "mg_auth.h"
#include "mg_balancer.h"
#include "mg_conf.h"
#include "mg_log.h"
#include "mg_proxy.h"
#include "mg_relay.h"
#include "mg_reply.h"
#include "mg_stats.h"
#include "mg_worker.h"

#define RELAY_HWM   (256 * 1024)   /* client bytes queued before the upstream is paused */
#define REQ_ID_MAX  128

/* The last fail-over answer, passed through when every attempt failed. */
struct last_answer {
    int                      have;
    long                     status;
    struct mg_resp_head      head;
    struct mg_buf            body;
    const struct mg_backend *backend;
    const struct mg_schema  *schema;
    int                      timeout;      /* the last failure was a timeout */
    char                     error[CURL_ERROR_SIZE];
};

struct preq {
    struct mg_worker         *w;
    struct evhttp_request    *req;
    struct evhttp_connection *evcon;
    struct mg_conf           *conf;
    const struct mg_rule     *rule;
    int                       rule_index;
    const struct mg_key      *key;         /* the client's key, in conf; NULL without auth */
    char                     *path;
    char                     *upath;
    char                     *query;
    struct mg_json_req        jr;
    struct mg_client_req      client;      /* what schemas build attempts from */
    char                      model[MG_MODEL_MAX];
    char                      request_id[REQ_ID_MAX + 1];
    int64_t                   t0;          /* arrival, mg_now_us() */
    int64_t                   t_first;     /* first body byte sent to the client, 0 before */
    int64_t                   bytes_out;
    const char               *tried[MG_BALANCER_MAX];   /* backend names, in attempt order */
    size_t                    ntried;
    size_t                    order[MG_BALANCER_MAX];
    size_t                    nattempts;
    size_t                    attempt;
    struct mg_attempt         at;          /* the current attempt */
    struct last_answer        last;
    struct mg_relay           relay;       /* the committed answer's stages */
    struct event              peek;        /* client EOF while we wait */
    struct event              resume;      /* unpause the upstream once the client drained */
    struct evbuffer          *chunk;
};

static void start_next(struct preq *p);

/* ---- ending a request --------------------------------------------------------------------- */

static void
release(struct preq *p)
{
    mg_attempt_deinit(&p->at);
    event_del(&p->peek);
    event_del(&p->resume);
    if (p->chunk != NULL) {
        evbuffer_free(p->chunk);
    }
    mg_relay_deinit(&p->relay);
    mg_head_deinit(&p->last.head);
    mg_buf_deinit(&p->last.body);
    free(p->path);
    free(p->upath);
    free(p->query);
    mg_conf_unref(p->conf);
    free(p);
}

/* The request's access log line and metrics; backend is the one whose answer the client got. */
static void
account(struct preq *p, int status, const struct mg_backend *backend)
{
    struct mg_access_rec r;

    memset(&r, 0, sizeof(r));
    r.request_id = p->request_id;
    r.method = "POST";
    r.path = p->path;
    r.model = p->model;
    r.rule = p->rule_index;
    r.backends = p->tried;
    r.nbackends = p->ntried;
    r.status = status;
    r.bytes_in = (int64_t)p->client.body_len;
    r.bytes_out = p->bytes_out;
    r.duration_us = mg_now_us() - p->t0;
    r.ttfb_us = p->t_first ? p->t_first - p->t0 : -1;
    r.input_tokens = p->relay.have_usage && backend ? p->relay.usage.input : -1;
    r.output_tokens = p->relay.have_usage && backend ? p->relay.usage.output : -1;
    r.stream = p->jr.stream;
    r.key = p->key != NULL ? p->key->name : NULL;
    mg_auth_debit(p->key, r.input_tokens, r.output_tokens, mg_now_ms());
    mg_reply_account(p->w, p->req, &r, backend ? backend->name : NULL, 1);
}

/* Accounts a request whose client is gone: with the status it got, or 499 before any. */
static void
account_gone(struct preq *p)
{
    int committed = p->at.phase == MG_PHASE_RELAY;

    account(p, committed ? (int)p->at.head.status : 499, committed ? p->at.backend : NULL);
}

/* Before the final reply: from here on evhttp owns the connection again. */
static void
detach_client(struct preq *p)
{
    if (p->evcon != NULL) {
        mg_reply_watch_until_sent(p->w, p->req);
    }
    event_del(&p->peek);
    event_del(&p->resume);
}

/*
 * The client went away (or must be cut off): drop its connection and the upstream transfer.
 * Logged with the status the client got, or 499 (nginx's "client closed request") before that.
 */
static void
drop_client(struct preq *p)
{
    struct evhttp_connection *evcon = p->evcon;

    account_gone(p);
    mg_attempt_stop(&p->at);
    p->evcon = NULL;
    mg_reply_drop(p->w, evcon);
    release(p);
}

/* evhttp freed the connection (write error, timeout) while the request was ours. */
static void
on_client_close(struct evhttp_connection *evcon, void *arg)
{
    struct preq *p = arg;

    mg_log_debug("request %s: client closed the connection", p->request_id);
    account_gone(p);
    mg_attempt_stop(&p->at);
    p->evcon = NULL;
    mg_reply_closed(p->w, p->req);
    release(p);
}

static void
on_peek(evutil_socket_t fd, short what, void *arg)
{
    struct preq *p = arg;
    int gone = mg_sock_peer_gone(fd);

    if (gone < 0) {
        event_del(&p->peek);   /* pipelined bytes: evhttp will read them after this request */
        return;
    }
    if (gone == 0) {
        return;
    }
    mg_log_info("request %s: client left, aborting the upstream transfer", p->request_id);
    drop_client(p);
}

/* ---- replies ---------------------------------------------------------------------------- */

/* Puts a backend's kept headers on the client's reply. */
static void
copy_response_headers(struct preq *p, const struct mg_resp_head *h, int keep_length,
                      const struct mg_backend *b)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(p->req);
    const char *name, *value;
    size_t pos = 0;
    int limited = mg_auth_limited(p->key);

    keep_length = keep_length && !h->chunked;
    while (mg_head_next(h, &pos, &name, &value)) {
        if ((keep_length || strcasecmp(name, "content-length") != 0) &&
            !(limited && mg_auth_is_ratelimit_header(name))) {
            evhttp_add_header(out, name, value);
        }
    }
    mg_reply_key_headers(p->req, p->key);   /* a limited key's own x-ratelimit-* instead */
    evhttp_add_header(out, "x-modelgate-backend", b->name);
    evhttp_add_header(out, "x-request-id", p->request_id);
}

/* Sends a gateway error (no backend response to pass through) and ends the request. */
static void
reply_error(struct preq *p, int status, const char *code, const char *msg)
{
    account(p, status, NULL);
    detach_client(p);
    evhttp_add_header(evhttp_request_get_output_headers(p->req), "x-request-id", p->request_id);
    mg_reply_key_headers(p->req, p->key);
    mg_reply_error(p->req, status, code, NULL, "%s", msg);
    release(p);
}

/* Every attempt failed: the last backend answer received, if any; else 502/504. */
static void
reply_all_failed(struct preq *p)
{
    struct last_answer *l = &p->last;
    char msg[512];

    if (l->have) {
        struct evbuffer *buf = evbuffer_new();
        struct mg_buf translated;
        mg_buf_init(&translated, 2 * MG_HELD_BODY_MAX);
        detach_client(p);
        copy_response_headers(p, &l->head, 0, l->backend);
        if (l->schema->error_body(&l->head, l->body.data, l->body.len, &translated)) {
            evbuffer_add(buf, translated.data, translated.len);
        } else {
            evbuffer_add(buf, l->body.data ? l->body.data : "", l->body.len);
        }
        mg_buf_deinit(&translated);
        p->bytes_out = (int64_t)evbuffer_get_length(buf);
        p->t_first = mg_now_us();
        account(p, (int)l->status, l->backend);
        evhttp_send_reply(p->req, (int)l->status, NULL, buf);
        evbuffer_free(buf);
        release(p);
        return;
    }
    if (l->timeout) {
        snprintf(msg, sizeof(msg), "No backend answered in time for model '%s' (%zu attempts)",
                 p->model, p->nattempts);
        reply_error(p, 504, "upstream_timeout", msg);
    } else {
        snprintf(msg, sizeof(msg), "No backend could serve model '%s' (%zu attempts; last error: %s)",
                 p->model, p->nattempts, l->error[0] ? l->error : "unknown");
        reply_error(p, 502, "upstream_unavailable", msg);
    }
}

/* ---- the committed answer ----------------------------------------------------------------- */

static void
on_drained(struct evhttp_connection *evcon, void *arg)
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

/* The relay's last stage: bytes of the answer's body to the client. */
static void
emit(void *arg, const char *data, size_t len)
{
    struct preq *p = arg;

    if (p->t_first == 0) {
        p->t_first = mg_now_us();
    }
    p->bytes_out += (int64_t)len;
    evbuffer_add(p->chunk, data, len);
    evhttp_send_reply_chunk_with_cb(p->req, p->chunk, on_drained, p);
}

static void
commit(struct preq *p, struct mg_attempt *a)
{
    mg_stats_attempt(p->w->stats, a->backend->name, "ok");
    a->schema->relay(&p->relay, &p->client, &a->up, &a->head);
    copy_response_headers(p, &a->head, 1, a->backend);
    evhttp_send_reply_start(p->req, (int)a->head.status, NULL);
}

/* The committed answer ended cleanly. */
static void
complete(struct preq *p, struct mg_attempt *a)
{
    mg_relay_end(&p->relay);
    /* account first: evhttp_send_reply_end() may complete and free the request at once */
    account(p, (int)a->head.status, a->backend);
    detach_client(p);
    evhttp_send_reply_end(p->req);
    release(p);
}

/* ---- attempts ------------------------------------------------------------------------------ */

static void
on_head(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    if (o == MG_OUTCOME_COMMIT) {
        commit(owner, a);
    }
}

static size_t
on_body(void *owner, struct mg_attempt *a, const char *data, size_t len)
{
    struct preq *p = owner;

    if (p->evcon == NULL) {
        return 0;
    }
    if (evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(p->evcon))) >=
        RELAY_HWM) {
        return MG_ATTEMPT_PAUSE;
    }
    mg_relay_write(&p->relay, data, len);
    return len;
}

/* A failed attempt: what the next step and the final answer need to know of it. */
static void
note_failure(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    struct last_answer *l = &p->last;
    char result[32];

    mg_stats_attempt(p->w->stats, a->backend->name,
                     mg_outcome_result(o, a->head.status, result, sizeof(result)));
    if (o == MG_OUTCOME_FAIL_STATUS) {
        struct mg_buf t;
        mg_log_warn("request %s: backend %s answered %ld%s", p->request_id, a->backend->name,
                    a->head.status, p->attempt + 1 < p->nattempts ? ", trying the next" : "");
        t = l->head.relay;   /* keep this answer: swap buffers, copy nothing */
        l->head = a->head;
        a->head.relay = t;
        t = l->body;
        l->body = a->held;
        a->held = t;
        l->have = 1;
        l->status = a->head.status;
        l->backend = a->backend;
        l->schema = a->schema;
        l->timeout = 0;
        return;
    }
    mg_log_warn("request %s: backend %s failed: %s", p->request_id, a->backend->name,
                mg_attempt_error(a));
    l->timeout = o == MG_OUTCOME_FAIL_TIMEOUT;
    snprintf(l->error, sizeof(l->error), "%s: %s", a->backend->name, mg_attempt_error(a));
    /* A backend answer seen earlier (l->have) stays: it says more than a bare 502. */
}

static void
on_end(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    struct preq *p = owner;

    switch (o) {
    case MG_OUTCOME_COMPLETE:
        complete(p, a);
        return;
    case MG_OUTCOME_CUT:
        /* the client has part of an answer: cut it, as nginx does */
        mg_log_warn("request %s: backend %s failed mid-answer: %s", p->request_id,
                    a->backend->name, mg_attempt_error(a));
        drop_client(p);
        return;
    default:
        note_failure(p, a, o);
        p->attempt++;
        start_next(p);
    }
}

static const struct mg_attempt_ops attempt_ops = {
    .head = on_head,
    .body = on_body,
    .end = on_end,
};

/* Starts attempt p->attempt; MG_ERR when it could not even start. */
static int
start_attempt(struct preq *p)
{
    const struct mg_rule_backend *e = &p->rule->backends[p->order[p->attempt]];
    const struct mg_backend *b = &p->conf->backends[e->backend];

    p->tried[p->ntried++] = b->name;
    mg_attempt_reset(&p->at, b, e);
    if (p->at.schema->build(&p->client, b, e, &p->at.up) != MG_OK) {
        return MG_ERR;
    }
    return mg_attempt_start(&p->at);
}

static void
start_next(struct preq *p)
{
    while (p->attempt < p->nattempts) {
        if (start_attempt(p) == MG_OK) {
            return;
        }
        snprintf(p->last.error, sizeof(p->last.error), "cannot start a transfer");
        p->attempt++;
    }
    reply_all_failed(p);
}

/* ---- entry ------------------------------------------------------------------------------- */

static void
set_request_id(struct preq *p, struct evkeyvalq *in)
{
    static const char hex[] = "0123456789abcdef";
    const char *id = evhttp_find_header(in, "x-request-id");
    uint64_t a, b;
    int i;

    if (id != NULL && id[0] != '\0' && strlen(id) <= REQ_ID_MAX && strpbrk(id, "\r\n") == NULL) {
        snprintf(p->request_id, sizeof(p->request_id), "%s", id);
        p->client.has_request_id = 1;
        return;
    }
    a = mg_rand_next(&p->w->rng);
    b = mg_rand_next(&p->w->rng);
    for (i = 0; i < 16; i++) {
        p->request_id[i] = hex[(a >> (i * 4)) & 15];
        p->request_id[16 + i] = hex[(b >> (i * 4)) & 15];
    }
    p->request_id[32] = '\0';
}

/* The request's own copy of what admission found. */
static void
take_request(struct preq *p, const struct mg_admitted *a, struct evkeyvalq *hin)
{
    p->path = mg_strdup(a->path);
    p->upath = mg_strdup(a->upath);
    p->query = a->query ? mg_strdup(a->query) : NULL;
    p->jr = a->jr;
    memcpy(p->model, a->model, a->jr.model_len + 1);
    p->jr.model = p->model;
    p->client.upath = p->upath;
    p->client.query = p->query;
    p->client.body = a->body;
    p->client.body_len = a->body_len;
    p->client.jr = &p->jr;
    p->client.headers = hin;
    p->client.request_id = p->request_id;
    p->client.has_ctype = evhttp_find_header(hin, "content-type") != NULL;
    set_request_id(p, hin);
}

void
mg_proxy_handle(struct mg_worker *w, struct evhttp_request *req, const struct mg_admitted *a,
                int64_t t0)
{
    struct mg_conf *conf = w->conf;
    struct preq *p = mg_calloc(1, sizeof(*p));

    p->w = w;
    p->req = req;
    p->evcon = evhttp_request_get_connection(req);
    p->conf = mg_conf_ref(conf);
    p->rule = &conf->rules[a->rule];
    p->rule_index = a->rule;
    p->key = a->key;
    p->t0 = t0;
    take_request(p, a, evhttp_request_get_input_headers(req));
    mg_attempt_init(&p->at, w->base, w->upstream, (size_t)conf->max_body_size + 64 * 1024,
                    &attempt_ops, p);
    mg_relay_init(&p->relay, emit, p);
    mg_head_init(&p->last.head);
    mg_buf_init(&p->last.body, MG_HELD_BODY_MAX);
    event_assign(&p->resume, w->base, -1, 0, on_resume, p);
    event_assign(&p->peek, w->base,
                 bufferevent_getfd(evhttp_connection_get_bufferevent(p->evcon)),
                 EV_READ | EV_PERSIST, on_peek, p);
    p->chunk = evbuffer_new();
    if (p->chunk == NULL) {
        abort();
    }
    evhttp_connection_set_closecb(p->evcon, on_client_close, p);
    event_add(&p->peek, NULL);

    p->nattempts = mg_balancer_order(p->rule, &w->rng, p->order, MG_BALANCER_MAX);
    if (p->nattempts == 0) {
        reply_error(p, 502, "upstream_unavailable", "The rule for this model has no enabled backend");
        return;
    }
    start_next(p);
}
