/*
 * mg_resp_int — what the three Responses translators (request, answer, stream) share: the
 * context and the writers of a Response object and its items. Not a public face.
 */
#ifndef MG_RESP_INT_H
#define MG_RESP_INT_H

#include "mg_chatreq.h"
#include "mg_json.h"
#include "mg_responses.h"

#define MG_RESP_ID_MAX 64    /* OpenAI's item-id limit */

struct mg_resp_ctx {
    json_t       *root;        /* the parsed request (owned) */
    json_t       *items;       /* the normalized input, after mg_resp_request (owned), or NULL */
    char          hex[33];     /* the id's 32 hex digits */
    char          id[48];      /* "resp_mg" + hex */
    const char   *model;       /* the client's model (in root) */
    const char   *previous;    /* previous_response_id (in root), or NULL */
    int64_t       created;
    int           stream;
    int           store_req;
    int           store;       /* as applied */
    int           code;        /* MG_RESP_CODE_* of the last refusal */
    struct mg_buf echo;        /* the echoed members, rendered once: "instructions":…,… */
};

/* Token counts of a Response's usage; -1 when unknown (written as 0). */
struct mg_resp_usage {
    int64_t input;
    int64_t cached;
    int64_t output;
    int64_t reasoning;
};

/* Reads a chat usage object into u (all -1 when usage is not an object). */
void mg_resp_usage_read(const json_t *usage, struct mg_resp_usage *u);

/* An item's id: "msg_mg<hex>_<n>" (kind 'm') or "fc_mg<hex>_<n>" (kind 'f'). */
void mg_resp_item_id(const struct mg_resp_ctx *c, int kind, int n, char *buf, size_t size);
/* A tool call's id when the backend gave none: "call_mg" + 24 hex (unique per output index). */
void mg_resp_call_id(const struct mg_resp_ctx *c, int n, char *buf, size_t size);

/* A message's content part: output_text (refusal 0) or refusal. */
int mg_resp_write_part(struct mg_buf *out, int refusal, const char *t, size_t n);
/* A message item; parts: the content parts' JSON, comma-separated. */
int mg_resp_write_msg(struct mg_buf *out, const struct mg_resp_ctx *c, int n, const char *status,
                      const char *parts, size_t plen);
/* A function_call item. */
int mg_resp_write_fc(struct mg_buf *out, const struct mg_resp_ctx *c, int n, const char *status,
                     const char *call_id, size_t clen, const char *name, size_t nlen,
                     const char *args, size_t alen);

/*
 * A whole Response object. completed_at < 0: null; err: error message (NULL: null);
 * incomplete: the reason (NULL: null); items: output items' JSON, comma-separated; u NULL: usage
 * null.
 */
int mg_resp_write_response(const struct mg_resp_ctx *c, const char *status, int64_t completed_at,
                           const char *err, size_t errlen, const char *incomplete,
                           const char *items, size_t ilen, const struct mg_resp_usage *u,
                           struct mg_buf *out);

#endif
