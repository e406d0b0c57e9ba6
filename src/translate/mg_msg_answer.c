/*
 * mg_msg_answer — a chat.completion -> an Anthropic Message (SPEC "chat answer → Anthropic
 * Message"), and error bodies in Anthropic's shape. The stop reason and usage rules are shared
 * with the stream translator (mg_msg_stream.c) through mg_msg_ctx.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_jload.h"
#include "mg_oai.h"
#include "mg_json.h"
#include "mg_messages.h"
#include "mg_msg_ctx.h"

/* ---- shared with the stream ---- */

const char *
mg_msg_stop_reason(const char *finish, int matched)
{
    if (finish == NULL) {
        return "end_turn";
    }
    if (strcmp(finish, "length") == 0) {
        return "max_tokens";
    }
    if (strcmp(finish, "tool_calls") == 0 || strcmp(finish, "function_call") == 0) {
        return "tool_use";
    }
    if (strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }
    return matched ? "stop_sequence" : "end_turn";
}

int
mg_msg_stop_sequence(const struct mg_msg_ctx *c, json_t *backend_stop, const char **seq,
                     size_t *n)
{
    const char *s = json_string_value(backend_stop);

    *seq = NULL;
    *n = 0;
    if (s == NULL) {
        return 0;   /* a token id (vLLM) or nothing: no stop sequence matched */
    }
    if (strcmp(s, "stop_sequence") != 0) {
        *seq = s;   /* the string that matched */
        *n = json_string_length(backend_stop);
    } else if (c->stop_one != NULL) {
        *seq = json_string_value(c->stop_one);   /* one matched: the request's only one */
        *n = json_string_length(c->stop_one);
    }
    return 1;
}

/* A count the backend reported, or -1. */
static int64_t
count(json_t *v)
{
    return json_is_integer(v) && mg_tokens_valid(json_integer_value(v))
           ? (int64_t)json_integer_value(v) : -1;
}

void
mg_msg_usage_read(json_t *usage, struct mg_msg_usage *u)
{
    json_t *d = json_object_get(usage, "prompt_tokens_details");
    int64_t v;

    if (!json_is_object(usage)) {
        return;
    }
    if ((v = count(json_object_get(usage, "prompt_tokens"))) >= 0) {
        u->prompt = v;
    }
    if ((v = count(json_object_get(usage, "completion_tokens"))) >= 0) {
        u->completion = v;
    }
    if ((v = count(json_object_get(d, "cached_tokens"))) >= 0) {
        u->cached = v;
    }
    v = count(json_object_get(usage, "cache_creation_input_tokens"));
    v = v >= 0 ? v : count(json_object_get(d, "cache_creation_tokens"));
    if (v >= 0) {
        u->written = v;
    }
}

static int64_t
known(int64_t v)
{
    return v >= 0 ? v : 0;
}

int
mg_msg_usage_write(const struct mg_msg_usage *u, struct mg_buf *out)
{
    int64_t input = known(u->prompt) - known(u->cached) - known(u->written);

    return mg_buf_printf(out, "{\"input_tokens\":%lld,\"cache_creation_input_tokens\":%lld,"
                         "\"cache_read_input_tokens\":%lld,\"output_tokens\":%lld}",
                         (long long)(input > 0 ? input : 0), (long long)known(u->written),
                         (long long)known(u->cached), (long long)known(u->completion));
}

/* ---- the answer ---- */

/* The answer's text: content (a string, or text parts) then refusal. */
static int
answer_text(json_t *msg, struct mg_buf *text)
{
    json_t *content = json_object_get(msg, "content"), *refusal = json_object_get(msg, "refusal");
    json_t *part;
    size_t i;
    int rc = MG_OK;

    if (json_is_string(content)) {
        rc = mg_buf_add(text, json_string_value(content), json_string_length(content));
    }
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (rc == MG_OK && json_is_string(t)) {
            rc = mg_buf_add(text, json_string_value(t), json_string_length(t));
        }
    }
    if (rc == MG_OK && json_is_string(refusal)) {
        rc = mg_buf_add(text, json_string_value(refusal), json_string_length(refusal));
    }
    return rc;
}

/* A tool call -> a tool_use block appended to content. MG_ERR when malformed. */
static int
tool_block(const struct mg_msg_ctx *c, json_t *call, size_t i, int cut, json_t *content)
{
    json_t *fn = json_object_get(call, "function"), *name = json_object_get(fn, "name");
    json_t *id = json_object_get(call, "id"), *args = json_object_get(fn, "arguments");
    json_t *input = NULL, *b;
    char gen[64];

    if (!json_is_string(name)) {
        return MG_ERR;
    }
    if (json_is_string(args) && json_string_length(args) > 0) {
        input = mg_jload(json_string_value(args), json_string_length(args), 0);
    } else if (args == NULL || json_is_null(args) || json_is_string(args)) {
        input = json_object();
    }
    if (!json_is_object(input)) {
        json_decref(input);
        if (!cut) {
            return MG_ERR;
        }
        input = json_object();   /* cut by max_tokens: the call is unfinished */
    }
    if (!json_is_string(id) || json_string_length(id) == 0) {
        snprintf(gen, sizeof(gen), "toolu_mg%.24s_%zu", c->id + 6, i);
        id = json_string(gen);
    } else {
        json_incref(id);
    }
    b = json_pack("{s:s,s:o,s:O,s:o}", "type", "tool_use", "id", id, "name", name,
                  "input", input);
    json_array_append_new(content, b);
    return MG_OK;
}

