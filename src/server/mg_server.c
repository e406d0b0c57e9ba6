/*
 * mg_server — the runtime, threads, listeners, signals.
 *
 * Each worker is a thread with its own event_base, front end, SO_REUSEPORT listener and curl multi:
 * the kernel spreads connections, and nothing on the request path is shared or locked. The main
 * thread only handles signals. It talks to workers through an eventfd each (no libevent thread
 * locks needed): a stop flag, and a new config snapshot handed over with an atomic exchange.
 *
 * The runtime (mg_runtime) is made here before the first snapshot goes into service, shared by
 * every worker (w->rt), destroyed once they have stopped (a snapshot freed later never follows
 * its pointers into it); state_file's spend is read into it before the workers start.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "mg_access.h"
#include "mg_check.h"
#include "mg_conf.h"
#include "mg_http.h"
#include "mg_log.h"
#include "mg_conn.h"
#include "mg_front.h"
#include "mg_limit.h"
#include "mg_runtime.h"
#include "mg_spend_file.h"
#include "mg_server.h"
#include "mg_stats.h"
#include "mg_status.h"
#include "mg_trace_export.h"
#include "mg_upstream.h"
#include "mg_upstream_proxy.h"
#include "mg_worker.h"

struct wake {
    int                        fd;           /* eventfd */
    atomic_int                 stop;
    _Atomic(struct mg_conf *)  next_conf;    /* new snapshot for the worker to take */
    struct mg_check           *check;        /* worker 0's active health checks, else NULL */
};

struct mg_server {
    char              *path;
    struct mg_runtime *rt;                   /* what outlives snapshots; the workers share it */
    struct mg_conf    *conf;                 /* the snapshot last installed */
    struct mg_worker  *workers;
    struct wake       *wakes;
    int                nworkers;
    struct event_base *base;
    struct mg_listener *admin;               /* on admin_listen, served by this thread */
    struct mg_spend_file *spend;             /* state_file's writes (this thread's loop) */
    struct event      *sigev[4];             /* SIGHUP, SIGTERM, SIGINT, SIGUSR1 */
    int                generation;           /* SIGHUPs handled; every one gets a number */
    int                stop_signal;
};

/*
 * A listener works without any of its options (only worse: no reuse, no spreading, Nagle), so a
 * refusal is logged with the option's name and the listener goes on.
 */
static void
sockopt(int fd, int level, int name, int val, const char *what)
{
    if (setsockopt(fd, level, name, &val, sizeof(val)) != 0) {
        mg_log_warn("setsockopt %s: %s", what, strerror(errno));
    }
}

#define SOCKOPT(fd, level, name, val) sockopt(fd, level, name, val, #name)

static int
open_listener(const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, one = 1, zero = 0, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    /* ":port" means every address: one dual-stack IPv6 socket covers IPv4 too. */
    rc = getaddrinfo(host[0] ? host : "::", portstr, &hints, &res);
    if (rc != 0 && host[0] == '\0') {
        rc = getaddrinfo("0.0.0.0", portstr, &hints, &res);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            continue;
        }
        SOCKOPT(fd, SOL_SOCKET, SO_REUSEADDR, one);
        SOCKOPT(fd, SOL_SOCKET, SO_REUSEPORT, one);
        /* Linux hands TCP_NODELAY down to accepted sockets: no Nagle delay on streamed chunks. */
        SOCKOPT(fd, IPPROTO_TCP, TCP_NODELAY, one);
        if (ai->ai_family == AF_INET6 && host[0] == '\0') {
            SOCKOPT(fd, IPPROTO_IPV6, IPV6_V6ONLY, zero);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) {
            break;
        }
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void
worker_install(struct mg_worker *w, struct mg_conf *conf)
{
    mg_http_shared_apply(w, conf);
    mg_conf_unref(w->conf);
    w->conf = conf;
    mg_http_apply_conf(w);
    if (w->server->wakes[w->id].check != NULL) {
        mg_check_conf(w->server->wakes[w->id].check);   /* its check_intervals from now on */
    }
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct mg_worker *w = arg;
    struct wake *wk = &w->server->wakes[w->id];
    struct mg_conf *next;
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
        mg_log_error("worker %d: reading its eventfd: %s", w->id, strerror(errno));
    }
    next = atomic_exchange(&wk->next_conf, NULL);
    if (next != NULL) {
        worker_install(w, next);
    }
    if (atomic_load(&wk->stop) && !w->stopping) {
        mg_http_stop_accepting(w);
        mg_worker_stop(w);
    }
    if (atomic_load(&wk->stop) == 2) {
        event_base_loopbreak(w->base);   /* shutdown_timeout passed */
    }
}

