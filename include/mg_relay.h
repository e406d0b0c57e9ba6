/*
 * mg_relay — the chain of stages a committed answer's body goes through on its way to the
 * client (h2o's output filters): each stage takes bytes, may hold some, and passes the rest to
 * the next; the last stage is the client. Backpressure is checked once, before the chain.
 *
 * The stages today's schemas use are embedded here, so a request allocates nothing to build its
 * chain: the SSE usage observer (bytes pass at once; events are looked at for usage), the SSE
 * usage stripper (for a stream whose usage the gateway asked for itself: events pass whole, the
 * extra usage event and the "usage":null members removed), and the JSON tail keeper (bytes pass
 * at once; the last 16-32 KiB are kept to read the usage at the end).
 */
#ifndef MG_RELAY_H
#define MG_RELAY_H

#include <stddef.h>

#include "mg_usage.h"
#include "mg_util.h"

struct mg_relay;

struct mg_stage {
    /* Takes n bytes; passes what it can to next. */
    void (*write)(struct mg_stage *s, const char *p, size_t n);
    /* The answer ended cleanly: passes on what it holds, then ends next. */
    void (*end)(struct mg_stage *s);
    struct mg_stage *next;
    struct mg_relay *relay;
};

/* Writes bytes to the client. */
typedef void (*mg_relay_emit_fn)(void *arg, const char *p, size_t n);

struct mg_relay {
    struct mg_stage *head;       /* bytes from the backend go in here */
    struct mg_stage  sink;       /* the client */
    mg_relay_emit_fn emit;
    void            *arg;
    /* usage the stages read from the answer */
    struct mg_usage  usage;
    int              have_usage;
    /* the embedded stages and their state */
    struct mg_stage  sse_observe;
    struct mg_stage  sse_strip;
    struct mg_stage  json_tail;
    struct mg_sse    split;
    struct mg_buf    scratch;    /* an event with its "usage":null removed */
    struct mg_buf    tail;       /* the end of a JSON answer */
};

/* Sets up a relay that ends in emit(arg, ...); its chain is only the client. */
void mg_relay_init(struct mg_relay *r, mg_relay_emit_fn emit, void *arg);
void mg_relay_deinit(struct mg_relay *r);

/* Adds stage s at the end of the chain, just before the client. */
void mg_relay_add(struct mg_relay *r, struct mg_stage *s);

/* Feeds n bytes of the answer's body into the chain. */
void mg_relay_write(struct mg_relay *r, const char *p, size_t n);

/* The answer ended cleanly: every stage passes on what it holds. */
void mg_relay_end(struct mg_relay *r);

/* Records usage read from p[0..n) (a JSON answer, its tail, or one event); 1 when found. */
int mg_relay_note_usage(struct mg_relay *r, const char *p, size_t n);

/* Adds the SSE usage observer. */
void mg_relay_add_sse_observe(struct mg_relay *r);
/* Adds the SSE usage stripper. */
void mg_relay_add_sse_strip(struct mg_relay *r);
/* Adds the JSON tail keeper. */
void mg_relay_add_json_tail(struct mg_relay *r);

#endif
