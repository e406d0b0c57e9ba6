/*
 * Integration tests of the gateway's life: SIGHUP reloads (under load, during a stream, with a
 * broken file, 100 in a row), the catalog across reloads, and SIGTERM with requests in flight.
 * The gateway here runs on a config file the tests rewrite.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mg_test.h"

static int fa_port, fb_port, lc_port;
static pid_t fa_pid, fb_pid, lc_pid;
static char lc_conf[64] = "mgtest-lc.yaml";
static const char *lc_log = "mgtest-lc.log";
static const char *lc_access = "mgtest-lc-access.log";

static void
write_conf(const char *path, int port, const char *body)
{
    char tmp[80];
    FILE *f;

    /* write-then-rename: the gateway never reads a half-written file */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "listen: 127.0.0.1:%d\nworkers: 2\naccess_log: %s\n"
               "backends:\n  - {name: ra, url: 'http://127.0.0.1:%d/v1'}\n"
               "  - {name: rb, url: 'http://127.0.0.1:%d/v1'}\n%s",
            port, lc_access, fa_port, fb_port, body);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* Routes m-r to backend `to`, lists it as owned by "gen-<gen>"; extra rules may follow. */
static void
write_gen(int gen, const char *to, const char *extra)
{
    char body[1024];

    snprintf(body, sizeof(body),
             "rules:\n  - {models: [m-r], owned_by: gen-%d, backends: [{backend: %s}]}\n%s",
             gen, to, extra ? extra : "");
    write_conf(lc_conf, lc_port, body);
}

static int file_has(const char *path, const char *needle);

static int
log_has(const char *needle)
{
    return file_has(lc_log, needle);
}

/* The refusal's detail lines follow its first line in separate writes: wait for them. */
static int
log_soon(const char *needle)
{
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (!log_has(needle)) {
        if (mg_now_ms() >= deadline) {
            return 0;
        }
        usleep(5000);
    }
    return 1;
}

/* How many reloads the gateway has logged (tests run in forked children: count, don't track). */
static int
reloads_logged(void)
{
    char needle[80];
    int n = 0;

    do {
        snprintf(needle, sizeof(needle), "reload %d of %s", n + 1, lc_conf);
    } while (log_has(needle) && ++n);
    return n;
}

/* Sends SIGHUP and waits for the gateway's log line about this reload. Returns 1 when "ok". */
static int
reload_and_wait(void)
{
    char ok[64], refused[64];
    int64_t deadline;
    int reloads = reloads_logged() + 1;

    snprintf(ok, sizeof(ok), "reload %d of %s: ok", reloads, lc_conf);
    snprintf(refused, sizeof(refused), "reload %d of %s refused", reloads, lc_conf);
    kill(lc_pid, SIGHUP);
    deadline = mg_now_ms() + 10000 * mg_test_scale();
    while (mg_now_ms() < deadline) {
        if (log_has(ok)) {
            return 1;
        }
        if (log_has(refused)) {
            return 0;
        }
        usleep(5000);
    }
    ck_abort_msg("reload %d was not logged", reloads);
    return 0;
}

static char lc_url[128];

static const char *
lc(const char *path)
{
    snprintf(lc_url, sizeof(lc_url), "http://127.0.0.1:%d%s", lc_port, path);
    return lc_url;
}

static void
start_lc(void)
{
    char bin[256], pa[16], pb[16];
    char *fa[] = {bin, "--port", pa, "--name", "ra", NULL};
    char *fb[] = {bin, "--port", pb, "--name", "rb", NULL};
    char gwbin[256];
    char *gw[] = {gwbin, "-c", lc_conf, NULL};

    fa_port = mg_test_free_port();
    fb_port = mg_test_free_port();
    lc_port = mg_test_free_port();
    snprintf(pa, sizeof(pa), "%d", fa_port);
    snprintf(pb, sizeof(pb), "%d", fb_port);
    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    snprintf(gwbin, sizeof(gwbin), "%s/modelgate", mg_test_build_dir());
    fa_pid = mg_test_spawn(fa, "mgtest-fake.log");
    fb_pid = mg_test_spawn(fb, "mgtest-fake.log");
    ck_assert_int_eq(mg_test_wait_port(fa_port, 5000), 0);
    ck_assert_int_eq(mg_test_wait_port(fb_port, 5000), 0);
    write_gen(0, "ra", NULL);
    unlink(lc_log);
    lc_pid = mg_test_spawn(gw, lc_log);
    ck_assert_int_eq(mg_test_wait_port(lc_port, 10000), 0);
}

