/*
 * check_shared — shared state across instances through a real redis-server (Debian's), started
 * on a private port for this suite: the URL parser; the Redis client (replies, a deadline, a
 * Redis that is not there); the limit script (GCRA, NOSCRIPT); three gateways that share a
 * 20-per-minute key exactly; no Redis call for a key without limits; Redis killed and restarted
 * under load; a Redis slowed by a delaying proxy, bounded by `timeout` (open) or refused
 * (closed).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <check.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "mg_conf.h"
#include "mg_conf_types.h"
#include "mg_limit_redis.h"
#include "mg_redis.h"
#include "mg_test.h"
#include "mg_util.h"

#define K20   "mgk-k20-5c1e0d9a7b3f4e2a8c6d"
#define KLOAD "mgk-load-8a2f1c4e6b9d0e3f7a5c"
#define KTINY "mgk-tiny-3e7b9d1f5a2c4e6b8d0a"
#define KFREE "mgk-free-1b3d5f7a9c2e4b6d8f0a"
#define KADMIN "mgk-admin-5e7a9c1b3d5f7a9c2e4b"
#define KHDR  "mgk-hdr-9d7b5f3a1c8e6d4b2f0a"
#define KSPEND "mgk-spend-7c5a3e1b9d2f4a6c8e0b"
#define BEARER(k) "Authorization: Bearer " k

#define NGW 5          /* 0..2 on Redis, 3 (open) and 4 (closed) through the delaying proxy */
#define DELAY_MS 300

static int redis_port, proxy_port, fk_port, gw_port[NGW];
static pid_t fk_pid, proxy_pid, gw_pid[NGW];
static const char *redis_pidfile = "mgtest-shared-redis.pid";

/* ---- redis-server and the delaying proxy ---------------------------------------------------- */

static int
have_redis(void)
{
    return access("/usr/bin/redis-server", X_OK) == 0;
}

static void
start_redis(void)
{
    char port[16];
    char *argv[] = {"/usr/bin/redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--daemonize", "no", NULL};
    FILE *f;
    pid_t pid;

    snprintf(port, sizeof(port), "%d", redis_port);
    pid = mg_test_spawn(argv, "mgtest-shared-redis.log");
    f = fopen(redis_pidfile, "w");
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
    ck_assert_msg(mg_test_wait_port(redis_port, 5000 * mg_test_scale()) == 0,
                  "redis-server did not start");
}

static pid_t
redis_pid(void)
{
    FILE *f = fopen(redis_pidfile, "r");
    int pid = 0;

    if (f != NULL) {
        if (fscanf(f, "%d", &pid) != 1) {
            pid = 0;
        }
        fclose(f);
    }
    return (pid_t)pid;
}

/* Stops the suite's redis-server, which a test may have started again (then not our child). */
static void
stop_redis(void)
{
    pid_t pid = redis_pid();
    int64_t end = mg_now_ms() + 5000;

    if (pid <= 0) {
        return;
    }
    kill(pid, SIGTERM);
    while (mg_now_ms() < end && waitpid(pid, NULL, WNOHANG) != pid && kill(pid, 0) == 0) {
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, WNOHANG);
}

/* One connection of the proxy: every chunk waits DELAY_MS before it goes on, either way. */
static void
relay(int a, int b)
{
    struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    char buf[16384];

    for (;;) {
        int i;
        if (poll(p, 2, -1) < 0 && errno != EINTR) {
            return;
        }
        for (i = 0; i < 2; i++) {
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = read(p[i].fd, buf, sizeof(buf));
                if (n <= 0) {
                    return;
                }
                usleep(DELAY_MS * 1000);
                if (write(p[1 - i].fd, buf, (size_t)n) != n) {
                    return;
                }
            }
        }
    }
}

/* A process that accepts on proxy_port and relays to Redis, slowly. */
static pid_t
start_proxy(void)
{
    struct sockaddr_in sa;
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
    pid_t pid;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)proxy_port);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 16), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0) {
        close(lfd);
        return pid;
    }
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        int c = accept(lfd, NULL, NULL), r;
        if (c < 0) {
            continue;
        }
        if (fork() == 0) {
            sa.sin_port = htons((uint16_t)redis_port);
            r = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(r, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                relay(c, r);
            }
            _exit(0);
        }
        close(c);
    }
}

/* ---- the gateways --------------------------------------------------------------------------- */

static void
start_gw(int i, const char *redis_url, const char *timeout, const char *on_error)
{
    char conf[4096], path[64], log[64], bin[256];
    char *argv[] = {bin, "-c", path, NULL};
    FILE *f;

    gw_port[i] = mg_test_free_port();
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\n"
             "backends:\n"
             "  - {name: a, url: 'http://127.0.0.1:%d/v1', responses: translate}\n"
             "  - {name: b, url: 'http://127.0.0.1:%d/v1', health: {failures: 1, cooldown: 30s}}\n"
             "  - {name: c, url: 'http://127.0.0.1:%d/v1'}\n"
             "rules:\n"
             "  - {models: [m-a], backends: [{backend: a}]}\n"
             "  - {models: [m-cool], backends: [{backend: b}, {backend: c, priority: 1}]}\n"
             "shared: {redis: '%s', timeout: %s, on_error: %s, prefix: 'mgt:'}\n"
             "admin_key: " KADMIN "\n"
             "prices: {m-a: {input: 1.00, output: 10.00}}\n"
             "auth:\n  keys:\n"
             "    - {name: k20, key: " K20 ", requests_per_minute: 20}\n"
             "    - {name: load, key: " KLOAD ", requests_per_minute: 1000000,"
             " tokens_per_minute: 100000000}\n"
             "    - {name: tiny, key: " KTINY ", requests_per_minute: 2}\n"
             "    - {name: free, key: " KFREE "}\n"
             "    - {name: hdr, key: " KHDR ", requests_per_minute: 10}\n"
             "    - {name: spend, key: " KSPEND ", budget: {usd: 0.0007, per: day}}\n",
             gw_port[i], fk_port, fk_port, fk_port, redis_url, timeout, on_error);
    snprintf(path, sizeof(path), "mgtest-shared-gw%d.yaml", i);
    snprintf(log, sizeof(log), "mgtest-shared-gw%d.log", i);
    f = fopen(path, "w");
    fputs(conf, f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    gw_pid[i] = mg_test_spawn(argv, log);
    ck_assert_msg(mg_test_wait_port(gw_port[i], 10000 * mg_test_scale()) == 0,
                  "modelgate %d did not start", i);
}

