/*
 * mg_xstage — the relay-stage steps the translating schemas share (see mg_xstage.h).
 */
#include <stdio.h>
#include <string.h>

#include "mg_xstage.h"

#define TOO_LARGE "the backend sent an event too large to translate"

void
mg_xstage_usage(struct mg_relay *r, const struct mg_oai_usage *u)
{
    struct mg_usage t;

    mg_oai_usage_totals(u, &t);
    if (t.input >= 0 || t.output >= 0) {
        r->usage = t;
        r->have_usage = 1;
    }
}

void
mg_xstage_event(struct mg_stage *s, struct mg_oai_stream *st, const struct mg_buf *out, int rc)
{
    struct mg_relay *r = s->relay;

    mg_xstage_usage(r, &st->usage);
    mg_relay_pass_events(s, out->data, out->len);
    if (rc == MG_OAI_ESTREAM) {
        mg_relay_fail(r, st->error, strlen(st->error));
    } else if (rc != MG_OK) {
        mg_relay_fail(r, TOO_LARGE, sizeof(TOO_LARGE) - 1);
    }
}

void
mg_xstage_stream_end(struct mg_stage *s, struct mg_oai_stream *st, struct mg_buf *out)
{
    struct mg_relay *r = s->relay;

    if (st->finished && !st->done && !r->failed && !r->cut) {
        mg_buf_reset(out);
        if (mg_oai_stream_end(st, out) == MG_OK) {
            mg_relay_pass_events(s, out->data, out->len);
        }
    }
    s->next->end(s->next);
}

void
mg_xstage_answer_write(struct mg_stage *s, struct mg_buf *body, const char *p, size_t n)
{
    static const char why[] = "the backend's answer is too large to translate";

    if (mg_buf_add(body, p, n) != MG_OK) {
        mg_relay_fail(s->relay, why, sizeof(why) - 1);
    }
}

void
mg_xstage_answer_end(struct mg_stage *s, const struct mg_buf *body, struct mg_buf *out,
                     mg_xstage_translate_fn translate, void *arg, const char *not_what,
                     struct mg_oai_kept *kept)
{
    struct mg_relay *r = s->relay;
    /* a client API's stage after ours reads the answer as a structure, not as text again */
    struct mg_oai_kept *keep = r->client != NULL ? kept : NULL;
    struct mg_usage u;
    char why[96];

    if (!r->failed) {
        if (translate(arg, body->data ? body->data : "", body->len, out, &u, keep) != MG_OK) {
            snprintf(why, sizeof(why), "the backend's answer is not %s", not_what);
            mg_relay_fail(r, why, strlen(why));
        } else {
            r->usage = u;
            r->have_usage = u.input >= 0 || u.output >= 0;
            r->chat_answer = keep != NULL && keep->have ? keep : NULL;
            s->next->write(s->next, out->data, out->len, 1);
        }
    }
    s->next->end(s->next);
}
