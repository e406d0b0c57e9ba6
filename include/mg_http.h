/*
 * mg_http — the evhttp front end of a worker: limits, and the dispatch of each request by path
 * to its handler (admin endpoints, the model catalog, the proxy) after the admission step.
 */
#ifndef MG_HTTP_H
#define MG_HTTP_H

#include <stddef.h>

struct event_base;
struct evhttp;
struct mg_worker;

/* Creates the worker's evhttp on its base and accepts on w->listen_fd. MG_OK or MG_ERR. */
int mg_http_start(struct mg_worker *w);

/* Applies the limits of w->conf (body size) to the worker's evhttp. */
void mg_http_apply_conf(struct mg_worker *w);

/*
 * Serves /healthz and /metrics on host:port from base: the admin_listen address.
 * Returns the evhttp (free with evhttp_free) or NULL with err filled.
 */
struct evhttp *mg_http_admin_start(struct event_base *base, const char *host, int port,
                                   char *err, size_t errlen);

/* Stops accepting new connections; requests in flight go on. */
void mg_http_stop_accepting(struct mg_worker *w);

#endif
