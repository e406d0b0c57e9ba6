/*
 * mg_msg_params — the chat body of one attempt (SPEC "Messages → chat"): the messages mg_msg_req
 * translated once, and around them what differs per attempt: the model, the limit's name, the
 * tools under the rule's hosted_tools, stream_options; and the parameters read as they go.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "mg_messages.h"
#include "mg_msg_ctx.h"

#define EINVAL_ MG_CHATREQ_EINVAL
#define EUNSUP_ MG_CHATREQ_EUNSUPPORTED

/* Claude Code sends ~150 bytes; OpenAI takes 64 in `user` (and safety_identifier). */
#define USER_MAX 64

/* Appends type to the comma-separated list in dropped, once. */
static int
add_dropped(struct mg_buf *dropped, const char *type)
{
    size_t n = strlen(type);
    const char *p = dropped->data, *end = p + dropped->len;

    while (p != NULL && p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *stop = comma ? comma : end;
        if ((size_t)(stop - p) == n && memcmp(p, type, n) == 0) {
            return MG_OK;
        }
        p = comma ? comma + 1 : end;
    }
    if (dropped->len > 0 && mg_buf_add(dropped, ",", 1) != MG_OK) {
        return MG_ETOOBIG;
    }
    return mg_buf_add(dropped, type, n);
}

/* A hosted (Anthropic-defined) tool: dropped and named, or refused. */
static int
hosted(const struct mg_msg_opts *o, const char *param, const char *type, struct mg_buf *dropped,
       struct mg_chatreq_err *e)
{
    if (o->hosted_refuse) {
        return mg_chatreq_fail(e, EUNSUP_, param, "%s: the Anthropic-defined tool %s cannot be "
                               "used with this backend", param, type);
    }
    return dropped != NULL ? add_dropped(dropped, type) : MG_OK;
}

/* tools -> chat tools set on body (none when every tool was dropped). */
static int
tools_json(json_t *root, json_t *body, const struct mg_msg_opts *o, struct mg_buf *dropped,
           struct mg_chatreq_err *e)
{
    json_t *tools = json_object_get(root, "tools"), *t, *ft = json_array(), *mcp;
    size_t i;
    int rc = MG_OK;
    char param[32];

    if (tools != NULL && !json_is_array(tools) && !json_is_null(tools)) {
        json_decref(ft);
        return mg_chatreq_fail(e, EINVAL_, "tools", "tools: Input should be a valid list");
    }
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *name = json_object_get(t, "name"), *schema = json_object_get(t, "input_schema");
        json_t *desc = json_object_get(t, "description"), *strict = json_object_get(t, "strict");
        json_t *fn;

        snprintf(param, sizeof(param), "tools[%zu]", i);
        if (type != NULL && strcmp(type, "custom") != 0) {
            rc = hosted(o, param, type, dropped, e);
        } else if (!json_is_string(name) || !json_is_object(schema)) {
            rc = mg_chatreq_fail(e, EINVAL_, param, "%s: a tool needs a name and an "
                                 "input_schema object", param);
        } else {
            fn = json_pack("{s:O,s:O}", "name", name, "parameters", schema);
            if (json_is_string(desc)) {
                json_object_set(fn, "description", desc);
            }
            if (json_is_boolean(strict)) {
                json_object_set(fn, "strict", strict);
            }
            json_array_append_new(ft, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        }
        if (rc != MG_OK) {
            break;
        }
    }
    mcp = json_object_get(root, "mcp_servers");   /* tools the API would call itself */
    if (rc == MG_OK && json_array_size(mcp) > 0) {
        rc = hosted(o, "mcp_servers", "mcp", dropped, e);
    }
    if (rc == MG_OK && json_array_size(ft) > 0) {
        json_object_set(body, "tools", ft);
    }
    json_decref(ft);
    return rc;
}

/* tool_choice and disable_parallel_tool_use, when function tools are sent. */
static int
tool_choice_json(json_t *root, json_t *body, struct mg_chatreq_err *e)
{
    json_t *tc = json_object_get(root, "tool_choice"), *name = json_object_get(tc, "name");
    const char *type = json_string_value(json_object_get(tc, "type"));

    if (tc == NULL || json_is_null(tc)) {
        return MG_OK;
    }
    if (type == NULL) {
        return mg_chatreq_fail(e, EINVAL_, "tool_choice", "tool_choice.type: Field required");
    }
    if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0) {
        json_object_set_new(body, "tool_choice", json_string(type));
    } else if (strcmp(type, "any") == 0) {
        json_object_set_new(body, "tool_choice", json_string("required"));
    } else if (strcmp(type, "tool") == 0 && json_is_string(name)) {
        json_object_set_new(body, "tool_choice", json_pack("{s:s,s:{s:O}}", "type", "function",
                                                           "function", "name", name));
    } else {
        return mg_chatreq_fail(e, EINVAL_, "tool_choice", "tool_choice: unknown type %s", type);
    }
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use"))
        && strcmp(type, "none") != 0) {
        json_object_set_new(body, "parallel_tool_calls", json_false());
    }
    if (json_object_get(body, "tools") == NULL) {   /* every tool dropped: nothing to choose */
        json_object_del(body, "tool_choice");
        json_object_del(body, "parallel_tool_calls");
    }
    return MG_OK;
}

