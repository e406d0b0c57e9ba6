/*
 * Mid-stream resume over HTTP (SPEC "Mid-stream resume"): build/modelgate in front of two
 * fakeai, f1 for the first entries (the faults are steered to it with x-fake-for: f1) and f2 for
 * the prefill entries. fakeai's stream text is "tok0 tok1 ... " and a prefill backend continues
 * a final assistant message with the rest of that answer (test/fakeai.c), so a spliced answer
 * can be compared exactly with what the continuing backend gives uncut.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_api.h"
#include "mg_harness.h"
#include "mg_relay.h"
#include "mg_resume.h"
#include "mg_test.h"
#include "mg_util.h"

enum { F1, F2, NFAKE };
static const char *const fake_names[NFAKE] = {"f1", "f2"};
static struct mg_harness gwh;
static const char *acc_log = "mgtest-resume-access.log";

/* the rules, by index (the metric's label) */
enum { R_OA_ANP, R_ANT_VL, R_BR_BRP, R_OA_VL_ANP, R_NORESUME, R_NOPREFILL, R_DIRECT_ANP,
       R_DIRECT_VL, R_DIRECT_BRP, R_RETRIES0, R_OA_VL_ANP1 };

static void
start_all(void)
{
    char conf[8192];
    int p1, p2;

    mg_harness_init(&gwh, "mgtest-resume-gw.log", "mgtest-resume-fake.log");
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
             "backends:\n"
             "  - {name: oa, url: 'http://127.0.0.1:%d/v1', api_key: o1}\n"
             "  - {name: ant, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a1}\n"
             "  - {name: br, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret}\n"
             "  - {name: anp, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a2,"
             " prefill: true}\n"
             "  - {name: vl, url: 'http://127.0.0.1:%d/v1', api_key: o2, prefill: true}\n"
             "  - {name: brp, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret, prefill: true}\n"
             "  - {name: anp1, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: a3,"
             " prefill: true}\n"
             "  - {name: oat, url: 'http://127.0.0.1:%d/v1', api_key: o3, responses: translate}\n"
             "  - {name: oaidle, url: 'http://127.0.0.1:%d/v1', api_key: o4,"
             " timeouts: {idle: 300ms}}\n"
             "rules:\n"
             "  - {models: [oa-anp], resume: true, backends: [{backend: oa},"
             " {backend: anp, priority: 1}]}\n"
             "  - {models: [ant-vl], resume: true, backends: [{backend: ant},"
             " {backend: vl, priority: 1}]}\n"
             "  - {models: [br-brp], resume: true, backends: [{backend: br},"
             " {backend: brp, priority: 1}]}\n"
             "  - {models: [oa-vl-anp], resume: true, backends: [{backend: oa},"
             " {backend: vl, priority: 1}, {backend: anp, priority: 2}]}\n"
             "  - {models: [noresume], backends: [{backend: oa}, {backend: vl, priority: 1}]}\n"
             "  - {models: [noprefill], resume: true, backends: [{backend: oa},"
             " {backend: ant, priority: 1}]}\n"
             "  - {models: [direct-anp], backends: [{backend: anp}]}\n"
             "  - {models: [direct-vl], backends: [{backend: vl}]}\n"
             "  - {models: [direct-brp], backends: [{backend: brp}]}\n"
             "  - {models: [retries0], resume: true, retries: 0, backends: [{backend: oa},"
             " {backend: vl, priority: 1}]}\n"
             "  - {models: [oa-vl-anp1], resume: true, backends: [{backend: oa},"
             " {backend: vl, priority: 1}, {backend: anp1, priority: 2}]}\n"
             /* Responses: oat and anp both through the hub; Messages: anp is native there, so
              * the continuation goes to brp (through the hub, as oa was) */
             "  - {models: [hub-resp], resume: true, backends: [{backend: oat},"
             " {backend: anp, priority: 1}]}\n"
             "  - {models: [hub-msg], resume: true, backends: [{backend: oa},"
             " {backend: anp, priority: 1}, {backend: brp, priority: 2}]}\n"
             /* Messages passed through: the continuation on anp, natively (brp is a hub's) */
             "  - {models: [native-msg], resume: true, backends: [{backend: ant},"
             " {backend: brp, priority: 1}, {backend: anp, priority: 2}]}\n"
             "  - {models: [idle-vl], resume: true, backends: [{backend: oaidle},"
             " {backend: vl, priority: 1}]}\n",
             gwh.gw_port, acc_log, p1, p1, p1, p2, p2, p2, p1, p1, p1);
    unlink(acc_log);
    mg_harness_start(&gwh, 3, conf);
}

