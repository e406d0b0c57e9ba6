/*
 * Suite trace: OpenTelemetry spans and the GenAI metrics. Unit: W3C traceparent, the span queue,
 * the OTLP/JSON encoding, the tracing: block. Over HTTP: a fake OTLP collector in this process (a
 * thread; what it receives goes to files, since tests run in forked children) gets one server
 * span per request and one client span per attempt, with the GenAI attributes, the client's
 * traceparent honoured and a fresh one sent on each attempt; no prompt or answer text; a
 * collector that is down or hangs never slows a request; the gen_ai_* histograms in /metrics;
 * every metric docs/grafana/modelgate.json names exists in /metrics.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <check.h>
#include <jansson.h>

#include "mg_conf.h"
#include "mg_conf_types.h"
#include "mg_harness.h"
#include "mg_test.h"
#include "mg_trace.h"
#include "mg_util.h"

/* ---- the fake collector ------------------------------------------------------------------- */

struct collector {
    const char *prefix;     /* its files: <prefix>-<n>.json, <prefix>-<n>.hdr */
    int         hang;       /* read requests, never answer */
    int         fd;
    int         port;
    int         n;
    int         held[64];   /* a hanging collector's connections */
    int         nheld;
    atomic_int  stop;
    pthread_t   thread;
    char        in[4u << 20];   /* what a connection sent, not answered yet */
};

static void
save(struct collector *c, const char *head, size_t hlen, const char *body, size_t blen)
{
    char tmp[96], path[96];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s-%d.hdr", c->prefix, c->n);
    if ((f = fopen(tmp, "w")) != NULL) {
        fwrite(head, 1, hlen, f);
        fclose(f);
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", c->prefix);
    snprintf(path, sizeof(path), "%s-%d.json", c->prefix, c->n);
    if ((f = fopen(tmp, "w")) != NULL) {
        fwrite(body, 1, blen, f);
        fclose(f);
        rename(tmp, path);   /* whole or not at all for a reader */
    }
    c->n++;
}

/*
 * Serves one connection's requests until it closes (or the collector stops). No heap: tests fork
 * while this thread runs, and a child's leak check would count a buffer only it pointed to.
 */
static void
serve(struct collector *c, int fd)
{
    struct timeval tv = {0, 200000};
    size_t len = 0;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (!atomic_load(&c->stop)) {
        char *end;
        ssize_t n;
        c->in[len] = '\0';
        end = strstr(c->in, "\r\n\r\n");
        if (end != NULL) {
            size_t hlen = (size_t)(end + 4 - c->in), clen = 0;
            const char *cl = strcasestr(c->in, "\ncontent-length:");
            if (cl != NULL && cl < end) {
                clen = strtoul(cl + 16, NULL, 10);
            }
            if (len >= hlen + clen) {
                static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                         "Content-Length: 2\r\n\r\n{}";
                save(c, c->in, hlen, c->in + hlen, clen);
                if (c->hang) {
                    if (c->nheld < 64) {
                        c->held[c->nheld++] = fd;
                    }
                    return;   /* never answered, never closed (until the end) */
                }
                if (write(fd, ok, sizeof(ok) - 1) < 0) {
                    break;
                }
                memmove(c->in, c->in + hlen + clen, len - hlen - clen);
                len -= hlen + clen;
                continue;
            }
        }
        if (len + 1 >= sizeof(c->in)) {
            break;   /* an export larger than any test makes */
        }
        n = read(fd, c->in + len, sizeof(c->in) - 1 - len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            break;
        }
        if (n > 0) {
            len += (size_t)n;
        }
    }
    close(fd);
}

static void *
collector_main(void *arg)
{
    struct collector *c = arg;

    while (!atomic_load(&c->stop)) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 100) == 1) {
            int fd = accept(c->fd, NULL, NULL);
            if (fd >= 0) {
                serve(c, fd);
            }
        }
    }
    return NULL;
}

static void
collector_start(struct collector *c, const char *prefix, int hang)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int one = 1;

    memset(c, 0, sizeof(*c));
    c->prefix = prefix;
    c->hang = hang;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(c->fd, 16) != 0 ||
        getsockname(c->fd, (struct sockaddr *)&a, &len) != 0) {
        perror("collector");
        exit(1);
    }
    c->port = ntohs(a.sin_port);
    atomic_init(&c->stop, 0);
    pthread_create(&c->thread, NULL, collector_main, c);
}

static void
collector_stop(struct collector *c)
{
    int i;

    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    for (i = 0; i < c->nheld; i++) {
        close(c->held[i]);
    }
    close(c->fd);
}

