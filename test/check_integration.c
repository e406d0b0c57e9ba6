/*
 * Integration tests: the real build/modelgate in front of build/fakeai instances on loopback,
 * spoken to over HTTP. One gateway and its backends serve the whole suite (started in an
 * unchecked fixture); each test is a client of it. Waits are on conditions with deadlines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mg_harness.h"
#include "mg_test.h"

enum { B_A, B_B, B_F500, B_F429, B_HANG, B_DROP, B_SLOW, B_TLS, NFAKE };
static const char *const fake_names[NFAKE] = {"a", "b", "f500", "f429", "hang", "drop", "slow",
                                              "tls"};
static const char *tls_cert = "mgtest-cert.pem", *tls_key = "mgtest-key.pem";
static struct mg_harness gwh;   /* the fakes and the gateway the suite shares */
static int dead_port;

static const char *
gw(const char *path)
{
    return mg_harness_url(&gwh, path);
}

static void
start_all(void)
{
    char conf[8192];
    int i;

    /* A self-signed certificate for 127.0.0.1, trusted by the gateway through SSL_CERT_FILE. */
    ck_assert_int_eq(system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout mgtest-key.pem "
                            "-out mgtest-cert.pem 2>/dev/null"), 0);
    setenv("SSL_CERT_FILE", tls_cert, 1);
    mg_harness_init(&gwh, "mgtest-gw.log", "mgtest-fake.log");
    for (i = 0; i < NFAKE; i++) {
        char *fail500[] = {"--fail=500", NULL}, *fail429[] = {"--fail=429", NULL};
        char *hang[] = {"--hang", NULL}, *drop[] = {"--drop", NULL};
        char *tls[] = {"--tls-cert", (char *)tls_cert, "--tls-key", (char *)tls_key, NULL};
        mg_harness_fake(&gwh, fake_names[i], i == B_F500 ? fail500 : i == B_F429 ? fail429
                                           : i == B_HANG ? hang : i == B_DROP ? drop
                                           : i == B_TLS ? tls : NULL);
    }
    dead_port = mg_test_free_port();
#define U(i) gwh.fake_port[i]
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "max_body_size: 1MiB\n"
             "shutdown_timeout: 10s\n"
             "timeouts: {connect: 2s, first_byte: 10s, idle: 10s, total: 60s}\n"
             "log_level: debug\n"
             "access_log: mgtest-access.log\n"
             /* these tests steer each request to failing backends on purpose: no cooldowns */
             "health: {failures: 0}\n"
             "backends:\n"
             "  - {name: a, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - name: b\n"
             "    url: http://127.0.0.1:%d/v1/\n"
             "    api_key: sk-backend-b\n"
             "    headers: {x-backend-header: hb, x-override-me: backend}\n"
             "  - {name: f500, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: f429, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: hang, url: 'http://127.0.0.1:%d/v1', timeouts: {first_byte: 300ms}}\n"
             "  - {name: drop, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: dead, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: a-idle, url: 'http://127.0.0.1:%d/v1', timeouts: {idle: 400ms}}\n"
             "  - {name: slow, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: tls, url: 'https://127.0.0.1:%d/v1'}\n"
             "  - {name: tls-name, url: 'https://localhost:%d/v1'}\n"
             "  - {name: tls-plain, url: 'https://127.0.0.1:%d/v1'}\n"
             "rules:\n"
             "  - {models: [m-a], backends: [{backend: a}]}\n"
             "  - {models: [m-b], backends: [{backend: b}]}\n"
             "  - {models: [m-slow], backends: [{backend: slow}]}\n"
             "  - {models: [m-weighted], backends: [{backend: a, weight: 3}, {backend: b}]}\n"
             "  - {models: [m-ab], backends: [{backend: a}, {backend: b, priority: 1}]}\n"
             "  - {models: [m-chain-500], backends: [{backend: f500}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-chain-429], backends: [{backend: f429}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-chain-dead], backends: [{backend: dead}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-chain-hang], backends: [{backend: hang}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-chain-drop], backends: [{backend: drop}, {backend: a, priority: 1}]}\n"
             "  - models: [m-chain-long]\n"
             "    backends: [{backend: dead}, {backend: f500, priority: 1}, {backend: hang, priority: 2},\n"
             "               {backend: b, priority: 3}]\n"
             "  - {models: [m-all-fail], backends: [{backend: f500}, {backend: f429, priority: 1}]}\n"
             "  - {models: [m-fail-then-dead], backends: [{backend: f500}, {backend: dead, priority: 1}]}\n"
             "  - {models: [m-all-dead], backends: [{backend: dead}]}\n"
             "  - {models: [m-all-hang], backends: [{backend: hang}]}\n"
             "  - {models: [m-retries-0], retries: 0, backends: [{backend: f500}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-override], backends: [{backend: b, model: upstream-name}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-hdr], headers: {x-tenant: acme}, backends: [{backend: b}]}\n"
             "  - {models: [m-hdr], backends: [{backend: a}]}\n"
             "  - {models: ['pre-*'], backends: [{backend: b}]}\n"
             "  - {models: [m-idle], backends: [{backend: a-idle}]}\n"
             "  - {models: [m-disabled], backends: [{backend: a, weight: 0}, {backend: b}]}\n"
             "  - {models: [m-hidden], list: false, backends: [{backend: a}]}\n"
             "  - {models: [m-tls], backends: [{backend: tls}]}\n"
             "  - {models: [m-tls-name], backends: [{backend: tls-name}, {backend: a, priority: 1}]}\n"
             "  - {models: [m-tls-plain], backends: [{backend: tls-plain}, {backend: a, priority: 1}]}\n",
             gwh.gw_port, U(B_A), U(B_B), U(B_F500), U(B_F429), U(B_HANG), U(B_DROP), dead_port,
             U(B_A), U(B_SLOW), U(B_TLS), U(B_TLS), U(B_A));
#undef U
    unlink("mgtest-access.log");
    mg_harness_start(&gwh, 0, conf);
}

static void
stop_all(void)
{
    /* the certificate goes first: a gateway that does not stop cleanly ends the run */
    unlink(tls_cert);
    unlink(tls_key);
    mg_harness_stop(&gwh, "modelgate");
}

/* POSTs body to the gateway; extra is a NULL-terminated header list or NULL. */
static int
post(const char *path, const char *body, const char *const *extra, struct mg_test_resp *r)
{
    return mg_test_http("POST", gw(path), body, body ? strlen(body) : 0, extra, r);
}

static void
assert_error(struct mg_test_resp *r, long status, const char *code)
{
    mg_test_assert_error(r, status, code);
}

static long
fake_stat(int which, const char *key)
{
    return mg_test_fake_stat(gwh.fake_port[which], key);
}

/* Polls until fakeai's counter reaches want, or the deadline passes. Returns the last value. */
static long
wait_stat(int which, const char *key, long want, int timeout_ms)
{
    int64_t deadline = mg_now_ms() + (int64_t)timeout_ms * mg_test_scale();
    long v;

    while ((v = fake_stat(which, key)) < want && mg_now_ms() < deadline) {
        usleep(20000);
    }
    return v;
}

