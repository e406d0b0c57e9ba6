/*
 * fakeai_providers — fakeai's other providers, so the translating schemas can be tested offline:
 *
 *   /openai/deployments/{name}/...?api-version=V   Azure OpenAI: checks api-key (or a Bearer
 *                                                   token fakeai_cloud.c issued) and api-version,
 *                                                   then answers as the OpenAI fake does
 *   /v1/messages, /v1/messages/count_tokens        Anthropic Messages, plain and streamed
 *   /model/{id}/converse, /model/{id}/converse-stream
 *                                                  Amazon Bedrock: the SigV4 signature is checked
 *                                                  (access key FAKEAKID, secret fake-secret, or
 *                                                  one fakeai_cloud.c accepts; a wrong one is
 *                                                  403), answers in JSON or as AWS
 *                                                  event-stream frames
 *
 * Steering headers (besides fakeai's x-fake-status, x-fake-status-for, x-fake-usage,
 * x-fake-chunks, x-fake-chunk-gap-ms, x-fake-split, x-fake-echo):
 *   x-fake-cache: READ,WRITE   cache token counts (default 0,0)
 *   x-fake-stop: REASON        the stop_reason (default end_turn, or tool_use with tools)
 *   x-fake-stream-error: WHEN  "early" (an error event before any text) or "late" (after it)
 *   x-fake-cut: 1              drop the connection after the text (before message_delta)
 *   x-fake-ping: DATA          the ping's data: "empty" (a bare "data:"), "blank" ("data: "),
 *                              "none" (no data line), "junk" (not JSON); default Anthropic's
 *   x-fake-empty-stream: N     (on the fakeai named by x-fake-for, or any without it) a stream
 *                              head, then a clean end with no event: N=1 nothing, N=2 a comment
 *   x-fake-retry-after: N      Retry-After on an error answer
 *   x-fake-bad-crc: 1          (bedrock streams) a frame with a broken CRC after the text
 *   x-fake-cut-at-token: N     (on the fakeai named by x-fake-for, or any without it; with
 *                              x-fake-fail-key only the first x-fake-fail-times requests with
 *                              the key, as fakeai.c) drop the connection after N text pieces
 *                              (past the last: after the text)
 * A stream's text is x-fake-chunks pieces "tok0 ", "tok1 ", ...; a request whose last message is
 * the assistant's (a prefill) gets only what follows that text in the answer it would give uncut,
 * the token the prefill ends inside sent with the next one (" tok2 " after "tok0 tok1"); a
 * prefill that ends in whitespace is a 400 (Anthropic's rule, which Bedrock applies to Claude),
 * and so is one that is not how the answer starts.
 * With x-fake-echo: 1 the answer's text is the request as received (uri, headers, body) as JSON.
 * A request with tools gets a tool_use block calling the first tool, unless its last message
 * carries the tool's result (a tool_result block; Bedrock: a toolResult): then only text.
 * GET /v1/models with an anthropic-version header lists the models as Anthropic does (fakeai.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <time.h>

#include "fakeai_cloud.h"
#include "mg_evstream.h"
#include "mg_sigv4.h"
#include "mg_util.h"

/* ---- a scripted answer: events sent one after another, with gaps, splits and a cut ---------- */

struct script {
    struct evhttp_request    *req;
    struct evhttp_connection *evcon;
    struct event             *timer;
    char                    **ev;          /* the events' bytes */
    size_t                   *evlen;
    size_t                    nev;
    size_t                    next;
    size_t                    half;        /* bytes of ev[next] already sent (split mode) */
    int                       gap_ms;
    int                       split;
    long                      cut_at;      /* drop the connection before this event; -1: never */
};

static void
script_free(struct script *s)
{
    size_t i;

    if (s->evcon != NULL) {
        evhttp_connection_set_closecb(s->evcon, NULL, NULL);
    }
    event_free(s->timer);
    for (i = 0; i < s->nev; i++) {
        free(s->ev[i]);
    }
    free(s->ev);
    free(s->evlen);
    free(s);
}

static void
script_add(struct script *s, const char *p, size_t n)
{
    s->ev = realloc(s->ev, (s->nev + 1) * sizeof(*s->ev));
    s->evlen = realloc(s->evlen, (s->nev + 1) * sizeof(*s->evlen));
    s->ev[s->nev] = malloc(n + 1);
    memcpy(s->ev[s->nev], p, n);
    s->ev[s->nev][n] = '\0';
    s->evlen[s->nev++] = n;
}

