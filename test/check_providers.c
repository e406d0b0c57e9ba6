/*
 * Provider schemas (azure, anthropic, bedrock) on the request path.
 *
 * Unit part: the schemas' relay stages driven byte by byte with the golden streams of
 * test/golden/ (every cut point), the upstream requests the schemas build, config errors.
 * Integration part: build/modelgate in front of build/fakeai instances that emulate Azure and
 * Anthropic, over real HTTP; waits are on conditions with deadlines.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mg_api.h"
#include "mg_conf.h"
#include "mg_evstream.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_req.h"
#include "mg_schema.h"
#include "mg_harness.h"
#include "mg_test.h"

#define GOLDEN "test/golden/"

/* ---- unit: relay stages over golden streams, cut at every byte ----------------------------- */

struct sink {
    struct mg_buf out;
    int           commits;
};

/* The client API of a path below /v1 ("/chat/completions"), as the dispatcher picks it. */
static const struct mg_api *
api_of(const char *upath)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1%s", upath);
    return mg_api_route(path);
}

static void
sink_emit(void *arg, const char *p, size_t n)
{
    struct sink *k = arg;

    ck_assert_int_eq(mg_buf_add(&k->out, p, n), MG_OK);
}

static void
sink_commit(void *arg)
{
    ((struct sink *)arg)->commits++;
}

static char *
slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long len;

    ck_assert_msg(f != NULL, "cannot open %s (run from the source tree)", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = malloc((size_t)len + 1);
    ck_assert_int_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return s;
}

/* A client request for the unit tests: chat, model "client-model", no headers. */
struct fake_client {
    struct mg_client_req rq;
    struct mg_json_req   jr;
    struct mg_headers    headers;
    char                 model[64];
};

static void
fake_client_init(struct fake_client *c, const char *upath, const char *body, int include_usage)
{
    memset(c, 0, sizeof(*c));
    ck_assert_int_eq(mg_json_scan_request(body, strlen(body), c->model, sizeof(c->model), &c->jr),
                     MG_JSON_OK);
    c->jr.include_usage = include_usage;
    c->rq.upath = upath;
    c->rq.body = body;
    c->rq.body_len = strlen(body);
    c->rq.jr = &c->jr;
    c->rq.headers = &c->headers;
    c->rq.request_id = "rid1";
    c->rq.has_request_id = 1;
    c->rq.has_ctype = 1;
}

/* Runs an answer through schema s's relay, fed in two pieces cut at k. */
static void
run_relay(const struct mg_schema *s, struct fake_client *c, int sse, const char *ctype,
          const char *p, size_t n, size_t k, struct sink *k_out, struct mg_relay *r)
{
    struct mg_resp_head h;
    struct mg_upreq up;
    char line[128];

    mg_head_init(&h);
    h.status = 200;
    snprintf(line, sizeof(line), "Content-Type: %s\r\n", ctype);
    mg_head_line(&h, line, strlen(line));
    memset(&up, 0, sizeof(up));
    mg_buf_init(&k_out->out, 1 << 22);
    k_out->commits = 0;
    mg_relay_init(r, sink_emit, k_out, sink_commit, k_out);
    mg_relay_reset(r, sse || h.sse, api_of(c->rq.upath));
    s->relay(r, &c->rq, &up, &h);
    mg_relay_write(r, p, k);
    mg_relay_write(r, p + k, n - k);
    if (!r->failed && !r->cut) {
        mg_relay_end(r);
    }
    mg_head_deinit(&h);
}

/* What the client gets of a stream: its chunks as a JSON array, "[DONE]" as that string. */
static json_t *
client_events(const char *p, size_t n)
{
    json_t *all = json_array();
    const char *end = p + n;

    while (p < end) {
        const char *sep = strstr(p, "\n\n");
        ck_assert_msg(sep != NULL && strncmp(p, "data: ", 6) == 0, "not an event: %s", p);
        if (sep - p == 12 && strncmp(p + 6, "[DONE]", 6) == 0) {
            json_array_append_new(all, json_string("[DONE]"));
        } else {
            json_t *c = json_loadb(p + 6, (size_t)(sep - p - 6), 0, NULL);
            ck_assert_msg(c != NULL, "chunk is not JSON: %.*s", (int)(sep - p), p);
            json_array_append_new(all, c);
        }
        p = sep + 2;
    }
    return all;
}

/* created and id vary (now, request id): blanked before comparing */
static void
blank(json_t *events)
{
    size_t i;
    json_t *e;

    json_array_foreach(events, i, e) {
        if (json_is_object(e)) {
            json_object_del(e, "created");
            json_object_del(e, "id");
            json_object_del(e, "model");
        }
    }
}

/* Every "created":N in b becomes "created":0 (same length or shorter; b stays valid). */
static void
zero_created(struct mg_buf *b)
{
    char *p = b->data, *end = b->data + b->len, *w;

    while (p != NULL && (p = memmem(p, (size_t)(end - p), "\"created\":", 10)) != NULL) {
        p += 10;
        w = p;
        while (w < end && *w >= '0' && *w <= '9') {
            w++;
        }
        if (w > p + 1) {
            memmove(p + 1, w, (size_t)(end - w));
            end -= w - (p + 1);
        }
        *p = '0';
    }
    b->len = (size_t)(end - b->data);
    if (b->data != NULL) {
        b->data[b->len] = '\0';
    }
}

static void
golden_anthropic_relay(const char *base)
{
    char path[256];
    size_t n, k;
    char *sse;
    json_t *want, *wchunks, *err;
    struct mg_buf first;
    int iu;

    snprintf(path, sizeof(path), GOLDEN "anthropic/%s.out.json", base);
    want = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(want);
    wchunks = json_deep_copy(json_object_get(want, "chunks"));
    blank(wchunks);
    err = json_object_get(want, "error");
    iu = json_is_true(json_object_get(want, "include_usage"));
    snprintf(path, sizeof(path), GOLDEN "anthropic/%s.sse", base);
    sse = slurp(path, &n);
    mg_buf_init(&first, 1 << 22);
    for (k = 0; k <= n; k++) {
        struct fake_client c;
        struct sink out;
        struct mg_relay r;
        json_t *got;

        fake_client_init(&c, "/chat/completions", "{\"model\":\"client-model\",\"stream\":true}",
                         iu);
        run_relay(&mg_schema_anthropic, &c, 1, "text/event-stream", sse, n, k, &out, &r);
        zero_created(&out.out);   /* "created" is now: it may tick between two runs */
        if (k == 0) {
            mg_buf_add(&first, out.out.data ? out.out.data : "", out.out.len);
        } else {
            ck_assert_msg(out.out.len == first.len &&
                          memcmp(out.out.data ? out.out.data : "", first.data ? first.data : "",
                                 first.len) == 0, "%s: a cut at byte %zu changes what the "
                          "client gets", base, k);
        }
        if (k == 0 && err != NULL && !json_is_true(json_object_get(want, "output"))) {
            /* an error before any output: the attempt fails over, the client got nothing */
            ck_assert_msg(r.failed, "%s: not a failed attempt", base);
            ck_assert_int_eq(out.commits, 0);
            ck_assert_uint_eq(out.out.len, 0);
        } else if (k == 0) {
            ck_assert_int_eq(out.commits, 1);
            got = client_events(out.out.data ? out.out.data : "", out.out.len);
            if (err != NULL) {
                /* after output: the chunks so far, then one upstream_stream_error event */
                json_t *last = json_array_get(got, json_array_size(got) - 1);
                json_t *e = json_object_get(last, "error");
                ck_assert_msg(e != NULL, "%s: no error event last", base);
                ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
                                 "upstream_stream_error");
                ck_assert_str_eq(json_string_value(json_object_get(e, "message")),
                                 json_string_value(err));
                json_array_remove(got, json_array_size(got) - 1);
                ck_assert(r.cut);
            } else if (!json_is_true(json_object_get(want, "done"))) {
                /* cut after the finish: the relay completes it (usage, [DONE]) */
                ck_assert(json_is_true(json_object_get(want, "finished")));
                ck_assert_str_eq(json_string_value(json_array_get(got, json_array_size(got) - 1)),
                                 "[DONE]");
                json_array_remove(got, json_array_size(got) - 1);
                if (iu) {
                    json_array_remove(got, json_array_size(got) - 1);
                }
            }
            blank(got);
            ck_assert_msg(json_equal(got, wchunks), "%s: the client's chunks differ", base);
            ck_assert(r.have_usage);
            json_decref(got);
        }
        mg_relay_deinit(&r);
        mg_buf_deinit(&out.out);
    }
    mg_buf_deinit(&first);
    free(sse);
    json_decref(wchunks);
    json_decref(want);
}

START_TEST(anthropic_relay_golden_streams)
{
    DIR *d = opendir(GOLDEN "anthropic");
    struct dirent *de;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        char base[128];
        if (strncmp(de->d_name, "stream-", 7) != 0 || l < 5 || l >= sizeof(base) ||
            strcmp(de->d_name + l - 4, ".sse") != 0) {
            continue;
        }
        memcpy(base, de->d_name, l - 4);
        base[l - 4] = '\0';
        golden_anthropic_relay(base);
        n++;
    }
    closedir(d);
    ck_assert_int_ge(n, 5);
}
END_TEST

/* The golden Bedrock stream's events as AWS event-stream frames. */
static void
encode_frames(json_t *events, struct mg_buf *out)
{
    json_t *ev;
    size_t i;

    json_array_foreach(events, i, ev) {
        const char *type = json_string_value(json_array_get(ev, 0));
        size_t tl = strlen(type);
        int exc = tl >= 9 && strcmp(type + tl - 9, "Exception") == 0;
        char *payload = json_dumps(json_array_get(ev, 1), JSON_COMPACT);
        struct mg_evstream_header h[3] = {
            {":message-type", 13, MG_EVSTREAM_T_STRING, 0,
             (const unsigned char *)(exc ? "exception" : "event"), exc ? 9 : 5},
            {exc ? ":exception-type" : ":event-type", exc ? 15 : 11, MG_EVSTREAM_T_STRING, 0,
             (const unsigned char *)type, tl},
            MG_EVSTREAM_STRING(":content-type", "application/json"),
        };
        ck_assert_int_eq(mg_evstream_encode(out, h, 3, payload, strlen(payload)), MG_OK);
        free(payload);
    }
}

