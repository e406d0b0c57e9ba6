/*
 * mg_msg_stream — a chat completions SSE stream -> Anthropic Messages events (SPEC "chat answer
 * → Anthropic Message", its stream table). Each chunk is parsed once (jansson: chunks are small);
 * the events are written by hand into the caller's buffer, nothing allocated per event.
 *
 * Anthropic numbers content blocks (text and tool_use alike) and has one open at a time; chat
 * numbers tool calls and streams them in order. A text after a tool call opens a new block; an
 * argument fragment for an earlier call is a broken frame.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_jload.h"
#include "mg_json.h"
#include "mg_messages.h"
#include "mg_msg_ctx.h"

#define BLOCK_NONE 0
#define BLOCK_TEXT 1
#define BLOCK_TOOL 2

struct mg_msg_stream {
    struct mg_msg_state  st;
    struct mg_msg_ctx   *c;
    int                  open;        /* BLOCK_*: the block now open */
    int64_t              index;       /* the next content block's index */
    int64_t              tool;        /* chat index of the last tool call started, or -1 */
    const char          *stop_reason; /* Anthropic's, set at the finish */
    char                 seq[256];    /* the stop sequence that matched, when short enough */
    int                  has_seq;
    struct mg_msg_usage  usage;
    struct mg_buf        data;        /* a chunk split over several data: lines, joined */
};

struct mg_msg_stream *
mg_msg_stream_create(struct mg_msg_ctx *c)
{
    struct mg_msg_stream *s = mg_calloc(1, sizeof(*s));

    s->c = c;
    s->tool = -1;
    s->st.usage.input = s->st.usage.output = -1;
    s->usage.prompt = s->usage.completion = s->usage.cached = s->usage.written = -1;
    mg_buf_init(&s->data, MG_SSE_EVENT_MAX);
    return s;
}

void
mg_msg_stream_destroy(struct mg_msg_stream *s)
{
    if (s == NULL) {
        return;
    }
    mg_buf_deinit(&s->data);
    free(s);
}

const struct mg_msg_state *
mg_msg_stream_state(const struct mg_msg_stream *s)
{
    return &s->st;
}

static int
fail(struct mg_msg_stream *s, const char *msg, size_t n)
{
    if (n >= sizeof(s->st.error)) {
        n = sizeof(s->st.error) - 1;
    }
    memcpy(s->st.error, msg, n);
    s->st.error[n] = '\0';
    s->st.failed = 1;
    return MG_OAI_ESTREAM;
}

static int
fails(struct mg_msg_stream *s, const char *msg)
{
    return fail(s, msg, strlen(msg));
}

/* ---- writers ---- */

