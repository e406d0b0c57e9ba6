/*
 * mg_wire suite: how a relayed answer is framed for each client version and status, and the
 * exact bytes of the status and Date lines. The bytes on a real connection (chunks, lengths,
 * keep-alive, pipelining, HTTP/1.0) are checked over loopback in check_front.c.
 */
#include <string.h>

#include "mg_test.h"
#include "mg_wire.h"

struct frame_case {
    int         minor, status, head;
    int64_t     length;
    int         conn_close, conn_keep;
    struct mg_wire_frame want;   /* body, chunked, keepalive, say_close, say_keep */
};

START_TEST(framing_table)
{
    static const struct frame_case cases[] = {
        /* HTTP/1.1: chunks when the length is unknown, the length when it is known */
        {1, 200, 0, -1, 0, 0, {1, 1, 1, 0, 0}},
        {1, 200, 0, 268, 0, 0, {1, 0, 1, 0, 0}},
        {1, 200, 0, -1, 1, 0, {1, 1, 0, 1, 0}},       /* the client said close */
        {1, 429, 0, 80, 0, 1, {1, 0, 1, 0, 0}},       /* keep-alive is 1.1's default */
        /* statuses and methods without a body: no framing at all */
        {1, 204, 0, -1, 0, 0, {0, 0, 1, 0, 0}},
        {1, 304, 0, -1, 0, 0, {0, 0, 1, 0, 0}},
        {1, 200, 1, -1, 0, 0, {0, 0, 1, 0, 0}},
        /* HTTP/1.0: no chunks; keep-alive only when asked and the length is known */
        {0, 200, 0, -1, 0, 0, {1, 0, 0, 1, 0}},
        {0, 200, 0, -1, 0, 1, {1, 0, 0, 1, 0}},       /* a stream ends with the connection */
        {0, 200, 0, 268, 0, 1, {1, 0, 1, 0, 1}},
        {0, 200, 0, 268, 0, 0, {1, 0, 0, 1, 0}},
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        const struct frame_case *c = &cases[i];
        struct mg_wire_frame f;

        mg_wire_framing(&f, c->minor, c->status, c->head, c->length, c->conn_close, c->conn_keep);
        ck_assert_msg(f.body == c->want.body && f.chunked == c->want.chunked &&
                      f.keepalive == c->want.keepalive && f.say_close == c->want.say_close &&
                      f.say_keep == c->want.say_keep,
                      "case %zu: got body %d chunked %d keepalive %d close %d keep %d", i, f.body,
                      f.chunked, f.keepalive, f.say_close, f.say_keep);
    }
}
END_TEST

START_TEST(status_lines)
{
    char buf[64];
    size_t n;

    n = mg_wire_status_line(buf, 1, 200);
    ck_assert_uint_eq(n, strlen("HTTP/1.1 200 OK\r\n"));
    ck_assert(memcmp(buf, "HTTP/1.1 200 OK\r\n", n) == 0);
    n = mg_wire_status_line(buf, 0, 503);
    ck_assert(memcmp(buf, "HTTP/1.0 503 Service Unavailable\r\n", n) == 0);
    n = mg_wire_status_line(buf, 1, 529);
    ck_assert(memcmp(buf, "HTTP/1.1 529 Site Overloaded\r\n", n) == 0);
    n = mg_wire_status_line(buf, 1, 418);      /* unlisted: its class */
    ck_assert(memcmp(buf, "HTTP/1.1 418 Client Error\r\n", n) == 0);
    n = mg_wire_status_line(buf, 1, 42);       /* not a status: never three garbage digits */
    ck_assert(memcmp(buf, "HTTP/1.1 502 Bad Gateway\r\n", n) == 0);
}
END_TEST

START_TEST(date_lines)
{
    char buf[48];
    size_t n;

    /* RFC 9110 5.6.7's example, and a leap day */
    n = mg_wire_date_line(buf, 784111777);
    ck_assert_uint_eq(n, strlen("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    ck_assert(memcmp(buf, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", n) == 0);
    n = mg_wire_date_line(buf, 1709251199);
    ck_assert(memcmp(buf, "Date: Thu, 29 Feb 2024 23:59:59 GMT\r\n", n) == 0);
}
END_TEST

/*
 * The wire counts what it is handed (the access log's bytes and time to first byte), framed or
 * not: a 204's body is counted though it is not sent. A wire with no connection is never
 * congested.
 */
START_TEST(bytes_counted)
{
    struct mg_wire w;

    memset(&w, 0, sizeof(w));   /* as begun for a status without a body */
    mg_wire_body(&w, "abc", 3);
    ck_assert_int_eq(w.bytes, 3);
    ck_assert(w.t_first > 0);
    mg_wire_body(&w, "de", 2);
    ck_assert_int_eq(w.bytes, 5);
    ck_assert_int_eq(mg_wire_congested(&w), 0);
}
END_TEST

Suite *
wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *t = tcase_create("wire");

    tcase_add_test(t, framing_table);
    tcase_add_test(t, status_lines);
    tcase_add_test(t, date_lines);
    tcase_add_test(t, bytes_counted);
    suite_add_tcase(s, t);
    return s;
}