static void
send_bytes(struct evhttp_request *req, const char *p, size_t n)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, p, n);
    evhttp_send_reply_chunk(req, b);
    evbuffer_free(b);
}

static void
later(struct script *s, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(s->timer, &tv);
}

/* Sends what is due now; arms the timer for the rest. Frees s at the end. */
static void
script_step(struct script *s)
{
    while (s->next < s->nev) {
        if ((long)s->next == s->cut_at) {
            struct evhttp_connection *evcon = s->evcon;
            struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
            if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
                later(s, 2);   /* what was sent must reach the gateway before the cut */
                return;
            }
            s->evcon = NULL;
            evhttp_connection_set_closecb(evcon, NULL, NULL);
            script_free(s);
            evhttp_connection_free(evcon);   /* a cut: no last chunk */
            return;
        }
        if (s->split && s->half == 0 && s->evlen[s->next] > 1) {
            s->half = s->evlen[s->next] / 2;
            send_bytes(s->req, s->ev[s->next], s->half);
            later(s, 5);
            return;
        }
        send_bytes(s->req, s->ev[s->next] + s->half, s->evlen[s->next] - s->half);
        s->half = 0;
        s->next++;
        if (s->gap_ms > 0 && s->next < s->nev) {
            later(s, s->gap_ms);
            return;
        }
    }
    if (s->evcon != NULL) {
        evhttp_connection_set_closecb(s->evcon, NULL, NULL);
        s->evcon = NULL;
    }
    evhttp_send_reply_end(s->req);
    script_free(s);
}

static void
on_script_timer(evutil_socket_t fd, short what, void *arg)
{
    script_step(arg);
}

static void
on_script_close(struct evhttp_connection *evcon, void *arg)
{
    struct script *s = arg;

    s->evcon = NULL;
    if (evhttp_request_get_connection(s->req) == NULL) {
        evhttp_request_free(s->req);
    }
    script_free(s);
}

static struct script *
script_new(struct event_base *base, struct evhttp_request *req)
{
    struct script *s = calloc(1, sizeof(*s));

    s->req = req;
    s->evcon = evhttp_request_get_connection(req);
    s->timer = evtimer_new(base, on_script_timer, s);
    s->cut_at = -1;
    return s;
}

/* Starts sending s with status and content type. */
static void
script_start(struct script *s, int status, const char *ctype)
{
    evhttp_add_header(evhttp_request_get_output_headers(s->req), "Content-Type", ctype);
    evhttp_connection_set_closecb(s->evcon, on_script_close, s);
    evhttp_send_reply_start(s->req, status, NULL);
    script_step(s);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *
hv(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static long
hnum(struct evhttp_request *req, const char *name, long def)
{
    const char *v = hv(req, name);

    return v != NULL ? strtol(v, NULL, 10) : def;
}

static void
reply_json(struct evhttp_request *req, int status, json_t *j)
{
    struct evbuffer *b = evbuffer_new();
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);

    evbuffer_add(b, s, strlen(s));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
    free(s);
    json_decref(j);
}

/* The request as received, for x-fake-echo: {uri, headers (lower-case names), body}. */
static char *
echo_text(struct evhttp_request *req, json_t *body)
{
    json_t *h = json_object(), *j;
    struct evkeyval *kv;
    char *s;

    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        char lower[256];
        size_t i;
        for (i = 0; kv->key[i] && i < sizeof(lower) - 1; i++) {
            lower[i] = (char)(kv->key[i] >= 'A' && kv->key[i] <= 'Z' ? kv->key[i] + 32
                                                                     : kv->key[i]);
        }
        lower[i] = '\0';
        json_object_set_new(h, lower, json_string(kv->value));
    }
    j = json_pack("{s:s,s:o,s:O}", "uri", evhttp_request_get_uri(req), "headers", h, "body",
                  body);
    s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

/*
 * 1 when the last message of messages carries a block with key (Anthropic's {"type":
 * "tool_result"}: key "tool_result"; Bedrock's {"toolResult": ...}: key "toolResult"): the tool's
 * result came back, so the model now answers in text instead of calling the tool again.
 */
static int
last_has_result(json_t *messages, const char *key)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1), *b;
    size_t i;

    json_array_foreach(json_object_get(last, "content"), i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (json_object_get(b, key) != NULL || (type != NULL && strcmp(type, key) == 0)) {
            return 1;
        }
    }
    return 0;
}

