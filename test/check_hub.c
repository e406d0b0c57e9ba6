/*
 * check_hub — the chat hub's failure paths, end to end: /v1/responses and /v1/messages clients of
 * a gateway whose backends (anthropic, bedrock, openai with responses: translate, openai native,
 * azure) are fakeai processes. Each test asserts what the client sees (SPEC "Client APIs"):
 * fail-over before the commit, a cut after it, held backend errors in the client's shape, the
 * gateway's own 400s, the conversation store and the access log's token counts.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_chatreq.h"
#include "mg_harness.h"
#include "mg_test.h"

Suite *hub_suite(void);

#define K_ONE   "sk-hub-one"
#define K_TWO   "sk-hub-two"

/* f1 serves the first entries (its faults are chosen with x-fake-for: f1), f2 the others */
enum { F1, F2, NFAKE };
static const char *const fake_names[NFAKE] = {"f1", "f2"};
static struct mg_harness gwh;     /* auth keys, the default store */
static struct mg_harness offh;    /* no auth, responses_store size 0, on the same fakes */
static const char *acc_log = "mgtest-hub-access.log";
static int off_started;           /* 0: the store-off config was refused (see store_off) */

static void
start_all(void)
{
    char conf[8192];
    int p1, p2;

    mg_harness_init(&gwh, "mgtest-hub-gw.log", "mgtest-hub-fake.log");
    for (int i = 0; i < NFAKE; i++) {
        mg_harness_fake(&gwh, fake_names[i], NULL);
    }
    p1 = gwh.fake_port[F1];
    p2 = gwh.fake_port[F2];
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "timeouts: {connect: 2s, first_byte: 10s, idle: 3s, total: 60s}\n"
             "access_log: %s\n"
             "health: {failures: 0}\n"
             "auth:\n  keys:\n"
             "    - {name: one, key: " K_ONE "}\n"
             "    - {name: two, key: " K_TWO "}\n"
             "backends:\n"
             "  - {name: ant1, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a1}\n"
             "  - {name: ant2, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a2}\n"
             "  - {name: br, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret}\n"
             "  - {name: oat1, url: 'http://127.0.0.1:%d/v1', api_key: o1, responses: translate}\n"
             "  - {name: oat2, url: 'http://127.0.0.1:%d/v1', api_key: o2, responses: translate}\n"
             "  - {name: oa, url: 'http://127.0.0.1:%d/v1', api_key: o3}\n"
             "  - {name: oa1, url: 'http://127.0.0.1:%d/v1', api_key: o4}\n"
             "  - {name: az, schema: azure, url: 'http://127.0.0.1:%d', api_key: az-key,"
             " api_version: 2024-10-21}\n"
             "rules:\n"
             "  - {models: [oat-ant], backends: [{backend: oat1}, {backend: ant2, priority: 1}]}\n"
             "  - {models: [oat-br], backends: [{backend: oat1}, {backend: br, priority: 1}]}\n"
             "  - {models: [oat-az], backends: [{backend: oat1}, {backend: az, priority: 1}]}\n"
             "  - {models: [ant-oat], backends: [{backend: ant1}, {backend: oat2, priority: 1}]}\n"
             "  - {models: [oa-ant], backends: [{backend: oa1}, {backend: ant2, priority: 1}]}\n"
             "  - {models: [oat-x], backends: [{backend: oat1}]}\n"
             "  - {models: [ant-x], backends: [{backend: ant1}]}\n"
             "  - {models: [br-x], backends: [{backend: br}]}\n"
             "  - {models: [oa-x], backends: [{backend: oa}]}\n"
             "  - {models: [az-x], backends: [{backend: az}]}\n"
             "  - {models: [oa-pin], backends: [{backend: oa}, {backend: oa1}]}\n",
             gwh.gw_port, acc_log, p1, p2, p2, p1, p2, p2, p1, p2);
    unlink(acc_log);
    mg_harness_start(&gwh, 5, conf);

    mg_harness_init(&offh, "mgtest-hub-off.log", "mgtest-hub-off-fake.log");
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 1\n"
             "responses_store: {size: 0}\n"
             "backends:\n"
             "  - {name: ant1, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a1}\n"
             "  - {name: oat1, url: 'http://127.0.0.1:%d/v1', api_key: o1, responses: translate}\n"
             "rules:\n"
             "  - {models: [ant-x], backends: [{backend: ant1}]}\n"
             "  - {models: [oat-x], backends: [{backend: oat1}]}\n",
             offh.gw_port, p1, p1);
    /* SPEC: size 0 turns the store off; a gateway that refuses the config is reported by
     * store_off rather than failing every test of the suite */
    {
        char cmd[512];
        const char *path = mg_test_write_temp(6, conf);
        snprintf(cmd, sizeof(cmd), "'%s/modelgate' -t -c '%s' >/dev/null 2>&1",
                 mg_test_build_dir(), path);
        off_started = system(cmd) == 0;
        unlink(path);
    }
    if (off_started) {
        mg_harness_start(&offh, 6, conf);
    }
}

