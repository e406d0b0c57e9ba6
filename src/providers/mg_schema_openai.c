/*
 * mg_schema_openai — backends that speak OpenAI's API (OpenAI, vLLM, Ollama, llama.cpp, ...).
 *
 * The body is forwarded byte for byte: the only edits are a per-entry model override and, for a
 * stream whose client did not ask for usage, stream_options.include_usage turned on (one splice
 * each, from offsets the admission scan recorded; the body is never parsed again). The extra
 * usage is then hidden again from the client by the relay's usage stripper.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conf_types.h"
#include "mg_hdr.h"
#include "mg_json.h"
#include "mg_multipart.h"
#include "mg_relay.h"
#include "mg_schema.h"
#include "mg_yaml.h"

int
mg_schema_openai_body(const struct mg_client_req *rq, const struct mg_rule_backend *e,
                      struct mg_upreq *up)
{
    /* Usage of a stream is only reported when asked for: ask for it, and hide it again later. */
    up->inject_usage = rq->jr->stream && !rq->jr->include_usage &&
                       (strcmp(rq->upath, "/chat/completions") == 0 ||
                        strcmp(rq->upath, "/completions") == 0);
    up->body = rq->body;
    up->body_len = rq->body_len;
    if (rq->jr->multipart) {   /* byte for byte, but for the model part's value */
        struct mg_multipart_part part = {rq->jr->model_start, rq->jr->model_len};
        if (e->model != NULL) {
            if (mg_multipart_rewrite(rq->body, rq->body_len, &part, e->model, &up->edited)
                != MG_OK) {
                return MG_ERR;
            }
            up->body = up->edited.data;
            up->body_len = up->edited.len;
        }
        return MG_OK;
    }
    if (e->model != NULL || up->inject_usage) {
        if (mg_json_rewrite(rq->body, rq->body_len, rq->jr, e->model, up->inject_usage,
                            &up->edited) != MG_OK) {
            return MG_ERR;
        }
        up->body = up->edited.data;
        up->body_len = up->edited.len;
    }
    return MG_OK;
}

static int
openai_build(const struct mg_client_req *rq, const struct mg_backend *b,
             const struct mg_rule_backend *e, struct mg_upreq *up)
{
    if (mg_schema_openai_body(rq, e, up) != MG_OK) {
        return MG_ERR;
    }
    if (mg_buf_adds(&up->url, b->url) != MG_OK || mg_buf_adds(&up->url, rq->upath) != MG_OK ||
        (rq->query != NULL &&
         (mg_buf_add(&up->url, "?", 1) != MG_OK || mg_buf_adds(&up->url, rq->query) != MG_OK))) {
        return MG_ERR;
    }
    mg_schema_headers(up, rq, b, NULL, 0);
    return MG_OK;
}

enum mg_head_class
mg_schema_classify_status(const struct mg_resp_head *h)
{
    return mg_head_classify_status(h->status);
}

void
mg_schema_openai_relay(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
                       const struct mg_resp_head *h)
{
    if (h->sse) {
        mg_relay_add_sse_split(r);
        mg_relay_add_gate(r);
        if (up->inject_usage) {
            mg_relay_add_sse_strip(r);
        } else {
            mg_relay_add_sse_observe(r);
        }
        return;
    }
    r->keep_length = 1;   /* the bytes go as they came */
    mg_relay_add_gate(r);
    if (h->json) {
        mg_relay_add_json_tail(r);
    }
}

int
mg_schema_pass_error(const struct mg_client_req *rq, const struct mg_resp_head *h, const char *body,
                     size_t len, struct mg_buf *out)
{
    return 0;   /* already the shape the client speaks */
}

/* The active check: the model list, {url}/models, as OpenAI-compatible servers all have it. */
static int
openai_probe(const struct mg_backend *b, struct mg_upreq *up)
{
    return mg_schema_probe_request(up, b, "/models");
}

/* ---- configuration: how it serves Responses and Messages; the key goes as a bearer token ---- */

struct openai_conf {
    struct mg_schema_apis apis;
    int64_t               prefill;   /* a vLLM-style server: continue_final_message */
};

static const struct mg_yaml_key openai_keys[] = {
    MG_SCHEMA_API_KEYS(struct openai_conf, apis),
    MG_SCHEMA_API_KEY_MESSAGES(struct openai_conf, apis),
    MG_SCHEMA_PREFILL_KEY(struct openai_conf, prefill),
};

static void *
openai_conf_create(void)
{
    return mg_calloc(1, sizeof(struct openai_conf));
}

static void
openai_conf_free(void *conf)
{
    struct openai_conf *oc = conf;

    if (oc != NULL) {
        mg_schema_apis_deinit(&oc->apis);
        free(oc);
    }
}

static void
openai_conf_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b, void *conf)
{
    struct openai_conf *oc = conf;

    mg_schema_apis_check(y, node, b, &oc->apis, "max_tokens");
    mg_schema_prefill_check(b, oc->prefill,
                            "\"continue_final_message\":true,\"add_generation_prompt\":false");
    if (b->api_key != NULL && b->api_key[0] != '\0') {
        size_t n = strlen(b->api_key) + sizeof("Authorization: Bearer ");
        b->auth_header = mg_malloc(n);
        snprintf(b->auth_header, n, "Authorization: Bearer %s", b->api_key);
    }
}

const struct mg_schema mg_schema_openai = {
    .name = "openai",
    .chat_api = "chat",
    .build = openai_build,
    .classify = mg_schema_classify_status,
    .relay = mg_schema_openai_relay,
    .error_body = mg_schema_pass_error,
    .probe = openai_probe,
    .keys = openai_keys,
    .nkeys = MG_ARRAY_LEN(openai_keys),
    .conf_create = openai_conf_create,
    .conf_check = openai_conf_check,
    .conf_free = openai_conf_free,
};
