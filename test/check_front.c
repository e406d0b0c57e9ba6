/*
 * Front-end suite: what a hostile client or a broken backend can send, over raw sockets and
 * HTTP on loopback, against the real build/modelgate in front of build/fakeai. One test per
 * finding of the "strict HTTP at both edges" probe: each answer must be a clean JSON error (or
 * a clean relay), no backend may see what the client was refused for, and nothing may hang.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_test.h"

static int fa_port, fp_port, gw_port, dead_port;
static pid_t fa_pid, fp_pid, gw_pid;
static const char *conf_path, *gw_log = "mgtest-front-gw.log";

static const char *
config(int port)
{
    static char conf[2048];

    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 1\n"
             "header_timeout: 2s\n"
             "max_body_size: 1MiB\n"
             "access_log: off\n"
             "log_level: info\n"
             "health: {failures: 0}\n"
             "overhead_header: true\n"
             "backends:\n"
             "  - {name: a, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: viaproxy, url: 'http://127.0.0.1:%d/v1', proxy: 'http://127.0.0.1:%d'}\n"
             "  - {name: direct, url: 'http://127.0.0.1:%d/v1', proxy: none}\n"
             "rules:\n"
             "  - {models: [m-a], backends: [{backend: a}]}\n"
             "  - {models: [m-proxy], backends: [{backend: viaproxy}]}\n"
             "  - {models: [m-direct], backends: [{backend: direct}]}\n",
             port, fa_port, dead_port, fp_port, fa_port);
    return conf;
}

static pid_t
spawn_gateway(const char *conf, int port, const char *log)
{
    char bin[256];
    pid_t pid;

    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    {
        char *argv[] = {bin, "-c", (char *)conf, NULL};
        pid = mg_test_spawn(argv, log);
    }
    ck_assert_msg(mg_test_wait_port(port, 10000) == 0, "modelgate did not start");
    return pid;
}

static void
start_front(void)
{
    char bin[256], pa[16], pp[16];

    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    fa_port = mg_test_free_port();
    fp_port = mg_test_free_port();
    dead_port = mg_test_free_port();
    snprintf(pa, sizeof(pa), "%d", fa_port);
    snprintf(pp, sizeof(pp), "%d", fp_port);
    {
        char *a[] = {bin, "--port", pa, "--name", "fa", NULL};
        char *p[] = {bin, "--port", pp, "--name", "fp", NULL};
        fa_pid = mg_test_spawn(a, "mgtest-front-fake.log");
        fp_pid = mg_test_spawn(p, "mgtest-front-fake.log");
    }
    ck_assert(mg_test_wait_port(fa_port, 5000) == 0 && mg_test_wait_port(fp_port, 5000) == 0);
    gw_port = mg_test_free_port();
    conf_path = mg_test_write_temp(3, config(gw_port));
    unlink(gw_log);
    gw_pid = spawn_gateway(conf_path, gw_port, gw_log);
}

static void
stop_front(void)
{
    int rc = mg_test_stop(gw_pid, 15000);

    mg_test_stop(fa_pid, 5000);
    mg_test_stop(fp_pid, 5000);
    unlink(conf_path);
    if (rc != 0) {
        fprintf(stderr, "modelgate exited with %d (see %s)\n", rc, gw_log);
        exit(1);
    }
}

/* Sends raw bytes; returns what came back (caller frees) and whether the server closed. */
static char *
raw(const char *req, size_t len, int timeout_ms, int *closed)
{
    struct mg_buf out;
    int c;

    mg_buf_init(&out, 1 << 22);
    mg_buf_add(&out, "", 0);
    c = mg_test_raw(gw_port, req, len, timeout_ms, &out);
    if (closed != NULL) {
        *closed = c;
    }
    return out.data;
}

