/*
 * mg_chatreq — the OpenAI chat request, checked and walked once for every translating schema.
 *
 * Decisions made here, for both schemas:
 * - text parts of one message are concatenated as they are; system and developer messages are
 *   joined with a blank line (SPEC);
 * - empty text is left out (both providers refuse empty text blocks), and a turn left with no
 *   block at all is dropped (an assistant turn with content "" and no tool call, say);
 * - consecutive turns of one role are merged, tool results being user turns: both providers want
 *   turns that alternate, and Anthropic merges them itself anyway;
 * - tool call arguments that are not a JSON object are a 400 (invalid_request_error): the
 *   providers take the input as an object, and guessing one would change the conversation;
 *   empty arguments ("") are read as {} (clients send that for calls without parameters);
 * - parts and roles OpenAI has but these schemas lack (audio, files, the "function" role) are
 *   unsupported_parameter, so that the request may go to another backend of the rule.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_chatreq.h"
#include "mg_json.h"

#define MAX_TEXT (64u << 20)   /* joined system or tool text */

int
mg_chatreq_fail(struct mg_chatreq_err *e, int rc, const char *param, const char *fmt, ...)
{
    va_list ap;

    snprintf(e->param, sizeof(e->param), "%s", param != NULL ? param : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return rc;
}

/* Appends the text of a content (string, or array of text parts) to acc. */
static int
content_text(json_t *content, struct mg_buf *acc, const char *where, struct mg_chatreq_err *e)
{
    size_t i;
    json_t *part;

    if (json_is_string(content)) {
        if (mg_buf_add(acc, json_string_value(content), json_string_length(content)) != MG_OK) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s is too long", where);
        }
        return MG_OK;
    }
    if (json_is_null(content) || content == NULL) {
        return MG_OK;
    }
    if (!json_is_array(content)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s must be a string or an array",
                               where);
    }
    json_array_foreach(content, i, part) {
        json_t *text = json_object_get(part, "text");
        const char *type = json_string_value(json_object_get(part, "type"));

        if (type == NULL || strcmp(type, "text") != 0 || !json_is_string(text)) {
            return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, where,
                                   "%s[%zu] is not a text part", where, i);
        }
        if (mg_buf_add(acc, json_string_value(text), json_string_length(text)) != MG_OK) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s is too long", where);
        }
    }
    return MG_OK;
}

/* Splits a base64 data: URL ("data:image/png;base64,AAAA"). 0, or -1 when it is not one. */
static int
split_data_url(const char *url, struct mg_chatreq_image *img)
{
    const char *comma = strchr(url, ','), *semi;

    img->url = url;
    img->is_data = 0;
    if (strncmp(url, "data:", 5) != 0) {
        return 0;
    }
    if (comma == NULL || comma - url < 12 || strncmp(comma - 7, ";base64", 7) != 0) {
        return -1;
    }
    semi = memchr(url + 5, ';', (size_t)(comma - url - 5));
    img->is_data = 1;
    img->media_type = url + 5;
    img->media_len = (size_t)(semi - (url + 5));
    img->data = comma + 1;
    img->data_len = strlen(comma + 1);
    return 0;
}

static json_t *
image_block(json_t *part, const struct mg_chatreq_ops *ops, const char *where,
            struct mg_chatreq_err *e, int *rc)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);
    struct mg_chatreq_image img;

    if (url == NULL) {
        *rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s.image_url.url is missing", where);
        return NULL;
    }
    img.where = where;
    if (split_data_url(url, &img) != 0) {
        *rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s is a data: URL that is not base64",
                              where);
        return NULL;
    }
    return ops->image(&img, e, rc);
}

/* Appends the blocks of a user or assistant content (string, null, or array of parts). */
static int
content_blocks(json_t *content, json_t *blocks, const struct mg_chatreq_ops *ops,
               const char *where, struct mg_chatreq_err *e)
{
    char at[96];
    size_t i;
    json_t *part, *b;
    int rc = MG_OK;

    if (json_is_string(content)) {
        if (json_string_length(content) > 0) {
            json_array_append_new(blocks, ops->text(json_string_value(content),
                                                    json_string_length(content)));
        }
        return MG_OK;
    }
    if (content == NULL || json_is_null(content)) {
        return MG_OK;
    }
    if (!json_is_array(content)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s must be a string or an array",
                               where);
    }
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");

        snprintf(at, sizeof(at), "%s[%zu]", where, i);
        if (type != NULL && strcmp(type, "text") == 0 && json_is_string(text)) {
            if (json_string_length(text) > 0) {
                json_array_append_new(blocks, ops->text(json_string_value(text),
                                                        json_string_length(text)));
            }
        } else if (type != NULL && strcmp(type, "image_url") == 0) {
            if ((b = image_block(part, ops, at, e, &rc)) == NULL) {
                return rc;
            }
            json_array_append_new(blocks, b);
        } else {
            return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, at, "%s: part type '%s' is not "
                                   "supported by this backend", at, type ? type : "(none)");
        }
    }
    return MG_OK;
}

