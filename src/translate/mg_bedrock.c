/*
 * mg_bedrock — OpenAI chat completions <-> Bedrock Converse (SPEC "Backend schemas").
 *
 * Converse's JSON protocol sends blobs (image bytes) as base64 text, so a data: URL's base64
 * goes through untouched. Bedrock has no URL image source: an https image is
 * unsupported_parameter (another backend of the rule may take it). Converse answers carry no id:
 * the caller gives one.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "mg_jload.h"
#include "mg_bedrock.h"
#include "mg_xanswer.h"

/* ---- request ---- */

static json_t *
text_block(const char *s, size_t n)
{
    return json_pack("{s:s%}", "text", s, n);
}

static json_t *
image_block(const struct mg_chatreq_image *img, struct mg_chatreq_err *e, int *rc)
{
    static const char *const formats[][2] = {
        {"image/png", "png"}, {"image/jpeg", "jpeg"}, {"image/jpg", "jpeg"},
        {"image/gif", "gif"}, {"image/webp", "webp"},
    };
    size_t i;

    if (!img->is_data) {
        *rc = mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, img->where, "%s: image URLs are not "
                              "supported by this backend (send a base64 data: URL)", img->where);
        return NULL;
    }
    for (i = 0; i < MG_ARRAY_LEN(formats); i++) {
        if (img->media_len == strlen(formats[i][0])
            && strncasecmp(img->media_type, formats[i][0], img->media_len) == 0) {
            return json_pack("{s:{s:s,s:{s:s%}}}", "image", "format", formats[i][1],
                             "source", "bytes", img->data, img->data_len);
        }
    }
    *rc = mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, img->where, "%s: image type '%.*s' is "
                          "not supported by this backend (png, jpeg, gif, webp)", img->where,
                          (int)(img->media_len > 64 ? 64 : img->media_len), img->media_type);
    return NULL;
}

static json_t *
tool_use_block(json_t *id, json_t *name, json_t *input)
{
    return json_pack("{s:{s:O,s:O,s:O}}", "toolUse", "toolUseId", id, "name", name,
                     "input", input);
}

static json_t *
tool_result_block(json_t *id, json_t *text)
{
    json_t *content = json_string_length(text) > 0 ? json_pack("[{s:O}]", "text", text)
                                                    : json_array();

    return json_pack("{s:{s:O,s:o}}", "toolResult", "toolUseId", id, "content", content);
}

static const struct mg_chatreq_ops ops = {
    text_block, image_block, tool_use_block, tool_result_block,
};

static json_t *
tool_config(const struct mg_chatreq *r)
{
    json_t *tools = json_array(), *choice = NULL;
    size_t i;

    for (i = 0; i < r->ntools; i++) {
        const struct mg_chatreq_tool *t = &r->tools[i];
        json_t *schema = t->parameters ? json_incref(t->parameters)
                         : json_pack("{s:s,s:{}}", "type", "object", "properties");

        json_array_append_new(tools, json_pack("{s:{s:O,s:O*,s:{s:o}}}", "toolSpec",
                                               "name", t->name, "description", t->description,
                                               "inputSchema", "json", schema));
    }
    switch (r->tool_choice) {
    case MG_CHATREQ_CHOICE_AUTO: choice = json_pack("{s:{}}", "auto"); break;
    case MG_CHATREQ_CHOICE_REQUIRED: choice = json_pack("{s:{}}", "any"); break;
    case MG_CHATREQ_CHOICE_TOOL: choice = json_pack("{s:{s:O}}", "tool", "name", r->tool_name);
        break;
    default: break;   /* unset, and "none": Converse has no "none"; the tools stay */
    }
    return json_pack("{s:o,s:o*}", "tools", tools, "toolChoice", choice);
}

/*
 * outputConfig for a json_schema: Converse takes the schema as JSON text, with the name and
 * description beside it (strict has no Converse field: dropped).
 */
static int
output_config(json_t *js, json_t *m, size_t cap)
{
    json_t *name = json_object_get(js, "name"), *desc = json_object_get(js, "description");
    struct mg_buf text;
    json_t *def;
    int rc;

    mg_buf_init(&text, cap);
    rc = mg_chatreq_dump(json_object_get(js, "schema"), &text);
    if (rc == MG_OK) {
        def = json_pack("{s:s%}", "schema", text.data, text.len);
        if (json_is_string(name)) {
            json_object_set(def, "name", name);
        }
        if (json_is_string(desc)) {
            json_object_set(def, "description", desc);
        }
        json_object_set_new(m, "outputConfig",
                            json_pack("{s:{s:s,s:{s:o}}}", "textFormat", "type", "json_schema",
                                      "structure", "jsonSchema", def));
    }
    mg_buf_deinit(&text);
    return rc;
}