START_TEST(bedrock_relay_golden_streams)
{
    static const char *const names[] = {"stream-text-tool", "stream-guardrail",
                                        "stream-exception-early", "stream-exception-late"};
    size_t i, k;

    for (i = 0; i < MG_ARRAY_LEN(names); i++) {
        char path[256];
        json_t *want, *events, *wchunks, *err;
        struct mg_buf frames;
        int iu;

        snprintf(path, sizeof(path), GOLDEN "bedrock/%s.out.json", names[i]);
        want = json_load_file(path, 0, NULL);
        snprintf(path, sizeof(path), GOLDEN "bedrock/%s.in.json", names[i]);
        events = json_load_file(path, 0, NULL);
        ck_assert(want != NULL && events != NULL);
        wchunks = json_deep_copy(json_object_get(want, "chunks"));
        blank(wchunks);
        err = json_object_get(want, "error");
        iu = json_is_true(json_object_get(want, "include_usage"));
        mg_buf_init(&frames, 1 << 22);
        encode_frames(events, &frames);
        for (k = 0; k <= frames.len; k++) {
            struct fake_client c;
            struct sink out;
            struct mg_relay r;
            json_t *got;

            fake_client_init(&c, "/chat/completions", "{\"model\":\"m\",\"stream\":true}", iu);
            run_relay(&mg_schema_bedrock, &c, 0, "application/vnd.amazon.eventstream",
                      frames.data, frames.len, k, &out, &r);
            if (err != NULL && !json_is_true(json_object_get(want, "output"))) {
                ck_assert_msg(r.failed, "%s: not a failed attempt", names[i]);
                ck_assert_uint_eq(out.out.len, 0);
            } else {
                ck_assert_msg(out.commits == 1, "%s: cut at %zu: no commit (%s)", names[i], k,
                              r.why);
                got = client_events(out.out.data ? out.out.data : "", out.out.len);
                if (err != NULL) {
                    json_t *e = json_object_get(json_array_get(got, json_array_size(got) - 1),
                                                "error");
                    ck_assert_str_eq(json_string_value(json_object_get(e, "message")),
                                     json_string_value(err));
                    json_array_remove(got, json_array_size(got) - 1);
                } else if (!json_is_true(json_object_get(want, "done"))) {
                    json_array_remove(got, json_array_size(got) - 1);   /* [DONE] added */
                    if (iu) {
                        json_array_remove(got, json_array_size(got) - 1);
                    }
                }
                blank(got);
                ck_assert_msg(json_equal(got, wchunks), "%s: cut at %zu: chunks differ",
                              names[i], k);
                json_decref(got);
            }
            mg_relay_deinit(&r);
            mg_buf_deinit(&out.out);
        }
        /* a flipped bit anywhere in a frame: the stream breaks, never a wrong chunk */
        for (k = 0; k < frames.len; k += 13) {
            struct fake_client c;
            struct sink out;
            struct mg_relay r;

            frames.data[k] ^= 0x20;
            fake_client_init(&c, "/chat/completions", "{\"model\":\"m\",\"stream\":true}", iu);
            run_relay(&mg_schema_bedrock, &c, 0, "application/vnd.amazon.eventstream",
                      frames.data, frames.len, frames.len / 2, &out, &r);
            ck_assert_msg(r.failed || r.cut, "%s: a flipped byte at %zu went unnoticed",
                          names[i], k);
            frames.data[k] ^= 0x20;
            mg_relay_deinit(&r);
            mg_buf_deinit(&out.out);
        }
        mg_buf_deinit(&frames);
        json_decref(wchunks);
        json_decref(want);
        json_decref(events);
    }
}
END_TEST

/* A plain Messages answer through the relay: translated at its end, committed once. */
START_TEST(anthropic_relay_plain_answer)
{
    static const char ans[] = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"stop_reason\":\"end_turn\","
        "\"usage\":{\"input_tokens\":5,\"cache_read_input_tokens\":2,\"output_tokens\":7}}";
    size_t k;

    for (k = 0; k <= sizeof(ans) - 1; k++) {
        struct fake_client c;
        struct sink out;
        struct mg_relay r;
        json_t *j;

        fake_client_init(&c, "/chat/completions", "{\"model\":\"client-model\"}", 0);
        run_relay(&mg_schema_anthropic, &c, 0, "application/json", ans, sizeof(ans) - 1, k,
                  &out, &r);
        ck_assert_int_eq(out.commits, 1);
        ck_assert(!r.keep_length);
        j = json_loadb(out.out.data, out.out.len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
        ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "client-model");
        ck_assert_int_eq(r.usage.input, 7);
        ck_assert_int_eq(r.usage.output, 7);
        json_decref(j);
        mg_relay_deinit(&r);
        mg_buf_deinit(&out.out);
    }
}
END_TEST

/* An answer that is not a Messages answer: the relay fails before anything was committed. */
START_TEST(anthropic_relay_unreadable_answer)
{
    struct fake_client c;
    struct sink out;
    struct mg_relay r;

    fake_client_init(&c, "/chat/completions", "{\"model\":\"client-model\"}", 0);
    run_relay(&mg_schema_anthropic, &c, 0, "application/json", "<html>", 6, 3, &out, &r);
    ck_assert(r.failed);
    ck_assert_int_eq(out.commits, 0);
    ck_assert_uint_eq(out.out.len, 0);
    mg_relay_deinit(&r);
    mg_buf_deinit(&out.out);
}
END_TEST

/* Native /v1/messages streams pass byte for byte; usage: last value of each field, cache in. */
START_TEST(anthropic_relay_native_usage)
{
    static const char sse[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
        "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":4,"
        "\"cache_read_input_tokens\":6,\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"\\\"usage\\\"\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":"
        "{\"output_tokens\":12}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    size_t k;

    for (k = 0; k < sizeof(sse) - 1; k += 7) {
        struct fake_client c;
        struct sink out;
        struct mg_relay r;

        fake_client_init(&c, "/messages", "{\"model\":\"client-model\",\"stream\":true}", 0);
        run_relay(&mg_schema_anthropic, &c, 1, "text/event-stream", sse, sizeof(sse) - 1, k,
                  &out, &r);
        ck_assert_uint_eq(out.out.len, sizeof(sse) - 1);
        ck_assert(memcmp(out.out.data, sse, sizeof(sse) - 1) == 0);
        ck_assert(r.have_usage);
        ck_assert_int_eq(r.usage.input, 20);
        ck_assert_int_eq(r.usage.output, 12);
        mg_relay_deinit(&r);
        mg_buf_deinit(&out.out);
    }
}
END_TEST

/* ---- unit: what the schemas send -------------------------------------------------------- */

static const char *
find_line(struct curl_slist *l, const char *prefix)
{
    for (; l != NULL; l = l->next) {
        if (strncasecmp(l->data, prefix, strlen(prefix)) == 0) {
            return l->data;
        }
    }
    return NULL;
}

static struct mg_conf *
conf_of(const char *yaml, struct mg_buf *errors)
{
    mg_buf_init(errors, 1 << 16);
    return mg_conf_parse("t.yaml", yaml, strlen(yaml), errors);
}

START_TEST(azure_builds_deployment_url)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: az, schema: azure, url: 'https://r.openai.azure.com/', api_key: k1,"
        " api_version: 2024-10-21}\n"
        "rules:\n"
        "  - {models: [gpt-4o], backends: [{backend: az}]}\n"
        "  - {models: [m2], backends: [{backend: az, model: 'my dep'}]}\n";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct fake_client c;
    struct mg_upreq up;
    struct mg_headers *h;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    fake_client_init(&c, "/chat/completions", "{\"model\":\"gpt-4o\",\"stream\":true}", 0);
    h = &c.headers;
    mg_headers_add(h, "Authorization", "Bearer client-secret");
    mg_headers_add(h, "x-api-key", "client-secret");
    mg_headers_add(h, "Accept-Encoding", "gzip");
    mg_headers_add(h, "x-custom", "kept");
    c.rq.query = "api-version=1999-01-01&foo=bar";
    mg_upreq_init(&up, 1 << 20);
    ck_assert_int_eq(mg_schema_azure.build(&c.rq, &conf->backends[0], &conf->rules[0].backends[0],
                                           &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/"
                     "completions?api-version=2024-10-21&foo=bar");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "api-key:"), "api-key: k1");
    ck_assert_ptr_null(find_line(mg_schema_header_list(&up), "authorization"));
    ck_assert_ptr_null(find_line(mg_schema_header_list(&up), "x-api-key"));
    /* the client's gzip is not forwarded: the gateway asks for identity */
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "accept-encoding"), "Accept-Encoding: identity");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "x-custom"), "x-custom: kept");
    ck_assert(up.inject_usage);   /* as for openai: usage of streams is asked for */
    mg_upreq_reset(&up);
    c.rq.query = NULL;
    c.rq.upath = "/embeddings";
    ck_assert_int_eq(mg_schema_azure.build(&c.rq, &conf->backends[0], &conf->rules[1].backends[0],
                                           &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://r.openai.azure.com/openai/deployments/my%20dep/"
                     "embeddings?api-version=2024-10-21");
    ck_assert_ptr_nonnull(strstr(up.body, "\"my dep\""));   /* the override, as for openai */
    /* Messages reaches azure through the chat hub only; count_tokens not at all */
    ck_assert_int_ne(mg_api_mode(api_of("/messages"), &conf->backends[0]), MG_API_NATIVE);
    ck_assert_int_eq(mg_api_mode(api_of("/messages/count_tokens"), &conf->backends[0]), 0);
    ck_assert_int_eq(mg_api_mode(api_of("/audio/speech"), &conf->backends[0]), MG_API_NATIVE);
    mg_upreq_deinit(&up);
    mg_headers_clear(h);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

/*
 * Azure's query: every parameter whose name, percent-decoded, is api-version in any case goes;
 * the configured one is set first; the others stay, in order, byte for byte (empty ones, which
 * carry nothing, are left out).
 */
START_TEST(azure_query_rewrite)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: az, schema: azure, url: 'https://r.openai.azure.com', api_key: k1,"
        " api_version: 2024-10-21}\n"
        "rules: [{models: [gpt-4o], backends: [{backend: az}]}]\n";
    static const char *const t[][2] = {
        {NULL, ""},
        {"", ""},
        {"api-version=1999-01-01&foo=bar", "&foo=bar"},
        {"Api-Version=x&foo=bar", "&foo=bar"},
        {"API-VERSION=x", ""},
        {"api%2Dversion=x&a=1", "&a=1"},
        {"api%2dversion=x", ""},
        {"%61pi-version=x&b=2", "&b=2"},
        {"%41%50%49%2D%56%45%52%53%49%4F%4E=1", ""},
        {"api-version", ""},
        {"a=1&API-VERSION&b=2", "&a=1&b=2"},
        {"api-version=", ""},
        {"api-version=a=b&c", "&c"},
        {"a=1&&b=2", "&a=1&b=2"},
        {"&&", ""},
        {"&api-version=1&", ""},
        {"x=%26api-version%3D1&api-version=2", "&x=%26api-version%3D1"},
        {"q=a%26b&r=%2", "&q=a%26b&r=%2"},
        {"api-versions=1&my-api-version=2&api-version2=3",
         "&api-versions=1&my-api-version=2&api-version2=3"},
        {"api+version=1&api%20version=2", "&api+version=1&api%20version=2"},
        {"api-version%=1&api-version%2=2&api-version%zz=3",
         "&api-version%=1&api-version%2=2&api-version%zz=3"},
        {"%00api-version=1&api-version%00=2", "&%00api-version=1&api-version%00=2"},
        {"=api-version&q=api-version", "&=api-version&q=api-version"},
        {"api%252Dversion=1", "&api%252Dversion=1"},
    };
    static const char base[] = "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/"
                               "completions?api-version=2024-10-21";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct fake_client c;
    struct mg_upreq up;
    char want[512];
    size_t i;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    fake_client_init(&c, "/chat/completions", "{\"model\":\"gpt-4o\"}", 0);
    mg_upreq_init(&up, 1 << 20);
    for (i = 0; i < MG_ARRAY_LEN(t); i++) {
        mg_upreq_reset(&up);
        c.rq.query = t[i][0];
        ck_assert_int_eq(mg_schema_azure.build(&c.rq, &conf->backends[0],
                                               &conf->rules[0].backends[0], &up), MG_OK);
        snprintf(want, sizeof(want), "%s%s", base, t[i][1]);
        ck_assert_msg(strcmp(up.url.data, want) == 0, "query \"%s\":\n got %s\nwant %s",
                      t[i][0] ? t[i][0] : "(none)", up.url.data, want);
    }
    mg_upreq_deinit(&up);
    mg_headers_clear(&c.headers);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

static int
count_lines(struct curl_slist *l, const char *prefix)
{
    int n = 0;

    for (; l != NULL; l = l->next) {
        n += strncasecmp(l->data, prefix, strlen(prefix)) == 0;
    }
    return n;
}

/* anthropic-version set in a backend's own headers: is sent once, that value, on every request
 * the schema makes (chat translated, native without the client's, the active check's probe). */
START_TEST(anthropic_version_in_backend_headers_is_sent_once)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: c, schema: anthropic, url: 'https://api.anthropic.com', api_key: k2,"
        " headers: {anthropic-version: 2024-01-01}}\n"
        "rules: [{models: [claude], backends: [{backend: c}]}]\n";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct fake_client c;
    struct mg_upreq up;
    int k;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    mg_upreq_init(&up, 1 << 20);
    for (k = 0; k < 3; k++) {
        mg_upreq_reset(&up);
        if (k == 2) {
            ck_assert_int_eq(mg_schema_anthropic.probe(&conf->backends[0], &up), MG_OK);
        } else {
            fake_client_init(&c, k == 0 ? "/chat/completions" : "/messages",
                             "{\"model\":\"claude\",\"max_tokens\":5,\"messages\":"
                             "[{\"role\":\"user\",\"content\":\"hi\"}]}", 0);
            ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[0],
                                                       &conf->rules[0].backends[0], &up), MG_OK);
        }
        ck_assert_int_eq(count_lines(mg_schema_header_list(&up), "anthropic-version:"), 1);
        ck_assert_str_eq(find_line(mg_schema_header_list(&up), "anthropic-version:"),
                         "anthropic-version: 2024-01-01");
        mg_headers_clear(&c.headers);
    }
    mg_upreq_deinit(&up);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

