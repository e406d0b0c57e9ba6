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
        "{:model\":\"m\"}", "{\"model\":\"m\",x\":1}",
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
    ck_assert_int_eq(scan("{\"model\":\"a\",\"stream\":null}", model, &r), MG_JSON_OK);
    ck_assert_int_eq(r.stream, 0);
}
END_TEST

/*
 * Issue 19, H2: readers differ on which of two equal names they keep (Python's json the last, some
 * the first) and Go's encoding/json matches names ignoring case: the gateway would route and
 * check one model while the backend serves another.
 */
START_TEST(top_level_names)
{
    static const char *const dup[] = {
        "{\"model\":\"cheap\",\"model\":\"dear\"}",
        "{\"model\":\"cheap\",\"mod\\u0065l\":\"dear\"}",        /* equal once decoded */
        "{\"m\\u006fdel\":\"dear\",\"model\":\"cheap\"}",
        "{\"model\":\"m\",\"a\":1,\"b\":2,\"a\":3}",               /* any name */
        "{\"model\":\"m\",\"\":1,\"\":2}",
        "{\"model\":\"m\",\"caf\xc3\xa9\":1,\"caf\\u00e9\":2}",       /* UTF-8 and its escape */
        "{\"model\":\"m\",\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}",  /* a surrogate pair */
        "{\"model\":\"m\",\"stream_options\":{},\"stream_options\":null}",
        "{\"model\":\"m\",\"max_tokens\":5,\"max_tokens\":\"x\"}",       /* before the value */
        "{\"model\":\"m\",\"a\\u0000\":1,\"a\\u0000\":2}",
    };
    static const struct { const char *body, *param; } variant[] = {
        {"{\"model\":\"cheap\",\"Model\":\"dear\"}", "model"},
        {"{\"MODEL\":\"dear\",\"model\":\"cheap\"}", "model"},
        {"{\"model\":\"cheap\",\"\\u004dodel\":\"dear\"}", "model"},   /* \u004d is M */
        {"{\"model\":\"m\",\"Stream\":true}", "stream"},
        {"{\"model\":\"m\",\"STREAM\":1}", "stream"},                   /* before the value */
        {"{\"model\":\"m\",\"\\u017ftream\":true}", "stream"},         /* the long s, escaped */
        {"{\"model\":\"m\",\"\xc5\xbftream\":true}", "stream"},          /* and in UTF-8 */
        {"{\"Model\":\"dear\"}", "model"},
    };
    static const char *const fine[] = {
        "{\"mod\\u0065l\":\"m\"}",                                    /* that IS model */
        "{\"model\":\"m\",\"x\":{\"model\":1,\"model\":2,\"Model\":3}}",  /* nested: not checked */
        "{\"model\":\"m\",\"models\":1,\"Modell\":1,\"mode\":1,\"streams\":1,\"Strea\":1}",
        "{\"model\":\"m\",\"a\":1,\"A\":2,\"\\u00e9\":3,\"\\u00c9\":4}",   /* other names */
        "{\"model\":\"m\",\"\\u212aey\":1,\"key\":2,\"stre\\u0430m\":3}",  /* Kelvin, Cyrillic a */
        "{\"model\":\"m\",\"a\":1,\"a\\u0000\":2,\"\\u0000a\":3,\"\\u0000\":4,\"\":5}",
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(dup); i++) {
        ck_assert_msg(scan(dup[i], model, &r) == MG_JSON_DUPLICATE, "duplicate: %s", dup[i]);
    }
    for (i = 0; i < MG_ARRAY_LEN(variant); i++) {
        ck_assert_msg(scan(variant[i].body, model, &r) == MG_JSON_NAME_CASE, "variant: %s",
                      variant[i].body);
        ck_assert_str_eq(r.bad_param, variant[i].param);
    }
    for (i = 0; i < MG_ARRAY_LEN(fine); i++) {
        ck_assert_msg(scan(fine[i], model, &r) == MG_JSON_OK, "fine: %s", fine[i]);
        ck_assert_str_eq(model, "m");
    }
    /* which answer wins: not JSON, then duplicate, then case, then values, then the model */
    ck_assert_int_eq(scan("{\"model\":\"m\",\"model\":\"m\",}", model, &r), MG_JSON_INVALID);
    ck_assert_int_eq(scan("{\"stream\":1,\"Model\":1,\"a\":1,\"a\":1}", model, &r),
                     MG_JSON_DUPLICATE);
    ck_assert_int_eq(scan("{\"stream\":1,\"Model\":\"m\"}", model, &r), MG_JSON_NAME_CASE);
    ck_assert_int_eq(scan("{\"stream\":1}", model, &r), MG_JSON_BAD_VALUE);
}
END_TEST

