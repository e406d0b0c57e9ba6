/*
 * mg_admit — refuse early, route once. The key is checked on the head; the body is scanned
 * without a JSON tree (mg_json) and kept in the request: the proxy forwards those very bytes.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mg_admit.h"
#include "mg_auth.h"
#include "mg_budget.h"
#include "mg_conf_types.h"
#include "mg_limit.h"
#include "mg_multipart.h"
#include "mg_price.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_router.h"

int
mg_admit_key(const struct mg_conf *conf, struct mg_req *req, struct mg_refusal *ref)
{
    size_t len;
    const char *cred;

    req->key = NULL;
    if (!conf->auth) {
        return 0;
    }
    cred = mg_auth_credential(mg_headers_lookup, &req->headers, &len);
    req->key = mg_auth_find(conf->keys, conf->nkeys, cred, len);
    if (req->key != NULL) {
        return 0;
    }
    /* never quote the presented key: it may be a real key of some other service */
    mg_refusal_set(ref, 401, "invalid_api_key", NULL,
                   cred ? "Incorrect API key provided"
                        : "Missing API key: send it as \"Authorization: Bearer <key>\"");
    mg_refusal_header(ref, "WWW-Authenticate", "Bearer");
    return -1;
}

/* The 429 of a key whose buckets refused a request, with their headers (info). */
void
mg_admit_refuse_limit(const struct mg_admitted *a, const struct mg_limit_info *info,
                      struct mg_refusal *ref)
{
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    size_t n, i;

    mg_refusal_set(ref, 429, "rate_limit_exceeded", NULL,
                   "Rate limit reached for key '%s'; retry after the time in Retry-After",
                   a->key->name);
    n = mg_limit_headers(info, h);
    for (i = 0; i < n; i++) {
        mg_refusal_header(ref, h[i].name, h[i].value);
    }
}

int64_t
mg_admit_estimate(const struct mg_admitted *a)
{
    /* the estimate is a pass over the body: only for a key that has a token limit */
    return a->key != NULL && a->key->tokens_per_minute > 0
           ? mg_limit_estimate(a->body, a->body_len, a->jr.max_tokens) : 0;
}

int
mg_admit_take_limit(struct mg_admitted *a, struct mg_refusal *ref)
{
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    const struct mg_key *key = a->key;
    size_t n, i;

    if (mg_auth_admit(key, mg_now_ms(), mg_admit_estimate(a), &a->reserved, h, &n)) {
        return 0;
    }
    mg_refusal_set(ref, 429, "rate_limit_exceeded", NULL,
                   "Rate limit reached for key '%s'; retry after the time in Retry-After",
                   key->name);
    for (i = 0; i < n; i++) {
        mg_refusal_header(ref, h[i].name, h[i].value);
    }
    return -1;
}

/*
 * A multipart/form-data body (audio transcriptions, image edits): routed by its one "model" part,
 * passed through byte for byte (but for an entry's model override). 0, or -1 with a 400
 * invalid_multipart refusal.
 */
static int
multipart_model(struct mg_admitted *a, const char *ctype, struct mg_refusal *ref)
{
    struct mg_multipart_part part;
    const char *why = NULL;

    if (mg_multipart_model(ctype, a->body, a->body_len, &part, &why) != MG_OK ||
        part.len >= sizeof(a->model)) {
        mg_refusal_set(ref, 400, "invalid_multipart", NULL, "The multipart body cannot be "
                       "routed: %s", why != NULL ? why : "its model part is too long");
        return -1;
    }
    memset(&a->jr, 0, sizeof(a->jr));
    memcpy(a->model, a->body + part.off, part.len);
    a->model[part.len] = '\0';
    a->jr.model = a->model;
    a->jr.model_len = part.len;
    a->jr.model_start = part.off;
    a->jr.model_end = part.off + part.len;
    a->jr.multipart = 1;
    return 0;
}

/* The refusal for a body that mg_json_scan_request() did not accept. */
static void
refuse_body(int rc, const struct mg_admitted *a, struct mg_refusal *ref)
{
    const struct mg_json_req *jr = &a->jr;
    const char *v = a->body + jr->bad_at;

    switch (rc) {
    case MG_JSON_INVALID:
        mg_refusal_set(ref, 400, "invalid_json", NULL, "The request body is not valid JSON");
        break;
    case MG_JSON_NOT_OBJECT:
        mg_refusal_set(ref, 400, "invalid_json", NULL, "The request body must be a JSON object");
        break;
    case MG_JSON_DUPLICATE:
        /* readers differ on which of the two they keep: the backend could read another value */
        mg_refusal_set(ref, 400, "invalid_json", NULL,
                       "The request body's top-level object has a member name twice");
        break;
    case MG_JSON_NAME_CASE:
        mg_refusal_set(ref, 400, "invalid_json", NULL, "The request body has a top-level member "
                       "named \"%s\" in another case (or spelling); write \"%s\"",
                       jr->bad_param, jr->bad_param);
        break;
    case MG_JSON_BAD_VALUE:
        /* a number is quoted when short (1e400, -1); other values by their kind */
        if (jr->bad_len <= 32 && (*v == '-' || (*v >= '0' && *v <= '9'))) {
            mg_refusal_set(ref, 400, "invalid_value", jr->bad_param,
                           "Invalid '%s': expected %s, but got %s %.*s", jr->bad_param,
                           jr->bad_want, jr->bad_got, (int)jr->bad_len, v);
        } else {
            mg_refusal_set(ref, 400, "invalid_value", jr->bad_param,
                           "Invalid '%s': expected %s, but got %s", jr->bad_param,
                           jr->bad_want, jr->bad_got);
        }
        break;
    case MG_JSON_MODEL_LONG:
        mg_refusal_set(ref, 404, "model_not_found", "model",
                       "The model name is longer than this gateway serves");
        break;
    default:
        mg_refusal_set(ref, 400, "missing_model", "model",
                       "The request body needs a string \"model\" field");
    }
}

