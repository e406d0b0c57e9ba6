/*
 * Unit tests of Google Vertex AI (schema: vertex and vertex_anthropic): Gemini's translation with
 * golden files under test/golden/gemini/ written from Google's API reference (requests, answers,
 * errors, SSE streams cut at every byte), what the schemas build (URLs, headers, bodies), and
 * their config errors.
 *
 * Golden files (test/golden/gemini/):
 *   req-X.in.json  -> req-X.out.json (the generateContent request) or req-X.err ("invalid PARAM"
 *                     or "unsupported PARAM", "-" for no param)
 *   ans-X.in.json  -> ans-X.out.json (the chat.completion)   err-X.in.json -> err-X.out.json
 *   stream-X.sse   -> stream-X.out.json {include_usage, chunks, output, finished, done, error,
 *                     usage}; a finished stream is ended as the relay ends it (mg_oai_stream_end)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mg_anthropic.h"
#include "mg_api.h"
#include "mg_conf.h"
#include "mg_cred.h"
#include "mg_gemini.h"
#include "mg_google_cred.h"
#include "mg_json.h"
#include "mg_oai.h"
#include "mg_req.h"
#include "mg_responses.h"
#include "mg_schema.h"
#include "mg_test.h"

#define GOLDEN "test/golden/gemini/"
#define NOW    1700000000
#define CLIENT "my-model"
#define BID    "chatcmpl-req42"

Suite *vertex_suite(void);

static char *
slurp(const char *base, const char *suffix, size_t *len)
{
    char path[512];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), GOLDEN "%s%s", base, suffix);
    if ((f = fopen(path, "rb")) == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = mg_malloc((size_t)n + 1);
    ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

static json_t *
load(const char *base, const char *suffix)
{
    size_t n;
    char *p = slurp(base, suffix, &n);
    json_t *j;

    ck_assert_msg(p != NULL, "%s%s is missing", base, suffix);
    j = json_loadb(p, n, 0, NULL);
    ck_assert_msg(j != NULL, "%s%s is not JSON", base, suffix);
    free(p);
    return j;
}

static void
expect_json(const char *label, const char *got, size_t n, json_t *want)
{
    json_t *g = json_loadb(got, n, 0, NULL);
    char *gs = g ? json_dumps(g, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    char *ws = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);

    ck_assert_msg(g != NULL, "%s: output is not JSON: %.*s", label, (int)n, got);
    ck_assert_msg(json_equal(g, want), "%s:\n got  %s\n want %s", label, gs, ws);
    free(gs);
    free(ws);
    json_decref(g);
}

typedef void (*golden_fn)(const char *base);

static int
each_golden(const char *prefix, const char *suffix, golden_fn fn)
{
    char base[256];
    struct dirent *de;
    DIR *d = opendir(GOLDEN);
    int n = 0;

    ck_assert_msg(d != NULL, "no " GOLDEN " (run the tests from the source tree)");
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l <= sl || l >= sizeof(base)
            || strcmp(de->d_name + l - sl, suffix) != 0) {
            continue;
        }
        memcpy(base, de->d_name, l - sl);
        base[l - sl] = '\0';
        fn(base);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- golden requests, answers, errors ---- */

static void
golden_request(const char *base)
{
    struct mg_chatreq_err e;
    struct mg_buf out;
    size_t n, en;
    char *body = slurp(base, ".in.json", &n), *err = slurp(base, ".err", &en);
    char kind[32], param[96];
    int rc, stream = -1;

    mg_buf_init(&out, 1 << 20);
    rc = mg_gemini_request(body, n, NULL, 0, &out, &stream, &e);
    if (err != NULL) {
        ck_assert_int_eq(sscanf(err, "%31s %95s", kind, param), 2);
        ck_assert_msg(rc == (strcmp(kind, "invalid") == 0 ? MG_CHATREQ_EINVAL
                             : MG_CHATREQ_EUNSUPPORTED), "%s: rc %d (%s)", base, rc, e.message);
        ck_assert_str_eq(e.param, strcmp(param, "-") == 0 ? "" : param);
        ck_assert_msg(e.message[0] != '\0' && out.len == 0, "%s", base);
    } else {
        json_t *want = load(base, ".out.json"), *in = json_loadb(body, n, 0, NULL);
        ck_assert_msg(rc == MG_OK, "%s: rc %d: %s", base, rc, e.message);
        expect_json(base, out.data, out.len, want);
        ck_assert_int_eq(stream, json_is_true(json_object_get(in, "stream")));
        /* the hub hands a body over parsed: the same request */
        mg_buf_reset(&out);
        ck_assert_int_eq(mg_gemini_request(NULL, 0, in, 0, &out, &stream, &e), MG_OK);
        expect_json(base, out.data, out.len, want);
        json_decref(in);
        json_decref(want);
    }
    free(body);
    free(err);
    mg_buf_deinit(&out);
}

