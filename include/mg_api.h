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

/* The APIs (one file each: mg_api_chat.c, mg_api_openai.c, mg_api_messages.c). */
extern const struct mg_api mg_api_chat;          /* /v1/chat/completions */
extern const struct mg_api mg_api_completions;   /* /v1/completions: chat's rules */
extern const struct mg_api mg_api_openai;        /* every other /v1/ path */
extern const struct mg_api mg_api_messages;      /* /v1/messages */
extern const struct mg_api mg_api_count_tokens;  /* /v1/messages/count_tokens */
extern const struct mg_api mg_api_messages_other;   /* other /v1/messages/... paths */

#endif
