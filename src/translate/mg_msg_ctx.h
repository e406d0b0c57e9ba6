/*
 * mg_msg_ctx — the request state the Messages translator's files share (private to
 * src/translate/mg_msg_*.c; the public face is mg_messages.h).
 */
#ifndef MG_MSG_CTX_H
#define MG_MSG_CTX_H

#include <jansson.h>
#include <stdint.h>

#include "mg_oai.h"
#include "mg_chatreq.h"

struct mg_msg_ctx {
    json_t               *root;       /* the client's body (owned) */
    char                  id[40];     /* "msg_mg" + 32 hex */
    const char           *model;      /* the client's model name (borrowed from root) */
    size_t                model_len;
    int                   stream;     /* "stream": true */
    int64_t               max_tokens;
    json_t               *stop_one;   /* the request's only stop sequence (borrowed), or NULL */
    json_t               *messages;   /* the chat messages, built by the first attempt (owned) */
    int                   msg_rc;     /* what building them returned */
    struct mg_chatreq_err msg_err;
};

/*
 * The chat messages of c (system first), built on the first call and kept with their outcome:
 * MG_OK, or MG_CHATREQ_EINVAL / _EUNSUPPORTED / MG_ETOOBIG with e filled.
 */
int mg_msg_messages(struct mg_msg_ctx *c, struct mg_chatreq_err *e);

/* A chat usage as read: each count -1 until reported. */
struct mg_msg_usage {
    int64_t prompt;       /* prompt_tokens (cache reads and writes included) */
    int64_t completion;
    int64_t cached;       /* prompt_tokens_details.cached_tokens */
    int64_t written;      /* cache writes, when a backend reports them */
};

/* Anthropic's stop_reason for a chat finish_reason (matched: a stop sequence matched). */
const char *mg_msg_stop_reason(const char *finish, int matched);

/*
 * Whether a stop sequence matched, from the choice's backend stop_reason (vLLM: the string, or a
 * token id): 1 with *seq (n bytes) the sequence, or NULL when the backend says one matched
 * ("stop_sequence") but not which and the request has more than one.
 */
int mg_msg_stop_sequence(const struct mg_msg_ctx *c, json_t *backend_stop, const char **seq,
                         size_t *n);

/* Sets each count a chat usage object reports. */
void mg_msg_usage_read(json_t *usage, struct mg_msg_usage *u);

/* Anthropic's usage object, every count present (0 when unknown). */
int mg_msg_usage_write(const struct mg_msg_usage *u, struct mg_buf *out);

#endif
