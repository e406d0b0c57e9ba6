/*
 * Unit tests of mg_messages (Anthropic Messages clients on chat backends): golden files under
 * test/golden/messages/, compared as JSON, plus the edges a golden file cannot show (caps, bad
 * input, the cached translation, the relay's view of a stream).
 *
 * Golden files:
 *   req-X.in.json  -> req-X.out.json (the chat body; req-X.dropped: the dropped tool types) or
 *                     req-X.err ("create|invalid|unsupported PARAM", "-" for no param);
 *                     req-X.opts.json overrides the attempt's options (DEFAULT_OPTS)
 *   ans-X.in.json  -> ans-X.out.json (the Message) or ans-X.err (malformed: MG_ERR); the request
 *                     is ans-X.req.json, else request.json
 *   err-X.in.json {"status", "body"} -> err-X.out.json
 *   stream-X.in.sse (chat events) -> stream-X.out.sse (Messages events); the driver feeds every
 *                     event, ends cleanly, and ends a cut or a failure after commit with
 *                     mg_msg_stream_fail() as the relay would
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_chatreq.h"
#include "mg_oai.h"
#include "mg_messages.h"
#include "mg_test.h"

Suite *messages_suite(void);

#define DIR_    "messages"
#define GOLDEN  "test/golden/"
#define HEX     "0123456789abcdef0123456789abcdef"
#define CUT_MSG "the backend closed the stream early"
/* DEFAULT_OPTS: model gpt-4.1, max_tokens, include_usage on, hosted tools dropped */

/* ---- helpers (the approach of check_translate.c) ---- */

static char *
slurp(const char *base, const char *suffix, size_t *len)
{
    char path[512];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), GOLDEN DIR_ "/%s%s", base, suffix);
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
load(const char *base, const char *suffix)
{
    size_t n;
    char *p = slurp(base, suffix, &n);
    json_t *j;

    ck_assert_msg(p != NULL, "%s%s is missing", base, suffix);
    j = json_loadb(p, n, 0, NULL);
    ck_assert_msg(j != NULL, "%s%s is not JSON", base, suffix);
    free(p);
    return j;
}

static void
expect_json(const char *label, const char *got, size_t n, json_t *want)
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

    ck_assert_msg((d = opendir(GOLDEN DIR_)) != NULL, "no " GOLDEN DIR_);
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

static struct mg_msg_ctx *
ctx_of(const char *body, size_t n)
{
    struct mg_chatreq_err e;
    struct mg_msg_ctx *c = mg_msg_ctx_create(body, n, HEX, &e);

    ck_assert_msg(c != NULL, "request refused: %s", e.message);
    return c;
}

static struct mg_msg_ctx *
ctx_str(const char *body)
{
    return ctx_of(body, strlen(body));
}

/* The request of an answer or stream case: base.req.json, else request.json. */
static struct mg_msg_ctx *
ctx_for(const char *base)
{
    size_t n;
    char *body = slurp(base, ".req.json", &n);
    struct mg_msg_ctx *c;

    body = body != NULL ? body : slurp("request", ".json", &n);
    ck_assert(body != NULL);
    c = ctx_of(body, n);
    free(body);
    return c;
}

/* ---- golden requests ---- */