/* A raw request is refused with status and code, the connection closed, no backend reached. */
static void
refused(const char *req, size_t len, const char *status_line, const char *code)
{
    long before = mg_test_fake_stat(fa_port, "requests");
    char want[64];
    int closed;
    char *got = raw(req, len, 3000, &closed);

    ck_assert_msg(strncmp(got, status_line, strlen(status_line)) == 0, "sent %.60s\ngot %s", req,
                  got);
    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    ck_assert_msg(strstr(got, want) != NULL, "no %s in %s", want, got);
    ck_assert_ptr_nonnull(strstr(got, "Content-Type: application/json"));
    ck_assert_msg(closed, "the connection stayed open after: %.60s", req);
    ck_assert_int_eq(mg_test_fake_stat(fa_port, "requests"), before);
    free(got);
}

#define BODY "{\"model\":\"m-a\"}"

/* Rows 2 and 3: header names, lengths, Host, encodings. */
START_TEST(malformed_heads_refused)
{
    static const char *const heads[] = {
        "Authorization : Bearer x\r\n",         /* a space before the colon */
        "Transfer-Encoding\t: chunked\r\n",
        "Host : evil\r\n",
        "Content-Length: 15\r\nContent-Length: 16\r\n",
        "Content-Length: +15\r\n",
        "Content-Length: 15\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
        "X-Ok: fine\r\nX\x01: ctl\r\n",
    };
    char req[512];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(heads); i++) {
        int n = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         "%s%s\r\n%s", heads[i],
                         strstr(heads[i], "Content-Length") ? "" : "Content-Length: 15\r\n",
                         BODY);
        refused(req, (size_t)n, "HTTP/1.1 400", "bad_request");
    }
    /* HTTP/1.1 without Host; 1.0 without Host is fine */
    {
        const char *no_host = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 15\r\n\r\n"
                              BODY;
        const char *old = "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: 15\r\n\r\n" BODY;
        char *got;
        refused(no_host, strlen(no_host), "HTTP/1.1 400", "bad_request");
        got = raw(old, strlen(old), 3000, NULL);
        ck_assert_msg(strncmp(got, "HTTP/1.0 200", 12) == 0 || strncmp(got, "HTTP/1.1 200", 12) == 0,
                      "%s", got);
        free(got);
    }
}
END_TEST

/* Row 4: a declared body over max_body_size is answered at once, without reading it. */
START_TEST(oversized_declared_body_413_at_once)
{
    const char *req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 99999999999\r\n\r\n{\"model\":";
    int64_t t0 = mg_now_ms();
    int closed;
    char *got = raw(req, strlen(req), 5000, &closed);

    ck_assert_msg(strncmp(got, "HTTP/1.1 413", 12) == 0, "%s", got);
    ck_assert_ptr_nonnull(strstr(got, "\"code\":\"request_too_large\""));
    ck_assert(closed);
    /* the close follows the 1 s linger at the latest, not the 99 GB body */
    ck_assert_msg(mg_now_ms() - t0 < 2500 * mg_test_scale(), "took %lld ms",
                  (long long)(mg_now_ms() - t0));
    free(got);
}
END_TEST

/* Row 5: a target with bytes outside printable ASCII never reaches a backend. */
START_TEST(bad_target_bytes_refused)
{
    static const char *const targets[] = {"/v1/chat/compl\x01tions", "/v1/chat/compl\x7ftions",
                                          "/v1/chat/\x1b[31m"};
    char req[256];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(targets); i++) {
        int n = snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 15"
                         "\r\n\r\n" BODY, targets[i]);
        refused(req, (size_t)n, "HTTP/1.1 400", "bad_request");
    }
}
END_TEST