/* The most a's request could cost on any entry of its rule, from its token estimate. */
static int64_t
budget_estimate(const struct mg_conf *conf, const struct mg_admitted *a)
{
    const struct mg_rule *r = &conf->rules[a->rule];
    struct mg_price_usage u;
    int64_t most = 0, c;
    size_t i;

    u.input = mg_limit_estimate(a->body, a->body_len, 0);
    u.cached = u.written = 0;
    u.output = a->jr.max_tokens;
    for (i = 0; i < r->nbackends; i++) {
        const struct mg_rule_backend *e = &r->backends[i];
        c = mg_price_cost(mg_price_lookup(conf, &conf->backends[e->backend],
                                          e->model != NULL ? e->model : a->model), &u);
        most = c > most ? c : most;
    }
    return most;
}

int
mg_admit_take_budget(const struct mg_conf *conf, struct mg_admitted *a, struct mg_refusal *ref)
{
    struct mg_budget_view v;
    char end[40], usd[32];
    time_t t;
    struct tm tm;

    a->budget_reserved = 0;
    if (a->key == NULL || a->key->budget == NULL) {
        return 0;
    }
    if (mg_budget_admit(a->key->budget, (int64_t)time(NULL), budget_estimate(conf, a),
                        &a->budget_reserved, &v)) {
        return 0;
    }
    t = (time_t)v.window_end;
    gmtime_r(&t, &tm);
    strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm);
    mg_refusal_set(ref, 429, "insufficient_quota", NULL,
                   "The budget of key '%s' (USD %s per %s) is spent%s%s", a->key->name,
                   mg_price_format_usd(v.usd, usd, sizeof(usd)), mg_budget_per_name(v.per),
                   v.window_end ? " until " : "; it does not renew (per: total)",
                   v.window_end ? end : "");
    mg_price_format_usd(v.remaining, usd, sizeof(usd));
    mg_refusal_header(ref, "x-modelgate-budget-remaining-usd", usd);
    return -1;
}

void
mg_admit_give_back_budget(struct mg_admitted *a)
{
    if (a->key != NULL && a->key->budget != NULL) {
        mg_budget_settle(a->key->budget, (int64_t)time(NULL), a->budget_reserved, 0);
    }
    a->budget_reserved = 0;
}

int
mg_admit_budget_remaining(const struct mg_key *key, char *out, size_t len)
{
    struct mg_budget_view v;

    if (key == NULL || key->budget == NULL) {
        return 0;
    }
    mg_budget_peek(key->budget, (int64_t)time(NULL), &v);
    mg_price_format_usd(v.remaining, out, len);
    return 1;
}

int
mg_admit_route(const struct mg_conf *conf, const struct mg_req *req, struct mg_admitted *out,
               struct mg_refusal *ref)
{
    if (mg_admit_route_only(conf, req, out, ref) != 0 ||
        mg_admit_take_budget(conf, out, ref) != 0) {
        return -1;
    }
    if (mg_admit_take_limit(out, ref) != 0) {
        mg_admit_give_back_budget(out);
        return -1;
    }
    return 0;
}

int
mg_admit_route_only(const struct mg_conf *conf, const struct mg_req *req,
                    struct mg_admitted *out, struct mg_refusal *ref)
{
    size_t len = req->body_len;
    const char *ctype;
    int rc;

    out->path = req->path;
    out->upath = req->path + strlen("/v1");
    out->query = req->query;
    out->api = req->api;
    out->key = req->key;
    out->rule = -1;
    out->body = req->body;
    out->body_len = len;
    out->model[0] = '\0';
    out->reserved = 0;
    out->budget_reserved = 0;
    out->shared = 0;
    ctype = mg_headers_get(&req->headers, "content-type");
    if (ctype != NULL && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        if (multipart_model(out, ctype, ref) != 0) {
            return -1;
        }
    } else if ((rc = mg_json_scan_request(out->body, len, out->model, sizeof(out->model),
                                          &out->jr)) != MG_JSON_OK) {
        out->model[0] = '\0';
        refuse_body(rc, out, ref);
        return -1;
    }
    /* a model outside the key's allow-list is refused exactly as one no rule serves */
    out->rule = !mg_auth_allows(out->key, out->model, out->jr.model_len) ? -1
                : mg_router_match(conf, out->model, out->jr.model_len, mg_headers_lookup,
                                  (void *)&req->headers);
    if (out->rule < 0) {
        mg_refusal_set(ref, 404, "model_not_found", "model",
                       "The model '%s' is not served by this gateway", out->model);
        return -1;
    }
    return 0;
}

void
mg_admit_key_headers(struct mg_req *req, const struct mg_key *key)
{
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    size_t i, n;

    if (!mg_auth_limited(key)) {
        return;
    }
    n = mg_auth_headers(key, mg_now_ms(), h);
    for (i = 0; i < n; i++) {
        mg_req_add_header(req, h[i].name, h[i].value);
    }
}
