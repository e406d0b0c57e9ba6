/*
 * Unit tests of the translating schemas (mg_anthropic, mg_bedrock, and the shared mg_chatreq and
 * mg_oai): golden request, answer, error and stream files under test/golden/, compared as JSON
 * (json_equal), plus the edges a golden file cannot show (caps, bad input, the relay's view).
 *
 * Golden files, per provider directory:
 *   req-X.in.json  -> req-X.out.json (the provider's request) or req-X.err ("invalid PARAM" or
 *                     "unsupported PARAM", "-" for no param)
 *   ans-X.in.json  -> ans-X.out.json (the chat.completion)      err-X.in.json -> err-X.out.json
 *   stream-X.sse (Anthropic) or stream-X.in.json (Bedrock: [[event type, payload], …])
 *                  -> stream-X.out.json {include_usage, chunks, output, finished, done, error,
 *                     usage}
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_anthropic.h"
#include "mg_bedrock.h"
#include "mg_chatreq.h"
#include "mg_messages.h"
#include "mg_oai.h"
#include "mg_responses.h"
#include "mg_test.h"

#define GOLDEN  "test/golden/"
#define NOW     1700000000
#define CLIENT  "my-model"
#define SEND    "claude-sonnet-4-5-20250929"
#define BID     "chatcmpl-req42"

/* ---- helpers ---- */

static char *
slurp(const char *dir, const char *base, const char *suffix, size_t *len)
{
    char path[512];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), GOLDEN "%s/%s%s", dir, base, suffix);
    if ((f = fopen(path, "rb")) == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = mg_malloc((size_t)n + 1);
    ck_assert_int_eq(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

static json_t *
load(const char *dir, const char *base, const char *suffix)
{
    size_t n;
    char *p = slurp(dir, base, suffix, &n);
    json_t *j;

    ck_assert_msg(p != NULL, "%s/%s%s is missing", dir, base, suffix);
    j = json_loadb(p, n, 0, NULL);
    ck_assert_msg(j != NULL, "%s/%s%s is not JSON", dir, base, suffix);
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

typedef void (*golden_fn)(const char *dir, const char *base);

/* Calls fn for every dir/PREFIX*SUFFIX file (base: the name without suffix); returns how many. */
static int
each_golden(const char *dir, const char *prefix, const char *suffix, golden_fn fn)
{
    char path[256], base[256];
    struct dirent *de;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), GOLDEN "%s", dir);
    ck_assert_msg((d = opendir(path)) != NULL, "no %s (run the tests from the source tree)", path);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || l <= sl || l >= sizeof(base)
            || strcmp(de->d_name + l - sl, suffix) != 0) {
            continue;
        }
        memcpy(base, de->d_name, l - sl);
        base[l - sl] = '\0';
        fn(dir, base);
        n++;
    }
    closedir(d);
    return n;
}

/*
 * Splits a chunk stream into a JSON array ("[DONE]" as that string) and checks what every
 * chunk must be: a data: line, one id/created/model for all, and never a chunk carrying nothing.
 */
static json_t *
parse_chunks(const char *label, const char *p, size_t n)
{
    json_t *all = json_array(), *first = NULL;
    const char *end = p + n;

    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        json_t *c, *ch, *d;

        ck_assert_msg(sep != NULL && strncmp(p, "data: ", 6) == 0, "%s: not an SSE event: %s",
                      label, p);
        ck_assert_msg(memchr(p, '\r', (size_t)(sep - p)) == NULL, "%s: CR in output", label);
        if (sep - p == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
            json_array_append_new(all, json_string("[DONE]"));
            p = sep + 2;
            continue;
        }
        c = json_loadb(p + 6, (size_t)(sep - p - 6), 0, NULL);
        ck_assert_msg(c != NULL, "%s: chunk is not JSON: %.*s", label, (int)(sep - p), p);
        first = first ? first : c;
        ck_assert(json_equal(json_object_get(c, "id"), json_object_get(first, "id")));
        ck_assert(json_equal(json_object_get(c, "created"), json_object_get(first, "created")));
        ck_assert(json_equal(json_object_get(c, "model"), json_object_get(first, "model")));
        ch = json_array_get(json_object_get(c, "choices"), 0);
        d = json_object_get(ch, "delta");
        ck_assert_msg(ch ? json_object_size(d) > 0 || json_is_string(json_object_get(ch,
                      "finish_reason")) : json_is_object(json_object_get(c, "usage")),
                      "%s: a chunk that carries nothing", label);
        json_array_append_new(all, c);
        p = sep + 2;
    }
    return all;
}

