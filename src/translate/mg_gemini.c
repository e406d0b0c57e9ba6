/*
 * mg_gemini — OpenAI chat completions <-> Gemini generateContent (SPEC "Cloud credentials and
 * Vertex AI").
 *
 * The request walk is mg_chatreq's (turns merged, tool results as user turns); this file says
 * what each block becomes and then fixes what Gemini wants otherwise: the assistant's role is
 * "model", a turn's blocks are its "parts", and a functionResponse names its function, which an
 * OpenAI tool message does not (it gives the call's id): the name is that of the latest earlier
 * call with that id. Gemini's function calls carry no id (or one OpenAI clients must echo, which
 * they do as tool_call_id): the answer's calls get "call_<n>_<answer id>" when Gemini gave none.
 * A call's thoughtSignature (Gemini 3 wants it back with the call in later turns) rides in its id
 * after MG_GEMINI_SIG_MARK, and goes back beside the functionCall it came with.
 * Decisions, written down in docs/providers.md:
 * - a tool message's text that is a JSON object is the functionResponse's response as it is;
 *   any other text becomes {"content": text} (response is an object in Gemini's API);
 * - https image URLs are unsupported_parameter (Gemini reads images inline: send a data: URL);
 * - tool parameters lose "$schema" and "additionalProperties", which Vertex's schema refuses;
 * - thought parts of an answer are not text: they are counted (reasoning_tokens), not relayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_gemini.h"
#include "mg_gemini_int.h"
#include "mg_jload.h"
#include "mg_util.h"

/* ---- request ---- */

static json_t *
text_block(const char *s, size_t n)
{
    return json_pack("{s:s%}", "text", s, n);
}

static json_t *
image_block(const struct mg_chatreq_image *img, struct mg_chatreq_err *e, int *rc)
{
    if (!img->is_data) {
        *rc = mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, img->where, "%s: image URLs are not "
                              "supported by this backend (send a base64 data: URL)", img->where);
        return NULL;
    }
    return json_pack("{s:{s:s%,s:s%}}", "inlineData", "mimeType", img->media_type,
                     img->media_len, "data", img->data, img->data_len);
}

/* The call's id rides along until fix_turns() has read it (Gemini gets no ids). */
static json_t *
tool_use_block(json_t *id, json_t *name, json_t *input)
{
    return json_pack("{s:{s:O,s:O,s:O}}", "functionCall", "id", id, "name", name, "args", input);
}

static json_t *
tool_result_block(json_t *id, json_t *text)
{
    json_t *resp = mg_jload(json_string_value(text), json_string_length(text), 0);

    if (!json_is_object(resp)) {
        json_decref(resp);
        resp = json_pack("{s:O}", "content", text);
    }
    return json_pack("{s:{s:O,s:o}}", "functionResponse", "id", id, "response", resp);
}

static const struct mg_chatreq_ops ops = {
    text_block, image_block, tool_use_block, tool_result_block,
};

/* Roles and names as Gemini wants them (see the top of the file). */
static int
fix_turns(json_t *turns, struct mg_chatreq_err *e)
{
    json_t *names = json_object(), *turn, *part, *fc, *id;
    size_t i, k;
    int rc = MG_OK;

    json_array_foreach(turns, i, turn) {
        const char *role = json_string_value(json_object_get(turn, "role"));
        json_t *parts = json_incref(json_object_get(turn, "content"));

        json_object_del(turn, "content");
        json_object_set_new(turn, "parts", parts);
        if (role != NULL && strcmp(role, "assistant") == 0) {
            json_object_set_new(turn, "role", json_string("model"));
        }
        json_array_foreach(parts, k, part) {
            if ((fc = json_object_get(part, "functionCall")) != NULL) {
                const char *sig;
                id = json_object_get(fc, "id");
                json_object_set(names, json_string_value(id), json_object_get(fc, "name"));
                sig = strstr(json_string_value(id), MG_GEMINI_SIG_MARK);
                if (sig != NULL && sig[sizeof(MG_GEMINI_SIG_MARK) - 1] != '\0') {
                    json_object_set_new(part, "thoughtSignature",
                                        json_string(sig + sizeof(MG_GEMINI_SIG_MARK) - 1));
                }
                json_object_del(fc, "id");
            } else if ((fc = json_object_get(part, "functionResponse")) != NULL) {
                id = json_object_get(fc, "id");
                if (json_object_get(names, json_string_value(id)) == NULL) {
                    rc = mg_chatreq_fail(e, MG_CHATREQ_EUNSUPPORTED, "messages", "a tool "
                                         "message's tool_call_id '%.64s' names no earlier tool "
                                         "call, and this backend needs the function's name",
                                         json_string_value(id));
                    goto done;
                }
                json_object_set(fc, "name", json_object_get(names, json_string_value(id)));
                json_object_del(fc, "id");
            }
        }
    }
done:
    json_decref(names);
    return rc;
}

