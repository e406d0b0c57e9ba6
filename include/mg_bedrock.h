/*
 * mg_bedrock — OpenAI chat completions to Amazon Bedrock Converse / ConverseStream and back, for
 * `schema: bedrock` backends: the request body, the JSON answer, the stream (as decoded
 * event-stream messages), and error bodies. Pure: bytes in, bytes out; no I/O, no signing (the
 * model goes in the URL, which the caller builds), and the time is passed in.
 */
#ifndef MG_BEDROCK_H
#define MG_BEDROCK_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mg_chatreq.h"
#include "mg_oai.h"
#include "mg_usage.h"
#include "mg_util.h"

/*
 * Translates an OpenAI chat request (body[0..len)) into a Converse request appended to out.
 * default_max_tokens: the backend's max_tokens, used when the client sets none. *stream is set
 * to 1 when the client asked for a stream (the caller then posts to /converse-stream). Returns
 * MG_OK; MG_CHATREQ_EINVAL (400 invalid_request_error) or MG_CHATREQ_EUNSUPPORTED (400
 * unsupported_parameter: an https image, a media type Bedrock lacks, n > 1) with e filled; or
 * MG_ETOOBIG. Nothing is appended unless MG_OK.
 */
int mg_bedrock_request(const char *body, size_t len, json_t *parsed, int64_t default_max_tokens,
                       struct mg_buf *out, int *stream, struct mg_chatreq_err *e);

/*
 * Translates a Converse answer (a 2xx body) into a chat.completion appended to out: id (Converse
 * answers have none: the caller's, such as "chatcmpl-" + the request id), created = now, model =
 * the client's model name. u gets the usage for accounting (input = prompt_tokens, cache reads
 * and writes included; -1 when not reported). MG_OK; MG_ERR when the body is not a Converse
 * answer (nothing appended: the caller answers 502); MG_ETOOBIG.
 * keep (may be NULL) gets the answer as the structure it was written from (mg_oai_kept).
 */
int mg_bedrock_answer(const char *body, size_t len, const char *client_model, const char *id,
                      int64_t now, struct mg_buf *out, struct mg_usage *u,
                      struct mg_oai_kept *keep);

/*
 * Translates a Bedrock error body {"message":M} into OpenAI's {"error":{"message":M,"type":T,
 * "param":null,"code":null}}, T being the exception name from the x-amzn-errortype header
 * (errortype, may be NULL; anything from its first ':' on is dropped, as AWS SDKs do).
 */
int mg_bedrock_error(const char *errortype, const char *body, size_t len, struct mg_buf *out);

/* A ConverseStream answer being translated into chat.completion.chunk events. */
struct mg_bedrock_stream;

/*
 * A translator for one stream: the client's model name, created = now, whether the client asked
 * for stream_options.include_usage, and the stream's id (may be NULL).
 */
struct mg_bedrock_stream *mg_bedrock_stream_create(const char *client_model, int64_t now,
                                                   int include_usage, const char *id);
/* Frees the translator; NULL is a no-op. */
void mg_bedrock_stream_destroy(struct mg_bedrock_stream *s);

/*
 * Feeds one decoded event-stream message: type is its :event-type (messageStart,
 * contentBlockStart, contentBlockDelta, contentBlockStop, messageStop, metadata) or, for an
 * exception message, its :exception-type (every one ends in "Exception"; "error" is taken as one
 * too); payload is its JSON. Appends the chunks it makes to out. messageStop writes the finish
 * chunk; metadata (which follows it) the usage chunk (if asked for) and data: [DONE] — a stream
 * that ends after messageStop without metadata is completed by the caller with
 * mg_oai_stream_end(). Returns MG_OK; MG_OAI_ESTREAM for an exception or a payload that cannot
 * be read (the reason in state->error; nothing appended, and every later call returns it too);
 * MG_ETOOBIG.
 */
int mg_bedrock_stream_event(struct mg_bedrock_stream *s, const char *type, const char *payload,
                            size_t n, struct mg_buf *out);

/* The relay's view of the stream (see mg_oai_stream and mg_anthropic_stream_state()). */
struct mg_oai_stream *mg_bedrock_stream_state(struct mg_bedrock_stream *s);

#endif
