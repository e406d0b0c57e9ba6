/*
 * mg_api — the route table of client APIs, and what the OpenAI-shaped ones share.
 */
#include <string.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_util.h"

/*
 * Path -> API, first match wins. A prefix row (ending in '/') takes every path below it. A path
 * no row takes speaks OpenAI's other APIs (embeddings, audio, images, responses, ...).
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
error_type(int status)
{
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
    mg_buf_printf(out, ",\"type\":\"%s\",\"param\":", error_type(status));
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
