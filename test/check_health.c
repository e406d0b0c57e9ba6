/*
 * Unit tests of passive health with an injected clock: counting, cooldown lengths, Retry-After,
 * the single probe (also under threads), claim expiry, the registry.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "mg_health.h"
#include "mg_test.h"

/* Each test's own registry, as a runtime holds one. */
static struct mg_health_registry *reg;

/* A fresh state per test: names are never reused within a process (CK_FORK=no runs them all). */
static struct mg_health *
fresh(void)
{
    static int n;
    char name[32];

    snprintf(name, sizeof(name), "backend-%d", n++);
    return mg_health_get(reg, name);
}

static void
setup(void)
{
    reg = mg_health_registry_create();
}

static void
teardown(void)
{
    mg_health_registry_destroy(reg);
    reg = NULL;
}

/* Fails st until it cools: returns the cooldown it got. */
static int64_t
cool(struct mg_health *st, const struct mg_health_conf *c, int64_t now)
{
    int i;

    for (i = 0; i < c->failures && mg_health_up(st); i++) {
        mg_health_failure(st, c, now);
    }
    return mg_health_cooldown_left(st, now);
}

START_TEST(registry_keeps_one_state_per_name)
{
    struct mg_health *a = mg_health_get(reg, "openai"), *b = mg_health_get(reg, "local");
    struct mg_health_conf c = {1, 1000, 8000, 0};

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(mg_health_get(reg, "openai"), a);
    ck_assert_str_eq(mg_health_name(a), "openai");
    ck_assert_str_eq(mg_health_name(b), "local");
    /* What a reload would see: the same state, cooldown included. */
    ck_assert_int_eq(mg_health_failure(a, &c, 5), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_up(mg_health_get(reg, "openai")), 0);
    ck_assert_int_eq(mg_health_up(b), 1);
}
END_TEST

static void
count_one(struct mg_health *st, void *arg)
{
    (void)st;
    (*(int *)arg)++;
}

START_TEST(foreach_visits_every_state)
{
    int n = 0;

    mg_health_get(reg, "x");
    mg_health_get(reg, "y");
    mg_health_get(reg, "x");
    mg_health_foreach(reg, count_one, &n);
    ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(failures_in_a_row_start_exact_cooldown)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {3, 10000, 300000, 0};

    ck_assert_int_eq(mg_health_failure(st, &c, 1000), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_failure(st, &c, 1001), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_up(st), 1);
    ck_assert_int_eq(mg_health_cooling(st, 1001), 0);
    ck_assert_uint_eq(mg_health_cooldowns(st), 0);

    ck_assert_int_eq(mg_health_failure(st, &c, 2000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_up(st), 0);
    ck_assert_uint_eq(mg_health_cooldowns(st), 1);
    ck_assert_int_eq(mg_health_cooldown_left(st, 2000), 10000);
    ck_assert_int_eq(mg_health_cooling(st, 2000), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_cooling(st, 11999), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_try_probe(st, 11999, NULL), 0);
    ck_assert_int_eq(mg_health_cooling(st, 12000), MG_HEALTH_PROBE_DUE);
}
END_TEST

START_TEST(success_between_failures_resets_count)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {3, 10000, 300000, 0};

    mg_health_failure(st, &c, 1);
    mg_health_failure(st, &c, 2);
    ck_assert_int_eq(mg_health_success(st, &c, 3), MG_HEALTH_SAME);
    mg_health_failure(st, &c, 4);
    ck_assert_int_eq(mg_health_failure(st, &c, 5), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_up(st), 1);
    ck_assert_int_eq(mg_health_failure(st, &c, 6), MG_HEALTH_WENT_DOWN);
}
END_TEST

START_TEST(failures_zero_never_counts)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {0, 10000, 300000, 0};
    int i;

    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(mg_health_failure(st, &c, i), MG_HEALTH_SAME);
    }
    ck_assert_int_eq(mg_health_up(st), 1);
    ck_assert_uint_eq(mg_health_cooldowns(st), 0);
}
END_TEST

