/*
 * build/fakeai's native Responses API and the SDK scripts that run against it.
 *
 * One fakeai on loopback, no gateway: POST /v1/responses (a Response, the native event stream,
 * tool calls decided from the request, the fault headers), GET/DELETE /v1/responses/{id}, the
 * 400s it answers as OpenAI does, Anthropic's tool decision and model list, then the official
 * SDKs (test/node/sdk_responses.mjs, test/node/sdk_messages.mjs) against it, when node is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_test.h"

static int   fk_port;
static pid_t fk_pid;
static char  fk_url[128];

static void
fk_start(void)
{
    char bin[512], port[16];
    char *argv[] = {bin, "--port", port, "--name", "fk", NULL};

    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    fk_port = mg_test_free_port();
    snprintf(port, sizeof(port), "%d", fk_port);
    fk_pid = mg_test_spawn(argv, "mgtest-fakeai.log");
    if (mg_test_wait_port(fk_port, 10000 * mg_test_scale()) != 0) {
        fprintf(stderr, "fakeai suite: build/fakeai did not start (mgtest-fakeai.log)\n");
        exit(1);
    }
}

static void
fk_stop(void)
{
    mg_test_stop(fk_pid, 5000);
}

static const char *
url(const char *path)
{
    snprintf(fk_url, sizeof(fk_url), "http://127.0.0.1:%d%s", fk_port, path);
    return fk_url;
}

static json_t *
post_json(const char *path, const char *body, const char *const *hdrs, long status)
{
    struct mg_test_resp r;
    json_t *j;

    mg_test_http("POST", url(path), body, strlen(body), hdrs, &r);
    ck_assert_msg(r.status == status, "%s: status %ld, want %ld: %.*s", path, r.status, status,
                  (int)r.body.len, r.body.data);
    j = mg_test_body_json(&r);
    mg_test_resp_free(&r);
    return j;
}

static const char *
str(json_t *j, const char *path)
{
    char buf[256], *save = NULL, *key;

    snprintf(buf, sizeof(buf), "%s", path);
    for (key = strtok_r(buf, ".", &save); key != NULL && j != NULL;
         key = strtok_r(NULL, ".", &save)) {
        j = (key[0] >= '0' && key[0] <= '9') ? json_array_get(j, strtoul(key, NULL, 10))
                                              : json_object_get(j, key);
    }
    return json_string_value(j) ? json_string_value(j) : "(absent)";
}

static void
assert_openai_400(const char *body, const char *param, const char *code)
{
    json_t *j = post_json("/v1/responses", body, NULL, 400);

    ck_assert_str_eq(str(j, "error.type"), "invalid_request_error");
    if (param != NULL) {
        ck_assert_str_eq(str(j, "error.param"), param);
        ck_assert_str_eq(str(j, "error.code"), code);
    }
    json_decref(j);
}

/* A stream's events: names[i] and data[i] (parsed), up to 64. Returns how many. */
struct events {
    int     n;
    char    name[64][64];
    json_t *data[64];
};

static void
events_parse(struct events *ev, const char *p, size_t len)
{
    const char *end = p + len;

    memset(ev, 0, sizeof(*ev));
    while (p < end && ev->n < 64) {
        const char *stop = strstr(p, "\n\n"), *d;
        if (stop == NULL) {
            break;
        }
        ck_assert_msg(strncmp(p, "event: ", 7) == 0, "not an event: %.40s", p);
        d = strstr(p, "\ndata: ");
        ck_assert_msg(d != NULL && d < stop, "an event without data: %.60s", p);
        snprintf(ev->name[ev->n], sizeof(ev->name[0]), "%.*s", (int)(d - p - 7), p + 7);
        ev->data[ev->n] = json_loadb(d + 7, (size_t)(stop - d - 7), 0, NULL);
        ck_assert_msg(ev->data[ev->n] != NULL, "data is not JSON: %.60s", d + 7);
        ev->n++;
        p = stop + 2;
    }
}

static void
events_free(struct events *ev)
{
    int i;

    for (i = 0; i < ev->n; i++) {
        json_decref(ev->data[i]);
    }
}

static void
stream(const char *body, const char *const *hdrs, struct events *ev, struct mg_test_resp *r)
{
    mg_test_http("POST", url("/v1/responses"), body, strlen(body), hdrs, r);
    events_parse(ev, r->body.data ? r->body.data : "", r->body.len);
}