static void
wake_worker(struct mg_server *s, int i)
{
    uint64_t one = 1;

    if (write(s->wakes[i].fd, &one, sizeof(one)) < 0) {
        mg_log_error("waking worker %d: %s", i, strerror(errno));
    }
}

static void *
worker_main(void *arg)
{
    struct mg_worker *w = arg;

    struct wake *wk = &w->server->wakes[w->id];

    mg_limit_store_worker_start(w->rt->limits, w->base);
    if (w->id == 0) {   /* one worker checks for all: the health registry is shared */
        wk->check = mg_check_create(w);
    }
    mg_http_shared_start(w);
    event_base_dispatch(w->base);
    if (atomic_load(&wk->stop) != 2 && mg_tracer_flush(w->tracer)) {
        event_base_dispatch(w->base);   /* the last spans; shutdown_timeout still bounds it */
    }
    mg_check_destroy(wk->check);   /* checks under way are cancelled, never waited for */
    wk->check = NULL;
    mg_http_stop(w);   /* closes what is left on this thread, before the base goes */
    mg_http_shared_stop(w);
    mg_limit_store_worker_stop(w->rt->limits);
    return NULL;
}

/*
 * A worker's event loop. epoll's changelist: the changes a turn of the loop makes to a socket's
 * events are applied once, before the next wait, so changes to the same socket in one turn (curl
 * removing and adding its upstream socket) cost one epoll_ctl. libevent retries a change as ADD when the descriptor was closed and
 * reused in between; the one case it cannot handle, a descriptor duplicated with dup(), never
 * reaches the loop (no socket here is duplicated).
 */
static struct event_base *
worker_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (cfg == NULL) {
        return NULL;
    }
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static int
worker_init(struct mg_server *s, int i)
{
    struct mg_worker *w = &s->workers[i];
    char err[256];

    w->id = i;
    w->server = s;
    w->rt = s->rt;
    w->rng = ((uint64_t)time(NULL) << 16) ^ ((uint64_t)getpid() << 8) ^ (uint64_t)(i + 1) ^
             0x9E3779B97F4A7C15ull;
    mg_pool_init(&w->requests, 64);
    w->base = worker_base();
    if (w->base == NULL) {
        mg_log_error("event_base_new failed");
        return MG_ERR;
    }
    w->conf = mg_conf_ref(s->conf);
    w->admin_separate = s->conf->admin_listen != NULL;
    w->upstream = mg_upstream_create(w->base);
    w->stats = mg_stats_create(s->rt->stats);
    w->tracer = mg_tracer_create(w->base, w->upstream, w->stats);
    w->status = mg_status_create(s->rt->status);
    w->responses = s->rt->responses;
    w->access = mg_access_out_create(w->base);
    w->listen_fd = open_listener(s->conf->listen_host, s->conf->listen_port, err, sizeof(err));
    if (w->listen_fd < 0) {
        mg_log_error("%s", err);
        return MG_ERR;
    }
    if (mg_http_start(w) != MG_OK) {
        return MG_ERR;
    }
    s->wakes[i].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wakes[i].fd < 0) {
        mg_log_error("eventfd: %s", strerror(errno));
        return MG_ERR;
    }
    w->wake = event_new(w->base, s->wakes[i].fd, EV_READ | EV_PERSIST, on_wake, w);
    if (w->wake == NULL || event_add(w->wake, NULL) != 0) {
        return MG_ERR;
    }
    return MG_OK;
}

static void
worker_deinit(struct mg_server *s, int i)
{
    struct mg_worker *w = &s->workers[i];
    struct mg_conf *pending;

    if (w->wake != NULL) {
        event_free(w->wake);
    }
    if (s->wakes[i].fd > 0) {
        close(s->wakes[i].fd);
    }
    pending = atomic_exchange(&s->wakes[i].next_conf, NULL);
    mg_conf_unref(pending);
    mg_http_stop(w);
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
    }
    mg_tracer_destroy(w->tracer);   /* its export is a transfer of the upstream's multi */
    w->tracer = NULL;
    mg_upstream_destroy(w->upstream);
    mg_access_out_destroy(w->access);
    mg_stats_destroy(w->stats);
    mg_status_destroy(w->status);
    if (w->base != NULL) {
        event_base_free(w->base);
    }
    mg_conf_unref(w->conf);
    mg_pool_deinit(&w->requests);
}

static int
same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A refused reload: one log line per error (log lines hold no newline). */
static void
log_lines(int generation, const char *path, const char *errors)
{
    const char *line = errors ? errors : "", *eol;

    mg_log_error("reload %d of %s refused, the running config stays:", generation, path);
    for (; *line != '\0'; line = eol + 1) {
        eol = strchr(line, '\n');
        if (eol == NULL) {
            mg_log_error("  %s", line);
            break;
        }
        mg_log_error("  %.*s", (int)(eol - line), line);
    }
}