static int
message_start(struct mg_msg_stream *s, struct mg_buf *out)
{
    int rc;

    if (s->st.output) {
        return MG_OK;
    }
    rc = mg_buf_adds(out, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
                     "{\"id\":");
    rc = rc ? rc : mg_json_quote(out, s->c->id, strlen(s->c->id));
    rc = rc ? rc : mg_buf_adds(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    rc = rc ? rc : mg_json_quote(out, s->c->model, s->c->model_len);
    rc = rc ? rc : mg_buf_adds(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                               "\"usage\":{\"input_tokens\":0,\"cache_creation_input_tokens\":0,"
                               "\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n");
    s->st.output = rc == MG_OK;
    return rc;
}

static int
block_stop(struct mg_msg_stream *s, struct mg_buf *out)
{
    int rc;

    if (s->open == BLOCK_NONE) {
        return MG_OK;
    }
    rc = mg_buf_printf(out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                       "\"index\":%lld}\n\n", (long long)s->index);
    s->open = BLOCK_NONE;
    s->index++;
    return rc;
}

static int
text(struct mg_msg_stream *s, json_t *v, struct mg_buf *out)
{
    int rc = MG_OK;

    if (!json_is_string(v) || json_string_length(v) == 0) {
        return MG_OK;
    }
    if (s->open != BLOCK_TEXT) {
        rc = message_start(s, out);
        rc = rc ? rc : block_stop(s, out);
        rc = rc ? rc : mg_buf_printf(out, "event: content_block_start\ndata: {\"type\":"
                                     "\"content_block_start\",\"index\":%lld,\"content_block\":"
                                     "{\"type\":\"text\",\"text\":\"\"}}\n\n",
                                     (long long)s->index);
        s->open = BLOCK_TEXT;
    }
    rc = rc ? rc : mg_buf_printf(out, "event: content_block_delta\ndata: {\"type\":"
                                 "\"content_block_delta\",\"index\":%lld,\"delta\":{\"type\":"
                                 "\"text_delta\",\"text\":", (long long)s->index);
    rc = rc ? rc : mg_json_quote(out, json_string_value(v), json_string_length(v));
    return rc ? rc : mg_buf_adds(out, "}}\n\n");
}

static int
args(struct mg_msg_stream *s, json_t *frag, struct mg_buf *out)
{
    int rc;

    if (!json_is_string(frag) || json_string_length(frag) == 0) {
        return MG_OK;
    }
    rc = mg_buf_printf(out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                       "\"index\":%lld,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                       (long long)s->index);
    rc = rc ? rc : mg_json_quote(out, json_string_value(frag), json_string_length(frag));
    return rc ? rc : mg_buf_adds(out, "}}\n\n");
}

/* One entry of delta.tool_calls: a new call, or a fragment of the open one. */
static int
tool_call(struct mg_msg_stream *s, json_t *tc, struct mg_buf *out)
{
    json_t *fn = json_object_get(tc, "function"), *name = json_object_get(fn, "name");
    json_t *id = json_object_get(tc, "id"), *iv = json_object_get(tc, "index");
    int named = json_is_string(name) && json_string_length(name) > 0;
    /* without an index (some OpenAI-compatible servers), a name starts the next call */
    int64_t ix = json_is_integer(iv) ? (int64_t)json_integer_value(iv)
                 : named || s->tool < 0 ? s->tool + 1 : s->tool;
    char gen[64];
    const char *idv;
    size_t idn;
    int rc;

    if (ix == s->tool && s->open == BLOCK_TOOL) {
        return args(s, json_object_get(fn, "arguments"), out);
    }
    if (ix <= s->tool) {
        return fails(s, "the backend sent a fragment of a finished tool call");
    }
    if (!named) {
        return fails(s, "the backend started a tool call without a name");
    }
    if (json_is_string(id) && json_string_length(id) > 0) {
        idv = json_string_value(id);
        idn = json_string_length(id);
    } else {
        snprintf(gen, sizeof(gen), "toolu_mg%.24s_%lld", s->c->id + 6, (long long)ix);
        idv = gen;
        idn = strlen(gen);
    }
    rc = message_start(s, out);
    rc = rc ? rc : block_stop(s, out);
    rc = rc ? rc : mg_buf_printf(out, "event: content_block_start\ndata: {\"type\":"
                                 "\"content_block_start\",\"index\":%lld,\"content_block\":"
                                 "{\"type\":\"tool_use\",\"id\":", (long long)s->index);
    rc = rc ? rc : mg_json_quote(out, idv, idn);
    rc = rc ? rc : mg_buf_adds(out, ",\"name\":");
    rc = rc ? rc : mg_json_quote(out, json_string_value(name), json_string_length(name));
    rc = rc ? rc : mg_buf_adds(out, ",\"input\":{}}}\n\n");
    s->open = BLOCK_TOOL;
    s->tool = ix;
    return rc ? rc : args(s, json_object_get(fn, "arguments"), out);
}

/* message_delta and message_stop: the end of a finished stream. */
static int
finish(struct mg_msg_stream *s, struct mg_buf *out)
{
    int rc;

    if (s->st.done) {
        return MG_OK;
    }
    rc = message_start(s, out);
    rc = rc ? rc : block_stop(s, out);
    rc = rc ? rc : mg_buf_adds(out, "event: message_delta\ndata: {\"type\":\"message_delta\","
                               "\"delta\":{\"stop_reason\":");
    rc = rc ? rc : mg_json_quote(out, s->stop_reason, strlen(s->stop_reason));
    rc = rc ? rc : mg_buf_adds(out, ",\"stop_sequence\":");
    rc = rc ? rc : s->has_seq ? mg_json_quote(out, s->seq, strlen(s->seq))
                              : mg_buf_adds(out, "null");
    rc = rc ? rc : mg_buf_adds(out, "},\"usage\":");
    rc = rc ? rc : mg_msg_usage_write(&s->usage, out);
    rc = rc ? rc : mg_buf_adds(out, "}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}"
                               "\n\n");
    s->st.done = rc == MG_OK;
    return rc;
}

/* ---- reading chunks ---- */

/* The data of an event (data: lines joined by \n), or NULL when it has none. */
static const char *
event_data(struct mg_msg_stream *s, const char *p, size_t n, size_t *len)
{
    const char *end = p + n, *line = p, *first = NULL;
    size_t first_len = 0;
    int ndata = 0;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line)), *eol = nl ? nl : end;
        const char *v = line + 5;

        if (eol > line && eol[-1] == '\r') {
            eol--;
        }
        if (eol - line >= 5 && memcmp(line, "data:", 5) == 0) {
            v += v < eol && *v == ' ';
            if (ndata == 1) {   /* a second line: join them (rare; one buffer, reused) */
                mg_buf_reset(&s->data);
                if (mg_buf_add(&s->data, first, first_len) != MG_OK) {
                    return NULL;
                }
            }
            if (ndata >= 1 && (mg_buf_add(&s->data, "\n", 1) != MG_OK
                               || mg_buf_add(&s->data, v, (size_t)(eol - v)) != MG_OK)) {
                return NULL;
            }
            if (ndata++ == 0) {
                first = v;
                first_len = (size_t)(eol - v);
            }
        }
        line = nl ? nl + 1 : end;
    }
    if (ndata > 1) {
        *len = s->data.len;
        return s->data.data;
    }
    *len = first_len;
    return first;
}