START_TEST(failed_probes_double_up_to_the_cap)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {2, 10000, 35000, 0};
    int64_t t = 500, want[] = {20000, 35000, 35000};
    size_t i;

    ck_assert_int_eq(cool(st, &c, t), 10000);
    for (i = 0; i < MG_ARRAY_LEN(want); i++) {
        t += mg_health_cooldown_left(st, t);
        ck_assert_int_eq(mg_health_try_probe(st, t, NULL), 1);
        /* The probe's failure starts the next cooldown at once: no counting to `failures`. */
        ck_assert_int_eq(mg_health_failure(st, &c, t + 7), MG_HEALTH_AGAIN);
        ck_assert_int_eq(mg_health_cooldown_left(st, t + 7), want[i]);
        ck_assert_int_eq(mg_health_up(st), 0);
        t += 7;
    }
    ck_assert_uint_eq(mg_health_cooldowns(st), 4);

    /* A successful probe ends the streak: the next cooldown is `cooldown` again. */
    t += mg_health_cooldown_left(st, t);
    ck_assert_int_eq(mg_health_try_probe(st, t, NULL), 1);
    ck_assert_int_eq(mg_health_success(st, &c, t + 1), MG_HEALTH_CAME_UP);
    ck_assert_int_eq(mg_health_up(st), 1);
    ck_assert_int_eq(mg_health_cooling(st, t + 1), 0);
    ck_assert_int_eq(mg_health_failure(st, &c, t + 2), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_failure(st, &c, t + 3), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(st, t + 3), 10000);
    ck_assert_uint_eq(mg_health_cooldowns(st), 5);
}
END_TEST

START_TEST(doubling_does_not_overflow)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 1, (int64_t)1 << 36, 0};
    int64_t t = 0, len = 1;
    int i;

    mg_health_failure(st, &c, t);
    for (i = 0; i < 80; i++) {
        ck_assert_int_eq(mg_health_cooldown_left(st, t), len);
        t += len;
        ck_assert_int_eq(mg_health_try_probe(st, t, NULL), 1);
        mg_health_failure(st, &c, t);
        len = len * 2 > c.max_cooldown_ms ? c.max_cooldown_ms : len * 2;
    }
    ck_assert_int_eq(len, c.max_cooldown_ms);
}
END_TEST

START_TEST(outcomes_during_cooldown_are_ignored)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 10000, 300000, 0};

    mg_health_failure(st, &c, 0);
    /* Attempts that were under way, or ranked last, report during the cooldown. */
    ck_assert_int_eq(mg_health_failure(st, &c, 100), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_success(st, &c, 200), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_up(st), 0);
    ck_assert_int_eq(mg_health_cooldown_left(st, 200), 9800);
    ck_assert_uint_eq(mg_health_cooldowns(st), 1);
    /* After it, the first outcome counts even without a probe claim. */
    ck_assert_int_eq(mg_health_success(st, &c, 10000), MG_HEALTH_CAME_UP);
}
END_TEST

