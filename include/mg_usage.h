/*
 * mg_usage — token usage read from what backends answer, and the SSE event splitter the stream
 * relay uses to see (and, when the gateway asked for usage itself, edit) events as they pass.
 */
#ifndef MG_USAGE_H
#define MG_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

/*
 * Finds the last "usage" member whose value is an object in p[0..n) and reads its token counts
 * (OpenAI's prompt_tokens/completion_tokens, or the Responses API's input_tokens/output_tokens).
 * Works on a whole JSON answer or on the tail of one. Returns 1 and fills u when found, else 0.
 */
int mg_usage_parse(const char *p, size_t n, struct mg_usage *u);

#define MG_SSE_EVENT_MAX (64 * 1024)

/*
 * Splits a byte stream into SSE events (an event ends with a blank line, "\n\n" or "\r\n\r\n").
 * Bytes go in as they arrive, in pieces of any size; whole events come out through the callback.
 * An event larger than MG_SSE_EVENT_MAX is passed on in pieces with whole=0 (it is not parsed).
 */
struct mg_sse {
    struct mg_buf ev;         /* the event being assembled */
    int           oversized;  /* the current event passed the cap: forwarding in pieces */
    int           nl;         /* newlines seen at the end of ev, ignoring '\r' */
};

/* Called for each event (whole=1) or piece of an oversized one (whole=0). */
typedef void (*mg_sse_event_fn)(void *arg, const char *p, size_t n, int whole);

void mg_sse_init(struct mg_sse *s);
void mg_sse_deinit(struct mg_sse *s);
/* Feeds n bytes; calls fn for every event they complete. */
void mg_sse_feed(struct mg_sse *s, const char *p, size_t n, mg_sse_event_fn fn, void *arg);
/* Empties the splitter without handing anything out (a new answer). */
void mg_sse_reset(struct mg_sse *s);
/* Hands out what is left (an unterminated last event) with whole=0, and empties the splitter. */
void mg_sse_flush(struct mg_sse *s, mg_sse_event_fn fn, void *arg);

/*
 * 1 when the last "usage" member of p[0..n) holds an object: the only events that can carry
 * usage or be the extra usage event (most chunks of a stream say "usage":null).
 */
int mg_usage_has_object(const char *p, size_t n);

/*
 * For a stream whose usage event the gateway asked for itself: 1 when event is that extra usage
 * event (a usage object and an empty "choices"), which the client must not see.
 */
int mg_sse_is_usage_only(const char *p, size_t n);

/*
 * Appends event to out with every ,"usage":null member removed (what backends add to each
 * chunk once include_usage is on). Returns MG_OK or MG_ETOOBIG.
 */
int mg_sse_strip_null_usage(const char *p, size_t n, struct mg_buf *out);

#endif