static void
stop_all(void)
{
    mg_harness_stop(&gwh, "modelgate");
}

/* ---- a stream, as the client saw it --------------------------------------------------------- */

struct seen {
    char   text[4096];
    int    roles;        /* chunks with a role */
    int    errors;       /* error events */
    int    done;         /* data: [DONE] */
    int    finishes;
    int    tools;
    int    same_ident;   /* every chunk has the first chunk's id, created and model */
    json_t *usage;       /* the last usage object, or NULL */
    int    chunks;
};

static void
seen_parse(struct seen *s, const char *p, size_t n)
{
    char *copy = mg_strndup(p, n), *ev, *save = NULL;
    char id[256] = "", model[256] = "";
    json_int_t created = -1;

    memset(s, 0, sizeof(*s));
    s->same_ident = 1;
    for (ev = strtok_r(copy, "\n", &save); ev != NULL; ev = strtok_r(NULL, "\n", &save)) {
        json_t *j, *c, *d;
        size_t i;
        if (strncmp(ev, "data: ", 6) != 0) {
            continue;
        }
        if (strcmp(ev + 6, "[DONE]") == 0) {
            s->done++;
            continue;
        }
        j = json_loads(ev + 6, 0, NULL);
        ck_assert_msg(j != NULL, "an event that is not JSON: %s", ev);
        if (json_object_get(j, "error") != NULL) {
            s->errors++;
            json_decref(j);
            continue;
        }
        s->chunks++;
        if (id[0] == '\0') {
            snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
            snprintf(model, sizeof(model), "%s", json_string_value(json_object_get(j, "model")));
            created = json_integer_value(json_object_get(j, "created"));
        } else if (strcmp(id, json_string_value(json_object_get(j, "id"))) != 0 ||
                   strcmp(model, json_string_value(json_object_get(j, "model"))) != 0 ||
                   created != json_integer_value(json_object_get(j, "created"))) {
            s->same_ident = 0;
        }
        json_array_foreach(json_object_get(j, "choices"), i, c) {
            d = json_object_get(c, "delta");
            s->roles += json_object_get(d, "role") != NULL;
            s->tools += json_object_get(d, "tool_calls") != NULL;
            s->finishes += json_is_string(json_object_get(c, "finish_reason"));
            if (json_is_string(json_object_get(d, "content"))) {
                size_t have = strlen(s->text);
                snprintf(s->text + have, sizeof(s->text) - have, "%s",
                         json_string_value(json_object_get(d, "content")));
            }
        }
        if (json_is_object(json_object_get(j, "usage"))) {
            json_decref(s->usage);
            s->usage = json_incref(json_object_get(j, "usage"));
        }
        json_decref(j);
    }
    free(copy);
}

/* A streamed chat request for model with headers (NULL-terminated, may be NULL). */
static void
stream(const char *model, const char *extra_body, const char *const *headers, struct seen *s)
{
    struct mg_test_resp r;
    char body[1024];

    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"count for me\"}]%s}", model, extra_body ? extra_body : "");
    mg_test_http("POST", mg_harness_url(&gwh, "/v1/chat/completions"), body, strlen(body),
                 headers, &r);
    ck_assert_msg(r.status == 200, "%s: status %ld: %.*s", model, r.status, (int)r.body.len,
                  r.body.data);
    seen_parse(s, r.body.data, r.body.len);
    mg_test_resp_free(&r);
}

/* The access log line holding needle (waits for the flush). */
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

/* A counter of /metrics (0 when absent). */
static long
metric(const char *series)
{
    struct mg_test_resp r;
    const char *at;
    long v = 0;

    mg_test_http("GET", mg_harness_url(&gwh, "/metrics"), NULL, 0, NULL, &r);
    at = r.body.data != NULL ? strstr(r.body.data, series) : NULL;
    if (at != NULL) {
        v = strtol(at + strlen(series), NULL, 10);
    }
    mg_test_resp_free(&r);
    return v;
}

/* ---- tests --------------------------------------------------------------------------------- */

