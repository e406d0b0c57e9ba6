/*
 * mg_schema_bedrock — Amazon Bedrock's Converse API, for OpenAI chat clients.
 *
 *   POST /v1/chat/completions -> POST {url}/model/{modelId}/converse (or /converse-stream)
 *
 * The request is translated (mg_bedrock), then signed with AWS SigV4 over the exact bytes sent
 * (mg_sigv4): the model id is percent-encoded as one path segment, and the signer encodes that
 * path once more for the canonical request, as AWS does for every service but S3. The Host
 * header is set here, so the value signed is the value sent. The derived signing key is cached
 * per worker thread (a few slots, keyed by the credentials and region): each worker derives it
 * once a day and region, without a lock.
 *
 * ConverseStream answers are AWS event-stream frames: the decoder (mg_evstream) takes them as
 * they arrive, split anywhere, checks both CRCs, and each frame is translated into chat chunks at
 * once, before the commit gate. An exception frame or a broken frame ends the stream as the
 * contract says (before commit: fail over; after: one upstream_stream_error event).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "mg_aws_cred.h"
#include "mg_bedrock.h"
#include "mg_conf_types.h"
#include "mg_cred.h"
#include "mg_evstream.h"
#include "mg_hdr.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_xstage.h"
#include "mg_schema.h"
#include "mg_yaml.h"
#include "mg_sigv4.h"

#define ANSWER_MAX  (16 * 1024 * 1024)   /* a plain answer read whole to be translated */
#define FRAME_MAX   (1024 * 1024)        /* one event-stream frame */
#define KEY_SLOTS   8                    /* signing keys cached per worker thread */

/* A backend's bedrock keys (b->schema_conf); every string goes into a signed request as it is. */
struct bedrock_conf {
    char   *region;
    char   *aws_access_key_id;
    char   *aws_secret_access_key;
    char   *aws_session_token;   /* NULL or "" when the credentials have none */
    char   *aws_role_arn;        /* assumed through STS with the keys above or the chain's */
    int64_t max_tokens;          /* when the client sets none */
    int64_t prefill;             /* continues a final assistant message (natively) */
};

/* ---- signing --------------------------------------------------------------------------- */

