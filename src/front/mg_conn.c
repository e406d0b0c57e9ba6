/*
 * mg_conn — HTTP/1.1 server connections (see mg_conn.h): a connection's life, the writing of its
 * answers and its write and close events. Opening a connection, its read loop and deadlines, and
 * reading a request are mg_conn_read.c (which calls down into this file, never the reverse);
 * accepting is mg_listen.c.
 *
 * A connection reads with a bufferevent whose read side stays enabled for the connection's whole
 * life: no epoll_ctl between requests, and a client that leaves while its request is handled is
 * seen at once (EOF), which is what aborts its upstream transfer. Bytes of a pipelined request
 * wait in the input (at most IN_HWM) until the answer before them is written. Answers are written
 * straight to the socket with writev when nothing is queued (as nginx does); what the socket
 * does not take goes to the bufferevent's output.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "mg_conn_int.h"
#include "mg_log.h"
#include "mg_tls.h"

/* ---- life ---------------------------------------------------------------------------------- */

void
mg_conn_free(struct mg_conn *c)
{
    struct mg_listener *l = c->l;

    if (c->in_process) {
        c->closing = 1;   /* process() frees it when it unwinds */
        return;
    }
    if (c->lprev != NULL) {
        c->lprev->lnext = c->lnext;
    } else {
        l->conns = c->lnext;
    }
    if (c->lnext != NULL) {
        c->lnext->lprev = c->lprev;
    }
    l->nconns--;
    event_del(&c->timer);
    event_del(&c->pipelined);
    bufferevent_free(c->bev);   /* closes the socket */
    free(c->chunked);
    free(c->req.headers.v);
    mg_buf_deinit(&c->req.out);
    mg_buf_deinit(&c->head);
    mg_buf_deinit(&c->body);
    mg_buf_deinit(&c->held);
    free(c);
}

/* The owner is told, once, that the request it was given is over. */
void
mg_conn_request_over(struct mg_conn *c)
{
    c->gone = NULL;
    c->drained = NULL;
    if (c->begun) {
        c->begun = 0;
        c->req.conn = NULL;
        c->l->ops->done(c->l->owner, &c->req);
    }
}

/* The client is gone, or the connection must end now. */
void
mg_conn_close(struct mg_conn *c)
{
    if (c->state == ST_HANDLING && c->gone != NULL) {
        mg_conn_fn gone = c->gone;
        c->gone = NULL;
        gone(c->watch_arg);
    }
    mg_conn_request_over(c);
    c->state = ST_LINGER;   /* nothing more is read or written */
    mg_conn_free(c);
}

void
mg_conn_deadline(struct mg_conn *c, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

    c->deadline = mg_now_ms() + ms;
    if (evtimer_add(&c->timer, &tv) != 0) {
        mg_log_error("cannot arm a client connection's timer");   /* it then has no deadline */
    }
}

void
mg_conn_no_deadline(struct mg_conn *c)
{
    c->deadline = 0;
    evtimer_del(&c->timer);
}

/* Ready for the next request on a kept-alive connection. */
static void
next_request(struct mg_conn *c)
{
    c->state = ST_HEAD;
    c->head_started = 0;
    c->scanned = 0;
    c->discard = 0;
    c->served++;
    if (c->body.alloc > BODY_KEEP) {
        mg_buf_deinit(&c->body);   /* an idle connection keeps no large body */
    }
    mg_conn_deadline(c, c->l->limits.keepalive_ms);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
        if (c->in_process) {
            return;   /* the loop in process() goes on with them */
        }
        event_active(&c->pipelined, EV_TIMEOUT, 1);
    }
}

