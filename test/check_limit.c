/*
 * Unit tests of the per-key token buckets with an injected clock: burst, refill rate, refusal and
 * its exact Retry-After, token reservations and their settlement, the one-minute debt cap, the
 * request estimate, reconfiguration, the header values, and CAS under threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mg_limit.h"
#include "mg_test.h"

/* Each test's own store, as a runtime holds one. */
static struct mg_limit_store *store;

static struct mg_limit *
fresh(int64_t rpm, int64_t tpm, int64_t now)
{
    static int n;
    char name[32];
    struct mg_limit *l;

    snprintf(name, sizeof(name), "key-%d", n++);
    l = mg_limit_get(store, name);
    mg_limit_configure(l, rpm, tpm, now);
    return l;
}

static void
setup(void)
{
    store = mg_limit_store_create("local");
    ck_assert_ptr_nonnull(store);
}

static void
teardown(void)
{
    mg_limit_store_destroy(store);
    store = NULL;
}

/* Admits as many as the bucket lets through at now. */
static int
drain(struct mg_limit *l, int64_t now)
{
    int n = 0;

    while (mg_limit_admit(l, now, 1, NULL)) {
        n++;
    }
    return n;
}

START_TEST(registry_keeps_buckets_per_name)
{
    struct mg_limit *a = mg_limit_get(store, "team-a"), *b = mg_limit_get(store, "team-b");
    struct mg_limit_info info;

    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(mg_limit_get(store, "team-a"), a);
    ck_assert_str_eq(mg_limit_name(a), "team-a");
    mg_limit_configure(a, 2, 0, 0);
    ck_assert_int_eq(drain(a, 0), 2);
    /* A reload finds the same bucket, still empty; the same limit changes nothing. */
    mg_limit_configure(mg_limit_get(store, "team-a"), 2, 0, 10);
    ck_assert_int_eq(mg_limit_admit(mg_limit_get(store, "team-a"), 10, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 30000 - 10);
}
END_TEST

START_TEST(no_limits_admit_everything)
{
    struct mg_limit *l = fresh(0, -5, 0);
    struct mg_limit_info info;
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    int i;

    for (i = 0; i < 10000; i++) {
        ck_assert_int_eq(mg_limit_admit(l, 0, 1, &info), 1);
    }
    mg_limit_settle(l, 0, 1000000, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, 5000, &info), 1);
    ck_assert_int_eq(info.reserved, 0);            /* nothing to settle */
    ck_assert_int_eq(info.requests.limit, 0);
    ck_assert_int_eq(info.tokens.limit, 0);
    ck_assert_uint_eq(mg_limit_headers(&info, h), 0);
}
END_TEST

