/*
 * Fail-over suite: the real build/modelgate in front of build/fakeai instances that fail on
 * command (x-fake-* fault headers), over HTTP on loopback. The commit point, failures after the
 * commit, same-backend retries, Retry-After, context-length fail-over, fail-over answers read
 * at a cap, and passive health with cooldowns and probes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_harness.h"
#include "mg_test.h"

/* fr and fs answer with Retry-After, which starts a cooldown: they serve only their own test */
enum { F_A, F_B, F_H, F_R, F_S, NFAKE };
static const char *const names[NFAKE] = {"fa", "fb", "fh", "fr", "fs"};
static struct mg_harness gwh;   /* the fakes and the gateway the suite shares */
static int *const port = gwh.fake_port;
static const char *access_log = "mgtest-fo-access.log";
static int key_seq;

static void
start_fo(void)
{
    char conf[4096];
    int i;

    mg_harness_init(&gwh, "mgtest-fo-gw.log", "mgtest-fo-fake.log");
    for (i = 0; i < NFAKE; i++) {
        mg_harness_fake(&gwh, names[i], NULL);
    }
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "log_level: debug\n"
             "access_log: %s\n"
             "timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 30s}\n"
             "health: {failures: 0}\n"
             "backends:\n"
             "  - {name: ta, url: 'http://127.0.0.1:%d/v1',\n"
             "     timeouts: {first_token: 500ms, idle: 500ms}}\n"
             "  - {name: tb, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: th, url: 'http://127.0.0.1:%d/v1',\n"
             "     health: {failures: 2, cooldown: 1s, max_cooldown: 4s}}\n"
             "  - {name: tr, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: ts, url: 'http://127.0.0.1:%d/v1'}\n"
             "rules:\n"
             "  - {models: [m-fo], backends: [{backend: ta}, {backend: tb, priority: 1}]}\n"
             "  - {models: [m-one], backends: [{backend: ta}]}\n"
             "  - {models: [m-noretry], retry_same: false,\n"
             "     backends: [{backend: ta}, {backend: tb, priority: 1}]}\n"
             "  - {models: [m-health], retry_same: false,\n"
             "     backends: [{backend: th}, {backend: tb, priority: 1}]}\n"
             "  - {models: [m-ra], backends: [{backend: tr}, {backend: tb, priority: 1}]}\n"
             "  - {models: [m-rs], backends: [{backend: ts}, {backend: tb, priority: 1}]}\n",
             gwh.gw_port, access_log, port[F_A], port[F_B], port[F_H], port[F_R], port[F_S]);
    unlink(access_log);
    mg_harness_start(&gwh, 2, conf);
}

static void
stop_fo(void)
{
    mg_harness_stop(&gwh, "modelgate");
}

/*
 * POSTs a chat request for model (stream or not) with fault headers (NULL-terminated, may be
 * NULL). Returns the time it took in ms.
 */
static double
chat(const char *model, int stream, const char *const *faults, struct mg_test_resp *r)
{
    char url[128], body[256];
    int64_t t0 = mg_now_us();

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gwh.gw_port);
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":%s,\"messages\":[]}", model,
             stream ? "true" : "false");
    mg_test_http("POST", url, body, strlen(body), faults, r);
    return (double)(mg_now_us() - t0) / 1000.0;
}

static const char *
backend_of(const struct mg_test_resp *r)
{
    static char buf[64];

    return mg_test_header(r, "x-modelgate-backend", buf, sizeof(buf));
}

static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;
    const char *p = hay;

    while (p != NULL && (p = strstr(p, needle)) != NULL) {
        n++;
        p += strlen(needle);
    }
    return n;
}

static double
metric(const char *series)
{
    struct mg_test_resp r;
    char url[128];
    double v;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gwh.gw_port);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v < 0 ? 0 : v;
}

/* A fresh x-fake-fail-key header line (static storage, one slot per call in a test). */
static const char *
fail_key(void)
{
    static char buf[4][64];
    static int slot;

    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof(buf[slot]), "x-fake-fail-key: k%d-%d", (int)getpid(), ++key_seq);
    return buf[slot];
}

/* ---- the commit point --------------------------------------------------------------------- */