/* Every span the collector has saved so far (a JSON array, the caller's). */
static json_t *
received_spans(const char *prefix, int *nexports)
{
    json_t *all = json_array();
    int i;

    for (i = 0;; i++) {
        char path[96];
        json_t *j, *rs;
        size_t k, m, x;
        snprintf(path, sizeof(path), "%s-%d.json", prefix, i);
        if ((j = json_load_file(path, 0, NULL)) == NULL) {
            break;
        }
        rs = json_object_get(j, "resourceSpans");
        for (k = 0; k < json_array_size(rs); k++) {
            json_t *ss = json_object_get(json_array_get(rs, k), "scopeSpans");
            for (m = 0; m < json_array_size(ss); m++) {
                json_t *spans = json_object_get(json_array_get(ss, m), "spans");
                for (x = 0; x < json_array_size(spans); x++) {
                    json_array_append(all, json_array_get(spans, x));
                }
            }
        }
        json_decref(j);
    }
    if (nexports != NULL) {
        *nexports = i;
    }
    return all;
}

/* The spans of one trace (hex id), waiting until there are at least want (up to 10 s). */
static json_t *
wait_trace(const char *prefix, const char *trace, size_t want)
{
    int tries;
    json_t *mine = NULL;

    for (tries = 0; tries < 200 * mg_test_scale(); tries++) {
        json_t *all = received_spans(prefix, NULL);
        size_t i;
        json_decref(mine);
        mine = json_array();
        for (i = 0; i < json_array_size(all); i++) {
            json_t *s = json_array_get(all, i);
            if (strcmp(json_string_value(json_object_get(s, "traceId")), trace) == 0) {
                json_array_append(mine, s);
            }
        }
        json_decref(all);
        if (json_array_size(mine) >= want) {
            break;
        }
        usleep(50 * 1000);
    }
    return mine;
}

/* An attribute's value object of span s, or NULL. */
static json_t *
attr(json_t *s, const char *key)
{
    json_t *a = json_object_get(s, "attributes");
    size_t i;

    for (i = 0; i < json_array_size(a); i++) {
        json_t *kv = json_array_get(a, i);
        if (strcmp(json_string_value(json_object_get(kv, "key")), key) == 0) {
            return json_object_get(kv, "value");
        }
    }
    return NULL;
}

static const char *
attr_s(json_t *s, const char *key)
{
    json_t *v = attr(s, key);

    return v != NULL ? json_string_value(json_object_get(v, "stringValue")) : NULL;
}

static long long
attr_i(json_t *s, const char *key)
{
    json_t *v = attr(s, key);
    const char *t = v != NULL ? json_string_value(json_object_get(v, "intValue")) : NULL;

    return t != NULL ? atoll(t) : -1;
}

/* ---- unit --------------------------------------------------------------------------------- */

START_TEST(traceparent_read_and_written)
{
    static const char *const bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero span id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "",
    };
    uint8_t tid[16], sid[8];
    char out[MG_TRACEPARENT_LEN + 1];
    int sampled = -1;
    size_t i;

    ck_assert(mg_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                   tid, sid, &sampled));
    ck_assert_int_eq(sampled, 1);
    ck_assert_int_eq(tid[0], 0x4b);
    ck_assert_int_eq(sid[7], 0xb7);
    mg_traceparent_format(out, tid, sid, 0);
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    ck_assert(mg_traceparent_parse(out, tid, sid, &sampled));
    ck_assert_int_eq(sampled, 0);
    /* a later version may add fields; its flags' other bits are not "sampled" */
    ck_assert(mg_traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-ab",
                                   tid, sid, &sampled));
    ck_assert_int_eq(sampled, 1);
    ck_assert(mg_traceparent_parse(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02 ",
                                   tid, sid, &sampled));
    ck_assert_int_eq(sampled, 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!mg_traceparent_parse(bad[i], tid, sid, &sampled), "%s", bad[i]);
    }
    ck_assert(!mg_traceparent_parse(NULL, tid, sid, &sampled));
}
END_TEST

