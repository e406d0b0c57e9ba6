/*
 * mg_http — evhttp glue: per-worker limits, paths to handlers, JSON errors.
 *
 * libevent 2.1 answers some requests itself before any callback runs (a body over the limit, a
 * malformed request line or header) with an HTML page from evhttp_send_error(). It has no hook
 * for that, but its calls go through the PLT, so the definition of evhttp_send_error() below
 * replaces libevent's for the whole process: every error a client sees is OpenAI-shaped JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

#include "mg_access.h"
#include "mg_http.h"
#include "mg_json.h"
#include "mg_log.h"
#include "mg_models.h"
#include "mg_proxy.h"
#include "mg_server.h"
#include "mg_stats.h"

#define MAX_HEADERS_SIZE (64 * 1024)
#define CLIENT_TIMEOUT_S 60

void
mg_http_json(struct evhttp_request *req, int status, const char *json, size_t len)
{
    struct evbuffer *buf = evbuffer_new();

    if (buf == NULL) {
        abort();
    }
    evbuffer_add(buf, json, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
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

void
mg_http_error(struct evhttp_request *req, int status, const char *code, const char *param,
              const char *fmt, ...)
{
    char msg[512];
    struct mg_buf out;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mg_buf_init(&out, 4096);
    mg_buf_adds(&out, "{\"error\":{\"message\":");
    mg_json_quote(&out, msg, strlen(msg));
    mg_buf_printf(&out, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (param != NULL) {
        mg_json_quote(&out, param, strlen(param));
    } else {
        mg_buf_adds(&out, "null");
    }
    mg_buf_adds(&out, ",\"code\":");
    mg_json_quote(&out, code, strlen(code));
    mg_buf_adds(&out, "}}\n");
    mg_http_json(req, status, out.data, out.len);
    mg_buf_deinit(&out);
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
    switch (error) {
    case 413:
        mg_http_error(req, 413, "request_too_large", NULL,
                      "The request is larger than this gateway accepts");
        break;
    case 404:
        mg_http_error(req, 404, "unknown_url", NULL, "Unknown URL");
        break;
    case 405:
        mg_http_error(req, 405, "method_not_allowed", NULL, "Method not allowed");
        break;
    case 400:
        mg_http_error(req, 400, "bad_request", NULL,
                      "The HTTP request is malformed or its headers are too large");
        break;
    default:
        mg_http_error(req, error, "http_error", NULL, "%s", reason ? reason : "HTTP error");
    }
}

static const char *method_name(enum evhttp_cmd_type cmd);

static void
not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    mg_http_error(req, 405, "method_not_allowed", NULL,
                  "Method %s is not allowed on this path (allowed: %s)",
                  method_name(evhttp_request_get_command(req)), allow);
}

const char *
mg_http_client(struct evhttp_request *req, char *buf, size_t len)
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

static const char *
method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
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
mg_http_account(struct mg_worker *w, struct evhttp_request *req, int status, int64_t t0_us,
                const char *model)
{
    struct mg_access_rec r;
    char client[128];
    int64_t dur = mg_now_us() - t0_us;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);

    if (uri != NULL && strncmp(evhttp_uri_get_path(uri), "/v1/", 4) == 0 &&
        strncmp(evhttp_uri_get_path(uri), "/v1/models", 10) != 0) {
        mg_stats_request(w->stats, "", "", status, dur, -1);
    }
    if (!mg_access_enabled()) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.request_id = evhttp_find_header(evhttp_request_get_input_headers(req), "x-request-id");
    r.client = mg_http_client(req, client, sizeof(client));
    r.method = method_name(evhttp_request_get_command(req));
    r.path = uri ? evhttp_uri_get_path(uri) : NULL;
    r.model = model;
    r.rule = -1;
    r.status = status;
    r.bytes_in = (int64_t)evbuffer_get_length(evhttp_request_get_input_buffer(req));
    r.bytes_out = -1;
    r.duration_us = dur;
    r.ttfb_us = -1;
    r.input_tokens = -1;
    r.output_tokens = -1;
    mg_access_log(w->access, &r);
}

static void
metrics(struct evhttp_request *req)
{
    struct mg_buf out;
    struct evbuffer *buf = evbuffer_new();

    mg_buf_init(&out, 64u * 1024 * 1024);
    mg_stats_render(&out);
    evbuffer_add(buf, out.data, out.len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, NULL, buf);
    evbuffer_free(buf);
    mg_buf_deinit(&out);
}

/* /healthz and /metrics: answered here when path is one of them; returns the status then, else 0. */
static int
admin_path(struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int health = strcmp(path, "/healthz") == 0;

    if (!health && strcmp(path, "/metrics") != 0) {
        return 0;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        not_allowed(req, "GET, HEAD");
        return 405;
    }
    if (health) {
        mg_http_json(req, 200, "{\"status\":\"ok\"}\n", 16);
    } else {
        metrics(req);
    }
    return 200;
}

static void
handle_admin(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    if (admin_path(req, path ? path : "/") == 0) {
        mg_http_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path ? path : "/");
    }
}

