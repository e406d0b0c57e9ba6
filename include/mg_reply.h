/*
 * mg_reply — the one way answers the gateway makes itself reach a client, and the bookkeeping
 * every request ends with: JSON errors in the client API's shape (mg_api), refusals,
 * the access log line and request metrics. Every answer made here carries x-request-id, the
 * request's extra headers and a standard reason phrase.
 */
#ifndef MG_REPLY_H
#define MG_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct mg_access_rec;
struct mg_buf;
struct mg_req;
struct mg_worker;

#define MG_REFUSAL_HEADERS 8

/* Why the gateway answers a request itself instead of routing it. */
struct mg_refusal {
    int         status;
    const char *code;                 /* OpenAI error code, e.g. "model_not_found" */
    const char *param;                /* the offending parameter, or NULL */
    char        message[512];
    struct {
        const char *name;
        char        value[64];
    }           headers[MG_REFUSAL_HEADERS];   /* extra response headers (Allow, Retry-After) */
    size_t      nheaders;
};

/* Fills r (status, code, param, printf-style message) and clears its extra headers. */
void mg_refusal_set(struct mg_refusal *r, int status, const char *code, const char *param,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Adds one extra response header to r (dropped past MG_REFUSAL_HEADERS). */
void mg_refusal_header(struct mg_refusal *r, const char *name, const char *value);

/* Sends r as an OpenAI error body with its headers; the reply ends the request. */
void mg_reply_refuse(struct mg_req *req, const struct mg_refusal *r);

/*
 * Sends an OpenAI-style error: {"error":{"message","type","param","code"}}. param may be NULL.
 * The reply ends the request.
 */
void mg_reply_error(struct mg_req *req, int status, const char *code, const char *param,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Appends the body of a gateway error for req to out, in the shape of the client's API
 * (req->api: OpenAI's, or Anthropic's on /v1/messages and below). param may be NULL.
 */
void mg_reply_error_body(struct mg_buf *out, struct mg_req *req, int status,
                         const char *code, const char *param, const char *msg);

/* Sends a JSON body with status; the reply ends the request. */
/* An answer with no body (a 204 preflight): the status, x-request-id and the extra headers. */
void mg_reply_empty(struct mg_req *req, int status);
void mg_reply_json(struct mg_req *req, int status, const char *json, size_t len);

/*
 * Sends a body of the given content type with status; the reply ends the request (which may be
 * freed before this returns when its connection closes).
 */
void mg_reply_body(struct mg_req *req, int status, const char *ctype, const char *body,
                   size_t len);

/*
 * The access log line and request metrics of a finished request. r's client, method and path
 * are filled from req when NULL. backend is the backend whose answer the client got (NULL: none);
 * counted 0 keeps the request out of modelgate_requests_total (/v1/models, /healthz, /metrics).
 * A request with r->key set is also counted in the key's metrics, counted or not.
 */
void mg_reply_account(struct mg_worker *w, struct mg_req *req, struct mg_access_rec *r,
                      const char *backend, int counted);

/*
 * Accounting for an answer the gateway made itself; t0_us its arrival; model and key (the name
 * of the caller's valid key) may be NULL.
 */
void mg_reply_account_local(struct mg_worker *w, struct mg_req *req, int status,
                            int64_t t0_us, const char *model, const char *key);


#endif