START_TEST(retry_after_cools_at_once_and_is_capped)
{
    struct mg_health *st = fresh(), *st2 = fresh();
    struct mg_health_conf c = {0, 10000, 60000, 0};

    /* failures: 0 turns counting off, not Retry-After. */
    ck_assert_int_eq(mg_health_retry_after(st, &c, 100, 5000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(st, 100), 5000);
    ck_assert_uint_eq(mg_health_cooldowns(st), 1);
    /* A longer one extends the running cooldown, capped, without starting a new one. */
    ck_assert_int_eq(mg_health_retry_after(st, &c, 1100, 3600000), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_cooldown_left(st, 1100), 60000);
    ck_assert_int_eq(mg_health_retry_after(st, &c, 1200, 1000), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_cooldown_left(st, 1200), 59900);
    ck_assert_uint_eq(mg_health_cooldowns(st), 1);

    ck_assert_int_eq(mg_health_retry_after(st2, &c, 0, 999999999), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(st2, 0), 60000);
    /* Retry-After of 0 is a plain failure, which counts for nothing here. */
    ck_assert_int_eq(mg_health_retry_after(st2, &c, 60000, 0), MG_HEALTH_SAME);
}
END_TEST

START_TEST(retry_after_versus_counted_cooldown)
{
    struct mg_health *a = fresh(), *b = fresh(), *d = fresh();
    struct mg_health_conf c = {2, 10000, 300000, 0};

    /* Below the count, a Retry-After cooldown is exactly its length. */
    ck_assert_int_eq(mg_health_retry_after(a, &c, 0, 2000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(a, 0), 2000);
    /* ... and does not advance the doubling: a failed probe then gets `cooldown`. */
    ck_assert_int_eq(mg_health_try_probe(a, 2000, NULL), 1);
    ck_assert_int_eq(mg_health_failure(a, &c, 2000), MG_HEALTH_AGAIN);
    ck_assert_int_eq(mg_health_cooldown_left(a, 2000), 10000);

    /* When it is also the failure that reaches the count, the longer cooldown wins. */
    mg_health_failure(b, &c, 0);
    ck_assert_int_eq(mg_health_retry_after(b, &c, 1, 2000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(b, 1), 10000);
    mg_health_failure(d, &c, 0);
    ck_assert_int_eq(mg_health_retry_after(d, &c, 1, 30000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(d, 1), 30000);
    /* A failed probe's Retry-After longer than the doubled length wins as well. */
    ck_assert_int_eq(mg_health_try_probe(d, 30001, NULL), 1);
    ck_assert_int_eq(mg_health_retry_after(d, &c, 30001, 45000), MG_HEALTH_AGAIN);
    ck_assert_int_eq(mg_health_cooldown_left(d, 30001), 45000);
}
END_TEST

START_TEST(one_probe_among_many_callers)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 10000, 300000, 0};
    int i, granted = 0;

    mg_health_failure(st, &c, 0);
    for (i = 0; i < 100; i++) {
        granted += mg_health_try_probe(st, 10000 + i, NULL);
    }
    ck_assert_int_eq(granted, 1);
    /* The others keep treating it as cooling until the probe reports. */
    ck_assert_int_eq(mg_health_cooling(st, 10100), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_up(st), 0);
    ck_assert_int_eq(mg_health_success(st, &c, 10200), MG_HEALTH_CAME_UP);
    ck_assert_int_eq(mg_health_cooling(st, 10200), 0);
    ck_assert_int_eq(mg_health_try_probe(st, 10200, NULL), 0);    /* up: nothing to probe */
    ck_assert_int_eq(mg_health_success(st, &c, 10300), MG_HEALTH_SAME);
}
END_TEST

START_TEST(probe_claim_expires_and_can_be_given_back)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 10000, 300000, 0};
    int64_t t = 10000, first, second;

    mg_health_failure(st, &c, 0);
    ck_assert_int_eq(mg_health_try_probe(st, t, &first), 1);
    /* The probe's client went away: nobody reports. The claim holds for the TTL, no longer. */
    ck_assert_int_eq(mg_health_try_probe(st, t + MG_HEALTH_PROBE_TTL_MS - 1, NULL), 0);
    ck_assert_int_eq(mg_health_cooling(st, t + MG_HEALTH_PROBE_TTL_MS - 1), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_cooling(st, t + MG_HEALTH_PROBE_TTL_MS), MG_HEALTH_PROBE_DUE);
    t += MG_HEALTH_PROBE_TTL_MS;
    ck_assert_int_eq(mg_health_try_probe(st, t, &second), 1);
    ck_assert_int_ne(second, first);
    ck_assert_int_eq(mg_health_try_probe(st, t, NULL), 0);

    /* The expired claim's owner gives it back late: the probe out now is another's, and stays. */
    mg_health_probe_cancel(st, first, t + 5);
    ck_assert_int_eq(mg_health_cooling(st, t + 5), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_try_probe(st, t + 5, NULL), 0);

    /* A request that claimed the probe but never tried the backend gives it back. */
    mg_health_probe_cancel(st, second, t + 5);
    ck_assert_int_eq(mg_health_cooling(st, t + 5), MG_HEALTH_PROBE_DUE);
    ck_assert_int_eq(mg_health_try_probe(st, t + 5, NULL), 1);
    /* Cancelling leaves the cooldown counters alone and never brings the backend up. */
    ck_assert_int_eq(mg_health_up(st), 0);
    ck_assert_uint_eq(mg_health_cooldowns(st), 1);
    /* A late report of an expired claim still counts. */
    ck_assert_int_eq(mg_health_failure(st, &c, t + 6), MG_HEALTH_AGAIN);
    ck_assert_int_eq(mg_health_cooldown_left(st, t + 6), 20000);
}
END_TEST

