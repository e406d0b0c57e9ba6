/*
 * Active health checks suite: the real build/modelgate in front of build/fakeai instances whose
 * model list fails (--fail 503 --fail-models) until GET /_fake/up, over HTTP on loopback. A
 * cooling backend is checked every check_interval and is up again as soon as a check passes,
 * with no traffic; checks carry each schema's credentials to its model list; none goes to a
 * backend that is not cooling, or whose checks are off; a check in flight does not hold the
 * gateway at its stop (the harness requires a clean exit).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_harness.h"
#include "mg_test.h"

enum { C_DOWN, C_OK, C_OFF, C_AZ, C_AN, C_HANG, NFAKE };
static const char *const names[NFAKE] = {"down", "ok", "off", "az", "an", "hang"};
static struct mg_harness gwh;
static int *const port = gwh.fake_port;

#define CHECK_MS 300   /* the top-level check_interval */

/* The suite's config; az_health is az's own health block ("" for none). */
static void
write_conf(char *conf, size_t size, const char *az_health)
{
    snprintf(conf, size,
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "log_level: debug\n"
             "access_log: off\n"
             "timeouts: {connect: 2s, first_byte: 5s, idle: 5s, total: 30s}\n"
             "health: {failures: 1, cooldown: 30s, check_interval: %dms}\n"
             "backends:\n"
             "  - {name: down, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: ok, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: off, url: 'http://127.0.0.1:%d/v1', health: {check_interval: 0s}}\n"
             "  - {name: az, schema: azure, url: 'http://127.0.0.1:%d', api_key: az-key-0123456789,\n"
             "     api_version: 2024-06-01%s}\n"
             "  - {name: an, schema: anthropic, url: 'http://127.0.0.1:%d',\n"
             "     api_key: an-key-0123456789}\n"
             "  - {name: hang, url: 'http://127.0.0.1:%d/v1', timeouts: {first_byte: 400ms},\n"
             "     health: {check_interval: 100ms}}\n"
             "rules:\n"
             "  - {models: [m-down], retry_same: false, backends: [{backend: down}]}\n"
             "  - {models: [m-ok], backends: [{backend: ok}]}\n"
             "  - {models: [m-off], retry_same: false, backends: [{backend: off}]}\n"
             "  - {models: [m-az], retry_same: false, backends: [{backend: az}]}\n"
             "  - {models: [m-an], retry_same: false, backends: [{backend: an}]}\n"
             "  - {models: [m-hang], retry_same: false, backends: [{backend: hang}]}\n",
             gwh.gw_port, CHECK_MS, port[C_DOWN], port[C_OK], port[C_OFF], port[C_AZ], az_health,
             port[C_AN], port[C_HANG]);
}

static void
start_checks(void)
{
    char *failing[] = {"--fail", "503", "--fail-models", NULL};
    char *hang[] = {"--hang", NULL};
    char conf[4096];
    int i;

    mg_harness_init(&gwh, "mgtest-ck-gw.log", "mgtest-ck-fake.log");
    for (i = 0; i < NFAKE; i++) {
        mg_harness_fake(&gwh, names[i], i == C_OK ? NULL : i == C_HANG ? hang : failing);
    }
    write_conf(conf, sizeof(conf), "");
    mg_harness_start(&gwh, 2, conf);
}

static void
stop_checks(void)
{
    mg_harness_stop(&gwh, "modelgate (checks)");
}

static long
chat(const char *model)
{
    struct mg_test_resp r;
    char body[128];
    long status;

    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":[]}", model);
    mg_test_http("POST", mg_harness_url(&gwh, "/v1/chat/completions"), body, strlen(body), NULL,
                 &r);
    status = r.status;
    mg_test_resp_free(&r);
    return status;
}

static double
metric(const char *series)
{
    struct mg_test_resp r;
    double v;

    mg_test_http("GET", mg_harness_url(&gwh, "/metrics"), NULL, 0, NULL, &r);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v < 0 ? 0 : v;
}

