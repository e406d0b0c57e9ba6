/*
 * mg_anthropic — OpenAI chat completions <-> Anthropic Messages (SPEC "Backend schemas").
 *
 * The request walk is mg_chatreq's; this file says what each block and parameter becomes. The
 * answer is read with jansson (once per answer); stream events are read with jansson too (they
 * are small) and the chunks are written by hand by mg_oai.
 *
 * Anthropic numbers content blocks across text and tool_use blocks; OpenAI numbers tool calls
 * only. mg_oai keeps the table from one to the other.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_jload.h"
#include "mg_anthropic.h"
#include "mg_util.h"
#include "mg_xanswer.h"


/* ---- request ---- */

static json_t *
text_block(const char *s, size_t n)
{
    return json_pack("{s:s,s:s%}", "type", "text", "text", s, n);
}

static json_t *
image_block(const struct mg_chatreq_image *img, struct mg_chatreq_err *e, int *rc)
{
    (void)e;
    (void)rc;
    if (img->is_data) {
        return json_pack("{s:s,s:{s:s,s:s%,s:s%}}", "type", "image", "source", "type", "base64",
                         "media_type", img->media_type, img->media_len,
                         "data", img->data, img->data_len);
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url",
                     "url", img->url);
}

static json_t *
tool_use_block(json_t *id, json_t *name, json_t *input)
{
    return json_pack("{s:s,s:O,s:O,s:O}", "type", "tool_use", "id", id, "name", name,
                     "input", input);
}

static json_t *
tool_result_block(json_t *id, json_t *text)
{
    return json_pack("{s:s,s:O,s:O}", "type", "tool_result", "tool_use_id", id,
                     "content", text);
}

static const struct mg_chatreq_ops ops = {
    text_block, image_block, tool_use_block, tool_result_block,
};

static json_t *
tools_json(const struct mg_chatreq *r)
{
    json_t *tools = json_array();
    size_t i;

    for (i = 0; i < r->ntools; i++) {
        const struct mg_chatreq_tool *t = &r->tools[i];
        json_t *schema = t->parameters ? json_incref(t->parameters)
                         : json_pack("{s:s,s:{}}", "type", "object", "properties");

        json_array_append_new(tools, json_pack("{s:O,s:O*,s:o}", "name", t->name,
                                               "description", t->description,
                                               "input_schema", schema));
    }
    return tools;
}

/* tool_choice, or NULL when the request has none to send (no tools, or nothing asked). */
static json_t *
tool_choice_json(const struct mg_chatreq *r)
{
    static const char *const types[] = {"auto", "auto", "any", "none", "tool"};
    json_t *tc;

    if (r->ntools == 0 || (r->tool_choice == MG_CHATREQ_CHOICE_UNSET && !r->parallel_off)) {
        return NULL;
    }
    tc = json_pack("{s:s}", "type", types[r->tool_choice]);
    if (r->tool_choice == MG_CHATREQ_CHOICE_TOOL) {
        json_object_set(tc, "name", r->tool_name);
    }
    if (r->parallel_off && r->tool_choice != MG_CHATREQ_CHOICE_NONE) {
        json_object_set_new(tc, "disable_parallel_tool_use", json_true());
    }
    return tc;
}

int
mg_anthropic_request(const char *body, size_t len, json_t *parsed, const char *model,
                     int64_t default_max_tokens, struct mg_buf *out, struct mg_chatreq_err *e)
{
    struct mg_chatreq r;
    json_t *m, *tc, *js;
    int rc = parsed != NULL ? mg_chatreq_parse_json(&r, parsed, default_max_tokens, &ops, e)
                            : mg_chatreq_parse(&r, body, len, default_max_tokens, &ops, e);

    if (rc != MG_OK) {
        return rc;
    }
    m = json_object();   /* a model name that is not UTF-8 is left out, not a crash */
    json_object_set_new(m, "model", json_string(model != NULL ? model : ""));
    json_object_set_new(m, "max_tokens", json_integer((json_int_t)r.max_tokens));
    if (r.system != NULL) {
        json_object_set(m, "system", r.system);
    }
    json_object_set(m, "messages", r.messages);
    if (r.temperature != NULL) {
        json_object_set(m, "temperature", r.temperature);
    }
    if (r.top_p != NULL) {
        json_object_set(m, "top_p", r.top_p);
    }
    if (r.stop != NULL) {
        json_object_set(m, "stop_sequences", r.stop);
    }
    if (r.ntools > 0) {
        json_object_set_new(m, "tools", tools_json(&r));
    }
    if ((tc = tool_choice_json(&r)) != NULL) {
        json_object_set_new(m, "tool_choice", tc);
    }
    if ((js = mg_chatreq_json_schema(r.root)) != NULL) {   /* json_object: dropped */
        json_object_set_new(m, "output_config", json_pack("{s:{s:s,s:O}}", "format", "type",
                                                          "json_schema", "schema",
                                                          json_object_get(js, "schema")));
    }
    if (r.user != NULL) {
        json_object_set_new(m, "metadata", json_pack("{s:O}", "user_id", r.user));
    }
    if (r.stream) {
        json_object_set_new(m, "stream", json_true());
    }
    rc = mg_chatreq_dump(m, out);
    json_decref(m);
    mg_chatreq_deinit(&r);
    return rc;
}