/* After a refusal: the answer is out; read what the client still sends, for a while. */
static void
start_linger(struct mg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    c->state = ST_LINGER;
    c->lingered = 0;
    if (!c->tls && shutdown(c->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
        mg_log_debug("shutdown of a client connection: %s", strerror(errno));
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    mg_conn_deadline(c, LINGER_MS);
}

/* The answer has ended and its last byte is written. */
static void
answer_written(struct mg_conn *c)
{
    mg_conn_request_over(c);
    if (c->keepalive) {
        next_request(c);
    } else if (c->discard) {
        start_linger(c);
    } else {
        mg_conn_free(c);
    }
}

/* ---- writing ------------------------------------------------------------------------------- */

void
mg_conn_watch(struct mg_conn *c, mg_conn_fn gone, mg_conn_fn drained, void *arg)
{
    c->gone = gone;
    c->drained = drained;
    c->watch_arg = arg;
}

size_t
mg_conn_queued(const struct mg_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
mg_conn_hold(struct mg_conn *c, const char *data, size_t len)
{
    if (c->held.cap == 0) {
        mg_buf_init(&c->held, HELD_MAX);
    }
    if (mg_buf_add(&c->held, data, len) != MG_OK) {
        abort();   /* callers hold a bounded head (mg_wire: at most the backend's head + ours) */
    }
}

void
mg_conn_write(struct mg_conn *c, const struct iovec *iov, int n)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct iovec v[8];
    size_t sent = 0, skip;
    ssize_t w;
    int k = 0, i;

    if (c->state == ST_LINGER || (n == 0 && c->held.len == 0)) {
        return;
    }
    if (c->held.len != 0) {
        v[k].iov_base = c->held.data;
        v[k++].iov_len = c->held.len;
    }
    for (i = 0; i < n && k < (int)MG_ARRAY_LEN(v); i++) {
        v[k++] = iov[i];
    }
    if (evbuffer_get_length(out) == 0 && !c->tls) {   /* TLS: the bufferevent encrypts */
        do {
            w = writev(c->fd, v, k);
        } while (w < 0 && errno == EINTR);
        sent = w > 0 ? (size_t)w : 0;   /* a failure: the bufferevent's write reports it */
    }
    for (i = 0; i < k; i++) {
        skip = sent < v[i].iov_len ? sent : v[i].iov_len;
        sent -= skip;
        if (v[i].iov_len > skip &&
            evbuffer_add(out, (const char *)v[i].iov_base + skip, v[i].iov_len - skip) != 0) {
            abort();
        }
    }
    mg_buf_reset(&c->held);
}

void
mg_conn_finish(struct mg_conn *c, int keepalive)
{
    c->keepalive = keepalive && !c->l->stopping && !c->discard;
    c->state = ST_FLUSH;
    c->gone = NULL;
    if (mg_conn_queued(c) == 0) {
        answer_written(c);
    }
}

int
mg_conn_will_close(const struct mg_conn *c)
{
    return c->discard || c->l->stopping;
}

void
mg_conn_abort(struct mg_conn *c)
{
    c->gone = NULL;   /* the handler itself asks */
    mg_conn_close(c);
}

/* ---- events -------------------------------------------------------------------------------- */

void
mg_conn_on_write(struct bufferevent *bev, void *arg)
{
    struct mg_conn *c = arg;

    if (c->state == ST_FLUSH) {
        answer_written(c);
    } else if (c->state == ST_HANDLING && c->drained != NULL) {
        c->drained(c->watch_arg);
    }
}

void
mg_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mg_conn *c = arg;

    if (what == BEV_EVENT_CONNECTED) {
        return;   /* a TLS handshake is done: the request follows */
    }
    if (c->tls && (what & BEV_EVENT_ERROR) && c->state == ST_HEAD && !c->head_started) {
        mg_log_debug("TLS with %s failed: %s", c->peer, mg_tls_error(bev));
    }
    if (c->state == ST_HANDLING || c->state == ST_FLUSH) {
        mg_log_debug("client %s %s", c->peer, (what & BEV_EVENT_TIMEOUT) ? "stopped reading"
                     : (what & BEV_EVENT_EOF) ? "closed the connection" : "connection failed");
    }
    mg_conn_close(c);
}