/* The signing-key cache of this thread: the slot for these credentials and region. */
static struct mg_sigv4_cache *
key_cache(const char *key_id, const char *region)
{
    static _Thread_local struct mg_sigv4_cache slots[KEY_SLOTS];
    static _Thread_local int ready;
    uint64_t h = 1469598103934665603ull;
    const char *p;
    int i;

    if (!ready) {
        for (i = 0; i < KEY_SLOTS; i++) {
            mg_sigv4_cache_init(&slots[i]);
        }
        ready = 1;
    }
    for (p = key_id; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    for (p = region; *p; p++) {
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    }
    return &slots[h % KEY_SLOTS];   /* a collision only costs a derivation */
}

/* Signs the request in up (URL and body final) and adds the signed headers. */
static int
sign(const struct mg_client_req *rq, const struct mg_backend *b, struct mg_upreq *up,
     const char *host, const char *path)
{
    static const char *const skip[] = {"x-amz-*", NULL};   /* x-amz-* must be signed: ours only */
    struct mg_sigv4_header ct = {"content-type", "application/json"};
    const struct bedrock_conf *bc = b->schema_conf;
    struct mg_sigv4_creds creds = {bc->aws_access_key_id, bc->aws_secret_access_key,
                                   bc->aws_session_token};
    struct mg_cred *c = NULL;
    struct mg_sigv4_request req;
    struct mg_sigv4_result res;
    size_t i;
    int rc;

    if (b->cred != NULL) {   /* the chain's or the role's: the cache's current one, no lock */
        c = mg_cred_source_current(b->cred, mg_cred_now_ms());
        if (c == NULL) {
            return mg_schema_refuse(up, MG_SCHEMA_ENOCRED, NULL, "no usable AWS credentials");
        }
        creds.access_key_id = c->access_key_id;
        creds.secret_access_key = c->secret_access_key;
        creds.session_token = c->session_token;
    }
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.host = host;
    req.path = path;
    req.headers = &ct;
    req.nheaders = 1;
    req.body = up->body;
    req.body_len = up->body_len;
    req.region = bc->region;
    req.service = "bedrock";
    rc = mg_sigv4_sign(&req, &creds, (int64_t)time(NULL),
                       key_cache(creds.access_key_id, bc->region), &res);
    if (rc == MG_OK) {
        mg_schema_headers(up, rq, b, skip, MG_SCHEMA_OWN_CTYPE);
        mg_schema_add_header(up, "Host", host);
        for (i = 0; i < res.nheaders; i++) {   /* copied: the credential may go after this */
            mg_schema_add_header(up, res.headers[i].name, res.headers[i].value);
        }
    }
    mg_cred_unref(c);
    return rc == MG_OK ? MG_OK : MG_ERR;
}

static int
bedrock_build(const struct mg_client_req *rq, const struct mg_backend *b,
              const struct mg_rule_backend *e, struct mg_upreq *up)
{
    const char *model = e->model != NULL ? e->model : rq->jr->model, *prefix;
    struct mg_chatreq_err err;
    char host[512];
    size_t path_at;
    int rc, stream = 0;

    rc = mg_bedrock_request(rq->body, rq->body_len, rq->chat_json,
                            ((const struct bedrock_conf *)b->schema_conf)->max_tokens, &up->edited,
                            &stream, &err);
    if (rc == MG_CHATREQ_EINVAL || rc == MG_CHATREQ_EUNSUPPORTED) {
        return mg_schema_refuse(up, rc == MG_CHATREQ_EINVAL ? MG_SCHEMA_EINVAL : MG_SCHEMA_ESKIP,
                                err.param, "%s", err.message);
    }
    if (rc != MG_OK || mg_aws_split_url(b->url, host, sizeof(host), &prefix) != MG_OK) {
        return MG_ERR;
    }
    up->body = up->edited.data;
    up->body_len = up->edited.len;
    up->stream = stream;
    rc = mg_buf_adds(&up->url, b->url);
    path_at = up->url.len - strlen(prefix);
    rc = rc ? rc : mg_buf_adds(&up->url, "/model/");
    rc = rc ? rc : mg_sigv4_encode_segment(&up->url, model, strlen(model));
    rc = rc ? rc : mg_buf_adds(&up->url, stream ? "/converse-stream" : "/converse");
    if (rc != MG_OK) {
        return MG_ERR;
    }
    return sign(rq, b, up, host, up->url.data + path_at);
}

/* Every status but 2xx and the fail-over ones is read aside, for error_body. */
static enum mg_head_class
bedrock_classify(const struct mg_resp_head *h)
{
    enum mg_head_class c = mg_head_classify_status(h->status);

    return c == MG_HEAD_FINAL && (h->status < 200 || h->status > 299) ? MG_HEAD_INSPECT : c;
}

/* ---- the stages ---------------------------------------------------------------------------- */

struct xl {
    const struct mg_client_req *rq;
    struct mg_bedrock_stream   *stream;
    struct mg_evstream          dec;
    struct mg_stage            *stage;     /* the translating stage, for the frame callback */
    struct mg_buf               out;
    struct mg_buf               body;
    char                        id[160];   /* Converse answers have none: chatcmpl-<request id> */
    struct mg_oai_kept          kept;      /* the chat answer, for a client API's hub */
};

static void
xl_free(void *arg)
{
    struct xl *x = arg;

    mg_bedrock_stream_destroy(x->stream);
    mg_evstream_deinit(&x->dec);
    mg_oai_kept_deinit(&x->kept);
    mg_buf_deinit(&x->out);
    mg_buf_deinit(&x->body);
    free(x);
}

/* One decoded frame: translated, its chunks passed to the gate one event at a time. */
static int
on_frame(void *arg, const struct mg_evstream_frame *f)
{
    struct xl *x = arg;
    struct mg_relay *r = x->stage->relay;
    struct mg_oai_stream *st = mg_bedrock_stream_state(x->stream);
    char type[128], payload[1024];
    const char *p = (const char *)f->payload;
    size_t n = f->payload_len;
    struct mg_evstream_str t = f->event_type;
    int rc;

    if (mg_evstream_str_eq(f->message_type, "exception")) {
        t = f->exception_type;
    } else if (mg_evstream_str_eq(f->message_type, "error")) {
        /* a protocol error: its code and message are headers, not a payload */
        const struct mg_evstream_header *m = mg_evstream_find(f, ":error-message");
        struct mg_buf j;
        mg_buf_init(&j, sizeof(payload) - 1);
        mg_buf_adds(&j, "{\"message\":");
        mg_json_quote(&j, m != NULL ? (const char *)m->bytes : "event-stream error",
                      m != NULL ? m->len : 18);
        mg_buf_adds(&j, "}");
        snprintf(payload, sizeof(payload), "%s", j.data != NULL ? j.data : "{}");
        mg_buf_deinit(&j);
        p = payload;
        n = strlen(payload);
        t.p = "error";
        t.len = 5;
    }
    if (t.p == NULL || t.len >= sizeof(type)) {
        mg_relay_fail(r, "the backend sent an event-stream frame without a type", 53);
        return 1;
    }
    memcpy(type, t.p, t.len);
    type[t.len] = '\0';
    mg_buf_reset(&x->out);
    rc = mg_bedrock_stream_event(x->stream, type, p, n, &x->out);
    mg_xstage_event(x->stage, st, &x->out, rc);
    return r->failed || r->cut;
}

static void
frames_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct xl *x = s->relay->xstate;
    int rc = mg_evstream_feed(&x->dec, p, n, on_frame, x);
    char why[160];

    if (rc != 0 && rc != MG_EVSTREAM_ESTOPPED) {
        snprintf(why, sizeof(why), "the backend sent a broken event-stream frame: %s",
                 mg_evstream_strerror(rc));
        mg_relay_fail(s->relay, why, strlen(why));
    }
}

