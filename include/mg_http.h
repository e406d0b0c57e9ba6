/*
 * mg_http — the front end of a worker: its listener (mg_conn) and the dispatch of each request by
 * path to its handler (admin endpoints, the model catalog, the proxy), with the checks made on
 * the head (route, method, forwarded-path rule, client key) before any body byte is read.
 */
#ifndef MG_HTTP_H
#define MG_HTTP_H

struct event_base;
struct mg_conf;
struct mg_listener;
struct mg_runtime;
struct mg_worker;

/* Accepts on w->listen_fd (the listener takes it) from the worker's base. MG_OK or MG_ERR. */
int mg_http_start(struct mg_worker *w);

/* Applies the limits of w->conf (body size, client timeouts) to the worker's connections. */
void mg_http_apply_conf(struct mg_worker *w);

/* Stops accepting new connections; requests in flight go on. */
void mg_http_stop_accepting(struct mg_worker *w);

/* Closes the worker's listener and every connection left (at the end of the worker). */
void mg_http_stop(struct mg_worker *w);

/*
 * Serves /healthz and /metrics (rt's) alone on fd (listening: the admin_listen address) from base.
 * Free with mg_listener_destroy(); NULL when fd cannot be watched.
 */
struct mg_listener *mg_http_admin_start(struct event_base *base, int fd,
                                        const struct mg_conf *conf, struct mg_runtime *rt);

/*
 * shared: (Redis) on a worker's thread: its connection made when the worker starts
 * (mg_http_shared_start), kept by a reload that names the same Redis or made again
 * (mg_http_shared_apply, before conf replaces w->conf), closed after its loop (_stop).
 */
void mg_http_shared_start(struct mg_worker *w);
void mg_http_shared_apply(struct mg_worker *w, const struct mg_conf *conf);
void mg_http_shared_stop(struct mg_worker *w);

#endif