/* Every event: data.type is the event's name and sequence_number counts from 0. */
static void
assert_sequence(const struct events *ev, const char *const *names, int n)
{
    int i;

    ck_assert_int_eq(ev->n, n);
    for (i = 0; i < n; i++) {
        ck_assert_str_eq(ev->name[i], names[i]);
        ck_assert_str_eq(str(ev->data[i], "type"), names[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(ev->data[i], "sequence_number")), i);
    }
}

START_TEST(responses_plain_and_stored)
{
    json_t *j, *g;
    struct mg_test_resp r;
    char path[128], id[64];

    j = post_json("/v1/responses", "{\"model\":\"gpt-x\",\"input\":\"hi\",\"instructions\":\"be"
                  " brief\",\"metadata\":{\"k\":\"v\"}}", NULL, 200);
    ck_assert_str_eq(str(j, "object"), "response");
    ck_assert_str_eq(str(j, "status"), "completed");
    ck_assert_str_eq(str(j, "model"), "gpt-x");
    ck_assert_str_eq(str(j, "instructions"), "be brief");
    ck_assert_str_eq(str(j, "metadata.k"), "v");
    ck_assert_str_eq(str(j, "output.0.type"), "message");
    ck_assert_str_eq(str(j, "output.0.role"), "assistant");
    ck_assert_str_eq(str(j, "output.0.status"), "completed");
    ck_assert_str_eq(str(j, "output.0.content.0.type"), "output_text");
    ck_assert_str_eq(str(j, "output.0.content.0.text"), "Hello from fk");
    ck_assert_str_eq(str(j, "tool_choice"), "auto");
    ck_assert_str_eq(str(j, "text.format.type"), "text");
    ck_assert(json_is_null(json_object_get(j, "previous_response_id")));
    ck_assert(json_is_array(json_object_get(json_array_get(json_object_get(j, "output"), 0),
                                            "content")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "input_tokens")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "output_tokens")), 20);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                        "total_tokens")), 30);
    snprintf(id, sizeof(id), "%s", str(j, "id"));
    ck_assert(strncmp(id, "resp_", 5) == 0);

    snprintf(path, sizeof(path), "/v1/responses/%s", id);
    mg_test_http("GET", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    g = mg_test_body_json(&r);
    ck_assert(json_equal(g, j));
    json_decref(g);
    mg_test_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/responses/%s/input_items", id);
    mg_test_http("GET", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    g = mg_test_body_json(&r);
    ck_assert_str_eq(str(g, "object"), "list");
    ck_assert_str_eq(str(g, "data.0.role"), "user");
    ck_assert_str_eq(str(g, "data.0.content.0.text"), "hi");
    ck_assert(json_is_false(json_object_get(g, "has_more")));
    json_decref(g);
    mg_test_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/responses/%s", id);
    mg_test_http("DELETE", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    g = mg_test_body_json(&r);
    ck_assert_str_eq(str(g, "id"), id);
    ck_assert_str_eq(str(g, "object"), "response");
    ck_assert(json_is_true(json_object_get(g, "deleted")));
    json_decref(g);
    mg_test_resp_free(&r);
    mg_test_http("GET", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    mg_test_http("DELETE", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    json_decref(j);

    /* "store": false: answered, not kept */
    j = post_json("/v1/responses", "{\"model\":\"gpt-x\",\"input\":\"hi\",\"store\":false}", NULL,
                  200);
    ck_assert(json_is_false(json_object_get(j, "store")));
    snprintf(path, sizeof(path), "/v1/responses/%s", str(j, "id"));
    mg_test_http("GET", url(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    json_decref(j);
}
END_TEST

START_TEST(responses_stream_events)
{
    static const char *const names[] = {
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    };
    struct mg_test_resp r;
    struct events ev;
    json_t *done;
    char text[64] = "";
    int i;

    stream("{\"model\":\"gpt-x\",\"input\":\"hi\",\"stream\":true}", NULL, &ev, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strncmp(mg_test_hdr(&r, "content-type"), "text/event-stream", 17) == 0);
    assert_sequence(&ev, names, 11);
    ck_assert_str_eq(str(ev.data[0], "response.status"), "in_progress");
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(ev.data[0], "response"),
                                                     "output")), 0);
    ck_assert(json_is_null(json_object_get(json_object_get(ev.data[0], "response"), "usage")));
    ck_assert_str_eq(str(ev.data[2], "item.status"), "in_progress");
    ck_assert_str_eq(str(ev.data[3], "part.text"), "");
    for (i = 4; i < 7; i++) {
        ck_assert_str_eq(str(ev.data[i], "item_id"), str(ev.data[2], "item.id"));
        strncat(text, str(ev.data[i], "delta"), sizeof(text) - strlen(text) - 1);
    }
    ck_assert_str_eq(text, "tok0 tok1 tok2 ");
    ck_assert_str_eq(str(ev.data[7], "text"), text);
    ck_assert_str_eq(str(ev.data[8], "part.text"), text);
    ck_assert_str_eq(str(ev.data[9], "item.content.0.text"), text);
    ck_assert_str_eq(str(ev.data[9], "item.status"), "completed");
    done = json_object_get(ev.data[10], "response");
    ck_assert_str_eq(str(done, "status"), "completed");
    ck_assert_str_eq(str(done, "output.0.content.0.text"), text);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(done, "usage"),
                                                        "total_tokens")), 30);
    ck_assert_str_eq(str(done, "id"), str(ev.data[0], "response.id"));
    ck_assert(strstr(r.body.data, "[DONE]") == NULL);
    events_free(&ev);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(responses_tool_round_trip)
{
    static const char *const names[] = {
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed",
    };
    static const char tools[] = "\"tools\":[{\"type\":\"function\",\"name\":\"get_weather\","
                                "\"parameters\":{\"type\":\"object\"}}]";
    struct mg_test_resp r;
    struct events ev;
    json_t *j, *args;
    char body[1024], args_s[128] = "";
    int i;

    snprintf(body, sizeof(body), "{\"model\":\"gpt-x\",\"input\":\"weather?\",%s}", tools);
    j = post_json("/v1/responses", body, NULL, 200);
    ck_assert_int_eq(json_array_size(json_object_get(j, "output")), 1);
    ck_assert_str_eq(str(j, "output.0.type"), "function_call");
    ck_assert_str_eq(str(j, "output.0.name"), "get_weather");
    ck_assert_str_eq(str(j, "output.0.status"), "completed");
    args = json_loads(str(j, "output.0.arguments"), 0, NULL);
    ck_assert_str_eq(str(args, "location"), "Paris");
    json_decref(args);

    /* the tool's result comes back: text, and the previous Response is named */
    snprintf(body, sizeof(body), "{\"model\":\"gpt-x\",\"previous_response_id\":\"%s\",\"input\":"
             "[{\"type\":\"function_call_output\",\"call_id\":\"%s\",\"output\":\"18C\"}],%s}",
             str(j, "id"), str(j, "output.0.call_id"), tools);
    json_decref(j);
    j = post_json("/v1/responses", body, NULL, 200);
    ck_assert_str_eq(str(j, "output.0.type"), "message");
    ck_assert_str_eq(str(j, "output.0.content.0.text"), "Hello from fk");
    ck_assert(strncmp(str(j, "previous_response_id"), "resp_", 5) == 0);
    json_decref(j);

    /* tool_choice "none": text */
    snprintf(body, sizeof(body), "{\"model\":\"gpt-x\",\"input\":\"x\",\"tool_choice\":\"none\","
             "%s}", tools);
    j = post_json("/v1/responses", body, NULL, 200);
    ck_assert_str_eq(str(j, "output.0.type"), "message");
    json_decref(j);

    /* streamed */
    snprintf(body, sizeof(body), "{\"model\":\"gpt-x\",\"input\":\"w?\",\"stream\":true,%s}",
             tools);
    stream(body, NULL, &ev, &r);
    assert_sequence(&ev, names, 9);
    ck_assert_str_eq(str(ev.data[2], "item.type"), "function_call");
    ck_assert_str_eq(str(ev.data[2], "item.arguments"), "");
    for (i = 3; i < 6; i++) {
        strncat(args_s, str(ev.data[i], "delta"), sizeof(args_s) - strlen(args_s) - 1);
    }
    ck_assert_str_eq(str(ev.data[6], "arguments"), args_s);
    ck_assert_str_eq(str(ev.data[7], "item.arguments"), args_s);
    ck_assert_str_eq(str(ev.data[8], "response.output.0.arguments"), args_s);
    events_free(&ev);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(responses_bad_requests)
{
    struct mg_test_resp r;
    json_t *j;

    assert_openai_400("{not json", NULL, NULL);
    assert_openai_400("[1]", NULL, NULL);
    assert_openai_400("{\"input\":\"x\"}", "model", "missing_required_parameter");
    assert_openai_400("{\"model\":\"m\",\"input\":5}", "input", "invalid_type");
    assert_openai_400("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_nope\"}",
                      "previous_response_id", "previous_response_not_found");
    mg_test_http("GET", url("/v1/responses/resp_nope"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(str(j, "error.code"), "response_not_found");
    ck_assert_str_eq(str(j, "error.message"), "Response with id 'resp_nope' not found.");
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", url("/v1/responses/resp_fake1/other"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(responses_faults)
{
    static const char body[] = "{\"model\":\"gpt-x\",\"input\":\"hi\",\"stream\":true}";
    static const char *const err_at[] = {"x-fake-error-event-at: 3", NULL};
    static const char *const no_finish[] = {"x-fake-no-finish: 1", NULL};
    static const char *const cut[] = {"x-fake-cut-after: 2", NULL};
    static const char *const whole[] = {"x-fake-sse-length: 1", NULL};
    static const char *const split[] = {"x-fake-split: 1", "x-fake-chunks: 5", NULL};
    static const char *const fail[] = {"x-fake-status: 429", NULL};
    static const char *const plain_cut[] = {"x-fake-cut-after: 0", NULL};
    struct mg_test_resp r;
    struct events ev;
    json_t *j;

    stream(body, err_at, &ev, &r);
    ck_assert_int_eq(ev.n, 4);
    ck_assert_str_eq(ev.name[3], "error");
    ck_assert_str_eq(str(ev.data[3], "type"), "error");
    ck_assert_int_eq(json_integer_value(json_object_get(ev.data[3], "sequence_number")), 3);
    events_free(&ev);
    mg_test_resp_free(&r);

    stream(body, no_finish, &ev, &r);
    ck_assert_int_eq(r.curl_rc, 0);
    ck_assert_int_eq(ev.n, 7);
    ck_assert_str_eq(ev.name[6], "response.output_text.delta");
    events_free(&ev);
    mg_test_resp_free(&r);

    stream(body, cut, &ev, &r);
    ck_assert_int_ne(r.curl_rc, 0);
    ck_assert_int_eq(ev.n, 2);
    events_free(&ev);
    mg_test_resp_free(&r);

    stream(body, whole, &ev, &r);
    ck_assert_ptr_nonnull(mg_test_hdr(&r, "content-length"));
    ck_assert_int_eq(ev.n, 11);
    events_free(&ev);
    mg_test_resp_free(&r);

    stream(body, split, &ev, &r);
    ck_assert_int_eq(ev.n, 13);
    ck_assert_str_eq(ev.name[12], "response.completed");
    events_free(&ev);
    mg_test_resp_free(&r);

    j = post_json("/v1/responses", body, fail, 429);
    ck_assert_ptr_nonnull(json_object_get(j, "error"));
    json_decref(j);

    mg_test_http("POST", url("/v1/responses"), "{\"model\":\"m\",\"input\":\"x\"}", 25, plain_cut,
                 &r);
    ck_assert_int_ne(r.curl_rc, 0);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(responses_on_azure_paths_and_stamped)
{
    static const char *const azure[] = {"api-key: k", NULL};
    static const char *const stamp[] = {"x-fake-stamp: 1", NULL};
    static const char body[] = "{\"model\":\"gpt-x\",\"input\":\"hi\"}";
    static const char *const paths[] = {
        "/openai/responses?api-version=2025-04-01-preview", "/openai/v1/responses",
        "/openai/deployments/d1/responses?api-version=2025-04-01-preview",
    };
    struct mg_test_resp r;
    struct events ev;
    json_t *j;
    char path[256];
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        j = post_json(paths[i], body, azure, 200);
        ck_assert_str_eq(str(j, "object"), "response");
        snprintf(path, sizeof(path), "/openai/v1/responses/%s", str(j, "id"));
        mg_test_http("GET", url(path), NULL, 0, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        mg_test_resp_free(&r);
        json_decref(j);
    }
    /* a deployment's name that only starts like it is no Responses path */
    j = post_json("/openai/deployments/responses-1/chat/completions?api-version=1", body, azure,
                  200);
    ck_assert_str_eq(str(j, "object"), "chat.completion");
    json_decref(j);

    stream("{\"model\":\"gpt-x\",\"input\":\"hi\",\"stream\":true}", stamp, &ev, &r);
    ck_assert_int_eq(ev.n, 11);
    ck_assert(strncmp(str(ev.data[4], "delta"), "ts:", 3) == 0);
    ck_assert(strncmp(str(ev.data[6], "delta"), "ts:", 3) == 0);
    events_free(&ev);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(anthropic_tool_decided_and_models)
{
    static const char *const h[] = {"x-api-key: k", "anthropic-version: 2023-06-01", NULL};
    static const char tools[] = "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":"
                                "{\"type\":\"object\"}}]";
    struct mg_test_resp r;
    json_t *j;
    char body[1024];

    snprintf(body, sizeof(body), "{\"model\":\"c\",\"max_tokens\":9,%s,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"w?\"}]}", tools);
    j = post_json("/v1/messages", body, h, 200);
    ck_assert_str_eq(str(j, "stop_reason"), "tool_use");
    ck_assert_str_eq(str(j, "content.1.type"), "tool_use");
    json_decref(j);
    snprintf(body, sizeof(body), "{\"model\":\"c\",\"max_tokens\":9,%s,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
             "\"tool_use\",\"id\":\"toolu_fake1\",\"name\":\"get_weather\",\"input\":{}}]},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
             "\"toolu_fake1\",\"content\":\"18C\"}]}]}", tools);
    j = post_json("/v1/messages", body, h, 200);
    ck_assert_str_eq(str(j, "stop_reason"), "end_turn");
    ck_assert_int_eq(json_array_size(json_object_get(j, "content")), 1);
    ck_assert_str_eq(str(j, "content.0.type"), "text");
    json_decref(j);

    mg_test_http("GET", url("/v1/models"), NULL, 0, h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(str(j, "data.0.type"), "model");
    ck_assert(json_is_false(json_object_get(j, "has_more")));
    ck_assert_str_eq(str(j, "first_id"), str(j, "data.0.id"));
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", url("/v1/models"), NULL, 0, NULL, &r);   /* OpenAI's, as before */
    j = mg_test_body_json(&r);
    ck_assert_str_eq(str(j, "object"), "list");
    ck_assert_str_eq(str(j, "data.0.object"), "model");
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(node_sdk_scripts_against_fakeai)
{
    char cmd[512];

    if (system("command -v node >/dev/null 2>&1") != 0 ||
        access("test/node/node_modules/openai/package.json", F_OK) != 0 ||
        access("test/node/node_modules/@anthropic-ai/sdk/package.json", F_OK) != 0) {
        mg_test_skip("fakeai: node_sdk_scripts_against_fakeai: node, openai or @anthropic-ai/sdk "
                     "is missing (make node-sdk installs them)");
        return;
    }
    snprintf(cmd, sizeof(cmd), "node test/node/sdk_responses.mjs http://127.0.0.1:%d/v1 gpt-x "
             ">mgtest-fakeai-responses.log 2>&1", fk_port);
    ck_assert_msg(system(cmd) == 0, "sdk_responses.mjs failed (mgtest-fakeai-responses.log)");
    snprintf(cmd, sizeof(cmd), "node test/node/sdk_messages.mjs http://127.0.0.1:%d claude-x "
             ">mgtest-fakeai-messages.log 2>&1", fk_port);
    ck_assert_msg(system(cmd) == 0, "sdk_messages.mjs failed (mgtest-fakeai-messages.log)");
}
END_TEST

Suite *fakeai_suite(void);

Suite *
fakeai_suite(void)
{
    Suite *s = suite_create("fakeai");
    TCase *t = tcase_create("native");

    tcase_add_unchecked_fixture(t, fk_start, fk_stop);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, responses_plain_and_stored);
    tcase_add_test(t, responses_stream_events);
    tcase_add_test(t, responses_tool_round_trip);
    tcase_add_test(t, responses_bad_requests);
    tcase_add_test(t, responses_faults);
    tcase_add_test(t, responses_on_azure_paths_and_stamped);
    tcase_add_test(t, anthropic_tool_decided_and_models);
    tcase_add_test(t, node_sdk_scripts_against_fakeai);
    suite_add_tcase(s, t);
    return s;
}
