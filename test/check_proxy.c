/*
 * Unit tests of the proxy's parts that need no socket: what each attempt event means (the
 * outcome table), the response head parser, an attempt reset as a whole, the openai schema's
 * upstream request, and the relay stages fed in pieces cut at every byte.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mg_attempt.h"
#include "mg_conf.h"
#include "mg_head.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_schema.h"
#include "mg_test.h"

/* ---- the outcome table ------------------------------------------------------------------- */

START_TEST(outcome_of_each_failure_kind)
{
    static const struct {
        enum mg_phase         phase;
        enum mg_attempt_event ev;
        enum mg_head_class    cls;
        CURLcode              rc;
        enum mg_outcome       want;
        const char           *what;
    } t[] = {
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_PENDING, CURLE_OK, MG_OUTCOME_PENDING, "100 Continue"},
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_FINAL, CURLE_OK, MG_OUTCOME_COMMIT, "200 head"},
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_FAILOVER, CURLE_OK, MG_OUTCOME_HOLD, "503 head"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_COULDNT_CONNECT, MG_OUTCOME_FAIL_ERROR,
         "connection refused"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_SSL_CONNECT_ERROR,
         MG_OUTCOME_FAIL_ERROR, "TLS handshake failed"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_RECV_ERROR, MG_OUTCOME_FAIL_ERROR,
         "reset before the head"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_GOT_NOTHING, MG_OUTCOME_FAIL_ERROR,
         "closed without an answer"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_WRITE_ERROR, MG_OUTCOME_FAIL_ERROR,
         "head over the cap"},
        {MG_PHASE_WAIT, MG_AEV_END, MG_HEAD_PENDING, CURLE_OPERATION_TIMEDOUT,
         MG_OUTCOME_FAIL_TIMEOUT, "connect or total timeout (curl's)"},
        {MG_PHASE_WAIT, MG_AEV_TIMEOUT, MG_HEAD_PENDING, CURLE_OPERATION_TIMEDOUT,
         MG_OUTCOME_FAIL_TIMEOUT, "first_byte timeout"},
        {MG_PHASE_HOLD, MG_AEV_END, MG_HEAD_PENDING, CURLE_OK, MG_OUTCOME_FAIL_STATUS,
         "503 read whole"},
        {MG_PHASE_HOLD, MG_AEV_END, MG_HEAD_PENDING, CURLE_RECV_ERROR, MG_OUTCOME_FAIL_STATUS,
         "503 whose body broke"},
        {MG_PHASE_HOLD, MG_AEV_TIMEOUT, MG_HEAD_PENDING, CURLE_OPERATION_TIMEDOUT,
         MG_OUTCOME_FAIL_STATUS, "503 whose body stalls"},
        {MG_PHASE_RELAY, MG_AEV_END, MG_HEAD_PENDING, CURLE_OK, MG_OUTCOME_COMPLETE,
         "answer complete"},
        {MG_PHASE_RELAY, MG_AEV_END, MG_HEAD_PENDING, CURLE_PARTIAL_FILE, MG_OUTCOME_CUT,
         "closed mid-answer"},
        {MG_PHASE_RELAY, MG_AEV_END, MG_HEAD_PENDING, CURLE_OPERATION_TIMEDOUT, MG_OUTCOME_CUT,
         "total timeout mid-answer"},
        {MG_PHASE_RELAY, MG_AEV_TIMEOUT, MG_HEAD_PENDING, CURLE_OPERATION_TIMEDOUT,
         MG_OUTCOME_CUT, "idle timeout mid-answer"},
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(t); i++) {
        enum mg_outcome o = mg_outcome_classify(t[i].phase, t[i].ev, t[i].cls, t[i].rc);
        ck_assert_msg(o == t[i].want, "%s: outcome %d, want %d", t[i].what, (int)o,
                      (int)t[i].want);
    }
}
END_TEST