static int
raw_connect(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads until at least want bytes or the peer closes or timeout; returns bytes read. */
static size_t
raw_read(int fd, char *buf, size_t cap, size_t want, int timeout_ms)
{
    int64_t deadline = mg_now_ms() + (int64_t)timeout_ms * mg_test_scale();
    size_t got = 0;

    while (got < want && got < cap - 1 && mg_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (want == (size_t)-1 && strstr(buf, "\r\n\r\n") != NULL) {
            break;
        }
    }
    buf[got] = '\0';
    return got;
}

static void
raw_send(int fd, const char *s)
{
    ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* ---- tests ----------------------------------------------------------------------------- */

START_TEST(healthz)
{
    struct mg_test_resp r;

    mg_test_http("GET", gw("/healthz"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "{\"status\":\"ok\"}\n");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(basic_proxy)
{
    const char *mine[] = {"x-request-id: my-req-42", NULL};
    struct mg_test_resp r;
    json_t *j;
    const char *id;

    post("/v1/chat/completions", "{\"model\":\"m-a\",\"messages\":[]}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "application/json");
    id = mg_test_hdr(&r, "x-request-id");
    ck_assert_ptr_nonnull(id);
    ck_assert_uint_eq(strlen(id), 32);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "m-a");
    json_decref(j);
    mg_test_resp_free(&r);

    post("/v1/chat/completions", "{\"model\":\"m-a\"}", mine, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-request-id"), "my-req-42");
    mg_test_resp_free(&r);
}
END_TEST

/* The body arrives byte for byte; the path after /v1 and the query string are kept. */
START_TEST(byte_exact_forwarding)
{
    const char *body = "{ \"messages\":[{\"role\":\"user\",\"content\":\"caf\xc3\xa9 \\u00e9\\n\"}],\n"
                       "  \"model\" :  \"m-b\", \"temperature\": 0.70 , \"n\":1e0 }  ";
    const char *h[] = {"x-fake-echo: 1", "Authorization: Bearer client-secret",
                       "x-custom: kept", "x-override-me: client", "Content-Type: application/json",
                       "api-key: client-secret-2", NULL};
    struct mg_test_resp r;
    json_t *j, *eh;

    post("/v1/chat/completions?api-version=2024-02-01&x=%20y", body, h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "body")), body);
    ck_assert_str_eq(json_string_value(json_object_get(j, "uri")),
                     "/v1/chat/completions?api-version=2024-02-01&x=%20y");
    eh = json_object_get(j, "headers");
    /* the client's key never reaches the backend; the backend's own key does */
    ck_assert_str_eq(json_string_value(json_object_get(eh, "authorization")), "Bearer sk-backend-b");
    ck_assert_ptr_null(json_object_get(eh, "api-key"));
    ck_assert_ptr_null(strstr(r.body.data, "client-secret"));
    ck_assert_str_eq(json_string_value(json_object_get(eh, "x-backend-header")), "hb");
    ck_assert_str_eq(json_string_value(json_object_get(eh, "x-override-me")), "backend");
    ck_assert_str_eq(json_string_value(json_object_get(eh, "x-custom")), "kept");
    ck_assert_str_eq(json_string_value(json_object_get(eh, "content-type")), "application/json");
    ck_assert_ptr_nonnull(json_object_get(eh, "x-request-id"));
    ck_assert_ptr_null(json_object_get(eh, "expect"));
    ck_assert_str_eq(json_string_value(json_object_get(eh, "accept")), "*/*");   /* the client's */
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

/* Other /v1/ paths are proxied the same way; no header the client did not send is made up. */
START_TEST(any_v1_path)
{
    const char *h[] = {"x-fake-echo: 1", "Accept:", NULL};   /* "Accept:": curl sends none */
    struct mg_test_resp r;
    json_t *j;

    post("/v1/embeddings", "{\"model\":\"m-a\",\"input\":\"x\"}", h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "uri")), "/v1/embeddings");
    ck_assert_ptr_null(json_object_get(json_object_get(j, "headers"), "accept"));
    ck_assert_ptr_null(json_object_get(json_object_get(j, "headers"), "user-agent"));
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(model_override_per_attempt)
{
    const char *body = "{\"model\": \"m-override\", \"stream\":false, \"x\":[1, 2]}";
    const char *h[] = {"x-fake-echo: 1", NULL};
    const char *fail_b[] = {"x-fake-echo: 1", "x-fake-status: 503", "x-fake-status-for: b", NULL};
    struct mg_test_resp r;
    json_t *j;

    /* b's entry renames the model upstream */
    post("/v1/chat/completions", body, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "b");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "body")),
                     "{\"model\": \"upstream-name\", \"stream\":false, \"x\":[1, 2]}");
    json_decref(j);
    mg_test_resp_free(&r);
    /* b fails: the fallback a, which has no override, gets the client's bytes untouched */
    post("/v1/chat/completions", body, fail_b, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "body")), body);
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

static void
assert_chain(const char *model, const char *want_backend)
{
    char body[128];
    struct mg_test_resp r;

    snprintf(body, sizeof(body), "{\"model\":\"%s\"}", model);
    post("/v1/chat/completions", body, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: status %ld %s", model, r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), want_backend);
    ck_assert_ptr_nonnull(strstr(r.body.data, "Hello from"));
    mg_test_resp_free(&r);
}

START_TEST(fallback_on_500)      { assert_chain("m-chain-500", "a"); } END_TEST
START_TEST(fallback_on_429)      { assert_chain("m-chain-429", "a"); } END_TEST
START_TEST(fallback_on_dead_port) { assert_chain("m-chain-dead", "a"); } END_TEST
START_TEST(fallback_on_drop)     { assert_chain("m-chain-drop", "a"); } END_TEST
START_TEST(fallback_long_chain)  { assert_chain("m-chain-long", "b"); } END_TEST

START_TEST(https_backend)
{
    const char *h[] = {"x-fake-echo: 1", NULL};
    struct mg_test_resp r;
    json_t *j;

    assert_chain("m-tls", "tls");
    post("/v1/chat/completions", "{\"model\":\"m-tls\",\"stream\":true}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    mg_test_resp_free(&r);
    post("/v1/embeddings?x=1", "{\"model\":\"m-tls\"}", h, &r);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "uri")), "/v1/embeddings?x=1");
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

/* A certificate for the wrong name, or no TLS at all: a TLS error, which fails over. */
START_TEST(fallback_on_tls_error)
{
    assert_chain("m-tls-name", "a");
    assert_chain("m-tls-plain", "a");
}
END_TEST