/*
 * A stream cut after `cut` tokens on each primary (openai, anthropic, bedrock) is completed on a
 * prefill backend of another schema; the client's text is exactly the continuing backend's uncut
 * answer, with one role chunk, the first attempt's id/created/model throughout, one finish,
 * [DONE], no error event; the access log says resumed:1 and the metric counts it.
 */
START_TEST(resume_each_primary)
{
    static const struct {
        const char *model, *direct;
        int         rule;
    } cases[] = {
        {"oa-anp", "direct-anp", R_OA_ANP},
        {"ant-vl", "direct-vl", R_ANT_VL},
        {"br-brp", "direct-brp", R_BR_BRP},
    };
    const char *cut = _i % 2 == 0 ? "x-fake-cut-at-token: 2" : "x-fake-cut-at-token: 5";
    const char *chunks = "x-fake-chunks: 7";
    char rid[64], rid_h[96], ok[96];
    struct seen whole, spliced;
    json_t *line;
    long before;
    int c = _i / 2;

    const char *plain[] = {chunks, NULL};
    stream(cases[c].direct, NULL, plain, &whole);
    ck_assert_int_eq(whole.errors, 0);
    ck_assert_msg(strlen(whole.text) > 20, "uncut: %s", whole.text);

    snprintf(ok, sizeof(ok), "modelgate_resumes_total{rule=\"%d\",result=\"ok\"} ",
             cases[c].rule);
    before = metric(ok);
    snprintf(rid, sizeof(rid), "resume-%s-%d", cases[c].model, _i);
    snprintf(rid_h, sizeof(rid_h), "x-request-id: %s", rid);
    const char *h[] = {"x-fake-for: f1", cut, chunks, rid_h, NULL};
    stream(cases[c].model, NULL, h, &spliced);
    ck_assert_msg(strcmp(spliced.text, whole.text) == 0, "%s: spliced \"%s\", uncut \"%s\"",
                  cases[c].model, spliced.text, whole.text);
    ck_assert_int_eq(spliced.errors, 0);
    ck_assert_int_eq(spliced.roles, 1);
    ck_assert_int_eq(spliced.finishes, 1);
    ck_assert_int_eq(spliced.done, 1);
    ck_assert_msg(spliced.same_ident, "%s: a chunk with another id, created or model",
                  cases[c].model);
    line = access_line(rid);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "status")), 200);
    ck_assert_ptr_null(json_object_get(line, "error"));
    ck_assert_int_eq(json_array_size(json_object_get(line, "backends")), 2);
    json_decref(line);
    ck_assert_int_eq(metric(ok), before + 1);
}
END_TEST

/*
 * The usage the client sees: the first attempt's input (an estimate: it reported none) and the
 * output of both (2 events relayed, then the continuation's 20); the log debits both attempts.
 */
START_TEST(resume_usage)
{
    const char *h[] = {"x-fake-for: f1", "x-fake-cut-at-token: 2", "x-fake-chunks: 5",
                       "x-request-id: resume-usage", NULL};
    struct seen s;
    json_t *line;

    stream("oa-vl-anp", ",\"stream_options\":{\"include_usage\":true}", h, &s);
    ck_assert_int_eq(s.errors, 0);
    ck_assert_str_eq(s.text, "tok0 tok1 tok2 tok3 tok4 ");
    ck_assert_ptr_nonnull(s.usage);
    ck_assert_int_eq(json_integer_value(json_object_get(s.usage, "completion_tokens")), 22);
    ck_assert_int_eq(json_integer_value(json_object_get(s.usage, "total_tokens")),
                     json_integer_value(json_object_get(s.usage, "prompt_tokens")) + 22);
    ck_assert_int_lt(json_integer_value(json_object_get(s.usage, "prompt_tokens")), 40);
    json_decref(s.usage);
    line = access_line("resume-usage");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "output_tokens")), 22);
    ck_assert_int_gt(json_integer_value(json_object_get(line, "input_tokens")), 10);
    json_decref(line);
}
END_TEST

/*
 * The other ways a stream breaks after its commit are resumed alike: an error event after output
 * (the error event the client would have got is never written) and an idle timeout.
 */
START_TEST(resume_error_event_and_idle)
{
    const char *ev[] = {"x-fake-for: f1", "x-fake-error-event-at: 3", "x-fake-chunks: 5", NULL};
    const char *stall[] = {"x-fake-for: f1", "x-fake-stall-after: 3", "x-fake-chunks: 5", NULL};
    struct seen s;

    stream("oa-vl-anp", NULL, ev, &s);
    ck_assert_str_eq(s.text, "tok0 tok1 tok2 tok3 tok4 ");
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.done, 1);
    stream("idle-vl", NULL, stall, &s);
    ck_assert_str_eq(s.text, "tok0 tok1 tok2 tok3 tok4 ");
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.roles, 1);
    ck_assert_int_eq(s.done, 1);
}
END_TEST

