/*
 * mg_listen — a listening socket's accepts: one connection a turn of the loop, and the back-off
 * when descriptors run out; the list of a listener's connections, and its stop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "mg_conn_int.h"
#include "mg_log.h"
#include "mg_tls.h"

/* ---- the listener -------------------------------------------------------------------------- */

static void
format_peer(char *buf, size_t len, const struct sockaddr *sa)
{
    char addr[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%u", addr, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
        port = ntohs(in6->sin6_port);
        if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, ':') == NULL) {
            snprintf(buf, len, "%s:%u", addr + 7, port);   /* IPv4 on a dual-stack listener */
        } else {
            snprintf(buf, len, "[%s]:%u", addr, port);
        }
    } else {
        snprintf(buf, len, "unknown");
    }
}

static void
on_turn_end(evutil_socket_t fd, short what, void *arg)
{
    struct mg_listener *l = arg;

    l->accepted = 0;
    if (l->lev != NULL && !l->resting) {
        evconnlistener_enable(l->lev);
    }
}

/*
 * A new connection. A worker takes ACCEPT_BATCH connections a turn and pauses the listener
 * until the turn's other ready events have run, as nginx does (multi_accept off): a burst of
 * new connections (a thousand streams starting at once) is taken in turns with the requests
 * already accepted, which reach their backends meanwhile. Measured on that burst
 * (docs/benchmarks.md): the median stream's first content comes 70-90 ms sooner.
 */
static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
          void *arg)
{
    struct mg_listener *l = arg;
    char peer[64];

    if (l->accepted++ == 0) {
        event_active(&l->turn_end, EV_TIMEOUT, 1);
    }
    if (l->accepted == ACCEPT_BATCH) {
        evconnlistener_disable(lev);
    }
    format_peer(peer, sizeof(peer), sa);
    mg_conn_open(l, fd, peer);
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    struct mg_listener *l = arg;

    l->resting = 0;
    if (l->lev != NULL) {
        evconnlistener_enable(l->lev);
    }
}

/* accept() failed for a reason other than a retriable one: rest instead of spinning. */
static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
    struct mg_listener *l = arg;
    struct timeval tv = {0, BACKOFF_MS * 1000};
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = mg_now_ms();

    if (now - l->last_emfile_log >= 10000) {
        l->last_emfile_log = now;
        mg_log_warn("accept failed (%s); pausing the listener for %d ms (logged at most every "
                    "10 s)", strerror(err), BACKOFF_MS);
    }
    evconnlistener_disable(lev);
    l->resting = 1;
    if (evtimer_add(&l->backoff, &tv) != 0) {   /* no rest then: accept again at once */
        mg_log_error("cannot arm the listener's back-off timer");
        l->resting = 0;
        evconnlistener_enable(lev);
    }
}

struct mg_listener *
mg_listener_create(struct event_base *base, int fd, const struct mg_conn_ops *ops, void *owner,
                   const struct mg_conn_limits *limits)
{
    struct mg_listener *l = mg_calloc(1, sizeof(*l));

    l->base = base;
    l->ops = ops;
    l->owner = owner;
    l->limits = *limits;
    mg_tls_ref(l->limits.tls);
    l->rng = ((uint64_t)(uintptr_t)l << 16) ^ (uint64_t)mg_now_us() ^ 0x9E3779B97F4A7C15ull;
    evtimer_assign(&l->backoff, base, resume_accepting, l);
    event_assign(&l->turn_end, base, -1, 0, on_turn_end, l);
    l->lev = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                -1, fd);
    if (l->lev == NULL) {
        mg_tls_unref(l->limits.tls);
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    return l;
}

void
mg_listener_set_limits(struct mg_listener *l, const struct mg_conn_limits *limits)
{
    struct mg_tls *old = l->limits.tls;

    l->limits = *limits;
    mg_tls_ref(l->limits.tls);
    mg_tls_unref(old);
}

void
mg_listener_stop(struct mg_listener *l)
{
    struct mg_conn *c, *next;

    if (l == NULL || l->stopping) {
        return;
    }
    l->stopping = 1;
    if (l->lev != NULL) {
        evconnlistener_free(l->lev);
        l->lev = NULL;
    }
    evtimer_del(&l->backoff);
    event_del(&l->turn_end);
    for (c = l->conns; c != NULL; c = next) {
        next = c->lnext;
        if (c->state == ST_HEAD && !c->head_started) {
            mg_conn_free(c);   /* idle between requests */
        }
    }
}

void
mg_listener_destroy(struct mg_listener *l)
{
    if (l == NULL) {
        return;
    }
    mg_listener_stop(l);
    while (l->conns != NULL) {
        mg_conn_close(l->conns);
    }
    mg_tls_unref(l->limits.tls);
    free(l);
}

size_t
mg_listener_connections(const struct mg_listener *l)
{
    return l->nconns;
}
