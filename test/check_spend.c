/*
 * Suite spend: prices, costs, budgets and the admin API (SPEC "Spend and budgets", "Admin
 * endpoints").
 *
 * Units: USD amounts parsed exactly, the cost of each token kind and its rounding, price lookup
 * (exact names before prefix* patterns, a backend's prices before the top level's), the usage
 * reader's cached and cache-write counts (OpenAI, Responses, Anthropic), calendar UTC windows,
 * reservations and the request that crosses the budget, the state file's round trip and its
 * damaged forms, the config's errors and warnings.
 *
 * Integration (build/modelgate before build/fakeai, which reports 10 input and 20 output tokens):
 * a budget that allows three requests lets the fourth complete and refuses the fifth with
 * insufficient_quota; x-modelgate-budget-remaining-usd, cost_usd in the access log and
 * modelgate_cost_usd_total; the admin endpoints' fields and their protection (admin_key as
 * Bearer or Basic password, 401 with a Basic challenge, /healthz open, POST needing JSON and the
 * request's own origin), a reset that lets the key in again; spend kept in state_file across a
 * kill -9 and a clean stop, and a damaged state_file that stops the start naming the file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "mg_budget.h"
#include "mg_conf.h"
#include "mg_conf_types.h"
#include "mg_harness.h"
#include "mg_price.h"
#include "mg_test.h"
#include "mg_usage.h"
#include "mg_util.h"

/* ---- units ---------------------------------------------------------------------------------- */

