/*
 * mg_wire — the bytes of a relayed answer on the client's connection: the head written in one
 * pass (status line, headers, Date, framing, Connection) and the body framed by the gateway
 * (chunked, or as the backend's length said), handed to libevent with no formatting left to do.
 *
 * libevent's evhttp_send_reply_start() keeps headers as a list (three allocations a header),
 * looks names up with linear case-folding searches and formats every line with a printf; each
 * chunk's size is one more printf. Measured with callgrind on a plain proxied answer, that was
 * about 20,000 instructions of a request's ~160,000. Here each header is two memcpy calls into a
 * buffer that is one evbuffer_add() at the end.
 *
 * The head waits for the first body bytes (or the end) and leaves with them in one writev
 * straight to the socket when nothing is queued, as nginx writes: no write event armed and
 * disarmed (two epoll_ctl calls), no extra turn of the loop. What the socket does not take is
 * handed to libevent with evhttp_send_reply_chunk_with_cb() (the request's own framing off:
 * req->chunked stays 0), and evhttp_send_reply_end() ends the exchange, so libevent still owns
 * the connection: keep-alive, pipelining and the request's completion callback work as before.
 * The keep-alive decision here is the one libevent makes when the reply ends (mg_wire_framing),
 * and when the answer must close the connection, the request's header list says so too.
 */
#ifndef MG_WIRE_H
#define MG_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;
struct evhttp_connection;
struct evhttp_request;

#define MG_WIRE_STAGE 2048   /* head bytes gathered before they are handed over */

/* How an answer is framed on the client's connection: a pure decision, tested on its own. */
struct mg_wire_frame {
    int body;        /* the status (and method) allow a body */
    int chunked;     /* the body goes as chunks */
    int keepalive;   /* the connection stays open after the answer */
    int say_close;   /* the head says "Connection: close" */
    int say_keep;    /* the head says "Connection: keep-alive" (an HTTP/1.0 client asked) */
};

/*
 * The framing of an answer: minor is the client's HTTP/1.x minor version, status the answer's,
 * head 1 for a HEAD request, content_length the body's length or -1 when it is not known
 * beforehand, conn_close / conn_keep whether the client's Connection header is "close" /
 * "keep-alive". HTTP/1.1 gets chunks when the length is unknown; HTTP/1.0 then gets the body up
 * to the close of the connection.
 */
void mg_wire_framing(struct mg_wire_frame *f, int minor, int status, int head,
                     int64_t content_length, int conn_close, int conn_keep);

/* "HTTP/1.1 200 OK\r\n" for status into buf (at least 64 bytes); its length. */
size_t mg_wire_status_line(char *buf, int minor, int status);

/* "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n" for t into buf (at least 48 bytes); its length. */
size_t mg_wire_date_line(char *buf, time_t t);

/* One answer being written. Embedded in the request's state; set up by mg_wire_begin(). */
struct mg_wire {
    struct evhttp_request *req;
    struct evbuffer       *out;       /* the caller's scratch buffer, handed to libevent */
    struct mg_wire_frame   frame;
    int                    status;
    int                    have_date; /* the head holds the backend's Date: ours is not added */
    size_t                 len;       /* bytes in the thread's stage (see mg_wire_begin) */
    int                    pending;   /* the head waits in out for the first body bytes */
    void                 (*cb)(struct evhttp_connection *, void *);
    void                  *arg;
};

/*
 * Starts the head of an answer with this status (its status line). The head is gathered in a
 * buffer of the calling thread until mg_wire_send_head(): begin, headers and send_head must run
 * in one go, with no other answer's head begun in between (each worker runs one at a time).
 */
void mg_wire_begin(struct mg_wire *w, struct evhttp_request *req, struct evbuffer *out,
                   int status);

/*
 * Adds one header line. Names and values must already be checked (mg_hdr, mg_head). A caller
 * that adds a Date line sets have_date, so that the head gets only one.
 */
void mg_wire_header(struct mg_wire *w, const char *name, const char *value);

/*
 * Ends the head (Date unless one was added, framing, Connection); it leaves with the first body
 * bytes or at mg_wire_end(). content_length is the body's length when it is known and relayed
 * as is, else -1. cb runs each time the connection's output has drained after bytes had to wait
 * (backpressure), as evhttp_send_reply_chunk_with_cb() sets it.
 */
void mg_wire_send_head(struct mg_wire *w, int64_t content_length,
                       void (*cb)(struct evhttp_connection *, void *), void *arg);

/*
 * Body bytes, framed as the head said (nothing for a status or method without a body), with the
 * head if it has not left yet: written to the socket at once when nothing waits before them,
 * else queued behind what waits.
 */
void mg_wire_body(struct mg_wire *w, const char *data, size_t len);

/*
 * Ends the answer (the last chunk when chunked) and gives the exchange back to libevent, which
 * may complete and free the request before this returns.
 */
void mg_wire_end(struct mg_wire *w);

#endif