/* Compares a translated stream and the relay's view of it with stream-X.out.json. */
static void
expect_stream(const char *label, json_t *want, const struct mg_buf *out, int rc,
              struct mg_oai_stream *st)
{
    json_t *chunks = parse_chunks(label, out->data ? out->data : "", out->len);
    json_t *err = json_object_get(want, "error"), *u = json_object_get(want, "usage");
    char *gs = json_dumps(chunks, JSON_COMPACT | JSON_SORT_KEYS);
    struct mg_usage t;

    ck_assert_msg(json_equal(chunks, json_object_get(want, "chunks")), "%s: chunks\n %s", label,
                  gs);
    ck_assert_int_eq(st->output, json_is_true(json_object_get(want, "output")));
    ck_assert_int_eq(st->finished, json_is_true(json_object_get(want, "finished")));
    ck_assert_int_eq(st->done, json_is_true(json_object_get(want, "done")));
    ck_assert_int_eq(rc, err ? MG_OAI_ESTREAM : MG_OK);
    if (err != NULL) {
        ck_assert_str_eq(st->error, json_string_value(err));
    }
    if (u != NULL) {
        mg_oai_usage_totals(&st->usage, &t);
        ck_assert_int_eq(t.input, json_integer_value(json_object_get(u, "input")));
        ck_assert_int_eq(t.output, json_integer_value(json_object_get(u, "output")));
    }
    free(gs);
    json_decref(chunks);
}

/* ---- golden requests, answers, errors ---- */

static int is_bedrock(const char *dir) { return strcmp(dir, "bedrock") == 0; }

static void
golden_request(const char *dir, const char *base)
{
    struct mg_chatreq_err e;
    struct mg_buf out;
    size_t n, en;
    char *body = slurp(dir, base, ".in.json", &n), *err = slurp(dir, base, ".err", &en);
    char kind[32], param[96], label[300];
    int rc, stream = -1;

    snprintf(label, sizeof(label), "%s/%s", dir, base);
    mg_buf_init(&out, 1 << 20);
    rc = is_bedrock(dir) ? mg_bedrock_request(body, n, NULL, 4096, &out, &stream, &e)
                         : mg_anthropic_request(body, n, NULL, SEND, 4096, &out, &e);
    if (err != NULL) {
        ck_assert_int_eq(sscanf(err, "%31s %95s", kind, param), 2);
        ck_assert_msg(rc == (strcmp(kind, "invalid") == 0 ? MG_CHATREQ_EINVAL
                             : MG_CHATREQ_EUNSUPPORTED), "%s: rc %d (%s)", label, rc, e.message);
        ck_assert_str_eq(e.param, strcmp(param, "-") == 0 ? "" : param);
        ck_assert_msg(e.message[0] != '\0' && out.len == 0, "%s", label);
    } else {
        json_t *want = load(dir, base, ".out.json");
        ck_assert_msg(rc == MG_OK, "%s: rc %d: %s", label, rc, e.message);
        expect_json(label, out.data, out.len, want);
        json_decref(want);
    }
    free(body);
    free(err);
    mg_buf_deinit(&out);
}

static void
golden_answer(const char *dir, const char *base)
{
    json_t *want = load(dir, base, ".out.json"), *wu = json_object_get(want, "usage");
    struct mg_buf out;
    struct mg_usage u;
    size_t n;
    char *body = slurp(dir, base, ".in.json", &n), label[300];
    int rc;

    snprintf(label, sizeof(label), "%s/%s", dir, base);
    mg_buf_init(&out, 1 << 20);
    rc = is_bedrock(dir) ? mg_bedrock_answer(body, n, CLIENT, BID, NOW, &out, &u, NULL)
                         : mg_anthropic_answer(body, n, CLIENT, NOW, &out, &u, NULL);
    ck_assert_msg(rc == MG_OK, "%s: rc %d", label, rc);
    expect_json(label, out.data, out.len, want);
    ck_assert_int_eq(u.input, json_integer_value(json_object_get(wu, "prompt_tokens")));
    ck_assert_int_eq(u.output, json_integer_value(json_object_get(wu, "completion_tokens")));
    json_decref(want);
    free(body);
    mg_buf_deinit(&out);
}

static void
golden_error(const char *dir, const char *base)
{
    json_t *want = load(dir, base, ".out.json");
    struct mg_buf out;
    size_t n;
    char *body = slurp(dir, base, ".in.json", &n);

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_anthropic_error(body, n, &out), MG_OK);
    expect_json(base, out.data, out.len, want);
    json_decref(want);
    free(body);
    mg_buf_deinit(&out);
}

