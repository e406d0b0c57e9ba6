/* Unit tests: the strict HTTP checks refuse what the issue lists and accept what RFC 9110 allows. */
#include <stdlib.h>
#include <string.h>

#include "mg_hdr.h"
#include "mg_test.h"

#define S(lit) (lit), (sizeof(lit) - 1)   /* a literal with its length (embedded NULs kept) */

static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

START_TEST(names_are_tokens)
{
    static const struct { const char *s; size_t n; } bad[] = {
        {S("Authorization ")}, {S("Transfer-Encoding\t")}, {S(" Host")}, {S("")},
        {S("Host:")}, {S("X Y")}, {S("X-\x01")}, {S("X-\x7f")}, {S("X-\xc3\xa9")}, {S("X\0Y")},
        {S("(comment)")}, {S("a/b")}, {S("a\"b")}, {S("a,b")}, {S("a@b")}, {S("[x]")}, {S("{x}")},
    };
    char one[3] = {'X', 0, 'Y'};
    size_t i;
    int c;

    ck_assert_int_eq(mg_hdr_name_ok(tchars, strlen(tchars)), 1);
    ck_assert_int_eq(mg_hdr_name_ok(S("Authorization")), 1);
    ck_assert_int_eq(mg_hdr_name_ok(S("x-request-id")), 1);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(mg_hdr_name_ok(bad[i].s, bad[i].n) == 0, "should refuse name #%zu", i);
    }
    /* every byte: accepted exactly when it is a tchar, alone and in the middle of a name */
    for (c = 0; c < 256; c++) {
        int want = c != 0 && strchr(tchars, c) != NULL;
        one[1] = (char)c;
        ck_assert_msg(mg_hdr_name_ok(one + 1, 1) == want, "byte 0x%02x alone", c);
        ck_assert_msg(mg_hdr_name_ok(one, 3) == want, "byte 0x%02x inside", c);
    }
}
END_TEST

START_TEST(values_refuse_cr_lf_nul_only)
{
    char v[3] = {'a', 0, 'b'};
    int c;

    ck_assert_int_eq(mg_hdr_value_ok(S("")), 1);
    ck_assert_int_eq(mg_hdr_value_ok(S("Bearer sk-123, \"quoted\"\t(x)")), 1);
    ck_assert_int_eq(mg_hdr_value_ok(S("caf\xc3\xa9 \xff")), 1);        /* obs-text */
    ck_assert_int_eq(mg_hdr_value_ok(S("a\x1b[31mred")), 1);            /* kept, like nginx */
    ck_assert_int_eq(mg_hdr_value_ok(S("a\r\nX-Injected: 1")), 0);
    ck_assert_int_eq(mg_hdr_value_ok(S("a\nb")), 0);
    ck_assert_int_eq(mg_hdr_value_ok(S("a\rb")), 0);
    ck_assert_int_eq(mg_hdr_value_ok(S("a\0b")), 0);
    for (c = 0; c < 256; c++) {
        v[1] = (char)c;
        ck_assert_msg(mg_hdr_value_ok(v, 3) == (c != 0 && c != '\r' && c != '\n'), "0x%02x", c);
    }
}
END_TEST

START_TEST(content_length_digits_only)
{
    static const struct { const char *s; size_t n; } bad[] = {
        {S("+14")}, {S(" 14")}, {S("14 ")}, {S("1 4")}, {S("-1")}, {S("")}, {S("0x1e")},
        {S("14,14")}, {S("14, 14")}, {S("1e3")}, {S("14\0")}, {S("\xd9\xa1")},
        {S("99999999999999999999999")}, {S("9223372036854775808")}, {S("18446744073709551616")},
    };
    uint64_t n = 77;
    size_t i;

    ck_assert_int_eq(mg_hdr_content_length(S("14"), &n), MG_OK);
    ck_assert_uint_eq(n, 14);
    ck_assert_int_eq(mg_hdr_content_length(S("0"), &n), MG_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(mg_hdr_content_length(S("007"), &n), MG_OK);   /* 1*DIGIT allows it */
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(mg_hdr_content_length(S("9223372036854775807"), &n), MG_OK);
    ck_assert_uint_eq(n, (uint64_t)INT64_MAX);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        n = 77;
        ck_assert_msg(mg_hdr_content_length(bad[i].s, bad[i].n, &n) == MG_ERR, "#%zu", i);
        ck_assert_uint_eq(n, 77);
    }
}
END_TEST

START_TEST(several_content_lengths_must_agree)
{
    struct mg_hdr_cl cl = {0};

    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("14")), MG_OK);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("14")), MG_OK);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("014")), MG_OK);   /* the same number */
    ck_assert_int_eq(cl.seen, 1);
    ck_assert_uint_eq(cl.value, 14);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("15")), MG_ERR);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("+14")), MG_ERR);

    memset(&cl, 0, sizeof(cl));
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S(" 14")), MG_ERR);
    ck_assert_int_eq(cl.seen, 0);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("0")), MG_OK);
    ck_assert_int_eq(mg_hdr_cl_add(&cl, S("1")), MG_ERR);
}
END_TEST