/* ---- prefill: continuing a final assistant message ---------------------------------------- */

/*
 * The text of a final assistant message (the prefill a backend continues), or NULL when the last
 * message is not the assistant's: content a string, or an array of text blocks (Anthropic's
 * {"type":"text","text":...}, Bedrock's {"text":...}, OpenAI's content parts).
 */
char *fake_prefill_of(json_t *messages);

char *
fake_prefill_of(json_t *messages)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1), *c, *b;
    const char *role = json_string_value(json_object_get(last, "role"));
    size_t i, n = 0;
    char *out;

    if (role == NULL || strcmp(role, "assistant") != 0) {
        return NULL;
    }
    c = json_object_get(last, "content");
    if (json_is_string(c)) {
        return strdup(json_string_value(c));
    }
    out = calloc(1, 1);
    json_array_foreach(c, i, b) {
        const char *t = json_string_value(json_object_get(b, "text"));
        if (t != NULL) {
            out = realloc(out, n + strlen(t) + 1);
            memcpy(out + n, t, strlen(t) + 1);
            n += strlen(t);
        }
    }
    return out;
}

/*
 * The pieces a streamed text answer of chunks tokens ("tok0 ", "tok1 ", ...) is sent in; after
 * prefix (NULL: from the start) only what follows it, the token the prefix ends inside sent with
 * the next whole one (as a tokenizer would: " tok3 " after "tok0 tok1 tok2"). NULL with *err
 * when the prefix is not how this answer starts. *n gets the count; free with fake_pieces_free.
 */
char **fake_pieces(const char *prefix, long chunks, long *n, const char **err);
void fake_pieces_free(char **pieces, long n);

char **
fake_pieces(const char *prefix, long chunks, long *n, const char **err)
{
    char **out = calloc((size_t)(chunks > 0 ? chunks : 1), sizeof(*out));
    size_t at = 0, plen = prefix != NULL ? strlen(prefix) : 0, carry = 0;
    char tok[64], pending[128] = "";
    long i;

    *n = 0;
    for (i = 0; i < chunks; i++) {
        size_t tl = (size_t)snprintf(tok, sizeof(tok), "tok%ld ", i);
        if (at + tl <= plen) {   /* wholly inside the prefix */
            if (strncmp(prefix + at, tok, tl) != 0) {
                goto mismatch;
            }
        } else if (at < plen) {  /* the prefix ends inside this token */
            if (strncmp(prefix + at, tok, plen - at) != 0) {
                goto mismatch;
            }
            carry = (size_t)snprintf(pending, sizeof(pending), "%s", tok + (plen - at));
        } else if (carry > 0) {
            snprintf(pending + carry, sizeof(pending) - carry, "%s", tok);
            out[(*n)++] = strdup(pending);
            carry = 0;
        } else {
            out[(*n)++] = strdup(tok);
        }
        at += tl;
    }
    if (carry > 0) {
        out[(*n)++] = strdup(pending);
    }
    if (plen > at) {
        goto mismatch;
    }
    return out;
mismatch:
    fake_pieces_free(out, *n);
    *n = 0;
    *err = "fakeai: the assistant prefill is not the start of this answer";
    return NULL;
}

void
fake_pieces_free(char **pieces, long n)
{
    long i;

    for (i = 0; i < n; i++) {
        free(pieces[i]);
    }
    free(pieces);
}

/* 1 when s ends with whitespace (Anthropic refuses such a final assistant message). */
static int
trailing_space(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    return n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' ||
                     s[n - 1] == '\r');
}

int fake_key_fails(const char *key, long times);   /* fakeai.c */

/*
 * x-fake-cut-at-token: N, when meant for this fakeai (x-fake-for; x-fake-fail-key and
 * x-fake-fail-times as in fakeai.c): the piece to cut before, or -1.
 */
static long
cut_at_token(struct evhttp_request *req, const char *name)
{
    const char *v = hv(req, "x-fake-for"), *key = hv(req, "x-fake-fail-key");
    long n = hnum(req, "x-fake-cut-at-token", -1);

    if (n < 0 || (v != NULL && strcmp(v, name) != 0) ||
        (key != NULL && !fake_key_fails(key, hnum(req, "x-fake-fail-times", 1)))) {
        return -1;
    }
    return n;
}

