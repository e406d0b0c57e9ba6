/*
 * mg_messages — an Anthropic Messages request read (SPEC "Messages → chat"): the body is parsed
 * once (mg_msg_ctx_create) and its messages are translated into chat messages once, by the first
 * attempt, and kept; mg_msg_params.c adds what differs per attempt around them.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_jload.h"
#include "mg_json.h"
#include "mg_messages.h"
#include "mg_msg_ctx.h"

#define EINVAL_ MG_CHATREQ_EINVAL
#define EUNSUP_ MG_CHATREQ_EUNSUPPORTED

/* A text the translation joins or builds (system, tool result, data: URL): far above any
 * body the gateway takes, so that only a broken cap configuration can reach it. */
#define TEXT_MAX ((size_t)256 << 20)

/* ---- the request as a whole ---- */

static struct mg_msg_ctx *
ctx_fail(struct mg_msg_ctx *c, struct mg_chatreq_err *e, const char *param, const char *msg)
{
    mg_chatreq_fail(e, EINVAL_, param, "%s", msg);
    mg_msg_ctx_destroy(c);
    return NULL;
}

struct mg_msg_ctx *
mg_msg_ctx_create(const char *body, size_t len, const char *id_hex32, struct mg_chatreq_err *e)
{
    struct mg_msg_ctx *c = mg_calloc(1, sizeof(*c));
    json_t *v, *stop;

    c->root = mg_jload(body, len, 0);
    memcpy(c->id, "msg_mg", 6);
    memcpy(c->id + 6, id_hex32 != NULL ? id_hex32 : "", id_hex32 != NULL
           ? strnlen(id_hex32, 32) : 0);
    if (!json_is_object(c->root)) {
        return ctx_fail(c, e, "", "The request body is not a valid JSON object.");
    }
    v = json_object_get(c->root, "model");
    if (!json_is_string(v)) {
        return ctx_fail(c, e, "model", "model: Field required");
    }
    c->model = json_string_value(v);
    c->model_len = json_string_length(v);
    v = json_object_get(c->root, "max_tokens");
    if (v == NULL) {
        return ctx_fail(c, e, "max_tokens", "max_tokens: Field required");
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1
        || json_integer_value(v) > MG_JSON_MAX_TOKENS) {
        return ctx_fail(c, e, "max_tokens",
                        "max_tokens: Input should be an integer from 1 to 2147483647");
    }
    c->max_tokens = json_integer_value(v);
    if (!json_is_array(json_object_get(c->root, "messages"))) {
        return ctx_fail(c, e, "messages", "messages: Input should be a valid list");
    }
    v = json_object_get(c->root, "stream");
    if (v != NULL && !json_is_boolean(v) && !json_is_null(v)) {
        return ctx_fail(c, e, "stream", "stream: Input should be a valid boolean");
    }
    c->stream = json_is_true(v);
    stop = json_object_get(c->root, "stop_sequences");
    if (json_array_size(stop) == 1 && json_is_string(json_array_get(stop, 0))) {
        c->stop_one = json_array_get(stop, 0);
    }
    return c;
}

void
mg_msg_ctx_destroy(struct mg_msg_ctx *c)
{
    if (c == NULL) {
        return;
    }
    json_decref(c->messages);
    json_decref(c->root);
    free(c);
}

const char *
mg_msg_ctx_id(const struct mg_msg_ctx *c)
{
    return c->id;
}

int
mg_msg_ctx_stream(const struct mg_msg_ctx *c)
{
    return c->stream;
}

/* ---- messages ---- */

/* Where a block sits, for error messages: "messages[2].content[0]". */
struct where {
    char s[96];
};

static const char *
at(struct where *w, size_t i, size_t j)
{
    snprintf(w->s, sizeof(w->s), "messages[%zu].content[%zu]", i, j);
    return w->s;
}

static int
untranslatable(struct mg_chatreq_err *e, const char *param, const char *type)
{
    return mg_chatreq_fail(e, EUNSUP_, param, "%s: %s blocks cannot be sent to this backend",
                           param, type);
}