START_TEST(queue_is_bounded_and_encodes_otlp_json)
{
    struct mg_span_queue q;
    struct mg_buf out;
    struct mg_span *s;
    json_t *j, *spans, *a;
    int i;

    mg_span_queue_init(&q, 3);
    for (i = 0; i < 3; i++) {
        s = mg_span_queue_push(&q);
        ck_assert_ptr_nonnull(s);
        mg_span_clear(s);
        memset(s->trace_id, 0xab, 16);
        memset(s->span_id, i + 1, 8);
        s->kind = i == 0 ? MG_SPAN_SERVER : MG_SPAN_CLIENT;
        s->has_parent = i > 0;
        memset(s->parent_id, 1, 8);
        s->start_us = 1700000000000000LL;
        s->end_us = 1700000000250000LL;
        s->operation = "chat";
        s->provider = "openai";
        mg_span_text(s->request_model, sizeof(s->request_model), "gpt-\"4o\"\n");
        s->temperature = 0.5;
        s->max_tokens = 7;
        s->input_tokens = 10;
        s->output_tokens = 20;
        s->first_token_us = 1700000000100000LL;
        s->status_code = 200;
        if (i == 1) {
            mg_span_text(s->error_type, sizeof(s->error_type), "http_503");
        }
        s->attempt = i;
    }
    ck_assert_ptr_null(mg_span_queue_push(&q));   /* full: the caller drops and counts */
    mg_buf_init(&out, 1 << 20);
    ck_assert_int_eq(mg_trace_encode(&out, "svc", &q, 2), 2);
    ck_assert_int_eq(q.n, 1);
    ck_assert_ptr_nonnull(mg_span_queue_push(&q));   /* room again */
    j = json_loads(out.data, 0, NULL);
    ck_assert_msg(j != NULL, "%s", out.data);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(
        json_object_get(json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0),
                                        "resource"), "attributes"), 0), "value"),
        "stringValue")), "svc");
    spans = json_object_get(json_array_get(json_object_get(json_array_get(
        json_object_get(j, "resourceSpans"), 0), "scopeSpans"), 0), "spans");
    ck_assert_int_eq(json_array_size(spans), 2);
    a = json_array_get(spans, 0);
    ck_assert_str_eq(json_string_value(json_object_get(a, "traceId")),
                     "abababababababababababababababab");
    ck_assert_str_eq(json_string_value(json_object_get(a, "spanId")), "0101010101010101");
    ck_assert_ptr_null(json_object_get(a, "parentSpanId"));
    ck_assert_str_eq(json_string_value(json_object_get(a, "name")), "chat gpt-\"4o\"\n");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "kind")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(a, "startTimeUnixNano")),
                     "1700000000000000000");
    ck_assert_str_eq(attr_s(a, "gen_ai.provider.name"), "openai");
    ck_assert_int_eq(attr_i(a, "gen_ai.usage.output_tokens"), 20);
    ck_assert_int_eq(attr_i(a, "gen_ai.request.max_tokens"), 7);
    ck_assert(json_real_value(json_object_get(attr(a, "gen_ai.request.temperature"),
                                              "doubleValue")) == 0.5);
    ck_assert_ptr_null(attr(a, "gen_ai.request.top_p"));   /* absent: left out */
    ck_assert_ptr_null(attr(a, "error.type"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
        json_object_get(a, "events"), 0), "name")), "gen_ai.first_token");
    a = json_array_get(spans, 1);
    ck_assert_str_eq(json_string_value(json_object_get(a, "parentSpanId")), "0101010101010101");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "kind")), 3);
    ck_assert_str_eq(attr_s(a, "error.type"), "http_503");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "status"), "code")),
                     2);
    json_decref(j);
    mg_buf_deinit(&out);
    mg_span_queue_deinit(&q);
}
END_TEST

START_TEST(config_block)
{
    static const struct {
        const char *yaml;
        const char *want;
    } bad[] = {
        {"tracing: {sample: 0.5}\n", "tracing needs \"otlp\""},
        {"tracing: {otlp: 'http://c/v1/traces', sample: 2}\n", "sample must be a number"},
        {"tracing: {otlp: 'http://c/v1/traces', sample: x}\n", "sample must be a number"},
        {"tracing: {otlp: 'ftp://c/v1/traces'}\n", "url"},
        {"tracing: {otlp: 'http://c/v1/traces', colour: red}\n", "colour"},
        {"tracing: {otlp: 'http://c/v1/traces', headers: {'a b': c}}\n", "bad header name"},
    };
    static const char rest[] = "backends: [{name: a, url: 'http://x/v1'}]\n"
                               "rules: [{models: [m], backends: [{backend: a}]}]\n";
    struct mg_buf errs;
    struct mg_conf *c;
    char text[1024];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "%s%s", bad[i].yaml, rest);
        mg_buf_init(&errs, 4096);
        c = mg_conf_parse("t.yaml", text, strlen(text), &errs);
        ck_assert_msg(c == NULL, "%s: accepted", bad[i].yaml);
        ck_assert_msg(errs.data != NULL && strstr(errs.data, bad[i].want) != NULL &&
                      strstr(errs.data, "t.yaml:1:") != NULL, "%s: %s", bad[i].yaml,
                      errs.data ? errs.data : "");
        mg_buf_deinit(&errs);
    }
    snprintf(text, sizeof(text), "tracing: {otlp: 'http://c:4318/v1/traces', headers: "
             "{authorization: 'Bearer t'}}\n%s", rest);
    mg_buf_init(&errs, 4096);
    c = mg_conf_parse("t.yaml", text, strlen(text), &errs);
    ck_assert_msg(c != NULL, "%s", errs.data ? errs.data : "");
    ck_assert(c->tracing.on);
    ck_assert_int_eq(c->tracing.sample_ppm, 1000000);   /* every request unless said */
    ck_assert_str_eq(c->tracing.service_name, "modelgate");
    ck_assert_int_eq(c->tracing.nheaders, 1);
    mg_conf_unref(c);
    c = mg_conf_parse("t.yaml", rest, strlen(rest), &errs);
    ck_assert(c != NULL && !c->tracing.on);
    mg_conf_unref(c);
    mg_buf_deinit(&errs);
}
END_TEST

