/*
 * mg_api_messages — Anthropic's Messages API (/v1/messages and below: Claude Code, Anthropic
 * SDKs). The gateway's own errors take Anthropic's shape on every path below /v1/messages. On
 * /v1/messages a stream commits with its first content_block_delta, message_delta or
 * message_stop, must end with message_stop, and a broken one ends with Anthropic's error event;
 * the other paths below it (count_tokens, batches) follow OpenAI's other paths' stream rules.
 *
 * Served natively by anthropic backends (and openai ones with `messages: native`); the others
 * get it through the chat hub (mg_messages: the request, the answer, the stream and errors).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_chatreq.h"
#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_messages.h"
#include "mg_util.h"

#define ANSWER_MAX (8u * 1024 * 1024)   /* a plain chat answer read whole to be translated */

static void
messages_error_body(struct mg_buf *out, int status, const char *code, const char *param,
                    const char *msg)
{
    mg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                  mg_msg_error_type(status));
    mg_json_quote(out, msg, strlen(msg));
    mg_buf_adds(out, "}}\n");
}

static void
messages_error_event(struct mg_buf *out, const char *why)
{
    mg_buf_adds(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                     "\"message\":");
    mg_json_quote(out, why, strlen(why));
    mg_buf_adds(out, "}}\n\n");
}

static int
name_is(const struct mg_api_event *ev, const char *lit)
{
    return ev->name != NULL && ev->nlen == strlen(lit) && memcmp(ev->name, lit, ev->nlen) == 0;
}

static int
messages_event_kind(int committed, const struct mg_api_event *ev)
{
    if (name_is(ev, "message_stop")) {
        return MG_EV_OUTPUT | MG_EV_FINISH;
    }
    if (name_is(ev, "content_block_delta") || name_is(ev, "message_delta")) {
        return MG_EV_OUTPUT;
    }
    return 0;
}

static const char *
messages_stream_end(int finished, int done, const char **tail)
{
    *tail = NULL;
    return finished ? NULL : "the backend ended the stream before message_stop";
}

/* ---- the chat hub ---- */

/* A request's translation: read once, then a stream or a whole answer per attempt. */
struct hub {
    struct mg_api_hubstage hs;       /* first: its stage finds the hub by a cast */
    json_t                *chat;     /* the last attempt's chat request, read */
    struct mg_msg_ctx     *ctx;
    struct mg_msg_stream  *stream;   /* this answer's, when it is a stream */
    int                    status;   /* an error answer's, for its Anthropic type */
};
_Static_assert(offsetof(struct hub, hs) == 0, "a hub's stage must come first");

static void *
hub_open(const struct mg_hub_env *env, const char *body, size_t len, uint64_t *rng,
         struct mg_chatreq_err *e)
{
    struct hub *h;
    struct mg_msg_ctx *ctx;
    char id[33];

    if (mg_random_hex(id, 16) != MG_OK) {   /* ids a client cannot guess: the store's keys */
        snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)mg_rand_next(rng),
                 (unsigned long long)mg_rand_next(rng));
    }
    ctx = mg_msg_ctx_create(body, len, id, e);
    if (ctx == NULL) {
        return NULL;
    }
    h = mg_calloc(1, sizeof(*h));
    h->ctx = ctx;
    mg_api_hubstage_init(&h->hs, ANSWER_MAX);
    return h;
}

static void
hub_close(void *arg)
{
    struct hub *h = arg;

    mg_msg_stream_destroy(h->stream);
    mg_msg_ctx_destroy(h->ctx);
    json_decref(h->chat);
    mg_api_hubstage_deinit(&h->hs);
    free(h);
}

static int
hub_request(void *arg, const struct mg_hub_opts *o, struct mg_buf *out, struct mg_buf *dropped,
            struct mg_chatreq_err *e)
{
    struct hub *h = arg;
    struct mg_msg_opts mo = {o->model, o->max_tokens_param, o->include_usage, o->hosted_refuse,
                             &h->chat, o->json_only};

    json_decref(h->chat);
    h->chat = NULL;
    return mg_msg_request(h->ctx, &mo, out, dropped, e);
}

static json_t *
hub_chat_json(void *arg)
{
    return ((struct hub *)arg)->chat;
}

/* One chat event in (the gate has committed), Anthropic's events out. */
static void
stream_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct hub *h = (struct hub *)s;

    if (!mg_api_hubstage_whole(s, whole)) {
        return;
    }
    mg_buf_reset(&h->hs.out);
    if (mg_msg_stream_event(h->stream, p, n, &h->hs.out) != MG_OK) {
        mg_api_hubstage_broken(&h->hs, mg_msg_stream_state(h->stream)->error);
        return;
    }
    mg_api_hubstage_pass(&h->hs);
}