START_TEST(golden_requests)
{
    ck_assert_int_ge(each_golden("anthropic", "req-", ".in.json", golden_request), 30);
    ck_assert_int_ge(each_golden("bedrock", "req-", ".in.json", golden_request), 30);
}
END_TEST

/*
 * A Responses client's answer is the same whether the hub reads the chat answer's text or the
 * structure the schema wrote it from (mg_resp_answer_kept, what the hub does on these schemas).
 */
static void
kept_answer(const char *dir, const char *base)
{
    static const char req[] = "{\"model\":\"m\",\"input\":\"hi\"}";
    struct mg_chatreq_err e = {"", "", NULL};
    struct mg_resp_ctx *ctx = mg_resp_ctx_create(req, sizeof(req) - 1,
                                                 "0123456789abcdef0123456789abcdef", NOW, &e,
                                                 NULL);
    struct mg_oai_kept k;
    struct mg_buf chat, a1, a2;
    struct mg_usage u, u1, u2;
    json_t *j1, *j2;
    size_t n;
    char *body = slurp(dir, base, ".in.json", &n), label[300];
    int rc;

    snprintf(label, sizeof(label), "%s/%s", dir, base);
    memset(&k, 0, sizeof(k));
    mg_buf_init(&chat, 1 << 20);
    mg_buf_init(&a1, 1 << 20);
    mg_buf_init(&a2, 1 << 20);
    rc = is_bedrock(dir) ? mg_bedrock_answer(body, n, CLIENT, BID, NOW, &chat, &u, &k)
                         : mg_anthropic_answer(body, n, CLIENT, NOW, &chat, &u, &k);
    ck_assert_msg(rc == MG_OK && k.have, "%s: rc %d", label, rc);
    ck_assert_int_eq(mg_resp_answer(ctx, chat.data, chat.len, NOW, &a1, &u1), MG_OK);
    ck_assert_int_eq(mg_resp_answer_kept(ctx, &k, NOW, &a2, &u2), MG_OK);
    j1 = json_loadb(a1.data, a1.len, 0, NULL);
    j2 = json_loadb(a2.data, a2.len, 0, NULL);
    ck_assert_msg(j1 != NULL && json_equal(j1, j2), "%s:\n%s\n%s", label, a1.data, a2.data);
    ck_assert_int_eq(u1.input, u2.input);
    ck_assert_int_eq(u1.output, u2.output);
    json_decref(j1);
    json_decref(j2);
    /* the same for an Anthropic Messages client */
    {
        static const char mreq[] = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":"
                                   "[{\"role\":\"user\",\"content\":\"hi\"}]}";
        struct mg_msg_ctx *mc = mg_msg_ctx_create(mreq, sizeof(mreq) - 1,
                                                  "0123456789abcdef0123456789abcdef", &e);
        int r1, r2;
        ck_assert_ptr_nonnull(mc);
        mg_buf_reset(&a1);
        mg_buf_reset(&a2);
        r1 = mg_msg_answer(mc, chat.data, chat.len, &a1, &u1);
        r2 = mg_msg_answer_kept(mc, &k, &a2, &u2);
        ck_assert_msg(r1 == r2, "%s: %d %d", label, r1, r2);
        if (r1 == MG_OK) {
            j1 = json_loadb(a1.data, a1.len, 0, NULL);
            j2 = json_loadb(a2.data, a2.len, 0, NULL);
            ck_assert_msg(j1 != NULL && json_equal(j1, j2), "%s:\n%s\n%s", label, a1.data,
                          a2.data);
            ck_assert_int_eq(u1.input, u2.input);
            ck_assert_int_eq(u1.output, u2.output);
            json_decref(j1);
            json_decref(j2);
        }
        mg_msg_ctx_destroy(mc);
    }
    mg_oai_kept_deinit(&k);
    mg_resp_ctx_destroy(ctx);
    mg_buf_deinit(&chat);
    mg_buf_deinit(&a1);
    mg_buf_deinit(&a2);
    free(body);
}

START_TEST(golden_answers)
{
    ck_assert_int_ge(each_golden("anthropic", "ans-", ".in.json", kept_answer), 6);
    ck_assert_int_ge(each_golden("bedrock", "ans-", ".in.json", kept_answer), 6);
    ck_assert_int_ge(each_golden("anthropic", "ans-", ".in.json", golden_answer), 6);
    ck_assert_int_ge(each_golden("bedrock", "ans-", ".in.json", golden_answer), 6);
    ck_assert_int_ge(each_golden("anthropic", "err-", ".in.json", golden_error), 2);
}
END_TEST

/* ---- golden streams ---- */