static void
golden_request(const char *base)
{
    struct mg_msg_opts o = {"gpt-4.1", "max_tokens", 1, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_msg_ctx *c;
    struct mg_buf out, dropped;
    size_t n, en, dn;
    char *body = slurp(base, ".in.json", &n), *err = slurp(base, ".err", &en);
    char *want_dropped = slurp(base, ".dropped", &dn);
    char kind[32], param[96];
    json_t *opts = NULL, *v;
    int rc;

    char *os = slurp(base, ".opts.json", &en);

    if (os != NULL) {   /* the attempt's options, when not DEFAULT_OPTS */
        opts = json_loads(os, 0, NULL);
        free(os);
        ck_assert(opts != NULL);
        if ((v = json_object_get(opts, "model")) != NULL) {
            o.model = json_string_value(v);
        }
        if ((v = json_object_get(opts, "max_tokens_param")) != NULL) {
            o.max_tokens_param = json_string_value(v);
        }
        if ((v = json_object_get(opts, "include_usage")) != NULL) {
            o.include_usage = (int)json_integer_value(v);
        }
        if ((v = json_object_get(opts, "hosted_refuse")) != NULL) {
            o.hosted_refuse = (int)json_integer_value(v);
        }
    }
    mg_buf_init(&out, 1 << 20);
    mg_buf_init(&dropped, 4096);
    memset(&e, 0, sizeof(e));
    c = mg_msg_ctx_create(body, n, HEX, &e);
    rc = c != NULL ? mg_msg_request(c, &o, &out, &dropped, &e) : -100;
    if (err != NULL) {
        ck_assert_int_eq(sscanf(err, "%31s %95s", kind, param), 2);
        ck_assert_msg(rc == (strcmp(kind, "create") == 0 ? -100 : strcmp(kind, "invalid") == 0
                             ? MG_CHATREQ_EINVAL : MG_CHATREQ_EUNSUPPORTED),
                      "%s: rc %d (%s)", base, rc, e.message);
        ck_assert_msg(strcmp(e.param, strcmp(param, "-") == 0 ? "" : param) == 0,
                      "%s: param %s", base, e.param);
        ck_assert_msg(e.message[0] != '\0' && out.len == 0 && dropped.len == 0, "%s", base);
    } else {
        json_t *want = load(base, ".out.json");
        ck_assert_msg(rc == MG_OK, "%s: rc %d: %s", base, rc, e.message);
        expect_json(base, out.data, out.len, want);
        json_decref(want);
        if (want_dropped != NULL) {
            while (dn > 0 && want_dropped[dn - 1] == '\n') {
                want_dropped[--dn] = '\0';
            }
        }
        ck_assert_msg(strcmp(dropped.data ? dropped.data : "", want_dropped ? want_dropped : "")
                      == 0, "%s: dropped %s", base, dropped.data ? dropped.data : "");
    }
    json_decref(opts);
    mg_msg_ctx_destroy(c);
    free(body);
    free(err);
    free(want_dropped);
    mg_buf_deinit(&out);
    mg_buf_deinit(&dropped);
}

START_TEST(golden_requests)
{
    ck_assert_int_ge(each_golden("req-", ".in.json", golden_request), 30);
}
END_TEST

/* ---- golden answers and errors ---- */

static void
golden_answer(const char *base)
{
    struct mg_msg_ctx *c = ctx_for(base);
    struct mg_buf out;
    struct mg_usage u;
    size_t n, en;
    char *body = slurp(base, ".in.json", &n), *err = slurp(base, ".err", &en);
    json_t *in = json_loadb(body, n, 0, NULL), *iu = json_object_get(in, "usage");
    int rc;

    mg_buf_init(&out, 1 << 20);
    rc = mg_msg_answer(c, body, n, &out, &u);
    if (err != NULL) {
        ck_assert_msg(rc == MG_ERR && out.len == 0, "%s: rc %d", base, rc);
    } else {
        json_t *want = load(base, ".out.json");
        ck_assert_msg(rc == MG_OK, "%s: rc %d", base, rc);
        expect_json(base, out.data, out.len, want);
        json_decref(want);
        ck_assert_int_eq(u.input, iu ? json_integer_value(json_object_get(iu, "prompt_tokens"))
                         : -1);
        ck_assert_int_eq(u.output, iu ? json_integer_value(json_object_get(iu,
                         "completion_tokens")) : -1);
    }
    json_decref(in);
    free(body);
    free(err);
    mg_buf_deinit(&out);
    mg_msg_ctx_destroy(c);
}

static void
golden_error(const char *base)
{
    json_t *in = load(base, ".in.json"), *want = load(base, ".out.json");
    json_t *body = json_object_get(in, "body");
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_msg_error((int)json_integer_value(json_object_get(in, "status")),
                                  json_string_value(body), json_string_length(body), &out),
                     MG_OK);
    expect_json(base, out.data, out.len, want);
    json_decref(in);
    json_decref(want);
    mg_buf_deinit(&out);
}

START_TEST(golden_answers)
{
    ck_assert_int_ge(each_golden("ans-", ".in.json", golden_answer), 14);
}
END_TEST