static const char *admin_hdr[] = {"Authorization: Bearer " KADMIN, NULL};   /* /metrics too */

static int
shared_up(int i)
{
    struct mg_test_resp r;
    char url[128];
    double v;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw_port[i]);
    mg_test_http("GET", url, NULL, 0, admin_hdr, &r);
    v = mg_test_metric(r.body.data ? r.body.data : "", "modelgate_shared_up");
    mg_test_resp_free(&r);
    return v == 1;
}

static double
shared_count(int i)
{
    struct mg_test_resp r;
    char url[128];
    double v;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", gw_port[i]);
    mg_test_http("GET", url, NULL, 0, admin_hdr, &r);
    v = mg_test_metric(r.body.data ? r.body.data : "", "modelgate_shared_latency_seconds_count");
    mg_test_resp_free(&r);
    return v;
}

/* Waits until every worker of gateways 0..n-1 is connected to Redis. */
static int
wait_up(int n, int timeout_ms)
{
    int64_t end = mg_now_ms() + timeout_ms;
    int i;

    while (mg_now_ms() < end) {
        for (i = 0; i < n && shared_up(i); i++) {
        }
        if (i == n) {
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

static void
start_shared(void)
{
    char bin[256], port[16], url[128];
    char *fargv[] = {bin, "--port", port, "--name", "a", NULL};
    int i;

    if (!have_redis()) {
        return;
    }
    redis_port = mg_test_free_port();
    start_redis();
    proxy_port = mg_test_free_port();
    proxy_pid = start_proxy();
    fk_port = mg_test_free_port();
    snprintf(port, sizeof(port), "%d", fk_port);
    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    fk_pid = mg_test_spawn(fargv, "mgtest-shared-fake.log");
    ck_assert_msg(mg_test_wait_port(fk_port, 5000) == 0, "fakeai did not start");
    /* a deadline for a loaded 2-core machine: the exact test must not decide locally */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", redis_port);
    for (i = 0; i < 3; i++) {
        start_gw(i, url, "2s", "open");
    }
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", proxy_port);
    start_gw(3, url, "50ms", "open");
    start_gw(4, url, "50ms", "closed");
    ck_assert_msg(wait_up(3, 10000 * mg_test_scale()) == 0, "the gateways did not connect");
}

static void
stop_shared(void)
{
    int i, rc, bad = 0;

    if (!have_redis()) {
        return;
    }
    for (i = 0; i < NGW; i++) {
        rc = mg_test_stop(gw_pid[i], 15000);
        if (rc != 0) {
            fprintf(stderr, "modelgate %d (shared) exited with %d\n", i, rc);
            bad = 1;
        }
    }
    mg_test_stop(fk_pid, 5000);
    kill(proxy_pid, SIGKILL);
    waitpid(proxy_pid, NULL, 0);
    stop_redis();
    if (bad) {
        exit(1);
    }
}

static long
chat(int gw, const char *keyline, double *ms)
{
    const char *h[] = {keyline, "Content-Type: application/json", NULL};
    const char *body = "{\"model\":\"m-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    struct mg_test_resp r;
    char url[128];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port[gw]);
    mg_test_http("POST", url, body, strlen(body), h, &r);
    status = r.status;
    if (ms != NULL) {
        *ms = r.t_total_ms;
    }
    if (status == 503) {
        mg_test_assert_error(&r, 503, "shared_state_unavailable");
    }
    mg_test_resp_free(&r);
    return status;
}

/* ---- units ---------------------------------------------------------------------------------- */

START_TEST(url_parse)
{
    struct mg_redis_url u;
    char err[200];

    ck_assert_int_eq(mg_redis_url_parse("redis://10.0.0.5:6380/2", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.host, "10.0.0.5");
    ck_assert_int_eq(u.port, 6380);
    ck_assert_int_eq(u.db, 2);
    ck_assert_int_eq(u.scheme, MG_REDIS_TCP);
    ck_assert_int_eq(mg_redis_url_parse("redis://r.example", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.host, "r.example");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_int_eq(u.db, 0);
    ck_assert_int_eq(mg_redis_url_parse("redis://app:p%40ss%3Aw@[::1]:7000/", &u, err,
                                        sizeof(err)), 0);
    ck_assert_str_eq(u.user, "app");
    ck_assert_str_eq(u.pass, "p@ss:w");
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_int_eq(mg_redis_url_parse("redis://:secret@h", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.user, "");
    ck_assert_str_eq(u.pass, "secret");
    ck_assert_int_eq(mg_redis_url_parse("rediss://h:6390", &u, err, sizeof(err)), 0);
    ck_assert_int_eq(u.scheme, MG_REDIS_TLS);
    ck_assert_int_eq(mg_redis_url_parse("unix:///run/redis.sock?db=3", &u, err, sizeof(err)), 0);
    ck_assert_int_eq(u.scheme, MG_REDIS_UNIX);
    ck_assert_str_eq(u.path, "/run/redis.sock");
    ck_assert_int_eq(u.db, 3);
    ck_assert_int_ne(mg_redis_url_parse("http://h", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://h:0", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://h:65536", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://h:x", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://h/x", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://:%4@h", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://:%00@h", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("redis://[::1/", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("unix://relative", &u, err, sizeof(err)), 0);
    ck_assert_int_ne(mg_redis_url_parse("unix:///s?x=1", &u, err, sizeof(err)), 0);
}
END_TEST

/* A config with the shared block text; NULL when refused (then errs holds why). */
static struct mg_conf *
shared_conf(const char *block, struct mg_buf *errs)
{
    char text[1024];

    snprintf(text, sizeof(text), "listen: 127.0.0.1:1\n%s\n", block);
    mg_buf_init(errs, 1 << 16);
    return mg_conf_parse("t.yaml", text, strlen(text), errs);
}

START_TEST(conf_block)
{
    struct mg_buf errs;
    struct mg_conf *c;
    static const char *const bad[] = {
        "shared: {timeout: 20ms}",                            /* no redis */
        "shared: {redis: 'http://h'}",
        "shared: {redis: 'redis://h', on_error: maybe}",
        "shared: {redis: 'redis://h', prefix: 'a b'}",
        "shared: {redis: 'redis://h', timeout: 0}",
        "shared: {redis: 'redis://h', colour: blue}",
    };
    size_t i;

    c = shared_conf("shared: {redis: 'redis://u:p@h:7/2'}", &errs);
    ck_assert_msg(c != NULL, "%s", errs.data ? errs.data : "");
    ck_assert(c->shared.on);
    ck_assert_int_eq(c->shared.timeout_ms, 20);
    ck_assert_int_eq(c->shared.store_timeout_ms, 200);
    ck_assert_int_eq(c->shared.closed, 0);
    ck_assert_str_eq(c->shared.prefix, "mg:");
    ck_assert_str_eq(c->shared.host, "h");
    ck_assert_str_eq(c->shared.pass, "p");
    ck_assert_int_eq(c->shared.port, 7);
    ck_assert_int_eq(c->shared.db, 2);
    mg_conf_unref(c);
    mg_buf_deinit(&errs);
    c = shared_conf("shared: {redis: 'unix:///tmp/r.sock', timeout: 5ms, on_error: closed, "
                    "prefix: 'fleet-2:'}", &errs);
    ck_assert_msg(c != NULL, "%s", errs.data ? errs.data : "");
    ck_assert_int_eq(c->shared.timeout_ms, 5);
    ck_assert_int_eq(c->shared.closed, 1);
    ck_assert_str_eq(c->shared.prefix, "fleet-2:");
    mg_conf_unref(c);
    mg_buf_deinit(&errs);
    c = shared_conf("", &errs);
    ck_assert_ptr_nonnull(c);
    ck_assert(!c->shared.on);
    mg_conf_unref(c);
    mg_buf_deinit(&errs);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = shared_conf(bad[i], &errs);
        ck_assert_msg(c == NULL, "accepted: %s", bad[i]);
        ck_assert_msg(errs.data != NULL && strstr(errs.data, "t.yaml:") != NULL, "%s", bad[i]);
        mg_buf_deinit(&errs);
    }
}
END_TEST

/* ---- the client against the suite's Redis ---------------------------------------------------- */

struct got {
    int  n;
    int  err;
    int  type;
    long long integer;
    char str[64];
};

static void
on_got(void *arg, const struct redisReply *r, int err)
{
    struct got *g = arg;

    g->n++;
    g->err = err;
    if (r != NULL) {
        g->type = r->type;
        g->integer = r->integer;
        snprintf(g->str, sizeof(g->str), "%.*s", (int)r->len, r->str ? r->str : "");
    }
}

/* Runs base until *n reaches want or timeout_ms passes. */
static void
run_until(struct event_base *base, int *n, int want, int timeout_ms)
{
    int64_t end = mg_now_ms() + timeout_ms;

    while (*n < want && mg_now_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static void
wait_conn_up(struct event_base *base, struct mg_redis *c)
{
    int64_t end = mg_now_ms() + 5000;

    while (!mg_redis_up(c) && mg_now_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    ck_assert(mg_redis_up(c));
}

static int
cmd(struct mg_redis *c, int argc, const char **argv, int64_t timeout_ms, struct got *g)
{
    size_t lens[8];
    int i, err;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    return mg_redis_command(c, argc, argv, lens, timeout_ms, on_got, g, &err) != NULL ? 0 : err;
}

START_TEST(client_replies_deadlines_down)
{
    struct event_base *base;
    struct mg_redis_url u;
    struct mg_redis *c;
    struct got g1 = {0}, g2 = {0}, g3 = {0}, gd = {0};
    const char *set[] = {"SET", "mgt:unit", "v1"};
    const char *get[] = {"GET", "mgt:unit"};
    const char *blpop[] = {"BLPOP", "mgt:nothing", "1"};
    char url[128], err[128];
    int64_t t0;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    base = event_base_new();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/1", redis_port);
    ck_assert_int_eq(mg_redis_url_parse(url, &u, err, sizeof(err)), 0);
    c = mg_redis_create(base, &u);
    wait_conn_up(base, c);
    /* pipelined: both answered, in order */
    ck_assert_int_eq(cmd(c, 3, set, 1000, &g1), 0);
    ck_assert_int_eq(cmd(c, 2, get, 1000, &g2), 0);
    run_until(base, &g2.n, 1, 5000);
    ck_assert_int_eq(g1.n, 1);
    ck_assert_str_eq(g1.str, "OK");
    ck_assert_int_eq(g2.type, REDIS_REPLY_STRING);
    ck_assert_str_eq(g2.str, "v1");
    /* a command Redis holds for 1 s gets its 50 ms deadline; the next one still gets its reply */
    t0 = mg_now_ms();
    ck_assert_int_eq(cmd(c, 3, blpop, 50, &gd), 0);
    ck_assert_int_eq(cmd(c, 2, get, 3000, &g3), 0);
    run_until(base, &gd.n, 1, 5000);
    ck_assert_int_eq(gd.err, MG_REDIS_ETIMEOUT);
    ck_assert_int_lt(mg_now_ms() - t0, 500);
    run_until(base, &g3.n, 1, 5000);
    ck_assert_int_eq(g3.err, MG_REDIS_OK);
    ck_assert_str_eq(g3.str, "v1");
    ck_assert_int_eq(gd.n, 1);   /* the late reply was dropped, not given to the callback */
    mg_redis_destroy(c);

    /* nothing listens: the command fails at once or with EDOWN, never waits for its deadline */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", mg_test_free_port());
    ck_assert_int_eq(mg_redis_url_parse(url, &u, err, sizeof(err)), 0);
    c = mg_redis_create(base, &u);
    memset(&g1, 0, sizeof(g1));
    run_until(base, &g1.n, 1, 100);   /* lets the refused connect be seen */
    ck_assert(!mg_redis_up(c));
    ck_assert_int_eq(cmd(c, 2, get, 5000, &g1), MG_REDIS_EDOWN);
    mg_redis_destroy(c);
    event_base_free(base);
}
END_TEST

/*
 * A subscriber whose link goes silent without a FIN or RST (a dead peer, a dropped route, a
 * frozen proxy): a fake Redis in this process answers SUBSCRIBE, then reads and never answers.
 * The subscriber's keepalive PING goes unanswered, the link is dropped and connected again.
 */
static void
sub_up(void *arg)
{
    (*(int *)arg)++;
}

static void
sub_msg(void *arg, const char *p, size_t n)
{
}

START_TEST(subscriber_silent_link_reconnects)
{
    static const char subscribed[] = "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    struct event_base *base = event_base_new();
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    struct mg_redis_url u;
    struct mg_redis *c;
    char url[64], err[128], buf[4096];
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), conns[8], nconn = 0, ups = 0, i;
    int pinged = 0;
    int64_t t0, end;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 8) == 0);
    ck_assert(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(a.sin_port));
    ck_assert_int_eq(mg_redis_url_parse(url, &u, err, sizeof(err)), 0);
    c = mg_redis_subscribe(base, &u, "ch", sub_msg, sub_up, &ups);
    t0 = mg_now_ms();
    end = t0 + 30000;
    while (nconn < 2 && mg_now_ms() < end) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd >= 0 && nconn < 8) {
            conns[nconn++] = fd;
        }
        for (i = 0; i < nconn; i++) {   /* SUBSCRIBE answered; anything else read, unanswered */
            ssize_t n = read(conns[i], buf, sizeof(buf) - 1);
            if (n > 0) {
                buf[n] = '\0';
                if (strstr(buf, "SUBSCRIBE") != NULL) {
                    ck_assert(write(conns[i], subscribed, sizeof(subscribed) - 1) > 0);
                }
                pinged += strstr(buf, "PING") != NULL;
            }
        }
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(2000);
    }
    ck_assert_msg(nconn == 2, "the subscriber never left its silent link (%d connection)", nconn);
    ck_assert_int_ge(pinged, 1);
    ck_assert_int_ge(ups, 1);
    /* idle 5 s, then the PING's 5 s: about 10 s, never much less */
    ck_assert_int_ge(mg_now_ms() - t0, 9000);
    printf("subscriber_silent_link_reconnects: a new connection %lld ms after the link went "
           "silent\n", (long long)(mg_now_ms() - t0));
    mg_redis_destroy(c);
    for (i = 0; i < nconn; i++) {
        close(conns[i]);
    }
    close(lfd);
    event_base_free(base);
}
END_TEST

struct decision {
    int n;
    int result;
    struct mg_limit_info info;
};

static void
on_decision(void *arg, int result, const struct mg_limit_info *info)
{
    struct decision *d = arg;

    d->n++;
    d->result = result;
    if (info != NULL) {
        d->info = *info;
    }
}

static int
decide(struct event_base *base, struct mg_redis *c, const char *name, int64_t rpm, int64_t tpm,
       int64_t tokens, struct mg_limit_info *info)
{
    struct mg_limit_redis_call call;
    struct decision d = {0};

    ck_assert_int_eq(mg_limit_redis_admit(&call, c, "mgt:", name, rpm, tpm, tokens, 2000,
                                          on_decision, &d), 0);
    run_until(base, &d.n, 1, 5000);
    ck_assert_int_eq(d.n, 1);
    if (info != NULL) {
        *info = d.info;
    }
    return d.result;
}

START_TEST(limit_script)
{
    struct event_base *base;
    struct mg_redis_url u;
    struct mg_redis *c;
    struct mg_limit_info info;
    struct got g = {0};
    const char *flush[] = {"SCRIPT", "FLUSH"};
    char url[128], err[128], name[64];
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    base = event_base_new();
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis_port);
    ck_assert_int_eq(mg_redis_url_parse(url, &u, err, sizeof(err)), 0);
    c = mg_redis_create(base, &u);
    wait_conn_up(base, c);
    snprintf(name, sizeof(name), "unit%lld", (long long)mg_now_ms());
    /* a script cache emptied (a restarted Redis): NOSCRIPT, then EVAL loads it */
    ck_assert_int_eq(cmd(c, 2, flush, 1000, &g), 0);
    run_until(base, &g.n, 1, 5000);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(decide(base, c, name, 3, 0, 0, &info), MG_LIMIT_SHARED_ADMITTED);
        ck_assert_int_eq(info.requests.limit, 3);
        ck_assert_int_eq(info.requests.remaining, 2 - i);
    }
    ck_assert_int_eq(decide(base, c, name, 3, 0, 0, &info), MG_LIMIT_SHARED_REFUSED);
    /* one comes back every 20 s */
    ck_assert_int_gt(info.retry_after_ms, 19000);
    ck_assert_int_le(info.retry_after_ms, 20000);
    /* tokens: a reservation of 70 from 100 leaves 30; 40 more do not fit */
    snprintf(name, sizeof(name), "unitt%lld", (long long)mg_now_ms());
    ck_assert_int_eq(decide(base, c, name, 0, 100, 70, &info), MG_LIMIT_SHARED_ADMITTED);
    ck_assert_int_eq(info.reserved, 70);
    ck_assert_int_eq(info.tokens.remaining, 30);
    ck_assert_int_eq(decide(base, c, name, 0, 100, 40, &info), MG_LIMIT_SHARED_REFUSED);
    ck_assert_int_eq(info.reserved, 0);
    /* the answer used 10: 60 come back, so 40 fit */
    mg_limit_redis_settle(c, "mgt:", name, 100, 70, 10, 2000);
    ck_assert_int_eq(decide(base, c, name, 0, 100, 40, &info), MG_LIMIT_SHARED_ADMITTED);
    ck_assert_int_le(info.tokens.remaining, 51);
    ck_assert_int_ge(info.tokens.remaining, 50);
    mg_redis_destroy(c);
    event_base_free(base);
}
END_TEST

/* ---- gateways ------------------------------------------------------------------------------- */

#define BURST 60

struct burst {
    pthread_barrier_t *go;
    int  gw;
    long status;
};

static void *
burst_client(void *arg)
{
    struct burst *b = arg;

    pthread_barrier_wait(b->go);
    b->status = chat(b->gw, BEARER(K20), NULL);
    return NULL;
}

/* Three instances, one Redis: a 20-per-minute key gets exactly 20 of 60 concurrent requests. */
START_TEST(exact_limit_across_three)
{
    pthread_t th[BURST];
    struct burst b[BURST];
    pthread_barrier_t go;
    int i, ok = 0, per[3] = {0};

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    pthread_barrier_init(&go, NULL, BURST);
    for (i = 0; i < BURST; i++) {
        b[i].go = &go;
        b[i].gw = i % 3;
        ck_assert_int_eq(pthread_create(&th[i], NULL, burst_client, &b[i]), 0);
    }
    for (i = 0; i < BURST; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&go);
    for (i = 0; i < BURST; i++) {
        ck_assert_msg(b[i].status == 200 || b[i].status == 429, "status %ld", b[i].status);
        if (b[i].status == 200) {
            ok++;
            per[b[i].gw]++;
        }
    }
    fprintf(stderr, "exact_limit_across_three: %d of %d admitted (%d, %d, %d per instance)\n",
            ok, BURST, per[0], per[1], per[2]);
    ck_assert_int_eq(ok, 20);
}
END_TEST

/* A key without limits makes no Redis call. */
START_TEST(no_call_without_limits)
{
    double before;
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    before = shared_count(0);
    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(chat(0, BEARER(KFREE), NULL), 200);
    }
    ck_assert(shared_count(0) == before);
    ck_assert_int_eq(chat(0, BEARER(KLOAD), NULL), 200);
    /* its decision, and maybe the settlement of its tokens */
    ck_assert(shared_count(0) >= before + 1 && shared_count(0) <= before + 2);
}
END_TEST

/* The x-ratelimit-* headers of an admitted request are the shared buckets', whichever instance. */
START_TEST(headers_from_shared_buckets)
{
    const char *h[] = {BEARER(KHDR), "Content-Type: application/json", NULL};
    const char *body = "{\"model\":\"m-a\",\"messages\":[]}";
    struct mg_test_resp r;
    char url[128], v[32];
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    for (i = 0; i < 3; i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port[i]);
        mg_test_http("POST", url, body, strlen(body), h, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(mg_test_header(&r, "x-ratelimit-limit-requests", v, sizeof(v)), "10");
        ck_assert_int_eq(atoi(mg_test_header(&r, "x-ratelimit-remaining-requests", v,
                                             sizeof(v))), 9 - i);
        mg_test_resp_free(&r);
    }
}
END_TEST

/*
 * A budget is the fleet's: 210 micro-dollars an answer against 700 spent through three
 * instances; each one admits against Redis's total, so the fourth (on another instance) starts
 * with what the first three left and the fifth is refused wherever it goes.
 */
START_TEST(budget_shared_across_instances)
{
    static const char *const left[] = {"0.000700", "0.000490", "0.000280", "0.000070"};
    const char *h[] = {BEARER(KSPEND), "Content-Type: application/json", NULL};
    const char *body = "{\"model\":\"m-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    struct mg_test_resp r;
    redisContext *rc;
    redisReply *rep;
    char url[128], key[64];
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    /* in Redis: micro-dollars of today's window, under the fleet's prefix */
    snprintf(key, sizeof(key), "mgt:spend:spend:%lld", (long long)(time(NULL) / 86400 * 86400));
    rc = redisConnect("127.0.0.1", redis_port);
    ck_assert(rc != NULL && rc->err == 0);
    for (i = 0; i < 6; i++) {   /* instances 0, 0, 0, 1, 2, 0 */
        int gw = i < 3 ? 0 : i == 5 ? 0 : i - 2;
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port[gw]);
        mg_test_http("POST", url, body, strlen(body), h, &r);
        if (i < 4) {
            ck_assert_msg(r.status == 200, "request %d on %d: %ld", i, gw, r.status);
            ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"), left[i]);
            /* the answer's INCRBY follows its last byte: wait until Redis holds it, as a
             * client of another instance would have to */
            {
                int t;
                long long have = -1;
                for (t = 0; t < 250 && have != 210LL * (i + 1); t++) {
                    rep = redisCommand(rc, "GET %s", key);
                    have = rep != NULL && rep->type == REDIS_REPLY_STRING ? atoll(rep->str) : -1;
                    freeReplyObject(rep);
                    if (have != 210LL * (i + 1)) {
                        usleep(20000);
                    }
                }
                ck_assert_msg(have == 210LL * (i + 1), "spend in Redis %lld after request %d",
                              have, i);
            }
        } else {
            mg_test_assert_error(&r, 429, "insufficient_quota");
        }
        mg_test_resp_free(&r);
    }
    rep = redisCommand(rc, "GET %s", key);
    ck_assert(rep != NULL && rep->type == REDIS_REPLY_STRING);
    ck_assert_str_eq(rep->str, "840");
    freeReplyObject(rep);
    redisFree(rc);
}
END_TEST

