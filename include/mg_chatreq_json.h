/*
 * mg_chatreq_json — the JSON writing the translators share (mg_chatreq_json.c): jansson values
 * written as compact text, objects made without json_pack's format, and the chat parts more than
 * one translator builds.
 */
#ifndef MG_CHATREQ_JSON_H
#define MG_CHATREQ_JSON_H

#include <jansson.h>

#include "mg_util.h"

/*
 * A new object of the (key, value) pairs given, NULL-terminated; each value's reference is taken
 * (a NULL value leaves its key out). Cheaper than json_pack(), which reads a format each call.
 */
json_t *mg_chatreq_obj(const char *key, json_t *value, ...);
/*
 * The json_schema of a chat request's response_format ({name, schema, description, strict}, its
 * schema an object), or NULL: none, json_object, or one without a schema (dropped).
 */
json_t *mg_chatreq_json_schema(json_t *root);

struct mg_oai_kept;
/* The chat message (content, tool_calls) of a chat answer kept as a structure (mg_oai.h). */
json_t *mg_chatreq_kept_message(const struct mg_oai_kept *k);

/* A string value of a literal (no UTF-8 check: the caller's text is known to be valid). */
#define MG_JSTR(lit) json_string_nocheck(lit)

/* Appends j as compact JSON to out (reals with 15 significant digits: 0.7, not 0.69999…). */
int mg_chatreq_dump(const json_t *j, struct mg_buf *out);

#endif