static void
stop_lc(void)
{
    int rc = mg_test_stop(lc_pid, 15000);

    mg_test_stop(fa_pid, 5000);
    mg_test_stop(fb_pid, 5000);
    unlink(lc_conf);
    unlink(lc_access);
    if (rc != 0) {
        fprintf(stderr, "modelgate (lifecycle) exited with %d (see %s)\n", rc, lc_log);
        exit(1);
    }
}

static const char *
backend_of(struct mg_test_resp *r, char *buf, size_t len)
{
    return mg_test_header(r, "x-modelgate-backend", buf, len);
}

/* ---- reload under load -------------------------------------------------------------------- */

struct load {
    atomic_int stop;
    atomic_int ok;
    atomic_int failed;
};

static size_t
discard(char *d, size_t s, size_t n, void *arg)
{
    return s * n;
}

static void *
client_loop(void *arg)
{
    struct load *l = arg;
    CURL *e = curl_easy_init();
    long status;
    char url[128];

    /* not lc(): its one static buffer is rewritten by the main thread while this one reads it */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", lc_port);
    MG_TEST_SETOPT(e, CURLOPT_URL, url);
    MG_TEST_SETOPT(e, CURLOPT_POSTFIELDS, "{\"model\":\"m-r\",\"messages\":[]}");
    MG_TEST_SETOPT(e, CURLOPT_WRITEFUNCTION, discard);
    MG_TEST_SETOPT(e, CURLOPT_TIMEOUT_MS, 10000L * mg_test_scale());
    MG_TEST_SETOPT(e, CURLOPT_NOSIGNAL, 1L);
    while (!atomic_load(&l->stop)) {
        CURLcode rc = curl_easy_perform(e);
        status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc == CURLE_OK && status == 200) {
            atomic_fetch_add(&l->ok, 1);
        } else {
            atomic_fetch_add(&l->failed, 1);
            fprintf(stderr, "client: curl %d status %ld\n", (int)rc, status);
        }
    }
    curl_easy_cleanup(e);
    return NULL;
}

/* Polls /v1/models until m-r is owned by gen-<gen>; returns the time it took in ms. */
static double
wait_owned_by(int gen, double since_ms)
{
    char want[32];
    int64_t deadline = mg_now_ms() + 10000 * mg_test_scale();
    struct mg_test_resp r;

    snprintf(want, sizeof(want), "\"gen-%d\"", gen);
    while (mg_now_ms() < deadline) {
        mg_test_http("GET", lc("/v1/models"), NULL, 0, NULL, &r);
        int found = r.body.data && strstr(r.body.data, want) != NULL;
        mg_test_resp_free(&r);
        if (found) {
            return (double)mg_now_us() / 1000.0 - since_ms;
        }
    }
    ck_abort_msg("generation %d never served", gen);
    return 0;
}

START_TEST(reload_under_load)
{
    enum { CLIENTS = 8, RELOADS = 20 };
    pthread_t th[CLIENTS];
    struct load l;
    double worst = 0, sum = 0;
    int i, before;

    atomic_init(&l.stop, 0);
    atomic_init(&l.ok, 0);
    atomic_init(&l.failed, 0);
    for (i = 0; i < CLIENTS; i++) {
        pthread_create(&th[i], NULL, client_loop, &l);
    }
    for (i = 1; i <= RELOADS; i++) {
        const char *to = i % 2 ? "rb" : "ra";
        struct mg_test_resp r;
        char b[64];
        double t0;

        before = atomic_load(&l.ok);
        write_gen(i, to, NULL);
        t0 = (double)mg_now_us() / 1000.0;
        kill(lc_pid, SIGHUP);
        double took = wait_owned_by(i, t0);
        worst = took > worst ? took : worst;
        sum += took;
        /* the very next request goes where the new generation says */
        mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, NULL, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(backend_of(&r, b, sizeof(b)), to);
        mg_test_resp_free(&r);
        /* let the clients run a little on this generation */
        while (atomic_load(&l.ok) < before + 20) {
            usleep(1000);
        }
    }
    atomic_store(&l.stop, 1);
    for (i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
    }
    fprintf(stderr, "reload_under_load: %d requests ok, %d failed, %d reloads, "
                    "signal-to-serving mean %.2f ms, worst %.2f ms\n",
            atomic_load(&l.ok), atomic_load(&l.failed), RELOADS, sum / RELOADS, worst);
    ck_assert_int_eq(atomic_load(&l.failed), 0);
    ck_assert_int_ge(atomic_load(&l.ok), RELOADS * 20);
}
END_TEST

