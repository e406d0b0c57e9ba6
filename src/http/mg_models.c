/*
 * mg_models — the model catalog endpoints. The list's JSON is built once per snapshot (at load);
 * a single model is looked up and written per request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_admit.h"
#include "mg_auth.h"
#include "mg_catalog.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_models.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_util.h"

int
mg_models_handle(const struct mg_conf *conf, const struct mg_key *key,
                 struct mg_req *req, const char *id)
{
    struct mg_buf out;
    size_t i;

    if (id == NULL) {
        if (key != NULL && key->catalog_json != NULL) {
            mg_reply_json(req, 200, key->catalog_json, key->catalog_json_len);
        } else {
            mg_reply_json(req, 200, conf->catalog_json, conf->catalog_json_len);
        }
        return 200;
    }
    for (i = 0; mg_auth_allows(key, id, strlen(id)) && i < conf->ncatalog; i++) {
        if (strcmp(conf->catalog[i].id, id) == 0) {
            mg_buf_init(&out, 64 * 1024);
            mg_catalog_entry_json(&out, &conf->catalog[i]);
            mg_buf_adds(&out, "\n");
            mg_reply_json(req, 200, out.data, out.len);
            mg_buf_deinit(&out);
            return 200;
        }
    }
    mg_reply_error(req, 404, "model_not_found", "model", "The model '%s' does not exist", id);
    return 404;
}

/* ---- Anthropic's shape (a request with anthropic-version) ---- */

static void
anthropic_entry(struct mg_buf *out, const struct mg_model_entry *m)
{
    char when[32];
    time_t t = (time_t)m->created;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(when, sizeof(when), "1970-01-01T00:00:00Z");
    }
    mg_buf_adds(out, "{\"type\":\"model\",\"id\":");
    mg_json_quote(out, m->id, strlen(m->id));
    mg_buf_adds(out, ",\"display_name\":");
    mg_json_quote(out, m->id, strlen(m->id));
    mg_buf_printf(out, ",\"created_at\":\"%s\",\"capabilities\":null,\"max_input_tokens\":null,"
                       "\"max_tokens\":null}", when);
}

/* The value of query parameter name (percent-decoded) into v; 1 when present. */
static int
query_param(const char *query, const char *name, char *v, size_t vlen)
{
    size_t n = strlen(name), k = 0;
    const char *p = query;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            for (p += n + 1; *p != '\0' && *p != '&' && k + 1 < vlen; p++) {
                int hi = *p == '%' ? mg_hexval(p[1]) : -1, lo = hi >= 0 ? mg_hexval(p[2]) : -1;
                if (lo >= 0) {
                    v[k++] = (char)(hi * 16 + lo);
                    p += 2;
                } else {
                    v[k++] = *p == '+' ? ' ' : *p;
                }
            }
            v[k] = '\0';
            return 1;
        }
        p = strchr(p, '&');
        p = p != NULL ? p + 1 : NULL;
    }
    return 0;
}

int
mg_models_handle_anthropic(const struct mg_conf *conf, const struct mg_key *key,
                           struct mg_req *req, const char *id)
{
    const struct mg_model_entry **vis;
    char v[MG_MODEL_MAX], *end;
    size_t i, n = 0, start = 0, stop, at;
    long limit = 20;
    struct mg_buf out;

    vis = mg_calloc(conf->ncatalog + 1, sizeof(*vis));
    for (i = 0; i < conf->ncatalog; i++) {   /* the models this key may use, in order */
        if (mg_auth_allows(key, conf->catalog[i].id, strlen(conf->catalog[i].id))) {
            vis[n++] = &conf->catalog[i];
        }
    }
    mg_buf_init(&out, 1024 * 1024);
    if (id != NULL) {
        for (i = 0; i < n && strcmp(vis[i]->id, id) != 0; i++) {
        }
        if (i == n) {
            free(vis);
            mg_buf_deinit(&out);
            mg_reply_error(req, 404, "model_not_found", "model", "model: %s", id);
            return 404;
        }
        anthropic_entry(&out, vis[i]);
        mg_buf_adds(&out, "\n");
        goto send;
    }
    if (query_param(req->query, "limit", v, sizeof(v))) {
        limit = strtol(v, &end, 10);
        if (end == v || *end != '\0' || limit < 1 || limit > 1000) {
            free(vis);
            mg_buf_deinit(&out);
            mg_reply_error(req, 400, "invalid_request_error", "limit",
                           "limit: must be an integer from 1 to 1000");
            return 400;
        }
    }
    stop = n;
    if (query_param(req->query, "after_id", v, sizeof(v))) {
        for (at = 0; at < n && strcmp(vis[at]->id, v) != 0; at++) {
        }
        start = at < n ? at + 1 : n;   /* an unknown cursor: an empty page */
        stop = start + (size_t)limit < n ? start + (size_t)limit : n;
    } else if (query_param(req->query, "before_id", v, sizeof(v))) {
        for (at = 0; at < n && strcmp(vis[at]->id, v) != 0; at++) {
        }
        stop = at < n ? at : 0;
        start = stop > (size_t)limit ? stop - (size_t)limit : 0;
    } else {
        stop = (size_t)limit < n ? (size_t)limit : n;
    }
    if (query_param(req->query, "after_id", v, sizeof(v)) &&
        query_param(req->query, "before_id", v, sizeof(v))) {   /* both: what lies between */
        for (at = 0; at < n && strcmp(vis[at]->id, v) != 0; at++) {
        }
        stop = at == n || at < start ? start : at < stop ? at : stop;   /* unknown: empty */
    }
    mg_buf_adds(&out, "{\"data\":[");
    for (i = start; i < stop; i++) {
        if (i > start) {
            mg_buf_adds(&out, ",");
        }
        anthropic_entry(&out, vis[i]);
    }
    /* has_more: more models lie beyond this page in the direction it was asked for */
    mg_buf_printf(&out, "],\"has_more\":%s,\"first_id\":",
                  (query_param(req->query, "before_id", v, sizeof(v)) && !query_param(
                       req->query, "after_id", v, sizeof(v)) ? start > 0 : stop < n)
                      ? "true" : "false");
    if (stop > start) {
        mg_json_quote(&out, vis[start]->id, strlen(vis[start]->id));
        mg_buf_adds(&out, ",\"last_id\":");
        mg_json_quote(&out, vis[stop - 1]->id, strlen(vis[stop - 1]->id));
    } else {
        mg_buf_adds(&out, "null,\"last_id\":null");
    }
    mg_buf_adds(&out, "}\n");
send:
    mg_reply_json(req, 200, out.data, out.len);
    mg_buf_deinit(&out);
    free(vis);
    return 200;
}