static double
up(const char *backend)
{
    char s[128];

    snprintf(s, sizeof(s), "modelgate_backend_up{backend=\"%s\"}", backend);
    return metric(s);
}

static double
checks(const char *backend, const char *result)
{
    char s[160];

    snprintf(s, sizeof(s), "modelgate_backend_attempts_total{backend=\"%s\",result=\"%s\"}",
             backend, result);
    return metric(s);
}

/* Waits until fake i has answered at least n GETs of its model list; returns how many. */
static long
wait_models(int i, long n)
{
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();
    long got;

    while ((got = mg_test_fake_stat(port[i], "models")) < n && mg_now_ms() < deadline) {
        usleep(20000);
    }
    ck_assert_msg(got >= n, "%s: %ld checks, want %ld", names[i], got, n);
    return got;
}

/* A string of fake i's /_fake/stats (static storage, one per call). */
static const char *
fake_str(int i, const char *key)
{
    static char buf[4][256];
    static int slot;
    struct mg_test_resp r;
    char url[128];
    json_t *j;

    slot = (slot + 1) % 4;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/stats", port[i]);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    j = mg_test_body_json(&r);
    snprintf(buf[slot], sizeof(buf[slot]), "%s", json_string_value(json_object_get(j, key)));
    json_decref(j);
    mg_test_resp_free(&r);
    return buf[slot];
}

/*
 * down fails, cools for 30 s, and is checked every 300 ms meanwhile (each check failing leaves
 * it down); once it recovers, with no request at all, the next check brings it up, within a
 * check_interval and a tick (75 ms) of the recovery.
 */
START_TEST(cooling_backend_recovers_with_no_traffic)
{
    struct mg_test_resp r;
    char url[128];
    int64_t t0, deadline;
    double ms;

    ck_assert_int_eq(chat("m-az"), 503);   /* its checks measure time passing, below */
    ck_assert_int_eq(chat("m-down"), 503);
    ck_assert(up("down") == 0);
    wait_models(C_DOWN, 2);
    ck_assert(up("down") == 0);   /* failed checks change nothing */
    ck_assert(checks("down", "check_failed") >= 2);
    ck_assert(checks("down", "check_ok") == 0);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/up", port[C_DOWN]);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    t0 = mg_now_ms();
    deadline = t0 + 5000 * mg_test_scale();
    while (up("down") == 0 && mg_now_ms() < deadline) {
        usleep(10000);
    }
    ms = (double)(mg_now_ms() - t0);
    fprintf(stderr, "cooling_backend_recovers_with_no_traffic: up %.0f ms after it recovered "
            "(check_interval %d ms)\n", ms, CHECK_MS);
    ck_assert_msg(up("down") == 1, "still down %.0f ms after it recovered", ms);
    ck_assert_msg(ms < CHECK_MS + 75 + 500.0 * mg_test_scale(), "up after %.0f ms", ms);
    ck_assert(checks("down", "check_ok") >= 1);
    ck_assert_int_eq(chat("m-down"), 200);
    /* up: no check goes to it any more */
    {
        long n = mg_test_fake_stat(port[C_DOWN], "models");
        wait_models(C_AZ, mg_test_fake_stat(port[C_AZ], "models") + 2);   /* time passes */
        ck_assert_int_eq(mg_test_fake_stat(port[C_DOWN], "models"), n);
    }
}
END_TEST

/* Checks carry each schema's credentials to its model list. */
START_TEST(checks_carry_credentials)
{
    ck_assert_int_eq(chat("m-az"), 503);
    ck_assert_int_eq(chat("m-an"), 503);
    wait_models(C_AZ, 1);
    wait_models(C_AN, 1);
    ck_assert_str_eq(fake_str(C_AZ, "models_uri"), "/openai/models?api-version=2024-06-01");
    ck_assert_str_eq(fake_str(C_AZ, "models_key"), "az-key-0123456789");
    ck_assert_str_eq(fake_str(C_AN, "models_uri"), "/v1/models");
    ck_assert_str_eq(fake_str(C_AN, "models_key"), "an-key-0123456789");
    ck_assert(up("az") == 0 && up("an") == 0);
}
END_TEST