/* Row 6: HEAD answers carry headers only, so a pipelined answer after it stays readable. */
START_TEST(head_answers_headers_only)
{
    /* HEAD is allowed wherever GET is: a stored Response's id too (unknown here: its 404) */
    static const char *const paths[] = {"/healthz", "/v1/models", "/metrics",
                                        "/v1/responses/resp_mg0123456789abcdef0123456789abcdef"};
    static const char *const status[] = {"HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200",
                                         "HTTP/1.1 404"};
    char req[512];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(paths); i++) {
        int n = snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n"
                         "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", paths[i]);
        char *got = raw(req, (size_t)n, 3000, NULL), *second, *blank;
        ck_assert_msg(strncmp(got, status[i], 12) == 0, "HEAD %s: %s", paths[i], got);
        ck_assert_ptr_nonnull(strstr(got, "Content-Length: "));
        blank = strstr(got, "\r\n\r\n");
        ck_assert_ptr_nonnull(blank);
        second = blank + 4;   /* right after the HEAD answer's head: the next answer */
        ck_assert_msg(strncmp(second, "HTTP/1.1 200", 12) == 0, "after HEAD %s: %s", paths[i],
                      second);
        ck_assert_ptr_nonnull(strstr(second, "{\"status\":\"ok\"}"));
        free(got);
    }
}
END_TEST

static json_t *
echo(const char *const *headers, struct mg_test_resp *r)
{
    char url[128];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", url, BODY, strlen(BODY), headers, r);
    ck_assert_int_eq(r->status, 200);
    return mg_test_body_json(r);
}

/* Row 7: headers named in Connection are hop-by-hop, both ways. */
START_TEST(connection_named_headers_not_relayed)
{
    const char *h[] = {"x-fake-echo: 1", "Connection: keep-alive, X-Foo", "X-Foo: 1",
                       "X-Other: kept", NULL};
    const char *back[] = {"x-fake-resp-connection: 1", NULL};
    struct mg_test_resp r;
    json_t *j = echo(h, &r), *hd = json_object_get(j, "headers");
    char buf[64];

    ck_assert_ptr_null(json_object_get(hd, "x-foo"));
    ck_assert_str_eq(json_string_value(json_object_get(hd, "x-other")), "kept");
    json_decref(j);
    mg_test_resp_free(&r);
    json_decref(echo(back, &r));
    ck_assert_ptr_null(mg_test_header(&r, "x-bar", buf, sizeof(buf)));   /* named by the backend */
    ck_assert_str_eq(mg_test_header(&r, "x-baz", buf, sizeof(buf)), "2");
    mg_test_resp_free(&r);
}
END_TEST

/* Row 8: one request id upstream, printable ASCII of at most 128 bytes; logs escaped. */
START_TEST(request_ids_bounded_and_single)
{
    char longid[220], hdr_long[240], buf[256];
    const char *esc[] = {"x-fake-echo: 1", "x-request-id: a\x1b[31mred", NULL};
    const char *good[] = {"x-fake-echo: 1", "x-request-id: req-42", NULL};
    const char *lng[] = {"x-fake-echo: 1", hdr_long, NULL};
    const char *const *cases[] = {lng, esc};
    struct mg_test_resp r;
    json_t *j;
    size_t i;
    FILE *f;
    int c, saw_esc = 0;

    memset(longid, 'a', 200);
    longid[200] = '\0';
    snprintf(hdr_long, sizeof(hdr_long), "x-request-id: %s", longid);
    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        const char *got;
        j = echo(cases[i], &r);
        got = mg_test_header(&r, "x-request-id", buf, sizeof(buf));
        ck_assert_uint_eq(strlen(got), 32);   /* refused: a generated id instead */
        /* the backend saw exactly that one id */
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "headers"),
                                                           "x-request-id")), got);
        json_decref(j);
        mg_test_resp_free(&r);
    }
    j = echo(good, &r);
    ck_assert_str_eq(mg_test_header(&r, "x-request-id", buf, sizeof(buf)), "req-42");
    json_decref(j);
    mg_test_resp_free(&r);
    f = fopen(gw_log, "r");
    while (f != NULL && (c = fgetc(f)) != EOF) {
        saw_esc |= c == 0x1b;
    }
    if (f != NULL) {
        fclose(f);
    }
    ck_assert_msg(!saw_esc, "a raw ESC reached the error log");
}
END_TEST

