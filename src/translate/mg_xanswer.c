/*
 * mg_xanswer — a translating provider's whole answer into a chat.completion, with the provider's
 * names from a table (see mg_xanswer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mg_chatreq.h"
#include "mg_xanswer.h"

const char *
mg_xanswer_finish(const struct mg_xanswer_names *nm, const char *stop_reason)
{
    size_t i;

    for (i = 0; stop_reason != NULL && i < nm->nfinish; i++) {
        if (strcmp(stop_reason, nm->finish[i][0]) == 0) {
            return nm->finish[i][1];
        }
    }
    return "stop";
}

/* Sets *v to the member key of usage when it is a usage number to believe (else: absent). */
static void
read_count(json_t *usage, const char *key, int64_t *v)
{
    json_t *j = json_object_get(usage, key);

    if (json_is_integer(j) && mg_tokens_valid(json_integer_value(j))) {
        *v = json_integer_value(j);
    }
}

void
mg_xanswer_usage(const struct mg_xanswer_names *nm, json_t *usage, struct mg_oai_usage *u)
{
    read_count(usage, nm->usage_keys[0], &u->input);
    read_count(usage, nm->usage_keys[1], &u->output);
    read_count(usage, nm->usage_keys[2], &u->cache_read);
    read_count(usage, nm->usage_keys[3], &u->cache_write);
}

/* The block's tool call, or NULL when it is not one. */
static json_t *
tool_call(const struct mg_xanswer_names *nm, json_t *b, const char *type)
{
    if (nm->tool_type != NULL) {
        return type != NULL && strcmp(type, nm->tool_type) == 0 ? b : NULL;
    }
    return json_object_get(b, nm->tool_member);
}

/* Reads the content blocks: text joined into text, tool calls into calls. 1 when no text. */
static int
read_content(const struct mg_xanswer_names *nm, json_t *content, struct mg_buf *text,
             struct mg_oai_tool_call *calls, size_t *ncalls)
{
    size_t i;
    json_t *b, *tu;
    int rc = MG_OK, has_text = 0;

    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        json_t *t = json_object_get(b, "text");

        if ((nm->text_type == NULL || (type != NULL && strcmp(type, nm->text_type) == 0)) &&
            json_is_string(t)) {
            has_text = 1;
            rc = mg_buf_add(text, json_string_value(t), json_string_length(t));
        } else if ((tu = tool_call(nm, b, type)) != NULL) {
            struct mg_oai_tool_call *c = &calls[(*ncalls)++];

            rc = mg_chatreq_tool_call(json_object_get(tu, nm->tool_id),
                                      json_object_get(tu, "name"), json_object_get(tu, "input"),
                                      text->cap, &c->id, &c->name, &c->arguments);
        }
        if (rc != MG_OK) {
            return rc;
        }
    }
    return has_text ? MG_OK : 1;
}

int
mg_xanswer_write(const struct mg_xanswer_names *nm, json_t *root, json_t *content,
                 const char *id, const char *client_model, int64_t now, struct mg_buf *out,
                 struct mg_usage *u, struct mg_oai_kept *keep)
{
    struct mg_oai_answer a;
    struct mg_oai_tool_call *calls;
    struct mg_buf text;
    size_t i;
    int rc;

    u->input = u->output = u->cached = u->written = -1;
    memset(&a, 0, sizeof(a));
    calls = mg_calloc(json_array_size(content) + 1, sizeof(*calls));
    mg_buf_init(&text, out->cap);
    rc = read_content(nm, content, &text, calls, &a.ncalls);
    if (rc >= 0) {
        a.id = id != NULL ? id : "chatcmpl-modelgate";
        a.created = now;
        a.model = client_model;
        a.content = rc == MG_OK ? (text.data != NULL ? text.data : "") : NULL;
        a.content_len = text.len;
        a.calls = calls;
        a.finish_reason = mg_xanswer_finish(nm, json_string_value(json_object_get(root,
                                                                                  nm->stop_key)));
        mg_oai_usage_init(&a.usage);
        mg_xanswer_usage(nm, json_object_get(root, "usage"), &a.usage);
        rc = mg_oai_answer_write(&a, out);
        mg_oai_usage_totals(&a.usage, u);
        if (rc == MG_OK && keep != NULL) {
            mg_oai_kept_set(keep, &a);
        }
    }
    for (i = 0; i < a.ncalls; i++) {
        free(calls[i].arguments);
    }
    free(calls);
    mg_buf_deinit(&text);
    return rc;
}