static void
stop_all(void)
{
    if (off_started) {
        mg_harness_stop(&offh, "modelgate (store off)");
    }
    mg_harness_stop(&gwh, "modelgate");
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* A request to the main gateway with key one, unless headers carry an Authorization. */
static void
req_as(const char *method, const char *path, const char *body, const char *key,
       const char *const *headers, struct mg_test_resp *r)
{
    const char *h[16];
    char auth[64];
    size_t n = 0;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    h[n++] = auth;
    for (size_t i = 0; headers != NULL && headers[i] != NULL && n + 1 < MG_ARRAY_LEN(h); i++) {
        h[n++] = headers[i];
    }
    h[n] = NULL;
    mg_test_http(method, mg_harness_url(&gwh, path), body, body ? strlen(body) : 0, h, r);
}

static void
post(const char *path, const char *body, const char *const *headers, struct mg_test_resp *r)
{
    req_as("POST", path, body, K_ONE, headers, r);
}

/* The events of an SSE body: [{"event": name or null, "data": parsed JSON or the text}]. */
static json_t *
sse_events(const struct mg_test_resp *r)
{
    json_t *out = json_array();
    char *copy = strndup(r->body.data ? r->body.data : "", r->body.len), *save = NULL, *blk;

    /* events are separated by a blank line (the gateway writes \n) */
    for (blk = copy; blk != NULL && *blk != '\0';) {
        char *end = strstr(blk, "\n\n"), *line, *lsave = NULL;
        json_t *ev = json_object();
        if (end != NULL) {
            *end = '\0';
        }
        for (line = strtok_r(blk, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
            if (strncmp(line, "event: ", 7) == 0) {
                json_object_set_new(ev, "event", json_string(line + 7));
            } else if (strncmp(line, "data: ", 6) == 0) {
                json_t *d = json_loads(line + 6, 0, NULL);
                json_object_set_new(ev, "data", d ? d : json_string(line + 6));
            }
        }
        if (json_object_size(ev) > 0) {
            json_array_append(out, ev);
        }
        json_decref(ev);
        blk = end ? end + 2 : NULL;
    }
    (void)save;
    free(copy);
    return out;
}

static const char *
ev_name(json_t *ev, size_t i)
{
    const char *s = json_string_value(json_object_get(json_array_get(ev, i), "event"));
    return s ? s : "";
}

static json_t *
ev_data(json_t *ev, size_t i)
{
    return json_object_get(json_array_get(ev, i), "data");
}

/* The index of the first event named name, or -1. */
static long
ev_find(json_t *ev, const char *name)
{
    for (size_t i = 0; i < json_array_size(ev); i++) {
        if (strcmp(ev_name(ev, i), name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static const char *
jstr(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "(none)";
}

/* Every Responses stream event's sequence_number: 0, 1, 2, ... in order; its type = its name. */
static void
assert_sequence(json_t *ev, const char *what)
{
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *d = ev_data(ev, i);
        ck_assert_msg(json_integer_value(json_object_get(d, "sequence_number")) == (json_int_t)i,
                      "%s: event %zu (%s) has sequence_number %lld", what, i, ev_name(ev, i),
                      (long long)json_integer_value(json_object_get(d, "sequence_number")));
        ck_assert_str_eq(jstr(d, "type"), ev_name(ev, i));
    }
}

/* OpenAI's error shape: status, error.type (when not NULL), error.code (when not NULL). */
static void
assert_openai_error(const struct mg_test_resp *r, long status, const char *type,
                    const char *code)
{
    json_t *j = mg_test_body_json(r), *e = json_object_get(j, "error");

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_msg(json_is_object(e), "not OpenAI's shape: %s", r->body.data);
    ck_assert_ptr_null(json_object_get(j, "type"));   /* Anthropic's top-level member */
    if (type != NULL) {
        ck_assert_str_eq(jstr(e, "type"), type);
    }
    if (code != NULL) {
        ck_assert_str_eq(jstr(e, "code"), code);
    }
    ck_assert(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

/* Anthropic's error shape: {"type":"error","error":{"type":type,"message":…}}. */
static void
assert_anthropic_error(const struct mg_test_resp *r, long status, const char *type)
{
    json_t *j = mg_test_body_json(r), *e = json_object_get(j, "error");

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_str_eq(jstr(j, "type"), "error");
    ck_assert_msg(json_is_object(e), "no error object: %s", r->body.data);
    ck_assert_str_eq(jstr(e, "type"), type);
    ck_assert(json_is_string(json_object_get(e, "message")));
    ck_assert_ptr_null(json_object_get(e, "code"));   /* OpenAI's member */
    json_decref(j);
}

/* The access log line holding needle (waits for it). */
static json_t *
access_line(const char *needle)
{
    static char buf[1 << 20];
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (mg_now_ms() < deadline) {
        FILE *f = fopen(acc_log, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        char *line, *save = NULL;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strstr(line, needle) != NULL) {
                return json_loads(line, 0, NULL);
            }
        }
        usleep(20000);
    }
    ck_abort_msg("no access log line with %s", needle);
    return NULL;
}

/* A translated Response answered whole: completed, one message whose text holds want. */
static void
assert_response(const struct mg_test_resp *r, const char *model, const char *want)
{
    json_t *j = mg_test_body_json(r), *out, *text;

    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body.data);
    ck_assert_str_eq(jstr(j, "object"), "response");
    ck_assert_str_eq(jstr(j, "status"), "completed");
    ck_assert_str_eq(jstr(j, "model"), model);
    ck_assert_msg(strncmp(jstr(j, "id"), "resp_mg", 7) == 0, "id %s", jstr(j, "id"));
    out = json_array_get(json_object_get(j, "output"), 0);
    ck_assert_str_eq(jstr(out, "type"), "message");
    text = json_array_get(json_object_get(out, "content"), 0);
    ck_assert_str_eq(jstr(text, "type"), "output_text");
    ck_assert_msg(strstr(jstr(text, "text"), want) != NULL, "text %s, want %s",
                  jstr(text, "text"), want);
    ck_assert(json_is_object(json_object_get(j, "usage")));
    json_decref(j);
}

/* A translated Message answered whole. */
static void
assert_message(const struct mg_test_resp *r, const char *model, const char *want)
{
    json_t *j = mg_test_body_json(r), *c;

    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body.data);
    ck_assert_str_eq(jstr(j, "type"), "message");
    ck_assert_str_eq(jstr(j, "role"), "assistant");
    ck_assert_str_eq(jstr(j, "model"), model);
    ck_assert_msg(strncmp(jstr(j, "id"), "msg_mg", 6) == 0, "id %s", jstr(j, "id"));
    ck_assert_str_eq(jstr(j, "stop_reason"), "end_turn");
    c = json_array_get(json_object_get(j, "content"), 0);
    ck_assert_str_eq(jstr(c, "type"), "text");
    ck_assert_msg(strstr(jstr(c, "text"), want) != NULL, "text %s", jstr(c, "text"));
    json_decref(j);
}

/* A translated Responses stream, whole: created first, completed last, no error. */
static void
assert_response_stream(const struct mg_test_resp *r)
{
    json_t *ev;
    size_t n;

    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body.data);
    ck_assert_int_eq(r->curl_rc, CURLE_OK);
    ck_assert_str_eq(mg_test_hdr(r, "content-type"), "text/event-stream");
    ev = sse_events(r);
    n = json_array_size(ev);
    ck_assert_msg(n > 3, "events: %s", r->body.data);
    ck_assert_str_eq(ev_name(ev, 0), "response.created");
    ck_assert_str_eq(ev_name(ev, n - 1), "response.completed");
    ck_assert_int_eq(ev_find(ev, "error"), -1);
    ck_assert_int_eq(ev_find(ev, "response.failed"), -1);
    ck_assert(ev_find(ev, "response.output_text.delta") > 0);
    ck_assert_ptr_null(strstr(r->body.data, "[DONE]"));
    assert_sequence(ev, "stream");
    json_decref(ev);
}

/* A translated Messages stream, whole: message_start first, message_stop last, no error. */
static void
assert_message_stream(const struct mg_test_resp *r)
{
    json_t *ev;
    size_t n;

    ck_assert_msg(r->status == 200, "status %ld: %s", r->status, r->body.data);
    ck_assert_int_eq(r->curl_rc, CURLE_OK);
    ck_assert_str_eq(mg_test_hdr(r, "content-type"), "text/event-stream");
    ev = sse_events(r);
    n = json_array_size(ev);
    ck_assert_msg(n > 3, "events: %s", r->body.data);
    ck_assert_str_eq(ev_name(ev, 0), "message_start");
    ck_assert_str_eq(ev_name(ev, n - 1), "message_stop");
    ck_assert_int_eq(ev_find(ev, "error"), -1);
    ck_assert(ev_find(ev, "content_block_delta") > 0);
    json_decref(ev);
}

static char *
resp_body(const char *model, int stream, const char *extra)
{
    char *s = NULL;
    if (asprintf(&s, "{\"model\":\"%s\",\"input\":\"hi\"%s%s}", model,
                 stream ? ",\"stream\":true" : "", extra ? extra : "") < 0) {
        abort();
    }
    return s;
}

static char *
msg_body(const char *model, int stream, const char *extra)
{
    char *s = NULL;
    if (asprintf(&s, "{\"model\":\"%s\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"hi\"}]%s%s}", model, stream ? ",\"stream\":true" : "",
                 extra ? extra : "") < 0) {
        abort();
    }
    return s;
}

/* ---- fail-over before the commit ------------------------------------------------------------ */

struct fault {
    const char *what;
    const char *h[3];
    int         stream;   /* 0: plain requests only, 1: streams only, 2: both */
};

static const struct fault faults_f1[] = {
    {"500", {"x-fake-status: 500", "x-fake-status-for: f1", NULL}, 2},
    {"unreadable body", {"x-fake-for: f1", "x-fake-junk-body: 1", NULL}, 0},
    {"half a body", {"x-fake-for: f1", "x-fake-cut-after: 0", NULL}, 0},
    {"broken chunk", {"x-fake-for: f1", "x-fake-bad-chunk: 1", NULL}, 1},
    {"empty stream", {"x-fake-for: f1", "x-fake-empty-stream: 1", NULL}, 1},
    {"comments only", {"x-fake-for: f1", "x-fake-empty-stream: 2", NULL}, 1},
    {"error event first", {"x-fake-for: f1", "x-fake-error-event-at: 0", NULL}, 1},
};

/*
 * The first entry (openai through chat, on f1) fails before any output: the second answers,
 * translated into the client's API, plain and streamed. Responses fall over to anthropic (ant2),
 * Messages to bedrock (br) and to azure (az), both through the hub.
 */
START_TEST(failover_before_commit_openai_first)
{
    static const struct { const char *path, *model, *backend; } routes[] = {
        {"/v1/responses", "oat-ant", "ant2"},
        {"/v1/messages", "oat-br", "br"},
        {"/v1/messages", "oat-az", "az"},
    };

    for (size_t f = 0; f < MG_ARRAY_LEN(faults_f1); f++) {
        for (size_t k = 0; k < MG_ARRAY_LEN(routes); k++) {
            for (int stream = 0; stream < 2; stream++) {
                int resp = strcmp(routes[k].path, "/v1/responses") == 0;
                struct mg_test_resp r;
                char *body;

                if (faults_f1[f].stream != 2 && faults_f1[f].stream != stream) {
                    continue;
                }
                long f1 = mg_test_fake_stat(gwh.fake_port[F1], "requests");
                body = resp ? resp_body(routes[k].model, stream, NULL)
                            : msg_body(routes[k].model, stream, NULL);
                post(routes[k].path, body, faults_f1[f].h, &r);
                /* the first entry was tried (and failed) */
                ck_assert_msg(mg_test_fake_stat(gwh.fake_port[F1], "requests") > f1,
                              "%s %s: f1 not tried", faults_f1[f].what, routes[k].model);
                ck_assert_msg(r.status == 200, "%s %s stream %d: %ld %s", faults_f1[f].what,
                              routes[k].model, stream, r.status, r.body.data);
                ck_assert_msg(strcmp(mg_test_hdr(&r, "x-modelgate-backend"),
                                     routes[k].backend) == 0,
                              "%s %s: backend %s", faults_f1[f].what, routes[k].model,
                              mg_test_hdr(&r, "x-modelgate-backend"));
                if (stream && resp) {
                    assert_response_stream(&r);
                } else if (stream) {
                    assert_message_stream(&r);
                } else if (resp) {
                    assert_response(&r, routes[k].model, "Hello from f2");
                } else {
                    assert_message(&r, routes[k].model, "Hello from f2");
                }
                mg_test_resp_free(&r);
                free(body);
            }
        }
    }
}
END_TEST

/*
 * The first entry is anthropic (on f1): a 500, an empty stream, or an error event before any
 * text; the second (openai through chat, f2) answers the Responses client, translated.
 */
START_TEST(failover_before_commit_anthropic_first)
{
    static const struct fault fs[] = {
        {"500", {"x-fake-status: 500", "x-fake-status-for: f1", NULL}, 2},
        {"empty stream", {"x-fake-for: f1", "x-fake-empty-stream: 1", NULL}, 1},
        {"comments only", {"x-fake-for: f1", "x-fake-empty-stream: 2", NULL}, 1},
        /* x-fake-stream-error is for anthropic's path only: f2 answers chat, unharmed */
        {"error event first", {"x-fake-stream-error: early", NULL, NULL}, 1},
    };

    for (size_t f = 0; f < MG_ARRAY_LEN(fs); f++) {
        for (int stream = 0; stream < 2; stream++) {
            struct mg_test_resp r;
            char *body;

            if (fs[f].stream != 2 && fs[f].stream != stream) {
                continue;
            }
            body = resp_body("ant-oat", stream, NULL);
            post("/v1/responses", body, fs[f].h, &r);
            ck_assert_msg(r.status == 200, "%s stream %d: %ld %s", fs[f].what, stream, r.status,
                          r.body.data);
            ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oat2");
            if (stream) {
                assert_response_stream(&r);
            } else {
                assert_response(&r, "ant-oat", "Hello from f2");
            }
            mg_test_resp_free(&r);
            free(body);
        }
    }
}
END_TEST

/* ---- a cut after the commit ----------------------------------------------------------------- */

/* Responses: event: error (flat and nested members), then response.failed, then a clean end. */
static void
assert_responses_cut(const struct mg_test_resp *r, const char *what)
{
    json_t *ev, *e, *failed;
    long ie, iff;
    size_t n;

    ck_assert_msg(r->status == 200, "%s: status %ld: %s", what, r->status, r->body.data);
    ck_assert_msg(r->curl_rc == CURLE_OK, "%s: not a clean end (%d)", what, r->curl_rc);
    ev = sse_events(r);
    n = json_array_size(ev);
    ck_assert_str_eq(ev_name(ev, 0), "response.created");
    ck_assert_msg(ev_find(ev, "response.output_text.delta") > 0, "%s: no output before the cut",
                  what);
    ie = ev_find(ev, "error");
    iff = ev_find(ev, "response.failed");
    ck_assert_msg(ie > 0 && iff == ie + 1 && (size_t)iff == n - 1,
                  "%s: error at %ld, response.failed at %ld, of %zu: %s", what, ie, iff, n,
                  r->body.data);
    ck_assert_int_eq(ev_find(ev, "response.completed"), -1);
    e = ev_data(ev, (size_t)ie);
    ck_assert_str_eq(jstr(e, "type"), "error");
    ck_assert_str_eq(jstr(e, "code"), "upstream_stream_error");
    ck_assert(json_is_string(json_object_get(e, "message")));
    ck_assert(json_is_integer(json_object_get(e, "sequence_number")));
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "code"), "upstream_stream_error");
    ck_assert_str_eq(jstr(json_object_get(e, "error"), "type"), "upstream_error");
    failed = json_object_get(ev_data(ev, (size_t)iff), "response");
    ck_assert_str_eq(jstr(failed, "status"), "failed");
    ck_assert_str_eq(jstr(json_object_get(failed, "error"), "code"), "server_error");
    /* the items so far: the open message is incomplete */
    ck_assert_str_eq(jstr(json_array_get(json_object_get(failed, "output"), 0), "status"),
                     "incomplete");
    ck_assert_ptr_null(strstr(r->body.data, "[DONE]"));
    assert_sequence(ev, what);
    json_decref(ev);
}

/* Messages: Anthropic's event: error, last, after some text; a clean end. */
static void
assert_messages_cut(const struct mg_test_resp *r, const char *what)
{
    json_t *ev, *d;
    long ie;
    size_t n;

    ck_assert_msg(r->status == 200, "%s: status %ld: %s", what, r->status, r->body.data);
    ck_assert_msg(r->curl_rc == CURLE_OK, "%s: not a clean end (%d)", what, r->curl_rc);
    ev = sse_events(r);
    n = json_array_size(ev);
    ck_assert_str_eq(ev_name(ev, 0), "message_start");
    ck_assert(ev_find(ev, "content_block_delta") > 0);
    ie = ev_find(ev, "error");
    ck_assert_msg(ie > 0 && (size_t)ie == n - 1, "%s: error at %ld of %zu: %s", what, ie, n,
                  r->body.data);
    ck_assert_int_eq(ev_find(ev, "message_stop"), -1);
    d = ev_data(ev, (size_t)ie);
    ck_assert_str_eq(jstr(d, "type"), "error");
    ck_assert(json_is_string(json_object_get(json_object_get(d, "error"), "type")));
    ck_assert(json_is_string(json_object_get(json_object_get(d, "error"), "message")));
    json_decref(ev);
}

START_TEST(cut_after_commit)
{
    const char *chat_cut[] = {"x-fake-for: f1", "x-fake-chunks: 5", "x-fake-cut-after: 3", NULL};
    const char *chat_err[] = {"x-fake-for: f1", "x-fake-chunks: 5", "x-fake-error-event-at: 3",
                              NULL};
    const char *ant_cut[] = {"x-fake-cut: 1", NULL};
    const char *ant_late[] = {"x-fake-stream-error: late", NULL};
    struct mg_test_resp r;
    char *b;

    /* Responses through openai chat, anthropic */
    b = resp_body("oat-x", 1, NULL);
    post("/v1/responses", b, chat_cut, &r);
    assert_responses_cut(&r, "responses oat cut");
    mg_test_resp_free(&r);
    post("/v1/responses", b, chat_err, &r);
    assert_responses_cut(&r, "responses oat error event");
    mg_test_resp_free(&r);
    free(b);
    b = resp_body("ant-x", 1, NULL);
    post("/v1/responses", b, ant_cut, &r);
    assert_responses_cut(&r, "responses anthropic cut");
    mg_test_resp_free(&r);
    post("/v1/responses", b, ant_late, &r);
    assert_responses_cut(&r, "responses anthropic late error");
    mg_test_resp_free(&r);
    free(b);
    /* Messages through openai chat, bedrock */
    b = msg_body("oat-x", 1, NULL);
    post("/v1/messages", b, chat_cut, &r);
    assert_messages_cut(&r, "messages oat cut");
    mg_test_resp_free(&r);
    post("/v1/messages", b, chat_err, &r);
    assert_messages_cut(&r, "messages oat error event");
    mg_test_resp_free(&r);
    free(b);
    b = msg_body("br-x", 1, NULL);
    post("/v1/messages", b, ant_cut, &r);
    assert_messages_cut(&r, "messages bedrock cut");
    mg_test_resp_free(&r);
    free(b);
}
END_TEST


/*
 * A rule may mix native and hub entries (attempts are built from the original body): a native
 * openai entry that fails before any output gives way to anthropic through the hub, and an
 * openai entry through the hub to azure's native Responses.
 */
START_TEST(failover_mixes_native_and_hub)
{
    static const struct { const char *model, *backend; } routes[] = {
        {"oa-ant", "ant2"},
        {"oat-az", "az"},
    };
    static const struct fault fs[] = {
        {"500", {"x-fake-status: 500", "x-fake-status-for: f1", NULL}, 2},
        {"empty stream", {"x-fake-for: f1", "x-fake-empty-stream: 1", NULL}, 1},
        {"error event first", {"x-fake-for: f1", "x-fake-error-event-at: 0", NULL}, 1},
    };

    for (size_t f = 0; f < MG_ARRAY_LEN(fs); f++) {
        for (size_t k = 0; k < MG_ARRAY_LEN(routes); k++) {
            for (int stream = 0; stream < 2; stream++) {
                struct mg_test_resp r;
                char *body;

                if (fs[f].stream != 2 && fs[f].stream != stream) {
                    continue;
                }
                body = resp_body(routes[k].model, stream, NULL);
                post("/v1/responses", body, fs[f].h, &r);
                ck_assert_msg(r.status == 200, "%s %s stream %d: %ld %s", fs[f].what,
                              routes[k].model, stream, r.status, r.body.data);
                ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), routes[k].backend);
                if (stream) {
                    json_t *ev = sse_events(&r);
                    ck_assert_str_eq(ev_name(ev, 0), "response.created");
                    ck_assert_str_eq(ev_name(ev, json_array_size(ev) - 1), "response.completed");
                    ck_assert_int_eq(ev_find(ev, "error"), -1);
                    json_decref(ev);
                } else {
                    json_t *j = mg_test_body_json(&r);
                    ck_assert_str_eq(jstr(j, "object"), "response");
                    ck_assert_str_eq(jstr(j, "status"), "completed");
                    ck_assert_ptr_nonnull(strstr(r.body.data, "Hello from f2"));
                    json_decref(j);
                }
                mg_test_resp_free(&r);
                free(body);
            }
        }
    }
}
END_TEST

