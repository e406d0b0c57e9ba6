/*
 * mg_proxy_int — what the two files of the proxy share: a proxied request's state (struct preq)
 * and the calls of mg_proxy_reply.c (what the client gets: the answer's head, the gateway's own
 * answers, the end of a request and its accounting) that mg_proxy.c (attempts, fail-over, commit)
 * makes. Not a public header.
 */
#ifndef MG_PROXY_INT_H
#define MG_PROXY_INT_H

#include <event2/event_struct.h>

#include "mg_admit.h"
#include "mg_api.h"
#include "mg_attempt.h"
#include "mg_head.h"
#include "mg_json.h"
#include "mg_plan.h"
#include "mg_relay.h"
#include "mg_resp_store.h"
#include "mg_resume.h"
#include "mg_schema.h"
#include "mg_wire.h"

/*
 * The upstream is paused while the wire says the client is congested (MG_WIRE_HWM queued) and
 * resumes once the queue is written; the stream's own state comes on top of what is queued
 * (docs/benchmarks.md: ~100 KiB in all per stalled stream).
 */
#define REQ_ID_MAX  128

/* The last fail-over answer, passed through when every attempt failed. */
struct last_answer {
    int                      have;
    long                     status;
    struct mg_resp_head      head;
    struct mg_buf            body;
    const struct mg_backend *backend;
    const struct mg_schema  *schema;
    int                      cut;          /* its body did not arrive whole */
    int                      via_hub;      /* it answered a chat request the hub made */
    int                      timeout;      /* the last failure was a timeout */
    int                      nocred;       /* the last attempt's backend had no usable
                                            * cloud credentials (502 credentials_unavailable) */
    char                     error[256];   /* "backend: short reason", fit for a client */
};

/* A request whose rule resumes its stream: the relay stage's state and the proxy's. */
struct mg_proxy_resume {
    struct mg_resume          st;
    long                      status;      /* the status the client got */
    const struct mg_backend  *backend;     /* whose answer it began with */
    const struct mg_backend  *excluded[MG_PLAN_TRIED_MAX];   /* cut, or failed to continue */
    size_t                    nexcluded;
    char                      why[256];    /* the error event's message if it ends broken */
    int                       staged;      /* the first attempt's answer has the stage */
    int                       via_hub;     /* the first attempt went through the API's hub */
    /* the client API's stage of the first attempt (through a hub), kept for the continuations:
     * the client's answer goes on in it (its ends as they were: an error answer may change
     * them) */
    struct mg_stage          *client;
    void                    (*client_write)(struct mg_stage *s, const char *p, size_t n,
                                            int whole);
    void                    (*client_end)(struct mg_stage *s);
    void                    (*client_fail)(struct mg_stage *s, const char *why);
};

