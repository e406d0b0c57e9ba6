/*
 * mg_relay — the chain of stages an answer's body goes through on its way to the client (h2o's
 * output filters): each stage takes bytes (or, after the SSE splitter, one event at a time), may
 * hold some, and passes the rest on; the last stage is the client. Backpressure is checked once,
 * before the chain.
 *
 * The commit gate is a stage: nothing reaches the client before it commits. A plain answer
 * commits with its first body byte; an event stream with its first event that carries output
 * (the events before it are held, 64 KiB at most), or at its clean end after at least one event;
 * one that ends before any event is no answer (r->empty: it fails over like a 502). The gate also
 * ends a stream as the client's API says (mg_api: its event classifier, end-of-stream rule and
 * error event): [DONE] added after a finish, one error event after a failure once committed.
 *
 * The stages today's schemas use are embedded here, so a request allocates nothing to build its
 * chain: the SSE splitter, the gate, the SSE usage observer, the SSE usage stripper (for a stream
 * whose usage the gateway asked for itself) and the JSON tail keeper.
 */
#ifndef MG_RELAY_H
#define MG_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "mg_api_types.h"
#include "mg_usage.h"
#include "mg_util.h"

#define MG_RELAY_HOLD_MAX (64 * 1024)   /* events held before the commit point */

struct mg_relay;

struct mg_stage {
    /* Takes n bytes, or one event (whole=0: a piece of an event too large to hold). */
    void (*write)(struct mg_stage *s, const char *p, size_t n, int whole);
    /* The answer ended cleanly: passes on what it holds, then ends next. */
    void (*end)(struct mg_stage *s);
    struct mg_stage *next;
    struct mg_relay *relay;
};

/* Writes bytes to the client (mg_wire_emit: straight onto the client's connection). */
typedef void (*mg_relay_emit_fn)(void *arg, const char *p, size_t n);
/* The answer commits: the client gets its status and headers now, before its first byte. */
typedef void (*mg_relay_commit_fn)(void *arg);

struct mg_relay {
    struct mg_stage   *head;        /* bytes from the backend go in here */
    struct mg_stage    sink;        /* the client */
    mg_relay_emit_fn   emit;
    void              *emit_arg;
    mg_relay_commit_fn commit;
    void              *arg;
    const struct mg_api *api;       /* the client's API: its stream rules */
    int                sse;         /* the answer is an event stream */
    int                keep_length; /* the client gets the body as sent: its length holds */
    int                no_usage;    /* this answer is no usage (count_tokens): none estimated */
    /* what the stages found */
    int                committed;
    int                failed;      /* broken before the commit: the attempt fails over */
    int                cut;         /* broken after it: the error event is sent, stop reading */
    int                hold_cut;    /* a cut's error event waits (mid-stream resume may continue
                                     * the stream instead): cut_held, mg_relay_cut_event() */
    int                cut_held;
    int                finished;    /* a finish_reason (or message_stop) went by */
    int                done;        /* data: [DONE] went by */
    int                any_event;   /* an event went by (comments and blank lines are none) */
    int                empty;       /* the stream ended before any event: fails over like a 502 */
    char               why[256];    /* the backend's message, for logs and the error event */
    int64_t            bytes_in;    /* the answer's body bytes as the backend sent them */
    int64_t            out_events;  /* stream events relayed from the commit point on, [DONE]
                                     * and comments aside: the output estimate (one token each) */
    struct mg_usage    usage;
    int                have_usage;
    /* the embedded stages and their state */
    struct mg_stage    split;
    struct mg_stage    gate;
    struct mg_stage    sse_observe;
    struct mg_stage    sse_strip;
    struct mg_stage    json_tail;
    struct mg_sse      splitter;
    struct mg_buf      held;        /* events before the commit point */
    struct mg_buf      scratch;     /* an event with its "usage":null removed */
    struct mg_buf      tail;        /* the end of a JSON answer */
    /* a schema's own stage (a translator), its state, and the client's Content-Type if changed */
    struct mg_stage    xlate;
    void              *xstate;      /* freed with xfree when the answer is forgotten */
    void             (*xfree)(void *xstate);
    const char        *content_type;
    /* the client API's stage when chat carries it (the hub): the last before the client; a
     * plain answer commits there, at its end, once translated; client_fail writes the API's
     * error events when the stream breaks after the commit */
    struct mg_stage   *client;
    void             (*client_fail)(struct mg_stage *s, const char *why);
    void              *cstate;      /* the client stage's state, freed with cfree like xstate */
    /* the plain chat answer a schema translated, as the structure it wrote it from (a struct
     * mg_oai_kept of mg_oai.h, the schema's), for a client stage that would read it again;
     * NULL */
    const void        *chat_answer;
    void             (*cfree)(void *cstate);
};