START_TEST(initial_burst_then_refusal_with_exact_wait)
{
    struct mg_limit *l = fresh(10, 0, 1000);
    struct mg_limit_info info;
    int i;

    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(mg_limit_admit(l, 1000, 1, &info), 1);
        ck_assert_int_eq(info.requests.limit, 10);
        ck_assert_int_eq(info.requests.remaining, 9 - i);
        ck_assert_int_eq(info.requests.reset_ms, 6000 * (i + 1));
        ck_assert_int_eq(info.retry_after_ms, 0);
    }
    ck_assert_int_eq(mg_limit_admit(l, 1000, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 6000);
    ck_assert_int_eq(info.requests.remaining, 0);
    ck_assert_int_eq(info.requests.reset_ms, 60000);
    /* Refused requests take nothing: the wait only shrinks with time. */
    ck_assert_int_eq(mg_limit_admit(l, 4000, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 3000);
    ck_assert_int_eq(mg_limit_admit(l, 6999, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 1);
    ck_assert_int_eq(mg_limit_admit(l, 7000, 1, &info), 1);
    ck_assert_int_eq(info.requests.remaining, 0);
}
END_TEST

START_TEST(retry_after_is_exact_when_the_rate_does_not_divide)
{
    /* 7 a minute: one every 8571.43 ms. */
    struct mg_limit *l = fresh(7, 0, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(drain(l, 0), 7);
    ck_assert_int_eq(mg_limit_admit(l, 0, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 8572);
    ck_assert_int_eq(mg_limit_admit(l, 8571, 1, NULL), 0);
    ck_assert_int_eq(mg_limit_admit(l, 8572, 1, &info), 1);
    ck_assert_int_eq(mg_limit_admit(l, 8572, 1, &info), 0);
    /* The second unit is due at 2 * 8571.43 = 17142.86 ms, counted from 0, not from 8572. */
    ck_assert_int_eq(info.retry_after_ms, 17143 - 8572);
}
END_TEST

/* Admits every request the bucket allows, millisecond by millisecond, over [from, to]. */
static int
run(struct mg_limit *l, int64_t from, int64_t to)
{
    int64_t t;
    int n = 0;

    for (t = from; t <= to; t++) {
        n += drain(l, t);
    }
    return n;
}

START_TEST(refill_rate_is_exact_over_a_minute)
{
    struct mg_limit *a = fresh(600, 0, 0), *b = fresh(7, 0, 0), *c = fresh(6999, 0, 0);
    struct mg_limit *d = fresh(100000, 0, 0);
    int n;

    /* burst + one every 100 ms over 60 s */
    ck_assert_int_eq(run(a, 0, 60000), 1200);
    ck_assert_int_eq(run(b, 0, 60000), 14);
    n = run(c, 0, 60000);
    ck_assert_int_ge(n, 2 * 6999 - 1);
    ck_assert_int_le(n, 2 * 6999 + 1);
    ck_assert_int_eq(run(d, 0, 60000), 200000);     /* as the header promises */
    /* And over the next ten minutes, at the rate alone. */
    ck_assert_int_eq(run(a, 60001, 660000), 6000);
}
END_TEST

START_TEST(bucket_refills_to_capacity_not_beyond)
{
    struct mg_limit *l = fresh(100, 0, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(drain(l, 0), 100);
    mg_limit_peek(l, 30000, &info);
    ck_assert_int_eq(info.requests.remaining, 50);
    ck_assert_int_eq(info.requests.reset_ms, 30000);
    mg_limit_peek(l, 30001, &info);
    ck_assert_int_eq(info.requests.remaining, 50);   /* 50.06 rounds down */
    ck_assert_int_eq(info.requests.reset_ms, 29999);
    mg_limit_peek(l, 3600000, &info);
    ck_assert_int_eq(info.requests.remaining, 100);
    ck_assert_int_eq(info.requests.reset_ms, 0);
    ck_assert_int_eq(info.retry_after_ms, 0);
    ck_assert_int_eq(drain(l, 3600000), 100);
}
END_TEST

START_TEST(tokens_reserved_then_settled)
{
    struct mg_limit *l = fresh(0, 1000, 0);
    struct mg_limit_info info;

    /* a request reserves its estimate when admitted */
    ck_assert_int_eq(mg_limit_admit(l, 0, 300, &info), 1);
    ck_assert_int_eq(info.reserved, 300);
    ck_assert_int_eq(info.tokens.limit, 1000);
    ck_assert_int_eq(info.tokens.remaining, 700);
    ck_assert_int_eq(info.tokens.reset_ms, 18000);
    /* its answer used 600: the reservation is replaced, 400 are left */
    mg_limit_settle(l, 300, 600, 0);
    mg_limit_peek(l, 0, &info);
    ck_assert_int_eq(info.tokens.remaining, 400);
    /* admitted only when the bucket holds the whole estimate: 400 fits exactly, then nothing */
    ck_assert_int_eq(mg_limit_admit(l, 0, 401, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 60);          /* one token at 1000 a minute */
    ck_assert_int_eq(info.reserved, 0);
    ck_assert_int_eq(info.tokens.remaining, 400);       /* a refusal takes nothing */
    ck_assert_int_eq(mg_limit_admit(l, 0, 400, &info), 1);
    ck_assert_int_eq(info.tokens.remaining, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 60);
    /* no answer (a refusal of the gateway, all attempts failed): all of it comes back */
    mg_limit_settle(l, 400, 0, 0);
    mg_limit_peek(l, 0, &info);
    ck_assert_int_eq(info.tokens.remaining, 400);
    ck_assert_int_eq(info.tokens.reset_ms, 36000);
    /* the wait is until the reservation fits: 500 more at 1000 a minute */
    ck_assert_int_eq(mg_limit_admit(l, 0, 900, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 30000);
    ck_assert_int_eq(mg_limit_admit(l, 29999, 900, NULL), 0);
    ck_assert_int_eq(mg_limit_admit(l, 30000, 900, &info), 1);
    /* a give-back never fills past full; a used count of 0 or less counts as 0 */
    mg_limit_settle(l, 900, -5, 30000);
    mg_limit_settle(l, 900, 0, 30000);
    mg_limit_peek(l, 30000, &info);
    ck_assert_int_eq(info.tokens.remaining, 1000);
    ck_assert_int_eq(info.tokens.reset_ms, 0);
}
END_TEST

/*
 * A burst of huge answers empties the bucket but never takes it below empty: full again at most
 * a minute later, so no refusal ever says more than 60 s (it said 8.3 h for 50,000 tokens on a
 * 100-token key).
 */
START_TEST(token_debt_capped_at_one_minute)
{
    struct mg_limit *l = fresh(0, 100, 0);
    struct mg_limit_info info;
    int i;

    /* 20 concurrent requests of 5 fill the limit; each answer then reports 2,500 */
    for (i = 0; i < 20; i++) {
        ck_assert_int_eq(mg_limit_admit(l, 0, 5, &info), 1);
    }
    ck_assert_int_eq(mg_limit_admit(l, 0, 5, &info), 0);
    for (i = 0; i < 20; i++) {
        mg_limit_settle(l, 5, 2500, 0);
    }
    mg_limit_peek(l, 0, &info);
    ck_assert_int_eq(info.tokens.remaining, 0);
    ck_assert_int_eq(info.tokens.reset_ms, 60000);
    ck_assert_int_eq(mg_limit_admit(l, 0, 100, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 60000);       /* the longest wait there is */
    ck_assert_int_eq(mg_limit_admit(l, 0, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 600);
    /* more usage while empty changes nothing: still full at 60 s */
    mg_limit_settle(l, 0, MG_TOKENS_MAX, 0);
    mg_limit_peek(l, 0, &info);
    ck_assert_int_eq(info.tokens.reset_ms, 60000);
    /* an estimate larger than the whole limit (max_tokens: 32000) is capped at the capacity:
     * admitted by a full bucket, never refused for ever */
    ck_assert_int_eq(mg_limit_admit(l, 59999, 32000, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 1);
    ck_assert_int_eq(mg_limit_admit(l, 60000, 32000, &info), 1);
    ck_assert_int_eq(info.reserved, 100);
    ck_assert_int_eq(info.tokens.remaining, 0);
    /* its answer used 40: 60 come back */
    mg_limit_settle(l, 100, 40, 60000);
    mg_limit_peek(l, 60000, &info);
    ck_assert_int_eq(info.tokens.remaining, 60);
}
END_TEST

START_TEST(both_limits_the_longer_wait_wins)
{
    /* two requests a minute (one every 30 s), 60 tokens a minute (one a second) */
    struct mg_limit *l = fresh(2, 60, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(mg_limit_admit(l, 0, 1, &info), 1);
    mg_limit_settle(l, 1, 60, 0);                       /* the token bucket is empty */
    /* refused by the tokens (30 s), while a request is there: the request is not taken */
    ck_assert_int_eq(mg_limit_admit(l, 0, 30, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 30000);
    ck_assert_int_eq(info.requests.remaining, 1);
    ck_assert_int_eq(info.requests.reset_ms, 30000);
    ck_assert_int_eq(info.tokens.reset_ms, 60000);
    ck_assert_int_eq(mg_limit_admit(l, 30000, 30, &info), 1);
    ck_assert_int_eq(info.requests.remaining, 1);
    ck_assert_int_eq(info.tokens.remaining, 0);
    ck_assert_int_eq(mg_limit_admit(l, 31000, 1, &info), 1);
    ck_assert_int_eq(info.requests.remaining, 0);
    /* now the request bucket waits longer (29 s) than the tokens (1 s) */
    ck_assert_int_eq(mg_limit_admit(l, 31000, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 29000);
    /* refused by the request bucket: no token was taken either */
    ck_assert_int_eq(info.tokens.remaining, 0);
    mg_limit_peek(l, 32000, &info);
    ck_assert_int_eq(info.tokens.remaining, 1);
    ck_assert_int_eq(mg_limit_admit(l, 60000, 1, &info), 1);
}
END_TEST

/* The estimate a reservation is made of: bytes / 4, inline files at 1,000, plus max_tokens. */
START_TEST(request_estimate)
{
    char body[16384], b64[8001];
    size_t n;

    memset(b64, 'A', sizeof(b64) - 1);
    b64[sizeof(b64) - 1] = '\0';
    n = (size_t)snprintf(body, sizeof(body), "{\"model\":\"m\",\"messages\":[]}");
    ck_assert_uint_eq(n, 27);
    ck_assert_int_eq(mg_limit_estimate(body, n, 0), 6);
    ck_assert_int_eq(mg_limit_estimate(body, n, 50), 56);
    ck_assert_int_eq(mg_limit_estimate(body, n, MG_TOKENS_MAX), MG_TOKENS_MAX);
    /* OpenAI's image_url and file_data as data URLs: each 1,000 instead of its bytes / 4 */
    n = (size_t)snprintf(body, sizeof(body), "{\"messages\":[{\"content\":[{\"type\":"
                         "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,%s\"}},"
                         "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;"
                         "base64,%.100s\"}}]}]}", b64, b64);
    ck_assert_int_eq(mg_limit_estimate(body, n, 0),
                     (int64_t)(n - (2 + 22 + 8000) - (2 + 28 + 100)) / 4 + 2000);
    /* Anthropic's base64 source, the data before or after its type */
    n = (size_t)snprintf(body, sizeof(body), "{\"messages\":[{\"content\":[{\"type\":\"image\","
                         "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\": "
                         "\"%s\"}},{\"type\":\"image\",\"source\":{\"data\":\"%.64s\",\"type\":"
                         "\"base64\"}}]}]}", b64, b64);
    ck_assert_int_eq(mg_limit_estimate(body, n, 7), (int64_t)(n - 8002 - 66) / 4 + 2000 + 7);
    /* not files: a short "data" string, a "data" that is not base64, "data:" inside a text */
    n = (size_t)snprintf(body, sizeof(body), "{\"a\":{\"data\":\"SGVsbG8=\"},\"b\":{\"data\":"
                         "\"%.70s!\"},\"c\":\"see data:x\",\"d\":\"\\\"data:x\"}", b64);
    ck_assert_int_eq(mg_limit_estimate(body, n, 0), (int64_t)n / 4);
    /* multipart/form-data: each part with a filename is a file */
    n = (size_t)snprintf(body, sizeof(body),
                         "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                         "whisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
                         "filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n%s\r\n--XyZ--\r\n",
                         b64);
    {
        /* the file's part: its headers and content, between its boundary line and the next */
        const char *file = strstr(body, "\r\n--XyZ\r\n") + 9;
        size_t part = (size_t)(strstr(file, "\r\n--XyZ--") - file);
        ck_assert_int_eq(mg_limit_estimate(body, n, 0), (int64_t)(n - part) / 4 + 1000);
    }
    /* unterminated and odd bodies cost what their bytes say, never more, never a crash */
    ck_assert_int_eq(mg_limit_estimate("{\"x\":\"data:abc", 15, 0), 3);
    ck_assert_int_eq(mg_limit_estimate("--", 2, 0), 0);
    ck_assert_int_eq(mg_limit_estimate("", 0, 0), 0);
}
END_TEST

START_TEST(reconfigure_keeps_level_and_clamps)
{
    struct mg_limit *l = fresh(100, 0, 0), *d = fresh(0, 100, 0);
    struct mg_limit_info info;
    int i;

    for (i = 0; i < 50; i++) {
        mg_limit_admit(l, 0, 1, NULL);
    }
    /* Raised: the level stays 50 and the rest refills at the new rate (150 at 200/min = 45 s). */
    mg_limit_configure(l, 200, 0, 0);
    mg_limit_peek(l, 0, &info);
    ck_assert_int_eq(info.requests.limit, 200);
    ck_assert_int_eq(info.requests.remaining, 50);
    ck_assert_int_eq(info.requests.reset_ms, 45000);
    mg_limit_peek(l, 3000, &info);
    ck_assert_int_eq(info.requests.remaining, 60);
    /* Lowered below the level: clamped, so the bucket is full at the new capacity. */
    mg_limit_configure(l, 20, 0, 3000);
    mg_limit_peek(l, 3000, &info);
    ck_assert_int_eq(info.requests.remaining, 20);
    ck_assert_int_eq(info.requests.reset_ms, 0);
    ck_assert_int_eq(drain(l, 3000), 20);
    /* Removed, then added again: no limit, then a full new bucket. */
    mg_limit_configure(l, 0, 0, 3000);
    ck_assert_int_eq(mg_limit_admit(l, 3000, 1, &info), 1);
    ck_assert_int_eq(info.requests.limit, 0);
    mg_limit_configure(l, 5, 0, 3000);
    ck_assert_int_eq(drain(l, 3000), 5);

    /* An empty token bucket stays empty through a change, and a wait is for the reservation
     * at the new rate, capped at the new capacity. */
    ck_assert_int_eq(mg_limit_admit(d, 0, 100, &info), 1);
    mg_limit_settle(d, 100, 150, 0);
    mg_limit_configure(d, 0, 200, 0);
    ck_assert_int_eq(mg_limit_admit(d, 0, 51, &info), 0);
    ck_assert_int_eq(info.tokens.reset_ms, 60000);      /* 200 at 200 a minute */
    ck_assert_int_eq(info.retry_after_ms, 15300);       /* 51 at 200 a minute */
    mg_limit_configure(d, 0, 20, 0);
    ck_assert_int_eq(mg_limit_admit(d, 0, 51, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 60000);       /* capped at 20: 20 at 20 a minute */
}
END_TEST

START_TEST(durations_as_openai_writes_them)
{
    static const struct {
        int64_t     ms;
        const char *want;
    } cases[] = {
        {0, "0s"}, {-5, "0s"}, {1, "1ms"}, {20, "20ms"}, {999, "999ms"}, {1000, "1s"},
        {1500, "1.5s"}, {8640, "8.64s"}, {7005, "7.005s"}, {59999, "59.999s"},
        {60000, "1m0s"}, {90000, "1m30s"}, {360000, "6m0s"}, {111535, "1m51.535s"},
        {259200, "4m19.2s"}, {3600000, "1h0m0s"}, {3723004, "1h2m3.004s"},
        {90061000, "25h1m1s"},
    };
    char buf[32];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        ck_assert_uint_eq(mg_limit_format_duration(cases[i].ms, buf, sizeof(buf)),
                          strlen(cases[i].want));
        ck_assert_str_eq(buf, cases[i].want);
    }
    /* A short buffer is cut, never overrun, and the needed length is still returned. */
    ck_assert_uint_eq(mg_limit_format_duration(111535, buf, 4), 9);
    ck_assert_str_eq(buf, "1m5");
}
END_TEST

START_TEST(headers_for_a_limited_key)
{
    struct mg_limit *l = fresh(600, 200000, 0), *r = fresh(2, 0, 0);
    struct mg_limit_info info;
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    static const char *const want[][2] = {
        {"x-ratelimit-limit-requests", "600"},
        {"x-ratelimit-remaining-requests", "599"},
        {"x-ratelimit-reset-requests", "100ms"},
        {"x-ratelimit-limit-tokens", "200000"},
        {"x-ratelimit-remaining-tokens", "199000"},
        {"x-ratelimit-reset-tokens", "300ms"},
    };
    size_t i, n;

    ck_assert_int_eq(mg_limit_admit(l, 0, 1000, &info), 1);
    n = mg_limit_headers(&info, h);
    ck_assert_uint_eq(n, 6);
    for (i = 0; i < n; i++) {
        ck_assert_str_eq(h[i].name, want[i][0]);
        ck_assert_str_eq(h[i].value, want[i][1]);
    }

    /* A refusal adds Retry-After in whole seconds, rounded up; only the limits the key has. */
    ck_assert_int_eq(drain(r, 0), 2);
    ck_assert_int_eq(mg_limit_admit(r, 1, 1, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 29999);
    n = mg_limit_headers(&info, h);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(h[0].value, "2");
    ck_assert_str_eq(h[1].value, "0");
    ck_assert_str_eq(h[2].name, "x-ratelimit-reset-requests");
    ck_assert_str_eq(h[2].value, "59.999s");
    ck_assert_str_eq(h[3].name, "Retry-After");
    ck_assert_str_eq(h[3].value, "30");
    info.retry_after_ms = 1;
    mg_limit_headers(&info, h);
    ck_assert_str_eq(h[3].value, "1");
    info.retry_after_ms = 30000;
    mg_limit_headers(&info, h);
    ck_assert_str_eq(h[3].value, "30");
    info.retry_after_ms = 30001;
    mg_limit_headers(&info, h);
    ck_assert_str_eq(h[3].value, "31");
}
END_TEST

/* 8 threads hammer one key with the clock frozen: the bucket hands out exactly its capacity. */
#define NTHREADS 8
#define CALLS    2000
#define SETTLES  100000     /* long enough for the threads to overlap */

struct hammer {
    struct mg_limit   *l;
    pthread_barrier_t *go;
    int64_t            tokens;     /* each admission's estimate */
    int                admitted;
};

static void *
admit_main(void *arg)
{
    struct hammer *h = arg;
    int i;

    pthread_barrier_wait(h->go);
    for (i = 0; i < CALLS; i++) {
        h->admitted += mg_limit_admit(h->l, 5000, h->tokens, NULL);
    }
    return NULL;
}

/* Reserves 5, settles 3: each request costs 2 more than a bare admission would show. */
static void *
settle_main(void *arg)
{
    struct hammer *h = arg;
    struct mg_limit_info info;
    int i;

    pthread_barrier_wait(h->go);
    for (i = 0; i < SETTLES; i++) {
        if (mg_limit_admit(h->l, 5000, 5, &info)) {
            h->admitted++;
            mg_limit_settle(h->l, info.reserved, 3, 5000);
        }
    }
    return NULL;
}

static void
hammer(struct mg_limit *l, void *(*fn)(void *), int64_t tokens, int *total)
{
    struct hammer h[NTHREADS];
    pthread_t th[NTHREADS];
    pthread_barrier_t go;
    int i;

    pthread_barrier_init(&go, NULL, NTHREADS);
    for (i = 0; i < NTHREADS; i++) {
        h[i].l = l;
        h[i].go = &go;
        h[i].tokens = tokens;
        h[i].admitted = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, fn, &h[i]), 0);
    }
    *total = 0;
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        *total += h[i].admitted;
    }
    pthread_barrier_destroy(&go);
}

START_TEST(threads_get_exactly_the_capacity)
{
    struct mg_limit *l = fresh(1000, 100000, 5000);
    struct mg_limit_info info;
    int total, round;

    for (round = 0; round < 20; round++) {
        mg_limit_configure(l, 0, 0, 5000);          /* new, full buckets each round */
        mg_limit_configure(l, 1000, 100000, 5000);
        hammer(l, admit_main, 1, &total);
        ck_assert_int_eq(total, 1000);
        /* whoever lost the last requests to another thread gave its token back: exactly 1000 */
        mg_limit_peek(l, 5000, &info);
        ck_assert_int_eq(info.tokens.remaining, 100000 - 1000);
    }
    /* The token bucket as the limit: reservations of 7 from 1000 are exactly 142 (994). */
    for (round = 0; round < 20; round++) {
        mg_limit_configure(l, 0, 0, 5000);
        mg_limit_configure(l, 0, 1000, 5000);
        hammer(l, admit_main, 7, &total);
        ck_assert_int_eq(total, 142);
        mg_limit_peek(l, 5000, &info);
        ck_assert_int_eq(info.tokens.remaining, 6);
    }
    /* Concurrent settlements are never lost: 8 x 100000 requests that end at 3 tokens each
     * (60 ns a token at 10^9 a minute, so the arithmetic is exact). */
    mg_limit_configure(l, 0, 0, 5000);
    mg_limit_configure(l, 0, MG_LIMIT_MAX, 5000);
    hammer(l, settle_main, 5, &total);
    ck_assert_int_eq(total, NTHREADS * SETTLES);
    mg_limit_peek(l, 5000, &info);
    ck_assert_int_eq(info.tokens.remaining, MG_LIMIT_MAX - (int64_t)NTHREADS * SETTLES * 3);
}
END_TEST

Suite *
limit_suite(void)
{
    Suite *s = suite_create("limit");
    TCase *t = tcase_create("buckets");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, registry_keeps_buckets_per_name);
    tcase_add_test(t, no_limits_admit_everything);
    tcase_add_test(t, initial_burst_then_refusal_with_exact_wait);
    tcase_add_test(t, retry_after_is_exact_when_the_rate_does_not_divide);
    tcase_add_test(t, refill_rate_is_exact_over_a_minute);
    tcase_add_test(t, bucket_refills_to_capacity_not_beyond);
    tcase_add_test(t, tokens_reserved_then_settled);
    tcase_add_test(t, token_debt_capped_at_one_minute);
    tcase_add_test(t, both_limits_the_longer_wait_wins);
    tcase_add_test(t, request_estimate);
    tcase_add_test(t, reconfigure_keeps_level_and_clamps);
    tcase_add_test(t, durations_as_openai_writes_them);
    tcase_add_test(t, headers_for_a_limited_key);
    tcase_add_test(t, threads_get_exactly_the_capacity);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    return s;
}
