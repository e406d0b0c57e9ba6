/*
 * mg_schema_vertex — Google Vertex AI, for OpenAI chat clients: two schemas with one set of keys.
 *
 *   vertex            POST {url}/v1/projects/{project}/locations/{region}/publishers/google/
 *                     models/{m}:generateContent (or :streamGenerateContent?alt=sse), the chat
 *                     request translated to Gemini's (mg_gemini) and the answer back
 *   vertex_anthropic  .../publishers/anthropic/models/{m}:rawPredict (or :streamRawPredict),
 *                     the Anthropic translation with Vertex's body (no model, its
 *                     anthropic_version) and the anthropic schema's chat stages
 *
 * Both send "Authorization: Bearer <token>", the token being the backend's credential source's
 * (a service-account key exchanged at its token_uri, or the metadata server: mg_cred_google),
 * read from the cache without a wait; a backend without one fails the attempt
 * (credentials_unavailable). A Gemini stream is SSE whose events are whole answers so far: each
 * is translated at once, between the SSE splitter and the commit gate, so the gate sees OpenAI
 * chunks; Gemini has no end event, so the stream's end writes the usage chunk and [DONE].
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_anthropic.h"
#include "mg_conf_types.h"
#include "mg_cred.h"
#include "mg_gemini.h"
#include "mg_google_cred.h"
#include "mg_json.h"
#include "mg_log.h"
#include "mg_relay.h"
#include "mg_schema.h"
#include "mg_xstage.h"
#include "mg_yaml.h"

#define ANSWER_MAX (16 * 1024 * 1024)   /* a plain answer read whole to be translated */

/* A backend's vertex keys (b->schema_conf). */
struct vertex_conf {
    char   *project;
    char   *region;
    char   *credentials_file;   /* a service-account JSON key; NULL: the metadata server */
    int64_t max_tokens;         /* when the client sets none (vertex: 0, none sent) */
    int64_t prefill;            /* vertex_anthropic: continues a final assistant message */
};

/* ---- the request ------------------------------------------------------------------------- */

/*
 * Appends s as one path segment: every byte outside A-Z a-z 0-9 - _ . ~ @ as %XX (":" too, which
 * would read as the method's verb; "@" stays, as in Claude's versioned names on Vertex).
 */
static int
add_segment(struct mg_buf *url, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = MG_OK;

    for (; *s != '\0' && rc == MG_OK; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == '@') {
            rc = mg_buf_add(url, s, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = mg_buf_add(url, e, 3);
        }
    }
    return rc;
}

/* {url}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}{verb} */
static int
vertex_url(struct mg_upreq *up, const struct mg_backend *b, const char *publisher,
           const char *model, const char *verb)
{
    const struct vertex_conf *vc = b->schema_conf;
    int rc = mg_buf_adds(&up->url, b->url);

    rc = rc ? rc : mg_buf_adds(&up->url, "/v1/projects/");
    rc = rc ? rc : mg_buf_adds(&up->url, vc->project);
    rc = rc ? rc : mg_buf_adds(&up->url, "/locations/");
    rc = rc ? rc : mg_buf_adds(&up->url, vc->region);
    rc = rc ? rc : mg_buf_adds(&up->url, "/publishers/");
    rc = rc ? rc : mg_buf_adds(&up->url, publisher);
    rc = rc ? rc : mg_buf_adds(&up->url, "/models/");
    rc = rc ? rc : add_segment(&up->url, model);
    return rc ? rc : mg_buf_adds(&up->url, verb);
}

/* The headers: the client's (its anthropic-version apart), ours, the bearer token. */
static int
vertex_headers(struct mg_upreq *up, const struct mg_client_req *rq, const struct mg_backend *b)
{
    static const char *const skip[] = {"anthropic-version", NULL};   /* ours is in the body */

    mg_schema_headers(up, rq, b, skip, MG_SCHEMA_OWN_CTYPE);
    return mg_schema_add_bearer(up, b);
}