int
mg_bedrock_request(const char *body, size_t len, json_t *parsed, int64_t default_max_tokens,
                   struct mg_buf *out, int *stream, struct mg_chatreq_err *e)
{
    struct mg_chatreq r;
    json_t *m, *inf, *js;
    int rc = parsed != NULL ? mg_chatreq_parse_json(&r, parsed, default_max_tokens, &ops, e)
                            : mg_chatreq_parse(&r, body, len, default_max_tokens, &ops, e);

    if (rc != MG_OK) {
        return rc;
    }
    *stream = r.stream;
    m = json_pack("{s:O}", "messages", r.messages);
    if (r.system != NULL) {
        json_object_set_new(m, "system", json_pack("[{s:O}]", "text", r.system));
    }
    inf = json_pack("{s:I,s:O*,s:O*,s:O*}", "maxTokens", (json_int_t)r.max_tokens,
                    "temperature", r.temperature, "topP", r.top_p, "stopSequences", r.stop);
    json_object_set_new(m, "inferenceConfig", inf);
    if (r.ntools > 0) {
        json_object_set_new(m, "toolConfig", tool_config(&r));
    }
    if ((js = mg_chatreq_json_schema(r.root)) != NULL) {   /* json_object: dropped */
        rc = output_config(js, m, out->cap);
    }
    rc = rc ? rc : mg_chatreq_dump(m, out);
    json_decref(m);
    mg_chatreq_deinit(&r);
    return rc;
}

/* ---- answer ---- */

static const char *const finish_map[][2] = {
    {"end_turn", "stop"}, {"stop_sequence", "stop"}, {"max_tokens", "length"},
    {"tool_use", "tool_calls"}, {"guardrail_intervened", "content_filter"},
    {"content_filtered", "content_filter"}, {"model_context_window_exceeded", "length"},
};

/* Converse's names for what every translated answer has: a text block is any with a text. */
static const struct mg_xanswer_names names = {
    finish_map, MG_ARRAY_LEN(finish_map), "stopReason",
    {"inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens"},
    NULL, NULL, "toolUse", "toolUseId",
};

int
mg_bedrock_answer(const char *body, size_t len, const char *client_model, const char *id,
                  int64_t now, struct mg_buf *out, struct mg_usage *u, struct mg_oai_kept *keep)
{
    json_t *root = mg_jload(body, len, 0);
    json_t *content = json_object_get(json_object_get(json_object_get(root, "output"),
                                                      "message"), "content");
    int rc = MG_ERR;

    u->input = u->output = u->cached = u->written = -1;
    if (json_is_array(content)) {
        rc = mg_xanswer_write(&names, root, content, id != NULL && *id ? id : NULL,
                              client_model, now, out, u, keep);
    }
    json_decref(root);
    return rc;
}

int
mg_bedrock_error(const char *errortype, const char *body, size_t len, struct mg_buf *out)
{
    static const char generic[] = "the backend answered with an error";
    json_t *root = mg_jload(body, len, 0), *msg = json_object_get(root, "message");
    char type[128];
    size_t n = errortype != NULL ? strcspn(errortype, ":") : 0;
    int rc;

    if (msg == NULL) {
        msg = json_object_get(root, "Message");
    }
    if (n == 0 || n >= sizeof(type)) {
        snprintf(type, sizeof(type), "upstream_error");
    } else {
        memcpy(type, errortype, n);
        type[n] = '\0';
    }
    if (json_is_string(msg)) {
        rc = mg_oai_error_body(type, json_string_value(msg), json_string_length(msg), out);
    } else {
        rc = mg_oai_error_body(type, generic, sizeof(generic) - 1, out);
    }
    json_decref(root);
    return rc;
}

/* ---- stream ---- */

struct mg_bedrock_stream {
    struct mg_oai_stream st;
};

struct mg_bedrock_stream *
mg_bedrock_stream_create(const char *client_model, int64_t now, int include_usage,
                         const char *id)
{
    struct mg_bedrock_stream *s = mg_calloc(1, sizeof(*s));

    mg_oai_stream_init(&s->st, client_model, now, include_usage, id);
    return s;
}