struct feed {
    struct mg_anthropic_stream *tr;
    struct mg_buf               out;
    int                         rc;
    int                         pieces;
};

static void
on_event(void *arg, const char *p, size_t n, int whole)
{
    struct feed *f = arg;
    int rc;

    if (!whole) {
        f->pieces++;
        return;
    }
    rc = mg_anthropic_stream_event(f->tr, p, n, &f->out);
    if (f->rc == MG_OK) {
        f->rc = rc;
    }
}

/* Runs sse[0..n) through mg_sse_feed in two pieces, cut at k, into a new translator. */
static void
feed_split(struct feed *f, const char *sse, size_t n, size_t k, int include_usage)
{
    struct mg_sse s;

    f->tr = mg_anthropic_stream_create(CLIENT, NOW, include_usage, NULL);
    mg_buf_init(&f->out, 1 << 20);
    f->rc = MG_OK;
    f->pieces = 0;
    mg_sse_init(&s);
    mg_sse_feed(&s, sse, k, on_event, f);
    mg_sse_feed(&s, sse + k, n - k, on_event, f);
    mg_sse_flush(&s, on_event, f);
    mg_sse_deinit(&s);
}

static void
feed_free(struct feed *f)
{
    mg_anthropic_stream_destroy(f->tr);
    mg_buf_deinit(&f->out);
}

static void
golden_anthropic_stream(const char *dir, const char *base)
{
    json_t *want = load(dir, base, ".out.json");
    int iu = json_is_true(json_object_get(want, "include_usage"));
    struct feed whole, f;
    size_t n, k;
    char *sse = slurp(dir, base, ".sse", &n);

    feed_split(&whole, sse, n, n, iu);
    ck_assert_int_eq(whole.pieces, 0);
    expect_stream(base, want, &whole.out, whole.rc, mg_anthropic_stream_state(whole.tr));
    for (k = 0; k < n; k++) {   /* every cut gives the same bytes */
        feed_split(&f, sse, n, k, iu);
        ck_assert_msg(f.rc == whole.rc && f.out.len == whole.out.len
                      && memcmp(f.out.data, whole.out.data, f.out.len) == 0,
                      "%s: cut at byte %zu changes the output", base, k);
        feed_free(&f);
    }
    feed_free(&whole);
    json_decref(want);
    free(sse);
}

static void
golden_bedrock_stream(const char *dir, const char *base)
{
    json_t *want = load(dir, base, ".out.json"), *events = load(dir, base, ".in.json"), *ev;
    struct mg_bedrock_stream *tr;
    struct mg_buf out;
    size_t i;
    int rc = MG_OK;

    tr = mg_bedrock_stream_create(CLIENT, NOW, json_is_true(json_object_get(want,
                                  "include_usage")), BID);
    mg_buf_init(&out, 1 << 20);
    json_array_foreach(events, i, ev) {
        char *payload = json_dumps(json_array_get(ev, 1), JSON_COMPACT);
        int r = mg_bedrock_stream_event(tr, json_string_value(json_array_get(ev, 0)), payload,
                                        strlen(payload), &out);
        rc = rc == MG_OK ? r : rc;
        free(payload);
    }
    expect_stream(base, want, &out, rc, mg_bedrock_stream_state(tr));
    mg_bedrock_stream_destroy(tr);
    mg_buf_deinit(&out);
    json_decref(events);
    json_decref(want);
}

START_TEST(golden_streams)
{
    ck_assert_int_ge(each_golden("anthropic", "stream-", ".sse", golden_anthropic_stream), 5);
    ck_assert_int_ge(each_golden("bedrock", "stream-", ".in.json", golden_bedrock_stream), 4);
}
END_TEST

/* ---- the relay's view: commit point, cut after finish, failures ---- */

static int
anth(struct mg_anthropic_stream *tr, const char *ev, struct mg_buf *out)
{
    return mg_anthropic_stream_event(tr, ev, strlen(ev), out);
}

