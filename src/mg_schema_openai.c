/*
 * mg_schema_openai — backends that speak OpenAI's API (OpenAI, vLLM, Ollama, llama.cpp, ...).
 *
 * The body is forwarded byte for byte: the only edits are a per-entry model override and, for a
 * stream whose client did not ask for usage, stream_options.include_usage turned on (one splice
 * each, from offsets the admission scan recorded; the body is never parsed again). The extra
 * usage is then hidden again from the client by the relay's usage stripper.
 */
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mg_conf.h"
#include "mg_json.h"
#include "mg_relay.h"
#include "mg_schema.h"

/* Client headers that never go upstream: hop-by-hop, and what the gateway sets itself. */
static int
skip_request_header(const char *name)
{
    static const char *const skip[] = {"host", "content-length", "authorization", "api-key",
                                       "x-api-key", "expect"};
    size_t i;

    if (mg_head_hop_by_hop(name)) {
        return 1;
    }
    for (i = 0; i < MG_ARRAY_LEN(skip); i++) {
        if (strcasecmp(name, skip[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Appends "name: value" (or "name;" for an empty value, curl's way to send one) to l. */
static struct curl_slist *
add_header(struct curl_slist *l, struct mg_buf *line, const char *name, const char *value)
{
    struct curl_slist *t;

    mg_buf_reset(line);
    mg_buf_adds(line, name);
    if (value[0] != '\0') {
        mg_buf_add(line, ": ", 2);
        mg_buf_adds(line, value);
    } else {
        mg_buf_add(line, ";", 1);
    }
    t = curl_slist_append(l, line->data);
    return t != NULL ? t : l;
}

static struct curl_slist *
add_line(struct curl_slist *l, const char *line)
{
    struct curl_slist *t = curl_slist_append(l, line);

    return t != NULL ? t : l;
}

static struct curl_slist *
build_headers(const struct mg_client_req *rq, const struct mg_backend *b)
{
    struct curl_slist *l = NULL;
    struct evkeyval *kv;
    struct mg_buf line;
    size_t i;

    mg_buf_init(&line, 128 * 1024);
    TAILQ_FOREACH(kv, rq->headers, next) {
        if (skip_request_header(kv->key)) {
            continue;
        }
        for (i = 0; i < b->nheaders; i++) {
            if (strcasecmp(b->headers[i].name, kv->key) == 0) {
                break;
            }
        }
        if (i < b->nheaders) {
            continue;   /* the backend's own value wins */
        }
        l = add_header(l, &line, kv->key, kv->value);
    }
    for (i = 0; i < b->nheaders; i++) {
        l = add_header(l, &line, b->headers[i].name, b->headers[i].value);
    }
    if (b->auth_header != NULL) {
        l = add_line(l, b->auth_header);
    }
    if (!rq->has_request_id) {
        l = add_header(l, &line, "x-request-id", rq->request_id);
    }
    if (!rq->has_ctype) {
        l = add_line(l, "Content-Type: application/json");
    }
    l = add_line(l, "Expect:");
    mg_buf_deinit(&line);
    return l;
}

static int
openai_build(const struct mg_client_req *rq, const struct mg_backend *b,
             const struct mg_rule_backend *e, struct mg_upreq *up)
{
    /* Usage of a stream is only reported when asked for: ask for it, and hide it again later. */
    up->inject_usage = rq->jr->stream && !rq->jr->include_usage &&
                       (strcmp(rq->upath, "/chat/completions") == 0 ||
                        strcmp(rq->upath, "/completions") == 0);
    up->body = rq->body;
    up->body_len = rq->body_len;
    if (e->model != NULL || up->inject_usage) {
        if (mg_json_rewrite(rq->body, rq->body_len, rq->jr, e->model, up->inject_usage,
                            &up->edited) != MG_OK) {
            return MG_ERR;
        }
        up->body = up->edited.data;
        up->body_len = up->edited.len;
    }
    if (mg_buf_adds(&up->url, b->url) != MG_OK || mg_buf_adds(&up->url, rq->upath) != MG_OK ||
        (rq->query != NULL &&
         (mg_buf_add(&up->url, "?", 1) != MG_OK || mg_buf_adds(&up->url, rq->query) != MG_OK))) {
        return MG_ERR;
    }
    up->headers = build_headers(rq, b);
    return MG_OK;
}

static enum mg_head_class
openai_classify(const struct mg_resp_head *h)
{
    return mg_head_classify_status(h->status);
}

static void
openai_relay(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
             const struct mg_resp_head *h)
{
    if (h->sse && up->inject_usage) {
        mg_relay_add_sse_strip(r);
    } else if (h->sse) {
        mg_relay_add_sse_observe(r);
    } else if (h->json) {
        mg_relay_add_json_tail(r);
    }
}

static int
openai_error_body(const struct mg_resp_head *h, const char *body, size_t len, struct mg_buf *out)
{
    return 0;   /* already OpenAI's shape */
}

const struct mg_schema mg_schema_openai = {
    .name = "openai",
    .build = openai_build,
    .classify = openai_classify,
    .relay = openai_relay,
    .error_body = openai_error_body,
};
