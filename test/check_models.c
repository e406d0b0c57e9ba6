/* Unit tests: the /v1/models catalog and its default created times across reloads. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "mg_conf.h"
#include "mg_harness.h"
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

/* ---- over HTTP: the list in Anthropic's shape (a request with anthropic-version) ---- */

static struct mg_harness mh;

/* GET path as an Anthropic client; the page's ids joined by ',' into ids; the status. */
static long
page(const char *path, char *ids, size_t len, json_t **doc)
{
    const char *h[] = {"anthropic-version: 2023-06-01", "x-api-key: anything", NULL};
    struct mg_test_resp r;
    json_t *j, *m;
    size_t i;
    long status;

    mg_test_http("GET", mg_harness_url(&mh, path), NULL, 0, h, &r);
    status = r.status;
    j = mg_test_body_json(&r);
    mg_test_resp_free(&r);
    ck_assert_ptr_nonnull(j);
    ids[0] = '\0';
    json_array_foreach(json_object_get(j, "data"), i, m) {
        snprintf(ids + strlen(ids), len - strlen(ids), "%s%s", i > 0 ? "," : "",
                 json_string_value(json_object_get(m, "id")));
    }
    if (doc != NULL) {
        *doc = j;
    } else {
        json_decref(j);
    }
    return status;
}

START_TEST(anthropic_shaped_list_and_cursors)
{
    char ids[256], conf[1024];
    json_t *j, *m;

    mg_harness_init(&mh, "mgtest-models-gw.log", "mgtest-models-fake.log");
    mg_harness_fake(&mh, "a", NULL);
    snprintf(conf, sizeof(conf), "listen: 127.0.0.1:%d\nworkers: 1\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m1, m2, m3, m4, m5], created: '2024-05-13T00:00:00Z',"
             " backends: [{backend: a}]}]\n", mh.gw_port, mh.fake_port[0]);
    mg_harness_start(&mh, 0, conf);

    ck_assert_int_eq(page("/v1/models", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(ids, "m1,m2,m3,m4,m5");
    ck_assert(json_is_false(json_object_get(j, "has_more")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "first_id")), "m1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "last_id")), "m5");
    m = json_array_get(json_object_get(j, "data"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(m, "type")), "model");
    ck_assert_str_eq(json_string_value(json_object_get(m, "display_name")), "m1");
    ck_assert_str_eq(json_string_value(json_object_get(m, "created_at")), "2024-05-13T00:00:00Z");
    ck_assert(json_is_null(json_object_get(m, "max_tokens")));
    json_decref(j);

    ck_assert_int_eq(page("/v1/models?limit=2", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(ids, "m1,m2");
    ck_assert(json_is_true(json_object_get(j, "has_more")));
    json_decref(j);
    ck_assert_int_eq(page("/v1/models?after_id=m2&limit=2", ids, sizeof(ids), NULL), 200);
    ck_assert_str_eq(ids, "m3,m4");
    ck_assert_int_eq(page("/v1/models?before_id=m4", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(ids, "m1,m2,m3");
    ck_assert(json_is_false(json_object_get(j, "has_more")));
    json_decref(j);
    ck_assert_int_eq(page("/v1/models?before_id=m4&limit=2", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(ids, "m2,m3");
    ck_assert(json_is_true(json_object_get(j, "has_more")));
    json_decref(j);
    /* both cursors: what lies between them */
    ck_assert_int_eq(page("/v1/models?after_id=m1&before_id=m4", ids, sizeof(ids), NULL), 200);
    ck_assert_str_eq(ids, "m2,m3");
    ck_assert_int_eq(page("/v1/models?after_id=m1&before_id=nope", ids, sizeof(ids), NULL), 200);
    ck_assert_str_eq(ids, "");
    /* an unknown cursor: an empty page */
    ck_assert_int_eq(page("/v1/models?after_id=nope", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(ids, "");
    ck_assert(json_is_null(json_object_get(j, "first_id")));
    json_decref(j);
    /* one model; errors in Anthropic's shape */
    ck_assert_int_eq(page("/v1/models/m3", ids, sizeof(ids), &j), 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "m3");
    json_decref(j);
    ck_assert_int_eq(page("/v1/models?limit=0", ids, sizeof(ids), &j), 400);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    ck_assert_int_eq(page("/v1/models/nope", ids, sizeof(ids), &j), 404);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    mg_harness_stop(&mh, "modelgate (models)");
}
END_TEST

Suite *
models_suite(void)
{
    Suite *s = suite_create("models");
    TCase *t = tcase_create("catalog");
    TCase *h = tcase_create("http");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, catalog_order_dedup_hidden_patterns);
    tcase_add_test(t, created_kept_across_reloads);
    tcase_add_test(t, hidden_name_listed_by_a_later_rule);
    tcase_add_test(t, empty_catalog);
    suite_add_tcase(s, t);
    tcase_set_timeout(h, 60 * mg_test_scale());
    tcase_add_test(h, anthropic_shaped_list_and_cursors);
    suite_add_tcase(s, h);
    return s;
}