static int answer_root(struct mg_msg_ctx *c, json_t *root, size_t len, struct mg_buf *out,
                       struct mg_usage *u);

int
mg_msg_answer(struct mg_msg_ctx *c, const char *chat, size_t len, struct mg_buf *out,
              struct mg_usage *u)
{
    return answer_root(c, mg_jload(chat, len, 0), len, out, u);
}

int
mg_msg_answer_kept(struct mg_msg_ctx *c, const struct mg_oai_kept *k, struct mg_buf *out,
                   struct mg_usage *u)
{
    json_t *msg = mg_chatreq_kept_message(k), *root;
    struct mg_buf usage;

    mg_buf_init(&usage, 512);
    mg_oai_usage_json(&k->usage, &usage);   /* the chat usage the text would have carried */
    root = mg_chatreq_obj("choices", json_pack("[{s:o,s:s}]", "message", msg, "finish_reason",
                                               k->finish_reason),
                          "usage", mg_jload(usage.data, usage.len, 0), NULL);
    mg_buf_deinit(&usage);
    return answer_root(c, root, k->content_len + 1, out, u);
}

/* The Message of a chat answer already read (root's reference taken; NULL: not JSON). */
static int
answer_root(struct mg_msg_ctx *c, json_t *root, size_t len, struct mg_buf *out,
            struct mg_usage *u)
{
    json_t *ch = json_array_get(json_object_get(root, "choices"), 0);
    json_t *msg = json_object_get(ch, "message"), *calls = json_object_get(msg, "tool_calls");
    json_t *content, *call, *m, *stop = json_object_get(ch, "stop_reason");
    const char *finish = json_string_value(json_object_get(ch, "finish_reason")), *seq = NULL;
    int matched = 0;
    struct mg_msg_usage mu = {-1, -1, -1, -1};
    struct mg_buf text, usage;
    size_t i, seq_len = 0;
    int rc = MG_OK;

    u->input = u->output = u->cached = u->written = -1;
    if (!json_is_object(msg)) {
        json_decref(root);
        return MG_ERR;
    }
    mg_msg_usage_read(json_object_get(root, "usage"), &mu);
    u->input = mu.prompt;
    u->output = mu.completion;
    u->cached = mu.cached;
    u->written = mu.written;
    content = json_array();
    mg_buf_init(&text, len + 1);
    rc = answer_text(msg, &text);
    if (rc == MG_OK && text.len > 0) {
        json_array_append_new(content, json_pack("{s:s,s:s%}", "type", "text", "text",
                                                 text.data, text.len));
    }
    json_array_foreach(calls, i, call) {
        if (rc == MG_OK) {
            rc = tool_block(c, call, i, finish != NULL && strcmp(finish, "length") == 0,
                            content);
        }
    }
    if (finish != NULL && strcmp(finish, "stop") == 0) {
        matched = mg_msg_stop_sequence(c, stop, &seq, &seq_len);
    }
    mg_buf_init(&usage, 512);
    rc = rc ? rc : mg_msg_usage_write(&mu, &usage);
    m = json_pack("{s:s,s:s,s:s,s:s%,s:o,s:s,s:o}", "id", c->id, "type", "message",
                  "role", "assistant", "model", c->model, c->model_len, "content", content,
                  "stop_reason", mg_msg_stop_reason(finish, matched),
                  "stop_sequence", seq != NULL ? json_stringn(seq, seq_len) : json_null());
    if (rc == MG_OK && m != NULL) {
        json_object_set_new(m, "usage", mg_jload(usage.data, usage.len, 0));
        rc = mg_chatreq_dump(m, out);
    }
    rc = rc == MG_OK && m == NULL ? MG_ERR : rc;
    json_decref(m);
    mg_buf_deinit(&usage);
    mg_buf_deinit(&text);
    json_decref(root);
    return rc;
}

/* ---- errors ---- */

const char *
mg_msg_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default:  return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

int
mg_msg_error_body(const char *type, const char *msg, size_t n, struct mg_buf *out)
{
    size_t len = out->len;
    int rc = mg_buf_adds(out, "{\"type\":\"error\",\"error\":{\"type\":");

    rc = rc ? rc : mg_json_quote(out, type, strlen(type));
    rc = rc ? rc : mg_buf_adds(out, ",\"message\":");
    rc = rc ? rc : mg_json_quote(out, msg, n);
    rc = rc ? rc : mg_buf_adds(out, "}}");
    if (rc != MG_OK) {
        out->len = len;
        if (out->data != NULL) {
            out->data[len] = '\0';
        }
    }
    return rc;
}

int
mg_msg_error(int status, const char *body, size_t len, struct mg_buf *out)
{
    json_t *root = mg_jload(body, len, 0), *err = json_object_get(root, "error");
    json_t *msg = json_object_get(err, "message");
    char generic[96];
    int rc;

    msg = json_is_string(msg) ? msg : json_object_get(root, "message");
    msg = json_is_string(msg) ? msg : json_is_string(err) ? err : NULL;
    if (msg != NULL) {
        rc = mg_msg_error_body(mg_msg_error_type(status), json_string_value(msg),
                               json_string_length(msg), out);
    } else {
        snprintf(generic, sizeof(generic), "the backend answered with HTTP %d", status);
        rc = mg_msg_error_body(mg_msg_error_type(status), generic, strlen(generic), out);
    }
    json_decref(root);
    return rc;
}