/* A JSON schema as Vertex's Schema takes it: without the members it refuses, at any depth. */
static json_t *
vertex_schema(json_t *s)
{
    json_t *copy, *v;
    const char *key;
    size_t i;

    if (json_is_array(s)) {
        copy = json_array();
        json_array_foreach(s, i, v) {
            json_array_append_new(copy, vertex_schema(v));
        }
        return copy;
    }
    if (!json_is_object(s)) {
        return json_incref(s);
    }
    copy = json_object();
    json_object_foreach(s, key, v) {
        if (strcmp(key, "$schema") != 0 && strcmp(key, "additionalProperties") != 0) {
            json_object_set_new(copy, key, vertex_schema(v));
        }
    }
    return copy;
}

static json_t *
tools_json(const struct mg_chatreq *r)
{
    json_t *decls = json_array();
    size_t i;

    for (i = 0; i < r->ntools; i++) {
        const struct mg_chatreq_tool *t = &r->tools[i];
        json_t *d = json_pack("{s:O}", "name", t->name);

        if (t->description != NULL) {
            json_object_set(d, "description", t->description);
        }
        if (t->parameters != NULL && json_object_size(json_object_get(t->parameters,
                                                                      "properties")) > 0) {
            json_object_set_new(d, "parameters", vertex_schema(t->parameters));
        }
        json_array_append_new(decls, d);
    }
    return json_pack("[{s:o}]", "functionDeclarations", decls);
}

/* toolConfig, or NULL when the request has none to send. */
static json_t *
tool_config(const struct mg_chatreq *r)
{
    static const char *const modes[] = {NULL, "AUTO", "ANY", "NONE", "ANY"};
    json_t *fcc;

    if (r->ntools == 0 || r->tool_choice == MG_CHATREQ_CHOICE_UNSET) {
        return NULL;
    }
    fcc = json_pack("{s:s}", "mode", modes[r->tool_choice]);
    if (r->tool_choice == MG_CHATREQ_CHOICE_TOOL) {
        json_object_set_new(fcc, "allowedFunctionNames", json_pack("[O]", r->tool_name));
    }
    return json_pack("{s:o}", "functionCallingConfig", fcc);
}

static json_t *
generation_config(const struct mg_chatreq *r)
{
    json_t *g = json_object(), *js, *rf = json_object_get(r->root, "response_format");
    const char *rft = json_string_value(json_object_get(rf, "type"));

    if (r->max_tokens > 0) {
        json_object_set_new(g, "maxOutputTokens", json_integer((json_int_t)r->max_tokens));
    }
    if (r->temperature != NULL) {
        json_object_set(g, "temperature", r->temperature);
    }
    if (r->top_p != NULL) {
        json_object_set(g, "topP", r->top_p);
    }
    if (r->stop != NULL) {
        json_object_set(g, "stopSequences", r->stop);
    }
    if ((js = mg_chatreq_json_schema(r->root)) != NULL) {
        json_object_set_new(g, "responseMimeType", json_string("application/json"));
        json_object_set_new(g, "responseSchema", vertex_schema(json_object_get(js, "schema")));
    } else if (rft != NULL && strcmp(rft, "json_object") == 0) {
        json_object_set_new(g, "responseMimeType", json_string("application/json"));
    }
    if (json_object_size(g) == 0) {
        json_decref(g);
        return NULL;
    }
    return g;
}

int
mg_gemini_request(const char *body, size_t len, json_t *parsed, int64_t default_max_tokens,
                  struct mg_buf *out, int *stream, struct mg_chatreq_err *e)
{
    struct mg_chatreq r;
    json_t *m, *v;
    int rc = parsed != NULL ? mg_chatreq_parse_json(&r, parsed, default_max_tokens, &ops, e)
                            : mg_chatreq_parse(&r, body, len, default_max_tokens, &ops, e);