START_TEST(anthropic_builds_messages_request)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: c, schema: anthropic, url: 'https://api.anthropic.com', api_key: k2,"
        " max_tokens: 1234}\n"
        "rules: [{models: [claude], backends: [{backend: c}]}]\n";
    static const char body[] = "{\"model\":\"claude\",\"messages\":[{\"role\":\"system\","
        "\"content\":\"S\"},{\"role\":\"user\",\"content\":\"hi\"}],\"n\":1}";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct fake_client c;
    struct mg_upreq up;
    json_t *j;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    fake_client_init(&c, "/chat/completions", body, 0);
    mg_headers_add(&c.headers, "anthropic-version", "1999-01-01");
    mg_upreq_init(&up, 1 << 20);
    ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[0],
                                               &conf->rules[0].backends[0], &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://api.anthropic.com/v1/messages");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "x-api-key"), "x-api-key: k2");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "anthropic-version"), "anthropic-version: 2023-06-01");
    j = json_loadb(up.body, up.body_len, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 1234);
    ck_assert_str_eq(json_string_value(json_object_get(j, "system")), "S");
    json_decref(j);
    /* n > 1: this backend is left out; a broken request is refused */
    mg_upreq_reset(&up);
    mg_headers_clear(&c.headers);
    fake_client_init(&c, "/chat/completions", "{\"model\":\"claude\",\"n\":2,\"messages\":[]}", 0);
    ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[0],
                                               &conf->rules[0].backends[0], &up), MG_SCHEMA_ESKIP);
    ck_assert_str_eq(up.param, "n");
    mg_upreq_reset(&up);
    fake_client_init(&c, "/chat/completions", "{\"model\":\"claude\",\"messages\":3}", 0);
    ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[0],
                                               &conf->rules[0].backends[0], &up),
                     MG_SCHEMA_EINVAL);
    /* native: the client's version kept, its key not */
    mg_upreq_reset(&up);
    fake_client_init(&c, "/messages", "{\"model\":\"claude\",\"max_tokens\":5}", 0);
    mg_headers_add(&c.headers, "anthropic-version", "2023-01-01");
    mg_headers_add(&c.headers, "anthropic-beta", "b1");
    mg_headers_add(&c.headers, "x-api-key", "client-secret");
    ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[0],
                                               &conf->rules[0].backends[0], &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://api.anthropic.com/v1/messages");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "anthropic-version"), "anthropic-version: 2023-01-01");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "anthropic-beta"), "anthropic-beta: b1");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "x-api-key"), "x-api-key: k2");
    ck_assert(up.body == c.rq.body);   /* byte for byte: no copy */
    ck_assert_int_eq(mg_api_mode(api_of("/embeddings"), &conf->backends[0]), 0);
    ck_assert_int_eq(mg_api_mode(api_of("/messages/count_tokens"), &conf->backends[0]),
                     MG_API_NATIVE);
    mg_upreq_deinit(&up);
    mg_headers_clear(&c.headers);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

START_TEST(bedrock_builds_signed_request)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: br, schema: bedrock, region: us-west-2, aws_access_key_id: AKID,"
        " aws_secret_access_key: SECRET, aws_session_token: TOKEN}\n"
        "rules: [{models: [m], backends: [{backend: br,"
        " model: 'anthropic.claude-3-5-sonnet-20240620-v1:0'}]}]\n";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);
    struct fake_client c;
    struct mg_upreq up;
    const char *auth;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    fake_client_init(&c, "/chat/completions", "{\"model\":\"m\",\"stream\":true,\"messages\":"
                     "[{\"role\":\"user\",\"content\":\"hi\"}]}", 0);
    mg_headers_add(&c.headers, "x-amz-target", "client-chosen");
    mg_headers_add(&c.headers, "Content-Type", "text/plain");
    mg_upreq_init(&up, 1 << 20);
    ck_assert_int_eq(mg_schema_bedrock.build(&c.rq, &conf->backends[0],
                                             &conf->rules[0].backends[0], &up), MG_OK);
    ck_assert_str_eq(up.url.data, "https://bedrock-runtime.us-west-2.amazonaws.com/model/"
                     "anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    ck_assert(up.stream);
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "host:"), "Host: bedrock-runtime.us-west-2."
                     "amazonaws.com");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "content-type"), "Content-Type: application/json");
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "x-amz-security-token"),
                     "x-amz-security-token: TOKEN");
    ck_assert_ptr_nonnull(find_line(mg_schema_header_list(&up), "x-amz-date"));
    ck_assert_ptr_null(find_line(mg_schema_header_list(&up), "x-amz-target"));   /* unsigned x-amz-*: never */
    auth = find_line(mg_schema_header_list(&up), "authorization");
    ck_assert_ptr_nonnull(strstr(auth, "Credential=AKID/"));
    ck_assert_ptr_nonnull(strstr(auth, "/us-west-2/bedrock/aws4_request, SignedHeaders="
                                 "content-type;host;x-amz-date;x-amz-security-token, "));
    ck_assert_int_ne(mg_api_mode(api_of("/messages"), &conf->backends[0]), MG_API_NATIVE);
    ck_assert_int_eq(mg_api_mode(api_of("/embeddings"), &conf->backends[0]), 0);
    mg_upreq_deinit(&up);
    mg_headers_clear(&c.headers);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

