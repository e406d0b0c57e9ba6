/*
 * mg_outcome — what each event of an attempt means, as one pure decision table: the phases an
 * attempt goes through, the outcomes the proxy, the metrics and the logs all read, and their
 * metric labels.
 */
#ifndef MG_OUTCOME_H
#define MG_OUTCOME_H

#include <stddef.h>

#include <curl/curl.h>

#include "mg_head.h"

/* Where an attempt stands. */
enum mg_phase {
    MG_PHASE_WAIT,     /* started, no final head yet */
    MG_PHASE_HOLD,     /* a fail-over head (429, 5xx): its body is read aside */
    MG_PHASE_INSPECT,  /* a 400: its body is read aside to tell a context-length error */
    MG_PHASE_OPEN,     /* a final head: the body goes through the relay, not committed yet */
    MG_PHASE_RELAY,    /* committed: the client has the head; no other backend from here */
};

/* What happened to an attempt; every module reads the same value (stats, logs, next step). */
enum mg_outcome {
    MG_OUTCOME_PENDING,       /* nothing decided (an informational head) */
    MG_OUTCOME_OPEN,          /* a final head: the relay decides when it commits */
    MG_OUTCOME_HOLD,          /* a fail-over head: read its body aside */
    MG_OUTCOME_INSPECT,       /* a 400 head: read its body aside */
    MG_OUTCOME_COMPLETE,      /* the answer ended cleanly (committed at the latest now) */
    MG_OUTCOME_FINAL,         /* a 400 read whole that is the answer: passed through */
    MG_OUTCOME_CUT,           /* a committed answer broke (error or timeout after commit) */
    MG_OUTCOME_FAIL_STATUS,   /* a fail-over answer (429, 5xx, 529): move on, keep it */
    MG_OUTCOME_FAIL_ERROR,    /* connect, TLS, reset, closed, bad head or body before commit */
    MG_OUTCOME_FAIL_TIMEOUT,  /* a timeout before commit */
    MG_OUTCOME_FAIL_EVENT,    /* an error event (or a broken stream) before the first output */
    MG_OUTCOME_FAIL_EMPTY,    /* an event stream that ended cleanly before any event (as a 502) */
    MG_OUTCOME_FAIL_CONTEXT,  /* a 400 saying the context length was exceeded */
};

/* What the attempt saw. */
enum mg_attempt_event {
    MG_AEV_HEAD,      /* a complete head, classified by the schema as cls */
    MG_AEV_END,       /* the transfer finished with rc */
    MG_AEV_TIMEOUT,   /* one of the gateway's timers fired */
};

#define MG_AF_RELAY_FAILED 1   /* the relay found the stream broken before the commit */
#define MG_AF_CONTEXT      2   /* the 400 read aside is a context-length error */
#define MG_AF_RELAY_EMPTY  4   /* the relay found the stream ended before any event */
#define MG_AF_RELAY_CUT    8   /* the relay found the committed stream broken or unfinished */

/*
 * The outcome of event ev in phase (cls for heads, rc for ends, MG_AF_* flags). Pure: the whole
 * decision table of the proxy in one place.
 */
enum mg_outcome mg_outcome_classify(enum mg_phase phase, enum mg_attempt_event ev,
                                    enum mg_head_class cls, CURLcode rc, unsigned flags);

/* 1 for the outcomes that move on to another attempt. */
int mg_outcome_fails(enum mg_outcome o);

/*
 * The result label of modelgate_backend_attempts_total: "ok", "http_503", "timeout", "error",
 * "error_event", "empty_stream", "context_length", "cut".
 */
const char *mg_outcome_result(enum mg_outcome o, long status, char *buf, size_t len);

#endif