/* Redis slowed past `timeout`: open decides locally within it, closed answers 503. */
START_TEST(slow_redis_bounded)
{
    double ms, worst = 0;
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(chat(3, BEARER(KLOAD), &ms), 200);
        worst = ms > worst ? ms : worst;
        ck_assert_int_eq(chat(4, BEARER(KLOAD), NULL), 503);
        ck_assert_int_eq(chat(4, BEARER(KFREE), NULL), 200);   /* not limited: no Redis */
    }
    fprintf(stderr, "slow_redis_bounded: slowest answer %.1f ms (timeout 50 ms, Redis %d ms "
            "away)\n", worst, 2 * DELAY_MS);
    ck_assert_msg(worst < 50 + 200 * mg_test_scale(), "%.1f ms", worst);
}
END_TEST

/* POST /v1/responses (prev: its previous_response_id, or NULL) on gateway gw; the id into id. */
static long
respond(int gw, const char *prev, char *id, size_t idlen)
{
    const char *h[] = {BEARER(KFREE), "Content-Type: application/json", NULL};
    struct mg_test_resp r;
    char url[128], body[256];
    json_t *j;
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/responses", gw_port[gw]);
    if (prev != NULL) {
        snprintf(body, sizeof(body), "{\"model\":\"m-a\",\"input\":\"and then?\","
                 "\"previous_response_id\":\"%s\"}", prev);
    } else {
        snprintf(body, sizeof(body), "{\"model\":\"m-a\",\"input\":\"hello\"}");
    }
    mg_test_http("POST", url, body, strlen(body), h, &r);
    status = r.status;
    if (id != NULL) {
        id[0] = '\0';
        if ((j = mg_test_body_json(&r)) != NULL) {
            snprintf(id, idlen, "%s", json_string_value(json_object_get(j, "id")) ?
                     json_string_value(json_object_get(j, "id")) : "");
            json_decref(j);
        }
    }
    mg_test_resp_free(&r);
    return status;
}

