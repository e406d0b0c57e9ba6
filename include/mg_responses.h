/*
 * mg_responses — the OpenAI Responses API (/v1/responses) on a chat backend: chat is the hub.
 *
 * A Responses request becomes a chat request (mg_resp_request), a chat.completion becomes a
 * Response object (mg_resp_answer), and a chat chunk stream becomes the response.* event stream
 * (mg_resp_stream_*). What an answer echoes of the request (model, tools, text, metadata, …) is
 * read once into a context (mg_resp_ctx) that the request, the answer or the stream and the store
 * share. Pure: bytes in, bytes out; time and the response id are passed in.
 */
#ifndef MG_RESPONSES_H
#define MG_RESPONSES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

struct mg_chatreq_err;   /* mg_chatreq.h: a refusal, and its MG_CHATREQ_E* codes */

/*
 * The error code a refusal carries besides its rc (mg_resp_ctx_code): MG_CHATREQ_EINVAL is
 * invalid_request_error unless the code says better.
 */
#define MG_RESP_CODE_NONE         0
#define MG_RESP_CODE_UNSUPPORTED  1   /* unsupported_parameter (rc MG_CHATREQ_EUNSUPPORTED) */
#define MG_RESP_CODE_PREV_MISSING 2   /* previous_response_not_found (rc MG_CHATREQ_EINVAL) */
#define MG_RESP_CODE_ITEM_MISSING 3   /* item_not_found (rc MG_CHATREQ_EINVAL) */

/* Stream translators fail with this when the chat stream cannot go on (a broken frame). */
#define MG_RESP_ESTREAM -33

/* What the rule and the backend decide about a translated request. */
struct mg_resp_opts {
    const char *model;            /* the model to write into the chat body */
    const char *max_tokens_param; /* "max_tokens" or "max_completion_tokens" (NULL: max_tokens) */
    int include_usage;            /* stream: add stream_options.include_usage */
    int hosted_refuse;            /* rule's hosted_tools: refuse (else drop) */
    json_t **chat;                /* not NULL: gets the chat request as built (a new reference),
                                   * so a translating schema need not read out's text again */
    int json_only;                /* with chat: out gets no text (nobody reads it) */
};

/* A request's parsed body and what its answer echoes. Opaque. */
struct mg_resp_ctx;

/*
 * Reads a Responses request body; id_hex32 is the 32 hex digits of its id (resp_mg<hex>), now
 * its created_at (Unix s). NULL with e filled on a 400 (background, conversation, prompt,
 * context_management: MG_CHATREQ_EUNSUPPORTED; not a JSON object, no model: MG_CHATREQ_EINVAL);
 * *rc (may be NULL) gets which. Free with mg_resp_ctx_destroy.
 */
struct mg_resp_ctx *mg_resp_ctx_create(const char *body, size_t len, const char *id_hex32,
                                       int64_t now, struct mg_chatreq_err *e, int *rc);
/* Frees c (NULL: nothing). */
void mg_resp_ctx_destroy(struct mg_resp_ctx *c);
/* The response id, "resp_mg" + 32 hex. */
const char *mg_resp_ctx_id(const struct mg_resp_ctx *c);
/* The client's model name. */
const char *mg_resp_ctx_model(const struct mg_resp_ctx *c);
/* 1 when the request asked for a stream. */
int mg_resp_ctx_stream(const struct mg_resp_ctx *c);
/* What the request's store says (default 1, as OpenAI). */
int mg_resp_ctx_store(const struct mg_resp_ctx *c);
/* The store as applied (echoed in the Response): 0 when the gateway does not store it. */
void mg_resp_ctx_set_store(struct mg_resp_ctx *c, int store);
/* The request's previous_response_id, or NULL. */
const char *mg_resp_ctx_previous(const struct mg_resp_ctx *c);
/* The MG_RESP_CODE_* of the last refusal by mg_resp_request. */
int mg_resp_ctx_code(const struct mg_resp_ctx *c);

/*
 * Responses request -> chat request body, appended to out (cap: out's). prior: the stored
 * chain's items (a JSON array, input + output of earlier turns) for previous_response_id, or
 * NULL; a previous_response_id without prior is 400 previous_response_not_found. lookup finds an
 * item_reference's item by id (NULL callback or NULL answer: 400 item_not_found). dropped gets
 * the comma-separated hosted tool types left out (for x-modelgate-dropped-tools). MG_OK,
 * MG_CHATREQ_EINVAL / MG_CHATREQ_EUNSUPPORTED (e filled, see mg_resp_ctx_code), or MG_ETOOBIG.
 */