/* One error event, no [DONE], and the prefill backend never asked. */
static void
assert_not_resumed(const char *model, const char *extra, const char *fault, const char *want)
{
    const char *h[] = {"x-fake-for: f1", fault, "x-fake-chunks: 5", NULL};
    long f2 = mg_test_fake_stat(gwh.fake_port[F2], "requests");
    struct seen s;

    stream(model, extra, h, &s);
    ck_assert_int_eq(s.errors, 1);
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(s.finishes, 0);
    ck_assert_msg(strcmp(s.text, want) == 0, "%s: text \"%s\"", model, s.text);
    ck_assert_int_eq(mg_test_fake_stat(gwh.fake_port[F2], "requests"), f2);
    json_decref(s.usage);
}

START_TEST(no_resume_without_key_or_entry)
{
    assert_not_resumed("noresume", NULL, "x-fake-cut-at-token: 2", "tok0 tok1 ");
    assert_not_resumed("noprefill", NULL, "x-fake-cut-at-token: 2", "tok0 tok1 ");
    assert_not_resumed("retries0", NULL, "x-fake-cut-at-token: 2", "tok0 tok1 ");
    assert_not_resumed("oa-vl-anp", ",\"n\":2", "x-fake-cut-at-token: 2", "tok0 tok1 ");
}
END_TEST

/* Inside a tool call the stream is never continued. */
START_TEST(no_resume_in_tool_call)
{
    const char *h[] = {"x-fake-for: f1", "x-fake-cut-after: 2", NULL};
    long f2 = mg_test_fake_stat(gwh.fake_port[F2], "requests");
    struct seen s;

    stream("oa-vl-anp", ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\","
           "\"parameters\":{}}}]", h, &s);
    ck_assert_int_ge(s.tools, 1);
    ck_assert_int_eq(s.errors, 1);
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(mg_test_fake_stat(gwh.fake_port[F2], "requests"), f2);
}
END_TEST

/*
 * Prefill backends that answer the continuation with a 400 (a model that refuses prefill): each
 * is a failed attempt, and with none left the stream ends with its one error event; counted as
 * a failed resume, and the backends stay up.
 */
START_TEST(prefill_400_ends_with_error_event)
{
    const char *h[] = {"x-fake-for: f1", "x-fake-cut-at-token: 2", "x-fake-chunks: 5",
                       "x-fake-status: 400", "x-fake-status-for: f2",
                       "x-request-id: resume-400", NULL};
    const char *failed = "modelgate_resumes_total{rule=\"3\",result=\"failed\"} ";
    long before = metric(failed), f2 = mg_test_fake_stat(gwh.fake_port[F2], "requests");
    struct seen s;
    json_t *line;

    stream("oa-vl-anp", NULL, h, &s);
    ck_assert_str_eq(s.text, "tok0 tok1 ");
    ck_assert_int_eq(s.errors, 1);
    ck_assert_int_eq(s.done, 0);
    ck_assert_int_eq(mg_test_fake_stat(gwh.fake_port[F2], "requests"), f2 + 2);   /* vl, anp */
    line = access_line("resume-400");
    ck_assert_str_eq(json_string_value(json_object_get(line, "error")), "upstream_stream_error");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "status")), 200);
    json_decref(line);
    ck_assert_int_eq(metric(failed), before + 1);
    ck_assert_int_eq(metric("modelgate_backend_up{backend=\"vl\"} "), 1);
}
END_TEST

/*
 * A continuation cut in its turn goes on to the next prefill entry (never back to a backend that
 * was cut): f1's and f2's first requests with the key are cut after 2 pieces, anp1 (on f1, whose
 * first request was the cut one) continues; resumed: 2.
 */