START_TEST(usd_amounts_parse_exactly)
{
    int64_t v;
    char s[32];

    ck_assert_int_eq(mg_price_parse_usd("2.50", MG_PRICE_MAX_MICRO, &v), 0);
    ck_assert_int_eq(v, 2500000);
    ck_assert_int_eq(mg_price_parse_usd("10", MG_PRICE_MAX_MICRO, &v), 0);
    ck_assert_int_eq(v, 10000000);
    ck_assert_int_eq(mg_price_parse_usd("0.000001", MG_PRICE_MAX_MICRO, &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(mg_price_parse_usd("1000000", MG_PRICE_MAX_MICRO, &v), 0);
    ck_assert_int_eq(v, MG_PRICE_MAX_MICRO);
    ck_assert_int_eq(mg_price_parse_usd("1000000.000001", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("0.0000001", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("-1", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("1e3", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd(".5", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("5.", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_int_eq(mg_price_parse_usd("99999999999999999999", MG_PRICE_MAX_MICRO, &v), -1);
    ck_assert_str_eq(mg_price_format_usd(0, s, sizeof(s)), "0.000000");
    ck_assert_str_eq(mg_price_format_usd(1, s, sizeof(s)), "0.000001");
    ck_assert_str_eq(mg_price_format_usd(1000000, s, sizeof(s)), "1.000000");
    ck_assert_str_eq(mg_price_format_usd(123456789, s, sizeof(s)), "123.456789");
    ck_assert_str_eq(mg_price_format_usd(-5, s, sizeof(s)), "0.000000");
    ck_assert_str_eq(mg_price_format_usd(INT64_MAX, s, sizeof(s)), "9223372036854.775807");
    ck_assert_str_eq(mg_price_format_usd(123456789, s, 5), "123.");
}
END_TEST

START_TEST(cost_of_each_token_kind)
{
    /* gpt-4o-like: 2.50 input, 1.25 cached, 3.75 cache writes, 10.00 output (USD per 1M) */
    struct mg_price p = {NULL, 2500000, 1250000, 3750000, 10000000};
    struct mg_price_usage u = {1000000, 0, 0, 0};
    char s[32];

    ck_assert_int_eq(mg_price_cost(&p, &u), 2500000);            /* 1M uncached input */
    u = (struct mg_price_usage){1000000, 1000000, 0, 0};
    ck_assert_int_eq(mg_price_cost(&p, &u), 1250000);            /* all of it cached */
    u = (struct mg_price_usage){1000000, 0, 1000000, 0};
    ck_assert_int_eq(mg_price_cost(&p, &u), 3750000);            /* all of it cache writes */
    u = (struct mg_price_usage){-1, -1, -1, 1000000};
    ck_assert_int_eq(mg_price_cost(&p, &u), 10000000);           /* output only */
    /* 700 uncached + 200 cached + 100 written, 500 out: 1750 + 250 + 375 + 5000 micro-dollars */
    u = (struct mg_price_usage){1000, 200, 100, 500};
    ck_assert_int_eq(mg_price_cost(&p, &u), 7375);
    ck_assert_str_eq(mg_price_format_usd(7375, s, sizeof(s)), "0.007375");
    /* cache counts larger than the input never make the uncached part negative */
    u = (struct mg_price_usage){10, 20, 0, 0};
    ck_assert_int_eq(mg_price_cost(&p, &u), 25);   /* 20 cached at 1.25: 25 micro-dollars */
    /* each request rounds up to a whole micro-dollar, once */
    u = (struct mg_price_usage){1, 0, 0, 0};
    ck_assert_int_eq(mg_price_cost(&p, &u), 3);    /* 2.5 */
    p = (struct mg_price){NULL, 1, 1, 1, 1};       /* USD 0.000001 per 1M tokens */
    ck_assert_int_eq(mg_price_cost(&p, &u), 1);
    u = (struct mg_price_usage){0, 0, 0, 0};
    ck_assert_int_eq(mg_price_cost(&p, &u), 0);
    ck_assert_int_eq(mg_price_cost(NULL, &u), 0);
    /* the largest counts at the largest price saturate, never wrap */
    p = (struct mg_price){NULL, MG_PRICE_MAX_MICRO, MG_PRICE_MAX_MICRO, MG_PRICE_MAX_MICRO,
                          MG_PRICE_MAX_MICRO};
    u = (struct mg_price_usage){MG_TOKENS_MAX, 0, 0, MG_TOKENS_MAX};
    ck_assert(mg_price_cost(&p, &u) == INT64_MAX);
    u = (struct mg_price_usage){1000000, 0, 0, 0};
    ck_assert(mg_price_cost(&p, &u) == MG_PRICE_MAX_MICRO);
}
END_TEST

static struct mg_conf *
parse(const char *text, struct mg_buf *errors)
{
    mg_buf_init(errors, 64 * 1024);
    return mg_conf_parse("spend.yaml", text, strlen(text), errors);
}

START_TEST(prices_exact_before_prefix_and_backend_first)
{
    static const char text[] =
        "prices:\n"
        "  \"gpt-4o*\": {input: 5, output: 15}\n"
        "  gpt-4o: {input: 2.50, cached_input: 1.25, output: 10}\n"
        "  \"claude-sonnet-4*\": {input: 3, cached_input: 0.30, cache_write: 3.75, output: 15}\n"
        "  \"claude-*\": {input: 1, output: 1}\n"
        "backends:\n"
        "  - {name: a, url: 'http://127.0.0.1:1/v1'}\n"
        "  - {name: b, url: 'http://127.0.0.1:2/v1', prices: {gpt-4o: {input: 1, output: 2}}}\n"
        "rules: [{models: [m], backends: [{backend: a}, {backend: b}]}]\n";
    struct mg_buf errors;
    struct mg_conf *c = parse(text, &errors);
    const struct mg_price *p;

    ck_assert_msg(c != NULL, "%s", errors.data ? errors.data : "");
    p = mg_price_lookup(c, &c->backends[0], "gpt-4o");
    ck_assert_int_eq(p->input, 2500000);          /* the exact name, though a prefix is first */
    ck_assert_int_eq(p->cached_input, 1250000);
    ck_assert_int_eq(p->cache_write, 2500000);    /* defaults to input */
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[0], "gpt-4o-mini")->input, 5000000);
    p = mg_price_lookup(c, &c->backends[0], "claude-sonnet-4-5");
    ck_assert_int_eq(p->cache_write, 3750000);    /* the first prefix that matches */
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[0], "claude-haiku")->input, 1000000);
    ck_assert_ptr_null(mg_price_lookup(c, &c->backends[0], "llama"));
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[1], "gpt-4o")->input, 1000000);   /* b's */
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[1], "gpt-4o-mini")->input, 5000000);
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
}
END_TEST

static void
refused(const char *text, const char *why)
{
    struct mg_buf errors;
    struct mg_conf *c = parse(text, &errors);

    ck_assert_msg(c == NULL, "accepted: %s", text);
    ck_assert_msg(errors.data != NULL && strstr(errors.data, why) != NULL, "%s: %s", why,
                  errors.data ? errors.data : "");
    ck_assert_ptr_nonnull(strstr(errors.data, "spend.yaml:"));
    mg_buf_deinit(&errors);
}

#define BK "backends: [{name: a, url: 'http://127.0.0.1:1/v1'}]\n" \
           "rules: [{models: [m], backends: [{backend: a}]}]\n"

START_TEST(config_errors_and_warnings)
{
    struct mg_buf errors;
    struct mg_conf *c;

    refused("prices: {m: {input: 1}}\n" BK, "needs \"input\" and \"output\"");
    refused("prices: {m: {input: -1, output: 1}}\n" BK, "a price is USD per 1M tokens");
    refused("prices: {m: {input: 0.0000001, output: 1}}\n" BK, "at most 6");
    refused("prices: {m: {input: 1, output: 1, cache: 1}}\n" BK, "cache");
    refused("prices: [m]\n" BK, "prices must be a mapping");
    refused("auth: {keys: [{name: k, key: sk-0123456789abcdef, budget: {usd: 5, per: year}}]}\n"
            BK, "budget per must be day, week, month or total");
    refused("auth: {keys: [{name: k, key: sk-0123456789abcdef, budget: {usd: 0, per: day}}]}\n"
            BK, "budget usd must be a positive");
    refused("auth: {keys: [{name: k, key: sk-0123456789abcdef, budget: {per: day}}]}\n" BK,
            "budget needs");
    refused("admin_key: admin-0123456789abcdef\nadmin_key_sha256: "
            "0000000000000000000000000000000000000000000000000000000000000000\n" BK,
            "not both");
    refused("admin_key_sha256: abc\n" BK, "64 hex digits");
    /* a budget that a restart would forget is said, not refused */
    c = parse("auth: {keys: [{name: k, key: sk-0123456789abcdef, budget: {usd: 5, per: day}}]}\n"
              BK, &errors);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(c->warnings);
    ck_assert_ptr_nonnull(strstr(c->warnings, "spend starts from zero at every restart"));
    ck_assert_int_eq(c->keys[0].budget_usd, 5000000);
    ck_assert_int_eq(c->keys[0].budget_per, MG_BUDGET_DAY);
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
    c = parse("state_file: /tmp/x.json\nadmin_key: short\n"
              "auth: {keys: [{name: k, key: sk-0123456789abcdef, budget: {usd: 5, per: day}}]}\n"
              BK, &errors);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(strstr(c->warnings, "every restart"));
    ck_assert_ptr_nonnull(strstr(c->warnings, "admin_key is shorter"));
    ck_assert_int_eq(c->admin_key, 1);
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
    c = parse("state_file: /tmp/x.json\nshared: {redis: 'redis://127.0.0.1:1/0'}\n" BK, &errors);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(strstr(c->warnings, "state_file is not used with shared"));
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
}
END_TEST

/* The priced example loads as it is, with its variables set. */
START_TEST(priced_example_loads)
{
    static const char *const vars[] = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TEAM_A_KEY",
                                       "TEAM_B_KEY", "ADMIN_KEY"};
    struct mg_buf errors;
    struct mg_conf *c;
    size_t i;

    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        char v[64];
        snprintf(v, sizeof(v), "example-value-%zu-0123456789abcdef", i);
        setenv(vars[i], v, 1);
    }
    mg_buf_init(&errors, 64 * 1024);
    c = mg_conf_load("conf/examples/priced.yaml", NULL, &errors);
    ck_assert_msg(c != NULL, "%s", errors.data ? errors.data : "");
    ck_assert_int_eq(c->admin_key, 1);
    ck_assert_str_eq(c->state_file, "/var/lib/modelgate/state.json");
    ck_assert_int_eq(c->keys[0].budget_usd, 200000000);
    ck_assert_int_eq(c->keys[0].budget_per, MG_BUDGET_MONTH);
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[1], "claude-sonnet-4-5-20250929")
                     ->cache_write, 3750000);
    ck_assert_int_eq(mg_price_lookup(c, &c->backends[2], "llama3")->input, 10000);
    ck_assert_ptr_null(mg_price_lookup(c, &c->backends[0], "llama3"));
    mg_conf_unref(c);
    mg_buf_deinit(&errors);
}
END_TEST