/* Appends a tool_use block for each of an assistant message's tool_calls. */
static int
tool_use_blocks(json_t *calls, json_t *blocks, const struct mg_chatreq_ops *ops,
                const char *where, struct mg_chatreq_err *e)
{
    char at[96];
    size_t i;
    json_t *call;

    if (calls == NULL || json_is_null(calls)) {
        return MG_OK;
    }
    if (!json_is_array(calls)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s must be an array", where);
    }
    json_array_foreach(calls, i, call) {
        json_t *fn = json_object_get(call, "function"), *id = json_object_get(call, "id");
        json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        json_t *input;

        snprintf(at, sizeof(at), "%s[%zu]", where, i);
        if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args)) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, at, "%s needs an id, a function.name "
                                   "and function.arguments (strings)", at);
        }
        input = json_string_length(args) == 0 ? json_object()
                : mg_jload(json_string_value(args), json_string_length(args), 0);
        if (!json_is_object(input)) {
            json_decref(input);
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, at, "%s.function.arguments is not a "
                                   "JSON object", at);
        }
        json_array_append_new(blocks, ops->tool_use(id, name, input));
        json_decref(input);
    }
    return MG_OK;
}

/* Adds a turn, merged into the last one when that has the same role; empty turns are dropped. */
static void
add_turn(json_t *messages, const char *role, json_t *blocks)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *last_role = json_string_value(json_object_get(last, "role"));

    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return;
    }
    if (last_role != NULL && strcmp(last_role, role) == 0) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(messages, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

static int
tool_message(struct mg_chatreq *r, json_t *m, const struct mg_chatreq_ops *ops,
             const char *where, struct mg_chatreq_err *e)
{
    json_t *id = json_object_get(m, "tool_call_id");
    struct mg_buf text;
    char at[96];
    int rc;

    if (!json_is_string(id)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s.tool_call_id is missing", where);
    }
    snprintf(at, sizeof(at), "%s.content", where);
    mg_buf_init(&text, MAX_TEXT);
    rc = content_text(json_object_get(m, "content"), &text, at, e);
    if (rc == MG_OK) {
        json_t *s = json_stringn(text.data ? text.data : "", text.len);
        add_turn(r->messages, "user", json_pack("[o]", ops->tool_result(id, s)));
        json_decref(s);
    }
    mg_buf_deinit(&text);
    return rc;
}

static int
message(struct mg_chatreq *r, json_t *m, size_t i, const struct mg_chatreq_ops *ops,
        struct mg_buf *sys, struct mg_chatreq_err *e)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    char where[64], at[96];
    json_t *blocks;
    int rc;

    snprintf(where, sizeof(where), "messages[%zu]", i);
    snprintf(at, sizeof(at), "%s.content", where);
    if (role == NULL) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s.role is missing", where);
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        size_t before = sys->len;

        if (sys->len > 0 && mg_buf_adds(sys, "\n\n") != MG_OK) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, at, "the system text is too long");
        }
        rc = content_text(json_object_get(m, "content"), sys, at, e);
        if (sys->len == before + 2 * (before > 0)) {
            sys->len = before;      /* an empty system message adds no blank line */
        }
        return rc;
    }
    if (strcmp(role, "tool") == 0) {
        return tool_message(r, m, ops, where, e);
    }
    if (strcmp(role, "function") == 0) {
        return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, where, "%s: the 'function' role is "
                               "not supported by this backend (use tool messages)", where);
    }
    if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "%s.role '%s' is not a chat role",
                               where, role);
    }
    blocks = json_array();
    rc = content_blocks(json_object_get(m, "content"), blocks, ops, at, e);
    if (rc == MG_OK && strcmp(role, "assistant") == 0) {
        snprintf(at, sizeof(at), "%s.tool_calls", where);
        rc = tool_use_blocks(json_object_get(m, "tool_calls"), blocks, ops, at, e);
    }
    if (rc != MG_OK) {
        json_decref(blocks);
        return rc;
    }
    add_turn(r->messages, role, blocks);
    return MG_OK;
}