START_TEST(continuation_cut_again)
{
    const char *h[] = {"x-fake-fail-key: resume-twice", "x-fake-fail-times: 1",
                       "x-fake-cut-at-token: 2", "x-fake-chunks: 7",
                       "x-request-id: resume-twice", NULL};
    struct seen s;
    json_t *line;

    stream("oa-vl-anp1", NULL, h, &s);
    ck_assert_str_eq(s.text, "tok0 tok1 tok2 tok3 tok4 tok5 tok6 ");
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.roles, 1);
    ck_assert_int_eq(s.done, 1);
    ck_assert(s.same_ident);
    line = access_line("resume-twice");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(line, "backends")), 3);
    json_decref(line);
}
END_TEST

/* The first prefill entry refuses (400), the next one continues. */
START_TEST(resume_moves_past_a_refusal)
{
    const char *h[] = {"x-fake-fail-key: resume-refused", "x-fake-fail-times: 1",
                       "x-fake-cut-at-token: 2", "x-fake-chunks: 6", "x-fake-status: 400",
                       "x-fake-status-for: f2", "x-request-id: resume-refused", NULL};
    struct seen s;
    json_t *line;

    stream("oa-vl-anp1", NULL, h, &s);
    ck_assert_str_eq(s.text, "tok0 tok1 tok2 tok3 tok4 tok5 ");
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.roles, 1);
    line = access_line("resume-refused");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(line, "backends")), 3);
    json_decref(line);
}
END_TEST

/* ---- the APIs a hub carries through chat ---------------------------------------------------- */

struct api_seen {
    char text[4096];       /* the text deltas, in order */
    char final[4096];      /* response.completed's text (Responses) */
    int  starts;           /* response.created / message_start */
    int  ends;             /* response.completed / message_stop */
    int  blocks;           /* content_block_start (Messages) */
    int  errors;
    int  seq_ok;           /* sequence_number 0, 1, 2, ... (Responses) */
    json_int_t out_tokens; /* the usage's output tokens at the end */
};

static void
api_parse(struct api_seen *s, const char *p, size_t n)
{
    char *copy = mg_strndup(p, n), *line, *save = NULL;
    json_int_t seq = 0;

    memset(s, 0, sizeof(*s));
    s->seq_ok = 1;
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j, *d;
        const char *type;
        if (strncmp(line, "data: ", 6) != 0) {
            continue;
        }
        j = json_loads(line + 6, 0, NULL);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        type = json_string_value(json_object_get(j, "type"));
        type = type ? type : "";
        if (json_object_get(j, "sequence_number") != NULL &&
            json_integer_value(json_object_get(j, "sequence_number")) != seq++) {
            s->seq_ok = 0;
        }
        s->starts += strcmp(type, "response.created") == 0 || strcmp(type, "message_start") == 0;
        s->ends += strcmp(type, "response.completed") == 0 || strcmp(type, "message_stop") == 0;
        s->blocks += strcmp(type, "content_block_start") == 0;
        s->errors += strcmp(type, "error") == 0 || strcmp(type, "response.failed") == 0;
        if (strcmp(type, "response.output_text.delta") == 0) {
            snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "%s",
                     json_string_value(json_object_get(j, "delta")));
        }
        d = json_object_get(j, "delta");
        if (strcmp(type, "content_block_delta") == 0 &&
            json_is_string(json_object_get(d, "text"))) {
            snprintf(s->text + strlen(s->text), sizeof(s->text) - strlen(s->text), "%s",
                     json_string_value(json_object_get(d, "text")));
        }
        if (strcmp(type, "response.completed") == 0) {
            json_t *r = json_object_get(j, "response");
            json_t *c = json_array_get(json_object_get(json_array_get(json_object_get(r,
                        "output"), 0), "content"), 0);
            snprintf(s->final, sizeof(s->final), "%s",
                     json_string_value(json_object_get(c, "text")));
            s->out_tokens = json_integer_value(json_object_get(json_object_get(r, "usage"),
                                                               "output_tokens"));
        }
        if (strcmp(type, "message_delta") == 0) {
            s->out_tokens = json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                               "output_tokens"));
        }
        json_decref(j);
    }
    free(copy);
}

static void
api_stream(const char *path, const char *body, const char *const *headers, struct api_seen *s)
{
    struct mg_test_resp r;

    mg_test_http("POST", mg_harness_url(&gwh, path), body, strlen(body), headers, &r);
    ck_assert_msg(r.status == 200, "%s: status %ld: %.*s", path, r.status, (int)r.body.len,
                  r.body.data);
    api_parse(s, r.body.data, r.body.len);
    mg_test_resp_free(&r);
}