/* Row 9: the whole header block within header_timeout (2 s here), however slowly it drips. */
START_TEST(slow_header_block_closed)
{
    struct mg_buf out;
    int64_t t0 = mg_now_ms();
    int fd, closed = 0, i;
    char ch;

    mg_buf_init(&out, 1 << 16);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)gw_port);
        a.sin_addr.s_addr = htonl(0x7f000001);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    }
    send(fd, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n", 46, MSG_NOSIGNAL);
    for (i = 0; i < 80 && !closed; i++) {   /* one header byte every 100 ms: never complete */
        usleep(100 * 1000);
        if (send(fd, "X", 1, MSG_NOSIGNAL) < 0 || recv(fd, &ch, 1, MSG_DONTWAIT) == 0) {
            closed = 1;
        }
    }
    close(fd);
    mg_buf_deinit(&out);
    ck_assert_msg(closed, "a header block dripping for 8 s was not cut");
    ck_assert_msg(mg_now_ms() - t0 < 5000 * mg_test_scale(), "closed after %lld ms",
                  (long long)(mg_now_ms() - t0));
}
END_TEST

/* Row 10: a stream the gateway edits is framed by the gateway, not by the backend's length. */
START_TEST(edited_stream_framed_by_gateway)
{
    const char *h[] = {"x-fake-sse-length: 1", NULL};
    char url[128], buf[64];
    struct mg_test_resp r;
    const char *body = "{\"model\":\"m-a\",\"stream\":true}";

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", url, body, strlen(body), h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.curl_rc, 0);   /* complete, not hanging on a length that no longer holds */
    ck_assert_ptr_null(mg_test_header(&r, "content-length", buf, sizeof(buf)));
    ck_assert_ptr_null(strstr(r.body.data, "\"usage\""));   /* the injected usage is hidden */
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]\n\n"));
    mg_test_resp_free(&r);
}
END_TEST

/* Row 11: a backend head no valid HTTP has is a failed attempt, not relayed. */
START_TEST(invalid_backend_head_fails)
{
    const char *h[] = {"x-fake-bad-header: 1", NULL};
    char url[128];
    struct mg_test_resp r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", url, BODY, strlen(BODY), h, &r);
    mg_test_assert_error(&r, 502, "upstream_unavailable");
    ck_assert_ptr_null(strstr(r.body.data, "127.0.0.1"));   /* row 17: no internal address */
    mg_test_resp_free(&r);
}
END_TEST

/* Row 16: a backend's proxy, "none", and the environment's proxy read at start. */
START_TEST(proxies_explicit_none_and_environment)
{
    char url[128], buf[64];
    struct mg_test_resp r;
    int port2 = mg_test_free_port();
    const char *conf2;
    pid_t gw2;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", url, "{\"model\":\"m-proxy\"}", 19, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_header(&r, "x-fake-backend", buf, sizeof(buf)), "fp");
    mg_test_resp_free(&r);
    /* a second gateway started with http_proxy set: backends without proxy: use it */
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d", fp_port);
    setenv("http_proxy", buf, 1);
    conf2 = mg_test_write_temp(4, config(port2));
    gw2 = spawn_gateway(conf2, port2, "mgtest-front-gw2.log");
    unsetenv("http_proxy");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port2);
    mg_test_http("POST", url, BODY, strlen(BODY), NULL, &r);
    ck_assert_str_eq(mg_test_header(&r, "x-fake-backend", buf, sizeof(buf)), "fp");
    mg_test_resp_free(&r);
    mg_test_http("POST", url, "{\"model\":\"m-direct\"}", 20, NULL, &r);   /* proxy: none */
    ck_assert_str_eq(mg_test_header(&r, "x-fake-backend", buf, sizeof(buf)), "fa");
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_stop(gw2, 10000), 0);
    unlink(conf2);
}
END_TEST

