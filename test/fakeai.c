/*
 * fakeai — an OpenAI-compatible test server for modelgate's tests, demo config and benchmarks.
 *
 * Each answer is steered by request headers:
 *   x-fake-status: N        answer with status N (an OpenAI-style error body when N >= 400)
 *   x-fake-status-for: NAME apply x-fake-status only on the fakeai started with --name NAME
 *   x-fake-delay-ms: N      wait N ms before the response headers
 *   x-fake-chunks: N        stream N content chunks (default 3)
 *   x-fake-chunk-gap-ms: N  wait N ms between stream chunks (default 0)
 *   x-fake-usage: IN,OUT    usage numbers (default 10,20), up to 64-bit: absurd ones are a test
 *   x-fake-echo: 1          answer with what was received: method, uri, headers, body
 *   x-fake-content-bytes: N make the answer's content N bytes long
 *   x-fake-split: 1         send every stream event in two writes, 5 ms apart (split reads)
 *   x-fake-stamp: 1         each stream chunk's content is "ts:<CLOCK_MONOTONIC microseconds>"
 * Faults (applied only on the fakeai named by x-fake-for: NAME, when that header is sent):
 *   x-fake-stall-after: N   send N stream events (0: only the head) and then nothing, ever
 *   x-fake-cut-after: N     send N stream events (non-stream: half the body) and close the socket
 *   x-fake-cut-at-token: N  (chat streams, and anthropic/bedrock ones) send N text pieces and
 *                           close the socket (on chat: x-fake-cut-after N+1, after the role chunk)
 *   x-fake-error-event-at: N  after N stream events, an error event and a clean end
 *   x-fake-no-done: 1       end a stream after its finish without data: [DONE]
 *   x-fake-no-finish: 1     end a stream cleanly after its content: no finish, no [DONE]
 *   x-fake-empty-stream: N  a 200 event-stream head, then a clean end with no event at all:
 *                           N=1 an empty body, N=2 only comments and blank lines
 *   x-fake-bad-chunk: 1     a 200 head, then a broken chunk size, then close
 *   x-fake-junk-body: 1     (not streamed) a whole 200 JSON answer whose body is not JSON
 *   x-fake-retry-after: V   Retry-After: V on error answers
 *   x-fake-error-code: C    the error body's "code" (default: the status), and
 *   x-fake-error-message: M its "message" (default "fake failure")
 *   x-fake-endless-error: 1 an error answer whose body never ends
 *   x-fake-resp-connection: 1  answer "Connection: keep-alive, X-Bar" with X-Bar and X-Baz headers
 *   x-fake-sse-length: 1    a stream sent whole, with a Content-Length, not chunked
 *   x-fake-bad-header: 1    a header named "Bad Name" in the answer (a space in a name)
 *   x-fake-date: V          answer with "Date: V" (libevent adds none then)
 *   x-fake-fail-key: K with x-fake-fail-times: N: the faults apply only to the first N requests
 *                           that carry key K (a backend that fails N times, then recovers)
 *   x-fake-ratelimit: 1     add x-ratelimit-limit-requests: 9999, x-ratelimit-remaining-tokens:
 *                           8888 and retry-after: 3 to the answer (a provider's own limits)
 * (Azure's /openai/deployments/... and Anthropic's /v1/messages: see fakeai_providers.c; the
 * cloud credential endpoints, STS, IMDS, Entra ID, managed identity, with --cred-ttl S and
 * --aws-cred AKID:SECRET: see fakeai_cloud.c)
 * and by start-up flags: --port N, --host H, --name NAME (sent back in x-fake-backend and in the
 * content), --fail N (always answer N; with --fail-first K only the first K requests, with
 * --fail-for-ms T only during the first T ms), --hang (never answer), --drop (close the connection on
 * every request), --tls-cert FILE --tls-key FILE (serve HTTPS), --fail-models (GET of the model
 * list answers --fail's status too, for as long as --fail-for-ms says: a backend whose health
 * checks fail), GET /_fake/up (from now on --fail is off: the backend recovers, with no traffic
 * needed). With --hang a GET of the model list is never answered either. GET /_fake/stats reports
 * {"requests","aborted","active","models","models_key","models_uri"}; an "aborted" request is one
 * whose client (the gateway) went away before the answer was complete; "models" counts the GETs
 * of the model list (health checks), "models_key" is the credential the last one carried
 * (Authorization, api-key or x-api-key) and "models_uri" its URI.
 *
 * Prefill (vLLM's continue_final_message): a chat request with "continue_final_message": true
 * whose last message is the assistant's continues it: the stream's text is what follows that
 * message in the answer it would give uncut ("tok0 tok1 tok2 " for 3 chunks: after "tok0 tok1"
 * comes " tok2 "); a prefix that is not how the answer starts is a 400, and so is
 * continue_final_message without "add_generation_prompt": false (as vLLM refuses both true).
 * Anthropic's and Bedrock's final assistant messages are continued the same way (their 400 for
 * trailing whitespace included): test/fakeai_providers.c.
 *
 * POST /v1/responses answers as OpenAI's Responses API (also on Azure's /openai/responses,
 * /openai/v1/responses and /openai/deployments/{name}/responses): a Response object, or with
 * "stream": true its native events (response.created, response.in_progress, output_item.added,
 * content_part.added, output_text.delta (x-fake-chunks of them), output_text.done,
 * content_part.done, output_item.done, response.completed), each sent as "event: TYPE" with a
 * sequence_number. With a function tool, when the last input item is not a function_call_output
 * (and tool_choice is not "none"), the answer is one function_call of the first function tool
 * instead, arguments {"location": "Paris"}, streamed in three function_call_arguments.delta, then
 * .done. The headers above apply (a fault's N counts these events; x-fake-no-finish ends after
 * the last delta; x-fake-error-event-at sends an "error" event; x-fake-stamp stamps each delta
 * as it is sent, the .done texts keep the stamps of when the answer was made; x-fake-no-done does
 * not apply). Ids: resp_fakeN, msg_fakeN, fc_fakeN, call_fakeN. Unless "store": false, the last
 * 1024 Responses are kept for GET /v1/responses/{id}, GET /v1/responses/{id}/input_items and
 * DELETE /v1/responses/{id} (unknown: 404, code response_not_found); an unknown
 * previous_response_id is a 400 (code previous_response_not_found), as OpenAI answers.
 * GET /v1/models with an anthropic-version header answers Anthropic's page of models.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/bufferevent_ssl.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "fakeai_cloud.h"
#include "mg_util.h"

static struct {
    struct event_base *base;
    const char        *name;
    int                fail;
    long               fail_first;   /* --fail only for the first N requests (0: all) */
    int64_t            fail_until;   /* --fail only until this mg_now_ms() (0: always) */
    int                hang;
    int                drop;
    int                fail_models;  /* --fail-models: GET of the model list fails like --fail */
    long               models;       /* GETs of the model list answered */
    char               models_key[256];  /* the credential the last one carried */
    char               models_uri[256];  /* and its URI */
    long               requests;
    long               aborted;
    long               active;
    long               resp_seq;     /* numbers the ids of the Responses answered */
} g;

