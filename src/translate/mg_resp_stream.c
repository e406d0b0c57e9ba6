/*
 * mg_resp_stream — a chat chunk stream as the Responses API's response.* events.
 *
 * Each chat chunk is parsed once (jansson); events are written by hand into the caller's buffer.
 * One item is open at a time: a message (text or refusal parts) or a function call. It ends when
 * the next starts or at the finish; its JSON is then kept (items) for the final Response, which
 * response.completed / .incomplete / .failed carry whole. A fragment for a tool call that has
 * already ended is a broken frame.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_jload.h"
#include "mg_resp_int.h"

#define NO_ITEM  0
#define MSG_ITEM 'm'
#define FC_ITEM  'f'

#define PART_NONE    0
#define PART_TEXT    1
#define PART_REFUSAL 2

struct mg_resp_stream {
    struct mg_resp_ctx  *c;
    long long            seq;        /* the next sequence_number */
    int                  committed;
    int                  finished;
    int                  done;
    int                  n;          /* the open item's output index (or the next one's) */
    int                  open;       /* NO_ITEM, MSG_ITEM, FC_ITEM */
    int                  part;       /* the open message's open part: PART_* */
    int                  nparts;     /* parts ended in the open message */
    int64_t              call_index; /* the open call's chat index */
    int64_t              max_index;  /* the largest chat tool call index seen, -1 none */
    char                 item_id[MG_RESP_ID_MAX + 16];
    char                 finish[32];
    struct mg_buf        parts;      /* the open message's ended parts, comma-separated */
    struct mg_buf        text;       /* the open part's text, or the open call's arguments */
    struct mg_buf        call_id;
    struct mg_buf        name;
    struct mg_buf        items;      /* ended items, comma-separated */
    struct mg_buf        scratch;    /* an item being rendered; multi-line data joined */
    struct mg_buf        final;      /* the final Response */
    struct mg_resp_usage usage;      /* the backend's */
    struct mg_resp_usage estimate;   /* the caller's, when the backend gives none */
    int                  have_usage;
    char                 error[256];
};

struct mg_resp_stream *
mg_resp_stream_create(struct mg_resp_ctx *c, size_t cap)
{
    struct mg_resp_stream *s = mg_calloc(1, sizeof(*s));

    s->c = c;
    s->max_index = -1;
    mg_buf_init(&s->parts, cap);
    mg_buf_init(&s->text, cap);
    mg_buf_init(&s->call_id, 256);
    mg_buf_init(&s->name, 1024);
    mg_buf_init(&s->items, cap);
    mg_buf_init(&s->scratch, cap + 4096);
    mg_buf_init(&s->final, cap + cap / 2 + 65536);
    s->usage.input = s->usage.output = s->usage.cached = s->usage.reasoning = -1;
    s->estimate = s->usage;
    return s;
}

void
mg_resp_stream_destroy(struct mg_resp_stream *s)
{
    if (s == NULL) {
        return;
    }
    mg_buf_deinit(&s->parts);
    mg_buf_deinit(&s->text);
    mg_buf_deinit(&s->call_id);
    mg_buf_deinit(&s->name);
    mg_buf_deinit(&s->items);
    mg_buf_deinit(&s->scratch);
    mg_buf_deinit(&s->final);
    free(s);
}

/* ---- event writing ---- */

static int
ev_open(struct mg_resp_stream *s, struct mg_buf *out, const char *type)
{
    return mg_buf_printf(out, "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%lld", type,
                         type, s->seq++);
}

static int
ev_close(struct mg_buf *out)
{
    return mg_buf_add(out, "}\n\n", 3);
}

/* An event whose other members are a response: {"type", "sequence_number", "response"}. */
static int
ev_response(struct mg_resp_stream *s, struct mg_buf *out, const char *type, const char *r,
            size_t n)
{
    int rc = ev_open(s, out, type);

    rc = rc == MG_OK ? mg_buf_adds(out, ",\"response\":") : rc;
    rc = rc == MG_OK ? mg_buf_add(out, r, n) : rc;
    return rc == MG_OK ? ev_close(out) : rc;
}

/* {"type", "sequence_number", "item_id", "output_index"[, "content_index"] */
static int
ev_item(struct mg_resp_stream *s, struct mg_buf *out, const char *type, int with_part)
{
    int rc = ev_open(s, out, type);

    rc = rc == MG_OK ? mg_buf_printf(out, ",\"item_id\":\"%s\",\"output_index\":%d", s->item_id,
                                     s->n) : rc;
    return rc == MG_OK && with_part ? mg_buf_printf(out, ",\"content_index\":%d", s->nparts) : rc;
}