int mg_resp_request(struct mg_resp_ctx *c, const json_t *prior,
                    const json_t *(*lookup)(void *arg, const char *id), void *arg,
                    const struct mg_resp_opts *o, struct mg_buf *out, struct mg_buf *dropped,
                    struct mg_chatreq_err *e);

/*
 * chat.completion body -> Response object appended to out; now: the answer's end (completed_at);
 * u (may be NULL) gets the backend's usage as read (-1 when absent). MG_OK, MG_ERR for an answer
 * that cannot be read (no choice, not JSON), MG_ETOOBIG.
 */
int mg_resp_answer(struct mg_resp_ctx *c, const char *chat, size_t len, int64_t now,
                   struct mg_buf *out, struct mg_usage *u);

struct mg_oai_kept;
/*
 * The same from the chat answer a translating schema kept as a structure (mg_oai.h), so that the
 * text it wrote is not read again.
 */
int mg_resp_answer_kept(struct mg_resp_ctx *c, const struct mg_oai_kept *k, int64_t now,
                        struct mg_buf *out, struct mg_usage *u);

/*
 * The items a later previous_response_id prepends: this request's input as mg_resp_request read
 * it (normalized items, references resolved, no instructions, prior chain included) followed by
 * response's output items, as one JSON array appended to out. MG_ERR when response is not a
 * Response or mg_resp_request was not called.
 */
int mg_resp_history(struct mg_resp_ctx *c, const char *response, size_t len, struct mg_buf *out);

/* A translated stream: chat chunks in, response.* events out. Opaque. */
struct mg_resp_stream;

/* What the relay reads of a stream. */
struct mg_resp_stream_state {
    int             committed;  /* response.created has been written */
    int             finished;   /* the chat finish_reason was seen */
    int             done;       /* the final event (completed, incomplete, failed) was written */
    struct mg_usage usage;      /* the backend's usage so far (-1: not yet) */
};

/* A stream for c (which must outlive it); cap bounds each item's text or arguments. */
struct mg_resp_stream *mg_resp_stream_create(struct mg_resp_ctx *c, size_t cap);
/* Frees s (NULL: nothing). */
void mg_resp_stream_destroy(struct mg_resp_stream *s);
/*
 * Feeds one whole chat SSE event (its raw text: "data: {...}" or "data: [DONE]", comments and
 * other fields allowed) and appends the response.* events it makes. MG_OK, MG_RESP_ESTREAM (a
 * chunk that cannot be read, a backend error chunk, a fragment for an earlier tool call: the
 * reason via mg_resp_stream_error), MG_ETOOBIG.
 */
int mg_resp_stream_feed(struct mg_resp_stream *s, const char *ev, size_t n, struct mg_buf *out);
/*
 * The usage to send when the backend gives none (the accounting estimate); the backend's wins.
 */
void mg_resp_stream_set_usage(struct mg_resp_stream *s, const struct mg_usage *u);
/*
 * A clean end of the chat stream, now its time: response.completed / response.incomplete after
 * a finish; without one, a cut: the error + response.failed pair. Nothing when done. MG_ERR
 * (nothing written) before commit: the attempt failed and may fail over.
 */
int mg_resp_stream_end(struct mg_resp_stream *s, int64_t now, struct mg_buf *out);
/*
 * A failure after commit (msg, n bytes): event: error, then event: response.failed with the
 * items so far (open ones incomplete). Writes response.created first when not committed;
 * nothing when done.
 */
int mg_resp_stream_fail(struct mg_resp_stream *s, const char *msg, size_t n, struct mg_buf *out);
/* Fills st. */
void mg_resp_stream_state(const struct mg_resp_stream *s, struct mg_resp_stream_state *st);
/* Why feed returned MG_RESP_ESTREAM ("" otherwise). */
const char *mg_resp_stream_error(const struct mg_resp_stream *s);
/* The final Response JSON (for the store), once done; MG_ERR before. */
int mg_resp_stream_response(const struct mg_resp_stream *s, struct mg_buf *out);

#endif