/* A translator's refusal as the schema's, or MG_ERR. */
static int
refused(struct mg_upreq *up, int rc, const struct mg_chatreq_err *err)
{
    if (rc == MG_CHATREQ_EINVAL || rc == MG_CHATREQ_EUNSUPPORTED) {
        return mg_schema_refuse(up, rc == MG_CHATREQ_EINVAL ? MG_SCHEMA_EINVAL : MG_SCHEMA_ESKIP,
                                err->param, "%s", err->message);
    }
    return MG_ERR;
}

static int
gemini_build(const struct mg_client_req *rq, const struct mg_backend *b,
             const struct mg_rule_backend *e, struct mg_upreq *up)
{
    const struct vertex_conf *vc = b->schema_conf;
    struct mg_chatreq_err err;
    int rc, stream = 0;

    rc = mg_gemini_request(rq->body, rq->body_len, rq->chat_json, vc->max_tokens, &up->edited,
                           &stream, &err);
    if (rc != MG_OK) {
        return refused(up, rc, &err);
    }
    up->body = up->edited.data;
    up->body_len = up->edited.len;
    up->stream = stream;
    if (vertex_url(up, b, "google", e->model != NULL ? e->model : rq->jr->model,
                   stream ? ":streamGenerateContent?alt=sse" : ":generateContent") != MG_OK) {
        return MG_ERR;
    }
    return vertex_headers(up, rq, b);
}

static int
claude_build(const struct mg_client_req *rq, const struct mg_backend *b,
             const struct mg_rule_backend *e, struct mg_upreq *up)
{
    const struct vertex_conf *vc = b->schema_conf;
    struct mg_chatreq_err err;
    int rc;

    rc = mg_anthropic_request_vertex(rq->body, rq->body_len, rq->chat_json, vc->max_tokens,
                                     &up->edited, &err);
    if (rc != MG_OK) {
        return refused(up, rc, &err);
    }
    up->body = up->edited.data;
    up->body_len = up->edited.len;
    up->stream = rq->jr->stream;
    if (vertex_url(up, b, "anthropic", e->model != NULL ? e->model : rq->jr->model,
                   up->stream ? ":streamRawPredict" : ":rawPredict") != MG_OK) {
        return MG_ERR;
    }
    return vertex_headers(up, rq, b);
}

/* ---- Gemini's stages --------------------------------------------------------------------- */

struct gx {
    const struct mg_client_req *rq;
    struct mg_gemini_stream    *stream;
    struct mg_oai_kept          kept;      /* the chat answer, for a client API's hub */
    struct mg_buf               out;
    struct mg_buf               body;
    char                        id[160];   /* when the answer has no responseId */
};

static void
gx_free(void *arg)
{
    struct gx *x = arg;

    mg_gemini_stream_destroy(x->stream);
    mg_oai_kept_deinit(&x->kept);
    mg_buf_deinit(&x->out);
    mg_buf_deinit(&x->body);
    free(x);
}

static void
stream_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct gx *x = s->relay->xstate;
    int rc;

    if (!whole) {
        mg_relay_fail(s->relay, "the backend sent an event too large to translate", 48);
        return;
    }
    mg_buf_reset(&x->out);
    rc = mg_gemini_stream_event(x->stream, p, n, &x->out);
    mg_xstage_event(s, mg_gemini_stream_state(x->stream), &x->out, rc);
}

static void
stream_end(struct mg_stage *s)
{
    struct gx *x = s->relay->xstate;

    mg_xstage_stream_end(s, mg_gemini_stream_state(x->stream), &x->out);
}

static void
answer_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct gx *x = s->relay->xstate;

    mg_xstage_answer_write(s, &x->body, p, n);
}

static int
translate_answer(void *arg, const char *body, size_t len, struct mg_buf *out, struct mg_usage *u,
                 struct mg_oai_kept *keep)
{
    struct gx *x = arg;

    return mg_gemini_answer(body, len, x->rq->jr->model, x->id, (int64_t)time(NULL), out, u,
                            keep);
}

static void
answer_end(struct mg_stage *s)
{
    struct gx *x = s->relay->xstate;

    mg_xstage_answer_end(s, &x->body, &x->out, translate_answer, x,
                         "a generateContent answer", &x->kept);
}

