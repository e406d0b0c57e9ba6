/*
 * mg_resp_req — a Responses request (read by mg_resp_ctx) turned into a chat request.
 *
 * The walk keeps two results: the chat messages, and the input as items (strings wrapped,
 * references resolved, the stored chain in front) that the store keeps for the next turn's
 * previous_response_id. Hosted tools the chat hub cannot run are dropped or refused as the rule
 * says; everything else the chat API lacks is refused with unsupported_parameter so that another
 * (native) entry may serve.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_resp_int.h"

#define MAX_ITEMS 100000   /* input items of one request, stored chain included */

/* ---- input items -> chat messages ---- */

struct walk {
    struct mg_resp_ctx *c;
    json_t             *msgs;     /* chat messages */
    json_t             *items;    /* normalized input */
    const json_t     *(*lookup)(void *arg, const char *id);
    void               *arg;
    struct mg_chatreq_err *e;
    struct mg_buf       acc;      /* text being joined */
};

static int
unsupported(struct walk *w, const char *where, const char *what, const char *name)
{
    w->c->code = MG_RESP_CODE_UNSUPPORTED;
    return mg_chatreq_fail(w->e, MG_CHATREQ_EUNSUPPORTED, where,
                           "%s '%s' is not supported by this model's backend.", what, name);
}

static int
invalid(struct walk *w, const char *where, const char *msg)
{
    return mg_chatreq_fail(w->e, MG_CHATREQ_EINVAL, where, "Invalid '%s': %s", where, msg);
}

static const char *
type_of(const json_t *item)
{
    const char *t = json_string_value(json_object_get(item, "type"));
    return t != NULL ? t : "";
}

/* One content part of a message: a chat part appended to parts, or its text to w->acc. */
static int
part_add(struct walk *w, const json_t *p, const char *where, json_t *parts)
{
    const char *t = type_of(p);
    const json_t *txt;

    if (strcmp(t, "input_text") == 0 || strcmp(t, "output_text") == 0
        || strcmp(t, "refusal") == 0) {
        txt = json_object_get(p, strcmp(t, "refusal") == 0 ? "refusal" : "text");
        if (!json_is_string(txt)) {
            return invalid(w, where, "a text part needs a string.");
        }
        if (parts != NULL) {
            return json_array_append_new(parts, mg_chatreq_obj("type", MG_JSTR("text"), "text",
                                                               json_incref((json_t *)txt), NULL)) == 0 ? MG_OK : MG_ERR;
        }
        return mg_buf_add(&w->acc, json_string_value(txt), json_string_length(txt)) == MG_OK
               ? MG_OK : mg_chatreq_fail(w->e, MG_CHATREQ_EINVAL, where, "%s is too long", where);
    }
    if (strcmp(t, "input_image") == 0) {
        const json_t *url = json_object_get(p, "image_url");
        const json_t *detail = json_object_get(p, "detail");
        json_t *iu;

        if (!json_is_string(url)) {
            return unsupported(w, where, "Content part", json_object_get(p, "file_id") != NULL
                                                        ? "input_image with file_id" : t);
        }
        if (parts == NULL) {
            return invalid(w, where, "an image is only allowed in a user message.");
        }
        iu = mg_chatreq_obj("url", json_incref((json_t *)url), NULL);
        if (json_is_string(detail)) {
            json_object_set(iu, "detail", (json_t *)detail);
        }
        return json_array_append_new(parts, mg_chatreq_obj("type", MG_JSTR("image_url"),
                                                           "image_url", iu, NULL)) == 0 ? MG_OK : MG_ERR;
    }
    return unsupported(w, where, "Content part", t[0] != '\0' ? t : "(no type)");
}

/* The assistant message the next tool call joins: the last message if it is the assistant's. */
static json_t *
assistant_tail(struct walk *w)
{
    size_t n = json_array_size(w->msgs);
    json_t *last = n > 0 ? json_array_get(w->msgs, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));

    if (role != NULL && strcmp(role, "assistant") == 0) {
        return last;
    }
    last = mg_chatreq_obj("role", MG_JSTR("assistant"), "content", json_null(), NULL);
    json_array_append_new(w->msgs, last);
    return last;
}