/* ---- Azure --------------------------------------------------------------------------------- */

/* 1 when the Azure request was refused here; 0 to let the OpenAI fake answer it. */
static int
azure(struct evhttp_request *req, const char *uri)
{
    const char *q = strchr(uri, '?');

    if (hv(req, "api-key") == NULL && !fake_cloud_bearer_ok(hv(req, "authorization"))) {
        reply_json(req, 401, json_pack("{s:{s:s,s:s}}", "error", "code", "401", "message",
                                       "Access denied due to invalid subscription key or wrong "
                                       "API endpoint."));
        return 1;
    }
    if (q == NULL || (strncmp(q + 1, "api-version=", 12) != 0 &&
                      strstr(q, "&api-version=") == NULL)) {
        reply_json(req, 404, json_pack("{s:{s:s,s:s}}", "error", "code", "404", "message",
                                       "Resource not found"));
        return 1;
    }
    return 0;
}

/* ---- Anthropic ----------------------------------------------------------------------------- */

static const char *
anthropic_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return "api_error";
    }
}

static void
anthropic_error(struct evhttp_request *req, int status, const char *msg)
{
    long ra = hnum(req, "x-fake-retry-after", -1);

    if (ra >= 0) {
        char v[32];
        snprintf(v, sizeof(v), "%ld", ra);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
    }
    reply_json(req, status, json_pack("{s:s,s:{s:s,s:s},s:s}", "type", "error", "error", "type",
                                      anthropic_type(status), "message", msg, "request_id",
                                      "req_fake"));
}

struct areq {
    json_t     *body;
    const char *model;
    const char *tool;        /* the first tool's name, or NULL */
    int         stream;
    json_int_t  in, out, cache_read, cache_write;   /* 64-bit: absurd usage is a test */
    const char *stop;
    char       *text;        /* the answer's text */
    long        empty;       /* x-fake-empty-stream, when meant for this fakeai */
    char      **pieces;      /* a stream's text, piece by piece (fake_pieces) */
    long        npieces;
    long        cut_token;   /* x-fake-cut-at-token: cut before this piece (-1: never) */
};

/*
 * A's stream text: x-fake-chunks pieces, or what follows a final assistant message (prefill,
 * which Anthropic and Bedrock refuse with trailing whitespace); its cut. 0, or -1 with the 400's
 * message in a->text (a constant).
 */
static int
prepare_pieces(struct evhttp_request *req, const char *name, json_t *messages, struct areq *a)
{
    char *prefill = fake_prefill_of(messages);
    const char *err = NULL;

    a->cut_token = cut_at_token(req, name);
    if (trailing_space(prefill)) {
        free(prefill);
        a->text = (char *)"messages: final assistant content cannot end with trailing whitespace";
        return -1;
    }
    a->pieces = fake_pieces(prefill, hnum(req, "x-fake-chunks", 3), &a->npieces, &err);
    free(prefill);
    if (a->pieces == NULL) {
        a->text = (char *)err;
        return -1;
    }
    return 0;
}

static json_t *
usage_obj(const struct areq *a, json_int_t output)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", a->in, "cache_creation_input_tokens",
                     a->cache_write, "cache_read_input_tokens", a->cache_read, "output_tokens",
                     output);
}

static void
answer_plain(struct evhttp_request *req, const struct areq *a)
{
    json_t *content = json_array();

    json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", a->text));
    if (a->tool != NULL) {
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:{s:s}}", "type", "tool_use",
                                                 "id", "toolu_fake1", "name", a->tool, "input",
                                                 "location", "Paris"));
    }
    reply_json(req, 200, json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", "msg_fake1",
                                   "type", "message", "role", "assistant", "model", a->model,
                                   "content", content, "stop_reason", a->stop, "stop_sequence",
                                   "usage", usage_obj(a, a->out)));
}

static void
add_event(struct script *s, const char *name, json_t *data)
{
    char *d = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t n = strlen(d) + strlen(name) + 32;
    char *ev = malloc(n);

    snprintf(ev, n, "event: %s\ndata: %s\n\n", name, d);
    script_add(s, ev, strlen(ev));
    free(ev);
    free(d);
    json_decref(data);
}

static void
add_error_event(struct script *s)
{
    add_event(s, "error", json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                                    "overloaded_error", "message", "Overloaded"));
}

