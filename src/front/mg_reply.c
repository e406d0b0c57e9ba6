/*
 * mg_reply — answers the gateway makes itself, and how every request is accounted and ends.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_access.h"
#include "mg_api_types.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_stats.h"
#include "mg_util.h"
#include "mg_wire.h"
#include "mg_worker.h"

void
mg_reply_body(struct mg_req *req, int status, const char *ctype, const char *body, size_t len)
{
    struct mg_wire w;
    char v[24];

    mg_wire_begin(&w, req, status);
    mg_wire_header(&w, "Content-Type", ctype);
    mg_wire_header(&w, "x-request-id", req->request_id);
    if (req->overhead_us != -2) {   /* -2: no overhead header wanted */
        snprintf(v, sizeof(v), "%lld", (long long)(req->overhead_us >= 0 ? req->overhead_us
                                                    : mg_now_us() - req->t0_us));
        mg_wire_header(&w, "x-modelgate-overhead-us", v);
    }
    mg_wire_lines(&w, req->out.data ? req->out.data : "", req->out.len);
    mg_wire_send_head(&w, (int64_t)len);
    mg_wire_body(&w, body, len);
    mg_wire_end(&w);
}

void
mg_reply_empty(struct mg_req *req, int status)
{
    struct mg_wire w;

    mg_wire_begin(&w, req, status);
    mg_wire_header(&w, "x-request-id", req->request_id);
    mg_wire_lines(&w, req->out.data ? req->out.data : "", req->out.len);
    mg_wire_send_head(&w, 0);
    mg_wire_end(&w);
}

void
mg_reply_json(struct mg_req *req, int status, const char *json, size_t len)
{
    mg_reply_body(req, status, "application/json", json, len);
}

void
mg_reply_error_body(struct mg_buf *out, struct mg_req *req, int status, const char *code,
                    const char *param, const char *msg)
{
    /* the dispatcher chose the API on the head, or on a refusal before it */
    req->api->error_body(out, status, code, param, msg);
}

static void
send_error(struct mg_req *req, int status, const char *code, const char *param,
           const char *msg)
{
    struct mg_buf out;

    mg_buf_init(&out, 4096);
    mg_reply_error_body(&out, req, status, code, param, msg);
    mg_reply_json(req, status, out.data, out.len);
    mg_buf_deinit(&out);
}

void
mg_reply_error(struct mg_req *req, int status, const char *code, const char *param,
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
mg_reply_refuse(struct mg_req *req, const struct mg_refusal *r)
{
    size_t i;

    for (i = 0; i < r->nheaders; i++) {
        mg_req_add_header(req, r->headers[i].name, r->headers[i].value);
    }
    send_error(req, r->status, r->code, r->param, r->message);
}

/* ---- accounting --------------------------------------------------------------------------- */

void
mg_reply_account(struct mg_worker *w, struct mg_req *req, struct mg_access_rec *r,
                 const char *backend, int counted)
{
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
        if (r->client == NULL) {
            r->client = req->peer;
        }
        if (r->method == NULL) {
            r->method = mg_req_method(req);
        }
        if (r->path == NULL) {
            r->path = req->path;
        }
    }
    mg_access_log(w->access, r);
}

void
mg_reply_account_local(struct mg_worker *w, struct mg_req *req, int status,
                       int64_t t0_us, const char *model, const char *key)
{
    struct mg_access_rec r;
    const char *path = req->path;

    memset(&r, 0, sizeof(r));
    r.request_id = req->request_id;
    r.model = model;
    r.key = key;
    r.rule = -1;
    r.status = status;
    r.bytes_in = (int64_t)req->body_len;
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
