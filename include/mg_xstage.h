/*
 * mg_xstage — what the translating schemas' relay stages share (anthropic, bedrock): the usage a
 * translator has seen, one translated event passed on, a translated stream's end, and the stage
 * for a plain answer that is read whole and translated at its end. A schema keeps its own state
 * (r->xstate) and calls these with the parts of it they need.
 */
#ifndef MG_XSTAGE_H
#define MG_XSTAGE_H

#include <stddef.h>

#include "mg_oai.h"
#include "mg_relay.h"
#include "mg_usage.h"
#include "mg_util.h"

/* The usage a translator has seen becomes the answer's, for accounting, once it holds a count. */
void mg_xstage_usage(struct mg_relay *r, const struct mg_oai_usage *u);

/*
 * One event translated into out with rc: its usage noted, its chunks passed to the next stage one
 * event at a time, and a failure (an error event: st->error; anything else: an event too large
 * to translate) ends the answer.
 */
void mg_xstage_event(struct mg_stage *s, struct mg_oai_stream *st, const struct mg_buf *out,
                     int rc);

/*
 * A translated stream ended: after a finish without the provider's end event, the usage chunk
 * and [DONE] are due (written into out, which is reset first). Then the next stage ends (the
 * gate ends a stream cut before its finish).
 */
void mg_xstage_stream_end(struct mg_stage *s, struct mg_oai_stream *st, struct mg_buf *out);

/* A plain answer's bytes, kept in body to be translated whole at its end. */
void mg_xstage_answer_write(struct mg_stage *s, struct mg_buf *body, const char *p, size_t n);

/*
 * A schema's translation of a whole answer into out: MG_OK, or it is not the provider's answer.
 * keep (may be NULL) gets the chat answer as the structure it was written from.
 */
typedef int (*mg_xstage_translate_fn)(void *arg, const char *body, size_t len, struct mg_buf *out,
                                      struct mg_usage *u, struct mg_oai_kept *keep);

/*
 * A plain answer ended: translated whole by translate and passed on in one write with its usage;
 * an answer that is not the provider's fails (not_what says what it should have been: "a Messages
 * answer"), so it fails over. Then the next stage ends. With a client API's stage after it (the
 * chat hub), the answer is also kept in kept and handed over as r->chat_answer.
 */
void mg_xstage_answer_end(struct mg_stage *s, const struct mg_buf *body, struct mg_buf *out,
                          mg_xstage_translate_fn translate, void *arg, const char *not_what,
                          struct mg_oai_kept *kept);

#endif