/*
 * The only entry fails before any output: the client gets one error answer (never a stream),
 * in its API's shape: 502 upstream_unavailable for Responses, api_error for Messages.
 */
START_TEST(all_failed_before_commit)
{
    static const struct fault fs[] = {
        {"unreadable body", {"x-fake-for: f1", "x-fake-junk-body: 1", NULL}, 0},
        {"broken chunk", {"x-fake-for: f1", "x-fake-bad-chunk: 1", NULL}, 2},
        {"empty stream", {"x-fake-for: f1", "x-fake-empty-stream: 1", NULL}, 1},
        {"error event first", {"x-fake-for: f1", "x-fake-error-event-at: 0", NULL}, 1},
    };

    for (size_t f = 0; f < MG_ARRAY_LEN(fs); f++) {
        for (int stream = 0; stream < 2; stream++) {
            struct mg_test_resp r;
            char *b;

            if (fs[f].stream != 2 && fs[f].stream != stream) {
                continue;
            }
            b = resp_body("oat-x", stream, NULL);
            post("/v1/responses", b, fs[f].h, &r);
            ck_assert_msg(r.status == 502, "%s stream %d: %ld %s", fs[f].what, stream, r.status,
                          r.body.data);
            mg_test_assert_error(&r, 502, "upstream_unavailable");
            mg_test_resp_free(&r);
            free(b);
            b = msg_body("oat-x", stream, NULL);
            post("/v1/messages", b, fs[f].h, &r);
            assert_anthropic_error(&r, 502, "api_error");
            ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "application/json");
            mg_test_resp_free(&r);
            free(b);
        }
    }
}
END_TEST