START_TEST(fallback_on_first_byte_timeout)
{
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-chain-hang\"}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    /* the 300ms first_byte timeout of "hang" fired, not the 10s default */
    ck_assert_msg(r.t_total_ms < 3000.0 * mg_test_scale(), "took %.0f ms", r.t_total_ms);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(no_fallback_on_400)
{
    const char *h[] = {"x-fake-status: 400", NULL};
    struct mg_test_resp r;
    long before = fake_stat(B_B, "requests");

    post("/v1/chat/completions", "{\"model\":\"m-ab\"}", h, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    ck_assert_ptr_nonnull(strstr(r.body.data, "fake failure"));
    mg_test_resp_free(&r);
    ck_assert_int_eq(fake_stat(B_B, "requests"), before);
}
END_TEST

START_TEST(status_passthrough_when_final)
{
    const char *h[] = {"x-fake-status: 404", NULL};
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-a\"}", h, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(all_fail_last_response_passed_through)
{
    struct mg_test_resp r;
    json_t *j;

    post("/v1/chat/completions", "{\"model\":\"m-all-fail\"}", NULL, &r);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "f429");
    j = mg_test_body_json(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), 429);
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(all_dead_502)
{
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-all-dead\"}", NULL, &r);
    assert_error(&r, 502, "upstream_unavailable");
    ck_assert_ptr_nonnull(mg_test_hdr(&r, "x-request-id"));
    /* the message names the backend and a short reason (and counts in English) */
    ck_assert_msg(strstr(r.body.data, "(1 attempt; last: dead: connection failed)") != NULL,
                  "%s", r.body.data);
    mg_test_resp_free(&r);
    /* a backend answered 500 before the last attempt failed without an answer: the 500 it is */
    post("/v1/chat/completions", "{\"model\":\"m-fail-then-dead\"}", NULL, &r);
    ck_assert_int_eq(r.status, 500);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "f500");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(all_hang_504)
{
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-all-hang\"}", NULL, &r);
    assert_error(&r, 504, "upstream_timeout");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(retries_zero_means_one_attempt)
{
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-retries-0\"}", NULL, &r);
    ck_assert_int_eq(r.status, 500);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "f500");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(weights_within_tolerance)
{
    struct mg_test_resp r;
    int i, a = 0, n = 400;

    for (i = 0; i < n; i++) {
        post("/v1/chat/completions", "{\"model\":\"m-weighted\"}", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        a += strcmp(mg_test_hdr(&r, "x-modelgate-backend"), "a") == 0;
        mg_test_resp_free(&r);
    }
    /* 3:1 -> 300 expected; 4.5 sigma is about 39 */
    ck_assert_msg(a > 260 && a < 340, "a answered %d of %d", a, n);
}
END_TEST

START_TEST(weight_zero_never_used)
{
    struct mg_test_resp r;
    int i;

    for (i = 0; i < 20; i++) {
        post("/v1/chat/completions", "{\"model\":\"m-disabled\"}", NULL, &r);
        ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "b");
        mg_test_resp_free(&r);
    }
}
END_TEST

START_TEST(header_rules_and_prefixes)
{
    const char *acme[] = {"X-Tenant: acme", NULL};
    const char *other[] = {"x-tenant: other", NULL};
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-hdr\"}", acme, &r);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "b");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"m-hdr\"}", other, &r);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"m-hdr\"}", NULL, &r);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "a");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"pre-anything/v2\"}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "b");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"pre\"}", NULL, &r);
    assert_error(&r, 404, "model_not_found");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(request_errors)
{
    struct mg_test_resp r;
    long before = fake_stat(B_A, "requests");
    json_t *j;

    post("/v1/chat/completions", "{\"model\":", NULL, &r);
    assert_error(&r, 400, "invalid_json");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "", NULL, &r);
    assert_error(&r, 400, "invalid_json");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "[{\"model\":\"m-a\"}]", NULL, &r);
    assert_error(&r, 400, "invalid_json");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":5}", NULL, &r);
    assert_error(&r, 400, "missing_model");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"messages\":[]}", NULL, &r);
    assert_error(&r, 400, "missing_model");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"gpt-5\"}", NULL, &r);
    assert_error(&r, 404, "model_not_found");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "param")),
                     "model");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(j, "error"),
                                                                   "message")), "gpt-5"));
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/v1/chat/completions"), NULL, 0, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    ck_assert_str_eq(mg_test_hdr(&r, "allow"), "POST");
    mg_test_resp_free(&r);
    /* a stored Response's path: Allow names every method it takes */
    mg_test_http("PUT", gw("/v1/responses/resp_x"), "{}", 2, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    ck_assert_str_eq(mg_test_hdr(&r, "allow"), "GET, HEAD, POST, DELETE");
    mg_test_resp_free(&r);
    mg_test_http("DELETE", gw("/healthz"), NULL, 0, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    mg_test_resp_free(&r);
    {   /* without cors: a browser's preflight is no method of the API, and no CORS header */
        const char *pre[] = {"Origin: https://app.example.com",
                             "Access-Control-Request-Method: POST", NULL};
        mg_test_http("OPTIONS", gw("/v1/chat/completions"), NULL, 0, pre, &r);
        assert_error(&r, 405, "method_not_allowed");
        ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-origin"));
        mg_test_resp_free(&r);
    }
    mg_test_http("GET", gw("/nope"), NULL, 0, NULL, &r);
    assert_error(&r, 404, "unknown_url");
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/v1"), NULL, 0, NULL, &r);
    assert_error(&r, 404, "unknown_url");
    mg_test_resp_free(&r);
    /* dot segments, encoded slashes, backslashes and NULs never reach a backend: a backend (or
     * an nginx in front of it) decoding them would leave its base URL with its key attached */
    {
        static const char *const sneaky[] = {"/v1/../admin", "/v1/./chat/completions",
                                              "/v1/%2e%2e/admin", "/v1/chat/..", "/v1/a/.%2E/b",
                                              "/v1/%2e%2e%2fadmin", "/v1/..%2fadmin",
                                              "/v1/.%2e%2fadmin", "/v1/chat%2f..%2f..%2fadmin",
                                              "/v1/%2E%2E%2Fadmin", "/v1/..%2Fadmin",
                                              "/v1/a%5cb", "/v1/a%5C..%5Cb", "/v1/chat%00x"};
        size_t k;
        for (k = 0; k < sizeof(sneaky) / sizeof(sneaky[0]); k++) {
            char u[256];
            snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", gwh.gw_port, sneaky[k]);
            struct mg_test_resp rr;
            mg_test_http("POST", u, "{\"model\":\"m-a\"}", 15, NULL, &rr);
            ck_assert_msg(rr.status == 400, "%s answered %ld", sneaky[k], rr.status);
            ck_assert_msg(strstr(rr.body.data, "\"bad_request\"") != NULL, "%s: %s", sneaky[k],
                          rr.body.data);
            mg_test_resp_free(&rr);
        }
    }
    /* none of these reached a backend */
    ck_assert_int_eq(fake_stat(B_A, "requests"), before);
}
END_TEST

START_TEST(body_too_large_is_json_413)
{
    size_t n = 1024 * 1024 + 100;
    char *big = malloc(n + 1);
    struct mg_test_resp r;

    memset(big, ' ', n);
    memcpy(big, "{\"model\":\"m-a\",\"x\":\"", 20);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    mg_test_http("POST", gw("/v1/chat/completions"), big, n, NULL, &r);
    assert_error(&r, 413, "request_too_large");
    mg_test_resp_free(&r);
    free(big);
    /* the gateway still serves */
    assert_chain("m-a", "a");
}
END_TEST

START_TEST(malformed_request_is_json_400)
{
    char buf[4096];
    int fd = raw_connect(gwh.gw_port);

    raw_send(fd, "THIS IS NOT HTTP\r\n\r\n");
    raw_read(fd, buf, sizeof(buf), (size_t)-1, 3000);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0 || strncmp(buf, "HTTP/1.0 400", 12) == 0,
                  "got: %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "application/json"));
    ck_assert_ptr_null(strstr(buf, "<HTML>"));
}
END_TEST

static const char *stream_body = "{\"model\":\"m-a\",\"stream\":true,\"messages\":[]}";

START_TEST(stream_arrives_incrementally)
{
    const char *h[] = {"x-fake-chunks: 5", "x-fake-chunk-gap-ms: 200", NULL};
    struct mg_test_resp r;

    post("/v1/chat/completions", stream_body, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "text/event-stream");
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    /* 6 gaps of 200 ms (timers may fire a little early): the first event must come long
     * before the end (the role chunk is held until the first content, 200 ms in) */
    ck_assert_msg(r.t_total_ms >= 1100, "total %.0f ms", r.t_total_ms);
    ck_assert_msg(r.t_first_ms < r.t_total_ms - 800, "first %.0f ms of %.0f", r.t_first_ms,
                  r.t_total_ms);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(stream_identical_to_upstream)
{
    const char *h[] = {"x-fake-chunks: 20", NULL};
    struct mg_test_resp via, direct;
    char url[128];

    post("/v1/chat/completions", stream_body, h, &via);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gwh.fake_port[B_A]);
    mg_test_http("POST", url, stream_body, strlen(stream_body), h, &direct);
    ck_assert_int_eq(via.status, 200);
    ck_assert_uint_eq(via.body.len, direct.body.len);
    ck_assert_int_eq(memcmp(via.body.data, direct.body.data, via.body.len), 0);
    mg_test_resp_free(&via);
    mg_test_resp_free(&direct);
}
END_TEST

static void
abort_test(const char *body, const char *extra, size_t want_bytes)
{
    char req[1024], buf[8192];
    long before = fake_stat(B_SLOW, "aborted");
    int fd = raw_connect(gwh.gw_port);

    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "%sContent-Length: %zu\r\n\r\n%s", extra, strlen(body), body);
    raw_send(fd, req);
    if (want_bytes > 0) {
        ck_assert_uint_ge(raw_read(fd, buf, sizeof(buf), want_bytes, 5000), want_bytes);
        ck_assert_ptr_nonnull(strstr(buf, "200 OK"));
    } else {
        /* wait until the backend has the request, then leave */
        ck_assert_int_ge(wait_stat(B_SLOW, "active", 1, 5000), 1);
    }
    close(fd);
    ck_assert_int_eq(wait_stat(B_SLOW, "aborted", before + 1, 3000), before + 1);
}