static int
commit(struct mg_resp_stream *s, struct mg_buf *out)
{
    int rc;

    if (s->committed) {
        return MG_OK;
    }
    mg_buf_reset(&s->scratch);
    rc = mg_resp_write_response(s->c, "in_progress", -1, NULL, 0, NULL, "", 0, NULL,
                                &s->scratch);
    rc = rc == MG_OK ? ev_response(s, out, "response.created", s->scratch.data, s->scratch.len)
                     : rc;
    rc = rc == MG_OK ? ev_response(s, out, "response.in_progress", s->scratch.data,
                                   s->scratch.len) : rc;
    s->committed = 1;
    return rc;
}

/* The open item's JSON into s->scratch (an open part included as it stands). */
static int
render_open(struct mg_resp_stream *s, const char *status)
{
    int rc = MG_OK;
    size_t plen = s->parts.len;

    mg_buf_reset(&s->scratch);
    if (s->open == FC_ITEM) {
        return mg_resp_write_fc(&s->scratch, s->c, s->n, status, s->call_id.data, s->call_id.len,
                                s->name.data, s->name.len, s->text.data, s->text.len);
    }
    if (s->part != PART_NONE) {
        rc = plen > 0 ? mg_buf_add(&s->parts, ",", 1) : MG_OK;
        rc = rc == MG_OK ? mg_resp_write_part(&s->parts, s->part == PART_REFUSAL, s->text.data,
                                              s->text.len) : rc;
    }
    rc = rc == MG_OK ? mg_resp_write_msg(&s->scratch, s->c, s->n, status, s->parts.data,
                                         s->parts.len) : rc;
    s->parts.len = plen;   /* the open part stays open */
    if (s->parts.data != NULL) {
        s->parts.data[plen] = '\0';
    }
    return rc;
}

static int
close_part(struct mg_resp_stream *s, struct mg_buf *out)
{
    int refusal = s->part == PART_REFUSAL, rc;
    size_t at;

    rc = ev_item(s, out, refusal ? "response.refusal.done" : "response.output_text.done", 1);
    rc = rc == MG_OK ? mg_buf_adds(out, refusal ? ",\"refusal\":" : ",\"text\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, s->text.data, s->text.len) : rc;
    rc = rc == MG_OK && !refusal ? mg_buf_adds(out, ",\"logprobs\":[]") : rc;
    rc = rc == MG_OK ? ev_close(out) : rc;
    rc = rc == MG_OK ? ev_item(s, out, "response.content_part.done", 1) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"part\":") : rc;
    at = out->len;
    rc = rc == MG_OK ? mg_resp_write_part(out, refusal, s->text.data, s->text.len) : rc;
    if (rc == MG_OK) {
        rc = s->parts.len > 0 ? mg_buf_add(&s->parts, ",", 1) : MG_OK;
        rc = rc == MG_OK ? mg_buf_add(&s->parts, out->data + at, out->len - at) : rc;
    }
    rc = rc == MG_OK ? ev_close(out) : rc;
    s->nparts++;
    s->part = PART_NONE;
    mg_buf_reset(&s->text);
    return rc;
}

static int
close_item(struct mg_resp_stream *s, struct mg_buf *out, const char *status)
{
    int rc = MG_OK;

    if (s->open == NO_ITEM) {
        return MG_OK;
    }
    if (s->open == MSG_ITEM && s->part != PART_NONE) {
        rc = close_part(s, out);
    } else if (s->open == FC_ITEM) {
        rc = ev_item(s, out, "response.function_call_arguments.done", 0);
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"name\":") : rc;
        rc = rc == MG_OK ? mg_json_quote(out, s->name.data, s->name.len) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"arguments\":") : rc;
        rc = rc == MG_OK ? mg_json_quote(out, s->text.data, s->text.len) : rc;
        rc = rc == MG_OK ? ev_close(out) : rc;
    }
    rc = rc == MG_OK ? render_open(s, status) : rc;
    rc = rc == MG_OK ? ev_open(s, out, "response.output_item.done") : rc;
    rc = rc == MG_OK ? mg_buf_printf(out, ",\"output_index\":%d,\"item\":", s->n) : rc;
    rc = rc == MG_OK ? mg_buf_add(out, s->scratch.data, s->scratch.len) : rc;
    rc = rc == MG_OK ? ev_close(out) : rc;
    if (rc == MG_OK) {
        rc = s->items.len > 0 ? mg_buf_add(&s->items, ",", 1) : MG_OK;
        rc = rc == MG_OK ? mg_buf_add(&s->items, s->scratch.data, s->scratch.len) : rc;
    }
    s->open = NO_ITEM;
    s->n++;
    mg_buf_reset(&s->text);
    mg_buf_reset(&s->parts);
    return rc;
}

