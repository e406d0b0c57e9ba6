/*
 * Unit tests of the conversation store (mg_resp_store): byte accounting, LRU order, ttl from
 * creation (time passed in), the size / 8 refusal, key isolation, native ids, a reader's entry
 * against eviction and delete, reconfiguration, and many threads at once.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_resp_store.h"
#include "mg_test.h"

#define KB 1024

static struct mg_resp_store *
store_of(uint64_t size, int64_t ttl)
{
    struct mg_resp_store *s = mg_resp_store_create("local");

    ck_assert_ptr_nonnull(s);
    mg_resp_store_configure(s, size, ttl, 0);
    return s;
}

/* A put of a response of n bytes ('x') under id, key "k", model "m", history "[]". */
static int
put_n(struct mg_resp_store *s, const char *id, const char *key, size_t n, int64_t now)
{
    char *r = mg_malloc(n + 1);
    int rc;

    memset(r, 'x', n);
    r[n] = '\0';
    rc = mg_resp_store_put(s, id, key, "m", r, n, "[]", 2, now);
    free(r);
    return rc;
}

static int
has(struct mg_resp_store *s, const char *id, const char *key, int64_t now)
{
    const struct mg_resp_entry *e = mg_resp_store_get(s, id, key, now);

    mg_resp_entry_unref(e);
    return e != NULL;
}

static struct mg_resp_store_stats
stats(struct mg_resp_store *s)
{
    struct mg_resp_store_stats st;

    mg_resp_store_stats(s, &st);
    return st;
}

START_TEST(kinds)
{
    ck_assert_ptr_null(mg_resp_store_create("redis-later"));
    ck_assert_ptr_null(mg_resp_store_create(NULL));
    mg_resp_store_destroy(NULL);
    mg_resp_entry_unref(NULL);
}
END_TEST

START_TEST(put_get_roundtrip)
{
    struct mg_resp_store *s = store_of(64 * KB, 0);
    const char *resp = "{\"id\":\"resp_mg1\",\"object\":\"response\"}";
    const struct mg_resp_entry *e;
    struct mg_resp_store_stats st;

    ck_assert_int_eq(mg_resp_store_put(s, "resp_mg1", "alice", "gpt-x", resp, strlen(resp),
                                       "[{\"role\":\"user\"}]", 17, 5), MG_OK);
    e = mg_resp_store_get(s, "resp_mg1", "alice", 6);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->id, "resp_mg1");
    ck_assert_str_eq(e->key_name, "alice");
    ck_assert_str_eq(e->model, "gpt-x");
    ck_assert_str_eq(e->response, resp);
    ck_assert_uint_eq(e->response_len, strlen(resp));
    ck_assert_str_eq(e->history, "[{\"role\":\"user\"}]");
    ck_assert_uint_eq(e->history_len, 17);
    ck_assert_int_eq(e->created, 5);
    mg_resp_entry_unref(e);
    st = stats(s);
    ck_assert_uint_eq(st.size, 64 * KB);
    ck_assert_uint_eq(st.responses, 1);
    ck_assert_uint_eq(st.natives, 0);
    ck_assert_uint_eq(st.bytes, mg_resp_entry_bytes(8, 5, 5, strlen(resp), 17));
    ck_assert_uint_eq(st.bytes, 8 + 5 + 5 + strlen(resp) + 17 + 5 + MG_RESP_STORE_OVERHEAD);
    /* unknown id, NULL arguments */
    ck_assert_ptr_null(mg_resp_store_get(s, "resp_mg2", "alice", 6));
    ck_assert_ptr_null(mg_resp_store_get(s, NULL, "alice", 6));
    ck_assert_int_eq(mg_resp_store_put(s, "a", NULL, "m", "{}", 2, "[]", 2, 0), MG_ERR);
    ck_assert_int_eq(mg_resp_store_put(s, "a", "k", "m", NULL, 0, "[]", 2, 0), MG_ERR);
    /* delete */
    ck_assert_int_eq(mg_resp_store_del(s, "resp_mg1", "alice", 7), MG_OK);
    ck_assert_int_eq(mg_resp_store_del(s, "resp_mg1", "alice", 7), MG_ERR);
    ck_assert(!has(s, "resp_mg1", "alice", 7));
    st = stats(s);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.responses, 0);
    ck_assert_uint_eq(st.evicted_lru + st.evicted_ttl, 0);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(binary_and_replace)
{
    struct mg_resp_store *s = store_of(64 * KB, 0);
    const struct mg_resp_entry *e;

    /* lengths are kept: a NUL inside is stored too */
    ck_assert_int_eq(mg_resp_store_put(s, "r", "k", "m", "a\0b", 3, "", 0, 0), MG_OK);
    ck_assert_int_eq(mg_resp_store_put(s, "r", "k", "m2", "{}", 2, "[1]", 3, 1), MG_OK);
    ck_assert_uint_eq(stats(s).responses, 1);
    ck_assert_uint_eq(stats(s).bytes, mg_resp_entry_bytes(1, 1, 2, 2, 3));
    e = mg_resp_store_get(s, "r", "k", 1);
    ck_assert_str_eq(e->model, "m2");
    ck_assert_str_eq(e->history, "[1]");
    mg_resp_entry_unref(e);
    ck_assert_int_eq(mg_resp_store_put(s, "z", "k", "m", "a\0b", 3, "", 0, 0), MG_OK);
    e = mg_resp_store_get(s, "z", "k", 1);
    ck_assert_uint_eq(e->response_len, 3);
    ck_assert_int_eq(memcmp(e->response, "a\0b", 4), 0);
    mg_resp_entry_unref(e);
    ck_assert_uint_eq(stats(s).evicted_lru, 0);
    mg_resp_store_destroy(s);
}
END_TEST

