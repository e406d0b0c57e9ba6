/* Unit tests: the request body scanner agrees with RFC 8259 and finds model/stream. */
#include <stdio.h>
#include <string.h>

#include "mg_json.h"
#include "mg_test.h"

static int
scan(const char *body, char *model, struct mg_json_req *r)
{
    return mg_json_scan_request(body, strlen(body), model, 64, r);
}

START_TEST(valid_bodies)
{
    static const char *const ok[] = {
        "{\"model\":\"gpt-4o\"}",
        " \n{ \"model\" : \"gpt-4o\" , \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}] }\r\n",
        "{\"a\":[1,-2,3.5e10,0,-0.0,1E+2,true,false,null,{}],\"model\":\"m\",\"b\":{\"c\":[]}}",
        "{\"x\":\"\\u00e9\\ud83d\\ude00\\n\\\"\",\"model\":\"m\"}",
        "{\"model\":\"m\",\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(ok); i++) {
        ck_assert_msg(scan(ok[i], model, &r) == MG_JSON_OK, "should accept: %s", ok[i]);
    }
}
END_TEST

START_TEST(invalid_bodies)
{
    static const char *const bad[] = {
        "", "{", "}", "{\"model\":\"m\"", "{\"model\":\"m\",}", "{\"model\" \"m\"}",
        "{\"model\":'m'}", "{model:\"m\"}", "{\"model\":\"m\"} x", "{\"a\":01,\"model\":\"m\"}",
        "{\"a\":1.,\"model\":\"m\"}", "{\"a\":tru,\"model\":\"m\"}", "{\"a\":[1,],\"model\":\"m\"}",
        "{\"a\":\"\\x\",\"model\":\"m\"}", "{\"a\":\"\\ud800\",\"model\":\"m\"}",
        "{\"a\":\"tab\there\",\"model\":\"m\"}", "{\"a\":\"\xff\",\"model\":\"m\"}",
        "{\"a\":\"\xc0\xaf\",\"model\":\"m\"}", "{\"a\":+1,\"model\":\"m\"}", "{\"a\":NaN}",
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(scan(bad[i], model, &r) == MG_JSON_INVALID, "should refuse: %s", bad[i]);
    }
}
END_TEST

START_TEST(deep_nesting_refused)
{
    char body[2048], model[64];
    struct mg_json_req r;
    int i, n = 0;

    n += snprintf(body + n, sizeof(body) - (size_t)n, "{\"model\":\"m\",\"a\":");
    for (i = 0; i < 600; i++) {
        body[n++] = '[';
    }
    body[n] = '\0';
    ck_assert_int_eq(mg_json_scan_request(body, (size_t)n, model, sizeof(model), &r),
                     MG_JSON_INVALID);
}
END_TEST

START_TEST(not_object_and_missing_model)
{
    char model[64];
    struct mg_json_req r;

    ck_assert_int_eq(scan("[1,2]", model, &r), MG_JSON_NOT_OBJECT);
    ck_assert_int_eq(scan("\"model\"", model, &r), MG_JSON_NOT_OBJECT);
    ck_assert_int_eq(scan("42", model, &r), MG_JSON_NOT_OBJECT);
    ck_assert_int_eq(scan("{}", model, &r), MG_JSON_NO_MODEL);
    ck_assert_int_eq(scan("{\"model\":5}", model, &r), MG_JSON_NO_MODEL);
    ck_assert_int_eq(scan("{\"model\":null}", model, &r), MG_JSON_NO_MODEL);
    ck_assert_int_eq(scan("{\"x\":{\"model\":\"nested\"}}", model, &r), MG_JSON_NO_MODEL);
    ck_assert_int_eq(scan("{\"model\":\"0123456789012345678901234567890123456789012345678901234"
                          "567890123456789\"}", model, &r), MG_JSON_MODEL_LONG);
}
END_TEST

START_TEST(model_and_stream)
{
    char model[64];
    struct mg_json_req r;
    const char *b = "{\"stream\": true, \"model\":\"gpt\\u002d4o\"}";

    ck_assert_int_eq(scan(b, model, &r), MG_JSON_OK);
    ck_assert_str_eq(model, "gpt-4o");
    ck_assert_uint_eq(r.model_len, 6);
    ck_assert_int_eq(r.stream, 1);
    ck_assert_uint_eq(r.model_start, 25);
    ck_assert_int_eq(b[r.model_end - 1], '"');
    ck_assert_int_eq(scan("{\"model\":\"a\",\"stream\":false}", model, &r), MG_JSON_OK);
    ck_assert_int_eq(r.stream, 0);
    ck_assert_int_eq(scan("{\"model\":\"a\",\"x\":{\"stream\":true}}", model, &r), MG_JSON_OK);
    ck_assert_int_eq(r.stream, 0);
    /* the last of duplicate keys wins, as in Python's json and most servers */
    ck_assert_int_eq(scan("{\"model\":\"first\",\"model\":\"second\"}", model, &r), MG_JSON_OK);
    ck_assert_str_eq(model, "second");
}
END_TEST