START_TEST(client_abort_mid_stream)
{
    abort_test("{\"model\":\"m-slow\",\"stream\":true}",
               "x-fake-chunks: 100\r\nx-fake-chunk-gap-ms: 100\r\n", 200);
}
END_TEST

START_TEST(client_abort_while_waiting)
{
    abort_test("{\"model\":\"m-slow\"}", "x-fake-delay-ms: 20000\r\n", 0);
}
END_TEST

START_TEST(idle_timeout_before_first_token)
{
    const char *h[] = {"x-fake-chunks: 3", "x-fake-chunk-gap-ms: 1500", NULL};
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-idle\",\"stream\":true}", h, &r);
    /* the role chunk came, then silence past idle before any token: nothing was committed, so
     * the attempt failed like any timeout (the only backend: 504) */
    assert_error(&r, 504, "upstream_timeout");
    mg_test_resp_free(&r);
}
END_TEST

/* A client that does not read: the gateway pauses the backend instead of buffering it all. */
START_TEST(backpressure_bounded_memory)
{
    const char *body = "{\"model\":\"m-a\",\"stream\":true}";
    char req[512], status_path[64], line[256];
    static char buf[1 << 16];
    size_t total = 0;
    long rss_kb = 0;
    FILE *f;
    int fd;

    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-fake-chunks: 400\r\n"
             "x-fake-content-bytes: 65536\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    fd = raw_connect(gwh.gw_port);
    raw_send(fd, req);
    usleep(1500000);   /* 26 MB offered; the client reads nothing for a while */
    snprintf(status_path, sizeof(status_path), "/proc/%d/status", (int)gwh.gw_pid);
    f = fopen(status_path, "r");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            rss_kb = strtol(line + 6, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    ck_assert_msg(rss_kb > 0 && rss_kb < 48 * 1024 * mg_test_scale(), "gateway RSS %ld KiB", rss_kb);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000 * mg_test_scale()) <= 0) {
            break;
        }
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0) {
            break;
        }
        total += (size_t)n;
        buf[n] = '\0';
        if (strstr(buf, "0\r\n\r\n") != NULL && strstr(buf, "[DONE]") != NULL) {
            break;
        }
    }
    close(fd);
    ck_assert_msg(total > 400u * 65536, "only %zu bytes arrived", total);
}
END_TEST

static size_t
discard(char *d, size_t s, size_t n, void *arg)
{
    return s * n;
}

/* 200 clients at once, each answered by the backend after 100 ms. */
START_TEST(concurrent_clients)
{
    enum { N = 200 };
    CURLM *m = curl_multi_init();
    CURL *e[N];
    struct curl_slist *h = curl_slist_append(NULL, "x-fake-delay-ms: 100");
    int i, running = 1, ok = 0;
    CURLMsg *msg;
    int left;

    for (i = 0; i < N; i++) {
        e[i] = curl_easy_init();
        MG_TEST_SETOPT(e[i], CURLOPT_URL, gw("/v1/chat/completions"));
        MG_TEST_SETOPT(e[i], CURLOPT_POSTFIELDS, "{\"model\":\"m-a\"}");
        MG_TEST_SETOPT(e[i], CURLOPT_HTTPHEADER, h);
        MG_TEST_SETOPT(e[i], CURLOPT_WRITEFUNCTION, discard);
        MG_TEST_SETOPT(e[i], CURLOPT_TIMEOUT_MS, 20000L * mg_test_scale());
        curl_multi_add_handle(m, e[i]);
    }
    while (running) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        long st = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
        ok += msg->data.result == CURLE_OK && st == 200;
    }
    for (i = 0; i < N; i++) {
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    ck_assert_int_eq(ok, N);
}
END_TEST

START_TEST(models_list)
{
    struct mg_test_resp r;
    json_t *j, *data;

    mg_test_http("GET", gw("/v1/models"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "list");
    data = json_object_get(j, "data");
    ck_assert(json_is_array(data));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 0), "id")), "m-a");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 0), "owned_by")),
                     "modelgate");
    /* m-hdr is in two rules but listed once; the prefix pattern is not listed */
    ck_assert_ptr_null(strstr(r.body.data, "pre-*"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"m-hdr\""));
    ck_assert_ptr_null(strstr(strstr(r.body.data, "\"m-hdr\"") + 1, "\"m-hdr\""));
    ck_assert_ptr_null(strstr(r.body.data, "m-hidden"));
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/v1/models/m-b"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "m-b");
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "model");
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/v1/models/nope"), NULL, 0, NULL, &r);
    assert_error(&r, 404, "model_not_found");
    mg_test_resp_free(&r);
    /* a hidden model is not listed, not found by id, but still routed */
    mg_test_http("GET", gw("/v1/models/m-hidden"), NULL, 0, NULL, &r);
    assert_error(&r, 404, "model_not_found");
    mg_test_resp_free(&r);
    assert_chain("m-hidden", "a");
}
END_TEST

