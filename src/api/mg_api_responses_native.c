/*
 * mg_api_responses_native — what the Responses API does on a backend that speaks it: its own
 * stage on a native answer (the sequence_number and last lifecycle response its error events
 * carry, the answer's id recorded for the backend and key that made it), the conversation a
 * request continues (a recorded id pins its backend; a stored chain is sent to a native entry as
 * input), and the stored Responses and items the hub reads too.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_api.h"
#include "mg_api_responses_int.h"
#include "mg_chatreq.h"
#include "mg_conf_types.h"
#include "mg_jload.h"
#include "mg_json.h"
#include "mg_resp_store.h"
#include "mg_responses.h"
#include "mg_util.h"

/* The error event's fields (flat for openai-node, nested for openai-python). */
void
mg_api_responses_error_fields(struct mg_buf *out, const char *why, size_t n)
{
    mg_buf_adds(out, "\"code\":\"upstream_stream_error\",\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, ",\"param\":null,\"error\":{\"type\":\"upstream_error\","
                     "\"code\":\"upstream_stream_error\",\"message\":");
    mg_json_quote(out, why, n);
    mg_buf_adds(out, ",\"param\":null}}\n\n");
}

/* ---- a native stream's own stage: what its error events need ---- */

#define HEAD_MAX (64u * 1024)   /* a plain answer's first bytes, where its id is looked for */

/*
 * The last sequence_number and lifecycle response a native stream sent; for either kind of
 * answer, where its id is recorded (the store, the key's name, the backend's name).
 */
struct native {
    struct mg_stage       stage;
    long long             seq;       /* -1 before any */
    json_t               *last;      /* response.created / .in_progress's response, or NULL */
    struct mg_resp_store *store;
    const char           *key;
    const char           *backend;
    int                   recorded;  /* the id was found (recorded or not): look no more */
    struct mg_buf         head;      /* a plain answer's first bytes */
};

static void
native_free(void *arg)
{
    struct native *st = arg;

    json_decref(st->last);
    mg_buf_deinit(&st->head);
    free(st);
}

/* Records the answer's id as the backend's, for the key (a store refusing it is no failure). */
static void
native_record(struct native *st, const char *id)
{
    st->recorded = 1;
    if (st->store != NULL && id != NULL && id[0] != '\0') {
        mg_resp_store_record(st->store, id, st->backend, st->key, mg_now_ms());
    }
}

/* ---- a plain answer's top-level "id", from its first bytes ---- */

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* Past the string that starts at p ('"'), or NULL when it does not end before end. */
static const char *
skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Past the value at p, or NULL when it does not end before end. */
static const char *
skip_value(const char *p, const char *end)
{
    int depth = 0;

    while (p < end) {
        if (*p == '"') {
            if ((p = skip_string(p, end)) == NULL) {
                return NULL;
            }
            if (depth == 0) {
                return p;
            }
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0) {
                return p;   /* a scalar ended by its object */
            }
            if (--depth == 0) {
                return p + 1;
            }
        } else if (depth == 0 && *p == ',') {
            return p;
        }
        p++;
    }
    return NULL;
}

/*
 * The top-level "id" string of the JSON object in p[0..n) into id (size bytes): 1 when found,
 * 0 when the object has none (or it is no string, or has escapes), -1 when p ends before it is
 * known. OpenAI's Responses begin with it: this reads a few bytes.
 */
static int
top_id(const char *p, size_t n, char *id, size_t size)
{
    const char *end = p + n, *k, *kend, *v;

    p = skip_ws(p, end);
    if (p == end) {
        return -1;
    }
    if (*p++ != '{') {
        return 0;
    }
    for (;;) {
        p = skip_ws(p, end);
        if (p == end) {
            return -1;
        }
        if (*p == '}') {
            return 0;
        }
        if (*p != '"') {
            return 0;
        }
        k = p;
        if ((kend = skip_string(p, end)) == NULL || (p = skip_ws(kend, end)) == end) {
            return -1;
        }
        if (*p++ != ':') {
            return 0;
        }
        if ((p = skip_ws(p, end)) == end) {
            return -1;
        }
        v = p;
        if ((p = skip_value(p, end)) == NULL) {
            return -1;
        }
        if (kend - k == 4 && memcmp(k, "\"id\"", 4) == 0) {
            size_t len = (size_t)(p - v);
            if (*v != '"' || len < 2 || len - 2 >= size || memchr(v, '\\', len) != NULL) {
                return 0;
            }
            memcpy(id, v + 1, len - 2);
            id[len - 2] = '\0';
            return 1;
        }
        if ((p = skip_ws(p, end)) == end) {
            return -1;
        }
        if (*p == ',') {
            p++;
        } else {
            return 0;
        }
    }
}