static int
read_messages(struct mg_chatreq *r, const struct mg_chatreq_ops *ops, struct mg_chatreq_err *e)
{
    json_t *msgs = json_object_get(r->root, "messages"), *m;
    struct mg_buf sys;
    size_t i;
    int rc = MG_OK;

    if (!json_is_array(msgs)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "messages", "'messages' must be an array");
    }
    mg_buf_init(&sys, MAX_TEXT);
    r->messages = json_array();
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) {
            rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "messages", "messages[%zu] is not an "
                                 "object", i);
        } else {
            rc = message(r, m, i, ops, &sys, e);
        }
        if (rc != MG_OK) {
            break;
        }
    }
    if (rc == MG_OK && sys.len > 0) {
        r->system = json_stringn(sys.data, sys.len);
    }
    mg_buf_deinit(&sys);
    return rc;
}

/* An optional integer member: 0 (absent or null), 1 (found, in *v), or an error. */
static int
opt_int(json_t *root, const char *key, int64_t *v, struct mg_chatreq_err *e)
{
    json_t *j = json_object_get(root, key);

    if (j == NULL || json_is_null(j)) {
        return 0;
    }
    if (!json_is_integer(j) || json_integer_value(j) < 1) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, key, "'%s' must be a positive integer", key);
    }
    *v = json_integer_value(j);
    return 1;
}

/* An optional number member: NULL when absent or null. */
static int
opt_number(json_t *root, const char *key, json_t **v, struct mg_chatreq_err *e)
{
    json_t *j = json_object_get(root, key);

    *v = NULL;
    if (j == NULL || json_is_null(j)) {
        return MG_OK;
    }
    if (!json_is_number(j)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, key, "'%s' must be a number", key);
    }
    *v = j;
    return MG_OK;
}

static int
read_stop(struct mg_chatreq *r, struct mg_chatreq_err *e)
{
    json_t *stop = json_object_get(r->root, "stop"), *s;
    size_t i;

    if (stop == NULL || json_is_null(stop)) {
        return MG_OK;
    }
    if (json_is_string(stop)) {
        r->stop = json_pack("[O]", stop);
        return MG_OK;
    }
    if (!json_is_array(stop)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "stop", "'stop' must be a string or an "
                               "array of strings");
    }
    json_array_foreach(stop, i, s) {
        if (!json_is_string(s)) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "stop", "'stop' must be a string or an "
                                   "array of strings");
        }
    }
    if (json_array_size(stop) > 0) {
        r->stop = json_incref(stop);
    }
    return MG_OK;
}

static int
read_tools(struct mg_chatreq *r, struct mg_chatreq_err *e)
{
    json_t *tools = json_object_get(r->root, "tools"), *t;
    char at[32];
    size_t i;

    if (tools == NULL || json_is_null(tools)) {
        return MG_OK;
    }
    if (!json_is_array(tools)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "tools", "'tools' must be an array");
    }
    r->tools = mg_calloc(json_array_size(tools) + 1, sizeof(*r->tools));
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn = json_object_get(t, "function");
        struct mg_chatreq_tool *rt = &r->tools[r->ntools];

        snprintf(at, sizeof(at), "tools[%zu]", i);
        if (type == NULL || strcmp(type, "function") != 0) {
            return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, at, "%s: only function tools are "
                                   "supported by this backend", at);
        }
        rt->name = json_object_get(fn, "name");
        rt->description = json_object_get(fn, "description");
        rt->parameters = json_object_get(fn, "parameters");
        if (!json_is_string(rt->name) || (rt->description && !json_is_string(rt->description))
            || (rt->parameters && !json_is_object(rt->parameters))) {
            return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, at, "%s.function needs a name (string), "
                                   "and a description (string) and parameters (object) if any",
                                   at);
        }
        r->ntools++;
    }
    return MG_OK;
}