START_TEST(usage_cache_counts)
{
    static const char chat[] = "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":7,"
                               "\"prompt_tokens_details\":{\"cached_tokens\":60,"
                               "\"audio_tokens\":0,\"cache_creation_tokens\":30}}}";
    static const char resp[] = "{\"usage\":{\"input_tokens\":50,\"input_tokens_details\":"
                               "{\"cached_tokens\":20},\"output_tokens\":5,"
                               "\"output_tokens_details\":{\"reasoning_tokens\":3}}}";
    static const char anth[] = "{\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":"
                               "4,\"cache_read_input_tokens\":6,\"output_tokens\":1}}";
    static const char plain[] = "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}";
    struct mg_usage u;

    ck_assert_int_eq(mg_usage_parse(chat, strlen(chat), &u), 1);
    ck_assert_int_eq(u.input, 100);
    ck_assert_int_eq(u.output, 7);
    ck_assert_int_eq(u.cached, 60);
    ck_assert_int_eq(u.written, 30);
    ck_assert_int_eq(mg_usage_parse(resp, strlen(resp), &u), 1);
    ck_assert_int_eq(u.input, 50);
    ck_assert_int_eq(u.cached, 20);
    ck_assert_int_eq(u.written, -1);
    ck_assert_int_eq(u.output, 5);
    /* Anthropic's input_tokens leaves the cache out: the input is all three */
    ck_assert_int_eq(mg_usage_parse(anth, strlen(anth), &u), 1);
    ck_assert_int_eq(u.input, 20);
    ck_assert_int_eq(u.cached, 6);
    ck_assert_int_eq(u.written, 4);
    ck_assert_int_eq(mg_usage_parse(plain, strlen(plain), &u), 1);
    ck_assert_int_eq(u.cached, -1);
    ck_assert_int_eq(u.written, -1);
}
END_TEST

/* Unix seconds of a UTC calendar time. */
static int64_t
utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};

    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

START_TEST(calendar_utc_windows)
{
    int64_t now = utc(2026, 12, 9, 17, 30, 5), s, e;   /* a Wednesday */

    mg_budget_window(MG_BUDGET_DAY, now, &s, &e);
    ck_assert_int_eq(s, utc(2026, 12, 9, 0, 0, 0));
    ck_assert_int_eq(e, utc(2026, 12, 10, 0, 0, 0));
    mg_budget_window(MG_BUDGET_WEEK, now, &s, &e);
    ck_assert_int_eq(s, utc(2026, 12, 7, 0, 0, 0));    /* Monday */
    ck_assert_int_eq(e, utc(2026, 12, 14, 0, 0, 0));
    mg_budget_window(MG_BUDGET_WEEK, utc(2026, 12, 7, 0, 0, 0), &s, &e);
    ck_assert_int_eq(s, utc(2026, 12, 7, 0, 0, 0));    /* a Monday starts its own week */
    mg_budget_window(MG_BUDGET_WEEK, utc(2026, 12, 6, 23, 59, 59), &s, &e);
    ck_assert_int_eq(s, utc(2026, 11, 30, 0, 0, 0));   /* a Sunday is the week before's */
    mg_budget_window(MG_BUDGET_MONTH, now, &s, &e);
    ck_assert_int_eq(s, utc(2026, 12, 1, 0, 0, 0));
    ck_assert_int_eq(e, utc(2027, 1, 1, 0, 0, 0));     /* December's end is next year's */
    mg_budget_window(MG_BUDGET_MONTH, utc(2028, 2, 29, 12, 0, 0), &s, &e);
    ck_assert_int_eq(s, utc(2028, 2, 1, 0, 0, 0));
    ck_assert_int_eq(e, utc(2028, 3, 1, 0, 0, 0));
    mg_budget_window(MG_BUDGET_TOTAL, now, &s, &e);
    ck_assert_int_eq(s, 0);
    ck_assert_int_eq(e, 0);
}
END_TEST