struct evhttp *
mg_http_admin_start(struct event_base *base, const char *host, int port, char *err, size_t errlen)
{
    struct evhttp *http = evhttp_new(base);

    if (http == NULL) {
        snprintf(err, errlen, "evhttp_new failed");
        return NULL;
    }
    evhttp_set_max_headers_size(http, MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(http, 64 * 1024);
    evhttp_set_timeout(http, CLIENT_TIMEOUT_S);
    evhttp_set_gencb(http, handle_admin, NULL);
    if (evhttp_bind_socket(http, host[0] ? host : "0.0.0.0", (ev_uint16_t)port) != 0) {
        snprintf(err, errlen, "cannot listen on admin address %s:%d", host, port);
        evhttp_free(http);
        return NULL;
    }
    return http;
}

/*
 * 1 when path has a "." or ".." segment, plain or percent-encoded. Such a path is never proxied:
 * curl would resolve it, and "/v1/../admin" would leave the backend's base URL with the backend's
 * key attached.
 */
static int
has_dot_segment(const char *path)
{
    const char *p = path;

    while ((p = strchr(p, '/')) != NULL) {
        const char *seg = ++p;
        int dots = 0;
        while (*p != '\0' && *p != '/') {
            if (*p == '.') {
                p++;
            } else if (p[0] == '%' && p[1] == '2' && (p[2] == 'e' || p[2] == 'E')) {
                p += 3;
            } else {
                break;
            }
            dots++;
        }
        if (p > seg && (*p == '\0' || *p == '/') && dots <= 2) {
            return 1;
        }
    }
    return 0;
}

/* The reply's last byte went out: only now may a stopping worker exit. */
static void
request_sent(struct evhttp_request *req, void *arg)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, NULL, NULL);   /* the watch below is over */
    }
    mg_server_request_done(arg);
}

/* The connection died before its reply was all sent: evhttp will not report it sent. */
static void
closed_before_sent(struct evhttp_connection *evcon, void *arg)
{
    mg_server_request_done(arg);
}

void
mg_http_watch_until_sent(struct mg_worker *w, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (evcon != NULL) {
        evhttp_connection_set_closecb(evcon, closed_before_sent, w);
    }
}

static void
handle(struct evhttp_request *req, void *arg)
{
    struct mg_worker *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD, status;
    int64_t t0 = mg_now_us();

    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    w->inflight++;
    mg_stats_inflight(w->stats, w->inflight);
    /* exactly one of these two ends the count: the reply sent, or the connection gone first */
    evhttp_request_set_on_complete_cb(req, request_sent, w);
    mg_http_watch_until_sent(w, req);
    if (!w->admin_separate && (status = admin_path(req, path)) != 0) {
        mg_http_account(w, req, status, t0, NULL);
        return;
    }
    if (strcmp(path, "/v1/models") == 0 || strncmp(path, "/v1/models/", 11) == 0) {
        if (!get) {
            not_allowed(req, "GET, HEAD");
            mg_http_account(w, req, 405, t0, NULL);
            return;
        }
        if (path[10] == '\0') {
            status = mg_models_handle(w->conf, req, NULL);
        } else {
            char *id = evhttp_uridecode(path + 11, 0, NULL);
            status = mg_models_handle(w->conf, req, id ? id : "");
            free(id);
        }
        mg_http_account(w, req, status, t0, NULL);
        return;
    }
    if (strncmp(path, "/v1/", 4) == 0 && path[4] != '\0' && !has_dot_segment(path)) {
        if (cmd != EVHTTP_REQ_POST) {
            not_allowed(req, "POST");
            mg_http_account(w, req, 405, t0, NULL);
            return;
        }
        mg_proxy_handle(w, req, path + 3, evhttp_uri_get_query(uri), t0);
        return;
    }
    mg_http_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
    mg_http_account(w, req, 404, t0, NULL);
}

void
mg_http_apply_conf(struct mg_worker *w)
{
    evhttp_set_max_body_size(w->http, (ev_ssize_t)w->conf->max_body_size);
}

int
mg_http_start(struct mg_worker *w)
{
    w->http = evhttp_new(w->base);
    if (w->http == NULL) {
        mg_log_error("evhttp_new failed");
        return MG_ERR;
    }
    evhttp_set_max_headers_size(w->http, MAX_HEADERS_SIZE);
    evhttp_set_timeout(w->http, CLIENT_TIMEOUT_S);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "application/json");
    /* Read the rest of an over-long body before answering 413, so the client sees the answer. */
    evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(w->http, handle, w);
    mg_http_apply_conf(w);
    w->bound = evhttp_accept_socket_with_handle(w->http, w->listen_fd);
    if (w->bound == NULL) {
        mg_log_error("cannot accept on the listening socket");
        return MG_ERR;
    }
    return MG_OK;
}

void
mg_http_stop_accepting(struct mg_worker *w)
{
    if (w->bound != NULL) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
        w->listen_fd = -1;
    }
}