/* ---- a stream that outlives its backend's removal ---------------------------------------- */

struct stream_arg {
    struct mg_test_resp r;
};

static void *
stream_client(void *arg)
{
    struct stream_arg *s = arg;
    const char *h[] = {"x-fake-chunks: 10", "x-fake-chunk-gap-ms: 150", NULL};
    const char *body = "{\"model\":\"m-r\",\"stream\":true}";
    char url[128];

    /* not lc(): the main thread rewrites its buffer meanwhile */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", lc_port);
    mg_test_http("POST", url, body, strlen(body), h, &s->r);
    return NULL;
}

START_TEST(stream_survives_reload)
{
    struct stream_arg s;
    pthread_t th;
    char b[64];
    struct mg_test_resp r;
    long active;
    int64_t deadline;
    char url[128];

    write_gen(100, "ra", NULL);
    ck_assert(reload_and_wait());
    pthread_create(&th, NULL, stream_client, &s);
    /* wait until ra is streaming it */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/stats", fa_port);
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    do {
        json_t *j;
        mg_test_http("GET", url, NULL, 0, NULL, &r);
        j = json_loadb(r.body.data, r.body.len, 0, NULL);
        active = j ? (long)json_integer_value(json_object_get(j, "active")) : 0;
        json_decref(j);
        mg_test_resp_free(&r);
    } while (active < 1 && mg_now_ms() < deadline && (usleep(5000), 1));
    ck_assert_int_ge(active, 1);
    /* a config in which backend ra does not even exist */
    write_conf(lc_conf, lc_port,
               "rules:\n  - {models: [m-r], owned_by: gen-101, backends: [{backend: rb}]}\n");
    ck_assert(reload_and_wait());
    mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, NULL, &r);
    ck_assert_str_eq(backend_of(&r, b, sizeof(b)), "rb");
    mg_test_resp_free(&r);
    pthread_join(th, NULL);
    ck_assert_int_eq(s.r.curl_rc, 0);
    ck_assert_int_eq(s.r.status, 200);
    ck_assert_str_eq(backend_of(&s.r, b, sizeof(b)), "ra");
    ck_assert_ptr_nonnull(strstr(s.r.body.data, "tok9 "));
    ck_assert_ptr_nonnull(strstr(s.r.body.data, "data: [DONE]"));
    mg_test_resp_free(&s.r);
}
END_TEST

static double
reloads_metric(const char *result)
{
    struct mg_test_resp r;
    char series[96];
    double v;

    snprintf(series, sizeof(series), "modelgate_config_reloads_total{result=\"%s\"}", result);
    mg_test_http("GET", lc("/metrics"), NULL, 0, NULL, &r);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v;
}

START_TEST(broken_file_refused)
{
    struct mg_test_resp r;
    char b[64], line[128];
    double ok0 = reloads_metric("ok"), err0 = reloads_metric("error");

    write_gen(200, "rb", NULL);
    ck_assert(reload_and_wait());
    /* an unknown key and a bad backend reference: refused as a whole */
    write_conf(lc_conf, lc_port,
               "rules:\n  - {models: [m-r], owned_by: gen-201, backends: [{backend: ra}]}\n"
               "  - {models: [m-new], backends: [{backend: nope}]}\nbogus: 1\n");
    ck_assert(!reload_and_wait());
    snprintf(line, sizeof(line), "%s:10:1: unknown key \"bogus\"", lc_conf);
    ck_assert(log_soon(line));
    ck_assert(log_soon("unknown backend \"nope\""));
    mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(backend_of(&r, b, sizeof(b)), "rb");
    mg_test_resp_free(&r);
    mg_test_http("GET", lc("/v1/models"), NULL, 0, NULL, &r);
    ck_assert_ptr_nonnull(strstr(r.body.data, "gen-200"));
    ck_assert_ptr_null(strstr(r.body.data, "m-new"));
    mg_test_resp_free(&r);
    ck_assert(reloads_metric("ok") == ok0 + 1);
    ck_assert(reloads_metric("error") == err0 + 1);
}
END_TEST

