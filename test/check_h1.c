/*
 * The gateway's own HTTP/1.1 front end (mg_conn, mg_front) over real sockets: chunked requests on
 * kept-alive connections, pipelining, the key checked on the head, body and header deadlines,
 * chunk extensions, duplicate Host, NUL in a value, 100-continue, the head's 431, error answers'
 * ids and reason phrases; and unit tests of the head parser and the chunked decoder.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mg_front.h"
#include "mg_req.h"
#include "mg_test.h"
#include "mg_util.h"

#define KEY  "mgk-h1-test-key-0123456789abcdef"

static int fa_port, gw_port;
static pid_t fa_pid, gw_pid;
static const char *conf_path, *gw_log = "mgtest-h1-gw.log";

static void
start_h1(void)
{
    char bin[256], pa[16], conf[2048];

    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    fa_port = mg_test_free_port();
    snprintf(pa, sizeof(pa), "%d", fa_port);
    {
        char *a[] = {bin, "--port", pa, "--name", "fa", NULL};
        fa_pid = mg_test_spawn(a, "mgtest-h1-fake.log");
    }
    ck_assert_int_eq(mg_test_wait_port(fa_port, 10000), 0);
    gw_port = mg_test_free_port();
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 1\n"
             "header_timeout: 2s\n"
             "body_timeout: 2s\n"
             "keepalive_timeout: 3s\n"
             "access_log: off\n"
             "backends:\n"
             "  - {name: a, url: 'http://127.0.0.1:%d/v1'}\n"
             "rules:\n"
             "  - {models: [m-a], backends: [{backend: a}]}\n"
             "auth:\n"
             "  keys:\n"
             "    - {name: t, key: " KEY "}\n"
             "    - {name: lim, key: " KEY "-lim, requests_per_minute: 1}\n",
             gw_port, fa_port);
    conf_path = mg_test_write_temp(0, conf);
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    unlink(gw_log);
    {
        char *argv[] = {bin, "-c", (char *)conf_path, NULL};
        gw_pid = mg_test_spawn(argv, gw_log);
    }
    ck_assert_msg(mg_test_wait_port(gw_port, 10000) == 0, "modelgate did not start");
}

static void
stop_h1(void)
{
    int rc = mg_test_stop(gw_pid, 15000);

    mg_test_stop(fa_pid, 5000);
    unlink(conf_path);
    if (rc != 0) {
        fprintf(stderr, "modelgate exited with %d (see %s)\n", rc, gw_log);
        exit(1);
    }
}

/* ---- a raw client --------------------------------------------------------------------------- */

static int
dial(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)gw_port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Reads more into b within timeout_ms (not scaled: 0 for a "nothing more comes" check); 0 on EOF
 * or timeout. */
static int
fill_within(int fd, struct mg_buf *b, int timeout_ms)
{
    struct pollfd pf = {fd, POLLIN, 0};
    char tmp[65536];
    ssize_t n;

    if (poll(&pf, 1, timeout_ms) <= 0) {
        return 0;
    }
    n = recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) {
        return 0;
    }
    mg_buf_add(b, tmp, (size_t)n);
    return 1;
}

/* Reads more into b; 0 on EOF or timeout (timeout_ms scaled for slow builds). */
static int
fill(int fd, struct mg_buf *b, int timeout_ms)
{
    return fill_within(fd, b, timeout_ms * mg_test_scale());
}

/* One response parsed off b (filled from fd as needed): its status, its body; consumed from b. */
struct resp {
    int  status;
    char head[4096];
    struct mg_buf body;
};

