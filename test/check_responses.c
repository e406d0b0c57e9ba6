/*
 * Unit tests of the Responses API translators (mg_responses): golden files under
 * test/golden/responses/ compared as JSON, plus the edges a golden file cannot show (caps, bad
 * input, the stream's state, the store's history).
 *
 * Golden files:
 *   req-X.in.json    -> req-X.out.json (the chat body) or req-X.err ("invalid|unsupported PARAM
 *                       [CODE]", "-" for no param; CODE: previous_response_not_found,
 *                       item_not_found); optional req-X.prior.json (the stored chain),
 *                       req-X.refs.json ({id: item} for item_reference), req-X.dropped (the
 *                       dropped tool types). "-refuse" in X: hosted_tools refuse; "-maxtok" in X:
 *                       max_tokens_param max_tokens (else max_completion_tokens).
 *   ans-X.in.json    -> ans-X.out.json (the Response); optional ans-X.req.json (the request).
 *   stream-X.in.sse  -> stream-X.out.sse (the response.* events); optional stream-X.req.json.
 *                       A last line "#fail: M" in the input calls mg_resp_stream_fail(M) instead
 *                       of mg_resp_stream_end.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_chatreq.h"
#include "mg_responses.h"
#include "mg_test.h"

#define GOLDEN  "test/golden/responses/"
#define NOW     1700000000
#define HEX     "0123456789abcdef0123456789abcdef"
#define SEND    "backend-model"

Suite *responses_suite(void);

/* ---- helpers ---- */

static char *
slurp(const char *base, const char *suffix, size_t *len)
{
    char path[512];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), GOLDEN "%s%s", base, suffix);
    if ((f = fopen(path, "rb")) == NULL) {
        return NULL;
    }
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    p = mg_malloc((size_t)n + 1);
    ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

static json_t *
load(const char *base, const char *suffix, int required)
{
    size_t n;
    char *p = slurp(base, suffix, &n);
    json_t *j;

    if (p == NULL) {
        ck_assert_msg(!required, "%s%s is missing", base, suffix);
        return NULL;
    }
    j = json_loadb(p, n, 0, NULL);
    ck_assert_msg(j != NULL, "%s%s is not JSON", base, suffix);
    free(p);
    return j;
}

static void
expect_json(const char *label, const char *got, size_t n, const json_t *want)
{
    json_t *g = json_loadb(got, n, 0, NULL);
    char *gs = g ? json_dumps(g, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    char *ws = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);

    ck_assert_msg(g != NULL, "%s: output is not JSON: %.*s", label, (int)n, got);
    ck_assert_msg(json_equal(g, want), "%s:\n got  %s\n want %s", label, gs, ws);
    free(gs);
    free(ws);
    json_decref(g);
}

typedef void (*golden_fn)(const char *base);

static int
each_golden(const char *prefix, const char *suffix, golden_fn fn)
{
    char base[256];
    struct dirent *de;
    DIR *d;
    int n = 0;

    ck_assert_msg((d = opendir(GOLDEN)) != NULL, "no " GOLDEN " (run from the source tree)");
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l <= sl || l >= sizeof(base)
            || strcmp(de->d_name + l - sl, suffix) != 0) {
            continue;
        }
        memcpy(base, de->d_name, l - sl);
        base[l - sl] = '\0';
        fn(base);
        n++;
    }
    closedir(d);
    return n;
}

static struct mg_resp_ctx *
ctx_of(const char *body, struct mg_chatreq_err *e, int *rc)
{
    return mg_resp_ctx_create(body, strlen(body), HEX, NOW, e, rc);
}

/* lookup for item_reference: arg is a JSON object {id: item} */
static const json_t *
refs_lookup(void *arg, const char *id)
{
    return json_object_get(arg, id);
}

/*
 * Splits a response.* stream into a JSON array of {event, data} and checks what every event
 * must be: event: + data: lines, the event name equal to data.type, sequence_number from 0.
 */