/*
 * Never a check to a backend that is not cooling (ok answers), nor to one whose check_interval
 * is 0s (off cools, with passive probes only): while other backends are checked several times.
 */
START_TEST(no_check_unless_cooling_and_on)
{
    int i;

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(chat("m-ok"), 200);
    }
    ck_assert_int_eq(chat("m-off"), 503);
    ck_assert_int_eq(chat("m-az"), 503);   /* cooling already, or again */
    wait_models(C_AZ, mg_test_fake_stat(port[C_AZ], "models") + 3);
    ck_assert(up("off") == 0);
    ck_assert_int_eq(mg_test_fake_stat(port[C_OK], "models"), 0);
    ck_assert_int_eq(mg_test_fake_stat(port[C_OFF], "models"), 0);
    ck_assert(checks("ok", "check_ok") == 0 && checks("ok", "check_failed") == 0);
}
END_TEST

/*
 * hang never answers: its checks (every 100 ms, first_byte 400 ms) are one at a time, each
 * failing at first_byte; one is in flight when the suite stops the gateway, which must still
 * exit at once and cleanly (mg_harness_stop).
 */
START_TEST(hanging_checks_one_at_a_time)
{
    int64_t t0 = mg_now_ms();
    long n;

    ck_assert_int_eq(chat("m-hang"), 504);
    wait_models(C_HANG, 3);
    n = mg_test_fake_stat(port[C_HANG], "models");
    /* one check at a time, each 400 ms: no more than the time allows */
    ck_assert_msg(n <= (mg_now_ms() - t0) / 400 + 1, "%ld checks in %lld ms", n,
                  (long long)(mg_now_ms() - t0));
    ck_assert(checks("hang", "check_failed") >= 2);
}
END_TEST

/*
 * A reload applies to the checks at once: az's own check_interval: 0s stops its checks (one
 * under way at the reload may still end), while hang's go on; az stays down (state outlives
 * snapshots).
 */
START_TEST(reload_turns_a_backends_checks_off)
{
    char conf[4096];
    int64_t deadline;
    long n;
    FILE *f;

    ck_assert_int_eq(chat("m-az"), 503);
    ck_assert_int_eq(chat("m-hang"), 504);
    wait_models(C_AZ, mg_test_fake_stat(port[C_AZ], "models") + 1);   /* checked now */
    write_conf(conf, sizeof(conf), ", health: {check_interval: 0s}");
    f = fopen(gwh.conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(conf, f);
    fclose(f);
    ck_assert_int_eq(kill(gwh.gw_pid, SIGHUP), 0);
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    while (metric("modelgate_config_reloads_total{result=\"ok\"}") < 1 &&
           mg_now_ms() < deadline) {
        usleep(20000);
    }
    ck_assert(metric("modelgate_config_reloads_total{result=\"ok\"}") >= 1);
    /* worker 0 may take the snapshot a moment after the count: one more check at most */
    n = mg_test_fake_stat(port[C_AZ], "models");
    wait_models(C_HANG, mg_test_fake_stat(port[C_HANG], "models") + 3);   /* > 1 s passes */
    ck_assert_int_le(mg_test_fake_stat(port[C_AZ], "models"), n + 1);
    ck_assert(up("az") == 0);
}
END_TEST

Suite *
checks_suite(void)
{
    Suite *s = suite_create("checks");
    TCase *t = tcase_create("checks");

    tcase_add_unchecked_fixture(t, start_checks, stop_checks);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, cooling_backend_recovers_with_no_traffic);
    tcase_add_test(t, checks_carry_credentials);
    tcase_add_test(t, no_check_unless_cooling_and_on);
    tcase_add_test(t, hanging_checks_one_at_a_time);
    tcase_add_test(t, reload_turns_a_backends_checks_off);
    suite_add_tcase(s, t);
    return s;
}
