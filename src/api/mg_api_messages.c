/*
 * mg_api_messages — Anthropic's Messages API (/v1/messages and below: Claude Code, Anthropic
 * SDKs). The gateway's own errors take Anthropic's shape on every path below /v1/messages. On
 * /v1/messages a stream commits with its first content_block_delta, message_delta or
 * message_stop, must end with message_stop, and a broken one ends with Anthropic's error event;
 * the other paths below it (count_tokens, batches) follow OpenAI's other paths' stream rules.
 */
#include <string.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_util.h"

/* Anthropic's error type for a status. */
static const char *
error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static void
messages_error_body(struct mg_buf *out, int status, const char *code, const char *param,
                    const char *msg)
{
    mg_buf_printf(out, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":",
                  error_type(status));
    mg_json_quote(out, msg, strlen(msg));
    mg_buf_adds(out, "}}\n");
}

static void
messages_error_event(struct mg_buf *out, const char *why)
{
    mg_buf_adds(out, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                     "\"message\":");
    mg_json_quote(out, why, strlen(why));
    mg_buf_adds(out, "}}\n\n");
}

static int
name_is(const struct mg_api_event *ev, const char *lit)
{
    return ev->name != NULL && ev->nlen == strlen(lit) && memcmp(ev->name, lit, ev->nlen) == 0;
}

static int
messages_event_kind(int committed, const struct mg_api_event *ev)
{
    if (name_is(ev, "message_stop")) {
        return MG_EV_OUTPUT | MG_EV_FINISH;
    }
    if (name_is(ev, "content_block_delta") || name_is(ev, "message_delta")) {
        return MG_EV_OUTPUT;
    }
    return 0;
}

static const char *
messages_stream_end(int finished, int done, const char **tail)
{
    *tail = NULL;
    return finished ? NULL : "the backend ended the stream before message_stop";
}

const struct mg_api mg_api_messages = {
    .name = "messages",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_ANTHROPIC),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = messages_error_body,
    .event_kind = messages_event_kind,
    .stream_end = messages_stream_end,
    .error_event = messages_error_event,
};

/* count_tokens answers are not usage (nothing is estimated for them either). */
const struct mg_api mg_api_count_tokens = {
    .name = "count_tokens",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_ANTHROPIC),
    .usage = MG_API_USAGE_NONE,
    .error_body = messages_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
};

/* Batches and the rest: only a backend that passes every path through serves them. */
const struct mg_api mg_api_messages_other = {
    .name = "other",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = messages_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
};