/* {"model":"m", then n members "kNNNNNNN":0 (all 8 bytes: only hash and text tell them apart) */
static void
many_members(struct mg_buf *b, size_t n)
{
    size_t i;

    mg_buf_reset(b);
    ck_assert_int_eq(mg_buf_adds(b, "{\"model\":\"m\""), MG_OK);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(mg_buf_printf(b, ",\"k%07zu\":0", i), MG_OK);
    }
}

/*
 * 200k top-level members: checked by a sort, not pair by pair (2*10^10 comparisons would not end
 * within the test's timeout); a duplicate is found wherever it is and however it is written.
 */
START_TEST(many_top_level_names)
{
    static const char *const extra[] = {
        "}",                                 /* none: fine */
        ",\"k0000000\":1}",                   /* the first one again, at the end */
        ",\"k0199999\":1}",                   /* the last one again, next to it */
        ",\"k\\u0030100000\":1}",             /* one in the middle, an escape in it */
        ",\"model\":\"n\"}",
        ",\"Model\":\"n\"}",
        ",\"stream\":\"yes\"}",
    };
    static const int want[] = {MG_JSON_OK, MG_JSON_DUPLICATE, MG_JSON_DUPLICATE,
                               MG_JSON_DUPLICATE, MG_JSON_DUPLICATE, MG_JSON_NAME_CASE,
                               MG_JSON_BAD_VALUE};
    struct mg_json_req r;
    struct mg_buf b;
    char model[64];
    size_t i, base;

    mg_buf_init(&b, 16u << 20);
    many_members(&b, 200000);
    base = b.len;
    for (i = 0; i < MG_ARRAY_LEN(extra); i++) {
        b.len = base;
        ck_assert_int_eq(mg_buf_adds(&b, extra[i]), MG_OK);
        ck_assert_msg(mg_json_scan_request(b.data, b.len, model, sizeof(model), &r) == want[i],
                      "ending %s", extra[i]);
    }
    /* just past the inline names, and a duplicate of the very first */
    many_members(&b, MG_JSON_NAMES_INLINE);
    ck_assert_int_eq(mg_buf_adds(&b, "}"), MG_OK);
    ck_assert_int_eq(mg_json_scan_request(b.data, b.len, model, sizeof(model), &r), MG_JSON_OK);
    b.len--;
    ck_assert_int_eq(mg_buf_adds(&b, ",\"\\u006dodel\":1}"), MG_OK);
    ck_assert_int_eq(mg_json_scan_request(b.data, b.len, model, sizeof(model), &r),
                     MG_JSON_DUPLICATE);
    mg_buf_deinit(&b);
}
END_TEST

