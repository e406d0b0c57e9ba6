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

#include "mg_attempt.h"
#include "mg_api.h"
#include "mg_conf.h"
#include "mg_failover.h"
#include "mg_head.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_req.h"
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
        unsigned              flags;
        enum mg_outcome       want;
        const char           *what;
    } t[] = {
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_PENDING, CURLE_OK, 0, MG_OUTCOME_PENDING,
         "100 Continue"},
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_FINAL, CURLE_OK, 0, MG_OUTCOME_OPEN, "200 head"},
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_FAILOVER, CURLE_OK, 0, MG_OUTCOME_HOLD, "503 head"},
        {MG_PHASE_WAIT, MG_AEV_HEAD, MG_HEAD_INSPECT, CURLE_OK, 0, MG_OUTCOME_INSPECT, "400 head"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_COULDNT_CONNECT, 0, MG_OUTCOME_FAIL_ERROR,
         "connection refused"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_SSL_CONNECT_ERROR, 0, MG_OUTCOME_FAIL_ERROR,
         "TLS handshake failed"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_RECV_ERROR, 0, MG_OUTCOME_FAIL_ERROR,
         "reset before the head"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_GOT_NOTHING, 0, MG_OUTCOME_FAIL_ERROR,
         "closed without an answer"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_WRITE_ERROR, 0, MG_OUTCOME_FAIL_ERROR,
         "head over the cap"},
        {MG_PHASE_WAIT, MG_AEV_END, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_FAIL_TIMEOUT,
         "connect or total timeout (curl's)"},
        {MG_PHASE_WAIT, MG_AEV_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_FAIL_TIMEOUT,
         "first_byte timeout"},
        {MG_PHASE_HOLD, MG_AEV_END, 0, CURLE_OK, 0, MG_OUTCOME_FAIL_STATUS, "503 read whole"},
        {MG_PHASE_HOLD, MG_AEV_END, 0, CURLE_RECV_ERROR, 0, MG_OUTCOME_FAIL_STATUS,
         "503 whose body broke"},
        {MG_PHASE_HOLD, MG_AEV_END, 0, CURLE_WRITE_ERROR, 0, MG_OUTCOME_FAIL_STATUS,
         "503 whose body passed the cap"},
        {MG_PHASE_HOLD, MG_AEV_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_FAIL_STATUS,
         "503 whose body stalls"},
        {MG_PHASE_INSPECT, MG_AEV_END, 0, CURLE_OK, 0, MG_OUTCOME_FINAL, "content-policy 400"},
        {MG_PHASE_INSPECT, MG_AEV_END, 0, CURLE_OK, MG_AF_CONTEXT, MG_OUTCOME_FAIL_CONTEXT,
         "context-length 400"},
        {MG_PHASE_INSPECT, MG_AEV_END, 0, CURLE_PARTIAL_FILE, 0, MG_OUTCOME_FAIL_ERROR,
         "400 whose body broke"},
        {MG_PHASE_INSPECT, MG_AEV_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT, 0,
         MG_OUTCOME_FAIL_TIMEOUT, "400 whose body stalls"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_OK, 0, MG_OUTCOME_COMPLETE,
         "answer ended before any output: commits at its end"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_RECV_ERROR, 0, MG_OUTCOME_FAIL_ERROR,
         "200 then a bad chunk, before output"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_PARTIAL_FILE, 0, MG_OUTCOME_FAIL_ERROR,
         "200 then closed, before output"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_WRITE_ERROR, MG_AF_RELAY_FAILED,
         MG_OUTCOME_FAIL_EVENT, "error event before output"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_OK, MG_AF_RELAY_EMPTY, MG_OUTCOME_FAIL_EMPTY,
         "event stream ended cleanly before any event"},
        {MG_PHASE_OPEN, MG_AEV_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_FAIL_TIMEOUT,
         "headers then silence (first_token or idle)"},
        {MG_PHASE_OPEN, MG_AEV_END, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_FAIL_TIMEOUT,
         "total timeout before output"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_OK, 0, MG_OUTCOME_COMPLETE, "answer complete"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_PARTIAL_FILE, 0, MG_OUTCOME_CUT,
         "closed mid-answer"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_WRITE_ERROR, 0, MG_OUTCOME_CUT,
         "error event after output"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_CUT,
         "total timeout mid-answer"},
        {MG_PHASE_RELAY, MG_AEV_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT, 0, MG_OUTCOME_CUT,
         "idle timeout mid-answer"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_OK, MG_AF_RELAY_CUT, MG_OUTCOME_CUT,
         "transfer ended cleanly, stream unfinished (the relay's verdict)"},
        {MG_PHASE_RELAY, MG_AEV_END, 0, CURLE_WRITE_ERROR, MG_AF_RELAY_CUT, MG_OUTCOME_CUT,
         "error event after output (the relay's verdict)"},
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(t); i++) {
        enum mg_outcome o = mg_outcome_classify(t[i].phase, t[i].ev, t[i].cls, t[i].rc,
                                                t[i].flags);
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
    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_EVENT));
    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_CONTEXT));
    ck_assert(mg_outcome_fails(MG_OUTCOME_FAIL_EMPTY));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_OPEN));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_COMPLETE));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_FINAL));
    ck_assert(!mg_outcome_fails(MG_OUTCOME_CUT));   /* committed: never another backend */
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_STATUS, 503, buf, sizeof(buf)), "http_503");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_STATUS, 529, buf, sizeof(buf)), "http_529");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_TIMEOUT, 0, buf, sizeof(buf)), "timeout");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_ERROR, 0, buf, sizeof(buf)), "error");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_EVENT, 200, buf, sizeof(buf)),
                     "error_event");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_CONTEXT, 400, buf, sizeof(buf)),
                     "context_length");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_FAIL_EMPTY, 200, buf, sizeof(buf)),
                     "empty_stream");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_CUT, 200, buf, sizeof(buf)), "cut");
    ck_assert_str_eq(mg_outcome_result(MG_OUTCOME_COMPLETE, 200, buf, sizeof(buf)), "ok");
}
END_TEST

