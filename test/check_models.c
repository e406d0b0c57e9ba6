/* Unit tests: the /v1/models catalog and its default created times across reloads. */
#include <string.h>

#include "mg_conf.h"
#include "mg_catalog.h"
#include "mg_test.h"

/* Each test's own first-load registry, as a runtime holds one. */
static struct mg_catalog_seen *seen;

static void
setup(void)
{
    seen = mg_catalog_seen_create();
}

static void
teardown(void)
{
    mg_catalog_seen_destroy(seen);
    seen = NULL;
}

/* A load, then the snapshot goes into service (what the server does on a reload). */
static struct mg_conf *
load(const char *text, int64_t now)
{
    struct mg_buf e;
    struct mg_conf *c;

    mg_buf_init(&e, 4096);
    c = mg_conf_parse_at("m.yaml", text, strlen(text), now, seen, &e);
    ck_assert_msg(c != NULL, "%s", e.data);
    mg_buf_deinit(&e);
    mg_catalog_remember(seen, c->catalog, c->ncatalog);
    return c;
}

static const char *gen1 =
    "backends: [{name: a, url: 'http://a'}]\n"
    "rules:\n"
    "  - {models: [m1, m2], owned_by: acme, created: 1700000000, backends: [{backend: a}]}\n"
    "  - {models: [m2, m3, 'p-*'], backends: [{backend: a}]}\n"
    "  - {models: [hidden], list: false, backends: [{backend: a}]}\n"
    "  - {models: [m4], created: '2024-05-13T00:00:00Z', owned_by: x, backends: [{backend: a}]}\n";

START_TEST(catalog_order_dedup_hidden_patterns)
{
    struct mg_conf *c = load(gen1, 1000);

    ck_assert_str_eq(c->catalog_json,
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"m1\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"acme\"},"
        "{\"id\":\"m2\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"acme\"},"
        "{\"id\":\"m3\",\"object\":\"model\",\"created\":1000,\"owned_by\":\"modelgate\"},"
        "{\"id\":\"m4\",\"object\":\"model\",\"created\":1715558400,\"owned_by\":\"x\"}]}\n");
    ck_assert_uint_eq(c->catalog_json_len, strlen(c->catalog_json));
    mg_conf_unref(c);
}
END_TEST

START_TEST(created_kept_across_reloads)
{
    struct mg_conf *c1 = load(gen1, 1000), *c2, *c3, *c4;

    /* m3 stays (keeps 1000), m5 is new (2000) */
    c2 = load("backends: [{name: b, url: 'http://b'}]\n"
              "rules: [{models: [m5, m3], owned_by: new, backends: [{backend: b}]}]\n", 2000);
    ck_assert_str_eq(c2->catalog_json,
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"m5\",\"object\":\"model\",\"created\":2000,\"owned_by\":\"new\"},"
        "{\"id\":\"m3\",\"object\":\"model\",\"created\":1000,\"owned_by\":\"new\"}]}\n");
    /* m3 leaves ... */
    c3 = load("backends: [{name: b, url: 'http://b'}]\n"
              "rules: [{models: [m5], backends: [{backend: b}]}]\n", 3000);
    ck_assert_int_eq(c3->catalog[0].created, 2000);
    /* ... and comes back: a new first-load time */
    c4 = load("backends: [{name: b, url: 'http://b'}]\n"
              "rules: [{models: [m3, m5], backends: [{backend: b}]}]\n", 4000);
    ck_assert_int_eq(c4->catalog[0].created, 4000);
    ck_assert_int_eq(c4->catalog[1].created, 2000);
    /* an older snapshot still in use by requests keeps its own values */
    ck_assert_int_eq(c1->catalog[2].created, 1000);
    mg_conf_unref(c1);
    mg_conf_unref(c2);
    mg_conf_unref(c3);
    mg_conf_unref(c4);
}
END_TEST

START_TEST(hidden_name_listed_by_a_later_rule)
{
    struct mg_conf *c = load("backends: [{name: a, url: 'http://a'}]\n"
                             "rules:\n"
                             "  - {models: [x], list: false, owned_by: first, backends: [{backend: a}]}\n"
                             "  - {models: [x], owned_by: second, backends: [{backend: a}]}\n", 5);

    /* a name is listed from the first rule that lists it */
    ck_assert_uint_eq(c->ncatalog, 1);
    ck_assert_str_eq(c->catalog[0].owned_by, "second");
    mg_conf_unref(c);
}
END_TEST

START_TEST(empty_catalog)
{
    struct mg_conf *c = load("workers: 1\n", 5);

    ck_assert_str_eq(c->catalog_json, "{\"object\":\"list\",\"data\":[]}\n");
    mg_conf_unref(c);
}
END_TEST

Suite *
models_suite(void)
{
    Suite *s = suite_create("models");
    TCase *t = tcase_create("catalog");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, catalog_order_dedup_hidden_patterns);
    tcase_add_test(t, created_kept_across_reloads);
    tcase_add_test(t, hidden_name_listed_by_a_later_rule);
    tcase_add_test(t, empty_catalog);
    suite_add_tcase(s, t);
    return s;
}