START_TEST(stream_commit_point)
{
    struct mg_anthropic_stream *tr = mg_anthropic_stream_create(CLIENT, NOW, 0, NULL);
    struct mg_oai_stream *st = mg_anthropic_stream_state(tr);
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    anth(tr, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
         "{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}\n\n", &out);
    ck_assert(out.len > 0 && strstr(out.data, "\"role\":\"assistant\"") != NULL);
    ck_assert_int_eq(st->output, 0);          /* the role chunk is held, not committed */
    mg_buf_reset(&out);
    anth(tr, "event: ping\ndata: {\"type\": \"ping\"}\n\n", &out);
    anth(tr, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
         "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", &out);
    anth(tr, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
         "\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n", &out);
    ck_assert_int_eq(out.len, 0);             /* no chunk carries nothing */
    ck_assert_int_eq(st->output, 0);
    /* event names are optional: the data's type is what counts */
    anth(tr, "data: {\"type\":\"content_block_delta\",\"index\":0,"
         "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n", &out);
    ck_assert_int_eq(st->output, 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"content\":\"Hi\""));
    /* input_json_delta for a text block: a broken stream, not a crash */
    ck_assert_int_eq(anth(tr, "event: content_block_delta\ndata: {\"type\":"
                          "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                          "\"input_json_delta\",\"partial_json\":\"{\"}}\n\n", &out),
                     MG_OAI_ESTREAM);
    ck_assert_int_eq(st->failed, 1);
    mg_anthropic_stream_destroy(tr);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(stream_cut_after_finish)
{
    size_t n;
    char *sse = slurp("anthropic", "stream-cut-after-finish", ".sse", &n);
    struct feed f;
    struct mg_oai_stream *st;
    size_t before;

    feed_split(&f, sse, n, n, 1);
    st = mg_anthropic_stream_state(f.tr);
    ck_assert(st->finished && !st->done);
    before = f.out.len;
    ck_assert_int_eq(mg_oai_stream_end(st, &f.out), MG_OK);    /* the relay completes it */
    ck_assert_ptr_nonnull(strstr(f.out.data + before, "\"choices\":[],\"usage\":"
                                 "{\"prompt_tokens\":572,\"completion_tokens\":1,"));
    ck_assert_str_eq(f.out.data + f.out.len - 14, "data: [DONE]\n\n");
    ck_assert_int_eq(st->done, 1);
    before = f.out.len;
    ck_assert_int_eq(mg_oai_stream_end(st, &f.out), MG_OK);    /* once */
    ck_assert_int_eq(f.out.len, before);
    feed_free(&f);
    free(sse);

    /* a Bedrock stream whose metadata never came */
    {
        struct mg_bedrock_stream *b = mg_bedrock_stream_create(CLIENT, NOW, 0, NULL);
        struct mg_buf out;

        mg_buf_init(&out, 1 << 16);
        ck_assert_int_eq(mg_oai_stream_end(mg_bedrock_stream_state(b), &out), MG_ERR);
        ck_assert_int_eq(out.len, 0);             /* no finish yet: a cut, not an end */
        mg_bedrock_stream_event(b, "messageStop", "{\"stopReason\":\"end_turn\"}", 25, &out);
        ck_assert_ptr_nonnull(strstr(out.data, "\"id\":\"chatcmpl-modelgate\""));
        ck_assert_int_eq(mg_oai_stream_end(mg_bedrock_stream_state(b), &out), MG_OK);
        ck_assert_str_eq(out.data + out.len - 14, "data: [DONE]\n\n");
        mg_bedrock_stream_destroy(b);
        mg_buf_deinit(&out);
    }
}
END_TEST

