/*
 * mg_json — a validating scan of a request body, without a tree.
 *
 * The proxy needs three things from a body: is it valid JSON, is it an object, and what are its
 * top-level "model" and "stream". A full tree (jansson) costs an allocation per value; this scan
 * costs none (but for more than MG_JSON_NAMES_INLINE top-level members) and also records
 * where the model string sits, so that a per-attempt model override can splice the new name in
 * and leave every other byte as the client sent it.
 *
 * The gateway decides on "model" (routing, a key's allow-list) and "stream" and forwards the
 * body, so it must read them as every backend will: the top-level names are checked too (see
 * mg_json_scan_request), and so are the values a backend would otherwise read another way.
 */
#ifndef MG_JSON_H
#define MG_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_JSON_OK           0
#define MG_JSON_INVALID     -1   /* not JSON (RFC 8259), or nested too deep */
#define MG_JSON_NOT_OBJECT  -2   /* valid JSON, but not an object */
#define MG_JSON_NO_MODEL    -3   /* no top-level "model", or it is not a string */
#define MG_JSON_MODEL_LONG  -4   /* "model" longer than the caller's buffer */
#define MG_JSON_DUPLICATE   -5   /* a top-level member name given twice */
#define MG_JSON_NAME_CASE   -6   /* a top-level name that is "model" or "stream" in another case */
#define MG_JSON_BAD_VALUE   -7   /* "stream" or a max_tokens-like limit: wrong type or range */

#define MG_JSON_MAX_DEPTH 128
/* The largest max_tokens, max_completion_tokens, max_output_tokens taken: 2^31 - 1, far above
 * any model's output, and what a backend that reads them into a 32-bit int can hold. */
#define MG_JSON_MAX_TOKENS 2147483647
/* Top-level members checked for duplicates without an allocation (more: an array, a table). */
#define MG_JSON_NAMES_INLINE 32

struct mg_json_req {
    char  *model;        /* the decoded model name (the caller's buffer) */
    size_t model_len;
    size_t model_start;  /* byte offset of the model value's opening quote */
    size_t model_end;    /* byte offset just past its closing quote */
    int    multipart;    /* a multipart/form-data body: model_start..model_end is the model
                          * part's value (no quotes), and nothing else below is set */
    int    stream;       /* 1 when the top-level "stream" is true */
    int    include_usage;  /* 1 when stream_options.include_usage is true */
    /* the largest top-level max_tokens / max_completion_tokens / max_output_tokens that is a
     * whole number (saturated at MG_TOKENS_MAX), 0 when none: for the token limit's estimate */
    int64_t max_tokens;
    /* where the values of the top-level "temperature" and "top_p" start (offset + 1; 0: absent),
     * for the request's trace span (read only when it is sampled) */
    size_t temperature_at;
    size_t top_p_at;
    size_t obj_end;      /* byte offset of the top-level object's closing brace */
    /* the one edit that turns include_usage on: replace usage_del bytes at usage_at by usage_ins */
    size_t      usage_at;
    size_t      usage_del;
    const char *usage_ins;
    /* MG_JSON_NAME_CASE: the name it spells ("model", "stream"); MG_JSON_BAD_VALUE: the
     * parameter ("stream", "max_tokens", ...), what it must be ("a boolean") and what it is ("a
     * string", "a number"), and where its value sits in the body */
    const char *bad_param;
    const char *bad_want;
    const char *bad_got;
    size_t      bad_at;
    size_t      bad_len;
};

/*
 * Scans body[0..len). On MG_JSON_OK, out describes the model (decoded into buf of bufsize bytes,
 * NUL-terminated) and stream. Besides RFC 8259 (MG_JSON_INVALID) the top-level object must hold
 * each member name once (MG_JSON_DUPLICATE: readers differ on which of two they keep) and no
 * name that is "model" or "stream" ignoring case but not exactly (MG_JSON_NAME_CASE: Go's
 * encoding/json takes "Model", and "\u017ftream" with the long s, for them); names are compared
 * decoded ("mod\u0065l" is "model"). "stream" must be a boolean and max_tokens,
 * max_completion_tokens and max_output_tokens integers from 1 to MG_JSON_MAX_TOKENS, written
 * without fraction or exponent (MG_JSON_BAD_VALUE for the first that is not; null is absent).
 * Nested objects are not checked. When several answers apply, the first of INVALID or
 * NOT_OBJECT, DUPLICATE, NAME_CASE, BAD_VALUE, NO_MODEL, MODEL_LONG is given. The duplicate check
 * is O(n) expected for n top-level members; beyond the first MG_JSON_NAMES_INLINE it
 * allocates 16 bytes a member and a table of 12 to 24 (freed before the return). More than 2^30
 * top-level members (a body of 5 GiB or more) is MG_JSON_INVALID.
 */
int mg_json_scan_request(const char *body, size_t len, char *buf, size_t bufsize,
                         struct mg_json_req *out);

/*
 * Appends body to out with, optionally, its model replaced (model not NULL) and
 * stream_options.include_usage turned on (add_usage): added as a member, or set to true, or the
 * stream_options object created, whatever the body needs. Every other byte is kept.
 */
int mg_json_rewrite(const char *body, size_t len, const struct mg_json_req *req,
                    const char *model, int add_usage, struct mg_buf *out);

#define MG_JSON_CHUNK_OUTPUT 1   /* the chunk carries output: it may commit a stream */
#define MG_JSON_CHUNK_FINISH 2   /* a choice's finish_reason is not null */

/*
 * What an OpenAI chat or completion stream chunk (one event's data) carries, read without a
 * tree: MG_JSON_CHUNK_OUTPUT when a choice's "delta" has a member other than "role" that holds
 * something (not null, "", [] or {}), or a choice's "text" holds something, or a choice's
 * "finish_reason" or the top-level "usage" is not null; MG_JSON_CHUNK_FINISH (with OUTPUT) when a
 * finish_reason is not null. 0 for a chunk without either, and for anything that is not a valid
 * JSON object. A key given twice counts each time (jansson would keep the last).
 */
int mg_json_chunk_kind(const char *data, size_t len);

/* Appends s as a JSON string literal (quotes included) to out. */
int mg_json_quote(struct mg_buf *out, const char *s, size_t len);

#endif