static int
open_item(struct mg_resp_stream *s, struct mg_buf *out, int kind)
{
    int rc = close_item(s, out, "completed");

    s->open = kind;
    s->part = PART_NONE;
    s->nparts = 0;
    mg_resp_item_id(s->c, kind == FC_ITEM ? 'f' : 'm', s->n, s->item_id, sizeof(s->item_id));
    mg_buf_reset(&s->scratch);
    if (rc == MG_OK) {
        rc = kind == FC_ITEM ? mg_resp_write_fc(&s->scratch, s->c, s->n, "in_progress",
                                                s->call_id.data, s->call_id.len, s->name.data,
                                                s->name.len, "", 0)
                             : mg_resp_write_msg(&s->scratch, s->c, s->n, "in_progress", "", 0);
    }
    rc = rc == MG_OK ? ev_open(s, out, "response.output_item.added") : rc;
    rc = rc == MG_OK ? mg_buf_printf(out, ",\"output_index\":%d,\"item\":", s->n) : rc;
    rc = rc == MG_OK ? mg_buf_add(out, s->scratch.data, s->scratch.len) : rc;
    return rc == MG_OK ? ev_close(out) : rc;
}

/* Text (PART_TEXT) or refusal text for the open message, opening what must be. */
static int
text_delta(struct mg_resp_stream *s, struct mg_buf *out, int kind, const char *t, size_t n)
{
    int rc = MG_OK;

    if (s->open != MSG_ITEM) {
        rc = open_item(s, out, MSG_ITEM);
    }
    if (rc == MG_OK && s->part != kind) {
        rc = s->part != PART_NONE ? close_part(s, out) : MG_OK;
        s->part = kind;
        rc = rc == MG_OK ? ev_item(s, out, "response.content_part.added", 1) : rc;
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"part\":") : rc;
        rc = rc == MG_OK ? mg_resp_write_part(out, kind == PART_REFUSAL, "", 0) : rc;
        rc = rc == MG_OK ? ev_close(out) : rc;
    }
    rc = rc == MG_OK ? ev_item(s, out, kind == PART_REFUSAL ? "response.refusal.delta"
                                                             : "response.output_text.delta", 1)
                     : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"delta\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, t, n) : rc;
    rc = rc == MG_OK && kind == PART_TEXT ? mg_buf_adds(out, ",\"logprobs\":[]") : rc;
    rc = rc == MG_OK ? ev_close(out) : rc;
    return rc == MG_OK ? mg_buf_add(&s->text, t, n) : rc;
}

static int
fail_frame(struct mg_resp_stream *s, const char *msg)
{
    snprintf(s->error, sizeof(s->error), "%s", msg);
    return MG_RESP_ESTREAM;
}

static int
tool_delta(struct mg_resp_stream *s, struct mg_buf *out, const json_t *tc, size_t pos)
{
    const json_t *fn = json_object_get(tc, "function"), *v = json_object_get(tc, "index");
    const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
    int64_t idx = json_is_integer(v) ? json_integer_value(v) : (int64_t)pos;
    int rc = MG_OK;

    if (s->open != FC_ITEM || idx != s->call_index) {
        const json_t *id = json_object_get(tc, "id");
        char cid[48];

        if (idx <= s->max_index || idx < 0) {
            return fail_frame(s, "A tool call fragment arrived for a call that had ended.");
        }
        /* the item's JSON is rendered from call_id and name, before open_item ends the last */
        rc = close_item(s, out, "completed");
        mg_buf_reset(&s->call_id);
        mg_buf_reset(&s->name);
        if (json_is_string(id) && json_string_length(id) > 0) {
            rc = rc == MG_OK ? mg_buf_add(&s->call_id, json_string_value(id),
                                          json_string_length(id)) : rc;
        } else {
            mg_resp_call_id(s->c, s->n, cid, sizeof(cid));
            rc = rc == MG_OK ? mg_buf_adds(&s->call_id, cid) : rc;
        }
        if (json_is_string(name)) {
            rc = rc == MG_OK ? mg_buf_add(&s->name, json_string_value(name),
                                          json_string_length(name)) : rc;
        }
        rc = rc == MG_OK ? open_item(s, out, FC_ITEM) : rc;
        s->call_index = s->max_index = idx;
    } else if (s->name.len == 0 && json_is_string(name)) {
        rc = mg_buf_add(&s->name, json_string_value(name), json_string_length(name));
    }
    if (rc == MG_OK && json_is_string(args) && json_string_length(args) > 0) {
        rc = ev_item(s, out, "response.function_call_arguments.delta", 0);
        rc = rc == MG_OK ? mg_buf_adds(out, ",\"delta\":") : rc;
        rc = rc == MG_OK ? mg_json_quote(out, json_string_value(args), json_string_length(args))
                         : rc;
        rc = rc == MG_OK ? ev_close(out) : rc;
        rc = rc == MG_OK ? mg_buf_add(&s->text, json_string_value(args), json_string_length(args))
                         : rc;
    }
    return rc;
}