static int
read_tool_choice(struct mg_chatreq *r, struct mg_chatreq_err *e)
{
    static const char *const names[] = {"auto", "required", "none"};
    json_t *tc = json_object_get(r->root, "tool_choice");
    const char *s = json_string_value(tc);
    size_t i;

    if (tc == NULL || json_is_null(tc)) {
        return MG_OK;
    }
    for (i = 0; s != NULL && i < MG_ARRAY_LEN(names); i++) {
        if (strcmp(s, names[i]) == 0) {
            r->tool_choice = MG_CHATREQ_CHOICE_AUTO + (int)i;
            return MG_OK;
        }
    }
    r->tool_name = json_object_get(json_object_get(tc, "function"), "name");
    if (!json_is_object(tc) || !json_is_string(r->tool_name)) {
        return mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "tool_choice", "'tool_choice' must be "
                               "auto, required, none or {\"type\":\"function\",\"function\":"
                               "{\"name\":…}}");
    }
    r->tool_choice = MG_CHATREQ_CHOICE_TOOL;
    return MG_OK;
}

static int
read_params(struct mg_chatreq *r, int64_t default_max_tokens, struct mg_chatreq_err *e)
{
    json_t *n = json_object_get(r->root, "n"), *user = json_object_get(r->root, "user");
    int rc;

    if (json_is_number(n) && json_number_value(n) > 1) {
        return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, "n", "'n' greater than 1 is not "
                               "supported by this backend");
    }
    r->max_tokens = default_max_tokens;
    rc = opt_int(r->root, "max_completion_tokens", &r->max_tokens, e);
    if (rc == 0) {
        rc = opt_int(r->root, "max_tokens", &r->max_tokens, e);
    }
    if (rc < 0) {
        return rc;
    }
    if ((rc = opt_number(r->root, "temperature", &r->temperature, e)) != MG_OK
        || (rc = opt_number(r->root, "top_p", &r->top_p, e)) != MG_OK
        || (rc = read_stop(r, e)) != MG_OK || (rc = read_tools(r, e)) != MG_OK
        || (rc = read_tool_choice(r, e)) != MG_OK) {
        return rc;
    }
    r->parallel_off = json_is_false(json_object_get(r->root, "parallel_tool_calls"));
    r->user = json_is_string(user) ? user : NULL;
    r->stream = json_is_true(json_object_get(r->root, "stream"));
    return MG_OK;
}

/* The parse from a root value (its reference taken; NULL: the body is not JSON). */
static int
parse_root(struct mg_chatreq *r, json_t *root, int64_t default_max_tokens,
           const struct mg_chatreq_ops *ops, struct mg_chatreq_err *e)
{
    int rc;

    memset(r, 0, sizeof(*r));
    e->message[0] = e->param[0] = '\0';
    r->root = root;
    if (!json_is_object(r->root)) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "", "the body is not a JSON object");
    } else if ((rc = read_params(r, default_max_tokens, e)) == MG_OK) {
        rc = read_messages(r, ops, e);
    }
    if (rc != MG_OK) {
        mg_chatreq_deinit(r);
    }
    return rc;
}

int
mg_chatreq_parse(struct mg_chatreq *r, const char *body, size_t len, int64_t default_max_tokens,
                 const struct mg_chatreq_ops *ops, struct mg_chatreq_err *e)
{
    return parse_root(r, mg_jload(body, len, 0), default_max_tokens, ops, e);
}

int
mg_chatreq_parse_json(struct mg_chatreq *r, json_t *parsed, int64_t default_max_tokens,
                      const struct mg_chatreq_ops *ops, struct mg_chatreq_err *e)
{
    return parse_root(r, json_incref(parsed), default_max_tokens, ops, e);
}

void
mg_chatreq_deinit(struct mg_chatreq *r)
{
    json_decref(r->root);
    json_decref(r->system);
    json_decref(r->messages);
    json_decref(r->stop);
    free(r->tools);
    memset(r, 0, sizeof(*r));
}

int
mg_chatreq_tool_call(const json_t *id, const json_t *name, const json_t *input, size_t cap,
                     const char **out_id, const char **out_name, char **out_arguments)
{
    struct mg_buf args;
    int rc = MG_OK;

    *out_id = json_string_value(id);
    *out_name = json_string_value(name);
    if (*out_id == NULL || *out_name == NULL) {
        return MG_ERR;
    }
    mg_buf_init(&args, cap);
    if (input != NULL) {
        rc = mg_chatreq_dump(input, &args);
    }
    *out_arguments = mg_strdup(args.data != NULL ? args.data : "{}");
    mg_buf_deinit(&args);
    return rc;
}