static int
message_add(struct walk *w, const json_t *item, const char *where)
{
    const char *role = json_string_value(json_object_get(item, "role"));
    const json_t *content = json_object_get(item, "content");
    json_t *parts = NULL, *m;
    char pw[160];
    size_t i;
    int rc = MG_OK, user;

    if (role == NULL || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0
                         && strcmp(role, "system") != 0 && strcmp(role, "developer") != 0)) {
        return invalid(w, where, "'role' must be user, assistant, system or developer.");
    }
    user = strcmp(role, "user") == 0;
    if (json_is_string(content)) {
        m = mg_chatreq_obj("role", MG_JSTR(role[0] == 'd' ? "system" : role), "content",
                           json_incref((json_t *)content), NULL);
        return json_array_append_new(w->msgs, m) == 0 ? MG_OK : MG_ERR;
    }
    if (!json_is_array(content)) {
        return invalid(w, where, "'content' must be a string or an array of parts.");
    }
    mg_buf_reset(&w->acc);
    if (user) {
        parts = json_array();
    }
    for (i = 0; rc == MG_OK && i < json_array_size(content); i++) {
        snprintf(pw, sizeof(pw), "%s.content[%zu]", where, i);
        rc = part_add(w, json_array_get(content, i), pw, parts);
    }
    if (rc != MG_OK) {
        json_decref(parts);
        return rc;
    }
    m = mg_chatreq_obj("role", MG_JSTR(role[0] == 'd' ? "system" : role), NULL);
    json_object_set_new(m, "content", user ? parts
                        : json_stringn(w->acc.data != NULL ? w->acc.data : "", w->acc.len));
    return json_array_append_new(w->msgs, m) == 0 ? MG_OK : MG_ERR;
}

static int
call_add(struct walk *w, const json_t *item, const char *where)
{
    const json_t *id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    const json_t *args = json_object_get(item, "arguments");
    json_t *m, *calls;

    if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args)) {
        return invalid(w, where, "a function_call needs call_id, name and arguments strings.");
    }
    m = assistant_tail(w);
    if ((calls = json_object_get(m, "tool_calls")) == NULL) {
        calls = json_array();
        json_object_set_new(m, "tool_calls", calls);
    }
    return json_array_append_new(calls, mg_chatreq_obj(
                "id", json_incref((json_t *)id), "type", MG_JSTR("function"), "function",
                mg_chatreq_obj("name", json_incref((json_t *)name), "arguments",
                               json_incref((json_t *)args), NULL), NULL)) == 0 ? MG_OK : MG_ERR;
}

static int
output_add(struct walk *w, const json_t *item, const char *where)
{
    const json_t *id = json_object_get(item, "call_id"), *out = json_object_get(item, "output");
    json_t *text;
    char pw[160];
    size_t i;

    if (!json_is_string(id)) {
        return invalid(w, where, "a function_call_output needs a call_id string.");
    }
    if (json_is_string(out)) {
        text = json_incref((json_t *)out);
    } else if (json_is_array(out)) {
        mg_buf_reset(&w->acc);
        for (i = 0; i < json_array_size(out); i++) {
            const json_t *p = json_array_get(out, i);
            int rc;

            snprintf(pw, sizeof(pw), "%s.output[%zu]", where, i);
            if (strcmp(type_of(p), "input_text") != 0) {
                return unsupported(w, pw, "Tool output part", type_of(p));
            }
            if ((rc = part_add(w, p, pw, NULL)) != MG_OK) {
                return rc;
            }
        }
        text = json_stringn(w->acc.data != NULL ? w->acc.data : "", w->acc.len);
    } else {
        return invalid(w, where, "'output' must be a string or an array of parts.");
    }
    return json_array_append_new(w->msgs, json_pack("{s:s,s:O,s:o}", "role", "tool",
                                                    "tool_call_id", id, "content", text)) == 0
           ? MG_OK : MG_ERR;
}