START_TEST(budget_reserve_cross_refuse_and_renew)
{
    struct mg_budget_registry *reg = mg_budget_registry_create();
    struct mg_budget *b = mg_budget_get(reg, "k");
    int64_t now = utc(2026, 12, 9, 10, 0, 0), r, r2, r3;
    struct mg_budget_view v;
    int i;

    ck_assert_ptr_eq(mg_budget_get(reg, "k"), b);   /* by name: the same entry */
    mg_budget_configure(b, 700, MG_BUDGET_DAY);
    for (i = 0; i < 3; i++) {   /* three answers of 210 */
        ck_assert_int_eq(mg_budget_admit(b, now, 14, &r, &v), 1);
        ck_assert_int_eq(r, 14);
        mg_budget_settle(b, now, r, 210);
    }
    mg_budget_peek(b, now, &v);
    ck_assert_int_eq(v.spent, 630);
    ck_assert_int_eq(v.remaining, 70);
    ck_assert_int_eq(v.window_end, utc(2026, 12, 10, 0, 0, 0));
    /* 70 left covers the fourth's 14: it goes, and crosses the budget */
    ck_assert_int_eq(mg_budget_admit(b, now, 14, &r, &v), 1);
    /* meanwhile a concurrent one that its reservation does not leave room for is refused */
    ck_assert_int_eq(mg_budget_admit(b, now, 60, &r2, &v), 0);
    ck_assert_int_eq(r2, 0);
    mg_budget_settle(b, now, r, 210);
    ck_assert_int_eq(mg_budget_admit(b, now, 0, &r, &v), 0);   /* spent: even a free one */
    ck_assert_int_eq(v.spent, 840);
    ck_assert_int_eq(v.remaining, 0);
    /* the next day starts from nothing */
    ck_assert_int_eq(mg_budget_admit(b, now + 86400, 5000, &r3, &v), 1);
    ck_assert_int_eq(r3, 700);   /* a reservation is capped at the budget */
    ck_assert_int_eq(v.spent, 0);
    mg_budget_settle(b, now + 86400, r3, 0);   /* no answer: it all comes back */
    mg_budget_peek(b, now + 86400, &v);
    ck_assert_int_eq(v.remaining, 700);
    mg_budget_settle(b, now + 86400, 0, 100);
    mg_budget_reset(b, now + 86400);
    mg_budget_peek(b, now + 86400, &v);
    ck_assert_int_eq(v.spent, 0);
    /* total never renews */
    mg_budget_configure(b, 100, MG_BUDGET_TOTAL);
    mg_budget_settle(b, now, 0, 100);
    ck_assert_int_eq(mg_budget_admit(b, now + 400 * 86400, 0, &r, &v), 0);
    ck_assert_int_eq(v.window_end, 0);
    mg_budget_registry_destroy(reg);
}
END_TEST

static int
undump(struct mg_budget_registry *reg, const char *text)
{
    char why[512];

    return mg_budget_undump(reg, text, strlen(text), why, sizeof(why));
}