/* ---- over HTTP ---------------------------------------------------------------------------- */

static struct collector col, hung;
static struct mg_harness th, tdown, thang;

static void
start_gw(struct mg_harness *h, const char *name, int slot, int otlp_port, const char *extra)
{
    char conf[2048], gwlog[64], fakelog[64];

    snprintf(gwlog, sizeof(gwlog), "mgtest-trace-%s-gw.log", name);
    snprintf(fakelog, sizeof(fakelog), "mgtest-trace-%s-fake.log", name);
    mg_harness_init(h, gwlog, fakelog);
    mg_harness_fake(h, "a", NULL);
    mg_harness_fake(h, "b", NULL);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 1\n"
             "health: {failures: 0}\n"
             "tracing: {otlp: 'http://127.0.0.1:%d/v1/traces', sample: 1, "
             "service_name: mgtest, headers: {authorization: 'Bearer col-token'}}\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'},"
             " {name: b, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: a, priority: 1},"
             " {backend: b, priority: 2}]}, {models: [m2], backends: [{backend: a, model: m2-up}]}]"
             "\n%s",
             h->gw_port, otlp_port, h->fake_port[0], h->fake_port[1], extra);
    mg_harness_start(h, slot, conf);
}

static void
start_trace(void)
{
    collector_start(&col, "otlp", 0);
    start_gw(&th, "ok", 4, col.port, "");
}

static void
stop_trace(void)
{
    mg_harness_stop(&th, "modelgate (trace)");
    collector_stop(&col);
}

static void
start_broken(void)
{
    collector_start(&hung, "hung", 1);
    start_gw(&tdown, "down", 4, mg_test_free_port(), "");
    start_gw(&thang, "hang", 5, hung.port, "");
}

static void
stop_broken(void)
{
    mg_harness_stop(&tdown, "modelgate (trace, collector down)");
    mg_harness_stop(&thang, "modelgate (trace, collector hangs)");
    collector_stop(&hung);
}

#define BODY "{\"model\":\"m\",\"temperature\":0.25,\"max_tokens\":50,\"messages\":" \
             "[{\"role\":\"user\",\"content\":\"SECRET-PROMPT-TEXT\"}]}"
#define CLIENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define CLIENT_SPAN  "00f067aa0ba902b7"
#define CLIENT_TRACE_STOP "5c0f92f3577b34da6a3ce929d0e0e473"