static json_t *
parse_events(const char *label, const char *p, size_t n, int check_seq)
{
    json_t *all = json_array();
    const char *end = p + n;
    json_int_t seq = 0;

    while (p < end) {
        const char *sep = strstr(p, "\n\n"), *nl = strchr(p, '\n');
        char name[96];
        json_t *data;

        ck_assert_msg(sep != NULL && nl != NULL && strncmp(p, "event: ", 7) == 0
                      && strncmp(nl + 1, "data: ", 6) == 0, "%s: not an event: %.80s", label, p);
        ck_assert_msg((size_t)(nl - p - 7) < sizeof(name), "%s: long name", label);
        memcpy(name, p + 7, (size_t)(nl - p - 7));
        name[nl - p - 7] = '\0';
        data = json_loadb(nl + 7, (size_t)(sep - nl - 7), 0, NULL);
        ck_assert_msg(data != NULL, "%s: data is not JSON: %.*s", label, (int)(sep - nl - 7),
                      nl + 7);
        ck_assert_msg(json_is_string(json_object_get(data, "type"))
                      && strcmp(json_string_value(json_object_get(data, "type")), name) == 0,
                      "%s: type is not %s", label, name);
        if (check_seq) {
            ck_assert_msg(json_integer_value(json_object_get(data, "sequence_number")) == seq,
                          "%s: %s has sequence_number %lld, not %lld", label, name,
                          (long long)json_integer_value(json_object_get(data,
                                                                        "sequence_number")),
                          (long long)seq);
        }
        seq++;
        json_array_append_new(all, json_pack("{s:s,s:o}", "event", name, "data", data));
        p = sep + 2;
    }
    return all;
}

/* ---- golden requests ---- */

static void
golden_request(const char *base)
{
    struct mg_resp_opts o = {SEND, "max_completion_tokens", 1, 0, NULL, 0};
    struct mg_chatreq_err e = {"", "", NULL};
    struct mg_resp_ctx *c;
    struct mg_buf out, dropped;
    size_t n, en, dn;
    char *body = slurp(base, ".in.json", &n), *err = slurp(base, ".err", &en);
    char *drop = slurp(base, ".dropped", &dn);
    json_t *prior = load(base, ".prior.json", 0), *refs = load(base, ".refs.json", 0);
    char kind[32], param[96], code[64] = "";
    int rc;

    ck_assert_msg(body != NULL, "%s", base);
    o.hosted_refuse = strstr(base, "-refuse") != NULL;
    if (strstr(base, "-maxtok") != NULL) {
        o.max_tokens_param = "max_tokens";
    }
    mg_buf_init(&out, 1 << 20);
    mg_buf_init(&dropped, 4096);
    c = mg_resp_ctx_create(body, n, HEX, NOW, &e, &rc);
    if (c != NULL) {
        rc = mg_resp_request(c, prior, refs != NULL ? refs_lookup : NULL, refs, &o, &out,
                             &dropped, &e);
    }
    if (err != NULL) {
        int code_of = c != NULL ? mg_resp_ctx_code(c) : MG_RESP_CODE_NONE;

        ck_assert_int_ge(sscanf(err, "%31s %95s %63s", kind, param, code), 2);
        ck_assert_msg(rc == (strcmp(kind, "invalid") == 0 ? MG_CHATREQ_EINVAL
                             : MG_CHATREQ_EUNSUPPORTED), "%s: rc %d (%s)", base, rc, e.message);
        ck_assert_msg(strcmp(e.param, strcmp(param, "-") == 0 ? "" : param) == 0,
                      "%s: param %s", base, e.param);
        ck_assert_msg(e.message[0] != '\0' && out.len == 0, "%s", base);
        if (strcmp(code, "previous_response_not_found") == 0) {
            ck_assert_int_eq(code_of, MG_RESP_CODE_PREV_MISSING);
        } else if (strcmp(code, "item_not_found") == 0) {
            ck_assert_int_eq(code_of, MG_RESP_CODE_ITEM_MISSING);
        } else if (strcmp(kind, "unsupported") == 0 && c != NULL) {
            ck_assert_int_eq(code_of, MG_RESP_CODE_UNSUPPORTED);
        }
    } else {
        json_t *want = load(base, ".out.json", 1);

        ck_assert_msg(rc == MG_OK, "%s: rc %d: %s", base, rc, e.message);
        expect_json(base, out.data, out.len, want);
        json_decref(want);
        if (drop != NULL) {
            while (dn > 0 && (drop[dn - 1] == '\n' || drop[dn - 1] == ' ')) {
                drop[--dn] = '\0';
            }
        }
        ck_assert_msg(strcmp(dropped.len > 0 ? dropped.data : "", drop != NULL ? drop : "") == 0,
                      "%s: dropped '%s'", base, dropped.len > 0 ? dropped.data : "");
    }
    mg_resp_ctx_destroy(c);
    json_decref(prior);
    json_decref(refs);
    free(body);
    free(err);
    free(drop);
    mg_buf_deinit(&out);
    mg_buf_deinit(&dropped);
}