START_TEST(transfer_encoding_chunked_only)
{
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("chunked")), 1);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("Chunked")), 1);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S(" \tCHUNKED ")), 1);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("gzip, chunked")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("chunked, chunked")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("chunked;x=1")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("xchunked")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("identity")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("")), 0);
    ck_assert_int_eq(mg_hdr_transfer_encoding_ok(S("chunke\xe4")), 0);
}
END_TEST

START_TEST(chunk_sizes_plain_hex)
{
    static const struct { const char *s; size_t n; uint64_t v; } ok[] = {
        {S("1e"), 30}, {S("1E"), 30}, {S("0"), 0}, {S("1e;name=val"), 30},
        {S("1e ; name=\"v a l\""), 30}, {S("00ff;a;b=c"), 255}, {S("7fffffffffffffff"), INT64_MAX},
        {S("000000000000000a"), 10}, {S("aBcDeF"), 0xabcdef},
    };
    static const struct { const char *s; size_t n; } bad[] = {
        {S("0x1e")}, {S("+1e")}, {S("-1")}, {S(" 1e")}, {S("1e ")}, {S("")}, {S(";x")},
        {S("1e;\x01")}, {S("1e;a\x7f")}, {S("1e\r")}, {S("1e;x\r")}, {S("1g")}, {S("1e\0")},
        {S("00000000000000001")}, {S("8000000000000000")}, {S("ffffffffffffffff")},
        {S("1e,2")}, {S("1 e")},
    };
    uint64_t v;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(ok); i++) {
        v = 1234;
        ck_assert_msg(mg_hdr_chunk_size(ok[i].s, ok[i].n, &v) == MG_OK, "should accept %s",
                      ok[i].s);
        ck_assert_uint_eq(v, ok[i].v);
        ck_assert_int_eq(mg_hdr_chunk_size_ok(ok[i].s, ok[i].n), 1);
    }
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(mg_hdr_chunk_size_ok(bad[i].s, bad[i].n) == 0, "should refuse #%zu", i);
    }
    ck_assert_int_eq(mg_hdr_chunk_size(S("1e;x=\xc3\xa9"), NULL), MG_OK);   /* obs-text in ext */
}
END_TEST

START_TEST(targets_printable)
{
    char t[4] = {'/', 'a', 0, 'b'};
    int c;

    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/chat/completions?api-version=2024-10-21&x=%20")), 1);
    ck_assert_int_eq(mg_hdr_target_ok(S("*")), 1);
    ck_assert_int_eq(mg_hdr_target_ok(S("")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/models x")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/models\r")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/\x01models")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/models\x7f")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/caf\xc3\xa9")), 0);
    ck_assert_int_eq(mg_hdr_target_ok(S("/v1/a\0b")), 0);
    for (c = 0; c < 256; c++) {
        t[2] = (char)c;
        ck_assert_msg(mg_hdr_target_ok(t, 4) == (c >= 0x21 && c <= 0x7e), "0x%02x", c);
    }
}
END_TEST

START_TEST(request_ids)
{
    char id[MG_HDR_REQUEST_ID_MAX + 1];

    memset(id, 'a', sizeof(id));
    ck_assert_int_eq(mg_hdr_request_id_ok(id, MG_HDR_REQUEST_ID_MAX), 1);
    ck_assert_int_eq(mg_hdr_request_id_ok(id, MG_HDR_REQUEST_ID_MAX + 1), 0);   /* 129 bytes */
    ck_assert_int_eq(mg_hdr_request_id_ok(S("")), 0);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("req-\x1b[2J")), 0);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("a b")), 0);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("a\x7f")), 0);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("\xc3\xa9")), 0);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("7f3c9a0e-4b1d-4c55-9d1e-0a2b3c4d5e6f")), 1);
    ck_assert_int_eq(mg_hdr_request_id_ok(S("~!{req}/\"x\"")), 1);
}
END_TEST

struct names {
    char   seen[8][32];
    size_t n;
    size_t stop_at;   /* 1-based call that returns 7; 0 never */
};

static int
collect(void *arg, const char *name, size_t len)
{
    struct names *c = arg;

    ck_assert_uint_lt(c->n, 8);
    ck_assert_uint_lt(len, 32);
    memcpy(c->seen[c->n], name, len);
    c->seen[c->n][len] = '\0';
    c->n++;
    return c->n == c->stop_at ? 7 : 0;
}