/* A backend that stops sending after the commit: the idle timeout ends it like a cut. */
START_TEST(stall_after_commit)
{
    const char *h[] = {"x-fake-for: f1", "x-fake-chunks: 5", "x-fake-stall-after: 3", NULL};
    struct mg_test_resp r;
    char *b;

    b = resp_body("oat-x", 1, NULL);
    post("/v1/responses", b, h, &r);
    assert_responses_cut(&r, "responses stall");
    ck_assert_ptr_nonnull(strstr(r.body.data, "timed out"));
    mg_test_resp_free(&r);
    free(b);
    b = msg_body("oat-x", 1, NULL);
    post("/v1/messages", b, h, &r);
    assert_messages_cut(&r, "messages stall");
    mg_test_resp_free(&r);
    free(b);
}
END_TEST

/* A Response cut after its commit is not stored (only completed and incomplete ones are). */
START_TEST(cut_response_not_stored)
{
    const char *h[] = {"x-fake-for: f1", "x-fake-chunks: 5", "x-fake-cut-after: 3", NULL};
    struct mg_test_resp r;
    char path[160];
    json_t *ev;
    char *b = resp_body("oat-x", 1, ",\"store\":true");

    post("/v1/responses", b, h, &r);
    assert_responses_cut(&r, "cut");
    ev = sse_events(&r);
    snprintf(path, sizeof(path), "/v1/responses/%s",
             jstr(json_object_get(ev_data(ev, 0), "response"), "id"));
    json_decref(ev);
    mg_test_resp_free(&r);
    req_as("GET", path, NULL, K_ONE, NULL, &r);
    mg_test_assert_error(&r, 404, "response_not_found");
    mg_test_resp_free(&r);
    free(b);
}
END_TEST