static int
read_response(int fd, struct mg_buf *b, struct resp *r)
{
    char *end, *cl, *te;
    size_t hlen, pos;

    mg_buf_init(&r->body, 1 << 24);
    while ((end = b->data ? strstr(b->data, "\r\n\r\n") : NULL) == NULL) {
        if (!fill(fd, b, 5000)) {
            return -1;
        }
    }
    hlen = (size_t)(end - b->data) + 4;
    snprintf(r->head, sizeof(r->head), "%.*s", (int)hlen, b->data);
    r->status = atoi(r->head + 9);
    cl = strcasestr(r->head, "\r\ncontent-length:");
    te = strcasestr(r->head, "\r\ntransfer-encoding: chunked");
    pos = hlen;
    if (te != NULL) {
        for (;;) {
            char *eol;
            unsigned long size;
            while ((eol = strstr(b->data + pos, "\r\n")) == NULL) {
                if (!fill(fd, b, 5000)) {
                    return -1;
                }
            }
            size = strtoul(b->data + pos, NULL, 16);
            pos = (size_t)(eol - b->data) + 2;
            while (b->len < pos + size + 2) {
                if (!fill(fd, b, 5000)) {
                    return -1;
                }
            }
            ck_assert_msg(memcmp(b->data + pos + size, "\r\n", 2) == 0, "bad chunk framing");
            mg_buf_add(&r->body, b->data + pos, size);
            pos += size + 2;
            if (size == 0) {
                break;
            }
        }
    } else if (cl != NULL) {
        size_t n = strtoul(cl + 17, NULL, 10);
        while (b->len < pos + n) {
            if (!fill(fd, b, 5000)) {
                return -1;
            }
        }
        mg_buf_add(&r->body, b->data + pos, n);
        pos += n;
    }
    memmove(b->data, b->data + pos, b->len - pos);
    b->len -= pos;
    b->data[b->len] = '\0';
    return 0;
}

static void
resp_free(struct resp *r)
{
    mg_buf_deinit(&r->body);
}

#define AUTH "Authorization: Bearer " KEY "\r\n"
#define CHAT "{\"model\":\"m-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

/* A chat request with a chunked body (the body cut into three chunks, one with an extension). */
static size_t
chunked_request(char *out, size_t len, const char *extra)
{
    const char *body = CHAT;
    size_t n = strlen(body), a = 10, b = 20;

    return (size_t)snprintf(out, len, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" AUTH
                            "Content-Type: application/json\r\n%s"
                            "Transfer-Encoding: chunked\r\n\r\n"
                            "%zx\r\n%.*s\r\n%zx;ext=\"v\"\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
                            extra, a, (int)a, body, b, (int)b, body + a, n - a - b, body + a + b);
}

/* M1: three chunked POSTs on one kept-alive connection, then the same three pipelined. */
START_TEST(chunked_requests_keep_the_connection)
{
    struct mg_buf in;
    struct resp r;
    char req[1024];
    size_t n = chunked_request(req, sizeof(req), "");
    int fd = dial(), i;

    mg_buf_init(&in, 1 << 24);
    mg_buf_add(&in, "", 0);
    for (i = 0; i < 3; i++) {
        send_all(fd, req, n);
        ck_assert_int_eq(read_response(fd, &in, &r), 0);
        ck_assert_msg(r.status == 200, "answer %d: %s", i, r.head);
        ck_assert_ptr_nonnull(strstr(r.body.data, "chat.completion"));
        ck_assert_msg(in.len == 0, "stray bytes after answer %d: %s", i, in.data);
        resp_free(&r);
    }
    {   /* pipelined: all three sent at once, three answers in order, nothing else */
        char all[4096];
        memcpy(all, req, n);
        memcpy(all + n, req, n);
        memcpy(all + 2 * n, req, n);
        send_all(fd, all, 3 * n);
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(read_response(fd, &in, &r), 0);
            ck_assert_int_eq(r.status, 200);
            resp_free(&r);
        }
        ck_assert(!fill_within(fd, &in, 300));   /* well inside keepalive_timeout */
        ck_assert_msg(in.len == 0, "stray bytes after the pipelined answers: %s", in.data);
    }
    close(fd);
    mg_buf_deinit(&in);
}
END_TEST

