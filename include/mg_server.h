/*
 * mg_server — the process: worker threads (one event loop, one listener with SO_REUSEPORT and
 * one curl multi each), the config snapshot each worker serves, signals and shutdown.
 */
#ifndef MG_SERVER_H
#define MG_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include "mg_conf.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct event;
struct mg_upstream;
struct mg_server;
struct mg_stats;
struct mg_access_out;

struct mg_worker {
    int                 id;
    pthread_t           thread;
    struct mg_server   *server;
    struct event_base  *base;
    struct evhttp      *http;
    struct mg_upstream *upstream;
    struct mg_stats    *stats;
    struct mg_access_out *access;
    struct mg_conf     *conf;       /* the snapshot new requests get; owned by this worker */
    struct event       *wake;       /* activated from other threads: stop, new config */
    uint64_t            rng;
    int                 inflight;   /* requests whose reply is not entirely sent */
    int                 stopping;
    int                 admin_separate; /* /healthz (and /metrics) live on admin_listen */
    int                 listen_fd;
    struct evhttp_bound_socket *bound;
};

/* Reads conf (one reference taken), opens the listeners, runs until SIGTERM/SIGINT. Exit code. */
int mg_server_run(struct mg_conf *conf);

/*
 * A request of w is over (its reply sent, or its connection dropped): lets a stopping worker
 * exit once none is left. mg_http calls it when evhttp reports the reply sent; whoever drops a
 * connection (so that no such report will come) calls it instead.
 */
void mg_server_request_done(struct mg_worker *w);

#endif