/* `modelgate -t` checks a file: 0 and "FILE: ok", or 1 and file:line:col lines. */
START_TEST(config_check_flag)
{
    char cmd[512], out[4096];
    const char *bad = mg_test_write_temp(1, "workers: x\nbogus: 1\n");
    FILE *p;
    size_t n;
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/modelgate -t -c %s 2>&1", mg_test_build_dir(), gwh.conf_path);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    rc = pclose(p);
    ck_assert_int_eq(WEXITSTATUS(rc), 0);
    ck_assert_ptr_nonnull(strstr(out, ": ok"));
    snprintf(cmd, sizeof(cmd), "%s/modelgate -t -c %s 2>&1", mg_test_build_dir(), bad);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    rc = pclose(p);
    unlink(bad);
    ck_assert_int_eq(WEXITSTATUS(rc), 1);
    snprintf(cmd, sizeof(cmd), "%s:1:10:", bad);
    ck_assert_ptr_nonnull(strstr(out, cmd));
    snprintf(cmd, sizeof(cmd), "%s:2:1:", bad);
    ck_assert_ptr_nonnull(strstr(out, cmd));
}
END_TEST

/*
 * `modelgate -t` refuses a file whose strings that reach requests hold control characters: an
 * anthropic_version with CR LF would send an extra header ("X-Evil: 1") on every request.
 */
START_TEST(config_check_refuses_control_characters)
{
    char cmd[512], out[4096], want[300];
    const char *bad = mg_test_write_temp(2,
        "backends:\n"
        "  - name: claude\n"
        "    schema: anthropic\n"
        "    url: https://api.anthropic.com\n"
        "    api_key: k\n"
        "    anthropic_version: \"2023-06-01\\r\\nX-Evil: 1\"\n"
        "  - {name: br, schema: bedrock, region: \"eu-west-1\\n\", aws_access_key_id: AK,"
        " aws_secret_access_key: SK}\n"
        "  - {name: az, schema: azure, url: 'https://x', api_key: k, api_version: \"v\\r\"}\n"
        "rules: [{models: [m], backends: [{backend: claude}]}]\n");
    FILE *p;
    size_t n;
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/modelgate -t -c %s 2>&1", mg_test_build_dir(), bad);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    rc = pclose(p);
    unlink(bad);
    ck_assert_msg(WEXITSTATUS(rc) == 1, "exit %d: %s", WEXITSTATUS(rc), out);
    snprintf(want, sizeof(want), "%s:6:24: value holds a control character", bad);
    ck_assert_msg(strstr(out, want) != NULL, "want \"%s\" in: %s", want, out);
    snprintf(want, sizeof(want), "%s:7:41: value holds a control character", bad);
    ck_assert_msg(strstr(out, want) != NULL, "want \"%s\" in: %s", want, out);
    snprintf(want, sizeof(want), "%s:8:74: value holds a control character", bad);
    ck_assert_msg(strstr(out, want) != NULL, "want \"%s\" in: %s", want, out);
}
END_TEST

/* ---- usage, metrics, access log -------------------------------------------------------- */

/* The value of one series in a /metrics text ("name{labels}"), or -1 when it is absent. */
static char *
scrape(void)
{
    struct mg_test_resp r;
    char *text;

    mg_test_http("GET", gw("/metrics"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(mg_test_hdr(&r, "content-type"), "text/plain"));
    text = strdup(r.body.data);
    mg_test_resp_free(&r);
    return text;
}

static double
metric_now(const char *series)
{
    char *t = scrape();
    double v = mg_test_metric(t, series);
    free(t);
    return v < 0 ? 0 : v;
}

/*
 * How much series grew since base, once it has grown by want or after 5 s (scaled): a client can
 * have its whole answer before the worker that sent it has counted it (it counts at the end).
 */
static int
metric_grew(const char *series, double base, int want)
{
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();
    double v;

    while ((int)((v = metric_now(series)) - base) < want && mg_now_ms() < deadline) {
        usleep(10000);
    }
    return (int)(v - base);
}

#define TOK_IN  "modelgate_tokens_total{model=\"m-b\",backend=\"b\",type=\"input\"}"
#define TOK_OUT "modelgate_tokens_total{model=\"m-b\",backend=\"b\",type=\"output\"}"

START_TEST(usage_counted_plain)
{
    const char *h[] = {"x-fake-usage: 7,11", NULL};
    double in0 = metric_now(TOK_IN), out0 = metric_now(TOK_OUT);
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"m-b\"}", h, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    ck_assert_int_eq(metric_grew(TOK_IN, in0, 7), 7);
    ck_assert_int_eq(metric_grew(TOK_OUT, out0, 11), 11);
}
END_TEST

/* Client stream vs. the same request sent straight to the backend: byte for byte. */
static void
assert_stream_as_direct(const char *body, const char *const *h, const char *direct_body)
{
    struct mg_test_resp via, direct;
    char url[128];

    post("/v1/chat/completions", body, h, &via);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gwh.fake_port[B_B]);
    mg_test_http("POST", url, direct_body, strlen(direct_body), h, &direct);
    ck_assert_int_eq(via.status, 200);
    ck_assert_msg(via.body.len == direct.body.len &&
                  memcmp(via.body.data, direct.body.data, via.body.len) == 0,
                  "via gateway:\n%s\ndirect:\n%s", via.body.data, direct.body.data);
    mg_test_resp_free(&via);
    mg_test_resp_free(&direct);
}

START_TEST(usage_stream_hidden_and_counted)
{
    const char *h[] = {"x-fake-usage: 3,4", "x-fake-split: 1", "x-fake-chunks: 6", NULL};
    const char *body = "{\"model\":\"m-b\",\"stream\":true}";
    double in0 = metric_now(TOK_IN), out0 = metric_now(TOK_OUT);

    /* the client did not ask for usage: it gets the stream without it, though the gateway
     * asked the backend for it (events split across reads on the way) */
    assert_stream_as_direct(body, h, body);
    ck_assert_int_eq(metric_grew(TOK_IN, in0, 3), 3);
    ck_assert_int_eq(metric_grew(TOK_OUT, out0, 4), 4);
}
END_TEST