static long long
created_of(const char *id)
{
    char path[128];
    struct mg_test_resp r;
    json_t *j;
    long long v;

    snprintf(path, sizeof(path), "/v1/models/%s", id);
    mg_test_http("GET", lc(path), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = json_loadb(r.body.data, r.body.len, 0, NULL);
    v = (long long)json_integer_value(json_object_get(j, "created"));
    json_decref(j);
    mg_test_resp_free(&r);
    return v;
}

START_TEST(created_kept_across_reload)
{
    long long first, again, newer;

    write_gen(300, "ra", "  - {models: [m-keep], backends: [{backend: ra}]}\n");
    ck_assert(reload_and_wait());
    first = created_of("m-keep");
    ck_assert_int_gt(first, 1700000000);
    sleep(1);   /* a new load time would differ by at least a second */
    write_gen(301, "rb", "  - {models: [m-other, m-keep], owned_by: o, backends: [{backend: rb}]}\n");
    ck_assert(reload_and_wait());
    again = created_of("m-keep");
    newer = created_of("m-other");
    ck_assert_int_eq(again, first);
    ck_assert_int_gt(newer, first);
}
END_TEST

START_TEST(hundred_reloads)
{
    int i;

    for (i = 0; i < 100; i++) {
        write_gen(400 + i, i % 2 ? "rb" : "ra", "  - {models: ['x-*'], backends: [{backend: ra}]}\n");
        ck_assert(reload_and_wait());
    }
    /* the last generation (499: rb) is the one serving */
    struct mg_test_resp r;
    char b[64];
    mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, NULL, &r);
    ck_assert_str_eq(backend_of(&r, b, sizeof(b)), "rb");
    mg_test_resp_free(&r);
}
END_TEST

static int
file_has(const char *path, const char *needle)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static void
wait_file_has(const char *path, const char *needle)
{
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (!file_has(path, needle) && mg_now_ms() < deadline) {
        usleep(10000);
    }
    ck_assert_msg(file_has(path, needle), "%s never showed up in %s", needle, path);
}

/* Log rotation: mv the file away, SIGUSR1, and new lines go to a new file of the same name. */
START_TEST(sigusr1_reopens_access_log)
{
    const char *before[] = {"x-request-id: rot-before", NULL};
    const char *after[] = {"x-request-id: rot-after", NULL};
    char rotated[80];
    struct mg_test_resp r;
    int64_t deadline;

    snprintf(rotated, sizeof(rotated), "%s.1", lc_access);
    mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, before, &r);
    mg_test_resp_free(&r);
    wait_file_has(lc_access, "rot-before");
    ck_assert_int_eq(rename(lc_access, rotated), 0);
    kill(lc_pid, SIGUSR1);
    deadline = mg_now_ms() + 5000 * mg_test_scale();
    while (access(lc_access, F_OK) != 0 && mg_now_ms() < deadline) {
        usleep(5000);
    }
    mg_test_http("POST", lc("/v1/chat/completions"), "{\"model\":\"m-r\"}", 15, after, &r);
    mg_test_resp_free(&r);
    wait_file_has(lc_access, "rot-after");
    ck_assert(!file_has(lc_access, "rot-before"));
    ck_assert(!file_has(rotated, "rot-after"));
    unlink(rotated);
}
END_TEST

/* ---- SIGTERM ------------------------------------------------------------------------------ */

struct slow_arg {
    int                 port;
    const char         *delay;    /* ms before the answer, or NULL for a stream of 12 chunks */
    struct mg_test_resp r;
};

static void *
slow_client(void *arg)
{
    struct slow_arg *s = arg;
    char url[128], hd[64];
    const char *h[] = {hd, NULL};
    const char *stream_h[] = {"x-fake-chunks: 12", "x-fake-chunk-gap-ms: 100", NULL};
    const char *body = s->delay ? "{\"model\":\"m-r\"}" : "{\"model\":\"m-r\",\"stream\":true}";

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", s->port);
    snprintf(hd, sizeof(hd), "x-fake-delay-ms: %s", s->delay ? s->delay : "0");
    mg_test_http("POST", url, body, strlen(body), s->delay ? h : stream_h, &s->r);
    return NULL;
}