START_TEST(golden_errors)
{
    ck_assert_int_ge(each_golden("err-", ".in.json", golden_error), 10);
}
END_TEST

/* ---- golden streams ---- */

/* The end of the SSE event at p (past its blank line), or NULL. */
static const char *
event_end(const char *p)
{
    const char *a = strstr(p, "\n\n"), *b = strstr(p, "\r\n\r\n");

    if (b != NULL && (a == NULL || b < a)) {
        return b + 4;
    }
    return a != NULL ? a + 2 : NULL;
}

/*
 * Splits Messages events into [[name, data], …] and checks their form: event: then data:
 * lines, \n only, the name the data's type.
 */
static json_t *
parse_events(const char *label, const char *p, size_t n)
{
    json_t *all = json_array();
    const char *end = p + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *sep;
        json_t *d;
        char name[64];

        ck_assert_msg(nl != NULL && strncmp(p, "event: ", 7) == 0 && nl - p - 7 < 64,
                      "%s: not an event: %s", label, p);
        memcpy(name, p + 7, (size_t)(nl - p - 7));
        name[nl - p - 7] = '\0';
        p = nl + 1;
        sep = strstr(p, "\n\n");
        ck_assert_msg(sep != NULL && strncmp(p, "data: ", 6) == 0, "%s: no data: %s", label, p);
        ck_assert_msg(memchr(p, '\r', (size_t)(sep - p)) == NULL, "%s: CR in output", label);
        d = json_loadb(p + 6, (size_t)(sep - p - 6), 0, NULL);
        ck_assert_msg(d != NULL, "%s: data is not JSON: %.*s", label, (int)(sep - p), p);
        ck_assert_str_eq(json_string_value(json_object_get(d, "type")), name);
        json_array_append_new(all, json_pack("[s,o]", name, d));
        p = sep + 2;
    }
    return all;
}

/* Feeds a chat SSE text to a stream as the relay would; returns the last event's rc. */
static int
feed(struct mg_msg_stream *s, const char *in, struct mg_buf *out)
{
    const struct mg_msg_state *st = mg_msg_stream_state(s);
    const char *p = in, *e;
    int rc = MG_OK;

    while (*p != '\0' && (e = event_end(p)) != NULL) {
        rc = mg_msg_stream_event(s, p, (size_t)(e - p), out);
        if (rc != MG_OK) {
            break;
        }
        p = e;
    }
    if (st->output && !st->done && (rc != MG_OK || mg_msg_stream_end(s, out) != MG_OK)) {
        const char *msg = rc != MG_OK ? st->error : CUT_MSG;
        ck_assert_int_eq(mg_msg_stream_fail(s, msg, strlen(msg), out), MG_OK);
    }
    return rc;
}

static void
golden_stream(const char *base)
{
    struct mg_msg_ctx *c = ctx_for(base);
    struct mg_msg_stream *s = mg_msg_stream_create(c);
    struct mg_buf out;
    size_t n, wn;
    char *in = slurp(base, ".in.sse", &n), *want = slurp(base, ".out.sse", &wn);
    json_t *g, *w;
    char *gs, *ws;

    ck_assert(in != NULL && want != NULL);
    mg_buf_init(&out, 1 << 20);
    feed(s, in, &out);
    g = parse_events(base, out.data ? out.data : "", out.len);
    w = parse_events(base, want, wn);
    gs = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
    ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_msg(json_equal(g, w), "%s:\n got  %s\n want %s", base, gs, ws);
    ck_assert(mg_msg_stream_state(s)->done == (json_array_size(w) > 0));
    free(gs);
    free(ws);
    json_decref(g);
    json_decref(w);
    free(in);
    free(want);
    mg_buf_deinit(&out);
    mg_msg_stream_destroy(s);
    mg_msg_ctx_destroy(c);
}

START_TEST(golden_streams)
{
    ck_assert_int_ge(each_golden("stream-", ".in.sse", golden_stream), 17);
}
END_TEST


/* ---- edges ---- */

#define SIMPLE "{\"model\":\"claude-x\",\"max_tokens\":10,\"stream\":true," \
               "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"