START_TEST(golden_requests)
{
    ck_assert_int_ge(each_golden("req-", ".in.json", golden_request), 12);
}
END_TEST

/* ---- golden answers ---- */

static void
golden_answer(const char *base)
{
    static const char dflt[] = "{\"model\":\"my-model\",\"input\":\"hi\"}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c;
    struct mg_usage u;
    struct mg_buf out;
    size_t n, rn;
    char *chat = slurp(base, ".in.json", &n), *req = slurp(base, ".req.json", &rn);
    json_t *want = load(base, ".out.json", 1);
    int rc;

    c = req != NULL ? mg_resp_ctx_create(req, rn, HEX, NOW, &e, &rc) : ctx_of(dflt, &e, &rc);
    ck_assert_msg(c != NULL, "%s: %s", base, e.message);
    mg_buf_init(&out, 1 << 20);
    ck_assert_int_eq(mg_resp_answer(c, chat, n, NOW + 3, &out, &u), MG_OK);
    expect_json(base, out.data, out.len, want);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
    json_decref(want);
    free(chat);
    free(req);
}

START_TEST(golden_answers)
{
    ck_assert_int_ge(each_golden("ans-", ".in.json", golden_answer), 6);
}
END_TEST

/* ---- golden streams ---- */

/* Feeds every event of an .in.sse; returns the #fail message (or NULL). */
static const char *
feed_all(const char *base, struct mg_resp_stream *s, char *in, size_t n, struct mg_buf *out)
{
    char *p = in, *end = in + n;

    while (p < end) {
        char *sep = strstr(p, "\n\n");
        size_t l = sep != NULL ? (size_t)(sep - p) : strlen(p);
        int rc;

        if (strncmp(p, "#fail: ", 7) == 0) {
            while (l > 0 && p[l - 1] == '\n') {
                l--;
            }
            p[l] = '\0';
            return p + 7;
        }
        rc = mg_resp_stream_feed(s, p, l, out);
        ck_assert_msg(rc == MG_OK, "%s: feed %d (%s)", base, rc, mg_resp_stream_error(s));
        p += l + (sep != NULL ? 2 : 0);
    }
    return NULL;
}

