/* Unit tests: metrics merged across workers, histograms, escaping, the cardinality cap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_health.h"
#include "mg_stats.h"
#include "mg_test.h"

/* Each test's own registries, as a runtime holds them. */
static struct mg_stats_registry *reg;
static struct mg_health_registry *health;

static void
setup(void)
{
    reg = mg_stats_registry_create();
    health = mg_health_registry_create();
}

static void
teardown(void)
{
    mg_stats_registry_destroy(reg);
    mg_health_registry_destroy(health);
    reg = NULL;
    health = NULL;
}

static char *
render(void)
{
    struct mg_buf out;

    mg_buf_init(&out, 64u << 20);
    mg_stats_render(reg, &out);
    mg_health_render(health, &out);
    return out.data;
}

START_TEST(merged_across_workers)
{
    struct mg_stats *a = mg_stats_create(reg), *b = mg_stats_create(reg);
    char *t;

    mg_stats_request(a, "m", "x", 200, 3000, 1000);
    mg_stats_request(a, "m", "x", 200, 70000, -1);
    mg_stats_request(b, "m", "x", 200, 2000000, 500000);
    mg_stats_request(b, "m", "x", 502, 1000, -1);
    mg_stats_tokens(a, "m", "x", 10, 20);
    mg_stats_tokens(b, "m", "x", 5, -1);
    mg_stats_attempt(a, "x", "http_503");
    mg_stats_attempt(b, "x", "http_503");
    mg_stats_inflight(a, 2);
    mg_stats_inflight(b, 1);
    t = render();
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"m\",backend=\"x\",code=\"200\"}") == 3);
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"m\",backend=\"x\",code=\"502\"}") == 1);
    ck_assert(mg_test_metric(t, "modelgate_tokens_total{model=\"m\",backend=\"x\",type=\"input\"}") == 15);
    ck_assert(mg_test_metric(t, "modelgate_tokens_total{model=\"m\",backend=\"x\",type=\"output\"}") == 20);
    ck_assert(mg_test_metric(t, "modelgate_backend_attempts_total{backend=\"x\",result=\"http_503\"}") == 2);
    ck_assert(mg_test_metric(t, "modelgate_inflight_requests") == 3);
    /* histograms are cumulative, +Inf equals _count, _sum in seconds */
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_bucket{le=\"0.005\"}") == 2);
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_bucket{le=\"0.1\"}") == 3);
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_bucket{le=\"2.5\"}") == 4);
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_bucket{le=\"+Inf\"}") == 4);
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_count") == 4);
    ck_assert(mg_test_metric(t, "modelgate_request_duration_seconds_sum") > 2.07 &&
              mg_test_metric(t, "modelgate_request_duration_seconds_sum") < 2.08);
    ck_assert(mg_test_metric(t, "modelgate_time_to_first_token_seconds_count") == 2);
    ck_assert_ptr_nonnull(strstr(t, "# TYPE modelgate_config_reloads_total counter"));
    free(t);
    mg_stats_destroy(a);
    mg_stats_destroy(b);
    /* a destroyed worker's series are gone from the scrape */
    t = render();
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"m\",backend=\"x\",code=\"200\"}") < 0);
    free(t);
}
END_TEST

/* Token counters stop at 2^53 - 1: many large answers (or workers) never wrap a counter. */
START_TEST(token_counters_saturate)
{
    struct mg_stats *a = mg_stats_create(reg), *b = mg_stats_create(reg);
    char *t;

    mg_stats_tokens(a, "big", "x", MG_TOKENS_MAX, 1);
    mg_stats_tokens(a, "big", "x", MG_TOKENS_MAX, 1);   /* one worker: saturates */
    mg_stats_tokens(b, "big", "x", 5, MG_TOKENS_MAX);   /* two workers: the merge saturates */
    mg_stats_tokens(a, "big", "x", 0, MG_TOKENS_MAX);
    mg_stats_key(a, "k", 200, MG_TOKENS_MAX, 0);
    mg_stats_key(b, "k", 200, MG_TOKENS_MAX, 3);
    t = render();
    ck_assert(mg_test_metric(t, "modelgate_tokens_total{model=\"big\",backend=\"x\","
                                "type=\"input\"}") == (double)MG_TOKENS_MAX);
    ck_assert(mg_test_metric(t, "modelgate_tokens_total{model=\"big\",backend=\"x\","
                                "type=\"output\"}") == (double)MG_TOKENS_MAX);
    ck_assert(mg_test_metric(t, "modelgate_key_tokens_total{key=\"k\",type=\"input\"}") ==
              (double)MG_TOKENS_MAX);
    ck_assert(mg_test_metric(t, "modelgate_key_tokens_total{key=\"k\",type=\"output\"}") == 3);
    ck_assert_ptr_nonnull(strstr(t, "type=\"input\"} 9007199254740991\n"));
    free(t);
    mg_stats_destroy(a);
    mg_stats_destroy(b);
}
END_TEST

START_TEST(labels_escaped)
{
    struct mg_stats *a = mg_stats_create(reg);
    char *t;

    mg_stats_request(a, "we\"ird\\\nname", "b", 200, 1, -1);
    t = render();
    ck_assert_ptr_nonnull(strstr(t, "{model=\"we\\\"ird\\\\\\nname\",backend=\"b\",code=\"200\"} 1\n"));
    free(t);
    mg_stats_destroy(a);
}
END_TEST

START_TEST(cardinality_capped)
{
    struct mg_stats *a = mg_stats_create(reg);
    char model[32], *t;
    int i;

    for (i = 0; i < 5000; i++) {
        snprintf(model, sizeof(model), "made-up-%d", i);
        mg_stats_request(a, model, "b", 404, 1, -1);
    }
    /* a name seen before the cap keeps its series */
    mg_stats_request(a, "made-up-0", "b", 404, 1, -1);
    t = render();
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"made-up-0\",backend=\"b\",code=\"404\"}") == 2);
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"made-up-4999\",backend=\"b\",code=\"404\"}") < 0);
    ck_assert(mg_test_metric(t, "modelgate_requests_total{model=\"other\",backend=\"b\",code=\"404\"}") > 1000);
    free(t);
    mg_stats_destroy(a);
}
END_TEST

Suite *
stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *t = tcase_create("metrics");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, merged_across_workers);
    tcase_add_test(t, token_counters_saturate);
    tcase_add_test(t, labels_escaped);
    tcase_add_test(t, cardinality_capped);
    suite_add_tcase(s, t);
    return s;
}