START_TEST(ctx_refusals)
{
    static const char *const bad[] = {
        "", "{", "null", "42", "\"x\"", "{\"model\":1,\"max_tokens\":5,\"messages\":[]}",
        "{\"max_tokens\":5,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":null,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"stream\":\"yes\"}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]} trailing",
    };
    struct mg_chatreq_err e;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        memset(&e, 0, sizeof(e));
        ck_assert_msg(mg_msg_ctx_create(bad[i], strlen(bad[i]), HEX, &e) == NULL, "%s", bad[i]);
        ck_assert_msg(e.message[0] != '\0', "%s", bad[i]);
    }
    mg_msg_ctx_destroy(NULL);
}
END_TEST

START_TEST(ctx_accessors_and_cache)
{
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_msg_opts a = {"m-a", "max_tokens", 1, 0, NULL, 0};
    struct mg_msg_opts b = {"m-b", "max_completion_tokens", 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out;

    ck_assert_str_eq(mg_msg_ctx_id(c), "msg_mg" HEX);
    ck_assert_int_eq(mg_msg_ctx_stream(c), 1);
    mg_buf_init(&out, 4096);
    ck_assert_int_eq(mg_msg_request(c, &a, &out, NULL, &e), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"model\":\"m-a\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"include_usage\":true"));
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_msg_request(c, &b, &out, NULL, &e), MG_OK);   /* the kept messages */
    ck_assert_ptr_nonnull(strstr(out.data, "\"model\":\"m-b\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"max_completion_tokens\":10"));
    ck_assert_ptr_null(strstr(out.data, "stream_options"));
    ck_assert_ptr_nonnull(strstr(out.data, "\"content\":\"Hi\""));
    mg_buf_deinit(&out);
    mg_msg_ctx_destroy(c);
}
END_TEST

