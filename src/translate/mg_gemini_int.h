/*
 * What the Gemini translator's answer (mg_gemini.c) and stream (mg_gemini_stream.c) share.
 */
#ifndef MG_GEMINI_INT_H
#define MG_GEMINI_INT_H

#include <stddef.h>

#include <jansson.h>

#include "mg_oai.h"

/*
 * usageMetadata into u. Google's JSON leaves zero counts out, so a count the object lacks is 0;
 * the input counts the tool-use prompt and not the cached tokens (cache_read), the output counts
 * the thoughts (also reasoning, when given). Nothing when um is not an object.
 */
void mg_gemini_read_usage(json_t *um, struct mg_oai_usage *u);
/* The finish_reason of a finishReason (NULL: none given); tools: the answer called a function. */
const char *mg_gemini_finish(const char *reason, int tools);
/* The text of a part the client reads (a thought's is not), or NULL. */
json_t *mg_gemini_part_text(json_t *part);
/* What separates a call's id from the thoughtSignature it carries. */
#define MG_GEMINI_SIG_MARK "__thought__"
/*
 * The id of part's call, the n-th of answer id (allocated; the caller frees): Gemini's own, or
 * call_<n>_<id>; then MG_GEMINI_SIG_MARK and the part's thoughtSignature when it has one.
 */
char *mg_gemini_call_id(json_t *part, size_t n, const char *id);

#endif
