/*
 * mg_http — the evhttp front end of a worker: limits, routing of paths to handlers, and
 * OpenAI-shaped JSON errors (including for the requests libevent refuses by itself).
 */
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct mg_worker;

/* Creates the worker's evhttp on its base and accepts on w->listen_fd. MG_OK or MG_ERR. */
int mg_http_start(struct mg_worker *w);

/* Applies the limits of w->conf (body size) to the worker's evhttp. */
void mg_http_apply_conf(struct mg_worker *w);

/*
 * Serves /healthz (and, later, /metrics) on host:port from base: the admin_listen address.
 * Returns the evhttp (free with evhttp_free) or NULL with err filled.
 */
struct evhttp *mg_http_admin_start(struct event_base *base, const char *host, int port,
                                   char *err, size_t errlen);

/* Stops accepting new connections; requests in flight go on. */
void mg_http_stop_accepting(struct mg_worker *w);

/*
 * Sends an OpenAI-style error: {"error":{"message","type","param","code"}}. param may be NULL.
 * The reply ends the request.
 */
void mg_http_error(struct evhttp_request *req, int status, const char *code, const char *param,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sends a JSON body with status; the reply ends the request. */
void mg_http_json(struct evhttp_request *req, int status, const char *json, size_t len);

/*
 * Access log line and request metrics for a request answered without a backend. t0_us is when
 * the request arrived (mg_now_us()); model may be NULL.
 */
void mg_http_account(struct mg_worker *w, struct evhttp_request *req, int status, int64_t t0_us,
                     const char *model);

/*
 * Counts req as in flight until its reply is reported sent, or its connection closes first
 * (a client that leaves while the last bytes are flushed). mg_http sets this on every request;
 * a handler that installs its own close callback puts this one back before the final reply.
 */
void mg_http_watch_until_sent(struct mg_worker *w, struct evhttp_request *req);

/* "addr:port" of the request's client, into buf. */
const char *mg_http_client(struct evhttp_request *req, char *buf, size_t len);

#endif
