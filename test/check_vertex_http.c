/*
 * Google Vertex AI over real HTTP: build/modelgate in front of build/fakeai instances that play
 * Google's token endpoint (which verifies the service account's RS256 JWT with the public half of
 * a key this suite makes with OpenSSL), the metadata server, and Vertex's Gemini and Claude
 * endpoints (which take only tokens those issued, unexpired). Tokens live 4 s, so the credential
 * cache refreshes them while the suite runs. Waits are on conditions with deadlines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "mg_harness.h"
#include "mg_test.h"
#include "mg_util.h"

Suite *vertex_http_suite(void);

enum { F_G1, F_DOWN, F_G2, NFAKE };

static struct mg_harness vh;
static char sa_path[64] = "mgtest-vertex-sa.json", bad_sa_path[64] = "mgtest-vertex-bad.json";
static const char *acc_log = "mgtest-vertex-access.log";

/* A new RSA key's PEM (PKCS#8, as Google's key files hold it); the caller frees. */
static char *
new_key_pem(void)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    BIO *b = BIO_new(BIO_s_mem());
    char *p, *out;
    long n;

    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    n = BIO_get_mem_data(b, &p);
    out = mg_malloc((size_t)n + 1);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    EVP_PKEY_free(k);
    return out;
}

/* A service-account JSON key for sa@proj with key pem, its token_uri on fake port. */
static void
write_sa(const char *path, const char *pem, int port)
{
    char uri[128];
    json_t *j;

    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/token", port);
    j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "service_account", "project_id",
                  "proj", "private_key_id", "kid-1", "private_key", pem, "client_email",
                  "sa@proj.iam.gserviceaccount.com", "client_id", "1234", "token_uri", uri);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
}

static void
start_all(void)
{
    static char *google_sa[] = {"--google-sa", sa_path, "--cred-ttl", "4", NULL};
    static char *down[] = {"--fail", "503", NULL};
    char conf[8192], meta[64];
    char *pem = new_key_pem(), *other = new_key_pem();

    mg_harness_init(&vh, "mgtest-vertex-gw.log", "mgtest-vertex-fake.log");
    mg_harness_fake(&vh, "g1", google_sa);
    mg_harness_fake(&vh, "down", down);
    mg_harness_fake(&vh, "g2", NULL);
    write_sa(sa_path, pem, vh.fake_port[F_G1]);
    write_sa(bad_sa_path, other, vh.fake_port[F_G1]);   /* the same account, another key */
    free(pem);
    free(other);
    snprintf(meta, sizeof(meta), "127.0.0.1:%d", vh.fake_port[F_G1]);
    setenv("GCE_METADATA_HOST", meta, 1);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "timeouts: {connect: 2s, first_byte: 10s, idle: 10s, total: 60s}\n"
             "log_level: debug\n"
             "access_log: %s\n"
             "health: {failures: 0}\n"
             "backends:\n"
             "  - {name: gem, schema: vertex, project: proj, region: us-central1,"
             " url: 'http://127.0.0.1:%d', credentials_file: %s}\n"
             "  - {name: gem-down, schema: vertex, project: proj, region: us-central1,"
             " url: 'http://127.0.0.1:%d', credentials_file: %s}\n"
             "  - {name: gem-badkey, schema: vertex, project: proj, region: global,"
             " url: 'http://127.0.0.1:%d', credentials_file: %s}\n"
             "  - {name: claude-v, schema: vertex_anthropic, project: proj, region: us-east5,"
             " url: 'http://127.0.0.1:%d', max_tokens: 77}\n"
             "  - {name: br-down, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret}\n"
             "  - {name: claude-a, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: k}\n"
             "  - {name: claude-cut, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: k}\n"
             "  - {name: claude-vp, schema: vertex_anthropic, project: proj, region: us-east5,"
             " url: 'http://127.0.0.1:%d', prefill: true}\n"
             "rules:\n"
             "  - {models: [gemini-2.5-flash], backends: [{backend: gem}]}\n"
             "  - {models: [claude-v], retry_same: false, backends: [{backend: claude-v,"
             " model: 'claude-sonnet-4-5@20250929'}]}\n"
             "  - {models: [badkey], retry_same: false, backends: [{backend: gem-badkey}]}\n"
             "  - {models: [chain-vertex], retry_same: false, backends: [{backend: br-down},"
             " {backend: gem, priority: 1}, {backend: claude-a, priority: 2}]}\n"
             "  - {models: [chain-anthropic], retry_same: false, backends: [{backend: br-down},"
             " {backend: gem-down, priority: 1}, {backend: claude-a, priority: 2}]}\n"
             "  - {models: [resume-v], resume: true, backends: [{backend: claude-cut},"
             " {backend: claude-vp, priority: 1, model: 'claude-sonnet-4-5@20250929'}]}\n",
             vh.gw_port, acc_log, vh.fake_port[F_G1], sa_path, vh.fake_port[F_DOWN], sa_path,
             vh.fake_port[F_G1], bad_sa_path, vh.fake_port[F_G1], vh.fake_port[F_DOWN],
             vh.fake_port[F_G1], vh.fake_port[F_G2], vh.fake_port[F_G1]);
    unlink(acc_log);
    mg_harness_start(&vh, 6, conf);
    unsetenv("GCE_METADATA_HOST");   /* only the gateway needed it */
}