/* ---- held errors ------------------------------------------------------------------------------ */

/*
 * A 400 from the backend (no fail-over for a client error) reaches a Messages client in
 * Anthropic's shape and a Responses client in OpenAI's, plain and streamed (held: before commit).
 */
START_TEST(held_backend_errors)
{
    const char *bad[] = {"x-fake-status: 400", "x-fake-error-message: bad things", NULL};
    static const char *const msg_models[] = {"oat-x", "br-x", "az-x", "oa-x"};
    static const char *const resp_models[] = {"oat-x", "ant-x", "br-x"};
    static const char *const resp_types[] = {"fake_error", "invalid_request_error",
                                             "ValidationException"};
    static const char *const resp_msgs[] = {"bad things", "", ""};
    /* every status, whether the gateway holds the answer (fail-over) or relays it as it comes */
    static const struct { int status; const char *type; int on_openai; } by_status[] = {
        {401, "authentication_error", 1},
        {403, "permission_error", 1},
        {404, "not_found_error", 1},
        {413, "request_too_large", 1},
        {422, "invalid_request_error", 1},
        {429, "rate_limit_error", 1},
        {500, "api_error", 1},
        {503, "overloaded_error", 1},
        {529, "overloaded_error", 1},
    };

    for (int stream = 0; stream < 2; stream++) {
        for (size_t i = 0; i < MG_ARRAY_LEN(msg_models); i++) {
            struct mg_test_resp r;
            char *b = msg_body(msg_models[i], stream, NULL);
            post("/v1/messages", b, bad, &r);
            ck_assert_msg(r.status == 400, "messages %s stream %d: %ld %s", msg_models[i],
                          stream, r.status, r.body.data);
            assert_anthropic_error(&r, 400, "invalid_request_error");
            /* the backend's message (bedrock's fake has its own) */
            ck_assert_ptr_nonnull(strstr(r.body.data, i == 1 ? "fake failure" : "bad things"));
            mg_test_resp_free(&r);
            free(b);
        }
        /* the last answer of a fail-over, and what bedrock refuses: Anthropic's type from the
         * status */
        for (size_t i = 0; i < MG_ARRAY_LEN(by_status); i++) {
            for (size_t m = 0; m < 2; m++) {
                const char *model = m ? "br-x" : "oat-x";
                char st[32];
                const char *h[] = {st, NULL};
                struct mg_test_resp r;
                char *b = msg_body(model, stream, NULL);
                if (m == 0 && !by_status[i].on_openai) {
                    free(b);
                    continue;
                }
                snprintf(st, sizeof(st), "x-fake-status: %d", by_status[i].status);
                post("/v1/messages", b, h, &r);
                ck_assert_msg(r.status == by_status[i].status, "%s %d: %ld %s", model,
                              by_status[i].status, r.status, r.body.data);
                assert_anthropic_error(&r, by_status[i].status, by_status[i].type);
                mg_test_resp_free(&r);
                free(b);
            }
        }
        for (size_t i = 0; i < MG_ARRAY_LEN(resp_models); i++) {
            struct mg_test_resp r;
            char *b = resp_body(resp_models[i], stream, NULL);
            post("/v1/responses", b, bad, &r);
            ck_assert_msg(r.status == 400, "responses %s stream %d: %ld %s", resp_models[i],
                          stream, r.status, r.body.data);
            /* the backend's own error type, as chat clients get it */
            assert_openai_error(&r, 400, resp_types[i], NULL);
            ck_assert_ptr_nonnull(strstr(r.body.data, resp_msgs[i]));
            mg_test_resp_free(&r);
            free(b);
        }
    }
}
END_TEST

/* ---- 400s the gateway makes ----------------------------------------------------------------- */

START_TEST(gateway_refusals)
{
    struct mg_test_resp r;
    json_t *j;

    /* Messages without max_tokens, or with a bad one: Anthropic's invalid_request_error */
    post("/v1/messages", "{\"model\":\"oat-x\",\"messages\":[{\"role\":\"user\",\"content\":"
         "\"hi\"}]}", NULL, &r);
    assert_anthropic_error(&r, 400, "invalid_request_error");
    ck_assert_ptr_nonnull(strstr(r.body.data, "max_tokens"));
    mg_test_resp_free(&r);
    post("/v1/messages", "{\"model\":\"oat-x\",\"max_tokens\":0,\"stream\":true,\"messages\":"
         "[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, &r);
    assert_anthropic_error(&r, 400, "invalid_request_error");
    mg_test_resp_free(&r);

    /* Responses: background, previous_response_id unknown */
    post("/v1/responses", "{\"model\":\"oat-x\",\"input\":\"hi\",\"background\":true}", NULL, &r);
    mg_test_assert_error(&r, 400, "unsupported_parameter");
    mg_test_resp_free(&r);
    post("/v1/responses", "{\"model\":\"ant-x\",\"input\":\"hi\",\"stream\":true,"
         "\"background\":true}", NULL, &r);
    mg_test_assert_error(&r, 400, "unsupported_parameter");
    mg_test_resp_free(&r);
    post("/v1/responses", "{\"model\":\"oat-x\",\"input\":\"hi\",\"previous_response_id\":"
         "\"resp_mg0123456789abcdef0123456789abcdef\"}", NULL, &r);
    mg_test_assert_error(&r, 400, "previous_response_not_found");
    mg_test_resp_free(&r);
    post("/v1/responses", "{\"model\":\"br-x\",\"input\":\"hi\",\"previous_response_id\":"
         "\"resp_nothing\"}", NULL, &r);
    mg_test_assert_error(&r, 400, "previous_response_not_found");
    mg_test_resp_free(&r);

    /* hosted tools are dropped and named; the function tool stays (fakeai calls it) */
    post("/v1/responses", "{\"model\":\"oat-x\",\"input\":\"hi\",\"tools\":[{\"type\":"
         "\"web_search\"},{\"type\":\"function\",\"name\":\"get_weather\",\"parameters\":"
         "{\"type\":\"object\"}}]}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-dropped-tools"), "web_search");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "output"), 0), "type"),
                     "function_call");
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "output"), 0), "name"),
                     "get_weather");
    json_decref(j);
    mg_test_resp_free(&r);
    post("/v1/responses", "{\"model\":\"ant-x\",\"input\":\"hi\",\"stream\":true,\"tools\":"
         "[{\"type\":\"web_search\"}]}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-dropped-tools"), "web_search");
    assert_response_stream(&r);
    mg_test_resp_free(&r);

    /* a tool type is the client's text: one that is no plain name is not put into the header
     * (a CR LF in it would add a header of the client's making) */
    post("/v1/responses", "{\"model\":\"ant-x\",\"input\":\"hi\",\"tools\":[{\"type\":"
         "\"web_search\\r\\nX-Evil: 1\"},{\"type\":\"file_search\"}]}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-dropped-tools"), "file_search");
    ck_assert_ptr_null(mg_test_hdr(&r, "x-evil"));
    mg_test_resp_free(&r);

    /* Anthropic-defined tools are hosted tools too: dropped and named, plain and streamed */
    post("/v1/messages", "{\"model\":\"oat-x\",\"max_tokens\":5,\"messages\":[{\"role\":"
         "\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"web_search_20250305\","
         "\"name\":\"web_search\",\"max_uses\":3}]}", NULL, &r);
    assert_message(&r, "oat-x", "Hello from f1");
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-dropped-tools"), "web_search_20250305");
    mg_test_resp_free(&r);
    post("/v1/messages", "{\"model\":\"br-x\",\"max_tokens\":5,\"stream\":true,\"messages\":"
         "[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
         "\"web_search_20250305\",\"name\":\"web_search\"}]}", NULL, &r);
    assert_message_stream(&r);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-dropped-tools"), "web_search_20250305");
    mg_test_resp_free(&r);

    /* count_tokens without an anthropic entry: 404, never an estimate */
    {
        static const char *const models[] = {"oat-x", "br-x", "az-x", "oa-x"};
        for (size_t i = 0; i < MG_ARRAY_LEN(models); i++) {
            char b[128];
            snprintf(b, sizeof(b), "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"hi\"}]}", models[i]);
            post("/v1/messages/count_tokens", b, NULL, &r);
            assert_anthropic_error(&r, 404, "not_found_error");
            mg_test_resp_free(&r);
        }
    }
}
END_TEST