static void
answer_stream(struct event_base *base, struct evhttp_request *req, const struct areq *a)
{
    static const char *const frags[] = {"{\"location\"", ": \"Par", "is\"}"};
    struct script *s = script_new(base, req);
    const char *err = hv(req, "x-fake-stream-error"), *pv = hv(req, "x-fake-ping");
    const char *ping = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    long i, chunks = hnum(req, "x-fake-chunks", 3);

    if (pv != NULL) {
        ping = strcmp(pv, "empty") == 0 ? "event: ping\ndata:\n\n"
             : strcmp(pv, "blank") == 0 ? "event: ping\ndata: \n\n"
             : strcmp(pv, "none") == 0 ? "event: ping\n\n" : "event: ping\ndata: not json\n\n";
    }
    s->gap_ms = (int)hnum(req, "x-fake-chunk-gap-ms", 0);
    s->split = hnum(req, "x-fake-split", 0) == 1;
    if (a->empty > 0) {   /* the head, then a clean end before any event */
        static const char quiet[] = ": nothing yet\n\n\n";
        if (a->empty == 2) {
            script_add(s, quiet, sizeof(quiet) - 1);
        }
        script_start(s, 200, "text/event-stream");
        return;
    }
    add_event(s, "message_start", json_pack("{s:s,s:{s:s,s:s,s:s,s:[],s:s,s:n,s:n,s:o}}",
              "type", "message_start", "message", "id", "msg_fake1", "type", "message", "role",
              "assistant", "content", "model", a->model, "stop_reason", "stop_sequence",
              "usage", usage_obj(a, 1)));
    script_add(s, ping, strlen(ping));
    if (err != NULL && strcmp(err, "early") == 0) {
        add_error_event(s);
    }
    add_event(s, "content_block_start", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type",
              "content_block_start", "index", 0, "content_block", "type", "text", "text", ""));
    if (strcmp(a->text, "") != 0 && hv(req, "x-fake-echo") != NULL) {
        chunks = 0;
        add_event(s, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type",
                  "content_block_delta", "index", 0, "delta", "type", "text_delta", "text",
                  a->text));
    }
    for (i = 0; i < (chunks > 0 ? a->npieces : 0); i++) {
        if (i == a->cut_token) {
            s->cut_at = (long)s->nev;
        }
        add_event(s, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type",
                  "content_block_delta", "index", 0, "delta", "type", "text_delta", "text",
                  a->pieces[i]));
    }
    if (a->cut_token >= 0 && s->cut_at < 0) {   /* past the last piece: after the text */
        s->cut_at = (long)s->nev;
    }
    add_event(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop",
                                                 "index", 0));
    if (a->tool != NULL) {
        add_event(s, "content_block_start", json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type",
                  "content_block_start", "index", 1, "content_block", "type", "tool_use", "id",
                  "toolu_fake1", "name", a->tool, "input"));
        for (i = 0; i < 3; i++) {
            add_event(s, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type",
                      "content_block_delta", "index", 1, "delta", "type", "input_json_delta",
                      "partial_json", frags[i]));
        }
        add_event(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop",
                                                     "index", 1));
    }
    if (err != NULL && strcmp(err, "late") == 0) {
        add_error_event(s);
    }
    if (hnum(req, "x-fake-cut", 0) == 1 && s->cut_at < 0) {
        s->cut_at = (long)s->nev;
    }
    add_event(s, "message_delta", json_pack("{s:s,s:{s:s,s:n},s:{s:I}}", "type",
              "message_delta", "delta", "stop_reason", a->stop, "stop_sequence", "usage",
              "output_tokens", a->out));
    add_event(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-cache");
    script_start(s, 200, "text/event-stream");
}