START_TEST(state_file_round_trip_and_damage)
{
    struct mg_budget_registry *reg = mg_budget_registry_create(), *back;
    int64_t now = (int64_t)time(NULL), r;
    struct mg_budget_view v;
    char why[512], path[] = "spend-unit.json";
    struct mg_buf out;
    FILE *f;

    mg_budget_configure(mg_budget_get(reg, "a"), 1000000, MG_BUDGET_MONTH);
    mg_budget_configure(mg_budget_get(reg, "b"), 1000000, MG_BUDGET_TOTAL);
    mg_budget_configure(mg_budget_get(reg, "idle"), 1000000, MG_BUDGET_DAY);
    mg_budget_admit(mg_budget_get(reg, "a"), now, 0, &r, NULL);
    mg_budget_settle(mg_budget_get(reg, "a"), now, r, 1234);
    mg_budget_settle(mg_budget_get(reg, "b"), now, 0, 99);
    /* a stale tmp file of a write that was killed does not matter */
    f = fopen("spend-unit.json.tmp", "w");
    fputs("{\"version\":1,\"sp", f);
    fclose(f);
    ck_assert_int_eq(mg_budget_save(reg, path, why, sizeof(why)), 0);
    ck_assert_int_eq(access("spend-unit.json.tmp", F_OK), -1);
    mg_buf_init(&out, 4096);
    ck_assert_int_eq(mg_budget_dump(reg, &out), 2);   /* nothing spent: not written */
    ck_assert_ptr_nonnull(strstr(out.data, "\"b\":{\"1970-01-01T00:00:00Z\":99}"));
    mg_buf_deinit(&out);

    back = mg_budget_registry_create();
    ck_assert_int_eq(mg_budget_load(back, path, why, sizeof(why)), 0);
    mg_budget_configure(mg_budget_get(back, "a"), 1000000, MG_BUDGET_MONTH);
    mg_budget_configure(mg_budget_get(back, "b"), 1000000, MG_BUDGET_TOTAL);
    mg_budget_peek(mg_budget_get(back, "a"), now, &v);
    ck_assert_int_eq(v.spent, 1234);
    mg_budget_peek(mg_budget_get(back, "b"), now, &v);
    ck_assert_int_eq(v.spent, 99);
    /* a window that is over when read counts nothing (a month's key read as a day's) */
    mg_budget_configure(mg_budget_get(back, "a"), 1000000, MG_BUDGET_DAY);
    mg_budget_peek(mg_budget_get(back, "a"), now + 40 * 86400, &v);
    ck_assert_int_eq(v.spent, 0);
    mg_budget_registry_destroy(back);

    /* a missing file is nothing spent yet; a damaged one an error that names it */
    back = mg_budget_registry_create();
    ck_assert_int_eq(mg_budget_load(back, "no-such-state.json", why, sizeof(why)), 0);
    f = fopen(path, "w");
    fputs("{\"version\":1,\"spend\":{\"a\":{\"2026-12-01T00:00:00Z\":12", f);
    fclose(f);
    ck_assert_int_eq(mg_budget_load(back, path, why, sizeof(why)), -1);
    ck_assert_ptr_nonnull(strstr(why, "state_file spend-unit.json is damaged"));
    ck_assert_int_eq(undump(back, "{\"version\":2,\"spend\":{}}"), -1);
    ck_assert_int_eq(undump(back, "{\"version\":1,\"spend\":{\"a\":{\"x\":1}}}"), -1);
    ck_assert_int_eq(undump(back, "{\"version\":1,\"spend\":{\"a\":{"
                                      "\"2026-12-01T00:00:00Z\":-5}}}"),
                     -1);
    ck_assert_int_eq(undump(back, "[]"), -1);
    mg_budget_registry_destroy(back);
    mg_budget_registry_destroy(reg);
    unlink(path);
}
END_TEST

/* ---- integration ---------------------------------------------------------------------------- */

#define ADMIN_KEY "admin-spend-test-0123456789"
#define KEY_K     "sk-spend-test-k-000000000001"
#define KEY_FREE  "sk-spend-test-free-0000000002"

static struct mg_harness bh;

/* 56 bytes: a reservation of 14 tokens, 14 micro-dollars at 1.00 per 1M input */
static const char chat_body[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                                "\"hi\"}]}";

static long
chat_as(struct mg_harness *h, const char *key, struct mg_test_resp *r)
{
    char auth[128];
    const char *hd[] = {"Content-Type: application/json", auth, NULL};

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    mg_test_http("POST", mg_harness_url(h, "/v1/chat/completions"), chat_body,
                 sizeof(chat_body) - 1, hd, r);
    return r->status;
}

/* A request to an admin path with one extra header line (or none). */
static long
admin_get(struct mg_harness *h, const char *path, const char *hdr, struct mg_test_resp *r)
{
    const char *hd[] = {hdr, NULL};

    mg_test_http("GET", mg_harness_url(h, path), NULL, 0, hdr != NULL ? hd : NULL, r);
    return r->status;
}

static json_t *
admin_json(struct mg_harness *h, const char *path)
{
    struct mg_test_resp r;
    json_t *j;

    ck_assert_int_eq(admin_get(h, path, "Authorization: Bearer " ADMIN_KEY, &r), 200);
    j = mg_test_body_json(&r);
    mg_test_resp_free(&r);
    ck_assert_ptr_nonnull(j);
    return j;
}

static json_t *
key_named(json_t *doc, const char *name)
{
    json_t *k;
    size_t i;

    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        if (strcmp(json_string_value(json_object_get(k, "name")), name) == 0) {
            return k;
        }
    }
    return NULL;
}

static void
start_budget(void)
{
    char conf[2048];

    mg_harness_init(&bh, "mgtest-spend-gw.log", "mgtest-spend-fake.log");
    mg_harness_fake(&bh, "a", NULL);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\n"
             "admin_key: " ADMIN_KEY "\n"
             "prices: {m: {input: 1.00, output: 10.00}}\n"
             "auth: {keys: [{name: k, key: " KEY_K ", budget: {usd: 0.0007, per: day}},"
             " {name: free, key: " KEY_FREE "}]}\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: a}]},"
             " {models: [unpriced], backends: [{backend: a}]}]\n",
             bh.gw_port, bh.fake_port[0]);
    mg_harness_start(&bh, 0, conf);
}

static void
stop_budget(void)
{
    mg_harness_stop(&bh, "modelgate (spend)");
}

/* Waits (bounded) until the gateway's log holds needle n times at least; returns the count. */
static int
log_count(const char *path, const char *needle, int n)
{
    int i, found = 0;

    for (i = 0; i < 100 && found < n; i++) {
        size_t len;
        char *text = mg_test_slurp(path, &len), *p = text;
        for (found = 0; p != NULL && (p = strstr(p, needle)) != NULL; p++) {
            found++;
        }
        free(text);
        if (found < n) {
            usleep(20000);
        }
    }
    return found;
}

/*
 * Waits (bounded) until key name's spend in the current window is micro micro-dollars: an
 * answer's cost is settled right after its last byte is sent, so the next request of a client
 * that is quick enough may be admitted against the earlier one's reservation instead.
 */
