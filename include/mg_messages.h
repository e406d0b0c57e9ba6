/*
 * mg_messages — Anthropic Messages clients on chat backends (SPEC "Client APIs": "Messages →
 * chat", "chat answer → Anthropic Message"): the request body, the JSON answer, the SSE stream
 * and error bodies. The opposite direction (chat clients on Anthropic backends) is mg_anthropic.
 * Pure: bytes in, bytes out; the message id is passed in.
 */
#ifndef MG_MESSAGES_H
#define MG_MESSAGES_H

#include <stddef.h>

#include <jansson.h>
#include <stdint.h>

#include "mg_util.h"

struct mg_chatreq_err;   /* mg_chatreq.h: a refusal, and its MG_CHATREQ_E* codes */

/* What one attempt's chat body needs from its entry, backend and rule. */
struct mg_msg_opts {
    const char *model;            /* the model to write into the chat body */
    const char *max_tokens_param; /* "max_tokens" or "max_completion_tokens" (NULL: max_tokens) */
    int         include_usage;    /* stream: add stream_options.include_usage */
    int         hosted_refuse;    /* the rule's hosted_tools: refuse (else drop) */
    json_t    **chat;             /* not NULL: gets the chat request as built (a new reference) */
    int         json_only;        /* with chat: out gets no text (nobody reads it) */
};

/* One /v1/messages request: its parsed body, id and what the answer echoes. */
struct mg_msg_ctx;

/*
 * Reads a Messages request body[0..len); id_hex32 (32 hex digits, copied) makes the message id
 * "msg_mg<hex>". NULL with e filled when the body must be answered 400 invalid_request_error
 * before routing: not a JSON object, model not a string, max_tokens missing or not an integer
 * from 1 to 2^31-1, messages not an array.
 */
struct mg_msg_ctx *mg_msg_ctx_create(const char *body, size_t len, const char *id_hex32,
                                     struct mg_chatreq_err *e);

/* Frees a request; NULL is a no-op. */
void mg_msg_ctx_destroy(struct mg_msg_ctx *c);

/* The message id, "msg_mg" + 32 hex (for logs: response_id). */
const char *mg_msg_ctx_id(const struct mg_msg_ctx *c);

/* 1 when the client asked for a stream ("stream": true). */
int mg_msg_ctx_stream(const struct mg_msg_ctx *c);

/*
 * Appends the chat completions body for one attempt to out. dropped (may be NULL) gets the
 * comma-separated types of the Anthropic-defined tools left out (x-modelgate-dropped-tools; empty
 * when none; a non-empty mcp_servers counts as one, named "mcp"). MG_OK; MG_CHATREQ_EINVAL (a
 * wrong request: 400 invalid_request_error) or MG_CHATREQ_EUNSUPPORTED (valid, but not
 * translatable: document, search_result, server-tool blocks, file images, Anthropic-defined
 * tools under hosted_refuse; the entry is left out, a native anthropic entry may still serve; if
 * none, 400 invalid_request_error) with e filled; MG_ETOOBIG (out's cap or dropped's); MG_ERR
 * (SHA-256 failed). Nothing is appended unless MG_OK. The messages are translated once per
 * request and kept for the next attempt.
 */
int mg_msg_request(struct mg_msg_ctx *c, const struct mg_msg_opts *o, struct mg_buf *out,
                   struct mg_buf *dropped, struct mg_chatreq_err *e);

/*
 * A chat.completion (a 2xx body) -> an Anthropic Message appended to out. u gets the backend's
 * usage as read (input = prompt_tokens, output = completion_tokens; -1 when absent). MG_ERR
 * (nothing appended) for a malformed answer: not a chat.completion, a tool call without a name,
 * or tool arguments that are not a JSON object while finish_reason is not "length": the caller
 * fails over (last attempt: 502 api_error). MG_ETOOBIG.
 */
int mg_msg_answer(struct mg_msg_ctx *c, const char *chat, size_t len, struct mg_buf *out,
                  struct mg_usage *u);

struct mg_oai_kept;
/* The same from the chat answer a translating schema kept as a structure (mg_oai.h). */
int mg_msg_answer_kept(struct mg_msg_ctx *c, const struct mg_oai_kept *k, struct mg_buf *out,
                       struct mg_usage *u);

/*
 * Anthropic's error type for an HTTP status: 400 and 405 invalid_request_error, 401
 * authentication_error, 403 permission_error, 404 not_found_error, 413 request_too_large, 429
 * rate_limit_error, 503 and 529 overloaded_error, other 5xx api_error, other 4xx
 * invalid_request_error.
 */
const char *mg_msg_error_type(int status);

/*
 * An error body (OpenAI's {"error":{"message",…}}, or already Anthropic's) answered with status
 * -> Anthropic's {"type":"error","error":{"type":T,"message":M}} appended to out, T from the
 * status. A body without a message gets a generic one. MG_OK or MG_ETOOBIG.
 */
int mg_msg_error(int status, const char *body, size_t len, struct mg_buf *out);

/* Anthropic's error body with type and message msg[0..n). */
int mg_msg_error_body(const char *type, const char *msg, size_t n, struct mg_buf *out);

/* What the relay reads of a translated stream. */
struct mg_msg_state {
    int             output;    /* message_start written: the commit point has passed */
    int             finished;  /* the backend's finish_reason seen: a clean end completes it */
    int             done;      /* message_stop or the error event written: nothing more */
    int             failed;    /* the backend's error event or a broken frame ended the stream */
    struct mg_usage usage;     /* the backend's usage as read (-1 when not reported) */
    char            error[256];  /* why it failed */
};

/* A chat SSE stream being translated into Messages events. */
struct mg_msg_stream;

/* A translator for the answer to c (which must outlive it). */
struct mg_msg_stream *mg_msg_stream_create(struct mg_msg_ctx *c);

/* Frees the translator; NULL is a no-op. */
void mg_msg_stream_destroy(struct mg_msg_stream *s);

/*
 * Feeds one whole chat SSE event (raw "data: {...}" or "data: [DONE]") and appends the Messages
 * events it makes (event: + data:, no ping) to out; often none. [DONE] after the finish writes
 * message_delta and message_stop. MG_OK; MG_OAI_ESTREAM when the backend sent an error or a
 * chunk that cannot be read or a broken frame (reason in state->error, nothing appended; every
 * later call returns it: after commit the caller ends with mg_msg_stream_fail()); MG_ETOOBIG.
 */
int mg_msg_stream_event(struct mg_msg_stream *s, const char *p, size_t n, struct mg_buf *out);

/*
 * The backend's stream ended cleanly (with or without [DONE]): after the finish, writes
 * message_delta and message_stop (nothing if already written). MG_ERR, nothing written, when the
 * finish was not seen: that is a cut, ended with mg_msg_stream_fail().
 */
int mg_msg_stream_end(struct mg_msg_stream *s, struct mg_buf *out);

/*
 * Ends a stream broken after commit: event: error with
 * {"type":"error","error":{"type":"api_error","message":msg}}; then the response ends cleanly.
 * Nothing when the stream is done.
 */
int mg_msg_stream_fail(struct mg_msg_stream *s, const char *msg, size_t n, struct mg_buf *out);

/* The relay's view of the stream. */
const struct mg_msg_state *mg_msg_stream_state(const struct mg_msg_stream *s);

#endif