static void
anthropic(struct event_base *base, struct evhttp_request *req, const char *uri, const char *name,
          int fail, json_t *body)
{
    const char *only = hv(req, "x-fake-status-for"), *v;
    int status = fail ? fail : (int)hnum(req, "x-fake-status", 200);
    json_t *tools = json_object_get(body, "tools");
    struct areq a;
    char text[128];

    if (!fail && only != NULL && strcmp(only, name) != 0) {
        status = 200;
    }
    if (hv(req, "x-api-key") == NULL || hv(req, "authorization") != NULL) {
        anthropic_error(req, 401, "invalid x-api-key");
        return;
    }
    if (hv(req, "anthropic-version") == NULL) {
        anthropic_error(req, 400, "anthropic-version: header is required");
        return;
    }
    if (status >= 400) {
        anthropic_error(req, status, status == 529 ? "Overloaded" : "fake failure");
        return;
    }
    if (!json_is_object(body) || !json_is_string(json_object_get(body, "model"))) {
        anthropic_error(req, 400, "model: Field required");
        return;
    }
    if (strstr(uri, "/count_tokens") != NULL) {
        reply_json(req, 200, json_pack("{s:i}", "input_tokens", 42));
        return;
    }
    if (!json_is_integer(json_object_get(body, "max_tokens"))) {
        anthropic_error(req, 400, "max_tokens: Field required");
        return;
    }
    memset(&a, 0, sizeof(a));
    a.body = body;
    a.model = json_string_value(json_object_get(body, "model"));
    a.stream = json_is_true(json_object_get(body, "stream"));
    a.tool = json_string_value(json_object_get(json_array_get(tools, 0), "name"));
    if (last_has_result(json_object_get(body, "messages"), "tool_result")) {
        a.tool = NULL;
    }
    a.in = 10;
    a.out = 20;
    if ((v = hv(req, "x-fake-usage")) != NULL) {
        sscanf(v, "%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT, &a.in, &a.out);
    }
    if ((v = hv(req, "x-fake-cache")) != NULL) {
        sscanf(v, "%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT, &a.cache_read,
               &a.cache_write);
    }
    a.stop = hv(req, "x-fake-stop") ? hv(req, "x-fake-stop") : a.tool ? "tool_use" : "end_turn";
    if ((v = hv(req, "x-fake-for")) == NULL || strcmp(v, name) == 0) {
        a.empty = hnum(req, "x-fake-empty-stream", 0);
    }
    if (prepare_pieces(req, name, json_object_get(body, "messages"), &a) != 0) {
        anthropic_error(req, 400, a.text);
        return;
    }
    if (hv(req, "x-fake-echo") != NULL) {
        a.text = echo_text(req, body);
    } else {
        snprintf(text, sizeof(text), "Hello from %s", name);
        a.text = strdup(a.stream ? "" : text);
    }
    if (a.stream) {
        answer_stream(base, req, &a);
    } else {
        answer_plain(req, &a);
    }
    free(a.text);
    fake_pieces_free(a.pieces, a.npieces);
}

/* ---- Bedrock ------------------------------------------------------------------------------- */

static void
bedrock_error(struct evhttp_request *req, int status, const char *type, const char *msg)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    char v[160];
    long ra = hnum(req, "x-fake-retry-after", -1);

    snprintf(v, sizeof(v), "%s:http://internal.amazon.com/coral/com.amazon.bedrock/", type);
    evhttp_add_header(out, "x-amzn-errortype", v);
    evhttp_add_header(out, "x-amzn-RequestId", "fake-request-id");
    if (ra >= 0) {
        snprintf(v, sizeof(v), "%ld", ra);
        evhttp_add_header(out, "Retry-After", v);
    }
    reply_json(req, status, json_pack("{s:s}", "message", msg));
}

/* Checks the request's SigV4 signature as AWS would (fakeai_cloud.c). 0, or -1 after a 403. */
static int
bedrock_verify(struct evhttp_request *req, const char *body, size_t len)
{
    const char *type, *msg;

    if (fake_sigv4_verify(req, body, len, "bedrock", &type, &msg) != 0) {
        bedrock_error(req, 403, type, msg);
        return -1;
    }
    return 0;
}

static void
add_frame(struct script *s, const char *mtype, const char *tname, const char *type, json_t *p)
{
    struct mg_evstream_header h[3] = {
        {":message-type", 13, MG_EVSTREAM_T_STRING, 0, (const unsigned char *)mtype,
         strlen(mtype)},
        {tname, strlen(tname), MG_EVSTREAM_T_STRING, 0, (const unsigned char *)type,
         strlen(type)},
        MG_EVSTREAM_STRING(":content-type", "application/json"),
    };
    char *d = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
    struct mg_buf b;

    mg_buf_init(&b, 1 << 20);
    mg_evstream_encode(&b, h, 3, d, strlen(d));
    script_add(s, b.data, b.len);
    mg_buf_deinit(&b);
    free(d);
    json_decref(p);
}

static void
add_bedrock_event(struct script *s, const char *type, json_t *p)
{
    add_frame(s, "event", ":event-type", type, p);
}