static long
stored(int gw, const char *method, const char *id)
{
    const char *h[] = {BEARER(KFREE), NULL};
    struct mg_test_resp r;
    char url[256];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/responses/%s", gw_port[gw], id);
    mg_test_http(method, url, NULL, 0, h, &r);
    status = r.status;
    mg_test_resp_free(&r);
    return status;
}

/*
 * A conversation started on one instance continues on another (its stored Response read from
 * Redis), is read and deleted through a third, and is then gone everywhere.
 */
START_TEST(conversation_across_instances)
{
    char id1[128], id2[128];
    long st;
    int tries;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    ck_assert_int_eq(respond(0, NULL, id1, sizeof(id1)), 200);
    ck_assert_msg(strncmp(id1, "resp_mg", 7) == 0, "id %s", id1);
    ck_assert_int_eq(respond(1, id1, id2, sizeof(id2)), 200);
    ck_assert_int_eq(respond(2, id2, NULL, 0), 200);
    ck_assert_int_eq(stored(2, "GET", id1), 200);
    ck_assert_int_eq(stored(1, "DELETE", id1), 200);
    /* it held a copy: dropped once Redis has the DEL (written before the DELETE's answer; a
     * Redis starved of CPU may still serve this GET first: looked at again, up to 1 s) */
    for (tries = 0; (st = stored(0, "GET", id1)) != 404 && tries < 20; tries++) {
        usleep(50000);
    }
    ck_assert_int_eq(st, 404);
    ck_assert_int_eq(stored(2, "GET", id1), 404);
    ck_assert_int_eq(respond(0, id1, NULL, 0), 400);  /* previous_response_not_found */
    ck_assert_int_eq(stored(0, "GET", id2), 200);
}
END_TEST