static void
gemini_relay(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
             const struct mg_resp_head *h)
{
    struct gx *x;

    if (h->status < 200 || h->status > 299) {   /* an error too long to read aside */
        r->keep_length = 1;
        mg_relay_add_gate(r);
        return;
    }
    x = mg_calloc(1, sizeof(*x));
    x->rq = rq;
    snprintf(x->id, sizeof(x->id), "chatcmpl-%s", rq->request_id);
    mg_buf_init(&x->out, 2 * ANSWER_MAX);
    mg_buf_init(&x->body, ANSWER_MAX);
    mg_relay_set_state(r, x, gx_free);
    r->xlate.relay = r;
    if (h->sse) {
        x->stream = mg_gemini_stream_create(rq->jr->model, (int64_t)time(NULL),
                                            rq->jr->include_usage, x->id);
        mg_relay_add_sse_split(r);
        r->xlate.write = stream_write;
        r->xlate.end = stream_end;
    } else {
        r->xlate.write = answer_write;
        r->xlate.end = answer_end;
    }
    mg_relay_add(r, &r->xlate);
    mg_relay_add_gate(r);
}

static int
gemini_error_body(const struct mg_client_req *rq, const struct mg_resp_head *h,
                  const char *body, size_t len, struct mg_buf *out)
{
    return mg_gemini_error(body != NULL ? body : "", len, out) == MG_OK;
}

static int
claude_error_body(const struct mg_client_req *rq, const struct mg_resp_head *h,
                  const char *body, size_t len, struct mg_buf *out)
{
    /* Vertex itself answers in Google's shape (a bad token, an unknown model), Claude in its own */
    if (body != NULL && mg_find(body, len, "\"status\"", 8) != NULL) {
        return gemini_error_body(rq, h, body, len, out);
    }
    return mg_anthropic_error(body != NULL ? body : "", len, out) == MG_OK;
}

/* ---- credentials ---- */

/*
 * The backend's token source: its service account (the key read again now; keyed by the file,
 * the account and the key's id, so a rotated key is a new source), else the metadata server.
 */
static const struct mg_cred_source_ops *
vertex_cred(const struct mg_backend *b, struct mg_buf *key, void **arg)
{
    const struct vertex_conf *vc = b->schema_conf;
    struct mg_google_sa *sa;
    char err[256], url[512];

    if (vc->credentials_file == NULL) {
        mg_google_metadata_url(url, sizeof(url));
        mg_buf_adds(key, "google-metadata\n");
        mg_buf_adds(key, url);
        *arg = NULL;
        return &mg_google_metadata_ops;
    }
    if ((sa = mg_google_sa_load(vc->credentials_file, err, sizeof(err))) == NULL) {
        mg_log_error("backend %s: %s", b->name, err);
        return NULL;   /* no source: its attempts fail with credentials_unavailable */
    }
    mg_buf_adds(key, "google-sa\n");
    mg_buf_adds(key, vc->credentials_file);
    mg_buf_adds(key, "\n");
    mg_buf_adds(key, mg_google_sa_email(sa));
    mg_buf_adds(key, "\n");
    mg_buf_adds(key, mg_google_sa_key_id(sa));
    *arg = sa;
    return &mg_google_sa_ops;
}

/* ---- configuration ---- */

#define VC(f) offsetof(struct vertex_conf, f)
static const struct mg_yaml_key gemini_keys[] = {
    {"project", mg_yaml_set_nonempty_line, VC(project)},
    {"region", mg_yaml_set_nonempty_line, VC(region)},
    {"credentials_file", mg_yaml_set_nonempty_line, VC(credentials_file)},
    {"max_tokens", mg_schema_set_max_tokens, VC(max_tokens)},
};

static const struct mg_yaml_key claude_keys[] = {
    {"project", mg_yaml_set_nonempty_line, VC(project)},
    {"region", mg_yaml_set_nonempty_line, VC(region)},
    {"credentials_file", mg_yaml_set_nonempty_line, VC(credentials_file)},
    {"max_tokens", mg_schema_set_max_tokens, VC(max_tokens)},
    MG_SCHEMA_PREFILL_KEY(struct vertex_conf, prefill),
};