/* The answer-length bound the token limit's estimate adds: the largest top-level one given. */
START_TEST(max_tokens_for_the_estimate)
{
    static const struct {
        const char *body;
        int64_t     want;
    } cases[] = {
        {"{\"model\":\"m\"}", 0},
        {"{\"model\":\"m\",\"max_tokens\":50}", 50},
        {"{\"max_completion_tokens\": 700 ,\"model\":\"m\"}", 700},
        {"{\"model\":\"m\",\"max_output_tokens\":32000}", 32000},
        {"{\"model\":\"m\",\"max_tokens\":10,\"max_completion_tokens\":20}", 20},
        {"{\"model\":\"m\",\"max_completion_tokens\":20,\"max_tokens\":10}", 20},
        {"{\"model\":\"m\",\"max_tokens\":99999999999999999999999}", MG_TOKENS_MAX},
        /* not whole numbers, or not at the top: none */
        {"{\"model\":\"m\",\"max_tokens\":-5}", 0},
        {"{\"model\":\"m\",\"max_tokens\":1.5}", 0},
        {"{\"model\":\"m\",\"max_tokens\":1e3}", 0},
        {"{\"model\":\"m\",\"max_tokens\":\"50\"}", 0},
        {"{\"model\":\"m\",\"max_tokens\":null}", 0},
        {"{\"model\":\"m\",\"x\":{\"max_tokens\":50}}", 0},
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        ck_assert_int_eq(scan(cases[i].body, model, &r), MG_JSON_OK);
        ck_assert_msg(r.max_tokens == cases[i].want, "%s: %lld", cases[i].body,
                      (long long)r.max_tokens);
    }
    ck_assert_int_eq(scan("{\"model\":\"m\",\"max_tokens\":5x}", model, &r), MG_JSON_INVALID);
}
END_TEST

START_TEST(replace_model_keeps_other_bytes)
{
    const char *b = "{ \"messages\" : [ ],\n  \"model\":\t\"small\" ,\"temperature\":0.5 }";
    char model[64];
    struct mg_json_req r;
    struct mg_buf out;

    ck_assert_int_eq(scan(b, model, &r), MG_JSON_OK);
    mg_buf_init(&out, 1024);
    ck_assert_int_eq(mg_json_rewrite(b, strlen(b), &r, "big \"one\"", 0, &out), MG_OK);
    ck_assert_str_eq(out.data,
                     "{ \"messages\" : [ ],\n  \"model\":\t\"big \\\"one\\\"\" ,\"temperature\":0.5 }");
    ck_assert_int_eq(mg_json_scan_request(out.data, out.len, model, sizeof(model), &r), MG_JSON_OK);
    ck_assert_str_eq(model, "big \"one\"");
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(rewrite_adds_usage_and_model)
{
    const char *b = "{\"model\":\"m\", \"stream\":true,\"messages\":[{\"x\":\"}\"}] } ";
    char model[64];
    struct mg_json_req r;
    struct mg_buf out;

    ck_assert_int_eq(scan(b, model, &r), MG_JSON_OK);
    ck_assert_int_eq(r.include_usage, 0);
    mg_buf_init(&out, 1024);
    ck_assert_int_eq(mg_json_rewrite(b, strlen(b), &r, NULL, 1, &out), MG_OK);
    ck_assert_str_eq(out.data, "{\"model\":\"m\", \"stream\":true,\"messages\":[{\"x\":\"}\"}] "
                               ",\"stream_options\":{\"include_usage\":true}} ");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_json_rewrite(b, strlen(b), &r, "big", 0, &out), MG_OK);
    ck_assert_str_eq(out.data, "{\"model\":\"big\", \"stream\":true,\"messages\":[{\"x\":\"}\"}] } ");
    mg_buf_deinit(&out);
}
END_TEST

