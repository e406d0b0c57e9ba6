/*
 * mg_proxy — the life of one proxied request.
 *
 *   parse body -> route -> balancer order -> attempt 1..n -> commit -> relay -> done
 *
 * An attempt is "committed" when its response headers arrive with a status that is final
 * (anything but 429/500/502/503/504): only then does the client see a byte, so every earlier
 * failure (connect error, timeout, reset, failover status) can still move on to the next
 * backend. A failover-status answer is kept (bounded) in case it turns out to be the last one.
 *
 * The client's connection is watched the whole time (a MSG_PEEK read event: evhttp does not read
 * while a request is being handled) so a client that leaves aborts its upstream transfer at once.
 * Nothing is freed inside a curl callback: curl callbacks only record state; completion arrives
 * from mg_upstream after curl_multi_socket_action() returned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mg_access.h"
#include "mg_balancer.h"
#include "mg_http.h"
#include "mg_json.h"
#include "mg_log.h"
#include "mg_proxy.h"
#include "mg_router.h"
#include "mg_server.h"
#include "mg_stats.h"
#include "mg_upstream.h"
#include "mg_usage.h"

#define MODEL_MAX      512
#define RELAY_HWM      (256 * 1024)   /* client bytes queued before the upstream is paused */
#define FAIL_BODY_MAX  (256 * 1024)   /* body kept of a failover-status answer */
#define RESP_HDR_MAX   (64 * 1024)    /* response header bytes accepted from a backend */
#define REQ_ID_MAX     128
#define TAIL_KEEP      (16 * 1024)    /* bytes of a long JSON answer kept to find its usage */

enum state {
    ST_WAIT,     /* attempt started, no final response headers yet */
    ST_BUFFER,   /* failover status received: keep the body aside */
    ST_RELAY,    /* committed: the client has the headers, body bytes are relayed */
};

struct preq {
    struct mg_worker         *w;
    struct evhttp_request    *req;
    struct evhttp_connection *evcon;
    struct mg_conf           *conf;
    const struct mg_rule     *rule;
    char                     *path;        /* the client's path, raw */
    const char               *rest;        /* the path after /v1 (points into path) */
    char                     *query;
    const char               *body;
    size_t                    body_len;
    struct mg_json_req        jr;
    char                      model[MODEL_MAX];
    char                      request_id[REQ_ID_MAX + 1];
    int                       client_has_id;
    int                       client_has_ctype;
    int                       rule_index;
    int64_t                   t0;          /* arrival, mg_now_us() */
    int64_t                   t_first;     /* first body byte sent to the client, 0 before */
    int64_t                   bytes_out;
    const char               *tried[MG_BALANCER_MAX];   /* backend names, in attempt order */
    size_t                    ntried;

    /* usage: read from the answer; for streams the gateway may have asked for it itself */
    int                       inject;      /* we added stream_options.include_usage upstream */
    int                       sse;         /* the committed answer is an event stream */
    int                       json_answer; /* the committed answer is JSON: keep its tail */
    int                       have_usage;
    struct mg_usage           usage;
    struct mg_sse             split;
    struct mg_buf             scratch;     /* an event with its "usage":null removed */
    struct mg_buf             tail;

    size_t                    order[MG_BALANCER_MAX];
    size_t                    nattempts;
    size_t                    attempt;

    /* the current attempt */
    struct mg_upstream_xfer   xfer;
    const struct mg_backend  *backend;
    struct curl_slist        *hdrs;
    struct mg_buf             url;
    struct mg_buf             send_body;   /* body with the model override, when there is one */
    struct mg_buf             hbuf;        /* response header lines */
    struct mg_buf             fbody;       /* body of a failover-status answer */
    enum state                state;
    long                      status;
    int                       timed_out;
    char                      errbuf[CURL_ERROR_SIZE];

    /* the last backend answer received (a failover status), for pass-through when all fail */
    int                       have_last;
    long                      last_status;
    struct mg_buf             last_hdrs;
    struct mg_buf             last_body;
    const struct mg_backend  *last_backend;
    int                       last_timeout;
    char                      last_error[CURL_ERROR_SIZE];

    /* embedded, not allocated: three fewer malloc/free pairs per request */
    struct event              timer;       /* first_byte, then idle */
    struct event              peek;        /* client EOF while we wait */
    struct event              resume;      /* unpause the upstream once the client drained */
    struct evbuffer          *chunk;
    int                       paused;
};

