/*
 * mg_admin — /healthz, /metrics, the status page (/status, /status.json) and the admin API
 * (/admin/keys, /admin/backends, POST /admin/keys/{name}/reset), and the one rule that protects
 * them (SPEC "Admin endpoints"): with admin_key, every one but /healthz needs it (Bearer, or
 * Basic with the key as password, compared in constant time; else 401 with a Basic challenge, so
 * a browser asks); without it, /metrics is open as before and the others are served only on a
 * loopback address and never with auth (404 otherwise). A POST also needs a JSON content type
 * and, when the browser sends an Origin, the request's own origin (else 403): a cross-site form
 * must not reset a spend with a cached Basic password.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "mg_admin.h"
#include "mg_cred.h"
#include "mg_auth.h"
#include "mg_budget.h"
#include "mg_budget_redis.h"
#include "mg_redis.h"
#include "mg_health.h"
#include "mg_log.h"
#include "mg_reply.h"
#include "mg_resp_store.h"
#include "mg_req.h"
#include "mg_runtime.h"
#include "mg_stats.h"
#include "mg_status_page.h"
#include "mg_conf_types.h"
#include "mg_util.h"

#define RESET_SUFFIX "/reset"

int
mg_admin_path(const char *path)
{
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/status") == 0 || strcmp(path, "/status.json") == 0 ||
           strcmp(path, "/admin/keys") == 0 || strcmp(path, "/admin/backends") == 0 ||
           strncmp(path, "/admin/keys/", 12) == 0;
}

static int
loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* RFC 4648 base64 of s[0..n) into out (NUL-terminated); its length, or -1 when malformed. */
static long
unbase64(const char *s, size_t n, char *out, size_t outlen)
{
    unsigned acc = 0;
    size_t i, o = 0;
    int bits = 0, pad = 0;

    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i], v;
        if (c == '=') {
            pad++;
            continue;
        }
        v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
          : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (v < 0 || pad > 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen) {
                return -1;
            }
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (pad > 2 || (n % 4) != 0) {
        return -1;
    }
    out[o] = '\0';
    return (long)o;
}

/* 1 when req presents conf's admin key: Bearer, or Basic with any user and the key as password. */
static int
admin_key_ok(const struct mg_conf *conf, const struct mg_req *req)
{
    const char *h = mg_headers_get(&req->headers, "authorization"), *colon;
    char plain[1024];
    long n;
    int ok;

    if (h == NULL) {
        return 0;
    }
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        for (h += 7; *h == ' '; h++) {
        }
        return *h != '\0' && mg_auth_matches(h, strlen(h), conf->admin_digest);
    }
    if (strncasecmp(h, "Basic ", 6) != 0) {
        return 0;
    }
    for (h += 6; *h == ' '; h++) {
    }
    n = unbase64(h, strlen(h), plain, sizeof(plain));
    colon = n > 0 ? memchr(plain, ':', (size_t)n) : NULL;
    ok = colon != NULL && mg_auth_matches(colon + 1, (size_t)(plain + n - colon - 1),
                                          conf->admin_digest);
    explicit_bzero(plain, sizeof(plain));
    return ok;
}

/*
 * Whether path may be served to req, else the answer (401 or 404) is sent here: 0 to serve.
 * /metrics without admin_key is served anywhere (as it always was).
 */
static int
guard(const struct mg_conf *conf, struct mg_req *req, const char *path, int *status)
{
    struct mg_refusal ref;
    const char *host;

    if (conf == NULL) {
        *status = 404;
    } else if (conf->admin_key) {
        if (admin_key_ok(conf, req)) {
            return 0;
        }
        mg_refusal_set(&ref, 401, "invalid_admin_key", NULL,
                       "This endpoint needs the admin key: \"Authorization: Bearer <admin_key>\", "
                       "or Basic with the admin key as password");
        mg_refusal_header(&ref, "WWW-Authenticate", "Basic realm=\"modelgate\"");
        mg_reply_refuse(req, &ref);
        *status = 401;
        return -1;
    } else {
        host = conf->admin_listen != NULL ? conf->admin_host : conf->listen_host;
        if (strcmp(path, "/metrics") == 0 || (!conf->auth && loopback(host))) {
            return 0;
        }
        *status = 404;
    }
    mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
    return -1;
}

/*
 * A POST under /admin/: JSON content type, and an Origin (when sent) equal to the request's own
 * scheme, host and port. 0, or -1 with the 403 sent.
 */
static int
same_site(const struct mg_conf *conf, struct mg_req *req)
{
    const char *ct = mg_headers_get(&req->headers, "content-type");
    const char *origin = mg_headers_get(&req->headers, "origin");
    const char *host = mg_headers_get(&req->headers, "host");
    /* admin_listen is plain HTTP; on listen, TLS when the listener has it */
    const char *scheme = conf->admin_listen == NULL && conf->tls.ctx != NULL ? "https://"
                                                                             : "http://";
    size_t sl = strlen(scheme);

    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        mg_reply_error(req, 403, "forbidden", NULL,
                       "An admin POST needs \"Content-Type: application/json\"");
        return -1;
    }
    if (origin != NULL && (host == NULL || strncasecmp(origin, scheme, sl) != 0 ||
                           strcasecmp(origin + sl, host) != 0)) {
        mg_reply_error(req, 403, "forbidden", NULL,
                       "An admin POST from another origin is refused");
        return -1;
    }
    return 0;
}

static int
reply_doc(struct mg_req *req, json_t *doc)
{
    /* 15 digits: money exact to the micro-dollar reads back as written */
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));

    mg_reply_body(req, 200, "application/json", text != NULL ? text : "{}",
                  text != NULL ? strlen(text) : 2);
    free(text);
    json_decref(doc);
    return 200;
}

