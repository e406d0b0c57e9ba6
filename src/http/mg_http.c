/*
 * mg_http — the front end's dispatch: which handler a path goes to and the method it allows,
 * decided on the head (with the client's key, before any body byte is read), then the admission
 * of the body and the handler. Every request ends in exactly one answer, made by the handler or
 * by mg_reply, and counts in flight from its head until that answer is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_access.h"
#include "mg_admin.h"
#include "mg_admit.h"
#include "mg_api.h"
#include "mg_auth.h"
#include "mg_conf_types.h"
#include "mg_cors.h"
#include "mg_conn.h"
#include "mg_front.h"
#include "mg_http.h"
#include "mg_http_int.h"
#include "mg_log.h"
#include "mg_models.h"
#include "mg_proxy.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_resp_store.h"
#include "mg_stored.h"
#include "mg_worker.h"


#define ADMIN_BODY_MAX (64 * 1024)

/* ---- the worker's listener ---------------------------------------------------------------- */

static void
on_begin(void *owner, struct mg_req *req)
{
    struct mg_worker *w = owner;

    mg_worker_request_begin(w);
    req->overhead_us = w->conf->overhead_header ? -1 : -2;
}

static void
on_done(void *owner, struct mg_req *req)
{
    mg_worker_request_done(owner);
}

/* The answer to a request refused here; the request is accounted as the gateway's own. */
static int
mg_http_refused(struct mg_worker *w, struct mg_req *req, const struct mg_refusal *ref,
                const char *model)
{
    const char *key = req->key != NULL ? req->key->name : NULL;

    mg_reply_refuse(req, ref);   /* req stays readable: the connection ends after we return */
    mg_reply_account_local(w, req, ref->status, req->t0_us, model, key);
    return 1;
}

static void
on_refuse(void *owner, struct mg_req *req, int status, const char *code, const char *message)
{
    struct mg_refusal ref;

    if (req->api == NULL) {   /* refused before its head was dispatched: its path says */
        req->api = mg_api_route(req->path);
    }
    mg_refusal_set(&ref, status, code, NULL, "%s", message);
    mg_http_refused(owner, req, &ref, NULL);
}

/* 1 when req's method is one of allow_mask; else ref is a 405 naming allow. */
static int
method_ok(const struct mg_req *req, int allow_mask, const char *allow, struct mg_refusal *ref)
{
    if (req->method & allow_mask) {
        return 1;
    }
    mg_refusal_set(ref, 405, "method_not_allowed", NULL,
                   "Method %s is not allowed on this path (allowed: %s)", mg_req_method(req),
                   allow);
    mg_refusal_header(ref, "Allow", allow);
    return 0;
}

/* The head: route, method, path rules and the client's key. 0 to read the body. */
static int
on_head(void *owner, struct mg_req *req)
{
    struct mg_worker *w = owner;
    const char *path = req->path;
    struct mg_refusal ref;
    char id[MG_RESP_STORE_NAME_MAX + 1];
    int stored, items = 0;

    req->api = mg_api_route(path);   /* what the client speaks, chosen once: its errors too */
    if (!w->admin_separate && mg_admin_path(path)) {
        req->route = ROUTE_ADMIN;   /* admin endpoints never answer CORS */
        return 0;
    }
    /* a browser's preflight is the gateway's to answer, before any key check, never forwarded;
     * any other request from a listed origin gets the CORS headers on its answer */
    if (mg_cors_head(&w->conf->cors, req) != 0) {
        mg_reply_account_local(w, req, 204, req->t0_us, NULL, NULL);
        return 1;
    }
    if (strcmp(path, "/v1/models") == 0 || strncmp(path, "/v1/models/", 11) == 0) {
        req->route = ROUTE_MODELS;
        if (mg_headers_get(&req->headers, "anthropic-version") != NULL) {
            req->api = &mg_api_messages_other;   /* an Anthropic SDK: its errors' shape */
        }
        if (!method_ok(req, MG_METHOD_GET | MG_METHOD_HEAD, "GET, HEAD", &ref) ||
            mg_admit_key(w->conf, req, &ref) != 0) {
            return mg_http_refused(w, req, &ref, NULL);
        }
        return 0;
    }
    stored = strncmp(path, "/v1/responses/", 14) == 0 && strchr(path + 14, '/') == NULL;
    items = !stored && (req->method & (MG_METHOD_GET | MG_METHOD_HEAD)) &&
            mg_stored_id(path, id, sizeof(id), &items) && items;
    if ((stored && (req->method & (MG_METHOD_GET | MG_METHOD_HEAD | MG_METHOD_DELETE))) ||
        items) {
        /* not routed: the gateway's store answers (HEAD as GET, headers only) */
        req->route = ROUTE_STORED;
        if (mg_admit_key(w->conf, req, &ref) != 0) {
            return mg_http_refused(w, req, &ref, NULL);
        }
        return 0;
    }
    if (strncmp(path, "/v1/", 4) != 0 || path[4] == '\0') {
        mg_refusal_set(&ref, 404, "unknown_url", NULL, "Unknown URL: %s", path);
        return mg_http_refused(w, req, &ref, NULL);
    }
    req->route = ROUTE_PROXY;
    if (!mg_front_forward_path_ok(path)) {
        mg_refusal_set(&ref, 400, "bad_request", NULL, "The path holds an encoded slash, "
                       "backslash or NUL, or a dot segment; such a path is never forwarded");
        return mg_http_refused(w, req, &ref, NULL);
    }
    /* a stored Response's path takes GET, HEAD and DELETE too (above): its Allow says so */
    if (!method_ok(req, MG_METHOD_POST, stored ? "GET, HEAD, POST, DELETE" : "POST", &ref) ||
        mg_admit_key(w->conf, req, &ref) != 0) {
        return mg_http_refused(w, req, &ref, NULL);
    }
    return 0;
}