START_TEST(stream_bad_events)
{
    struct mg_anthropic_stream *tr = mg_anthropic_stream_create(CLIENT, NOW, 0, "chatcmpl-x");
    struct mg_bedrock_stream *b = mg_bedrock_stream_create(CLIENT, NOW, 0, NULL);
    struct mg_buf out;

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(anth(tr, ": keep-alive\n\n", &out), MG_OK);
    ck_assert_int_eq(anth(tr, "event: ping\n\n", &out), MG_OK);
    {
        /* pings are dropped whatever their data: none of these is a broken stream */
        static const char *const pings[] = {
            "event: ping\ndata:\n\n", "event: ping\ndata: \n\n", "event:ping\ndata:\n\n",
            "event: ping\r\ndata:\r\n\r\n", "event: ping\ndata: not json\n\n",
            "event: ping\ndata: {}\n\n", "event: ping\ndata: []\n\n",
            "data: {\"type\":\"ping\"}\n\n",
        };
        size_t i;

        for (i = 0; i < MG_ARRAY_LEN(pings); i++) {
            ck_assert_msg(anth(tr, pings[i], &out) == MG_OK, "%s", pings[i]);
            ck_assert_msg(!mg_anthropic_stream_state(tr)->failed, "%s", pings[i]);
        }
    }
    ck_assert_int_eq(anth(tr, "event: future_event\ndata: {\"type\":\"future_event\"}\n\n", &out),
                     MG_OK);
    ck_assert_int_eq(out.len, 0);
    ck_assert_int_eq(anth(tr, "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                          "{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n", &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"id\":\"chatcmpl-x\""));  /* no message_start */
    ck_assert_int_eq(anth(tr, "data: {not json\n\n", &out), MG_OAI_ESTREAM);
    ck_assert_str_eq(mg_anthropic_stream_state(tr)->error,
                     "the backend sent an event that cannot be read");
    ck_assert_int_eq(anth(tr, "data: {\"type\":\"message_stop\"}\n\n", &out), MG_OAI_ESTREAM);
    ck_assert_int_eq(mg_anthropic_stream_state(tr)->done, 0);

    mg_buf_reset(&out);
    ck_assert_int_eq(mg_bedrock_stream_event(b, "contentBlockDelta", "[1]", 3, &out),
                     MG_OAI_ESTREAM);
    ck_assert_int_eq(mg_bedrock_stream_event(b, "messageStart", "{}", 2, &out), MG_OAI_ESTREAM);
    ck_assert_int_eq(out.len, 0);
    mg_bedrock_stream_destroy(b);
    b = mg_bedrock_stream_create(CLIENT, NOW, 0, NULL);   /* an exception without payload */
    ck_assert_int_eq(mg_bedrock_stream_event(b, "internalServerException", NULL, 0, &out),
                     MG_OAI_ESTREAM);
    ck_assert_str_eq(mg_bedrock_stream_state(b)->error, "internalServerException");
    mg_anthropic_stream_destroy(tr);
    mg_bedrock_stream_destroy(b);
    mg_anthropic_stream_destroy(NULL);
    mg_bedrock_stream_destroy(NULL);
    mg_buf_deinit(&out);
}
END_TEST

/* ---- the chunk writer ---- */

START_TEST(chunk_writer)
{
    struct mg_oai_stream st;
    struct mg_buf out, small;
    const char *want = "data: {\"error\":{\"message\":\"said \\\"no\\\"\",\"type\":"
                       "\"upstream_error\",\"param\":null,\"code\":"
                       "\"upstream_stream_error\"}}\n\n";

    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_oai_error_event("said \"no\"", 9, &out), MG_OK);
    ck_assert_str_eq(out.data, want);
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_oai_error_body("rate_limit_error", "slow down", 9, &out), MG_OK);
    ck_assert_str_eq(out.data, "{\"error\":{\"message\":\"slow down\",\"type\":"
                     "\"rate_limit_error\",\"param\":null,\"code\":null}}");

    /* a full buffer takes nothing: no half chunk, and the stream is not marked started */
    mg_oai_stream_init(&st, CLIENT, NOW, 1, NULL);
    mg_buf_init(&small, 150);
    ck_assert_int_eq(mg_oai_stream_content(&st, "hello", 5, &small), MG_ETOOBIG);
    ck_assert_int_eq(small.len, 0);
    ck_assert_int_eq(st.started, 0);
    ck_assert_int_eq(st.output, 0);
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_oai_stream_tool_args(&st, 3, "{}", 2, &out), MG_OAI_ESTREAM);
    ck_assert_int_eq(mg_oai_stream_tool_start(&st, MG_OAI_MAX_BLOCKS, "i", 1, "f", 1, &out),
                     MG_OAI_ESTREAM);
    ck_assert_int_eq(out.len, 0);
    mg_oai_stream_deinit(&st);
    mg_oai_stream_deinit(&st);   /* twice is harmless */
    mg_buf_deinit(&small);
    mg_buf_deinit(&out);
}
END_TEST

/* ---- bad input never crashes ---- */