/* Row 1: out of descriptors, the listener rests instead of spinning, then serves again. */
START_TEST(descriptor_exhaustion_backs_off)
{
    enum { N = 150 };
    int fds[N], i, n = 0, port2 = mg_test_free_port(), lines = 0;
    const char *conf2;
    char line[512], url[128];
    struct mg_test_resp r;
    int64_t deadline;
    pid_t gw2;
    FILE *f;

    if (getenv("MG_WRAP") != NULL) {   /* under valgrind the descriptor count is valgrind's */
        mg_test_skip("front: descriptor_exhaustion_backs_off: not under a wrapper (MG_WRAP)");
        return;
    }
    setenv("MG_TEST_NOFILE", "64", 1);
    conf2 = mg_test_write_temp(5, config(port2));
    unlink("mgtest-front-nofile.log");
    gw2 = spawn_gateway(conf2, port2, "mgtest-front-nofile.log");
    unsetenv("MG_TEST_NOFILE");
    for (i = 0; i < N; i++) {   /* far more connections than 64 descriptors */
        struct mg_buf out;
        mg_buf_init(&out, 1);
        fds[n] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        {
            struct sockaddr_in a;
            memset(&a, 0, sizeof(a));
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)port2);
            a.sin_addr.s_addr = htonl(0x7f000001);
            connect(fds[n], (struct sockaddr *)&a, sizeof(a));
        }
        n++;
        mg_buf_deinit(&out);
    }
    usleep(1500 * 1000);
    for (i = 0; i < n; i++) {
        close(fds[i]);
    }
    /* serving again once descriptors are free */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port2);
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    do {
        mg_test_http("GET", url, NULL, 0, NULL, &r);
        i = (int)r.status;
        mg_test_resp_free(&r);
    } while (i != 200 && mg_now_ms() < deadline && usleep(50000) == 0);
    ck_assert_int_eq(i, 200);
    f = fopen("mgtest-front-nofile.log", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        lines++;
        ck_assert_ptr_null(strstr(line, "Too many open files\n") && !strstr(line, "pausing")
                           ? line : NULL);
    }
    if (f != NULL) {
        fclose(f);
    }
    ck_assert_msg(lines < 20, "%d log lines: the accept loop logged more than once", lines);
    ck_assert_int_eq(mg_test_stop(gw2, 10000), 0);
    unlink(conf2);
}
END_TEST

/* overhead_header: the gateway's own time on each answer; modelgate_overhead_seconds. */
static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;

    while ((hay = strstr(hay, needle)) != NULL) {
        n++;
        hay += strlen(needle);
    }
    return n;
}

#define SBODY "{\"model\":\"m-a\",\"stream\":true}"
#define POST(v, extra, body) "POST /v1/chat/completions HTTP/" v "\r\nHost: x\r\n" extra \
                             "Content-Length: " #body "\r\n\r\n"

