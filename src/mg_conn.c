/*
 * mg_conn — HTTP/1.1 server connections (see mg_conn.h).
 *
 * A connection reads with a bufferevent whose read side stays enabled for the connection's whole
 * life: no epoll_ctl between requests, and a client that leaves while its request is handled is
 * seen at once (EOF), which is what aborts its upstream transfer. Bytes of a pipelined request
 * wait in the input (at most IN_HWM) until the answer before them is written. Answers are written
 * straight to the socket with writev when nothing is queued (as nginx does); what the socket
 * does not take goes to the bufferevent's output.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#include <event2/listener.h>

#include "mg_conn.h"
#include "mg_front.h"
#include "mg_log.h"
#include "mg_req.h"
#include "mg_util.h"

#define IN_HWM        (MG_FRONT_HEAD_MAX + 16 * 1024)   /* input kept before reading pauses */
#define READ_MAX      (64 * 1024)      /* one read from the socket */
#define BACKOFF_MS    100              /* the listener rests this long when descriptors run out */
#define ACCEPT_BATCH  1                /* connections accepted in one turn of the loop (nginx) */
#define LINGER_MS     1000
#define LINGER_BYTES  (1024 * 1024)
#define HELD_MAX      (256 * 1024)     /* a held head: the backend's headers and ours */
#define OUT_HDRS_MAX  (16 * 1024)      /* extra headers of an answer the gateway makes */
#define BODY_KEEP     (64 * 1024)      /* a body buffer larger than this is freed after use */

enum state {
    ST_HEAD,      /* waiting for, or reading, a request head */
    ST_BODY,      /* reading its body */
    ST_HANDLING,  /* the owner has the request */
    ST_FLUSH,     /* the answer has ended; its last bytes wait to be written */
    ST_LINGER     /* after a refusal: written, sending side shut, reading to discard */
};

struct mg_listener {
    struct event_base       *base;
    struct evconnlistener   *lev;
    const struct mg_conn_ops *ops;
    void                    *owner;
    struct mg_conn_limits    limits;
    uint64_t                 rng;
    struct event             backoff;
    struct event             turn_end;
    int                      resting;      /* after a failed accept */
    int                      accepted;     /* in this turn of the loop */
    int                      stopping;
    int64_t                  last_emfile_log;
    struct mg_conn          *conns;        /* every open connection */
    size_t                   nconns;
};

struct mg_conn {
    struct mg_listener      *l;
    struct mg_conn          *lprev, *lnext; /* the listener's list */
    struct bufferevent      *bev;
    int                      fd;
    enum state               state;
    int                      head_started;  /* bytes of the next head have arrived */
    int                      begun;         /* the owner was given the request (done owed) */
    unsigned                 served;        /* requests answered on this connection */
    int                      discard;       /* refused before its body was read: linger */
    int                      keepalive;     /* after the answer */
    int                      in_process;    /* process() is on the stack */
    int                      closing;       /* free once process() returns */
    size_t                   scanned;       /* input searched for the head's end */
    uint64_t                 body_left;     /* Content-Length bytes still to read */
    size_t                   lingered;
    int64_t                  deadline;      /* ms; 0: none */
    struct event             timer;
    struct event             pipelined;     /* bytes of a next request, after an answer */
    struct mg_front_head     info;
    struct mg_front_chunked *chunked;
    struct mg_req            req;
    struct mg_buf            head;          /* the head's bytes, parsed in place */
    struct mg_buf            body;
    struct mg_buf            held;          /* bytes to send before the next write */
    mg_conn_fn               gone;
    mg_conn_fn               drained;
    void                    *watch_arg;
    char                     peer[64];
};

static void process(struct mg_conn *c);

/* ---- life ---------------------------------------------------------------------------------- */

static void
conn_free(struct mg_conn *c)
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
static void
request_over(struct mg_conn *c)
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
static void
conn_close(struct mg_conn *c)
{
    if (c->state == ST_HANDLING && c->gone != NULL) {
        mg_conn_fn gone = c->gone;
        c->gone = NULL;
        gone(c->watch_arg);
    }
    request_over(c);
    c->state = ST_LINGER;   /* nothing more is read or written */
    conn_free(c);
}

static void
set_deadline(struct mg_conn *c, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};

    c->deadline = mg_now_ms() + ms;
    evtimer_add(&c->timer, &tv);
}

