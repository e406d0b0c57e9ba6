/*
 * Suite cors: browsers calling the gateway (the config's cors: block). A preflight is answered by
 * the gateway before any key check and never forwarded; every answer to a listed Origin carries
 * the CORS headers; an unlisted origin, the admin endpoints and a gateway without the block get
 * none; credentials are never allowed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "mg_conf.h"
#include "mg_harness.h"
#include "mg_test.h"
#include "mg_util.h"

#define APP "https://app.example.com"
#define KEY "sk-cors-test-0123456789"

static struct mg_harness ch;   /* with cors (one origin) and a client key */

static void
start_cors(void)
{
    char conf[1024];

    mg_harness_init(&ch, "mgtest-cors-gw.log", "mgtest-cors-fake.log");
    mg_harness_fake(&ch, "cors", NULL);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 1\n"
             "cors: {origins: ['" APP "'], max_age: 5m}\n"
             "auth: {keys: [{name: web, key: " KEY "}]}\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: a}]}]\n",
             ch.gw_port, ch.fake_port[0]);
    mg_harness_start(&ch, 7, conf);
}

static void
stop_cors(void)
{
    mg_harness_stop(&ch, "modelgate (cors)");
}

/* The fake's request count: a preflight must never reach it. */
static long
fake_requests(void)
{
    struct mg_test_resp r;
    char url[128];
    json_t *j;
    long n;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/stats", ch.fake_port[0]);
    mg_test_http("GET", url, NULL, 0, NULL, &r);
    j = mg_test_body_json(&r);
    n = (long)json_integer_value(json_object_get(j, "requests"));
    json_decref(j);
    mg_test_resp_free(&r);
    return n;
}

START_TEST(preflight_answered_before_the_key)
{
    const char *h[] = {"Origin: " APP, "Access-Control-Request-Method: POST",
                       "Access-Control-Request-Headers: authorization, content-type", NULL};
    long before = fake_requests();
    struct mg_test_resp r;

    mg_test_http("OPTIONS", mg_harness_url(&ch, "/v1/chat/completions"), NULL, 0, h, &r);
    ck_assert_int_eq(r.status, 204);   /* no key sent: the preflight is not a request */
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-allow-origin"), APP);
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-allow-methods"),
                     "GET, POST, DELETE, OPTIONS");
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-allow-headers"),
                     "authorization, content-type");
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-max-age"), "300");
    ck_assert_str_eq(mg_test_hdr(&r, "vary"), "Origin");
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-credentials"));
    ck_assert_uint_eq(r.body.len, 0);
    mg_test_resp_free(&r);
    ck_assert_int_eq(fake_requests(), before);   /* never forwarded */
}
END_TEST

START_TEST(answers_to_a_listed_origin)
{
    const char *h[] = {"Origin: " APP, "Authorization: Bearer " KEY, NULL};
    const char *nokey[] = {"Origin: " APP, NULL};
    struct mg_test_resp r;
    const char *expose;

    mg_test_http("POST", mg_harness_url(&ch, "/v1/chat/completions"), "{\"model\":\"m\"}", 13,
                 h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-allow-origin"), APP);
    expose = mg_test_hdr(&r, "access-control-expose-headers");
    ck_assert_ptr_nonnull(expose);
    ck_assert_ptr_nonnull(strstr(expose, "x-request-id"));
    ck_assert_ptr_nonnull(strstr(expose, "x-ratelimit-remaining-requests"));
    ck_assert_ptr_nonnull(strstr(expose, "x-modelgate-backend"));
    /* every x-modelgate-* header the gateway sends, the budget's included */
    ck_assert_ptr_nonnull(strstr(expose, "x-modelgate-dropped-tools"));
    ck_assert_ptr_nonnull(strstr(expose, "x-modelgate-budget-remaining-usd"));
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-credentials"));
    mg_test_resp_free(&r);
    /* the gateway's own answers too: a 401 a browser's script must be able to read */
    mg_test_http("POST", mg_harness_url(&ch, "/v1/chat/completions"), "{\"model\":\"m\"}", 13,
                 nokey, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(mg_test_hdr(&r, "access-control-allow-origin"), APP);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(no_cors_where_it_does_not_belong)
{
    const char *evil[] = {"Origin: https://evil.example", "Access-Control-Request-Method: POST",
                          NULL};
    const char *plain[] = {"Access-Control-Request-Method: POST", NULL};
    const char *admin[] = {"Origin: " APP, NULL};
    struct mg_test_resp r;

    /* an unlisted origin's preflight is still answered (204) by the gateway, with no CORS
     * header: the browser refuses the call */
    mg_test_http("OPTIONS", mg_harness_url(&ch, "/v1/chat/completions"), NULL, 0, evil, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-origin"));
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-methods"));
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-max-age"));
    ck_assert_uint_eq(r.body.len, 0);
    mg_test_resp_free(&r);
    /* OPTIONS without an Origin is no preflight */
    mg_test_http("OPTIONS", mg_harness_url(&ch, "/v1/chat/completions"), NULL, 0, plain, &r);
    ck_assert_int_eq(r.status, 405);
    mg_test_resp_free(&r);
    /* admin endpoints never answer CORS */
    mg_test_http("GET", mg_harness_url(&ch, "/healthz"), NULL, 0, admin, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(mg_test_hdr(&r, "access-control-allow-origin"));
    mg_test_resp_free(&r);
}
END_TEST

/* The block's errors, with the line and column of the value at fault; its defaults. */
START_TEST(config_errors)
{
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"cors: {origins: []}\n", "cors needs \"origins\""},
        {"cors: {origins: ['app.example.com']}\n", "must be scheme://host[:port]"},
        {"cors: {origins: ['https://a.example/path']}\n", "must be scheme://host[:port]"},
        {"cors: {origins: ['https://a.example'], credentials: true}\n", "unknown key"},
    };
    struct mg_buf errs;
    struct mg_conf *c;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        mg_buf_init(&errs, 4096);
        c = mg_conf_parse("t.yaml", bad[i].yaml, strlen(bad[i].yaml), &errs);
        ck_assert_msg(c == NULL, "%s: accepted", bad[i].yaml);
        ck_assert_msg(errs.data != NULL && strstr(errs.data, bad[i].want) != NULL, "%s: %s",
                      bad[i].yaml, errs.data ? errs.data : "");
        mg_buf_deinit(&errs);
    }
    mg_buf_init(&errs, 4096);
    {
        static const char ok[] = "cors: {origins: ['*']}\n"
                                 "backends: [{name: a, url: 'http://x/v1'}]\n"
                                 "rules: [{models: [m], backends: [{backend: a}]}]\n";
        c = mg_conf_parse("t.yaml", ok, sizeof(ok) - 1, &errs);
    }
    ck_assert_msg(c != NULL, "%s", errs.data ? errs.data : "");
    ck_assert(c->cors.on && c->cors.any);
    ck_assert_int_eq(c->cors.max_age_ms, 600000);   /* 10m unless said */
    mg_conf_unref(c);
    mg_buf_deinit(&errs);
}
END_TEST

Suite *
cors_suite(void)
{
    Suite *s = suite_create("cors");
    TCase *t = tcase_create("http");

    tcase_set_timeout(t, 30 * mg_test_scale());
    tcase_add_unchecked_fixture(t, start_cors, stop_cors);
    tcase_add_test(t, preflight_answered_before_the_key);
    tcase_add_test(t, answers_to_a_listed_origin);
    tcase_add_test(t, no_cors_where_it_does_not_belong);
    tcase_add_test(t, config_errors);
    suite_add_tcase(s, t);
    return s;
}
