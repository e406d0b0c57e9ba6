/*
 * mg_api_responses — OpenAI's Responses API (/v1/responses: Codex, the Agents SDK, the AI SDK's
 * openai(model)). Served natively by openai and azure backends (unless `responses: translate`),
 * through the chat hub by the others (mg_responses: the request, the answer, the event stream).
 *
 * A native stream commits with its first event that carries output (a text, refusal, argument or
 * reasoning delta, an item done, completed or incomplete); an `error` or `response.failed` before
 * it fails over; it is whole only once completed or incomplete went by. After the commit a broken
 * stream ends with OpenAI's pair: `event: error`, then `response.failed`.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_chatreq.h"
#include "mg_jload.h"
#include "mg_api.h"
#include "mg_api_responses_int.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_resp_store.h"
#include "mg_responses.h"
#include "mg_util.h"

#define ANSWER_MAX (8u * 1024 * 1024)   /* a plain chat answer read whole to be translated */

/* ---- a native stream's rules ---- */

static int
name_is(const struct mg_api_event *ev, const char *lit)
{
    size_t n = strlen(lit);

    return ev->name != NULL && ev->nlen == n && memcmp(ev->name, lit, n) == 0;
}

static int
responses_event_kind(int committed, const struct mg_api_event *ev)
{
    static const char *const output[] = {
        "response.output_text.delta", "response.refusal.delta",
        "response.function_call_arguments.delta", "response.custom_tool_call_input.delta",
        "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
        "response.output_item.done",
    };
    size_t i;

    if (name_is(ev, "response.completed") || name_is(ev, "response.incomplete")) {
        return MG_EV_OUTPUT | MG_EV_FINISH;
    }
    if (name_is(ev, "response.failed")) {
        return MG_EV_ERROR;
    }
    for (i = 0; i < MG_ARRAY_LEN(output); i++) {
        if (name_is(ev, output[i])) {
            return MG_EV_OUTPUT;
        }
    }
    return 0;
}

static const char *
responses_stream_end(int finished, int done, const char **tail)
{
    *tail = NULL;
    return finished ? NULL : "the backend ended the stream before response.completed";
}

/*
 * The pair OpenAI sends when a response fails after it began, for a stream whose state is not
 * known (the native stage below knows it and writes its own).
 */
static void
responses_error_event(struct mg_buf *out, const char *why)
{
    size_t n = strlen(why);

    mg_buf_adds(out, "event: error\ndata: {\"type\":\"error\",");
    mg_api_responses_error_fields(out, why, n);
    mg_buf_adds(out, "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":"
                     "{\"object\":\"response\",\"status\":\"failed\",\"error\":{\"code\":"
                     "\"server_error\",\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, "},\"output\":[]}}\n\n");
}

/* ---- the chat hub ---- */

/*
 * A request's translation: its context, this answer's stream, and what the conversation store
 * gave it (the chain previous_response_id names, the items item_reference names).
 */
struct hub {
    struct mg_api_hubstage hs;        /* first: its stage finds the hub by a cast */
    json_t                *chat;     /* the last attempt's chat request, read */
    struct mg_resp_ctx    *ctx;
    struct mg_resp_stream *stream;    /* this answer's, when it is a stream */
    struct mg_resp_store  *store;
    const char            *key;       /* the client key's name, in the request's snapshot */
    int                    store_it;  /* the answer is stored (asked for, and the store is on) */
    int                    prior_read;
    json_t                *prior;     /* the stored chain's items, or NULL */
    json_t                *found;     /* the items item_reference found, kept alive */
    struct mg_buf          history;   /* what is stored with an answer */
};
_Static_assert(offsetof(struct hub, hs) == 0, "a hub's stage must come first");

static void *
hub_open(const struct mg_hub_env *env, const char *body, size_t len, uint64_t *rng,
         struct mg_chatreq_err *e)
{
    struct mg_resp_store_stats st = {0};
    struct mg_resp_ctx *ctx;
    struct hub *h;
    char id[33];
    int rc = MG_CHATREQ_EINVAL;