START_TEST(outcome_moves_on_and_result_labels)
{
    char buf[32];

    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_STATUS));
    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_ERROR));
    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_TIMEOUT));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_COMMIT));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_COMPLETE));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_CUT));   /* committed: never another backend */
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_STATUS, 503, buf, sizeof(buf)), "http_503");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_STATUS, 429, buf, sizeof(buf)), "http_429");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_TIMEOUT, 0, buf, sizeof(buf)), "timeout");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_ERROR, 0, buf, sizeof(buf)), "error");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_COMMIT, 200, buf, sizeof(buf)), "ok");
}
END_TEST

START_TEST(status_classes)
{
    static const long failover[] = {429, 500, 502, 503, 504};
    static const long final[] = {200, 201, 204, 301, 400, 401, 403, 404, 409, 413, 422, 501};
    size_t i;

    ck_assert(mg_head_classify_status(100) == MG_HEAD_PENDING);
    ck_assert(mg_head_classify_status(103) == MG_HEAD_PENDING);
    for (i = 0; i < MG_ARRAY_LEN(failover); i++) {
        ck_assert_msg(mg_head_classify_status(failover[i]) == MG_HEAD_FAILOVER, "%ld",
                      failover[i]);
    }
    for (i = 0; i < MG_ARRAY_LEN(final); i++) {
        ck_assert_msg(mg_head_classify_status(final[i]) == MG_HEAD_FINAL, "%ld", final[i]);
    }
    /* the openai schema reads statuses the same way */
    {
        struct mg_resp_head h;
        mg_head_init(&h);
        h.status = 503;
        ck_assert(mg_schema_get(MG_SCHEMA_OPENAI)->classify(&h) == MG_HEAD_FAILOVER);
        h.status = 400;
        ck_assert(mg_schema_get(MG_SCHEMA_OPENAI)->classify(&h) == MG_HEAD_FINAL);
        mg_head_deinit(&h);
    }
}
END_TEST

/* ---- the response head ------------------------------------------------------------------- */

static void
feed_head(struct mg_resp_head *h, const char *const *lines)
{
    for (; *lines != NULL; lines++) {
        ck_assert_int_eq(mg_head_line(h, *lines, strlen(*lines)), MG_OK);
    }
}

/* The value of name among h's kept headers, or NULL. */
static const char *
kept(const struct mg_resp_head *h, const char *name)
{
    const char *n, *v;
    size_t pos = 0;

    while (mg_head_next(h, &pos, &n, &v)) {
        if (strcasecmp(n, name) == 0) {
            return v;
        }
    }
    return NULL;
}

START_TEST(head_parsed_once)
{
    static const char *const lines[] = {
        "Content-Type: text/event-stream; charset=utf-8\r\n",
        "Content-Length: 335\r\n",
        "Retry-After: 7\r\n",
        "Connection: keep-alive\r\n",
        "Keep-Alive: timeout=5\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Proxy-Authenticate: Basic\r\n",
        "x-request-id: from-backend\r\n",
        "X-Modelgate-Backend: spoofed\r\n",
        "openai-processing-ms:   12  \r\n",
        "x-empty:\r\n",
        "no colon here\r\n",
        NULL,
    };
    struct mg_resp_head h;
    const char *n, *v;
    size_t pos = 0, count = 0;

    mg_head_init(&h);
    feed_head(&h, lines);
    ck_assert(h.sse);
    ck_assert(!h.json);
    ck_assert(h.chunked);
    ck_assert_int_eq(h.content_length, 335);
    ck_assert_int_eq(h.retry_after_s, 7);
    ck_assert_str_eq(kept(&h, "openai-processing-ms"), "12");   /* trimmed */
    ck_assert_str_eq(kept(&h, "x-empty"), "");
    ck_assert_str_eq(kept(&h, "content-length"), "335");   /* the proxy decides about framing */
    ck_assert_ptr_null(kept(&h, "connection"));
    ck_assert_ptr_null(kept(&h, "keep-alive"));
    ck_assert_ptr_null(kept(&h, "transfer-encoding"));
    ck_assert_ptr_null(kept(&h, "proxy-authenticate"));
    ck_assert_ptr_null(kept(&h, "x-request-id"));
    ck_assert_ptr_null(kept(&h, "x-modelgate-backend"));
    while (mg_head_next(&h, &pos, &n, &v)) {
        count++;
    }
    ck_assert_uint_eq(count, 5);   /* content-type, content-length, retry-after, two x- */

    /* a new head (after a 1xx, or the next attempt) starts from nothing */
    mg_head_reset(&h);
    ck_assert(!h.sse && !h.chunked);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_int_eq(h.retry_after_s, -1);
    ck_assert_ptr_null(kept(&h, "content-type"));
    {
        static const char *const json[] = {"content-type: application/json\r\n",
                                           "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
                                           "content-length: 12a\r\n", NULL};
        feed_head(&h, json);
        ck_assert(h.json && !h.sse);
        ck_assert_int_eq(h.retry_after_s, -1);   /* a date is not a number of seconds */
        ck_assert_int_eq(h.content_length, -1);
    }
    mg_head_deinit(&h);
}
END_TEST

