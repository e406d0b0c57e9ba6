/*
 * mg_relay — the stage chain, the commit gate, and the stages of the openai schema.
 */
#include <string.h>

#include <jansson.h>

#include "mg_json.h"
#include "mg_outcome.h"
#include "mg_relay.h"
#include "mg_relay_int.h"
#include "mg_util.h"

#define TAIL_KEEP (16 * 1024)    /* bytes of a long JSON answer kept to find its usage */

static void
sink_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    s->relay->emit(s->relay->emit_arg, p, n);
}

static void
sink_end(struct mg_stage *s)
{
}

static void
stage_init(struct mg_relay *r, struct mg_stage *s,
           void (*write)(struct mg_stage *, const char *, size_t, int),
           void (*end)(struct mg_stage *))
{
    s->write = write;
    s->end = end;
    s->next = NULL;
    s->relay = r;
}

void
mg_relay_init(struct mg_relay *r, mg_relay_emit_fn emit, void *emit_arg,
              mg_relay_commit_fn commit, void *arg)
{
    memset(r, 0, sizeof(*r));
    r->emit = emit;
    r->emit_arg = emit_arg;
    r->commit = commit;
    r->arg = arg;
    stage_init(r, &r->sink, sink_write, sink_end);
    r->head = &r->sink;
    mg_sse_init(&r->splitter);
    mg_buf_init(&r->held, MG_RELAY_HOLD_MAX + 1024);
    mg_buf_init(&r->scratch, MG_SSE_EVENT_MAX + 64);
    mg_buf_init(&r->tail, 2 * TAIL_KEEP);
}

/* Frees *state with its free function, and puts the new pair in its place. */
static void
swap_state(void **state, void (**sfree)(void *), void *next, void (*next_free)(void *))
{
    if (*sfree != NULL) {
        (*sfree)(*state);
    }
    *state = next;
    *sfree = next_free;
}

static void
drop_state(struct mg_relay *r)
{
    swap_state(&r->xstate, &r->xfree, NULL, NULL);
    swap_state(&r->cstate, &r->cfree, NULL, NULL);
}

void
mg_relay_set_client_state(struct mg_relay *r, void *state, void (*cfree)(void *state))
{
    swap_state(&r->cstate, &r->cfree, state, cfree);
}

void
mg_relay_set_state(struct mg_relay *r, void *state, void (*xfree)(void *state))
{
    swap_state(&r->xstate, &r->xfree, state, xfree);   /* the client stage keeps its own */
}

void
mg_relay_deinit(struct mg_relay *r)
{
    drop_state(r);
    mg_sse_deinit(&r->splitter);
    mg_buf_deinit(&r->held);
    mg_buf_deinit(&r->scratch);
    mg_buf_deinit(&r->tail);
}

void
mg_relay_reset(struct mg_relay *r, int sse, const struct mg_api *api)
{
    r->head = &r->sink;
    r->api = api;
    r->sse = sse;
    r->keep_length = 0;
    r->no_usage = api->usage == MG_API_USAGE_NONE;
    r->committed = 0;
    r->failed = 0;
    r->cut = 0;
    r->hold_cut = 0;
    r->cut_held = 0;
    r->finished = 0;
    r->done = 0;
    r->any_event = 0;
    r->empty = 0;
    r->why[0] = '\0';
    r->bytes_in = r->out_events = 0;
    r->have_usage = 0;
    r->usage.input = -1;
    r->usage.output = -1;
    r->usage.cached = -1;
    r->usage.written = -1;
    r->content_type = NULL;
    r->client = NULL;
    r->client_fail = NULL;
    r->chat_answer = NULL;
    drop_state(r);
    mg_sse_reset(&r->splitter);
    mg_buf_reset(&r->held);
    mg_buf_reset(&r->tail);
}

void
mg_relay_add(struct mg_relay *r, struct mg_stage *s)
{
    struct mg_stage **at = &r->head;

    while (*at != &r->sink) {
        at = &(*at)->next;
    }
    s->next = &r->sink;
    *at = s;
}

void
mg_relay_add_before_client(struct mg_relay *r, struct mg_stage *s)
{
    struct mg_stage **at = &r->head;

    while (*at != &r->sink && *at != r->client) {
        at = &(*at)->next;
    }
    s->next = *at;
    *at = s;
}

void
mg_relay_write(struct mg_relay *r, const char *p, size_t n)
{
    r->bytes_in += (int64_t)n;
    if (!r->failed && !r->cut) {
        r->head->write(r->head, p, n, 1);
    }
}

unsigned
mg_relay_verdict(const struct mg_relay *r)
{
    if (r->failed) {
        return r->empty ? MG_AF_RELAY_EMPTY : MG_AF_RELAY_FAILED;
    }
    return r->cut ? MG_AF_RELAY_CUT : 0;
}

void
mg_relay_end(struct mg_relay *r)
{
    r->head->end(r->head);
}