    if (mg_random_hex(id, 16) != MG_OK) {   /* ids a client cannot guess: the store's keys */
        snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)mg_rand_next(rng),
                 (unsigned long long)mg_rand_next(rng));
    }
    ctx = mg_resp_ctx_create(body, len, id, (int64_t)time(NULL), e, &rc);
    if (ctx == NULL) {
        e->code = rc == MG_CHATREQ_EUNSUPPORTED ? "unsupported_parameter" : NULL;
        return NULL;
    }
    h = mg_calloc(1, sizeof(*h));
    h->ctx = ctx;
    h->store = env->responses;
    h->key = env->key;
    if (h->store != NULL) {
        mg_resp_store_stats(h->store, &st);
    }
    h->store_it = mg_resp_ctx_store(ctx) && st.size > 0;
    mg_resp_ctx_set_store(ctx, h->store_it);   /* store: false when the store is off */
    h->found = json_array();
    mg_api_hubstage_init(&h->hs, ANSWER_MAX);
    mg_buf_init(&h->history, 2 * ANSWER_MAX);
    return h;
}

static void
hub_close(void *arg)
{
    struct hub *h = arg;

    mg_resp_stream_destroy(h->stream);
    mg_resp_ctx_destroy(h->ctx);
    json_decref(h->chat);
    json_decref(h->prior);
    json_decref(h->found);
    mg_api_hubstage_deinit(&h->hs);
    mg_buf_deinit(&h->history);
    free(h);
}

static json_t *
stored(struct hub *h, const char *id, int history)
{
    return mg_api_responses_stored(h->store, h->key, id, history);
}

static const json_t *
lookup_item(void *arg, const char *id)
{
    struct hub *h = arg;
    json_t *item = mg_api_responses_stored_item(h->store, h->key, id);

    if (item != NULL) {
        json_array_append_new(h->found, item);   /* alive as long as the request */
    }
    return item;
}

static int
hub_request(void *arg, const struct mg_hub_opts *o, struct mg_buf *out, struct mg_buf *dropped,
            struct mg_chatreq_err *e)
{
    struct hub *h = arg;
    struct mg_resp_opts ro = {o->model, o->max_tokens_param, o->include_usage, o->hosted_refuse,
                              &h->chat, o->json_only};
    const char *prev = mg_resp_ctx_previous(h->ctx);
    int rc;

    json_decref(h->chat);
    h->chat = NULL;
    if (!h->prior_read) {   /* once per request: every attempt starts from the same chain */
        h->prior_read = 1;
        if (prev != NULL && strncmp(prev, "resp_mg", 7) == 0) {
            h->prior = stored(h, prev, 1);
        }
    }
    rc = mg_resp_request(h->ctx, h->prior, lookup_item, h, &ro, out, dropped, e);
    switch (mg_resp_ctx_code(h->ctx)) {
    case MG_RESP_CODE_PREV_MISSING: e->code = "previous_response_not_found"; break;
    case MG_RESP_CODE_ITEM_MISSING: e->code = "item_not_found"; break;
    case MG_RESP_CODE_UNSUPPORTED:  e->code = "unsupported_parameter"; break;
    default: break;
    }
    return rc;
}

static json_t *
hub_chat_json(void *arg)
{
    return ((struct hub *)arg)->chat;
}

/* Keeps a finished Response (and the chain a later request continues from); 0 when refused. */
static int
keep(struct hub *h, const char *resp, size_t len)
{
    mg_buf_reset(&h->history);
    return mg_resp_history(h->ctx, resp, len, &h->history) == MG_OK
           && mg_resp_store_put(h->store, mg_resp_ctx_id(h->ctx), h->key,
                                mg_resp_ctx_model(h->ctx), resp, len, h->history.data,
                                h->history.len, mg_now_ms()) == MG_OK;
}

/* One chat event in (the gate has committed), the response.* events it makes out. */
static void
stream_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct hub *h = (struct hub *)s;

    if (!mg_api_hubstage_whole(s, whole)) {
        return;
    }
    mg_buf_reset(&h->hs.out);
    if (mg_resp_stream_feed(h->stream, p, n, &h->hs.out) != MG_OK) {
        mg_api_hubstage_broken(&h->hs, mg_resp_stream_error(h->stream));
        return;
    }
    mg_api_hubstage_pass(&h->hs);
}