struct fake {
    struct evhttp_request    *req;
    struct evhttp_connection *evcon;
    struct event             *timer;
    struct event             *peek;
    char                     *model;
    char                     *chat_tool;   /* chat: the function tool to call now, or NULL */
    int                       status;
    int                       stream;
    int                       include_usage;
    int                       chunks;
    int                       sent;
    int                       gap_ms;
    json_int_t                usage_in, usage_out;
    int                       content_bytes;
    int                       started;
    int                       echo;
    int                       split;
    int                       stamp;
    char                     *pending;   /* second half of a split event, sent by the timer */
    int                       stall_after;   /* -1: none */
    int                       cut_after;
    int                       error_at;
    int                       no_done;
    int                       no_finish;
    int                       empty_stream;
    int                       bad_chunk;
    int                       junk_body;
    int                       endless;
    int                       stalled;
    const char               *retry_after;
    const char               *error_code;
    const char               *error_message;
    json_t                   *echo_json;
    int                       responses;   /* POST /v1/responses: a Response or its events */
    json_t                   *resp;        /* the Response answered (status completed) */
    char                    **evs;         /* its stream events, in order */
    int                       nev;
    int                       text_end;    /* the first event after the last delta */
    char                    **pieces;      /* a continued chat answer's text (prefill) */
    long                      npieces;
};

/* Azure's and Anthropic's paths (test/fakeai_providers.c): 1 when it took the request. */
int fake_provider_handle(struct event_base *base, struct evhttp_request *req, const char *name,
                         int fail);
/* Prefill (test/fakeai_providers.c): a final assistant message's text, and what follows it. */
char *fake_prefill_of(json_t *messages);
char **fake_pieces(const char *prefix, long chunks, long *n, const char **err);
void fake_pieces_free(char **pieces, long n);

static long
header_num(struct evhttp_request *req, const char *name, long def)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    return v ? strtol(v, NULL, 10) : def;
}

static void
fake_free(struct fake *f)
{
    if (f->evcon != NULL) {
        evhttp_connection_set_closecb(f->evcon, NULL, NULL);
    }
    event_free(f->timer);
    event_free(f->peek);
    json_decref(f->echo_json);
    json_decref(f->resp);
    for (int i = 0; i < f->nev; i++) {
        free(f->evs[i]);
    }
    free(f->evs);
    free(f->pending);
    free(f->model);
    free(f->chat_tool);
    fake_pieces_free(f->pieces, f->npieces);
    free(f);
    g.active--;
}

/* The request goes back to evhttp: no more close or peek callbacks for f. */
static void
detach(struct fake *f)
{
    if (f->evcon != NULL) {
        evhttp_connection_set_closecb(f->evcon, NULL, NULL);
        f->evcon = NULL;
    }
    event_del(f->peek);
}

static void
set_timer(struct fake *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(f->timer, &tv);
}

static char *
content_text(struct fake *f, int index)
{
    char *s;
    if (f->content_bytes > 0) {
        s = malloc((size_t)f->content_bytes + 1);
        memset(s, 'x', (size_t)f->content_bytes);
        s[f->content_bytes] = '\0';
        return s;
    }
    s = malloc(128);
    if (f->stamp && index >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(s, 128, "ts:%lld", (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    } else if (index >= 0 && f->pieces != NULL && index < f->npieces) {
        snprintf(s, 128, "%s", f->pieces[index]);
    } else if (index < 0) {
        snprintf(s, 128, "Hello from %s", g.name);
    } else {
        snprintf(s, 128, "tok%d ", index);
    }
    return s;
}

static void
send_json(struct evhttp_request *req, int status, json_t *j)
{
    struct evbuffer *b = evbuffer_new();
    char *s = json_dumps(j, JSON_COMPACT);
    evbuffer_add(b, s, strlen(s));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
    free(s);
}

static json_t *
usage_json(struct fake *f)
{
    json_int_t total;

    /* numbers near 2^63 are sent on purpose: the fake's own sum must not overflow */
    if (__builtin_add_overflow(f->usage_in, f->usage_out, &total)) {
        total = INT64_MAX;
    }
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", f->usage_in, "completion_tokens",
                     f->usage_out, "total_tokens", total);
}

static void
send_text(struct fake *f, const char *text, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, len);
    evhttp_send_reply_chunk(f->req, b);
    evbuffer_free(b);
}

/* Sends one event; in split mode only its first half now (the timer sends the rest). */
static void
send_event(struct fake *f, const char *ev)
{
    size_t len = strlen(ev);

    if (f->pending != NULL) {   /* several events in one step: queue behind the split one */
        size_t have = strlen(f->pending);
        f->pending = realloc(f->pending, have + len + 1);
        memcpy(f->pending + have, ev, len + 1);
        return;
    }
    if (f->split && len > 1) {
        send_text(f, ev, len / 2);
        f->pending = strdup(ev + len / 2);
        return;
    }
    send_text(f, ev, len);
}

static void
send_chunk_json(struct fake *f, json_t *j)
{
    char *s, *ev;

    /* what OpenAI does once include_usage is on: every chunk carries "usage": null */
    if (f->include_usage && json_object_get(j, "usage") == NULL) {
        json_object_set_new(j, "usage", json_null());
    }
    s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    ev = malloc(strlen(s) + 16);
    snprintf(ev, strlen(s) + 16, "data: %s\n\n", s);
    send_event(f, ev);
    free(ev);
    free(s);
    json_decref(j);
}

static json_t *
chunk_obj(struct fake *f, json_t *delta, const char *finish)
{
    return json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:o}]}", "id", "chatcmpl-fake", "object",
                     "chat.completion.chunk", "created", 1700000000, "model", f->model, "choices",
                     "index", 0, "delta", delta, "finish_reason",
                     finish ? json_string(finish) : json_null());
}


/* ---- the Responses API (POST /v1/responses, GET and DELETE /v1/responses/{id}) ------------- */

#define RESP_STORE 1024   /* the Responses kept for GET, DELETE and previous_response_id */

static struct {
    char    id[64];
    json_t *resp;    /* the Response as answered */
    json_t *input;   /* its input items, each with an id */
} stored[RESP_STORE];
static int stored_next;

static int
stored_find(const char *id)
{
    int i;

    for (i = 0; i < RESP_STORE; i++) {
        if (stored[i].resp != NULL && strcmp(stored[i].id, id) == 0) {
            return i;
        }
    }
    return -1;
}

static void
stored_drop(int i)
{
    json_decref(stored[i].resp);
    json_decref(stored[i].input);
    stored[i].resp = stored[i].input = NULL;
    stored[i].id[0] = '\0';
}

/* The request's input as items with ids (what GET /v1/responses/{id}/input_items lists). */
static json_t *
input_items(json_t *input, long seq)
{
    json_t *items = json_array(), *it;
    char id[64];
    size_t i;

    if (json_is_string(input)) {
        snprintf(id, sizeof(id), "msg_fake%ldin0", seq);
        json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:O}]}", "id", id,
                                               "type", "message", "role", "user", "status",
                                               "completed", "content", "type", "input_text",
                                               "text", input));
        return items;
    }
    json_array_foreach(input, i, it) {
        json_t *c = json_deep_copy(it);
        if (!json_is_object(c)) {
            json_decref(c);
            continue;
        }
        if (json_object_get(c, "id") == NULL) {
            snprintf(id, sizeof(id), "item_fake%ldin%zu", seq, i);
            json_object_set_new(c, "id", json_string(id));
        }
        if (json_object_get(c, "type") == NULL) {
            json_object_set_new(c, "type", json_string("message"));
        }
        if (json_is_string(json_object_get(c, "content"))) {
            json_object_set_new(c, "content", json_pack("[{s:s,s:O}]", "type", "input_text",
                                                        "text", json_object_get(c, "content")));
        }
        json_array_append_new(items, c);
    }
    return items;
}

