/*
 * mg_proxy_hub — how an attempt's request is built from what the client's API makes of it:
 * through the API's chat hub (the client's request read once, by the first such attempt; this
 * backend's chat body made from it; the schema's build from that chat request, handed over
 * already parsed to a schema that translates it again), or on a native entry from the body the
 * API makes for every native entry (a stored conversation continued there).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_chatreq.h"
#include "mg_conf_types.h"
#include "mg_proxy_int.h"
#include "mg_util.h"
#include "mg_worker.h"

/*
 * Keeps, of the comma-separated tool types a hub dropped, those that are plain names: they come
 * from the client's body and go into a response header (a CR LF in one would be a header of the
 * client's own making).
 */
static void
safe_names(struct mg_buf *b)
{
    size_t i = 0, out = 0, start;
    int ok;

    while (i < b->len) {
        start = i;
        ok = 1;
        for (; i < b->len && b->data[i] != ','; i++) {
            char c = b->data[i];
            ok &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == ':';
        }
        if (ok && i > start) {
            if (out > 0) {
                b->data[out++] = ',';
            }
            memmove(b->data + out, b->data + start, i - start);
            out += i - start;
        }
        i++;   /* past the comma */
    }
    b->len = out;
    if (b->data != NULL) {
        b->data[out] = '\0';
    }
}

/*
 * An attempt through the chat hub: the client's request read once (the first time), this
 * backend's chat body made from it, and the schema's build from that chat request.
 */
int
mg_proxy_hub_build(struct preq *p, const struct mg_backend *b,
                   const struct mg_rule_backend *e)
{
    const struct mg_hub *hub = p->api->hub;
    struct mg_chatreq_err err = {"", "", NULL};
    struct mg_hub_opts o;
    int rc, resumed = p->rs != NULL && p->rs->st.continuing;

    if (p->hub == NULL) {
        p->env.now_ms = mg_now_ms();
        p->hub = hub->open(&p->env, p->client.body, p->client.body_len, &p->w->rng, &err);
        if (p->hub == NULL) {   /* unsupported_parameter: a native entry may still serve */
            p->at.up.code = err.code;
            return mg_schema_refuse(&p->at.up, err.code != NULL &&
                                    strcmp(err.code, "unsupported_parameter") == 0
                                    ? MG_SCHEMA_ESKIP : MG_SCHEMA_EINVAL,
                                    err.param[0] ? err.param : NULL, "%s", err.message);
        }
    }
    o.model = p->model;   /* the schema applies the entry's override, as for chat */
    o.max_tokens_param = b->max_tokens_param != NULL ? b->max_tokens_param : "max_tokens";
    o.include_usage = 1;  /* the API's answer always carries usage */
    o.hosted_refuse = p->rule->hosted_refuse;
    /* a continuation's body is the chat body edited: the schema reads that text */
    o.json_only = p->at.schema->reads_chat_json && hub->chat_json != NULL && !resumed;
    mg_buf_reset(&p->hub_body);
    mg_buf_reset(&p->dropped);
    rc = hub->request(p->hub, &o, &p->hub_body, &p->dropped, &err);
    if (rc == MG_CHATREQ_EINVAL || rc == MG_CHATREQ_EUNSUPPORTED) {
        p->at.up.code = err.code;
        return mg_schema_refuse(&p->at.up, rc, err.param[0] ? err.param : NULL, "%s",
                                err.message);
    }
    if (rc == MG_ETOOBIG) {   /* the client's request, not the backend: a 400, not a failover */
        return mg_schema_refuse(&p->at.up, MG_SCHEMA_EINVAL, NULL, "The request is too large "
                                "to translate for this backend");
    }
    if (rc != MG_OK || (resumed && mg_proxy_resume_edit(p, b, &p->hub_body) != MG_OK)) {
        return MG_ERR;
    }
    safe_names(&p->dropped);
    if (o.json_only) {   /* no text was written: what a scan would have found is known */
        memset(&p->hub_jr, 0, sizeof(p->hub_jr));
        memcpy(p->hub_model, p->model, sizeof(p->hub_model));
        p->hub_jr.model = p->hub_model;
        p->hub_jr.model_len = strlen(p->hub_model);
        p->hub_jr.stream = p->jr.stream;
        p->hub_jr.include_usage = p->jr.stream;   /* the hub asks for it (o.include_usage) */
    } else if (mg_json_scan_request(p->hub_body.data, p->hub_body.len, p->hub_model,
                                    sizeof(p->hub_model), &p->hub_jr) != MG_OK) {
        return MG_ERR;
    }
    p->hub_client = p->client;
    p->hub_client.upath = "/chat/completions";
    p->hub_client.query = NULL;   /* the client's query is its API's (?beta=true), not chat's */
    p->hub_client.body = p->hub_body.data;
    p->hub_client.body_len = p->hub_body.len;
    p->hub_client.jr = &p->hub_jr;
    p->hub_client.has_ctype = 0;   /* the body is JSON whatever the client's was */
    p->hub_client.chat_json = hub->chat_json != NULL && !resumed ? hub->chat_json(p->hub) : NULL;
    return p->at.schema->build(&p->hub_client, b, e, &p->at.up);
}

/*
 * An attempt on a native entry: the client's request, or the body the API makes of it for every
 * native entry (read once, by the first).
 */
int
mg_proxy_native_build(struct preq *p, const struct mg_backend *b,
                      const struct mg_rule_backend *e)
{
    int rc;

    if (p->native_read < 0) {
        return MG_ERR;   /* never the client's body in place of the one it could not make */
    }
    if (p->api->native_request != NULL && !p->native_read) {
        struct mg_chatreq_err err = {"", "", NULL};
        p->native_read = -1;   /* until it is made */
        p->env.now_ms = mg_now_ms();
        mg_buf_reset(&p->native_body);
        if (p->api->native_request(&p->env, p->client.body, p->client.body_len,
                                   &p->native_body, &err) != MG_OK) {
            mg_buf_reset(&p->native_body);
            if (err.message[0] == '\0') {
                return MG_ERR;
            }
            p->at.up.code = err.code;
            return mg_schema_refuse(&p->at.up, MG_SCHEMA_EINVAL, err.param[0] ? err.param : NULL,
                                    "%s", err.message);
        }
        if (p->native_body.len > 0) {
            if (mg_json_scan_request(p->native_body.data, p->native_body.len, p->native_model,
                                     sizeof(p->native_model), &p->native_jr) != MG_OK) {
                mg_buf_reset(&p->native_body);
                return MG_ERR;
            }
            p->native_client = p->client;
            p->native_client.body = p->native_body.data;
            p->native_client.body_len = p->native_body.len;
            p->native_client.jr = &p->native_jr;
        }
        p->native_read = 1;
    }
    rc = p->at.schema->build(p->native_body.len > 0 ? &p->native_client : &p->client, b, e,
                             &p->at.up);
    p->at.up.method = p->method;
    return rc;
}
