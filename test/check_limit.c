/*
 * Unit tests of the per-key token buckets with an injected clock: burst, refill rate, refusal and
 * its exact Retry-After, token debt, reconfiguration, the header values, and CAS under threads.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mg_limit.h"
#include "mg_test.h"

static struct mg_limit *
fresh(int64_t rpm, int64_t tpm, int64_t now)
{
    static int n;
    char name[32];
    struct mg_limit *l;

    snprintf(name, sizeof(name), "key-%d", n++);
    l = mg_limit_get(name);
    mg_limit_configure(l, rpm, tpm, now);
    return l;
}

static void
teardown(void)
{
    mg_limit_reset();
}

/* Admits as many as the bucket lets through at now. */
static int
drain(struct mg_limit *l, int64_t now)
{
    int n = 0;

    while (mg_limit_admit(l, now, NULL)) {
        n++;
    }
    return n;
}

START_TEST(registry_keeps_buckets_per_name)
{
    struct mg_limit *a = mg_limit_get("team-a"), *b = mg_limit_get("team-b");
    struct mg_limit_info info;

    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(mg_limit_get("team-a"), a);
    ck_assert_str_eq(mg_limit_name(a), "team-a");
    mg_limit_configure(a, 2, 0, 0);
    ck_assert_int_eq(drain(a, 0), 2);
    /* A reload finds the same bucket, still empty; the same limit changes nothing. */
    mg_limit_configure(mg_limit_get("team-a"), 2, 0, 10);
    ck_assert_int_eq(mg_limit_admit(mg_limit_get("team-a"), 10, &info), 0);
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
        ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
    }
    mg_limit_debit_tokens(l, 1000000, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
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
        ck_assert_int_eq(mg_limit_admit(l, 1000, &info), 1);
        ck_assert_int_eq(info.requests.limit, 10);
        ck_assert_int_eq(info.requests.remaining, 9 - i);
        ck_assert_int_eq(info.requests.reset_ms, 6000 * (i + 1));
        ck_assert_int_eq(info.retry_after_ms, 0);
    }
    ck_assert_int_eq(mg_limit_admit(l, 1000, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 6000);
    ck_assert_int_eq(info.requests.remaining, 0);
    ck_assert_int_eq(info.requests.reset_ms, 60000);
    /* Refused requests take nothing: the wait only shrinks with time. */
    ck_assert_int_eq(mg_limit_admit(l, 4000, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 3000);
    ck_assert_int_eq(mg_limit_admit(l, 6999, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 1);
    ck_assert_int_eq(mg_limit_admit(l, 7000, &info), 1);
    ck_assert_int_eq(info.requests.remaining, 0);
}
END_TEST

START_TEST(retry_after_is_exact_when_the_rate_does_not_divide)
{
    /* 7 a minute: one every 8571.43 ms. */
    struct mg_limit *l = fresh(7, 0, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(drain(l, 0), 7);
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 8572);
    ck_assert_int_eq(mg_limit_admit(l, 8571, NULL), 0);
    ck_assert_int_eq(mg_limit_admit(l, 8572, &info), 1);
    ck_assert_int_eq(mg_limit_admit(l, 8572, &info), 0);
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

START_TEST(token_debt_blocks_until_refilled)
{
    struct mg_limit *l = fresh(0, 1000, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
    ck_assert_int_eq(info.tokens.limit, 1000);
    ck_assert_int_eq(info.tokens.remaining, 1000);   /* tokens are debited after the answer */
    mg_limit_debit_tokens(l, 600, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
    ck_assert_int_eq(info.tokens.remaining, 400);
    ck_assert_int_eq(info.tokens.reset_ms, 36000);
    /* A big answer pushes the bucket 500 into debt. */
    mg_limit_debit_tokens(l, 900, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 0);
    ck_assert_int_eq(info.tokens.remaining, 0);
    ck_assert_int_eq(info.tokens.reset_ms, 90000);
    /* Refused until one whole token is back: 501 tokens at 1000 a minute = 30.06 s. */
    ck_assert_int_eq(info.retry_after_ms, 30060);
    ck_assert_int_eq(mg_limit_admit(l, 30000, &info), 0);   /* level 0: empty is refused too */
    ck_assert_int_eq(info.retry_after_ms, 60);
    ck_assert_int_eq(mg_limit_admit(l, 30059, NULL), 0);
    ck_assert_int_eq(mg_limit_admit(l, 30060, &info), 1);
    ck_assert_int_eq(info.tokens.remaining, 1);
}
END_TEST

START_TEST(both_limits_the_longer_wait_wins)
{
    struct mg_limit *l = fresh(1, 60, 0);
    struct mg_limit_info info;

    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
    mg_limit_debit_tokens(l, 120, 0);   /* 60 in debt: a token back after 61 s */
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 61000);
    ck_assert_int_eq(info.requests.reset_ms, 60000);
    ck_assert_int_eq(info.tokens.reset_ms, 120000);
    /* A refusal by the token bucket takes no request. */
    ck_assert_int_eq(mg_limit_admit(l, 60000, &info), 0);
    ck_assert_int_eq(info.requests.remaining, 1);
    ck_assert_int_eq(info.retry_after_ms, 1000);
    ck_assert_int_eq(mg_limit_admit(l, 61000, &info), 1);
    ck_assert_int_eq(info.requests.remaining, 0);
}
END_TEST

START_TEST(reconfigure_keeps_level_and_clamps)
{
    struct mg_limit *l = fresh(100, 0, 0), *d = fresh(0, 100, 0);
    struct mg_limit_info info;
    int i;

    for (i = 0; i < 50; i++) {
        mg_limit_admit(l, 0, NULL);
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
    ck_assert_int_eq(mg_limit_admit(l, 3000, &info), 1);
    ck_assert_int_eq(info.requests.limit, 0);
    mg_limit_configure(l, 5, 0, 3000);
    ck_assert_int_eq(drain(l, 3000), 5);

    /* Debt is kept through a change, in tokens: -50 stays -50. */
    mg_limit_debit_tokens(d, 150, 0);
    mg_limit_configure(d, 0, 200, 0);
    ck_assert_int_eq(mg_limit_admit(d, 0, &info), 0);
    ck_assert_int_eq(info.tokens.reset_ms, 75000);      /* 250 at 200 a minute */
    ck_assert_int_eq(info.retry_after_ms, 15300);       /* 51 at 200 a minute */
    mg_limit_configure(d, 0, 20, 0);
    ck_assert_int_eq(mg_limit_admit(d, 0, &info), 0);
    ck_assert_int_eq(info.retry_after_ms, 153000);      /* 51 at 20 a minute */
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

    mg_limit_debit_tokens(l, 1000, 0);
    ck_assert_int_eq(mg_limit_admit(l, 0, &info), 1);
    n = mg_limit_headers(&info, h);
    ck_assert_uint_eq(n, 6);
    for (i = 0; i < n; i++) {
        ck_assert_str_eq(h[i].name, want[i][0]);
        ck_assert_str_eq(h[i].value, want[i][1]);
    }

    /* A refusal adds Retry-After in whole seconds, rounded up; only the limits the key has. */
    ck_assert_int_eq(drain(r, 0), 2);
    ck_assert_int_eq(mg_limit_admit(r, 1, &info), 0);
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
#define DEBITS   100000     /* long enough for the threads to overlap */

struct hammer {
    struct mg_limit   *l;
    pthread_barrier_t *go;
    int                admitted;
};

static void *
admit_main(void *arg)
{
    struct hammer *h = arg;
    int i;

    pthread_barrier_wait(h->go);
    for (i = 0; i < CALLS; i++) {
        h->admitted += mg_limit_admit(h->l, 5000, NULL);
    }
    return NULL;
}

static void *
debit_main(void *arg)
{
    struct hammer *h = arg;
    int i;

    pthread_barrier_wait(h->go);
    for (i = 0; i < DEBITS; i++) {
        mg_limit_debit_tokens(h->l, 3, 5000);
    }
    return NULL;
}

static void
hammer(struct mg_limit *l, void *(*fn)(void *), int *total)
{
    struct hammer h[NTHREADS];
    pthread_t th[NTHREADS];
    pthread_barrier_t go;
    int i;

    pthread_barrier_init(&go, NULL, NTHREADS);
    for (i = 0; i < NTHREADS; i++) {
        h[i].l = l;
        h[i].go = &go;
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
        mg_limit_configure(l, 0, 100000, 5000);     /* a new, full bucket each round */
        mg_limit_configure(l, 1000, 100000, 5000);
        hammer(l, admit_main, &total);
        ck_assert_int_eq(total, 1000);
    }
    /* Concurrent debits are never lost: 8 x 100000 x 3 tokens, deep in debt (as ms of refill). */
    hammer(l, debit_main, &total);
    mg_limit_peek(l, 5000, &info);
    ck_assert_int_eq(info.tokens.remaining, 0);
    ck_assert_int_eq(info.tokens.reset_ms, (int64_t)NTHREADS * DEBITS * 3 * 60000 / 100000);
}
END_TEST

Suite *
limit_suite(void)
{
    Suite *s = suite_create("limit");
    TCase *t = tcase_create("buckets");

    tcase_add_checked_fixture(t, NULL, teardown);
    tcase_add_test(t, registry_keeps_buckets_per_name);
    tcase_add_test(t, no_limits_admit_everything);
    tcase_add_test(t, initial_burst_then_refusal_with_exact_wait);
    tcase_add_test(t, retry_after_is_exact_when_the_rate_does_not_divide);
    tcase_add_test(t, refill_rate_is_exact_over_a_minute);
    tcase_add_test(t, bucket_refills_to_capacity_not_beyond);
    tcase_add_test(t, token_debt_blocks_until_refilled);
    tcase_add_test(t, both_limits_the_longer_wait_wins);
    tcase_add_test(t, reconfigure_keeps_level_and_clamps);
    tcase_add_test(t, durations_as_openai_writes_them);
    tcase_add_test(t, headers_for_a_limited_key);
    tcase_add_test(t, threads_get_exactly_the_capacity);
    tcase_set_timeout(t, 60);
    suite_add_tcase(s, t);
    return s;
}
