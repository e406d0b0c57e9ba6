/*
 * mg_resume — mid-stream resume's relay stage (SPEC "Mid-stream resume"), for a chat stream
 * whose rule has resume: true. It sits last before the client, where the events are the chat
 * chunks the client gets, and
 *   - on the first attempt, records the text relayed (delta.content) and whether the stream can
 *     still be resumed: text only so far (no tool call, refusal, reasoning, finish, second
 *     choice), and asks the relay to hold a cut's error event while it can;
 *   - on a continuation (an attempt on a prefill entry given that text as a final assistant
 *     message), splices its chunks into the client's stream: the first attempt's id, created and
 *     model, no second role chunk, the whitespace trimmed off the prefill dropped from the
 *     continuation's start when it repeats it, and the usage the client sees made the first
 *     attempt's input and every attempt's output.
 * On a native /v1/messages stream (rs->anthropic) the same is done on Anthropic's events: text
 * only is text_delta in text blocks before message_delta's stop_reason; a continuation loses its
 * message_start (and its first content_block_start while the client's text block is open), and
 * its block indexes follow the client's.
 * A request without resume has none of it: the proxy creates the state only for such rules.
 */
#ifndef MG_RESUME_H
#define MG_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "mg_relay.h"
#include "mg_util.h"

#define MG_RESUME_TEXT_MAX (4 * 1024 * 1024)   /* text kept for the prefill; past it, no resume */

struct mg_resume {
    struct mg_stage stage;
    struct mg_relay *relay;
    struct mg_buf   text;         /* the text the client got so far */
    struct mg_buf   ev;           /* a rewritten event */
    int             ok;           /* what was relayed is text only: it can be continued */
    int             continuing;   /* this attempt continues the stream */
    int             spliced;      /* continuations that committed (the access log's resumed) */
    char            id[128];      /* the first attempt's chunk id, created and model */
    int64_t         created;
    char            model[256];
    int             have_ident;
    char            ws[64];       /* the whitespace trimmed off the prefill */
    size_t          ws_len, ws_pos;   /* how much of it the continuation repeated so far */
    int64_t         events;       /* output events of this attempt (usage estimate) */
    /* usage: what the client sees, and what is debited (ended attempts; -1: none) */
    int64_t         first_input;  /* the first attempt's input tokens */
    int64_t         out_before;   /* output tokens of the attempts before this one */
    int64_t         debit_in, debit_out;
    int64_t         cur_in, cur_out;  /* this attempt's usage as its backend reported it, or -1 */
    /* a native /v1/messages stream: Anthropic's events instead of chat chunks */
    int             anthropic;
    int             open_block;   /* the content block open now (-1: none) */
    int             nblocks;      /* content blocks started so far */
    int             base;         /* a continuation's block 0 is this block of the client's */
    int             reopen;       /* ... which is still open: its content_block_start goes */
};

/* State for one request (n <= 1 checked by the caller), embedded in the proxy's. */
void mg_resume_init(struct mg_resume *rs);
void mg_resume_deinit(struct mg_resume *rs);

/*
 * Adds the stage for this attempt's answer, last before the client (before the client API's
 * stage, when chat carries the API: the splice is made on chat chunks). anthropic: the answer is
 * a native /v1/messages stream.
 */
void mg_resume_add(struct mg_resume *rs, struct mg_relay *r, int anthropic);

/*
 * The attempt that just ended was committed: its usage (the relay's, or in, and out = the
 * output events it relayed, when it reported none) is debited and counts for what follows.
 */
void mg_resume_attempt_end(struct mg_resume *rs, const struct mg_relay *r, int64_t est_in);

/*
 * The next attempt continues the stream: *text, *len is the prefill (the text relayed, its
 * trailing whitespace trimmed; valid until the stage runs again). MG_ERR when the stream cannot
 * be continued (not text only, or no text relayed).
 */
int mg_resume_prefill(struct mg_resume *rs, const char **text, size_t *len);

#endif