START_TEST(only_the_claims_owner_gives_it_back)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 10000, 300000, 0};
    int64_t t = 10000, t2 = t + MG_HEALTH_PROBE_TTL_MS, first = 0, second = 0;

    mg_health_failure(st, &c, 0);
    ck_assert_int_eq(mg_health_try_probe(st, t, &first), 1);
    /* The first claim expires unreported; a second request wins the next one. */
    ck_assert_int_eq(mg_health_try_probe(st, t2, &second), 1);
    /* The first request ends late without trying the backend: the claim it gives back is not
     * the one that holds now, so no third request probes beside the second. */
    mg_health_probe_cancel(st, first, t2 + 5);
    ck_assert_int_eq(mg_health_cooling(st, t2 + 5), MG_HEALTH_COOLING);
    ck_assert_int_eq(mg_health_try_probe(st, t2 + 5, NULL), 0);
    /* The owner's own give-back still works. */
    mg_health_probe_cancel(st, second, t2 + 6);
    ck_assert_int_eq(mg_health_cooling(st, t2 + 6), MG_HEALTH_PROBE_DUE);
    ck_assert_int_eq(mg_health_try_probe(st, t2 + 6, NULL), 1);
}
END_TEST

START_TEST(failed_probe_without_counting_lets_the_next_probe)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {0, 10000, 60000, 0};

    mg_health_retry_after(st, &c, 0, 3000);
    ck_assert_int_eq(mg_health_try_probe(st, 3000, NULL), 1);
    /* A 500 with counting off: no cooldown, the claim is released, the next request probes. */
    ck_assert_int_eq(mg_health_failure(st, &c, 3100), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_up(st), 0);
    ck_assert_int_eq(mg_health_cooling(st, 3100), MG_HEALTH_PROBE_DUE);
    ck_assert_int_eq(mg_health_try_probe(st, 3100, NULL), 1);
    ck_assert_int_eq(mg_health_success(st, &c, 3200), MG_HEALTH_CAME_UP);
}
END_TEST

/*
 * Active checks: none while up; the first one check_interval after the cooldown started, then
 * one per interval (one caller each time); a further cooldown of the same streak keeps the
 * schedule; a 2xx check brings the backend up at once, in the middle of its cooldown.
 */
START_TEST(active_checks_claimed_once_per_interval)
{
    struct mg_health *st = fresh();
    struct mg_health_conf c = {1, 10000, 30000, 500};

    ck_assert_int_eq(mg_health_check_claim(st, 0, 500), 0);        /* up: never a check */
    ck_assert_int_eq(mg_health_check_ok(st, 0), MG_HEALTH_SAME);
    ck_assert_int_eq(mg_health_failure(st, &c, 1000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_check_claim(st, 1000, 500), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 1499, 500), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 1500, 500), 1);
    ck_assert_int_eq(mg_health_check_claim(st, 1500, 500), 0);     /* one caller a time */
    ck_assert_int_eq(mg_health_check_claim(st, 1999, 500), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 2000, 500), 1);
    ck_assert_int_eq(mg_health_check_claim(st, 2000, 0), 0);       /* checks off */
    /* a failed check changes nothing: still cooling until 11000 */
    ck_assert_int_eq(mg_health_cooling(st, 2100), MG_HEALTH_COOLING);
    /* a reload that shortens the interval brings the next check closer */
    ck_assert_int_eq(mg_health_check_claim(st, 2100, 100), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 2200, 100), 1);
    ck_assert_int_eq(mg_health_check_ok(st, 2300), MG_HEALTH_CAME_UP);
    ck_assert_int_eq(mg_health_up(st), 1);
    ck_assert_int_eq(mg_health_cooling(st, 2300), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 5000, 500), 0);
    /* the streak was reset: the next failure starts the first cooldown again, 10 s */
    ck_assert_int_eq(mg_health_failure(st, &c, 6000), MG_HEALTH_WENT_DOWN);
    ck_assert_int_eq(mg_health_cooldown_left(st, 6000), 10000);
    ck_assert_int_eq(mg_health_check_claim(st, 6499, 500), 0);
    ck_assert_int_eq(mg_health_check_claim(st, 6500, 500), 1);
    /* a check that succeeds while a passive probe is out also ends it */
    ck_assert_int_eq(mg_health_try_probe(st, 16000, NULL), 1);
    ck_assert_int_eq(mg_health_check_ok(st, 16100), MG_HEALTH_CAME_UP);
    ck_assert_int_eq(mg_health_try_probe(st, 16200, NULL), 0);
}
END_TEST