START_TEST(spans_of_a_request_and_its_attempts)
{
    const char *h[] = {"Content-Type: application/json", "x-fake-echo: 1",
                       "x-fake-status: 503", "x-fake-status-for: a",
                       "traceparent: 00-" CLIENT_TRACE "-" CLIENT_SPAN "-01",
                       "tracestate: vendor=1", NULL};
    struct mg_test_resp r;
    json_t *echo, *spans, *server = NULL, *served = NULL;
    const char *tp;
    char hdr[96];
    size_t i;
    int attempts = 0, exports;

    mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), BODY, strlen(BODY), h, &r);
    ck_assert_int_eq(r.status, 200);
    echo = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(echo, "backend")), "b");
    tp = json_string_value(json_object_get(json_object_get(echo, "headers"), "traceparent"));
    ck_assert_ptr_nonnull(tp);
    /* the client's trace goes on, from a span of ours, sampled */
    ck_assert_int_eq(strlen(tp), 55);
    ck_assert(strncmp(tp, "00-" CLIENT_TRACE "-", 36) == 0);
    ck_assert(strncmp(tp + 36, CLIENT_SPAN, 16) != 0);
    ck_assert_str_eq(tp + 52, "-01");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(echo, "headers"),
                                                       "tracestate")), "vendor=1");

    spans = wait_trace("otlp", CLIENT_TRACE, 3);
    ck_assert_int_ge(json_array_size(spans), 3);
    for (i = 0; i < json_array_size(spans); i++) {
        json_t *s = json_array_get(spans, i);
        if (json_integer_value(json_object_get(s, "kind")) == 2) {
            server = s;
        }
    }
    ck_assert_ptr_nonnull(server);
    ck_assert_str_eq(json_string_value(json_object_get(server, "parentSpanId")), CLIENT_SPAN);
    ck_assert_str_eq(json_string_value(json_object_get(server, "name")), "chat m");
    ck_assert_str_eq(attr_s(server, "gen_ai.operation.name"), "chat");
    ck_assert_str_eq(attr_s(server, "gen_ai.request.model"), "m");
    ck_assert_str_eq(attr_s(server, "gen_ai.provider.name"), "openai");
    ck_assert_str_eq(attr_s(server, "modelgate.backend"), "b");
    ck_assert_int_eq(attr_i(server, "http.response.status_code"), 200);
    ck_assert_int_eq(attr_i(server, "gen_ai.request.max_tokens"), 50);
    ck_assert_int_eq(attr_i(server, "modelgate.rule"), 0);
    ck_assert(json_real_value(json_object_get(attr(server, "gen_ai.request.temperature"),
                                              "doubleValue")) == 0.25);
    ck_assert_ptr_null(attr(server, "error.type"));
    ck_assert_ptr_nonnull(json_object_get(server, "events"));   /* the first token */
    {   /* Unix times, now-ish, end after start */
        long long st = atoll(json_string_value(json_object_get(server, "startTimeUnixNano")));
        long long en = atoll(json_string_value(json_object_get(server, "endTimeUnixNano")));
        ck_assert(en >= st);
        ck_assert(llabs(st / 1000000000LL - (long long)time(NULL)) < 120);
    }
    for (i = 0; i < json_array_size(spans); i++) {
        json_t *s = json_array_get(spans, i);
        if (s == server) {
            continue;
        }
        attempts++;
        ck_assert_int_eq(json_integer_value(json_object_get(s, "kind")), 3);
        ck_assert_str_eq(json_string_value(json_object_get(s, "parentSpanId")),
                         json_string_value(json_object_get(server, "spanId")));
        ck_assert_str_eq(attr_s(s, "server.address"), "127.0.0.1");
        ck_assert_int_ge(attr_i(s, "modelgate.attempt"), 1);
        if (strcmp(attr_s(s, "modelgate.backend"), "a") == 0) {
            ck_assert_int_eq(attr_i(s, "server.port"), th.fake_port[0]);
            ck_assert_int_eq(attr_i(s, "http.response.status_code"), 503);
            ck_assert_str_eq(attr_s(s, "error.type"), "http_503");
        } else {
            served = s;
            ck_assert_int_eq(attr_i(s, "server.port"), th.fake_port[1]);
            ck_assert_ptr_null(attr(s, "error.type"));
        }
    }
    ck_assert_int_ge(attempts, 2);
    ck_assert_ptr_nonnull(served);
    /* the traceparent b got names b's attempt span */
    ck_assert(strncmp(tp + 36, json_string_value(json_object_get(served, "spanId")), 16) == 0);
    json_decref(spans);
    json_decref(echo);
    mg_test_resp_free(&r);

    /* no prompt or answer text in any export; the collector got the configured header */
    spans = received_spans("otlp", &exports);
    ck_assert_int_ge(exports, 1);
    for (i = 0; i < (size_t)exports; i++) {
        char path[64], *text;
        size_t n;
        snprintf(path, sizeof(path), "otlp-%zu.json", i);
        text = mg_test_slurp(path, &n);
        ck_assert(text != NULL && strstr(text, "SECRET") == NULL && strstr(text, "fake") == NULL);
        free(text);
        snprintf(path, sizeof(path), "otlp-%zu.hdr", i);
        text = mg_test_slurp(path, &n);
        ck_assert(text != NULL && strcasestr(text, "authorization: Bearer col-token") != NULL);
        ck_assert(strcasestr(text, "content-type: application/json") != NULL);
        free(text);
    }
    json_decref(spans);
    (void)hdr;
}
END_TEST