/* A plain answer: its bytes pass as they are; its first ones are read for its id. */
static void
plain_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct native *st = (struct native *)s;
    char id[MG_RESP_STORE_NAME_MAX + 1];
    int rc;

    if (!st->recorded) {
        /* known from the first bytes (OpenAI's come first): nothing is copied */
        rc = st->head.len == 0 ? top_id(p, n, id, sizeof(id)) : -1;
        if (rc < 0) {
            mg_buf_add(&st->head, p, HEAD_MAX - st->head.len < n ? HEAD_MAX - st->head.len : n);
            rc = top_id(st->head.data, st->head.len, id, sizeof(id));
        }
        if (rc == 1) {
            native_record(st, id);
        } else if (rc == 0 || st->head.len >= HEAD_MAX) {
            st->recorded = 1;   /* none to record */
        }
    }
    s->next->write(s->next, p, n, whole);
}

static void
native_write(struct mg_stage *s, const char *p, size_t n, int whole)
{
    struct native *st = (struct native *)s;
    const char *at = whole ? mg_find(p, n, "\"sequence_number\":", 18) : NULL;

    if (at != NULL) {
        st->seq = strtoll(at + 18, NULL, 10);
    }
    if (whole && (mg_find(p, n, "event: response.created", 23) == p ||
                  mg_find(p, n, "event: response.in_progress", 27) == p)) {
        const char *data = mg_find(p, n, "data:", 5);
        json_t *j = data != NULL ? mg_jload(data + 5, n - (size_t)(data + 5 - p), 0)
                                 : NULL;
        json_t *resp = json_object_get(j, "response");
        if (!st->recorded && json_is_object(resp)) {
            native_record(st, json_string_value(json_object_get(resp, "id")));
        }
        if (json_is_object(resp)) {
            json_decref(st->last);
            st->last = json_incref(resp);
        }
        json_decref(j);
    }
    s->next->write(s->next, p, n, whole);
}

static void
native_end(struct mg_stage *s)
{
    s->next->end(s->next);
}

/* After the commit: the error event, then response.failed on the last lifecycle response. */
static void
native_fail(struct mg_stage *s, const char *why)
{
    struct native *st = (struct native *)s;
    size_t n = strlen(why);
    json_t *resp = st->last != NULL ? json_deep_copy(st->last) : json_object();
    struct mg_buf out;
    char *text;

    mg_buf_init(&out, 1024 * 1024);
    mg_buf_printf(&out, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":%lld,",
                  st->seq + 1);
    mg_api_responses_error_fields(&out, why, n);
    json_object_set_new(resp, "status", json_string("failed"));
    json_object_set_new(resp, "error", json_pack("{s:s,s:s%}", "code", "server_error",
                                                 "message", why, n));
    json_object_set_new(resp, "output", json_array());
    text = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    mg_buf_printf(&out, "event: response.failed\ndata: {\"type\":\"response.failed\","
                        "\"sequence_number\":%lld,\"response\":%s}\n\n", st->seq + 2,
                  text != NULL ? text : "{}");
    free(text);
    json_decref(resp);
    s->next->write(s->next, out.data, out.len, 1);
    mg_buf_deinit(&out);
}

void
mg_api_responses_relay(struct mg_relay *r, const struct mg_hub_env *env, const char *backend)
{
    struct native *st = mg_calloc(1, sizeof(*st));

    st->seq = -1;
    st->store = env->responses;
    st->key = env->key;
    st->backend = backend;
    mg_buf_init(&st->head, HEAD_MAX);
    st->stage.end = native_end;
    mg_relay_set_client_state(r, st, native_free);
    if (!r->sse) {   /* a plain answer passes as it is, committed by the gate */
        st->stage.write = plain_write;
        st->stage.relay = r;
        mg_relay_add(r, &st->stage);
        return;
    }
    st->stage.write = native_write;
    mg_relay_add_client(r, &st->stage, native_fail);
}

/* ---- the conversation a request continues ---- */

/* A stored Response (or its history) by its id, parsed; NULL when key has none of that id. */
json_t *
mg_api_responses_stored(struct mg_resp_store *store, const char *key, const char *id,
                        int history)
{
    const struct mg_resp_entry *en;
    json_t *j;

    if (store == NULL || (en = mg_resp_store_get(store, id, key, mg_now_ms())) == NULL) {
        return NULL;
    }
    j = history ? mg_jload(en->history, en->history_len, 0)
                : mg_jload(en->response, en->response_len, 0);
    mg_resp_entry_unref(en);
    return j;
}

/*
 * item_reference: msg_mg<hex>_<n> or fc_mg<hex>_<n> is an item of the stored resp_mg<hex>; the
 * item (a new reference), or NULL.
 */