/* "stream" is a boolean; max_tokens-like limits integers from 1 to 2^31-1; null is absent. */
START_TEST(stream_and_limits_checked)
{
    static const struct { const char *body, *param, *got, *value; } bad[] = {
        {"{\"model\":\"m\",\"stream\":1}", "stream", "a number", "1"},
        {"{\"model\":\"m\",\"stream\":\"true\"}", "stream", "a string", "\"true\""},
        {"{\"model\":\"m\",\"stream\":{}}", "stream", "an object", "{}"},
        {"{\"model\":\"m\",\"stream\":[ ]}", "stream", "an array", "[ ]"},
        {"{\"model\":\"m\",\"max_tokens\":1e400}", "max_tokens", "a decimal number", "1e400"},
        {"{\"model\":\"m\",\"max_tokens\":1.5}", "max_tokens", "a decimal number", "1.5"},
        {"{\"model\":\"m\",\"max_tokens\":10.0}", "max_tokens", "a decimal number", "10.0"},
        {"{\"model\":\"m\",\"max_tokens\":1E3}", "max_tokens", "a decimal number", "1E3"},
        {"{\"model\":\"m\",\"max_tokens\":\"10\"}", "max_tokens", "a string", "\"10\""},
        {"{\"model\":\"m\",\"max_tokens\":-1}", "max_tokens", "an integer out of range", "-1"},
        {"{\"model\":\"m\",\"max_tokens\":-0}", "max_tokens", "an integer out of range", "-0"},
        {"{\"model\":\"m\",\"max_tokens\":0}", "max_tokens", "an integer out of range", "0"},
        {"{\"model\":\"m\",\"max_tokens\":2147483648}", "max_tokens", "an integer out of range",
         "2147483648"},
        {"{\"model\":\"m\",\"max_tokens\":18446744073709551617}", "max_tokens",
         "an integer out of range", "18446744073709551617"},
        {"{\"model\":\"m\",\"max_tokens\":false}", "max_tokens", "a boolean", "false"},
        {"{\"model\":\"m\",\"max_completion_tokens\":0}", "max_completion_tokens",
         "an integer out of range", "0"},
        {"{\"model\":\"m\",\"max_output_tokens\":[1]}", "max_output_tokens", "an array", "[1]"},
        {"{\"model\":\"m\",\"max_\\u0074okens\":0.5}", "max_tokens", "a decimal number", "0.5"},
        /* the first one wrong is told */
        {"{\"max_tokens\":0,\"stream\":1,\"model\":\"m\"}", "max_tokens",
         "an integer out of range", "0"},
    };
    static const char *const fine[] = {
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":1,\"max_completion_tokens\":2147483647}",
        "{\"model\":\"m\",\"stream\":null,\"max_tokens\":null,\"max_output_tokens\":null}",
        "{\"model\":\"m\",\"max_output_tokens\":4096,\"x\":{\"stream\":1,\"max_tokens\":-1}}",
        "{\"model\":\"m\",\"Max_Tokens\":-1,\"max_tokens_x\":1.5,\"n\":1e400}",
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(scan(bad[i].body, model, &r) == MG_JSON_BAD_VALUE, "%s", bad[i].body);
        ck_assert_str_eq(r.bad_param, bad[i].param);
        ck_assert_str_eq(r.bad_got, bad[i].got);
        ck_assert_str_eq(r.bad_want, strcmp(bad[i].param, "stream") == 0
                                     ? "a boolean" : "an integer from 1 to 2147483647");
        ck_assert_uint_eq(r.bad_len, strlen(bad[i].value));
        ck_assert_msg(memcmp(bad[i].body + r.bad_at, bad[i].value, r.bad_len) == 0, "%s",
                      bad[i].body);
    }
    for (i = 0; i < MG_ARRAY_LEN(fine); i++) {
        ck_assert_msg(scan(fine[i], model, &r) == MG_JSON_OK, "%s", fine[i]);
    }
    ck_assert_int_eq(scan(fine[0], model, &r), MG_JSON_OK);
    ck_assert_int_eq(r.stream, 1);
}
END_TEST

/* The answer-length bound the token limit's estimate adds: the largest top-level one given. */
START_TEST(max_tokens_for_the_estimate)
{
    static const struct {
        const char *body;
        int64_t     want;   /* -1: refused (MG_JSON_BAD_VALUE) */
    } cases[] = {
        {"{\"model\":\"m\"}", 0},
        {"{\"model\":\"m\",\"max_tokens\":50}", 50},
        {"{\"max_completion_tokens\": 700 ,\"model\":\"m\"}", 700},
        {"{\"model\":\"m\",\"max_output_tokens\":32000}", 32000},
        {"{\"model\":\"m\",\"max_tokens\":10,\"max_completion_tokens\":20}", 20},
        {"{\"model\":\"m\",\"max_completion_tokens\":20,\"max_tokens\":10}", 20},
        {"{\"model\":\"m\",\"max_tokens\":2147483647}", 2147483647},
        /* null, or not at the top: none */
        {"{\"model\":\"m\",\"max_tokens\":null}", 0},
        {"{\"model\":\"m\",\"x\":{\"max_tokens\":50}}", 0},
        /* not integers in range: the request is refused before any estimate */
        {"{\"model\":\"m\",\"max_tokens\":99999999999999999999999}", -1},
        {"{\"model\":\"m\",\"max_tokens\":-5}", -1},
        {"{\"model\":\"m\",\"max_tokens\":1.5}", -1},
        {"{\"model\":\"m\",\"max_tokens\":1e3}", -1},
        {"{\"model\":\"m\",\"max_tokens\":\"50\"}", -1},
    };
    char model[64];
    struct mg_json_req r;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        if (cases[i].want < 0) {
            ck_assert_int_eq(scan(cases[i].body, model, &r), MG_JSON_BAD_VALUE);
            continue;
        }
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
    tcase_add_test(t, top_level_names);
    tcase_add_test(t, many_top_level_names);
    tcase_add_test(t, stream_and_limits_checked);
    tcase_add_test(t, replace_model_keeps_other_bytes);
    tcase_add_test(t, rewrite_adds_usage_and_model);
    tcase_add_test(t, rewrite_turns_include_usage_on);
    tcase_add_test(t, stream_chunk_kinds);
    suite_add_tcase(s, t);
    return s;
}
