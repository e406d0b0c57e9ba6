/*
 * mg_schema_anthropic — backends that speak Anthropic's Messages API.
 *
 * Two kinds of clients reach them:
 *   - OpenAI clients on /v1/chat/completions: the request is translated (mg_anthropic) and posted
 *     to {url}/v1/messages; the answer is translated back. A stream is translated event by event
 *     as it arrives, between the SSE splitter and the commit gate, so the gate sees OpenAI chunks
 *     and applies the chat rules (commit at the first output, [DONE] after a finish, one error
 *     event after a failure). A plain answer is read whole (bounded) and translated at its end.
 *   - Anthropic-native clients on /v1/messages and /v1/messages/count_tokens: passed through as
 *     they are (the entry's model override apart), with the client's anthropic-version and
 *     anthropic-beta kept; usage is read from Anthropic's events on the way.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mg_anthropic.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_req.h"
#include "mg_schema.h"
#include "mg_yaml.h"
#include "mg_xstage.h"

#define ANSWER_MAX (16 * 1024 * 1024)   /* a plain answer read whole to be translated */

static int
is_chat(const char *upath)
{
    return strcmp(upath, "/chat/completions") == 0;
}

/* A backend's anthropic keys (b->schema_conf). */
struct anthropic_conf {
    char   *version;      /* as written; after the check, the line "anthropic-version: V" */
    int64_t max_tokens;   /* when the client sets none */
    int64_t prefill;      /* continues a final assistant message (natively) */
};

/*
 * The backend's anthropic_version line, unless its own `headers:` set anthropic-version (sent
 * with them, and so only once: the backend's own value wins, as for every header).
 */
static void
add_version(struct mg_upreq *up, const struct mg_backend *b)
{
    size_t i;

    for (i = 0; i < b->nheaders; i++) {
        if (strcasecmp(b->headers[i].name, "anthropic-version") == 0) {
            return;
        }
    }
    mg_schema_add_line(up, ((const struct anthropic_conf *)b->schema_conf)->version);
}

/* The request the client sent, translated: the Messages API's, for {url}/v1/messages. */
static int
build_chat(const struct mg_client_req *rq, const struct mg_backend *b,
           const struct mg_rule_backend *e, struct mg_upreq *up)
{
    static const char *const skip[] = {"anthropic-version", NULL};   /* ours fits our body */
    const struct anthropic_conf *ac = b->schema_conf;
    struct mg_chatreq_err err;
    int rc;

    rc = mg_anthropic_request(rq->body, rq->body_len, rq->chat_json,
                              e->model != NULL ? e->model : rq->jr->model,
                              ac->max_tokens, &up->edited, &err);
    if (rc == MG_CHATREQ_EINVAL || rc == MG_CHATREQ_EUNSUPPORTED) {
        return mg_schema_refuse(up, rc == MG_CHATREQ_EINVAL ? MG_SCHEMA_EINVAL : MG_SCHEMA_ESKIP,
                                err.param, "%s", err.message);
    }
    if (rc != MG_OK || mg_buf_adds(&up->url, b->url) != MG_OK ||
        mg_buf_adds(&up->url, "/v1/messages") != MG_OK) {
        return MG_ERR;
    }
    up->body = up->edited.data;
    up->body_len = up->edited.len;
    up->stream = rq->jr->stream;
    mg_schema_headers(up, rq, b, skip, 0);
    add_version(up, b);
    return MG_OK;
}

/* An Anthropic-native request: its bytes (model override apart) and its version headers. */
static int
build_native(const struct mg_client_req *rq, const struct mg_backend *b,
             const struct mg_rule_backend *e, struct mg_upreq *up)
{
    int rc;

    up->body = rq->body;
    up->body_len = rq->body_len;
    if (e->model != NULL) {
        if (mg_json_rewrite(rq->body, rq->body_len, rq->jr, e->model, 0, &up->edited) != MG_OK) {
            return MG_ERR;
        }
        up->body = up->edited.data;
        up->body_len = up->edited.len;
    }
    rc = mg_buf_adds(&up->url, b->url);
    rc = rc ? rc : mg_buf_adds(&up->url, "/v1");
    rc = rc ? rc : mg_buf_adds(&up->url, rq->upath);
    rc = rc ? rc : mg_schema_add_query(&up->url, rq->query, NULL, 1);
    if (rc != MG_OK) {
        return MG_ERR;
    }
    up->stream = rq->jr->stream;
    mg_schema_headers(up, rq, b, NULL, 0);
    if (mg_headers_get(rq->headers, "anthropic-version") == NULL) {
        add_version(up, b);
    }
    return MG_OK;
}