START_TEST(stall_before_first_token_fails_over)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-stall-after: 1", NULL};
    struct mg_test_resp r;
    double ms = chat("m-fo", 1, h, &r);

    /* fa sent its head and a role-only chunk, then nothing: not committed, so tb answers, within
     * ta's first_token (500 ms) plus a margin */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_int_eq(r.curl_rc, 0);
    ck_assert_uint_eq(count(r.body.data, "\"role\""), 1);   /* fa's role chunk never went out */
    ck_assert_ptr_nonnull(strstr(r.body.data, "Hello from fb") ? r.body.data : strstr(r.body.data, "tok0"));
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
    ck_assert_msg(ms < 3000.0 * mg_test_scale(), "took %.0f ms", ms);
    ck_assert_msg(ms >= 450.0, "failed over before first_token: %.0f ms", ms);
    mg_test_resp_free(&r);
}
END_TEST

/*
 * first_token runs from the moment a stream's request is sent: a backend that answers no head
 * within it (ta: 500 ms, its first_byte 5 s) is left then. x-fake-delay-ms holds the head on
 * every fakeai, so the move to tb costs its 1.5 s too. A plain request waits for first_byte.
 */
START_TEST(no_head_within_first_token_fails_over)
{
    const char *h[] = {"x-fake-delay-ms: 1500", NULL};
    struct mg_test_resp r;
    double ms;

    ms = chat("m-fo", 1, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
    ck_assert_msg(ms >= 1900.0, "tb answered after %.0f ms", ms);
    ck_assert_msg(ms < 1500.0 + 2500.0 * mg_test_scale(), "took %.0f ms", ms);
    mg_test_resp_free(&r);
    ms = chat("m-fo", 0, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "ta");
    ck_assert_msg(ms >= 1450.0, "ta answered after %.0f ms", ms);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(head_then_silence_fails_over)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-stall-after: 0", NULL};
    struct mg_test_resp r;
    double ms;

    ms = chat("m-fo", 1, h, &r);   /* a stream: its head, then nothing */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_msg(ms < 3000.0 * mg_test_scale(), "took %.0f ms", ms);
    mg_test_resp_free(&r);
    ms = chat("m-fo", 0, h, &r);   /* a plain answer: its head, then no body (idle 500 ms) */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_msg(ms < 3000.0 * mg_test_scale(), "took %.0f ms", ms);
    mg_test_resp_free(&r);
}
END_TEST

/* idle (500 ms on ta) runs from the last bytes: a stream slower in all than idle is not cut, one
 * that then stalls is cut about idle after its last event. */
START_TEST(idle_runs_from_the_last_chunk)
{
    const char *slow[] = {"x-fake-chunks: 6", "x-fake-chunk-gap-ms: 200", NULL};
    const char *stall[] = {"x-fake-chunk-gap-ms: 200", "x-fake-for: fa", "x-fake-stall-after: 4",
                           NULL};
    struct mg_test_resp r;
    double ms;

    ms = chat("m-one", 1, slow, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(ms >= 1100.0, "6 chunks 200 ms apart took %.0f ms", ms);
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
    ck_assert_ptr_null(strstr(r.body.data, "upstream_stream_error"));
    mg_test_resp_free(&r);

    ms = chat("m-one", 1, stall, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "upstream_stream_error"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "idle"));
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 0);
    ck_assert_msg(ms >= 1000.0 && ms < 3000.0 * mg_test_scale(), "cut after %.0f ms", ms);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(error_event_before_output_fails_over)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-error-event-at: 1", NULL};
    struct mg_test_resp r;

    chat("m-fo", 1, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_ptr_null(strstr(r.body.data, "error"));
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
    mg_test_resp_free(&r);
}
END_TEST

/*
 * A 200 event-stream head, then a clean end before any event (an empty body, or only comments
 * and blank lines): a failure before the commit that fails over like a 502, so one same-backend
 * retry, then the next entry; the client never sees the empty stream.
 */
START_TEST(empty_stream_fails_over_like_a_502)
{
    static const char *const modes[] = {"x-fake-empty-stream: 1", "x-fake-empty-stream: 2"};
    const char *series =
        "modelgate_backend_attempts_total{backend=\"ta\",result=\"empty_stream\"}";
    struct mg_test_resp r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(modes); i++) {
        const char *h[] = {"x-fake-for: fa", modes[i], NULL};
        long a0 = mg_test_fake_stat(port[F_A], "requests");
        long b0 = mg_test_fake_stat(port[F_B], "requests");
        double m0 = metric(series);

        chat("m-fo", 1, h, &r);
        ck_assert_msg(r.status == 200, "%s: status %ld: %s", modes[i], r.status, r.body.data);
        ck_assert_str_eq(backend_of(&r), "tb");
        ck_assert_int_eq(r.curl_rc, 0);
        ck_assert_ptr_null(strstr(r.body.data, "error"));
        ck_assert_ptr_nonnull(strstr(r.body.data, "tok2"));
        ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
        /* fa twice (the same-backend retry a 502 gets), then fb once */
        ck_assert_int_eq(mg_test_fake_stat(port[F_A], "requests") - a0, 2);
        ck_assert_int_eq(mg_test_fake_stat(port[F_B], "requests") - b0, 1);
        ck_assert_int_eq((int)(metric(series) - m0), 2);
        mg_test_resp_free(&r);
    }
    {
        const char *h[] = {"x-fake-for: fa", modes[0], NULL};
        long a0 = mg_test_fake_stat(port[F_A], "requests");

        chat("m-noretry", 1, h, &r);   /* retry_same: false: the next entry at once */
        ck_assert_str_eq(backend_of(&r), "tb");
        ck_assert_uint_eq(count(r.body.data, "data: [DONE]"), 1);
        ck_assert_int_eq(mg_test_fake_stat(port[F_A], "requests") - a0, 1);
        mg_test_resp_free(&r);
        chat("m-one", 1, h, &r);   /* nobody else: a 502 naming the backend, no 200 */
        mg_test_assert_error(&r, 502, "upstream_unavailable");
        ck_assert_ptr_nonnull(strstr(r.body.data, "ta: "));
        mg_test_resp_free(&r);
    }
}
END_TEST

