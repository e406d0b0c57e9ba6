/*
 * mg_oai — OpenAI's answer, chunk and error shapes, written by hand with mg_json_quote.
 *
 * A stream writes many small chunks; each is the shared head plus a short tail, so the cost of a
 * chunk is a copy of the head and the quoting of its text. Writers never leave half a chunk in
 * the caller's buffer: on MG_ETOOBIG the buffer is put back to its length before the call.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_json.h"
#include "mg_oai.h"

#define CHOICE_OPEN  "[{\"index\":0,\"delta\":{"
#define CHOICE_CLOSE "},\"logprobs\":null,\"finish_reason\":null}]}\n\n"

void
mg_oai_usage_init(struct mg_oai_usage *u)
{
    u->input = u->output = u->cache_read = u->cache_write = -1;
}

static int64_t
known(int64_t v)
{
    return v < 0 ? 0 : v;
}

void
mg_oai_usage_totals(const struct mg_oai_usage *u, struct mg_usage *out)
{
    if (u->input < 0 && u->cache_read < 0 && u->cache_write < 0) {
        out->input = -1;
    } else {
        /* saturating: three counts near 2^53 must not overflow (mg_tokens_add) */
        out->input = mg_tokens_add(mg_tokens_add(u->input, u->cache_read), u->cache_write);
    }
    out->output = u->output;
    out->cached = u->cache_read;
    out->written = u->cache_write;
}

