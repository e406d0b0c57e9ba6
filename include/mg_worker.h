/*
 * mg_worker — what one worker thread owns: its event loop, HTTP front end, curl multi, metrics,
 * access-log buffer, the config snapshot new requests get, and the count of requests in flight;
 * and the runtime (mg_runtime) it shares with the other workers.
 *
 * mg_server creates and destroys workers; every other module only reads these fields, except the
 * in-flight count, which changes through the two functions below and nowhere else.
 */
#ifndef MG_WORKER_H
#define MG_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "mg_util.h"

struct event;
struct event_base;
struct mg_access_out;
struct mg_conf;
struct mg_listener;
struct mg_health_shared;
struct mg_redis;
struct mg_resp_store;
struct mg_runtime;
struct mg_server;
struct mg_stats;
struct mg_status;
struct mg_tracer;
struct mg_upstream;

struct mg_worker {
    int                 id;
    pthread_t           thread;
    struct mg_server   *server;
    struct mg_runtime  *rt;         /* shared by every worker, the server's; outlives them */
    struct event_base  *base;
    struct mg_listener *front;      /* its connections (mg_http) */
    struct mg_upstream *upstream;
    struct mg_stats    *stats;
    struct mg_status   *status;     /* its status page rings (mg_status) */
    struct mg_tracer   *tracer;     /* its span exporter (mg_trace_export), idle without tracing */
    struct mg_resp_store *responses;  /* the runtime's conversation store */
    struct mg_access_out *access;
    struct mg_redis    *redis;      /* its own connection to shared.redis; NULL without shared */
    struct mg_health_shared *cool;  /* worker 0 with shared: the cooldowns' subscriber */
    struct mg_conf     *conf;       /* the snapshot new requests get; owned by this worker */
    struct event       *wake;       /* activated from other threads: stop, new config */
    uint64_t            rng;
    int                 inflight;   /* requests whose reply is not entirely sent */
    int                 stopping;   /* no new connections; exit once inflight is 0 */
    int                 admin_separate; /* /healthz and /metrics live on admin_listen */
    int                 listen_fd;  /* until the front end takes it */
    struct mg_pool      requests;   /* spare proxied-request states (mg_proxy's), reused */
};

/* A request arrived: it counts as in flight until mg_worker_request_done(). */
void mg_worker_request_begin(struct mg_worker *w);

/* A request is over (reply sent, or connection gone); a stopping worker exits after its last. */
void mg_worker_request_done(struct mg_worker *w);

/* The worker stops taking connections; its loop ends once no request is in flight. */
void mg_worker_stop(struct mg_worker *w);

#endif