static void
golden_answer(const char *base)
{
    json_t *want = load(base, ".out.json"), *wu = json_object_get(want, "usage");
    struct mg_oai_kept k;
    struct mg_buf out;
    struct mg_usage u;
    size_t n;
    char *body = slurp(base, ".in.json", &n);

    memset(&k, 0, sizeof(k));
    mg_buf_init(&out, 1 << 20);
    ck_assert_int_eq(mg_gemini_answer(body, n, CLIENT, BID, NOW, &out, &u, &k), MG_OK);
    expect_json(base, out.data, out.len, want);
    ck_assert_int_eq(u.input, json_integer_value(json_object_get(wu, "prompt_tokens")));
    ck_assert_int_eq(u.output, json_integer_value(json_object_get(wu, "completion_tokens")));
    /* what the hubs read instead of the text: the same Response either way (reasoning too) */
    ck_assert(k.have);
    {
        static const char req[] = "{\"model\":\"m\",\"input\":\"hi\"}";
        struct mg_chatreq_err e = {"", "", NULL};
        struct mg_resp_ctx *ctx = mg_resp_ctx_create(req, sizeof(req) - 1,
                                                     "0123456789abcdef0123456789abcdef", NOW, &e,
                                                     NULL);
        struct mg_buf a1, a2;
        struct mg_usage u1, u2;
        json_t *j1, *j2;

        mg_buf_init(&a1, 1 << 20);
        mg_buf_init(&a2, 1 << 20);
        ck_assert_int_eq(mg_resp_answer(ctx, out.data, out.len, NOW, &a1, &u1), MG_OK);
        ck_assert_int_eq(mg_resp_answer_kept(ctx, &k, NOW, &a2, &u2), MG_OK);
        j1 = json_loadb(a1.data, a1.len, 0, NULL);
        j2 = json_loadb(a2.data, a2.len, 0, NULL);
        ck_assert_msg(j1 != NULL && json_equal(j1, j2), "%s:\n%s\n%s", base, a1.data, a2.data);
        json_decref(j1);
        json_decref(j2);
        mg_buf_deinit(&a1);
        mg_buf_deinit(&a2);
        mg_resp_ctx_destroy(ctx);
    }
    mg_oai_kept_deinit(&k);
    json_decref(want);
    free(body);
    mg_buf_deinit(&out);
}

static void
golden_error(const char *base)
{
    json_t *want = load(base, ".out.json");
    struct mg_buf out;
    size_t n;
    char *body = slurp(base, ".in.json", &n);

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_gemini_error(body, n, &out), MG_OK);
    expect_json(base, out.data, out.len, want);
    json_decref(want);
    free(body);
    mg_buf_deinit(&out);
}

START_TEST(gemini_golden_requests)
{
    ck_assert_int_ge(each_golden("req-", ".in.json", golden_request), 20);
}
END_TEST

START_TEST(gemini_golden_answers)
{
    ck_assert_int_ge(each_golden("ans-", ".in.json", golden_answer), 8);
    ck_assert_int_ge(each_golden("err-", ".in.json", golden_error), 3);
}
END_TEST

/* ---- golden streams ---- */