struct preq {
    struct mg_worker         *w;
    struct mg_req            *req;         /* NULL once the client has gone */
    struct mg_conf           *conf;
    const struct mg_rule     *rule;
    int                       rule_index;
    const struct mg_key      *key;         /* the client's key, in conf; NULL without auth */
    const char               *method;      /* "GET"/"DELETE" for a read passed on; NULL: POST */
    struct mg_rule_backend    pass_entry;  /* a read passed to one backend: its own rule */
    struct mg_rule            pass_rule;
    int64_t                   reserved;    /* tokens admission reserved; settled in account() */
    int64_t                   budget_reserved; /* micro-dollars of the key's budget, likewise */
    int                       shared_limit; /* ... in Redis (shared:), settled there */
    char                     *path;
    char                     *upath;
    char                     *query;
    struct mg_json_req        jr;
    struct mg_client_req      client;      /* what schemas build attempts from */
    struct mg_hub_env         env;         /* the store and the key name the API's stages use */
    char                      prev_id[MG_RESP_STORE_NAME_MAX + 1];  /* mg_api.previous's id */
    /* the chat hub, when the client's API reaches a backend through chat (mg_api.hub) */
    void                     *hub;         /* its context, opened by the first such attempt */
    int                       via_hub;     /* the current attempt goes through it */
    struct mg_client_req      hub_client;  /* the chat request that attempt is built from */
    struct mg_json_req        hub_jr;
    char                      hub_model[MG_MODEL_MAX];
    struct mg_buf             hub_body;    /* its chat body */
    struct mg_buf             dropped;     /* hosted tools it left out (a comma list) */
    /* the body native entries get when the API changes the client's (mg_api.native_request) */
    int                       native_read; /* asked once, by the first native attempt (-1: failed) */
    struct mg_buf             native_body; /* empty: the client's body goes as sent */
    struct mg_client_req      native_client;
    struct mg_json_req        native_jr;
    char                      native_model[MG_MODEL_MAX];
    char                      model[MG_MODEL_MAX];
    char                      request_id[REQ_ID_MAX + 1];
    const struct mg_api      *api;         /* the client's API (mg_api) */
    /* its spans (mg_proxy_trace.c), NULL without `tracing:` */
    struct mg_proxy_trace    *tr;
    /* mid-stream resume (mg_proxy_resume.c), NULL unless the rule resumes this chat stream */
    struct mg_proxy_resume   *rs;
    int64_t                   t0;          /* arrival, mg_now_us() */
    int64_t                   overhead;    /* us the gateway itself spent (waits excluded) */
    int64_t                   busy_since;  /* a callback of ours began, 0 outside one */
    struct mg_plan            plan;        /* the order of attempts, and what moves it */
    /* not cleared per request: read only when shared_limit is set */
    struct mg_limit_info      shared_info;  /* Redis's buckets after the admission: the headers */
    struct mg_attempt         at;          /* the current attempt */
    struct event              retry;       /* the pause before a same-backend retry */
    struct last_answer        last;
    struct mg_relay           relay;       /* the committed answer's stages */
    struct event              resume;      /* unpause the upstream once the client drained */
    struct mg_wire            wire;        /* the answer to the client; counts its bytes */
};

/*
 * Builds the current attempt on backend b, entry e, through the client API's chat hub
 * (mg_proxy_hub.c): MG_OK, MG_ERR, or MG_SCHEMA_EINVAL / _ESKIP with the attempt's why.
 */
int mg_proxy_hub_build(struct preq *p, const struct mg_backend *b,
                       const struct mg_rule_backend *e);
/* The same on a native entry: the client's body, or the one the API makes for native entries. */
int mg_proxy_native_build(struct preq *p, const struct mg_backend *b,
                          const struct mg_rule_backend *e);

/*
 * Mid-stream resume (mg_proxy_resume.c). setup: the state, when the rule resumes this request;
 * free: at release. first: a first attempt's head (its answer gets the stage where it is chat);
 * head: a continuation's head (its chain, spliced into the answer under way). commit: a
 * continuation's commit (1: handled, no head is sent). cut: a
 * committed stream broke (1: it goes on, or ended, here; 0: end it as without resume). failed:
 * a continuation failed before its output (1: handled). complete: the stream ended whole.
 * build: a continuation's request on entry e of a native entry (through a hub, the hub builds it
 * and calls edit).
 */
void mg_proxy_resume_setup(struct preq *p);
/* The state's memory, at release (inline: the reply frees it without calling into resume). */
static inline void
mg_proxy_resume_free(struct preq *p)
{
    mg_resume_deinit(&p->rs->st);
    free(p->rs);
    p->rs = NULL;
}
int  mg_proxy_resume_commit(struct preq *p);
void mg_proxy_resume_first(struct preq *p, struct mg_attempt *a);
void mg_proxy_resume_head(struct preq *p, struct mg_attempt *a, enum mg_outcome o);
enum mg_resume_step {
    MG_RESUME_NO,      /* not handled: the request goes on as without resume */
    MG_RESUME_ENDED,   /* handled: the stream ended here */
    MG_RESUME_NEXT     /* the plan is on the continuation's entry: the caller starts it */
};
enum mg_resume_step mg_proxy_resume_cut(struct preq *p, struct mg_attempt *a);
enum mg_resume_step mg_proxy_resume_failed(struct preq *p, struct mg_attempt *a,
                                           enum mg_outcome o);