START_TEST(bad_requests)
{
    static const char *const bodies[] = {
        "", "null", "{}", "[]", "{\"messages\":null}", "{\"messages\":[1]}",
        "{\"messages\":[{\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
        "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
        "{\"url\":\"data:image/png,abc\"}}]}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"[1,2]\"}}]}]}",
        "{\"messages\":[],\"tools\":{}}", "{\"messages\":[],\"tools\":[{\"type\":\"function\"}]}",
        "{\"messages\":[],\"tool_choice\":\"sometimes\"}", "{\"messages\":[],\"stop\":5}",
        "{\"messages\":[],\"stop\":[\"a\",1]}", "{\"messages\":[],\"max_tokens\":\"100\"}",
        "{\"messages\":[],\"max_completion_tokens\":0}",
        "{\"messages\":[],\"temperature\":\"hot\"}",
    };
    struct mg_chatreq_err e;
    struct mg_buf out;
    size_t i;
    int stream;

    mg_buf_init(&out, 1 << 16);
    for (i = 0; i < MG_ARRAY_LEN(bodies); i++) {
        size_t n = strlen(bodies[i]);
        ck_assert_msg(mg_anthropic_request(bodies[i], n, NULL, SEND, 1, &out, &e) == MG_CHATREQ_EINVAL,
                      "anthropic accepted %s", bodies[i]);
        ck_assert_msg(mg_bedrock_request(bodies[i], n, NULL, 1, &out, &stream, &e) == MG_CHATREQ_EINVAL,
                      "bedrock accepted %s", bodies[i]);
        ck_assert(e.message[0] != '\0');
        ck_assert_int_eq(out.len, 0);
    }
    /* the cap of the output is kept */
    mg_buf_deinit(&out);
    mg_buf_init(&out, 20);
    {
        const char *hi = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        ck_assert_int_eq(mg_anthropic_request(hi, strlen(hi), NULL, SEND, 1, &out, &e), MG_ETOOBIG);
    }
    ck_assert_int_eq(out.len, 0);
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(bad_answers_and_errors)
{
    static const char *const bodies[] = {
        "", "null", "[]", "{}", "{\"content\":5}", "{\"content\":[{\"type\":\"tool_use\"}]}",
        "{\"output\":{\"message\":{\"content\":[{\"toolUse\":{\"name\":\"f\"}}]}}}",
    };
    struct mg_buf out;
    struct mg_usage u;
    size_t i;

    mg_buf_init(&out, 1 << 16);
    for (i = 0; i < MG_ARRAY_LEN(bodies); i++) {
        size_t n = strlen(bodies[i]);
        ck_assert_int_eq(mg_anthropic_answer(bodies[i], n, CLIENT, NOW, &out, &u, NULL), MG_ERR);
        ck_assert_int_eq(mg_bedrock_answer(bodies[i], n, CLIENT, BID, NOW, &out, &u, NULL), MG_ERR);
        ck_assert_int_eq(out.len, 0);
    }
    ck_assert_int_eq(mg_anthropic_error("<html>502</html>", 16, &out), MG_OK);
    ck_assert_str_eq(out.data, "{\"error\":{\"message\":\"the backend answered with an error\","
                     "\"type\":\"upstream_error\",\"param\":null,\"code\":null}}");
    mg_buf_reset(&out);
    {
        const char *b = "{\"message\":\"Malformed input request\"}";
        ck_assert_int_eq(mg_bedrock_error("ValidationException:http://internal.amazon.com/coral/"
                                          "com.amazon.bedrock/", b, strlen(b), &out), MG_OK);
    }
    ck_assert_str_eq(out.data, "{\"error\":{\"message\":\"Malformed input request\",\"type\":"
                     "\"ValidationException\",\"param\":null,\"code\":null}}");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_bedrock_error("ThrottlingException", "{\"Message\":\"Rate exceeded\"}",
                                      27, &out), MG_OK);
    ck_assert_str_eq(out.data, "{\"error\":{\"message\":\"Rate exceeded\",\"type\":"
                     "\"ThrottlingException\",\"param\":null,\"code\":null}}");
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_bedrock_error(NULL, "", 0, &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"type\":\"upstream_error\""));
    mg_buf_deinit(&out);
}
END_TEST

/*
 * Usage numbers outside 0..2^53-1 are absent, and the sums the translators make (input + cache
 * reads + cache writes, total_tokens) saturate: a backend reporting ~2^63 made them overflow.
 */