START_TEST(status_classes)
{
    static const long failover[] = {429, 500, 502, 503, 504, 529};
    static const long final[] = {200, 201, 204, 301, 401, 403, 404, 409, 413, 422, 501};
    size_t i;

    ck_assert(mg_head_classify_status(100) == MG_HEAD_PENDING);
    ck_assert(mg_head_classify_status(103) == MG_HEAD_PENDING);
    ck_assert(mg_head_classify_status(400) == MG_HEAD_INSPECT);
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
        h.status = 404;
        ck_assert(mg_schema_get(MG_SCHEMA_OPENAI)->classify(&h) == MG_HEAD_FINAL);
        mg_head_deinit(&h);
    }
}
END_TEST

/* ---- the response head ------------------------------------------------------------------- */

/* The client API of a path below /v1 ("/chat/completions"), as the dispatcher picks it. */
static const struct mg_api *
api_of(const char *upath)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1%s", upath);
    return mg_api_route(path);
}

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
        "x-hop: named in Connection\r\n",
        "Connection: close, X-Hop\r\n",
        "Content-Length: 335\r\n",   /* the same length twice is one length */
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
    ck_assert_ptr_null(kept(&h, "x-hop"));   /* named in the backend's Connection */
    while (mg_head_next(&h, &pos, &n, &v)) {
        count++;
    }
    ck_assert_uint_eq(count, 6);   /* content-type, two content-length, retry-after, two x- */
    /* lines no valid head holds: the answer is refused like a broken one */
    ck_assert_int_eq(mg_head_line(&h, "no colon here\r\n", 15), MG_ERR);
    ck_assert_int_eq(mg_head_line(&h, "Bad Name: x\r\n", 13), MG_ERR);
    ck_assert_int_eq(mg_head_line(&h, "Content-Length: 12\r\n", 20), MG_ERR);
    ck_assert_int_eq(mg_head_line(&h, "x-ctl: a\x01\r\n", 11), MG_OK);   /* CR, LF, NUL only */
    /* media types compare without case; a refused line leaves the kept ones as they were */
    mg_head_reset(&h);
    ck_assert_int_eq(mg_head_line(&h, "content-type: Application/JSON; charset=utf-8", 45), MG_OK);
    ck_assert(h.json && !h.sse);
    ck_assert_int_eq(mg_head_line(&h, "Content-Type: TEXT/Event-Stream", 31), MG_OK);
    ck_assert(h.sse && !h.json);
    ck_assert_int_eq(mg_head_line(&h, "content-type: application/vnd.amazon.eventstream", 48),
                     MG_OK);
    ck_assert(h.sse);
    ck_assert_int_eq(mg_head_line(&h, "TE: trailers", 12), MG_OK);
    ck_assert_int_eq(mg_head_line(&h, "Proxy-Connection: x", 19), MG_OK);
    ck_assert_int_eq(mg_head_line(&h, "content-length: x", 17), MG_ERR);
    pos = 0;
    count = 0;
    while (mg_head_next(&h, &pos, &n, &v)) {
        count++;
    }
    ck_assert_uint_eq(count, 3);   /* the three content-types */

    /* a new head (after a 1xx, or the next attempt) starts from nothing */
    mg_head_reset(&h);
    ck_assert(!h.sse && !h.chunked);
    ck_assert_int_eq(h.content_length, -1);
    ck_assert_int_eq(h.retry_after_s, -1);
    ck_assert_ptr_null(kept(&h, "content-type"));
    {
        static const char *const json[] = {"content-type: application/json\r\n",
                                           "retry-after: soon\r\n",
                                           "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
                                           NULL};
        feed_head(&h, json);
        ck_assert(h.json && !h.sse);
        ck_assert_int_eq(h.retry_after_s, 0);   /* a date in the past: no wait */
        ck_assert_int_eq(h.content_length, -1);
        ck_assert_int_eq(mg_head_line(&h, "content-length: 12a\r\n", 21), MG_ERR);
        ck_assert_int_eq(mg_head_line(&h, "retry-after: 99999999999999999\r\n", 32), MG_OK);
        ck_assert_int_le(h.retry_after_s, 366 * 86400);   /* clamped: no overflow in ms */
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
    ck_assert_uint_eq(a.up.nlines, 0);
    ck_assert_ptr_null(mg_schema_header_list(&a.up));
    mg_attempt_deinit(&a);
    event_base_free(base);
}
END_TEST