START_TEST(broken_body_before_output)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-bad-chunk: 1", NULL};
    struct mg_test_resp r;

    chat("m-fo", 0, h, &r);   /* fa: a 200 head, then a broken chunk: nothing was committed */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    mg_test_resp_free(&r);
    chat("m-one", 0, h, &r);   /* nobody else: a clean 502, not an empty reply */
    mg_test_assert_error(&r, 502, "upstream_unavailable");
    ck_assert_ptr_null(strstr(r.body.data, "127.0.0.1"));   /* no internal address */
    mg_test_resp_free(&r);
}
END_TEST

/* ---- failures after the commit ------------------------------------------------------------ */

START_TEST(stream_cut_after_output_ends_with_one_error_event)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-cut-after: 3", NULL};
    const char *series =
        "modelgate_requests_total{model=\"m-one\",backend=\"ta\",code=\"upstream_stream_error\"}";
    double before = metric(series);
    struct mg_test_resp r;
    json_t *j;
    const char *ev;

    chat("m-one", 1, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.curl_rc, 0);   /* a clean end of the response */
    ck_assert_ptr_nonnull(strstr(r.body.data, "tok1"));
    ck_assert_uint_eq(count(r.body.data, "upstream_stream_error"), 1);
    ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
    /* the last event is the error, well-formed */
    ev = strstr(r.body.data, "data: {\"error\"");
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(ev + strlen(ev) - 2, "\n\n");
    j = json_loadb(ev + 6, strlen(ev + 6) - 2, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "upstream_error");
    json_decref(j);
    mg_test_resp_free(&r);
    ck_assert_int_eq((int)(metric(series) - before), 1);
}
END_TEST

START_TEST(error_event_after_output_keeps_its_message)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-error-event-at: 3", NULL};
    struct mg_test_resp r;

    chat("m-one", 1, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.curl_rc, 0);
    ck_assert_uint_eq(count(r.body.data, "upstream_stream_error"), 1);
    ck_assert_ptr_nonnull(strstr(r.body.data, "fake stream error"));
    ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(plain_answer_cut_is_incomplete)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-cut-after: 1", NULL};
    struct mg_test_resp r;

    chat("m-one", 0, h, &r);
    /* half a JSON body, then the backend closed: the client must see an incomplete answer */
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ne(r.curl_rc, 0);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(stream_end_without_done_or_finish)
{
    const char *no_done[] = {"x-fake-for: fa", "x-fake-no-done: 1", NULL};
    const char *no_finish[] = {"x-fake-for: fa", "x-fake-no-finish: 1", NULL};
    struct mg_test_resp r;
    size_t n;

    chat("m-one", 1, no_done, &r);   /* finished, then ended: completed with [DONE] */
    ck_assert_int_eq(r.status, 200);
    n = strlen(r.body.data);
    ck_assert_uint_eq(count(r.body.data, "data: [DONE]\n\n"), 1);
    ck_assert_str_eq(r.body.data + n - 14, "data: [DONE]\n\n");
    ck_assert_ptr_null(strstr(r.body.data, "upstream_stream_error"));
    mg_test_resp_free(&r);
    chat("m-one", 1, no_finish, &r);   /* ended before its finish: a cut */
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(count(r.body.data, "upstream_stream_error"), 1);
    ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
    mg_test_resp_free(&r);
}
END_TEST