static void start_next(struct preq *p);
static void on_drained(struct evhttp_connection *evcon, void *arg);
static void attempt_failed(struct preq *p, CURLcode rc);

/* ---- helpers ---------------------------------------------------------------------------- */

static int
failover_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int
hop_by_hop(const char *name)
{
    static const char *const hop[] = {"connection", "keep-alive", "transfer-encoding", "te",
                                      "trailer", "upgrade"};
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(hop); i++) {
        if (strcasecmp(name, hop[i]) == 0) {
            return 1;
        }
    }
    return strncasecmp(name, "proxy-", 6) == 0;
}

/* Client headers that never go upstream: hop-by-hop, and what the gateway sets itself. */
static int
skip_request_header(const char *name)
{
    static const char *const skip[] = {"host", "content-length", "authorization", "api-key",
                                       "expect"};
    size_t i;

    if (hop_by_hop(name)) {
        return 1;
    }
    for (i = 0; i < MG_ARRAY_LEN(skip); i++) {
        if (strcasecmp(name, skip[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
arm_timer(struct preq *p, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    evtimer_add(&p->timer, &tv);
}

static const char *
header_lookup(void *arg, const char *name)
{
    return evhttp_find_header((struct evkeyvalq *)arg, name);
}

/* ---- ending a request --------------------------------------------------------------------- */

/* Stops the upstream transfer of the current attempt, if any. */
static void
stop_transfer(struct preq *p)
{
    if (p->xfer.easy != NULL) {
        mg_upstream_cancel(p->w->upstream, &p->xfer);
        mg_upstream_easy_put(p->w->upstream, p->xfer.easy);
        p->xfer.easy = NULL;
    }
    evtimer_del(&p->timer);
}

/* Before the final reply: from here on evhttp owns the connection again. */
static void
detach_client(struct preq *p)
{
    if (p->evcon != NULL) {
        mg_http_watch_until_sent(p->w, p->req);
    }
    event_del(&p->peek);
    event_del(&p->resume);
}

static void
release(struct preq *p)
{
    stop_transfer(p);
    event_del(&p->timer);
    event_del(&p->peek);
    event_del(&p->resume);
    if (p->chunk != NULL) {
        evbuffer_free(p->chunk);
    }
    curl_slist_free_all(p->hdrs);
    mg_buf_deinit(&p->url);
    mg_buf_deinit(&p->send_body);
    mg_buf_deinit(&p->hbuf);
    mg_buf_deinit(&p->fbody);
    mg_buf_deinit(&p->last_hdrs);
    mg_buf_deinit(&p->last_body);
    mg_buf_deinit(&p->scratch);
    mg_buf_deinit(&p->tail);
    mg_sse_deinit(&p->split);
    free(p->path);
    free(p->query);
    mg_conf_unref(p->conf);
    free(p);
}

static void account(struct preq *p, int status, const struct mg_backend *backend);

/*
 * The client went away (or must be cut off): drop its connection and the upstream transfer.
 * Logged with the status the client got, or 499 (nginx's "client closed request") before that.
 */
static void
drop_client(struct preq *p)
{
    struct evhttp_connection *evcon = p->evcon;

    account(p, p->state == ST_RELAY ? (int)p->status : 499,
            p->state == ST_RELAY ? p->backend : NULL);
    stop_transfer(p);
    event_del(&p->peek);
    event_del(&p->resume);
    p->evcon = NULL;
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);   /* we count this one ourselves */
        evhttp_connection_free(evcon);   /* frees p->req as well */
    }
    mg_server_request_done(p->w);
    release(p);
}

/* evhttp freed the connection (write error, timeout) while the request was ours. */
static void
on_client_close(struct evhttp_connection *evcon, void *arg)
{
    struct preq *p = arg;

    mg_log_debug("request %s: client closed the connection", p->request_id);
    account(p, p->state == ST_RELAY ? (int)p->status : 499,
            p->state == ST_RELAY ? p->backend : NULL);
    stop_transfer(p);
    event_del(&p->peek);
    event_del(&p->resume);
    p->evcon = NULL;
    /* A request evhttp detached from the dying connection is ours to free. */
    if (evhttp_request_get_connection(p->req) == NULL) {
        evhttp_request_free(p->req);
    }
    mg_server_request_done(p->w);
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

/* Copies a backend's header lines to the client's reply, leaving out hop-by-hop ones. */
static void
copy_response_headers(struct preq *p, const struct mg_buf *h, int keep_length,
                      const struct mg_backend *b)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(p->req);
    const char *line = h->data, *end = h->data + h->len;
    char name[256], value[8192];

    if (keep_length && h->data != NULL && strcasestr(h->data, "transfer-encoding:") != NULL) {
        keep_length = 0;
    }
    while (line != NULL && line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *colon = memchr(line, ':', (size_t)((eol ? eol : end) - line));
        const char *v, *ve = eol ? eol : end;
        size_t nlen, vlen;

        if (colon != NULL && (nlen = (size_t)(colon - line)) > 0 && nlen < sizeof(name)) {
            memcpy(name, line, nlen);
            name[nlen] = '\0';
            v = colon + 1;
            while (v < ve && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) {
                ve--;
            }
            vlen = (size_t)(ve - v);
            if (vlen < sizeof(value) && !hop_by_hop(name) &&
                strcasecmp(name, "x-request-id") != 0 &&
                strcasecmp(name, "x-modelgate-backend") != 0 &&
                (keep_length || strcasecmp(name, "content-length") != 0)) {
                memcpy(value, v, vlen);
                value[vlen] = '\0';
                evhttp_add_header(out, name, value);
            }
        }
        line = eol ? eol + 1 : end;
    }
    evhttp_add_header(out, "x-modelgate-backend", b->name);
    evhttp_add_header(out, "x-request-id", p->request_id);
}

/* The request's access log line and metrics; backend is the one whose answer the client got. */
static void
account(struct preq *p, int status, const struct mg_backend *backend)
{
    struct mg_access_rec r;
    char client[128];
    int64_t dur = mg_now_us() - p->t0, ttfb = p->t_first ? p->t_first - p->t0 : -1;
    const char *bname = backend ? backend->name : "";

    mg_stats_request(p->w->stats, p->model, bname, status, dur, ttfb);
    if (p->have_usage && backend != NULL) {
        mg_stats_tokens(p->w->stats, p->model, bname, p->usage.input, p->usage.output);
    }
    if (!mg_access_enabled()) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.request_id = p->request_id;
    r.client = p->req ? mg_http_client(p->req, client, sizeof(client)) : NULL;
    r.method = "POST";
    r.path = p->path;
    r.model = p->model;
    r.rule = p->rule_index;
    r.backends = p->tried;
    r.nbackends = p->ntried;
    r.status = status;
    r.bytes_in = (int64_t)p->body_len;
    r.bytes_out = p->bytes_out;
    r.duration_us = dur;
    r.ttfb_us = ttfb;
    r.input_tokens = p->have_usage ? p->usage.input : -1;
    r.output_tokens = p->have_usage ? p->usage.output : -1;
    r.stream = p->jr.stream;
    mg_access_log(p->w->access, &r);
}

/* Sends a gateway error (no backend response to pass through) and ends the request. */
static void
reply_error(struct preq *p, int status, const char *code, const char *msg)
{
    account(p, status, NULL);
    detach_client(p);
    evhttp_add_header(evhttp_request_get_output_headers(p->req), "x-request-id", p->request_id);
    mg_http_error(p->req, status, code, NULL, "%s", msg);
    release(p);
}

/* Every attempt failed: the last backend answer received, if any; else 502/504. */
static void
reply_all_failed(struct preq *p)
{
    char msg[512];

    if (p->have_last) {
        struct evbuffer *buf = evbuffer_new();
        detach_client(p);
        copy_response_headers(p, &p->last_hdrs, 0, p->last_backend);
        evbuffer_add(buf, p->last_body.data ? p->last_body.data : "", p->last_body.len);
        p->bytes_out = (int64_t)p->last_body.len;
        p->t_first = mg_now_us();
        account(p, (int)p->last_status, p->last_backend);
        evhttp_send_reply(p->req, (int)p->last_status, NULL, buf);
        evbuffer_free(buf);
        release(p);
        return;
    }
    if (p->last_timeout) {
        snprintf(msg, sizeof(msg), "No backend answered in time for model '%s' (%zu attempts)",
                 p->model, p->nattempts);
        reply_error(p, 504, "upstream_timeout", msg);
    } else {
        snprintf(msg, sizeof(msg), "No backend could serve model '%s' (%zu attempts; last error: %s)",
                 p->model, p->nattempts, p->last_error[0] ? p->last_error : "unknown");
        reply_error(p, 502, "upstream_unavailable", msg);
    }
}

/* ---- curl callbacks: record and relay, never free ------------------------------------------ */

/* The value of the Content-Type line among raw header lines, or "". */
static void
content_type(const struct mg_buf *h, char *out, size_t len)
{
    const char *p = h->data ? strcasestr(h->data, "content-type:") : NULL;
    size_t n = 0;

    while (p != NULL && p > h->data && p[-1] != '\n') {
        p = strcasestr(p + 1, "content-type:");
    }
    if (p != NULL) {
        p += 13;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        while (p[n] && p[n] != '\r' && p[n] != '\n' && n + 1 < len) {
            n++;
        }
        memcpy(out, p, n);
    }
    out[n] = '\0';
}

static void
commit(struct preq *p)
{
    char ctype[128];

    p->state = ST_RELAY;
    mg_stats_attempt(p->w->stats, p->backend->name, "ok");
    content_type(&p->hbuf, ctype, sizeof(ctype));
    p->sse = strcasestr(ctype, "text/event-stream") != NULL;
    p->json_answer = !p->sse && strcasestr(ctype, "json") != NULL;
    copy_response_headers(p, &p->hbuf, 1, p->backend);
    evhttp_send_reply_start(p->req, (int)p->status, NULL);
}

/* Sends bytes of the answer's body to the client. */
static void
relay(struct preq *p, const char *data, size_t len)
{
    if (p->t_first == 0) {
        p->t_first = mg_now_us();
    }
    p->bytes_out += (int64_t)len;
    evbuffer_add(p->chunk, data, len);
    evhttp_send_reply_chunk_with_cb(p->req, p->chunk, on_drained, p);
}

static void
note_usage(struct preq *p, const char *data, size_t len)
{
    struct mg_usage u;

    if (mg_usage_parse(data, len, &u)) {
        p->usage = u;
        p->have_usage = 1;
    }
}

/* A stream the client sees as sent: events are only looked at, for their usage. */
static void
on_event_observe(void *arg, const char *data, size_t len, int whole)
{
    if (whole && memmem(data, len, "\"usage\"", 7) != NULL) {
        note_usage(arg, data, len);
    }
}

/*
 * A stream whose usage the gateway asked for itself: the extra usage event is taken out and the
 * "usage":null members the backend added to the other events are removed, so the client gets
 * exactly the stream it asked for.
 */
static void
on_event_filter(void *arg, const char *data, size_t len, int whole)
{
    struct preq *p = arg;

    if (!whole || memmem(data, len, "\"usage\"", 7) == NULL) {
        relay(p, data, len);
        return;
    }
    note_usage(p, data, len);
    if (mg_sse_is_usage_only(data, len)) {
        return;
    }
    mg_buf_reset(&p->scratch);
    if (mg_sse_strip_null_usage(data, len, &p->scratch) == MG_OK) {
        relay(p, p->scratch.data, p->scratch.len);
    } else {
        relay(p, data, len);
    }
}

/* Keeps the last TAIL_KEEP..2*TAIL_KEEP bytes of a JSON answer, where its usage is. */
static void
keep_tail(struct preq *p, const char *data, size_t len)
{
    if (len >= TAIL_KEEP) {
        mg_buf_reset(&p->tail);
        mg_buf_add(&p->tail, data + len - TAIL_KEEP, TAIL_KEEP);
        return;
    }
    if (p->tail.len + len > 2 * TAIL_KEEP) {
        memmove(p->tail.data, p->tail.data + p->tail.len - TAIL_KEEP, TAIL_KEEP);
        p->tail.len = TAIL_KEEP;
    }
    mg_buf_add(&p->tail, data, len);
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
    struct preq *p = arg;
    size_t len = size * n;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        mg_buf_reset(&p->hbuf);   /* a new response: the first, or the one after a 1xx */
        return len;
    }
    if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(p->xfer.easy, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200) {
            return len;
        }
        p->status = status;
        arm_timer(p, p->backend->timeouts.idle_ms);
        if (failover_status(status)) {
            p->state = ST_BUFFER;
        } else {
            commit(p);
        }
        return len;
    }
    return mg_buf_add(&p->hbuf, data, len) == MG_OK ? len : 0;
}

static void
on_drained(struct evhttp_connection *evcon, void *arg)
{
    struct preq *p = arg;

    if (p->paused) {
        event_active(&p->resume, EV_TIMEOUT, 0);
    }
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct preq *p = arg;

    if (p->paused && p->xfer.easy != NULL) {
        p->paused = 0;
        arm_timer(p, p->backend->timeouts.idle_ms);
        curl_easy_pause(p->xfer.easy, CURLPAUSE_CONT);
    }
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
    struct preq *p = arg;
    size_t len = size * n;

    if (p->state == ST_BUFFER) {
        size_t room = FAIL_BODY_MAX - p->fbody.len;
        mg_buf_add(&p->fbody, data, len < room ? len : room);
        arm_timer(p, p->backend->timeouts.idle_ms);
        return len;
    }
    if (p->state != ST_RELAY || p->evcon == NULL) {
        return 0;
    }
    if (evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(p->evcon))) >=
        RELAY_HWM) {
        /* The client reads slower than the backend writes: hold the backend, not the bytes. */
        p->paused = 1;
        evtimer_del(&p->timer);
        return CURL_WRITEFUNC_PAUSE;
    }
    arm_timer(p, p->backend->timeouts.idle_ms);
    if (p->sse && p->inject) {
        mg_sse_feed(&p->split, data, len, on_event_filter, p);
        return len;
    }
    relay(p, data, len);
    if (p->sse) {
        mg_sse_feed(&p->split, data, len, on_event_observe, p);
    } else if (p->json_answer) {
        keep_tail(p, data, len);
    }
    return len;
}