static void
frames_end(struct mg_stage *s)
{
    struct mg_relay *r = s->relay;
    struct xl *x = r->xstate;
    struct mg_oai_stream *st = mg_bedrock_stream_state(x->stream);
    int rc = mg_evstream_finish(&x->dec);

    if (rc != 0 && !r->failed && !r->cut) {
        mg_relay_fail(r, "the backend's event stream ended inside a frame", 47);
    }
    /* messageStop without metadata: the usage chunk and [DONE] are due */
    mg_xstage_stream_end(s, st, &x->out);
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

    return mg_bedrock_answer(body, len, x->rq->jr->model, x->id, (int64_t)time(NULL), out, u,
                             keep);
}

static void
answer_end(struct mg_stage *s)
{
    struct xl *x = s->relay->xstate;

    mg_xstage_answer_end(s, &x->body, &x->out, translate_answer, x, "a Converse answer",
                         &x->kept);
}

static void
bedrock_relay(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
              const struct mg_resp_head *h)
{
    struct xl *x;

    if (h->status < 200 || h->status > 299) {   /* an error too long to read aside */
        r->keep_length = 1;
        mg_relay_add_gate(r);
        return;
    }
    x = mg_calloc(1, sizeof(*x));
    x->rq = rq;
    x->stage = &r->xlate;
    snprintf(x->id, sizeof(x->id), "chatcmpl-%s", rq->request_id);
    mg_evstream_init(&x->dec, FRAME_MAX);
    mg_buf_init(&x->out, 2 * ANSWER_MAX);
    mg_buf_init(&x->body, ANSWER_MAX);
    mg_relay_set_state(r, x, xl_free);
    r->xlate.relay = r;
    if (h->sse) {   /* application/vnd.amazon.eventstream: ConverseStream's frames */
        x->stream = mg_bedrock_stream_create(rq->jr->model, (int64_t)time(NULL),
                                             rq->jr->include_usage, x->id);
        r->sse = 1;   /* what the client gets is an event stream, whatever the frames were */
        r->content_type = "text/event-stream";
        r->xlate.write = frames_write;
        r->xlate.end = frames_end;
    } else {
        r->xlate.write = answer_write;
        r->xlate.end = answer_end;
    }
    mg_relay_add(r, &r->xlate);
    mg_relay_add_gate(r);
}

/* Bedrock's {"message"} and x-amzn-errortype, in OpenAI's shape. */
static int
bedrock_error_body(const struct mg_client_req *rq, const struct mg_resp_head *h,
                   const char *body, size_t len, struct mg_buf *out)
{
    const char *name, *value, *type = NULL;
    size_t pos = 0;

    while (mg_head_next(h, &pos, &name, &value)) {
        if (mg_hdr_eq(name, "x-amzn-errortype")) {
            type = value;
        }
    }
    return mg_bedrock_error(type, body != NULL ? body : "", len, out) == MG_OK;
}

/* ---- configuration ---- */