void mg_proxy_resume_complete(struct preq *p);
int  mg_proxy_resume_build(struct preq *p, const struct mg_backend *b,
                           const struct mg_rule_backend *e);
/* A chat body (the hub's, in place) made a continuation's for backend b. */
int  mg_proxy_resume_edit(struct preq *p, const struct mg_backend *b, struct mg_buf *body);

/*
 * Tracing (mg_proxy_trace.c), called only when p->tr is set (begin sets it, with `tracing:`):
 * begin reads the client's traceparent and decides the sampling; attempt gives the attempt built
 * in p->at its span id and traceparent header; attempt_end pushes its span (once); end pushes
 * the request's span with what the access log got (r) and hands the spans to the exporter; free
 * at release.
 */
struct mg_access_rec;
struct mg_req;
void mg_proxy_trace_begin(struct preq *p, const struct mg_req *req);
/* A sampled request's answer is watched on its way to the client for gen_ai.response.model and
 * finish_reasons (after mg_relay_init). */
void mg_proxy_trace_watch(struct preq *p);
void mg_proxy_trace_attempt(struct preq *p);
void mg_proxy_trace_attempt_end(struct preq *p, struct mg_attempt *a, enum mg_outcome o);
void mg_proxy_trace_end(struct preq *p, const struct mg_access_rec *r,
                        const struct mg_backend *backend, int cut);
void mg_proxy_trace_free(struct preq *p);
/* gen_ai.provider.name of a backend ("openai", "azure.ai.openai", "anthropic", "aws.bedrock"). */
const char *mg_proxy_provider(const struct mg_backend *b);

/*
 * An attempt ended with result (modelgate_backend_attempts_total's value): counted in the metrics
 * and in the status page's rings (failed: it gave no answer, or its answer broke).
 */
void mg_proxy_attempt_done(struct preq *p, struct mg_attempt *a, const char *result, int failed);

/* Frees the request's state (back to the worker's pool). */
void mg_proxy_release(struct preq *p);

/* The access log line and metrics; backend: whose answer the client got; cut: it broke after
 * commit. */
void mg_proxy_account(struct preq *p, int status, const struct mg_backend *backend, int cut);

/* Accounts a request whose client is gone: with the status it got, or 499 before any. */
void mg_proxy_account_gone(struct preq *p);

/* Before the final reply: the client is no longer watched for us. */
void mg_proxy_detach_client(struct preq *p);

/* Drops the client's connection and the upstream transfer; the request is over. */
void mg_proxy_drop_connection(struct preq *p);

/* Starts the head of a backend's answer to the client (ctype: our own Content-Type, or NULL). */
void mg_proxy_answer_head(struct preq *p, const struct mg_resp_head *h, const struct mg_backend *b,
                          const char *ctype);

/* A gateway error (no backend answer to pass through); ends the request. */
void mg_proxy_reply_error(struct preq *p, int status, const char *code, const char *param,
                          const char *msg);

/* An answer read whole before it was committed; ends the request. */
void mg_proxy_reply_held(struct preq *p, const struct last_answer *l);

/* Every attempt failed: the last backend answer received, if any; else 502/504. */
void mg_proxy_reply_all_failed(struct preq *p);

/* The committed answer ended cleanly on the backend's side. */
void mg_proxy_complete(struct preq *p, struct mg_attempt *a);

/* The committed answer broke: one error event for a stream, else the connection is cut. */
void mg_proxy_cut(struct preq *p, struct mg_attempt *a);

#endif