START_TEST(request_failure_is_kept)
{
    struct mg_msg_ctx *c = ctx_str("{\"model\":\"m\",\"max_tokens\":5,\"messages\":["
                                   "{\"role\":\"user\",\"content\":[{\"type\":\"document\"}]}]}");
    struct mg_msg_opts o = {"x", NULL, 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out;
    int i;

    mg_buf_init(&out, 4096);
    for (i = 0; i < 2; i++) {
        memset(&e, 0, sizeof(e));
        ck_assert_int_eq(mg_msg_request(c, &o, &out, NULL, &e), MG_CHATREQ_EUNSUPPORTED);
        ck_assert_str_eq(e.param, "messages[0].content[0]");
        ck_assert_ptr_nonnull(strstr(e.message, "document"));
        ck_assert_uint_eq(out.len, 0);
    }
    mg_buf_deinit(&out);
    mg_msg_ctx_destroy(c);
}
END_TEST

START_TEST(request_cap)
{
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_msg_opts o = {"gpt-4.1", NULL, 1, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out, dropped;

    mg_buf_init(&out, 16);
    mg_buf_init(&dropped, 64);
    ck_assert_int_eq(mg_msg_request(c, &o, &out, &dropped, &e), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
    mg_buf_deinit(&dropped);
    mg_msg_ctx_destroy(c);
}
END_TEST

START_TEST(dropped_cap_and_reset)
{
    struct mg_msg_ctx *c = ctx_str("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],"
                                   "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"w\"},"
                                   "{\"type\":\"bash_20250124\",\"name\":\"bash\"}]}");
    struct mg_msg_opts o = {"x", NULL, 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out, dropped;

    mg_buf_init(&out, 4096);
    mg_buf_init(&dropped, 24);   /* room for the first type only */
    ck_assert_int_eq(mg_msg_request(c, &o, &out, &dropped, &e), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_uint_eq(dropped.len, 0);
    mg_buf_deinit(&dropped);
    mg_buf_init(&dropped, 256);
    ck_assert_int_eq(mg_msg_request(c, &o, &out, &dropped, &e), MG_OK);
    ck_assert_str_eq(dropped.data, "web_search_20250305,bash_20250124");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_msg_request(c, &o, &out, &dropped, &e), MG_OK);   /* not appended twice */
    ck_assert_str_eq(dropped.data, "web_search_20250305,bash_20250124");
    mg_buf_deinit(&out);
    mg_buf_deinit(&dropped);
    mg_msg_ctx_destroy(c);
}
END_TEST

/* A user_id of n bytes: kept up to 64, else its SHA-256. */
START_TEST(user_id_length)
{
    char body[512], uid[80];
    struct mg_msg_opts o = {"x", NULL, 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out;
    struct mg_msg_ctx *c;

    memset(uid, 'a', 64);
    uid[64] = '\0';
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],"
             "\"metadata\":{\"user_id\":\"%s\"}}", uid);
    mg_buf_init(&out, 4096);
    c = ctx_str(body);
    ck_assert_int_eq(mg_msg_request(c, &o, &out, NULL, &e), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, uid));
    mg_msg_ctx_destroy(c);
    /* "a" x 65: sha256 = 635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0 */
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],"
             "\"metadata\":{\"user_id\":\"%sa\"}}", uid);
    mg_buf_reset(&out);
    c = ctx_str(body);
    ck_assert_int_eq(mg_msg_request(c, &o, &out, NULL, &e), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"user\":\"635361c48bb9eab14198e76ea8ab7f1a41685d6ad"
                                 "62aa9146d301d4f17eb0ae0\""));
    mg_msg_ctx_destroy(c);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(malformed_messages)
{
    static const char *const bad[] = {
        "[1]", "[{\"role\":\"user\"}]", "[{\"role\":\"user\",\"content\":5}]",
        "[{\"role\":\"user\",\"content\":[5]}]", "[{\"role\":\"user\",\"content\":[{}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
        "{\"type\":\"base64\"}}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
        "\"content\":7}]}]",
        "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]}]",
        "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
        "\"input\":[1]}]}]",
        "[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"t\"}]}]",
    };
    struct mg_msg_opts o = {"x", NULL, 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out;
    char body[512];
    size_t i;

    mg_buf_init(&out, 4096);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct mg_msg_ctx *c;
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":5,\"messages\":%s}", bad[i]);
        c = ctx_str(body);
        memset(&e, 0, sizeof(e));
        ck_assert_msg(mg_msg_request(c, &o, &out, NULL, &e) == MG_CHATREQ_EINVAL, "%s", bad[i]);
        ck_assert_msg(e.message[0] != '\0' && out.len == 0, "%s", bad[i]);
        mg_msg_ctx_destroy(c);
    }
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(malformed_parameters)
{
    static const char *const bad[][2] = {
        {"\"temperature\":\"hot\"", "temperature"}, {"\"top_p\":[]", "top_p"},
        {"\"stop_sequences\":\"x\"", "stop_sequences"},
        {"\"stop_sequences\":[1]", "stop_sequences"},
        {"\"tools\":{}", "tools"}, {"\"tool_choice\":{}", "tool_choice"},
        {"\"tool_choice\":{\"type\":\"tool\"}", "tool_choice"},
        {"\"output_config\":{\"format\":{\"type\":\"json_object\"}}", "output_config.format"},
        {"\"system\":5", "system"},
    };
    struct mg_msg_opts o = {"x", NULL, 0, 0, NULL, 0};
    struct mg_chatreq_err e;
    struct mg_buf out;
    char body[512];
    size_t i;

    mg_buf_init(&out, 4096);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct mg_msg_ctx *c;
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],%s}",
                 bad[i][0]);
        c = ctx_str(body);
        memset(&e, 0, sizeof(e));
        ck_assert_msg(mg_msg_request(c, &o, &out, NULL, &e) == MG_CHATREQ_EINVAL, "%s", body);
        ck_assert_str_eq(e.param, bad[i][1]);
        ck_assert_uint_eq(out.len, 0);
        mg_msg_ctx_destroy(c);
    }
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(answer_edges)
{
    static const char *const bad[] = {
        "", "{", "[]", "{\"choices\":[]}", "{\"choices\":[{\"message\":5}]}",
        "{\"choices\":[{\"message\":{},\"finish_reason\":\"tool_calls\"}]} x",
    };
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_buf out;
    struct mg_usage u;
    size_t i;
    const char *noid = "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                       "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":-4,"
                       "\"completion_tokens\":1e3}}";

    mg_buf_init(&out, 4096);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(mg_msg_answer(c, bad[i], strlen(bad[i]), &out, &u) == MG_ERR, "%s", bad[i]);
        ck_assert_uint_eq(out.len, 0);
    }
    /* a call without an id gets one; counts that are no token counts are absent */
    ck_assert_int_eq(mg_msg_answer(c, noid, strlen(noid), &out, &u), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"id\":\"toolu_mg" "0123456789abcdef01234567_0\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"input_tokens\":0"));
    ck_assert_int_eq(u.input, -1);
    ck_assert_int_eq(u.output, -1);
    mg_buf_deinit(&out);
    mg_buf_init(&out, 64);   /* the cap */
    ck_assert_int_eq(mg_msg_answer(c, noid, strlen(noid), &out, &u), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
    mg_msg_ctx_destroy(c);
}
END_TEST