/* Splits a chunk stream into a JSON array ("[DONE]" as that string), checking each chunk. */
static json_t *
parse_chunks(const char *label, const char *p, size_t n)
{
    json_t *all = json_array(), *first = NULL;
    const char *end = p + n;

    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        json_t *c, *ch, *d;

        ck_assert_msg(sep != NULL && strncmp(p, "data: ", 6) == 0, "%s: not an SSE event: %s",
                      label, p);
        if (sep - p == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
            json_array_append_new(all, json_string("[DONE]"));
            p = sep + 2;
            continue;
        }
        c = json_loadb(p + 6, (size_t)(sep - p - 6), 0, NULL);
        ck_assert_msg(c != NULL, "%s: chunk is not JSON: %.*s", label, (int)(sep - p), p);
        first = first ? first : c;
        ck_assert(json_equal(json_object_get(c, "id"), json_object_get(first, "id")));
        ch = json_array_get(json_object_get(c, "choices"), 0);
        d = json_object_get(ch, "delta");
        ck_assert_msg(ch ? json_object_size(d) > 0 || json_is_string(json_object_get(ch,
                      "finish_reason")) : json_is_object(json_object_get(c, "usage")),
                      "%s: a chunk that carries nothing", label);
        json_array_append_new(all, c);
        p = sep + 2;
    }
    return all;
}

struct feed {
    struct mg_gemini_stream *tr;
    struct mg_buf            out;
    int                      rc;
};

static void
on_event(void *arg, const char *p, size_t n, int whole)
{
    struct feed *f = arg;
    int rc;

    ck_assert(whole);
    rc = mg_gemini_stream_event(f->tr, p, n, &f->out);
    f->rc = f->rc == MG_OK ? rc : f->rc;
}

/* sse[0..n) through the SSE splitter in two pieces cut at k, ended as the relay ends it. */
static void
feed_split(struct feed *f, const char *sse, size_t n, size_t k, int include_usage)
{
    struct mg_sse s;
    struct mg_oai_stream *st;

    f->tr = mg_gemini_stream_create(CLIENT, NOW, include_usage, BID);
    mg_buf_init(&f->out, 1 << 20);
    f->rc = MG_OK;
    mg_sse_init(&s);
    mg_sse_feed(&s, sse, k, on_event, f);
    mg_sse_feed(&s, sse + k, n - k, on_event, f);
    mg_sse_deinit(&s);
    st = mg_gemini_stream_state(f->tr);
    if (st->finished && !st->failed) {
        ck_assert_int_eq(mg_oai_stream_end(st, &f->out), MG_OK);
    }
}

