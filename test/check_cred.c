/*
 * Unit tests of the credential cache (mg_cred): the refresh schedule and backoff, a source's
 * refresher publishing, refreshing before expiry, keeping the old credential through a failed
 * refresh until it expires, sources shared by key and stopped when no snapshot holds them,
 * readers racing the swap, and the timestamp parser.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mg_cred.h"
#include "mg_test.h"

START_TEST(schedule_and_backoff)
{
    /* expiry - min(5 min, lifetime / 2) */
    ck_assert_int_eq(mg_cred_refresh_at(0, 4000), 2000);
    ck_assert_int_eq(mg_cred_refresh_at(1000, 3600 * 1000 + 1000), 3300 * 1000 + 1000);
    ck_assert_int_eq(mg_cred_refresh_at(0, 10 * 60 * 1000), 5 * 60 * 1000);
    ck_assert_int_eq(mg_cred_refresh_at(0, 9 * 60 * 1000), 9 * 60 * 1000 - 270 * 1000);
    ck_assert_int_eq(mg_cred_refresh_at(5000, 0), 5000 + MG_CRED_NOEXPIRY_MS);
    ck_assert_int_eq(mg_cred_refresh_at(5000, 4000), 5000);   /* expired: at once */
    /* used until expiry - min(30 s, lifetime / 4) */
    ck_assert_int_eq(mg_cred_usable_until(0, 4000), 3000);
    ck_assert_int_eq(mg_cred_usable_until(1000, 3600 * 1000 + 1000), 3570 * 1000 + 1000);
    ck_assert_int_eq(mg_cred_usable_until(5000, 0), INT64_MAX);
    ck_assert_int_eq(mg_cred_usable_until(5000, 4000), 4000);
    ck_assert_int_eq(mg_cred_backoff_ms(1), 1000);
    ck_assert_int_eq(mg_cred_backoff_ms(2), 2000);
    ck_assert_int_eq(mg_cred_backoff_ms(6), 32000);
    ck_assert_int_eq(mg_cred_backoff_ms(7), 60000);
    ck_assert_int_eq(mg_cred_backoff_ms(1000), 60000);
}
END_TEST

START_TEST(parse_time)
{
    int64_t ms = 0;

    ck_assert_int_eq(mg_cred_parse_time("2026-12-07T13:00:00Z", &ms), MG_OK);
    ck_assert_int_eq(ms, 1796648400000LL);
    ck_assert_int_eq(mg_cred_parse_time("2026-12-07T13:00:00.25Z", &ms), MG_OK);
    ck_assert_int_eq(ms, 1796648400250LL);
    ck_assert_int_eq(mg_cred_parse_time("2026-12-07T13:00:00+00:00", &ms), MG_OK);
    ck_assert_int_eq(ms, 1796648400000LL);
    ck_assert_int_eq(mg_cred_parse_time("2026-12-07T13:00:00+02:00", &ms), MG_ERR);
    ck_assert_int_eq(mg_cred_parse_time("2026-13-07T13:00:00Z", &ms), MG_ERR);
    ck_assert_int_eq(mg_cred_parse_time("2026-12-07", &ms), MG_ERR);
    ck_assert_int_eq(mg_cred_parse_time("", &ms), MG_ERR);
    ck_assert_int_eq(mg_cred_parse_time(NULL, &ms), MG_ERR);
}
END_TEST

/* A source under the test's control: each fetch takes the next step of a script. */
struct script {
    atomic_int  calls;
    atomic_int  freed;
    int64_t     life_ms;      /* a credential's lifetime */
    int         fail_from;    /* fetches from this one on fail (0: never) */
};

static int
script_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    struct script *sc = arg;
    int n = atomic_fetch_add(&sc->calls, 1) + 1;
    char id[32];

    if (sc->fail_from > 0 && n >= sc->fail_from) {
        snprintf(err, errlen, "scripted failure %d", n);
        return MG_ERR;
    }
    snprintf(id, sizeof(id), "AKID%d", n);
    *out = mg_cred_aws(id, "secret", n % 2 ? "tok" : NULL, mg_cred_now_ms() + sc->life_ms);
    return MG_OK;
}

static void
script_free(void *arg)
{
    struct script *sc = arg;

    atomic_fetch_add(&sc->freed, 1);
}

static const struct mg_cred_source_ops script_ops = {script_fetch, script_free};

/* Polls until the script made at least n fetches or deadline_ms passed; 1 when it did. */
static int
wait_calls(struct script *sc, int n, int deadline_ms)
{
    int64_t until = mg_now_ms() + (int64_t)deadline_ms * mg_test_scale();

    while (atomic_load(&sc->calls) < n && mg_now_ms() < until) {
        usleep(5000);
    }
    return atomic_load(&sc->calls) >= n;
}