static void
stream_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;

    if (!s->relay->cut && !s->relay->failed) {
        mg_buf_reset(&h->hs.out);
        if (mg_msg_stream_end(h->stream, &h->hs.out) != MG_OK) {
            mg_relay_fail(s->relay, "the backend ended the stream before its finish", 46);
        } else {
            mg_api_hubstage_pass(&h->hs);
        }
    }
    s->next->end(s->next);
}

/* After the commit: Anthropic's error event ends the stream. */
static void
stream_fail(struct mg_stage *s, const char *why)
{
    struct hub *h = (struct hub *)s;

    mg_buf_reset(&h->hs.out);
    mg_msg_stream_fail(h->stream, why, strlen(why), &h->hs.out);
    mg_api_hubstage_pass(&h->hs);
}

/* The whole chat answer: translated, then it commits; one that cannot be fails over. */
static void
answer_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;
    struct mg_usage u;
    int rc = MG_ERR;

    if (!s->relay->failed) {
        mg_buf_reset(&h->hs.out);
        rc = s->relay->chat_answer != NULL   /* the structure the schema kept, else its text */
             ? mg_msg_answer_kept(h->ctx, s->relay->chat_answer, &h->hs.out, &u)
             : mg_msg_answer(h->ctx, h->hs.body.data ? h->hs.body.data : "", h->hs.body.len,
                             &h->hs.out, &u);
    }
    mg_api_hubstage_answer(&h->hs, rc, "a Message");
}

static void
hub_relay(void *arg, struct mg_relay *r)
{
    struct hub *h = arg;

    mg_msg_stream_destroy(h->stream);
    h->stream = r->sse ? mg_msg_stream_create(h->ctx) : NULL;
    mg_api_hubstage_add(&h->hs, r, stream_write, stream_end, answer_end, stream_fail);
}

/* An error answer relayed as it comes: its body in Anthropic's shape, type from the status. */
static void
error_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;
    int rc = MG_ERR;

    if (!s->relay->failed) {
        mg_buf_reset(&h->hs.out);
        rc = mg_msg_error(h->status, h->hs.body.data ? h->hs.body.data : "", h->hs.body.len,
                          &h->hs.out);
    }
    mg_api_hubstage_answer(&h->hs, rc, "an Anthropic error");
}

static void
hub_relay_error(void *arg, struct mg_relay *r, int status)
{
    struct hub *h = arg;

    if (r->sse) {
        return;   /* an error as an event stream: passed as it is */
    }
    mg_msg_stream_destroy(h->stream);
    h->stream = NULL;
    h->status = status;
    mg_api_hubstage_add(&h->hs, r, stream_write, stream_end, error_end, stream_fail);
}

static int
hub_error_body(void *arg, int status, const char *body, size_t len, struct mg_buf *out)
{
    return mg_msg_error(status, body, len, out) == MG_OK;
}

static const char *
hub_answer_id(void *arg)
{
    return mg_msg_ctx_id(((struct hub *)arg)->ctx);
}

static const struct mg_hub messages_hub = {
    .answer_id = hub_answer_id,
    .open = hub_open,
    .close = hub_close,
    .request = hub_request,
    .chat_json = hub_chat_json,
    .relay = hub_relay,
    .relay_error = hub_relay_error,
    .error_body = hub_error_body,
};

const struct mg_api mg_api_messages = {
    .name = "messages",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_ANTHROPIC),
    .bit = MG_API_BIT_MESSAGES,
    .hub = &messages_hub,
    .usage = MG_API_USAGE_OBJECT,
    .error_body = messages_error_body,
    .event_kind = messages_event_kind,
    .stream_end = messages_stream_end,
    .error_event = messages_error_event,
};

/* count_tokens answers are not usage (nothing is estimated for them either). */
const struct mg_api mg_api_count_tokens = {
    .name = "count_tokens",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_ANTHROPIC),
    .bit = MG_API_BIT_MESSAGES,   /* and openai backends with messages: native */
    .unserved_status = 404,       /* never an estimate: Claude Code falls back on a 404 */
    .usage = MG_API_USAGE_NONE,
    .error_body = messages_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
};

/* Batches and the rest: only a backend that passes every path through serves them. */
const struct mg_api mg_api_messages_other = {
    .name = "other",
    .schemas = 0,
    .bit = MG_API_BIT_MESSAGES,   /* openai backends with messages: native */
    .usage = MG_API_USAGE_OBJECT,
    .error_body = messages_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
};