static void
golden_stream(const char *base)
{
    json_t *want = load(base, ".out.json"), *chunks, *err = json_object_get(want, "error");
    json_t *wu = json_object_get(want, "usage");
    int iu = json_is_true(json_object_get(want, "include_usage"));
    struct mg_oai_stream *st;
    struct feed whole, f;
    struct mg_usage t;
    size_t n, k;
    char *sse = slurp(base, ".sse", &n), *gs;

    feed_split(&whole, sse, n, n, iu);
    st = mg_gemini_stream_state(whole.tr);
    chunks = parse_chunks(base, whole.out.data ? whole.out.data : "", whole.out.len);
    gs = json_dumps(chunks, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(json_equal(chunks, json_object_get(want, "chunks")), "%s: chunks\n %s", base,
                  gs);
    ck_assert_int_eq(st->output, json_is_true(json_object_get(want, "output")));
    ck_assert_int_eq(st->finished, json_is_true(json_object_get(want, "finished")));
    ck_assert_int_eq(st->done, json_is_true(json_object_get(want, "done")));
    ck_assert_int_eq(whole.rc, err ? MG_OAI_ESTREAM : MG_OK);
    if (err != NULL) {
        ck_assert_str_eq(st->error, json_string_value(err));
    }
    if (wu != NULL) {
        mg_oai_usage_totals(&st->usage, &t);
        ck_assert_int_eq(t.input, json_integer_value(json_object_get(wu, "input")));
        ck_assert_int_eq(t.output, json_integer_value(json_object_get(wu, "output")));
    }
    for (k = 0; k < n; k++) {   /* every cut gives the same bytes */
        feed_split(&f, sse, n, k, iu);
        ck_assert_msg(f.rc == whole.rc && f.out.len == whole.out.len
                      && (f.out.len == 0 || memcmp(f.out.data, whole.out.data, f.out.len) == 0),
                      "%s: cut at byte %zu changes the output", base, k);
        mg_gemini_stream_destroy(f.tr);
        mg_buf_deinit(&f.out);
    }
    free(gs);
    json_decref(chunks);
    mg_gemini_stream_destroy(whole.tr);
    mg_buf_deinit(&whole.out);
    json_decref(want);
    free(sse);
}

START_TEST(gemini_golden_streams)
{
    ck_assert_int_ge(each_golden("stream-", ".sse", golden_stream), 8);
}
END_TEST

/* Bad input: errors, never a crash; an error is sticky; events after [DONE] are ignored. */
START_TEST(gemini_bad_input)
{
    struct mg_gemini_stream *s = mg_gemini_stream_create(CLIENT, NOW, 0, NULL);
    struct mg_buf out;
    struct mg_usage u;
    static const char junk[] = "data: {not json\n\n";
    static const char ok[] = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n";
    int stream;
    struct mg_chatreq_err e;

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_gemini_stream_event(s, junk, sizeof(junk) - 1, &out), MG_OAI_ESTREAM);
    ck_assert_int_eq(mg_gemini_stream_event(s, ok, sizeof(ok) - 1, &out), MG_OAI_ESTREAM);
    ck_assert_uint_eq(out.len, 0);
    mg_gemini_stream_destroy(s);
    /* not a generateContent answer: nothing written */
    ck_assert_int_eq(mg_gemini_answer("{\"foo\":1}", 9, CLIENT, BID, NOW, &out, &u, NULL), MG_ERR);
    ck_assert_int_eq(mg_gemini_answer("[]", 2, CLIENT, BID, NOW, &out, &u, NULL), MG_ERR);
    ck_assert_int_eq(mg_gemini_answer("", 0, CLIENT, BID, NOW, &out, &u, NULL), MG_ERR);
    ck_assert_uint_eq(out.len, 0);
    /* a function call without a name is not an answer to relay */
    ck_assert_int_eq(mg_gemini_answer("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":"
                                      "{\"args\":{}}}]}}]}", 58, CLIENT, BID, NOW, &out, &u,
                                      NULL), MG_ERR);
    /* an error body of no known shape */
    ck_assert_int_eq(mg_gemini_error("<html>", 6, &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"type\":\"upstream_error\""));
    /* a cap too small for the request: nothing appended */
    mg_buf_deinit(&out);
    mg_buf_init(&out, 8);
    {
        static const char hello[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";
        ck_assert_int_eq(mg_gemini_request(hello, sizeof(hello) - 1, NULL, 0, &out, &stream, &e),
                         MG_ETOOBIG);
    }
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
}
END_TEST

/* Claude on Vertex: the Anthropic body without model, with Vertex's anthropic_version. */
START_TEST(claude_vertex_request_body)
{
    static const char body[] = "{\"model\":\"claude\",\"stream\":true,\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"hi\"}]}";
    struct mg_chatreq_err e;
    struct mg_buf out;
    json_t *j;

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_anthropic_request_vertex(body, sizeof(body) - 1, NULL, 512, &out, &e),
                     MG_OK);
    j = json_loadb(out.data, out.len, 0, NULL);
    ck_assert_ptr_null(json_object_get(j, "model"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "anthropic_version")),
                     "vertex-2023-10-16");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 512);
    ck_assert(json_is_true(json_object_get(j, "stream")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(
                     json_array_get(json_object_get(j, "messages"), 0), "content"), 0), "text")),
                     "hi");
    json_decref(j);
    mg_buf_deinit(&out);
}
END_TEST

/* ---- what the schemas build ---- */

struct client {
    struct mg_client_req rq;
    struct mg_json_req   jr;
    struct mg_headers    headers;
    char                 model[64];
};

static void
client_init(struct client *c, const char *body)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(mg_json_scan_request(body, strlen(body), c->model, sizeof(c->model), &c->jr),
                     MG_JSON_OK);
    c->rq.upath = "/chat/completions";
    c->rq.body = body;
    c->rq.body_len = strlen(body);
    c->rq.jr = &c->jr;
    c->rq.headers = &c->headers;
    c->rq.request_id = "rid1";
    c->rq.has_request_id = 1;
    c->rq.has_ctype = 1;
}

