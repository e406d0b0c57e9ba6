/* Unit tests: durations, sizes, listen addresses, the capped buffer, constant-time compare. */
#include <string.h>
#include <stdlib.h>

#include "mg_test.h"
#include "mg_util.h"

START_TEST(durations)
{
    int64_t ms;

    ck_assert_int_eq(mg_parse_duration("500ms", &ms), MG_OK);
    ck_assert_int_eq(ms, 500);
    ck_assert_int_eq(mg_parse_duration("5s", &ms), MG_OK);
    ck_assert_int_eq(ms, 5000);
    ck_assert_int_eq(mg_parse_duration("2m", &ms), MG_OK);
    ck_assert_int_eq(ms, 120000);
    ck_assert_int_eq(mg_parse_duration("1h", &ms), MG_OK);
    ck_assert_int_eq(ms, 3600000);
    ck_assert_int_eq(mg_parse_duration("5", &ms), MG_ERR);
    ck_assert_int_eq(mg_parse_duration("-5s", &ms), MG_ERR);
    ck_assert_int_eq(mg_parse_duration("5 s", &ms), MG_ERR);
    ck_assert_int_eq(mg_parse_duration("s", &ms), MG_ERR);
    ck_assert_int_eq(mg_parse_duration("99999999999999999999s", &ms), MG_ERR);
}
END_TEST

START_TEST(sizes)
{
    uint64_t b;

    ck_assert_int_eq(mg_parse_size("1024", &b), MG_OK);
    ck_assert_uint_eq(b, 1024);
    ck_assert_int_eq(mg_parse_size("16KiB", &b), MG_OK);
    ck_assert_uint_eq(b, 16384);
    ck_assert_int_eq(mg_parse_size("16MiB", &b), MG_OK);
    ck_assert_uint_eq(b, 16u << 20);
    ck_assert_int_eq(mg_parse_size("1GiB", &b), MG_OK);
    ck_assert_uint_eq(b, 1u << 30);
    ck_assert_int_eq(mg_parse_size("16MB", &b), MG_ERR);
    ck_assert_int_eq(mg_parse_size("-1", &b), MG_ERR);
    ck_assert_int_eq(mg_parse_size("", &b), MG_ERR);
}
END_TEST

START_TEST(listen_addresses)
{
    char host[64];
    int port;

    ck_assert_int_eq(mg_parse_listen("127.0.0.1:8080", host, sizeof(host), &port), MG_OK);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(mg_parse_listen("[::1]:9000", host, sizeof(host), &port), MG_OK);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 9000);
    ck_assert_int_eq(mg_parse_listen(":8080", host, sizeof(host), &port), MG_OK);
    ck_assert_str_eq(host, "");
    ck_assert_int_eq(mg_parse_listen("localhost", host, sizeof(host), &port), MG_ERR);
    ck_assert_int_eq(mg_parse_listen("::1:80", host, sizeof(host), &port), MG_ERR);
    ck_assert_int_eq(mg_parse_listen("h:70000", host, sizeof(host), &port), MG_ERR);
    ck_assert_int_eq(mg_parse_listen("h:", host, sizeof(host), &port), MG_ERR);
}
END_TEST

START_TEST(capped_buffer)
{
    struct mg_buf b;

    mg_buf_init(&b, 10);
    ck_assert_int_eq(mg_buf_adds(&b, "hello"), MG_OK);
    ck_assert_int_eq(mg_buf_adds(&b, "world"), MG_OK);
    ck_assert_int_eq(mg_buf_adds(&b, "!"), MG_ETOOBIG);
    ck_assert_str_eq(b.data, "helloworld");
    ck_assert_int_eq(mg_buf_printf(&b, "%d", 1), MG_ETOOBIG);
    mg_buf_reset(&b);
    ck_assert_int_eq(mg_buf_printf(&b, "%s-%d", "x", 42), MG_OK);
    ck_assert_str_eq(b.data, "x-42");
    mg_buf_deinit(&b);
}
END_TEST

/* Spare blocks come back most recent first (not cleared: under memcheck their bytes read as
 * never written), and beyond max they are freed. */