static const char *
item_status(const struct mg_resp_stream *s)
{
    return strcmp(s->finish, "length") == 0 || strcmp(s->finish, "content_filter") == 0
           ? "incomplete" : "completed";
}

/* One parsed chat chunk. */
static int
chunk(struct mg_resp_stream *s, const json_t *ch, struct mg_buf *out)
{
    const json_t *choice = json_array_get(json_object_get(ch, "choices"), 0);
    const json_t *delta = json_object_get(choice, "delta"), *usage = json_object_get(ch, "usage");
    const json_t *content = json_object_get(delta, "content");
    const json_t *refusal = json_object_get(delta, "refusal");
    const json_t *calls = json_object_get(delta, "tool_calls");
    const json_t *finish = json_object_get(choice, "finish_reason"), *err;
    int rc = MG_OK;
    size_t i;

    if ((err = json_object_get(ch, "error")) != NULL) {
        const char *m = json_string_value(json_object_get(err, "message"));
        return fail_frame(s, m != NULL ? m : "The backend sent an error.");
    }
    if (json_is_object(usage)) {
        mg_resp_usage_read(usage, &s->usage);
        s->have_usage = 1;
    }
    if (s->finished) {
        return MG_OK;   /* after the finish only usage counts */
    }
    if ((json_is_string(content) && json_string_length(content) > 0)
        || (json_is_string(refusal) && json_string_length(refusal) > 0)
        || json_array_size(calls) > 0 || json_is_string(finish) || json_is_object(usage)) {
        rc = commit(s, out);
    }
    if (rc == MG_OK && json_is_string(content) && json_string_length(content) > 0) {
        rc = text_delta(s, out, PART_TEXT, json_string_value(content),
                        json_string_length(content));
    }
    if (rc == MG_OK && json_is_string(refusal) && json_string_length(refusal) > 0) {
        rc = text_delta(s, out, PART_REFUSAL, json_string_value(refusal),
                        json_string_length(refusal));
    }
    for (i = 0; rc == MG_OK && i < json_array_size(calls); i++) {
        rc = tool_delta(s, out, json_array_get(calls, i), i);
    }
    if (rc == MG_OK && json_is_string(finish)) {
        snprintf(s->finish, sizeof(s->finish), "%s", json_string_value(finish));
        rc = close_item(s, out, item_status(s));
        s->finished = 1;
    }
    return rc;
}

int
mg_resp_stream_feed(struct mg_resp_stream *s, const char *ev, size_t n, struct mg_buf *out)
{
    const char *p = ev, *end = ev + n, *data = NULL;
    size_t dlen = 0, start = out->len;
    int lines = 0, rc;
    json_t *ch;

    if (s->done) {
        return MG_OK;
    }
    /* the data: lines; one is the rule, several are joined with \n (SSE) */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl != NULL ? nl : end;
        size_t l = (size_t)(le - p);

        if (l > 0 && p[l - 1] == '\r') {
            l--;
        }
        if (l >= 5 && memcmp(p, "data:", 5) == 0) {
            const char *d = p + 5 + (l > 5 && p[5] == ' ');
            size_t dl = l - (size_t)(d - p);

            if (lines == 1) {
                mg_buf_reset(&s->scratch);
                if (mg_buf_add(&s->scratch, data, dlen) != MG_OK) {
                    return MG_ETOOBIG;
                }
            }
            if (lines >= 1 && (mg_buf_add(&s->scratch, "\n", 1) != MG_OK
                               || mg_buf_add(&s->scratch, d, dl) != MG_OK)) {
                return MG_ETOOBIG;
            }
            data = d;
            dlen = dl;
            lines++;
        }
        p = le + (nl != NULL);
    }
    if (lines > 1) {
        data = s->scratch.data;
        dlen = s->scratch.len;
    }
    if (lines == 0 || (dlen == 6 && memcmp(data, "[DONE]", 6) == 0)) {
        return MG_OK;
    }
    if ((ch = mg_jload(data, dlen, 0)) == NULL || !json_is_object(ch)) {
        json_decref(ch);
        return fail_frame(s, "The backend sent a chunk that cannot be read.");
    }
    rc = chunk(s, ch, out);
    json_decref(ch);
    if (rc == MG_ETOOBIG) {
        out->len = start;
        if (out->data != NULL) {
            out->data[start] = '\0';
        }
    }
    return rc;
}