/* M1: a stream answering a chunked request, read only after it ended, has one framing. */
START_TEST(late_read_stream_to_chunked_request)
{
    struct mg_buf in;
    struct resp r;
    char req[1024];
    size_t n;
    int fd = dial();

    n = chunked_request(req, sizeof(req), "x-fake-chunks: 20\r\n");
    /* the same body with "stream":true */
    {
        static const char body[] = "{\"model\":\"m-a\",\"stream\":true,\"messages\":[]}";
        n = (size_t)snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                             AUTH "x-fake-chunks: 20\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "%zx\r\n%s\r\n0\r\n\r\n", strlen(body), body);
    }
    mg_buf_init(&in, 1 << 24);
    mg_buf_add(&in, "", 0);
    send_all(fd, req, n);
    {   /* wait until the backend has sent it all, without reading */
        int64_t until = mg_now_ms() + 5000 * mg_test_scale();
        while (mg_test_fake_stat(fa_port, "active") != 0 && mg_now_ms() < until) {
            usleep(20 * 1000);
        }
        usleep(100 * 1000);
    }
    ck_assert_int_eq(read_response(fd, &in, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    ck_assert_ptr_null(strstr(r.body.data, "\r\n0\r\n"));   /* no framing inside the body */
    resp_free(&r);
    ck_assert(!fill_within(fd, &in, 300));   /* well inside keepalive_timeout */
    ck_assert_msg(in.len == 0, "stray bytes after the stream: %s", in.data);
    /* and the connection goes on */
    send_all(fd, req, n);
    ck_assert_int_eq(read_response(fd, &in, &r), 0);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    close(fd);
    mg_buf_deinit(&in);
}
END_TEST

static long
rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
    return kib;
}

/* M2: 60 clients sending 15 MiB bodies with a wrong key: 401 on the head, nothing buffered. */
START_TEST(wrong_key_bodies_not_buffered)
{
    enum { N = 60, BODY_MB = 15 };
    static char chunk[65536];
    size_t sent[N];
    int fds[N], i, open_n = N;
    long before = rss_kib(gw_pid), after;
    int64_t until;
    char head[256];

    memset(chunk, 'x', sizeof(chunk));
    snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer wrong-key-0123456789\r\nContent-Length: %d\r\n\r\n",
             BODY_MB << 20);
    for (i = 0; i < N; i++) {
        struct mg_buf in;
        fds[i] = dial();
        sent[i] = 0;
        send_all(fds[i], head, strlen(head));
        mg_buf_init(&in, 1 << 16);
        mg_buf_add(&in, "", 0);
        while (strstr(in.data, "\r\n\r\n") == NULL && fill(fds[i], &in, 3000)) {
        }
        ck_assert_msg(strncmp(in.data, "HTTP/1.1 401 Unauthorized", 25) == 0, "%s", in.data);
        mg_buf_deinit(&in);
    }
    /* push the bodies anyway, round-robin, until every connection is closed on us */
    until = mg_now_ms() + 20000 * mg_test_scale();
    while (open_n > 0 && mg_now_ms() < until) {
        for (i = 0; i < N; i++) {
            ssize_t w;
            if (fds[i] < 0) {
                continue;
            }
            w = send(fds[i], chunk, sizeof(chunk), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sent[i] += (size_t)w;
            }
            if ((w < 0 && errno != EAGAIN) || sent[i] >= (size_t)BODY_MB << 20) {
                close(fds[i]);
                fds[i] = -1;
                open_n--;
            }
        }
        usleep(1000);
    }
    for (i = 0; i < N; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    after = rss_kib(gw_pid);
    /* sanitizers and valgrind hold freed memory back on purpose: their RSS says nothing */
    if (getenv("MG_WRAP") == NULL && strstr(mg_test_build_dir(), "asan") == NULL) {
        ck_assert_msg(after - before < 64 * 1024, "RSS grew from %ld to %ld KiB", before, after);
    }
    fprintf(stderr, "wrong_key_bodies: RSS %ld -> %ld KiB\n", before, after);
}
END_TEST

/* A raw request's whole answer up to the close (or timeout), and whether it closed. */
static char *
exchange(const char *req, size_t len, int timeout_ms, int *closed)
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

/* L7 and the head's other rules: refused with 400 (or 431) and closed; no backend reached. */
START_TEST(bad_heads_refused)
{
    static const char two_hosts[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
        AUTH "Content-Length: 2\r\n\r\n{}";
    static const char nul_in_key[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
        "Authorization: Bearer " KEY "\0x\r\nContent-Length: 2\r\n\r\n{}";
    static const char folded[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
        "X-A: 1\r\n  folded\r\n\r\n";
    static const char bare_lf[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n";
    static const char h2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const char bad_chunk[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n" AUTH
        "Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n";
    const struct {
        const char *req;
        size_t      len;
        const char *status;
    } cases[] = {
        {two_hosts, sizeof(two_hosts) - 1, "HTTP/1.1 400 Bad Request"},
        {nul_in_key, sizeof(nul_in_key) - 1, "HTTP/1.1 400 Bad Request"},
        {folded, sizeof(folded) - 1, "HTTP/1.1 400 Bad Request"},
        {bare_lf, sizeof(bare_lf) - 1, "HTTP/1.1 400 Bad Request"},
        {h2, sizeof(h2) - 1, "HTTP/1.1 400 Bad Request"},
        {bad_chunk, sizeof(bad_chunk) - 1, "HTTP/1.1 400 Bad Request"},
    };
    long before = mg_test_fake_stat(fa_port, "requests");
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        int closed;
        char *got = exchange(cases[i].req, cases[i].len, 3000, &closed);
        ck_assert_msg(strncmp(got, cases[i].status, strlen(cases[i].status)) == 0,
                      "case %zu: %s", i, got);
        ck_assert_msg(strstr(got, "\"code\":\"bad_request\"") != NULL, "case %zu: %s", i, got);
        {   /* an id of its own, 32 hex digits, even when the head could not be read */
            const char *id = strcasestr(got, "\r\nx-request-id: ");
            ck_assert_msg(id != NULL && strspn(id + 16, "0123456789abcdef") == 32,
                          "case %zu: %s", i, got);
        }
        ck_assert_msg(closed, "case %zu: the connection stayed open", i);
        free(got);
    }
    {   /* a header block over 64 KiB: 431 */
        struct mg_buf big;
        char *got;
        int closed;
        mg_buf_init(&big, 1 << 20);
        mg_buf_adds(&big, "GET /v1/models HTTP/1.1\r\nHost: a\r\n");
        while (big.len < 70 * 1024) {
            mg_buf_adds(&big, "X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        mg_buf_adds(&big, "\r\n");
        got = exchange(big.data, big.len, 3000, &closed);
        ck_assert_msg(strncmp(got, "HTTP/1.1 431 Request Header Fields Too Large", 44) == 0,
                      "%s", got);
        ck_assert_ptr_nonnull(strstr(got, "\"code\":\"request_header_fields_too_large\""));
        free(got);
        mg_buf_deinit(&big);
    }
    ck_assert_int_eq(mg_test_fake_stat(fa_port, "requests"), before);
}
END_TEST

/* L6: chunk extensions are ignored, not refused; Expect: 100-continue is answered. */
START_TEST(chunk_extensions_and_continue)
{
    char req[1024], *got;
    size_t n = chunked_request(req, sizeof(req), "Connection: close\r\n");
    struct mg_buf in;
    struct resp r;
    int fd;

    got = exchange(req, n, 5000, NULL);
    ck_assert_msg(strncmp(got, "HTTP/1.1 200 OK", 15) == 0, "%s", got);
    free(got);
    /* 100-continue: the head alone first, the interim answer, then the body */
    fd = dial();
    mg_buf_init(&in, 1 << 20);
    mg_buf_add(&in, "", 0);
    n = (size_t)snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         AUTH "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                         strlen(CHAT));
    send_all(fd, req, n);
    while (strstr(in.data, "\r\n\r\n") == NULL && fill(fd, &in, 3000)) {
    }
    ck_assert_msg(strcmp(in.data, "HTTP/1.1 100 Continue\r\n\r\n") == 0, "%s", in.data);
    mg_buf_reset(&in);
    mg_buf_add(&in, "", 0);
    send_all(fd, CHAT, strlen(CHAT));
    ck_assert_int_eq(read_response(fd, &in, &r), 0);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    close(fd);
    mg_buf_deinit(&in);
}
END_TEST

/* Waits until the server closes fd; the milliseconds it took, or -1 past limit_ms. */
static int64_t
ms_until_closed(int fd, int64_t limit_ms)
{
    int64_t t0 = mg_now_ms();
    char buf[4096];

    while (mg_now_ms() - t0 < limit_ms) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 100) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0) {
            return mg_now_ms() - t0;
        }
    }
    return -1;
}

/* L4: a dripped body is cut at body_timeout, a silent connection at header_timeout. */
START_TEST(deadlines_are_whole)
{
    int64_t limit = 8000 * mg_test_scale(), took;
    char head[256], ch = 'x';
    int fd = dial(), i;

    /* nothing at all: closed at header_timeout (2 s), counted from the accept */
    took = ms_until_closed(fd, limit);
    ck_assert_msg(took >= 1500 && took < 4000 * mg_test_scale(), "silent connection: %lld ms",
                  (long long)took);
    close(fd);
    /* a body dripped: each byte well inside any per-read timer, the whole past body_timeout */
    fd = dial();
    snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" AUTH
             "Content-Length: 100\r\n\r\n");
    send_all(fd, head, strlen(head));
    {
        int64_t t0 = mg_now_ms();
        struct mg_buf in;
        mg_buf_init(&in, 1 << 16);
        mg_buf_add(&in, "", 0);
        for (i = 0; i < 100 && mg_now_ms() - t0 < limit; i++) {
            if (send(fd, &ch, 1, MSG_NOSIGNAL) < 0 || fill(fd, &in, 200)) {
                break;
            }
        }
        took = mg_now_ms() - t0;
        while (fill(fd, &in, 1000)) {
        }
        ck_assert_msg(strncmp(in.data, "HTTP/1.1 408 Request Timeout", 28) == 0, "%s", in.data);
        ck_assert_ptr_nonnull(strstr(in.data, "\"code\":\"request_timeout\""));
        ck_assert_msg(took < 4000 * mg_test_scale(), "dripped body cut after %lld ms",
                      (long long)took);
        mg_buf_deinit(&in);
    }
    close(fd);
    /* an idle kept-alive connection: closed at keepalive_timeout (3 s) */
    fd = dial();
    {
        struct mg_buf in;
        struct resp r;
        const char *get = "GET /v1/models HTTP/1.1\r\nHost: x\r\n" AUTH "\r\n";
        mg_buf_init(&in, 1 << 16);
        mg_buf_add(&in, "", 0);
        send_all(fd, get, strlen(get));
        ck_assert_int_eq(read_response(fd, &in, &r), 0);
        ck_assert_int_eq(r.status, 200);
        resp_free(&r);
        took = ms_until_closed(fd, limit);
        ck_assert_msg(took >= 2500 && took < 5000 * mg_test_scale(), "idle: %lld ms",
                      (long long)took);
        mg_buf_deinit(&in);
    }
    close(fd);
}
END_TEST

/* Answers the gateway makes itself: x-request-id (the client's when usable) and real phrases. */
START_TEST(own_answers_have_ids_and_phrases)
{
    struct mg_test_resp r;
    char u[128], v[256];
    const char *const lim[] = {"Authorization: Bearer " KEY "-lim", "x-request-id: my-id-1", NULL};
    const char *const key[] = {"Authorization: Bearer " KEY, NULL};

    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1/models/m-a%%00x", gw_port);
    mg_test_http("GET", u, NULL, 0, key, &r);
    mg_test_assert_error(&r, 404, "model_not_found");   /* not the m-a entry */
    ck_assert_ptr_nonnull(mg_test_header(&r, "x-request-id", v, sizeof(v)));
    mg_test_resp_free(&r);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    mg_test_http("POST", u, CHAT, strlen(CHAT), lim, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    mg_test_http("POST", u, CHAT, strlen(CHAT), lim, &r);
    mg_test_assert_error(&r, 429, "rate_limit_exceeded");
    ck_assert_str_eq(mg_test_header(&r, "x-request-id", v, sizeof(v)), "my-id-1");
    mg_test_resp_free(&r);
    {   /* the status line's phrase */
        char req[512], *got;
        int n = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         "Authorization: Bearer " KEY "-lim\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s", strlen(CHAT), CHAT);
        got = exchange(req, (size_t)n, 3000, NULL);
        ck_assert_msg(strncmp(got, "HTTP/1.1 429 Too Many Requests\r\n", 32) == 0, "%s", got);
        free(got);
    }
}
END_TEST

/* ---- unit: the parser and the decoder ------------------------------------------------------ */

START_TEST(parse_head_fields)
{
    char head[] = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: h\r\nX-Sp:  a b \t\r\n"
                  "Connection: Keep-Alive, x-hop\r\nx-request-id: abc\r\n"
                  "Content-Length: 12\r\n\r\n";
    struct mg_req req;
    struct mg_front_head info;
    struct mg_front_refusal why;

    memset(&req, 0, sizeof(req));
    ck_assert_int_eq(mg_front_parse_head(head, strlen(head), &req, &info, &why), 0);
    ck_assert_int_eq(req.method, MG_METHOD_POST);
    ck_assert_int_eq(req.minor, 1);
    ck_assert_str_eq(req.path, "/v1/chat/completions");
    ck_assert_str_eq(req.query, "x=1");
    ck_assert_str_eq(mg_headers_get(&req.headers, "x-sp"), "a b");
    ck_assert(req.conn_keep && !req.conn_close);
    ck_assert(req.has_request_id);
    ck_assert_str_eq(req.request_id, "abc");
    ck_assert_int_eq(info.content_length, 12);
    ck_assert(!info.chunked);
    mg_headers_clear(&req.headers);
}
END_TEST

START_TEST(forward_path_rule)
{
    static const char *const bad[] = {"/v1/%2e%2e%2fadmin", "/v1/..%2Fx", "/v1/a%5Cb",
                                      "/v1/a%5cb", "/v1/a%00", "/v1/./x", "/v1/x/..",
                                      "/v1/.%2E/x", "/v1/%2E/x"};
    static const char *const good[] = {"/v1/chat/completions", "/v1/a...b", "/v1/...",
                                       "/v1/a%2", "/v1/a%20b", "/v1/files/file-1.json"};
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(!mg_front_forward_path_ok(bad[i]), "%s", bad[i]);
    }
    for (i = 0; i < MG_ARRAY_LEN(good); i++) {
        ck_assert_msg(mg_front_forward_path_ok(good[i]), "%s", good[i]);
    }
}
END_TEST

static int
collect(void *arg, const char *data, size_t len)
{
    return mg_buf_add(arg, data, len) == MG_OK ? 0 : -1;
}

/* The decoder, fed the same body cut at every byte: always the same bytes out. */
START_TEST(dechunk_any_split)
{
    static const char body[] = "5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nTrail: x\r\n\r\nNEXT";
    size_t cut, len = sizeof(body) - 1;

    for (cut = 0; cut <= len; cut++) {
        struct mg_front_chunked c;
        struct mg_front_refusal why;
        struct mg_buf out;
        ssize_t a, b = 0;
        memset(&c, 0, sizeof(c));
        mg_buf_init(&out, 1024);
        a = mg_front_dechunk(&c, body, cut, collect, &out, &why);
        ck_assert_int_ge(a, 0);
        if (!c.done) {
            b = mg_front_dechunk(&c, body + a, len - (size_t)a, collect, &out, &why);
        }
        ck_assert(c.done);
        ck_assert_int_eq(a + b, (ssize_t)(len - 4));   /* "NEXT" is the next request's */
        ck_assert_str_eq(out.data, "hello world");
        mg_buf_deinit(&out);
    }
    {
        static const char *const wrong[] = {"0x5\r\nhello\r\n", "5\r\nhelloXX", "5\nhello\r\n",
                                            "-1\r\n", "5\r\nhello\r\n0\r\nbad header\r\n\r\n"};
        size_t i;
        for (i = 0; i < MG_ARRAY_LEN(wrong); i++) {
            struct mg_front_chunked c;
            struct mg_front_refusal why;
            struct mg_buf out;
            memset(&c, 0, sizeof(c));
            mg_buf_init(&out, 1024);
            ck_assert_msg(mg_front_dechunk(&c, wrong[i], strlen(wrong[i]), collect, &out,
                                           &why) < 0, "%s", wrong[i]);
            ck_assert_int_eq(why.status, 400);
            mg_buf_deinit(&out);
        }
    }
}
END_TEST

Suite *
h1_suite(void)
{
    Suite *s = suite_create("h1");
    TCase *u = tcase_create("unit"), *t = tcase_create("http");

    tcase_add_test(u, parse_head_fields);
    tcase_add_test(u, forward_path_rule);
    tcase_add_test(u, dechunk_any_split);
    suite_add_tcase(s, u);
    tcase_add_unchecked_fixture(t, start_h1, stop_h1);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, chunked_requests_keep_the_connection);
    tcase_add_test(t, late_read_stream_to_chunked_request);
    tcase_add_test(t, bad_heads_refused);
    tcase_add_test(t, chunk_extensions_and_continue);
    tcase_add_test(t, deadlines_are_whole);
    tcase_add_test(t, own_answers_have_ids_and_phrases);
    tcase_add_test(t, wrong_key_bodies_not_buffered);
    suite_add_tcase(s, t);
    return s;
}