static void
golden_stream(const char *base)
{
    static const char dflt[] = "{\"model\":\"my-model\",\"input\":\"hi\",\"stream\":true}";
    struct mg_resp_stream_state st;
    struct mg_chatreq_err e;
    struct mg_resp_stream *s;
    struct mg_resp_ctx *c;
    struct mg_buf out, fin;
    size_t n, wn, rn, i;
    char *in = slurp(base, ".in.sse", &n), *want = slurp(base, ".out.sse", &wn);
    char *req = slurp(base, ".req.json", &rn);
    const char *fail;
    json_t *got, *exp, *last;
    char *gs, *ws;
    int rc;

    ck_assert_msg(want != NULL, "%s.out.sse is missing", base);
    c = req != NULL ? mg_resp_ctx_create(req, rn, HEX, NOW, &e, &rc) : ctx_of(dflt, &e, &rc);
    ck_assert_msg(c != NULL, "%s: %s", base, e.message);
    s = mg_resp_stream_create(c, 1 << 20);
    mg_buf_init(&out, 1 << 22);
    mg_buf_init(&fin, 1 << 22);
    fail = feed_all(base, s, in, n, &out);
    ck_assert_int_eq(fail != NULL ? mg_resp_stream_fail(s, fail, strlen(fail), &out)
                                  : mg_resp_stream_end(s, NOW + 5, &out), MG_OK);
    mg_resp_stream_state(s, &st);
    ck_assert(st.committed && st.done);
    got = parse_events(base, out.data, out.len, 1);
    exp = parse_events(base, want, wn, 0);
    for (i = 0; i < json_array_size(got) || i < json_array_size(exp); i++) {
        /* event by event: Check's messages are short */
        gs = json_dumps(json_array_get(got, i), JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        ws = json_dumps(json_array_get(exp, i), JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
        ck_assert_msg(json_equal(json_array_get(got, i), json_array_get(exp, i)),
                      "%s: event %zu\n got  %.1800s\n want %.1800s", base, i, gs ? gs : "-",
                      ws ? ws : "-");
        free(gs);
        free(ws);
    }
    /* the store gets what the last event carried */
    ck_assert_int_eq(mg_resp_stream_response(s, &fin), MG_OK);
    last = json_object_get(json_object_get(json_array_get(got, json_array_size(got) - 1),
                                           "data"), "response");
    expect_json(base, fin.data, fin.len, last);
    json_decref(got);
    json_decref(exp);
    mg_resp_stream_destroy(s);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
    mg_buf_deinit(&fin);
    free(in);
    free(want);
    free(req);
}

START_TEST(golden_streams)
{
    ck_assert_int_ge(each_golden("stream-", ".in.sse", golden_stream), 6);
}
END_TEST

/* ---- edges ---- */

static const struct mg_resp_opts OPTS = {SEND, "max_completion_tokens", 1, 0, NULL, 0};

/* A stream over the default request, fed the given events (each without its blank line). */
static struct mg_resp_stream *
stream_of(struct mg_resp_ctx **c, const char *const *evs, size_t n, struct mg_buf *out)
{
    static const char req[] = "{\"model\":\"my-model\",\"input\":\"hi\",\"stream\":true}";
    struct mg_chatreq_err e;
    struct mg_resp_stream *s;
    size_t i;
    int rc;

    *c = ctx_of(req, &e, &rc);
    ck_assert_ptr_nonnull(*c);
    s = mg_resp_stream_create(*c, 1 << 16);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(mg_resp_stream_feed(s, evs[i], strlen(evs[i]), out), MG_OK);
    }
    return s;
}

START_TEST(request_caps)
{
    static const char body[] = "{\"model\":\"m\",\"input\":\"a long enough question\"}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c = ctx_of(body, &e, NULL);
    struct mg_buf out, dropped;

    ck_assert_ptr_nonnull(c);
    mg_buf_init(&out, 16);
    mg_buf_init(&dropped, 64);
    ck_assert_int_eq(mg_resp_request(c, NULL, NULL, NULL, &OPTS, &out, &dropped, &e), MG_ETOOBIG);
    mg_buf_deinit(&out);
    mg_buf_init(&out, 4096);
    ck_assert_int_eq(mg_resp_request(c, NULL, NULL, NULL, &OPTS, &out, &dropped, &e), MG_OK);
    mg_buf_deinit(&out);
    mg_buf_deinit(&dropped);
    mg_resp_ctx_destroy(c);
}
END_TEST

START_TEST(request_malformed)
{
    static const char *const bad[] = {
        "", "{", "null", "\"x\"", "{\"model\":1}", "{\"model\":\"m\",\"input\":5}",
        "{\"model\":\"m\",\"instructions\":[]}", "{\"model\":\"m\",\"model\":\"n\"}",
        "{\"model\":\"m\",\"previous_response_id\":7}",
    };
    static const char *const refused[] = {   /* 400 in mg_resp_request: no crash, e filled */
        "{\"model\":\"m\",\"input\":[1]}", "{\"model\":\"m\",\"input\":[{}]}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\"}]}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"input_text\"}]}]}",
        "{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"name\":\"n\"}]}",
        "{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\"}]}",
        "{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\"}]}",
        "{\"model\":\"m\",\"tools\":{}}", "{\"model\":\"m\",\"tools\":[{\"type\":\"function\"}]}",
        "{\"model\":\"m\",\"tool_choice\":\"sometimes\"}",
        "{\"model\":\"m\",\"tool_choice\":"
        "{\"type\":\"allowed_tools\",\"mode\":\"none\"}}",
        "{\"model\":\"m\",\"input\":[{\"role\":\"assistant\",\"content\":"
        "[{\"type\":\"input_image\",\"image_url\":\"https://x\"}]}]}",
    };
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c;
    struct mg_buf out;
    size_t i;
    int rc;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        e.message[0] = '\0';
        ck_assert_msg(mg_resp_ctx_create(bad[i], strlen(bad[i]), HEX, NOW, &e, &rc) == NULL,
                      "%s", bad[i]);
        ck_assert_int_eq(rc, MG_CHATREQ_EINVAL);
        ck_assert(e.message[0] != '\0');
    }
    mg_buf_init(&out, 1 << 16);
    for (i = 0; i < MG_ARRAY_LEN(refused); i++) {
        c = ctx_of(refused[i], &e, &rc);
        ck_assert_msg(c != NULL, "%s", refused[i]);
        rc = mg_resp_request(c, NULL, NULL, NULL, &OPTS, &out, NULL, &e);
        ck_assert_msg(rc == MG_CHATREQ_EINVAL || rc == MG_CHATREQ_EUNSUPPORTED, "%s: %d",
                      refused[i], rc);
        ck_assert_msg(out.len == 0 && e.message[0] != '\0', "%s", refused[i]);
        mg_resp_ctx_destroy(c);
    }
    mg_buf_deinit(&out);
}
END_TEST