static int
item_add(struct walk *w, const json_t *item, const char *where, int depth)
{
    const char *t = type_of(item);
    int rc;

    if (!json_is_object(item)) {
        return invalid(w, where, "an item must be an object.");
    }
    if (t[0] == '\0' && json_object_get(item, "role") != NULL) {
        t = "message";
    }
    if (strcmp(t, "item_reference") == 0 && depth == 0) {
        const char *id = json_string_value(json_object_get(item, "id"));
        const json_t *found = id != NULL && w->lookup != NULL ? w->lookup(w->arg, id) : NULL;

        if (found == NULL) {
            w->c->code = MG_RESP_CODE_ITEM_MISSING;
            return mg_chatreq_fail(w->e, MG_CHATREQ_EINVAL, where, "Item with id '%s' not found.",
                                   id != NULL ? id : "");
        }
        return item_add(w, found, where, 1);
    }
    if (strcmp(t, "message") == 0) {
        rc = message_add(w, item, where);
    } else if (strcmp(t, "function_call") == 0) {
        rc = call_add(w, item, where);
    } else if (strcmp(t, "function_call_output") == 0) {
        rc = output_add(w, item, where);
    } else if (strcmp(t, "reasoning") == 0) {
        return MG_OK;   /* dropped, and not kept for the next turn */
    } else {
        return unsupported(w, where, "Item type", t[0] != '\0' ? t : "(no type)");
    }
    if (rc == MG_OK) {
        json_t *copy = json_deep_copy(item);

        if (json_object_get(copy, "type") == NULL) {
            json_object_set_new(copy, "type", json_string("message"));
        }
        json_array_append_new(w->items, copy);
    }
    return rc;
}

/* ---- tools ---- */

struct tools {
    json_t        *chat;       /* chat tools */
    struct mg_buf *dropped;
    int            refuse;
};

static int
hosted(struct walk *w, struct tools *t, const char *type, const char *where)
{
    const char *d;
    size_t n = strlen(type);

    if (t->refuse) {
        w->c->code = MG_RESP_CODE_UNSUPPORTED;
        return mg_chatreq_fail(w->e, MG_CHATREQ_EUNSUPPORTED, "tools",
                               "Tool type '%s' (%s) is not supported by this model's backend.",
                               type, where);
    }
    if (t->dropped == NULL) {
        return MG_OK;
    }
    /* each type once */
    for (d = t->dropped->data; d != NULL && *d != '\0';) {
        const char *comma = strchr(d, ',');
        size_t l = comma != NULL ? (size_t)(comma - d) : strlen(d);

        if (l == n && memcmp(d, type, n) == 0) {
            return MG_OK;
        }
        d = comma != NULL ? comma + 1 : d + l;
    }
    if (t->dropped->len > 0 && mg_buf_add(t->dropped, ",", 1) != MG_OK) {
        return MG_ETOOBIG;
    }
    return mg_buf_add(t->dropped, type, n);
}

static int
function_tool(struct walk *w, struct tools *t, const json_t *tool, const char *where)
{
    static const char *const keys[] = { "description", "parameters", "strict" };
    const json_t *name = json_object_get(tool, "name");
    json_t *fn;
    size_t i;

    if (!json_is_string(name)) {
        return invalid(w, where, "a function tool needs a name.");
    }
    fn = json_pack("{s:O}", "name", name);
    for (i = 0; i < MG_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(tool, keys[i]);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(fn, keys[i], v);
        }
    }
    return json_array_append_new(t->chat, json_pack("{s:s,s:o}", "type", "function",
                                                    "function", fn)) == 0 ? MG_OK : MG_ERR;
}

static int
tools_add(struct walk *w, struct tools *t, const json_t *tools)
{
    char where[64], mw[96];
    size_t i, j;
    int rc = MG_OK;

    if (tools != NULL && !json_is_array(tools) && !json_is_null(tools)) {
        return invalid(w, "tools", "must be an array.");
    }
    for (i = 0; rc == MG_OK && i < json_array_size(tools); i++) {
        const json_t *tool = json_array_get(tools, i), *members;
        const char *type = type_of(tool);

        snprintf(where, sizeof(where), "tools[%zu]", i);
        if (strcmp(type, "function") == 0) {
            rc = function_tool(w, t, tool, where);
        } else if (strcmp(type, "namespace") == 0) {
            members = json_object_get(tool, "tools");
            for (j = 0; rc == MG_OK && j < json_array_size(members); j++) {
                const json_t *m = json_array_get(members, j);

                snprintf(mw, sizeof(mw), "%s.tools[%zu]", where, j);
                rc = strcmp(type_of(m), "function") == 0 ? function_tool(w, t, m, mw)
                     : hosted(w, t, type_of(m)[0] != '\0' ? type_of(m) : "(no type)", mw);
            }
        } else {
            rc = hosted(w, t, type[0] != '\0' ? type : "(no type)", where);
        }
    }
    return rc;
}

