/*
 * mg_api_types — what a client API is, types only (mg_api.h has the table and the APIs): the
 * relay reads a stream's rules through it and the reply its error shape, without depending on
 * the APIs themselves.
 */
#ifndef MG_API_TYPES_H
#define MG_API_TYPES_H

#include <stddef.h>
#include <stdint.h>

struct mg_buf;
struct mg_chatreq_err;
struct mg_relay;
struct mg_resp_store;
struct mg_hub_env;

/* One event of an event stream, as the commit gate reads it. */
struct mg_api_event {
    const char *name;    /* the "event:" field, or NULL */
    size_t      nlen;
    const char *data;    /* the "data:" lines joined by '\n', or NULL */
    size_t      dlen;
};

/* What one event is, for the commit gate: bits of an event's kind. */
#define MG_EV_OUTPUT 1   /* carries output: commits */
#define MG_EV_FINISH 2   /* a finish_reason, or message_stop */
#define MG_EV_DONE   4   /* data: [DONE] */
#define MG_EV_ERROR  8   /* an error event */

/* Where an answer's token usage is, for the accounting. */
enum mg_api_usage {
    MG_API_USAGE_OBJECT,   /* a "usage" object: the JSON answer's, or a stream's last one */
    MG_API_USAGE_NONE,     /* the answer is no usage (count_tokens): none is estimated */
};

/* Schema bits for mg_api.schemas: 1 << enum mg_schema_id. */
#define MG_API_SCHEMA(id) (1u << (id))

struct mg_api {
    /* the API's name for logs ("chat", "completions", "messages", "count_tokens", "other") */
    const char *name;
    /* the backend schemas that serve it (MG_API_SCHEMA bits); the others are left out */
    unsigned    schemas;
    /* where usage is (the schema reads it in its backend's own format) */
    enum mg_api_usage usage;
    /* Appends the body of an error the gateway makes (status, code, param or NULL, msg). */
    void (*error_body)(struct mg_buf *out, int status, const char *code, const char *param,
                       const char *msg);
    /*
     * What an event of a stream is (MG_EV_* bits) before (committed 0) or after the commit; the
     * relay has already taken out what every API shares: comments, "event: error" and [DONE].
     */
    int  (*event_kind)(int committed, const struct mg_api_event *ev);
    /*
     * The end-of-stream rule, at a clean end of a committed stream that saw a finish (finished)
     * and [DONE] (done) or not: NULL when the stream is whole (*tail then holds bytes to add,
     * or NULL), else why it is cut (the error event follows).
     */
    const char *(*stream_end)(int finished, int done, const char **tail);
    /* Appends the one event that ends a committed stream which broke (why: the message). */
    void (*error_event)(struct mg_buf *out, const char *why);
    /* The status when no entry of the rule serves it: 0 for 400 unsupported_endpoint; 404 for
     * an endpoint a client falls back from when its upstream lacks it (count_tokens) */
    int unserved_status;
    /*
     * Adds the API's own stage to a native answer's relay (after the schema's), or NULL: for
     * what its stream rules cannot say alone (Responses: the sequence_number and last lifecycle
     * response its error events carry, and the answer's id recorded in env's store as backend's).
     * env and backend (the backend's name) outlive the answer.
     */
    void (*relay)(struct mg_relay *r, const struct mg_hub_env *env, const char *backend);
    /*
     * The earlier answer the request continues (Responses' previous_response_id), its id into
     * id (size bytes; "" when longer): MG_API_PREV_NONE, _OWN (one the gateway's hub made: the
     * hub's store serves it) or _NATIVE (a backend's: pinned to the one recorded for it). NULL:
     * the API has none. Cheap when the body does not name one.
     */
    int  (*previous)(const char *body, size_t len, char *id, size_t size);
    /*
     * The body a native entry gets when the API's own state changes the client's (Responses: a
     * conversation the hub stored, continued on a native backend): MG_OK with out empty (the
     * client's body goes as sent) or filled; MG_CHATREQ_EINVAL with e filled (a 400). Once per
     * request, for every native entry. NULL: always as sent.
     */
    int  (*native_request)(const struct mg_hub_env *env, const char *body, size_t len,
                           struct mg_buf *out, struct mg_chatreq_err *e);
    /* The API's own bit (MG_API_BIT_*) when a backend's config may change how it is served. */
    unsigned bit;
    /* Chat completions carries it to a backend that does not speak it (NULL: native only). */
    const struct mg_hub *hub;
};

/* What mg_api.previous found. */
#define MG_API_PREV_NONE   0
#define MG_API_PREV_OWN    1
#define MG_API_PREV_NATIVE 2

/* The bits of the APIs whose serving a backend's config may change (mg_backend.api_*). */
#define MG_API_BIT_RESPONSES 1u
#define MG_API_BIT_MESSAGES  2u

/* How a backend serves a client API (mg_api_mode). */
#define MG_API_NATIVE 1   /* the request goes as the client sent it */
#define MG_API_HUB    2   /* translated to chat completions and back */

/* What one attempt's chat request depends on: its backend and its rule. */
struct mg_hub_opts {
    const char *model;             /* the model the chat body names */
    const char *max_tokens_param;  /* "max_tokens" or "max_completion_tokens" */
    int         include_usage;     /* a stream asks for its usage chunk */
    int         hosted_refuse;     /* the rule's hosted_tools: refuse (else such tools drop) */
    int         json_only;         /* the schema reads chat_json(): no text need be written */
};

/* What a hub may use besides the request: the runtime's state, and who is asking. */
struct mg_hub_env {
    struct mg_resp_store *responses;   /* the conversation store */
    const char           *key;         /* the client key's name; "" without auth */
    int64_t               now_ms;
};

/*
 * The chat hub of a client API: its request read once (a context per request), the chat body of
 * each attempt, and the stage that turns the chat answer (plain or stream) into the API's.
 */
struct mg_hub {
    /* The request read once; NULL with e filled when it is wrong for any backend (400). */
    void *(*open)(const struct mg_hub_env *env, const char *body, size_t len, uint64_t *rng,
                  struct mg_chatreq_err *e);
    void  (*close)(void *ctx);
    /*
     * One attempt's chat body into out; dropped gets the hosted tools left out (a comma list).
     * MG_OK, or mg_chatreq's codes with e filled (EUNSUPPORTED leaves the entry out).
     */
    int   (*request)(void *ctx, const struct mg_hub_opts *o, struct mg_buf *out,
                     struct mg_buf *dropped, struct mg_chatreq_err *e);
    /* The chat request the last request() built, already read (a jansson value the hub owns,
     * valid until its next request or close), for a schema that translates it again. */
    struct json_t *(*chat_json)(void *ctx);
    /*
     * Adds the API's stage at the end of r's chain (mg_relay_add_client): the chat answer in,
     * the API's answer out, and the API's error events when the stream breaks after the commit.
     */
    void  (*relay)(void *ctx, struct mg_relay *r);
    /*
     * The same for an error answer (status) the client gets as it comes (not held): its body in
     * the API's error shape. NULL when OpenAI's shape is the API's.
     */
    void  (*relay_error)(void *ctx, struct mg_relay *r, int status);
    /* The id the API's answer carries (resp_mg..., msg_mg...), for the access log. */
    const char *(*answer_id)(void *ctx);
    /* A backend's error body in OpenAI's shape into the API's, 1 when it wrote out. */
    int   (*error_body)(void *ctx, int status, const char *body, size_t len, struct mg_buf *out);
};

#endif