/* Entries of 1 KiB of response: each counts this much. */
#define ONE mg_resp_entry_bytes(2, 1, 1, KB, 2)

START_TEST(lru_order)
{
    /* room for exactly 10 entries */
    struct mg_resp_store *s = store_of(10 * ONE, 0);
    char id[8];
    int i;

    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(put_n(s, id, "k", KB, i), MG_OK);
    }
    ck_assert_uint_eq(stats(s).bytes, 10 * ONE);
    ck_assert_uint_eq(stats(s).evicted_lru, 0);
    /* r0 and r2 used: r1 is now the least recently used, then r3 */
    ck_assert(has(s, "r0", "k", 10));
    ck_assert(has(s, "r2", "k", 10));
    ck_assert_int_eq(put_n(s, "ra", "k", KB, 11), MG_OK);
    ck_assert(!has(s, "r1", "k", 12));
    ck_assert(has(s, "r0", "k", 12));
    ck_assert_int_eq(put_n(s, "rb", "k", KB, 13), MG_OK);
    ck_assert(!has(s, "r3", "k", 14));
    ck_assert(has(s, "r4", "k", 14));
    ck_assert_uint_eq(stats(s).evicted_lru, 2);
    ck_assert_uint_eq(stats(s).responses, 10);
    ck_assert_uint_le(stats(s).bytes, 10 * ONE);
    /* a delete of an existing id gives room back: no eviction for the next put */
    ck_assert_int_eq(mg_resp_store_del(s, "r5", "k", 15), MG_OK);
    ck_assert_int_eq(put_n(s, "rc", "k", KB, 16), MG_OK);
    ck_assert_uint_eq(stats(s).evicted_lru, 2);
    /* a get of another key's id is not a use: r6 stays the least recently used of the rest */
    ck_assert(!has(s, "r6", "other", 17));
    ck_assert_int_eq(put_n(s, "rd", "k", KB, 18), MG_OK);
    ck_assert(!has(s, "r6", "k", 19));
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(ttl_from_creation)
{
    struct mg_resp_store *s = store_of(64 * KB, 1000);
    struct mg_resp_store_stats st;
    char be[32];

    ck_assert_int_eq(put_n(s, "a", "k", 10, 0), MG_OK);
    ck_assert_int_eq(put_n(s, "b", "k", 10, 500), MG_OK);
    ck_assert_int_eq(mg_resp_store_record(s, "resp_nat", "openai-1", "k", 600), MG_OK);
    /* uses do not extend the life: ttl runs from creation */
    ck_assert(has(s, "a", "k", 999));
    ck_assert(has(s, "a", "k", 999));
    ck_assert(!has(s, "a", "k", 1000));
    ck_assert(has(s, "b", "k", 1000));
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_nat", "k", 1599, be, sizeof(be)), MG_OK);
    ck_assert_str_eq(be, "openai-1");
    ck_assert(!has(s, "b", "k", 1500));
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_nat", "k", 1600, be, sizeof(be)), MG_ERR);
    ck_assert_str_eq(be, "");
    st = stats(s);
    ck_assert_uint_eq(st.evicted_ttl, 3);
    ck_assert_uint_eq(st.evicted_lru, 0);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.responses + st.natives, 0);
    /* an expired entry cannot be deleted (404) */
    ck_assert_int_eq(put_n(s, "c", "k", 10, 2000), MG_OK);
    ck_assert_int_eq(mg_resp_store_del(s, "c", "k", 3000), MG_ERR);
    /* expired entries go at the next put even unread */
    ck_assert_int_eq(put_n(s, "d", "k", 10, 3000), MG_OK);
    ck_assert_int_eq(put_n(s, "e", "k", 10, 4500), MG_OK);
    ck_assert_uint_eq(stats(s).responses, 1);
    ck_assert_uint_eq(stats(s).evicted_ttl, 5);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(no_ttl)
{
    struct mg_resp_store *s = store_of(64 * KB, 0);

    ck_assert_int_eq(put_n(s, "a", "k", 10, 0), MG_OK);
    ck_assert(has(s, "a", "k", INT64_MAX / 2));
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(size_eighth_refused)
{
    uint64_t size = 64 * KB;
    struct mg_resp_store *s = store_of(size, 0);
    /* the largest response that fits size / 8 exactly, with id "r", key "k", model "m", "[]" */
    size_t max = (size_t)(size / 8 - mg_resp_entry_bytes(1, 1, 1, 0, 2));
    const struct mg_resp_entry *e;

    ck_assert_int_eq(put_n(s, "r", "k", max, 0), MG_OK);
    ck_assert_int_eq(put_n(s, "s", "k", max + 1, 0), MG_ETOOBIG);
    ck_assert(!has(s, "s", "k", 0));
    ck_assert_uint_eq(stats(s).refused, 1);
    /* a refused put leaves an earlier entry of the same id alone */
    ck_assert_int_eq(put_n(s, "r", "k", max + 1, 1), MG_ETOOBIG);
    e = mg_resp_store_get(s, "r", "k", 1);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->response_len, max);
    mg_resp_entry_unref(e);
    /* names are capped */
    {
        char big[MG_RESP_STORE_NAME_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ck_assert_int_eq(put_n(s, big, "k", 1, 0), MG_ETOOBIG);
        ck_assert_int_eq(mg_resp_store_put(s, "x", big, "m", "{}", 2, "", 0, 0), MG_ETOOBIG);
        ck_assert_int_eq(mg_resp_store_record(s, "x", big, "k", 0), MG_ETOOBIG);
        big[sizeof(big) - 2] = '\0';    /* exactly the cap */
        ck_assert_int_eq(mg_resp_store_record(s, big, "b", "k", 0), MG_OK);
    }
    ck_assert_uint_eq(stats(s).refused, 5);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(store_off)
{
    struct mg_resp_store *s = mg_resp_store_create("local");
    char be[16];

    /* off until configured, and with size 0 */
    ck_assert_int_eq(put_n(s, "a", "k", 1, 0), MG_ETOOBIG);
    ck_assert_int_eq(mg_resp_store_record(s, "n", "b", "k", 0), MG_ETOOBIG);
    ck_assert_int_eq(mg_resp_store_lookup(s, "n", "k", 0, be, sizeof(be)), MG_ERR);
    mg_resp_store_configure(s, 64 * KB, 0, 0);
    ck_assert_int_eq(put_n(s, "a", "k", 1, 0), MG_OK);
    ck_assert_int_eq(mg_resp_store_record(s, "n", "b", "k", 0), MG_OK);
    /* turned off at a reload: everything goes */
    mg_resp_store_configure(s, 0, 0, 1);
    ck_assert(!has(s, "a", "k", 1));
    ck_assert_uint_eq(stats(s).bytes, 0);
    ck_assert_uint_eq(stats(s).evicted_lru, 2);
    ck_assert_int_eq(put_n(s, "a", "k", 1, 2), MG_ETOOBIG);
    ck_assert_uint_eq(stats(s).refused, 3);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(shrink_on_configure)
{
    struct mg_resp_store *s = store_of(10 * ONE, 0);
    char id[8];
    int i;

    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(put_n(s, id, "k", KB, i), MG_OK);
    }
    ck_assert(has(s, "r0", "k", 10));
    mg_resp_store_configure(s, 4 * ONE, 0, 11);
    ck_assert_uint_eq(stats(s).responses, 4);
    ck_assert_uint_eq(stats(s).evicted_lru, 6);
    /* the four most recently used stay: r0 (read), r7, r8, r9 */
    ck_assert(has(s, "r0", "k", 12));
    ck_assert(has(s, "r9", "k", 12));
    ck_assert(has(s, "r8", "k", 12));
    ck_assert(has(s, "r7", "k", 12));
    ck_assert(!has(s, "r6", "k", 12));
    /* a new ttl applies to what is there, from its creation */
    mg_resp_store_configure(s, 4 * ONE, 5, 12);
    ck_assert_uint_eq(stats(s).responses, 2);
    ck_assert_uint_eq(stats(s).evicted_ttl, 2);
    ck_assert(!has(s, "r7", "k", 12));
    ck_assert(!has(s, "r0", "k", 12));
    ck_assert(has(s, "r8", "k", 12));
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(key_isolation)
{
    struct mg_resp_store *s = store_of(64 * KB, 0);
    char be[32];

    ck_assert_int_eq(put_n(s, "resp_mg1", "alice", 10, 0), MG_OK);
    ck_assert(!has(s, "resp_mg1", "bob", 1));
    ck_assert(!has(s, "resp_mg1", "", 1));
    ck_assert(!has(s, "resp_mg1", "Alice", 1));
    ck_assert_int_eq(mg_resp_store_del(s, "resp_mg1", "bob", 1), MG_ERR);
    ck_assert(has(s, "resp_mg1", "alice", 1));
    /* native ids too */
    ck_assert_int_eq(mg_resp_store_record(s, "resp_abc", "oai", "alice", 0), MG_OK);
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_abc", "bob", 1, be, sizeof(be)), MG_ERR);
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_abc", "alice", 1, be, sizeof(be)), MG_OK);
    ck_assert_str_eq(be, "oai");
    /* a Response and a native id of the same spelling are different entries */
    ck_assert_int_eq(mg_resp_store_record(s, "resp_mg1", "oai", "alice", 0), MG_OK);
    ck_assert(has(s, "resp_mg1", "alice", 1));
    ck_assert_int_eq(mg_resp_store_del(s, "resp_mg1", "alice", 1), MG_OK);
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_mg1", "alice", 1, be, sizeof(be)), MG_OK);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(natives)
{
    struct mg_resp_store *s = store_of(64 * KB, 0);
    char be[8], tiny[4];

    ck_assert_int_eq(mg_resp_store_record(s, "resp_1", "openai", "k", 0), MG_OK);
    ck_assert_uint_eq(stats(s).natives, 1);
    ck_assert_uint_eq(stats(s).bytes, mg_resp_entry_bytes(6, 1, 6, 0, 0));
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_1", "k", 0, tiny, sizeof(tiny)), MG_ETOOBIG);
    ck_assert_str_eq(tiny, "");
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_1", "k", 0, be, 0), MG_ETOOBIG);
    /* a second record moves it */
    ck_assert_int_eq(mg_resp_store_record(s, "resp_1", "azure", "k", 1), MG_OK);
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_1", "k", 2, be, sizeof(be)), MG_OK);
    ck_assert_str_eq(be, "azure");
    ck_assert_uint_eq(stats(s).natives, 1);
    ck_assert_uint_eq(stats(s).bytes, mg_resp_entry_bytes(6, 1, 5, 0, 0));
    ck_assert_int_eq(mg_resp_store_lookup(s, "resp_2", "k", 2, be, sizeof(be)), MG_ERR);
    ck_assert_int_eq(mg_resp_store_lookup(s, NULL, "k", 2, be, sizeof(be)), MG_ERR);
    ck_assert_int_eq(mg_resp_store_record(s, NULL, "b", "k", 2), MG_ERR);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(natives_share_the_bound)
{
    uint64_t size = 8 * ONE, nb = mg_resp_entry_bytes(4, 1, 1, 0, 0);
    struct mg_resp_store *s = store_of(size, 0);
    char id[8], be[8];
    int i;

    ck_assert_int_eq(put_n(s, "r0", "k", KB, 0), MG_OK);
    for (i = 0; stats(s).evicted_lru == 0; i++) {
        ck_assert_int_lt(i, 1000);
        snprintf(id, sizeof(id), "n%03d", i);
        ck_assert_int_eq(mg_resp_store_record(s, id, "b", "k", 1 + i), MG_OK);
    }
    /* the response was the least recently used: it made room for the last native id */
    ck_assert(!has(s, "r0", "k", 2000));
    ck_assert_uint_eq(stats(s).evicted_lru, 1);
    ck_assert_uint_eq(stats(s).natives, (uint64_t)i);
    ck_assert_uint_eq(stats(s).bytes, i * nb);
    ck_assert_uint_le((uint64_t)(i - 1) * nb + ONE, size);
    ck_assert_uint_gt((uint64_t)i * nb + ONE, size);
    ck_assert_int_eq(mg_resp_store_lookup(s, "n000", "k", 2000, be, sizeof(be)), MG_OK);
    mg_resp_store_destroy(s);
}
END_TEST

START_TEST(reader_survives_eviction)
{
    struct mg_resp_store *s = store_of(8 * ONE, 0);
    const struct mg_resp_entry *e, *e2;
    char want[KB + 1], id[8];
    int i;

    memset(want, 'x', KB);
    want[KB] = '\0';
    ck_assert_int_eq(put_n(s, "r0", "k", KB, 0), MG_OK);
    e = mg_resp_store_get(s, "r0", "k", 0);
    e2 = mg_resp_store_get(s, "r0", "k", 0);
    ck_assert_ptr_eq(e, e2);
    for (i = 1; i <= 8; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(put_n(s, id, "k", KB, i), MG_OK);
    }
    ck_assert(!has(s, "r0", "k", 9));
    /* evicted, uncounted, yet whole for the readers that hold it */
    ck_assert_uint_eq(stats(s).evicted_lru, 1);
    ck_assert_uint_eq(stats(s).bytes, 8 * ONE);
    ck_assert_str_eq(e->response, want);
    mg_resp_entry_unref(e2);
    ck_assert_str_eq(e->id, "r0");
    mg_resp_entry_unref(e);
    /* delete and destroy while held */
    e = mg_resp_store_get(s, "r1", "k", 4);
    ck_assert_int_eq(mg_resp_store_del(s, "r1", "k", 4), MG_OK);
    ck_assert_str_eq(e->response, want);
    e2 = mg_resp_store_get(s, "r2", "k", 4);
    mg_resp_store_destroy(s);
    ck_assert_str_eq(e2->id, "r2");
    mg_resp_entry_unref(e);
    mg_resp_entry_unref(e2);
}
END_TEST

#define THREADS 8
#define ROUNDS  3000

struct worker {
    struct mg_resp_store *s;
    int                   n;
    int                   found;
};

static void *
hammer(void *arg)
{
    struct worker *w = arg;
    char id[32], key[8], be[16], want[16];
    const struct mg_resp_entry *e;
    int i;

    snprintf(key, sizeof(key), "k%d", w->n);
    for (i = 0; i < ROUNDS; i++) {
        /* a round of three steps on one id: put, get, record or lookup */
        snprintf(id, sizeof(id), "r%d", ((i / 3) * 7 + w->n) % 500);
        if (i % 3 == 0) {
            if (mg_resp_store_put(w->s, id, key, key, id, strlen(id), "[]", 2, i) != MG_OK) {
                return NULL;
            }
        } else if (i % 3 == 1) {
            if ((e = mg_resp_store_get(w->s, id, key, i)) != NULL) {
                /* what this thread put under its own key, nobody else's */
                if (strcmp(e->key_name, key) != 0 || strcmp(e->response, e->id) != 0
                    || strcmp(e->model, key) != 0) {
                    mg_resp_entry_unref(e);
                    return NULL;
                }
                mg_resp_entry_unref(e);
                w->found++;
            }
        } else if (i % 6 == 2) {
            snprintf(be, sizeof(be), "b%d", w->n);
            if (mg_resp_store_record(w->s, id, be, key, i) != MG_OK) {
                return NULL;
            }
        } else {
            snprintf(want, sizeof(want), "b%d", w->n);
            if (mg_resp_store_lookup(w->s, id, key, i, be, sizeof(be)) == MG_OK
                && strcmp(be, want) != 0) {
                return NULL;
            }
            if (i % 50 == 5) {
                (void)mg_resp_store_del(w->s, id, key, i);
            }
        }
    }
    return w;
}

START_TEST(many_threads)
{
    uint64_t size = 40 * mg_resp_entry_bytes(4, 2, 2, 4, 2);
    struct mg_resp_store *s = store_of(size, 2000);
    struct worker w[THREADS];
    pthread_t t[THREADS];
    struct mg_resp_store_stats st;
    void *ret;
    int i, found = 0;

    for (i = 0; i < THREADS; i++) {
        w[i] = (struct worker){s, i, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(t[i], &ret), 0);
        ck_assert_msg(ret == &w[i], "thread %d saw a wrong entry or a refusal", i);
        found += w[i].found;
    }
    st = stats(s);
    ck_assert_uint_le(st.bytes, size);
    ck_assert_uint_gt(st.evicted_lru, 0);
    ck_assert_uint_gt(found, 0);
    ck_assert_uint_eq(st.refused, 0);
    mg_resp_store_destroy(s);
}
END_TEST

Suite *
resp_store_suite(void)
{
    Suite *s = suite_create("resp_store");
    TCase *t = tcase_create("resp_store");

    tcase_add_test(t, kinds);
    tcase_add_test(t, put_get_roundtrip);
    tcase_add_test(t, binary_and_replace);
    tcase_add_test(t, lru_order);
    tcase_add_test(t, ttl_from_creation);
    tcase_add_test(t, no_ttl);
    tcase_add_test(t, size_eighth_refused);
    tcase_add_test(t, store_off);
    tcase_add_test(t, shrink_on_configure);
    tcase_add_test(t, key_isolation);
    tcase_add_test(t, natives);
    tcase_add_test(t, natives_share_the_bound);
    tcase_add_test(t, reader_survives_eviction);
    tcase_add_test(t, many_threads);
    suite_add_tcase(s, t);
    return s;
}