/* Each schema's missing keys (and keys of another schema) are errors with file:line:col. */
START_TEST(schema_config_errors)
{
    static const struct {
        const char *backend;
        const char *message;
    } cases[] = {
        {"{name: x, schema: azure, url: 'http://h', api_key: k}", "t.yaml:2:5: backend \"x\" "
         "(schema: azure) needs \"api_version\""},
        {"{name: x, schema: azure, url: 'http://h', api_version: v}", "needs \"api_key\""},
        {"{name: x, schema: anthropic, url: 'http://h'}", "(schema: anthropic) needs \"api_key\""},
        {"{name: x, schema: bedrock, aws_access_key_id: a, aws_secret_access_key: s}",
         "(schema: bedrock) needs \"region\""},
        {"{name: x, schema: bedrock, region: r, aws_access_key_id: a}",
         "needs both \"aws_access_key_id\" and \"aws_secret_access_key\", or neither"},
        {"{name: x, schema: bedrock, region: r, aws_session_token: t}",
         "aws_session_token goes with aws_access_key_id"},
        {"{name: x, schema: azure, url: 'http://h', api_version: v, api_key: k, azure_ad: "
         "managed_identity}", "\"api_key\" or \"azure_ad\", not both"},
        {"{name: x, schema: azure, url: 'http://h', api_version: v, azure_ad: yes}",
         "azure_ad must be managed_identity or a mapping"},
        {"{name: x, schema: azure, url: 'http://h', api_version: v, azure_ad: {tenant_id: t,"
         " client_id: c}}", "azure_ad needs tenant_id, client_id and client_secret"},
        {"{name: x, schema: azure, url: 'http://h', api_version: v, azure_ad: {managed_identity:"
         " true, client_secret: s}}", "a managed identity takes no tenant_id or client_secret"},
        {"{name: x, schema: azure, url: 'http://h', api_version: v, azure_ad: {tenant_id: t,"
         " client_id: c, client_secret: s, scope: z}}", "scope"},
        {"{name: x, url: 'http://h', azure_ad: managed_identity}",
         "azure_ad applies only to schema: azure"},
        {"{name: x, url: 'http://h', aws_role_arn: r}", "aws_role_arn applies only"},
        {"{name: x, url: 'http://h', api_version: v}", "api_version applies only to schema: azure"},
        {"{name: x, url: 'http://h', max_tokens: 5}", "max_tokens applies only"},
        {"{name: x, schema: gemini, url: 'http://h'}", "t.yaml:2:23: unknown schema \"gemini\""},
    };
    char yaml[512];
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(cases); i++) {
        struct mg_buf errors;
        struct mg_conf *conf;
        snprintf(yaml, sizeof(yaml), "backends:\n  - %s\nrules: [{models: [m], backends: "
                 "[{backend: x}]}]\n", cases[i].backend);
        conf = conf_of(yaml, &errors);
        ck_assert_msg(conf == NULL, "case %zu loaded", i);
        ck_assert_msg(strstr(errors.data, cases[i].message) != NULL, "case %zu: %s", i,
                      errors.data);
        mg_buf_deinit(&errors);
    }
}
END_TEST

START_TEST(schema_config_defaults)
{
    static const char yaml[] =
        "backends:\n"
        "  - {name: b, schema: bedrock, region: eu-west-3, aws_access_key_id: AK,"
        " aws_secret_access_key: SK}\n"
        "  - {name: c, schema: anthropic, url: 'http://h', api_key: k, anthropic_version: v2}\n"
        "rules: [{models: [m], backends: [{backend: b}, {backend: c}]}]\n";
    struct mg_buf errors;
    struct mg_conf *conf = conf_of(yaml, &errors);

    struct fake_client c;
    struct mg_upreq up;

    ck_assert_msg(conf != NULL, "%s", errors.data);
    ck_assert_str_eq(conf->backends[0].url, "https://bedrock-runtime.eu-west-3.amazonaws.com");
    ck_assert_int_eq(conf->backends[0].schema, MG_SCHEMA_BEDROCK);
    ck_assert_str_eq(conf->backends[1].auth_header, "x-api-key: k");
    ck_assert(!conf->rules[0].retries_set);
    /* the schemas' own keys sit in their private conf: seen in what they send */
    fake_client_init(&c, "/chat/completions", "{\"model\":\"m\",\"messages\":"
                     "[{\"role\":\"user\",\"content\":\"hi\"}]}", 0);
    mg_upreq_init(&up, 1 << 20);
    ck_assert_int_eq(mg_schema_bedrock.build(&c.rq, &conf->backends[0],
                                             &conf->rules[0].backends[0], &up), MG_OK);
    ck_assert_ptr_nonnull(strstr(up.body, "\"maxTokens\":4096"));   /* the default max_tokens */
    mg_upreq_reset(&up);
    ck_assert_int_eq(mg_schema_anthropic.build(&c.rq, &conf->backends[1],
                                               &conf->rules[0].backends[1], &up), MG_OK);
    ck_assert_str_eq(find_line(mg_schema_header_list(&up), "anthropic-version"),
                     "anthropic-version: v2");
    ck_assert_ptr_nonnull(strstr(up.body, "\"max_tokens\":4096"));
    mg_upreq_deinit(&up);
    mg_headers_clear(&c.headers);
    mg_conf_unref(conf);
    mg_buf_deinit(&errors);
}
END_TEST

/* ---- integration ------------------------------------------------------------------------- */

enum { F_P1, F_P2, NFAKE };
static const char *const fake_names[NFAKE] = {"p1", "p2"};
static struct mg_harness gwh;   /* the fakes and the gateway the suite shares */
static const char *acc_log = "mgtest-prov-access.log";

static const char *
gw(const char *path)
{
    return mg_harness_url(&gwh, path);
}

static void
start_all(void)
{
    char conf[8192];
    int i;

    mg_harness_init(&gwh, "mgtest-prov-gw.log", "mgtest-prov-fake.log");
    for (i = 0; i < NFAKE; i++) {
        mg_harness_fake(&gwh, fake_names[i], NULL);
    }
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "timeouts: {connect: 2s, first_byte: 10s, idle: 10s, total: 60s}\n"
             "log_level: debug\n"
             "access_log: %s\n"
             "health: {failures: 0}\n"
             "backends:\n"
             "  - {name: claude, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: sk-ant-b,"
             " max_tokens: 333}\n"
             "  - {name: claude2, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: sk-ant-c}\n"
             "  - {name: az, schema: azure, url: 'http://127.0.0.1:%d', api_key: az-key,"
             " api_version: 2024-10-21}\n"
             "  - {name: oa, url: 'http://127.0.0.1:%d/v1', api_key: sk-oa}\n"
             "  - {name: oat, url: 'http://127.0.0.1:%d/v1', api_key: sk-oa,"
             " responses: translate, max_tokens_param: max_completion_tokens}\n"
             "  - {name: br, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret,"
             " aws_session_token: tok-1}\n"
             "  - {name: br-bad, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d',"
             " aws_access_key_id: FAKEAKID, aws_secret_access_key: not-the-secret}\n"
             "rules:\n"
             "  - {models: [br-x], backends: [{backend: br,"
             " model: 'anthropic.claude-3-haiku-20240307-v1:0'}]}\n"
             "  - {models: [br-bad], backends: [{backend: br-bad}]}\n"
             "  - {models: [br-mixed], backends: [{backend: br}, {backend: oa, priority: 1}]}\n"
             "  - {models: [oa-x], backends: [{backend: oa}]}\n"
             "  - {models: [oat-x], backends: [{backend: oat}]}\n"
             "  - {models: [whisper-x], backends: [{backend: oa, model: whisper-1},"
             " {backend: claude, priority: 1}]}\n"
             "  - {models: [claude-x], backends: [{backend: claude}]}\n"
             "  - {models: [claude-ov], backends: [{backend: claude, model: claude-upstream}]}\n"
             "  - {models: [az-x], backends: [{backend: az}]}\n"
             "  - {models: [mixed], backends: [{backend: claude}, {backend: oa, priority: 1}]}\n"
             "  - {models: [mixed-az], backends: [{backend: az}, {backend: claude2, priority: 1}]}\n"
             "  - {models: [two-claudes], backends: [{backend: claude},"
             " {backend: claude2, priority: 1}]}\n",
             gwh.gw_port, acc_log, gwh.fake_port[F_P1], gwh.fake_port[F_P2], gwh.fake_port[F_P1],
             gwh.fake_port[F_P2], gwh.fake_port[F_P2], gwh.fake_port[F_P1],
             gwh.fake_port[F_P1]);
    unlink(acc_log);
    mg_harness_start(&gwh, 5, conf);
}

static void
stop_all(void)
{
    mg_harness_stop(&gwh, "modelgate");
}

static void
post(const char *path, const char *body, const char *const *headers, struct mg_test_resp *r)
{
    mg_test_http("POST", gw(path), body, strlen(body), headers, r);
}

/* The error body's type and message, OpenAI's shape; its code when code is not NULL. */
static void
assert_openai_error(struct mg_test_resp *r, long status, const char *type, const char *code)
{
    json_t *j = mg_test_body_json(r), *e = json_object_get(j, "error");

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_ptr_nonnull(e);
    if (type != NULL) {
        ck_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    }
    if (code != NULL) {
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    }
    ck_assert(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

static void
assert_anthropic_error(struct mg_test_resp *r, long status, const char *type)
{
    json_t *j = mg_test_body_json(r), *e = json_object_get(j, "error");

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), type);
    ck_assert(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

/* The access log line holding needle (waits for it). */
static json_t *
access_line(const char *needle)
{
    static char buf[1 << 20];
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (mg_now_ms() < deadline) {
        FILE *f = fopen(acc_log, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        char *line, *save = NULL;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strstr(line, needle) != NULL) {
                return json_loads(line, 0, NULL);
            }
        }
        usleep(20000);
    }
    ck_abort_msg("no access log line with %s", needle);
    return NULL;
}

/* The upstream request fakeai saw, from an echo answer's message content. */
static json_t *
echoed(struct mg_test_resp *r)
{
    json_t *j = mg_test_body_json(r), *e;
    const char *content = json_string_value(json_object_get(json_object_get(
        json_array_get(json_object_get(j, "choices"), 0), "message"), "content"));

    ck_assert_msg(content != NULL, "no content: %s", r->body.data);
    e = json_loads(content, 0, NULL);
    ck_assert_ptr_nonnull(e);
    json_decref(j);
    return e;
}

START_TEST(azure_request_over_http)
{
    const char *h[] = {"x-fake-echo: 1", "Authorization: Bearer client-secret", NULL};
    struct mg_test_resp r;
    json_t *j, *headers;

    mg_test_http("POST", gw("/v1/chat/completions?api-version=old&x=1"),
                 "{\"model\":\"az-x\",\"messages\":[]}", 30, h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "uri")),
                     "/openai/deployments/az-x/chat/completions?api-version=2024-10-21&x=1");
    headers = json_object_get(j, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(headers, "api-key")), "az-key");
    ck_assert_ptr_null(json_object_get(headers, "authorization"));
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "az");
    json_decref(j);
    mg_test_resp_free(&r);
    /* a stream's usage is asked for and hidden, as for openai */
    post("/v1/chat/completions", "{\"model\":\"az-x\",\"stream\":true,\"messages\":[]}",
         (const char *[]){"x-request-id: prov-az-stream", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body.data, "\"usage\""));
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    mg_test_resp_free(&r);
    j = access_line("prov-az-stream");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 10);
    json_decref(j);
    /* Anthropic's Messages reach Azure through chat; count_tokens does not (404, never an
     * estimate, as an upstream without the endpoint answers) */
    post("/v1/messages", "{\"model\":\"az-x\",\"max_tokens\":5,\"messages\":"
         "[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, &r);
    ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body.data);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "message");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "az-x");
    ck_assert_str_eq(json_string_value(json_object_get(j, "stop_reason")), "end_turn");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(j, "content"), 0), "text")), "Hello from p1");
    json_decref(j);
    mg_test_resp_free(&r);
    post("/v1/messages/count_tokens", "{\"model\":\"az-x\",\"messages\":[]}", NULL, &r);
    assert_anthropic_error(&r, 404, "not_found_error");
    mg_test_resp_free(&r);
}
END_TEST

