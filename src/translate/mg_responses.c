/*
 * mg_responses — a Responses request read once: what is refused before any translation
 * (background, conversation, prompt, context_management), and what every answer echoes
 * (instructions, tools, text, metadata, …), rendered once so that each Response and each
 * stream event that carries one only copies it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_json.h"
#include "mg_resp_int.h"

/* "key":value, the request's value when it has one that is not null, else dflt (JSON text). */
static int
echo_add(struct mg_buf *out, const json_t *root, const char *key, const char *dflt)
{
    json_t *v = json_object_get(root, key);
    int rc = out->len > 0 ? mg_buf_add(out, ",", 1) : MG_OK;

    rc = rc == MG_OK ? mg_json_quote(out, key, strlen(key)) : rc;
    rc = rc == MG_OK ? mg_buf_add(out, ":", 1) : rc;
    if (v != NULL && !json_is_null(v)) {
        return rc == MG_OK ? mg_chatreq_dump(v, out) : rc;
    }
    return rc == MG_OK ? mg_buf_adds(out, dflt) : rc;
}

/*
 * The members every Response of this request echoes (written once, as text: the answer and
 * every stream event that carries the Response put them in as they are).
 */
static int
render_echo(struct mg_resp_ctx *c)
{
    struct mg_buf *out = &c->echo;
    json_t *v, *text;
    int rc;

    rc = echo_add(out, c->root, "instructions", "null");
    rc = rc == MG_OK ? echo_add(out, c->root, "max_output_tokens", "null") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "parallel_tool_calls", "true") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "previous_response_id", "null") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"reasoning\":{\"effort\":") : rc;
    v = json_object_get(json_object_get(c->root, "reasoning"), "effort");
    rc = rc == MG_OK ? (json_is_string(v) ? mg_chatreq_dump(v, out) : mg_buf_adds(out, "null"))
                     : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"summary\":null}") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "temperature", "null") : rc;
    v = json_object_get(c->root, "text");
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"text\":") : rc;
    if (json_is_object(v) && json_is_object(json_object_get(v, "format"))) {
        rc = rc == MG_OK ? mg_chatreq_dump(v, out) : rc;
    } else {   /* the text settings given, with the default format */
        text = json_is_object(v) ? json_deep_copy(v) : json_object();
        json_object_set_new(text, "format", json_pack("{s:s}", "type", "text"));
        rc = rc == MG_OK ? mg_chatreq_dump(text, out) : rc;
        json_decref(text);
    }
    rc = rc == MG_OK ? echo_add(out, c->root, "tool_choice", "\"auto\"") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "tools", "[]") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "top_p", "null") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"truncation\":\"disabled\"") : rc;
    rc = rc == MG_OK ? echo_add(out, c->root, "user", "null") : rc;
    return rc == MG_OK ? echo_add(out, c->root, "metadata", "{}") : rc;
}

static int
refuse_present(const json_t *root, const char *key, struct mg_chatreq_err *e)
{
    const json_t *v = json_object_get(root, key);

    if (v == NULL || json_is_null(v) || json_is_false(v)) {
        return MG_OK;
    }
    return mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, key,
                           "'%s' is not supported by this model's backend", key);
}

struct mg_resp_ctx *
mg_resp_ctx_create(const char *body, size_t len, const char *id_hex32, int64_t now,
                   struct mg_chatreq_err *e, int *rcp)
{
    static const char *const refused[] = {
        "background", "conversation", "prompt", "context_management"
    };
    struct mg_resp_ctx *c;
    json_t *root, *v;
    size_t i;
    int rc = MG_OK;

    root = mg_jload(body, len, MG_JLOAD_NO_DUPLICATES);
    if (!json_is_object(root)) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "", "The body is not a JSON object.");
    } else if (!json_is_string(json_object_get(root, "model"))) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "model", "'model' must be a string.");
    } else if ((v = json_object_get(root, "input")) != NULL && !json_is_string(v)
               && !json_is_array(v)) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "input",
                             "'input' must be a string or an array of items.");
    } else if ((v = json_object_get(root, "instructions")) != NULL && !json_is_string(v)
               && !json_is_null(v)) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "instructions",
                             "'instructions' must be a string.");
    } else if ((v = json_object_get(root, "previous_response_id")) != NULL
               && !json_is_string(v) && !json_is_null(v)) {
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "previous_response_id",
                             "'previous_response_id' must be a string.");
    }
    for (i = 0; rc == MG_OK && i < MG_ARRAY_LEN(refused); i++) {
        rc = refuse_present(root, refused[i], e);
    }
    if (rc != MG_OK) {
        json_decref(root);
        if (rcp != NULL) {
            *rcp = rc;
        }
        return NULL;
    }
    c = mg_calloc(1, sizeof(*c));
    c->root = root;
    snprintf(c->hex, sizeof(c->hex), "%.32s", id_hex32 != NULL ? id_hex32 : "");
    snprintf(c->id, sizeof(c->id), "resp_mg%s", c->hex);
    c->model = json_string_value(json_object_get(root, "model"));
    c->previous = json_string_value(json_object_get(root, "previous_response_id"));
    c->created = now;
    c->stream = json_is_true(json_object_get(root, "stream"));
    c->store_req = !json_is_false(json_object_get(root, "store"));
    c->store = c->store_req;
    mg_buf_init(&c->echo, len + 4096);
    if (render_echo(c) != MG_OK) {
        mg_resp_ctx_destroy(c);
        if (rcp != NULL) {
            *rcp = MG_ETOOBIG;
        }
        mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "", "The request is too large.");
        return NULL;
    }
    if (rcp != NULL) {
        *rcp = MG_OK;
    }
    return c;
}

void
mg_resp_ctx_destroy(struct mg_resp_ctx *c)
{
    if (c == NULL) {
        return;
    }
    json_decref(c->root);
    json_decref(c->items);
    mg_buf_deinit(&c->echo);
    free(c);
}

const char *mg_resp_ctx_id(const struct mg_resp_ctx *c) { return c->id; }
const char *mg_resp_ctx_model(const struct mg_resp_ctx *c) { return c->model; }
int mg_resp_ctx_stream(const struct mg_resp_ctx *c) { return c->stream; }
int mg_resp_ctx_store(const struct mg_resp_ctx *c) { return c->store_req; }
void mg_resp_ctx_set_store(struct mg_resp_ctx *c, int store) { c->store = store != 0; }
const char *mg_resp_ctx_previous(const struct mg_resp_ctx *c) { return c->previous; }
int mg_resp_ctx_code(const struct mg_resp_ctx *c) { return c->code; }