START_TEST(head_capped)
{
    struct mg_resp_head h;
    char line[8000];
    int rc = MG_OK, i;

    mg_head_init(&h);
    memset(line, 'a', sizeof(line));
    memcpy(line, "x-big: ", 7);
    for (i = 0; i < 20 && rc == MG_OK; i++) {
        rc = mg_head_line(&h, line, sizeof(line));
    }
    ck_assert_int_eq(rc, MG_ETOOBIG);
    ck_assert_uint_le(h.relay.len, MG_RESP_HEAD_MAX);
    mg_head_deinit(&h);
}
END_TEST

/* ---- an attempt is reset as a whole ------------------------------------------------------ */

static void
no_head(void *o, struct mg_attempt *a, enum mg_outcome x)
{
}

static size_t
no_body(void *o, struct mg_attempt *a, const char *p, size_t n)
{
    return n;
}

static void
no_end(void *o, struct mg_attempt *a, enum mg_outcome x)
{
}

static const struct mg_attempt_ops nops = {no_head, no_body, no_end};

START_TEST(attempt_reset_as_a_whole)
{
    struct event_base *base = event_base_new();
    struct mg_backend b1, b2;
    struct mg_rule_backend e1, e2;
    struct mg_attempt a;

    memset(&b1, 0, sizeof(b1));
    memset(&b2, 0, sizeof(b2));
    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));
    b1.name = "one";
    b2.name = "two";
    mg_attempt_init(&a, base, NULL, 1024, &nops, NULL);
    mg_attempt_reset(&a, &b1, &e1);
    /* what a failed try leaves behind */
    a.phase = MG_PHASE_HOLD;
    a.outcome = MG_OUTCOME_FAIL_STATUS;
    a.timeout = "timed out (idle)";
    a.rc = CURLE_RECV_ERROR;
    a.paused = 1;
    snprintf(a.errbuf, sizeof(a.errbuf), "Connection reset by peer");
    a.head.status = 503;
    ck_assert_int_eq(mg_head_line(&a.head, "x-a: 1", 6), MG_OK);
    mg_buf_adds(&a.held, "{\"error\":\"busy\"}");
    mg_buf_adds(&a.up.url, "http://one/v1/chat/completions");
    a.up.inject_usage = 1;

    mg_attempt_reset(&a, &b2, &e2);
    ck_assert_ptr_eq(a.backend, &b2);
    ck_assert_ptr_eq(a.entry, &e2);
    ck_assert_ptr_eq(a.schema, &mg_schema_openai);
    ck_assert(a.phase == MG_PHASE_WAIT);
    ck_assert(a.outcome == MG_OUTCOME_PENDING);
    ck_assert_ptr_null(a.timeout);
    ck_assert_int_eq(a.rc, CURLE_OK);
    ck_assert_int_eq(a.paused, 0);
    ck_assert_str_eq(a.errbuf, "");
    ck_assert_int_eq(a.head.status, 0);
    ck_assert_uint_eq(a.head.relay.len, 0);
    ck_assert_uint_eq(a.held.len, 0);
    ck_assert_uint_eq(a.up.url.len, 0);
    ck_assert_int_eq(a.up.inject_usage, 0);
    ck_assert_ptr_null(a.up.headers);
    mg_attempt_deinit(&a);
    event_base_free(base);
}
END_TEST

