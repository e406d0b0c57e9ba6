/*
 * mg_resume — the relay stage of mid-stream resume: what was relayed, and the continuation
 * spliced into the client's stream (include/mg_resume.h), on chat chunks or on Anthropic's
 * events. It reads each event with jansson: only requests whose rule has resume: true pay.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_resume.h"
#include "mg_usage.h"

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1 when v says something: not null, not "", not an empty array or object, not false. */
static int
present(json_t *v)
{
    return v != NULL && !json_is_null(v) && !json_is_false(v) &&
           !(json_is_string(v) && json_string_length(v) == 0) &&
           !(json_is_array(v) && json_array_size(v) == 0) &&
           !(json_is_object(v) && json_object_size(v) == 0);
}

/* What the stream carries beyond text makes it impossible to continue. */
static void
judge(struct mg_resume *rs, json_t *j)
{
    static const char *const beyond[] = {"tool_calls", "function_call", "refusal", "audio",
                                         "reasoning", "reasoning_content", "thinking"};
    json_t *choices = json_object_get(j, "choices"), *c, *delta;
    size_t i, k;

    json_array_foreach(choices, i, c) {
        json_int_t index = json_integer_value(json_object_get(c, "index"));
        if (index != 0 || present(json_object_get(c, "finish_reason"))) {
            rs->ok = 0;   /* a second choice, or the end: nothing to continue */
        }
        delta = json_object_get(c, "delta");
        for (k = 0; k < MG_ARRAY_LEN(beyond); k++) {
            if (present(json_object_get(delta, beyond[k]))) {
                rs->ok = 0;
            }
        }
    }
}

/* The continuation's leading whitespace that repeats what was trimmed off the prefill. */
static void
dedup(struct mg_resume *rs, json_t *delta, const char *key)
{
    json_t *content = json_object_get(delta, key);
    const char *t = json_string_value(content);
    size_t n = 0, len;

    if (t == NULL || rs->ws_pos >= rs->ws_len) {
        return;
    }
    len = json_string_length(content);
    while (n < len && rs->ws_pos < rs->ws_len && t[n] == rs->ws[rs->ws_pos]) {
        n++;
        rs->ws_pos++;
    }
    if (n < len) {
        rs->ws_pos = rs->ws_len;   /* the text began: no more to drop */
    }
    if (n > 0) {
        json_object_set_new(delta, key, json_stringn(t + n, len - n));
    }
}

/*
 * The usage the client sees: the first attempt's input, every attempt's output (also what a
 * client API's stage after this one reads from the relay).
 */
static void
usage_of_all(struct mg_resume *rs, json_t *u)
{
    json_int_t out = json_integer_value(json_object_get(u, "completion_tokens"));
    int64_t in = rs->first_input >= 0 ? rs->first_input
                                      : json_integer_value(json_object_get(u, "prompt_tokens"));

    out = mg_tokens_add(out, rs->out_before > 0 ? rs->out_before : 0);
    rs->relay->usage.input = in;
    rs->relay->usage.output = out;
    rs->relay->have_usage = 1;
    json_object_set_new(u, "prompt_tokens", json_integer(in));
    json_object_set_new(u, "completion_tokens", json_integer(out));
    json_object_set_new(u, "total_tokens", json_integer(mg_tokens_add(in, out)));
    json_object_del(u, "prompt_tokens_details");   /* of the continuation's prompt, not ours */
}

/*
 * A continuation's chunk in the first attempt's clothes: 0 to send j (rewritten), 1 to drop it
 * (the role chunk, or whitespace already sent).
 */
