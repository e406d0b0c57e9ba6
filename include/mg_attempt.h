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
#include "mg_schema.h"
#include "mg_upstream.h"
#include "mg_util.h"

struct event_base;
struct mg_backend;
struct mg_rule_backend;

#define MG_HELD_BODY_MAX (256 * 1024)   /* body kept of a fail-over answer */
#define MG_ATTEMPT_PAUSE CURL_WRITEFUNC_PAUSE

/* Where an attempt stands. */
enum mg_phase {
    MG_PHASE_WAIT,    /* started, no final head yet */
    MG_PHASE_HOLD,    /* a fail-over head: its body is read aside */
    MG_PHASE_RELAY,   /* committed: body bytes go to the client */
};

/* What happened to an attempt; every module reads the same value (stats, logs, next step). */
enum mg_outcome {
    MG_OUTCOME_PENDING,       /* nothing decided (an informational head) */
    MG_OUTCOME_COMMIT,        /* a final head: the client gets this answer */
    MG_OUTCOME_HOLD,          /* a fail-over head: read its body aside */
    MG_OUTCOME_COMPLETE,      /* a committed answer ended cleanly */
    MG_OUTCOME_CUT,           /* a committed answer broke (error or timeout after commit) */
    MG_OUTCOME_FAIL_STATUS,   /* a fail-over answer (429, 5xx): move on, keep it */
    MG_OUTCOME_FAIL_ERROR,    /* connect, TLS, reset, closed or bad head before commit */
    MG_OUTCOME_FAIL_TIMEOUT,  /* a timeout before commit */
};

/* What the attempt saw. */
enum mg_attempt_event {
    MG_AEV_HEAD,      /* a complete head, classified by the schema as cls */
    MG_AEV_END,       /* the transfer finished with rc */
    MG_AEV_TIMEOUT,   /* one of the gateway's timers fired */
};

/*
 * The outcome of event ev in phase (cls for heads, rc for ends). Pure: the whole decision table
 * of the proxy in one place.
 */
enum mg_outcome mg_outcome_classify(enum mg_phase phase, enum mg_attempt_event ev,
                                    enum mg_head_class cls, CURLcode rc);

/* 1 for the outcomes that move on to the next attempt. */
int mg_outcome_fails(enum mg_outcome o);

/* The result label of modelgate_backend_attempts_total: "ok", "http_503", "timeout", "error". */
const char *mg_outcome_result(enum mg_outcome o, long status, char *buf, size_t len);

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
    struct mg_buf                 held;      /* body of a fail-over answer */
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

/* Lets a paused transfer go on (the client drained what was queued). */
void mg_attempt_resume(struct mg_attempt *a);

/* Why the transfer failed, for the error log (never sent to clients). */
const char *mg_attempt_error(const struct mg_attempt *a);

#endif