/* The finish_reason of the chunk: close the open block and remember the stop reason. */
static int
on_finish(struct mg_msg_stream *s, const char *reason, json_t *backend_stop, struct mg_buf *out)
{
    const char *seq = NULL;
    size_t n = 0;
    int matched = 0, rc;

    if (strcmp(reason, "stop") == 0) {
        matched = mg_msg_stop_sequence(s->c, backend_stop, &seq, &n);
    }
    s->stop_reason = mg_msg_stop_reason(reason, matched);
    if (seq != NULL && n < sizeof(s->seq) && memchr(seq, '\0', n) == NULL) {
        memcpy(s->seq, seq, n);
        s->seq[n] = '\0';
        s->has_seq = 1;
    }
    s->st.finished = 1;
    rc = message_start(s, out);
    return rc ? rc : block_stop(s, out);
}

static int
chunk(struct mg_msg_stream *s, json_t *ch, struct mg_buf *out)
{
    json_t *err = json_object_get(ch, "error"), *choice, *delta, *calls, *tc, *usage;
    const char *reason;
    size_t i;
    int rc = MG_OK;

    if (err != NULL && !json_is_null(err)) {
        json_t *msg = json_is_string(err) ? err : json_object_get(err, "message");
        return json_is_string(msg) ? fail(s, json_string_value(msg), json_string_length(msg))
                                   : fails(s, "the backend sent an error event");
    }
    usage = json_object_get(ch, "usage");
    if (json_is_object(usage)) {
        mg_msg_usage_read(usage, &s->usage);
        s->st.usage.input = s->usage.prompt;
        s->st.usage.output = s->usage.completion;
    }
    choice = json_array_get(json_object_get(ch, "choices"), 0);
    delta = json_object_get(choice, "delta");
    if (!s->st.finished) {   /* reasoning deltas are dropped */
        rc = text(s, json_object_get(delta, "content"), out);
        rc = rc ? rc : text(s, json_object_get(delta, "refusal"), out);
        calls = json_object_get(delta, "tool_calls");
        json_array_foreach(calls, i, tc) {
            rc = rc ? rc : tool_call(s, tc, out);
        }
        reason = json_string_value(json_object_get(choice, "finish_reason"));
        if (rc == MG_OK && reason != NULL) {
            rc = on_finish(s, reason, json_object_get(choice, "stop_reason"), out);
        }
    }
    if (rc == MG_OK && s->st.finished && json_is_object(usage)) {
        rc = finish(s, out);   /* the usage after the finish: the answer is whole */
    }
    return rc;
}

int
mg_msg_stream_event(struct mg_msg_stream *s, const char *p, size_t n, struct mg_buf *out)
{
    struct mg_msg_stream keep;
    size_t len = 0, at = out->len;
    const char *d;
    json_t *ch;
    int rc;

    if (s->st.failed) {
        return MG_OAI_ESTREAM;
    }
    if (s->st.done) {
        return MG_OK;
    }
    d = event_data(s, p, n, &len);
    if (d == NULL) {
        return s->data.len >= s->data.cap ? fails(s, "the backend sent an event too large to "
                                                  "read") : MG_OK;   /* a comment */
    }
    if (len == 6 && memcmp(d, "[DONE]", 6) == 0) {
        return s->st.finished ? finish(s, out)
               : fails(s, "the backend ended the stream before its finish_reason");
    }
    ch = mg_jload(d, len, 0);
    if (!json_is_object(ch)) {
        json_decref(ch);
        return fails(s, "the backend sent a chunk that cannot be read");
    }
    keep = *s;
    rc = chunk(s, ch, out);
    json_decref(ch);
    if (rc != MG_OK) {   /* nothing half written, and the state as it was */
        out->len = at;
        if (out->data != NULL) {
            out->data[at] = '\0';
        }
        if (rc != MG_OAI_ESTREAM) {
            keep.data = s->data;
            *s = keep;
        } else {
            s->st.output = keep.st.output;
        }
    }
    return rc;
}

int
mg_msg_stream_end(struct mg_msg_stream *s, struct mg_buf *out)
{
    if (s->st.done) {
        return MG_OK;
    }
    return s->st.finished && !s->st.failed ? finish(s, out) : MG_ERR;
}

int
mg_msg_stream_fail(struct mg_msg_stream *s, const char *msg, size_t n, struct mg_buf *out)
{
    size_t at = out->len;
    int rc;

    if (s->st.done) {
        return MG_OK;
    }

    rc = mg_buf_adds(out, "event: error\ndata: ");
    rc = rc ? rc : mg_msg_error_body("api_error", msg, n, out);
    rc = rc ? rc : mg_buf_adds(out, "\n\n");
    s->st.done = rc == MG_OK;
    if (rc != MG_OK) {
        out->len = at;
        if (out->data != NULL) {
            out->data[at] = '\0';
        }
    }
    return rc;
}