static int
splice(struct mg_resume *rs, json_t *j)
{
    json_t *choices = json_object_get(j, "choices"), *c = json_array_get(choices, 0), *delta;
    json_t *u = json_object_get(j, "usage");

    if (rs->have_ident) {
        json_object_set_new(j, "id", json_string(rs->id));
        json_object_set_new(j, "created", json_integer(rs->created));
        json_object_set_new(j, "model", json_string(rs->model));
    }
    if (json_is_object(u)) {
        usage_of_all(rs, u);
    }
    if (c == NULL) {
        return 0;
    }
    delta = json_object_get(c, "delta");
    json_object_del(delta, "role");
    dedup(rs, delta, "content");
    /* nothing left to say (no member, or only an empty content): the chunk goes, unless it
     * carries the finish or the usage */
    if (json_object_size(delta) == 0 ||
        (json_object_size(delta) == 1 && json_object_get(delta, "content") != NULL &&
         !present(json_object_get(delta, "content")))) {
        return !present(json_object_get(c, "finish_reason")) && !json_is_object(u) &&
               json_array_size(choices) == 1;
    }
    return 0;
}

static void
note_text(struct mg_resume *rs, json_t *j)
{
    json_t *delta = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
    json_t *content = json_object_get(delta, "content");

    if (json_is_string(content) && json_string_length(content) > 0) {
        rs->events++;
        if (mg_buf_add(&rs->text, json_string_value(content), json_string_length(content))
            != MG_OK) {
            rs->ok = 0;   /* too long to send back as a prefill */
        }
    }
}

/* ---- Anthropic's events (a native /v1/messages stream) ---- */

static void
text_of(struct mg_resume *rs, json_t *t)
{
    if (json_is_string(t) && json_string_length(t) > 0) {
        rs->events++;
        if (mg_buf_add(&rs->text, json_string_value(t), json_string_length(t)) != MG_OK) {
            rs->ok = 0;
        }
    }
}

