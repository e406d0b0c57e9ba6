/*
 * mg_api_types — what a client API is, types only (mg_api.h has the table and the APIs): the
 * relay reads a stream's rules through it and the reply its error shape, without depending on
 * the APIs themselves.
 */
#ifndef MG_API_TYPES_H
#define MG_API_TYPES_H

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

#endif