/* An item_reference to an item of a Response stored through another instance. */
static long
reference(int gw, const char *item)
{
    const char *h[] = {BEARER(KFREE), "Content-Type: application/json", NULL};
    struct mg_test_resp r;
    char url[128], body[512];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/responses", gw_port[gw]);
    snprintf(body, sizeof(body), "{\"model\":\"m-a\",\"input\":[{\"type\":\"item_reference\","
             "\"id\":\"%s\"},{\"role\":\"user\",\"content\":\"and?\"}]}", item);
    mg_test_http("POST", url, body, strlen(body), h, &r);
    status = r.status;
    mg_test_resp_free(&r);
    return status;
}

START_TEST(item_reference_across_instances)
{
    char id[128], item[160];
    long st;
    int tries;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    ck_assert_int_eq(respond(2, NULL, id, sizeof(id)), 200);
    ck_assert_msg(strncmp(id, "resp_mg", 7) == 0 && strlen(id) == 39, "id %s", id);
    snprintf(item, sizeof(item), "msg_mg%s_0", id + 7);
    /* gateway 1 never saw it: read from Redis. The SET went to Redis before the answer did, but
     * a Redis starved of CPU (valgrind, a loaded machine) may read gateway 1's GET in the same
     * turn and serve it first: read-your-writes across instances is not waited for (scaling.md) */
    for (tries = 0; (st = reference(1, item)) != 200 && tries < 20; tries++) {
        usleep(50000);
    }
    ck_assert_int_eq(st, 200);
    if (tries > 0) {
        fprintf(stderr, "item_reference_across_instances: found after %d retries\n", tries);
    }
    ck_assert_int_eq(reference(0, "msg_mg0123456789abcdef0123456789abcdef_0"), 400);
}
END_TEST