/* Starts a private gateway (this process is its parent), sends SIGTERM with one request in flight. */
static void
sigterm_case(const char *shutdown_timeout, const char *delay, int want_status)
{
    char conf_path[64], body[256], gwbin[256];
    char *gw[] = {gwbin, "-c", conf_path, NULL};
    int port = mg_test_free_port(), status;
    struct slow_arg s;
    pthread_t th;
    pid_t pid;
    int64_t t0;

    snprintf(conf_path, sizeof(conf_path), "mgtest-term-%d.yaml", port);
    snprintf(body, sizeof(body), "shutdown_timeout: %s\nrules:\n  - {models: [m-r], backends: "
                                 "[{backend: ra}]}\n", shutdown_timeout);
    write_conf(conf_path, port, body);
    snprintf(gwbin, sizeof(gwbin), "%s/modelgate", mg_test_build_dir());
    pid = mg_test_spawn(gw, "mgtest-term.log");
    ck_assert_int_eq(mg_test_wait_port(port, 10000), 0);
    memset(&s, 0, sizeof(s));
    s.port = port;
    s.delay = delay;
    long before = 0;
    {
        struct mg_test_resp r;
        char url[128];
        json_t *j;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/_fake/stats", fa_port);
        mg_test_http("GET", url, NULL, 0, NULL, &r);
        j = json_loadb(r.body.data, r.body.len, 0, NULL);
        before = (long)json_integer_value(json_object_get(j, "requests"));
        json_decref(j);
        mg_test_resp_free(&r);
        pthread_create(&th, NULL, slow_client, &s);
        /* wait until the backend holds the request */
        int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();
        long now = before;
        while (now <= before && mg_now_ms() < deadline) {
            usleep(5000);
            mg_test_http("GET", url, NULL, 0, NULL, &r);
            j = json_loadb(r.body.data, r.body.len, 0, NULL);
            now = (long)json_integer_value(json_object_get(j, "requests"));
            json_decref(j);
            mg_test_resp_free(&r);
        }
        ck_assert_int_gt(now, before);
    }
    t0 = mg_now_ms();
    kill(pid, SIGTERM);
    /* new connections are refused while the request in flight goes on */
    {
        int64_t deadline = mg_now_ms() + 3000 * mg_test_scale();
        while (mg_test_wait_port(port, 1) == 0 && mg_now_ms() < deadline) {
            usleep(5000);
        }
        ck_assert_int_ne(mg_test_wait_port(port, 1), 0);
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    if (want_status == 200 && delay == NULL) {
        ck_assert_int_eq(s.r.status, 200);
        ck_assert_int_eq(s.r.curl_rc, 0);
        ck_assert_ptr_nonnull(strstr(s.r.body.data, "tok11 "));
        ck_assert_ptr_nonnull(strstr(s.r.body.data, "data: [DONE]"));
    } else if (want_status == 200) {
        ck_assert_int_eq(s.r.status, 200);
        ck_assert_ptr_nonnull(strstr(s.r.body.data, "Hello from ra"));
    } else {
        /* cut at shutdown_timeout: no answer, and the exit came long before the backend's */
        ck_assert_int_ne(s.r.status, 200);
        ck_assert_int_lt(mg_now_ms() - t0, 5000 * mg_test_scale());
    }
    mg_test_resp_free(&s.r);
    unlink(conf_path);
}

START_TEST(sigterm_finishes_inflight)
{
    sigterm_case("10s", "1500", 200);
}
END_TEST

START_TEST(sigterm_finishes_stream)
{
    sigterm_case("10s", NULL, 200);
}
END_TEST

START_TEST(sigterm_gives_up_after_shutdown_timeout)
{
    sigterm_case("500ms", "20000", 0);
}
END_TEST

Suite *
lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *t = tcase_create("reload");

    tcase_add_unchecked_fixture(t, start_lc, stop_lc);
    tcase_set_timeout(t, 120 * mg_test_scale());
    tcase_add_test(t, reload_under_load);
    tcase_add_test(t, stream_survives_reload);
    tcase_add_test(t, broken_file_refused);
    tcase_add_test(t, created_kept_across_reload);
    tcase_add_test(t, hundred_reloads);
    tcase_add_test(t, sigusr1_reopens_access_log);
    tcase_add_test(t, sigterm_finishes_inflight);
    tcase_add_test(t, sigterm_finishes_stream);
    tcase_add_test(t, sigterm_gives_up_after_shutdown_timeout);
    suite_add_tcase(s, t);
    return s;
}