static const char *
find_line(struct curl_slist *l, const char *prefix)
{
    for (; l != NULL; l = l->next) {
        if (strncasecmp(l->data, prefix, strlen(prefix)) == 0) {
            return l->data;
        }
    }
    return NULL;
}

static struct mg_conf *
conf_of(const char *yaml, struct mg_buf *errors)
{
    mg_buf_init(errors, 1 << 16);
    return mg_conf_parse("t.yaml", yaml, strlen(yaml), errors);
}

/* A token source for the unit tests: a bearer token that lives an hour. */
static int
unit_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    *out = mg_cred_bearer("ya29.unit-token", mg_cred_now_ms() + 3600 * 1000);
    return MG_OK;
}

static const struct mg_cred_source_ops unit_ops = {unit_fetch, NULL};

START_TEST(vertex_builds_urls)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: g, schema: vertex, project: my-proj, region: us-central1}\n"
        "  - {name: gl, schema: vertex, project: p2, region: global}\n"
        "  - {name: c, schema: vertex_anthropic, project: p3, region: europe-west1,"
        " url: 'http://127.0.0.1:9/'}\n"
        "rules:\n"
        "  - {models: [gemini-2.5-flash], backends: [{backend: g}, {backend: gl}]}\n"
        "  - {models: [claude], backends: [{backend: c, model: 'claude-sonnet-4-5@20250929'}]}\n";
    static const char body[] = "{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"hi\"}]}";
    static const char sbody[] = "{\"model\":\"claude\",\"stream\":true,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}]}";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct mg_cred_registry *reg;
    struct client c;
    struct mg_upreq up;
    json_t *j;
    int i;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    ck_assert_str_eq(conf->backends[0].url, "https://us-central1-aiplatform.googleapis.com");
    ck_assert_str_eq(conf->backends[1].url, "https://aiplatform.googleapis.com");
    ck_assert_str_eq(conf->backends[2].url, "http://127.0.0.1:9");
    ck_assert_int_eq(conf->backends[2].schema, MG_SCHEMA_VERTEX_ANTHROPIC);
    client_init(&c, body);
    mg_headers_add(&c.headers, "Authorization", "Bearer client-secret");
    mg_upreq_init(&up, 1 << 20);
    /* no token yet: the attempt cannot be made (credentials_unavailable, if it is the last) */
    ck_assert_int_eq(mg_schema_vertex.build(&c.rq, &conf->backends[0],
                                            &conf->rules[0].backends[0], &up), MG_SCHEMA_ENOCRED);
    mg_upreq_reset(&up);
    reg = mg_cred_registry_create();
    for (i = 0; i < 3; i++) {
        conf->backends[i].cred = mg_cred_source_get(reg, "unit", "g", &unit_ops, NULL);
    }
    mg_cred_registry_wait(reg, 5000);
    ck_assert_int_eq(mg_schema_vertex.build(&c.rq, &conf->backends[0],
                                            &conf->rules[0].backends[0], &up), MG_OK);
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "authorization"),
                     "Authorization: Bearer ya29.unit-token");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "content-type"),
                     "Content-Type: application/json");
    ck_assert_str_eq(up.url.data, "https://us-central1-aiplatform.googleapis.com/v1/projects/"
                     "my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:"
                     "generateContent");
    ck_assert(!up.stream);
    ck_assert_ptr_null(strstr(find_line(mg_schema_header_list(&up), "authorization") ?
                              find_line(mg_schema_header_list(&up), "authorization") : "",
                              "client-secret"));   /* the client's key never goes upstream */
    j = json_loadb(up.body, up.body_len, 0, NULL);
    ck_assert_ptr_nonnull(json_object_get(j, "contents"));
    ck_assert_ptr_null(json_object_get(j, "model"));
    json_decref(j);
    mg_upreq_reset(&up);
    ck_assert_int_eq(mg_schema_vertex.build(&c.rq, &conf->backends[1],
                                            &conf->rules[0].backends[1], &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://aiplatform.googleapis.com/v1/projects/p2/locations/"
                     "global/publishers/google/models/gemini-2.5-flash:generateContent");
    /* a stream; the override's '@' kept, a ':' would be encoded */
    mg_upreq_reset(&up);
    mg_headers_clear(&c.headers);
    client_init(&c, sbody);
    mg_headers_add(&c.headers, "anthropic-version", "2023-06-01");
    ck_assert_int_eq(mg_schema_vertex_anthropic.build(&c.rq, &conf->backends[2],
                                                      &conf->rules[1].backends[0], &up), MG_OK);
    ck_assert_str_eq(up.url.data, "http://127.0.0.1:9/v1/projects/p3/locations/europe-west1/"
                     "publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict");
    ck_assert(up.stream);
    ck_assert_ptr_null(find_line(mg_schema_header_list(&up), "anthropic-version"));
    j = json_loadb(up.body, up.body_len, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "anthropic_version")),
                     "vertex-2023-10-16");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 4096);
    json_decref(j);
    /* n > 1: this backend is left out */
    mg_upreq_reset(&up);
    mg_headers_clear(&c.headers);
    client_init(&c, "{\"model\":\"gemini-2.5-flash\",\"n\":3,\"messages\":[]}");
    ck_assert_int_eq(mg_schema_vertex.build(&c.rq, &conf->backends[0],
                                            &conf->rules[0].backends[0], &up), MG_SCHEMA_ESKIP);
    ck_assert_str_eq(up.param, "n");
    /* responses and messages clients reach both through the chat hub */
    ck_assert_int_eq(mg_api_mode(mg_api_route("/v1/chat/completions"), &conf->backends[0]),
                     MG_API_NATIVE);
    ck_assert_int_eq(mg_api_mode(mg_api_route("/v1/responses"), &conf->backends[0]), MG_API_HUB);
    ck_assert_int_eq(mg_api_mode(mg_api_route("/v1/messages"), &conf->backends[2]), MG_API_HUB);
    ck_assert_int_eq(mg_api_mode(mg_api_route("/v1/embeddings"), &conf->backends[0]), 0);
    mg_upreq_deinit(&up);
    mg_headers_clear(&c.headers);
    mg_conf_unref(conf);   /* lets go of the sources */
    mg_cred_registry_destroy(reg);
    mg_buf_deinit(&errors);
}
END_TEST