/* Keeps the chat tools named in an allowed_tools list. */
static void
tools_keep(json_t *chat, const json_t *allowed)
{
    size_t i = 0, j;

    while (i < json_array_size(chat)) {
        const char *name = json_string_value(json_object_get(
            json_object_get(json_array_get(chat, i), "function"), "name"));
        int keep = 0;

        for (j = 0; j < json_array_size(allowed) && !keep; j++) {
            const char *n = json_string_value(json_object_get(json_array_get(allowed, j),
                                                              "name"));
            keep = n != NULL && name != NULL && strcmp(n, name) == 0;
        }
        if (keep) {
            i++;
        } else {
            json_array_remove(chat, i);
        }
    }
}

/* tool_choice: the chat value (new reference), or NULL with e filled. */
static json_t *
choice_of(struct walk *w, const json_t *tc, json_t *chat)
{
    const char *s = json_string_value(tc), *type = type_of(tc);

    if (s != NULL && (strcmp(s, "none") == 0 || strcmp(s, "auto") == 0
                      || strcmp(s, "required") == 0)) {
        return json_string(s);
    }
    if (json_is_object(tc) && strcmp(type, "function") == 0
        && json_is_string(json_object_get(tc, "name"))) {
        return json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                         json_object_get(tc, "name"));
    }
    if (json_is_object(tc) && strcmp(type, "allowed_tools") == 0) {
        const char *mode = json_string_value(json_object_get(tc, "mode"));

        if (mode == NULL || (strcmp(mode, "auto") != 0 && strcmp(mode, "required") != 0)) {
            invalid(w, "tool_choice.mode", "must be auto or required.");
            return NULL;
        }
        tools_keep(chat, json_object_get(tc, "tools"));
        return json_string(mode);
    }
    unsupported(w, "tool_choice", "tool_choice", s != NULL ? s : type[0] ? type : "(form)");
    return NULL;
}

/* ---- the other parameters ---- */

static int
text_add(struct walk *w, json_t *chat, const json_t *text)
{
    const json_t *fmt = json_object_get(text, "format");
    const json_t *verb = json_object_get(text, "verbosity");
    const char *type = type_of(fmt);

    if (json_is_string(verb)) {
        json_object_set(chat, "verbosity", (json_t *)verb);
    }
    if (fmt == NULL || json_is_null(fmt) || strcmp(type, "text") == 0) {
        return MG_OK;
    }
    if (strcmp(type, "json_object") == 0) {
        return json_object_set_new(chat, "response_format",
                                   json_pack("{s:s}", "type", "json_object"));
    }
    if (strcmp(type, "json_schema") == 0) {
        static const char *const keys[] = { "name", "description", "schema", "strict" };
        json_t *js = json_object();
        size_t i;

        for (i = 0; i < MG_ARRAY_LEN(keys); i++) {
            json_t *v = json_object_get(fmt, keys[i]);
            if (v != NULL && !json_is_null(v)) {
                json_object_set(js, keys[i], v);
            }
        }
        return json_object_set_new(chat, "response_format",
                                   json_pack("{s:s,s:o}", "type", "json_schema", "json_schema",
                                             js));
    }
    return invalid(w, "text.format.type", "must be text, json_object or json_schema.");
}

static void
copy_keys(json_t *chat, const json_t *root)
{
    static const char *const keys[] = {
        "temperature", "top_p", "user", "safety_identifier", "prompt_cache_key"
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(keys); i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (v != NULL && !json_is_null(v)) {
            json_object_set(chat, keys[i], v);
        }
    }
}

static int
walk_input(struct walk *w, const json_t *prior)
{
    const json_t *root = w->c->root, *input = json_object_get(root, "input");
    const json_t *ins = json_object_get(root, "instructions");
    char where[64];
    size_t i;
    int rc = MG_OK;

    if (json_is_string(ins) && json_string_length(ins) > 0) {
        json_array_append_new(w->msgs, mg_chatreq_obj("role", MG_JSTR("system"), "content",
                                                  json_incref((json_t *)ins), NULL));
    }
    if (json_array_size(prior) + json_array_size(input) > MAX_ITEMS) {
        return invalid(w, "input", "too many items.");
    }
    for (i = 0; rc == MG_OK && i < json_array_size(prior); i++) {
        snprintf(where, sizeof(where), "previous_response_id.input[%zu]", i);
        rc = item_add(w, json_array_get(prior, i), where, 0);
    }
    if (rc == MG_OK && json_is_string(input)) {
        json_t *m = json_pack("{s:s,s:s,s:[{s:s,s:O}]}", "type", "message", "role", "user",
                              "content", "type", "input_text", "text", input);
        /* the chat message keeps the plain string; the stored item is the normalized one */
        json_array_append_new(w->msgs, mg_chatreq_obj("role", MG_JSTR("user"), "content",
                                                  json_incref((json_t *)input), NULL));
        json_array_append_new(w->items, m);
    }
    for (i = 0; rc == MG_OK && i < json_array_size(input); i++) {
        snprintf(where, sizeof(where), "input[%zu]", i);
        rc = item_add(w, json_array_get(input, i), where, 0);
    }
    return rc;
}

