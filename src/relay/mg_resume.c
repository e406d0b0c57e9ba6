/*
 * mg_resume — the relay stage of mid-stream resume: what was relayed, and the continuation
 * spliced into the client's stream (include/mg_resume.h). It reads each chunk with jansson: only
 * requests whose rule has resume: true pay for it.
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
dedup(struct mg_resume *rs, json_t *delta)
{
    json_t *content = json_object_get(delta, "content");
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
        json_object_set_new(delta, "content", json_stringn(t + n, len - n));
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
    dedup(rs, delta);
    if (json_object_size(delta) == 0 ||
        (json_object_size(delta) == 1 && !present(json_object_get(delta, "content")))) {
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
}

void
mg_resume_deinit(struct mg_resume *rs)
{
    mg_buf_deinit(&rs->text);
    mg_buf_deinit(&rs->ev);
}

void
mg_resume_add(struct mg_resume *rs, struct mg_relay *r)
{
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
    int64_t out = rs->cur_out >= 0 ? rs->cur_out
                : r->have_usage && r->usage.output >= 0 ? r->usage.output : rs->events;

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
    *text = rs->text.data;
    *len = n;
    return MG_OK;
}