/* Missing or wrong keys are config errors with file:line:col. */
START_TEST(vertex_config_errors)
{
    static const struct {
        const char *backend;
        const char *message;
    } cases[] = {
        {"{name: x, schema: vertex, region: us-central1}", "t.yaml:2:5: backend \"x\" (schema: "
         "vertex) needs \"project\" and \"region\""},
        {"{name: x, schema: vertex_anthropic, project: p}", "(schema: vertex_anthropic) needs "
         "\"project\" and \"region\""},
        {"{name: x, schema: vertex, project: 'p/../q', region: r}", "Google Cloud ids"},
        {"{name: x, schema: vertex, project: p, region: r, api_key: k}", "not api_key"},
        {"{name: x, schema: vertex, project: p, region: r, prefill: true}",
         "prefill applies only"},
        {"{name: x, url: 'http://h', project: p}", "project applies only"},
        {"{name: x, schema: vertex, project: p, region: r, credentials_file: /nonexistent/sa.json}",
         "credentials_file: cannot read /nonexistent/sa.json"},
        {"{name: x, schema: vertex, project: p, region: r, credentials_file: test/golden/gemini/req-text.in.json}",
         "is not a service-account JSON key"},
    };
    char yaml[512];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        struct mg_buf errors;
        struct mg_conf *conf;
        snprintf(yaml, sizeof(yaml), "backends:\n  - %s\nrules: [{models: [m], backends: "
                 "[{backend: x}]}]\n", cases[i].backend);
        conf = conf_of(yaml, &errors);
        ck_assert_msg(conf == NULL, "case %zu loaded", i);
        ck_assert_msg(strstr(errors.data, cases[i].message) != NULL, "case %zu: %s", i,
                      errors.data);
        mg_buf_deinit(&errors);
    }
}
END_TEST