static void
stored_put(json_t *resp, json_t *input)
{
    int i = stored_next;

    stored_next = (stored_next + 1) % RESP_STORE;
    stored_drop(i);
    snprintf(stored[i].id, sizeof(stored[i].id), "%s",
             json_string_value(json_object_get(resp, "id")));
    stored[i].resp = json_incref(resp);
    stored[i].input = input;
}

static void
openai_error(struct evhttp_request *req, int status, const char *msg, const char *param,
             const char *code)
{
    json_t *j = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", msg, "type",
                          "invalid_request_error", "param",
                          param ? json_string(param) : json_null(), "code",
                          code ? json_string(code) : json_null());
    send_json(req, status, j);
    json_decref(j);
}

/*
 * Where the Responses path of uri goes on: uri + the returned offset is "" or "?..." (the
 * collection) or "/{id}..." (one Response); -1 when uri is not a Responses path. OpenAI's
 * /v1/responses, and Azure's /openai/responses, /openai/v1/responses and
 * /openai/deployments/{name}/responses.
 */
static int
responses_path(const char *uri)
{
    size_t n = strcspn(uri, "?");
    const char *p;

    if (strncmp(uri, "/v1/", 4) != 0 && strncmp(uri, "/openai/", 8) != 0) {
        return -1;
    }
    for (p = uri; (p = strstr(p, "/responses")) != NULL && p < uri + n; p++) {
        char next = p[10];
        if ((p == uri + 3 || strncmp(uri, "/openai/", 8) == 0) &&
            (next == '\0' || next == '?' || next == '/')) {
            return (int)(p + 10 - uri);
        }
    }
    return -1;
}

/* GET /v1/responses/{id}, GET .../{id}/input_items and DELETE /v1/responses/{id}. */
static void
responses_stored(struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    char id[64], msg[160];
    const char *slash = strchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : strlen(path);
    int i, listing = slash != NULL && strcmp(slash, "/input_items") == 0;
    json_t *j;

    snprintf(id, sizeof(id), "%.*s", (int)(n < sizeof(id) ? n : sizeof(id) - 1), path);
    i = stored_find(id);
    if ((slash != NULL && !listing) || (listing && cmd != EVHTTP_REQ_GET) ||
        (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_DELETE)) {
        openai_error(req, 404, "Not found", NULL, NULL);
        return;
    }
    if (i < 0) {
        snprintf(msg, sizeof(msg), "Response with id '%s' not found.", id);
        openai_error(req, 404, msg, NULL, "response_not_found");
        return;
    }
    if (cmd == EVHTTP_REQ_DELETE) {
        stored_drop(i);
        j = json_pack("{s:s,s:s,s:b}", "id", id, "object", "response", "deleted", 1);
    } else if (listing) {
        size_t k = json_array_size(stored[i].input);
        j = json_pack("{s:s,s:O,s:o,s:o,s:b}", "object", "list", "data", stored[i].input,
                      "first_id", k ? json_incref(json_object_get(json_array_get(
                                                  stored[i].input, 0), "id")) : json_null(),
                      "last_id", k ? json_incref(json_object_get(json_array_get(
                                                 stored[i].input, k - 1), "id")) : json_null(),
                      "has_more", 0);
    } else {
        j = json_incref(stored[i].resp);
    }
    send_json(req, 200, j);
    json_decref(j);
}

/* The request's value of key, or def (a new reference either way). */
static json_t *
req_or(json_t *body, const char *key, json_t *def)
{
    json_t *v = json_object_get(body, key);

    if (v == NULL) {
        return def;
    }
    json_decref(def);
    return json_incref(v);
}

/*
 * Chat: the first function tool's name when the model should call it now (tools given, the
 * last message is not a tool result, tool_choice is not "none"), else NULL.
 */
static char *
chat_tool(json_t *body)
{
    json_t *tools = json_object_get(body, "tools"), *msgs = json_object_get(body, "messages");
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1), *t;
    const char *choice = json_string_value(json_object_get(body, "tool_choice"));
    const char *role = json_string_value(json_object_get(last, "role"));
    size_t i;

    if (!json_is_array(tools) || (choice != NULL && strcmp(choice, "none") == 0) ||
        (role != NULL && strcmp(role, "tool") == 0)) {
        return NULL;
    }
    json_array_foreach(tools, i, t) {
        const char *name = json_string_value(json_object_get(json_object_get(t, "function"),
                                                             "name"));
        if (name != NULL) {
            return strdup(name);
        }
    }
    return NULL;
}

/* The first function tool's name when the model should call it now, else NULL. */
static const char *
resp_tool(json_t *body)
{
    json_t *tools = json_object_get(body, "tools"), *t, *input = json_object_get(body, "input");
    json_t *last = json_array_get(input, json_array_size(input) - 1);
    const char *choice = json_string_value(json_object_get(body, "tool_choice"));
    size_t i;

    if (choice != NULL && strcmp(choice, "none") == 0) {
        return NULL;
    }
    if (json_is_array(input) && json_array_size(input) > 0 &&
        json_is_string(json_object_get(last, "type")) &&
        strcmp(json_string_value(json_object_get(last, "type")), "function_call_output") == 0) {
        return NULL;   /* the tool's result came back: now the model answers in text */
    }
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (type != NULL && strcmp(type, "function") == 0 &&
            json_is_string(json_object_get(t, "name"))) {
            return json_string_value(json_object_get(t, "name"));
        }
    }
    return NULL;
}

static const char *const resp_args[] = {"{\"location\"", ": \"Par", "is\"}"};

static json_t *
resp_usage(struct fake *f)
{
    json_int_t total;

    if (__builtin_add_overflow(f->usage_in, f->usage_out, &total)) {
        total = INT64_MAX;
    }
    return json_pack("{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens", f->usage_in,
                     "input_tokens_details", "cached_tokens", 0, "output_tokens", f->usage_out,
                     "output_tokens_details", "reasoning_tokens", 0, "total_tokens", total);
}

/*
 * Checks a POST /v1/responses body and builds f->resp, the completed Response (its text as the
 * stream will send it when f->stream); records it for GET and previous_response_id.
 * NULL, or the message of a 400 answer (written into err).
 */