/* Every shape of stream_options gets include_usage turned on with one edit. */
START_TEST(rewrite_turns_include_usage_on)
{
    static const struct { const char *in, *out; int already; } cases[] = {
        {"{\"stream_options\":{\"include_usage\":false},\"model\":\"m\"}",
         "{\"stream_options\":{\"include_usage\":true},\"model\":\"big\"}", 0},
        {"{\"model\":\"m\",\"stream_options\":{}}",
         "{\"model\":\"big\",\"stream_options\":{\"include_usage\":true}}", 0},
        {"{\"model\":\"m\",\"stream_options\":{ \"x\":1 }}",
         "{\"model\":\"big\",\"stream_options\":{\"include_usage\":true, \"x\":1 }}", 0},
        {"{\"model\":\"m\",\"stream_options\":null}",
         "{\"model\":\"big\",\"stream_options\":{\"include_usage\":true}}", 0},
        {"{\"model\":\"m\",\"stream_options\":{\"x\":[1],\"include_usage\":true}}",
         "{\"model\":\"big\",\"stream_options\":{\"x\":[1],\"include_usage\":true}}", 1},
    };
    char model[64];
    struct mg_json_req r;
    struct mg_buf out;
    size_t i;

    mg_buf_init(&out, 1024);
    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        ck_assert_int_eq(scan(cases[i].in, model, &r), MG_JSON_OK);
        ck_assert_int_eq(r.include_usage, cases[i].already);
        mg_buf_reset(&out);
        ck_assert_int_eq(mg_json_rewrite(cases[i].in, strlen(cases[i].in), &r, "big", 1, &out),
                         MG_OK);
        ck_assert_str_eq(out.data, cases[i].out);
    }
    mg_buf_deinit(&out);
}
END_TEST

/* SPEC "The commit point": which chat and completion chunks carry output or a finish. */
START_TEST(stream_chunk_kinds)
{
    static const struct {
        const char *data;
        int         kind;
    } cases[] = {
        /* the role chunk, null members, empty strings: no output */
        {"{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}", 0},
        {"{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", 0},
        {"{\"choices\":[{\"delta\":{\"content\":null,\"refusal\":null,\"tool_calls\":[]}}]}", 0},
        {"{\"choices\":[],\"usage\":null}", 0},
        {"{\"choices\":[{\"text\":\"\",\"finish_reason\":null}]}", 0},
        {"{\"object\":\"chat.completion.chunk\"}", 0},
        /* output: content, refusal, tool calls, reasoning, text, usage */
        {"{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", 1},
        {"{\"choices\":[{\"delta\":{\"refusal\":\"no\"}}]}", 1},
        {"{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\"}]}}]}", 1},
        {"{\"choices\":[{\"delta\":{\"reasoning_content\":\" \"}}]}", 1},
        {"{\"choices\":[{\"delta\":{\"audio\":{\"id\":\"a\"}}}]}", 1},
        {"{\"choices\":[{\"text\":\"x\"}]}", 1},
        {"{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}", 1},
        {" { \"choices\" : [ { \"delta\" : { \"cont\\u0065nt\" : \"x\" } } ] } ", 1},
        /* a finish: output too */
        {"{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}", 3},
        {"{\"choices\":[{\"delta\":{}},{\"delta\":{},\"finish_reason\":\"length\"}]}", 3},
        /* "role" only counts as nothing when it is the member's exact name */
        {"{\"choices\":[{\"delta\":{\"roles\":\"x\"}}]}", 1},
        /* not a JSON object: nothing */
        {"{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]", 0},
        {"{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]} x", 0},
        {"[{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}]", 0},
        {"{\"choices\":[{\"delta\":{\"content\":\"Hi\",}}]}", 0},
        {"", 0},
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        int k = mg_json_chunk_kind(cases[i].data, strlen(cases[i].data));
        ck_assert_msg(k == cases[i].kind, "case %zu: %d, want %d: %s", i, k, cases[i].kind,
                      cases[i].data);
    }
}
END_TEST

Suite *
json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *t = tcase_create("scan");

    tcase_add_test(t, valid_bodies);
    tcase_add_test(t, invalid_bodies);
    tcase_add_test(t, deep_nesting_refused);
    tcase_add_test(t, not_object_and_missing_model);
    tcase_add_test(t, model_and_stream);
    tcase_add_test(t, max_tokens_for_the_estimate);
    tcase_add_test(t, replace_model_keeps_other_bytes);
    tcase_add_test(t, rewrite_adds_usage_and_model);
    tcase_add_test(t, rewrite_turns_include_usage_on);
    tcase_add_test(t, stream_chunk_kinds);
    suite_add_tcase(s, t);
    return s;
}