START_TEST(first_fetch_then_refresh_before_expiry)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    struct script sc = {.life_ms = 800};
    struct mg_cred_source *s = mg_cred_source_get(reg, "b\nk", "b", &script_ops, &sc);
    struct mg_cred *c;
    int64_t t0 = mg_now_ms();

    mg_cred_registry_wait(reg, 5000);   /* the first fetch is there when this returns */
    c = mg_cred_source_current(s, mg_cred_now_ms());
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->kind, MG_CRED_AWS);
    ck_assert_str_eq(c->access_key_id, "AKID1");
    ck_assert_str_eq(c->session_token, "tok");
    mg_cred_unref(c);
    /* lifetime 800 ms: refreshed at 400 ms, well before it expires */
    ck_assert(wait_calls(&sc, 2, 3000));
    ck_assert_int_ge(mg_now_ms() - t0, 300);
    c = mg_cred_source_current(s, mg_cred_now_ms());
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->access_key_id, "AKID2");
    ck_assert_ptr_null(c->session_token);
    mg_cred_unref(c);
    ck_assert_uint_eq(mg_cred_source_failures(s), 0);
    mg_cred_registry_destroy(reg);
    ck_assert_int_eq(atomic_load(&sc.freed), 1);
}
END_TEST

START_TEST(failed_refresh_keeps_old_until_expiry)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    struct script sc = {.life_ms = 1500, .fail_from = 2};
    struct mg_cred_source *s = mg_cred_source_get(reg, "b\nk", "b", &script_ops, &sc);
    struct mg_cred *c;
    int64_t expires, usable;

    mg_cred_registry_wait(reg, 5000);
    c = mg_cred_source_current(s, mg_cred_now_ms());
    ck_assert_ptr_nonnull(c);
    expires = c->expires_ms;
    mg_cred_unref(c);
    ck_assert(wait_calls(&sc, 2, 3000));   /* the refresh at 750 ms fails */
    ck_assert_uint_ge(mg_cred_source_failures(s), 1);
    c = mg_cred_source_current(s, mg_cred_now_ms());
    if (c != NULL) {
        ck_assert_ptr_nonnull(c);          /* still the old one */
        ck_assert_str_eq(c->access_key_id, "AKID1");
    }
    mg_cred_unref(c);
    /* near its expiry, nothing: a request gets credentials_unavailable, never a stale key */
    c = mg_cred_source_current(s, 0);
    ck_assert_ptr_nonnull(c);
    usable = mg_cred_usable_until(c->fetched_ms, c->expires_ms);
    ck_assert_int_lt(usable, expires);
    ck_assert_int_ge(usable, expires - 1500 / 4);
    mg_cred_unref(c);
    ck_assert_ptr_null(mg_cred_source_current(s, usable));
    ck_assert_ptr_null(mg_cred_source_current(s, expires + 1));
    c = mg_cred_source_current(s, usable - 1);
    ck_assert_ptr_nonnull(c);
    mg_cred_unref(c);
    mg_cred_registry_destroy(reg);
}
END_TEST

START_TEST(sources_by_key_and_stopped_when_unused)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    struct script a = {.life_ms = 3600000}, a2 = {.life_ms = 3600000}, b = {.life_ms = 200};
    struct mg_cred_source *sa = mg_cred_source_get(reg, "x\nrole=1", "x", &script_ops, &a);
    struct mg_cred_source *sb = mg_cred_source_get(reg, "x\nrole=2", "x", &script_ops, &b);
    struct mg_cred_source *sa2;
    struct mg_cred *c;
    int n;

    mg_cred_registry_wait(reg, 5000);
    ck_assert_ptr_ne(sa, sb);
    ck_assert(wait_calls(&b, 3, 3000));   /* b refreshes every 100 ms */
    /* a reload that keeps a's config: the same source, the new arg freed, no second fetch */
    sa2 = mg_cred_source_get(reg, "x\nrole=1", "x", &script_ops, &a2);
    ck_assert_ptr_eq(sa2, sa);
    ck_assert_int_eq(atomic_load(&a2.freed), 1);
    mg_cred_registry_wait(reg, 5000);
    ck_assert_int_eq(atomic_load(&a.calls), 1);
    ck_assert_int_eq(atomic_load(&a2.calls), 0);
    /* b was not named: its refresher stopped, its last credential still readable (until it
     * expires) by a snapshot that points at it */
    n = atomic_load(&b.calls);
    usleep(300000);
    ck_assert_int_eq(atomic_load(&b.calls), n);
    c = mg_cred_source_current(sb, 0);
    ck_assert_ptr_nonnull(c);
    mg_cred_unref(c);
    ck_assert_int_eq(atomic_load(&b.freed), 0);
    /* a config that names b again restarts it */
    mg_cred_source_get(reg, "x\nrole=1", "x", &script_ops, &a2);
    ck_assert_ptr_eq(mg_cred_source_get(reg, "x\nrole=2", "x", &script_ops, &a2), sb);
    mg_cred_registry_wait(reg, 5000);
    ck_assert(wait_calls(&b, n + 2, 3000));
    mg_cred_registry_destroy(reg);
    ck_assert_int_eq(atomic_load(&a.freed), 1);
    ck_assert_int_eq(atomic_load(&b.freed), 1);
}
END_TEST