/* What an event says of the stream (text only?), and its usage as reported. */
static void
msg_note(struct mg_resume *rs, json_t *j, const char *type)
{
    json_t *d = json_object_get(j, "delta"), *cb = json_object_get(j, "content_block");
    json_t *u = json_object_get(j, "usage");
    const char *t;

    if (strcmp(type, "message_start") == 0) {
        u = json_object_get(json_object_get(j, "message"), "usage");
        if (json_is_integer(json_object_get(u, "input_tokens"))) {
            rs->cur_in = json_integer_value(json_object_get(u, "input_tokens"));
        }
    } else if (strcmp(type, "content_block_start") == 0) {
        t = json_string_value(json_object_get(cb, "type"));
        if (t == NULL || strcmp(t, "text") != 0) {
            rs->ok = 0;   /* a tool call, thinking: never continued */
        }
        rs->open_block = (int)json_integer_value(json_object_get(j, "index"));
        rs->nblocks = rs->open_block + 1;
        text_of(rs, json_object_get(cb, "text"));
    } else if (strcmp(type, "content_block_delta") == 0) {
        t = json_string_value(json_object_get(d, "type"));
        if (t == NULL || strcmp(t, "text_delta") != 0) {
            rs->ok = 0;
        } else {
            text_of(rs, json_object_get(d, "text"));
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        rs->open_block = -1;
    } else if (strcmp(type, "message_delta") == 0 || strcmp(type, "message_stop") == 0) {
        rs->ok = 0;   /* the stop_reason: nothing to continue */
        if (!rs->continuing && json_is_integer(json_object_get(u, "output_tokens"))) {
            rs->cur_out = json_integer_value(json_object_get(u, "output_tokens"));
        }
    }
}

/* The client's usage in a continuation's message_delta: the first input, all the output. */
static void
msg_usage(struct mg_resume *rs, json_t *u)
{
    json_int_t out = json_integer_value(json_object_get(u, "output_tokens"));

    if (json_is_integer(json_object_get(u, "output_tokens"))) {
        rs->cur_out = out;
    }
    out = mg_tokens_add(out, rs->out_before > 0 ? rs->out_before : 0);
    json_object_set_new(u, "output_tokens", json_integer(out));
    if (json_object_get(u, "input_tokens") != NULL && rs->first_input >= 0) {
        json_object_set_new(u, "input_tokens", json_integer(rs->first_input));
    }
    rs->relay->usage.output = out;
    if (rs->first_input >= 0) {
        rs->relay->usage.input = rs->first_input;
    }
    rs->relay->have_usage = 1;
}

/* A continuation's event in the client's stream: 0 to send j (rewritten), 1 to drop it. */
static int
msg_splice(struct mg_resume *rs, json_t *j, const char *type)
{
    json_t *index = json_object_get(j, "index"), *u = json_object_get(j, "usage");
    json_t *d = json_object_get(j, "delta");
    json_int_t k = json_integer_value(index);

    if (strcmp(type, "message_start") == 0) {
        msg_note(rs, j, type);   /* its input tokens, as reported */
        return 1;
    }
    if (json_is_integer(index)) {
        if (k == 0 && rs->reopen && strcmp(type, "content_block_start") == 0) {
            return 1;   /* the client's text block is still open: the text goes on in it */
        }
        json_object_set_new(j, "index", json_integer(rs->base + k));
    }
    if (strcmp(type, "content_block_delta") == 0) {
        dedup(rs, d, "text");
        if (json_is_string(json_object_get(d, "text")) &&
            json_string_length(json_object_get(d, "text")) == 0) {
            return 1;
        }
    }
    if (strcmp(type, "message_delta") == 0 && json_is_object(u)) {
        msg_usage(rs, u);
    }
    return 0;
}

/* An Anthropic event (data j): observed, and on a continuation spliced. */
static void
msg_write(struct mg_stage *s, const char *p, size_t n, json_t *j)
{
    struct mg_resume *rs = (struct mg_resume *)s;
    const char *type = json_string_value(json_object_get(j, "type"));
    char *out;

    if (type == NULL) {
        s->next->write(s->next, p, n, 1);
        return;
    }
    if (rs->continuing && msg_splice(rs, j, type)) {
        return;
    }
    msg_note(rs, j, type);
    rs->relay->hold_cut = rs->ok;
    if (!rs->continuing) {
        s->next->write(s->next, p, n, 1);
        return;
    }
    out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    mg_buf_reset(&rs->ev);
    mg_buf_printf(&rs->ev, "event: %s\ndata: %s\n\n", type, out);
    free(out);
    s->next->write(s->next, rs->ev.data, rs->ev.len, 1);
}

static void
resume_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct mg_resume *rs = (struct mg_resume *)s;
    const char *d = whole ? mg_find(p, n, "data:", 5) : NULL, *end = p + n;
    json_t *j;

    if (d == NULL) {
        s->next->write(s->next, p, n, whole);
        return;
    }
    d += 5 + (d + 5 < end && d[5] == ' ');
    while (end > d && (end[-1] == '\n' || end[-1] == '\r')) {
        end--;
    }
    j = json_loadb(d, (size_t)(end - d), 0, NULL);
    if (!json_is_object(j)) {   /* [DONE], or what only the client reads */
        json_decref(j);
        s->next->write(s->next, p, n, whole);
        return;
    }
    if (rs->anthropic) {
        msg_write(s, p, n, j);
        json_decref(j);
        return;
    }
    if (json_is_object(json_object_get(j, "usage"))) {   /* as reported, before any rewrite */
        json_t *u = json_object_get(j, "usage");
        if (json_is_integer(json_object_get(u, "prompt_tokens"))) {
            rs->cur_in = json_integer_value(json_object_get(u, "prompt_tokens"));
        }
        if (json_is_integer(json_object_get(u, "completion_tokens"))) {
            rs->cur_out = json_integer_value(json_object_get(u, "completion_tokens"));
        }
    }
    if (!rs->continuing && !rs->have_ident && json_is_string(json_object_get(j, "id"))) {
        snprintf(rs->id, sizeof(rs->id), "%s", json_string_value(json_object_get(j, "id")));
        snprintf(rs->model, sizeof(rs->model), "%s",
                 json_string_value(json_object_get(j, "model")) ?
                 json_string_value(json_object_get(j, "model")) : "");
        rs->created = json_integer_value(json_object_get(j, "created"));
        rs->have_ident = 1;
    }
    if (rs->continuing && splice(rs, j)) {
        json_decref(j);
        return;
    }
    judge(rs, j);
    note_text(rs, j);
    rs->relay->hold_cut = rs->ok;
    if (!rs->continuing) {
        s->next->write(s->next, p, n, whole);   /* the first attempt's bytes go as they came */
    } else {
        char *out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        mg_buf_reset(&rs->ev);
        mg_buf_adds(&rs->ev, "data: ");
        mg_buf_adds(&rs->ev, out);
        mg_buf_adds(&rs->ev, "\n\n");
        free(out);
        s->next->write(s->next, rs->ev.data, rs->ev.len, 1);
    }
    json_decref(j);
}

