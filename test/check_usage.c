/* Unit tests: usage from answers, the SSE splitter, and the edits of an injected-usage stream. */
#include <stdlib.h>
#include <string.h>

#include "mg_test.h"
#include "mg_usage.h"

START_TEST(usage_from_answers)
{
    struct mg_usage u;
    const char *chat = "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"the \\\"usage\\\": {\\\"prompt_tokens\\\": 99}\"}}],"
                       "\"usage\": {\"prompt_tokens\": 12, \"completion_tokens\": 34, \"total_tokens\": 46}}";
    const char *responses = "{\"object\":\"response\",\"usage\":{\"input_tokens\":5,\"output_tokens\":7}}";
    const char *emb = "{\"data\":[],\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}";

    ck_assert_int_eq(mg_usage_parse(chat, strlen(chat), &u), 1);
    ck_assert_int_eq(u.input, 12);
    ck_assert_int_eq(u.output, 34);
    ck_assert_int_eq(mg_usage_parse(responses, strlen(responses), &u), 1);
    ck_assert_int_eq(u.input, 5);
    ck_assert_int_eq(u.output, 7);
    ck_assert_int_eq(mg_usage_parse(emb, strlen(emb), &u), 1);
    ck_assert_int_eq(u.input, 8);
    ck_assert_int_eq(u.output, -1);
    /* a tail that starts mid-answer still has the usage */
    ck_assert_int_eq(mg_usage_parse(chat + 40, strlen(chat) - 40, &u), 1);
    ck_assert_int_eq(u.output, 34);
    {
        const char *o = "{\"usage\":{\"prompt_tokens\":19,\"prompt_tokens_details\":{\"cached_tokens\":7,"
                        "\"audio_tokens\":0},\"completion_tokens\":10,\"total_tokens\":29,"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":3,\"x\":[1,{\"y\":\"}\"}]}}}";
        ck_assert_int_eq(mg_usage_parse(o, strlen(o), &u), 1);
        ck_assert_int_eq(u.input, 19);
        ck_assert_int_eq(u.output, 10);
    }
    /* numbers that are not integers in 0..2^53-1 are absent (SPEC), each on its own */
    {
        static const struct {
            const char *body;
            int         found;
            int64_t     in, out;
        } cases[] = {
            {"{\"usage\":{\"prompt_tokens\":9007199254740991,\"completion_tokens\":1}}", 1,
             9007199254740991LL, 1},
            {"{\"usage\":{\"prompt_tokens\":9007199254740992,\"completion_tokens\":1}}", 1,
             -1, 1},
            {"{\"usage\":{\"prompt_tokens\":9223372036854775000,"
             "\"completion_tokens\":9223372036854775000}}", 0, -1, -1},
            {"{\"usage\":{\"prompt_tokens\":99999999999999999999999999999999,"
             "\"completion_tokens\":3}}", 1, -1, 3},
            {"{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":3}}", 1, -1, 3},
            {"{\"usage\":{\"prompt_tokens\":2.5,\"completion_tokens\":3}}", 1, -1, 3},
            {"{\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1e3}}", 1, 4, -1},
            {"{\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":7E0}}", 1, 4, -1},
            {"{\"usage\":{\"prompt_tokens\":\"4\",\"completion_tokens\":0}}", 1, -1, 0},
        };
        size_t i;

        for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
            const char *b = cases[i].body;
            ck_assert_msg(mg_usage_parse(b, strlen(b), &u) == cases[i].found, "%s", b);
            if (cases[i].found) {
                ck_assert_msg(u.input == cases[i].in && u.output == cases[i].out,
                              "%s: %lld,%lld", b, (long long)u.input, (long long)u.output);
            }
        }
    }
    ck_assert_int_eq(mg_usage_parse("{\"usage\":null}", 14, &u), 0);
    ck_assert_int_eq(mg_usage_parse("{\"a\":1}", 7, &u), 0);
    ck_assert_int_eq(mg_usage_parse("{\"usage\":{\"prompt_tok", 21, &u), 0);
}
END_TEST

static struct mg_buf got;
static int events, pieces;

static void
collect(void *arg, const char *p, size_t n, int whole)
{
    mg_buf_add(&got, p, n);
    mg_buf_add(&got, whole ? "|" : "~", 1);
    events += whole;
    pieces += !whole;
}

static void
reset_collect(void)
{
    mg_buf_deinit(&got);
    mg_buf_init(&got, 1 << 22);
    events = pieces = 0;
}

