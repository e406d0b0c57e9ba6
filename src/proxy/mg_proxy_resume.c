/*
 * mg_proxy_resume — mid-stream resume on the proxy's side (SPEC "Mid-stream resume"): a stream
 * (chat; Responses or Messages made from chat by a hub; Messages passed through) whose rule has
 * resume: true and that breaks after its commit goes on, when the stream was text only, on the
 * next entry of the rule (within its retries) whose backend declares prefill, was not cut, and
 * serves the API the way the first attempt did, with the client's request (or the hub's chat
 * request) plus one last assistant message holding the text relayed so far. The continuation's events are spliced in by the relay stage (mg_resume);
 * before its own first output a failure moves on to the next such entry, and when none is left
 * the stream ends with its one error event, as without resume. Through a hub, the continuation's
 * chat goes on into the first attempt's client stage, so the client's API answer is one. The
 * proxy calls in at a few points (mg_proxy_int.h); a request whose rule does not resume has no
 * state here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_conf_types.h"
#include "mg_log.h"
#include "mg_proxy_int.h"
#include "mg_resume.h"
#include "mg_stats.h"
#include "mg_worker.h"

void
mg_proxy_resume_setup(struct preq *p)
{
    json_t *j, *n;

    /* chat streams, and the Responses and Messages streams a hub makes from chat ones */
    if (!p->rule->resume || !p->jr.stream ||
        (p->api != &mg_api_chat && p->api != &mg_api_responses && p->api != &mg_api_messages)) {
        return;
    }
    j = json_loadb(p->client.body, p->client.body_len, 0, NULL);
    n = json_object_get(j, "n");
    if (n == NULL || json_is_null(n) || (json_is_integer(n) && json_integer_value(n) <= 1)) {
        p->rs = mg_calloc(1, sizeof(*p->rs));   /* n > 1: several choices, never resumed */
        mg_resume_init(&p->rs->st);
    }
    json_decref(j);
}

/* An entry a continuation may go to: its backend continues prefills and was not cut here. */
static int
prefill_entry(const struct mg_rule_backend *e, void *arg)
{
    struct preq *p = arg;
    const struct mg_backend *b = &p->conf->backends[e->backend];
    size_t i;

    /* the continuation must speak what the first attempt spoke: chat, through the same hub */
    if (b->prefill == NULL || (mg_api_mode(p->api, b) == MG_API_HUB) != p->rs->via_hub ||
        (p->rs->st.anthropic && b->prefill[0] != '\0')) {
        return 0;   /* Anthropic's own request: a schema that continues it as it is */
    }
    for (i = 0; i < p->rs->nexcluded; i++) {
        if (p->rs->excluded[i] == b) {
            return 0;
        }
    }
    return 1;
}

static void
exclude(struct preq *p, const struct mg_backend *b)
{
    if (p->rs->nexcluded < MG_ARRAY_LEN(p->rs->excluded)) {
        p->rs->excluded[p->rs->nexcluded++] = b;
    }
}

static void
resume_result(struct preq *p, const char *result)
{
    char rule[16];

    snprintf(rule, sizeof(rule), "%d", p->rule_index);
    mg_stats_resume(p->w->stats, rule, result);
}

static void
log_cut(struct preq *p, struct mg_attempt *a)
{
    mg_log_warn("request %s: backend %s failed after the answer started: %s", p->request_id,
                a->backend->name, p->relay.why[0] ? p->relay.why : mg_attempt_error(a));
}

/*
 * Moves the plan to the next prefill entry for the continuation: 1 (the caller starts it), or 0
 * when none is left. cut: the attempt whose cut this is (logged when the stream goes on), or NULL.
 */
static int
next_entry(struct preq *p, struct mg_attempt *cut)
{
    const char *text;
    size_t len;

    if (!p->rs->st.ok || !mg_plan_move_where(&p->plan, prefill_entry, p) ||
        mg_resume_prefill(&p->rs->st, &text, &len) != MG_OK) {
        return 0;
    }
    if (cut != NULL) {
        log_cut(p, cut);
    }
    mg_log_info("request %s: resuming the stream on backend %s", p->request_id,
                p->conf->backends[mg_plan_entry(&p->plan)->backend].name);
    return 1;
}