START_TEST(usage_stream_requested_passes_through)
{
    const char *h[] = {"x-fake-usage: 5,6", "x-fake-split: 1", NULL};
    const char *body = "{\"model\":\"m-b\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    double in0 = metric_now(TOK_IN), out0 = metric_now(TOK_OUT);
    struct mg_test_resp r;

    assert_stream_as_direct(body, h, body);
    ck_assert_int_eq(metric_grew(TOK_IN, in0, 5), 5);
    ck_assert_int_eq(metric_grew(TOK_OUT, out0, 6), 6);
    post("/v1/chat/completions", body, h, &r);
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"choices\":[],\"usage\":{\"prompt_tokens\":5"));
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(metrics_format_and_counts)
{
    static const char *const names[] = {
        "modelgate_requests_total", "modelgate_request_duration_seconds",
        "modelgate_time_to_first_token_seconds", "modelgate_tokens_total",
        "modelgate_backend_attempts_total", "modelgate_inflight_requests",
        "modelgate_config_reloads_total"};
    const char *ok = "modelgate_requests_total{model=\"m-a\",backend=\"a\",code=\"200\"}";
    const char *nf = "modelgate_requests_total{model=\"\",backend=\"\",code=\"404\"}";
    const char *att = "modelgate_backend_attempts_total{backend=\"f500\",result=\"http_500\"}";
    double ok0 = metric_now(ok), nf0 = metric_now(nf), att0 = metric_now(att);
    double count0 = metric_now("modelgate_request_duration_seconds_count");
    struct mg_test_resp r;
    char *text, *line, *save = NULL, help[128];
    size_t i;
    int k;

    for (k = 0; k < 5; k++) {
        post("/v1/chat/completions", "{\"model\":\"m-a\"}", NULL, &r);
        mg_test_resp_free(&r);
    }
    post("/v1/chat/completions", "{\"model\":\"no-such-model\"}", NULL, &r);
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"m-chain-500\"}", NULL, &r);
    mg_test_resp_free(&r);
    {   /* the error log says which backend answered what, as docs/operations.md shows */
        int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();
        char *log = NULL;
        size_t n;
        while (mg_now_ms() < deadline) {
            free(log);
            log = mg_test_slurp("mgtest-gw.log", &n);
            if (log != NULL && strstr(log, "answered 500 (error answer)") != NULL) {
                break;
            }
            usleep(10000);
        }
        ck_assert_msg(log != NULL && strstr(log, "answered 500 (error answer)") != NULL,
                      "no fail-over line in the error log");
        free(log);
    }
    /* the counts are the workers' own, made once an answer is sent: wait for them */
    metric_grew(ok, ok0, 5);
    metric_grew(nf, nf0, 1);
    metric_grew(att, att0, 2);
    text = scrape();
    ck_assert_int_eq((int)(mg_test_metric(text, ok) - ok0), 5);
    ck_assert_int_eq((int)(mg_test_metric(text, nf) - nf0), 1);
    /* f500 is tried twice: the same-backend retry of a 500, then the move to a */
    ck_assert_int_eq((int)(mg_test_metric(text, att) - att0), 2);
    ck_assert_int_ge((int)(mg_test_metric(text, "modelgate_request_duration_seconds_count") - count0), 7);
    ck_assert(mg_test_metric(text, "modelgate_request_duration_seconds_bucket{le=\"+Inf\"}") ==
              mg_test_metric(text, "modelgate_request_duration_seconds_count"));
    ck_assert(mg_test_metric(text, "modelgate_inflight_requests") >= 1);   /* the scrape itself */
    ck_assert(mg_test_metric(text, "modelgate_config_reloads_total{result=\"ok\"}") >= 0);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(help, sizeof(help), "# TYPE %s ", names[i]);
        ck_assert_msg(strstr(text, help) != NULL, "no %s", help);
    }
    /* every sample line: name, optional {labels}, one space, a number */
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp, *end;
        if (line[0] == '#') {
            continue;
        }
        sp = strrchr(line, ' ');
        ck_assert_msg(sp != NULL && sp > line, "bad line: %s", line);
        strtod(sp + 1, &end);
        ck_assert_msg(*end == '\0' && end > sp + 1, "bad value: %s", line);
        /* ours, and OpenTelemetry's GenAI histograms under the conventions' names */
        ck_assert_msg(strncmp(line, "modelgate_", 10) == 0 || strncmp(line, "gen_ai_", 7) == 0,
                      "bad name: %s", line);
    }
    free(text);
}
END_TEST

/* Sends one request on a raw socket with a tiny receive window, reads `after` bytes, leaves. */
static void
abort_after(const char *body, const char *extra, size_t after)
{
    char req[1024], buf[65536];
    int rcv = 4096, fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;

    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)), 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)gwh.gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s"
                               "Content-Length: %zu\r\n\r\n%s", extra, strlen(body), body);
    raw_send(fd, req);
    if (after > 0) {
        raw_read(fd, buf, sizeof(buf), after, 3000);
    } else {
        usleep(100000);
    }
    close(fd);
}

/* Clients that leave at any stage never leave a request counted as in flight. */
START_TEST(inflight_back_to_zero_after_aborts)
{
    int64_t deadline;
    double v = -1;
    int i;

    for (i = 0; i < 3; i++) {
        abort_after("{\"model\":\"m-a\"}", "x-fake-delay-ms: 2000\r\n", 0);
        abort_after("{\"model\":\"m-a\",\"stream\":true}",
                    "x-fake-chunks: 50\r\nx-fake-chunk-gap-ms: 50\r\n", 300);
        abort_after("{\"model\":\"m-a\"}", "x-fake-content-bytes: 4000000\r\n", 1000);
        abort_after("{\"model\":\"m-a\"}", "x-fake-content-bytes: 200000\r\n", 100);
        abort_after("{\"model\":\"m-a\"}", "x-fake-content-bytes: 60000\r\n", 10);
    }
    /* the scrape itself is the only request left */
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    while (mg_now_ms() < deadline && (v = metric_now("modelgate_inflight_requests")) != 1) {
        usleep(20000);
    }
    ck_assert_msg(v == 1, "inflight stuck at %.0f", v);
}
END_TEST

/* Waits until the access log holds a line with needle; returns that line parsed. */
static json_t *
access_line(const char *needle)
{
    static char buf[1 << 20];
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (mg_now_ms() < deadline) {
        FILE *f = fopen("mgtest-access.log", "r");
        char *line, *save = NULL;
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_error_t e;
            json_t *j = json_loads(line, 0, &e);
            ck_assert_msg(j != NULL, "access log line is not JSON: %s", line);
            if (strstr(line, needle) != NULL) {
                return j;
            }
            json_decref(j);
        }
        usleep(20000);
    }
    ck_abort_msg("no access log line with %s", needle);
    return NULL;
}