/* SIGHUP: read the file again; install it everywhere only if it is entirely valid. */
static void
reload(struct mg_server *s)
{
    struct mg_buf errors;
    struct mg_conf *conf;
    int64_t t0 = mg_now_us();
    int i;

    s->generation++;
    mg_buf_init(&errors, 1024 * 1024);
    conf = mg_conf_load(s->path, s->rt->seen, &errors);
    if (conf == NULL) {
        log_lines(s->generation, s->path, errors.data);
        mg_buf_deinit(&errors);
        mg_stats_reload(s->rt->stats, 0);
        mg_status_reload(s->rt->status, 0, (int64_t)time(NULL));
        return;
    }
    if (!same_string(conf->access_log, s->conf->access_log)) {
        char err[512];
        if (mg_access_open(conf->access_log, err, sizeof(err)) != MG_OK) {
            mg_log_error("reload %d of %s refused, the running config stays: %s", s->generation,
                         s->path, err);
            mg_buf_deinit(&errors);
            mg_conf_unref(conf);
            mg_stats_reload(s->rt->stats, 0);
            mg_status_reload(s->rt->status, 0, (int64_t)time(NULL));
            return;
        }
    }
    mg_buf_deinit(&errors);
    if (strcmp(conf->listen, s->conf->listen) != 0 || conf->workers != s->conf->workers ||
        (conf->admin_listen == NULL) != (s->conf->admin_listen == NULL) ||
        (conf->admin_listen != NULL && strcmp(conf->admin_listen, s->conf->admin_listen) != 0)) {
        mg_log_warn("reload: listen, admin_listen and workers need a restart; keeping %s with "
                    "%d workers", s->conf->listen, s->nworkers);
    }
    mg_log_set_level((enum mg_log_level)conf->log_level);
    mg_runtime_bind(s->rt, conf, mg_now_ms());
    mg_upstream_proxy_log(conf);
    for (i = 0; i < s->nworkers; i++) {
        struct mg_conf *old = atomic_exchange(&s->wakes[i].next_conf, mg_conf_ref(conf));
        mg_conf_unref(old);
        wake_worker(s, i);
    }
    mg_conf_unref(s->conf);
    s->conf = conf;
    mg_stats_reload(s->rt->stats, 1);
    mg_status_reload(s->rt->status, 1, (int64_t)time(NULL));
    mg_log_info("reload %d of %s: ok (%.3f ms)", s->generation, s->path,
                (double)(mg_now_us() - t0) / 1000.0);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct mg_server *s = arg;

    switch (sig) {
    case SIGHUP:
        reload(s);
        break;
    case SIGUSR1: {
        char err[512];
        if (mg_access_reopen(err, sizeof(err)) != MG_OK) {
            mg_log_error("SIGUSR1: %s", err);
        } else {
            mg_log_info("SIGUSR1: access log reopened");
        }
        break;
    }
    default:
        s->stop_signal = (int)sig;
        event_base_loopbreak(s->base);
    }
}