static int
anthropic_build(const struct mg_client_req *rq, const struct mg_backend *b,
                const struct mg_rule_backend *e, struct mg_upreq *up)
{
    return is_chat(rq->upath) ? build_chat(rq, b, e, up) : build_native(rq, b, e, up);
}

/* The active check: GET {url}/v1/models with the key and the version line. */
static int
anthropic_probe(const struct mg_backend *b, struct mg_upreq *up)
{
    if (mg_schema_probe_request(up, b, "/v1/models") != MG_OK) {
        return MG_ERR;
    }
    add_version(up, b);
    return MG_OK;
}

/*
 * A failed answer is read aside (not relayed) whatever its status, so that error_body can give
 * it the client's shape: every status but 2xx and the fail-over ones is inspected.
 */
static enum mg_head_class
anthropic_classify(const struct mg_resp_head *h)
{
    enum mg_head_class c = mg_head_classify_status(h->status);

    return c == MG_HEAD_FINAL && (h->status < 200 || h->status > 299) ? MG_HEAD_INSPECT : c;
}

/* ---- the stages ---------------------------------------------------------------------------- */

struct xl {
    const struct mg_client_req *rq;
    struct mg_oai_kept          kept;      /* the chat answer, for a client API's hub */
    struct mg_anthropic_stream *stream;    /* chat streams */
    struct mg_buf               out;       /* what one event (or the answer) became */
    struct mg_buf               body;      /* a plain chat answer, read whole */
    struct mg_oai_usage         usage;     /* native answers: the last value of each field */
};

static void
xl_free(void *arg)
{
    struct xl *x = arg;

    mg_anthropic_stream_destroy(x->stream);
    mg_oai_kept_deinit(&x->kept);
    mg_buf_deinit(&x->out);
    mg_buf_deinit(&x->body);
    free(x);
}

static struct xl *
xl_new(struct mg_relay *r, const struct mg_client_req *rq)
{
    struct xl *x = mg_calloc(1, sizeof(*x));

    x->rq = rq;
    mg_buf_init(&x->out, 2 * ANSWER_MAX);
    mg_buf_init(&x->body, ANSWER_MAX);
    mg_oai_usage_init(&x->usage);
    mg_relay_set_state(r, x, xl_free);
    return x;
}

/* One Messages event in, the chunks it makes out to the gate, one event per write. */
static void
stream_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct mg_relay *r = s->relay;
    struct xl *x = r->xstate;
    struct mg_oai_stream *st = mg_anthropic_stream_state(x->stream);
    int rc;

    if (!whole) {
        mg_relay_fail(r, "the backend sent an event too large to translate", 48);
        return;
    }
    mg_buf_reset(&x->out);
    rc = mg_anthropic_stream_event(x->stream, p, n, &x->out);
    mg_xstage_event(s, st, &x->out, rc);
}

/* The stream ended: after a finish without message_stop, the usage chunk and [DONE] are due. */
static void
stream_end(struct mg_stage *s)
{
    struct xl *x = s->relay->xstate;

    mg_xstage_stream_end(s, mg_anthropic_stream_state(x->stream), &x->out);
}

static void
answer_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct xl *x = s->relay->xstate;

    mg_xstage_answer_write(s, &x->body, p, n);
}

static int
translate_answer(void *arg, const char *body, size_t len, struct mg_buf *out, struct mg_usage *u,
                 struct mg_oai_kept *keep)
{
    struct xl *x = arg;

    return mg_anthropic_answer(body, len, x->rq->jr->model, (int64_t)time(NULL), out, u, keep);
}

/* A plain answer ended: translated whole; one that is not a Messages answer fails over. */
static void
answer_end(struct mg_stage *s)
{
    struct xl *x = s->relay->xstate;

    mg_xstage_answer_end(s, &x->body, &x->out, translate_answer, x, "a Messages answer",
                         &x->kept);
}

/* Native streams: events pass as sent; usage is read from message_start and message_delta. */
static void
native_sse_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct xl *x = s->relay->xstate;

    if (whole && mg_anthropic_event_usage(p, n, &x->usage)) {
        mg_xstage_usage(s->relay, &x->usage);
    }
    s->next->write(s->next, p, n, whole);
}

/* Native plain answers: bytes pass as sent; the usage is read from the tail at the end. */
static void
native_json_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    s->next->write(s->next, p, n, whole);
    mg_relay_keep_tail(s->relay, p, n);
}