START_TEST(access_log_lines)
{
    const char *h1[] = {"x-request-id: acc-chain-1", "x-fake-usage: 2,3",
                        "Authorization: Bearer client-secret", NULL};
    const char *h2[] = {"x-request-id: acc-stream-1", NULL};
    struct mg_test_resp r;
    json_t *j, *b;

    post("/v1/chat/completions?q=1", "{\"model\":\"m-chain-500\"}", h1, &r);
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"m-b\",\"stream\":true}", h2, &r);
    mg_test_resp_free(&r);
    j = access_line("acc-chain-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "m-chain-500");
    ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/chat/completions");
    ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
    b = json_object_get(j, "backends");
    ck_assert_int_eq(json_array_size(b), 3);   /* f500, its same-backend retry, then a */
    ck_assert_str_eq(json_string_value(json_array_get(b, 0)), "f500");
    ck_assert_str_eq(json_string_value(json_array_get(b, 1)), "f500");
    ck_assert_str_eq(json_string_value(json_array_get(b, 2)), "a");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "output_tokens")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "bytes_in")), 23);
    ck_assert_int_gt(json_integer_value(json_object_get(j, "bytes_out")), 100);
    ck_assert(json_is_number(json_object_get(j, "duration_ms")));
    ck_assert(json_is_number(json_object_get(j, "ttfb_ms")));
    ck_assert(json_is_integer(json_object_get(j, "rule")));
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "client")), "127.0.0.1:"));
    ck_assert_ptr_nonnull(json_object_get(j, "time"));
    json_decref(j);
    j = access_line("acc-stream-1");
    ck_assert(json_is_true(json_object_get(j, "stream")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 10);
    json_decref(j);
}
END_TEST

/* The error log and the access log: no backend or client key was ever written. */
START_TEST(keys_not_logged)
{
    static char buf[1 << 20];
    const char *files[] = {gwh.gw_log, "mgtest-access.log"};
    size_t n, i;

    json_decref(access_line("acc-chain-1"));   /* the access log has been written */
    for (i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        ck_assert_ptr_nonnull(f);
        while ((n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
            buf[n] = '\0';
            ck_assert_ptr_null(strstr(buf, "sk-backend-b"));
            ck_assert_ptr_null(strstr(buf, "client-secret"));
        }
        fclose(f);
    }
}
END_TEST

/* ---- a second gateway with admin_listen ------------------------------------------------ */

static int admin_gw_port, admin_port;
static pid_t admin_pid;
static const char *admin_conf;

static void
start_admin(void)
{
    char conf[1024], bin[256];
    char *argv[] = {bin, "-c", NULL, NULL};

    admin_gw_port = mg_test_free_port();
    admin_port = mg_test_free_port();
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nadmin_listen: 127.0.0.1:%d\nworkers: 1\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m-a], backends: [{backend: a}]}]\n",
             admin_gw_port, admin_port, gwh.fake_port[B_A] ? gwh.fake_port[B_A] : 1);
    admin_conf = mg_test_write_temp(2, conf);
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    argv[2] = (char *)admin_conf;
    admin_pid = mg_test_spawn(argv, "mgtest-admin.log");
    ck_assert_int_eq(mg_test_wait_port(admin_gw_port, 10000), 0);
    ck_assert_int_eq(mg_test_wait_port(admin_port, 10000), 0);
}

static void
stop_admin(void)
{
    mg_test_stop(admin_pid, 10000);
    unlink(admin_conf);
}

START_TEST(admin_listen_moves_healthz)
{
    struct mg_test_resp r;
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", admin_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "{\"status\":\"ok\"}\n");
    mg_test_resp_free(&r);
    /* "to that address alone": not on listen any more */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", admin_gw_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    assert_error(&r, 404, "unknown_url");
    mg_test_resp_free(&r);
    /* and the admin address serves nothing else */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/models", admin_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    assert_error(&r, 404, "unknown_url");
    mg_test_resp_free(&r);
}
END_TEST

/* ---- request-body checks, behind a key whose allow-list holds one model ------------------ */

#define K_CHEAP "sk-cheap-only-0123456789"
#define K_ALL   "sk-every-model-0123456789"

static struct mg_harness bch;   /* one fake and a gateway with client keys */

static void
start_body_checks(void)
{
    char conf[1024];

    mg_harness_init(&bch, "mgtest-bc-gw.log", "mgtest-bc-fake.log");
    mg_harness_fake(&bch, "bc", NULL);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 1\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [cheap-model, expensive-model], backends: [{backend: a}]}]\n"
             "auth:\n  keys:\n"
             "    - {name: cheap, key: " K_CHEAP ", models: [cheap-model]}\n"
             "    - {name: all, key: " K_ALL "}\n",
             bch.gw_port, bch.fake_port[0]);
    mg_harness_start(&bch, 6, conf);
}

static void
stop_body_checks(void)
{
    mg_harness_stop(&bch, "modelgate (body checks)");
}

/* POSTs body to path on the body-check gateway with key; the answer is in r. */
static void
bc_post(const char *path, const char *key, const char *body, struct mg_test_resp *r)
{
    char url[256], auth[128];
    const char *h[] = {auth, NULL};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", bch.gw_port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    mg_test_http("POST", url, body, strlen(body), h, r);
}

/* The answer is an OpenAI-shaped 400 with this code and param (NULL: JSON null). */
static void
assert_400(struct mg_test_resp *r, const char *code, const char *param, const char *body)
{
    json_t *j, *err;

    ck_assert_msg(r->status == 400, "%s: status %ld: %s", body, r->status, r->body.data);
    mg_test_assert_error(r, 400, code);
    j = mg_test_body_json(r);
    err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    if (param == NULL) {
        ck_assert_msg(json_is_null(json_object_get(err, "param")), "%s: %s", body, r->body.data);
    } else {
        ck_assert_msg(json_is_string(json_object_get(err, "param")) &&
                      strcmp(json_string_value(json_object_get(err, "param")), param) == 0,
                      "%s: param, want %s: %s", body, param, r->body.data);
    }
    json_decref(j);
}

/* Each body to path with key is a 400 code/param, and none of them reaches the backend. */
static void
assert_all_refused(const char *path, const char *key, const char *const *bodies, size_t n,
                   const char *code, const char *param)
{
    long before = mg_test_fake_stat(bch.fake_port[0], "requests");
    struct mg_test_resp r;
    size_t i;

    for (i = 0; i < n; i++) {
        bc_post(path, key, bodies[i], &r);
        assert_400(&r, code, param, bodies[i]);
        mg_test_resp_free(&r);
    }
    ck_assert_int_eq(mg_test_fake_stat(bch.fake_port[0], "requests"), before);
}

/* Each body to path with key is answered by the backend (200). */
static void
assert_all_served(const char *path, const char *key, const char *const *bodies, size_t n)
{
    long before = mg_test_fake_stat(bch.fake_port[0], "requests");
    struct mg_test_resp r;
    size_t i;

    for (i = 0; i < n; i++) {
        bc_post(path, key, bodies[i], &r);
        ck_assert_msg(r.status == 200, "%s: status %ld: %s", bodies[i], r.status, r.body.data);
        mg_test_resp_free(&r);
    }
    ck_assert_int_eq(mg_test_fake_stat(bch.fake_port[0], "requests"), before + (long)n);
}

/*
 * Issue 19, H2: a backend that matches JSON keys ignoring case (Go's encoding/json) or keeps the
 * first of duplicate keys must never read another model than the one the allow-list checked.
 */