START_TEST(error_types)
{
    static const struct { int status; const char *type; } t[] = {
        {400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
        {404, "not_found_error"}, {405, "invalid_request_error"}, {413, "request_too_large"},
        {422, "invalid_request_error"}, {429, "rate_limit_error"}, {500, "api_error"},
        {502, "api_error"}, {503, "overloaded_error"}, {504, "api_error"},
        {529, "overloaded_error"},
    };
    struct mg_buf out;
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(t); i++) {
        ck_assert_str_eq(mg_msg_error_type(t[i].status), t[i].type);
    }
    mg_buf_init(&out, 20);
    ck_assert_int_eq(mg_msg_error(500, "{}", 2, &out), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
}
END_TEST

#define CHUNK(delta, fin) \
    "data: {\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fin "}]}\n\n"

START_TEST(stream_state)
{
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_msg_stream *s = mg_msg_stream_create(c);
    const struct mg_msg_state *st = mg_msg_stream_state(s);
    struct mg_buf out;
    const char *e1 = CHUNK("{\"role\":\"assistant\"}", "null");
    const char *e2 = CHUNK("{\"content\":\"Hi\"}", "null");
    const char *e3 = CHUNK("{}", "\"stop\"");
    const char *e4 = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                     "\"completion_tokens\":3}}\n\n";

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_msg_stream_event(s, e1, strlen(e1), &out), MG_OK);
    ck_assert_int_eq(st->output, 0);   /* a role is no output: nothing written, no commit */
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(mg_msg_stream_end(s, &out), MG_ERR);
    ck_assert_int_eq(mg_msg_stream_event(s, e2, strlen(e2), &out), MG_OK);
    ck_assert_int_eq(st->output, 1);
    ck_assert_int_eq(mg_msg_stream_event(s, e3, strlen(e3), &out), MG_OK);
    ck_assert_int_eq(st->finished, 1);
    ck_assert_int_eq(st->done, 0);
    ck_assert_int_eq(st->usage.input, -1);
    ck_assert_int_eq(mg_msg_stream_event(s, e4, strlen(e4), &out), MG_OK);
    ck_assert_int_eq(st->done, 1);
    ck_assert_int_eq(st->usage.input, 12);
    ck_assert_int_eq(st->usage.output, 3);
    ck_assert_ptr_nonnull(strstr(out.data, "event: message_stop\n"));
    out.len = 0;
    ck_assert_int_eq(mg_msg_stream_event(s, "data: [DONE]\n\n", 14, &out), MG_OK);
    ck_assert_int_eq(mg_msg_stream_end(s, &out), MG_OK);
    ck_assert_int_eq(mg_msg_stream_fail(s, "x", 1, &out), MG_OK);
    ck_assert_uint_eq(out.len, 0);   /* done: nothing more */
    mg_buf_deinit(&out);
    mg_msg_stream_destroy(s);
    mg_msg_stream_destroy(NULL);
    mg_msg_ctx_destroy(c);
}
END_TEST