/*
 * The client's api-version, however it is spelled (case, percent-encoding, no value), never
 * reaches Azure: exactly one api-version, the configured one; the other parameters as sent.
 */
START_TEST(azure_query_has_one_api_version)
{
    const char *h[] = {"x-fake-echo: 1", NULL};
    struct mg_test_resp r;
    json_t *j;
    const char *uri, *p;
    int n = 0;

    mg_test_http("POST", gw("/v1/chat/completions?Api-Version=2023-01-01&x=1&api%2Dversion=2&"
                            "%61pi-version=3&API-VERSION&keep=%26api-version%3D4&&y=%2F"),
                 "{\"model\":\"az-x\",\"messages\":[]}", 30, h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "az");
    j = mg_test_body_json(&r);
    uri = json_string_value(json_object_get(j, "uri"));
    ck_assert_str_eq(uri, "/openai/deployments/az-x/chat/completions?api-version=2024-10-21&x=1&"
                          "keep=%26api-version%3D4&y=%2F");
    for (p = uri; (p = strcasestr(p, "api-version=")) != NULL; p++) {
        n++;
    }
    ck_assert_int_eq(n, 1);
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(anthropic_plain_answer)
{
    const char *h[] = {"x-fake-cache: 3,2", "x-request-id: prov-plain", NULL};
    struct mg_test_resp r;
    json_t *j, *ch, *u;

    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "application/json");
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude");
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "claude-x");
    ch = json_array_get(json_object_get(j, "choices"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ch, "message"),
                                                       "content")), "Hello from p1");
    ck_assert_str_eq(json_string_value(json_object_get(ch, "finish_reason")), "stop");
    u = json_object_get(j, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 15);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 20);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(u,
                     "prompt_tokens_details"), "cached_tokens")), 3);
    json_decref(j);
    mg_test_resp_free(&r);
    j = access_line("prov-plain");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 15);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "output_tokens")), 20);
    json_decref(j);
}
END_TEST

START_TEST(anthropic_request_translated)
{
    const char *h[] = {"x-fake-echo: 1", "Authorization: Bearer client-secret", NULL};
    struct mg_test_resp r;
    json_t *e, *b;

    post("/v1/chat/completions", "{\"model\":\"claude-ov\",\"messages\":[{\"role\":\"system\","
         "\"content\":\"A\"},{\"role\":\"developer\",\"content\":\"B\"},{\"role\":\"user\","
         "\"content\":\"hi\"}],\"stop\":\"END\",\"user\":\"u1\",\"temperature\":0.5}", h, &r);
    ck_assert_int_eq(r.status, 200);
    e = echoed(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")), "/v1/messages");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "headers"),
                                                       "x-api-key")), "sk-ant-b");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "headers"),
                                                       "anthropic-version")), "2023-06-01");
    ck_assert_ptr_null(json_object_get(json_object_get(e, "headers"), "authorization"));
    b = json_object_get(e, "body");
    ck_assert_str_eq(json_string_value(json_object_get(b, "model")), "claude-upstream");
    ck_assert_str_eq(json_string_value(json_object_get(b, "system")), "A\n\nB");
    ck_assert_int_eq(json_integer_value(json_object_get(b, "max_tokens")), 333);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(b, "stop_sequences"), 0)),
                     "END");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "metadata"),
                                                       "user_id")), "u1");
    json_decref(e);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(anthropic_tool_calls)
{
    static const char body[] = "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"weather?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\",\"parameters\":{\"type\":\"object\"}}}],\"parallel_tool_calls\":false}";
    struct mg_test_resp r;
    json_t *j, *m, *tc;

    post("/v1/chat/completions", body, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    m = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    tc = json_array_get(json_object_get(m, "tool_calls"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(tc, "id")), "toolu_fake1");
    ck_assert_str_eq(json_string_value(json_object_get(tc, "type")), "function");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(tc, "function"), "name")),
                     "get_weather");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(tc, "function"),
                                                       "arguments")), "{\"location\":\"Paris\"}");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j,
                     "choices"), 0), "finish_reason")), "tool_calls");
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

/* The stream the client gets, as events; checks the chat stream invariants on the way. */
static json_t *
stream_events(struct mg_test_resp *r)
{
    return client_events(r->body.data ? r->body.data : "", r->body.len);
}

START_TEST(anthropic_stream_translated)
{
    static const char body[] = "{\"model\":\"claude-x\",\"stream\":true,\"messages\":[{\"role\":"
        "\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
        "\"get_weather\"}}]}";
    const char *plain[] = {"x-request-id: prov-stream", NULL};
    const char *split[] = {"x-fake-split: 1", NULL};
    struct mg_test_resp r, r2;
    json_t *ev, *e, *d;
    size_t i, n;
    char text[64] = "";
    char args[64] = "";

    post("/v1/chat/completions", body, plain, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "text/event-stream");
    ev = stream_events(&r);
    n = json_array_size(ev);
    ck_assert_str_eq(json_string_value(json_array_get(ev, n - 1)), "[DONE]");
    e = json_array_get(ev, 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(
        json_object_get(e, "choices"), 0), "delta"), "role")), "assistant");
    for (i = 0; i + 1 < n; i++) {
        e = json_array_get(ev, i);
        ck_assert_str_eq(json_string_value(json_object_get(e, "object")), "chat.completion.chunk");
        ck_assert_ptr_null(json_object_get(e, "usage"));   /* not asked for */
        d = json_object_get(json_array_get(json_object_get(e, "choices"), 0), "delta");
        if (json_is_string(json_object_get(d, "content"))) {
            strncat(text, json_string_value(json_object_get(d, "content")),
                    sizeof(text) - strlen(text) - 1);
        }
        if (json_object_get(d, "tool_calls") != NULL) {
            json_t *t = json_array_get(json_object_get(d, "tool_calls"), 0);
            ck_assert_int_eq(json_integer_value(json_object_get(t, "index")), 0);
            strncat(args, json_string_value(json_object_get(json_object_get(t, "function"),
                                                            "arguments")),
                    sizeof(args) - strlen(args) - 1);
        }
    }
    ck_assert_str_eq(text, "tok0 tok1 tok2 ");
    ck_assert_str_eq(args, "{\"location\": \"Paris\"}");
    e = json_array_get(ev, n - 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(e,
                     "choices"), 0), "finish_reason")), "tool_calls");
    json_decref(ev);
    /* every event split in two writes upstream: the same stream (ids and times apart) */
    post("/v1/chat/completions", body, split, &r2);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_uint_eq(r2.body.len, r.body.len);
    mg_test_resp_free(&r2);
    mg_test_resp_free(&r);
    /* usage is accounted although the client did not ask for it */
    e = access_line("prov-stream");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "input_tokens")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "output_tokens")), 20);
    json_decref(e);
}
END_TEST

START_TEST(anthropic_stream_usage_chunk)
{
    const char *h[] = {"x-fake-cache: 4,0", NULL};
    struct mg_test_resp r;
    json_t *ev, *u;
    size_t n;

    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", h,
         &r);
    ck_assert_int_eq(r.status, 200);
    ev = stream_events(&r);
    n = json_array_size(ev);
    ck_assert_str_eq(json_string_value(json_array_get(ev, n - 1)), "[DONE]");
    u = json_object_get(json_array_get(ev, n - 2), "usage");
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(ev, n - 2), "choices")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 14);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(u,
                     "prompt_tokens_details"), "cached_tokens")), 4);
    json_decref(ev);
    mg_test_resp_free(&r);
}
END_TEST