int
mg_oai_usage_json(const struct mg_oai_usage *u, struct mg_buf *out)
{
    struct mg_usage t;

    int rc;

    mg_oai_usage_totals(u, &t);
    rc = mg_buf_adds(out, "{\"prompt_tokens\":");
    rc = rc ? rc : mg_buf_int(out, known(t.input));
    rc = rc ? rc : mg_buf_adds(out, ",\"completion_tokens\":");
    rc = rc ? rc : mg_buf_int(out, known(t.output));
    rc = rc ? rc : mg_buf_adds(out, ",\"total_tokens\":");
    rc = rc ? rc : mg_buf_int(out, mg_tokens_add(t.input, t.output));
    rc = rc ? rc : mg_buf_adds(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    rc = rc ? rc : mg_buf_int(out, known(u->cache_read));
    /* cache writes stay in prompt_tokens; said apart too for the Messages translator's
     * cache_creation_input_tokens (SPEC "chat answer -> Anthropic Message"); none, no field */
    if (u->cache_write > 0) {
        rc = rc ? rc : mg_buf_adds(out, ",\"cache_creation_tokens\":");
        rc = rc ? rc : mg_buf_int(out, u->cache_write);
    }
    return rc ? rc : mg_buf_adds(out, "}}");
}

void
mg_oai_stream_init(struct mg_oai_stream *st, const char *model, int64_t now, int include_usage,
                   const char *fallback_id)
{
    memset(st, 0, sizeof(*st));
    mg_buf_init(&st->head, 4096);
    st->model = mg_strdup(model != NULL ? model : "");
    st->fallback_id = mg_strdup(fallback_id != NULL && *fallback_id ? fallback_id
                                : "chatcmpl-modelgate");
    st->created = now;
    st->include_usage = include_usage;
    mg_oai_usage_init(&st->usage);
}

void
mg_oai_stream_deinit(struct mg_oai_stream *st)
{
    mg_buf_deinit(&st->head);
    free(st->tool_of);
    st->tool_of = NULL;
    st->nblocks = 0;
    free(st->model);
    free(st->fallback_id);
    st->model = st->fallback_id = NULL;
}

int
mg_oai_stream_fail(struct mg_oai_stream *st, const char *msg, size_t n)
{
    if (n >= sizeof(st->error)) {
        n = sizeof(st->error) - 1;
    }
    memcpy(st->error, msg, n);
    st->error[n] = '\0';
    st->failed = 1;
    return MG_OAI_ESTREAM;
}

/* Puts out back to len when rc is an error, so that no half chunk is left. */
static int
undo(struct mg_buf *out, size_t len, int rc)
{
    if (rc != MG_OK) {
        out->len = len;
        if (out->data != NULL) {
            out->data[len] = '\0';
        }
    }
    return rc;
}

/* undo() for a writer that may have started the stream on the way. */
static int
undo_st(struct mg_oai_stream *st, int was_started, struct mg_buf *out, size_t len, int rc)
{
    if (rc != MG_OK) {
        st->started = was_started;
    }
    return undo(out, len, rc);
}

static int
build_head(struct mg_oai_stream *st, const char *id, size_t id_len)
{
    int rc;

    if (id == NULL || id_len == 0) {
        id = st->fallback_id;
        id_len = strlen(id);
    }
    rc = mg_buf_adds(&st->head, "data: {\"id\":");
    rc = rc ? rc : mg_json_quote(&st->head, id, id_len);
    rc = rc ? rc : mg_buf_printf(&st->head, ",\"object\":\"chat.completion.chunk\",\"created\":%"
                                 PRId64 ",\"model\":", st->created);
    rc = rc ? rc : mg_json_quote(&st->head, st->model, strlen(st->model));
    return rc ? rc : mg_buf_adds(&st->head, ",\"choices\":");
}

int
mg_oai_stream_start(struct mg_oai_stream *st, const char *id, size_t id_len, struct mg_buf *out)
{
    size_t len = out->len;
    int rc;

    if (st->started) {
        return MG_OK;
    }
    mg_buf_reset(&st->head);
    rc = build_head(st, id, id_len);
    rc = rc ? rc : mg_buf_add(out, st->head.data, st->head.len);
    rc = rc ? rc : mg_buf_adds(out, CHOICE_OPEN "\"role\":\"assistant\",\"content\":\"\""
                               CHOICE_CLOSE);
    st->started = rc == MG_OK;
    return undo(out, len, rc);
}

/* head + the opening of choice 0's delta. */
static int
open_delta(struct mg_oai_stream *st, struct mg_buf *out)
{
    int rc = mg_oai_stream_start(st, NULL, 0, out);

    rc = rc ? rc : mg_buf_add(out, st->head.data, st->head.len);
    return rc ? rc : mg_buf_adds(out, CHOICE_OPEN);
}

int
mg_oai_stream_content(struct mg_oai_stream *st, const char *text, size_t n, struct mg_buf *out)
{
    size_t len = out->len;
    int was = st->started;
    int rc;

    if (n == 0) {
        return MG_OK;
    }
    rc = open_delta(st, out);
    rc = rc ? rc : mg_buf_adds(out, "\"content\":");
    rc = rc ? rc : mg_json_quote(out, text, n);
    rc = rc ? rc : mg_buf_adds(out, CHOICE_CLOSE);
    st->output |= rc == MG_OK;
    return undo_st(st, was, out, len, rc);
}

/* Records that content block block is tool call tool. */
static int
map_block(struct mg_oai_stream *st, int64_t block, int tool)
{
    size_t i, n;
    static const char bad[] = "the backend sent a bad content block index";

    if (block < 0 || block >= MG_OAI_MAX_BLOCKS) {
        return mg_oai_stream_fail(st, bad, sizeof(bad) - 1);
    }
    if ((size_t)block >= st->nblocks) {
        n = (size_t)block + 16;
        st->tool_of = mg_realloc(st->tool_of, n * sizeof(*st->tool_of));
        for (i = st->nblocks; i < n; i++) {
            st->tool_of[i] = -1;
        }
        st->nblocks = n;
    }
    st->tool_of[block] = tool;
    return MG_OK;
}

int
mg_oai_stream_tool_start(struct mg_oai_stream *st, int64_t block, const char *id, size_t id_len,
                         const char *name, size_t name_len, struct mg_buf *out)
{
    size_t len = out->len;
    int was = st->started;
    int rc = map_block(st, block, st->tools);

    rc = rc ? rc : open_delta(st, out);
    rc = rc ? rc : mg_buf_printf(out, "\"tool_calls\":[{\"index\":%d,\"id\":", st->tools);
    rc = rc ? rc : mg_json_quote(out, id, id_len);
    rc = rc ? rc : mg_buf_adds(out, ",\"type\":\"function\",\"function\":{\"name\":");
    rc = rc ? rc : mg_json_quote(out, name, name_len);
    rc = rc ? rc : mg_buf_adds(out, ",\"arguments\":\"\"}}]" CHOICE_CLOSE);
    if (rc == MG_OK) {
        st->output = 1;
        st->tools++;
    } else if (rc != MG_OAI_ESTREAM) {
        st->tool_of[block] = -1;
    }
    return undo_st(st, was, out, len, rc);
}

int
mg_oai_stream_tool_args(struct mg_oai_stream *st, int64_t block, const char *frag, size_t n,
                        struct mg_buf *out)
{
    static const char orphan[] = "the backend sent arguments for no tool call";
    size_t len = out->len;
    int was = st->started;
    int rc;

    if (block < 0 || (size_t)block >= st->nblocks || st->tool_of[block] < 0) {
        return mg_oai_stream_fail(st, orphan, sizeof(orphan) - 1);
    }
    if (n == 0) {
        return MG_OK;
    }
    rc = open_delta(st, out);
    rc = rc ? rc : mg_buf_printf(out, "\"tool_calls\":[{\"index\":%d,\"function\":"
                                 "{\"arguments\":", st->tool_of[block]);
    rc = rc ? rc : mg_json_quote(out, frag, n);
    rc = rc ? rc : mg_buf_adds(out, "}}]" CHOICE_CLOSE);
    st->output |= rc == MG_OK;
    return undo_st(st, was, out, len, rc);
}

int
mg_oai_stream_finish(struct mg_oai_stream *st, const char *reason, struct mg_buf *out)
{
    size_t len = out->len;
    int was = st->started;
    int rc = mg_oai_stream_start(st, NULL, 0, out);

    rc = rc ? rc : mg_buf_add(out, st->head.data, st->head.len);
    rc = rc ? rc : mg_buf_adds(out, "[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                               "\"finish_reason\":");
    rc = rc ? rc : mg_json_quote(out, reason, strlen(reason));
    rc = rc ? rc : mg_buf_adds(out, "}]}\n\n");
    if (rc == MG_OK) {
        st->output = st->finished = 1;
    }
    return undo_st(st, was, out, len, rc);
}

int
mg_oai_stream_end(struct mg_oai_stream *st, struct mg_buf *out)
{
    size_t len = out->len;
    int rc = MG_OK;

    if (st->done) {
        return MG_OK;
    }
    if (!st->finished) {
        return MG_ERR;
    }
    if (st->include_usage) {
        rc = mg_buf_add(out, st->head.data, st->head.len);
        rc = rc ? rc : mg_buf_adds(out, "[],\"usage\":");
        rc = rc ? rc : mg_oai_usage_json(&st->usage, out);
        rc = rc ? rc : mg_buf_adds(out, "}\n\n");
    }
    rc = rc ? rc : mg_buf_adds(out, "data: [DONE]\n\n");
    st->done = rc == MG_OK;
    return undo(out, len, rc);
}

int
mg_oai_error_event(const char *msg, size_t n, struct mg_buf *out)
{
    size_t len = out->len;
    int rc = mg_buf_adds(out, "data: {\"error\":{\"message\":");

    rc = rc ? rc : mg_json_quote(out, msg, n);
    rc = rc ? rc : mg_buf_adds(out, ",\"type\":\"upstream_error\",\"param\":null,"
                               "\"code\":\"upstream_stream_error\"}}\n\n");
    return undo(out, len, rc);
}

int
mg_oai_error_body(const char *type, const char *msg, size_t n, struct mg_buf *out)
{
    size_t len = out->len;
    int rc = mg_buf_adds(out, "{\"error\":{\"message\":");

    rc = rc ? rc : mg_json_quote(out, msg, n);
    rc = rc ? rc : mg_buf_adds(out, ",\"type\":");
    rc = rc ? rc : mg_json_quote(out, type, strlen(type));
    rc = rc ? rc : mg_buf_adds(out, ",\"param\":null,\"code\":null}}");
    return undo(out, len, rc);
}

static int
write_calls(const struct mg_oai_answer *a, struct mg_buf *out)
{
    size_t i;
    int rc = mg_buf_adds(out, ",\"tool_calls\":[");

    for (i = 0; i < a->ncalls && rc == MG_OK; i++) {
        const struct mg_oai_tool_call *c = &a->calls[i];
        rc = mg_buf_adds(out, i ? ",{\"id\":" : "{\"id\":");
        rc = rc ? rc : mg_json_quote(out, c->id, strlen(c->id));
        rc = rc ? rc : mg_buf_adds(out, ",\"type\":\"function\",\"function\":{\"name\":");
        rc = rc ? rc : mg_json_quote(out, c->name, strlen(c->name));
        rc = rc ? rc : mg_buf_adds(out, ",\"arguments\":");
        rc = rc ? rc : mg_json_quote(out, c->arguments, strlen(c->arguments));
        rc = rc ? rc : mg_buf_adds(out, "}}");
    }
    return rc ? rc : mg_buf_adds(out, "]");
}

int
mg_oai_answer_write(const struct mg_oai_answer *a, struct mg_buf *out)
{
    size_t len = out->len;
    int rc = mg_buf_adds(out, "{\"id\":");

    rc = rc ? rc : mg_json_quote(out, a->id, strlen(a->id));
    rc = rc ? rc : mg_buf_printf(out, ",\"object\":\"chat.completion\",\"created\":%" PRId64
                                 ",\"model\":", a->created);
    rc = rc ? rc : mg_json_quote(out, a->model, strlen(a->model));
    rc = rc ? rc : mg_buf_adds(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                               "\"assistant\",\"content\":");
    if (rc == MG_OK) {
        rc = a->content != NULL ? mg_json_quote(out, a->content, a->content_len)
                                : mg_buf_adds(out, "null");
    }
    rc = rc ? rc : mg_buf_adds(out, ",\"refusal\":null");
    if (rc == MG_OK && a->ncalls > 0) {
        rc = write_calls(a, out);
    }
    rc = rc ? rc : mg_buf_adds(out, "},\"logprobs\":null,\"finish_reason\":");
    rc = rc ? rc : mg_json_quote(out, a->finish_reason, strlen(a->finish_reason));
    rc = rc ? rc : mg_buf_adds(out, "}],\"usage\":");
    rc = rc ? rc : mg_oai_usage_json(&a->usage, out);
    rc = rc ? rc : mg_buf_adds(out, "}");
    return undo(out, len, rc);
}

void
mg_oai_kept_deinit(struct mg_oai_kept *k)
{
    size_t i;

    free(k->content);
    for (i = 0; i < k->ncalls; i++) {
        free((char *)k->calls[i].id);
        free((char *)k->calls[i].name);
        free(k->calls[i].arguments);
    }
    free(k->calls);
    memset(k, 0, sizeof(*k));
}

void
mg_oai_kept_set(struct mg_oai_kept *k, const struct mg_oai_answer *a)
{
    size_t i;

    mg_oai_kept_deinit(k);
    k->have = 1;
    if (a->content != NULL) {
        k->content = mg_strndup(a->content, a->content_len);
        k->content_len = a->content_len;
    }
    k->calls = mg_calloc(a->ncalls + 1, sizeof(*k->calls));
    for (i = 0; i < a->ncalls; i++) {
        k->calls[i].id = mg_strdup(a->calls[i].id != NULL ? a->calls[i].id : "");
        k->calls[i].name = mg_strdup(a->calls[i].name != NULL ? a->calls[i].name : "");
        k->calls[i].arguments = mg_strdup(a->calls[i].arguments != NULL ? a->calls[i].arguments
                                                                        : "");
    }
    k->ncalls = a->ncalls;
    snprintf(k->finish_reason, sizeof(k->finish_reason), "%s",
             a->finish_reason != NULL ? a->finish_reason : "stop");
    k->usage = a->usage;
}