/* lookup that never finds (a NULL callback does the same) */
static const json_t *
no_lookup(void *arg, const char *id)
{
    (void)arg;
    (void)id;
    return NULL;
}

START_TEST(request_codes)
{
    static const char ref[] = "{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\","
                              "\"id\":\"fc_mg1_0\"}]}";
    static const char nested[] = "{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\","
                                 "\"id\":\"r\"}]}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c = ctx_of(ref, &e, NULL);
    json_t *refs = json_pack("{s:{s:s,s:s}}", "r", "type", "item_reference", "id", "r");
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_resp_request(c, NULL, no_lookup, NULL, &OPTS, &out, NULL, &e),
                     MG_CHATREQ_EINVAL);
    ck_assert_int_eq(mg_resp_ctx_code(c), MG_RESP_CODE_ITEM_MISSING);
    ck_assert_str_eq(e.param, "input[0]");
    ck_assert_ptr_nonnull(strstr(e.message, "fc_mg1_0"));
    mg_resp_ctx_destroy(c);
    /* a reference to a reference is not followed */
    c = ctx_of(nested, &e, NULL);
    ck_assert_int_eq(mg_resp_request(c, NULL, refs_lookup, refs, &OPTS, &out, NULL, &e),
                     MG_CHATREQ_EUNSUPPORTED);
    ck_assert_int_eq(mg_resp_ctx_code(c), MG_RESP_CODE_UNSUPPORTED);
    ck_assert_int_eq(out.len, 0);
    mg_resp_ctx_destroy(c);
    json_decref(refs);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(ctx_accessors)
{
    static const char body[] = "{\"model\":\"my-model\",\"input\":\"x\",\"store\":false,"
                               "\"stream\":true,\"previous_response_id\":\"resp_1\"}";
    static const char chat[] = "{\"choices\":[{\"message\":{\"content\":\"a\"},"
                               "\"finish_reason\":\"stop\"}]}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c = ctx_of(body, &e, NULL);
    struct mg_buf out;
    json_t *r;

    ck_assert_str_eq(mg_resp_ctx_id(c), "resp_mg" HEX);
    ck_assert_uint_le(strlen(mg_resp_ctx_id(c)), 64);
    ck_assert_str_eq(mg_resp_ctx_model(c), "my-model");
    ck_assert_str_eq(mg_resp_ctx_previous(c), "resp_1");
    ck_assert_int_eq(mg_resp_ctx_stream(c), 1);
    ck_assert_int_eq(mg_resp_ctx_store(c), 0);
    mg_resp_ctx_set_store(c, 0);
    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_resp_answer(c, chat, strlen(chat), NOW, &out, NULL), MG_OK);
    r = json_loads(out.data, 0, NULL);
    ck_assert(json_is_false(json_object_get(r, "store")));
    ck_assert_str_eq(json_string_value(json_object_get(r, "previous_response_id")), "resp_1");
    json_decref(r);
    mg_buf_deinit(&out);
    mg_resp_ctx_destroy(c);
    mg_resp_ctx_destroy(NULL);
}
END_TEST