int
mg_relay_note_usage(struct mg_relay *r, const char *p, size_t n)
{
    struct mg_usage u;

    if (!mg_usage_parse(p, n, &u)) {
        return 0;
    }
    r->usage = u;
    r->have_usage = 1;
    return 1;
}

void
mg_relay_cut_event(struct mg_relay *r, const char *why)
{
    struct mg_buf ev;

    r->cut_held = 0;
    if (r->client_fail != NULL) {   /* the client's API writes its own error events */
        r->client_fail(r->client, why);
        return;
    }
    mg_buf_init(&ev, 4096);
    r->api->error_event(&ev, why);
    r->emit(r->emit_arg, ev.data, ev.len);   /* straight to the client: nothing else follows */
    mg_buf_deinit(&ev);
}

int
mg_relay_fail(struct mg_relay *r, const char *why, size_t n)
{

    if (n >= sizeof(r->why)) {
        n = sizeof(r->why) - 1;
        while (n > 0 && ((unsigned char)why[n] & 0xc0) == 0x80) {
            n--;   /* not through a UTF-8 character: the message goes into JSON events */
        }
    }
    if (r->why[0] == '\0') {
        memcpy(r->why, why, n);
        r->why[n] = '\0';
    }
    if (!r->committed) {
        r->failed = 1;
        return 0;
    }
    if (!r->sse || r->cut) {
        return 0;
    }
    r->cut = 1;
    if (r->hold_cut) {   /* resume decides, when the attempt ends */
        r->cut_held = 1;
        return 0;
    }
    mg_relay_cut_event(r, r->why);
    return 1;
}

/* ---- the SSE splitter: bytes in, one event per write out --------------------------------- */

static void
split_event(void *arg, const char *p, size_t n, int whole)
{
    struct mg_stage *s = arg;

    s->next->write(s->next, p, n, whole);
}

static void
split_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    mg_sse_feed(&s->relay->splitter, p, n, split_event, s);
}

static void
split_end(struct mg_stage *s)
{
    struct mg_sse *sp = &s->relay->splitter;

    if (sp->ev.len > 0) {   /* a last event without its blank line: still an event */
        s->next->write(s->next, sp->ev.data, sp->ev.len, !sp->oversized);
    }
    mg_sse_reset(sp);
    s->next->end(s->next);
}

void
mg_relay_add_sse_split(struct mg_relay *r)
{
    stage_init(r, &r->split, split_write, split_end);
    mg_relay_add(r, &r->split);
}

/* ---- the commit gate ---------------------------------------------------------------------- */

/* 1 when p[0..n) holds a field line: neither blank nor a comment (":..."), so it is an event. */
static int
is_event(const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        if (*p != '\n' && *p != '\r') {
            if (*p != ':') {
                return 1;
            }
            p = memchr(p, '\n', (size_t)(end - p));
            if (p == NULL) {
                return 0;
            }
        }
        p++;
    }
    return 0;
}

/* Held events are records: their length, then their bytes. */
static void
hold(struct mg_relay *r, const char *p, size_t n)
{
    mg_buf_add(&r->held, &n, sizeof(n));
    mg_buf_add(&r->held, p, n);
}

static void
commit_now(struct mg_stage *s)
{
    struct mg_relay *r = s->relay;
    size_t at = 0, n;

    r->committed = 1;
    r->commit(r->arg);
    while (at + sizeof(n) <= r->held.len) {
        memcpy(&n, r->held.data + at, sizeof(n));
        at += sizeof(n);
        s->next->write(s->next, r->held.data + at, n, 1);
        at += n;
    }
    mg_buf_reset(&r->held);
}

static void
gate_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct mg_relay *r = s->relay;
    int kind;

    if (r->cut || r->failed) {
        return;
    }
    if (!r->sse) {
        if (!r->committed && r->client == NULL) {   /* else the client's stage commits */
            commit_now(s);
        }
        s->next->write(s->next, p, n, whole);
        return;
    }
    if (!r->any_event) {
        r->any_event = !whole || is_event(p, n);   /* a piece too large to hold is no comment */
    }
    kind = whole ? mg_relay_event_kind(r->api, r->committed, p, n) : MG_EV_OUTPUT;
    if (kind & MG_EV_ERROR) {
        char msg[sizeof(r->why)];
        mg_relay_fail(r, msg, mg_relay_event_error(p, n, msg, sizeof(msg)));
        return;
    }
    r->finished |= (kind & MG_EV_FINISH) != 0;
    r->done |= (kind & MG_EV_DONE) != 0;
    if (!r->committed) {
        if (!(kind & MG_EV_OUTPUT) && r->held.len + n + sizeof(n) <= MG_RELAY_HOLD_MAX) {
            hold(r, p, n);
            return;
        }
        commit_now(s);
    }
    /* what carries output, about a token each (the usage estimate): comments and [DONE] not */
    r->out_events += !(kind & MG_EV_DONE) && (kind != 0 || !whole || is_event(p, n));
    s->next->write(s->next, p, n, whole);
}