START_TEST(connection_names)
{
    struct names c;
    const char *v = " keep-alive, X-Secret ,,\tUpgrade\t, ";

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(mg_hdr_connection_names(v, strlen(v), collect, &c), 0);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_str_eq(c.seen[0], "keep-alive");
    ck_assert_str_eq(c.seen[1], "X-Secret");     /* case kept */
    ck_assert_str_eq(c.seen[2], "Upgrade");

    memset(&c, 0, sizeof(c));
    c.stop_at = 2;
    ck_assert_int_eq(mg_hdr_connection_names(v, strlen(v), collect, &c), 7);
    ck_assert_uint_eq(c.n, 2);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(mg_hdr_connection_names(S(" , ,"), collect, &c), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_int_eq(mg_hdr_connection_names(S("close"), collect, &c), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.seen[0], "close");

    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("x-secret")), 1);
    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("KEEP-ALIVE")), 1);
    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("upgrade")), 1);
    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("X-Secre")), 0);
    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("X-Secrets")), 0);
    ck_assert_int_eq(mg_hdr_in_connection(v, strlen(v), S("")), 0);
    ck_assert_int_eq(mg_hdr_in_connection(S(""), S("close")), 0);
    ck_assert_int_eq(mg_hdr_in_connection(S("Close"), S("close")), 1);
}
END_TEST

START_TEST(escape_for_logs)
{
    struct mg_buf out;
    char all[256];
    size_t i;
    int c;

    mg_buf_init(&out, 4096);
    ck_assert_int_eq(mg_hdr_escape(S("a\x1b[31mb\"\\\x7f\xff\n\0z"), &out), MG_OK);
    ck_assert_str_eq(out.data, "a\\x1B[31mb\\x22\\x5C\\x7F\\xFF\\x0A\\x00z");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_hdr_escape(S(""), &out), MG_OK);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(mg_hdr_escape(S("plain text, kept as is"), &out), MG_OK);
    ck_assert_str_eq(out.data, "plain text, kept as is");

    /* whatever the input, only printable ASCII comes out */
    for (c = 0; c < 256; c++) {
        all[c] = (char)c;
    }
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_hdr_escape(all, sizeof(all), &out), MG_OK);
    for (i = 0; i < out.len; i++) {
        ck_assert_msg(out.data[i] >= 0x20 && out.data[i] <= 0x7e, "0x%02x at %zu",
                      (unsigned char)out.data[i], i);
    }
    ck_assert_uint_eq(out.len, 95 - 2 + (256 - 95 + 2) * 4);
    mg_buf_deinit(&out);

    /* at the cap: the prefix that fits, never half an escape */
    mg_buf_init(&out, 5);
    ck_assert_int_eq(mg_hdr_escape(S("ab\x1b" "cd"), &out), MG_ETOOBIG);
    ck_assert_str_eq(out.data, "ab");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_hdr_escape(S("abcdefgh"), &out), MG_ETOOBIG);
    ck_assert_str_eq(out.data, "abcde");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_hdr_escape(S("a\x01" "bcdef"), &out), MG_ETOOBIG);
    ck_assert_str_eq(out.data, "a\\x01");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_hdr_escape(S("abc\x01"), &out), MG_ETOOBIG);
    ck_assert_str_eq(out.data, "abc");
    mg_buf_deinit(&out);
}
END_TEST

/* Names compare ASCII case-insensitively, whole: no prefix matches, no letter-folding of others. */
START_TEST(names_compare_caseless)
{
    ck_assert_int_eq(mg_hdr_eq("Content-Length", "content-length"), 1);
    ck_assert_int_eq(mg_hdr_eq("X-REQUEST-ID", "x-request-id"), 1);
    ck_assert_int_eq(mg_hdr_eq("x-request-id", "X-Request-Id"), 1);
    ck_assert_int_eq(mg_hdr_eq("", ""), 1);
    ck_assert_int_eq(mg_hdr_eq("Content-Lengt", "content-length"), 0);
    ck_assert_int_eq(mg_hdr_eq("Content-Length", "content-lengt"), 0);
    ck_assert_int_eq(mg_hdr_eq("Content-Length ", "content-length"), 0);
    ck_assert_int_eq(mg_hdr_eq("te", "t"), 0);
    ck_assert_int_eq(mg_hdr_eq("", "te"), 0);
    /* '^' is '~' with bit 5 cleared: only letters fold */
    ck_assert_int_eq(mg_hdr_eq("x^", "x~"), 0);
    ck_assert_int_eq(mg_hdr_eq("x@", "x`"), 0);
    ck_assert_int_eq(mg_hdr_eq("x\xc9", "x\xe9"), 0);   /* no Latin-1 folding */
}
END_TEST

Suite *
hdr_suite(void)
{
    Suite *s = suite_create("hdr");
    TCase *t = tcase_create("strict");

    tcase_add_test(t, names_are_tokens);
    tcase_add_test(t, values_refuse_cr_lf_nul_only);
    tcase_add_test(t, content_length_digits_only);
    tcase_add_test(t, several_content_lengths_must_agree);
    tcase_add_test(t, transfer_encoding_chunked_only);
    tcase_add_test(t, chunk_sizes_plain_hex);
    tcase_add_test(t, targets_printable);
    tcase_add_test(t, request_ids);
    tcase_add_test(t, connection_names);
    tcase_add_test(t, escape_for_logs);
    tcase_add_test(t, names_compare_caseless);
    suite_add_tcase(s, t);
    return s;
}