static void *
gemini_conf_create(void)
{
    return mg_calloc(1, sizeof(struct vertex_conf));
}

static void *
claude_conf_create(void)
{
    struct vertex_conf *vc = mg_calloc(1, sizeof(*vc));

    vc->max_tokens = MG_SCHEMA_MAX_TOKENS;
    return vc;
}

/* 1 when s is made of a-z, 0-9 and '-' only (a project id, a region: they go into the URL). */
static int
plain_name(const char *s)
{
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) {
            return 0;
        }
    }
    return 1;
}

/* project and region (and the url made from the region when the file has none), no api_key. */
static void
vertex_conf_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b, void *conf)
{
    struct vertex_conf *vc = conf;
    const char *name = b->name ? b->name : "?", *schema = mg_schema_get(b->schema)->name;

    mg_schema_prefill_check(b, vc->prefill, "");
    if (vc->project == NULL || vc->region == NULL) {
        mg_yaml_error(y, node, "backend \"%s\" (schema: %s) needs \"project\" and \"region\"",
                      name, schema);
        return;
    }
    if (!plain_name(vc->project) || !plain_name(vc->region)) {
        mg_yaml_error(y, node, "backend \"%s\": \"project\" and \"region\" are Google Cloud "
                      "ids (a-z, 0-9 and -)", name);
        return;
    }
    if (b->url == NULL) {
        size_t n = strlen(vc->region) + sizeof("https://-aiplatform.googleapis.com");
        b->url = mg_malloc(n);
        if (strcmp(vc->region, "global") == 0) {
            snprintf(b->url, n, "https://aiplatform.googleapis.com");
        } else {
            snprintf(b->url, n, "https://%s-aiplatform.googleapis.com", vc->region);
        }
    }
    if (b->api_key != NULL) {
        mg_yaml_error(y, node, "backend \"%s\": schema %s authenticates with Google credentials "
                      "(credentials_file, or the metadata server), not api_key", name, schema);
    }
    if (vc->credentials_file != NULL) {   /* a key that cannot be used is the file's error */
        char err[256];
        struct mg_google_sa *sa = mg_google_sa_load(vc->credentials_file, err, sizeof(err));
        if (sa == NULL) {
            mg_yaml_error(y, node, "backend \"%s\": credentials_file: %s", name, err);
        }
        mg_google_sa_free(sa);
    }
}

static void
vertex_conf_free(void *conf)
{
    struct vertex_conf *vc = conf;

    if (vc != NULL) {
        free(vc->project);
        free(vc->region);
        free(vc->credentials_file);
        free(vc);
    }
}

const struct mg_schema mg_schema_vertex = {
    .name = "vertex",
    .chat_api = "generate_content",
    .reads_chat_json = 1,
    .build = gemini_build,
    .classify = mg_schema_classify_inspect,
    .relay = gemini_relay,
    .error_body = gemini_error_body,
    .cred = vertex_cred,
    .keys = gemini_keys,
    .nkeys = MG_ARRAY_LEN(gemini_keys),
    .url_optional = 1,   /* made from the region */
    .conf_create = gemini_conf_create,
    .conf_check = vertex_conf_check,
    .conf_free = vertex_conf_free,
};

const struct mg_schema mg_schema_vertex_anthropic = {
    .name = "vertex_anthropic",
    .chat_api = "messages",
    .reads_chat_json = 1,
    .build = claude_build,
    .classify = mg_schema_classify_inspect,
    .relay = mg_schema_anthropic_chat_relay,
    .error_body = claude_error_body,
    .cred = vertex_cred,
    .keys = claude_keys,
    .nkeys = MG_ARRAY_LEN(claude_keys),
    .url_optional = 1,
    .conf_create = claude_conf_create,
    .conf_check = vertex_conf_check,
    .conf_free = vertex_conf_free,
};