/* A text block's text, or NULL (e filled). */
static json_t *
block_text(json_t *b, const char *param, struct mg_chatreq_err *e)
{
    json_t *t = json_object_get(b, "text");

    if (!json_is_string(t)) {
        mg_chatreq_fail(e, EINVAL_, param, "%s.text: Field required", param);
        return NULL;
    }
    return t;
}

/* An image block -> an image_url part (new reference), or NULL with *rc and e set. */
static json_t *
image_part(json_t *b, const char *param, struct mg_chatreq_err *e, int *rc)
{
    json_t *src = json_object_get(b, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    json_t *mt = json_object_get(src, "media_type"), *data = json_object_get(src, "data");
    json_t *url = json_object_get(src, "url"), *part;
    struct mg_buf u;

    if (type != NULL && strcmp(type, "base64") == 0 && json_is_string(mt)
        && json_is_string(data)) {
        mg_buf_init(&u, TEXT_MAX);
        if (mg_buf_printf(&u, "data:%s;base64,", json_string_value(mt)) != MG_OK
            || mg_buf_add(&u, json_string_value(data), json_string_length(data)) != MG_OK) {
            mg_buf_deinit(&u);
            *rc = mg_chatreq_fail(e, EINVAL_, param, "%s: image too large", param);
            return NULL;
        }
        part = json_pack("{s:s,s:{s:s%}}", "type", "image_url", "image_url", "url",
                         u.data, u.len);
        mg_buf_deinit(&u);
        return part;
    }
    if (type != NULL && strcmp(type, "url") == 0 && json_is_string(url)) {
        return json_pack("{s:s,s:{s:O}}", "type", "image_url", "image_url", "url", url);
    }
    if (type != NULL && strcmp(type, "file") == 0) {
        *rc = untranslatable(e, param, "file image");
        return NULL;
    }
    *rc = mg_chatreq_fail(e, EINVAL_, param, "%s.source: an image source must be base64 or url",
                          param);
    return NULL;
}

/* Sets a message's content from its parts: one text part as a string, else the parts. */
static void
set_content(json_t *msg, json_t *parts)
{
    json_t *p0 = json_array_get(parts, 0);
    const char *t = json_string_value(json_object_get(p0, "type"));

    if (json_array_size(parts) == 1 && t != NULL && strcmp(t, "text") == 0) {
        json_object_set(msg, "content", json_object_get(p0, "text"));
    } else if (json_array_size(parts) == 0) {
        json_object_set_new(msg, "content", json_string(""));
    } else {
        json_object_set(msg, "content", parts);
    }
}

/* A tool_result block -> a tool message appended to tools; its images go to parts. */
static int
tool_result(json_t *b, const char *param, json_t *tools, json_t *parts,
            struct mg_chatreq_err *e)
{
    json_t *id = json_object_get(b, "tool_use_id"), *content = json_object_get(b, "content");
    json_t *x, *img;
    struct mg_buf text;
    size_t k;
    int rc = MG_OK;
    char sub[128];

    if (!json_is_string(id)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s.tool_use_id: Field required", param);
    }
    if (json_is_string(content) || content == NULL || json_is_null(content)) {
        json_array_append_new(tools, json_pack("{s:s,s:O,s:s%}", "role", "tool",
                                               "tool_call_id", id, "content",
                                               json_is_string(content)
                                               ? json_string_value(content) : "",
                                               json_string_length(content)));
        return MG_OK;
    }
    if (!json_is_array(content)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s.content: Input should be a string or a list",
                               param);
    }
    mg_buf_init(&text, TEXT_MAX);
    json_array_foreach(content, k, x) {
        const char *type = json_string_value(json_object_get(x, "type"));
        json_t *t;

        snprintf(sub, sizeof(sub), "%s.content[%zu]", param, k);
        if (type != NULL && strcmp(type, "text") == 0) {
            rc = (t = block_text(x, sub, e)) == NULL ? EINVAL_ : MG_OK;
            rc = rc ? rc : mg_buf_add(&text, json_string_value(t), json_string_length(t));
        } else if (type != NULL && strcmp(type, "image") == 0) {
            if ((img = image_part(x, sub, e, &rc)) != NULL) {
                json_array_append_new(parts, img);
            }
        } else {
            rc = untranslatable(e, sub, type != NULL ? type : "untyped");
        }
        if (rc != MG_OK) {
            break;
        }
    }
    if (rc == MG_OK) {
        json_array_append_new(tools, json_pack("{s:s,s:O,s:s%}", "role", "tool", "tool_call_id",
                                               id, "content", text.data ? text.data : "",
                                               text.len));
    }
    mg_buf_deinit(&text);
    return rc;
}