    if (rc != MG_OK) {
        return rc;
    }
    *stream = r.stream;
    rc = fix_turns(r.messages, e);
    m = json_pack("{s:O}", "contents", r.messages);
    if (r.system != NULL) {
        json_object_set_new(m, "systemInstruction", json_pack("{s:[{s:O}]}", "parts", "text",
                                                              r.system));
    }
    if (r.ntools > 0) {
        json_object_set_new(m, "tools", tools_json(&r));
    }
    if ((v = tool_config(&r)) != NULL) {
        json_object_set_new(m, "toolConfig", v);
    }
    if ((v = generation_config(&r)) != NULL) {
        json_object_set_new(m, "generationConfig", v);
    }
    rc = rc ? rc : mg_chatreq_dump(m, out);
    json_decref(m);
    mg_chatreq_deinit(&r);
    return rc;
}

/* ---- what answers and streams share ---- */

static int64_t
count(json_t *um, const char *key)
{
    json_t *j = json_object_get(um, key);

    return json_is_integer(j) && mg_tokens_valid(json_integer_value(j)) ? json_integer_value(j)
                                                                         : -1;
}

static int64_t
known(int64_t v)
{
    return v < 0 ? 0 : v;
}

/*
 * usageMetadata into u. Google's JSON leaves zero counts out, so a count the object lacks is 0.
 * promptTokenCount counts the cached tokens too: the input not read from the cache is prompt +
 * tool-use prompt - cached; the output counts the thoughts, said apart as reasoning when given.
 */
void
mg_gemini_read_usage(json_t *um, struct mg_oai_usage *u)
{
    int64_t prompt = count(um, "promptTokenCount"), tool = count(um, "toolUsePromptTokenCount");
    int64_t cand = count(um, "candidatesTokenCount"), thoughts = count(um, "thoughtsTokenCount");
    int64_t cached = known(count(um, "cachedContentTokenCount"));

    if (!json_is_object(um)) {
        return;
    }
    u->input = mg_tokens_add(known(prompt), known(tool));
    u->input = u->input > cached ? u->input - cached : 0;
    u->cache_read = cached;
    u->output = mg_tokens_add(known(cand), known(thoughts));
    if (thoughts >= 0) {
        u->reasoning = thoughts;
    }
}

static const char *const filtered[] = {
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
};

/* The finish_reason of a finishReason; tools: the answer called a function. */
const char *
mg_gemini_finish(const char *reason, int tools)
{
    size_t i;

    for (i = 0; reason != NULL && i < MG_ARRAY_LEN(filtered); i++) {
        if (strcmp(reason, filtered[i]) == 0) {
            return "content_filter";
        }
    }
    if (reason != NULL && strcmp(reason, "MAX_TOKENS") == 0) {
        return "length";
    }
    return tools ? "tool_calls" : "stop";
}

/* The text of a part the client reads (thoughts are not), or NULL. */
json_t *
mg_gemini_part_text(json_t *part)
{
    json_t *t = json_object_get(part, "text");

    return json_is_string(t) && !json_is_true(json_object_get(part, "thought")) ? t : NULL;
}

char *
mg_gemini_call_id(json_t *part, size_t n, const char *id)
{
    const char *given = json_string_value(json_object_get(json_object_get(part, "functionCall"),
                                                          "id"));
    const char *sig = json_string_value(json_object_get(part, "thoughtSignature"));
    size_t len = (given != NULL ? strlen(given) : strlen(id) + 32) +
                 (sig != NULL ? strlen(sig) + sizeof(MG_GEMINI_SIG_MARK) : 0) + 1;
    char *out = mg_malloc(len);

    if (given != NULL && given[0] != '\0') {
        snprintf(out, len, "%s", given);
    } else {
        snprintf(out, len, "call_%zu_%s", n, id);
    }
    if (sig != NULL && sig[0] != '\0') {
        snprintf(out + strlen(out), len - strlen(out), MG_GEMINI_SIG_MARK "%s", sig);
    }
    return out;
}

/* ---- answer ---- */