static void
stop_all(void)
{
    mg_harness_stop(&vh, "modelgate");
    unlink(sa_path);
    unlink(bad_sa_path);
}

static void
post(const char *body, const char *const *headers, struct mg_test_resp *r)
{
    mg_test_http("POST", mg_harness_url(&vh, "/v1/chat/completions"), body, strlen(body),
                 headers, r);
}

/* The answer's first choice and the JSON it came in (free *root). */
static json_t *
choice(struct mg_test_resp *r, json_t **root)
{
    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body.data);
    *root = mg_test_body_json(r);
    return json_array_get(json_object_get(*root, "choices"), 0);
}

/* What the fake received, from an echo answer's content. */
static json_t *
echoed(struct mg_test_resp *r)
{
    json_t *root, *c = choice(r, &root), *e;
    const char *content = json_string_value(json_object_get(json_object_get(c, "message"),
                                                            "content"));

    ck_assert_msg(content != NULL, "no content: %s", r->body.data);
    e = json_loads(content, 0, NULL);
    ck_assert_ptr_nonnull(e);
    json_decref(root);
    return e;
}

/* The chunks of a chat stream, [DONE] as that string. */
static json_t *
chunks_of(struct mg_test_resp *r)
{
    json_t *all = json_array();
    const char *p = r->body.data ? r->body.data : "";

    while ((p = strstr(p, "data: ")) != NULL) {
        const char *end = strstr(p, "\n\n");
        ck_assert_ptr_nonnull(end);
        if (strncmp(p + 6, "[DONE]", 6) == 0) {
            json_array_append_new(all, json_string("[DONE]"));
        } else {
            json_t *c = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
            ck_assert_msg(c != NULL, "not JSON: %.*s", (int)(end - p), p);
            json_array_append_new(all, c);
        }
        p = end + 2;
    }
    return all;
}

/* A backend error in OpenAI's shape: status and type. */
static void
assert_backend_error(struct mg_test_resp *r, long status, const char *type)
{
    json_t *j = mg_test_body_json(r), *e = json_object_get(j, "error");

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    ck_assert(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

static const char chat[] = "{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":\"system\","
                           "\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"hi\"}]}";

START_TEST(vertex_chat_with_service_account_jwt)
{
    struct mg_test_resp r;
    json_t *root, *c, *e, *u;
    const char *auth;

    post(chat, (const char *[]){"Authorization: Bearer client-secret", NULL}, &r);
    c = choice(&r, &root);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"),
                                                       "content")), "Hello from g1");
    ck_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "stop");
    ck_assert_str_eq(json_string_value(json_object_get(root, "model")), "gemini-2.5-flash");
    u = json_object_get(root, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 20);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "gem");
    json_decref(root);
    mg_test_resp_free(&r);
    /* what Vertex received: the URL, our token (never the client's), Gemini's body */
    post(chat, (const char *[]){"x-fake-echo: 1", "Authorization: Bearer client-secret", NULL},
         &r);
    e = echoed(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")), "/v1/projects/proj/locations/"
                     "us-central1/publishers/google/models/gemini-2.5-flash:generateContent");
    auth = json_string_value(json_object_get(json_object_get(e, "headers"), "authorization"));
    ck_assert_msg(auth != NULL && strncmp(auth, "Bearer ya29.fake.sa.", 20) == 0, "%s", auth);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(
                     json_object_get(json_object_get(e, "body"), "systemInstruction"), "parts"),
                     0), "text")), "Be brief.");
    ck_assert_ptr_null(json_object_get(json_object_get(e, "body"), "model"));
    json_decref(e);
    mg_test_resp_free(&r);
    /* the JWTs the gateway signed were all good */
    ck_assert_int_ge(mg_test_fake_stat(vh.fake_port[F_G1], "tokens"), 1);
}
END_TEST