/* The examples load as written (the metadata server is their default: no file needed). */
START_TEST(vertex_examples_load)
{
    static const char *const files[] = {"conf/examples/vertex.yaml",
                                        "conf/examples/vertex_anthropic.yaml"};
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(files); i++) {
        struct mg_buf errors;
        struct mg_conf *conf;
        mg_buf_init(&errors, 1 << 16);
        conf = mg_conf_load(files[i], NULL, &errors);
        ck_assert_msg(conf != NULL, "%s: %s", files[i], errors.data);
        ck_assert_int_eq(conf->backends[0].schema, i == 0 ? MG_SCHEMA_VERTEX
                                                          : MG_SCHEMA_VERTEX_ANTHROPIC);
        mg_conf_unref(conf);
        mg_buf_deinit(&errors);
    }
}
END_TEST

/* base64url text into bytes (*n); NULL when it holds a character base64url has not. */
static unsigned char *
unb64url(const char *s, size_t len, size_t *n)
{
    size_t i, padded = (len + 3) / 4 * 4;
    char *b = mg_calloc(1, padded + 1);
    unsigned char *out = mg_calloc(1, padded + 1);
    int m;

    for (i = 0; i < padded; i++) {
        char c = i < len ? s[i] : '=';
        ck_assert_msg(i >= len || (c != '+' && c != '/' && c != '='), "not base64url: %.*s",
                      (int)len, s);
        b[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    m = EVP_DecodeBlock(out, (unsigned char *)b, (int)padded);
    free(b);
    ck_assert_int_ge(m, 0);
    *n = (size_t)m - (len % 4 == 2 ? 2 : len % 4 == 3 ? 1 : 0);
    return out;
}

/*
 * The service account's JWT: three base64url parts, RS256 over the first two verified with the
 * key's public half, the claims Google's token endpoint reads.
 */
START_TEST(google_jwt_signed_and_verified)
{
    EVP_PKEY *k = EVP_RSA_gen(2048), *pub;
    BIO *b = BIO_new(BIO_s_mem()), *pb;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    struct mg_google_sa *sa;
    struct mg_buf jwt;
    char *pem, err[256], *d1, *d2;
    unsigned char *hdr, *claims, *sig;
    size_t hn, cn, sn;
    json_t *j, *h, *c;
    long n;

    ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &pem);
    j = json_pack("{s:s,s:s,s:s%,s:s,s:s}", "type", "service_account", "client_email",
                  "sa@p.iam.gserviceaccount.com", "private_key", pem, (size_t)n,
                  "private_key_id", "kid-9", "token_uri", "https://oauth2.example/token");
    ck_assert_int_eq(json_dump_file(j, "mgtest-vertex-unit-sa.json", 0), 0);
    json_decref(j);
    sa = mg_google_sa_load("mgtest-vertex-unit-sa.json", err, sizeof(err));
    ck_assert_msg(sa != NULL, "%s", err);
    ck_assert_str_eq(mg_google_sa_email(sa), "sa@p.iam.gserviceaccount.com");
    ck_assert_str_eq(mg_google_sa_key_id(sa), "kid-9");
    mg_buf_init(&jwt, 1 << 16);
    ck_assert_int_eq(mg_google_jwt(sa, NOW, &jwt), MG_OK);
    d1 = strchr(jwt.data, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_null(strchr(d2 + 1, '.'));
    hdr = unb64url(jwt.data, (size_t)(d1 - jwt.data), &hn);
    claims = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cn);
    sig = unb64url(d2 + 1, strlen(d2 + 1), &sn);
    h = json_loadb((char *)hdr, hn, 0, NULL);
    c = json_loadb((char *)claims, cn, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), "RS256");
    ck_assert_str_eq(json_string_value(json_object_get(h, "kid")), "kid-9");
    ck_assert_str_eq(json_string_value(json_object_get(c, "iss")), "sa@p.iam.gserviceaccount.com");
    ck_assert_str_eq(json_string_value(json_object_get(c, "aud")), "https://oauth2.example/token");
    ck_assert_str_eq(json_string_value(json_object_get(c, "scope")),
                     "https://www.googleapis.com/auth/cloud-platform");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "iat")), NOW);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "exp")), NOW + 3600);
    /* verified with the public key alone */
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_PUBKEY(b, k), 1);
    n = BIO_get_mem_data(b, &pem);
    pb = BIO_new_mem_buf(pem, (int)n);
    pub = PEM_read_bio_PUBKEY(pb, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(pub);
    ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
    ck_assert_int_eq(EVP_DigestVerifyUpdate(ctx, jwt.data, (size_t)(d2 - jwt.data)), 1);
    ck_assert_int_eq(EVP_DigestVerifyFinal(ctx, sig, sn), 1);
    /* one byte of the claims changed: the signature no longer holds */
    ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub), 1);
    jwt.data[d1 - jwt.data + 3] ^= 1;
    ck_assert_int_eq(EVP_DigestVerifyUpdate(ctx, jwt.data, (size_t)(d2 - jwt.data)), 1);
    ck_assert_int_ne(EVP_DigestVerifyFinal(ctx, sig, sn), 1);
    json_decref(h);
    json_decref(c);
    free(hdr);
    free(claims);
    free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    EVP_PKEY_free(k);
    BIO_free(pb);
    BIO_free(b);
    mg_buf_deinit(&jwt);
    mg_google_sa_free(sa);
    unlink("mgtest-vertex-unit-sa.json");
}
END_TEST