/* The candidate's parts: text joined into text, calls into calls. 1 when there is no text. */
static int
read_parts(json_t *parts, const char *id, struct mg_buf *text, struct mg_oai_tool_call *calls,
           char **ids, size_t *ncalls)
{
    json_t *p, *t, *fc;
    size_t i;
    int rc = MG_OK, has_text = 0;

    json_array_foreach(parts, i, p) {
        if ((t = mg_gemini_part_text(p)) != NULL) {
            has_text = 1;
            rc = mg_buf_add(text, json_string_value(t), json_string_length(t));
        } else if ((fc = json_object_get(p, "functionCall")) != NULL) {
            struct mg_oai_tool_call *c = &calls[*ncalls];
            json_t *jid;
            const char *cid;

            ids[*ncalls] = mg_gemini_call_id(p, *ncalls, id);
            jid = json_string(ids[*ncalls]);
            rc = mg_chatreq_tool_call(jid, json_object_get(fc, "name"),
                                      json_object_get(fc, "args"), text->cap, &cid, &c->name,
                                      &c->arguments);
            c->id = ids[*ncalls];
            json_decref(jid);
            (*ncalls)++;
        }
        if (rc != MG_OK) {
            return rc;
        }
    }
    return has_text ? MG_OK : 1;
}

int
mg_gemini_answer(const char *body, size_t len, const char *client_model, const char *id,
                 int64_t now, struct mg_buf *out, struct mg_usage *u, struct mg_oai_kept *keep)
{
    json_t *root = mg_jload(body, len, 0), *cands = json_object_get(root, "candidates");
    json_t *cand = json_array_get(cands, 0), *parts;
    json_t *rid = json_object_get(root, "responseId");
    struct mg_oai_tool_call *calls = NULL;
    char **ids = NULL, idbuf[200];
    struct mg_oai_answer a;
    struct mg_buf text;
    size_t i;
    int rc = MG_ERR;

    u->input = u->output = -1;
    memset(&a, 0, sizeof(a));
    mg_buf_init(&text, out->cap);
    if (!json_is_object(root) || (!json_is_array(cands) && !json_is_object(json_object_get(
            root, "promptFeedback")) && !json_is_object(json_object_get(root,
            "usageMetadata")))) {
        goto done;
    }
    if (json_is_string(rid) && json_string_length(rid) > 0) {
        snprintf(idbuf, sizeof(idbuf), "chatcmpl-%s", json_string_value(rid));
        id = idbuf;
    }
    a.id = id != NULL && *id ? id : "chatcmpl-modelgate";
    parts = json_object_get(json_object_get(cand, "content"), "parts");
    calls = mg_calloc(json_array_size(parts) + 1, sizeof(*calls));
    ids = mg_calloc(json_array_size(parts) + 1, sizeof(*ids));
    rc = read_parts(parts, a.id, &text, calls, ids, &a.ncalls);
    if (rc < 0) {
        goto done;
    }
    a.created = now;
    a.model = client_model;
    a.content = rc == MG_OK ? (text.data != NULL ? text.data : "") : NULL;
    a.content_len = text.len;
    a.calls = calls;
    a.finish_reason = cand == NULL ? "content_filter"   /* the prompt was blocked */
                      : mg_gemini_finish(json_string_value(json_object_get(cand, "finishReason")),
                                      a.ncalls > 0);
    mg_oai_usage_init(&a.usage);
    mg_gemini_read_usage(json_object_get(root, "usageMetadata"), &a.usage);
    rc = mg_oai_answer_write(&a, out);
    mg_oai_usage_totals(&a.usage, u);
    if (rc == MG_OK && keep != NULL) {
        mg_oai_kept_set(keep, &a);
    }
done:
    for (i = 0; i < a.ncalls; i++) {
        free(calls[i].arguments);
        free(ids[i]);
    }
    free(calls);
    free(ids);
    mg_buf_deinit(&text);
    json_decref(root);
    return rc;
}

int
mg_gemini_error(const char *body, size_t len, struct mg_buf *out)
{
    static const char generic[] = "the backend answered with an error";
    json_t *root = mg_jload(body, len, 0), *err, *msg;
    const char *type;
    int rc;

    err = json_object_get(json_is_array(root) ? json_array_get(root, 0) : root, "error");
    msg = json_object_get(err, "message");
    type = json_string_value(json_object_get(err, "status"));
    if (json_is_string(msg)) {
        rc = mg_oai_error_body(type != NULL ? type : "upstream_error", json_string_value(msg),
                               json_string_length(msg), out);
    } else {
        rc = mg_oai_error_body("upstream_error", generic, sizeof(generic) - 1, out);
    }
    json_decref(root);
    return rc;
}