int
mg_resp_request(struct mg_resp_ctx *c, const json_t *prior,
                const json_t *(*lookup)(void *arg, const char *id), void *arg,
                const struct mg_resp_opts *o, struct mg_buf *out, struct mg_buf *dropped,
                struct mg_chatreq_err *e)
{
    const json_t *root = c->root, *v;
    struct walk w = { c, json_array(), json_array(), lookup, arg, e, { 0 } };
    struct tools t = { json_array(), dropped, o->hosted_refuse };
    json_t *chat = json_object(), *choice = NULL;
    size_t dlen = dropped != NULL ? dropped->len : 0;
    int rc;

    c->code = MG_RESP_CODE_NONE;
    mg_buf_init(&w.acc, out->cap);
    if (c->previous != NULL && prior == NULL) {
        c->code = MG_RESP_CODE_PREV_MISSING;
        rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "previous_response_id",
                             "Previous response with id '%s' not found.", c->previous);
        goto done;
    }
    if ((rc = walk_input(&w, prior)) != MG_OK
        || (rc = tools_add(&w, &t, json_object_get(root, "tools"))) != MG_OK) {
        goto done;
    }
    v = json_object_get(root, "tool_choice");
    if (v != NULL && !json_is_null(v) && (choice = choice_of(&w, v, t.chat)) == NULL) {
        rc = c->code == MG_RESP_CODE_UNSUPPORTED ? MG_CHATREQ_EUNSUPPORTED : MG_CHATREQ_EINVAL;
        goto done;
    }
    if ((rc = text_add(&w, chat, json_object_get(root, "text"))) != MG_OK) {
        goto done;
    }
    json_object_set_new(chat, "model", json_string(o->model != NULL ? o->model : c->model));
    json_object_set(chat, "messages", w.msgs);
    if (json_array_size(t.chat) > 0) {
        json_object_set(chat, "tools", t.chat);
        if (choice != NULL) {
            json_object_set(chat, "tool_choice", choice);
        }
        if (json_is_boolean(v = json_object_get(root, "parallel_tool_calls"))) {
            json_object_set(chat, "parallel_tool_calls", (json_t *)v);
        }
    }
    if (json_is_integer(v = json_object_get(root, "max_output_tokens"))) {
        json_object_set(chat, o->max_tokens_param != NULL ? o->max_tokens_param : "max_tokens",
                        (json_t *)v);
    }
    copy_keys(chat, root);
    v = json_object_get(json_object_get(root, "reasoning"), "effort");
    if (json_is_string(v)) {
        json_object_set(chat, "reasoning_effort", (json_t *)v);
    }
    if (c->stream) {
        json_object_set_new(chat, "stream", json_true());
        if (o->include_usage) {
            json_object_set_new(chat, "stream_options",
                                mg_chatreq_obj("include_usage", json_true(), NULL));
        }
    }
    if ((rc = o->chat != NULL && o->json_only ? MG_OK : mg_chatreq_dump(chat, out)) == MG_OK) {
        json_decref(c->items);
        c->items = json_incref(w.items);
        if (o->chat != NULL) {
            *o->chat = json_incref(chat);
        }
    }
done:
    if (rc != MG_OK && dropped != NULL) {
        dropped->len = dlen;
        if (dropped->data != NULL) {
            dropped->data[dlen] = '\0';
        }
    }
    json_decref(choice);
    json_decref(chat);
    json_decref(t.chat);
    json_decref(w.msgs);
    json_decref(w.items);
    mg_buf_deinit(&w.acc);
    return rc;
}

int
mg_resp_history(struct mg_resp_ctx *c, const char *response, size_t len, struct mg_buf *out)
{
    json_t *r = mg_jload(response, len, 0), *all, *output;
    int rc;

    output = json_object_get(r, "output");
    if (c->items == NULL || !json_is_array(output)) {
        json_decref(r);
        return MG_ERR;
    }
    all = json_copy(c->items);
    json_array_extend(all, output);
    rc = mg_chatreq_dump(all, out);
    json_decref(all);
    json_decref(r);
    return rc;
}
