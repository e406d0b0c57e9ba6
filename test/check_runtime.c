/*
 * Unit tests of the runtime object: what a snapshot gets when it goes into service (health
 * states, buckets, remembered created times), that two runtimes share nothing, and that a config
 * only loaded touches no runtime at all.
 */
#include <string.h>

#include "mg_catalog.h"
#include "mg_conf.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_limit_store.h"
#include "mg_runtime.h"
#include "mg_stats.h"
#include "mg_test.h"

static const char *yaml =
    "backends: [{name: a, url: 'http://a'}, {name: b, url: 'http://b'}]\n"
    "rules: [{models: [m1], backends: [{backend: a}, {backend: b}]}]\n"
    "auth:\n  keys:\n"
    "    - {name: team, key: mgk-team-0123456789abcdef0123, requests_per_minute: 1}\n";

static struct mg_conf *
load(const struct mg_runtime *rt, int64_t now)
{
    struct mg_buf e;
    struct mg_conf *c;

    mg_buf_init(&e, 4096);
    c = mg_conf_parse_at("rt.yaml", yaml, strlen(yaml), now, rt ? rt->seen : NULL, &e);
    ck_assert_msg(c != NULL, "%s", e.data);
    mg_buf_deinit(&e);
    return c;
}

START_TEST(bind_gives_states_buckets_and_created)
{
    struct mg_runtime *rt = mg_runtime_create("local");
    struct mg_conf *c1 = load(rt, 1000), *c2;

    /* loaded, not in service: nothing reached the runtime */
    ck_assert_ptr_null(c1->backends[0].state);
    ck_assert_ptr_null(c1->keys[0].limit);
    ck_assert_int_eq(c1->catalog[0].created, 1000);
    mg_runtime_bind(rt, c1, 0);
    ck_assert_ptr_eq(c1->backends[0].state, mg_health_get(rt->health, "a"));
    ck_assert_ptr_eq(c1->backends[1].state, mg_health_get(rt->health, "b"));
    ck_assert_ptr_eq(c1->keys[0].limit, mg_limit_get(rt->limits, "team"));
    ck_assert(mg_limit_admit(c1->keys[0].limit, 0, 1, NULL));
    ck_assert(!mg_limit_admit(c1->keys[0].limit, 0, 1, NULL));   /* its limit was set */
    /* a reload: the same states and buckets by name, the first created time kept */
    c2 = load(rt, 2000);
    ck_assert_int_eq(c2->catalog[0].created, 1000);
    mg_runtime_bind(rt, c2, 10);
    ck_assert_ptr_eq(c2->backends[0].state, c1->backends[0].state);
    ck_assert_ptr_eq(c2->keys[0].limit, c1->keys[0].limit);
    ck_assert(!mg_limit_admit(c2->keys[0].limit, 10, 1, NULL));  /* the bucket kept its level */
    mg_conf_unref(c1);
    mg_conf_unref(c2);
    mg_runtime_destroy(rt);
}
END_TEST

START_TEST(runtimes_share_nothing)
{
    struct mg_runtime *r1 = mg_runtime_create("local"), *r2 = mg_runtime_create("local");
    struct mg_health_conf hc = {1, 1000, 8000, 0};
    struct mg_conf *c1 = load(r1, 1000), *c2;
    struct mg_buf out;
    struct mg_stats *st;

    mg_runtime_bind(r1, c1, 0);
    c2 = load(r2, 5000);
    ck_assert_int_eq(c2->catalog[0].created, 5000);   /* r2 never saw m1 */
    mg_runtime_bind(r2, c2, 0);
    ck_assert_ptr_ne(c1->backends[0].state, c2->backends[0].state);
    ck_assert_ptr_ne(c1->keys[0].limit, c2->keys[0].limit);
    ck_assert_int_eq(mg_health_failure(c1->backends[0].state, &hc, 0), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_up(c2->backends[0].state), 1);
    ck_assert(mg_limit_admit(c1->keys[0].limit, 0, 1, NULL));
    ck_assert(mg_limit_admit(c2->keys[0].limit, 0, 1, NULL));
    /* each runtime's metrics: its own workers, reloads and backends */
    st = mg_stats_create(r1->stats);
    mg_stats_request(st, "m1", "a", 200, 1000, -1);
    mg_stats_reload(r1->stats, 1);
    mg_buf_init(&out, 1u << 20);
    mg_stats_render(r1->stats, &out);
    mg_health_render(r1->health, &out);
    ck_assert(mg_test_metric(out.data, "modelgate_requests_total{model=\"m1\",backend=\"a\","
                                       "code=\"200\"}") == 1);
    ck_assert(mg_test_metric(out.data, "modelgate_config_reloads_total{result=\"ok\"}") == 1);
    ck_assert(mg_test_metric(out.data, "modelgate_backend_up{backend=\"a\"}") == 0);
    mg_buf_deinit(&out);
    mg_buf_init(&out, 1u << 20);
    mg_stats_render(r2->stats, &out);
    mg_health_render(r2->health, &out);
    ck_assert(mg_test_metric(out.data, "modelgate_requests_total{model=\"m1\",backend=\"a\","
                                       "code=\"200\"}") < 0);
    ck_assert(mg_test_metric(out.data, "modelgate_config_reloads_total{result=\"ok\"}") == 0);
    ck_assert(mg_test_metric(out.data, "modelgate_backend_up{backend=\"a\"}") == 1);
    mg_buf_deinit(&out);
    mg_stats_destroy(st);
    mg_conf_unref(c1);
    mg_conf_unref(c2);
    mg_runtime_destroy(r1);
    mg_runtime_destroy(r2);
}
END_TEST