/* Waits for every worker to finish its requests, up to shutdown_timeout, then stops them. */
static void
stop_workers(struct mg_server *s, int started)
{
    struct timespec deadline;
    int i;

    for (i = 0; i < started; i++) {
        atomic_store(&s->wakes[i].stop, 1);
        wake_worker(s, i);
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += s->conf->shutdown_timeout_ms / 1000;
    deadline.tv_nsec += (s->conf->shutdown_timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    for (i = 0; i < started; i++) {
        if (pthread_timedjoin_np(s->workers[i].thread, NULL, &deadline) != 0) {
            mg_log_warn("worker %d: %d requests still running after shutdown_timeout; stopping",
                        i, s->workers[i].inflight);
            atomic_store(&s->wakes[i].stop, 2);
            wake_worker(s, i);
            pthread_join(s->workers[i].thread, NULL);
        }
    }
}

static const int server_sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};

/* Everything the server needs before its threads start: loop, access log, workers, admin. */
static int
server_open(struct mg_server *s)
{
    char err[512];
    size_t k;
    int i;

    s->base = event_base_new();
    if (s->base == NULL) {
        return MG_ERR;
    }
    if (mg_access_open(s->conf->access_log, err, sizeof(err)) != MG_OK) {
        mg_log_error("%s", err);
        return MG_ERR;
    }
    if (mg_spend_file_open(&s->spend, s->base, s->rt->budgets, s->conf) != MG_OK) {
        return MG_ERR;
    }
    for (i = 0; i < s->nworkers; i++) {
        if (worker_init(s, i) != MG_OK) {
            return MG_ERR;
        }
    }
    if (s->conf->admin_listen != NULL) {
        int fd = open_listener(s->conf->admin_host, s->conf->admin_port, err, sizeof(err));
        if (fd < 0) {
            mg_log_error("admin_listen: %s", err);
            return MG_ERR;
        }
        s->admin = mg_http_admin_start(s->base, fd, s->conf, s->rt);
        if (s->admin == NULL) {
            close(fd);
            mg_log_error("cannot accept on admin_listen");
            return MG_ERR;
        }
    }
    for (k = 0; k < MG_ARRAY_LEN(server_sigs); k++) {
        s->sigev[k] = evsignal_new(s->base, server_sigs[k], on_signal, s);
        if (s->sigev[k] == NULL || event_add(s->sigev[k], NULL) != 0) {
            return MG_ERR;
        }
    }
    return MG_OK;
}

/* Starts the worker threads; returns how many started. */
static int
start_workers(struct mg_server *s)
{
    sigset_t block, old;
    size_t k;
    int i, rc, started = 0;

    /* Workers inherit a mask with our signals blocked, so only this thread receives them. */
    sigemptyset(&block);
    for (k = 0; k < MG_ARRAY_LEN(server_sigs); k++) {
        sigaddset(&block, server_sigs[k]);
    }
    if ((rc = pthread_sigmask(SIG_BLOCK, &block, &old)) != 0) {
        mg_log_error("pthread_sigmask: %s: workers may take the server's signals",
                     strerror(rc));
    }
    for (i = 0; i < s->nworkers; i++) {
        if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
            mg_log_error("cannot start worker %d", i);
            break;
        }
        started++;
    }
    if (rc == 0 && (rc = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0) {
        mg_log_error("pthread_sigmask: %s: the main thread keeps its signals blocked",
                     strerror(rc));
    }
    return started;
}

static void
server_close(struct mg_server *s)
{
    size_t k;
    int i;

    for (k = 0; k < MG_ARRAY_LEN(server_sigs); k++) {
        if (s->sigev[k] != NULL) {
            event_free(s->sigev[k]);
        }
    }
    for (i = 0; i < s->nworkers; i++) {
        worker_deinit(s, i);
    }
    mg_listener_destroy(s->admin);
    mg_spend_file_close(s->spend);   /* after the workers: the spend is final */
    if (s->base != NULL) {
        event_base_free(s->base);
    }
    free(s->workers);
    free(s->wakes);
    mg_conf_unref(s->conf);
    mg_access_close();
}

int
mg_server_run(struct mg_conf *conf)
{
    struct mg_server s;
    int i, started = 0, rc = 1;

    memset(&s, 0, sizeof(s));
    s.path = conf->path;
    s.rt = mg_runtime_create("local");
    if (s.rt == NULL) {
        mg_log_error("no limit store called local");
        return 1;
    }
    s.conf = mg_conf_ref(conf);
    s.nworkers = conf->workers > 0 ? conf->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s.nworkers < 1) {
        s.nworkers = 1;
    }
    mg_log_set_level((enum mg_log_level)conf->log_level);
    signal(SIGPIPE, SIG_IGN);
    /* before the bind: credential sources start their transfers there */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        mg_log_error("curl_global_init failed");
        mg_conf_unref(s.conf);
        mg_runtime_destroy(s.rt);
        return 1;
    }
    mg_runtime_bind(s.rt, conf, mg_now_ms());
    mg_front_raise_nofile();
    mg_upstream_proxy_log(conf);
    s.workers = mg_calloc((size_t)s.nworkers, sizeof(struct mg_worker));
    s.wakes = mg_calloc((size_t)s.nworkers, sizeof(struct wake));
    for (i = 0; i < s.nworkers; i++) {
        s.workers[i].listen_fd = -1;
        s.wakes[i].fd = -1;
    }
    if (server_open(&s) == MG_OK) {
        started = start_workers(&s);
        if (started == s.nworkers) {
            mg_log_info("modelgate listening on %s (%s) with %d workers, %zu rules, %zu backends",
                        conf->listen, conf->tls.ctx != NULL ? "https" : "http", s.nworkers,
                        conf->nrules, conf->nbackends);
            event_base_dispatch(s.base);
            mg_log_info("signal %d: stopping; waiting up to %lld ms for requests in flight",
                        s.stop_signal, (long long)s.conf->shutdown_timeout_ms);
            rc = 0;
        }
        stop_workers(&s, started);
    }
    server_close(&s);
    mg_runtime_destroy(s.rt);   /* every worker has stopped: nothing reads it any more */
    curl_global_cleanup();
    if (rc == 0) {
        mg_log_info("stopped");
    }
    return rc;
}
