/*
 * mg_api_openai — OpenAI's other paths (embeddings, audio, images, moderations, responses, ...):
 * passed through by the schemas that speak OpenAI's API. A stream commits with its first event
 * and is whole at any clean end; an error chunk ({"error":...}) before it fails over.
 */
#include "mg_api.h"
#include "mg_conf_types.h"

int
mg_api_event_kind_any(int committed, const struct mg_api_event *ev)
{
    if (ev->data == NULL) {
        return 0;
    }
    return mg_api_error_first(ev->data, ev->dlen) ? MG_EV_ERROR : MG_EV_OUTPUT;
}

const struct mg_api mg_api_openai = {
    .name = "other",
    .schemas = MG_API_SCHEMA(MG_SCHEMA_OPENAI) | MG_API_SCHEMA(MG_SCHEMA_AZURE),
    .usage = MG_API_USAGE_OBJECT,
    .error_body = mg_api_openai_error_body,
    .event_kind = mg_api_event_kind_any,
    .stream_end = mg_api_stream_end_any,
    .error_event = mg_api_openai_error_event,
};
