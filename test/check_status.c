/*
 * Suite status: GET /status.json and GET /status. The document's shape and numbers after known
 * traffic (a backend that answers, one that is down), the page readable without script, and the
 * page in a real headless Debian chromium: loaded, its script run (it refreshed the numbers from
 * status.json), every number on it equal to /status.json's, a screenshot kept as
 * $MG_BUILD/status.png. Without chromium that test says SKIPPED. With auth the page is a 404. A
 * reload is a new config generation; the counts outlive it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "mg_harness.h"
#include "mg_test.h"
#include "mg_util.h"

#define N_OK 6
static struct mg_harness sh, sauth;
static int dead_port;

static void
chat(struct mg_harness *h)
{
    static const char body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"hi\"}]}";
    const char *hd[] = {"Content-Type: application/json", NULL};
    struct mg_test_resp r;

    mg_test_http("POST", mg_harness_url(h, "/v1/chat/completions"), body, sizeof(body) - 1, hd,
                 &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
}

static void
start_status(void)
{
    char conf[1024];
    int i;

    mg_harness_init(&sh, "mgtest-status-gw.log", "mgtest-status-fake.log");
    mg_harness_fake(&sh, "a", NULL);
    dead_port = mg_test_free_port();
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\n"
             "backends: [{name: down, url: 'http://127.0.0.1:%d/v1'},"
             " {name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: down, priority: 1},"
             " {backend: a, priority: 2}]}, {models: [other], backends: [{backend: a}]}]\n",
             sh.gw_port, dead_port, sh.fake_port[0]);
    mg_harness_start(&sh, 6, conf);
    for (i = 0; i < N_OK; i++) {
        chat(&sh);
    }
    mg_harness_init(&sauth, "mgtest-status-auth-gw.log", "mgtest-status-auth-fake.log");
    mg_harness_fake(&sauth, "b", NULL);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "auth: {keys: [{name: k, key: sk-status-test-000000000000}]}\n"
             "backends: [{name: b, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: b}]}]\n",
             sauth.gw_port, sauth.fake_port[0]);
    mg_harness_start(&sauth, 7, conf);
}

static void
stop_status(void)
{
    mg_harness_stop(&sh, "modelgate (status)");
    mg_harness_stop(&sauth, "modelgate (status, auth)");
}

static json_t *
status_json(struct mg_harness *h)
{
    struct mg_test_resp r;
    json_t *j;

    mg_test_http("GET", mg_harness_url(h, "/status.json"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(mg_test_hdr(&r, "content-type"), "application/json"));
    j = mg_test_body_json(&r);
    mg_test_resp_free(&r);
    ck_assert_ptr_nonnull(j);
    return j;
}

static json_t *
backend_named(json_t *j, const char *name)
{
    json_t *b;
    size_t i;

    json_array_foreach(json_object_get(j, "backends"), i, b) {
        if (strcmp(json_string_value(json_object_get(b, "name")), name) == 0) {
            return b;
        }
    }
    return NULL;
}

static long long
sum(json_t *a)
{
    long long s = 0;
    size_t i;
    json_t *v;

    json_array_foreach(a, i, v) {
        s += json_integer_value(v);
    }
    return s;
}

START_TEST(status_json_shape_and_numbers)
{
    json_t *j = status_json(&sh), *in = json_object_get(j, "instance"), *a, *d, *r;

    ck_assert_str_eq(json_string_value(json_object_get(in, "version")), "0.1.0");
    ck_assert_int_eq(json_integer_value(json_object_get(in, "workers")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(in, "config_generation")), 1);
    ck_assert_int_ge(json_integer_value(json_object_get(in, "uptime_s")), 0);
    ck_assert_ptr_nonnull(strchr(json_string_value(json_object_get(in, "last_reload")), 'Z'));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(in, "reloads"), "ok")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(in, "shared")), "off");

    a = backend_named(j, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(json_string_value(json_object_get(a, "schema")), "openai");
    ck_assert(json_is_true(json_object_get(a, "up")));
    ck_assert(json_is_null(json_object_get(a, "cooling_until")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "requests")), N_OK);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "errors")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "attempts"), "ok")),
                     N_OK);
    ck_assert(json_number_value(json_object_get(a, "error_rate")) == 0);
    ck_assert(json_is_number(json_object_get(json_object_get(a, "latency_s"), "p50")));
    ck_assert(json_is_number(json_object_get(json_object_get(a, "ttft_s"), "p99")));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(a, "series"),
                                                        "step_s")), 10);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(a, "series"), "requests")),
                     90);
    ck_assert_int_eq(sum(json_object_get(json_object_get(a, "series"), "requests")), N_OK);
    ck_assert_ptr_null(json_object_get(a, "url"));   /* never a URL, a header or a key */

    d = backend_named(j, "down");   /* tried first, failed, cooling now */
    ck_assert_ptr_nonnull(d);
    ck_assert_int_ge(json_integer_value(json_object_get(d, "errors")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "errors")),
                     json_integer_value(json_object_get(d, "requests")));
    ck_assert(json_number_value(json_object_get(d, "error_rate")) == 1);
    ck_assert_int_ge(json_integer_value(json_object_get(json_object_get(d, "attempts"), "error")),
                     1);
    ck_assert(json_is_false(json_object_get(d, "up")));
    ck_assert(json_is_string(json_object_get(d, "cooling_until")));
    ck_assert_int_eq(sum(json_object_get(json_object_get(d, "series"), "errors")),
                     json_integer_value(json_object_get(d, "errors")));

    r = json_array_get(json_object_get(j, "rules"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "index")), 0);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "models"), 0)), "m");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "requests")), N_OK);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "errors")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r, "tokens"), "input")),
                     10 * N_OK);   /* fakeai's usage: 10 in, 20 out */
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r, "tokens"), "output")),
                     20 * N_OK);
    ck_assert_int_eq(json_array_size(json_object_get(j, "keys")), 0);
    json_decref(j);
}
END_TEST

