/*
 * mg_reply — answers the gateway makes itself, and how every request is accounted and ends.
 *
 * libevent 2.1 answers some requests itself before any callback runs (a body over the limit, a
 * malformed request line or header) with an HTML page from evhttp_send_error(). It has no hook
 * for that, but its calls go through the PLT, so the definition of evhttp_send_error() below
 * replaces libevent's for the whole process: every error a client sees is OpenAI-shaped JSON.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/http_struct.h>

#include "mg_access.h"
#include "mg_auth.h"
#include "mg_json.h"
#include "mg_limit.h"
#include "mg_reply.h"
#include "mg_stats.h"
#include "mg_util.h"
#include "mg_worker.h"

void
mg_reply_body(struct evhttp_request *req, int status, const char *ctype, const char *body,
              size_t len)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        abort();
    }
    evhttp_add_header(out, "Content-Type", ctype);
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* headers only, with the length a GET would get (libevent 2.1 would send the body) */
        char n[24];
        snprintf(n, sizeof(n), "%zu", len);
        evhttp_add_header(out, "Content-Length", n);
    } else {
        evbuffer_add(buf, body, len);
    }
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

/* ---- lingering close ---------------------------------------------------------------------- */

#define LINGER_MS    1000
#define LINGER_BYTES (1024 * 1024)

struct lingering_fd {
    struct event   ev;
    int            fd;
    size_t         got;
    int64_t        until;
    struct lingering_fd *next;
};

static __thread struct lingering_fd *lingering;   /* this thread's, to close at its end */

static void
linger_end(struct lingering_fd *l)
{
    struct lingering_fd **at = &lingering;

    while (*at != l) {
        at = &(*at)->next;
    }
    *at = l->next;
    event_del(&l->ev);
    close(l->fd);
    free(l);
}

static void
linger_read(evutil_socket_t fd, short what, void *arg)
{
    struct lingering_fd *l = arg;
    char scratch[16384];
    ssize_t n = 1;

    while (!(what & EV_TIMEOUT) && l->got < LINGER_BYTES &&
           (n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT)) > 0) {
        l->got += (size_t)n;
    }
    if ((what & EV_TIMEOUT) || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
        l->got >= LINGER_BYTES || mg_now_ms() >= l->until) {
        linger_end(l);
    }
}

void
mg_reply_linger(struct event_base *base, int fd, const char *bytes, size_t len)
{
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
    struct lingering_fd *l;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);

    if (d < 0) {
        return;   /* out of descriptors: the owner's close is all there is */
    }
    if (bytes != NULL) {
        if (send(d, bytes, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            close(d);
            return;
        }
        shutdown(d, SHUT_WR);
    }
    l = mg_calloc(1, sizeof(*l));
    l->fd = d;
    l->until = mg_now_ms() + LINGER_MS;
    l->next = lingering;
    lingering = l;
    event_assign(&l->ev, base, d, EV_READ | EV_PERSIST, linger_read, l);
    event_add(&l->ev, &tv);
}

void
mg_reply_linger_stop(void)
{
    while (lingering != NULL) {
        linger_end(lingering);
    }
}

void
mg_reply_json(struct evhttp_request *req, int status, const char *json, size_t len)
{
    mg_reply_body(req, status, "application/json", json, len);
}

static const char *
error_type(int status)
{
    if (status == 401) {
        return "authentication_error";
    }
    if (status == 429) {
        return "rate_limit_error";
    }
    return status >= 500 ? "server_error" : "invalid_request_error";
}

/* Anthropic's error type for a status, on /v1/messages* (Anthropic-native clients). */
static const char *
anthropic_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* 1 when req is on /v1/messages or below: its errors take Anthropic's shape. */
static int
anthropic_path(struct evhttp_request *req)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

    return path != NULL && strncmp(path, "/v1/messages", 12) == 0 &&
           (path[12] == '\0' || path[12] == '/');
}

