/*
 * mg_conn_int — what the three files of the connection module share (mg_conn.c: a connection's
 * life, its writing and its events; mg_conn_read.c: reading a request; mg_listen.c: accepting).
 * Not a public header: nothing outside mg_conn*.c and mg_listen.c includes it.
 */
#ifndef MG_CONN_INT_H
#define MG_CONN_INT_H

#include <stdint.h>

#include <event2/event_struct.h>

#include "mg_conn.h"
#include "mg_front.h"
#include "mg_req.h"
#include "mg_util.h"

struct bufferevent;
struct evbuffer;
struct evconnlistener;

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
    int                      tls;           /* bev is a TLS bufferevent: no direct writev */
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

/* A new connection on an accepted socket, peer its "addr:port" (mg_conn_read.c). */
void mg_conn_open(struct mg_listener *l, int fd, const char *peer);

/* Ends a connection now: the owner's gone hook first, then done, then the memory. */
void mg_conn_close(struct mg_conn *c);

/* Frees a connection (later, when process() is on the stack). */
void mg_conn_free(struct mg_conn *c);

/* The connection's one deadline, ms from now; or none. */
void mg_conn_deadline(struct mg_conn *c, int64_t ms);
void mg_conn_no_deadline(struct mg_conn *c);

/* The request is over for its owner (done, once). */
void mg_conn_request_over(struct mg_conn *c);

/* The bufferevent's write and event callbacks (mg_conn.c). */
struct bufferevent;
void mg_conn_on_write(struct bufferevent *bev, void *arg);
void mg_conn_on_event(struct bufferevent *bev, short what, void *arg);

/* mg_conn_read.c: the connection answers its request with an error itself, then closes. */
void mg_conn_refuse(struct mg_conn *c, int status, const char *code, const char *message);

/* mg_conn_read.c: a complete head parsed and taken (1), or wait for more (0). */
int mg_conn_read_head(struct mg_conn *c, struct evbuffer *in);

/* mg_conn_read.c: body bytes moved into the request; 1 when the body is whole. */
int mg_conn_read_body(struct mg_conn *c, struct evbuffer *in);

/* mg_conn_read.c: the whole request goes to the owner. */
void mg_conn_dispatch(struct mg_conn *c);

#endif