/*
 * A translated Responses stream cut after 2 tokens on an openai backend (responses: translate)
 * goes on on an anthropic prefill backend through the same hub: one response.created, sequence
 * numbers unbroken, the text of the deltas and of response.completed exactly the continuing
 * backend's uncut answer, and the usage's output that of both attempts.
 */
START_TEST(resume_translated_responses)
{
    const char *plain[] = {"x-fake-chunks: 6", NULL};
    const char *h[] = {"x-fake-for: f1", "x-fake-cut-at-token: 2", "x-fake-chunks: 6",
                       "x-request-id: resume-resp", NULL};
    struct api_seen whole, s;
    json_t *line;

    api_stream("/v1/responses", "{\"model\":\"direct-anp\",\"stream\":true,\"input\":\"hi\"}",
               plain, &whole);
    api_stream("/v1/responses", "{\"model\":\"hub-resp\",\"stream\":true,\"input\":\"hi\"}", h,
               &s);
    ck_assert_msg(strcmp(s.text, whole.text) == 0, "spliced \"%s\", uncut \"%s\"", s.text,
                  whole.text);
    ck_assert_str_eq(s.final, whole.text);
    ck_assert_int_eq(s.starts, 1);
    ck_assert_int_eq(s.ends, 1);
    ck_assert_int_eq(s.errors, 0);
    ck_assert(s.seq_ok);
    ck_assert_int_eq(s.out_tokens, 22);   /* 2 events relayed by oat, then anp's 20 */
    line = access_line("resume-resp");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(line, "api")), "responses");
    json_decref(line);
}
END_TEST

/* The same for a Messages stream made from chat: the continuation on bedrock, through the hub. */
START_TEST(resume_translated_messages)
{
    const char *plain[] = {"x-fake-chunks: 6", "anthropic-version: 2023-06-01", NULL};
    const char *h[] = {"x-fake-for: f1", "x-fake-cut-at-token: 3", "x-fake-chunks: 6",
                       "anthropic-version: 2023-06-01", "x-request-id: resume-msg", NULL};
    struct api_seen whole, s;
    json_t *line;

    api_stream("/v1/messages", "{\"model\":\"direct-brp\",\"stream\":true,\"max_tokens\":50,"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", plain, &whole);
    api_stream("/v1/messages", "{\"model\":\"hub-msg\",\"stream\":true,\"max_tokens\":50,"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", h, &s);
    ck_assert_msg(strcmp(s.text, whole.text) == 0, "spliced \"%s\", uncut \"%s\"", s.text,
                  whole.text);
    ck_assert_int_eq(s.starts, 1);
    ck_assert_int_eq(s.blocks, 1);
    ck_assert_int_eq(s.ends, 1);
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.out_tokens, 23);   /* 3 events relayed by oa, then brp's 20 */
    line = access_line("resume-msg");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "resumed")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(line, "backends")), 2);   /* oa, brp */
    json_decref(line);
}
END_TEST

/*
 * /v1/messages passed through to an anthropic primary, cut inside its text block (2 tokens) or
 * after its text with the block still open (6 of 6): the continuation on another anthropic
 * backend, natively, goes on in the same block: one message_start, one content_block_start, the
 * text exactly the continuing backend's uncut answer, one message_stop.
 */
