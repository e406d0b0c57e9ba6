/*
 * mg_conn — the gateway's own HTTP/1.1 server connection, on libevent bufferevents: accepts on a
 * listening socket, reads each request head incrementally (mg_front's grammar and rules), hands
 * the head to its owner before any body byte is buffered (so a request without a valid key is
 * refused first), reads the body into the request (Content-Length or chunked, at most
 * max_body_size, within body_timeout), then hands the whole request over; keep-alive and
 * pipelining; the writing of answers' bytes (mg_wire formats them); lingering close.
 *
 * Deadlines (one timer a connection, moved only when the state changes): the whole head within
 * header_timeout (the first request's from the accept, later ones' from their first byte), the
 * wait for the next request within keepalive_timeout, the body within body_timeout; a write
 * that makes no progress for keepalive_timeout ends the connection.
 *
 * Only the front end (mg_http) creates listeners; handlers see a connection through its request
 * (req->conn) and the calls below.
 */
#ifndef MG_CONN_H
#define MG_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct event_base;
struct mg_conn;
struct mg_listener;
struct mg_req;
struct mg_tls;

/* What the owner of a listener does with the requests its connections read. */
struct mg_conn_ops {
    /* A request is handed to the owner (before head or refuse): done follows, exactly once. */
    void (*begin)(void *owner, struct mg_req *req);
    /*
     * A head passed the front end's rules. Return 0 to have the body read, or answer req now
     * (which ends it: the connection then closes after a lingering read).
     */
    int  (*head)(void *owner, struct mg_req *req);
    /* The whole request is here: the owner answers it, now or later, exactly once. */
    void (*request)(void *owner, struct mg_req *req);
    /* The connection refuses the request itself: the owner answers it with this error. */
    void (*refuse)(void *owner, struct mg_req *req, int status, const char *code,
                   const char *message);
    /* A request begun is over: answered and written, or its client gone. */
    void (*done)(void *owner, struct mg_req *req);
};

struct mg_conn_limits {
    struct mg_tls *tls;       /* new connections speak TLS with it; NULL: plain (mg_tls.h) */
    uint64_t max_body;        /* bytes */
    int64_t  header_ms;
    int64_t  body_ms;
    int64_t  keepalive_ms;
};

/*
 * Starts accepting on fd (listening, non-blocking; the listener closes it) from base. The owner
 * gets each request through ops. NULL when libevent cannot watch fd.
 */
struct mg_listener *mg_listener_create(struct event_base *base, int fd,
                                       const struct mg_conn_ops *ops, void *owner,
                                       const struct mg_conn_limits *limits);

/*
 * New limits (a reload); connections read them at their next state change, and those accepted
 * from now on use the new TLS context (the listener holds a reference to it).
 */
void mg_listener_set_limits(struct mg_listener *l, const struct mg_conn_limits *limits);

/*
 * Stops accepting (the listening socket is closed) and closes the connections that wait for a
 * request; those with a request in hand finish it and then close.
 */
void mg_listener_stop(struct mg_listener *l);

/* Closes every connection and frees the listener (NULL is a no-op). */
void mg_listener_destroy(struct mg_listener *l);

/* Connections open on the listener. */
size_t mg_listener_connections(const struct mg_listener *l);

/* ---- what a handler does with its request's connection ----------------------------------- */

typedef void (*mg_conn_fn)(void *arg);

/*
 * Watches the connection while the answer is made: gone runs when the client leaves (or a write
 * fails or stalls) before the answer has ended — the request is over, its memory about to be
 * freed, and nothing more may be written —; drained runs when bytes that had to wait have all
 * been written. NULLs stop the watch.
 */
void mg_conn_watch(struct mg_conn *c, mg_conn_fn gone, mg_conn_fn drained, void *arg);

/*
 * Runs fn(arg) for the request on c that waited (off the connection's own callbacks: a reply
 * from Redis) as if the request had just been read: an answer fn makes leaves the request
 * readable until fn returns, as in the owner's request callback.
 */
void mg_conn_resume(struct mg_conn *c, mg_conn_fn fn, void *arg);

/* Bytes queued for the client that the socket has not taken yet. */
size_t mg_conn_queued(const struct mg_conn *c);

/* Keeps bytes to send in front of the next write (a head waiting for its first body bytes). */
void mg_conn_hold(struct mg_conn *c, const char *data, size_t len);

/*
 * Sends what is held, then iov[0..n): written to the socket at once when nothing waits before
 * them (one writev), else queued behind what waits.
 */
void mg_conn_write(struct mg_conn *c, const struct iovec *iov, int n);

/*
 * The answer has ended. keepalive 0 closes the connection once it is written. The request may be
 * over and freed before this returns: the caller must not touch it after.
 */
void mg_conn_finish(struct mg_conn *c, int keepalive);

/* 1 when the connection closes after the current answer whatever the client asked. */
int mg_conn_will_close(const struct mg_conn *c);

/* Ends the connection at once (an answer cut short); the request is over and freed. */
void mg_conn_abort(struct mg_conn *c);

#endif