void
mg_reply_error_body(struct mg_buf *out, struct evhttp_request *req, int status, const char *code,
                    const char *param, const char *msg)
{
    if (anthropic_path(req)) {
        mg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                      anthropic_error_type(status));
        mg_json_quote(out, msg, strlen(msg));
        mg_buf_adds(out, "}}\n");
        return;
    }
    mg_buf_adds(out, "{\"error\":{\"message\":");
    mg_json_quote(out, msg, strlen(msg));
    mg_buf_printf(out, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (param != NULL) {
        mg_json_quote(out, param, strlen(param));
    } else {
        mg_buf_adds(out, "null");
    }
    mg_buf_adds(out, ",\"code\":");
    mg_json_quote(out, code, strlen(code));
    mg_buf_adds(out, "}}\n");
}

static void
send_error(struct evhttp_request *req, int status, const char *code, const char *param,
           const char *msg)
{
    struct mg_buf out;

    mg_buf_init(&out, 4096);
    mg_reply_error_body(&out, req, status, code, param, msg);
    mg_reply_json(req, status, out.data, out.len);
    mg_buf_deinit(&out);
}

void
mg_reply_error(struct evhttp_request *req, int status, const char *code, const char *param,
               const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    send_error(req, status, code, param, msg);
}

void
mg_refusal_set(struct mg_refusal *r, int status, const char *code, const char *param,
               const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->code = code;
    r->param = param;
    r->nheaders = 0;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
}

void
mg_refusal_header(struct mg_refusal *r, const char *name, const char *value)
{
    if (r->nheaders < MG_REFUSAL_HEADERS) {
        r->headers[r->nheaders].name = name;
        snprintf(r->headers[r->nheaders].value, sizeof(r->headers[0].value), "%s", value);
        r->nheaders++;
    }
}

void
mg_reply_refuse(struct evhttp_request *req, const struct mg_refusal *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    size_t i;

    for (i = 0; i < r->nheaders; i++) {
        evhttp_add_header(out, r->headers[i].name, r->headers[i].value);
    }
    send_error(req, r->status, r->code, r->param, r->message);
}

/* Replaces libevent's HTML error page (see the comment at the top of this file). */
void
evhttp_send_error(struct evhttp_request *req, int error, const char *reason)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (req->response_code_line != NULL && evcon != NULL) {
        /* libevent failed a request whose reply had already started: there is nothing sane
         * left to send; end the connection (its close callback lets the owner clean up). */
        evhttp_connection_free(evcon);
        return;
    }
    /* A request line libevent could not parse has no version: answer as HTTP/1.1. */
    if (req->major == 0 && req->minor == 0) {
        req->major = 1;
        req->minor = 1;
    }
    evhttp_clear_headers(h);
    evhttp_add_header(h, "Connection", "close");
    if (error == 413 && evcon != NULL) {
        /* the client may still be sending its body: keep reading it for a while after the
         * connection is closed here, so that it reads the 413 rather than a reset */
        mg_reply_linger(evhttp_connection_get_base(evcon),
                        bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)), NULL, 0);
    }
    switch (error) {
    case 413:
        send_error(req, 413, "request_too_large", NULL,
                   "The request is larger than this gateway accepts");
        break;
    case 404:
        send_error(req, 404, "unknown_url", NULL, "Unknown URL");
        break;
    case 405:
        send_error(req, 405, "method_not_allowed", NULL, "Method not allowed");
        break;
    case 400:
        send_error(req, 400, "bad_request", NULL,
                   "The HTTP request is malformed or its headers are too large");
        break;
    default:
        send_error(req, error, "http_error", NULL, reason ? reason : "HTTP error");
    }
}

void
mg_reply_key_headers(struct evhttp_request *req, const struct mg_key *key)
{
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    struct evkeyvalq *out;
    size_t i, n;

    if (!mg_auth_limited(key)) {
        return;
    }
    out = evhttp_request_get_output_headers(req);
    n = mg_auth_headers(key, mg_now_ms(), h);
    for (i = 0; i < n; i++) {
        evhttp_add_header(out, h[i].name, h[i].value);
    }
}

/* ---- the in-flight watch ------------------------------------------------------------------ */

/* The reply's last byte went out: only now may a stopping worker exit. */
static void
request_sent(struct evhttp_request *req, void *arg)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);   /* the watch below is over */
    }
    mg_worker_request_done(arg);
}