START_TEST(body_model_smuggling_refused)
{
    static const char *const smuggled[] = {
        "{\"model\":\"cheap-model\",\"Model\":\"expensive-model\",\"messages\":[]}",
        "{\"Model\":\"expensive-model\",\"model\":\"cheap-model\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"\\u004dodel\":\"expensive-model\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"MODEL\":\"expensive-model\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"model\":\"expensive-model\",\"messages\":[]}",
        "{\"model\":\"expensive-model\",\"model\":\"cheap-model\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"mod\\u0065l\":\"expensive-model\",\"messages\":[]}",
        /* stream spelt another way would make the backend stream what the gateway reads whole */
        "{\"model\":\"cheap-model\",\"Stream\":true,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"\\u017ftream\":true,\"messages\":[]}",
        /* any top-level name, twice */
        "{\"model\":\"cheap-model\",\"messages\":[],\"messages\":[]}",
    };
    static const char *const fine[] = {
        /* names are compared decoded: this IS model, and an allowed one */
        "{\"mod\\u0065l\":\"cheap-model\",\"messages\":[]}",
        /* nested objects are the backend's business */
        "{\"model\":\"cheap-model\",\"metadata\":{\"Model\":\"x\",\"model\":\"y\"},"
        "\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"models\":[],\"Modell\":1,\"streams\":1,\"messages\":[]}",
    };
    struct mg_test_resp r;

    assert_all_refused("/v1/chat/completions", K_CHEAP, smuggled, MG_ARRAY_LEN(smuggled),
                       "invalid_json", NULL);
    /* the same for a key that may use both: the backend must read what the gateway read */
    assert_all_refused("/v1/chat/completions", K_ALL, smuggled, 2, "invalid_json", NULL);
    assert_all_served("/v1/chat/completions", K_CHEAP, fine, MG_ARRAY_LEN(fine));
    bc_post("/v1/chat/completions", K_CHEAP, "{\"mod\\u0065l\":\"expensive-model\"}", &r);
    mg_test_assert_error(&r, 404, "model_not_found");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(body_stream_must_be_boolean)
{
    static const char *const bad[] = {
        "{\"model\":\"cheap-model\",\"stream\":1,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"stream\":\"true\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"stream\":0,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"stream\":{},\"messages\":[]}",
        "{\"stream\":[true],\"model\":\"cheap-model\",\"messages\":[]}",
    };
    static const char *const fine[] = {
        "{\"model\":\"cheap-model\",\"stream\":null,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"stream\":false,\"messages\":[]}",
    };
    struct mg_test_resp r;
    json_t *j;

    assert_all_refused("/v1/chat/completions", K_CHEAP, bad, MG_ARRAY_LEN(bad), "invalid_value",
                       "stream");
    assert_all_served("/v1/chat/completions", K_CHEAP, fine, MG_ARRAY_LEN(fine));
    /* on /v1/messages the same refusal takes Anthropic's shape */
    bc_post("/v1/messages", K_CHEAP, bad[0], &r);
    ck_assert_int_eq(r.status, 400);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "invalid_request_error");
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(body_token_limits_checked)
{
    static const char *const bad[] = {
        "{\"model\":\"cheap-model\",\"max_tokens\":1e400,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":1.5,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":\"10\",\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":-1,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":0,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":1e3,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":2147483648,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":99999999999999999999999,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":true,\"messages\":[]}",
    };
    static const char *const bad_completion[] = {
        "{\"model\":\"cheap-model\",\"max_completion_tokens\":-0,\"messages\":[]}",
    };
    static const char *const bad_output[] = {
        "{\"model\":\"cheap-model\",\"max_output_tokens\":\"5\",\"input\":\"hi\"}",
    };
    static const char *const fine[] = {
        "{\"model\":\"cheap-model\",\"max_tokens\":null,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":1,\"messages\":[]}",
        "{\"model\":\"cheap-model\",\"max_tokens\":2147483647,\"max_completion_tokens\":16,"
        "\"messages\":[]}",
    };

    assert_all_refused("/v1/chat/completions", K_CHEAP, bad, MG_ARRAY_LEN(bad), "invalid_value",
                       "max_tokens");
    assert_all_refused("/v1/chat/completions", K_CHEAP, bad_completion, 1, "invalid_value",
                       "max_completion_tokens");
    assert_all_refused("/v1/responses", K_CHEAP, bad_output, 1, "invalid_value",
                       "max_output_tokens");
    assert_all_served("/v1/chat/completions", K_CHEAP, fine, MG_ARRAY_LEN(fine));
}
END_TEST

Suite *
integration_suite(void)
{
    Suite *s = suite_create("integration");
    TCase *t = tcase_create("proxy");

    tcase_add_unchecked_fixture(t, start_all, stop_all);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, healthz);
    tcase_add_test(t, basic_proxy);
    tcase_add_test(t, byte_exact_forwarding);
    tcase_add_test(t, any_v1_path);
    tcase_add_test(t, model_override_per_attempt);
    tcase_add_test(t, fallback_on_500);
    tcase_add_test(t, fallback_on_429);
    tcase_add_test(t, fallback_on_dead_port);
    tcase_add_test(t, fallback_on_drop);
    tcase_add_test(t, fallback_on_first_byte_timeout);
    tcase_add_test(t, https_backend);
    tcase_add_test(t, fallback_on_tls_error);
    tcase_add_test(t, fallback_long_chain);
    tcase_add_test(t, no_fallback_on_400);
    tcase_add_test(t, status_passthrough_when_final);
    tcase_add_test(t, all_fail_last_response_passed_through);
    tcase_add_test(t, all_dead_502);
    tcase_add_test(t, all_hang_504);
    tcase_add_test(t, retries_zero_means_one_attempt);
    tcase_add_test(t, weights_within_tolerance);
    tcase_add_test(t, weight_zero_never_used);
    tcase_add_test(t, header_rules_and_prefixes);
    tcase_add_test(t, request_errors);
    tcase_add_test(t, body_too_large_is_json_413);
    tcase_add_test(t, malformed_request_is_json_400);
    tcase_add_test(t, stream_arrives_incrementally);
    tcase_add_test(t, stream_identical_to_upstream);
    tcase_add_test(t, client_abort_mid_stream);
    tcase_add_test(t, client_abort_while_waiting);
    tcase_add_test(t, idle_timeout_before_first_token);
    tcase_add_test(t, backpressure_bounded_memory);
    tcase_add_test(t, concurrent_clients);
    tcase_add_test(t, models_list);
    tcase_add_test(t, config_check_flag);
    tcase_add_test(t, config_check_refuses_control_characters);
    tcase_add_test(t, usage_counted_plain);
    tcase_add_test(t, usage_stream_hidden_and_counted);
    tcase_add_test(t, usage_stream_requested_passes_through);
    tcase_add_test(t, metrics_format_and_counts);
    tcase_add_test(t, access_log_lines);
    tcase_add_test(t, inflight_back_to_zero_after_aborts);
    tcase_add_test(t, keys_not_logged);
    suite_add_tcase(s, t);

    t = tcase_create("body_checks");
    tcase_add_unchecked_fixture(t, start_body_checks, stop_body_checks);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, body_model_smuggling_refused);
    tcase_add_test(t, body_stream_must_be_boolean);
    tcase_add_test(t, body_token_limits_checked);
    suite_add_tcase(s, t);

    t = tcase_create("admin");
    tcase_add_unchecked_fixture(t, start_admin, stop_admin);
    tcase_add_test(t, admin_listen_moves_healthz);
    suite_add_tcase(s, t);
    return s;
}
