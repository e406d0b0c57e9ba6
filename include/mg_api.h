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

#include "mg_api_types.h"

/* The API of a client's path ("/v1/chat/completions"); never NULL (OpenAI's other paths). */
const struct mg_api *mg_api_route(const char *path);

struct mg_backend;

/* How backend b serves api: MG_API_NATIVE, MG_API_HUB, or 0 (not at all: the entry is left out). */
int mg_api_mode(const struct mg_api *api, const struct mg_backend *b);

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

/* ---- what the chat hubs of the APIs share (mg_api.c) ---- */

#include "mg_relay.h"

/*
 * A hub's stage, the last before the client (mg_relay_add_client), embedded in the hub's state:
 * the stage (first, so a stage function finds its hub stage by a cast), what one event or the
 * answer became (out), and a plain answer read whole (body).
 */
struct mg_api_hubstage {
    struct mg_stage stage;
    struct mg_buf   out;
    struct mg_buf   body;
};

/* Sets up h, its buffers capped at cap. */
void mg_api_hubstage_init(struct mg_api_hubstage *h, size_t cap);
void mg_api_hubstage_deinit(struct mg_api_hubstage *h);
/*
 * Adds h's stage to r for this answer: a stream's events go to stream_write, its end to
 * stream_end; a plain answer is read whole into h->body and answer_end translates it. fail
 * writes the API's error events after the commit. Sets the answer's Content-Type.
 */
void mg_api_hubstage_add(struct mg_api_hubstage *h, struct mg_relay *r,
                         void (*stream_write)(struct mg_stage *s, const char *p, size_t n,
                                              int whole),
                         void (*stream_end)(struct mg_stage *s),
                         void (*answer_end)(struct mg_stage *s),
                         void (*fail)(struct mg_stage *s, const char *why));
/*
 * For stream_write: 1 when the event is to be translated; 0 when the stream is over, or when
 * the event is a piece of one too large to hold (the stream then breaks).
 */
int mg_api_hubstage_whole(struct mg_stage *s, int whole);
/* Passes h->out (if any) on to the client. */
void mg_api_hubstage_pass(struct mg_api_hubstage *h);
/* A stream's translator refused an event (why, or a generic reason): the stream breaks. */
void mg_api_hubstage_broken(struct mg_api_hubstage *h, const char *why);
/*
 * For answer_end, after translating h->body into h->out with rc: MG_OK commits the answer and
 * passes it on; anything else fails the attempt (not_what: what the answer could not be made
 * into), so it fails over. Then the stage ends.
 */
void mg_api_hubstage_answer(struct mg_api_hubstage *h, int rc, const char *not_what);

/* The APIs (one file each: mg_api_chat.c, mg_api_openai.c, mg_api_messages.c). */
extern const struct mg_api mg_api_chat;          /* /v1/chat/completions */
extern const struct mg_api mg_api_completions;   /* /v1/completions: chat's rules */
extern const struct mg_api mg_api_openai;        /* every other /v1/ path */
extern const struct mg_api mg_api_messages;      /* /v1/messages */
extern const struct mg_api mg_api_count_tokens;
extern const struct mg_api mg_api_responses;     /* /v1/responses */  /* /v1/messages/count_tokens */
extern const struct mg_api mg_api_responses_read;   /* GET/DELETE of a native Response, passed */
extern const struct mg_api mg_api_messages_other;   /* other /v1/messages/... paths */

#endif