void
mg_bedrock_stream_destroy(struct mg_bedrock_stream *s)
{
    if (s == NULL) {
        return;
    }
    mg_oai_stream_deinit(&s->st);
    free(s);
}

struct mg_oai_stream *
mg_bedrock_stream_state(struct mg_bedrock_stream *s)
{
    return &s->st;
}

static int
fail(struct mg_bedrock_stream *s, const char *msg)
{
    return mg_oai_stream_fail(&s->st, msg, strlen(msg));
}

static int
is_exception(const char *type)
{
    size_t n = strlen(type);

    return strcmp(type, "error") == 0 || (n >= 9 && strcmp(type + n - 9, "Exception") == 0);
}

static int
block_start(struct mg_bedrock_stream *s, json_t *ev, struct mg_buf *out)
{
    json_t *tu = json_object_get(json_object_get(ev, "start"), "toolUse");
    json_t *id = json_object_get(tu, "toolUseId"), *name = json_object_get(tu, "name");
    json_int_t index = json_integer_value(json_object_get(ev, "contentBlockIndex"));

    if (tu == NULL) {
        return MG_OK;   /* text blocks start with their first delta */
    }
    if (!json_is_string(id) || !json_is_string(name)) {
        return fail(s, "the backend sent a toolUse block without toolUseId or name");
    }
    return mg_oai_stream_tool_start(&s->st, index, json_string_value(id), json_string_length(id),
                                    json_string_value(name), json_string_length(name), out);
}

static int
block_delta(struct mg_bedrock_stream *s, json_t *ev, struct mg_buf *out)
{
    json_t *d = json_object_get(ev, "delta"), *v;
    json_int_t index = json_integer_value(json_object_get(ev, "contentBlockIndex"));

    if ((v = json_object_get(d, "text")) != NULL && json_is_string(v)) {
        return mg_oai_stream_content(&s->st, json_string_value(v), json_string_length(v), out);
    }
    if ((v = json_object_get(json_object_get(d, "toolUse"), "input")) != NULL) {
        return mg_oai_stream_tool_args(&s->st, index, json_is_string(v) ? json_string_value(v)
                                       : "", json_string_length(v), out);
    }
    return MG_OK;   /* reasoningContent, citations */
}

static int
dispatch(struct mg_bedrock_stream *s, const char *type, json_t *ev, struct mg_buf *out)
{
    json_t *v;
    int rc;

    if (strcmp(type, "messageStart") == 0) {
        return mg_oai_stream_start(&s->st, NULL, 0, out);
    }
    if (strcmp(type, "contentBlockStart") == 0) {
        return block_start(s, ev, out);
    }
    if (strcmp(type, "contentBlockDelta") == 0) {
        return block_delta(s, ev, out);
    }
    if (strcmp(type, "messageStop") == 0) {
        v = json_object_get(ev, "stopReason");
        return s->st.finished ? MG_OK
               : mg_oai_stream_finish(&s->st, mg_xanswer_finish(&names, json_string_value(v)),
                                      out);
    }
    if (strcmp(type, "metadata") == 0) {
        mg_xanswer_usage(&names, json_object_get(ev, "usage"), &s->st.usage);
        rc = s->st.finished ? MG_OK : mg_oai_stream_finish(&s->st, "stop", out);
        return rc ? rc : mg_oai_stream_end(&s->st, out);
    }
    return MG_OK;   /* contentBlockStop, and event types added later */
}

int
mg_bedrock_stream_event(struct mg_bedrock_stream *s, const char *type, const char *payload,
                        size_t n, struct mg_buf *out)
{
    json_t *ev, *msg;
    int rc;

    if (s->st.failed) {
        return MG_OAI_ESTREAM;
    }
    if (s->st.done) {
        return MG_OK;
    }
    ev = mg_jload(payload, n, 0);
    if (type != NULL && is_exception(type)) {
        msg = json_object_get(ev, "message");
        rc = json_is_string(msg) ? mg_oai_stream_fail(&s->st, json_string_value(msg),
                                                      json_string_length(msg))
                                 : fail(s, type);
    } else if (type == NULL || !json_is_object(ev)) {
        rc = fail(s, "the backend sent an event that cannot be read");
    } else {
        rc = dispatch(s, type, ev, out);
    }
    json_decref(ev);
    return rc;
}