static const char *
resp_prepare(struct fake *f, json_t *body, char *err, size_t errlen, const char **param,
             const char **code)
{
    json_t *input = json_object_get(body, "input"), *prev, *output, *r;
    const char *tool;
    char id[64], item[64], call[64];
    long seq;
    int i;

    *param = *code = NULL;
    if (!json_is_object(body)) {
        snprintf(err, errlen, "We could not parse the JSON body of your request.");
        return err;
    }
    if (!json_is_string(json_object_get(body, "model"))) {
        snprintf(err, errlen, "Missing required parameter: 'model'.");
        *param = "model";
        *code = "missing_required_parameter";
        return err;
    }
    if (input != NULL && !json_is_string(input) && !json_is_array(input)) {
        snprintf(err, errlen, "Invalid type for 'input': expected a string or an array.");
        *param = "input";
        *code = "invalid_type";
        return err;
    }
    prev = json_object_get(body, "previous_response_id");
    if (json_is_string(prev) && stored_find(json_string_value(prev)) < 0) {
        snprintf(err, errlen, "Previous response with id '%s' not found.",
                 json_string_value(prev));
        *param = "previous_response_id";
        *code = "previous_response_not_found";
        return err;
    }
    seq = ++g.resp_seq;
    snprintf(id, sizeof(id), "resp_fake%ld", seq);
    output = json_array();
    tool = resp_tool(body);
    if (tool != NULL) {
        snprintf(item, sizeof(item), "fc_fake%ld", seq);
        snprintf(call, sizeof(call), "call_fake%ld", seq);
        json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item, "type",
                                                "function_call", "status", "completed",
                                                "arguments", "{\"location\": \"Paris\"}",
                                                "call_id", call, "name", tool));
    } else {
        struct mg_buf text;
        mg_buf_init(&text, 64 * 1024 * 1024);
        for (i = 0; i < (f->stream ? f->chunks : 1); i++) {
            char *t = content_text(f, f->stream ? i : -1);
            if (mg_buf_adds(&text, t) != MG_OK) {
                free(t);
                break;
            }
            free(t);
        }
        snprintf(item, sizeof(item), "msg_fake%ld", seq);
        json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:[{s:s,s:[],s:[],s:s%}],s:s}",
                                                "id", item, "type", "message", "status",
                                                "completed", "content", "type", "output_text",
                                                "annotations", "logprobs", "text",
                                                text.data ? text.data : "", text.len, "role",
                                                "assistant"));
        mg_buf_deinit(&text);
    }
    r = json_pack("{s:s,s:s,s:I,s:s,s:b,s:n,s:n}", "id", id, "object", "response", "created_at",
                  (json_int_t)time(NULL), "status", "completed", "background", 0, "error",
                  "incomplete_details");
    json_object_set_new(r, "instructions", req_or(body, "instructions", json_null()));
    json_object_set_new(r, "max_output_tokens", req_or(body, "max_output_tokens", json_null()));
    json_object_set_new(r, "model", json_string(f->model));
    json_object_set_new(r, "output", output);
    json_object_set_new(r, "parallel_tool_calls", req_or(body, "parallel_tool_calls",
                                                         json_true()));
    json_object_set_new(r, "previous_response_id", req_or(body, "previous_response_id",
                                                          json_null()));
    json_object_set_new(r, "reasoning", req_or(body, "reasoning",
                                               json_pack("{s:n,s:n}", "effort", "summary")));
    json_object_set_new(r, "service_tier", json_string("default"));
    json_object_set_new(r, "store", req_or(body, "store", json_true()));
    json_object_set_new(r, "temperature", req_or(body, "temperature", json_real(1.0)));
    json_object_set_new(r, "text", req_or(body, "text", json_pack("{s:{s:s}}", "format", "type",
                                                                  "text")));
    json_object_set_new(r, "tool_choice", req_or(body, "tool_choice", json_string("auto")));
    json_object_set_new(r, "tools", req_or(body, "tools", json_array()));
    json_object_set_new(r, "top_p", req_or(body, "top_p", json_real(1.0)));
    json_object_set_new(r, "truncation", req_or(body, "truncation", json_string("disabled")));
    json_object_set_new(r, "usage", resp_usage(f));
    json_object_set_new(r, "user", req_or(body, "user", json_null()));
    json_object_set_new(r, "metadata", req_or(body, "metadata", json_object()));
    if (!json_is_false(json_object_get(body, "store"))) {
        stored_put(r, input_items(input, seq));
    }
    f->resp = r;
    return NULL;
}

/* Appends one event, "event: TYPE" and its data with the next sequence_number. */
static void
resp_event(struct fake *f, json_t *data)
{
    char *d, *ev;
    size_t n;

    json_object_set_new(data, "sequence_number", json_integer(f->nev));
    d = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    n = strlen(d) + 128;
    ev = malloc(n);
    snprintf(ev, n, "event: %s\ndata: %s\n\n",
             json_string_value(json_object_get(data, "type")), d);
    f->evs = realloc(f->evs, (size_t)(f->nev + 1) * sizeof(*f->evs));
    f->evs[f->nev++] = ev;
    free(d);
    json_decref(data);
}

/* The Response as the stream first shows it: in progress, no output, no usage yet. */
static json_t *
resp_snapshot(struct fake *f)
{
    json_t *r = json_deep_copy(f->resp);

    json_object_set_new(r, "status", json_string("in_progress"));
    json_object_set_new(r, "output", json_array());
    json_object_set_new(r, "usage", json_null());
    return r;
}

/* The events of a streamed Response, from f->resp, in the order OpenAI sends them. */
static void
resp_events(struct fake *f)
{
    json_t *output = json_object_get(f->resp, "output"), *it;
    size_t oi;
    int i;

    resp_event(f, json_pack("{s:s,s:o}", "type", "response.created", "response",
                            resp_snapshot(f)));
    resp_event(f, json_pack("{s:s,s:o}", "type", "response.in_progress", "response",
                            resp_snapshot(f)));
    json_array_foreach(output, oi, it) {
        const char *iid = json_string_value(json_object_get(it, "id"));
        json_t *added = json_deep_copy(it);
        json_object_set_new(added, "status", json_string("in_progress"));
        if (json_object_get(it, "arguments") != NULL) {   /* a function_call */
            json_object_set_new(added, "arguments", json_string(""));
            resp_event(f, json_pack("{s:s,s:i,s:o}", "type", "response.output_item.added",
                                    "output_index", (int)oi, "item", added));
            for (i = 0; i < 3; i++) {
                resp_event(f, json_pack("{s:s,s:s,s:i,s:s}", "type",
                                        "response.function_call_arguments.delta", "item_id", iid,
                                        "output_index", (int)oi, "delta", resp_args[i]));
            }
            f->text_end = f->nev;
            resp_event(f, json_pack("{s:s,s:s,s:i,s:O,s:O}", "type",
                                    "response.function_call_arguments.done", "item_id", iid,
                                    "output_index", (int)oi, "arguments",
                                    json_object_get(it, "arguments"), "name",
                                    json_object_get(it, "name")));
        } else {   /* a message with one output_text part */
            json_t *part = json_array_get(json_object_get(it, "content"), 0);
            json_object_set_new(added, "content", json_array());
            resp_event(f, json_pack("{s:s,s:i,s:o}", "type", "response.output_item.added",
                                    "output_index", (int)oi, "item", added));
            resp_event(f, json_pack("{s:s,s:s,s:i,s:i,s:{s:s,s:[],s:[],s:s}}", "type",
                                    "response.content_part.added", "item_id", iid,
                                    "output_index", (int)oi, "content_index", 0, "part", "type",
                                    "output_text", "annotations", "logprobs", "text", ""));
            for (i = 0; i < f->chunks; i++) {
                char *t = content_text(f, i);
                resp_event(f, json_pack("{s:s,s:s,s:i,s:i,s:s,s:[]}", "type",
                                        "response.output_text.delta", "item_id", iid,
                                        "output_index", (int)oi, "content_index", 0, "delta", t,
                                        "logprobs"));
                free(t);
            }
            f->text_end = f->nev;
            resp_event(f, json_pack("{s:s,s:s,s:i,s:i,s:O,s:[]}", "type",
                                    "response.output_text.done", "item_id", iid, "output_index",
                                    (int)oi, "content_index", 0, "text",
                                    json_object_get(part, "text"), "logprobs"));
            resp_event(f, json_pack("{s:s,s:s,s:i,s:i,s:O}", "type",
                                    "response.content_part.done", "item_id", iid,
                                    "output_index", (int)oi, "content_index", 0, "part", part));
        }
        resp_event(f, json_pack("{s:s,s:i,s:O}", "type", "response.output_item.done",
                                "output_index", (int)oi, "item", it));
    }
    resp_event(f, json_pack("{s:s,s:O}", "type", "response.completed", "response", f->resp));
}