/* An assistant tool_use block -> a tool call appended to calls. */
static int
tool_use(json_t *b, const char *param, json_t *calls, struct mg_chatreq_err *e)
{
    json_t *id = json_object_get(b, "id"), *name = json_object_get(b, "name");
    json_t *input = json_object_get(b, "input");
    struct mg_buf args;
    int rc;

    if (!json_is_string(id) || !json_is_string(name)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s: tool_use needs id and name", param);
    }
    if (input != NULL && !json_is_object(input)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s.input: Input should be an object", param);
    }
    mg_buf_init(&args, TEXT_MAX);
    rc = input != NULL ? mg_chatreq_dump(input, &args) : mg_buf_adds(&args, "{}");
    if (rc == MG_OK) {
        json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:s%}}", "id", id, "type",
                                               "function", "function", "name", name,
                                               "arguments", args.data, args.len));
    }
    mg_buf_deinit(&args);
    return rc;
}

/* Blocks dropped on the way: thinking, and nothing else an OpenAI backend could read. */
static int
dropped_block(const char *type)
{
    return strcmp(type, "thinking") == 0 || strcmp(type, "redacted_thinking") == 0;
}

static int system_text(json_t *sys, json_t **out, struct mg_chatreq_err *e);

/* One message -> chat messages appended to out. */
static int
message(json_t *m, size_t i, json_t *out, struct mg_chatreq_err *e)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content"), *b, *msg, *img, *t;
    json_t *parts, *calls, *tools;
    int user, rc = MG_OK;
    struct where w;
    size_t j;
    char param[64];

    snprintf(param, sizeof(param), "messages[%zu]", i);
    if (role != NULL && strcmp(role, "system") == 0) {
        /* a system message in the conversation (Claude Code sends one with a beta for models
         * it does not know): a chat system message in its place, as the chat translators of
         * the backends read one (merged into their own system prompt) */
        json_t *text = NULL;
        rc = system_text(content, &text, e);
        if (rc == MG_OK && text != NULL) {
            json_array_append_new(out, mg_chatreq_obj("role", MG_JSTR("system"), "content",
                                                      text, NULL));
        }
        return rc;
    }
    if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s.role: Input should be 'user' or "
                               "'assistant'", param);
    }
    user = role[0] == 'u';
    if (json_is_string(content)) {
        json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", content));
        return MG_OK;
    }
    if (!json_is_array(content)) {
        return mg_chatreq_fail(e, EINVAL_, param, "%s.content: Input should be a string or a "
                               "list", param);
    }
    parts = json_array();
    calls = json_array();
    tools = json_array();
    json_array_foreach(content, j, b) {
        const char *type = json_string_value(json_object_get(b, "type"));

        at(&w, i, j);
        if (type == NULL) {
            rc = mg_chatreq_fail(e, EINVAL_, w.s, "%s.type: Field required", w.s);
        } else if (strcmp(type, "text") == 0) {
            rc = (t = block_text(b, w.s, e)) == NULL ? EINVAL_ : MG_OK;
            if (rc == MG_OK) {
                json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text", t));
            }
        } else if (strcmp(type, "image") == 0 && user) {
            if ((img = image_part(b, w.s, e, &rc)) != NULL) {
                json_array_append_new(parts, img);
            }
        } else if (strcmp(type, "tool_result") == 0 && user) {
            rc = tool_result(b, w.s, tools, parts, e);
        } else if (strcmp(type, "tool_use") == 0 && !user) {
            rc = tool_use(b, w.s, calls, e);
        } else if (strcmp(type, "image") == 0 || strcmp(type, "tool_result") == 0
                   || strcmp(type, "tool_use") == 0) {
            rc = mg_chatreq_fail(e, EINVAL_, w.s, "%s: %s blocks are not allowed in %s messages",
                                 w.s, type, role);
        } else if (!dropped_block(type)) {
            rc = untranslatable(e, w.s, type);   /* document, search_result, server tools */
        }
        if (rc != MG_OK) {
            break;
        }
    }
    if (rc == MG_OK) {
        json_array_extend(out, tools);   /* tool messages first: they answer the last turn */
        if (!user || json_array_size(parts) > 0 || json_array_size(tools) == 0) {
            msg = json_pack("{s:s}", "role", role);
            if (!user && json_array_size(parts) == 0 && json_array_size(calls) > 0) {
                json_object_set_new(msg, "content", json_null());
            } else {
                set_content(msg, parts);
            }
            if (json_array_size(calls) > 0) {
                json_object_set(msg, "tool_calls", calls);
            }
            json_array_append_new(out, msg);
        }
    }
    json_decref(parts);
    json_decref(calls);
    json_decref(tools);
    return rc;
}