/* An error event before any output fails over (across schemas: to an openai backend). */
START_TEST(anthropic_stream_error_early_fails_over)
{
    const char *h[] = {"x-fake-stream-error: early", NULL};
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"mixed\",\"stream\":true,\"messages\":[]}", h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oa");
    ck_assert_ptr_nonnull(strstr(r.body.data, "chatcmpl-fake"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
    mg_test_resp_free(&r);
}
END_TEST

/*
 * An Anthropic stream that ends before any event (nothing, or a comment) fails over like a 502:
 * claude (p1) once more, then claude2 (p2), whose whole stream the client gets, translated or
 * native.
 */
START_TEST(anthropic_empty_stream_fails_over)
{
    static const char *const modes[] = {"x-fake-empty-stream: 1", "x-fake-empty-stream: 2"};
    static const char *const bodies[][2] = {
        {"/v1/chat/completions", "{\"model\":\"two-claudes\",\"stream\":true,\"messages\":[]}"},
        {"/v1/messages", "{\"model\":\"two-claudes\",\"max_tokens\":5,\"stream\":true,"
                         "\"messages\":[]}"},
    };
    size_t i, k;

    for (i = 0; i < MG_ARRAY_LEN(modes); i++) {
        for (k = 0; k < MG_ARRAY_LEN(bodies); k++) {
            const char *h[] = {"x-fake-for: p1", modes[i], NULL};
            long p1 = mg_test_fake_stat(gwh.fake_port[F_P1], "requests");
            long p2 = mg_test_fake_stat(gwh.fake_port[F_P2], "requests");
            struct mg_test_resp r;

            post(bodies[k][0], bodies[k][1], h, &r);
            ck_assert_msg(r.status == 200, "%s %s: %ld %s", modes[i], bodies[k][0], r.status,
                          r.body.data);
            ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude2");
            ck_assert_ptr_null(strstr(r.body.data, "error"));
            ck_assert_ptr_nonnull(strstr(r.body.data, "tok2"));
            if (k == 0) {
                json_t *ev = stream_events(&r);
                ck_assert_str_eq(json_string_value(json_array_get(ev, json_array_size(ev) - 1)),
                                 "[DONE]");
                json_decref(ev);
            } else {
                ck_assert_ptr_nonnull(strstr(r.body.data, "event: message_stop\n"));
            }
            ck_assert_int_eq(mg_test_fake_stat(gwh.fake_port[F_P1], "requests") - p1, 2);
            ck_assert_int_eq(mg_test_fake_stat(gwh.fake_port[F_P2], "requests") - p2, 1);
            mg_test_resp_free(&r);
        }
    }
}
END_TEST

/*
 * Anthropic's ping events are dropped from a translated stream whatever their data (a bare
 * "data:", "data: ", no data line, not JSON); Anthropic-native clients get them as sent.
 */
START_TEST(anthropic_ping_dropped_whatever_its_data)
{
    static const char *const kinds[][2] = {
        {"x-fake-ping: empty", "event: ping\ndata:\n\n"},
        {"x-fake-ping: blank", "event: ping\ndata: \n\n"},
        {"x-fake-ping: none", "event: ping\n\n"},
        {"x-fake-ping: junk", "event: ping\ndata: not json\n\n"},
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(kinds); i++) {
        const char *h[] = {kinds[i][0], NULL};
        struct mg_test_resp r;
        json_t *ev;

        post("/v1/chat/completions", "{\"model\":\"claude-x\",\"stream\":true,\"messages\":[]}",
             h, &r);
        ck_assert_msg(r.status == 200, "%s: %ld %s", kinds[i][0], r.status, r.body.data);
        ck_assert_ptr_null(strstr(r.body.data, "error"));
        ck_assert_ptr_null(strstr(r.body.data, "ping"));
        ck_assert_ptr_nonnull(strstr(r.body.data, "tok2"));
        ev = stream_events(&r);
        ck_assert_str_eq(json_string_value(json_array_get(ev, json_array_size(ev) - 1)),
                         "[DONE]");
        json_decref(ev);
        mg_test_resp_free(&r);
        post("/v1/messages", "{\"model\":\"claude-x\",\"max_tokens\":5,\"stream\":true,"
             "\"messages\":[]}", h, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(strstr(r.body.data, kinds[i][1]) != NULL, "%s: %s", kinds[i][0],
                      r.body.data);
        ck_assert_ptr_nonnull(strstr(r.body.data, "event: message_stop\n"));
        ck_assert_ptr_null(strstr(r.body.data, "event: error"));
        mg_test_resp_free(&r);
    }
}
END_TEST

/* After output: one upstream_stream_error event, no [DONE]; counted as such. */
START_TEST(anthropic_stream_failures_after_commit)
{
    static const char *const cases[][2] = {
        {"x-fake-stream-error: late", "Overloaded"},
        {"x-fake-cut: 1", "connection closed"},
    };
    size_t i;

    for (i = 0; i < 2; i++) {
        const char *h[] = {cases[i][0], i ? "x-request-id: prov-cut" : NULL, NULL};
        struct mg_test_resp r;
        json_t *ev, *last, *e;

        post("/v1/chat/completions", "{\"model\":\"claude-x\",\"stream\":true,\"messages\":[]}",
             h, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_int_eq(r.curl_rc, CURLE_OK);   /* a clean end of the response */
        ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
        ev = stream_events(&r);
        last = json_array_get(ev, json_array_size(ev) - 1);
        e = json_object_get(last, "error");
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "upstream_stream_error");
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "message")),
                                     cases[i][1]));
        ck_assert_ptr_nonnull(strstr(r.body.data, "tok2"));
        json_decref(ev);
        mg_test_resp_free(&r);
    }
    {
        json_t *j = access_line("prov-cut");
        ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "upstream_stream_error");
        json_decref(j);
    }
}
END_TEST

/* 529 (overloaded) fails over like 503; the last one reaches the client in OpenAI's shape. */
START_TEST(anthropic_529_and_errors)
{
    const char *only_p1[] = {"x-fake-status: 529", "x-fake-status-for: p1", NULL};
    const char *all[] = {"x-fake-status: 529", NULL};
    const char *auth[] = {"x-fake-status: 401", NULL};
    struct mg_test_resp r;
    json_t *j;

    post("/v1/chat/completions", "{\"model\":\"two-claudes\",\"messages\":[]}", only_p1, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude2");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"two-claudes\",\"messages\":[]}", all, &r);
    assert_openai_error(&r, 529, "overloaded_error", NULL);
    ck_assert_ptr_nonnull(strstr(r.body.data, "Overloaded"));
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"messages\":[]}", auth, &r);
    assert_openai_error(&r, 401, "authentication_error", NULL);
    j = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                     "fake failure");
    json_decref(j);
    mg_test_resp_free(&r);
    /* native clients get Anthropic's error as it is */
    post("/v1/messages", "{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":[]}", auth, &r);
    assert_anthropic_error(&r, 401, "authentication_error");
    mg_test_resp_free(&r);
}
END_TEST

/* What a schema cannot take: left out at no cost, or 400 when nothing is left. */
START_TEST(unsupported_parameters_and_paths)
{
    struct mg_test_resp r;

    post("/v1/chat/completions", "{\"model\":\"mixed\",\"n\":2,\"messages\":[]}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oa");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"n\":2,\"messages\":[]}", NULL, &r);
    assert_openai_error(&r, 400, "invalid_request_error", "unsupported_parameter");
    ck_assert_ptr_nonnull(strstr(r.body.data, "\"param\":\"n\""));
    mg_test_resp_free(&r);
    post("/v1/embeddings", "{\"model\":\"claude-x\",\"input\":\"x\"}", NULL, &r);
    assert_openai_error(&r, 400, "invalid_request_error", "unsupported_endpoint");
    mg_test_resp_free(&r);
    post("/v1/embeddings", "{\"model\":\"mixed\",\"input\":\"x\"}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oa");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"messages\":\"no\"}", NULL, &r);
    assert_openai_error(&r, 400, "invalid_request_error", "invalid_value");
    mg_test_resp_free(&r);
}
END_TEST

/* A rule that falls back across schemas: each attempt is built from the client's body. */
START_TEST(fallback_across_schemas)
{
    const char *h[] = {"x-fake-status: 503", "x-fake-status-for: p1", "x-fake-echo: 1", NULL};
    struct mg_test_resp r;
    json_t *e, *b;

    /* azure (on p1) fails; claude2 (on p2) gets the client's body translated */
    post("/v1/chat/completions", "{\"model\":\"mixed-az\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "claude2");
    e = echoed(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")), "/v1/messages");
    b = json_object_get(e, "body");
    ck_assert_str_eq(json_string_value(json_object_get(b, "model")), "mixed-az");
    ck_assert_int_eq(json_integer_value(json_object_get(b, "max_tokens")), 4096);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "headers"),
                                                       "x-api-key")), "sk-ant-c");
    json_decref(e);
    mg_test_resp_free(&r);
    /* claude (p1) fails with 503; oa (p2) gets the client's own bytes */
    post("/v1/chat/completions", "{\"model\":\"mixed\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}]}", h, &r);
    ck_assert_int_eq(r.status, 200);
    e = mg_test_body_json(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")), "/v1/chat/completions");
    ck_assert_str_eq(json_string_value(json_object_get(e, "body")), "{\"model\":\"mixed\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    b = json_object_get(json_object_get(e, "headers"), "authorization");
    ck_assert_str_eq(json_string_value(b), "Bearer sk-oa");
    json_decref(e);
    mg_test_resp_free(&r);
    /* both fail: the last answer (Anthropic's 503) reaches the client in OpenAI's shape */
    post("/v1/chat/completions", "{\"model\":\"two-claudes\",\"messages\":[]}",
         (const char *[]){"x-fake-status: 503", NULL}, &r);
    assert_openai_error(&r, 503, "api_error", NULL);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(native_messages_passthrough)
{
    static const char body[] = "{\"model\":\"claude-x\",\"max_tokens\":5,\"messages\":"
        "[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *h[] = {"anthropic-version: 2023-01-01", "anthropic-beta: tools-2024",
                       "x-api-key: client-secret", "x-fake-echo: 1",
                       "x-request-id: prov-native", "x-fake-cache: 1,2", NULL};
    struct mg_test_resp r, direct;
    json_t *j, *e, *hs;
    char url[128];

    post("/v1/messages", body, h, &r);
    ck_assert_int_eq(r.status, 200);
    /* byte for byte what the provider answered */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/messages", gwh.fake_port[F_P1]);
    mg_test_http("POST", url, body, strlen(body), (const char *[]){"anthropic-version: 2023-01-01",
                 "anthropic-beta: tools-2024", "x-api-key: sk-ant-b", "x-fake-cache: 1,2", NULL},
                 &direct);
    ck_assert_int_eq(direct.status, 200);
    j = mg_test_body_json(&r);
    e = json_loads(json_string_value(json_object_get(json_array_get(json_object_get(j, "content"),
                   0), "text")), 0, NULL);
    hs = json_object_get(e, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(hs, "anthropic-version")), "2023-01-01");
    ck_assert_str_eq(json_string_value(json_object_get(hs, "anthropic-beta")), "tools-2024");
    ck_assert_str_eq(json_string_value(json_object_get(hs, "x-api-key")), "sk-ant-b");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "body"), "model")),
                     "claude-x");
    json_decref(e);
    json_decref(j);
    mg_test_resp_free(&r);
    mg_test_resp_free(&direct);
    /* without echo the bytes are the provider's */
    post("/v1/messages", body, (const char *[]){"x-fake-cache: 1,2", NULL}, &r);
    mg_test_http("POST", url, body, strlen(body), (const char *[]){"anthropic-version: 2023-06-01",
                 "x-api-key: k", "x-fake-cache: 1,2", NULL}, &direct);
    ck_assert_uint_eq(r.body.len, direct.body.len);
    ck_assert(memcmp(r.body.data, direct.body.data, r.body.len) == 0);
    ck_assert_str_eq(mg_test_hdr(&r, "content-length"), mg_test_hdr(&direct, "content-length"));
    mg_test_resp_free(&r);
    mg_test_resp_free(&direct);
    j = access_line("prov-native");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 13);
    json_decref(j);
}
END_TEST

START_TEST(native_messages_stream_and_count_tokens)
{
    const char *h[] = {"x-request-id: prov-native-stream", "x-fake-cache: 5,0", NULL};
    struct mg_test_resp r;
    json_t *j;

    post("/v1/messages", "{\"model\":\"claude-x\",\"max_tokens\":5,\"stream\":true,\"messages\":"
         "[]}", h, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "event: message_start\n"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "event: ping\n"));   /* native: nothing dropped */
    ck_assert_ptr_nonnull(strstr(r.body.data, "event: message_stop\n"));
    ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
    mg_test_resp_free(&r);
    j = access_line("prov-native-stream");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "input_tokens")), 15);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "output_tokens")), 20);
    json_decref(j);
    post("/v1/messages/count_tokens", "{\"model\":\"claude-x\",\"messages\":[]}",
         (const char *[]){"x-request-id: prov-count", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body.data, "{\"input_tokens\":42}");
    mg_test_resp_free(&r);
    j = access_line("prov-count");
    ck_assert(json_integer_value(json_object_get(j, "input_tokens")) <= 0);
    json_decref(j);
    /* late error and cut: Anthropic's error event */
    post("/v1/messages", "{\"model\":\"claude-x\",\"max_tokens\":5,\"stream\":true,\"messages\":"
         "[]}", (const char *[]){"x-fake-cut: 1", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "event: error\ndata: {\"type\":\"error\",\"error\":"
                                 "{\"type\":\"api_error\""));
    mg_test_resp_free(&r);
}
END_TEST