/* POST m-cool on gateway gw (with extra header h1, or NULL): the status and the backend. */
static long
cool_chat(int gw, const char *h1, char *backend, size_t len)
{
    const char *h[] = {BEARER(KFREE), "Content-Type: application/json", h1, NULL};
    const char *body = "{\"model\":\"m-cool\",\"messages\":[]}";
    struct mg_test_resp r;
    char url[128];
    long status;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port[gw]);
    mg_test_http("POST", url, body, strlen(body), h, &r);
    status = r.status;
    if (mg_test_header(&r, "x-modelgate-backend", backend, len) == NULL) {
        backend[0] = '\0';
    }
    mg_test_resp_free(&r);
    return status;
}

/*
 * A cooldown started on one instance keeps the others off that backend: b fails once on
 * gateway 0 (failures: 1), and gateways 1 and 2 then send m-cool to c, not b.
 */
/* status.json tells whether the instance's state is shared right now: "up" with every Redis
 * connection up (admin_key set: the status page is served with auth) */
START_TEST(status_shows_shared_up)
{
    const char *h[] = {"Authorization: Bearer " KADMIN, NULL};
    struct mg_test_resp r;
    char url[128];
    json_t *j;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status.json", gw_port[0]);
    mg_test_http("GET", url, NULL, 0, h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "instance"), "shared")),
                     "up");
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(cooldown_across_instances)
{
    char be[64];
    int64_t end;
    int i;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    for (i = 1; i < 3; i++) {
        ck_assert_int_eq(cool_chat(i, NULL, be, sizeof(be)), 200);
        ck_assert_str_eq(be, "b");
    }
    /* b answers 500 once: gateway 0 moves to c, and b cools for 30 s */
    ck_assert_int_eq(cool_chat(0, "x-fake-status: 500", be, sizeof(be)), 500);
    /* the 500 was the only answer (c too got the header): what matters is b's cooldown */
    for (i = 1; i < 3; i++) {
        end = mg_now_ms() + 5000 * mg_test_scale();
        do {   /* the publication reaches the others within a round trip */
            ck_assert_int_eq(cool_chat(i, NULL, be, sizeof(be)), 200);
        } while (strcmp(be, "c") != 0 && mg_now_ms() < end && usleep(10000) == 0);
        ck_assert_msg(strcmp(be, "c") == 0, "gateway %d still sends to %s", i, be);
    }
}
END_TEST

