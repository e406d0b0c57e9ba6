/* Unit tests: rule matching by model name, prefix and headers, in file order. */
#include <string.h>
#include <strings.h>

#include "mg_conf.h"
#include "mg_router.h"
#include "mg_test.h"

static struct mg_conf *conf;

static const char *
hdr(void *arg, const char *name)
{
    const char *const *kv = arg;
    for (; kv && kv[0]; kv += 2) {
        if (strcasecmp(kv[0], name) == 0) {
            return kv[1];
        }
    }
    return NULL;
}

static int
match(const char *model, const char *const *headers)
{
    return mg_router_match(conf, model, strlen(model), hdr, (void *)headers);
}

static void
setup(void)
{
    static const char *text =
        "backends: [{name: a, url: 'http://a'}]\n"
        "rules:\n"
        "  - {models: [gpt-4o], headers: {x-tenant: acme, x-tier: gold}, backends: [{backend: a}]}\n"
        "  - {models: [gpt-4o, gpt-4o-mini], backends: [{backend: a}]}\n"
        "  - {models: ['llama-*'], backends: [{backend: a}]}\n"
        "  - {models: [llama-special], backends: [{backend: a}]}\n"
        "  - {models: ['*'], headers: {x-catch: all}, backends: [{backend: a}]}\n";
    struct mg_buf e;

    mg_buf_init(&e, 4096);
    conf = mg_conf_parse("r.yaml", text, strlen(text), &e);
    ck_assert_msg(conf != NULL, "%s", e.data);
    mg_buf_deinit(&e);
}

static void
teardown(void)
{
    mg_conf_unref(conf);
}

START_TEST(exact_and_order)
{
    ck_assert_int_eq(match("gpt-4o", NULL), 1);
    ck_assert_int_eq(match("gpt-4o-mini", NULL), 1);
    ck_assert_int_eq(match("gpt-4", NULL), -1);
    ck_assert_int_eq(match("GPT-4O", NULL), -1);
    ck_assert_int_eq(match("", NULL), -1);
}
END_TEST

START_TEST(headers_must_all_match)
{
    const char *both[] = {"X-Tenant", "acme", "x-tier", "gold", NULL};
    const char *one[] = {"x-tenant", "acme", NULL};
    const char *wrong[] = {"x-tenant", "acme", "x-tier", "Gold", NULL};

    ck_assert_int_eq(match("gpt-4o", both), 0);
    ck_assert_int_eq(match("gpt-4o", one), 1);
    ck_assert_int_eq(match("gpt-4o", wrong), 1);
    ck_assert_int_eq(match("gpt-4o-mini", both), 1);
}
END_TEST

START_TEST(prefix_patterns)
{
    const char *catchall[] = {"x-catch", "all", NULL};

    ck_assert_int_eq(match("llama-3.1-8b", NULL), 2);
    ck_assert_int_eq(match("llama-", NULL), 2);
    /* the earlier prefix rule wins over a later exact name */
    ck_assert_int_eq(match("llama-special", NULL), 2);
    ck_assert_int_eq(match("llama", NULL), -1);
    ck_assert_int_eq(match("anything", catchall), 4);
    ck_assert_int_eq(mg_router_model_matches("*", "", 0), 1);
    ck_assert_int_eq(mg_router_model_matches("a*", "b", 1), 0);
}
END_TEST

Suite *
router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *t = tcase_create("match");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, exact_and_order);
    tcase_add_test(t, headers_must_all_match);
    tcase_add_test(t, prefix_patterns);
    suite_add_tcase(s, t);
    return s;
}