/* The connection is ready and the request is about to be sent: first_byte starts now. */
static int
on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
          int conn_local_port)
{
    struct preq *p = arg;

    arm_timer(p, p->backend->timeouts.first_byte_ms);
    return CURL_PREREQFUNC_OK;
}

/* ---- attempts ------------------------------------------------------------------------------ */

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct preq *p = arg;

    mg_log_warn("request %s: backend %s timed out (%s)", p->request_id, p->backend->name,
                p->state == ST_WAIT ? "first_byte" : "idle");
    p->timed_out = 1;
    if (p->state == ST_RELAY) {
        drop_client(p);   /* the client has a partial answer: cut it, as nginx does */
        return;
    }
    stop_transfer(p);
    attempt_failed(p, CURLE_OPERATION_TIMEDOUT);
}

static void
on_done(void *arg, CURLcode rc)
{
    struct preq *p = arg;

    mg_upstream_easy_put(p->w->upstream, p->xfer.easy);
    p->xfer.easy = NULL;
    evtimer_del(&p->timer);
    if (p->state == ST_RELAY) {
        if (rc != CURLE_OK) {
            mg_log_warn("request %s: backend %s failed mid-answer: %s", p->request_id,
                        p->backend->name, p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc));
            drop_client(p);
            return;
        }
        if (p->sse) {
            mg_sse_flush(&p->split, p->inject ? on_event_filter : on_event_observe, p);
        } else if (p->json_answer && p->tail.len > 0) {
            note_usage(p, p->tail.data, p->tail.len);
        }
        /* account first: evhttp_send_reply_end() may complete and free the request at once */
        account(p, (int)p->status, p->backend);
        detach_client(p);
        evhttp_send_reply_end(p->req);
        release(p);
        return;
    }
    attempt_failed(p, rc);
}