static void
no_deadline(struct mg_conn *c)
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
    set_deadline(c, c->l->limits.keepalive_ms);
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
    if (shutdown(c->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
        mg_log_debug("shutdown of a client connection: %s", strerror(errno));
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    set_deadline(c, LINGER_MS);
}

/* The answer has ended and its last byte is written. */
static void
answer_written(struct mg_conn *c)
{
    request_over(c);
    if (c->keepalive) {
        next_request(c);
    } else if (c->discard) {
        start_linger(c);
    } else {
        conn_free(c);
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
    if (evbuffer_get_length(out) == 0) {
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
    conn_close(c);
}

/* ---- reading ------------------------------------------------------------------------------- */

/* The connection refuses its request itself: the owner answers, the connection closes. */
static void new_request_id(struct mg_conn *c);

static void
refuse(struct mg_conn *c, int status, const char *code, const char *message)
{
    if (c->req.request_id[0] == '\0') {
        new_request_id(c);   /* refused before its head was read whole */
    }
    c->discard = 1;
    if (!c->begun) {
        c->begun = 1;
        c->l->ops->begin(c->l->owner, &c->req);
    }
    c->state = ST_HANDLING;
    no_deadline(c);
    c->l->ops->refuse(c->l->owner, &c->req, status, code, message);
}

static void
new_request_id(struct mg_conn *c)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = mg_rand_next(&c->l->rng), b = mg_rand_next(&c->l->rng);
    int i;

    for (i = 0; i < 16; i++) {
        c->req.request_id[i] = hex[(a >> (i * 4)) & 15];
        c->req.request_id[16 + i] = hex[(b >> (i * 4)) & 15];
    }
    c->req.request_id[32] = '\0';
}

/* The fields of a request before its head is parsed. */
static void
req_reset(struct mg_conn *c)
{
    struct mg_req *r = &c->req;

    r->conn = c;
    r->method = 0;
    r->method_name = NULL;
    r->minor = 1;
    r->path = NULL;
    r->query = NULL;
    r->headers.n = 0;
    r->body = "";
    r->body_len = 0;
    r->conn_close = r->conn_keep = 0;
    r->t0_us = mg_now_us();
    r->peer = c->peer;
    r->request_id[0] = '\0';
    r->has_request_id = 0;
    r->route = 0;
    r->key = NULL;
    r->api = NULL;
    mg_buf_reset(&r->out);
    r->overhead_us = -1;
}

/* The whole request is here. */
static void
dispatch(struct mg_conn *c)
{
    c->state = ST_HANDLING;
    no_deadline(c);
    c->req.body = c->body.len ? c->body.data : "";
    c->req.body_len = c->body.len;
    if (c->l->stopping) {
        c->req.conn_close = 1;   /* the answer says so, and the connection closes after it */
    }
    c->l->ops->request(c->l->owner, &c->req);
}

/* Looks for a complete head in the input; 1 when one was parsed and taken, 0 to wait. */
static int
read_head(struct mg_conn *c, struct evbuffer *in)
{
    struct mg_front_refusal why;
    size_t n = evbuffer_get_length(in), look;
    struct evbuffer_ptr at;
    char crlf[2];

    /* empty lines before a request line are skipped (RFC 9112 2.2) */
    while (!c->head_started && n >= 2 && evbuffer_copyout(in, crlf, 2) == 2 &&
           crlf[0] == '\r' && crlf[1] == '\n') {
        evbuffer_drain(in, 2);
        n -= 2;
    }
    if (n == 0) {
        return 0;
    }
    if (!c->head_started) {
        c->head_started = 1;
        req_reset(c);
        if (c->served != 0) {
            set_deadline(c, c->l->limits.header_ms);   /* a later request: from its first byte */
        }
    }
    /* searched in place, from where the last look ended: a head dripped a byte at a time
     * costs no copying (evbuffer_pullup would copy the whole head again on each read) */
    if (evbuffer_ptr_set(in, &at, c->scanned > 3 ? c->scanned - 3 : 0, EVBUFFER_PTR_SET) != 0) {
        abort();
    }
    at = evbuffer_search(in, "\r\n\r\n", 4, &at);
    if (at.pos < 0 || (size_t)at.pos + 4 > MG_FRONT_HEAD_MAX) {
        c->scanned = n;
        if (n >= MG_FRONT_HEAD_MAX) {
            refuse(c, 431, "request_header_fields_too_large",
                   "The request's header block is larger than this gateway accepts (64 KiB)");
            return 1;
        }
        return 0;
    }
    look = (size_t)at.pos + 4;
    if (c->head.cap == 0) {
        mg_buf_init(&c->head, MG_FRONT_HEAD_MAX + 1);
    }
    mg_buf_reset(&c->head);
    if (mg_buf_reserve(&c->head, look) != MG_OK ||
        evbuffer_remove(in, c->head.data, look) != (int)look) {
        abort();   /* look <= MG_FRONT_HEAD_MAX, and the input holds it */
    }
    c->head.len = look;
    c->head.data[look] = '\0';
    c->req.t0_us = mg_now_us();
    if (mg_front_parse_head(c->head.data, look, &c->req, &c->info, &why) != 0) {
        refuse(c, why.status, why.code, why.message);
        return 1;
    }
    if (!c->req.has_request_id) {
        new_request_id(c);
    }
    c->begun = 1;
    c->l->ops->begin(c->l->owner, &c->req);
    c->discard = 1;   /* if the head is answered, what follows it is not read */
    if (c->l->ops->head(c->l->owner, &c->req) != 0) {
        return 1;
    }
    c->discard = 0;
    if (c->info.content_length > 0 && (uint64_t)c->info.content_length > c->l->limits.max_body) {
        char msg[160];
        snprintf(msg, sizeof(msg), "The request body (%lld bytes) is larger than this gateway "
                 "accepts (%llu bytes)", (long long)c->info.content_length,
                 (unsigned long long)c->l->limits.max_body);
        refuse(c, 413, "request_too_large", msg);
        return 1;
    }
    c->state = ST_BODY;
    c->body_left = c->info.content_length > 0 ? (uint64_t)c->info.content_length : 0;
    if (c->body.cap == 0) {
        mg_buf_init(&c->body, (size_t)c->l->limits.max_body);
    }
    mg_buf_reset(&c->body);
    c->body.cap = (size_t)c->l->limits.max_body;
    if (c->info.chunked) {
        if (c->chunked == NULL) {
            c->chunked = mg_malloc(sizeof(*c->chunked));
        }
        memset(c->chunked, 0, offsetof(struct mg_front_chunked, line));
    }
    if (c->info.expect_continue && c->req.minor == 1 &&
        (c->info.chunked || c->body_left > evbuffer_get_length(in))) {
        struct iovec v = {(void *)"HTTP/1.1 100 Continue\r\n\r\n", 25};
        mg_conn_write(c, &v, 1);
    }
    set_deadline(c, c->l->limits.body_ms);
    return 1;
}

static int
add_body(void *arg, const char *data, size_t len)
{
    struct mg_conn *c = arg;

    return mg_buf_add(&c->body, data, len) == MG_OK ? 0 : -1;
}

static void
too_large(struct mg_conn *c)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "The request body is larger than this gateway accepts (%llu "
             "bytes)", (unsigned long long)c->l->limits.max_body);
    refuse(c, 413, "request_too_large", msg);
}