START_TEST(unsampled_traces_propagate_and_are_not_exported)
{
    const char *unsampled[] = {"Content-Type: application/json", "x-fake-echo: 1",
                               "traceparent: 00-11111111111111111111111111111111-"
                               "2222222222222222-00", NULL};
    const char *sampled[] = {"Content-Type: application/json",
                             "traceparent: 00-33333333333333333333333333333333-"
                             "4444444444444444-01", NULL};
    const char *none[] = {"Content-Type: application/json", "x-fake-echo: 1", NULL};
    struct mg_test_resp r;
    json_t *echo, *spans;
    const char *tp;

    mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), BODY, strlen(BODY),
                 unsampled, &r);
    ck_assert_int_eq(r.status, 200);
    echo = mg_test_body_json(&r);
    tp = json_string_value(json_object_get(json_object_get(echo, "headers"), "traceparent"));
    ck_assert(tp != NULL && strncmp(tp, "00-11111111111111111111111111111111-", 36) == 0);
    ck_assert_str_eq(tp + 52, "-00");
    ck_assert(strncmp(tp + 36, "2222222222222222", 16) != 0);
    json_decref(echo);
    mg_test_resp_free(&r);

    /* without a traceparent (sample: 1): a new trace, sampled */
    mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), BODY, strlen(BODY), none,
                 &r);
    echo = mg_test_body_json(&r);
    tp = json_string_value(json_object_get(json_object_get(echo, "headers"), "traceparent"));
    ck_assert(tp != NULL && strlen(tp) == 55 && strcmp(tp + 52, "-01") == 0);
    json_decref(echo);
    mg_test_resp_free(&r);

    /* a sampled request after it: once its spans are in, the unsampled trace has none */
    mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), BODY, strlen(BODY),
                 sampled, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    spans = wait_trace("otlp", "33333333333333333333333333333333", 2);
    ck_assert_int_ge(json_array_size(spans), 2);
    json_decref(spans);
    spans = wait_trace("otlp", "11111111111111111111111111111111", 0);
    ck_assert_int_eq(json_array_size(spans), 0);
    json_decref(spans);
}
END_TEST

/* gen_ai.response.model and gen_ai.response.finish_reasons come from the answer the client got
 * (the backend's model name, not the client's), plain and streamed. */
START_TEST(response_model_and_finish_reasons)
{
    static const char *const traces[2] = {"66666666666666666666666666666666",
                                          "77777777777777777777777777777777"};
    int stream;

    for (stream = 0; stream < 2; stream++) {
        char tp[96], body[160];
        const char *h[] = {"Content-Type: application/json", tp, NULL};
        struct mg_test_resp r;
        json_t *spans, *fr;
        size_t i;

        snprintf(tp, sizeof(tp), "traceparent: 00-%s-4444444444444444-01", traces[stream]);
        snprintf(body, sizeof(body), "{\"model\":\"m2\",\"stream\":%s,\"messages\":"
                 "[{\"role\":\"user\",\"content\":\"hi\"}]}", stream ? "true" : "false");
        mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), body, strlen(body), h,
                     &r);
        ck_assert_int_eq(r.status, 200);
        mg_test_resp_free(&r);
        spans = wait_trace("otlp", traces[stream], 2);
        ck_assert_int_eq(json_array_size(spans), 2);
        for (i = 0; i < 2; i++) {
            json_t *sp = json_array_get(spans, i);
            int server = json_integer_value(json_object_get(sp, "kind")) == 2;
            ck_assert_str_eq(attr_s(sp, "gen_ai.request.model"), server ? "m2" : "m2-up");
            ck_assert_str_eq(attr_s(sp, "gen_ai.response.model"), "m2-up");
            fr = json_object_get(json_object_get(attr(sp, "gen_ai.response.finish_reasons"),
                                                 "arrayValue"), "values");
            ck_assert_int_eq(json_array_size(fr), 1);
            ck_assert_str_eq(json_string_value(json_object_get(json_array_get(fr, 0),
                                                               "stringValue")), "stop");
        }
        json_decref(spans);
    }
}
END_TEST