static void
attempt_failed(struct preq *p, CURLcode rc)
{
    if (p->state == ST_BUFFER) {
        struct mg_buf t;
        char result[32];
        snprintf(result, sizeof(result), "http_%ld", p->status);
        mg_stats_attempt(p->w->stats, p->backend->name, result);
        mg_log_warn("request %s: backend %s answered %ld%s", p->request_id, p->backend->name,
                    p->status, p->attempt + 1 < p->nattempts ? ", trying the next" : "");
        t = p->last_hdrs;
        p->last_hdrs = p->hbuf;
        p->hbuf = t;
        t = p->last_body;
        p->last_body = p->fbody;
        p->fbody = t;
        p->have_last = 1;
        p->last_status = p->status;
        p->last_backend = p->backend;
        p->last_timeout = 0;
    } else {
        const char *why = p->timed_out ? "timeout" : p->errbuf[0] ? p->errbuf : curl_easy_strerror(rc);
        mg_log_warn("request %s: backend %s failed: %s", p->request_id, p->backend->name, why);
        mg_stats_attempt(p->w->stats, p->backend->name,
                         p->timed_out || rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "error");
        p->last_timeout = p->timed_out || rc == CURLE_OPERATION_TIMEDOUT;
        snprintf(p->last_error, sizeof(p->last_error), "%s: %s", p->backend->name, why);
        /* A backend answer seen earlier (have_last) stays: it says more than a bare 502. */
    }
    p->attempt++;
    start_next(p);
}

