/*
 * mg_attempt — one try of a request on one backend: the upstream transfer, its timers, the
 * response head parsed once, and the one outcome the proxy acts on.
 *
 * An attempt is embedded in its request and reset as a whole between tries. It reports to its
 * owner through three callbacks: head (a final or fail-over head arrived; from inside a curl
 * callback, so the owner may reply but must not free anything), body (committed bytes), and end
 * (the attempt is over, from the event loop: the owner may start the next one or finish).
 */
#ifndef MG_ATTEMPT_H
#define MG_ATTEMPT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/event_struct.h>

#include "mg_head.h"
#include "mg_outcome.h"
#include "mg_schema.h"
#include "mg_upstream.h"
#include "mg_util.h"

struct event_base;
struct mg_backend;
struct mg_rule_backend;

#define MG_HELD_BODY_MAX (64 * 1024)    /* body read of a fail-over answer, or of a 400 */
#define MG_ATTEMPT_PAUSE CURL_WRITEFUNC_PAUSE

struct mg_attempt;

struct mg_attempt_ops {
    void   (*head)(void *owner, struct mg_attempt *a, enum mg_outcome o);
    size_t (*body)(void *owner, struct mg_attempt *a, const char *p, size_t n);
    void   (*end)(void *owner, struct mg_attempt *a, enum mg_outcome o);
};

struct mg_attempt {
    /* this try */
    const struct mg_backend      *backend;
    const struct mg_rule_backend *entry;
    const struct mg_schema       *schema;
    struct mg_upreq               up;
    struct mg_resp_head           head;
    struct mg_buf                 held;      /* body of a fail-over answer, or of a 400 */
    int                           held_cut;  /* that body did not arrive whole */
    unsigned                      flags;     /* MG_AF_* */
    int64_t                       t_sent;    /* the request went out (mg_now_ms) */
    int                           stream;    /* the client asked for a stream: first_token runs
                                              * from t_sent, before the head too */
    int                           timer_first_token;   /* the armed timer is first_token's */
    int                           timer_idle;   /* the armed timer is idle's, moved lazily */
    int64_t                       idle_due;     /* when idle runs out, from the last body bytes */
    enum mg_phase                 phase;
    enum mg_outcome               outcome;   /* the last one reported */
    const char                   *timeout;   /* which timer fired, for logs; NULL when none */
    CURLcode                      rc;
    int                           paused;
    char                          errbuf[CURL_ERROR_SIZE];
    struct mg_upstream_xfer       xfer;
    struct event                  timer;
    /* set once */
    struct mg_upstream           *upstream;
    const struct mg_attempt_ops  *ops;
    void                         *owner;
};

/* Sets up an idle attempt on base; max_body caps the request body a schema may edit. */
void mg_attempt_init(struct mg_attempt *a, struct event_base *base, struct mg_upstream *up,
                     size_t max_body, const struct mg_attempt_ops *ops, void *owner);
/* Stops whatever runs and frees what the attempt holds. */
void mg_attempt_deinit(struct mg_attempt *a);

/* Forgets the last try (its transfer must be over) and makes this one on backend b, entry e. */
void mg_attempt_reset(struct mg_attempt *a, const struct mg_backend *b,
                      const struct mg_rule_backend *e);

/* Starts the transfer of a->up (built by a->schema). MG_OK, or MG_ERR when it cannot start. */
int mg_attempt_start(struct mg_attempt *a);

/* Cancels the transfer and the timer; no callback follows. Never from a curl callback. */
void mg_attempt_stop(struct mg_attempt *a);

/* The relay committed the answer: from now on this attempt is the client's answer. */
void mg_attempt_committed(struct mg_attempt *a);

/* Lets a paused transfer go on (the client drained what was queued). */
void mg_attempt_resume(struct mg_attempt *a);

/* Why the attempt failed in a few words, fit for a client (no address, no library text). */
const char *mg_attempt_reason(const struct mg_attempt *a);

/* Why the transfer failed, for the error log (never sent to clients). */
const char *mg_attempt_error(const struct mg_attempt *a);

#endif