/* ---- the openai schema's upstream request ------------------------------------------------- */

struct built {
    struct evkeyvalq     hdrs;
    struct mg_json_req   jr;
    char                 model[64];
    struct mg_client_req rq;
    struct mg_backend    b;
    struct mg_rule_backend e;
    struct mg_upreq      up;
};

static void
build(struct built *t, const char *upath, const char *query, const char *body,
      const char *override, const char *const *client_headers)
{
    memset(t, 0, sizeof(*t));
    TAILQ_INIT(&t->hdrs);
    for (; client_headers && *client_headers; client_headers += 2) {
        evhttp_add_header(&t->hdrs, client_headers[0], client_headers[1]);
    }
    ck_assert_int_eq(mg_json_scan_request(body, strlen(body), t->model, sizeof(t->model), &t->jr),
                     MG_JSON_OK);
    t->rq.upath = upath;
    t->rq.query = query;
    t->rq.body = body;
    t->rq.body_len = strlen(body);
    t->rq.jr = &t->jr;
    t->rq.headers = &t->hdrs;
    t->rq.request_id = "rid-1";
    t->rq.has_ctype = evhttp_find_header(&t->hdrs, "content-type") != NULL;
    t->b.name = "up";
    t->b.url = "http://127.0.0.1:9/v1";
    t->b.auth_header = "Authorization: Bearer sk-backend";
    t->e.model = (char *)override;
    mg_upreq_init(&t->up, 1 << 20);
    ck_assert_int_eq(mg_schema_openai.build(&t->rq, &t->b, &t->e, &t->up), MG_OK);
}

static void
built_free(struct built *t)
{
    mg_upreq_deinit(&t->up);
    evhttp_clear_headers(&t->hdrs);
}