/* Appends "name: value" (or "name;" for an empty value, curl's way to send one) to l. */
static struct curl_slist *
add_header(struct curl_slist *l, struct mg_buf *line, const char *name, const char *value)
{
    struct curl_slist *t;

    mg_buf_reset(line);
    mg_buf_adds(line, name);
    if (value[0] != '\0') {
        mg_buf_add(line, ": ", 2);
        mg_buf_adds(line, value);
    } else {
        mg_buf_add(line, ";", 1);
    }
    t = curl_slist_append(l, line->data);
    return t != NULL ? t : l;
}

static struct curl_slist *
build_headers(struct preq *p, const struct mg_backend *b)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(p->req);
    struct curl_slist *l = NULL, *t;
    struct evkeyval *kv;
    struct mg_buf line;
    size_t i;

    mg_buf_init(&line, 128 * 1024);
    TAILQ_FOREACH(kv, in, next) {
        if (skip_request_header(kv->key)) {
            continue;
        }
        for (i = 0; i < b->nheaders; i++) {
            if (strcasecmp(b->headers[i].name, kv->key) == 0) {
                break;
            }
        }
        if (i < b->nheaders) {
            continue;   /* the backend's own value wins */
        }
        l = add_header(l, &line, kv->key, kv->value);
    }
    for (i = 0; i < b->nheaders; i++) {
        l = add_header(l, &line, b->headers[i].name, b->headers[i].value);
    }
    if (b->auth_header != NULL && (t = curl_slist_append(l, b->auth_header)) != NULL) {
        l = t;
    }
    if (!p->client_has_id) {
        l = add_header(l, &line, "x-request-id", p->request_id);
    }
    if (!p->client_has_ctype && (t = curl_slist_append(l, "Content-Type: application/json"))) {
        l = t;
    }
    if ((t = curl_slist_append(l, "Expect:")) != NULL) {
        l = t;
    }
    mg_buf_deinit(&line);
    return l;
}