START_TEST(answer_edges)
{
    static const char *const bad[] = {
        "", "not json", "{}", "{\"choices\":[]}", "{\"choices\":[{\"message\":null}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{}}]}}]}",
    };
    static const char ok[] = "{\"choices\":[{\"message\":{\"content\":\"0123456789\"},"
                             "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                             "\"completion_tokens\":4}}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c = ctx_of("{\"model\":\"m\"}", &e, NULL);
    struct mg_usage u;
    struct mg_buf out;
    size_t i;

    mg_buf_init(&out, 1 << 16);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(mg_resp_answer(c, bad[i], strlen(bad[i]), NOW, &out, &u) == MG_ERR, "%s",
                      bad[i]);
        ck_assert_int_eq(out.len, 0);
    }
    ck_assert_int_eq(mg_resp_answer(c, ok, strlen(ok), NOW, &out, &u), MG_OK);
    ck_assert(u.input == 3 && u.output == 4);
    mg_buf_deinit(&out);
    mg_buf_init(&out, 200);   /* a Response is longer: nothing half-written */
    ck_assert_int_eq(mg_resp_answer(c, ok, strlen(ok), NOW, &out, &u), MG_ETOOBIG);
    ck_assert_int_eq(out.len, 0);
    mg_buf_deinit(&out);
    mg_resp_ctx_destroy(c);
}
END_TEST

