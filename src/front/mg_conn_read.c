/*
 * mg_conn_read — a connection's input side: opening it, its read loop (pipelined requests
 * included) and its deadline timer; reading a request: the head found and parsed (mg_front),
 * given to the owner before any body byte is buffered, then the body (Content-Length or chunked)
 * read into the request within max_body_size, and the whole request handed over.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "mg_conn_int.h"
#include "mg_log.h"
#include "mg_tls.h"

/* ---- reading ------------------------------------------------------------------------------- */

static void new_request_id(struct mg_conn *c);

/* The connection refuses its request itself: the owner answers, the connection closes. */
void
mg_conn_refuse(struct mg_conn *c, int status, const char *code, const char *message)
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
    mg_conn_no_deadline(c);
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
    r->cors_origin[0] = '\0';
    mg_buf_reset(&r->out);
    r->overhead_us = -1;
}

/* The whole request is here. */
void
mg_conn_dispatch(struct mg_conn *c)
{
    c->state = ST_HANDLING;
    mg_conn_no_deadline(c);
    c->req.body = c->body.len ? c->body.data : "";
    c->req.body_len = c->body.len;
    if (c->l->stopping) {
        c->req.conn_close = 1;   /* the answer says so, and the connection closes after it */
    }
    c->l->ops->request(c->l->owner, &c->req);
}

/* Looks for a complete head in the input; 1 when one was parsed and taken, 0 to wait. */
int
mg_conn_read_head(struct mg_conn *c, struct evbuffer *in)
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
        if (c->served != 0) {   /* a later request: from its first byte */
            mg_conn_deadline(c, c->l->limits.header_ms);
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
            mg_conn_refuse(c, 431, "request_header_fields_too_large",
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
        mg_conn_refuse(c, why.status, why.code, why.message);
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
        mg_conn_refuse(c, 413, "request_too_large", msg);
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
    mg_conn_deadline(c, c->l->limits.body_ms);
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
    mg_conn_refuse(c, 413, "request_too_large", msg);
}

/* Moves body bytes from the input into the request; 1 when the body is whole. */
int
mg_conn_read_body(struct mg_conn *c, struct evbuffer *in)
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
                    mg_conn_refuse(c, why.status, why.code, why.message);
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

/* ---- the loop ------------------------------------------------------------------------------ */

/* Reads what the input holds as far as the state allows (pipelined requests included). */
static void
process(struct mg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    c->in_process = 1;
    while (!c->closing) {
        if (c->state == ST_HEAD) {
            if (!mg_conn_read_head(c, in)) {
                break;
            }
        } else if (c->state == ST_BODY) {
            if (!mg_conn_read_body(c, in)) {
                break;
            }
            mg_conn_dispatch(c);
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
        mg_conn_free(c);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    process(arg);
}

void
mg_conn_resume(struct mg_conn *c, mg_conn_fn fn, void *arg)
{
    c->in_process = 1;   /* as in process(): an answer made in fn leaves the request readable */
    fn(arg);
    c->in_process = 0;
    if (c->closing) {
        c->closing = 0;
        mg_conn_free(c);
    } else if (c->state == ST_HEAD &&
               evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
        event_active(&c->pipelined, EV_TIMEOUT, 1);   /* a pipelined request waited */
    }
}

static void
on_next(evutil_socket_t fd, short what, void *arg)
{
    process(arg);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_conn *c = arg;
    int64_t left = c->deadline - mg_now_ms();

    if (c->deadline == 0) {
        return;
    }
    if (left > 0) {   /* fired a little early (the clocks' granularity differ) */
        mg_conn_deadline(c, left);
        return;
    }
    c->deadline = 0;
    switch (c->state) {
    case ST_HEAD:
        if (c->head_started) {
            mg_log_info("closing the connection of %s: its request head took over %lld ms",
                        c->peer, (long long)c->l->limits.header_ms);
        }
        mg_conn_close(c);
        break;
    case ST_BODY:
        mg_conn_refuse(c, 408, "request_timeout", "The request body did not arrive within the "
               "gateway's body_timeout");
        break;
    case ST_LINGER:
        mg_conn_free(c);
        break;
    default:
        break;
    }
}

/* ---- opening ------------------------------------------------------------------------------ */

void
mg_conn_open(struct mg_listener *l, int fd, const char *peer)
{
    struct timeval wtv = {(time_t)(l->limits.keepalive_ms / 1000),
                          (suseconds_t)(l->limits.keepalive_ms % 1000 * 1000)};
    struct mg_conn *c = mg_calloc(1, sizeof(*c));

    if (l->limits.tls != NULL) {
        c->bev = mg_tls_accept(l->limits.tls, l->base, fd);   /* closes fd when it fails */
        c->tls = 1;
    } else if ((c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
        close(fd);
    }
    if (c->bev == NULL) {
        mg_log_error("cannot set up a client connection");
        free(c);
        return;
    }
    c->l = l;
    c->fd = fd;
    c->state = ST_HEAD;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
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
    bufferevent_setcb(c->bev, on_read, mg_conn_on_write, mg_conn_on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_HWM);
    if (bufferevent_set_max_single_read(c->bev, READ_MAX) != 0 ||
        bufferevent_set_timeouts(c->bev, NULL, &wtv) != 0 ||
        bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
        mg_log_error("cannot watch a client connection");
        mg_conn_free(c);
        return;
    }
    mg_conn_deadline(c, l->limits.header_ms);   /* the first request's head: from the accept */
}