static json_t *
bedrock_usage(const struct areq *a)
{
    json_int_t total = 0;

    /* numbers near 2^63 are sent on purpose: the fake's own sum must not overflow */
    if (__builtin_add_overflow(a->in, a->out, &total) ||
        __builtin_add_overflow(total, a->cache_read, &total) ||
        __builtin_add_overflow(total, a->cache_write, &total)) {
        total = INT64_MAX;
    }
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "inputTokens", a->in, "outputTokens", a->out,
                     "totalTokens", total,
                     "cacheReadInputTokens", a->cache_read, "cacheWriteInputTokens",
                     a->cache_write);
}

static void
bedrock_stream(struct event_base *base, struct evhttp_request *req, const struct areq *a)
{
    static const char *const frags[] = {"{\"location\"", ": \"Par", "is\"}"};
    struct script *s = script_new(base, req);
    const char *err = hv(req, "x-fake-stream-error");
    long i, chunks = hnum(req, "x-fake-chunks", 3);

    s->gap_ms = (int)hnum(req, "x-fake-chunk-gap-ms", 0);
    s->split = hnum(req, "x-fake-split", 0) == 1;
    add_bedrock_event(s, "messageStart", json_pack("{s:s}", "role", "assistant"));
    if (err != NULL && strcmp(err, "early") == 0) {
        add_frame(s, "exception", ":exception-type", "throttlingException",
                  json_pack("{s:s}", "message", "Too many requests, please wait"));
    }
    if (hv(req, "x-fake-echo") != NULL) {
        chunks = 0;
        add_bedrock_event(s, "contentBlockDelta", json_pack("{s:i,s:{s:s}}",
                          "contentBlockIndex", 0, "delta", "text", a->text));
    }
    for (i = 0; i < (chunks > 0 ? a->npieces : 0); i++) {
        if (i == a->cut_token) {
            s->cut_at = (long)s->nev;
        }
        add_bedrock_event(s, "contentBlockDelta", json_pack("{s:i,s:{s:s}}",
                          "contentBlockIndex", 0, "delta", "text", a->pieces[i]));
    }
    if (a->cut_token >= 0 && s->cut_at < 0) {   /* past the last piece: after the text */
        s->cut_at = (long)s->nev;
    }
    add_bedrock_event(s, "contentBlockStop", json_pack("{s:i}", "contentBlockIndex", 0));
    if (a->tool != NULL) {
        add_bedrock_event(s, "contentBlockStart", json_pack("{s:i,s:{s:{s:s,s:s}}}",
                          "contentBlockIndex", 1, "start", "toolUse", "toolUseId",
                          "tooluse_fake1", "name", a->tool));
        for (i = 0; i < 3; i++) {
            add_bedrock_event(s, "contentBlockDelta", json_pack("{s:i,s:{s:{s:s}}}",
                              "contentBlockIndex", 1, "delta", "toolUse", "input", frags[i]));
        }
        add_bedrock_event(s, "contentBlockStop", json_pack("{s:i}", "contentBlockIndex", 1));
    }
    if (err != NULL && strcmp(err, "late") == 0) {
        add_frame(s, "exception", ":exception-type", "modelStreamErrorException",
                  json_pack("{s:s}", "message", "The model stream failed"));
    }
    if (hnum(req, "x-fake-bad-crc", 0) == 1) {
        add_bedrock_event(s, "contentBlockDelta", json_pack("{s:i,s:{s:s}}",
                          "contentBlockIndex", 0, "delta", "text", "corrupted"));
        s->ev[s->nev - 1][s->evlen[s->nev - 1] - 1] ^= 0x55;
    }
    if (hnum(req, "x-fake-cut", 0) == 1 && s->cut_at < 0) {
        s->cut_at = (long)s->nev;
    }
    add_bedrock_event(s, "messageStop", json_pack("{s:s}", "stopReason", a->stop));
    add_bedrock_event(s, "metadata", json_pack("{s:o,s:{s:i}}", "usage", bedrock_usage(a),
                                               "metrics", "latencyMs", 5));
    script_start(s, 200, "application/vnd.amazon.eventstream");
}

