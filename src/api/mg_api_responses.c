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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
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
 * The pair OpenAI sends when a response fails after it began: the error event (flat fields for
 * openai-node, the nested error for openai-python), then response.failed.
 */
static void
responses_error_event(struct mg_buf *out, const char *why)
{
    size_t n = strlen(why);

    mg_buf_adds(out, "event: error\ndata: {\"type\":\"error\",\"code\":\"upstream_stream_error\","
                     "\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, ",\"param\":null,\"error\":{\"type\":\"upstream_error\","
                     "\"code\":\"upstream_stream_error\",\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, ",\"param\":null}}\n\nevent: response.failed\ndata: {\"type\":"
                     "\"response.failed\",\"response\":{\"object\":\"response\",\"status\":"
                     "\"failed\",\"error\":{\"code\":\"server_error\",\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, "},\"output\":[]}}\n\n");
}

/* ---- the chat hub ---- */

struct hub {
    struct mg_api_hubstage hs;        /* first: its stage finds the hub by a cast */
    struct mg_resp_ctx    *ctx;
    struct mg_resp_stream *stream;    /* this answer's, when it is a stream */
};

static void *
hub_open(const char *body, size_t len, int64_t now, uint64_t *rng, struct mg_chatreq_err *e)
{
    struct mg_resp_ctx *ctx;
    struct hub *h;
    char id[33];
    int rc = MG_CHATREQ_EINVAL;

    snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)mg_rand_next(rng),
             (unsigned long long)mg_rand_next(rng));
    ctx = mg_resp_ctx_create(body, len, id, now, e, &rc);
    if (ctx == NULL) {
        e->code = rc == MG_CHATREQ_EUNSUPPORTED ? "unsupported_parameter" : NULL;
        return NULL;
    }
    /* translated, nothing is stored yet: the answer says so */
    mg_resp_ctx_set_store(ctx, 0);
    h = mg_calloc(1, sizeof(*h));
    h->ctx = ctx;
    mg_api_hubstage_init(&h->hs, ANSWER_MAX);
    return h;
}

static void
hub_close(void *arg)
{
    struct hub *h = arg;

    mg_resp_stream_destroy(h->stream);
    mg_resp_ctx_destroy(h->ctx);
    mg_api_hubstage_deinit(&h->hs);
    free(h);
}

static int
hub_request(void *arg, const struct mg_hub_opts *o, struct mg_buf *out, struct mg_buf *dropped,
            struct mg_chatreq_err *e)
{
    struct hub *h = arg;
    struct mg_resp_opts ro = {o->model, o->max_tokens_param, o->include_usage, o->hosted_refuse};
    int rc = mg_resp_request(h->ctx, NULL, NULL, NULL, &ro, out, dropped, e);

    switch (mg_resp_ctx_code(h->ctx)) {
    case MG_RESP_CODE_PREV_MISSING: e->code = "previous_response_not_found"; break;
    case MG_RESP_CODE_ITEM_MISSING: e->code = "item_not_found"; break;
    case MG_RESP_CODE_UNSUPPORTED:  e->code = "unsupported_parameter"; break;
    default: break;
    }
    return rc;
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

/* A clean end: response.completed or .incomplete, with the usage the relay read. */
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

static void
answer_end(struct mg_stage *s)
{
    struct hub *h = (struct hub *)s;
    struct mg_usage u;
    int rc = MG_ERR;

    if (!s->relay->failed) {
        mg_buf_reset(&h->hs.out);
        rc = mg_resp_answer(h->ctx, h->hs.body.data ? h->hs.body.data : "", h->hs.body.len,
                            (int64_t)time(NULL), &h->hs.out, &u);
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

static const struct mg_hub responses_hub = {
    .open = hub_open,
    .close = hub_close,
    .request = hub_request,
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
    .bit = MG_API_BIT_RESPONSES,
    .hub = &responses_hub,
};