void
mg_resp_stream_set_usage(struct mg_resp_stream *s, const struct mg_usage *u)
{
    s->estimate.input = u->input;
    s->estimate.output = u->output;
}

/* Ends the stream with its final Response (status; err: a failure's message) in an event. */
static int
finish_with(struct mg_resp_stream *s, const char *type, const char *status, int64_t now,
            const char *err, size_t errlen, const char *incomplete, struct mg_buf *out)
{
    int rc = MG_OK;
    size_t ilen = s->items.len;

    if (s->open != NO_ITEM) {
        /* only a failure leaves an item open: it goes into the output as incomplete */
        rc = render_open(s, "incomplete");
        rc = rc == MG_OK && ilen > 0 ? mg_buf_add(&s->items, ",", 1) : rc;
        rc = rc == MG_OK ? mg_buf_add(&s->items, s->scratch.data, s->scratch.len) : rc;
    }
    mg_buf_reset(&s->final);
    rc = rc == MG_OK ? mg_resp_write_response(s->c, status, now, err, errlen, incomplete,
                                              s->items.data, s->items.len,
                                              s->have_usage ? &s->usage : &s->estimate,
                                              &s->final) : rc;
    rc = rc == MG_OK ? ev_response(s, out, type, s->final.data, s->final.len) : rc;
    s->done = 1;
    return rc;
}

int
mg_resp_stream_fail(struct mg_resp_stream *s, const char *msg, size_t n, struct mg_buf *out)
{
    int rc;

    if (s->done) {
        return MG_OK;
    }
    rc = commit(s, out);
    rc = rc == MG_OK ? ev_open(s, out, "error") : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"code\":\"upstream_stream_error\",\"message\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, msg, n) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"param\":null,\"error\":{\"type\":\"upstream_error\","
                                   "\"code\":\"upstream_stream_error\",\"message\":") : rc;
    rc = rc == MG_OK ? mg_json_quote(out, msg, n) : rc;
    rc = rc == MG_OK ? mg_buf_adds(out, ",\"param\":null}") : rc;
    rc = rc == MG_OK ? ev_close(out) : rc;
    return rc == MG_OK ? finish_with(s, "response.failed", "failed", -1, msg, n, NULL, out) : rc;
}

int
mg_resp_stream_end(struct mg_resp_stream *s, int64_t now, struct mg_buf *out)
{
    static const char cut[] = "The backend's stream ended before the response was complete.";
    const char *incomplete = NULL;

    if (s->done) {
        return MG_OK;
    }
    if (!s->committed) {
        return MG_ERR;
    }
    if (!s->finished) {
        return mg_resp_stream_fail(s, cut, sizeof(cut) - 1, out);
    }
    if (strcmp(s->finish, "length") == 0) {
        incomplete = "max_output_tokens";
    } else if (strcmp(s->finish, "content_filter") == 0) {
        incomplete = "content_filter";
    }
    return incomplete != NULL
           ? finish_with(s, "response.incomplete", "incomplete", -1, NULL, 0, incomplete, out)
           : finish_with(s, "response.completed", "completed", now, NULL, 0, NULL, out);
}

void
mg_resp_stream_state(const struct mg_resp_stream *s, struct mg_resp_stream_state *st)
{
    st->committed = s->committed;
    st->finished = s->finished;
    st->done = s->done;
    st->usage.input = s->usage.input;
    st->usage.output = s->usage.output;
}

const char *
mg_resp_stream_error(const struct mg_resp_stream *s)
{
    return s->error;
}

int
mg_resp_stream_response(const struct mg_resp_stream *s, struct mg_buf *out)
{
    if (!s->done) {
        return MG_ERR;
    }
    return mg_buf_add(out, s->final.data, s->final.len);
}
