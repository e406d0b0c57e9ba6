/*
 * mg_http — evhttp glue and dispatch: which handler a path goes to, the method it allows, and
 * the admission step before it. Every request ends in exactly one reply made by the handler or
 * by mg_reply, and is tracked in flight from here until that reply is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "mg_access.h"
#include "mg_admin.h"
#include "mg_admit.h"
#include "mg_auth.h"
#include "mg_conf.h"
#include "mg_http.h"
#include "mg_log.h"
#include "mg_models.h"
#include "mg_proxy.h"
#include "mg_reply.h"
#include "mg_worker.h"

#define MAX_HEADERS_SIZE (64 * 1024)
#define CLIENT_TIMEOUT_S 60

static void
handle_admin(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    path = path && path[0] ? path : "/";
    if (!mg_admin_path(path)) {
        mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
        return;
    }
    mg_admin_handle(req, path);
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

/* 1 when req's method is one of allow_mask; else refuses it with 405 naming allow. */
static int
method_ok(struct evhttp_request *req, int allow_mask, const char *allow, struct mg_refusal *ref)
{
    if ((int)evhttp_request_get_command(req) & allow_mask) {
        return 1;
    }
    mg_refusal_set(ref, 405, "method_not_allowed", NULL,
                   "Method %s is not allowed on this path (allowed: %s)", mg_reply_method(req),
                   allow);
    mg_refusal_header(ref, "Allow", allow);
    return 0;
}

/* GET /v1/models and /v1/models/{id}. Returns the status sent. */
static int
models(struct mg_worker *w, struct evhttp_request *req, const char *path,
       struct mg_admitted *a, struct mg_refusal *ref)
{
    const char *id = path + strlen("/v1/models");
    char *decoded;
    int status;

    if (!method_ok(req, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", ref) ||
        mg_admit_caller(w->conf, req, path, NULL, a, ref) != 0) {
        mg_reply_refuse(req, ref);
        return ref->status;
    }
    if (id[0] == '\0') {
        return mg_models_handle(w->conf, a->key, req, NULL);
    }
    decoded = evhttp_uridecode(id + 1, 0, NULL);
    status = mg_models_handle(w->conf, a->key, req, decoded ? decoded : "");
    free(decoded);
    return status;
}

static void
handle(struct evhttp_request *req, void *arg)
{
    struct mg_worker *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct mg_admitted a;
    struct mg_refusal ref;
    int64_t t0 = mg_now_us();
    int status;

    path = path && path[0] ? path : "/";
    mg_reply_track(w, req);
    if (w->conf->overhead_header) {
        /* an answer made here: all its time is the gateway's (the proxy sets its own) */
        char v[24];
        snprintf(v, sizeof(v), "%lld", (long long)(mg_now_us() - t0));
        evhttp_add_header(evhttp_request_get_output_headers(req), "x-modelgate-overhead-us", v);
    }
    a.model[0] = '\0';
    a.key = NULL;
    if (!w->admin_separate && mg_admin_path(path)) {
        status = mg_admin_handle(req, path);
    } else if (strcmp(path, "/v1/models") == 0 || strncmp(path, "/v1/models/", 11) == 0) {
        status = models(w, req, path, &a, &ref);
    } else if (strncmp(path, "/v1/", 4) == 0 && path[4] != '\0' && !has_dot_segment(path)) {
        if (method_ok(req, EVHTTP_REQ_POST, "POST", &ref) &&
            mg_admit_route(w->conf, req, path, evhttp_uri_get_query(uri), &a, &ref) == 0) {
            mg_proxy_handle(w, req, &a, t0);   /* accounts for itself */
            return;
        }
        mg_reply_refuse(req, &ref);
        status = ref.status;
    } else {
        mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
        status = 404;
    }
    mg_reply_account_local(w, req, status, t0, a.model[0] ? a.model : NULL,
                           a.key != NULL ? a.key->name : NULL);
}

void
mg_http_apply_conf(struct mg_worker *w)
{
    struct timeval tv = {(time_t)(w->conf->keepalive_timeout_ms / 1000),
                         (suseconds_t)(w->conf->keepalive_timeout_ms % 1000 * 1000)};

    evhttp_set_max_body_size(w->http, (ev_ssize_t)w->conf->max_body_size);
    evhttp_set_timeout_tv(w->http, &tv);   /* idle keep-alive, and any read or write stall */
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
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "application/json");
    /* No EVHTTP_SERVER_LINGERING_CLOSE: it reads a whole oversized body before answering.
     * The 413 goes out at once and mg_reply_linger() reads for a while after the close. */
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