/*
 * Clients that leave while their request waits for Redis (gateway 3: Redis 600 ms away, a 50 ms
 * deadline; a stored-response read waits 200 ms): the waits are dropped, the gateway goes on.
 */
START_TEST(client_gone_while_waiting)
{
    char req[512], id[64];
    struct mg_buf out;
    double ms;
    int i, n;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    for (i = 0; i < 10; i++) {
        const char *body = "{\"model\":\"m-a\",\"messages\":[]}";
        n = snprintf(req, sizeof(req), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer " KLOAD "\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
        mg_buf_init(&out, 1 << 16);
        mg_test_raw(gw_port[3], req, (size_t)n, 5, &out);   /* gone after 5 ms */
        mg_buf_deinit(&out);
        snprintf(id, sizeof(id), "resp_mg%032d", i);
        n = snprintf(req, sizeof(req), "GET /v1/responses/%s HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer " KFREE "\r\n\r\n", id);
        mg_buf_init(&out, 1 << 16);
        mg_test_raw(gw_port[3], req, (size_t)n, 5, &out);
        mg_buf_deinit(&out);
    }
    ck_assert_int_eq(chat(3, BEARER(KLOAD), &ms), 200);
    ck_assert_int_eq(stored(3, "GET", "resp_mg00000000000000000000000000000000"), 404);
}
END_TEST

/*
 * rediss://: a redis-server with TLS only, its certificate from a CA made here; the gateway
 * trusts it through SSL_CERT_FILE (the system store's override) and shares a limit over TLS; a
 * gateway that does not trust the CA never connects (and decides locally).
 */
START_TEST(redis_over_tls)
{
    char port[16], url[160], bin[256], path[64], conf[2048];
    char *rargv[] = {"/usr/bin/redis-server", "--port", "0", "--tls-port", port, "--bind",
                     "127.0.0.1", "--save", "", "--appendonly", "no", "--tls-cert-file",
                     "tls-cert.pem", "--tls-key-file", "tls-key.pem", "--tls-ca-cert-file",
                     "tls-ca.pem", "--tls-auth-clients", "no", NULL};
    char *gargv[] = {bin, "-c", path, NULL};
    pid_t rpid, gpid[2];
    int tport = mg_test_free_port(), gport[2], i, ok = 0;
    FILE *f;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    ck_assert_int_eq(system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                            "-nodes -days 2 -subj /CN=mgtest-ca -keyout tls-ca-key.pem "
                            "-out tls-ca.pem 2>/dev/null && "
                            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                            "-subj /CN=localhost -keyout tls-key.pem -out tls-req.pem "
                            "2>/dev/null && "
                            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > tls-ext.cnf"
                            " && openssl x509 -req -in tls-req.pem -CA tls-ca.pem -CAkey "
                            "tls-ca-key.pem -CAcreateserial -days 2 -extfile tls-ext.cnf "
                            "-out tls-cert.pem 2>/dev/null"), 0);
    snprintf(port, sizeof(port), "%d", tport);
    rpid = mg_test_spawn(rargv, "mgtest-shared-redis-tls.log");
    ck_assert_msg(mg_test_wait_port(tport, 5000 * mg_test_scale()) == 0, "no TLS redis-server");
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    snprintf(url, sizeof(url), "rediss://localhost:%d", tport);
    for (i = 0; i < 2; i++) {
        gport[i] = mg_test_free_port();
        snprintf(conf, sizeof(conf),
                 "listen: 127.0.0.1:%d\nworkers: 2\n"
                 "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
                 "rules: [{models: [m-a], backends: [{backend: a}]}]\n"
                 "shared: {redis: '%s', timeout: 2s}\n"
                 "auth: {keys: [{name: tiny, key: " KTINY ", requests_per_minute: 2}]}\n",
                 gport[i], fk_port, url);
        snprintf(path, sizeof(path), "mgtest-shared-tls%d.yaml", i);
        f = fopen(path, "w");
        fputs(conf, f);
        fclose(f);
        if (i == 0) {
            setenv("SSL_CERT_FILE", "tls-ca.pem", 1);
        }
        gpid[i] = mg_test_spawn(gargv, i == 0 ? "mgtest-shared-tls0.log"
                                              : "mgtest-shared-tls1.log");
        unsetenv("SSL_CERT_FILE");
        ck_assert(mg_test_wait_port(gport[i], 10000 * mg_test_scale()) == 0);
    }
    gw_port[0] = gport[0];   /* this test's child process only: shared_up() reads gw_port */
    gw_port[1] = gport[1];
    ck_assert_msg(wait_up(1, 10000 * mg_test_scale()) == 0, "no TLS connection to Redis");
    for (i = 0; i < 4; i++) {
        ok += chat(0, BEARER(KTINY), NULL) == 200;
    }
    ck_assert_int_eq(ok, 2);   /* decided in Redis, over TLS */
    ck_assert(!shared_up(1));   /* the CA is not trusted there */
    ck_assert_int_eq(chat(1, BEARER(KTINY), NULL), 200);   /* open: decided locally */
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(mg_test_stop(gpid[i], 15000), 0);
    }
    mg_test_stop(rpid, 5000);
}
END_TEST