/* ---- same-backend retry ------------------------------------------------------------------- */

START_TEST(same_backend_retry_on_500)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-status: 500", fail_key(), "x-fake-fail-times: 1",
                       NULL};
    long a0 = mg_test_fake_stat(port[F_A], "requests"), b0 = mg_test_fake_stat(port[F_B], "requests");
    struct mg_test_resp r;
    double ms = chat("m-fo", 0, h, &r);

    /* fa failed once, then answered the retry after a 200-500 ms pause; fb was never asked */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "ta");
    ck_assert_int_eq(mg_test_fake_stat(port[F_A], "requests") - a0, 2);
    ck_assert_int_eq(mg_test_fake_stat(port[F_B], "requests") - b0, 0);
    ck_assert_msg(ms >= 190.0, "no pause before the retry: %.0f ms", ms);
    mg_test_resp_free(&r);
    /* retry_same: false moves on instead */
    h[2] = fail_key();
    a0 = mg_test_fake_stat(port[F_A], "requests");
    chat("m-noretry", 0, h, &r);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_int_eq(mg_test_fake_stat(port[F_A], "requests") - a0, 1);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(retry_after_waited_out_or_moved_on)
{
    const char *h[] = {"x-fake-status: 429", "x-fake-retry-after: 1", fail_key(),
                       "x-fake-fail-times: 1", "x-fake-for: fr", NULL};
    long r0 = mg_test_fake_stat(port[F_R], "requests"), s0 = mg_test_fake_stat(port[F_S], "requests");
    struct mg_test_resp r;
    double ms = chat("m-ra", 0, h, &r);

    /* Retry-After: 1 (<= retry_after_max 5s): the same backend after that wait, not shortened,
     * although that Retry-After also started a cooldown (which keeps other requests away) */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tr");
    ck_assert_int_eq(mg_test_fake_stat(port[F_R], "requests") - r0, 2);
    ck_assert_msg(ms >= 990.0, "Retry-After not waited out: %.0f ms", ms);
    mg_test_resp_free(&r);
    /* Retry-After: 30 is over retry_after_max: the next entry, at once */
    h[1] = "x-fake-retry-after: 30";
    h[2] = fail_key();
    h[4] = "x-fake-for: fs";
    ms = chat("m-rs", 0, h, &r);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_int_eq(mg_test_fake_stat(port[F_S], "requests") - s0, 1);
    ck_assert_msg(ms < 900.0 * mg_test_scale(), "waited %.0f ms", ms);
    mg_test_resp_free(&r);
    /* ts now cools for 30 s: the next request does not try it at all */
    chat("m-rs", 0, NULL, &r);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_int_eq(mg_test_fake_stat(port[F_S], "requests") - s0, 1);
    mg_test_resp_free(&r);
}
END_TEST

/* ---- context length and other 4xx --------------------------------------------------------- */

START_TEST(context_length_moves_on_other_4xx_final)
{
    const char *ctx[] = {"x-fake-for: fa", "x-fake-status: 400",
                         "x-fake-error-code: context_length_exceeded", NULL};
    const char *policy[] = {"x-fake-for: fa", "x-fake-status: 400",
                            "x-fake-error-code: content_policy_violation", NULL};
    long b0;
    struct mg_test_resp r;
    json_t *j;

    chat("m-fo", 0, ctx, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    mg_test_resp_free(&r);
    /* a content-policy 400 is never resent elsewhere: passed through as the backend wrote it */
    b0 = mg_test_fake_stat(port[F_B], "requests");
    chat("m-fo", 0, policy, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(backend_of(&r), "ta");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "content_policy_violation");
    json_decref(j);
    ck_assert_int_eq(mg_test_fake_stat(port[F_B], "requests") - b0, 0);
    mg_test_resp_free(&r);
    /* no other pair left: the context-length 400 itself */
    chat("m-one", 0, ctx, &r);
    ck_assert_int_eq(r.status, 400);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(endless_error_body_read_at_cap)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-status: 503", "x-fake-endless-error: 1", NULL};
    struct mg_test_resp r;
    double ms = chat("m-fo", 0, h, &r);

    /* fa's 503 body never ends: read to 64 KiB, then the next backend at once */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r), "tb");
    ck_assert_msg(ms < 3000.0 * mg_test_scale(), "took %.0f ms", ms);
    mg_test_resp_free(&r);
    /* the last answer, cut: its status with the gateway's own JSON body */
    chat("m-one", 0, h, &r);
    mg_test_assert_error(&r, 503, "upstream_unavailable");
    mg_test_resp_free(&r);
}
END_TEST