/*
 * The stream ends broken after all: its one error event (the held one, or ours when the last
 * continuation never committed), a clean end, and the request accounted as cut.
 */
static void
give_up(struct preq *p, struct mg_attempt *a)
{
    p->relay.hold_cut = 0;
    if (p->rs->st.continuing) {
        resume_result(p, "failed");
    }
    if (!p->relay.cut || p->relay.cut_held) {   /* else a cut wrote its event already */
        mg_relay_cut_event(&p->relay, p->rs->why);
    }
    mg_proxy_account(p, (int)p->rs->status, p->rs->backend, 1);
    mg_proxy_detach_client(p);
    mg_wire_end(&p->wire);
    mg_proxy_release(p);
}

void
mg_proxy_resume_first(struct preq *p, struct mg_attempt *a)
{
    struct mg_proxy_resume *rs = p->rs;

    /* where the answer is chat (a chat client's, or the chat a hub turns into the client's),
     * or Anthropic's own events (/v1/messages passed through) */
    int anthropic = !p->via_hub && p->api == &mg_api_messages;

    rs->staged = a->head.sse && a->head.status >= 200 && a->head.status <= 299 &&
                 (p->via_hub || p->api == &mg_api_chat || anthropic);
    if (rs->staged) {
        rs->via_hub = p->via_hub;
        mg_resume_add(&rs->st, &p->relay, anthropic);
    }
}

void
mg_proxy_resume_head(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    struct mg_proxy_resume *rs = p->rs;
    int ok = a->head.sse && a->head.status >= 200 && a->head.status <= 299;

    mg_relay_reset(&p->relay, a->head.sse, p->via_hub ? &mg_api_chat : p->api);
    a->schema->relay(&p->relay, p->via_hub ? &p->hub_client : &p->native_client, &a->up,
                     &a->head);
    mg_resume_add(&rs->st, &p->relay, rs->st.anthropic);
    if (rs->client != NULL) {   /* the client's answer goes on in the first attempt's stage */
        rs->client->write = rs->client_write;
        rs->client->end = rs->client_end;
        mg_relay_add_client(&p->relay, rs->client, rs->client_fail);
    }
    if (!ok && o == MG_OUTCOME_OPEN) {
        /* an answer the gate would commit (a 401, a JSON body): never spliced in, a failure
         * (the statuses held aside, a 400 among them, fail on their own) */
        char why[64];
        snprintf(why, sizeof(why), "the continuation was answered %ld", a->head.status);
        mg_relay_fail(&p->relay, why, strlen(why));
    }
}

int
mg_proxy_resume_commit(struct preq *p)
{
    if (p->rs == NULL || !p->rs->st.continuing) {
        return 0;
    }
    mg_attempt_committed(&p->at);   /* the client has its head: this attempt only splices */
    mg_plan_give_back(&p->plan, p->at.backend->state, mg_now_ms());
    p->rs->st.spliced++;
    return 1;
}

enum mg_resume_step
mg_proxy_resume_cut(struct preq *p, struct mg_attempt *a)
{
    struct mg_resume *rs = &p->rs->st;

    if (!rs->continuing && !p->rs->staged) {   /* an answer the stage never saw */
        return MG_RESUME_NO;
    }
    if (!rs->continuing) {   /* the first cut: what the client got is the first attempt's */
        p->rs->status = a->head.status;
        p->rs->backend = a->backend;
        p->rs->client = p->relay.client;
        if (p->relay.client != NULL) {
            p->rs->client_write = p->relay.client->write;
            p->rs->client_end = p->relay.client->end;
            p->rs->client_fail = p->relay.client_fail;
        }
    }
    snprintf(p->rs->why, sizeof(p->rs->why), "Backend %s failed during the answer: %s",
             a->backend->name, p->relay.why[0] ? p->relay.why : mg_attempt_reason(a));
    mg_resume_attempt_end(rs, &p->relay, (int64_t)p->client.body_len / 4);
    exclude(p, a->backend);
    if (next_entry(p, a)) {
        return MG_RESUME_NEXT;
    }
    if (rs->continuing) {   /* continued, and cut again with nowhere left to go */
        log_cut(p, a);
        give_up(p, a);
        return MG_RESUME_ENDED;
    }
    p->relay.hold_cut = 0;   /* no resume: the cut ends the stream as it always did */
    if (p->relay.cut_held) {
        mg_relay_cut_event(&p->relay, p->relay.why);
    }
    return MG_RESUME_NO;
}