/* The page's text for a status.json value: what its script's f() writes. */
static void
formatted(json_t *v, char *out, size_t n)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(out, n, "\xe2\x80\x93");
    } else if (json_is_boolean(v)) {
        snprintf(out, n, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_integer(v)) {
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        snprintf(out, n, d == (double)(long long)d ? "%.0f" : "%.3f", d);
    } else {
        snprintf(out, n, "%s", json_string_value(v));
    }
}

static json_t *
at(json_t *j, const char *path)
{
    char walk[256], *seg, *save = NULL;

    snprintf(walk, sizeof(walk), "%s", path);
    for (seg = strtok_r(walk, ".", &save); seg != NULL && j != NULL;
         seg = strtok_r(NULL, ".", &save)) {
        j = json_is_array(j) ? json_array_get(j, (size_t)atoi(seg)) : json_object_get(j, seg);
    }
    return j;
}

/* Checks every data-k element of html against j; returns how many. */
static int
compare_numbers(const char *html, json_t *j)
{
    const char *p = html;
    int n = 0;

    while ((p = strstr(p, "data-k=\"")) != NULL) {
        char path[256], want[128], got[128];
        const char *q = strchr(p + 8, '"'), *t, *e;
        snprintf(path, sizeof(path), "%.*s", (int)(q - p - 8), p + 8);
        t = strchr(q, '>') + 1;
        e = strchr(t, '<');
        snprintf(got, sizeof(got), "%.*s", (int)(e - t), t);
        p = e;
        if (strcmp(path, "instance.uptime_s") == 0) {
            continue;   /* moves on by itself */
        }
        formatted(at(j, path), want, sizeof(want));
        ck_assert_msg(strcmp(got, want) == 0, "%s: the page says \"%s\", status.json \"%s\"",
                      path, got, want);
        n++;
    }
    return n;
}

START_TEST(page_readable_without_script)
{
    struct mg_test_resp r;
    json_t *j;
    int n;

    mg_test_http("GET", mg_harness_url(&sh, "/status"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(mg_test_hdr(&r, "content-type"), "text/html"));
    /* self-contained: no external asset */
    ck_assert_ptr_null(strstr(r.body.data, "src=\"http"));
    ck_assert_ptr_null(strstr(r.body.data, "href=\"http"));
    ck_assert_ptr_null(strstr(r.body.data, "<link"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "<svg"));
    j = status_json(&sh);
    n = compare_numbers(r.body.data, j);
    ck_assert_int_ge(n, 30);
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

/* Runs chromium headless on url with extra flags; its stdout, or NULL. */
static char *
chromium(const char *url, const char *flags, const char *profile)
{
    char cmd[2048];
    struct mg_buf out;
    char buf[65536];
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof(cmd),
             "rm -rf %s && timeout 90 chromium --headless --no-sandbox --disable-gpu "
             "--disable-quic --no-first-run --disable-background-networking "
             "--disable-component-update --disable-sync --user-data-dir=%s %s '%s' "
             "2>>mgtest-status-chromium.log", profile, profile, flags, url);
    if ((f = popen(cmd, "r")) == NULL) {
        return NULL;
    }
    mg_buf_init(&out, 64u << 20);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        mg_buf_add(&out, buf, n);
    }
    if (pclose(f) != 0 || out.data == NULL) {
        mg_buf_deinit(&out);
        return NULL;
    }
    return out.data;   /* the buffer's memory, the caller's */
}