/* Google's token answers as the cache reads them; OAuth's errors said without a secret. */
START_TEST(google_token_answers)
{
    struct mg_cred *c = NULL;
    char err[256] = "", url[256];
    static const char ok[] = "{\"access_token\":\"ya29.x\",\"expires_in\":3599,"
                             "\"token_type\":\"Bearer\"}";
    static const char bad[] = "{\"error\":\"invalid_grant\",\"error_description\":"
                              "\"Invalid JWT Signature.\"}";
    static const char crlf[] = "{\"access_token\":\"ya29.x\\r\\nX-Evil: 1\",\"expires_in\":9}";

    ck_assert_int_eq(mg_cred_bearer_json(ok, 1000, &c, err, sizeof(err)), MG_OK);
    ck_assert_str_eq(c->token, "ya29.x");
    ck_assert_int_eq(c->expires_ms, 1000 + 3599 * 1000);
    mg_cred_unref(c);
    c = NULL;
    ck_assert_int_eq(mg_cred_bearer_json(bad, 1000, &c, err, sizeof(err)), MG_ERR);
    ck_assert_str_eq(err, "invalid_grant: Invalid JWT Signature.");
    ck_assert_ptr_null(c);
    /* a token that would split the header line is no token */
    ck_assert_int_eq(mg_cred_bearer_json(crlf, 1000, &c, err, sizeof(err)), MG_ERR);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(mg_cred_bearer_json("<html>", 1000, &c, err, sizeof(err)), MG_ERR);
    unsetenv("GCE_METADATA_HOST");
    mg_google_metadata_url(url, sizeof(url));
    ck_assert_str_eq(url, "http://metadata.google.internal/computeMetadata/v1/instance/"
                     "service-accounts/default/token");
    setenv("GCE_METADATA_HOST", "127.0.0.1:8999", 1);
    mg_google_metadata_url(url, sizeof(url));
    ck_assert_str_eq(url, "http://127.0.0.1:8999/computeMetadata/v1/instance/"
                     "service-accounts/default/token");
    unsetenv("GCE_METADATA_HOST");
}
END_TEST

Suite *
vertex_suite(void)
{
    Suite *s = suite_create("vertex");
    TCase *tc = tcase_create("unit");

    tcase_add_test(tc, gemini_golden_requests);
    tcase_add_test(tc, gemini_golden_answers);
    tcase_add_test(tc, gemini_golden_streams);
    tcase_add_test(tc, gemini_bad_input);
    tcase_add_test(tc, claude_vertex_request_body);
    tcase_add_test(tc, vertex_builds_urls);
    tcase_add_test(tc, vertex_config_errors);
    tcase_add_test(tc, vertex_examples_load);
    tcase_add_test(tc, google_jwt_signed_and_verified);
    tcase_add_test(tc, google_token_answers);
    suite_add_tcase(s, tc);
    return s;
}
