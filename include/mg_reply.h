/*
 * mg_reply — the one way answers the gateway makes itself reach a client, and the bookkeeping
 * every request ends with: OpenAI-shaped JSON errors (also for requests libevent refuses on its
 * own), refusals, the access log line and request metrics, and the in-flight watch that lasts
 * until a reply is reported sent or its connection closes.
 */
#ifndef MG_REPLY_H
#define MG_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp_connection;
struct evhttp_request;
struct mg_access_rec;
struct mg_buf;
struct mg_key;
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
void mg_reply_refuse(struct evhttp_request *req, const struct mg_refusal *r);

/*
 * Sends an OpenAI-style error: {"error":{"message","type","param","code"}}. param may be NULL.
 * The reply ends the request.
 */
void mg_reply_error(struct evhttp_request *req, int status, const char *code, const char *param,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Appends the body of a gateway error for req to out: OpenAI's shape, or Anthropic's on
 * /v1/messages and below. param may be NULL.
 */
void mg_reply_error_body(struct mg_buf *out, struct evhttp_request *req, int status,
                         const char *code, const char *param, const char *msg);

/* Sends a JSON body with status; the reply ends the request. */
void mg_reply_json(struct evhttp_request *req, int status, const char *json, size_t len);

/* Sends a body of the given content type with status; the reply ends the request. */
void mg_reply_body(struct evhttp_request *req, int status, const char *ctype, const char *body,
                   size_t len);

/*
 * A request arrived on w: counts it in flight until its reply is reported sent, or its
 * connection closes first (a client that leaves while the last bytes are flushed).
 */
void mg_reply_track(struct mg_worker *w, struct evhttp_request *req);

/*
 * Puts the watch of mg_reply_track() back on req's connection: a handler that installed its own
 * close callback calls this before its final reply.
 */
void mg_reply_watch_until_sent(struct mg_worker *w, struct evhttp_request *req);

/* Drops a tracked request's connection at once (client gone, answer cut); frees the request. */
void mg_reply_drop(struct mg_worker *w, struct evhttp_connection *evcon);

/*
 * evhttp closed the connection of a tracked request while a handler held it (its own close
 * callback ran): frees the request if evhttp left it to us and ends its in-flight count.
 */
void mg_reply_closed(struct mg_worker *w, struct evhttp_request *req);

/*
 * The access log line and request metrics of a finished request. r's client, method and path
 * are filled from req when NULL. backend is the backend whose answer the client got (NULL: none);
 * counted 0 keeps the request out of modelgate_requests_total (/v1/models, /healthz, /metrics).
 * A request with r->key set is also counted in the key's metrics, counted or not.
 */
void mg_reply_account(struct mg_worker *w, struct evhttp_request *req, struct mg_access_rec *r,
                      const char *backend, int counted);

/*
 * Accounting for an answer the gateway made itself; t0_us its arrival; model and key (the name
 * of the caller's valid key) may be NULL.
 */
void mg_reply_account_local(struct mg_worker *w, struct evhttp_request *req, int status,
                            int64_t t0_us, const char *model, const char *key);

/*
 * Adds a limited key's x-ratelimit-* trios, as its buckets stand now, to req's response headers
 * (a routed answer; its backend's own x-ratelimit-* must have been left out). NULL or an
 * unlimited key: nothing.
 */
void mg_reply_key_headers(struct evhttp_request *req, const struct mg_key *key);

/*
 * Ends a connection the way nginx's lingering close does, so that a client still sending reads
 * the answer instead of a reset: writes bytes (an answer made here, may be NULL) on a duplicate
 * of fd, shuts down the sending side, then reads and discards for up to 1 s or 1 MiB before the
 * duplicate is closed. The owner of fd may close it at any time.
 */
void mg_reply_linger(struct event_base *base, int fd, const char *bytes, size_t len);

/* Closes whatever mg_reply_linger() left on this thread (at the end of a worker). */
void mg_reply_linger_stop(void);

/* "addr:port" of the request's client, into buf. */
const char *mg_reply_client(struct evhttp_request *req, char *buf, size_t len);

/* "GET", "POST", ... of the request. */
const char *mg_reply_method(struct evhttp_request *req);

#endif