/* 1 when the file at path holds needle. */
static int
log_has(const char *path, const char *needle)
{
    size_t n;
    char *text = mg_test_slurp(path, &n);
    int found = text != NULL && strstr(text, needle) != NULL;

    free(text);
    return found;
}

/* Redis's connected_clients (a blocking hiredis connection of the test's own). */
static long
redis_clients(void)
{
    redisContext *rc = redisConnect("127.0.0.1", redis_port);
    redisReply *r;
    const char *p;
    long n = -1;

    ck_assert(rc != NULL && rc->err == 0);
    r = redisCommand(rc, "INFO clients");
    if (r != NULL && r->type == REDIS_REPLY_STRING &&
        (p = strstr(r->str, "connected_clients:")) != NULL) {
        n = strtol(p + 18, NULL, 10) - 1;   /* without this one */
    }
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

/* A reload that keeps shared: keeps the connections, and the limits stay shared. */
START_TEST(reload_keeps_connections)
{
    long before, after;
    int64_t end;
    double count;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    before = redis_clients();
    ck_assert_int_ge(before, 3 * 3);   /* 3 gateways: 2 workers and a subscriber each */
    count = shared_count(0);
    ck_assert_int_eq(kill(gw_pid[0], SIGHUP), 0);
    end = mg_now_ms() + 5000 * mg_test_scale();
    while (mg_now_ms() < end && !log_has("mgtest-shared-gw0.log", "reload 1 ")) {
        usleep(10000);
    }
    ck_assert(log_has("mgtest-shared-gw0.log", "reload 1 "));
    after = redis_clients();
    ck_assert_int_eq(after, before);
    ck_assert_int_eq(chat(0, BEARER(KLOAD), NULL), 200);
    ck_assert(shared_count(0) >= count + 1);   /* decided in Redis still */
}
END_TEST

struct load {
    volatile int stop;
    int sent, failed;
    long bad_status;
};

static void *
load_client(void *arg)
{
    struct load *l = arg;
    long st;

    while (!l->stop) {
        st = chat(l->sent % 3, BEARER(KLOAD), NULL);
        l->sent++;
        if (st != 200) {
            l->failed++;
            l->bad_status = st;
        }
    }
    return NULL;
}

/*
 * Redis killed (SIGKILL) under load and started again: no request fails (on_error: open), and
 * within seconds every worker is connected again and the limits are shared again.
 */
START_TEST(redis_restart_under_load)
{
    struct load l[2];
    pthread_t th[2];
    int i, ok = 0;
    int64_t t_up;

    if (!have_redis()) {
        mg_test_skip("shared: no /usr/bin/redis-server");
        return;
    }
    memset(l, 0, sizeof(l));
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, load_client, &l[i]), 0);
    }
    usleep(300000);
    kill(redis_pid(), SIGKILL);
    waitpid(redis_pid(), NULL, 0);
    usleep(700000);
    start_redis();
    t_up = mg_now_ms();
    ck_assert_msg(wait_up(3, 15000 * mg_test_scale()) == 0, "not connected again");
    t_up = mg_now_ms() - t_up;
    usleep(200000);
    for (i = 0; i < 2; i++) {
        l[i].stop = 1;
        pthread_join(th[i], NULL);
    }
    fprintf(stderr, "redis_restart_under_load: %d + %d requests, %d + %d failed; every worker "
            "connected again %lld ms after the restart\n", l[0].sent, l[1].sent, l[0].failed,
            l[1].failed, (long long)t_up);
    ck_assert_msg(l[0].failed == 0 && l[1].failed == 0, "a request got %ld",
                  l[0].bad_status ? l[0].bad_status : l[1].bad_status);
    ck_assert_int_gt(l[0].sent + l[1].sent, 10);
    /* shared again: a 2-per-minute key gets 2 across the three */
    for (i = 0; i < 6; i++) {
        ok += chat(i % 3, BEARER(KTINY), NULL) == 200;
    }
    ck_assert_int_eq(ok, 2);
}
END_TEST

Suite *
shared_suite(void)
{
    Suite *s = suite_create("shared");
    TCase *unit = tcase_create("url");
    TCase *keep = tcase_create("keepalive");
    TCase *t = tcase_create("redis");

    tcase_add_test(unit, url_parse);
    tcase_add_test(unit, conf_block);
    suite_add_tcase(s, unit);
    tcase_set_timeout(keep, 60 * mg_test_scale());
    tcase_add_test(keep, subscriber_silent_link_reconnects);
    suite_add_tcase(s, keep);
    tcase_add_unchecked_fixture(t, start_shared, stop_shared);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, client_replies_deadlines_down);
    tcase_add_test(t, limit_script);
    tcase_add_test(t, exact_limit_across_three);
    tcase_add_test(t, no_call_without_limits);
    tcase_add_test(t, headers_from_shared_buckets);
    tcase_add_test(t, budget_shared_across_instances);
    tcase_add_test(t, conversation_across_instances);
    tcase_add_test(t, item_reference_across_instances);
    tcase_add_test(t, cooldown_across_instances);
    tcase_add_test(t, status_shows_shared_up);
    tcase_add_test(t, client_gone_while_waiting);
    tcase_add_test(t, reload_keeps_connections);
    tcase_add_test(t, redis_over_tls);
    tcase_add_test(t, slow_redis_bounded);
    tcase_add_test(t, redis_restart_under_load);
    suite_add_tcase(s, t);
    return s;
}