static void
gate_end(struct mg_stage *s)
{
    struct mg_relay *r = s->relay;
    const char *tail, *why;

    if (!r->committed && !r->failed) {
        if (r->sse && !r->any_event) {
            /* the head and nothing else (comments and blank lines are nothing): no answer to
             * commit, the attempt fails over like a 502 (r->empty is for its outcome) */
            r->empty = 1;
            mg_relay_fail(r, "the backend ended the stream before any event", 46);
        } else if (r->sse || r->client == NULL) {
            commit_now(s);   /* the backend ended its answer cleanly: it commits there */
        }
    }
    if (r->sse && !r->cut && !r->failed) {
        /* the client's API says whether the stream is whole, and what it still needs */
        why = r->api->stream_end(r->finished, r->done, &tail);
        if (why != NULL) {
            mg_relay_fail(r, why, strlen(why));
        } else if (tail != NULL) {
            s->next->write(s->next, tail, strlen(tail), 1);
        }
    }
    s->next->end(s->next);
}

void
mg_relay_add_client(struct mg_relay *r, struct mg_stage *s,
                    void (*fail)(struct mg_stage *s, const char *why))
{
    s->relay = r;
    mg_relay_add(r, s);
    r->client = s;
    r->client_fail = fail;
    r->keep_length = 0;   /* the client gets another body than the backend sent */
}

void
mg_relay_commit(struct mg_relay *r)
{
    if (!r->committed) {
        r->committed = 1;
        r->commit(r->arg);
    }
}

void
mg_relay_add_gate(struct mg_relay *r)
{
    stage_init(r, &r->gate, gate_write, gate_end);
    mg_relay_add(r, &r->gate);
}

/* ---- SSE usage observer: events pass as sent; usage is read on the way ------------------- */

static void
observe_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    if (whole && mg_find(p, n, "\"usage\"", 7) != NULL) {
        mg_relay_note_usage(s->relay, p, n);
    }
    s->next->write(s->next, p, n, whole);
}

static void
pass_end(struct mg_stage *s)
{
    s->next->end(s->next);
}

void
mg_relay_add_sse_observe(struct mg_relay *r)
{
    stage_init(r, &r->sse_observe, observe_write, pass_end);
    mg_relay_add(r, &r->sse_observe);
}

/*
 * ---- SSE usage stripper -------------------------------------------------------------------
 * A stream whose usage the gateway asked for itself: the extra usage event is taken out and the
 * "usage":null members the backend added to the other events are removed, so the client gets
 * exactly the stream it asked for.
 */

static void
strip_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct mg_relay *r = s->relay;

    if (!whole || mg_find(p, n, "\"usage\"", 7) == NULL) {
        s->next->write(s->next, p, n, whole);
        return;
    }
    /* most chunks say "usage":null: one look at the value spares the two readings below */
    if (mg_usage_has_object(p, n)) {
        mg_relay_note_usage(r, p, n);
        if (mg_sse_is_usage_only(p, n)) {
            return;
        }
    }
    mg_buf_reset(&r->scratch);
    if (mg_sse_strip_null_usage(p, n, &r->scratch) == MG_OK) {
        s->next->write(s->next, r->scratch.data, r->scratch.len, 1);
    } else {
        s->next->write(s->next, p, n, whole);
    }
}

void
mg_relay_add_sse_strip(struct mg_relay *r)
{
    stage_init(r, &r->sse_strip, strip_write, pass_end);
    mg_relay_add(r, &r->sse_strip);
}

/* ---- JSON tail keeper: the last TAIL_KEEP..2*TAIL_KEEP bytes, where the usage is --------- */

void
mg_relay_pass_events(struct mg_stage *s, const char *p, size_t n)
{
    const char *end = p + n, *sep;

    while (p < end && !s->relay->failed && !s->relay->cut) {
        sep = mg_find(p, (size_t)(end - p), "\n\n", 2);
        sep = sep != NULL ? sep + 2 : end;
        s->next->write(s->next, p, (size_t)(sep - p), 1);
        p = sep;
    }
}

static void
tail_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    s->next->write(s->next, p, n, whole);
    mg_relay_keep_tail(s->relay, p, n);
}

void
mg_relay_keep_tail(struct mg_relay *r, const char *p, size_t n)
{
    struct mg_buf *t = &r->tail;

    if (n >= TAIL_KEEP) {
        mg_buf_reset(t);
        mg_buf_add(t, p + n - TAIL_KEEP, TAIL_KEEP);
        return;
    }
    if (t->len + n > 2 * TAIL_KEEP) {
        memmove(t->data, t->data + t->len - TAIL_KEEP, TAIL_KEEP);
        t->len = TAIL_KEEP;
    }
    mg_buf_add(t, p, n);
}

static void
tail_end(struct mg_stage *s)
{
    struct mg_relay *r = s->relay;

    if (r->tail.len > 0) {
        mg_relay_note_usage(r, r->tail.data, r->tail.len);
    }
    s->next->end(s->next);
}

void
mg_relay_add_json_tail(struct mg_relay *r)
{
    stage_init(r, &r->json_tail, tail_write, tail_end);
    mg_relay_add(r, &r->json_tail);
}