/* Starts attempt p->attempt; on a local failure moves on to the next one. */
static int
start_attempt(struct preq *p)
{
    const struct mg_rule_backend *rb = &p->rule->backends[p->order[p->attempt]];
    const struct mg_backend *b = &p->conf->backends[rb->backend];
    const char *body = p->body;
    size_t body_len = p->body_len;
    CURL *e;

    p->backend = b;
    p->tried[p->ntried++] = b->name;
    p->state = ST_WAIT;
    p->status = 0;
    p->timed_out = 0;
    p->paused = 0;
    p->errbuf[0] = '\0';
    mg_buf_reset(&p->hbuf);
    mg_buf_reset(&p->fbody);

    if (rb->model != NULL || p->inject) {
        mg_buf_reset(&p->send_body);
        if (mg_json_rewrite(p->body, p->body_len, &p->jr, rb->model, p->inject, &p->send_body) !=
            MG_OK) {
            return MG_ERR;
        }
        body = p->send_body.data;
        body_len = p->send_body.len;
    }
    mg_buf_reset(&p->url);
    if (mg_buf_adds(&p->url, b->url) != MG_OK || mg_buf_adds(&p->url, p->rest) != MG_OK ||
        (p->query != NULL &&
         (mg_buf_add(&p->url, "?", 1) != MG_OK || mg_buf_adds(&p->url, p->query) != MG_OK))) {
        return MG_ERR;
    }
    curl_slist_free_all(p->hdrs);
    p->hdrs = build_headers(p, b);

    /* Every option that varies is set on every attempt; the constant ones stay on pooled handles
     * (no curl_easy_reset, which costs as much as setting them all again). */
    e = mg_upstream_easy_get(p->w->upstream);
    if (mg_upstream_easy_fresh(e)) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    }
    curl_easy_setopt(e, CURLOPT_URL, p->url.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, p->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, p);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)b->timeouts.connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)b->timeouts.total_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, p->errbuf);
    p->xfer.easy = e;
    p->xfer.done = on_done;
    p->xfer.arg = p;
    if (mg_upstream_start(p->w->upstream, &p->xfer) != MG_OK) {
        mg_upstream_easy_put(p->w->upstream, e);
        p->xfer.easy = NULL;
        return MG_ERR;
    }
    return MG_OK;
}