/*
 * Decodes a percent-encoded model id into out (NUL-terminated). 0, or -1 when it is malformed,
 * holds a NUL (%00: "gpt-4o%00x" is not "gpt-4o") or does not fit.
 */
static int
decode_id(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    int hi, lo;

    for (; *in != '\0'; in++) {
        char ch = *in;
        if (ch == '%') {
            hi = mg_hexval(in[1]);
            lo = hi < 0 ? -1 : mg_hexval(in[2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            ch = (char)(hi * 16 + lo);
            in += 2;
        }
        if (n + 1 >= outlen) {
            return -1;
        }
        out[n++] = ch;
    }
    out[n] = '\0';
    return 0;
}

/* GET /v1/models and /v1/models/{id}. Returns the status sent. */
static int
models(struct mg_worker *w, struct mg_req *req)
{
    const char *id = req->path + strlen("/v1/models");
    char decoded[MG_MODEL_MAX];

    int anthropic = mg_headers_get(&req->headers, "anthropic-version") != NULL;

    if (id[0] == '\0') {
        return anthropic ? mg_models_handle_anthropic(w->conf, req->key, req, NULL)
                         : mg_models_handle(w->conf, req->key, req, NULL);
    }
    if (decode_id(id + 1, decoded, sizeof(decoded)) != 0) {
        mg_reply_error(req, 404, "model_not_found", "model", "The model does not exist");
        return 404;
    }
    return anthropic ? mg_models_handle_anthropic(w->conf, req->key, req, decoded)
                     : mg_models_handle(w->conf, req->key, req, decoded);
}

/* GET/DELETE of a native Response: passed to the backend that made it, with no body. */
static void
pass_stored(struct mg_worker *w, struct mg_req *req, size_t backend)
{
    struct mg_admitted a;

    memset(&a, 0, sizeof(a));
    a.path = req->path;
    a.upath = req->path + strlen("/v1");
    a.query = req->query;
    a.api = &mg_api_responses_read;
    a.key = req->key;
    a.rule = -1;
    a.body = "";
    a.jr.model = a.model;
    mg_proxy_pass(w, req, &a, backend, req->method == MG_METHOD_DELETE ? "DELETE" : "GET");
}

static void mg_http_dispatch(struct mg_worker *w, struct mg_req *req);

/* What the steps that wait on Redis go on with (mg_http_shared.c). */
static const struct mg_http_next after_shared = {
    .refused = mg_http_refused,
    .dispatch = mg_http_dispatch,
};

static void
mg_http_dispatch(struct mg_worker *w, struct mg_req *req)
{
    struct mg_admitted a;
    struct mg_refusal ref;
    int status;

    switch (req->route) {
    case ROUTE_ADMIN:
        status = mg_admin_handle(req, req->path, w->rt);
        break;
    case ROUTE_MODELS:
        status = models(w, req);
        break;
    case ROUTE_STORED: {
        char id[MG_RESP_STORE_NAME_MAX + 1];
        const char *key = req->key != NULL ? req->key->name : "";
        size_t b;
        int items = 0;
        mg_stored_id(req->path, id, sizeof(id), &items);
        if (mg_stored_native(w->responses, w->conf, key, id, &b)) {
            pass_stored(w, req, b);   /* accounts for itself; its path says what is read */
            return;
        }
        status = items ? mg_stored_items(w->responses, key, req, id)
                       : mg_stored_handle(w->responses, key, req, id);
        break;
    }
    default:
        if (w->conf->shared.on && req->key != NULL &&
            (mg_auth_limited(req->key) || req->key->budget != NULL)) {
            mg_http_shared_admit(w, req, &after_shared);   /* Redis decides: later, or now */
            return;
        }
        if (mg_admit_route(w->conf, req, &a, &ref) == 0) {
            mg_proxy_handle(w, req, &a);   /* accounts for itself */
            return;
        }
        mg_http_refused(w, req, &ref, a.model[0] ? a.model : NULL);
        return;
    }
    /* req is still readable: its connection goes on (or closes) once this returns */
    mg_reply_account_local(w, req, status, req->t0_us, NULL,
                           req->key != NULL ? req->key->name : NULL);
}

static void
on_request(void *owner, struct mg_req *req)
{
    struct mg_worker *w = owner;

    /* shared: what the request reads of the conversation store comes from Redis first */
    if (w->conf->shared.on && mg_http_shared_fetch(w, req, &after_shared)) {
        return;   /* mg_http_dispatch() once it is here */
    }
    mg_http_dispatch(w, req);
}

static const struct mg_conn_ops worker_ops = {
    .begin = on_begin,
    .head = on_head,
    .request = on_request,
    .refuse = on_refuse,
    .done = on_done,
};

static void
limits_of(const struct mg_conf *conf, struct mg_conn_limits *l)
{
    l->tls = conf->tls.ctx;
    l->max_body = conf->max_body_size;
    l->header_ms = conf->header_timeout_ms;
    l->body_ms = conf->body_timeout_ms;
    l->keepalive_ms = conf->keepalive_timeout_ms;
}

void
mg_http_apply_conf(struct mg_worker *w)
{
    struct mg_conn_limits l;

    if (w->front != NULL) {
        limits_of(w->conf, &l);
        mg_listener_set_limits(w->front, &l);
    }
}

int
mg_http_start(struct mg_worker *w)
{
    struct mg_conn_limits l;

    limits_of(w->conf, &l);
    w->front = mg_listener_create(w->base, w->listen_fd, &worker_ops, w, &l);
    if (w->front == NULL) {
        mg_log_error("cannot accept on the listening socket");
        return MG_ERR;
    }
    w->listen_fd = -1;   /* the listener's now */
    return MG_OK;
}

void
mg_http_stop_accepting(struct mg_worker *w)
{
    mg_listener_stop(w->front);
}

void
mg_http_stop(struct mg_worker *w)
{
    mg_listener_destroy(w->front);
    w->front = NULL;
}

/* ---- admin_listen --------------------------------------------------------------------------- */

static void
admin_begin(void *owner, struct mg_req *req)
{
}

static void
admin_done(void *owner, struct mg_req *req)
{
}

static int
admin_head(void *owner, struct mg_req *req)
{
    req->api = mg_api_route(req->path);   /* the shape of its errors, as on listen */
    if (!mg_admin_path(req->path)) {
        mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", req->path);
        return 1;
    }
    return 0;
}

static void
admin_request(void *owner, struct mg_req *req)
{
    mg_admin_handle(req, req->path, owner);   /* owner: the runtime */
}

static void
admin_refuse(void *owner, struct mg_req *req, int status, const char *code, const char *message)
{
    if (req->api == NULL) {
        req->api = mg_api_route(req->path);
    }
    mg_reply_error(req, status, code, NULL, "%s", message);
}

static const struct mg_conn_ops admin_ops = {
    .begin = admin_begin,
    .head = admin_head,
    .request = admin_request,
    .refuse = admin_refuse,
    .done = admin_done,
};

struct mg_listener *
mg_http_admin_start(struct event_base *base, int fd, const struct mg_conf *conf,
                    struct mg_runtime *rt)
{
    struct mg_conn_limits l;

    limits_of(conf, &l);
    l.tls = NULL;   /* admin_listen stays plain HTTP (bind it to a private address) */
    l.max_body = ADMIN_BODY_MAX;
    return mg_listener_create(base, fd, &admin_ops, rt, &l);
}