/* output_config.format (or the beta's output_format) json_schema -> response_format. */
static int
format_json(json_t *root, json_t *body, struct mg_chatreq_err *e)
{
    json_t *f = json_object_get(json_object_get(root, "output_config"), "format");
    json_t *schema;
    const char *type;

    f = f != NULL ? f : json_object_get(root, "output_format");
    if (f == NULL || json_is_null(f)) {
        return MG_OK;
    }
    type = json_string_value(json_object_get(f, "type"));
    schema = json_object_get(f, "schema");
    if (type == NULL || strcmp(type, "json_schema") != 0 || !json_is_object(schema)) {
        return mg_chatreq_fail(e, EINVAL_, "output_config.format", "output_config.format: "
                               "a json_schema format with a schema object is required");
    }
    json_object_set_new(body, "response_format",
                        json_pack("{s:s,s:{s:s,s:O,s:b}}", "type", "json_schema", "json_schema",
                                  "name", "output", "schema", schema, "strict", 1));
    return MG_OK;
}

/* metadata.user_id -> user (over USER_MAX bytes: its SHA-256, hex). */
static int
user_json(json_t *root, json_t *body)
{
    json_t *uid = json_object_get(json_object_get(root, "metadata"), "user_id");
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, k;
    char h[2 * EVP_MAX_MD_SIZE + 1];

    if (!json_is_string(uid)) {
        return MG_OK;
    }
    if (json_string_length(uid) <= USER_MAX) {
        json_object_set(body, "user", uid);
        return MG_OK;
    }
    if (EVP_Digest(json_string_value(uid), json_string_length(uid), md, &mdlen, EVP_sha256(),
                   NULL) != 1) {
        return MG_ERR;
    }
    for (k = 0; k < mdlen; k++) {
        h[2 * k] = hex[md[k] >> 4];
        h[2 * k + 1] = hex[md[k] & 15];
    }
    h[2 * mdlen] = '\0';
    json_object_set_new(body, "user", json_string(h));
    return MG_OK;
}

/* A member copied when it has the right type (a number, an array of strings). */
static int
copy_number(json_t *root, json_t *body, const char *from, const char *to,
            struct mg_chatreq_err *e)
{
    json_t *v = json_object_get(root, from);

    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (!json_is_number(v)) {
        return mg_chatreq_fail(e, EINVAL_, from, "%s: Input should be a valid number", from);
    }
    json_object_set(body, to, v);
    return MG_OK;
}

static int
stop_json(json_t *root, json_t *body, struct mg_chatreq_err *e)
{
    json_t *v = json_object_get(root, "stop_sequences"), *s;
    size_t i;

    if (v == NULL || json_is_null(v)) {
        return MG_OK;
    }
    if (!json_is_array(v)) {
        return mg_chatreq_fail(e, EINVAL_, "stop_sequences", "stop_sequences: Input should be "
                               "a valid list");
    }
    json_array_foreach(v, i, s) {
        if (!json_is_string(s)) {
            return mg_chatreq_fail(e, EINVAL_, "stop_sequences", "stop_sequences.%zu: Input "
                                   "should be a valid string", i);
        }
    }
    if (json_array_size(v) > 0) {
        json_object_set(body, "stop", v);
    }
    return MG_OK;
}

int
mg_msg_request(struct mg_msg_ctx *c, const struct mg_msg_opts *o, struct mg_buf *out,
               struct mg_buf *dropped, struct mg_chatreq_err *e)
{
    json_t *body;
    int rc;

    if (dropped != NULL) {
        mg_buf_reset(dropped);
    }
    if ((rc = mg_msg_messages(c, e)) != MG_OK) {
        return rc;
    }
    body = json_object();   /* a model name that is not UTF-8 is left out, not a crash */
    json_object_set_new(body, "model", json_string(o->model != NULL ? o->model : c->model));
    json_object_set(body, "messages", c->messages);
    json_object_set_new(body, o->max_tokens_param != NULL ? o->max_tokens_param : "max_tokens",
                        json_integer((json_int_t)c->max_tokens));
    rc = copy_number(c->root, body, "temperature", "temperature", e);
    rc = rc ? rc : copy_number(c->root, body, "top_p", "top_p", e);
    rc = rc ? rc : stop_json(c->root, body, e);
    rc = rc ? rc : tools_json(c->root, body, o, dropped, e);
    rc = rc ? rc : tool_choice_json(c->root, body, e);
    rc = rc ? rc : format_json(c->root, body, e);
    rc = rc ? rc : user_json(c->root, body);
    if (rc == MG_OK && c->stream) {
        json_object_set_new(body, "stream", json_true());
        if (o->include_usage) {
            json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
        }
    }
    rc = rc ? rc : o->chat != NULL && o->json_only ? MG_OK : mg_chatreq_dump(body, out);
    if (rc == MG_OK && o->chat != NULL) {
        *o->chat = json_incref(body);
    }
    json_decref(body);
    if (rc != MG_OK && dropped != NULL) {
        mg_buf_reset(dropped);
    }
    return rc;
}