/*
 * Sets up a relay ending in emit(emit_arg, ...); commit(arg) is called once, at the commit point
 * (the owner sends the head there).
 */
void mg_relay_init(struct mg_relay *r, mg_relay_emit_fn emit, void *emit_arg,
                   mg_relay_commit_fn commit, void *arg);
void mg_relay_deinit(struct mg_relay *r);

/*
 * Forgets the last answer (a failed attempt's) and starts a new one, an event stream or not, to
 * a client of api; the chain is the client.
 */
void mg_relay_reset(struct mg_relay *r, int sse, const struct mg_api *api);

/* Adds stage s at the end of the chain, just before the client. */
void mg_relay_add(struct mg_relay *r, struct mg_stage *s);
/* Adds stage s just before the client API's stage (mg_relay_add_client), or at the end. */
void mg_relay_add_before_client(struct mg_relay *r, struct mg_stage *s);

/*
 * Adds the client API's stage (the chat hub's translation) at the end of the chain: it receives
 * chat events after the gate (which reads chat's rules) or a whole plain chat answer, which then
 * commits only when the stage calls mg_relay_commit(). fail writes the API's own error events
 * in place of chat's after the commit.
 */
void mg_relay_add_client(struct mg_relay *r, struct mg_stage *s,
                         void (*fail)(struct mg_stage *s, const char *why));
/* Gives r the client stage's state for this answer (freed with cfree at the next reset). */
void mg_relay_set_client_state(struct mg_relay *r, void *state, void (*cfree)(void *state));
/* The client stage's plain answer commits now (its head is sent); a no-op once committed. */
void mg_relay_commit(struct mg_relay *r);
/* Feeds n bytes of the answer's body into the chain. */
void mg_relay_write(struct mg_relay *r, const char *p, size_t n);

/*
 * The relay's verdict so far, as the outcome table reads it (mg_outcome.h's MG_AF_RELAY_*): the
 * stream broke before the commit (or ended before any event), or was cut after it.
 */
unsigned mg_relay_verdict(const struct mg_relay *r);

/* The answer ended cleanly: every stage passes on what it holds (the gate commits if it has not). */
void mg_relay_end(struct mg_relay *r);

/*
 * The backend broke its answer (an error event, a bad frame, or the transport after commit;
 * why is a short reason). Before the commit the attempt fails (r->failed); after it an event
 * stream gets its one error event (r->cut). Returns 1 when that event was written now.
 */
int mg_relay_fail(struct mg_relay *r, const char *why, size_t n);

/*
 * Ends a committed stream with the client API's one error event (why: its message): the event a
 * held cut did not write, or the end of a resumed stream whose continuation failed.
 */
void mg_relay_cut_event(struct mg_relay *r, const char *why);

/* Records usage read from p[0..n) (a JSON answer, its tail, or one event); 1 when found. */
int mg_relay_note_usage(struct mg_relay *r, const char *p, size_t n);

/* The stages. For an event stream the splitter comes first; the gate before usage readers. */
void mg_relay_add_sse_split(struct mg_relay *r);
void mg_relay_add_gate(struct mg_relay *r);
void mg_relay_add_sse_observe(struct mg_relay *r);
void mg_relay_add_sse_strip(struct mg_relay *r);
void mg_relay_add_json_tail(struct mg_relay *r);

/*
 * For a schema's stages: gives r the state of this answer's stages (freed with xfree(state) at
 * the next reset or at deinit).
 */
void mg_relay_set_state(struct mg_relay *r, void *state, void (*xfree)(void *state));

/* Passes p[0..n), a run of whole SSE events ("...\n\n" each), to s->next one event at a time. */
void mg_relay_pass_events(struct mg_stage *s, const char *p, size_t n);

/* Keeps the last 16-32 KiB of what went by in r->tail (where a JSON answer's usage is). */
void mg_relay_keep_tail(struct mg_relay *r, const char *p, size_t n);

/*
 * What one event is for the gate (exposed for tests): MG_EV_* bits (mg_api.h). What every API
 * shares is read here ("event: error", comments, [DONE]); the rest is api->event_kind.
 */
int mg_relay_event_kind(const struct mg_api *api, int committed, const char *p, size_t n);

#endif