START_TEST(sse_split_any_way)
{
    const char *stream = "data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\n: comment\n\ndata: [DONE]\n\n";
    size_t len = strlen(stream), cut, i;

    /* every way of cutting the stream in two, and byte by byte, gives the same events */
    for (cut = 0; cut <= len; cut++) {
        struct mg_sse s;
        reset_collect();
        mg_sse_init(&s);
        mg_sse_feed(&s, stream, cut, collect, NULL);
        mg_sse_feed(&s, stream + cut, len - cut, collect, NULL);
        mg_sse_flush(&s, collect, NULL);
        ck_assert_int_eq(events, 4);
        ck_assert_int_eq(pieces, 0);
        ck_assert_str_eq(got.data, "data: {\"a\":1}\n\n|data: {\"b\":2}\r\n\r\n|: comment\n\n|data: [DONE]\n\n|");
        mg_sse_deinit(&s);
    }
    {
        struct mg_sse s;
        reset_collect();
        mg_sse_init(&s);
        for (i = 0; i < len; i++) {
            mg_sse_feed(&s, stream + i, 1, collect, NULL);
        }
        ck_assert_int_eq(events, 4);
        mg_sse_deinit(&s);
    }
}
END_TEST

START_TEST(sse_unterminated_and_oversized)
{
    struct mg_sse s;
    size_t big = MG_SSE_EVENT_MAX + 100;
    char *ev = mg_malloc(big + 3);

    reset_collect();
    mg_sse_init(&s);
    mg_sse_feed(&s, "data: partial", 13, collect, NULL);
    ck_assert_int_eq(events + pieces, 0);
    mg_sse_flush(&s, collect, NULL);
    ck_assert_str_eq(got.data, "data: partial~");

    reset_collect();
    memset(ev, 'x', big);
    memcpy(ev, "data: ", 6);
    memcpy(ev + big, "\n\n", 3);
    mg_sse_feed(&s, ev, 1000, collect, NULL);
    mg_sse_feed(&s, ev + 1000, big + 2 - 1000, collect, NULL);
    mg_sse_feed(&s, "data: next\n\n", 12, collect, NULL);
    /* the big one passed through whole, in pieces; the next one is parsed again */
    ck_assert_uint_eq(got.len, big + 2 + pieces + 12 + 1);
    ck_assert_int_eq(events, 1);
    ck_assert_ptr_nonnull(strstr(got.data, "data: next\n\n|"));
    mg_sse_deinit(&s);
    free(ev);
    mg_buf_deinit(&got);
}
END_TEST

START_TEST(injected_usage_edits)
{
    const char *usage_ev = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n";
    const char *chunk = "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
    const char *spaced = "data: {\"choices\": [ ], \"usage\": {\"prompt_tokens\": 1}}\n\n";
    struct mg_buf out;

    ck_assert_int_eq(mg_sse_is_usage_only(usage_ev, strlen(usage_ev)), 1);
    ck_assert_int_eq(mg_sse_is_usage_only(spaced, strlen(spaced)), 1);
    ck_assert_int_eq(mg_sse_is_usage_only(chunk, strlen(chunk)), 0);
    ck_assert_int_eq(mg_sse_is_usage_only("data: [DONE]\n\n", 14), 0);
    mg_buf_init(&out, 4096);
    ck_assert_int_eq(mg_sse_strip_null_usage(chunk, strlen(chunk), &out), MG_OK);
    ck_assert_str_eq(out.data, "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n");
    mg_buf_reset(&out);
    {
        const char *ev = "data: {\"a\":1 , \"usage\": null}\n\n";
        ck_assert_int_eq(mg_sse_strip_null_usage(ev, strlen(ev), &out), MG_OK);
    }
    ck_assert_str_eq(out.data, "data: {\"a\":1}\n\n");
    mg_buf_reset(&out);
    /* content that merely mentions usage is untouched */
    {
        const char *ev = "data: {\"c\":\"\\\"usage\\\":null\"}\n\n";
        ck_assert_int_eq(mg_sse_strip_null_usage(ev, strlen(ev), &out), MG_OK);
    }
    ck_assert_str_eq(out.data, "data: {\"c\":\"\\\"usage\\\":null\"}\n\n");
    mg_buf_deinit(&out);
}
END_TEST

Suite *
usage_suite(void)
{
    Suite *s = suite_create("usage");
    TCase *t = tcase_create("parse");

    tcase_add_test(t, usage_from_answers);
    tcase_add_test(t, sse_split_any_way);
    tcase_add_test(t, sse_unterminated_and_oversized);
    tcase_add_test(t, injected_usage_edits);
    suite_add_tcase(s, t);
    return s;
}
