/*
 * mg_gemini_stream — Gemini's streamGenerateContent (alt=sse) events into chat.completion.chunk
 * events (see mg_gemini.h): each event is an answer so far, its parts sent as deltas, its
 * finishReason as the finish chunk; Gemini has no end event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_gemini.h"
#include "mg_gemini_int.h"
#include "mg_jload.h"
#include "mg_util.h"

struct mg_gemini_stream {
    struct mg_oai_stream st;
    struct mg_buf        data;     /* the data lines of the event being read */
    char                 id[200];  /* the stream's id, for the calls' ids */
};

struct mg_gemini_stream *
mg_gemini_stream_create(const char *client_model, int64_t now, int include_usage,
                        const char *fallback_id)
{
    struct mg_gemini_stream *s = mg_calloc(1, sizeof(*s));

    mg_oai_stream_init(&s->st, client_model, now, include_usage, fallback_id);
    mg_buf_init(&s->data, MG_SSE_EVENT_MAX);
    snprintf(s->id, sizeof(s->id), "%s", fallback_id != NULL ? fallback_id : "chatcmpl-modelgate");
    return s;
}

void
mg_gemini_stream_destroy(struct mg_gemini_stream *s)
{
    if (s == NULL) {
        return;
    }
    mg_oai_stream_deinit(&s->st);
    mg_buf_deinit(&s->data);
    free(s);
}

struct mg_oai_stream *
mg_gemini_stream_state(struct mg_gemini_stream *s)
{
    return &s->st;
}

static int
fail(struct mg_gemini_stream *s, const char *msg)
{
    return mg_oai_stream_fail(&s->st, msg, strlen(msg));
}

/* The data lines of one raw SSE event, joined into s->data: how many there were, or -1. */
static int
event_data(struct mg_gemini_stream *s, const char *p, size_t n)
{
    const char *end = p + n, *line = p;
    int rc = MG_OK, ndata = 0;

    mg_buf_reset(&s->data);
    while (line < end && rc == MG_OK) {
        const char *nl = memchr(line, '\n', (size_t)(end - line)), *eol = nl ? nl : end;

        if (eol > line && eol[-1] == '\r') {
            eol--;
        }
        if (eol - line >= 5 && memcmp(line, "data:", 5) == 0) {
            const char *v = line + 5 + (eol - line > 5 && line[5] == ' ');
            rc = ndata++ ? mg_buf_add(&s->data, "\n", 1) : MG_OK;
            rc = rc ? rc : mg_buf_add(&s->data, v, (size_t)(eol - v));
        }
        line = nl ? nl + 1 : end;
    }
    return rc == MG_OK ? ndata : -1;
}

static int
stream_call(struct mg_gemini_stream *s, json_t *part, json_t *fc, struct mg_buf *out)
{
    json_t *name = json_object_get(fc, "name"), *args = json_object_get(fc, "args");
    int64_t block = s->st.tools;
    struct mg_buf a;
    char *id;
    int rc;

    if (!json_is_string(name)) {
        return fail(s, "the backend sent a functionCall without a name");
    }
    id = mg_gemini_call_id(part, (size_t)block, s->id);
    rc = mg_oai_stream_tool_start(&s->st, block, id, strlen(id), json_string_value(name),
                                  json_string_length(name), out);
    free(id);
    if (rc != MG_OK || args == NULL) {
        return rc;
    }
    mg_buf_init(&a, out->cap);
    rc = mg_chatreq_dump(args, &a);
    rc = rc ? rc : mg_oai_stream_tool_args(&s->st, block, a.data, a.len, out);
    mg_buf_deinit(&a);
    return rc;
}

static int
stream_chunk(struct mg_gemini_stream *s, json_t *ev, struct mg_buf *out)
{
    json_t *cand = json_array_get(json_object_get(ev, "candidates"), 0), *p, *t, *fc;
    json_t *rid = json_object_get(ev, "responseId");
    const char *reason = json_string_value(json_object_get(cand, "finishReason"));
    size_t i;
    int rc = MG_OK;

    if (!s->st.started) {
        if (json_is_string(rid) && json_string_length(rid) > 0) {
            snprintf(s->id, sizeof(s->id), "chatcmpl-%s", json_string_value(rid));
        }
        rc = mg_oai_stream_start(&s->st, s->id, strlen(s->id), out);
    }
    mg_gemini_read_usage(json_object_get(ev, "usageMetadata"), &s->st.usage);
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        if (rc != MG_OK) {
            return rc;
        }
        if ((t = mg_gemini_part_text(p)) != NULL) {
            rc = mg_oai_stream_content(&s->st, json_string_value(t), json_string_length(t), out);
        } else if ((fc = json_object_get(p, "functionCall")) != NULL) {
            rc = stream_call(s, p, fc, out);
        }
    }
    if (rc == MG_OK && !s->st.finished && (reason != NULL ||
        (cand == NULL && json_object_get(json_object_get(ev, "promptFeedback"), "blockReason")))) {
        rc = mg_oai_stream_finish(&s->st, reason == NULL ? "content_filter"
                                  : mg_gemini_finish(reason, s->st.tools > 0), out);
    }
    return rc;
}

int
mg_gemini_stream_event(struct mg_gemini_stream *s, const char *p, size_t n, struct mg_buf *out)
{
    json_t *ev, *err, *msg;
    int ndata, rc;

    if (s->st.failed) {
        return MG_OAI_ESTREAM;
    }
    if (s->st.done) {
        return MG_OK;
    }
    ndata = event_data(s, p, n);
    if (ndata < 0) {
        return fail(s, "the backend sent an event too large to read");
    }
    if (ndata == 0) {
        return MG_OK;   /* a comment */
    }
    ev = mg_jload(s->data.data, s->data.len, 0);
    err = json_object_get(ev, "error");
    msg = json_object_get(err, "message");
    if (!json_is_object(ev)) {
        rc = fail(s, "the backend sent an event that cannot be read");
    } else if (err != NULL) {
        rc = json_is_string(msg) ? mg_oai_stream_fail(&s->st, json_string_value(msg),
                                                      json_string_length(msg))
                                 : fail(s, "the backend sent an error event");
    } else {
        rc = stream_chunk(s, ev, out);
    }
    json_decref(ev);
    return rc;
}
