/*
 * mg_anthropic — OpenAI chat completions to Anthropic Messages and back, for `schema: anthropic`
 * backends: the request body, the JSON answer, the SSE stream, and error bodies. Pure: bytes in,
 * bytes out; no I/O, and the time is passed in.
 */
#ifndef MG_ANTHROPIC_H
#define MG_ANTHROPIC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mg_chatreq.h"
#include "mg_oai.h"
#include "mg_usage.h"
#include "mg_util.h"

/*
 * Translates an OpenAI chat request (body[0..len), or parsed when not NULL: the same body
 * already read, for a chat request the gateway built) into a Messages request appended to out.
 * model: the name to send (the entry's override, else the client's); default_max_tokens: the
 * backend's max_tokens, used when the client sets none. Returns MG_OK; MG_CHATREQ_EINVAL (400
 * invalid_request_error) or MG_CHATREQ_EUNSUPPORTED (400 unsupported_parameter: try another
 * backend) with e filled; or MG_ETOOBIG (out's cap). Nothing is appended unless MG_OK.
 */
int mg_anthropic_request(const char *body, size_t len, json_t *parsed, const char *model,
                         int64_t default_max_tokens, struct mg_buf *out,
                         struct mg_chatreq_err *e);

/* The version Claude on Vertex AI takes, in the body's anthropic_version. */
#define MG_ANTHROPIC_VERTEX_VERSION "vertex-2023-10-16"

/*
 * The same for Claude on Vertex AI (rawPredict): the body has no "model" (it is in the URL) and
 * says "anthropic_version": MG_ANTHROPIC_VERTEX_VERSION.
 */
int mg_anthropic_request_vertex(const char *body, size_t len, json_t *parsed,
                                int64_t default_max_tokens, struct mg_buf *out,
                                struct mg_chatreq_err *e);

/*
 * Translates a Messages answer (a 2xx body) into a chat.completion appended to out, with
 * created = now and model = the client's model name. u gets the usage for accounting (input =
 * prompt_tokens, cache reads and writes included; -1 when not reported). MG_OK; MG_ERR when the
 * body is not a Messages answer (nothing appended: the caller answers 502); MG_ETOOBIG.
 * keep (may be NULL) gets the answer as the structure it was written from (mg_oai_kept).
 */
int mg_anthropic_answer(const char *body, size_t len, const char *client_model, int64_t now,
                        struct mg_buf *out, struct mg_usage *u, struct mg_oai_kept *keep);

/*
 * Translates an Anthropic error body {"type":"error","error":{"type":T,"message":M}} into
 * OpenAI's {"error":{"message":M,"type":T,"param":null,"code":null}} (the caller keeps the
 * status). A body of another shape becomes type "upstream_error" with a generic message.
 */
int mg_anthropic_error(const char *body, size_t len, struct mg_buf *out);

/*
 * Usage for Anthropic-native clients (/v1/messages passed through). From one raw SSE event of a
 * Messages stream (message_start's message.usage, message_delta's usage): each count the event
 * carries replaces the one in u (message_delta counts are cumulative). Returns 1 when the event
 * had usage. The totals for accounting come from mg_oai_usage_totals().
 */
int mg_anthropic_event_usage(const char *p, size_t n, struct mg_oai_usage *u);

/*
 * The same from the end of a Messages answer (the whole body or its last bytes): the last
 * "usage" object in p[0..n). Returns 1 when found.
 */
int mg_anthropic_answer_usage(const char *p, size_t n, struct mg_oai_usage *u);

/* A Messages SSE stream being translated into chat.completion.chunk events. */
struct mg_anthropic_stream;

/*
 * A translator for one stream: the client's model name, created = now, whether the client asked
 * for stream_options.include_usage, and the id to use if message_start carries none (may be NULL).
 */
struct mg_anthropic_stream *mg_anthropic_stream_create(const char *client_model, int64_t now,
                                                       int include_usage, const char *fallback_id);
/* Frees the translator; NULL is a no-op. */
void mg_anthropic_stream_destroy(struct mg_anthropic_stream *s);

/*
 * Feeds one whole SSE event (its raw text, as mg_sse_feed hands it with whole=1) and appends
 * the chunks it makes to out (often none: ping, content_block_stop, a text block's start).
 * message_stop writes the usage chunk (if asked for) and data: [DONE]. Returns MG_OK;
 * MG_OAI_ESTREAM for an error event or an event that cannot be read (the reason in
 * state->error; nothing appended, and every later call returns it too); MG_ETOOBIG.
 */
int mg_anthropic_stream_event(struct mg_anthropic_stream *s, const char *p, size_t n,
                              struct mg_buf *out);

/*
 * What the relay needs to know: output (the commit point has passed), finished (finish_reason
 * written: a cut from here on is completed with mg_oai_stream_end()), done ([DONE] written),
 * failed/error, and the usage seen so far (mg_oai_usage_totals() for accounting).
 */
struct mg_oai_stream *mg_anthropic_stream_state(struct mg_anthropic_stream *s);

#endif