/* A text delta event again, its delta stamped now (x-fake-stamp). */
static char *
resp_stamped(struct fake *f, const char *ev)
{
    const char *data = strstr(ev, "\ndata: ");
    json_t *j = json_loads(data + 7, 0, NULL);
    char *t = content_text(f, 0), *d, *out;
    size_t n;

    json_object_set_new(j, "delta", json_string(t));
    d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    n = strlen(d) + 64;
    out = malloc(n);
    snprintf(out, n, "event: response.output_text.delta\ndata: %s\n\n", d);
    free(d);
    free(t);
    json_decref(j);
    return out;
}

/* One step of a stream: role, content chunks, finish, optional usage, [DONE]. */
/* Closes the connection a moment from now (what was written has time to leave). */
static void
cut_soon(struct fake *f)
{
    f->stalled = 2;
    set_timer(f, 30);
}

static void
cut_now(struct fake *f)
{
    struct evhttp_connection *evcon = f->evcon;

    detach(f);
    fake_free(f);
    if (evcon != NULL) {
        evhttp_connection_free(evcon);
    }
}

/* Ends a stream here: the reply's last chunk, then the request is done. */
static void
stream_end(struct fake *f)
{
    if (f->pending != NULL) {
        send_text(f, f->pending, strlen(f->pending));
        free(f->pending);
        f->pending = NULL;
    }
    detach(f);   /* before the end: evhttp may free the connection right away */
    evhttp_send_reply_end(f->req);
    fake_free(f);
}

/* The faults that act between stream events; 1 when one took over. */
static int
stream_fault(struct fake *f)
{
    if (f->sent == f->stall_after) {
        f->stalled = 1;   /* nothing more, ever: the gateway's timers must act */
        return 1;
    }
    if (f->sent == f->cut_after) {
        cut_soon(f);
        return 1;
    }
    if (f->sent == f->error_at && f->responses) {
        char ev[256];
        snprintf(ev, sizeof(ev), "event: error\ndata: {\"type\":\"error\",\"code\":"
                 "\"server_error\",\"message\":\"fake stream error\",\"param\":null,"
                 "\"sequence_number\":%d}\n\n", f->sent);
        send_text(f, ev, strlen(ev));
        stream_end(f);
        return 1;
    }
    if (f->sent == f->error_at) {
        static const char ev[] = "data: {\"error\":{\"message\":\"fake stream error\","
                                 "\"type\":\"server_error\"}}\n\n";
        send_text(f, ev, sizeof(ev) - 1);
        stream_end(f);
        return 1;
    }
    if (f->responses ? f->sent == f->text_end && f->no_finish
                     : f->sent > f->chunks && f->no_finish) {
        stream_end(f);
        return 1;
    }
    return 0;
}

static void
stream_step(struct fake *f)
{
    if (stream_fault(f)) {
        return;
    }
    if (f->responses && f->sent >= f->nev) {   /* response.completed was the last: no [DONE] */
        stream_end(f);
        return;
    }
    if (f->responses && f->stamp &&
        strncmp(f->evs[f->sent], "event: response.output_text.delta\n", 34) == 0) {
        char *ev = resp_stamped(f, f->evs[f->sent]);
        send_event(f, ev);
        free(ev);
    } else if (f->responses) {
        send_event(f, f->evs[f->sent]);
    } else if (f->sent == 0 && f->chat_tool != NULL) {   /* the call's id and name first */
        send_chunk_json(f, chunk_obj(f, json_pack("{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}",
                                                  "role", "assistant", "content", "tool_calls",
                                                  "index", 0, "id", "call_fake1", "type",
                                                  "function", "function", "name", f->chat_tool,
                                                  "arguments", ""), NULL));
    } else if (f->sent == 0) {
        send_chunk_json(f, chunk_obj(f, json_pack("{s:s}", "role", "assistant"), NULL));
    } else if (f->sent <= f->chunks && f->chat_tool != NULL) {   /* arguments in pieces */
        static const char *const args[] = {"{\"location\"", ": \"Par", "is\"}"};
        const char *a = f->sent <= 3 ? args[f->sent - 1] : "";
        send_chunk_json(f, chunk_obj(f, json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index",
                                                  0, "function", "arguments", a), NULL));
    } else if (f->sent <= f->chunks) {
        char *t = content_text(f, f->sent - 1);
        send_chunk_json(f, chunk_obj(f, json_pack("{s:s}", "content", t), NULL));
        free(t);
    } else {
        send_chunk_json(f, chunk_obj(f, json_object(), f->chat_tool ? "tool_calls" : "stop"));
        if (f->include_usage) {
            json_t *u = json_pack("{s:s,s:s,s:i,s:s,s:[],s:o}", "id", "chatcmpl-fake", "object",
                                  "chat.completion.chunk", "created", 1700000000, "model",
                                  f->model, "choices", "usage", usage_json(f));
            send_chunk_json(f, u);
        }
        if (!f->no_done) {
            if (f->pending != NULL) {
                send_text(f, f->pending, strlen(f->pending));
                free(f->pending);
                f->pending = NULL;
            }
            send_text(f, "data: [DONE]\n\n", 14);
        }
        stream_end(f);
        return;
    }
    f->sent++;
    if (f->pending != NULL) {
        set_timer(f, 5);
    } else if (f->gap_ms > 0) {
        set_timer(f, f->gap_ms);
    } else {
        stream_step(f);
    }
}

/* A whole stream in one answer with a Content-Length (what some servers do). */
static void
sse_whole(struct fake *f)
{
    struct evbuffer *b = evbuffer_new();
    json_t *ev[3];
    char *t, *js;
    int i;

    if (f->responses) {
        for (i = 0; i < f->nev; i++) {
            evbuffer_add(b, f->evs[i], strlen(f->evs[i]));
        }
        evhttp_add_header(evhttp_request_get_output_headers(f->req), "Content-Type",
                          "text/event-stream");
        detach(f);
        evhttp_send_reply(f->req, 200, NULL, b);
        evbuffer_free(b);
        fake_free(f);
        return;
    }
    t = content_text(f, 0);
    ev[0] = chunk_obj(f, json_pack("{s:s}", "role", "assistant"), NULL);
    ev[1] = chunk_obj(f, json_pack("{s:s}", "content", t), NULL);
    ev[2] = chunk_obj(f, json_object(), "stop");
    for (i = 0; i < 3; i++) {
        if (f->include_usage) {
            json_object_set_new(ev[i], "usage", json_null());
        }
        js = json_dumps(ev[i], JSON_COMPACT | JSON_PRESERVE_ORDER);
        evbuffer_add_printf(b, "data: %s\n\n", js);
        free(js);
        json_decref(ev[i]);
    }
    if (f->include_usage) {
        json_t *u = json_pack("{s:s,s:[],s:o}", "id", "chatcmpl-fake", "choices", "usage",
                              usage_json(f));
        js = json_dumps(u, JSON_COMPACT | JSON_PRESERVE_ORDER);
        evbuffer_add_printf(b, "data: %s\n\n", js);
        free(js);
        json_decref(u);
    }
    evbuffer_add_printf(b, "data: [DONE]\n\n");
    free(t);
    evhttp_add_header(evhttp_request_get_output_headers(f->req), "Content-Type",
                      "text/event-stream");
    detach(f);
    evhttp_send_reply(f->req, 200, NULL, b);
    evbuffer_free(b);
    fake_free(f);
}