START_TEST(genai_metrics)
{
    const char *h[] = {"Content-Type: application/json", "x-fake-usage: 12,30", NULL};
    static const char stream[] = "{\"model\":\"m\",\"stream\":true,\"messages\":"
                                 "[{\"role\":\"user\",\"content\":\"hi\"}]}";
    struct mg_test_resp r;
    char *text;
    double v;

    mg_test_http("POST", mg_harness_url(&th, "/v1/chat/completions"), stream, strlen(stream), h,
                 &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&th, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    text = r.body.data;
#define L "{gen_ai_request_model=\"m\",gen_ai_provider_name=\"openai\""
    ck_assert_double_ge(mg_test_metric(text, "gen_ai_server_request_duration_seconds_count" L
                                       "}"), 1);
    ck_assert_double_ge(mg_test_metric(text, "gen_ai_server_time_to_first_token_seconds_count" L
                                       "}"), 1);
    ck_assert_double_ge(mg_test_metric(text, "gen_ai_server_time_per_output_token_seconds_count"
                                       L "}"), 1);
    v = mg_test_metric(text, "gen_ai_client_token_usage_sum" L ",gen_ai_token_type=\"input\"}");
    ck_assert_double_ge(v, 12);
    ck_assert_double_ge(mg_test_metric(text, "gen_ai_client_token_usage_bucket" L
                                       ",gen_ai_token_type=\"output\",le=\"64\"}"), 1);
    /* the conventions' boundaries */
    ck_assert_ptr_nonnull(strstr(text, "gen_ai_server_time_to_first_token_seconds_bucket" L
                                 ",le=\"0.001\"}"));
    ck_assert_ptr_nonnull(strstr(text, "gen_ai_server_request_duration_seconds_bucket" L
                                 ",le=\"81.92\"}"));
    ck_assert_ptr_nonnull(strstr(text, "gen_ai_client_token_usage_bucket" L
                                 ",gen_ai_token_type=\"input\",le=\"67108864\"}"));
    ck_assert_double_eq(mg_test_metric(text, "modelgate_trace_spans_dropped_total"
                                       "{reason=\"queue_full\"}"), 0);
#undef L
    mg_test_resp_free(&r);
}
END_TEST

/* Adds every metric name the PromQL text names (an identifier right before a '{' selector). */
static void
metrics_named(const char *q, json_t *names)
{
    const char *p = q;

    while (*p != '\0') {
        const char *start = p;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':') {
            while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
                   *p == ':' || (*p >= '0' && *p <= '9')) {
                p++;
            }
            if (*p == '{') {
                char name[128];
                snprintf(name, sizeof(name), "%.*s", (int)(p - start), start);
                json_object_set_new(names, name, json_true());
            }
            continue;
        }
        p++;
    }
}

/* Every "expr" and "query" string under j. */
static void
walk_exprs(json_t *j, json_t *names)
{
    const char *k;
    json_t *v;
    size_t i;

    if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            walk_exprs(v, names);
        }
    } else if (json_is_object(j)) {
        json_object_foreach(j, k, v) {
            if ((strcmp(k, "expr") == 0 || strcmp(k, "query") == 0) && json_is_string(v)) {
                metrics_named(json_string_value(v), names);
                if (strncmp(json_string_value(v), "label_values(", 13) == 0) {
                    char name[128];
                    snprintf(name, sizeof(name), "%s", json_string_value(v) + 13);
                    name[strcspn(name, ",)")] = '\0';
                    json_object_set_new(names, name, json_true());
                }
            } else {
                walk_exprs(v, names);
            }
        }
    }
}