static void
wait_spent(struct mg_harness *h, const char *name, long long micro)
{
    int i;
    double spent = -1;

    for (i = 0; i < 250; i++) {
        json_t *j = admin_json(h, "/admin/keys");
        spent = json_real_value(json_object_get(json_object_get(key_named(j, name), "budget"),
                                                "spent_usd"));
        json_decref(j);
        if ((long long)(spent * 1e6 + 0.5) == micro) {
            return;
        }
        usleep(20000);
    }
    ck_abort_msg("key %s: spent %.6f, never %.6f", name, spent, (double)micro / 1e6);
}

START_TEST(budget_lets_the_crossing_request_finish_then_refuses)
{
    static const char *const remaining[] = {"0.000700", "0.000490", "0.000280", "0.000070"};
    struct mg_test_resp r;
    json_t *j, *k, *err;
    char day_end[32];
    time_t t = time(NULL) + 86400;
    struct tm tm;
    int i;

    /* 10 in x 1.00 + 20 out x 10.00 = 210 micro-dollars an answer; 700 allows three and the
     * fourth starts with 70 left, which covers its 14 reserved */
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(chat_as(&bh, KEY_K, &r), 200);
        ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"), remaining[i]);
        mg_test_resp_free(&r);
        wait_spent(&bh, "k", 210LL * (i + 1));
    }
    ck_assert_int_eq(chat_as(&bh, KEY_K, &r), 429);
    mg_test_assert_error(&r, 429, "insufficient_quota");
    j = mg_test_body_json(&r);
    err = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "type")), "insufficient_quota");
    gmtime_r(&t, &tm);
    strftime(day_end, sizeof(day_end), "until %Y-%m-%dT00:00:00Z", &tm);
    ck_assert_msg(strstr(json_string_value(json_object_get(err, "message")), day_end) != NULL,
                  "%s", json_string_value(json_object_get(err, "message")));
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"), "0.000000");
    json_decref(j);
    mg_test_resp_free(&r);
    /* a key without a budget is not limited by it, and gets no budget header */
    ck_assert_int_eq(chat_as(&bh, KEY_FREE, &r), 200);
    ck_assert_ptr_null(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"));
    mg_test_resp_free(&r);

    /* every answer's cost in the access log, exact to the micro-dollar; the refusal has none */
    ck_assert_int_eq(log_count(bh.gw_log, "\"cost_usd\":0.000210", 5), 5);
    ck_assert_int_eq(log_count(bh.gw_log, "\"status\":429", 1), 1);

    j = admin_json(&bh, "/admin/keys");
    k = key_named(j, "k");
    ck_assert_ptr_nonnull(k);
    ck_assert(json_real_value(json_object_get(json_object_get(k, "budget"), "usd")) == 0.0007);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(k, "budget"), "per")),
                     "day");
    ck_assert(json_real_value(json_object_get(json_object_get(k, "budget"), "spent_usd")) ==
              0.00084);
    ck_assert(json_real_value(json_object_get(json_object_get(k, "budget"), "remaining_usd"))
              == 0.0);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(k, "budget"),
                                                                   "window_end")),
                                 "T00:00:00.000Z"));
    ck_assert_int_eq(json_integer_value(json_object_get(k, "requests")), 4);   /* answered */
    ck_assert(json_is_null(json_object_get(key_named(j, "free"), "budget")));
    ck_assert(json_is_null(json_object_get(k, "models")));
    json_decref(j);

    ck_assert_int_eq(admin_get(&bh, "/metrics", "Authorization: Bearer " ADMIN_KEY, &r), 200);
    ck_assert(mg_test_metric(r.body.data,
                             "modelgate_cost_usd_total{key=\"k\",model=\"m\",backend=\"a\"}") ==
              0.00084);
    ck_assert(mg_test_metric(r.body.data,
                             "modelgate_cost_usd_total{key=\"free\",model=\"m\",backend=\"a\"}")
              == 0.00021);
    mg_test_resp_free(&r);
}
END_TEST

/* A model without a price costs 0 and is said once, whatever the number of its answers. */
START_TEST(unpriced_model_warned_once)
{
    static const char body[] = "{\"model\":\"unpriced\",\"messages\":[]}";
    const char *hd[] = {"Content-Type: application/json", "Authorization: Bearer " KEY_FREE,
                        NULL};
    struct mg_test_resp r;
    int i;

    for (i = 0; i < 3; i++) {
        mg_test_http("POST", mg_harness_url(&bh, "/v1/chat/completions"), body,
                     sizeof(body) - 1, hd, &r);
        ck_assert_int_eq(r.status, 200);
        mg_test_resp_free(&r);
    }
    ck_assert_int_eq(log_count(bh.gw_log, "\"model\":\"unpriced\"", 3), 3);
    ck_assert_int_eq(log_count(bh.gw_log, "no price for model \"unpriced\" (backend a)", 1), 1);
    ck_assert_int_eq(log_count(bh.gw_log, "\"cost_usd\":0.000000", 3), 3);
}
END_TEST

