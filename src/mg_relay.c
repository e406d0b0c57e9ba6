/*
 * mg_relay — the stage chain and the stages of the openai schema.
 */
#include <string.h>

#include "mg_relay.h"

#define TAIL_KEEP (16 * 1024)    /* bytes of a long JSON answer kept to find its usage */

static void
sink_write(struct mg_stage *s, const char *p, size_t n)
{
    s->relay->emit(s->relay->arg, p, n);
}

static void
sink_end(struct mg_stage *s)
{
}

static void
stage_init(struct mg_relay *r, struct mg_stage *s, void (*write)(struct mg_stage *, const char *,
           size_t), void (*end)(struct mg_stage *))
{
    s->write = write;
    s->end = end;
    s->next = NULL;
    s->relay = r;
}

void
mg_relay_init(struct mg_relay *r, mg_relay_emit_fn emit, void *arg)
{
    memset(r, 0, sizeof(*r));
    r->emit = emit;
    r->arg = arg;
    stage_init(r, &r->sink, sink_write, sink_end);
    r->head = &r->sink;
    mg_sse_init(&r->split);
    mg_buf_init(&r->scratch, MG_SSE_EVENT_MAX + 64);
    mg_buf_init(&r->tail, 2 * TAIL_KEEP);
}

void
mg_relay_deinit(struct mg_relay *r)
{
    mg_sse_deinit(&r->split);
    mg_buf_deinit(&r->scratch);
    mg_buf_deinit(&r->tail);
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
mg_relay_write(struct mg_relay *r, const char *p, size_t n)
{
    r->head->write(r->head, p, n);
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

/* ---- SSE usage observer: the client's stream as sent; events only read ------------------- */

static void
observe_event(void *arg, const char *p, size_t n, int whole)
{
    if (whole && memmem(p, n, "\"usage\"", 7) != NULL) {
        mg_relay_note_usage(arg, p, n);
    }
}

static void
observe_write(struct mg_stage *s, const char *p, size_t n)
{
    s->next->write(s->next, p, n);   /* bytes go on at once: reading usage delays nothing */
    mg_sse_feed(&s->relay->split, p, n, observe_event, s->relay);
}

static void
observe_end(struct mg_stage *s)
{
    mg_sse_flush(&s->relay->split, observe_event, s->relay);
    s->next->end(s->next);
}

void
mg_relay_add_sse_observe(struct mg_relay *r)
{
    stage_init(r, &r->sse_observe, observe_write, observe_end);
    mg_relay_add(r, &r->sse_observe);
}

/*
 * ---- SSE usage stripper -------------------------------------------------------------------
 * A stream whose usage the gateway asked for itself: the extra usage event is taken out and the
 * "usage":null members the backend added to the other events are removed, so the client gets
 * exactly the stream it asked for.
 */

static void
strip_event(void *arg, const char *p, size_t n, int whole)
{
    struct mg_stage *s = arg;
    struct mg_relay *r = s->relay;

    if (!whole || memmem(p, n, "\"usage\"", 7) == NULL) {
        s->next->write(s->next, p, n);
        return;
    }
    mg_relay_note_usage(r, p, n);
    if (mg_sse_is_usage_only(p, n)) {
        return;
    }
    mg_buf_reset(&r->scratch);
    if (mg_sse_strip_null_usage(p, n, &r->scratch) == MG_OK) {
        s->next->write(s->next, r->scratch.data, r->scratch.len);
    } else {
        s->next->write(s->next, p, n);
    }
}

static void
strip_write(struct mg_stage *s, const char *p, size_t n)
{
    mg_sse_feed(&s->relay->split, p, n, strip_event, s);
}

static void
strip_end(struct mg_stage *s)
{
    mg_sse_flush(&s->relay->split, strip_event, s);
    s->next->end(s->next);
}

void
mg_relay_add_sse_strip(struct mg_relay *r)
{
    stage_init(r, &r->sse_strip, strip_write, strip_end);
    mg_relay_add(r, &r->sse_strip);
}

/* ---- JSON tail keeper: the last TAIL_KEEP..2*TAIL_KEEP bytes, where the usage is --------- */

static void
tail_write(struct mg_stage *s, const char *p, size_t n)
{
    struct mg_buf *t = &s->relay->tail;

    s->next->write(s->next, p, n);
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
