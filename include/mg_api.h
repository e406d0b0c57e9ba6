/*
 * mg_api — the client APIs, as a table: one struct of operations per API a client speaks
 * (OpenAI chat and completions, OpenAI's other paths, Anthropic Messages), chosen once per
 * request from its path (mg_api_route, called by the dispatcher on the head) and kept in the
 * request (req->api). Every rule that depends on what the client speaks is read through it: the
 * shape of the gateway's own errors, the commit rule and event classifier of a stream, its
 * end-of-stream rule, the error event after the commit, where usage is, which backend schemas
 * serve it. It is the mirror of mg_schema on the client's side: no module tests a path for these.
 *
 * A new client API is one mg_api_<name>.c defining its struct and one row in mg_api.c's route
 * table (with its declaration below).
 */
#ifndef MG_API_H
#define MG_API_H

#include <stddef.h>

struct mg_buf;

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
};

/* The API of a client's path ("/v1/chat/completions"); never NULL (OpenAI's other paths). */
const struct mg_api *mg_api_route(const char *path);

/* 1 when api is served by schema id (enum mg_schema_id). */
int mg_api_serves(const struct mg_api *api, int schema);

/* ---- what the OpenAI-shaped APIs share (mg_api.c) ---- */

/* OpenAI's error body: {"error":{"message","type","param","code"}}. */
void mg_api_openai_error_body(struct mg_buf *out, int status, const char *code,
                              const char *param, const char *msg);

/* OpenAI's error event after the commit (code upstream_stream_error). */
void mg_api_openai_error_event(struct mg_buf *out, const char *why);

/* 1 when the JSON object in data has "error" as its first member (an OpenAI error chunk). */
int mg_api_error_first(const char *data, size_t n);

/*
 * The stream rules of OpenAI's other paths (mg_api_openai.c): an error chunk is an error, any
 * other event with data carries output (the first event commits).
 */
int mg_api_event_kind_any(int committed, const struct mg_api_event *ev);

/* The end-of-stream rule of a stream with no rule of its own: whole at any clean end. */
const char *mg_api_stream_end_any(int finished, int done, const char **tail);

/* The APIs (one file each: mg_api_chat.c, mg_api_openai.c, mg_api_messages.c). */
extern const struct mg_api mg_api_chat;          /* /v1/chat/completions */
extern const struct mg_api mg_api_completions;   /* /v1/completions: chat's rules */
extern const struct mg_api mg_api_openai;        /* every other /v1/ path */
extern const struct mg_api mg_api_messages;      /* /v1/messages */
extern const struct mg_api mg_api_count_tokens;  /* /v1/messages/count_tokens */
extern const struct mg_api mg_api_messages_other;   /* other /v1/messages/... paths */

#endif
