/*
 * mg_api — the route table of client APIs, and what the OpenAI-shaped ones share.
 */
#include <stdio.h>
#include <string.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_util.h"

/*
 * Path -> API, first match wins. A prefix row (ending in '/') takes every path below it. A path
 * no row takes speaks OpenAI's other APIs (embeddings, audio, images, ...).
 */
static const struct {
    const char          *path;
    const struct mg_api *api;
} routes[] = {
    {"/v1/chat/completions", &mg_api_chat},
    {"/v1/completions", &mg_api_completions},
    {"/v1/messages", &mg_api_messages},
    {"/v1/messages/count_tokens", &mg_api_count_tokens},
    {"/v1/messages/", &mg_api_messages_other},
    {"/v1/responses", &mg_api_responses},
};

const struct mg_api *
mg_api_route(const char *path)
{
    size_t i, n;

    if (path == NULL) {
        return &mg_api_openai;
    }
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        n = strlen(routes[i].path);
        if (routes[i].path[n - 1] == '/' ? strncmp(path, routes[i].path, n) == 0
                                         : strcmp(path, routes[i].path) == 0) {
            return routes[i].api;
        }
    }
    return &mg_api_openai;
}

int
mg_api_mode(const struct mg_api *api, const struct mg_backend *b)
{
    int schema = b->schema;

    if ((b->api_native & api->bit) != 0) {
        return MG_API_NATIVE;
    }
    if ((b->api_hub & api->bit) == 0 && schema >= 0 && schema < 32
        && (api->schemas & MG_API_SCHEMA(schema)) != 0) {
        return MG_API_NATIVE;
    }
    return api->hub != NULL ? MG_API_HUB : 0;
}

/* ---- OpenAI's shapes ------------------------------------------------------------------------ */

static const char *
error_type(int status, const char *code)
{
    if (strcmp(code, "insufficient_quota") == 0) {   /* OpenAI's type for a spent quota */
        return code;
    }
    if (status == 401) {
        return "authentication_error";
    }
    if (status == 429) {
        return "rate_limit_error";
    }
    return status >= 500 ? "server_error" : "invalid_request_error";
}

void
mg_api_openai_error_body(struct mg_buf *out, int status, const char *code, const char *param,
                         const char *msg)
{
    mg_buf_adds(out, "{\"error\":{\"message\":");
    mg_json_quote(out, msg, strlen(msg));
    mg_buf_printf(out, ",\"type\":\"%s\",\"param\":", error_type(status, code));
    if (param != NULL) {
        mg_json_quote(out, param, strlen(param));
    } else {
        mg_buf_adds(out, "null");
    }
    mg_buf_adds(out, ",\"code\":");
    mg_json_quote(out, code, strlen(code));
    mg_buf_adds(out, "}}\n");
}

void
mg_api_openai_error_event(struct mg_buf *out, const char *why)
{
    mg_buf_adds(out, "data: {\"error\":{\"message\":");
    mg_json_quote(out, why, strlen(why));
    mg_buf_adds(out, ",\"type\":\"upstream_error\",\"param\":null,"
                     "\"code\":\"upstream_stream_error\"}}\n\n");
}

int
mg_api_error_first(const char *d, size_t n)
{
    const char *end = d + n;

    while (d < end && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n')) {
        d++;
    }
    if (d >= end || *d++ != '{') {
        return 0;
    }
    while (d < end && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n')) {
        d++;
    }
    return end - d >= 7 && memcmp(d, "\"error\"", 7) == 0;
}

const char *
mg_api_stream_end_any(int finished, int done, const char **tail)
{
    *tail = NULL;
    return NULL;
}

/* ---- the hubs' stage ---- */

void
mg_api_hubstage_init(struct mg_api_hubstage *h, size_t cap)
{
    memset(&h->stage, 0, sizeof(h->stage));
    mg_buf_init(&h->out, cap);
    mg_buf_init(&h->body, cap);
}

void
mg_api_hubstage_deinit(struct mg_api_hubstage *h)
{
    mg_buf_deinit(&h->out);
    mg_buf_deinit(&h->body);
}

static void
answer_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct mg_api_hubstage *h = (struct mg_api_hubstage *)s;

    if (s->relay->chat_answer != NULL) {
        return;   /* the schema kept the answer as a structure: its text is not read again */
    }
    if (!s->relay->failed && mg_buf_add(&h->body, p, n) != MG_OK) {
        mg_relay_fail(s->relay, "the backend's answer is too large to translate", 46);
    }
}

void
mg_api_hubstage_add(struct mg_api_hubstage *h, struct mg_relay *r,
                    void (*stream_write)(struct mg_stage *s, const char *p, size_t n, int whole),
                    void (*stream_end)(struct mg_stage *s), void (*answer_end)(struct mg_stage *s),
                    void (*fail)(struct mg_stage *s, const char *why))
{
    memset(&h->stage, 0, sizeof(h->stage));
    mg_buf_reset(&h->out);
    mg_buf_reset(&h->body);
    h->stage.write = r->sse ? stream_write : answer_write;
    h->stage.end = r->sse ? stream_end : answer_end;
    r->content_type = r->sse ? "text/event-stream" : "application/json";
    mg_relay_add_client(r, &h->stage, fail);
}

int
mg_api_hubstage_whole(struct mg_stage *s, int whole)
{
    if (s->relay->cut || s->relay->failed) {
        return 0;
    }
    if (!whole) {
        mg_relay_fail(s->relay, "the backend sent an event too large to translate", 48);
        return 0;
    }
    return 1;
}

void
mg_api_hubstage_pass(struct mg_api_hubstage *h)
{
    if (h->out.len > 0) {
        h->stage.next->write(h->stage.next, h->out.data, h->out.len, 1);
    }
}

void
mg_api_hubstage_broken(struct mg_api_hubstage *h, const char *why)
{
    if (why == NULL || why[0] == '\0') {
        why = "the backend sent an event that cannot be translated";
    }
    mg_relay_fail(h->stage.relay, why, strlen(why));
}

void
mg_api_hubstage_answer(struct mg_api_hubstage *h, int rc, const char *not_what)
{
    struct mg_relay *r = h->stage.relay;
    char why[128];

    if (!r->failed) {
        if (rc != MG_OK) {
            snprintf(why, sizeof(why), "the backend's answer cannot be made into %s", not_what);
            mg_relay_fail(r, why, strlen(why));
        } else {
            mg_relay_commit(r);
            mg_api_hubstage_pass(h);
        }
    }
    h->stage.next->end(h->stage.next);
}