/*
 * Threads hammering try_probe on one state, round after round; every round must have exactly one
 * winner. The threads meet at a spinning barrier (a sleeping one wakes them one after another,
 * microseconds apart): the last to arrive releases the round, so threads on different CPUs reach
 * the claim at the same instant. The winner reports the probe's failure, which starts a cooldown
 * that ends as the next round begins. Rounds run for up to ROUNDS_MS of wall time (a few hundred
 * under valgrind, thousands natively); a claim made by load and store fails here within seconds.
 */
#define NTHREADS  8
#define ROUNDS    100000
#define ROUNDS_MS 1500
#define CALLS     20

struct race {
    struct mg_health      *st;
    struct mg_health_conf  conf;
    int64_t                t0;          /* wall clock at the start, to bound the run */
    atomic_int             arrived;     /* threads arrived at round barriers, in total */
    atomic_int             last;        /* the last round released */
    atomic_int             wins[ROUNDS + 1];
};

static void *
racer_main(void *arg)
{
    struct race *r = arg;
    int round, i, spins;
    int64_t now;

    for (round = 1; round <= ROUNDS; round++) {
        if (atomic_fetch_add(&r->arrived, 1) + 1 == round * NTHREADS) {
            if (mg_now_ms() - r->t0 > ROUNDS_MS) {
                atomic_store(&r->last, -round);     /* out of time: nobody plays this round */
            } else {
                atomic_store(&r->last, round);
            }
        }
        for (spins = 0; atomic_load(&r->last) != round && atomic_load(&r->last) != -round;
             spins++) {
            if (spins % 256 == 255) {
                sched_yield();      /* more threads than CPUs: let the others arrive */
            }
        }
        if (atomic_load(&r->last) < 0) {
            break;
        }
        now = (int64_t)round * 1000;    /* the last cooldown (1 s) ends now */
        for (i = 0; i < CALLS; i++) {
            if (mg_health_try_probe(r->st, now, NULL)) {
                atomic_fetch_add(&r->wins[round], 1);
                mg_health_failure(r->st, &r->conf, now);    /* the probe failed: cool again */
            }
        }
    }
    return NULL;
}

START_TEST(threads_get_exactly_one_probe)
{
    static struct race r;
    pthread_t th[NTHREADS];
    int i, rounds, wins;

    r.st = fresh();
    r.conf.failures = 1;
    r.conf.cooldown_ms = 1000;
    r.conf.max_cooldown_ms = 1000;
    r.t0 = mg_now_ms();
    atomic_init(&r.arrived, 0);
    atomic_init(&r.last, 0);
    for (i = 0; i <= ROUNDS; i++) {
        atomic_init(&r.wins[i], 0);
    }
    mg_health_failure(r.st, &r.conf, 0);
    for (i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, racer_main, &r), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    rounds = atomic_load(&r.last) < 0 ? -atomic_load(&r.last) - 1 : ROUNDS;
    ck_assert_int_ge(rounds, 50);
    for (i = 1; i <= rounds; i++) {
        wins = atomic_load(&r.wins[i]);
        ck_assert_msg(wins == 1, "round %d: %d probes granted", i, wins);
    }
    ck_assert_uint_eq(mg_health_cooldowns(r.st), (uint64_t)rounds + 1);
}
END_TEST

Suite *
health_suite(void)
{
    Suite *s = suite_create("health");
    TCase *t = tcase_create("passive");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, registry_keeps_one_state_per_name);
    tcase_add_test(t, foreach_visits_every_state);
    tcase_add_test(t, failures_in_a_row_start_exact_cooldown);
    tcase_add_test(t, success_between_failures_resets_count);
    tcase_add_test(t, failures_zero_never_counts);
    tcase_add_test(t, failed_probes_double_up_to_the_cap);
    tcase_add_test(t, doubling_does_not_overflow);
    tcase_add_test(t, outcomes_during_cooldown_are_ignored);
    tcase_add_test(t, retry_after_cools_at_once_and_is_capped);
    tcase_add_test(t, retry_after_versus_counted_cooldown);
    tcase_add_test(t, one_probe_among_many_callers);
    tcase_add_test(t, probe_claim_expires_and_can_be_given_back);
    tcase_add_test(t, only_the_claims_owner_gives_it_back);
    tcase_add_test(t, failed_probe_without_counting_lets_the_next_probe);
    tcase_add_test(t, active_checks_claimed_once_per_interval);
    tcase_add_test(t, threads_get_exactly_one_probe);
    tcase_set_timeout(t, 30);
    suite_add_tcase(s, t);
    return s;
}