START_TEST(history_chain)
{
    static const char req[] = "{\"model\":\"m\",\"instructions\":\"sys\",\"input\":\"again\"}";
    static const char chat[] = "{\"choices\":[{\"message\":{\"content\":\"ok\"},"
                               "\"finish_reason\":\"stop\"}]}";
    struct mg_chatreq_err e;
    struct mg_resp_ctx *c = ctx_of(req, &e, NULL);
    json_t *prior = json_pack("[{s:s,s:s,s:s}]", "type", "message", "role", "user", "content",
                              "first");
    json_t *got, *want;
    struct mg_buf chatbody, resp, hist;

    mg_buf_init(&chatbody, 1 << 16);
    mg_buf_init(&resp, 1 << 16);
    mg_buf_init(&hist, 1 << 16);
    ck_assert_int_eq(mg_resp_history(c, "{\"output\":[]}", 13, &hist), MG_ERR);  /* too early */
    ck_assert_int_eq(mg_resp_request(c, prior, NULL, NULL, &OPTS, &chatbody, NULL, &e), MG_OK);
    ck_assert_int_eq(mg_resp_answer(c, chat, strlen(chat), NOW, &resp, NULL), MG_OK);
    ck_assert_int_eq(mg_resp_history(c, "[]", 2, &hist), MG_ERR);
    ck_assert_int_eq(mg_resp_history(c, resp.data, resp.len, &hist), MG_OK);
    got = json_loads(hist.data, 0, NULL);
    want = json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:[{s:s,s:s}]},{s:s,s:s,s:s,s:s,s:[{s:s,s:s,s:[],"
                     "s:[]}]}]",
                     "type", "message", "role", "user", "content", "first",
                     "type", "message", "role", "user", "content", "type", "input_text", "text",
                     "again",
                     "id", "msg_mg" HEX "_0", "type", "message", "status", "completed", "role",
                     "assistant", "content", "type", "output_text", "text", "ok", "annotations",
                     "logprobs");
    ck_assert_msg(json_equal(got, want), "%s", hist.data);
    json_decref(got);
    json_decref(want);
    json_decref(prior);
    mg_buf_deinit(&chatbody);
    mg_buf_deinit(&resp);
    mg_buf_deinit(&hist);
    mg_resp_ctx_destroy(c);
}
END_TEST

START_TEST(stream_before_commit)
{
    static const char *const evs[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}",
        ": keep-alive comment",
    };
    struct mg_resp_stream_state st;
    struct mg_resp_stream *s;
    struct mg_resp_ctx *c;
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    s = stream_of(&c, evs, MG_ARRAY_LEN(evs), &out);
    ck_assert_int_eq(out.len, 0);   /* nothing carried output: nothing written */
    mg_resp_stream_state(s, &st);
    ck_assert(!st.committed && !st.finished && !st.done);
    ck_assert_int_eq(mg_resp_stream_end(s, NOW, &out), MG_ERR);
    ck_assert_int_eq(out.len, 0);
    ck_assert_int_eq(mg_resp_stream_response(s, &out), MG_ERR);
    /* a failure before commit still makes a well-formed stream */
    ck_assert_int_eq(mg_resp_stream_fail(s, "gone", 4, &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "event: response.created\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "event: response.failed\n"));
    mg_resp_stream_state(s, &st);
    ck_assert(st.committed && st.done);
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_resp_stream_end(s, NOW, &out), MG_OK);   /* done: nothing more */
    ck_assert_int_eq(mg_resp_stream_fail(s, "x", 1, &out), MG_OK);
    ck_assert_int_eq(mg_resp_stream_feed(s, evs[0], strlen(evs[0]), &out), MG_OK);
    ck_assert_int_eq(out.len, 0);
    mg_resp_stream_destroy(s);
    mg_resp_stream_destroy(NULL);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(stream_broken)
{
    static const char *const evs[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}",
    };
    static const char late[] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
                               "[{\"index\":0,\"function\":{\"arguments\":\"}\"}}]}}]}";
    static const char err[] = "data: {\"error\":{\"message\":\"overloaded\"}}";
    struct mg_resp_stream *s;
    struct mg_resp_ctx *c;
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    s = stream_of(&c, evs, MG_ARRAY_LEN(evs), &out);
    ck_assert_int_eq(mg_resp_stream_feed(s, late, strlen(late), &out), MG_RESP_ESTREAM);
    ck_assert_ptr_nonnull(strstr(mg_resp_stream_error(s), "ended"));
    ck_assert_int_eq(mg_resp_stream_feed(s, "data: {nope", 11, &out), MG_RESP_ESTREAM);
    ck_assert_int_eq(mg_resp_stream_feed(s, "data: [1]", 9, &out), MG_RESP_ESTREAM);
    ck_assert_int_eq(mg_resp_stream_feed(s, err, strlen(err), &out), MG_RESP_ESTREAM);
    ck_assert_str_eq(mg_resp_stream_error(s), "overloaded");
    mg_resp_stream_destroy(s);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(stream_caps_and_usage)
{
    static const char *const evs[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}",
    };
    static const char more[] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more "
                               "text\"}}]}";
    static const char split[] = "data: {\"choices\":[{\"index\":0,\"delta\":\ndata: {\"content\":"
                                "\"!\"},\"finish_reason\":\"stop\"}]}";
    struct mg_resp_stream_state st;
    struct mg_usage est = {5, 6, -1, -1};
    struct mg_resp_stream *s;
    struct mg_resp_ctx *c;
    struct mg_buf out, small;
    json_t *r;

    mg_buf_init(&out, 1 << 16);
    mg_buf_init(&small, 32);
    s = stream_of(&c, evs, MG_ARRAY_LEN(evs), &out);
    ck_assert_int_eq(mg_resp_stream_feed(s, more, strlen(more), &small), MG_ETOOBIG);
    ck_assert_int_eq(small.len, 0);
    /* an event of two data: lines is one chunk, joined with a newline (valid JSON white space) */
    ck_assert_int_eq(mg_resp_stream_feed(s, split, strlen(split), &out), MG_OK);
    mg_resp_stream_state(s, &st);
    ck_assert(st.committed && st.finished && !st.done && st.usage.input == -1);
    mg_resp_stream_set_usage(s, &est);
    ck_assert_int_eq(mg_resp_stream_end(s, NOW, &out), MG_OK);
    mg_buf_reset(&small);
    mg_buf_deinit(&small);
    mg_buf_init(&small, 1 << 16);
    ck_assert_int_eq(mg_resp_stream_response(s, &small), MG_OK);
    r = json_loads(small.data, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r, "usage"),
                                                        "total_tokens")), 11);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(
        json_array_get(json_object_get(r, "output"), 0), "content"), 0), "text")), "hi!");
    json_decref(r);
    mg_resp_stream_destroy(s);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
    mg_buf_deinit(&small);
}
END_TEST