/* A source whose first fetch never answers within the wait: the wait is bounded. */
static int
slow_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    atomic_int *stop = arg;

    while (!atomic_load(stop)) {
        usleep(2000);
    }
    snprintf(err, errlen, "gave up");
    return MG_ERR;
}

static const struct mg_cred_source_ops slow_ops = {slow_fetch, NULL};

START_TEST(first_wait_is_bounded)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    atomic_int stop = 0;
    struct mg_cred_source *s = mg_cred_source_get(reg, "slow\n", "slow", &slow_ops, &stop);
    int64_t t0 = mg_now_ms();

    mg_cred_registry_wait(reg, 200);
    ck_assert_int_lt(mg_now_ms() - t0, 2000);
    ck_assert_ptr_null(mg_cred_source_current(s, mg_cred_now_ms()));
    atomic_store(&stop, 1);
    mg_cred_registry_destroy(reg);
}
END_TEST

/* A fetch from an endpoint that never answers (a socket that listens and never accepts). */
static int
hang_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    const char *headers[] = {"X-Test: 1", NULL};
    struct mg_cred_http rq = {"GET", arg, headers, NULL, 0, 30000, 0, 1};
    struct mg_buf b;
    long status;
    int rc = mg_cred_http_do(&rq, &status, &b, err, errlen);

    mg_buf_deinit(&b);
    return rc == MG_OK ? MG_ERR : rc;
}

static const struct mg_cred_source_ops hang_ops = {hang_fetch, NULL};

START_TEST(stop_cuts_a_transfer_short)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char url[64];
    int64_t t0;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/creds", ntohs(a.sin_port));
    mg_cred_source_get(reg, "hang\n", "hang", &hang_ops, url);
    mg_cred_registry_wait(reg, 300);   /* the first fetch hangs: the wait gives up */
    t0 = mg_now_ms();
    mg_cred_registry_destroy(reg);     /* the 30 s transfer is cut at once */
    ck_assert_int_lt(mg_now_ms() - t0, 3000 * mg_test_scale());
    close(fd);
}
END_TEST

/* Readers take the credential while the refresher swaps it every few milliseconds. */
struct reader {
    struct mg_cred_source *s;
    atomic_int            *stop;
    long                   seen;
};

static void *
read_loop(void *arg)
{
    struct reader *r = arg;

    while (!atomic_load(r->stop)) {
        struct mg_cred *c = mg_cred_source_current(r->s, 0);
        if (c != NULL) {
            r->seen += c->access_key_id[0] == 'A';
            mg_cred_unref(c);
        }
    }
    return NULL;
}

START_TEST(readers_race_the_swap)
{
    struct mg_cred_registry *reg = mg_cred_registry_create();
    struct script sc = {.life_ms = 4};   /* refreshed every 2 ms */
    struct mg_cred_source *s = mg_cred_source_get(reg, "r\n", "r", &script_ops, &sc);
    struct reader rd[2];
    pthread_t th[2];
    atomic_int stop = 0;
    int i;

    mg_cred_registry_wait(reg, 5000);
    for (i = 0; i < 2; i++) {
        rd[i].s = s;
        rd[i].stop = &stop;
        rd[i].seen = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    ck_assert(wait_calls(&sc, 40, 5000));
    atomic_store(&stop, 1);
    for (i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_gt(rd[i].seen, 0);
    }
    mg_cred_registry_destroy(reg);
}
END_TEST

Suite *
cred_suite(void)
{
    Suite *s = suite_create("cred");
    TCase *tc = tcase_create("cache");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, schedule_and_backoff);
    tcase_add_test(tc, parse_time);
    tcase_add_test(tc, first_fetch_then_refresh_before_expiry);
    tcase_add_test(tc, failed_refresh_keeps_old_until_expiry);
    tcase_add_test(tc, sources_by_key_and_stopped_when_unused);
    tcase_add_test(tc, first_wait_is_bounded);
    tcase_add_test(tc, readers_race_the_swap);
    tcase_add_test(tc, stop_cuts_a_transfer_short);
    suite_add_tcase(s, tc);
    return s;
}