START_TEST(dashboard_metrics_exist)
{
    json_error_t err;
    json_t *d = json_load_file("test/../docs/grafana/modelgate.json", 0, &err), *names, *v;
    struct mg_test_resp r;
    const char *name;
    size_t n = 0;

    ck_assert_msg(d != NULL, "docs/grafana/modelgate.json: %s (line %d)", err.text, err.line);
    names = json_object();
    walk_exprs(d, names);
    mg_test_http("GET", mg_harness_url(&th, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object_foreach(names, name, v) {
        char want[192], base[128];
        size_t len = strlen(name);
        snprintf(base, sizeof(base), "%s", name);
        if (len > 7 && strcmp(name + len - 7, "_bucket") == 0) {
            base[len - 7] = '\0';
        } else if (len > 4 && (strcmp(name + len - 4, "_sum") == 0)) {
            base[len - 4] = '\0';
        } else if (len > 6 && strcmp(name + len - 6, "_count") == 0) {
            base[len - 6] = '\0';
        }
        snprintf(want, sizeof(want), "# TYPE %s %s", base,
                 strcmp(base, name) != 0 ? "histogram\n" : "");
        ck_assert_msg(strstr(r.body.data, want) != NULL, "the dashboard names %s: not in /metrics",
                      name);
        n++;
    }
    ck_assert_int_ge(n, 15);   /* the walk found the dashboard's metrics */
    mg_test_resp_free(&r);
    json_decref(names);
    json_decref(d);
}
END_TEST

/* n quick requests on h, each well under a second; the slowest in ms. */
static double
quick_requests(struct mg_harness *h, int n)
{
    const char *hd[] = {"Content-Type: application/json", NULL};
    struct mg_test_resp r;
    double worst = 0;
    int i;

    for (i = 0; i < n; i++) {
        mg_test_http("POST", mg_harness_url(h, "/v1/chat/completions"), BODY, strlen(BODY), hd,
                     &r);
        ck_assert_int_eq(r.status, 200);
        if (r.t_total_ms > worst) {
            worst = r.t_total_ms;
        }
        mg_test_resp_free(&r);
    }
    return worst;
}

static double
metric_of(struct mg_harness *h, const char *series)
{
    struct mg_test_resp r;
    double v;

    mg_test_http("GET", mg_harness_url(h, "/metrics"), NULL, 0, NULL, &r);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v;
}

START_TEST(collector_down_never_slows_requests)
{
    double worst;
    int tries;

    worst = quick_requests(&tdown, 20);
    ck_assert_msg(worst < 500 * mg_test_scale(), "a request took %.0f ms", worst);
    /* the export after 1 s fails: its spans are counted as dropped */
    for (tries = 0; tries < 200 * mg_test_scale(); tries++) {
        if (metric_of(&tdown, "modelgate_trace_spans_dropped_total{reason=\"export_failed\"}") >
            0) {
            break;
        }
        usleep(50 * 1000);
    }
    ck_assert_double_gt(metric_of(&tdown, "modelgate_trace_spans_dropped_total"
                                          "{reason=\"export_failed\"}"), 0);
    worst = quick_requests(&tdown, 10);
    ck_assert_msg(worst < 500 * mg_test_scale(), "a request took %.0f ms", worst);
}
END_TEST

START_TEST(collector_that_hangs_never_slows_requests)
{
    double worst;
    int tries, n = 0;

    quick_requests(&thang, 5);
    /* wait until an export is in flight and unanswered */
    for (tries = 0; tries < 200 * mg_test_scale(); tries++) {
        size_t len;
        char *text = mg_test_slurp("hung-0.json", &len);
        if (text != NULL) {
            n = 1;
            free(text);
            break;
        }
        usleep(50 * 1000);
    }
    ck_assert_msg(n == 1, "no export reached the hanging collector");
    worst = quick_requests(&thang, 30);
    ck_assert_msg(worst < 500 * mg_test_scale(), "a request took %.0f ms", worst);
}
END_TEST

/* Spans still queued when the gateway stops are exported before it exits (a batch waits up to
 * 1 s: stopping right after an answer would lose it otherwise). */
static struct collector fcol;
static struct mg_harness tflush;

START_TEST(queued_spans_are_sent_at_stop)
{
    const char *h[] = {"Content-Type: application/json",
                       "traceparent: 00-" CLIENT_TRACE_STOP "-" CLIENT_SPAN "-01", NULL};
    struct mg_test_resp r;
    json_t *spans;
    int exports;

    collector_start(&fcol, "flush", 0);
    start_gw(&tflush, "flush", 6, fcol.port, "");
    mg_test_http("POST", mg_harness_url(&tflush, "/v1/chat/completions"), BODY, strlen(BODY), h,
                 &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    mg_harness_stop(&tflush, "modelgate (trace, stopped with spans queued)");   /* SIGTERM */
    spans = received_spans("flush", &exports);
    collector_stop(&fcol);
    ck_assert_msg(exports >= 1, "nothing was exported before the gateway exited");
    {
        size_t i, mine = 0;
        for (i = 0; i < json_array_size(spans); i++) {
            mine += strcmp(json_string_value(json_object_get(json_array_get(spans, i),
                                                             "traceId")), CLIENT_TRACE_STOP) == 0;
        }
        ck_assert_int_eq(mine, 2);   /* the request's span and its attempt's */
    }
    json_decref(spans);
}
END_TEST

Suite *
trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *u = tcase_create("unit"), *t = tcase_create("http"), *b = tcase_create("broken");
    TCase *f = tcase_create("stop");

    tcase_add_test(u, traceparent_read_and_written);
    tcase_add_test(u, queue_is_bounded_and_encodes_otlp_json);
    tcase_add_test(u, config_block);
    suite_add_tcase(s, u);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_unchecked_fixture(t, start_trace, stop_trace);
    tcase_add_test(t, spans_of_a_request_and_its_attempts);
    tcase_add_test(t, unsampled_traces_propagate_and_are_not_exported);
    tcase_add_test(t, response_model_and_finish_reasons);
    tcase_add_test(t, genai_metrics);
    tcase_add_test(t, dashboard_metrics_exist);
    suite_add_tcase(s, t);
    tcase_set_timeout(b, 60 * mg_test_scale());
    tcase_add_unchecked_fixture(b, start_broken, stop_broken);
    tcase_add_test(b, collector_down_never_slows_requests);
    tcase_add_test(b, collector_that_hangs_never_slows_requests);
    suite_add_tcase(s, b);
    tcase_set_timeout(f, 60 * mg_test_scale());
    tcase_add_test(f, queued_spans_are_sent_at_stop);
    suite_add_tcase(s, f);
    return s;
}
