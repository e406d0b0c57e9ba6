/*
 * mg_gemini — OpenAI chat completions to Google's Gemini generateContent (as Vertex AI serves it)
 * and back, for `schema: vertex` backends: the request body, the JSON answer, the SSE stream
 * (streamGenerateContent?alt=sse), and error bodies. Pure: bytes in, bytes out; no I/O, no token
 * (the model goes in the URL, which the caller builds), and the time is passed in.
 */
#ifndef MG_GEMINI_H
#define MG_GEMINI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mg_chatreq.h"
#include "mg_oai.h"
#include "mg_usage.h"
#include "mg_util.h"

/*
 * Translates an OpenAI chat request (body[0..len), or parsed when not NULL) into a
 * generateContent request appended to out. default_max_tokens: the backend's max_tokens, sent
 * as maxOutputTokens when the client sets none (0: none sent, the model's own limit applies).
 * *stream is set to 1 when the client asked for a
 * stream (the caller then posts to :streamGenerateContent?alt=sse). Returns MG_OK;
 * MG_CHATREQ_EINVAL (400 invalid_request_error) or MG_CHATREQ_EUNSUPPORTED (400
 * unsupported_parameter: an https image, n > 1, a tool message whose tool_call_id names no
 * earlier tool call) with e filled; or MG_ETOOBIG. Nothing is appended unless MG_OK.
 */
int mg_gemini_request(const char *body, size_t len, json_t *parsed, int64_t default_max_tokens,
                      struct mg_buf *out, int *stream, struct mg_chatreq_err *e);

/*
 * Translates a generateContent answer (a 2xx body) into a chat.completion appended to out: id
 * "chatcmpl-" + its responseId, else the caller's id; created = now; model = the client's model
 * name. u gets the usage for accounting (-1 when not reported). MG_OK; MG_ERR when the body is
 * not a generateContent answer (nothing appended); MG_ETOOBIG. keep (may be NULL) gets the answer
 * as the structure it was written from (mg_oai_kept).
 */
int mg_gemini_answer(const char *body, size_t len, const char *client_model, const char *id,
                     int64_t now, struct mg_buf *out, struct mg_usage *u,
                     struct mg_oai_kept *keep);

/*
 * Translates Google's error body {"error":{"code","message","status"}} (or a list holding one)
 * into OpenAI's {"error":{"message":M,"type":STATUS,"param":null,"code":null}}; a body of another
 * shape becomes type "upstream_error" with a generic message.
 */
int mg_gemini_error(const char *body, size_t len, struct mg_buf *out);

/* A streamGenerateContent (alt=sse) answer being translated into chat.completion.chunk events. */
struct mg_gemini_stream;

/*
 * A translator for one stream: the client's model name, created = now, whether the client asked
 * for stream_options.include_usage, and the id used when the answer has no responseId.
 */
struct mg_gemini_stream *mg_gemini_stream_create(const char *client_model, int64_t now,
                                                 int include_usage, const char *fallback_id);
/* Frees the translator; NULL is a no-op. */
void mg_gemini_stream_destroy(struct mg_gemini_stream *s);

/*
 * Feeds one whole SSE event (its raw text) and appends the chunks it makes to out. Gemini has no
 * end event: the chunk with a finishReason writes the finish chunk, and the caller completes the
 * stream at its end with mg_oai_stream_end() (the usage chunk, [DONE]). Returns MG_OK;
 * MG_OAI_ESTREAM for an error event or an event that cannot be read (the reason in
 * state->error; every later call returns it too); MG_ETOOBIG.
 */
int mg_gemini_stream_event(struct mg_gemini_stream *s, const char *p, size_t n,
                           struct mg_buf *out);

/* The relay's view of the stream (see mg_oai_stream). */
struct mg_oai_stream *mg_gemini_stream_state(struct mg_gemini_stream *s);

#endif
