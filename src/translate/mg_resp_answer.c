/*
 * mg_resp_answer — a chat.completion as a Response object, and the writers of a Response and
 * its items that the stream translator shares (written by hand into the caller's capped buffer:
 * a stream writes them for every item, and a tree per event would cost allocations).
 */
#include <stdio.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_oai.h"
#include "mg_resp_int.h"

static int64_t
count(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) && mg_tokens_valid(json_integer_value(v)) ? json_integer_value(v)
                                                                         : -1;
}

void
mg_resp_usage_read(const json_t *usage, struct mg_resp_usage *u)
{
    u->input = count(usage, "prompt_tokens");
    u->output = count(usage, "completion_tokens");
    u->cached = count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    u->reasoning = count(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens");
}

void
mg_resp_item_id(const struct mg_resp_ctx *c, int kind, int n, char *buf, size_t size)
{
    snprintf(buf, size, "%s_mg%s_%d", kind == 'f' ? "fc" : "msg", c->hex, n);
}

void
mg_resp_call_id(const struct mg_resp_ctx *c, int n, char *buf, size_t size)
{
    snprintf(buf, size, "call_mg%.20s%04x", c->hex + 12, (unsigned)n & 0xffffu);
}

int
mg_resp_write_part(struct mg_buf *out, int refusal, const char *t, size_t n)
{
    int rc = mg_buf_adds(out, refusal ? "{\"type\":\"refusal\",\"refusal\":"
                                      : "{\"type\":\"output_text\",\"text\":");

    rc = rc == MG_OK ? mg_json_quote(out, t != NULL ? t : "", n) : rc;
    return rc == MG_OK ? mg_buf_adds(out, refusal ? "}" : ",\"annotations\":[],\"logprobs\":[]}")
                       : rc;
}

int
mg_resp_write_msg(struct mg_buf *out, const struct mg_resp_ctx *c, int n, const char *status,
                  const char *parts, size_t plen)
{
    char id[MG_RESP_ID_MAX + 16];
    int rc;

    mg_resp_item_id(c, 'm', n, id, sizeof(id));
    rc = mg_buf_adds(out, "{\"id\":\"");
    rc = rc == MG_OK ? mg_buf_adds(out, id) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"type\":\"message\",\"status\":\"") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, status) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"role\":\"assistant\",\"content\":[") : rc;
    rc = rc == MG_OK ? mg_buf_add(out, parts, plen) : rc;
    return rc == MG_OK ? mg_buf_adds(out, "]}") : rc;
}

int
mg_resp_write_fc(struct mg_buf *out, const struct mg_resp_ctx *c, int n, const char *status,
                 const char *call_id, size_t clen, const char *name, size_t nlen,
                 const char *args, size_t alen)
{
    char id[MG_RESP_ID_MAX + 16];
    int rc;

    mg_resp_item_id(c, 'f', n, id, sizeof(id));
    rc = mg_buf_adds(out, "{\"id\":\"");
    rc = rc == MG_OK ? mg_buf_adds(out, id) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"type\":\"function_call\",\"status\":\"") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, status) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"arguments\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, args != NULL ? args : "", alen) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"call_id\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, call_id, clen) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"name\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, name != NULL ? name : "", nlen) : rc;
    return rc == MG_OK ? mg_buf_adds(out, "}") : rc;
}

static int64_t z(int64_t v) { return v < 0 ? 0 : v; }

int
mg_resp_write_response(const struct mg_resp_ctx *c, const char *status, int64_t completed_at,
                       const char *err, size_t errlen, const char *incomplete,
                       const char *items, size_t ilen, const struct mg_resp_usage *u,
                       struct mg_buf *out)
{
    size_t start = out->len;
    int rc;

    rc = mg_buf_adds(out, "{\"id\":\"");
    rc = rc == MG_OK ? mg_buf_adds(out, c->id) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"object\":\"response\",\"created_at\":") : rc;
    rc = rc == MG_OK ? mg_buf_int(out, c->created) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"status\":\"") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, status) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "\",\"background\":false,\"completed_at\":") : rc;
    rc = rc == MG_OK ? (completed_at >= 0 ? mg_buf_int(out, completed_at)
                                          : mg_buf_adds(out, "null")) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"error\":") : rc;
    if (rc == MG_OK && err != NULL) {
        rc = mg_buf_adds(out, "{\"code\":\"server_error\",\"message\":");
        rc = rc == MG_OK ? mg_json_quote(out, err, errlen) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, "}") : rc;
    } else if (rc == MG_OK) {
        rc = mg_buf_adds(out, "null");
    }
    rc = rc == MG_OK ? (incomplete != NULL
                        ? mg_buf_printf(out, ",\"incomplete_details\":{\"reason\":\"%s\"}",
                                        incomplete)
                        : mg_buf_adds(out, ",\"incomplete_details\":null")) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"model\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, c->model, strlen(c->model)) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"output\":[") : rc;
    rc = rc == MG_OK ? mg_buf_add(out, items, ilen) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, "],") : rc;
    rc = rc == MG_OK ? mg_buf_add(out, c->echo.data, c->echo.len) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, c->store ? ",\"store\":true,\"usage\":"
                                                 : ",\"store\":false,\"usage\":") : rc;
    if (rc == MG_OK && u != NULL) {
        rc = mg_buf_adds(out, "{\"input_tokens\":");
        rc = rc == MG_OK ? mg_buf_int(out, z(u->input)) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"input_tokens_details\":{\"cached_tokens\":") : rc;
        rc = rc == MG_OK ? mg_buf_int(out, z(u->cached)) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, "},\"output_tokens\":") : rc;
        rc = rc == MG_OK ? mg_buf_int(out, z(u->output)) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"output_tokens_details\":{\"reasoning_tokens\":")
                         : rc;
        rc = rc == MG_OK ? mg_buf_int(out, z(u->reasoning)) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, "},\"total_tokens\":") : rc;
        rc = rc == MG_OK ? mg_buf_int(out, mg_tokens_add(u->input, u->output)) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, "}") : rc;
    } else if (rc == MG_OK) {
        rc = mg_buf_adds(out, "null");
    }
    rc = rc == MG_OK ? mg_buf_adds(out, "}") : rc;
    if (rc != MG_OK) {
        out->len = start;
        if (out->data != NULL) {
            out->data[start] = '\0';
        }
    }
    return rc;
}