START_TEST(pool_reuses_zeroed_blocks)
{
    struct mg_pool pool;
    unsigned char *a, *b, *c;

    mg_pool_init(&pool, 1);
    a = mg_pool_get(&pool, 64);
    b = mg_pool_get(&pool, 64);
    memset(a, 0xab, 64);
    memset(b, 0xcd, 64);
    mg_pool_put(&pool, a);
    mg_pool_put(&pool, b);          /* over max: freed (valgrind and ASan see it otherwise) */
    mg_pool_put(&pool, NULL);
    ck_assert_uint_eq(pool.n, 1);
    c = mg_pool_get(&pool, 64);
    ck_assert_ptr_eq(c, a);
    memset(c, 0, 64);
    ck_assert_uint_eq(pool.n, 0);
    mg_pool_put(&pool, c);
    mg_pool_deinit(&pool);
    ck_assert_ptr_null(pool.head);
}
END_TEST

/* mg_find finds what memmem finds, at every place and length (edges included). */
START_TEST(find_matches_memmem)
{
    static const char *needles[] = {"\"usage\"", "\n\n", "ab", "aab", "a", "", "\"finish_reason\""};
    char h[64];
    size_t i, hn, nn, k;
    unsigned seed = 7;

    for (k = 0; k < 20000; k++) {
        const char *nd = needles[k % 7];
        nn = strlen(nd);
        hn = (size_t)(rand_r(&seed) % sizeof(h));
        for (i = 0; i < hn; i++) {
            h[i] = "ab\"\nusage"[rand_r(&seed) % 10];
        }
        if (hn >= nn && nn > 0 && k % 3 == 0) {   /* plant it, at the end or anywhere */
            size_t at = k % 2 ? hn - nn : (size_t)rand_r(&seed) % (hn - nn + 1);
            memcpy(h + at, nd, nn);
        }
        ck_assert_ptr_eq(mg_find(h, hn, nd, nn), memmem(h, hn, nd, nn));
    }
}
END_TEST

/* Token sums saturate at 2^53 - 1 and never overflow, whatever a backend reported. */
START_TEST(token_sums_saturate)
{
    ck_assert_int_eq(MG_TOKENS_MAX, 9007199254740991LL);
    ck_assert(mg_tokens_valid(0));
    ck_assert(mg_tokens_valid(MG_TOKENS_MAX));
    ck_assert(!mg_tokens_valid(MG_TOKENS_MAX + 1));
    ck_assert(!mg_tokens_valid(-1));
    ck_assert(!mg_tokens_valid(INT64_MAX));
    ck_assert_int_eq(mg_tokens_add(10, 20), 30);
    ck_assert_int_eq(mg_tokens_add(-1, 20), 20);        /* unknown counts as 0 */
    ck_assert_int_eq(mg_tokens_add(-1, -1), 0);
    ck_assert_int_eq(mg_tokens_add(MG_TOKENS_MAX - 1, 1), MG_TOKENS_MAX);
    ck_assert_int_eq(mg_tokens_add(MG_TOKENS_MAX, 1), MG_TOKENS_MAX);
    ck_assert_int_eq(mg_tokens_add(MG_TOKENS_MAX, MG_TOKENS_MAX), MG_TOKENS_MAX);
    /* what a signed sum would overflow on (UBSan aborts the process) */
    ck_assert_int_eq(mg_tokens_add(INT64_MAX, INT64_MAX), MG_TOKENS_MAX);
    ck_assert_int_eq(mg_tokens_add(INT64_MIN, 5), 5);
}
END_TEST

Suite *
util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *t = tcase_create("parse");

    tcase_add_test(t, durations);
    tcase_add_test(t, pool_reuses_zeroed_blocks);
    tcase_add_test(t, sizes);
    tcase_add_test(t, listen_addresses);
    tcase_add_test(t, capped_buffer);
    tcase_add_test(t, find_matches_memmem);
    tcase_add_test(t, token_sums_saturate);
    suite_add_tcase(s, t);
    return s;
}