START_TEST(stream_parts)
{
    /* refusal after text in one message: a second content part, content_index 1 */
    static const char *const evs[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Sure\"}}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"no\"}}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}",
        "data: [DONE]",
    };
    struct mg_resp_stream *s;
    struct mg_resp_ctx *c;
    struct mg_buf out;
    json_t *evj;

    mg_buf_init(&out, 1 << 16);
    s = stream_of(&c, evs, MG_ARRAY_LEN(evs), &out);
    ck_assert_int_eq(mg_resp_stream_end(s, NOW, &out), MG_OK);
    evj = parse_events("parts", out.data, out.len, 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"type\":\"response.refusal.delta\","
                                 "\"sequence_number\":8,\"item_id\":\"msg_mg" HEX "_0\","
                                 "\"output_index\":0,\"content_index\":1"));
    ck_assert_ptr_nonnull(strstr(out.data, "\"content\":[{\"type\":\"output_text\",\"text\":\"Sure"
                                           "\",\"annotations\":[],\"logprobs\":[]},{\"type\":"
                                           "\"refusal\",\"refusal\":\"no\"}]"));
    json_decref(evj);
    mg_resp_stream_destroy(s);
    mg_resp_ctx_destroy(c);
    mg_buf_deinit(&out);
}
END_TEST

Suite *
responses_suite(void)
{
    Suite *s = suite_create("responses");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, golden_requests);
    tcase_add_test(tc, golden_answers);
    tcase_add_test(tc, golden_streams);
    tcase_add_test(tc, request_caps);
    tcase_add_test(tc, request_malformed);
    tcase_add_test(tc, request_codes);
    tcase_add_test(tc, ctx_accessors);
    tcase_add_test(tc, answer_edges);
    tcase_add_test(tc, history_chain);
    tcase_add_test(tc, stream_before_commit);
    tcase_add_test(tc, stream_broken);
    tcase_add_test(tc, stream_caps_and_usage);
    tcase_add_test(tc, stream_parts);
    suite_add_tcase(s, tc);
    return s;
}