START_TEST(vertex_stream)
{
    static const char body[] = "{\"model\":\"gemini-2.5-flash\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}]}";
    struct mg_test_resp r;
    json_t *all, *c;
    size_t i;
    char text[64] = "";

    post(body, (const char *[]){"x-fake-chunks: 4", "x-fake-split: 1", NULL}, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    ck_assert_ptr_nonnull(strstr(mg_test_hdr(&r, "content-type"), "text/event-stream"));
    all = chunks_of(&r);
    /* role, 4 texts, finish, usage, [DONE] */
    ck_assert_int_eq(json_array_size(all), 8);
    json_array_foreach(all, i, c) {
        json_t *d = json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta");
        const char *t = json_string_value(json_object_get(d, "content"));
        if (t != NULL) {
            strncat(text, t, sizeof(text) - strlen(text) - 1);
        }
    }
    ck_assert_str_eq(text, "tok0 tok1 tok2 tok3 ");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(
                     json_array_get(all, 5), "choices"), 0), "finish_reason")), "stop");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_array_get(all, 6),
                     "usage"), "total_tokens")), 30);
    ck_assert_str_eq(json_string_value(json_array_get(all, 7)), "[DONE]");
    json_decref(all);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(vertex_tool_calls)
{
    static const char tools[] = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":"
        "{\"type\":\"string\"}},\"additionalProperties\":false}}}],\"tool_choice\":\"auto\"";
    char body[1024];
    struct mg_test_resp r;
    json_t *root, *c, *call, *all;
    const char *id;
    char idbuf[128];

    snprintf(body, sizeof(body), "{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"Weather in Paris?\"}],%s}", tools);
    post(body, NULL, &r);
    c = choice(&r, &root);
    ck_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "tool_calls");
    call = json_array_get(json_object_get(json_object_get(c, "message"), "tool_calls"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(call, "function"),
                                                       "name")), "get_weather");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(call, "function"),
                                                       "arguments")), "{\"location\":\"Paris\"}");
    id = json_string_value(json_object_get(call, "id"));
    ck_assert_ptr_nonnull(id);
    snprintf(idbuf, sizeof(idbuf), "%s", id);
    json_decref(root);
    mg_test_resp_free(&r);
    /* the tool's result goes back as a functionResponse named after the call: text now */
    snprintf(body, sizeof(body), "{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"Weather in Paris?\"},{\"role\":\"assistant\",\"tool_calls\":"
             "[{\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
             "\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}\"}}]},{\"role\":\"tool\","
             "\"tool_call_id\":\"%s\",\"content\":\"21C\"}],%s}", idbuf, idbuf, tools);
    post(body, NULL, &r);
    c = choice(&r, &root);
    ck_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "stop");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"),
                                                       "content")), "Hello from g1");
    json_decref(root);
    mg_test_resp_free(&r);
    /* streamed: the call as a start and its arguments, finish tool_calls */
    snprintf(body, sizeof(body), "{\"model\":\"gemini-2.5-flash\",\"stream\":true,\"messages\":"
             "[{\"role\":\"user\",\"content\":\"Weather?\"}],%s}", tools);
    post(body, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    all = chunks_of(&r);
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"name\":\"get_weather\",\"arguments\":\"\""));
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"finish_reason\":\"tool_calls\""));
    ck_assert_str_eq(json_string_value(json_array_get(all, json_array_size(all) - 1)), "[DONE]");
    json_decref(all);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(vertex_errors)
{
    struct mg_test_resp r;

    /* a final 400 in OpenAI's shape, with Google's status as its type */
    post(chat, (const char *[]){"x-fake-status: 400", NULL}, &r);
    assert_backend_error(&r, 400, "INVALID_ARGUMENT");
    mg_test_resp_free(&r);
    /* a 429: the backend's answer passes through when nothing else is left (no Retry-After,
     * which would cool the backend down for the other tests) */
    post(chat, (const char *[]){"x-fake-status: 429", NULL}, &r);
    assert_backend_error(&r, 429, "RESOURCE_EXHAUSTED");
    mg_test_resp_free(&r);
    /* an error event after the first token: one error event, no [DONE] */
    post("{\"model\":\"gemini-2.5-flash\",\"stream\":true,\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", (const char *[]){"x-fake-stream-error: late", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"code\":\"upstream_stream_error\""));
    ck_assert_ptr_nonnull(strstr(r.body.data, "The model is overloaded"));
    ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
    mg_test_resp_free(&r);
    /* before it: a failure before commit, nothing else to try: 502 */
    post("{\"model\":\"gemini-2.5-flash\",\"stream\":true,\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", (const char *[]){"x-fake-stream-error: early", NULL}, &r);
    mg_test_assert_error(&r, 502, "upstream_unavailable");
    mg_test_resp_free(&r);
    /* an https image is not for this backend, and no other entry takes it */
    post("{\"model\":\"gemini-2.5-flash\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
         "\"image_url\",\"image_url\":{\"url\":\"https://example.com/a.png\"}}]}]}", NULL, &r);
    mg_test_assert_error(&r, 400, "unsupported_parameter");
    mg_test_resp_free(&r);
}
END_TEST