static void
answer(struct fake *f)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(f->req);
    const char *date;
    json_t *j;

    f->started = 1;
    event_del(f->peek);
    evhttp_add_header(out, "x-fake-backend", g.name);
    evhttp_add_header(out, "x-fake-model", f->model);
    if (f->retry_after != NULL) {
        evhttp_add_header(out, "Retry-After", f->retry_after);
    }
    if (f->status >= 400 && f->endless) {
        evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_send_reply_start(f->req, f->status, NULL);
        send_text(f, "{\"error\":{\"message\":\"", 21);
        f->stalled = 3;   /* the timer keeps sending */
        set_timer(f, 1);
        return;
    }
    if (header_num(f->req, "x-fake-ratelimit", 0) == 1) {   /* a provider's own limit headers */
        evhttp_add_header(out, "x-ratelimit-limit-requests", "9999");
        evhttp_add_header(out, "x-ratelimit-remaining-tokens", "8888");
        evhttp_add_header(out, "retry-after", "3");
    }
    if (f->status >= 400) {
        j = json_pack("{s:{s:s,s:s,s:n}}", "error", "message",
                      f->error_message ? f->error_message : "fake failure", "type", "fake_error",
                      "param");
        json_object_set_new(json_object_get(j, "error"), "code",
                            f->error_code ? json_string(f->error_code) : json_integer(f->status));
        detach(f);
        send_json(f->req, f->status, j);
        json_decref(j);
        fake_free(f);
        return;
    }
    if (f->bad_chunk) {
        evhttp_send_reply_start(f->req, 200, NULL);
        static const char broken[] = "zz\r\nbroken\r\n";
        bufferevent_write(evhttp_connection_get_bufferevent(f->evcon), broken, sizeof(broken) - 1);
        cut_soon(f);
        return;
    }
    if (header_num(f->req, "x-fake-resp-connection", 0) == 1) {
        evhttp_add_header(out, "Connection", "keep-alive, X-Bar");
        evhttp_add_header(out, "X-Bar", "1");
        evhttp_add_header(out, "X-Baz", "2");
    }
    if (header_num(f->req, "x-fake-bad-header", 0) == 1) {
        evhttp_add_header(out, "Bad Name", "x");
    }
    date = evhttp_find_header(evhttp_request_get_input_headers(f->req), "x-fake-date");
    if (date != NULL) {
        evhttp_add_header(out, "Date", date);
    }
    if (f->echo) {
        detach(f);
        send_json(f->req, f->status, f->echo_json);
        fake_free(f);
        return;
    }
    if (f->responses && f->stream) {
        resp_events(f);
    }
    if (f->stream && header_num(f->req, "x-fake-sse-length", 0) == 1) {
        sse_whole(f);
        return;
    }
    if (f->stream) {
        evhttp_add_header(out, "Content-Type", "text/event-stream");
        evhttp_add_header(out, "Cache-Control", "no-cache");
        evhttp_send_reply_start(f->req, f->status, NULL);
        if (f->empty_stream > 0) {
            static const char quiet[] = ": keep-alive\n\n\n\n: ping\r\n\r\n\n";
            if (f->empty_stream == 2) {   /* comments and blank lines: still no event */
                send_text(f, quiet, sizeof(quiet) - 1);
            }
            stream_end(f);
            return;
        }
        stream_step(f);
        return;
    }
    if (f->junk_body) {   /* a whole answer nobody can read */
        struct evbuffer *b = evbuffer_new();
        evhttp_add_header(out, "Content-Type", "application/json");
        evbuffer_add_printf(b, "this is not json {");
        detach(f);
        evhttp_send_reply(f->req, f->status, "OK", b);
        evbuffer_free(b);
        fake_free(f);
        return;
    }
    if (f->stall_after == 0 || f->cut_after >= 0) {
        /* the head, then silence, or half the body and a closed socket */
        evhttp_add_header(out, "Content-Type", "application/json");
        evhttp_send_reply_start(f->req, f->status, NULL);
        if (f->stall_after == 0) {
            f->stalled = 1;
            return;
        }
        if (f->responses) {
            char *whole = json_dumps(f->resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
            send_text(f, whole, strlen(whole) / 2);
            free(whole);
        } else {
            send_text(f, "{\"id\":\"chatcmpl-fake\",\"object\":\"chat.", 37);
        }
        cut_soon(f);
        return;
    }
    if (f->responses) {
        detach(f);
        send_json(f->req, f->status, f->resp);
        fake_free(f);
        return;
    }
    if (f->chat_tool != NULL) {   /* a tool call, as OpenAI answers one */
        j = json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]},s:s}],"
                      "s:o}", "id", "chatcmpl-fake", "object", "chat.completion", "created",
                      1700000000, "model", f->model, "choices", "index", 0, "message", "role",
                      "assistant", "content", "tool_calls", "id", "call_fake1", "type",
                      "function", "function", "name", f->chat_tool, "arguments",
                      "{\"location\": \"Paris\"}", "finish_reason", "tool_calls", "usage",
                      usage_json(f));
        detach(f);
        send_json(f->req, f->status, j);
        json_decref(j);
        fake_free(f);
        return;
    }
    char *t = content_text(f, -1);
    j = json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:o}", "id", "chatcmpl-fake",
                  "object", "chat.completion", "created", 1700000000, "model", f->model,
                  "choices", "index", 0, "message", "role", "assistant", "content", t,
                  "finish_reason", "stop", "usage", usage_json(f));
    free(t);
    detach(f);
    send_json(f->req, f->status, j);
    json_decref(j);
    fake_free(f);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fake *f = arg;
    if (f->stalled == 2) {
        cut_now(f);
    } else if (f->stalled == 3) {
        static const char more[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        int i;
        for (i = 0; i < 64; i++) {
            send_text(f, more, sizeof(more) - 1);
        }
        set_timer(f, 5);
    } else if (!f->started) {
        answer(f);
    } else if (f->pending != NULL) {
        char *rest = f->pending;
        f->pending = NULL;
        send_text(f, rest, strlen(rest));
        free(rest);
        if (f->gap_ms > 0) {
            set_timer(f, f->gap_ms);
        } else {
            stream_step(f);
        }
    } else {
        stream_step(f);
    }
}

static void
on_close(struct evhttp_connection *evcon, void *arg)
{
    struct fake *f = arg;
    g.aborted++;
    f->evcon = NULL;
    if (evhttp_request_get_connection(f->req) == NULL) {
        evhttp_request_free(f->req);
    }
    fake_free(f);
}

static void
on_peek(evutil_socket_t fd, short what, void *arg)
{
    struct fake *f = arg;
    int gone = mg_sock_peer_gone(fd);

    if (gone <= 0) {
        if (gone < 0) {
            event_del(f->peek);
        }
        return;
    }
    struct evhttp_connection *evcon = f->evcon;
    g.aborted++;
    f->evcon = NULL;
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    fake_free(f);
    evhttp_connection_free(evcon);
}

