/*
 * mg_xanswer — what the translating providers (Anthropic Messages, Bedrock Converse) share: one
 * reader of a provider's whole answer into an OpenAI chat.completion, and of its stop reason and
 * usage (streams read those too). A provider differs only in its names, given as a table. Pure:
 * JSON in, bytes out (jansson).
 */
#ifndef MG_XANSWER_H
#define MG_XANSWER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_oai.h"
#include "mg_usage.h"
#include "mg_util.h"

/* A provider's vocabulary. */
struct mg_xanswer_names {
    const char *const (*finish)[2];   /* stop reason -> finish_reason; any other is "stop" */
    size_t             nfinish;
    const char        *stop_key;      /* the answer's member with the stop reason */
    const char        *usage_keys[4]; /* input, output, cache read, cache write token counts */
    const char        *text_type;     /* a text block's "type", or NULL: any block with a text */
    const char        *tool_type;     /* a tool block's "type" (the block holds the call), or */
    const char        *tool_member;   /*   NULL and this member of a block holds the call */
    const char        *tool_id;       /* the call's id member ("name" and "input" are fixed) */
};

/* The finish_reason for a provider's stop reason (NULL: "stop"). */
const char *mg_xanswer_finish(const struct mg_xanswer_names *nm, const char *stop_reason);

/*
 * Sets each count a usage object reports (the last value of each field wins); a number outside
 * 0..2^53-1 is absent: sums of such numbers could overflow.
 */
void mg_xanswer_usage(const struct mg_xanswer_names *nm, json_t *usage, struct mg_oai_usage *u);

/*
 * Writes the chat.completion for an answer whose content blocks are content (an array) and whose
 * stop reason and usage are members of root: id (NULL: "chatcmpl-modelgate"), created = now,
 * model = client_model; text blocks joined, tool calls in order. u gets the usage totals (-1 when
 * absent). MG_OK, or MG_ETOOBIG from out's cap.
 */
int mg_xanswer_write(const struct mg_xanswer_names *nm, json_t *root, json_t *content,
                     const char *id, const char *client_model, int64_t now, struct mg_buf *out,
                     struct mg_usage *u, struct mg_oai_kept *keep);

#endif