/* The gateway writes relayed heads and frames bodies itself (mg_wire): per version and status. */
START_TEST(relayed_answers_framed_per_version)
{
    /* HTTP/1.1, pipelined: a stream (chunked), a plain answer (the backend's length), a stream
     * whose client says close (chunked, then the connection closes) */
    const char *v11 = POST("1.1", "", 29) SBODY POST("1.1", "", 15) BODY
                      POST("1.1", "Connection: close\r\n", 29) SBODY;
    const char *v10 = POST("1.0", "", 29) SBODY;
    const char *v10ka = POST("1.0", "Connection: keep-alive\r\n", 15) BODY POST("1.0", "", 15) BODY;
    int closed;
    char *got = raw(v11, strlen(v11), 5000, &closed), *end;

    ck_assert_msg(closed, "still open after Connection: close");
    ck_assert_uint_eq(count(got, "HTTP/1.1 200 OK\r\n"), 3);
    ck_assert_uint_eq(count(got, "Transfer-Encoding: chunked\r\n"), 2);
    ck_assert_uint_eq(count(got, "\r\n0\r\n\r\n"), 2);          /* each stream's last chunk */
    ck_assert_uint_eq(count(got, "Content-Length: "), 1);
    ck_assert_uint_eq(count(got, "Connection: close\r\n"), 1);
    ck_assert_uint_eq(count(got, "\r\nDate: "), 3);
    ck_assert_uint_eq(count(got, "data: [DONE]"), 2);
    ck_assert_uint_eq(count(got, "\r\nx-modelgate-backend: a\r\n"), 3);
    end = got + strlen(got);
    ck_assert_msg(end - got > 5 && strcmp(end - 5, "0\r\n\r\n") == 0, "ends with %s", end - 20);
    free(got);

    /* the backend's Date reaches the client, alone; the gateway adds one when there is none */
    {
        const char *dated = POST("1.1", "x-fake-date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                 "Connection: close\r\n", 15) BODY;
        got = raw(dated, strlen(dated), 5000, &closed);
        ck_assert_uint_eq(count(got, "\r\nDate: "), 1);
        ck_assert_msg(strstr(got, "\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n") != NULL, "%s",
                      got);
        free(got);
    }

    /* a relayed 204 is a head alone (it leaves at the answer's end), and the connection goes on */
    {
        const char *nc = POST("1.1", "x-fake-status: 204\r\n", 15) BODY
                         POST("1.1", "Connection: close\r\n", 15) BODY;
        got = raw(nc, strlen(nc), 5000, &closed);
        ck_assert_msg(strncmp(got, "HTTP/1.1 204 No Content\r\n", 25) == 0, "%.40s", got);
        ck_assert_uint_eq(count(got, "HTTP/1.1 200 OK\r\n"), 1);
        ck_assert_msg(strstr(got, "\r\n\r\nHTTP/1.1 200 OK\r\n") != NULL, "%s", got);
        ck_assert_uint_eq(count(got, "Content-Length: "), 1);
        ck_assert_uint_eq(count(got, "Transfer-Encoding"), 0);
        free(got);
    }

    /* HTTP/1.0: no chunks; the body ends with the connection */
    got = raw(v10, strlen(v10), 5000, &closed);
    ck_assert_msg(closed, "an HTTP/1.0 stream must end with the connection");
    ck_assert_msg(strncmp(got, "HTTP/1.0 200 OK\r\n", 17) == 0, "%.40s", got);
    ck_assert_ptr_null(strstr(got, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nConnection: close\r\n"));
    ck_assert_ptr_null(strstr(got, "\r\n0\r\n\r\n"));
    ck_assert_msg(strstr(got, "\n\ndata: [DONE]\n\n") != NULL, "%s", got);
    free(got);

    /* HTTP/1.0 keep-alive with a known length: the connection serves the next request */
    got = raw(v10ka, strlen(v10ka), 5000, &closed);
    ck_assert_msg(closed, "the second HTTP/1.0 answer without keep-alive must close");
    ck_assert_uint_eq(count(got, "HTTP/1.0 200 OK\r\n"), 2);
    ck_assert_uint_eq(count(got, "\r\nConnection: keep-alive\r\n"), 1);
    ck_assert_uint_eq(count(got, "\r\nContent-Length: "), 2);
    free(got);
}
END_TEST

/* The gateway's resident memory, KiB (0 when unknown). */
static long
gw_rss_kib(void)
{
    char path[64], line[256];
    long kib = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)gw_pid);
    if ((f = fopen(path, "r")) == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return kib;
}

/*
 * Clients that stop reading a long stream (800 KB each): the gateway pauses each backend
 * transfer once 32 KiB wait for the client, so its memory stays bounded (when it paused at
 * 256 KiB, this grew it by about 650 KiB a client; now about 100 KiB, the stream's state
 * included). The kernel's socket buffers take what the gateway wrote; they are not its memory.
 */
START_TEST(stalled_readers_bounded)
{
    enum { N = 20 };
    const char *body = "{\"model\":\"m-a\",\"stream\":true}";
    char req[512], url[128];
    int fds[N], i, n, rcvbuf = 4096;
    long before, after = 0, last = -1, requests0 = mg_test_fake_stat(fa_port, "requests");
    int64_t deadline;
    struct sockaddr_in a;
    struct mg_test_resp r;

    n = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 "x-fake-chunks: 400\r\nx-fake-content-bytes: 2000\r\nContent-Length: %zu\r\n\r\n"
                 "%s", strlen(body), body);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    before = gw_rss_kib();
    for (i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
        ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(send(fds[i], req, (size_t)n, MSG_NOSIGNAL), n);
    }
    /* every stream reached the backend, then the gateway's memory stops growing */
    deadline = mg_now_ms() + 10000 * mg_test_scale();
    while (mg_test_fake_stat(fa_port, "requests") < requests0 + N && mg_now_ms() < deadline) {
        usleep(10000);
    }
    ck_assert_int_ge(mg_test_fake_stat(fa_port, "requests"), requests0 + N);
    while (mg_now_ms() < deadline && (after = gw_rss_kib()) != last) {
        last = after;
        usleep(300000);
    }
    /* sanitizers and valgrind hold freed memory back on purpose: their RSS says nothing */
    if (getenv("MG_WRAP") == NULL && strstr(mg_test_build_dir(), "asan") == NULL) {
        ck_assert_msg(after - before < N * 256, "%d stalled streams grew the gateway by %ld KiB",
                      N, after - before);
    }
    for (i = 0; i < N; i++) {
        close(fds[i]);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", gw_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(overhead_reported)
{
    char url[128], buf[64];
    struct mg_test_resp r;
    double before, after;
    long us;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    before = mg_test_metric(r.body.data, "modelgate_overhead_seconds_count");
    mg_test_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", url, BODY, strlen(BODY), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(mg_test_header(&r, "x-modelgate-overhead-us", buf, sizeof(buf)));
    us = strtol(buf, NULL, 10);
    ck_assert_msg(us >= 0 && us < 1000000 * mg_test_scale(), "overhead %ld us", us);
    mg_test_resp_free(&r);
    mg_test_http("POST", url, "{\"model\":\"nope\"}", 16, NULL, &r);   /* made here: 404 */
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(mg_test_header(&r, "x-modelgate-overhead-us", buf, sizeof(buf)));
    mg_test_resp_free(&r);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    after = mg_test_metric(r.body.data, "modelgate_overhead_seconds_count");
    ck_assert_ptr_nonnull(strstr(r.body.data, "modelgate_overhead_seconds_bucket{le=\"1e-05\"}"));
    mg_test_resp_free(&r);
    ck_assert_msg(after - before >= 2, "overhead observations %f -> %f", before, after);
}
END_TEST

Suite *
front_suite(void)
{
    Suite *s = suite_create("front");
    TCase *t = tcase_create("front");

    tcase_add_unchecked_fixture(t, start_front, stop_front);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, malformed_heads_refused);
    tcase_add_test(t, oversized_declared_body_413_at_once);
    tcase_add_test(t, bad_target_bytes_refused);
    tcase_add_test(t, head_answers_headers_only);
    tcase_add_test(t, connection_named_headers_not_relayed);
    tcase_add_test(t, request_ids_bounded_and_single);
    tcase_add_test(t, slow_header_block_closed);
    tcase_add_test(t, edited_stream_framed_by_gateway);
    tcase_add_test(t, invalid_backend_head_fails);
    tcase_add_test(t, proxies_explicit_none_and_environment);
    tcase_add_test(t, relayed_answers_framed_per_version);
    tcase_add_test(t, stalled_readers_bounded);
    tcase_add_test(t, overhead_reported);
    tcase_add_test(t, descriptor_exhaustion_backs_off);
    suite_add_tcase(s, t);
    return s;
}