static void
bedrock_plain(struct evhttp_request *req, const struct areq *a)
{
    json_t *content = json_array();

    json_array_append_new(content, json_pack("{s:s}", "text", a->text));
    if (a->tool != NULL) {
        json_array_append_new(content, json_pack("{s:{s:s,s:s,s:{s:s}}}", "toolUse", "toolUseId",
                                                 "tooluse_fake1", "name", a->tool, "input",
                                                 "location", "Paris"));
    }
    reply_json(req, 200, json_pack("{s:{s:{s:s,s:o}},s:s,s:o,s:{s:i}}", "output", "message",
                                   "role", "assistant", "content", content, "stopReason",
                                   a->stop, "usage", bedrock_usage(a), "metrics", "latencyMs",
                                   12));
}

static const char *
bedrock_type(int status)
{
    switch (status) {
    case 400: return "ValidationException";
    case 403: return "AccessDeniedException";
    case 404: return "ResourceNotFoundException";
    case 408: return "ModelTimeoutException";
    case 424: return "ModelErrorException";
    case 429: return "ThrottlingException";
    case 503: return "ServiceUnavailableException";
    default: return "InternalServerException";
    }
}

static void
bedrock(struct event_base *base, struct evhttp_request *req, const char *uri, const char *name,
        int fail, const char *raw, size_t len)
{
    const char *only = hv(req, "x-fake-status-for"), *v;
    int status = fail ? fail : (int)hnum(req, "x-fake-status", 200);
    json_t *body;
    struct areq a;
    char text[128];

    if (!fail && only != NULL && strcmp(only, name) != 0) {
        status = 200;
    }
    if (bedrock_verify(req, raw, len) != 0) {
        return;
    }
    if (status >= 400) {
        bedrock_error(req, status, bedrock_type(status), status == 429 ? "Too many requests, "
                      "please wait before trying again." : "fake failure");
        return;
    }
    body = json_loadb(raw, len, 0, NULL);
    if (!json_is_object(body) || !json_is_array(json_object_get(body, "messages"))) {
        bedrock_error(req, 400, "ValidationException", "messages: required");
        json_decref(body);
        return;
    }
    memset(&a, 0, sizeof(a));
    a.tool = json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(
        json_object_get(body, "toolConfig"), "tools"), 0), "toolSpec"), "name"));
    if (last_has_result(json_object_get(body, "messages"), "toolResult")) {
        a.tool = NULL;
    }
    a.in = 10;
    a.out = 20;
    if ((v = hv(req, "x-fake-usage")) != NULL) {
        sscanf(v, "%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT, &a.in, &a.out);
    }
    if ((v = hv(req, "x-fake-cache")) != NULL) {
        sscanf(v, "%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT, &a.cache_read,
               &a.cache_write);
    }
    a.stop = hv(req, "x-fake-stop") ? hv(req, "x-fake-stop") : a.tool ? "tool_use" : "end_turn";
    if (prepare_pieces(req, name, json_object_get(body, "messages"), &a) != 0) {
        bedrock_error(req, 400, "ValidationException", a.text);
        json_decref(body);
        return;
    }
    if (hv(req, "x-fake-echo") != NULL) {
        a.text = echo_text(req, body);
    } else {
        snprintf(text, sizeof(text), "Hello from %s", name);
        a.text = strdup(text);
    }
    if (strstr(uri, "/converse-stream") != NULL) {
        bedrock_stream(base, req, &a);
    } else {
        bedrock_plain(req, &a);
    }
    free(a.text);
    fake_pieces_free(a.pieces, a.npieces);
    json_decref(body);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/*
 * Takes the request when its path is another provider's: 1 when answered (or being answered),
 * 0 to let the OpenAI fake answer it. name and fail are fakeai's --name and --fail.
 */
int fake_provider_handle(struct event_base *base, struct evhttp_request *req, const char *name,
                         int fail);

int
fake_provider_handle(struct event_base *base, struct evhttp_request *req, const char *name,
                     int fail)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *body;

    if (strncmp(uri, "/openai/deployments/", 20) == 0) {
        return azure(req, uri);
    }
    if (strncmp(uri, "/model/", 7) == 0) {
        bedrock(base, req, uri, name, fail, len ? (const char *)evbuffer_pullup(in, -1) : "",
                len);
        return 1;
    }
    if (strncmp(uri, "/v1/messages", 12) != 0 || (uri[12] != '\0' && uri[12] != '/' &&
                                                  uri[12] != '?')) {
        return 0;
    }
    body = json_loadb(len ? (const char *)evbuffer_pullup(in, -1) : "", len, 0, NULL);
    anthropic(base, req, uri, name, fail, body);
    json_decref(body);
    return 1;
}