static void
native_json_end(struct mg_stage *s)
{
    struct mg_relay *r = s->relay;
    struct xl *x = r->xstate;

    if (r->tail.len > 0 && mg_anthropic_answer_usage(r->tail.data, r->tail.len, &x->usage)) {
        mg_xstage_usage(r, &x->usage);
    }
    s->next->end(s->next);
}

static void
pass_end(struct mg_stage *s)
{
    s->next->end(s->next);
}

static void
add_stage(struct mg_relay *r, void (*write)(struct mg_stage *, const char *, size_t, int),
          void (*end)(struct mg_stage *))
{
    r->xlate.write = write;
    r->xlate.end = end;
    r->xlate.relay = r;
    mg_relay_add(r, &r->xlate);
}

static void
anthropic_relay(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
                const struct mg_resp_head *h)
{
    struct xl *x;
    char id[160];

    if (h->status < 200 || h->status > 299) {   /* an error too long to read aside */
        r->keep_length = 1;
        mg_relay_add_gate(r);
        return;
    }
    x = xl_new(r, rq);
    if (!is_chat(rq->upath)) {
        if (h->sse) {
            mg_relay_add_sse_split(r);
            mg_relay_add_gate(r);
            add_stage(r, native_sse_write, pass_end);
        } else {
            r->keep_length = 1;
            mg_relay_add_gate(r);
            if (strcmp(rq->upath, "/messages") == 0) {
                add_stage(r, native_json_write, native_json_end);
            } else {
                r->no_usage = 1;   /* count_tokens answers are not usage */
            }
        }
        return;
    }
    if (h->sse) {
        snprintf(id, sizeof(id), "chatcmpl-%s", rq->request_id);
        x->stream = mg_anthropic_stream_create(rq->jr->model, (int64_t)time(NULL),
                                               rq->jr->include_usage, id);
        mg_relay_add_sse_split(r);
        add_stage(r, stream_write, stream_end);
    } else {
        add_stage(r, answer_write, answer_end);
    }
    mg_relay_add_gate(r);
}

/* Errors on the chat path get OpenAI's shape; native clients get Anthropic's as it is. */
static int
anthropic_error_body(const struct mg_client_req *rq, const struct mg_resp_head *h,
                     const char *body, size_t len, struct mg_buf *out)
{
    if (!is_chat(rq->upath)) {
        return 0;
    }
    return mg_anthropic_error(body != NULL ? body : "", len, out) == MG_OK;
}

/* ---- configuration ---- */

static const struct mg_yaml_key anthropic_keys[] = {
    {"anthropic_version", mg_yaml_set_nonempty_line, offsetof(struct anthropic_conf, version)},
    {"max_tokens", mg_schema_set_max_tokens, offsetof(struct anthropic_conf, max_tokens)},
    MG_SCHEMA_PREFILL_KEY(struct anthropic_conf, prefill),
};

static void *
anthropic_conf_create(void)
{
    struct anthropic_conf *ac = mg_calloc(1, sizeof(*ac));

    ac->max_tokens = MG_SCHEMA_MAX_TOKENS;
    return ac;
}

/* The key is needed; the version line is built once, the API's first version by default. */
static void
anthropic_conf_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b,
                     void *conf)
{
    struct anthropic_conf *ac = conf;
    char *line;

    mg_schema_prefill_check(b, ac->prefill, "");

    if (b->api_key == NULL || b->api_key[0] == '\0') {
        mg_yaml_error(y, node, "backend \"%s\" (schema: anthropic) needs \"api_key\"",
                      b->name ? b->name : "?");
    } else {
        b->auth_header = mg_schema_conf_line("x-api-key", b->api_key);
    }
    line = mg_schema_conf_line("anthropic-version", ac->version ? ac->version : "2023-06-01");
    free(ac->version);
    ac->version = line;
}

static void
anthropic_conf_free(void *conf)
{
    struct anthropic_conf *ac = conf;

    if (ac != NULL) {
        free(ac->version);
        free(ac);
    }
}

const struct mg_schema mg_schema_anthropic = {
    .name = "anthropic",
    .chat_api = "messages",
    .reads_chat_json = 1,
    .build = anthropic_build,
    .classify = anthropic_classify,
    .relay = anthropic_relay,
    .error_body = anthropic_error_body,
    .probe = anthropic_probe,
    .keys = anthropic_keys,
    .nkeys = MG_ARRAY_LEN(anthropic_keys),
    .conf_create = anthropic_conf_create,
    .conf_check = anthropic_conf_check,
    .conf_free = anthropic_conf_free,
};