/* Every error the gateway makes on /v1/messages* is Anthropic-shaped. */
START_TEST(native_gateway_errors)
{
    struct mg_test_resp r;

    post("/v1/messages", "{\"model\":\"nope\",\"max_tokens\":5,\"messages\":[]}", NULL, &r);
    assert_anthropic_error(&r, 404, "not_found_error");
    mg_test_resp_free(&r);
    post("/v1/messages", "{not json", NULL, &r);
    assert_anthropic_error(&r, 400, "invalid_request_error");
    mg_test_resp_free(&r);
    post("/v1/messages/count_tokens", "{\"max_tokens\":5}", NULL, &r);
    assert_anthropic_error(&r, 400, "invalid_request_error");
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/v1/messages"), NULL, 0, NULL, &r);
    assert_anthropic_error(&r, 405, "invalid_request_error");
    mg_test_resp_free(&r);
    /* and elsewhere they stay OpenAI's */
    post("/v1/chat/completions", "{\"model\":\"nope\"}", NULL, &r);
    assert_openai_error(&r, 404, "invalid_request_error", "model_not_found");
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(metrics_count_translated_tokens)
{
    struct mg_test_resp r;
    double before, after;

    mg_test_http("GET", gw("/metrics"), NULL, 0, NULL, &r);
    before = mg_test_metric(r.body.data, "modelgate_tokens_total{model=\"claude-x\","
                            "backend=\"claude\",type=\"output\"}");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"claude-x\",\"stream\":true,\"messages\":[]}",
         (const char *[]){"x-fake-usage: 1,1000", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    mg_test_http("GET", gw("/metrics"), NULL, 0, NULL, &r);
    after = mg_test_metric(r.body.data, "modelgate_tokens_total{model=\"claude-x\","
                           "backend=\"claude\",type=\"output\"}");
    mg_test_resp_free(&r);
    ck_assert_msg(after - (before < 0 ? 0 : before) >= 1000, "before %f after %f", before, after);
}
END_TEST

/* modelgate_tokens_total of model, backend and type; every token sample is checked sane. */
static double
tokens_metric(const char *model, const char *backend, const char *type)
{
    struct mg_test_resp r;
    char series[256];
    const char *p;
    double v;

    mg_test_http("GET", gw("/metrics"), NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    for (p = r.body.data; (p = strstr(p, "\nmodelgate_tokens_total{")) != NULL; p++) {
        const char *sp = strchr(p, ' ');
        ck_assert_msg(sp != NULL && strtod(sp + 1, NULL) <= 9007199254740991.0,
                      "a token total past 2^53 - 1: %.120s", p + 1);
    }
    snprintf(series, sizeof(series), "modelgate_tokens_total{model=\"%s\",backend=\"%s\","
             "type=\"%s\"}", model, backend, type);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v < 0 ? 0 : v;
}

/*
 * A backend that reports usage near 2^63 (each count, and Anthropic's cache counts too): such a
 * number counts as absent (SPEC), so nothing sums it. Before, the sums overflowed (the UBSan
 * build aborted, taking the gateway down) and /metrics showed totals of ~9.2e18 or ~9.2e17.
 * For JSON answers and streams, OpenAI passed through and Anthropic and Bedrock translated: each
 * answer arrives, the token totals move by at most an estimate, and the gateway serves on.
 */
START_TEST(absurd_usage_counts_as_absent)
{
    static const char *const pairs[][2] = {{"claude-x", "claude"}, {"br-x", "br"},
                                           {"oa-x", "oa"}};
    const char *h[] = {"x-fake-usage: 9223372036854775000,9223372036854775000",
                       "x-fake-cache: 9223372036854775000,9223372036854775000", NULL};
    char body[256];
    struct mg_test_resp r;
    double in0, out0, in1, out1;
    size_t i;
    int stream;

    for (i = 0; i < MG_ARRAY_LEN(pairs); i++) {
        for (stream = 0; stream <= 1; stream++) {
            snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":%s,\"messages\":"
                     "[{\"role\":\"user\",\"content\":\"hi\"}]}", pairs[i][0],
                     stream ? "true" : "false");
            in0 = tokens_metric(pairs[i][0], pairs[i][1], "input");
            out0 = tokens_metric(pairs[i][0], pairs[i][1], "output");
            post("/v1/chat/completions", body, h, &r);
            ck_assert_msg(r.status == 200, "%s stream=%d: %ld (%d) %s", pairs[i][0], stream,
                          r.status, r.curl_rc, r.body.data);
            if (stream) {
                ck_assert_ptr_nonnull(strstr(r.body.data, "data: [DONE]"));
            } else {
                json_t *j = mg_test_body_json(&r), *u = json_object_get(j, "usage");
                /* passed through as the backend sent it, or written by the gateway: sane */
                ck_assert(i == 2 || json_integer_value(json_object_get(u, "total_tokens")) <
                                    9007199254740992LL);
                json_decref(j);
            }
            mg_test_resp_free(&r);
            /* the gateway is still there, and counts the next answer as it should */
            post("/v1/chat/completions", body, NULL, &r);
            ck_assert_msg(r.status == 200, "%s after: %ld (%d)", pairs[i][0], r.status,
                          r.curl_rc);
            mg_test_resp_free(&r);
            in1 = tokens_metric(pairs[i][0], pairs[i][1], "input");
            out1 = tokens_metric(pairs[i][0], pairs[i][1], "output");
            /* the absurd answer adds at most an estimate (bytes / 4), the next one its usage */
            ck_assert_msg(in1 - in0 >= 10 && in1 - in0 < 1000 && out1 - out0 >= 20 &&
                          out1 - out0 < 1000, "%s stream=%d: input +%.0f, output +%.0f",
                          pairs[i][0], stream, in1 - in0, out1 - out0);
        }
    }
}
END_TEST

/* ---- Bedrock over HTTP: fakeai checks every signature -------------------------------- */

START_TEST(bedrock_signed_requests)
{
    const char *h[] = {"x-fake-echo: 1", "x-fake-cache: 2,1", NULL};
    struct mg_test_resp r;
    json_t *e, *hs, *j, *u;

    post("/v1/chat/completions", "{\"model\":\"br-x\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"hi\"}],\"max_tokens\":77}", h, &r);
    ck_assert_msg(r.status == 200, "%ld: %s", r.status, r.body.data);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "br");
    e = echoed(&r);
    ck_assert_str_eq(json_string_value(json_object_get(e, "uri")),
                     "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    hs = json_object_get(e, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(hs, "x-amz-security-token")), "tok-1");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(hs, "authorization")),
                                 "/eu-west-1/bedrock/aws4_request"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_object_get(e,
                     "body"), "inferenceConfig"), "maxTokens")), 77);
    json_decref(e);
    j = mg_test_body_json(&r);
    u = json_object_get(j, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 13);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(u,
                     "prompt_tokens_details"), "cached_tokens")), 2);
    json_decref(j);
    mg_test_resp_free(&r);
    /* a wrong secret makes a wrong signature, and fakeai says so as AWS would */
    post("/v1/chat/completions", "{\"model\":\"br-bad\",\"messages\":[]}", NULL, &r);
    assert_openai_error(&r, 403, "InvalidSignatureException", NULL);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(bedrock_stream_translated)
{
    static const char body[] = "{\"model\":\"br-x\",\"stream\":true,\"stream_options\":"
        "{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]}";
    struct mg_test_resp r, r2;
    json_t *ev, *d;
    size_t i, n;
    char text[64] = "", args[64] = "";

    post("/v1/chat/completions", body, (const char *[]){"x-request-id: prov-br-stream", NULL},
         &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "content-type"), "text/event-stream");
    ev = stream_events(&r);
    n = json_array_size(ev);
    ck_assert_str_eq(json_string_value(json_array_get(ev, n - 1)), "[DONE]");
    for (i = 0; i + 2 < n; i++) {
        d = json_object_get(json_array_get(json_object_get(json_array_get(ev, i), "choices"), 0),
                            "delta");
        if (json_is_string(json_object_get(d, "content"))) {
            strncat(text, json_string_value(json_object_get(d, "content")),
                    sizeof(text) - strlen(text) - 1);
        }
        if (json_object_get(d, "tool_calls") != NULL) {
            json_t *t = json_array_get(json_object_get(d, "tool_calls"), 0);
            strncat(args, json_string_value(json_object_get(json_object_get(t, "function"),
                                                            "arguments")),
                    sizeof(args) - strlen(args) - 1);
        }
    }
    ck_assert_str_eq(text, "tok0 tok1 tok2 ");
    ck_assert_str_eq(args, "{\"location\": \"Paris\"}");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_array_get(ev,
                     n - 2), "usage"), "completion_tokens")), 20);
    json_decref(ev);
    /* frames split across reads: the same stream */
    post("/v1/chat/completions", body, (const char *[]){"x-fake-split: 1",
         "x-request-id: prov-br-strea2", NULL}, &r2);   /* the id is in every chunk */
    ck_assert_uint_eq(r2.body.len, r.body.len);
    mg_test_resp_free(&r2);
    mg_test_resp_free(&r);
    ev = access_line("prov-br-stream");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "output_tokens")), 20);
    json_decref(ev);
}
END_TEST