START_TEST(limit_stores_by_name)
{
    struct mg_limit_store *s = mg_limit_store_create("local");

    ck_assert_ptr_nonnull(s);
    mg_limit_store_destroy(s);
    ck_assert_ptr_null(mg_limit_store_create("nowhere"));
    ck_assert_ptr_null(mg_runtime_create("nowhere"));
    mg_limit_store_destroy(NULL);
    mg_runtime_destroy(NULL);
}
END_TEST

/* A store of the test's own: every call through mg_limit's functions lands in its operations. */
struct fake {
    struct mg_limit_store base;
    struct mg_limit       key;
    int                   calls[6];   /* get, configure, admit, settle, peek, worker start+stop */
};

static struct mg_limit *
fake_get(struct mg_limit_store *s, const char *name)
{
    struct fake *f = (struct fake *)s;

    f->calls[0]++;
    f->key.store = s;
    f->key.name = "fake-key";
    return &f->key;
}

static void
fake_configure(struct mg_limit *l, int64_t rpm, int64_t tpm, int64_t now)
{
    ((struct fake *)l->store)->calls[1]++;
}

static int
fake_admit(struct mg_limit *l, int64_t now, int64_t tokens, struct mg_limit_info *info)
{
    ((struct fake *)l->store)->calls[2]++;
    return tokens < 100;
}

static void
fake_settle(struct mg_limit *l, int64_t reserved, int64_t used, int64_t now)
{
    ((struct fake *)l->store)->calls[3]++;
}

static void
fake_peek(const struct mg_limit *l, int64_t now, struct mg_limit_info *info)
{
    ((struct fake *)l->store)->calls[4]++;
}

static void
fake_worker(struct mg_limit_store *s)
{
    ((struct fake *)s)->calls[5]++;
}

static void
fake_worker_start(struct mg_limit_store *s, struct event_base *base)
{
    fake_worker(s);
}

static const struct mg_limit_store_ops fake_ops = {
    .name = "fake",
    .get = fake_get,
    .configure = fake_configure,
    .admit = fake_admit,
    .settle = fake_settle,
    .peek = fake_peek,
    .worker_start = fake_worker_start,
    .worker_stop = fake_worker,
};

START_TEST(a_store_is_its_operations)
{
    struct fake f;
    struct mg_limit_store *local = mg_limit_store_create("local");
    struct mg_limit_info info;
    struct mg_limit *l;
    int i;

    memset(&f, 0, sizeof(f));
    f.base.ops = &fake_ops;
    l = mg_limit_get(&f.base, "anything");
    ck_assert_str_eq(mg_limit_name(l), "fake-key");
    mg_limit_configure(l, 1, 1, 0);
    ck_assert(mg_limit_admit(l, 0, 99, &info));
    ck_assert(!mg_limit_admit(l, 0, 100, &info));
    mg_limit_settle(l, 1, 2, 0);
    mg_limit_peek(l, 0, &info);
    mg_limit_store_worker_start(&f.base, NULL);
    mg_limit_store_worker_stop(&f.base);
    for (i = 0; i < 6; i++) {
        ck_assert_int_eq(f.calls[i], i == 2 || i == 5 ? 2 : 1);
    }
    /* the local store needs no worker hooks */
    mg_limit_store_worker_start(local, NULL);
    mg_limit_store_worker_stop(local);
    mg_limit_store_destroy(local);
}
END_TEST

Suite *
runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *t = tcase_create("runtime");

    tcase_add_test(t, bind_gives_states_buckets_and_created);
    tcase_add_test(t, runtimes_share_nothing);
    tcase_add_test(t, limit_stores_by_name);
    tcase_add_test(t, a_store_is_its_operations);
    suite_add_tcase(s, t);
    return s;
}