START_TEST(resume_native_messages)
{
    const char *plain[] = {"x-fake-chunks: 6", "anthropic-version: 2023-06-01", NULL};
    const char *cut = _i == 0 ? "x-fake-cut-at-token: 2" : "x-fake-cut-at-token: 6";
    const char *h[] = {"x-fake-for: f1", cut, "x-fake-chunks: 6",
                       "anthropic-version: 2023-06-01", NULL};
    struct api_seen whole, s;

    api_stream("/v1/messages", "{\"model\":\"direct-anp\",\"stream\":true,\"max_tokens\":50,"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", plain, &whole);
    api_stream("/v1/messages", "{\"model\":\"native-msg\",\"stream\":true,\"max_tokens\":50,"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", h, &s);
    ck_assert_msg(strcmp(s.text, whole.text) == 0, "spliced \"%s\", uncut \"%s\"", s.text,
                  whole.text);
    ck_assert_int_eq(s.starts, 1);
    ck_assert_int_eq(s.blocks, 1);
    ck_assert_int_eq(s.ends, 1);
    ck_assert_int_eq(s.errors, 0);
    ck_assert_int_eq(s.out_tokens, _i == 0 ? 22 : 26);   /* the events relayed, then anp's 20 */
}
END_TEST

/* ---- the stage alone --------------------------------------------------------------------- */

static void
to_buf(void *arg, const char *p, size_t n)
{
    mg_buf_add(arg, p, n);
}

static void
no_commit(void *arg)
{
}

static void
feed(struct mg_resume *rs, const char *data)
{
    char ev[1024];

    snprintf(ev, sizeof(ev), "data: %s\n\n", data);
    rs->stage.write(&rs->stage, ev, strlen(ev), 1);
}

/*
 * The trimmed whitespace is dropped from the continuation's start across chunks ("\n" then
 * "\n" then text), a chunk left empty goes, the role chunk goes, the ident is the first
 * attempt's, and a tool call makes the stream one that cannot be continued.
 */
START_TEST(stage_splices)
{
    struct mg_relay r;
    struct mg_resume rs;
    struct mg_buf out;
    const char *text;
    size_t len;

    mg_buf_init(&out, 1 << 16);
    mg_relay_init(&r, to_buf, &out, no_commit, NULL);
    mg_relay_reset(&r, 1, &mg_api_chat);
    mg_resume_init(&rs);
    mg_resume_add(&rs, &r, 0);
    feed(&rs, "{\"id\":\"A\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"role\":\"assistant\",\"content\":\"Dear\\n\"}}]}");
    feed(&rs, "{\"id\":\"A\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"content\":\"Sir,\\n\\n\"}}]}");
    ck_assert_int_eq(r.hold_cut, 1);
    ck_assert_int_eq(mg_resume_prefill(&rs, &text, &len), MG_OK);
    ck_assert_int_eq((int)len, 9);
    ck_assert(memcmp(text, "Dear\nSir,", 9) == 0);
    mg_resume_attempt_end(&rs, &r, 7);
    mg_relay_reset(&r, 1, &mg_api_chat);
    mg_resume_add(&rs, &r, 0);
    mg_buf_reset(&out);
    feed(&rs, "{\"id\":\"B\",\"created\":2,\"model\":\"x\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
    feed(&rs, "{\"id\":\"B\",\"created\":2,\"model\":\"x\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"content\":\"\\n\"}}]}");
    feed(&rs, "{\"id\":\"B\",\"created\":2,\"model\":\"x\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"content\":\"\\nI write\"}}]}");
    feed(&rs, "{\"id\":\"B\",\"created\":2,\"model\":\"x\",\"choices\":[{\"index\":0,"
              "\"delta\":{\"content\":\" \\n\"}}]}");
    mg_buf_add(&out, "", 1);
    ck_assert_str_eq(out.data, "data: {\"id\":\"A\",\"created\":1,\"model\":\"m\",\"choices\":"
                     "[{\"index\":0,\"delta\":{\"content\":\"I write\"}}]}\n\n"
                     "data: {\"id\":\"A\",\"created\":1,\"model\":\"m\",\"choices\":"
                     "[{\"index\":0,\"delta\":{\"content\":\" \\n\"}}]}\n\n");
    ck_assert_int_eq(rs.ok, 1);
    feed(&rs, "{\"id\":\"B\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}");
    ck_assert_int_eq(rs.ok, 0);
    ck_assert_int_eq(r.hold_cut, 0);
    mg_resume_deinit(&rs);
    mg_relay_deinit(&r);
    mg_buf_deinit(&out);
}
END_TEST

Suite *
resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc = tcase_create("resume");
    TCase *unit = tcase_create("stage");

    tcase_add_test(unit, stage_splices);
    suite_add_tcase(s, unit);
    tcase_add_unchecked_fixture(tc, start_all, stop_all);
    tcase_set_timeout(tc, 60 * mg_test_scale());
    tcase_add_loop_test(tc, resume_each_primary, 0, 6);
    tcase_add_test(tc, resume_usage);
    tcase_add_test(tc, resume_error_event_and_idle);
    tcase_add_test(tc, no_resume_without_key_or_entry);
    tcase_add_test(tc, no_resume_in_tool_call);
    tcase_add_test(tc, prefill_400_ends_with_error_event);
    tcase_add_test(tc, continuation_cut_again);
    tcase_add_test(tc, resume_moves_past_a_refusal);
    tcase_add_test(tc, resume_translated_responses);
    tcase_add_test(tc, resume_translated_messages);
    tcase_add_loop_test(tc, resume_native_messages, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
