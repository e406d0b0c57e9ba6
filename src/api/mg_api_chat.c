/*
 * mg_api_chat — OpenAI's chat completions (and the legacy completions, which follow the same
 * stream rules): a stream commits with its first chunk that carries output, ends with
 * data: [DONE] (added after a finish when the backend sent none), and an error chunk before the
 * commit fails over.
 */
#include <string.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_util.h"

/* A chat chunk's output and finish bits, read exactly (only events before the commit). */
static int
chunk_kind(const char *d, size_t n)
{
    int k = mg_json_chunk_kind(d, n);

    return ((k & MG_JSON_CHUNK_OUTPUT) ? MG_EV_OUTPUT : 0) |
           ((k & MG_JSON_CHUNK_FINISH) ? MG_EV_FINISH : 0);
}

/* After the commit only the finish matters: a "finish_reason" whose value is not null. */
static int
has_finish(const char *d, size_t n)
{
    const char *end = d + n, *s = d;

    while ((s = mg_find(s, (size_t)(end - s), "\"finish_reason\"", 15)) != NULL) {
        s += 15;
        while (s < end && (*s == ' ' || *s == ':' || *s == '\t')) {
            s++;
        }
        if (s < end && *s != 'n') {
            return 1;
        }
    }
    return 0;
}

static int
chat_event_kind(int committed, const struct mg_api_event *ev)
{
    if (ev->data == NULL) {
        return 0;
    }
    if (mg_api_error_first(ev->data, ev->dlen)) {
        return MG_EV_ERROR;
    }
    return committed ? (has_finish(ev->data, ev->dlen) ? MG_EV_FINISH : 0)
                     : chunk_kind(ev->data, ev->dlen);
}

static const char *
chat_stream_end(int finished, int done, const char **tail)
{
    *tail = NULL;
    if (done) {
        return NULL;
    }
    if (!finished) {
        return "the backend ended the stream before it finished";
    }
    *tail = "data: [DONE]\n\n";
    return NULL;
}

const struct mg_api mg_api_chat = {
    .name = "chat",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_AZURE) |
               MG_API_SCHEMA(MG_SCHEMA_ANTHROPIC) | MG_API_SCHEMA(MG_SCHEMA_BEDROCK) |
               MG_API_SCHEMA(MG_SCHEMA_VERTEX) | MG_API_SCHEMA(MG_SCHEMA_VERTEX_ANTHROPIC),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = mg_api_openai_error_body,
    .event_kind = chat_event_kind,
    .stream_end = chat_stream_end,
    .error_event = mg_api_openai_error_event,
};

/* The translating schemas take chat requests only: completions is served as it is. */
const struct mg_api mg_api_completions = {
    .name = "completions",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_AZURE),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = mg_api_openai_error_body,
    .event_kind = chat_event_kind,
    .stream_end = chat_stream_end,
    .error_event = mg_api_openai_error_event,
};