/* A full buffer: nothing half written, and the same event goes through once there is room. */
START_TEST(stream_cap)
{
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_msg_stream *s = mg_msg_stream_create(c);
    const struct mg_msg_state *st = mg_msg_stream_state(s);
    struct mg_buf small, out;
    const char *e2 = CHUNK("{\"content\":\"Hi\"}", "null");

    mg_buf_init(&small, 100);
    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_msg_stream_event(s, e2, strlen(e2), &small), MG_ETOOBIG);
    ck_assert_uint_eq(small.len, 0);
    ck_assert_int_eq(st->output, 0);
    ck_assert_int_eq(st->failed, 0);
    ck_assert_int_eq(mg_msg_stream_event(s, e2, strlen(e2), &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "event: message_start\n"));
    ck_assert_ptr_nonnull(strstr(out.data, "\"index\":0,\"content_block\":{\"type\":\"text\""));
    ck_assert_ptr_nonnull(strstr(out.data, "\"text\":\"Hi\""));
    ck_assert_int_eq(mg_msg_stream_fail(s, "boom", 4, &small), MG_OK);
    ck_assert_str_eq(small.data, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                     "\"api_error\",\"message\":\"boom\"}}\n\n");
    mg_buf_deinit(&small);
    mg_buf_deinit(&out);
    mg_msg_stream_destroy(s);
    mg_msg_ctx_destroy(c);
}
END_TEST

START_TEST(stream_malformed)
{
    static const char *const bad[] = {
        "data: {\n\n", "data: [1]\n\n", "data: \"x\"\n\n",
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}", "null"),
        "data: {\"error\":\"quota\"}\n\n",
    };
    struct mg_buf out;
    size_t i;

    mg_buf_init(&out, 1 << 16);
    for (i = 0; i < MG_ARRAY_LEN(bad); i++) {
        struct mg_msg_ctx *c = ctx_str(SIMPLE);
        struct mg_msg_stream *s = mg_msg_stream_create(c);
        const struct mg_msg_state *st = mg_msg_stream_state(s);

        ck_assert_msg(mg_msg_stream_event(s, bad[i], strlen(bad[i]), &out) == MG_OAI_ESTREAM,
                      "%s", bad[i]);
        ck_assert_msg(st->failed && st->error[0] != '\0' && out.len == 0, "%s", bad[i]);
        ck_assert_int_eq(mg_msg_stream_event(s, "data: [DONE]\n\n", 14, &out), MG_OAI_ESTREAM);
        ck_assert_int_eq(mg_msg_stream_end(s, &out), MG_ERR);
        mg_msg_stream_destroy(s);
        mg_msg_ctx_destroy(c);
    }
    mg_buf_deinit(&out);
}
END_TEST

/* A chunk over two data: lines is joined; comments and blank events write nothing. */
START_TEST(stream_multiline)
{
    struct mg_msg_ctx *c = ctx_str(SIMPLE);
    struct mg_msg_stream *s = mg_msg_stream_create(c);
    struct mg_buf out;
    const char *ev = "data: {\"choices\":[{\"index\":0,\n"
                     "data: \"delta\":{\"content\":\"two lines\"},\"finish_reason\":null}]}\n\n";

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_msg_stream_event(s, ": ping\n\n", 8, &out), MG_OK);
    ck_assert_int_eq(mg_msg_stream_event(s, "\n\n", 2, &out), MG_OK);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(mg_msg_stream_event(s, ev, strlen(ev), &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"text\":\"two lines\""));
    mg_buf_deinit(&out);
    mg_msg_stream_destroy(s);
    mg_msg_ctx_destroy(c);
}
END_TEST

Suite *
messages_suite(void)
{
    Suite *s = suite_create("messages");
    TCase *tc = tcase_create("golden");

    tcase_add_test(tc, golden_requests);
    tcase_add_test(tc, golden_answers);
    tcase_add_test(tc, golden_errors);
    tcase_add_test(tc, golden_streams);
    suite_add_tcase(s, tc);
    tc = tcase_create("edges");
    tcase_add_test(tc, ctx_refusals);
    tcase_add_test(tc, ctx_accessors_and_cache);
    tcase_add_test(tc, request_failure_is_kept);
    tcase_add_test(tc, request_cap);
    tcase_add_test(tc, dropped_cap_and_reset);
    tcase_add_test(tc, user_id_length);
    tcase_add_test(tc, malformed_messages);
    tcase_add_test(tc, malformed_parameters);
    tcase_add_test(tc, answer_edges);
    tcase_add_test(tc, error_types);
    tcase_add_test(tc, stream_state);
    tcase_add_test(tc, stream_cap);
    tcase_add_test(tc, stream_malformed);
    tcase_add_test(tc, stream_multiline);
    suite_add_tcase(s, tc);
    return s;
}