/* ---- answer ---- */

static const char *const finish_map[][2] = {
    {"end_turn", "stop"}, {"stop_sequence", "stop"}, {"max_tokens", "length"},
    {"tool_use", "tool_calls"}, {"pause_turn", "stop"}, {"refusal", "content_filter"},
    {"model_context_window_exceeded", "length"},
};

/* Messages' names for what every translated answer has. */
static const struct mg_xanswer_names names = {
    finish_map, MG_ARRAY_LEN(finish_map), "stop_reason",
    {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"},
    "text", "tool_use", NULL, "id",
};

int
mg_anthropic_answer(const char *body, size_t len, const char *client_model, int64_t now,
                    struct mg_buf *out, struct mg_usage *u, struct mg_oai_kept *keep)
{
    json_t *root = mg_jload(body, len, 0), *content = json_object_get(root, "content");
    int rc = MG_ERR;

    u->input = u->output = u->cached = u->written = -1;
    if (json_is_object(root) && json_is_array(content)) {
        rc = mg_xanswer_write(&names, root, content,
                              json_string_value(json_object_get(root, "id")), client_model, now,
                              out, u, keep);
    }
    json_decref(root);
    return rc;
}

int
mg_anthropic_error(const char *body, size_t len, struct mg_buf *out)
{
    json_t *root = mg_jload(body, len, 0), *err = json_object_get(root, "error");
    json_t *msg = json_object_get(err, "message");
    const char *type = json_string_value(json_object_get(err, "type"));
    int rc;

    if (json_is_string(msg)) {
        rc = mg_oai_error_body(type != NULL ? type : "upstream_error", json_string_value(msg),
                               json_string_length(msg), out);
    } else {
        static const char generic[] = "the backend answered with an error";

        rc = mg_oai_error_body("upstream_error", generic, sizeof(generic) - 1, out);
    }
    json_decref(root);
    return rc;
}

/* ---- usage of answers passed through ---- */

/* The data of a one-data-line SSE event, or NULL. */
static const char *
event_data(const char *p, size_t n, size_t *len)
{
    const char *end = p + n, *d = p, *eol;

    while (d < end) {
        eol = memchr(d, '\n', (size_t)(end - d));
        eol = eol != NULL ? eol : end;
        if (eol - d >= 5 && memcmp(d, "data:", 5) == 0) {
            d += 5 + (eol - d > 5 && d[5] == ' ');
            *len = (size_t)(eol - d - (eol > d && eol[-1] == '\r'));
            return d;
        }
        d = eol + 1;
    }
    return NULL;
}

int
mg_anthropic_event_usage(const char *p, size_t n, struct mg_oai_usage *u)
{
    size_t len = 0;
    const char *d = event_data(p, n, &len), *type;
    json_t *ev, *usage = NULL;

    if (d == NULL || mg_find(d, len, "\"usage\"", 7) == NULL) {
        return 0;
    }
    ev = mg_jload(d, len, 0);
    type = json_string_value(json_object_get(ev, "type"));
    if (type != NULL && strcmp(type, "message_start") == 0) {
        usage = json_object_get(json_object_get(ev, "message"), "usage");
    } else if (type != NULL && strcmp(type, "message_delta") == 0) {
        usage = json_object_get(ev, "usage");
    }
    n = json_is_object(usage);
    if (n) {
        mg_xanswer_usage(&names, usage, u);
    }
    json_decref(ev);
    return (int)n;
}

int
mg_anthropic_answer_usage(const char *p, size_t n, struct mg_oai_usage *u)
{
    const char *end = p + n, *s = p, *found = NULL;
    json_t *usage;

    while ((s = mg_find(s, (size_t)(end - s), "\"usage\"", 7)) != NULL) {
        found = s;
        s += 7;
    }
    if (found == NULL) {
        return 0;
    }
    found += 7;
    while (found < end && (*found == ' ' || *found == ':' || *found == '\t' || *found == '\n' ||
                           *found == '\r')) {
        found++;
    }
    usage = mg_jload(found, (size_t)(end - found), MG_JLOAD_PREFIX);
    if (json_is_object(usage)) {
        mg_xanswer_usage(&names, usage, u);
    }
    n = json_is_object(usage);
    json_decref(usage);
    return (int)n;
}

/* ---- stream ---- */

struct mg_anthropic_stream {
    struct mg_oai_stream st;
    struct mg_buf        data;      /* the data lines of the event being read */
    struct mg_buf        name;      /* its event: name */
};

struct mg_anthropic_stream *
mg_anthropic_stream_create(const char *client_model, int64_t now, int include_usage,
                           const char *fallback_id)
{
    struct mg_anthropic_stream *s = mg_calloc(1, sizeof(*s));

    mg_oai_stream_init(&s->st, client_model, now, include_usage, fallback_id);
    mg_buf_init(&s->data, MG_SSE_EVENT_MAX);
    mg_buf_init(&s->name, 256);
    return s;
}

void
mg_anthropic_stream_destroy(struct mg_anthropic_stream *s)
{
    if (s == NULL) {
        return;
    }
    mg_oai_stream_deinit(&s->st);
    mg_buf_deinit(&s->data);
    mg_buf_deinit(&s->name);
    free(s);
}

struct mg_oai_stream *
mg_anthropic_stream_state(struct mg_anthropic_stream *s)
{
    return &s->st;
}

static int
fail(struct mg_anthropic_stream *s, const char *msg)
{
    return mg_oai_stream_fail(&s->st, msg, strlen(msg));
}

/* Reads the event: and data: lines of one raw SSE event into s->name and s->data. */
static int
split_event(struct mg_anthropic_stream *s, const char *p, size_t n)
{
    const char *end = p + n, *line = p;
    int rc = MG_OK, ndata = 0;

    mg_buf_reset(&s->name);
    mg_buf_reset(&s->data);
    while (line < end && rc == MG_OK) {
        const char *nl = memchr(line, '\n', (size_t)(end - line)), *eol = nl ? nl : end;
        const char *v;

        if (eol > line && eol[-1] == '\r') {
            eol--;
        }
        v = memchr(line, ':', (size_t)(eol - line));
        if (v != NULL && v > line) {
            size_t klen = (size_t)(v - line);
            v += (v + 1 < eol && v[1] == ' ') ? 2 : 1;
            if (klen == 4 && memcmp(line, "data", 4) == 0) {
                rc = ndata++ ? mg_buf_add(&s->data, "\n", 1) : MG_OK;
                rc = rc ? rc : mg_buf_add(&s->data, v, (size_t)(eol - v));
            } else if (klen == 5 && memcmp(line, "event", 5) == 0) {
                mg_buf_reset(&s->name);
                rc = mg_buf_add(&s->name, v, (size_t)(eol - v));
            }
        }
        line = nl ? nl + 1 : end;
    }
    return rc == MG_OK ? ndata : -1;
}

static int
block_start(struct mg_anthropic_stream *s, json_t *ev, struct mg_buf *out)
{
    json_t *cb = json_object_get(ev, "content_block"), *v;
    json_t *id = json_object_get(cb, "id"), *name = json_object_get(cb, "name");
    json_int_t index = json_integer_value(json_object_get(ev, "index"));
    const char *type = json_string_value(json_object_get(cb, "type"));
    int rc;

    if (type != NULL && strcmp(type, "text") == 0) {
        v = json_object_get(cb, "text");
        return mg_oai_stream_content(&s->st, json_string_value(v) ? json_string_value(v) : "",
                                     json_string_length(v), out);
    }
    if (type == NULL || strcmp(type, "tool_use") != 0) {
        return MG_OK;   /* thinking, server tools: nothing an OpenAI client reads */
    }
    if (!json_is_string(id) || !json_is_string(name)) {
        return fail(s, "the backend sent a tool_use block without id or name");
    }
    rc = mg_oai_stream_tool_start(&s->st, index, json_string_value(id), json_string_length(id),
                                  json_string_value(name), json_string_length(name), out);
    if (rc != MG_OK) {
        return rc;
    }
    v = json_object_get(cb, "input");
    if (json_object_size(v) > 0) {   /* streams start with {}; anything else is arguments */
        struct mg_buf args;
        mg_buf_init(&args, out->cap);
        rc = mg_chatreq_dump(v, &args);
        rc = rc ? rc : mg_oai_stream_tool_args(&s->st, index, args.data, args.len, out);
        mg_buf_deinit(&args);
    }
    return rc;
}

static int
block_delta(struct mg_anthropic_stream *s, json_t *ev, struct mg_buf *out)
{
    json_t *d = json_object_get(ev, "delta"), *v;
    json_int_t index = json_integer_value(json_object_get(ev, "index"));
    const char *type = json_string_value(json_object_get(d, "type"));

    if (type != NULL && strcmp(type, "text_delta") == 0) {
        v = json_object_get(d, "text");
        return json_is_string(v) ? mg_oai_stream_content(&s->st, json_string_value(v),
                                                         json_string_length(v), out) : MG_OK;
    }
    if (type != NULL && strcmp(type, "input_json_delta") == 0) {
        v = json_object_get(d, "partial_json");
        return mg_oai_stream_tool_args(&s->st, index, json_is_string(v) ? json_string_value(v)
                                       : "", json_string_length(v), out);
    }
    return MG_OK;   /* thinking, signature, citations */
}

static int
stream_error(struct mg_anthropic_stream *s, json_t *ev)
{
    json_t *err = json_object_get(ev, "error"), *msg = json_object_get(err, "message");
    const char *type = json_string_value(json_object_get(err, "type"));

    if (json_is_string(msg)) {
        return mg_oai_stream_fail(&s->st, json_string_value(msg), json_string_length(msg));
    }
    type = type != NULL ? type : "the backend sent an error event";
    return mg_oai_stream_fail(&s->st, type, strlen(type));
}

static int
dispatch(struct mg_anthropic_stream *s, const char *type, json_t *ev, struct mg_buf *out)
{
    json_t *v;
    int rc;

    if (strcmp(type, "message_start") == 0) {
        v = json_object_get(json_object_get(ev, "message"), "id");
        mg_xanswer_usage(&names, json_object_get(json_object_get(ev, "message"), "usage"),
                         &s->st.usage);
        return mg_oai_stream_start(&s->st, json_string_value(v), json_string_length(v), out);
    }
    if (strcmp(type, "content_block_start") == 0) {
        return block_start(s, ev, out);
    }
    if (strcmp(type, "content_block_delta") == 0) {
        return block_delta(s, ev, out);
    }
    if (strcmp(type, "message_delta") == 0) {
        mg_xanswer_usage(&names, json_object_get(ev, "usage"), &s->st.usage);
        v = json_object_get(json_object_get(ev, "delta"), "stop_reason");
        if (!json_is_string(v) || s->st.finished) {
            return MG_OK;
        }
        return mg_oai_stream_finish(&s->st, mg_xanswer_finish(&names, json_string_value(v)),
                                    out);
    }
    if (strcmp(type, "message_stop") == 0) {
        rc = s->st.finished ? MG_OK : mg_oai_stream_finish(&s->st, "stop", out);
        return rc ? rc : mg_oai_stream_end(&s->st, out);
    }
    if (strcmp(type, "error") == 0) {
        return stream_error(s, ev);
    }
    return MG_OK;   /* ping, content_block_stop, and event types added later */
}

int
mg_anthropic_stream_event(struct mg_anthropic_stream *s, const char *p, size_t n,
                          struct mg_buf *out)
{
    const char *type;
    json_t *ev;
    int ndata, rc;

    if (s->st.failed) {
        return MG_OAI_ESTREAM;
    }
    if (s->st.done) {
        return MG_OK;
    }
    ndata = split_event(s, p, n);
    if (ndata < 0) {
        return fail(s, "the backend sent an event too large to read");
    }
    /* no data: a comment or a bare name; a ping is a keep-alive whatever its data says (an empty
     * "data:" is no JSON, yet nothing is wrong with the stream) */
    if (ndata == 0 || (s->name.len == 4 && memcmp(s->name.data, "ping", 4) == 0)) {
        return MG_OK;
    }
    ev = mg_jload(s->data.data, s->data.len, 0);
    type = json_string_value(json_object_get(ev, "type"));
    if (type == NULL && s->name.len > 0) {
        type = s->name.data;
    }
    if (!json_is_object(ev) || type == NULL) {
        rc = fail(s, "the backend sent an event that cannot be read");
    } else {
        rc = dispatch(s, type, ev, out);
    }
    json_decref(ev);
    return rc;
}