START_TEST(bedrock_failures)
{
    static const char *const after[][2] = {
        {"x-fake-stream-error: late", "The model stream failed"},
        {"x-fake-bad-crc: 1", "CRC"},
        {"x-fake-cut: 1", "connection closed"},
    };
    struct mg_test_resp r;
    size_t i;

    /* an exception frame before any output, and a 429: fail over to openai */
    post("/v1/chat/completions", "{\"model\":\"br-mixed\",\"stream\":true,\"messages\":[]}",
         (const char *[]){"x-fake-stream-error: early", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oa");
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"br-mixed\",\"messages\":[]}",
         (const char *[]){"x-fake-status: 429", "x-fake-status-for: p1", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-modelgate-backend"), "oa");
    mg_test_resp_free(&r);
    /* Bedrock's errors in OpenAI's shape */
    post("/v1/chat/completions", "{\"model\":\"br-x\",\"messages\":[]}",
         (const char *[]){"x-fake-status: 400", NULL}, &r);
    assert_openai_error(&r, 400, "ValidationException", NULL);
    mg_test_resp_free(&r);
    post("/v1/chat/completions", "{\"model\":\"br-x\",\"messages\":[]}",
         (const char *[]){"x-fake-status: 503", NULL}, &r);
    assert_openai_error(&r, 503, "ServiceUnavailableException", NULL);
    mg_test_resp_free(&r);
    /* after output: one upstream_stream_error event, no [DONE] */
    for (i = 0; i < MG_ARRAY_LEN(after); i++) {
        json_t *ev, *e;
        post("/v1/chat/completions", "{\"model\":\"br-x\",\"stream\":true,\"messages\":[]}",
             (const char *[]){after[i][0], NULL}, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_ptr_null(strstr(r.body.data, "[DONE]"));
        ck_assert_ptr_nonnull(strstr(r.body.data, "tok2"));
        ev = stream_events(&r);
        e = json_object_get(json_array_get(ev, json_array_size(ev) - 1), "error");
        ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "upstream_stream_error");
        ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")), after[i][1]),
                      "%s: %s", after[i][0], json_string_value(json_object_get(e, "message")));
        json_decref(ev);
        mg_test_resp_free(&r);
    }
    /* what Bedrock cannot take: an https image */
    post("/v1/chat/completions", "{\"model\":\"br-x\",\"messages\":[{\"role\":\"user\",\"content\":"
         "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}", NULL, &r);
    assert_openai_error(&r, 400, "invalid_request_error", "unsupported_parameter");
    mg_test_resp_free(&r);
}
END_TEST

/* ---- the official OpenAI Node SDK parses what the gateway translates -------------------- */

START_TEST(node_sdk_parses_translated_answers)
{
    char cmd[512];
    int rc;

    if (system("command -v node >/dev/null 2>&1") != 0 ||
        access("test/node/node_modules/openai/package.json", F_OK) != 0) {
        mg_test_skip("providers: node_sdk_parses_translated_answers: node or the openai module "
                     "is missing (make node-sdk installs it)");
        return;
    }
    snprintf(cmd, sizeof(cmd), "node test/node/sdk_check.mjs http://127.0.0.1:%d/v1 claude-x "
             "toolu_fake1 >mgtest-prov-node.log 2>&1", gwh.gw_port);
    rc = system(cmd);
    ck_assert_msg(rc == 0, "the OpenAI Node SDK failed on anthropic (see "
                  "mgtest-prov-node.log)");
    snprintf(cmd, sizeof(cmd), "node test/node/sdk_check.mjs http://127.0.0.1:%d/v1 br-x "
             "tooluse_fake1 >mgtest-prov-node.log 2>&1", gwh.gw_port);
    rc = system(cmd);
    ck_assert_msg(rc == 0, "the OpenAI Node SDK failed on bedrock (see "
                  "mgtest-prov-node.log)");
}
END_TEST

/*
 * A multipart/form-data body (an audio transcription) is routed by its model part and passed
 * through byte for byte to a schema that serves the path, but for the entry's model override;
 * a body that does not name its model exactly once is 400 invalid_multipart.
 */
START_TEST(multipart_passes_through)
{
    static const char file[] = "RIFF\x01\x00\r\n--notit\r\n\xff\xfe binary \x00 bytes";
    const char *h[] = {"x-fake-echo: 1", "Content-Type: multipart/form-data; boundary=XyZ", NULL};
    struct mg_buf body, want;
    struct mg_test_resp r;
    json_t *j;
    size_t i;

    mg_buf_init(&body, 4096);
    mg_buf_init(&want, 8192);
    mg_buf_adds(&body, "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\""
                       "\r\nContent-Type: audio/wav\r\n\r\n");
    mg_buf_add(&body, file, sizeof(file) - 1);
    mg_buf_adds(&body, "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
                       "whisper-x\r\n--XyZ--\r\n");
    mg_test_http("POST", gw("/v1/audio/transcriptions"), body.data, body.len, h, &r);
    ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body.data);
    j = mg_test_body_json(&r);
    /* what the backend got, in hex: the same bytes, whisper-1 in place of whisper-x */
    for (i = 0; i < body.len; i++) {
        const char *c = body.data + i;
        if (i + 9 <= body.len && memcmp(c, "whisper-x", 9) == 0) {
            mg_buf_adds(&want, "776869737065722d31");   /* "whisper-1" */
            i += 8;
            continue;
        }
        mg_buf_printf(&want, "%02x", (unsigned char)*c);
    }
    ck_assert_str_eq(json_string_value(json_object_get(j, "body_hex")), want.data);
    ck_assert_str_eq(json_string_value(json_object_get(j, "uri")), "/v1/audio/transcriptions");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(j, "headers"),
                                                                   "content-type")),
                                 "boundary=XyZ"));
    json_decref(j);
    mg_test_resp_free(&r);
    /* "Model" is not "model": nothing is guessed */
    mg_buf_reset(&body);
    mg_buf_adds(&body, "--XyZ\r\nContent-Disposition: form-data; name=\"Model\"\r\n\r\n"
                       "whisper-x\r\n--XyZ--\r\n");
    mg_test_http("POST", gw("/v1/audio/transcriptions"), body.data, body.len, h, &r);
    assert_openai_error(&r, 400, "invalid_request_error", "invalid_multipart");
    mg_test_resp_free(&r);
    mg_buf_deinit(&body);
    mg_buf_deinit(&want);
}
END_TEST

/*
 * The official SDKs of the other client APIs, as their users call them, on every schema: the
 * OpenAI SDK's Responses (create, stream, a function-tool round trip with previous_response_id,
 * and GET/DELETE of what the gateway translated) and the Anthropic SDK's Messages (create,
 * stream, a tool round trip, count_tokens, models.list()), natively or through chat.
 */
START_TEST(node_sdks_on_every_schema)
{
    static const struct {
        const char *script, *model, *mode, *what;
    } runs[] = {
        {"sdk_responses.mjs", "claude-x", "", "Responses on anthropic"},
        {"sdk_responses.mjs", "br-x", "", "Responses on bedrock"},
        {"sdk_responses.mjs", "oat-x", "", "Responses on openai (responses: translate)"},
        {"sdk_responses.mjs", "oa-x", "native", "Responses on openai"},
        {"sdk_responses.mjs", "az-x", "native", "Responses on azure"},
        {"sdk_messages.mjs", "claude-x", "", "Messages on anthropic"},
        {"sdk_messages.mjs", "br-x", "translated", "Messages on bedrock"},
        {"sdk_messages.mjs", "oa-x", "translated", "Messages on openai"},
        {"sdk_messages.mjs", "az-x", "translated", "Messages on azure"},
    };
    char cmd[512];
    size_t i;

    if (system("command -v node >/dev/null 2>&1") != 0 ||
        access("test/node/node_modules/openai/package.json", F_OK) != 0 ||
        access("test/node/node_modules/@anthropic-ai/sdk/package.json", F_OK) != 0) {
        mg_test_skip("providers: node_sdks_on_every_schema: node or the SDK modules are missing "
                     "(make node-sdk installs them)");
        return;
    }
    for (i = 0; i < MG_ARRAY_LEN(runs); i++) {
        snprintf(cmd, sizeof(cmd), "node test/node/%s http://127.0.0.1:%d%s %s %s "
                 ">mgtest-prov-sdk-%zu.log 2>&1", runs[i].script, gwh.gw_port,
                 strstr(runs[i].script, "responses") ? "/v1" : "", runs[i].model, runs[i].mode, i);
        ck_assert_msg(system(cmd) == 0, "%s: the SDK failed (see mgtest-prov-sdk-%zu.log)",
                      runs[i].what, i);
    }
}
END_TEST

Suite *
providers_suite(void)
{
    Suite *s = suite_create("providers");
    TCase *t = tcase_create("unit");

    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, anthropic_relay_golden_streams);
    tcase_add_test(t, anthropic_relay_plain_answer);
    tcase_add_test(t, anthropic_relay_unreadable_answer);
    tcase_add_test(t, anthropic_relay_native_usage);
    tcase_add_test(t, bedrock_relay_golden_streams);
    tcase_add_test(t, bedrock_builds_signed_request);
    tcase_add_test(t, azure_builds_deployment_url);
    tcase_add_test(t, azure_query_rewrite);
    tcase_add_test(t, anthropic_builds_messages_request);
    tcase_add_test(t, anthropic_version_in_backend_headers_is_sent_once);
    tcase_add_test(t, schema_config_errors);
    tcase_add_test(t, schema_config_defaults);
    suite_add_tcase(s, t);

    t = tcase_create("http");
    tcase_add_unchecked_fixture(t, start_all, stop_all);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, azure_request_over_http);
    tcase_add_test(t, azure_query_has_one_api_version);
    tcase_add_test(t, anthropic_plain_answer);
    tcase_add_test(t, anthropic_request_translated);
    tcase_add_test(t, anthropic_tool_calls);
    tcase_add_test(t, anthropic_stream_translated);
    tcase_add_test(t, anthropic_stream_usage_chunk);
    tcase_add_test(t, anthropic_stream_error_early_fails_over);
    tcase_add_test(t, anthropic_empty_stream_fails_over);
    tcase_add_test(t, anthropic_ping_dropped_whatever_its_data);
    tcase_add_test(t, anthropic_stream_failures_after_commit);
    tcase_add_test(t, anthropic_529_and_errors);
    tcase_add_test(t, unsupported_parameters_and_paths);
    tcase_add_test(t, fallback_across_schemas);
    tcase_add_test(t, native_messages_passthrough);
    tcase_add_test(t, native_messages_stream_and_count_tokens);
    tcase_add_test(t, native_gateway_errors);
    tcase_add_test(t, metrics_count_translated_tokens);
    tcase_add_test(t, absurd_usage_counts_as_absent);
    tcase_add_test(t, bedrock_signed_requests);
    tcase_add_test(t, bedrock_stream_translated);
    tcase_add_test(t, bedrock_failures);
    tcase_add_test(t, node_sdk_parses_translated_answers);
    tcase_add_test(t, node_sdks_on_every_schema);
    tcase_add_test(t, multipart_passes_through);
    suite_add_tcase(s, t);
    return s;
}