static void
start_next(struct preq *p)
{
    while (p->attempt < p->nattempts) {
        if (start_attempt(p) == MG_OK) {
            return;
        }
        snprintf(p->last_error, sizeof(p->last_error), "cannot start a transfer");
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
        p->client_has_id = 1;
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

void
mg_proxy_handle(struct mg_worker *w, struct evhttp_request *req, const char *rest,
                const char *query, int64_t t0)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evkeyvalq *hin = evhttp_request_get_input_headers(req);
    struct mg_conf *conf = w->conf;
    struct mg_json_req jr;
    char model[MODEL_MAX];
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    struct preq *p;
    int rc, rule;

    rc = mg_json_scan_request(body, len, model, sizeof(model), &jr);
    switch (rc) {
    case MG_JSON_OK:
        break;
    case MG_JSON_INVALID:
        mg_http_error(req, 400, "invalid_json", NULL, "The request body is not valid JSON");
        mg_http_account(w, req, 400, t0, NULL);
        return;
    case MG_JSON_NOT_OBJECT:
        mg_http_error(req, 400, "invalid_json", NULL, "The request body must be a JSON object");
        mg_http_account(w, req, 400, t0, NULL);
        return;
    case MG_JSON_MODEL_LONG:
        mg_http_error(req, 404, "model_not_found", "model",
                      "The model name is longer than this gateway serves");
        mg_http_account(w, req, 404, t0, NULL);
        return;
    default:
        mg_http_error(req, 400, "missing_model", "model",
                      "The request body needs a string \"model\" field");
        mg_http_account(w, req, 400, t0, NULL);
        return;
    }
    rule = mg_router_match(conf, model, jr.model_len, header_lookup, hin);
    if (rule < 0) {
        mg_http_error(req, 404, "model_not_found", "model",
                      "The model '%s' is not served by this gateway", model);
        mg_http_account(w, req, 404, t0, model);
        return;
    }

    p = mg_calloc(1, sizeof(*p));
    p->w = w;
    p->req = req;
    p->evcon = evhttp_request_get_connection(req);
    p->conf = mg_conf_ref(conf);
    p->rule = &conf->rules[rule];
    p->rule_index = rule;
    p->t0 = t0;
    p->path = mg_strdup(rest - 3);
    p->rest = p->path + 3;
    /* Usage of a stream is only reported when asked for: ask for it, and hide it again later. */
    p->inject = jr.stream && !jr.include_usage &&
                (strcmp(p->rest, "/chat/completions") == 0 || strcmp(p->rest, "/completions") == 0);
    p->query = query ? mg_strdup(query) : NULL;
    p->body = body;
    p->body_len = len;
    p->jr = jr;
    memcpy(p->model, model, jr.model_len + 1);
    p->jr.model = p->model;
    p->client_has_ctype = evhttp_find_header(hin, "content-type") != NULL;
    set_request_id(p, hin);
    mg_buf_init(&p->url, 64 * 1024);
    mg_buf_init(&p->send_body, (size_t)conf->max_body_size + 64 * 1024);
    mg_buf_init(&p->hbuf, RESP_HDR_MAX);
    mg_buf_init(&p->fbody, FAIL_BODY_MAX);
    mg_buf_init(&p->last_hdrs, RESP_HDR_MAX);
    mg_buf_init(&p->last_body, FAIL_BODY_MAX);
    mg_buf_init(&p->scratch, MG_SSE_EVENT_MAX + 64);
    mg_buf_init(&p->tail, 2 * TAIL_KEEP);
    mg_sse_init(&p->split);
    evtimer_assign(&p->timer, w->base, on_timer, p);
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