/* Moves body bytes from the input into the request; 1 when the body is whole. */
static int
read_body(struct mg_conn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);

    if (c->info.chunked) {
        struct evbuffer_iovec v;
        struct mg_front_refusal why;
        ssize_t used;
        while (!c->chunked->done && evbuffer_peek(in, -1, NULL, &v, 1) == 1 && v.iov_len != 0) {
            used = mg_front_dechunk(c->chunked, v.iov_base, v.iov_len, add_body, c, &why);
            if (used < 0) {
                if (why.status == 0) {
                    too_large(c);
                } else {
                    refuse(c, why.status, why.code, why.message);
                }
                return 0;
            }
            evbuffer_drain(in, (size_t)used);
        }
        return c->chunked->done;
    }
    if (n > c->body_left) {
        n = (size_t)c->body_left;
    }
    if (n != 0) {
        if (mg_buf_reserve(&c->body, n) != MG_OK) {
            abort();   /* the declared length was checked against the cap */
        }
        if (evbuffer_remove(in, c->body.data + c->body.len, n) != (int)n) {
            abort();
        }
        c->body.len += n;
        c->body.data[c->body.len] = '\0';
        c->body_left -= n;
    }
    return c->body_left == 0;
}

/* Reads what the input holds as far as the state allows (pipelined requests included). */
static void
process(struct mg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    c->in_process = 1;
    while (!c->closing) {
        if (c->state == ST_HEAD) {
            if (!read_head(c, in)) {
                break;
            }
        } else if (c->state == ST_BODY) {
            if (!read_body(c, in)) {
                break;
            }
            dispatch(c);
        } else if (c->state == ST_LINGER) {
            c->lingered += evbuffer_get_length(in);
            evbuffer_drain(in, evbuffer_get_length(in));
            if (c->lingered >= LINGER_BYTES) {
                c->closing = 1;
            }
            break;
        } else {
            break;   /* handled or flushing: pipelined bytes wait */
        }
    }
    c->in_process = 0;
    if (c->closing) {
        c->closing = 0;
        conn_free(c);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    process(arg);
}

static void
on_next(evutil_socket_t fd, short what, void *arg)
{
    process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct mg_conn *c = arg;

    if (c->state == ST_FLUSH) {
        answer_written(c);
    } else if (c->state == ST_HANDLING && c->drained != NULL) {
        c->drained(c->watch_arg);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mg_conn *c = arg;

    if (c->state == ST_HANDLING || c->state == ST_FLUSH) {
        mg_log_debug("client %s %s", c->peer, (what & BEV_EVENT_TIMEOUT) ? "stopped reading"
                     : (what & BEV_EVENT_EOF) ? "closed the connection" : "connection failed");
    }
    conn_close(c);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_conn *c = arg;
    int64_t left = c->deadline - mg_now_ms();

    if (c->deadline == 0) {
        return;
    }
    if (left > 0) {   /* the deadline moved later since the timer was armed */
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000 * 1000)};
        evtimer_add(&c->timer, &tv);
        return;
    }
    c->deadline = 0;
    switch (c->state) {
    case ST_HEAD:
        if (c->head_started) {
            mg_log_info("closing the connection of %s: its request head took over %lld ms",
                        c->peer, (long long)c->l->limits.header_ms);
        }
        conn_close(c);
        break;
    case ST_BODY:
        refuse(c, 408, "request_timeout", "The request body did not arrive within the "
               "gateway's body_timeout");
        break;
    case ST_LINGER:
        conn_free(c);
        break;
    default:
        break;
    }
}

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
    struct timeval wtv = {(time_t)(l->limits.keepalive_ms / 1000),
                          (suseconds_t)(l->limits.keepalive_ms % 1000 * 1000)};
    struct mg_conn *c;

    if (l->accepted++ == 0) {
        event_active(&l->turn_end, EV_TIMEOUT, 1);
    }
    if (l->accepted == ACCEPT_BATCH) {
        evconnlistener_disable(lev);
    }
    c = mg_calloc(1, sizeof(*c));
    c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        mg_log_error("cannot set up a client connection");
        close(fd);
        free(c);
        return;
    }
    c->l = l;
    c->fd = fd;
    c->state = ST_HEAD;
    format_peer(c->peer, sizeof(c->peer), sa);
    mg_buf_init(&c->req.out, OUT_HDRS_MAX);
    c->req.conn = c;
    c->req.peer = c->peer;
    evtimer_assign(&c->timer, l->base, on_timer, c);
    event_assign(&c->pipelined, l->base, -1, 0, on_next, c);
    c->lnext = l->conns;
    if (l->conns != NULL) {
        l->conns->lprev = c;
    }
    l->conns = c;
    l->nconns++;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HWM);
    bufferevent_set_max_single_read(c->bev, READ_MAX);
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
        mg_log_error("cannot watch a client connection");
        conn_free(c);
        return;
    }
    set_deadline(c, l->limits.header_ms);   /* the first request's head: from the accept */
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
    evtimer_add(&l->backoff, &tv);
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
    l->rng = ((uint64_t)(uintptr_t)l << 16) ^ (uint64_t)mg_now_us() ^ 0x9E3779B97F4A7C15ull;
    evtimer_assign(&l->backoff, base, resume_accepting, l);
    event_assign(&l->turn_end, base, -1, 0, on_turn_end, l);
    l->lev = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                -1, fd);
    if (l->lev == NULL) {
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    return l;
}

void
mg_listener_set_limits(struct mg_listener *l, const struct mg_conn_limits *limits)
{
    l->limits = *limits;
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
            conn_free(c);   /* idle between requests */
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
        conn_close(l->conns);
    }
    free(l);
}

size_t
mg_listener_connections(const struct mg_listener *l)
{
    return l->nconns;
}