static void
resume_end(struct mg_stage *s)
{
    s->next->end(s->next);
}

void
mg_resume_init(struct mg_resume *rs)
{
    memset(rs, 0, sizeof(*rs));
    mg_buf_init(&rs->text, MG_RESUME_TEXT_MAX);
    mg_buf_init(&rs->ev, MG_SSE_EVENT_MAX + 1024);
    rs->ok = 1;
    rs->first_input = -1;
    rs->debit_in = rs->debit_out = -1;
    rs->cur_in = rs->cur_out = -1;
    rs->open_block = -1;
}

void
mg_resume_deinit(struct mg_resume *rs)
{
    mg_buf_deinit(&rs->text);
    mg_buf_deinit(&rs->ev);
}

void
mg_resume_add(struct mg_resume *rs, struct mg_relay *r, int anthropic)
{
    rs->anthropic = anthropic;
    rs->stage.write = resume_write;
    rs->stage.end = resume_end;
    rs->stage.relay = r;
    rs->relay = r;
    rs->events = 0;
    rs->cur_in = rs->cur_out = -1;
    r->hold_cut = rs->ok;
    mg_relay_add_before_client(r, &rs->stage);
}

void
mg_resume_attempt_end(struct mg_resume *rs, const struct mg_relay *r, int64_t est_in)
{
    int64_t in = rs->cur_in >= 0 ? rs->cur_in
               : r->have_usage && r->usage.input >= 0 ? r->usage.input : est_in;
    /* a cut stream's usage is seldom whole (Anthropic's message_start says 1): the estimate,
     * one token an output event, unless the attempt's own final count went by */
    int64_t out = rs->cur_out >= 0 ? rs->cur_out : rs->events;

    if (rs->first_input < 0) {
        rs->first_input = in;
    }
    rs->out_before = mg_tokens_add(rs->out_before, out);
    rs->debit_in = mg_tokens_add(rs->debit_in < 0 ? 0 : rs->debit_in, in);
    rs->debit_out = mg_tokens_add(rs->debit_out < 0 ? 0 : rs->debit_out, out);
}

int
mg_resume_prefill(struct mg_resume *rs, const char **text, size_t *len)
{
    size_t n = rs->text.len;

    while (n > 0 && is_ws(rs->text.data[n - 1])) {
        n--;
    }
    if (!rs->ok || n == 0) {
        return MG_ERR;
    }
    rs->ws_len = rs->text.len - n < sizeof(rs->ws) ? rs->text.len - n : sizeof(rs->ws);
    memcpy(rs->ws, rs->text.data + n, rs->ws_len);
    rs->ws_pos = 0;
    rs->continuing = 1;
    rs->reopen = rs->open_block >= 0;   /* Anthropic's: where the continuation's blocks go */
    rs->base = rs->reopen ? rs->open_block : rs->nblocks;
    *text = rs->text.data;
    *len = n;
    return MG_OK;
}