/* ---- the openai schema's upstream request ------------------------------------------------- */

struct built {
    struct mg_headers    hdrs;
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
    for (; client_headers && *client_headers; client_headers += 2) {
        mg_headers_add(&t->hdrs, client_headers[0], client_headers[1]);
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
    t->rq.has_ctype = mg_headers_get(&t->hdrs, "content-type") != NULL;
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
    mg_headers_clear(&t->hdrs);
}

/* 1 when the upstream header list holds exactly this line. */
static int
has_line(struct mg_upreq *up, const char *line)
{
    const struct curl_slist *l;

    for (l = mg_schema_header_list(up); l != NULL; l = l->next) {
        if (strcmp(l->data, line) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
has_name(struct mg_upreq *up, const char *name)
{
    const struct curl_slist *l;
    size_t n = strlen(name);

    for (l = mg_schema_header_list(up); l != NULL; l = l->next) {
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
    ck_assert(!has_name(&t.up, "expect"));   /* curl sends none below 1 MiB: no line to pay for */
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

struct sinkbuf {
    struct mg_buf out;
    int           commits;
    size_t        at_commit;   /* bytes the client had when the answer committed */
};

static void
collect(void *arg, const char *p, size_t n)
{
    struct sinkbuf *k = arg;

    ck_assert_msg(k->commits == 1, "bytes reached the client before the commit");
    mg_buf_add(&k->out, p, n);
}

static void
committed(void *arg)
{
    struct sinkbuf *k = arg;

    k->commits++;
    k->at_commit = k->out.len;
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

/* What the openai schema sets up for an answer, run over text cut at `cut` (0: whole). */
struct run {
    struct sinkbuf  k;
    struct mg_relay r;
};

static void
run_relay(struct run *t, int sse, int inject, const char *upath, const char *text, size_t n,
          size_t cut)
{
    struct mg_resp_head h;
    struct mg_upreq up;
    struct mg_client_req rq;

    memset(&rq, 0, sizeof(rq));
    memset(&t->k, 0, sizeof(t->k));
    mg_buf_init(&t->k.out, 1 << 22);
    mg_upreq_init(&up, 16);
    mg_head_init(&h);
    h.sse = sse;
    h.json = !sse;
    up.inject_usage = inject;
    mg_relay_init(&t->r, collect, &t->k, committed, &t->k);
    mg_relay_reset(&t->r, sse, api_of(upath));
    mg_schema_openai.relay(&t->r, &rq, &up, &h);
    if (cut > 0 && cut < n) {
        mg_relay_write(&t->r, text, cut);
        mg_relay_write(&t->r, text + cut, n - cut);
    } else {
        mg_relay_write(&t->r, text, n);
    }
    if (!t->r.failed && !t->r.cut) {
        mg_relay_end(&t->r);
    }
    mg_head_deinit(&h);
    mg_upreq_deinit(&up);
}

static void
run_free(struct run *t)
{
    mg_relay_deinit(&t->r);
    mg_buf_deinit(&t->k.out);
}

START_TEST(usage_stripped_across_split_reads)
{
    size_t cut, n = strlen(injected_stream);
    struct run t;

    for (cut = 0; cut < n; cut++) {
        run_relay(&t, 1, 1, "/chat/completions", injected_stream, n, cut);
        ck_assert_msg(t.k.out.data && strcmp(t.k.out.data, client_stream) == 0,
                      "cut at %zu:\n%s", cut, t.k.out.data);
        ck_assert_msg(t.r.have_usage && t.r.usage.input == 11 && t.r.usage.output == 22,
                      "cut at %zu: usage lost", cut);
        ck_assert_int_eq(t.k.commits, 1);
        ck_assert(t.r.finished && t.r.done && !t.r.cut);
        run_free(&t);
    }
}
END_TEST

START_TEST(observed_stream_passes_untouched)
{
    size_t cut, n = strlen(injected_stream);
    struct run t;

    for (cut = 0; cut < n; cut++) {
        run_relay(&t, 1, 0, "/chat/completions", injected_stream, n, cut);
        ck_assert_msg(strcmp(t.k.out.data, injected_stream) == 0, "cut at %zu", cut);
        ck_assert_msg(t.r.have_usage && t.r.usage.input == 11 && t.r.usage.output == 22,
                      "cut at %zu: usage lost", cut);
        run_free(&t);
    }
}
END_TEST

/* The commit point of a chat stream: held until the first event with output. */
START_TEST(stream_commits_at_first_output)
{
    static const char *quiet[] = {
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":null},\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[]}}],\"usage\":null}\n\n",
        ": keep-alive comment\n\n",
        "data: {\"choices\":[]}\n\n",
    };
    static const char *output[] = {
        "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"refusal\":\"no\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n",
        "data: {\"choices\":[{\"text\":\"x\"}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n",
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(quiet); i++) {
        ck_assert_msg(!(mg_relay_event_kind(&mg_api_chat, 0, quiet[i], strlen(quiet[i])) &
                        MG_EV_OUTPUT), "commits: %s", quiet[i]);
    }
    for (i = 0; i < MG_ARRAY_LEN(output); i++) {
        ck_assert_msg(mg_relay_event_kind(&mg_api_chat, 0, output[i], strlen(output[i])) &
                      MG_EV_OUTPUT, "does not commit: %s", output[i]);
    }
    ck_assert(mg_relay_event_kind(&mg_api_chat, 1, "data: [DONE]\n\n", 14) == MG_EV_DONE);
    ck_assert(mg_relay_event_kind(&mg_api_chat, 1, output[5], strlen(output[5])) & MG_EV_FINISH);
    ck_assert(mg_relay_event_kind(&mg_api_messages, 0, "event: message_start\ndata: {}\n\n", 31)
              == 0);
    ck_assert(mg_relay_event_kind(&mg_api_messages, 0,
                                  "event: content_block_delta\ndata: {}\n\n", 38) & MG_EV_OUTPUT);
    ck_assert(mg_relay_event_kind(&mg_api_openai, 0, "event: response.created\ndata: {}\n\n",
                                  35) & MG_EV_OUTPUT);
    {
        /* the events before the commit reach the client first, in order */
        struct run t;
        const char *s = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                        ": ping\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n"
                        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        run_relay(&t, 1, 0, "/chat/completions", s, strlen(s), 0);
        ck_assert_int_eq(t.k.commits, 1);
        ck_assert_uint_eq(t.k.at_commit, 0);
        ck_assert_str_eq(t.k.out.data, /* [DONE] added: the stream had its finish */
                         "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                         ": ping\n\n"
                         "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n"
                         "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                         "data: [DONE]\n\n");
        run_free(&t);
    }
}
END_TEST

START_TEST(stream_errors_before_and_after_commit)
{
    struct run t;
    const char *before = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
                         "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";
    const char *after = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n"
                        "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
                        "data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n";
    const char *unfinished = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n";

    /* before any output: nothing reaches the client, the attempt fails over */
    run_relay(&t, 1, 0, "/chat/completions", before, strlen(before), 0);
    ck_assert_int_eq(t.k.commits, 0);
    ck_assert(t.r.failed);
    ck_assert_str_eq(t.r.why, "overloaded");
    run_free(&t);
    /* after output: exactly one error event, nothing after it, never [DONE] */
    run_relay(&t, 1, 0, "/chat/completions", after, strlen(after), 0);
    ck_assert(t.r.cut);
    ck_assert_str_eq(t.k.out.data,
                     "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n"
                     "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"upstream_error\","
                     "\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n");
    run_free(&t);
    /* a clean end before the finish is a cut too */
    run_relay(&t, 1, 0, "/chat/completions", unfinished, strlen(unfinished), 0);
    ck_assert(t.r.cut);
    ck_assert_ptr_nonnull(strstr(t.k.out.data, "\"code\":\"upstream_stream_error\""));
    ck_assert_ptr_null(strstr(t.k.out.data, "[DONE]"));
    run_free(&t);
    /* /v1/messages: Anthropic's error shape, and message_stop is the finish */
    {
        const char *m = "event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
                        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\n";
        run_relay(&t, 1, 0, "/messages", m, strlen(m), 0);
        ck_assert(t.r.cut);
        ck_assert_ptr_nonnull(strstr(t.k.out.data, "event: error\ndata: {\"type\":\"error\","
                                                   "\"error\":{\"type\":\"api_error\""));
        run_free(&t);
    }
}
END_TEST

/* 1 when a backend of schema (its config saying nothing more) serves api, natively or not. */
static int
serves(const struct mg_api *api, int schema)
{
    struct mg_backend b = {.schema = schema};

    return mg_api_mode(api, &b) != 0;
}

/* The client API is chosen once from the path: its error shape and the schemas that serve it. */
START_TEST(client_api_route_table)
{
    static const struct {
        const char          *path;
        const struct mg_api *want;
    } t[] = {
        {"/v1/chat/completions", &mg_api_chat},
        {"/v1/completions", &mg_api_completions},
        {"/v1/messages", &mg_api_messages},
        {"/v1/messages/count_tokens", &mg_api_count_tokens},
        {"/v1/messages/batches", &mg_api_messages_other},
        {"/v1/messages/batches/x/results", &mg_api_messages_other},
        {"/v1/messagesx", &mg_api_openai},
        {"/v1/chat/completions/x", &mg_api_openai},
        {"/v1/embeddings", &mg_api_openai},
        {"/v1/responses", &mg_api_responses},
        {"/v1/responses/resp_1", &mg_api_openai},
        {"/healthz", &mg_api_openai},
        {NULL, &mg_api_openai},
    };
    struct mg_buf b;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(t); i++) {
        ck_assert_msg(mg_api_route(t[i].path) == t[i].want, "%s: %s", t[i].path,
                      mg_api_route(t[i].path)->name);
    }
    /* which schemas serve each API (the others are left out when entries are ranked) */
    ck_assert(serves(&mg_api_chat, MG_SCHEMA_BEDROCK));
    ck_assert(serves(&mg_api_chat, MG_SCHEMA_ANTHROPIC));
    ck_assert(!serves(&mg_api_completions, MG_SCHEMA_ANTHROPIC));
    ck_assert(!serves(&mg_api_completions, MG_SCHEMA_BEDROCK));
    ck_assert(serves(&mg_api_messages, MG_SCHEMA_OPENAI));
    ck_assert(serves(&mg_api_messages, MG_SCHEMA_AZURE));
    ck_assert(!serves(&mg_api_messages_other, MG_SCHEMA_ANTHROPIC));
    ck_assert(serves(&mg_api_openai, MG_SCHEMA_AZURE));
    ck_assert(!serves(&mg_api_openai, MG_SCHEMA_BEDROCK));
    ck_assert(!serves(&mg_api_openai, -1));
    {
        /* Messages and Responses: natively where the schema speaks them, else through chat; a
         * backend's keys change that (messages: native, responses: translate) */
        struct mg_backend oa = {.schema = MG_SCHEMA_OPENAI};
        struct mg_backend br = {.schema = MG_SCHEMA_BEDROCK};
        struct mg_backend an = {.schema = MG_SCHEMA_ANTHROPIC};
        ck_assert_int_eq(mg_api_mode(&mg_api_messages, &an), MG_API_NATIVE);
        ck_assert_int_eq(mg_api_mode(&mg_api_messages, &oa), MG_API_HUB);
        ck_assert_int_eq(mg_api_mode(&mg_api_messages, &br), MG_API_HUB);
        ck_assert_int_eq(mg_api_mode(&mg_api_responses, &oa), MG_API_NATIVE);
        ck_assert_int_eq(mg_api_mode(&mg_api_responses, &an), MG_API_HUB);
        ck_assert_int_eq(mg_api_mode(&mg_api_count_tokens, &oa), 0);
        oa.api_native = MG_API_BIT_MESSAGES;
        oa.api_hub = MG_API_BIT_RESPONSES;
        ck_assert_int_eq(mg_api_mode(&mg_api_messages, &oa), MG_API_NATIVE);
        ck_assert_int_eq(mg_api_mode(&mg_api_count_tokens, &oa), MG_API_NATIVE);
        ck_assert_int_eq(mg_api_mode(&mg_api_messages_other, &oa), MG_API_NATIVE);
        ck_assert_int_eq(mg_api_mode(&mg_api_responses, &oa), MG_API_HUB);
        ck_assert_int_eq(mg_api_mode(&mg_api_messages_other, &an), 0);
    }
    /* the gateway's own errors: Anthropic's shape on /v1/messages and below, else OpenAI's */
    mg_buf_init(&b, 4096);
    mg_api_route("/v1/messages/count_tokens")->error_body(&b, 404, "model_not_found", "model",
                                                          "no \"m\"");
    ck_assert_str_eq(b.data, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                             "\"message\":\"no \\\"m\\\"\"}}\n");
    mg_buf_reset(&b);
    mg_api_route("/v1/embeddings")->error_body(&b, 429, "rate_limit_exceeded", NULL, "slow");
    ck_assert_str_eq(b.data, "{\"error\":{\"message\":\"slow\",\"type\":\"rate_limit_error\","
                             "\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n");
    mg_buf_deinit(&b);
    /* count_tokens answers are no usage: nothing is estimated for them */
    ck_assert_int_eq(mg_api_count_tokens.usage, MG_API_USAGE_NONE);
    ck_assert_int_eq(mg_api_messages.usage, MG_API_USAGE_OBJECT);
}
END_TEST

/* The relay's verdict is what the outcome table reads: one flag for each way a stream breaks. */
START_TEST(relay_verdict_as_attempt_flags)
{
    struct run t;
    const char *unfinished = "data: {\"choices\":[{\"delta\":{\"content\":\"A\"}}]}\n\n";
    const char *error = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";

    run_relay(&t, 1, 0, "/chat/completions", unfinished, strlen(unfinished), 0);
    ck_assert_uint_eq(mg_relay_verdict(&t.r), MG_AF_RELAY_CUT);
    run_free(&t);
    run_relay(&t, 1, 0, "/chat/completions", error, strlen(error), 0);
    ck_assert_uint_eq(mg_relay_verdict(&t.r), MG_AF_RELAY_FAILED);
    run_free(&t);
    run_relay(&t, 1, 0, "/chat/completions", ": ping\n\n", 8, 0);
    ck_assert_uint_eq(mg_relay_verdict(&t.r), MG_AF_RELAY_EMPTY);
    run_free(&t);
    run_relay(&t, 0, 0, "/chat/completions", "{}", 2, 0);
    ck_assert_uint_eq(mg_relay_verdict(&t.r), 0);
    run_free(&t);
}
END_TEST

/*
 * A stream that ends cleanly before any event (nothing, or only comments and blank lines) is
 * empty: nothing reaches the client and the relay says so (r->empty), so the attempt fails over
 * like a 502. One event, even without output, and the answer commits at the end (then is cut
 * there if it is unfinished).
 */
START_TEST(stream_without_events_is_empty)
{
    static const struct {
        const char *upath, *text;
    } empty[] = {
        {"/chat/completions", ""},
        {"/chat/completions", "\n\n\n"},
        {"/chat/completions", ": keep-alive\n\n: ping\r\n\r\n\n"},
        {"/chat/completions", ": no blank line at the end"},
        {"/messages", ":\n\n"},
        {"/responses", "\r\n\r\n"},
    };
    static const struct {
        const char *upath, *text;
        int cut;
    } events[] = {
        {"/chat/completions", "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", 1},
        {"/chat/completions", ": hi\n\ndata: {\"choices\":[]}", 1},
        {"/messages", "event: ping\n\n", 1},
        {"/messages", "event: message_start\ndata: {}\n\n", 1},
        {"/responses", "event: response.created\ndata: {}\n\n", 1},   /* no completed */
        {"/embeddings", "data: {}\n\n", 0},
    };
    size_t i, cut, n;
    struct run t;

    for (i = 0; i < MG_ARRAY_LEN(empty); i++) {
        n = strlen(empty[i].text);
        for (cut = 0; cut < (n > 0 ? n : 1); cut++) {
            run_relay(&t, 1, 0, empty[i].upath, empty[i].text, n, cut);
            ck_assert_msg(t.k.commits == 0, "%zu at %zu: committed", i, cut);
            ck_assert_msg(t.k.out.len == 0, "%zu at %zu: sent %s", i, cut, t.k.out.data);
            ck_assert_msg(t.r.failed && t.r.empty && !t.r.cut, "%zu at %zu: not empty", i, cut);
            ck_assert_str_eq(t.r.why, "the backend ended the stream before any event");
            run_free(&t);
        }
    }
    for (i = 0; i < MG_ARRAY_LEN(events); i++) {
        n = strlen(events[i].text);
        run_relay(&t, 1, 0, events[i].upath, events[i].text, n, 0);
        ck_assert_msg(t.k.commits == 1, "%zu: not committed", i);
        ck_assert_msg(!t.r.failed && !t.r.empty, "%zu: failed", i);
        ck_assert_msg(t.r.cut == events[i].cut, "%zu: cut %d", i, t.r.cut);
        run_free(&t);
    }
    /* an empty plain answer is an answer: it commits at its end */
    run_relay(&t, 0, 0, "/chat/completions", "", 0, 0);
    ck_assert_int_eq(t.k.commits, 1);
    ck_assert(!t.r.failed && !t.r.empty);
    run_free(&t);
}
END_TEST

START_TEST(stream_hold_is_capped)
{
    struct mg_buf s;
    struct run t;

    mg_buf_init(&s, 1 << 20);
    while (s.len < MG_RELAY_HOLD_MAX + 100) {
        mg_buf_adds(&s, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
    }
    run_relay(&t, 1, 0, "/chat/completions", s.data, s.len, 0);
    ck_assert_int_eq(t.k.commits, 1);   /* past 64 KiB the answer commits */
    ck_assert_uint_ge(t.k.out.len, s.len);
    mg_buf_deinit(&s);
    run_free(&t);
}
END_TEST

START_TEST(json_tail_reads_usage_of_long_answers)
{
    struct mg_buf body;
    struct run t;
    size_t cut;

    mg_buf_init(&body, 1 << 20);
    mg_buf_adds(&body, "{\"choices\":[{\"message\":{\"content\":\"");
    while (body.len < 100000) {
        mg_buf_adds(&body, "lorem ipsum \\\"usage\\\": {\\\"prompt_tokens\\\": 1} ");
    }
    mg_buf_adds(&body, "\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}");
    for (cut = 1; cut < body.len; cut += 4099) {
        run_relay(&t, 0, 0, "/chat/completions", body.data, body.len, cut);
        ck_assert_uint_eq(t.k.out.len, body.len);
        ck_assert_int_eq(t.k.commits, 1);
        ck_assert_uint_eq(t.k.at_commit, 0);   /* a plain answer commits with its first byte */
        ck_assert_msg(t.r.have_usage && t.r.usage.input == 5 && t.r.usage.output == 6,
                      "cut at %zu", cut);
        run_free(&t);
    }
    /* an empty body commits at its end */
    run_relay(&t, 0, 0, "/embeddings", "", 0, 0);
    ck_assert_int_eq(t.k.commits, 1);
    run_free(&t);
    mg_buf_deinit(&body);
}
END_TEST

START_TEST(context_length_wordings)
{
    static const char *yes[] = {
        "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens. However, "
        "your messages resulted in 9000 tokens.\",\"type\":\"invalid_request_error\","
        "\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}",
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
        "\"prompt is too long: 210000 tokens > 200000 maximum\"}}",
        "{\"error\":{\"code\":400,\"message\":\"the request exceeds the available context size, "
        "try increasing it\",\"type\":\"exceed_context_size_error\"}}",
        "{\"object\":\"error\",\"message\":\"This model's maximum context length is 4096 tokens. "
        "However, you requested 5000 tokens\",\"type\":\"BadRequestError\",\"code\":400}",
        "{\"message\":\"Input is too long for requested model.\"}",
    };
    static const char *no[] = {
        "{\"error\":{\"message\":\"Your request was rejected as a result of our safety system.\","
        "\"type\":\"invalid_request_error\",\"code\":\"content_policy_violation\"}}",
        "{\"error\":{\"message\":\"Invalid value for 'temperature'\",\"code\":null}}",
        "",
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(yes); i++) {
        ck_assert_msg(mg_failover_context_length(yes[i], strlen(yes[i])), "%s", yes[i]);
    }
    for (i = 0; i < MG_ARRAY_LEN(no); i++) {
        ck_assert_msg(!mg_failover_context_length(no[i], strlen(no[i])), "%s", no[i]);
    }
}
END_TEST

START_TEST(same_backend_retry_rules)
{
    struct mg_rule rule;
    uint64_t rng = 42;
    struct mg_failure f;
    int64_t d;
    int i;

    memset(&rule, 0, sizeof(rule));
    rule.retry_same = 1;
    rule.retry_after_max_ms = 5000;
    memset(&f, 0, sizeof(f));
    f.total_ms = 600000;
    f.retry_after_s = -1;
    f.outcome = MG_OUTCOME_FAIL_STATUS;
    for (i = 0; i < 200; i++) {   /* 500/502/504: a random 200-500 ms pause */
        f.status = i % 3 == 0 ? 500 : i % 3 == 1 ? 502 : 504;
        d = mg_failover_retry_delay(&rule, &f, &rng);
        ck_assert(d >= 200 && d <= 500);
    }
    f.status = 503;   /* without Retry-After: moves on */
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.retry_after_s = 2;   /* with a short one: waited out exactly */
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), 2000);
    f.status = 429;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), 2000);
    f.status = 529;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), 2000);
    f.retry_after_s = 6;   /* longer than retry_after_max */
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.retry_after_s = 2;
    f.total_ms = 1000;     /* longer than total */
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.total_ms = 600000;
    f.outcome = MG_OUTCOME_FAIL_ERROR;
    f.status = 0;
    f.rc = CURLE_RECV_ERROR;   /* reset */
    d = mg_failover_retry_delay(&rule, &f, &rng);
    ck_assert(d >= 200 && d <= 500);
    f.rc = CURLE_GOT_NOTHING;   /* closed */
    ck_assert(mg_failover_retry_delay(&rule, &f, &rng) >= 200);
    f.rc = CURLE_COULDNT_CONNECT;   /* never connected: another backend */
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.outcome = MG_OUTCOME_FAIL_TIMEOUT;
    f.rc = CURLE_OPERATION_TIMEDOUT;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.outcome = MG_OUTCOME_FAIL_EVENT;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    f.outcome = MG_OUTCOME_FAIL_EMPTY;   /* a stream that ended before any event: as a 502 */
    f.rc = CURLE_OK;
    f.status = 200;
    for (i = 0; i < 50; i++) {
        d = mg_failover_retry_delay(&rule, &f, &rng);
        ck_assert(d >= 200 && d <= 500);
    }
    rule.retry_same = 0;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
    rule.retry_same = 1;
    f.outcome = MG_OUTCOME_FAIL_STATUS;
    f.status = 500;
    rule.retry_same = 0;
    ck_assert_int_eq(mg_failover_retry_delay(&rule, &f, &rng), -1);
}
END_TEST

/* Header lines live in one buffer per attempt; curl's list points into it, in order. */
START_TEST(header_lines_in_one_buffer)
{
    struct mg_upreq up;
    struct curl_slist *l;
    char *big = malloc(60 * 1024);
    int i;

    mg_upreq_init(&up, 16);
    ck_assert_ptr_null(mg_schema_header_list(&up));
    mg_schema_add_header(&up, "X-One", "1");
    mg_schema_add_header(&up, "X-Empty", "");
    mg_schema_add_line(&up, "Accept-Encoding: identity");
    l = mg_schema_header_list(&up);
    ck_assert_str_eq(l->data, "X-One: 1");
    ck_assert_str_eq(l->next->data, "X-Empty;");
    ck_assert_str_eq(l->next->next->data, "Accept-Encoding: identity");
    ck_assert_ptr_null(l->next->next->next);

    /* a new attempt starts empty; its shorter lines land on the old bytes, and each must still
     * end where it ends (the old "X-One: 1" has a space where "X-2: 2" ends) */
    mg_upreq_reset(&up);
    ck_assert_ptr_null(mg_schema_header_list(&up));
    mg_schema_add_line(&up, "X-2: 2");
    mg_schema_add_header(&up, "X-3", "3");
    l = mg_schema_header_list(&up);
    ck_assert_str_eq(l->data, "X-2: 2");
    ck_assert_str_eq(l->next->data, "X-3: 3");
    ck_assert_ptr_null(l->next->next);

    /* past the cap the line is not cut in half: the list is refused as a whole */
    memset(big, 'v', 60 * 1024 - 1);
    big[60 * 1024 - 1] = '\0';
    for (i = 0; i < 5; i++) {
        mg_schema_add_header(&up, "X-Big", big);
    }
    ck_assert_int_eq(up.lines_cut, 1);
    ck_assert_uint_eq(up.nlines, 6);
    ck_assert_ptr_null(mg_schema_header_list(&up));
    mg_upreq_deinit(&up);
    free(big);
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
    tcase_add_test(t, header_lines_in_one_buffer);
    tcase_add_test(t, openai_override_and_usage_injection);
    tcase_add_test(t, usage_stripped_across_split_reads);
    tcase_add_test(t, observed_stream_passes_untouched);
    tcase_add_test(t, stream_commits_at_first_output);
    tcase_add_test(t, stream_errors_before_and_after_commit);
    tcase_add_test(t, stream_without_events_is_empty);
    tcase_add_test(t, client_api_route_table);
    tcase_add_test(t, relay_verdict_as_attempt_flags);
    tcase_add_test(t, stream_hold_is_capped);
    tcase_add_test(t, json_tail_reads_usage_of_long_answers);
    tcase_add_test(t, context_length_wordings);
    tcase_add_test(t, same_backend_retry_rules);
    suite_add_tcase(s, t);
    return s;
}