/* Claude on Vertex, its token from the metadata server. */
START_TEST(claude_on_vertex)
{
    static const char body[] = "{\"model\":\"claude-v\",\"messages\":[{\"role\":\"user\","
                               "\"content\":\"hi\"}]}";
    struct mg_test_resp r;
    json_t *root, *c, *e, *all;
    const char *auth;

    post(body, NULL, &r);
    c = choice(&r, &root);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"),
                                                       "content")), "Hello from g1");
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude-v");
    json_decref(root);
    mg_test_resp_free(&r);
    post(body, (const char *[]){"x-fake-echo: 1", NULL}, &r);
    e = echoed(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")), "/v1/projects/proj/locations/"
                     "us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict");
    auth = json_string_value(json_object_get(json_object_get(e, "headers"), "authorization"));
    ck_assert_msg(auth != NULL && strncmp(auth, "Bearer ya29.fake.metadata.", 26) == 0, "%s",
                  auth);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(e, "body"),
                                                        "max_tokens")), 77);
    json_decref(e);
    mg_test_resp_free(&r);
    /* streamed (streamRawPredict) */
    post("{\"model\":\"claude-v\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
         "\"hi\"}]}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    all = chunks_of(&r);
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"content\":\"tok0 \""));
    ck_assert_str_eq(json_string_value(json_array_get(all, json_array_size(all) - 1)), "[DONE]");
    json_decref(all);
    mg_test_resp_free(&r);
    /* an Anthropic Messages client reaches it through the chat hub */
    {
        static const char msg[] = "{\"model\":\"claude-v\",\"max_tokens\":9,\"messages\":"
                                  "[{\"role\":\"user\",\"content\":\"hi\"}]}";
        mg_test_http("POST", mg_harness_url(&vh, "/v1/messages"), msg, sizeof(msg) - 1, NULL,
                     &r);
    }
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    root = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(root, "type")), "message");
    json_decref(root);
    mg_test_resp_free(&r);
    /* Vertex's own refusal of Claude (the fake's 400) in OpenAI's shape */
    post(body, (const char *[]){"x-fake-status: 400", NULL}, &r);
    assert_backend_error(&r, 400, "invalid_request_error");
    mg_test_resp_free(&r);
}
END_TEST

/* A key the token endpoint does not take: its JWT is refused, the backend has no token. */
START_TEST(bad_key_means_no_credentials)
{
    struct mg_test_resp r;

    post("{\"model\":\"badkey\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL,
         &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    ck_assert_ptr_null(strstr(r.body.data, "ya29"));
    mg_test_resp_free(&r);
    ck_assert_int_ge(mg_test_fake_stat(vh.fake_port[F_G1], "bad_jwts"), 1);
}
END_TEST

/* Tokens live 4 s: they are fetched again before they expire, and requests never see a gap. */
START_TEST(tokens_refreshed_before_expiry)
{
    long first = mg_test_fake_stat(vh.fake_port[F_G1], "tokens");
    int64_t deadline = mg_now_ms() + 12000 * mg_test_scale();
    struct mg_test_resp r;
    int ok = 0, n = 0;

    /* each source refreshes every 2 s (lifetime / 2): a few more tokens soon */
    while (mg_now_ms() < deadline && mg_test_fake_stat(vh.fake_port[F_G1], "tokens") < first + 4) {
        post(chat, NULL, &r);
        ok += r.status == 200;
        n++;
        mg_test_resp_free(&r);
        usleep(100000);
    }
    ck_assert_int_ge(mg_test_fake_stat(vh.fake_port[F_G1], "tokens"), first + 4);
    ck_assert_int_eq(ok, n);   /* not one request without a valid token */
}
END_TEST

/* One rule across schemas: Bedrock fails, Vertex answers; Bedrock and Vertex fail, Anthropic. */
START_TEST(failover_across_schemas)
{
    struct mg_test_resp r;
    long before = mg_test_fake_stat(vh.fake_port[F_DOWN], "requests");
    json_t *root, *c;

    post("{\"model\":\"chain-vertex\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         NULL, &r);
    c = choice(&r, &root);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "gem");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"),
                                                       "content")), "Hello from g1");
    json_decref(root);
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_fake_stat(vh.fake_port[F_DOWN], "requests"), before + 1);
    post("{\"model\":\"chain-anthropic\",\"stream\":true,\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude-a");
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    mg_test_resp_free(&r);
    /* Bedrock (signed) and Vertex (with its token) were both tried on the failing fake */
    ck_assert_int_eq(mg_test_fake_stat(vh.fake_port[F_DOWN], "requests"), before + 3);
}
END_TEST