START_TEST(page_in_a_real_browser)
{
    char flags[1024], path[1024], url[256], *dom;
    json_t *j;
    int n;
    FILE *f;

    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        mg_test_skip("status: no chromium (make check installs Debian's; apt-get install "
                     "chromium)");
        return;
    }
    snprintf(url, sizeof(url), "%s", mg_harness_url(&sh, "/status"));
    /* virtual time runs the page's 2 s timer: the DOM is the script's, refreshed */
    dom = chromium(url, "--virtual-time-budget=5000 --dump-dom", "chromium-profile-1");
    ck_assert_msg(dom != NULL, "chromium failed (mgtest-status-chromium.log)");
    ck_assert_msg(strstr(dom, "data-refreshed=\"") != NULL,
                  "the page's script did not refresh it from status.json");
    j = status_json(&sh);
    n = compare_numbers(dom, j);
    ck_assert_int_ge(n, 30);
    json_decref(j);
    free(dom);

    snprintf(path, sizeof(path), "%s/status.png", mg_test_build_dir());
    unlink(path);
    snprintf(flags, sizeof(flags), "--window-size=1600,640 --hide-scrollbars "
             "--virtual-time-budget=3000 --screenshot=%s", path);
    dom = chromium(url, flags, "chromium-profile-2");
    free(dom);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no screenshot at %s", path);
    {
        unsigned char sig[8] = {0};
        long size;
        ck_assert_int_eq(fread(sig, 1, 8, f), 8);
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        ck_assert(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
        ck_assert_int_gt(size, 10000);
    }
    fclose(f);
}
END_TEST

START_TEST(no_status_page_with_auth)
{
    struct mg_test_resp r;

    mg_test_http("GET", mg_harness_url(&sauth, "/status"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&sauth, "/status.json"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    /* the admin API likewise, without an admin key; /metrics and /healthz stay open */
    mg_test_http("GET", mg_harness_url(&sauth, "/admin/keys"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    mg_test_http("POST", mg_harness_url(&sauth, "/admin/keys/k/reset"), "{}", 2,
                 (const char *[]){"Content-Type: application/json", NULL}, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&sauth, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
}
END_TEST

/* Without an admin key and without auth, on loopback: the admin API is served. */
START_TEST(admin_api_on_loopback_without_auth)
{
    struct mg_test_resp r;
    json_t *j;

    mg_test_http("GET", mg_harness_url(&sh, "/admin/backends"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "backends")), 2);
    ck_assert_int_ge(json_integer_value(json_object_get(backend_named(j, "a"), "requests")),
                     N_OK);
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&sh, "/admin/keys"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_int_eq(json_array_size(json_object_get(j, "keys")), 0);
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_http("DELETE", mg_harness_url(&sh, "/admin/keys"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&sh, "/admin/nothing"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(a_reload_is_a_new_generation)
{
    json_t *j = status_json(&sh), *in = NULL;
    long long gen = json_integer_value(json_object_get(json_object_get(j, "instance"),
                                                       "config_generation"));
    int tries;

    json_decref(j);
    ck_assert_int_eq(kill(sh.gw_pid, SIGHUP), 0);
    for (tries = 0; tries < 200 * mg_test_scale(); tries++) {
        j = status_json(&sh);
        in = json_object_get(j, "instance");
        if (json_integer_value(json_object_get(in, "config_generation")) == gen + 1) {
            break;
        }
        json_decref(j);
        j = NULL;
        usleep(20 * 1000);
    }
    ck_assert_msg(j != NULL, "config_generation did not move on after SIGHUP");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(in, "reloads"), "ok")),
                     gen);
    /* the counts outlive the snapshot */
    ck_assert_int_ge(json_integer_value(json_object_get(backend_named(j, "a"), "requests")),
                     N_OK);
    json_decref(j);
}
END_TEST

Suite *
status_suite(void)
{
    Suite *s = suite_create("status");
    TCase *t = tcase_create("http");

    tcase_set_timeout(t, 240 * mg_test_scale());
    tcase_add_unchecked_fixture(t, start_status, stop_status);
    tcase_add_test(t, status_json_shape_and_numbers);
    tcase_add_test(t, page_readable_without_script);
    tcase_add_test(t, page_in_a_real_browser);
    tcase_add_test(t, no_status_page_with_auth);
    tcase_add_test(t, admin_api_on_loopback_without_auth);
    tcase_add_test(t, a_reload_is_a_new_generation);
    suite_add_tcase(s, t);
    return s;
}
