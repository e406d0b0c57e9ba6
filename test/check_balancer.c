/* Unit tests: priority tiers, weighted order, weight 0, retries. */
#include <string.h>

#include "mg_balancer.h"
#include "mg_test.h"

static struct mg_rule_backend entries[8];
static struct mg_rule rule;

static void
set(size_t n, const unsigned *weights, const int *prios, int retries)
{
    size_t i;

    memset(entries, 0, sizeof(entries));
    memset(&rule, 0, sizeof(rule));
    for (i = 0; i < n; i++) {
        entries[i].backend = i;
        entries[i].weight = weights[i];
        entries[i].priority = prios[i];
    }
    rule.backends = entries;
    rule.nbackends = n;
    rule.retries = retries;
}

START_TEST(priority_tiers_in_order)
{
    unsigned w[] = {1, 1, 1, 1};
    int pr[] = {2, 0, 1, 0};
    size_t out[8], n;
    uint64_t rng = 42;
    int i;

    set(4, w, pr, 3);
    for (i = 0; i < 200; i++) {
        n = mg_balancer_order(&rule, &rng, out, 8);
        ck_assert_uint_eq(n, 4);
        /* tier 0 = entries 1 and 3 (either order), then 2, then 0 */
        ck_assert((out[0] == 1 && out[1] == 3) || (out[0] == 3 && out[1] == 1));
        ck_assert_uint_eq(out[2], 2);
        ck_assert_uint_eq(out[3], 0);
    }
}
END_TEST

START_TEST(weights_distribution)
{
    unsigned w[] = {3, 1};
    int pr[] = {0, 0};
    size_t out[8];
    uint64_t rng = 7;
    int i, first0 = 0, runs = 20000;

    set(2, w, pr, 1);
    for (i = 0; i < runs; i++) {
        ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 8), 2);
        ck_assert_uint_ne(out[0], out[1]);
        first0 += out[0] == 0;
    }
    /* 75% expected; 20000 draws put 3 sigma at about 0.9% */
    ck_assert_msg(first0 > runs * 73 / 100 && first0 < runs * 77 / 100, "first0=%d", first0);
}
END_TEST

START_TEST(weight_zero_disabled)
{
    unsigned w[] = {0, 5, 0};
    int pr[] = {0, 1, 0};
    size_t out[8];
    uint64_t rng = 1;

    set(3, w, pr, 0);
    ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 8), 1);
    ck_assert_uint_eq(out[0], 1);
    w[1] = 0;
    set(3, w, pr, 2);
    ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 8), 0);
}
END_TEST

START_TEST(retries_bound_and_repeat)
{
    unsigned w[] = {1, 1, 1};
    int pr[] = {0, 1, 2};
    size_t out[8];
    uint64_t rng = 3;

    set(3, w, pr, 1);
    ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 8), 2);
    ck_assert_uint_eq(out[0], 0);
    ck_assert_uint_eq(out[1], 1);
    set(3, w, pr, 4);   /* more attempts than entries: the order repeats */
    ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 8), 5);
    ck_assert_uint_eq(out[3], 0);
    ck_assert_uint_eq(out[4], 1);
    ck_assert_uint_eq(mg_balancer_order(&rule, &rng, out, 2), 2);
}
END_TEST

START_TEST(seeded_is_reproducible)
{
    unsigned w[] = {1, 2, 3, 4};
    int pr[] = {0, 0, 0, 0};
    size_t a[8], b[8];
    uint64_t r1 = 99, r2 = 99;
    int i;

    set(4, w, pr, 3);
    for (i = 0; i < 50; i++) {
        mg_balancer_order(&rule, &r1, a, 8);
        mg_balancer_order(&rule, &r2, b, 8);
        ck_assert_int_eq(memcmp(a, b, sizeof(size_t) * 4), 0);
    }
}
END_TEST

Suite *
balancer_suite(void)
{
    Suite *s = suite_create("balancer");
    TCase *t = tcase_create("order");

    tcase_add_test(t, priority_tiers_in_order);
    tcase_add_test(t, weights_distribution);
    tcase_add_test(t, weight_zero_disabled);
    tcase_add_test(t, retries_bound_and_repeat);
    tcase_add_test(t, seeded_is_reproducible);
    suite_add_tcase(s, t);
    return s;
}