/* 1 when the upstream header list holds exactly this line. */
static int
has_line(const struct mg_upreq *up, const char *line)
{
    const struct curl_slist *l;

    for (l = up->headers; l != NULL; l = l->next) {
        if (strcmp(l->data, line) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
has_name(const struct mg_upreq *up, const char *name)
{
    const struct curl_slist *l;
    size_t n = strlen(name);

    for (l = up->headers; l != NULL; l = l->next) {
        if (strncasecmp(l->data, name, n) == 0 && (l->data[n] == ':' || l->data[n] == ';')) {
            return 1;
        }
    }
    return 0;
}

START_TEST(openai_request_forwarded_as_sent)
{
    static const char *const hdrs[] = {
        "Authorization", "Bearer client-key", "api-key", "client-key", "Connection", "close",
        "Host", "gw", "Content-Length", "20", "User-Agent", "OpenAI/Python 1.40",
        "X-Empty", "", "Content-Type", "application/json", NULL};
    const char *body = "{ \"model\" : \"m\", \"messages\": [] }";
    struct built t;

    build(&t, "/embeddings", "a=1&b=2", body, NULL, hdrs);
    ck_assert_str_eq(t.up.url.data, "http://127.0.0.1:9/v1/embeddings?a=1&b=2");
    ck_assert_ptr_eq(t.up.body, body);   /* the client's bytes, not a copy */
    ck_assert_uint_eq(t.up.body_len, strlen(body));
    ck_assert_int_eq(t.up.inject_usage, 0);
    ck_assert(has_line(&t.up, "Authorization: Bearer sk-backend"));
    ck_assert(!has_line(&t.up, "Authorization: Bearer client-key"));
    ck_assert(!has_name(&t.up, "api-key"));
    ck_assert(!has_name(&t.up, "connection"));
    ck_assert(!has_name(&t.up, "host"));
    ck_assert(!has_name(&t.up, "content-length"));
    ck_assert(has_line(&t.up, "User-Agent: OpenAI/Python 1.40"));
    ck_assert(has_line(&t.up, "X-Empty;"));   /* curl's way to send an empty value */
    ck_assert(has_line(&t.up, "x-request-id: rid-1"));   /* the client sent none */
    ck_assert(has_line(&t.up, "Content-Type: application/json"));
    ck_assert(has_line(&t.up, "Expect:"));
    built_free(&t);
}
END_TEST

START_TEST(openai_override_and_usage_injection)
{
    struct built t;

    /* a model override is one splice; every other byte stays */
    build(&t, "/chat/completions", NULL, "{\"model\":\"alias\",\"x\":1}", "real-model", NULL);
    ck_assert_str_eq(t.up.body, "{\"model\":\"real-model\",\"x\":1}");
    ck_assert(has_line(&t.up, "Content-Type: application/json"));   /* the client sent none */
    built_free(&t);

    /* a stream that did not ask for usage: asked on its behalf, on the two paths that report it */
    build(&t, "/chat/completions", NULL, "{\"model\":\"m\",\"stream\":true}", NULL, NULL);
    ck_assert_int_eq(t.up.inject_usage, 1);
    ck_assert_ptr_nonnull(strstr(t.up.body, "\"include_usage\":true"));
    built_free(&t);
    build(&t, "/completions", NULL, "{\"model\":\"m\",\"stream\":true}", NULL, NULL);
    ck_assert_int_eq(t.up.inject_usage, 1);
    built_free(&t);
    build(&t, "/responses", NULL, "{\"model\":\"m\",\"stream\":true}", NULL, NULL);
    ck_assert_int_eq(t.up.inject_usage, 0);
    built_free(&t);
    build(&t, "/chat/completions", NULL,
          "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", NULL,
          NULL);
    ck_assert_int_eq(t.up.inject_usage, 0);   /* the client asked: its stream is untouched */
    ck_assert_ptr_eq(t.up.body, t.rq.body);
    built_free(&t);
    build(&t, "/chat/completions", NULL, "{\"model\":\"m\"}", NULL, NULL);
    ck_assert_int_eq(t.up.inject_usage, 0);
    built_free(&t);
}
END_TEST

/* ---- relay stages ------------------------------------------------------------------------- */

static void
collect(void *arg, const char *p, size_t n)
{
    mg_buf_add(arg, p, n);
}

static const char *injected_stream =
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22,"
    "\"total_tokens\":33}}\n\n"
    "data: [DONE]\n\n";

static const char *client_stream =
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

/* Runs text through a relay whose chain add() built, cut at `cut` (0: whole). */
static void
run_relay(void (*add)(struct mg_relay *), const char *text, size_t cut, struct mg_buf *out,
          struct mg_usage *u, int *have)
{
    struct mg_relay r;
    size_t n = strlen(text);

    mg_buf_reset(out);
    mg_relay_init(&r, collect, out);
    if (add != NULL) {
        add(&r);
    }
    if (cut > 0 && cut < n) {
        mg_relay_write(&r, text, cut);
        mg_relay_write(&r, text + cut, n - cut);
    } else {
        mg_relay_write(&r, text, n);
    }
    mg_relay_end(&r);
    *u = r.usage;
    *have = r.have_usage;
    mg_relay_deinit(&r);
}

START_TEST(usage_stripped_across_split_reads)
{
    struct mg_buf out;
    struct mg_usage u;
    size_t cut, n = strlen(injected_stream);
    int have;

    mg_buf_init(&out, 1 << 20);
    for (cut = 0; cut < n; cut++) {
        run_relay(mg_relay_add_sse_strip, injected_stream, cut, &out, &u, &have);
        ck_assert_msg(strcmp(out.data, client_stream) == 0, "cut at %zu:\n%s", cut, out.data);
        ck_assert_msg(have && u.input == 11 && u.output == 22, "cut at %zu: usage lost", cut);
    }
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(observed_stream_passes_untouched)
{
    struct mg_buf out;
    struct mg_usage u;
    size_t cut, n = strlen(injected_stream);
    int have;

    mg_buf_init(&out, 1 << 20);
    for (cut = 0; cut < n; cut++) {
        run_relay(mg_relay_add_sse_observe, injected_stream, cut, &out, &u, &have);
        ck_assert_msg(strcmp(out.data, injected_stream) == 0, "cut at %zu", cut);
        ck_assert_msg(have && u.input == 11 && u.output == 22, "cut at %zu: usage lost", cut);
    }
    /* no stage: bytes pass, nothing is read */
    run_relay(NULL, injected_stream, 0, &out, &u, &have);
    ck_assert_str_eq(out.data, injected_stream);
    ck_assert_int_eq(have, 0);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(json_tail_reads_usage_of_long_answers)
{
    struct mg_buf body, out;
    struct mg_usage u;
    size_t cut;
    int have;

    mg_buf_init(&body, 1 << 20);
    mg_buf_init(&out, 1 << 20);
    mg_buf_adds(&body, "{\"choices\":[{\"message\":{\"content\":\"");
    while (body.len < 100000) {
        mg_buf_adds(&body, "lorem ipsum \\\"usage\\\": {\\\"prompt_tokens\\\": 1} ");
    }
    mg_buf_adds(&body, "\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}");
    for (cut = 1; cut < body.len; cut += 4099) {
        run_relay(mg_relay_add_json_tail, body.data, cut, &out, &u, &have);
        ck_assert_uint_eq(out.len, body.len);
        ck_assert_msg(have && u.input == 5 && u.output == 6, "cut at %zu", cut);
    }
    mg_buf_deinit(&body);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(openai_relay_chain_per_answer)
{
    struct mg_relay r;
    struct mg_resp_head h;
    struct mg_upreq up;
    struct mg_client_req rq;
    struct mg_buf out;

    memset(&rq, 0, sizeof(rq));
    mg_buf_init(&out, 1 << 20);
    mg_upreq_init(&up, 1024);
    mg_head_init(&h);
    /* an event stream whose usage the gateway asked for: the stripper */
    h.sse = 1;
    up.inject_usage = 1;
    mg_relay_init(&r, collect, &out);
    mg_schema_openai.relay(&r, &rq, &up, &h);
    ck_assert_ptr_eq(r.head, &r.sse_strip);
    mg_relay_deinit(&r);
    /* one it did not: the observer */
    up.inject_usage = 0;
    mg_relay_init(&r, collect, &out);
    mg_schema_openai.relay(&r, &rq, &up, &h);
    ck_assert_ptr_eq(r.head, &r.sse_observe);
    mg_relay_deinit(&r);
    /* JSON: the tail keeper; anything else: straight to the client */
    h.sse = 0;
    h.json = 1;
    mg_relay_init(&r, collect, &out);
    mg_schema_openai.relay(&r, &rq, &up, &h);
    ck_assert_ptr_eq(r.head, &r.json_tail);
    ck_assert_ptr_eq(r.head->next, &r.sink);
    mg_relay_deinit(&r);
    h.json = 0;
    mg_relay_init(&r, collect, &out);
    mg_schema_openai.relay(&r, &rq, &up, &h);
    ck_assert_ptr_eq(r.head, &r.sink);
    mg_relay_deinit(&r);
    mg_head_deinit(&h);
    mg_upreq_deinit(&up);
    mg_buf_deinit(&out);
}
END_TEST

Suite *
proxy_suite(void)
{
    Suite *s = suite_create("proxy");
    TCase *t = tcase_create("proxy");

    tcase_add_test(t, outcome_of_each_failure_kind);
    tcase_add_test(t, outcome_moves_on_and_result_labels);
    tcase_add_test(t, status_classes);
    tcase_add_test(t, head_parsed_once);
    tcase_add_test(t, head_capped);
    tcase_add_test(t, attempt_reset_as_a_whole);
    tcase_add_test(t, openai_request_forwarded_as_sent);
    tcase_add_test(t, openai_override_and_usage_injection);
    tcase_add_test(t, usage_stripped_across_split_reads);
    tcase_add_test(t, observed_stream_passes_untouched);
    tcase_add_test(t, json_tail_reads_usage_of_long_answers);
    tcase_add_test(t, openai_relay_chain_per_answer);
    suite_add_tcase(s, t);
    return s;
}