enum mg_resume_step
mg_proxy_resume_failed(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    char result[32];

    if (p->rs == NULL || !p->rs->st.continuing || o == MG_OUTCOME_COMPLETE ||
        o == MG_OUTCOME_CUT) {
        return MG_RESUME_NO;
    }
    /* before its first output: a failed attempt (a 400 too: a model that refuses prefill) */
    mg_proxy_attempt_done(p, a, mg_outcome_result(o, a->head.status, result, sizeof(result)), 1);
    if (o == MG_OUTCOME_FINAL || o == MG_OUTCOME_FAIL_STATUS || o == MG_OUTCOME_FAIL_CONTEXT) {
        mg_log_warn("request %s: backend %s could not continue the stream: it answered %ld",
                    p->request_id, a->backend->name, a->head.status);
    } else {
        mg_log_warn("request %s: backend %s could not continue the stream: %s", p->request_id,
                    a->backend->name, mg_attempt_error(a));
    }
    exclude(p, a->backend);
    if (next_entry(p, NULL)) {
        return MG_RESUME_NEXT;
    }
    give_up(p, a);
    return MG_RESUME_ENDED;
}

void
mg_proxy_resume_complete(struct preq *p)
{
    if (p->rs != NULL && p->rs->st.continuing) {
        resume_result(p, "ok");
    }
}

/* body (a chat body) into out with the prefill as its last message and b's members. */
static int
continuation(struct preq *p, const struct mg_backend *b, const char *body, size_t n,
             struct mg_buf *out)
{
    json_t *j = json_loadb(body, n, 0, NULL), *extra = NULL;
    const char *text;
    size_t len;
    char *s = NULL;
    int rc = MG_ERR;

    if (json_is_array(json_object_get(j, "messages")) &&
        mg_resume_prefill(&p->rs->st, &text, &len) == MG_OK) {
        json_array_append_new(json_object_get(j, "messages"),
                              json_pack("{s:s,s:s%}", "role", "assistant", "content", text, len));
        if (b->prefill[0] != '\0') {
            char members[256];
            snprintf(members, sizeof(members), "{%s}", b->prefill);
            extra = json_loads(members, 0, NULL);
            json_object_update(j, extra);
        }
        s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        mg_buf_reset(out);
        rc = s != NULL ? mg_buf_adds(out, s) : MG_ERR;
    }
    free(s);
    json_decref(extra);
    json_decref(j);
    return rc;
}

int
mg_proxy_resume_edit(struct preq *p, const struct mg_backend *b, struct mg_buf *body)
{
    struct mg_buf out;
    int rc;

    mg_buf_init(&out, body->cap + MG_RESUME_TEXT_MAX);
    rc = continuation(p, b, body->data, body->len, &out);
    if (rc == MG_OK) {   /* the edited body takes the buffer's place */
        struct mg_buf t = *body;
        *body = out;
        out = t;
    }
    mg_buf_deinit(&out);
    return rc;
}

int
mg_proxy_resume_build(struct preq *p, const struct mg_backend *b,
                      const struct mg_rule_backend *e)
{
    if (continuation(p, b, p->client.body, p->client.body_len, &p->native_body) != MG_OK ||
        mg_json_scan_request(p->native_body.data, p->native_body.len, p->native_model,
                             sizeof(p->native_model), &p->native_jr) != MG_OK) {
        return MG_ERR;
    }
    p->native_client = p->client;
    p->native_client.body = p->native_body.data;
    p->native_client.body_len = p->native_body.len;
    p->native_client.jr = &p->native_jr;
    return p->at.schema->build(&p->native_client, b, e, &p->at.up);
}