START_TEST(admin_endpoints_need_the_admin_key)
{
    static const char *const guarded[] = {"/metrics", "/status", "/status.json", "/admin/keys",
                                          "/admin/backends"};
    struct mg_test_resp r;
    json_t *j, *b;
    size_t i;

    for (i = 0; i < sizeof(guarded) / sizeof(guarded[0]); i++) {
        ck_assert_int_eq(admin_get(&bh, guarded[i], NULL, &r), 401);
        mg_test_assert_error(&r, 401, "invalid_admin_key");
        ck_assert_str_eq(mg_test_hdr(&r, "www-authenticate"), "Basic realm=\"modelgate\"");
        mg_test_resp_free(&r);
        ck_assert_int_eq(admin_get(&bh, guarded[i], "Authorization: Bearer wrong-key", &r), 401);
        mg_test_resp_free(&r);
        /* a client key is not the admin key */
        ck_assert_int_eq(admin_get(&bh, guarded[i], "Authorization: Bearer " KEY_K, &r), 401);
        mg_test_resp_free(&r);
        ck_assert_int_eq(admin_get(&bh, guarded[i], "Authorization: Bearer " ADMIN_KEY, &r), 200);
        mg_test_resp_free(&r);
    }
    /* Basic: any user, the admin key as password (what a browser sends for /status) */
    ck_assert_int_eq(admin_get(&bh, "/status", "Authorization: Basic "
                               "b3BzOmFkbWluLXNwZW5kLXRlc3QtMDEyMzQ1Njc4OQ==", &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "<html"));
    mg_test_resp_free(&r);
    ck_assert_int_eq(admin_get(&bh, "/status", "Authorization: Basic "
                               "OmFkbWluLXNwZW5kLXRlc3QtMDEyMzQ1Njc4OQ==", &r), 200);
    mg_test_resp_free(&r);
    ck_assert_int_eq(admin_get(&bh, "/status", "Authorization: Basic b3BzOndyb25n", &r), 401);
    mg_test_resp_free(&r);
    ck_assert_int_eq(admin_get(&bh, "/status", "Authorization: Basic !!!", &r), 401);
    mg_test_resp_free(&r);
    /* /healthz never needs it */
    ck_assert_int_eq(admin_get(&bh, "/healthz", NULL, &r), 200);
    mg_test_resp_free(&r);

    j = admin_json(&bh, "/admin/backends");
    ck_assert_int_eq(json_array_size(json_object_get(j, "backends")), 1);
    b = json_array_get(json_object_get(j, "backends"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(b, "name")), "a");
    ck_assert_str_eq(json_string_value(json_object_get(b, "schema")), "openai");
    ck_assert(json_is_true(json_object_get(b, "up")));
    ck_assert_int_ge(json_integer_value(json_object_get(b, "requests")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(b, "series"), "requests")),
                     90);
    ck_assert_ptr_null(json_object_get(b, "url"));
    json_decref(j);
}
END_TEST

static long
reset(const char *name, const char *ctype, const char *origin, struct mg_test_resp *r)
{
    char path[128], o[128];
    const char *hd[4] = {"Authorization: Bearer " ADMIN_KEY, ctype, NULL, NULL};

    if (origin != NULL) {
        snprintf(o, sizeof(o), "Origin: %s", origin);
        hd[ctype != NULL ? 2 : 1] = o;
    }
    snprintf(path, sizeof(path), "/admin/keys/%s/reset", name);
    mg_test_http("POST", mg_harness_url(&bh, path), "{}", 2, hd, r);
    return r->status;
}

START_TEST(reset_is_a_same_site_json_post)
{
    struct mg_test_resp r;
    char self[64], evil[64];
    json_t *j;

    snprintf(self, sizeof(self), "http://127.0.0.1:%d", bh.gw_port);
    snprintf(evil, sizeof(evil), "http://127.0.0.1:%d", bh.gw_port + 1);
    ck_assert_int_eq(chat_as(&bh, KEY_K, &r), 429);   /* spent (the test before) */
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("k", NULL, NULL, &r), 403);   /* a form's content type */
    mg_test_assert_error(&r, 403, "forbidden");
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("k", "Content-Type: application/x-www-form-urlencoded", NULL, &r),
                     403);
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("k", "Content-Type: application/json", "https://evil.example", &r),
                     403);
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("k", "Content-Type: application/json", evil, &r), 403);
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("k", "Content-Type: application/json", "null", &r), 403);
    mg_test_resp_free(&r);
    ck_assert_int_eq(reset("nobody", "Content-Type: application/json", NULL, &r), 404);
    mg_test_resp_free(&r);
    ck_assert_int_eq(admin_get(&bh, "/admin/keys/k/reset", "Authorization: Bearer " ADMIN_KEY,
                               &r), 405);
    ck_assert_str_eq(mg_test_hdr(&r, "allow"), "POST");
    mg_test_resp_free(&r);
    ck_assert_int_eq(chat_as(&bh, KEY_K, &r), 429);   /* nothing above reset anything */
    mg_test_resp_free(&r);

    ck_assert_int_eq(reset("k", "Content-Type: application/json; charset=utf-8", self, &r), 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "k");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "spent_usd")), 0);
    json_decref(j);
    mg_test_resp_free(&r);
    ck_assert_int_eq(log_count(bh.gw_log, "the spend of key k in its current window was reset",
                               1), 1);
    ck_assert_int_eq(chat_as(&bh, KEY_K, &r), 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"), "0.000700");
    mg_test_resp_free(&r);
}
END_TEST

/* ---- state_file ----------------------------------------------------------------------------- */