/* The connection died before its reply was all sent: evhttp will not report it sent. */
static void
closed_before_sent(struct evhttp_connection *evcon, void *arg)
{
    mg_worker_request_done(arg);
}

void
mg_reply_watch_until_sent(struct mg_worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, closed_before_sent, w);
    }
}

void
mg_reply_track(struct mg_worker *w, struct evhttp_request *req)
{
    mg_worker_request_begin(w);
    /* exactly one of these two ends the count: the reply sent, or the connection gone first */
    evhttp_request_set_on_complete_cb(req, request_sent, w);
    mg_reply_watch_until_sent(w, req);
}

void
mg_reply_drop(struct mg_worker *w, struct evhttp_connection *evcon)
{
    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);   /* counted here, not there */
        evhttp_connection_free(evcon);   /* frees its request as well */
    }
    mg_worker_request_done(w);
}

void
mg_reply_closed(struct mg_worker *w, struct evhttp_request *req)
{
    /* A request evhttp detached from the dying connection is ours to free. */
    if (evhttp_request_get_connection(req) == NULL) {
        evhttp_request_free(req);
    }
    mg_worker_request_done(w);
}

/* ---- accounting --------------------------------------------------------------------------- */

const char *
mg_reply_client(struct evhttp_request *req, char *buf, size_t len)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;

    buf[0] = '\0';
    if (evcon != NULL) {
        evhttp_connection_get_peer(evcon, &addr, &port);
        addr = addr ? addr : "";
        if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, ':') == NULL) {
            addr += 7;   /* an IPv4 client of a dual-stack listener */
        }
        snprintf(buf, len, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, (unsigned)port);
    }
    return buf;
}

const char *
mg_reply_method(struct evhttp_request *req)
{
    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

void
mg_reply_account(struct mg_worker *w, struct evhttp_request *req, struct mg_access_rec *r,
                 const char *backend, int counted)
{
    char client[128];

    if (counted) {
        mg_stats_request(w->stats, r->model ? r->model : "", backend ? backend : "",
                         r->error != NULL ? MG_STATS_STREAM_ERROR : r->status, r->duration_us,
                         r->ttfb_us);
    }
    if (backend != NULL && (r->input_tokens >= 0 || r->output_tokens >= 0)) {
        mg_stats_tokens(w->stats, r->model, backend, r->input_tokens, r->output_tokens);
    }
    if (r->key != NULL) {
        mg_stats_key(w->stats, r->key, r->status, backend ? r->input_tokens : -1,
                     backend ? r->output_tokens : -1);
    }
    if (!mg_access_enabled()) {
        return;
    }
    if (req != NULL) {
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        if (r->client == NULL) {
            r->client = mg_reply_client(req, client, sizeof(client));
        }
        if (r->method == NULL) {
            r->method = mg_reply_method(req);
        }
        if (r->path == NULL && uri != NULL) {
            r->path = evhttp_uri_get_path(uri);
        }
    }
    mg_access_log(w->access, r);
}

void
mg_reply_account_local(struct mg_worker *w, struct evhttp_request *req, int status,
                       int64_t t0_us, const char *model, const char *key)
{
    struct mg_access_rec r;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    memset(&r, 0, sizeof(r));
    r.request_id = evhttp_find_header(evhttp_request_get_input_headers(req), "x-request-id");
    r.model = model;
    r.key = key;
    r.rule = -1;
    r.status = status;
    r.bytes_in = (int64_t)evbuffer_get_length(evhttp_request_get_input_buffer(req));
    r.bytes_out = -1;
    r.duration_us = mg_now_us() - t0_us;
    r.ttfb_us = -1;
    r.input_tokens = -1;
    r.output_tokens = -1;
    mg_stats_overhead(w->stats, r.duration_us);   /* no backend: all of it is the gateway's */
    /* the metrics count only what was meant for a backend; models are counted as "" as before */
    mg_reply_account(w, req, &r, NULL, 0);
    if (path != NULL && strncmp(path, "/v1/", 4) == 0 && strncmp(path, "/v1/models", 10) != 0) {
        mg_stats_request(w->stats, "", "", status, r.duration_us, -1);
    }
}