#define BC(f) offsetof(struct bedrock_conf, f)
static const struct mg_yaml_key bedrock_keys[] = {
    {"region", mg_yaml_set_nonempty_line, BC(region)},
    {"aws_access_key_id", mg_yaml_set_nonempty_line, BC(aws_access_key_id)},
    {"aws_secret_access_key", mg_yaml_set_nonempty_line, BC(aws_secret_access_key)},
    {"aws_session_token", mg_yaml_set_line, BC(aws_session_token)},
    {"aws_role_arn", mg_yaml_set_nonempty_line, BC(aws_role_arn)},
    {"max_tokens", mg_schema_set_max_tokens, BC(max_tokens)},
    MG_SCHEMA_PREFILL_KEY(struct bedrock_conf, prefill),
};

static void *
bedrock_conf_create(void)
{
    struct bedrock_conf *bc = mg_calloc(1, sizeof(*bc));

    bc->max_tokens = MG_SCHEMA_MAX_TOKENS;
    return bc;
}

/* The region (and the url made from it when the file has none), the credentials, no api_key. */
static void
bedrock_conf_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b, void *conf)
{
    struct bedrock_conf *bc = conf;
    const char *name = b->name ? b->name : "?";

    mg_schema_prefill_check(b, bc->prefill, "");

    if (bc->region == NULL) {
        mg_yaml_error(y, node, "backend \"%s\" (schema: bedrock) needs \"region\"", name);
    } else if (b->url == NULL) {
        size_t n = strlen(bc->region) + sizeof("https://bedrock-runtime..amazonaws.com");
        b->url = mg_malloc(n);
        snprintf(b->url, n, "https://bedrock-runtime.%s.amazonaws.com", bc->region);
    }
    if ((bc->aws_access_key_id == NULL) != (bc->aws_secret_access_key == NULL)) {
        mg_yaml_error(y, node, "backend \"%s\" (schema: bedrock) needs both "
                      "\"aws_access_key_id\" and \"aws_secret_access_key\", or neither (AWS's "
                      "default credential chain)", name);
    } else if (bc->aws_access_key_id == NULL && bc->aws_session_token != NULL) {
        mg_yaml_error(y, node, "backend \"%s\": aws_session_token goes with "
                      "aws_access_key_id and aws_secret_access_key", name);
    }
    if (b->api_key != NULL) {
        mg_yaml_error(y, node, "backend \"%s\": schema bedrock signs its requests with the "
                      "aws_* keys, not api_key", name);
    }
}

static void
bedrock_conf_free(void *conf)
{
    struct bedrock_conf *bc = conf;

    if (bc != NULL) {
        free(bc->region);
        free(bc->aws_access_key_id);
        free(bc->aws_secret_access_key);
        free(bc->aws_session_token);
        free(bc->aws_role_arn);
        free(bc);
    }
}

/*
 * Static keys without a role sign directly (no source, nothing to refresh); otherwise the
 * source is the chain, or STS AssumeRole over the chain or the static keys. The key names the
 * role and the static key id with a digest of the secret, never the secret.
 */
static const struct mg_cred_source_ops *
bedrock_cred(const struct mg_backend *b, struct mg_buf *key, void **arg)
{
    const struct bedrock_conf *bc = b->schema_conf;

    if (bc->aws_access_key_id != NULL && bc->aws_role_arn == NULL) {
        return NULL;
    }
    mg_buf_printf(key, "aws\nregion=%s\nrole=%s\n", bc->region,
                  bc->aws_role_arn ? bc->aws_role_arn : "");
    if (bc->aws_access_key_id != NULL) {
        mg_cred_key_secret(key, bc->aws_access_key_id);
        mg_cred_key_secret(key, bc->aws_secret_access_key);
        mg_cred_key_secret(key, bc->aws_session_token ? bc->aws_session_token : "");
    }
    *arg = mg_aws_cred_conf_create(bc->region, bc->aws_role_arn, bc->aws_access_key_id,
                                   bc->aws_secret_access_key, bc->aws_session_token);
    return &mg_aws_cred_ops;
}

const struct mg_schema mg_schema_bedrock = {
    .name = "bedrock",
    .chat_api = "converse",
    .reads_chat_json = 1,
    .build = bedrock_build,
    .classify = bedrock_classify,
    .relay = bedrock_relay,
    .error_body = bedrock_error_body,
    .keys = bedrock_keys,
    .nkeys = MG_ARRAY_LEN(bedrock_keys),
    .url_optional = 1,   /* made from the region */
    .conf_create = bedrock_conf_create,
    .conf_check = bedrock_conf_check,
    .conf_free = bedrock_conf_free,
    .cred = bedrock_cred,
};