static int
status_page(struct mg_req *req, const char *path, struct mg_runtime *rt, struct mg_conf *conf)
{
    json_t *data = mg_status_page_data(rt, conf);
    struct mg_buf out;

    if (strcmp(path, "/status.json") == 0) {
        return reply_doc(req, data);
    }
    mg_buf_init(&out, 64u * 1024 * 1024);
    mg_status_page_html(data, &out);
    mg_reply_body(req, 200, "text/html; charset=utf-8", out.data ? out.data : "", out.len);
    json_decref(data);
    mg_buf_deinit(&out);
    return 200;
}

/* POST /admin/keys/{name}/reset: the key's spend in its current window back to 0. */
static int
reset_key(struct mg_req *req, const char *name, size_t len, struct mg_conf *conf)
{
    const struct mg_key *k = NULL;
    size_t i;

    for (i = 0; i < conf->nkeys; i++) {
        if (strlen(conf->keys[i].name) == len && memcmp(conf->keys[i].name, name, len) == 0) {
            k = &conf->keys[i];
        }
    }
    if (k == NULL) {
        mg_reply_error(req, 404, "key_not_found", NULL, "No client key is called '%.*s'",
                       (int)(len > 128 ? 128 : len), name);
        return 404;
    }
    if (k->budget != NULL) {
        mg_budget_reset(k->budget, (int64_t)time(NULL));
        if (conf->shared.on) {   /* SET 0 now on this worker's connection, else with the next
                                  * exchange of the key's (admin_listen's thread has none) */
            mg_budget_redis_flush(mg_redis_current(), conf->shared.prefix, k->budget,
                                  (int64_t)time(NULL), conf->shared.store_timeout_ms);
        }
    }
    mg_log_warn("admin: the spend of key %s in its current window was reset (from %s)", k->name,
                req->peer != NULL ? req->peer : "?");
    return reply_doc(req, json_pack("{s:s,s:i}", "name", k->name, "spent_usd", 0));
}

/* 405 naming what path allows. */
static int
not_allowed(struct mg_req *req, const char *allow)
{
    struct mg_refusal ref;

    mg_refusal_set(&ref, 405, "method_not_allowed", NULL,
                   "Method %s is not allowed on this path (allowed: %s)", mg_req_method(req),
                   allow);
    mg_refusal_header(&ref, "Allow", allow);
    mg_reply_refuse(req, &ref);
    return 405;
}

/* Under /admin/ and the status page, once guarded. */
static int
admin(struct mg_req *req, const char *path, struct mg_runtime *rt, struct mg_conf *conf)
{
    size_t i, n, plen = strlen(path);
    struct timespec ts;
    json_t *a;

    if (strncmp(path, "/admin/keys/", 12) == 0) {
        n = plen - 12;
        if (n <= strlen(RESET_SUFFIX) || strcmp(path + plen - 6, RESET_SUFFIX) != 0 ||
            memchr(path + 12, '/', n - 6) != NULL) {
            mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
            return 404;
        }
        if (req->method != MG_METHOD_POST) {
            return not_allowed(req, "POST");
        }
        return same_site(conf, req) != 0 ? 403 : reset_key(req, path + 12, n - 6, conf);
    }
    if (!(req->method & (MG_METHOD_GET | MG_METHOD_HEAD))) {
        return not_allowed(req, "GET, HEAD");
    }
    if (strncmp(path, "/status", 7) == 0) {
        return status_page(req, path, rt, conf);
    }
    a = json_array();
    if (strcmp(path, "/admin/keys") == 0) {
        for (i = 0; i < conf->nkeys; i++) {
            json_array_append_new(a, mg_status_page_key(rt, &conf->keys[i]));
        }
        return reply_doc(req, json_pack("{s:o}", "keys", a));
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    for (i = 0; i < conf->nbackends; i++) {
        json_array_append_new(a, mg_status_page_backend(rt, &conf->backends[i],
                                                        (int64_t)ts.tv_sec * 1000 +
                                                        ts.tv_nsec / 1000000));
    }
    return reply_doc(req, json_pack("{s:o}", "backends", a));
}

static int
metrics(struct mg_req *req, struct mg_runtime *rt)
{
    struct mg_buf out;

    if (!(req->method & (MG_METHOD_GET | MG_METHOD_HEAD))) {
        return not_allowed(req, "GET, HEAD");
    }
    mg_buf_init(&out, 64u * 1024 * 1024);
    mg_stats_render(rt->stats, &out);
    mg_health_render(rt->health, &out);
    mg_cred_registry_render(rt->creds, &out);
    mg_resp_store_render(rt->responses, &out);
    mg_redis_render(&out);
    mg_reply_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                  out.len);
    mg_buf_deinit(&out);
    return 200;
}

int
mg_admin_handle(struct mg_req *req, const char *path, struct mg_runtime *rt)
{
    struct mg_conf *conf;
    int status;

    if (strcmp(path, "/healthz") == 0) {   /* never guarded: load balancers probe it */
        if (!(req->method & (MG_METHOD_GET | MG_METHOD_HEAD))) {
            return not_allowed(req, "GET, HEAD");
        }
        mg_reply_json(req, 200, "{\"status\":\"ok\"}\n", 16);
        return 200;
    }
    conf = mg_runtime_conf(rt);
    if (guard(conf, req, path, &status) == 0) {
        status = strcmp(path, "/metrics") == 0 ? metrics(req, rt) : admin(req, path, rt, conf);
    }
    mg_conf_unref(conf);
    return status;
}