/* The system prompt: a string, or text blocks joined by a blank line. NULL when none. */
static int
system_text(json_t *sys, json_t **out, struct mg_chatreq_err *e)
{
    struct mg_buf acc;
    json_t *b, *t;
    size_t i;
    char param[48];
    int rc = MG_OK;

    *out = NULL;
    if (sys == NULL || json_is_null(sys)) {
        return MG_OK;
    }
    if (json_is_string(sys)) {
        *out = json_incref(sys);
        return MG_OK;
    }
    if (!json_is_array(sys)) {
        return mg_chatreq_fail(e, EINVAL_, "system", "system: Input should be a string or a "
                               "list of text blocks");
    }
    if (json_array_size(sys) == 0) {
        return MG_OK;
    }
    mg_buf_init(&acc, TEXT_MAX);
    json_array_foreach(sys, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));

        snprintf(param, sizeof(param), "system[%zu]", i);
        if (type == NULL || strcmp(type, "text") != 0) {
            rc = mg_chatreq_fail(e, EINVAL_, param, "%s: system blocks must be text", param);
            break;
        }
        if ((t = block_text(b, param, e)) == NULL) {
            rc = EINVAL_;
            break;
        }
        rc = i > 0 ? mg_buf_add(&acc, "\n\n", 2) : MG_OK;
        rc = rc ? rc : mg_buf_add(&acc, json_string_value(t), json_string_length(t));
    }
    if (rc == MG_OK) {
        *out = json_stringn(acc.data ? acc.data : "", acc.len);
    }
    mg_buf_deinit(&acc);
    return rc;
}

int
mg_msg_messages(struct mg_msg_ctx *c, struct mg_chatreq_err *e)
{
    json_t *msgs = json_object_get(c->root, "messages"), *m, *sys = NULL;
    size_t i;
    int rc;

    if (c->messages != NULL || c->msg_rc != MG_OK) {
        *e = c->msg_err;
        return c->msg_rc;
    }
    c->messages = json_array();
    rc = system_text(json_object_get(c->root, "system"), &sys, &c->msg_err);
    if (rc == MG_OK && sys != NULL) {
        json_array_append_new(c->messages, json_pack("{s:s,s:o}", "role", "system",
                                                     "content", sys));
    }
    json_array_foreach(msgs, i, m) {
        if (rc != MG_OK) {
            break;
        }
        rc = message(m, i, c->messages, &c->msg_err);
    }
    if (rc != MG_OK) {
        json_decref(c->messages);
        c->messages = NULL;
        c->msg_rc = rc;
    }
    *e = c->msg_err;
    return rc;
}