static void
drop_later(evutil_socket_t fd, short what, void *arg)
{
    evhttp_connection_free(arg);
}

static json_t *
echo_of(struct evhttp_request *req, const char *body, size_t len)
{
    json_t *h = json_object(), *j, *b;
    struct evkeyval *kv;

    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        char lower[256];
        size_t i;
        for (i = 0; kv->key[i] && i < sizeof(lower) - 1; i++) {
            lower[i] = (char)((kv->key[i] >= 'A' && kv->key[i] <= 'Z') ? kv->key[i] + 32 : kv->key[i]);
        }
        lower[i] = '\0';
        json_object_set_new(h, lower, json_string(kv->value));
    }
    j = json_pack("{s:s,s:s,s:o,s:s}", "method", "POST", "uri", evhttp_request_get_uri(req),
                  "headers", h, "backend", g.name);
    b = json_stringn(body, len);
    if (b != NULL) {
        json_object_set_new(j, "body", b);
    } else {   /* not UTF-8 (a multipart file): its bytes in hex */
        char *hex = malloc(2 * len + 1);
        for (size_t i = 0; i < len; i++) {
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)body[i]);
        }
        json_object_set_new(j, "body_hex", json_stringn(hex, 2 * len));
        free(hex);
    }
    return j;
}

/* 1 while requests with this x-fake-fail-key are still to fail (counts them). */
int fake_key_fails(const char *key, long times);

int
fake_key_fails(const char *key, long times)
{
    static struct {
        char key[64];
        long seen;
    } keys[256];
    static int nkeys;
    int i;

    for (i = 0; i < nkeys && strcmp(keys[i].key, key) != 0; i++) {
    }
    if (i == nkeys) {
        if (nkeys == 256) {
            return 0;
        }
        snprintf(keys[nkeys++].key, sizeof(keys[0].key), "%s", key);
    }
    return ++keys[i].seen <= times;
}

/* The fault headers, when they are meant for this fakeai (x-fake-for). */
static void
faults(struct fake *f, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *only = evhttp_find_header(in, "x-fake-for");
    const char *key = evhttp_find_header(in, "x-fake-fail-key");

    f->stall_after = f->cut_after = f->error_at = -1;
    if ((only != NULL && strcmp(only, g.name) != 0) ||
        (key != NULL && !fake_key_fails(key, header_num(req, "x-fake-fail-times", 1)))) {
        if (evhttp_find_header(in, "x-fake-status-for") == NULL && g.fail == 0) {
            f->status = 200;   /* x-fake-status is a fault too */
        }
        return;
    }
    f->stall_after = (int)header_num(req, "x-fake-stall-after", -1);
    f->cut_after = (int)header_num(req, "x-fake-cut-after", -1);
    if (header_num(req, "x-fake-cut-at-token", -1) >= 0) {   /* after the role chunk's event */
        f->cut_after = (int)header_num(req, "x-fake-cut-at-token", -1) + 1;
    }
    f->error_at = (int)header_num(req, "x-fake-error-event-at", -1);
    f->no_done = header_num(req, "x-fake-no-done", 0) == 1;
    f->no_finish = header_num(req, "x-fake-no-finish", 0) == 1;
    f->empty_stream = (int)header_num(req, "x-fake-empty-stream", 0);
    f->bad_chunk = header_num(req, "x-fake-bad-chunk", 0) == 1;
    f->junk_body = header_num(req, "x-fake-junk-body", 0) == 1;
    f->endless = header_num(req, "x-fake-endless-error", 0) == 1;
    f->retry_after = evhttp_find_header(in, "x-fake-retry-after");
    f->error_code = evhttp_find_header(in, "x-fake-error-code");
    f->error_message = evhttp_find_header(in, "x-fake-error-message");
}

/* A GET of the model list: counted with its credential; 1 when it was answered --fail's status. */
static int
models_get(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *k = evhttp_find_header(in, "authorization");
    json_t *j;

    k = k ? k : evhttp_find_header(in, "api-key");
    k = k ? k : evhttp_find_header(in, "x-api-key");
    g.models++;
    snprintf(g.models_key, sizeof(g.models_key), "%s", k ? k : "");
    snprintf(g.models_uri, sizeof(g.models_uri), "%s", evhttp_request_get_uri(req));
    if (g.hang) {
        return 1;   /* never answered */
    }
    if (!g.fail_models || g.fail == 0 || (g.fail_until != 0 && mg_now_ms() >= g.fail_until)) {
        return 0;
    }
    j = json_pack("{s:{s:s,s:s}}", "error", "message", "fake failure", "type", "server_error");
    send_json(req, g.fail, j);
    json_decref(j);
    return 1;
}