/* ---- the conversation store ----------------------------------------------------------------- */

/* Sends a Response to model with store (default true) and returns its id (malloc'd). */
static char *
stored_response(const char *model, int stream)
{
    struct mg_test_resp r;
    char *b = resp_body(model, stream, NULL), *id;
    json_t *j;

    post("/v1/responses", b, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    if (stream) {
        json_t *ev = sse_events(&r);
        long i = ev_find(ev, "response.completed");
        ck_assert(i > 0);
        j = json_incref(json_object_get(ev_data(ev, (size_t)i), "response"));
        json_decref(ev);
    } else {
        j = mg_test_body_json(&r);
    }
    ck_assert_msg(json_is_true(json_object_get(j, "store")), "store: %s", r.body.data);
    id = strdup(jstr(j, "id"));
    json_decref(j);
    mg_test_resp_free(&r);
    free(b);
    return id;
}

START_TEST(store_get_delete)
{
    static const char *const models[] = {"oat-x", "ant-x", "br-x"};

    for (size_t i = 0; i < MG_ARRAY_LEN(models); i++) {
        for (int stream = 0; stream < 2; stream++) {
            char *id = stored_response(models[i], stream), path[160];
            struct mg_test_resp r;
            json_t *j;

            snprintf(path, sizeof(path), "/v1/responses/%s", id);
            req_as("GET", path, NULL, K_ONE, NULL, &r);
            ck_assert_msg(r.status == 200, "GET %s: %ld %s", id, r.status, r.body.data);
            j = mg_test_body_json(&r);
            ck_assert_str_eq(jstr(j, "id"), id);
            ck_assert_str_eq(jstr(j, "status"), "completed");
            ck_assert_str_eq(jstr(j, "model"), models[i]);
            json_decref(j);
            mg_test_resp_free(&r);
            /* continued by previous_response_id */
            {
                char b[256];
                snprintf(b, sizeof(b), "{\"model\":\"%s\",\"input\":\"more\","
                         "\"previous_response_id\":\"%s\"}", models[i], id);
                post("/v1/responses", b, NULL, &r);
                assert_response(&r, models[i], "");
                j = mg_test_body_json(&r);
                ck_assert_str_eq(jstr(j, "previous_response_id"), id);
                json_decref(j);
                mg_test_resp_free(&r);
            }
            /* its input_items are no endpoint the hub serves (400), and unknown to another key */
            {
                char items[200];
                snprintf(items, sizeof(items), "%s/input_items", path);
                req_as("GET", items, NULL, K_ONE, NULL, &r);
                mg_test_assert_error(&r, 400, "unsupported_endpoint");
                mg_test_resp_free(&r);
                req_as("GET", items, NULL, K_TWO, NULL, &r);
                mg_test_assert_error(&r, 404, "response_not_found");
                mg_test_resp_free(&r);
            }
            /* another key: not found, GET and DELETE, and not continued */
            req_as("GET", path, NULL, K_TWO, NULL, &r);
            mg_test_assert_error(&r, 404, "response_not_found");
            mg_test_resp_free(&r);
            req_as("DELETE", path, NULL, K_TWO, NULL, &r);
            mg_test_assert_error(&r, 404, "response_not_found");
            mg_test_resp_free(&r);
            {
                char b[256];
                snprintf(b, sizeof(b), "{\"model\":\"%s\",\"input\":\"more\","
                         "\"previous_response_id\":\"%s\"}", models[i], id);
                req_as("POST", "/v1/responses", b, K_TWO, NULL, &r);
                mg_test_assert_error(&r, 400, "previous_response_not_found");
                mg_test_resp_free(&r);
            }
            /* DELETE, then GET 404 */
            req_as("DELETE", path, NULL, K_ONE, NULL, &r);
            ck_assert_msg(r.status == 200, "DELETE %s: %ld %s", id, r.status, r.body.data);
            j = mg_test_body_json(&r);
            ck_assert_str_eq(jstr(j, "id"), id);
            ck_assert_str_eq(jstr(j, "object"), "response");
            ck_assert(json_is_true(json_object_get(j, "deleted")));
            json_decref(j);
            mg_test_resp_free(&r);
            req_as("GET", path, NULL, K_ONE, NULL, &r);
            mg_test_assert_error(&r, 404, "response_not_found");
            {
                char want[200];
                j = mg_test_body_json(&r);
                snprintf(want, sizeof(want), "Response with id '%s' not found.", id);
                ck_assert_str_eq(jstr(json_object_get(j, "error"), "message"), want);
                json_decref(j);
            }
            mg_test_resp_free(&r);
            free(id);
        }
    }
}
END_TEST

/* The store's entries now (Responses and native ids), from /metrics. */
static double
store_entries(void)
{
    struct mg_test_resp r;
    double n;

    mg_test_http("GET", mg_harness_url(&gwh, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_msg(r.status == 200, "/metrics: %ld", r.status);
    n = mg_test_metric(r.body.data, "modelgate_response_store_entries");
    mg_test_resp_free(&r);
    return n;
}

/* A native Response's id, plain or streamed, is recorded (one more entry each). */
START_TEST(native_id_recorded)
{
    for (int stream = 0; stream < 2; stream++) {
        char *b = resp_body("oa-x", stream, NULL);
        struct mg_test_resp r;
        double before = store_entries();

        post("/v1/responses", b, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
        mg_test_resp_free(&r);
        ck_assert_msg(store_entries() == before + 1, "stream %d: %g entries, %g before",
                      stream, store_entries(), before);
        free(b);
    }
}
END_TEST

/* A native Response's id, with key (plain or streamed). */
static char *
native_response(const char *model, int stream, const char *key)
{
    struct mg_test_resp r;
    char *b = resp_body(model, stream, NULL), *id;
    json_t *j;

    req_as("POST", "/v1/responses", b, key, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
    if (stream) {
        json_t *ev = sse_events(&r);
        ck_assert_str_eq(ev_name(ev, 0), "response.created");
        j = json_incref(json_object_get(ev_data(ev, 0), "response"));
        json_decref(ev);
    } else {
        j = mg_test_body_json(&r);
    }
    id = strdup(jstr(j, "id"));
    ck_assert_msg(strncmp(id, "resp_fake", 9) == 0, "id %s", id);
    json_decref(j);
    mg_test_resp_free(&r);
    free(b);
    return id;
}

/* A request continuing prev on model with key: its status (and body in r). */
static void
continue_native(const char *model, const char *prev, int stream, const char *key,
                struct mg_test_resp *r)
{
    char extra[256];
    char *b;

    snprintf(extra, sizeof(extra), ",\"previous_response_id\":\"%s\"", prev);
    b = resp_body(model, stream, extra);
    req_as("POST", "/v1/responses", b, key, NULL, r);
    free(b);
}

/*
 * A native previous_response_id is pinned to the backend that answered it (the rule's other
 * native backend, another fake, does not know it); another key, an unrecorded id (auth is on)
 * or a rule without that backend: 400 previous_response_not_found.
 */
START_TEST(native_id_pinned)
{
    for (int stream = 0; stream < 2; stream++) {
        char *id = native_response("oa-pin", stream, K_ONE);
        struct mg_test_resp r;

        for (int i = 0; i < 4; i++) {
            continue_native("oa-pin", id, i % 2, K_ONE, &r);
            ck_assert_msg(r.status == 200, "%s, try %d: %ld %s", id, i, r.status, r.body.data);
            if (i % 2 == 0) {
                json_t *j = mg_test_body_json(&r);
                ck_assert_str_eq(jstr(j, "previous_response_id"), id);
                json_decref(j);
            }
            mg_test_resp_free(&r);
        }
        continue_native("oa-pin", id, stream, K_TWO, &r);
        mg_test_assert_error(&r, 400, "previous_response_not_found");
        mg_test_resp_free(&r);
        free(id);
        id = native_response("oa-x", stream, K_ONE);   /* oa's */
        continue_native("oa-ant", id, stream, K_ONE, &r);   /* oa1, ant2: neither holds it */
        mg_test_assert_error(&r, 400, "previous_response_not_found");
        mg_test_resp_free(&r);
        free(id);
    }
    {
        struct mg_test_resp r;
        continue_native("oa-x", "resp_never_answered", 0, K_ONE, &r);
        mg_test_assert_error(&r, 400, "previous_response_not_found");
        ck_assert_ptr_nonnull(strstr(r.body.data, "resp_never_answered"));
        mg_test_resp_free(&r);
    }
}
END_TEST

/* The input items fake f2 got for its Response id (GET .../input_items on the fake). */
static json_t *
fake_input_items(const char *id)
{
    struct mg_test_resp r;
    char url[256];
    json_t *j, *data;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/responses/%s/input_items",
             gwh.fake_port[F2], id);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: %ld %s", url, r.status, r.body.data);
    j = mg_test_body_json(&r);
    data = json_incref(json_object_get(j, "data"));
    json_decref(j);
    mg_test_resp_free(&r);
    return data;
}

/* No item the gateway made (msg_mg..., fc_mg...) reached the backend with its id. */
static void
assert_no_own_ids(json_t *items)
{
    size_t i;
    json_t *it;

    json_array_foreach(items, i, it) {
        const char *id = jstr(it, "id");
        ck_assert_msg(strncmp(id, "msg_mg", 6) != 0 && strncmp(id, "fc_mg", 5) != 0,
                      "item %zu sent with the gateway's id %s", i, id);
    }
}

/*
 * A conversation the hub stored, continued on a native backend: the backend gets the stored
 * chain's items (ids removed) and the request's, without previous_response_id; an
 * item_reference to a stored item is replaced by it. Unknown or another key's: 400.
 */
START_TEST(own_chain_on_native)
{
    for (int stream = 0; stream < 2; stream++) {
        char *id = stored_response("oat-x", stream), b[512], msg_id[128];
        struct mg_test_resp r;
        json_t *j, *items;

        snprintf(b, sizeof(b), "{\"model\":\"oa-x\",\"input\":\"more\","
                 "\"previous_response_id\":\"%s\"}", id);
        post("/v1/responses", b, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
        j = mg_test_body_json(&r);
        ck_assert_msg(json_is_null(json_object_get(j, "previous_response_id")),
                      "previous_response_id reached the backend: %s", r.body.data);
        items = fake_input_items(jstr(j, "id"));
        json_decref(j);
        mg_test_resp_free(&r);
        ck_assert_msg(json_array_size(items) == 3, "%zu items", json_array_size(items));
        ck_assert_str_eq(jstr(json_array_get(items, 0), "role"), "user");
        ck_assert_str_eq(jstr(json_array_get(items, 1), "role"), "assistant");
        ck_assert_str_eq(jstr(json_array_get(items, 2), "role"), "user");
        ck_assert_str_eq(jstr(json_array_get(json_object_get(json_array_get(items, 2), "content"),
                                             0), "text"), "more");
        assert_no_own_ids(items);
        json_decref(items);

        /* an item_reference to the stored answer's message */
        snprintf(b, sizeof(b), "/v1/responses/%s", id);
        req_as("GET", b, NULL, K_ONE, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
        j = mg_test_body_json(&r);
        snprintf(msg_id, sizeof(msg_id), "%s",
                 jstr(json_array_get(json_object_get(j, "output"), 0), "id"));
        json_decref(j);
        mg_test_resp_free(&r);
        ck_assert_msg(strncmp(msg_id, "msg_mg", 6) == 0, "output id %s", msg_id);
        snprintf(b, sizeof(b), "{\"model\":\"oa-x\",\"input\":[{\"type\":\"item_reference\","
                 "\"id\":\"%s\"},{\"role\":\"user\",\"content\":\"and\"}]}", msg_id);
        post("/v1/responses", b, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
        j = mg_test_body_json(&r);
        items = fake_input_items(jstr(j, "id"));
        json_decref(j);
        mg_test_resp_free(&r);
        ck_assert_msg(json_array_size(items) == 2, "%zu items", json_array_size(items));
        ck_assert_str_eq(jstr(json_array_get(items, 0), "role"), "assistant");
        assert_no_own_ids(items);
        json_decref(items);
        req_as("POST", "/v1/responses", b, K_TWO, NULL, &r);   /* another key's item */
        mg_test_assert_error(&r, 400, "item_not_found");
        mg_test_resp_free(&r);

        /* another key's chain */
        snprintf(b, sizeof(b), "{\"model\":\"oa-x\",\"input\":\"more\","
                 "\"previous_response_id\":\"%s\"}", id);
        req_as("POST", "/v1/responses", b, K_TWO, NULL, &r);
        mg_test_assert_error(&r, 400, "previous_response_not_found");
        mg_test_resp_free(&r);
        free(id);
    }
}
END_TEST

/*
 * GET and DELETE of a recorded native id are passed to the backend that made it (its answers as
 * they come); another key's, or an unrecorded one (auth is on): 404 from the gateway.
 */
START_TEST(native_get_delete)
{
    for (int stream = 0; stream < 2; stream++) {
        char *id = native_response("oa-x", stream, K_ONE), path[160];
        struct mg_test_resp r;
        json_t *j;

        snprintf(path, sizeof(path), "/v1/responses/%s", id);
        req_as("GET", path, NULL, K_ONE, NULL, &r);
        ck_assert_msg(r.status == 200, "GET %s: %ld %s", id, r.status, r.body.data);
        j = mg_test_body_json(&r);
        ck_assert_str_eq(jstr(j, "id"), id);
        ck_assert_str_eq(jstr(j, "object"), "response");
        json_decref(j);
        mg_test_resp_free(&r);
        req_as("GET", path, NULL, K_TWO, NULL, &r);
        mg_test_assert_error(&r, 404, "response_not_found");
        mg_test_resp_free(&r);
        {   /* its input items: passed to the backend too (its list), for the key that made it */
            char items[200];
            snprintf(items, sizeof(items), "%s/input_items", path);
            req_as("GET", items, NULL, K_ONE, NULL, &r);
            ck_assert_msg(r.status == 200, "GET %s: %ld %s", items, r.status, r.body.data);
            j = mg_test_body_json(&r);
            ck_assert_str_eq(jstr(j, "object"), "list");
            json_decref(j);
            mg_test_resp_free(&r);
            req_as("GET", items, NULL, K_TWO, NULL, &r);
            mg_test_assert_error(&r, 404, "response_not_found");
            mg_test_resp_free(&r);
        }
        req_as("DELETE", path, NULL, K_TWO, NULL, &r);
        mg_test_assert_error(&r, 404, "response_not_found");
        mg_test_resp_free(&r);
        req_as("DELETE", path, NULL, K_ONE, NULL, &r);
        ck_assert_msg(r.status == 200, "DELETE %s: %ld %s", id, r.status, r.body.data);
        j = mg_test_body_json(&r);
        ck_assert_str_eq(jstr(j, "id"), id);
        ck_assert(json_is_true(json_object_get(j, "deleted")));
        json_decref(j);
        mg_test_resp_free(&r);
        req_as("GET", path, NULL, K_ONE, NULL, &r);   /* the backend's own 404 now */
        mg_test_assert_error(&r, 404, "response_not_found");
        mg_test_resp_free(&r);
        free(id);
    }
}
END_TEST

/* store: false is answered as asked and nothing is kept. */
START_TEST(store_false_not_kept)
{
    static const char *const models[] = {"oat-x", "ant-x", "br-x"};

    for (size_t i = 0; i < MG_ARRAY_LEN(models); i++) {
        char *b = resp_body(models[i], 0, ",\"store\":false"), path[160];
        struct mg_test_resp r;
        json_t *j;

        post("/v1/responses", b, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
        j = mg_test_body_json(&r);
        ck_assert(json_is_false(json_object_get(j, "store")));
        snprintf(path, sizeof(path), "/v1/responses/%s", jstr(j, "id"));
        json_decref(j);
        mg_test_resp_free(&r);
        req_as("GET", path, NULL, K_ONE, NULL, &r);
        mg_test_assert_error(&r, 404, "response_not_found");
        mg_test_resp_free(&r);
        free(b);
    }
}
END_TEST

/* responses_store: {size: 0}: store: true is answered store: false, and nothing is kept. */
START_TEST(store_off)
{
    static const char *const models[] = {"oat-x", "ant-x"};

    ck_assert_msg(off_started, "modelgate -t refused responses_store: {size: 0}, which turns "
                  "the store off");
    for (size_t i = 0; i < MG_ARRAY_LEN(models); i++) {
        for (int stream = 0; stream < 2; stream++) {
            char *b = resp_body(models[i], stream, ",\"store\":true"), path[160];
            struct mg_test_resp r;
            json_t *j;

            mg_test_http("POST", mg_harness_url(&offh, "/v1/responses"), b, strlen(b), NULL, &r);
            ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body.data);
            if (stream) {
                json_t *ev = sse_events(&r);
                long k = ev_find(ev, "response.completed");
                ck_assert(k > 0);
                j = json_incref(json_object_get(ev_data(ev, (size_t)k), "response"));
                json_decref(ev);
            } else {
                j = mg_test_body_json(&r);
            }
            ck_assert_msg(json_is_false(json_object_get(j, "store")), "store: %s", r.body.data);
            snprintf(path, sizeof(path), "/v1/responses/%s", jstr(j, "id"));
            json_decref(j);
            mg_test_resp_free(&r);
            mg_test_http("GET", mg_harness_url(&offh, path), NULL, 0, NULL, &r);
            mg_test_assert_error(&r, 404, "response_not_found");
            mg_test_resp_free(&r);
            free(b);
        }
    }
}
END_TEST

/* ---- usage in the access log ---------------------------------------------------------------- */

/*
 * The access log counts the answering backend's tokens (x-fake-usage: 7,11), not an estimate
 * of the re-rendered answer, for translated Responses and Messages, plain and streamed.
 */
START_TEST(usage_in_access_log)
{
    static const struct { const char *path, *model; } cases[] = {
        {"/v1/responses", "oat-x"},
        {"/v1/responses", "ant-x"},
        {"/v1/responses", "br-x"},
        {"/v1/messages", "oat-x"},
        {"/v1/messages", "br-x"},
        {"/v1/messages", "az-x"},
    };

    for (size_t i = 0; i < MG_ARRAY_LEN(cases); i++) {
        for (int stream = 0; stream < 2; stream++) {
            int resp = strcmp(cases[i].path, "/v1/responses") == 0;
            char rid[64], rid_h[96];
            const char *h[3];
            struct mg_test_resp r;
            char *b = resp ? resp_body(cases[i].model, stream, NULL)
                           : msg_body(cases[i].model, stream, NULL);
            json_t *j;

            snprintf(rid, sizeof(rid), "hub-usage-%zu-%d-%d", i, stream, (int)getpid());
            snprintf(rid_h, sizeof(rid_h), "x-request-id: %s", rid);
            h[0] = rid_h;
            h[1] = "x-fake-usage: 7,11";
            h[2] = NULL;
            post(cases[i].path, b, h, &r);
            ck_assert_msg(r.status == 200, "%s %s: %ld %s", cases[i].path, cases[i].model,
                          r.status, r.body.data);
            mg_test_resp_free(&r);
            j = access_line(rid);
            ck_assert_msg(json_integer_value(json_object_get(j, "input_tokens")) == 7 &&
                          json_integer_value(json_object_get(j, "output_tokens")) == 11,
                          "%s %s stream %d: %s", cases[i].path, cases[i].model, stream,
                          json_dumps(j, 0));
            json_decref(j);
            free(b);
        }
    }
}
END_TEST

Suite *
hub_suite(void)
{
    Suite *s = suite_create("hub");
    TCase *t = tcase_create("hub");

    tcase_add_unchecked_fixture(t, start_all, stop_all);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, failover_before_commit_openai_first);
    tcase_add_test(t, failover_before_commit_anthropic_first);
    tcase_add_test(t, failover_mixes_native_and_hub);
    tcase_add_test(t, all_failed_before_commit);
    tcase_add_test(t, cut_after_commit);
    tcase_add_test(t, stall_after_commit);
    tcase_add_test(t, cut_response_not_stored);
    tcase_add_test(t, held_backend_errors);
    tcase_add_test(t, gateway_refusals);
    tcase_add_test(t, store_get_delete);
    tcase_add_test(t, store_false_not_kept);
    tcase_add_test(t, native_id_recorded);
    tcase_add_test(t, native_id_pinned);
    tcase_add_test(t, own_chain_on_native);
    tcase_add_test(t, native_get_delete);
    tcase_add_test(t, store_off);
    tcase_add_test(t, usage_in_access_log);
    suite_add_tcase(s, t);
    return s;
}