/* The text of a chat stream's content deltas, and how many [DONE] and error events it had. */
static void
stream_text(struct mg_test_resp *r, char *text, size_t n, int *done, int *errors)
{
    json_t *all = chunks_of(r), *c;
    size_t i;

    text[0] = '\0';
    *done = *errors = 0;
    json_array_foreach(all, i, c) {
        const char *t = json_string_value(json_object_get(json_object_get(json_array_get(
            json_object_get(c, "choices"), 0), "delta"), "content"));
        *done += json_is_string(c);
        *errors += json_object_get(c, "error") != NULL;
        if (t != NULL) {
            strncat(text, t, n - strlen(text) - 1);
        }
    }
    json_decref(all);
}

/* A stream cut on Anthropic's API is finished by Claude on Vertex (prefill: true). */
START_TEST(resume_on_claude_vertex)
{
    static const char body[] = "{\"model\":\"resume-v\",\"stream\":true,\"messages\":"
                               "[{\"role\":\"user\",\"content\":\"count\"}]}";
    struct mg_test_resp r;
    char text[256];
    int done, errors;
    json_t *line = NULL;
    int64_t deadline;

    post(body, (const char *[]){"x-fake-for: g2", "x-fake-cut-at-token: 2", "x-fake-chunks: 5",
                                "x-request-id: vertex-resume", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    stream_text(&r, text, sizeof(text), &done, &errors);
    ck_assert_str_eq(text, "tok0 tok1 tok2 tok3 tok4 ");
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(errors, 0);
    mg_test_resp_free(&r);
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    while (line == NULL && mg_now_ms() < deadline) {
        size_t n = 0;
        char *acc = mg_test_slurp(acc_log, &n), *at = acc ? strstr(acc, "vertex-resume") : NULL;
        if (at != NULL) {
            char *start = at, *end = strchr(at, '\n');
            while (start > acc && start[-1] != '\n') {
                start--;
            }
            line = json_loadb(start, (size_t)((end ? end : acc + n) - start), 0, NULL);
        }
        free(acc);
        if (line == NULL) {
            usleep(20000);
        }
    }
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(line, "backends"), 1)),
                     "claude-vp");
    json_decref(line);
}
END_TEST

/* What the gateway logged holds no token, key or assertion (it logged the refused JWT's reason). */
START_TEST(no_secret_in_logs)
{
    size_t n = 0, an = 0;
    char *log = mg_test_slurp(vh.gw_log, &n), *acc = mg_test_slurp(acc_log, &an);

    ck_assert_ptr_nonnull(log);
    ck_assert_ptr_nonnull(strstr(log, "invalid_grant"));
    ck_assert_ptr_null(strstr(log, "ya29."));
    ck_assert_ptr_null(strstr(log, "PRIVATE KEY"));
    ck_assert_ptr_null(strstr(log, "eyJ"));   /* a JWT's base64url header */
    ck_assert_ptr_null(strstr(log, "assertion="));
    ck_assert_ptr_null(acc != NULL ? strstr(acc, "ya29.") : NULL);
    free(log);
    free(acc);
}
END_TEST

Suite *
vertex_http_suite(void)
{
    Suite *s = suite_create("vertex_http");
    TCase *t = tcase_create("http");

    tcase_add_unchecked_fixture(t, start_all, stop_all);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, vertex_chat_with_service_account_jwt);
    tcase_add_test(t, vertex_stream);
    tcase_add_test(t, vertex_tool_calls);
    tcase_add_test(t, vertex_errors);
    tcase_add_test(t, claude_on_vertex);
    tcase_add_test(t, bad_key_means_no_credentials);
    tcase_add_test(t, tokens_refreshed_before_expiry);
    tcase_add_test(t, failover_across_schemas);
    tcase_add_test(t, resume_on_claude_vertex);
    tcase_add_test(t, no_secret_in_logs);
    suite_add_tcase(s, t);
    return s;
}