/*
 * A clean end: response.completed or .incomplete, with the usage the relay read; the Response
 * is stored (its store: true was said at response.created: a refusal now is only logged).
 */
static void
stream_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;
    struct mg_relay *r = s->relay;

    if (!r->cut && !r->failed) {
        if (r->have_usage) {
            mg_resp_stream_set_usage(h->stream, &r->usage);
        }
        mg_buf_reset(&h->hs.out);
        if (mg_resp_stream_end(h->stream, (int64_t)time(NULL), &h->hs.out) != MG_OK) {
            mg_relay_fail(r, "the backend ended the stream before its finish", 46);
        } else {
            mg_api_hubstage_pass(&h->hs);
            mg_buf_reset(&h->hs.body);
            if (h->store_it && mg_resp_stream_response(h->stream, &h->hs.body) == MG_OK) {
                keep(h, h->hs.body.data, h->hs.body.len);
            }
        }
    }
    s->next->end(s->next);
}

/* After the commit: the error event and response.failed end the stream. */
static void
stream_fail(struct mg_stage *s, const char *why)
{
    struct hub *h = (struct hub *)s;

    mg_buf_reset(&h->hs.out);
    mg_resp_stream_fail(h->stream, why, strlen(why), &h->hs.out);
    mg_api_hubstage_pass(&h->hs);
}

/* The Response of the chat answer: from the structure the schema kept, else its text. */
static int
answer(struct hub *h, const struct mg_relay *r, const char *chat, int64_t now, struct mg_usage *u)
{
    if (r->chat_answer != NULL) {
        return mg_resp_answer_kept(h->ctx, r->chat_answer, now, &h->hs.out, u);
    }
    return mg_resp_answer(h->ctx, chat, h->hs.body.len, now, &h->hs.out, u);
}

/* The whole chat answer: a Response, stored (or said not to be, when the store refuses it). */
static void
answer_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;
    const char *chat = h->hs.body.data ? h->hs.body.data : "";
    int64_t now = (int64_t)time(NULL);
    struct mg_usage u;
    int rc = MG_ERR;

    if (!s->relay->failed) {
        mg_buf_reset(&h->hs.out);
        rc = answer(h, s->relay, chat, now, &u);
        if (rc == MG_OK && h->store_it && !keep(h, h->hs.out.data, h->hs.out.len)) {
            mg_resp_ctx_set_store(h->ctx, 0);
            mg_buf_reset(&h->hs.out);
            rc = answer(h, s->relay, chat, now, &u);
        }
    }
    mg_api_hubstage_answer(&h->hs, rc, "a Response");
}

static void
hub_relay(void *arg, struct mg_relay *r)
{
    struct hub *h = arg;

    mg_resp_stream_destroy(h->stream);
    h->stream = r->sse ? mg_resp_stream_create(h->ctx, ANSWER_MAX) : NULL;
    mg_api_hubstage_add(&h->hs, r, stream_write, stream_end, answer_end, stream_fail);
}

static const char *
hub_answer_id(void *arg)
{
    return mg_resp_ctx_id(((struct hub *)arg)->ctx);
}

static const struct mg_hub responses_hub = {
    .answer_id = hub_answer_id,
    .open = hub_open,
    .close = hub_close,
    .request = hub_request,
    .chat_json = hub_chat_json,
    .relay = hub_relay,
    .error_body = NULL,   /* OpenAI's shape already */
};

const struct mg_api mg_api_responses = {
    .name = "responses",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_AZURE),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = mg_api_openai_error_body,
    .event_kind = responses_event_kind,
    .stream_end = responses_stream_end,
    .error_event = responses_error_event,
    .relay = mg_api_responses_relay,
    .previous = mg_api_responses_previous,
    .native_request = mg_api_responses_native_request,
    .bit = MG_API_BIT_RESPONSES,
    .hub = &responses_hub,
};

/* A native Response read or deleted at the backend that made it: OpenAI's shapes, no usage. */
const struct mg_api mg_api_responses_read = {
    .name = "responses",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_AZURE),
    .usage = MG_API_USAGE_NONE,
    .error_body = mg_api_openai_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
    .unserved_status = 404,
};