/* ---- passive health ----------------------------------------------------------------------- */

START_TEST(cooldown_and_probe)
{
    const char *down[] = {"x-fake-for: fh", "x-fake-status: 500", NULL};
    struct mg_test_resp r;
    long h0;
    int i;

    /* th fails twice in a row (failures: 2): a cooldown of 1 s starts */
    for (i = 0; i < 2; i++) {
        chat("m-health", 0, down, &r);
        ck_assert_str_eq(backend_of(&r), "tb");
        mg_test_resp_free(&r);
    }
    ck_assert(metric("modelgate_backend_up{backend=\"th\"}") == 0);
    ck_assert(metric("modelgate_backend_cooldowns_total{backend=\"th\"}") >= 1);
    /* cooling: ranked after tb, so not tried while tb answers */
    h0 = mg_test_fake_stat(port[F_H], "requests");
    for (i = 0; i < 3; i++) {
        chat("m-health", 0, down, &r);
        ck_assert_str_eq(backend_of(&r), "tb");
        mg_test_resp_free(&r);
    }
    ck_assert_int_eq(mg_test_fake_stat(port[F_H], "requests") - h0, 0);
    /* after the cooldown one request probes th in its normal place; it fails: 2 s now */
    usleep(1100 * 1000);
    chat("m-health", 0, down, &r);
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_fake_stat(port[F_H], "requests") - h0, 1);
    chat("m-health", 0, down, &r);
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_fake_stat(port[F_H], "requests") - h0, 1);
    /* after the doubled cooldown the probe succeeds: th is up and first again */
    usleep(2100 * 1000);
    chat("m-health", 0, NULL, &r);
    ck_assert_str_eq(backend_of(&r), "th");
    mg_test_resp_free(&r);
    ck_assert(metric("modelgate_backend_up{backend=\"th\"}") == 1);
    chat("m-health", 0, NULL, &r);
    ck_assert_str_eq(backend_of(&r), "th");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(access_log_records_cut_answers)
{
    const char *h[] = {"x-fake-for: fa", "x-fake-cut-after: 2", "x-request-id: fo-cut-1", NULL};
    struct mg_test_resp r;
    char line[4096];
    int found = 0, tries;
    FILE *f;

    chat("m-one", 1, h, &r);
    mg_test_resp_free(&r);
    for (tries = 0; tries < 50 && !found; tries++) {   /* lines reach the file within 100 ms */
        f = fopen(access_log, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            if (strstr(line, "fo-cut-1") != NULL) {
                found = 1;
                ck_assert_ptr_nonnull(strstr(line, "\"status\":200"));
                ck_assert_ptr_nonnull(strstr(line, "\"error\":\"upstream_stream_error\""));
            }
        }
        if (f != NULL) {
            fclose(f);
        }
        usleep(20000);
    }
    ck_assert(found);
}
END_TEST

Suite *
failover_suite(void)
{
    Suite *s = suite_create("failover");
    TCase *t = tcase_create("failover");

    tcase_add_unchecked_fixture(t, start_fo, stop_fo);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, stall_before_first_token_fails_over);
    tcase_add_test(t, no_head_within_first_token_fails_over);
    tcase_add_test(t, head_then_silence_fails_over);
    tcase_add_test(t, idle_runs_from_the_last_chunk);
    tcase_add_test(t, error_event_before_output_fails_over);
    tcase_add_test(t, empty_stream_fails_over_like_a_502);
    tcase_add_test(t, broken_body_before_output);
    tcase_add_test(t, stream_cut_after_output_ends_with_one_error_event);
    tcase_add_test(t, error_event_after_output_keeps_its_message);
    tcase_add_test(t, plain_answer_cut_is_incomplete);
    tcase_add_test(t, stream_end_without_done_or_finish);
    tcase_add_test(t, same_backend_retry_on_500);
    tcase_add_test(t, retry_after_waited_out_or_moved_on);
    tcase_add_test(t, context_length_moves_on_other_4xx_final);
    tcase_add_test(t, endless_error_body_read_at_cap);
    tcase_add_test(t, cooldown_and_probe);
    tcase_add_test(t, access_log_records_cut_answers);
    suite_add_tcase(s, t);
    return s;
}