static struct mg_harness fh;
static char state_path[512], state_conf[2048];

/* The spend of k2 in the state file, or -1 when it does not parse as one. */
static long long
file_spend(void)
{
    json_t *j = json_load_file(state_path, 0, NULL), *w, *v;
    const char *name;
    long long n = -1;

    w = json_object_get(json_object_get(j, "spend"), "k2");
    if (json_integer_value(json_object_get(j, "version")) == 1 && json_is_object(w)) {
        n = 0;
        json_object_foreach(w, name, v) {
            n = json_integer_value(v);
        }
    }
    json_decref(j);
    return n;
}

static double
spent_now(void)
{
    json_t *j = admin_json(&fh, "/admin/keys");
    double v = json_real_value(json_object_get(json_object_get(key_named(j, "k2"), "budget"),
                                               "spent_usd"));

    json_decref(j);
    return v;
}

START_TEST(spend_survives_kill_and_restart_in_state_file)
{
    struct mg_test_resp r;
    int i, status = 0;
    pid_t pid;
    char bin[256], *argv[] = {bin, "-c", NULL, NULL};
    size_t len;
    char *log;
    FILE *f;

    mg_harness_init(&fh, "mgtest-spend-file-gw.log", "mgtest-spend-file-fake.log");
    mg_harness_fake(&fh, "a", NULL);
    if (getcwd(bin, sizeof(bin)) == NULL) {
        ck_abort_msg("getcwd");
    }
    snprintf(state_path, sizeof(state_path), "%s/spend-state.json", bin);
    unlink(state_path);
    snprintf(state_conf, sizeof(state_conf),
             "listen: 127.0.0.1:%d\n"
             "admin_key: " ADMIN_KEY "\n"
             "state_file: %s\n"
             "prices: {m: {input: 1.00, output: 10.00}}\n"
             "auth: {keys: [{name: k2, key: " KEY_K ", budget: {usd: 1, per: month}}]}\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: a}]}]\n",
             fh.gw_port, state_path, fh.fake_port[0]);
    mg_harness_start(&fh, 1, state_conf);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(chat_as(&fh, KEY_K, &r), 200);
        mg_test_resp_free(&r);
    }
    /* the timer writes within 10 s; kill -9 as soon as it did */
    for (i = 0; i < 150 * mg_test_scale() && access(state_path, F_OK) != 0; i++) {
        usleep(100000);
    }
    kill(fh.gw_pid, SIGKILL);
    waitpid(fh.gw_pid, &status, 0);
    ck_assert_msg(file_spend() == 420, "state file after kill -9: %lld", file_spend());

    mg_harness_start(&fh, 1, state_conf);
    ck_assert(spent_now() == 0.00042);
    ck_assert_int_eq(chat_as(&fh, KEY_K, &r), 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-budget-remaining-usd"), "0.999580");
    mg_test_resp_free(&r);
    /* a clean stop writes the last spend at once */
    ck_assert_int_eq(mg_test_stop(fh.gw_pid, 15000), 0);
    ck_assert_int_eq(file_spend(), 630);

    /* a damaged file stops the start, naming it; it is left as it was */
    f = fopen(state_path, "w");
    fputs("{\"version\":1,\"spend\":{\"k2\":", f);
    fclose(f);
    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    argv[2] = (char *)fh.conf_path;
    unlink(fh.gw_log);
    pid = mg_test_spawn(argv, fh.gw_log);
    for (i = 0; i < 500 && waitpid(pid, &status, WNOHANG) != pid; i++) {
        usleep(10000);
    }
    ck_assert_msg(i < 500, "modelgate started on a damaged state_file");
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    log = mg_test_slurp(fh.gw_log, &len);
    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, state_path) != NULL && strstr(log, "is damaged") != NULL, "%s",
                  log);
    free(log);
    ck_assert_int_eq(file_spend(), -1);
    mg_test_stop(fh.fake_pid[0], 5000);
    unlink(fh.conf_path);
}
END_TEST

Suite *
spend_suite(void)
{
    Suite *s = suite_create("spend");
    TCase *u = tcase_create("units"), *b = tcase_create("budget"), *f = tcase_create("file");

    tcase_add_test(u, usd_amounts_parse_exactly);
    tcase_add_test(u, cost_of_each_token_kind);
    tcase_add_test(u, prices_exact_before_prefix_and_backend_first);
    tcase_add_test(u, config_errors_and_warnings);
    tcase_add_test(u, usage_cache_counts);
    tcase_add_test(u, priced_example_loads);
    tcase_add_test(u, calendar_utc_windows);
    tcase_add_test(u, budget_reserve_cross_refuse_and_renew);
    tcase_add_test(u, state_file_round_trip_and_damage);
    suite_add_tcase(s, u);
    tcase_add_unchecked_fixture(b, start_budget, stop_budget);
    tcase_set_timeout(b, 60);
    tcase_add_test(b, budget_lets_the_crossing_request_finish_then_refuses);
    tcase_add_test(b, unpriced_model_warned_once);
    tcase_add_test(b, admin_endpoints_need_the_admin_key);
    tcase_add_test(b, reset_is_a_same_site_json_post);
    suite_add_tcase(s, b);
    tcase_set_timeout(f, 90);
    tcase_add_test(f, spend_survives_kill_and_restart_in_state_file);
    suite_add_tcase(s, f);
    return s;
}