START_TEST(absurd_usage_is_absent_and_sums_saturate)
{
    static const char big[] = "9223372036854775000";
    char body[1024];
    struct mg_buf out;
    struct mg_usage u;
    struct mg_oai_usage ou;
    json_t *j, *ju;

    mg_buf_init(&out, 1 << 16);
    snprintf(body, sizeof(body), "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
             "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
             "\"usage\":{\"input_tokens\":%s,\"output_tokens\":%s,\"cache_read_input_tokens\":%s,"
             "\"cache_creation_input_tokens\":7}}", big, big, big);
    ck_assert_int_eq(mg_anthropic_answer(body, strlen(body), CLIENT, NOW, &out, &u, NULL), MG_OK);
    ck_assert_int_eq(u.input, 7);      /* only the believable count is left */
    ck_assert_int_eq(u.output, -1);
    j = json_loads(out.data, 0, NULL);
    ju = json_object_get(j, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(ju, "total_tokens")), 7);
    json_decref(j);
    mg_buf_reset(&out);

    snprintf(body, sizeof(body), "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":"
             "[{\"text\":\"hi\"}]}},\"stopReason\":\"end_turn\",\"usage\":{\"inputTokens\":%s,"
             "\"outputTokens\":-4,\"cacheReadInputTokens\":9007199254740992,"
             "\"cacheWriteInputTokens\":2}}", big);
    ck_assert_int_eq(mg_bedrock_answer(body, strlen(body), CLIENT, BID, NOW, &out, &u, NULL), MG_OK);
    ck_assert_int_eq(u.input, 2);
    ck_assert_int_eq(u.output, -1);
    mg_buf_reset(&out);

    /* Anthropic-native events: an absurd count leaves the last believable one in place */
    mg_oai_usage_init(&ou);
    snprintf(body, sizeof(body), "event: message_delta\ndata: {\"type\":\"message_delta\","
             "\"usage\":{\"output_tokens\":12}}\n\n");
    ck_assert_int_eq(mg_anthropic_event_usage(body, strlen(body), &ou), 1);
    snprintf(body, sizeof(body), "event: message_delta\ndata: {\"type\":\"message_delta\","
             "\"usage\":{\"output_tokens\":%s}}\n\n", big);
    ck_assert_int_eq(mg_anthropic_event_usage(body, strlen(body), &ou), 1);
    ck_assert_int_eq(ou.output, 12);

    /* believable counts whose sums pass 2^53 - 1 saturate */
    ou.input = ou.cache_read = ou.cache_write = ou.output = MG_TOKENS_MAX;
    mg_oai_usage_totals(&ou, &u);
    ck_assert_int_eq(u.input, MG_TOKENS_MAX);
    ck_assert_int_eq(mg_oai_usage_json(&ou, &out), MG_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "\"total_tokens\":9007199254740991,"));
    mg_buf_deinit(&out);
}
END_TEST

/* The hub hands the chat request over parsed: response_format reads the same; Converse gets
 * the schema as JSON text that reads back to the very schema; a cap too small for it appends
 * nothing. */
START_TEST(response_format_parsed)
{
    json_t *req = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                             "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                             "{\"name\":\"n\",\"strict\":true,\"schema\":{\"type\":\"object\","
                             "\"properties\":{\"t\":{\"type\":\"number\",\"maximum\":0.7}}}}}}",
                             0, NULL);
    json_t *schema = json_object_get(json_object_get(json_object_get(req, "response_format"),
                                                     "json_schema"), "schema"), *got, *js, *txt;
    struct mg_chatreq_err e;
    struct mg_buf out;
    int stream = -1;

    ck_assert_ptr_nonnull(schema);
    mg_buf_init(&out, 1 << 16);
    ck_assert_int_eq(mg_anthropic_request(NULL, 0, req, SEND, 4096, &out, &e), MG_OK);
    got = json_loads(out.data, 0, NULL);
    ck_assert(json_equal(json_object_get(json_object_get(json_object_get(got, "output_config"),
                                                         "format"), "schema"), schema));
    json_decref(got);
    mg_buf_reset(&out);
    ck_assert_int_eq(mg_bedrock_request(NULL, 0, req, 4096, &out, &stream, &e), MG_OK);
    got = json_loads(out.data, 0, NULL);
    js = json_object_get(json_object_get(json_object_get(json_object_get(got, "outputConfig"),
                                                         "textFormat"), "structure"),
                         "jsonSchema");
    ck_assert_str_eq(json_string_value(json_object_get(js, "name")), "n");
    ck_assert_ptr_null(json_object_get(js, "strict"));
    txt = json_loads(json_string_value(json_object_get(js, "schema")), 0, NULL);
    ck_assert(json_equal(txt, schema));
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(js, "schema")), "0.7}"));
    json_decref(txt);
    json_decref(got);
    mg_buf_deinit(&out);
    mg_buf_init(&out, 40);
    ck_assert_int_eq(mg_bedrock_request(NULL, 0, req, 4096, &out, &stream, &e), MG_ETOOBIG);
    ck_assert_uint_eq(out.len, 0);
    mg_buf_deinit(&out);
    json_decref(req);
}
END_TEST

Suite *
translate_suite(void)
{
    Suite *s = suite_create("translate");
    TCase *tc = tcase_create("translate");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, golden_requests);
    tcase_add_test(tc, golden_answers);
    tcase_add_test(tc, golden_streams);
    tcase_add_test(tc, stream_commit_point);
    tcase_add_test(tc, stream_cut_after_finish);
    tcase_add_test(tc, stream_bad_events);
    tcase_add_test(tc, chunk_writer);
    tcase_add_test(tc, bad_requests);
    tcase_add_test(tc, bad_answers_and_errors);
    tcase_add_test(tc, absurd_usage_is_absent_and_sums_saturate);
    tcase_add_test(tc, response_format_parsed);
    suite_add_tcase(s, tc);
    return s;
}