static void
handle(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    json_t *j, *m;
    struct fake *f;
    int rp;

    if (strcmp(uri, "/_fake/stats") == 0) {
        j = json_pack("{s:i,s:i,s:i,s:i,s:s,s:s}", "requests", (int)g.requests, "aborted",
                      (int)g.aborted, "active", (int)g.active, "models", (int)g.models,
                      "models_key", g.models_key, "models_uri", g.models_uri);
        fake_cloud_stats(j);
        send_json(req, 200, j);
        json_decref(j);
        return;
    }
    if (strcmp(uri, "/_fake/up") == 0) {
        g.fail = 0;   /* recovered */
        j = json_pack("{s:b}", "up", 1);
        send_json(req, 200, j);
        json_decref(j);
        return;
    }
    if (fake_cloud_handle(g.base, req)) {
        return;   /* a credential endpoint (test/fakeai_cloud.c): not a request */
    }
    rp = responses_path(uri);
    if (rp >= 0 && uri[rp] == '/') {
        char path[512];
        snprintf(path, sizeof(path), "%.*s", (int)strcspn(uri + rp + 1, "?"), uri + rp + 1);
        responses_stored(req, path);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET && models_get(req)) {
        return;   /* --fail-models while failing */
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET &&
        evhttp_find_header(evhttp_request_get_input_headers(req), "anthropic-version") != NULL) {
        /* Anthropic's model list: a page of models */
        j = json_pack("{s:[{s:s,s:s,s:s,s:s}],s:b,s:s,s:s}", "data", "type", "model", "id",
                      "fake-model", "display_name", "Fake Model", "created_at",
                      "2023-11-14T22:13:20Z", "has_more", 0, "first_id", "fake-model", "last_id",
                      "fake-model");
        send_json(req, 200, j);
        json_decref(j);
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
        j = json_pack("{s:s,s:[{s:s,s:s,s:i,s:s}]}", "object", "list", "data", "id", "fake-model",
                      "object", "model", "created", 1700000000, "owned_by", g.name);
        send_json(req, 200, j);
        json_decref(j);
        return;
    }
    g.requests++;
    if (g.drop) {
        struct timeval zero = {0, 0};
        event_base_once(g.base, -1, EV_TIMEOUT, drop_later, evhttp_request_get_connection(req),
                        &zero);
        return;
    }
    if (g.hang) {
        return;   /* never answered; the gateway's first_byte timer must fire */
    }
    if (fake_provider_handle(g.base, req, g.name, g.fail)) {
        return;   /* another provider's path: test/fakeai_providers.c */
    }
    f = calloc(1, sizeof(*f));
    g.active++;
    f->req = req;
    f->evcon = evhttp_request_get_connection(req);
    f->timer = evtimer_new(g.base, on_timer, f);
    f->peek = event_new(g.base, bufferevent_getfd(evhttp_connection_get_bufferevent(f->evcon)),
                        EV_READ | EV_PERSIST, on_peek, f);
    int failing = g.fail && (g.fail_first == 0 || g.requests <= g.fail_first) &&
                  (g.fail_until == 0 || mg_now_ms() < g.fail_until);
    f->status = failing ? g.fail : (int)header_num(req, "x-fake-status", 200);
    const char *only = evhttp_find_header(evhttp_request_get_input_headers(req), "x-fake-status-for");
    if (!failing && only != NULL && strcmp(only, g.name) != 0) {
        f->status = 200;
    }
    faults(f, req);
    f->chunks = (int)header_num(req, "x-fake-chunks", 3);
    f->gap_ms = (int)header_num(req, "x-fake-chunk-gap-ms", 0);
    f->content_bytes = (int)header_num(req, "x-fake-content-bytes", 0);
    f->echo = header_num(req, "x-fake-echo", 0) == 1;
    f->split = header_num(req, "x-fake-split", 0) == 1;
    f->stamp = header_num(req, "x-fake-stamp", 0) == 1;
    f->usage_in = 10;
    f->usage_out = 20;
    const char *u = evhttp_find_header(evhttp_request_get_input_headers(req), "x-fake-usage");
    if (u != NULL) {
        sscanf(u, "%" JSON_INTEGER_FORMAT ",%" JSON_INTEGER_FORMAT, &f->usage_in, &f->usage_out);
    }
    j = json_loadb(body, len, 0, NULL);
    m = j ? json_object_get(j, "model") : NULL;
    f->model = strdup(json_is_string(m) ? json_string_value(m) : "unknown");
    f->stream = j && json_is_true(json_object_get(j, "stream"));
    f->include_usage = j && json_is_true(json_object_get(json_object_get(j, "stream_options"),
                                                         "include_usage"));
    f->responses = rp >= 0;
    if (!f->responses && j != NULL) {
        f->chat_tool = chat_tool(j);
    }
    if (!f->responses && f->status < 400 && !f->echo &&
        json_is_true(json_object_get(j, "continue_final_message"))) {
        const char *bad = NULL;
        char *prefill = fake_prefill_of(json_object_get(j, "messages"));
        if (!json_is_false(json_object_get(j, "add_generation_prompt"))) {   /* vLLM's rule */
            bad = "Cannot set both `continue_final_message` and `add_generation_prompt` to "
                  "True.";
        } else if (prefill == NULL) {
            bad = "continue_final_message: the last message is not the assistant's";
        } else if ((f->pieces = fake_pieces(prefill, f->chunks, &f->npieces, &bad)) != NULL) {
            f->chunks = (int)f->npieces;
        }
        free(prefill);
        if (bad != NULL) {
            openai_error(req, 400, bad, NULL, NULL);
            json_decref(j);
            fake_free(f);
            return;
        }
    }
    if (f->responses && f->status < 400 && !f->echo) {
        const char *param, *code, *bad;
        char err[256];
        bad = resp_prepare(f, j, err, sizeof(err), &param, &code);
        if (bad != NULL) {
            openai_error(req, 400, bad, param, code);
            json_decref(j);
            fake_free(f);
            return;
        }
    }
    json_decref(j);
    if (f->echo) {
        f->echo_json = echo_of(req, body, len);
    }
    evhttp_connection_set_closecb(f->evcon, on_close, f);
    event_add(f->peek, NULL);
    long delay = header_num(req, "x-fake-delay-ms", 0);
    if (delay > 0) {
        set_timer(f, (int)delay);
    } else {
        answer(f);
    }
}

static struct bufferevent *
tls_bev(struct event_base *base, void *arg)
{
    return bufferevent_openssl_socket_new(base, -1, SSL_new(arg), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(g.base);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'}, {"host", required_argument, NULL, 'H'},
        {"name", required_argument, NULL, 'n'}, {"fail", required_argument, NULL, 'f'},
        {"hang", no_argument, NULL, 'g'},       {"drop", no_argument, NULL, 'd'},
        {"tls-cert", required_argument, NULL, 'c'}, {"tls-key", required_argument, NULL, 'k'},
        {"fail-first", required_argument, NULL, '1'}, {"fail-for-ms", required_argument, NULL, 'T'},
        {"fail-models", no_argument, NULL, 'M'},
        {"cred-ttl", required_argument, NULL, 'L'}, {"aws-cred", required_argument, NULL, 'A'},
        {"cred-delay-ms", required_argument, NULL, 'D'},
        {"cred-fail-after", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *cert = NULL, *key = NULL;
    SSL_CTX *tls = NULL;
    struct evhttp *http;
    struct event *term, *intr;
    int port = 0, c;

    g.name = "fake";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = (int)strtol(optarg, NULL, 10); break;
        case 'H': host = optarg; break;
        case 'n': g.name = optarg; break;
        case 'f': g.fail = (int)strtol(optarg, NULL, 10); break;
        case '1': g.fail_first = strtol(optarg, NULL, 10); break;
        case 'T': g.fail_until = mg_now_ms() + strtol(optarg, NULL, 10); break;
        case 'g': g.hang = 1; break;
        case 'M': g.fail_models = 1; break;
        case 'd': g.drop = 1; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'L': fake_cloud_option("cred-ttl", optarg); break;
        case 'D': fake_cloud_option("cred-delay-ms", optarg); break;
        case 'F': fake_cloud_option("cred-fail-after", optarg); break;
        case 'A':
            if (fake_cloud_option("aws-cred", optarg) != 0) {
                fprintf(stderr, "fakeai: --aws-cred AKID:SECRET\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: fakeai --port N [--host H] [--name NAME] [--fail STATUS] "
                            "[--hang] [--drop]\n");
            return 2;
        }
    }
    if (port <= 0) {
        fprintf(stderr, "fakeai: --port is required\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    g.base = event_base_new();
    http = evhttp_new(g.base);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_set_max_body_size(http, 64 * 1024 * 1024);
    if (cert != NULL && key != NULL) {
        tls = SSL_CTX_new(TLS_server_method());
        if (tls == NULL || SSL_CTX_use_certificate_chain_file(tls, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls, key, SSL_FILETYPE_PEM) != 1) {
            fprintf(stderr, "fakeai: cannot load %s / %s\n", cert, key);
            return 1;
        }
        evhttp_set_bevcb(http, tls_bev, tls);
    }
    {
        /* a deep backlog: benchmarks open a thousand connections at once */
        struct evutil_addrinfo hints, *ai = NULL;
        char portstr[16];
        int fd, one = 1;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST;
        snprintf(portstr, sizeof(portstr), "%d", port);
        if (evutil_getaddrinfo(host, portstr, &hints, &ai) != 0 ||
            (fd = socket(ai->ai_family, SOCK_STREAM, 0)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0 ||
            evutil_make_socket_nonblocking(fd) != 0 ||
            evhttp_accept_socket_with_handle(http, fd) == NULL) {
            fprintf(stderr, "fakeai: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
            return 1;
        }
        evutil_freeaddrinfo(ai);
    }
    term = evsignal_new(g.base, SIGTERM, on_term, NULL);
    intr = evsignal_new(g.base, SIGINT, on_term, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(g.base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(g.base);
    if (tls != NULL) {
        SSL_CTX_free(tls);
    }
    return 0;
}