/* The output items of a chat message, comma-separated, into items. */
static int
answer_items(struct mg_resp_ctx *c, const json_t *msg, const char *status, struct mg_buf *items)
{
    const json_t *content = json_object_get(msg, "content"), *refusal;
    const json_t *calls = json_object_get(msg, "tool_calls");
    struct mg_buf parts;
    size_t i;
    int rc = MG_OK, n = 0;

    refusal = json_object_get(msg, "refusal");
    mg_buf_init(&parts, items->cap);
    if (json_is_string(content) && json_string_length(content) > 0) {
        rc = mg_resp_write_part(&parts, 0, json_string_value(content),
                                json_string_length(content));
    }
    if (rc == MG_OK && json_is_string(refusal) && json_string_length(refusal) > 0) {
        rc = parts.len > 0 ? mg_buf_add(&parts, ",", 1) : MG_OK;
        rc = rc == MG_OK ? mg_resp_write_part(&parts, 1, json_string_value(refusal),
                                              json_string_length(refusal)) : rc;
    }
    if (rc == MG_OK && parts.len > 0) {
        rc = mg_resp_write_msg(items, c, n++, status, parts.data, parts.len);
    }
    mg_buf_deinit(&parts);
    for (i = 0; rc == MG_OK && i < json_array_size(calls); i++) {
        const json_t *call = json_array_get(calls, i), *fn = json_object_get(call, "function");
        const json_t *id = json_object_get(call, "id"), *name = json_object_get(fn, "name");
        const json_t *args = json_object_get(fn, "arguments");
        char cid[48];

        if (!json_is_string(name)) {
            return MG_ERR;
        }
        if (json_is_string(id) && json_string_length(id) > 0) {
            snprintf(cid, sizeof(cid), "%s", "");
        } else {
            mg_resp_call_id(c, n, cid, sizeof(cid));
        }
        rc = items->len > 0 ? mg_buf_add(items, ",", 1) : MG_OK;
        rc = rc == MG_OK ? mg_resp_write_fc(items, c, n++, "completed",
                                            cid[0] ? cid : json_string_value(id),
                                            cid[0] ? strlen(cid) : json_string_length(id),
                                            json_string_value(name), json_string_length(name),
                                            json_string_value(args), json_string_length(args))
                         : rc;
    }
    return rc;
}

/* The Response of a chat message, its finish and usage. */
static int
answer_of(struct mg_resp_ctx *c, const json_t *msg, const char *finish,
          const struct mg_resp_usage *ru, int64_t now, struct mg_buf *out)
{
    const char *incomplete = NULL;
    struct mg_buf items;
    int rc;

    if (!json_is_object(msg)) {
        return MG_ERR;
    }
    if (finish != NULL && strcmp(finish, "length") == 0) {
        incomplete = "max_output_tokens";
    } else if (finish != NULL && strcmp(finish, "content_filter") == 0) {
        incomplete = "content_filter";
    }
    mg_buf_init(&items, out->cap);
    rc = answer_items(c, msg, incomplete != NULL ? "incomplete" : "completed", &items);
    if (rc == MG_OK) {
        rc = mg_resp_write_response(c, incomplete != NULL ? "incomplete" : "completed",
                                    incomplete != NULL ? -1 : now, NULL, 0, incomplete,
                                    items.data, items.len, ru, out);
    }
    mg_buf_deinit(&items);
    return rc;
}

int
mg_resp_answer(struct mg_resp_ctx *c, const char *chat, size_t len, int64_t now,
               struct mg_buf *out, struct mg_usage *u)
{
    json_t *root = mg_jload(chat, len, 0);
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    struct mg_resp_usage ru;
    int rc;

    mg_resp_usage_read(json_object_get(root, "usage"), &ru);
    if (u != NULL) {
        u->input = ru.input;
        u->output = ru.output;
        u->cached = ru.cached;
        u->written = -1;
    }
    rc = answer_of(c, json_object_get(choice, "message"),
                   json_string_value(json_object_get(choice, "finish_reason")), &ru, now, out);
    json_decref(root);
    return rc;
}

int
mg_resp_answer_kept(struct mg_resp_ctx *c, const struct mg_oai_kept *k, int64_t now,
                    struct mg_buf *out, struct mg_usage *u)
{
    json_t *msg = mg_chatreq_kept_message(k);
    struct mg_resp_usage ru;
    struct mg_usage t;
    int rc;

    mg_oai_usage_totals(&k->usage, &t);
    ru.input = t.input;
    ru.output = t.output;
    ru.cached = k->usage.cache_read;
    ru.reasoning = -1;
    if (u != NULL) {
        *u = t;
    }
    rc = answer_of(c, msg, k->finish_reason, &ru, now, out);
    json_decref(msg);
    return rc;
}