json_t *
mg_api_responses_stored_item(struct mg_resp_store *store, const char *key,
                             const char *id)
{
    const char *hex = strncmp(id, "msg_mg", 6) == 0 ? id + 6
                      : strncmp(id, "fc_mg", 5) == 0 ? id + 5 : NULL;
    const char *us = hex != NULL ? strchr(hex, '_') : NULL;
    json_t *resp, *item, *found = NULL;
    char rid[48];
    size_t i;

    if (us == NULL || us - hex != 32) {
        return NULL;
    }
    snprintf(rid, sizeof(rid), "resp_mg%.32s", hex);
    if ((resp = mg_api_responses_stored(store, key, rid, 0)) == NULL) {
        return NULL;
    }
    json_array_foreach(json_object_get(resp, "output"), i, item) {
        const char *iid = json_string_value(json_object_get(item, "id"));
        if (iid != NULL && strcmp(iid, id) == 0) {
            found = json_incref(item);
            break;
        }
    }
    json_decref(resp);
    return found;
}


int
mg_api_responses_previous(const char *body, size_t len, char *id, size_t size)
{
    json_t *j;
    const char *prev;
    int kind = MG_API_PREV_NONE;

    id[0] = '\0';
    if (mg_find(body, len, "previous_response_id", 20) == NULL) {
        return MG_API_PREV_NONE;   /* the common case: nothing is parsed */
    }
    j = mg_jload(body, len, 0);
    prev = json_string_value(json_object_get(j, "previous_response_id"));
    if (prev != NULL && prev[0] != '\0') {
        kind = strncmp(prev, "resp_mg", 7) == 0 ? MG_API_PREV_OWN : MG_API_PREV_NATIVE;
        size_t n = strlen(prev);
        if (n < size) {   /* a longer id is none the store can hold: unrecorded */
            memcpy(id, prev, n + 1);
        }
    }
    json_decref(j);
    return kind;
}

/* An item of the gateway's own, as a native backend takes it: a copy without its id. */
static json_t *
without_id(const json_t *item)
{
    json_t *copy = json_deep_copy(item);

    json_object_del(copy, "id");
    return copy;
}

/*
 * A request continuing the gateway's own conversation (a resp_mg previous_response_id, or an
 * item_reference to a msg_mg / fc_mg item) as a native backend takes it: input = the stored
 * chain's items (ids removed) + the request's (references replaced by their items), and no
 * previous_response_id, so that a rule mixing translated and native backends continues a chain.
 */
int
mg_api_responses_native_request(const struct mg_hub_env *env, const char *body, size_t len,
                                struct mg_buf *out, struct mg_chatreq_err *e)
{
    json_t *root, *input, *items, *prior = NULL, *v;
    const char *prev;
    size_t i;
    int rc = MG_OK, changed;

    if (mg_find(body, len, "resp_mg", 7) == NULL && mg_find(body, len, "msg_mg", 6) == NULL &&
        mg_find(body, len, "fc_mg", 5) == NULL) {
        return MG_OK;   /* the common case: nothing of the gateway's own, nothing parsed */
    }
    if ((root = mg_jload(body, len, 0)) == NULL || !json_is_object(root)) {
        json_decref(root);
        return MG_OK;   /* the backend answers what it makes of it */
    }
    prev = json_string_value(json_object_get(root, "previous_response_id"));
    if (prev != NULL && strncmp(prev, "resp_mg", 7) == 0) {
        if ((prior = mg_api_responses_stored(env->responses, env->key, prev, 1)) == NULL ||
            !json_is_array(prior)) {
            e->code = "previous_response_not_found";
            rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, "previous_response_id",
                                 "Previous response with id '%s' not found.", prev);
            goto done;
        }
    }
    changed = prior != NULL;
    items = json_array();
    json_array_foreach(prior, i, v) {
        json_array_append_new(items, without_id(v));
    }
    input = json_object_get(root, "input");
    if (json_is_string(input)) {
        json_array_append_new(items, json_pack("{s:s,s:O}", "role", "user", "content", input));
    }
    json_array_foreach(input, i, v) {
        const char *id = json_string_value(json_object_get(v, "id"));
        const char *type = json_string_value(json_object_get(v, "type"));
        json_t *found;
        if (type == NULL || strcmp(type, "item_reference") != 0 || id == NULL ||
            (strncmp(id, "msg_mg", 6) != 0 && strncmp(id, "fc_mg", 5) != 0)) {
            json_array_append(items, v);   /* the backend's own, or no reference */
            continue;
        }
        if ((found = mg_api_responses_stored_item(env->responses, env->key, id)) == NULL) {
            char where[64];
            snprintf(where, sizeof(where), "input[%zu]", i);
            e->code = "item_not_found";
            rc = mg_chatreq_fail(e, MG_CHATREQ_EINVAL, where, "Item with id '%s' not found.", id);
            json_decref(items);
            goto done;
        }
        json_array_append_new(items, without_id(found));
        json_decref(found);
        changed = 1;
    }
    if (!changed) {
        json_decref(items);   /* nothing of the gateway's own was named: as sent */
        goto done;
    }
    json_object_set_new(root, "input", items);
    if (prior != NULL) {
        json_object_del(root, "previous_response_id");
    }
    rc = mg_chatreq_dump(root, out);
done:
    json_decref(prior);
    json_decref(root);
    return rc;
}
