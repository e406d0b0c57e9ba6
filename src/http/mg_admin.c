/*
 * mg_admin — /healthz, /metrics, and the status page (/status, /status.json).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_admin.h"
#include "mg_cred.h"
#include "mg_redis.h"
#include "mg_health.h"
#include "mg_reply.h"
#include "mg_resp_store.h"
#include "mg_req.h"
#include "mg_runtime.h"
#include "mg_stats.h"
#include "mg_status_page.h"
#include "mg_conf_types.h"
#include "mg_util.h"

int
mg_admin_path(const char *path)
{
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/status") == 0 || strcmp(path, "/status.json") == 0;
}

static int
loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/*
 * /status and /status.json: without an admin key (none exists yet), only on a loopback address
 * (admin_listen's when set, else listen's) and never with auth: a 404 otherwise (SPEC "Admin
 * endpoints").
 */
static int
status_page(struct mg_req *req, const char *path, struct mg_runtime *rt)
{
    struct mg_conf *conf = mg_runtime_conf(rt);
    const char *host;
    struct mg_buf out;
    json_t *data;
    int served;

    host = conf == NULL ? "" : conf->admin_listen != NULL ? conf->admin_host : conf->listen_host;
    served = conf != NULL && !conf->auth && loopback(host);
    if (!served) {
        mg_conf_unref(conf);
        mg_reply_error(req, 404, "unknown_url", NULL, "Unknown URL: %s", path);
        return 404;
    }
    data = mg_status_page_data(rt, conf);
    mg_conf_unref(conf);
    mg_buf_init(&out, 64u * 1024 * 1024);
    if (strcmp(path, "/status.json") == 0) {
        char *text = json_dumps(data, JSON_COMPACT);
        mg_reply_body(req, 200, "application/json", text != NULL ? text : "{}",
                      text != NULL ? strlen(text) : 2);
        free(text);
    } else {
        mg_status_page_html(data, &out);
        mg_reply_body(req, 200, "text/html; charset=utf-8", out.data ? out.data : "", out.len);
    }
    json_decref(data);
    mg_buf_deinit(&out);
    return 200;
}

int
mg_admin_handle(struct mg_req *req, const char *path, struct mg_runtime *rt)
{
    struct mg_refusal ref;
    struct mg_buf out;

    if (!(req->method & (MG_METHOD_GET | MG_METHOD_HEAD))) {
        mg_refusal_set(&ref, 405, "method_not_allowed", NULL,
                       "Method %s is not allowed on this path (allowed: GET, HEAD)",
                       mg_req_method(req));
        mg_refusal_header(&ref, "Allow", "GET, HEAD");
        mg_reply_refuse(req, &ref);
        return 405;
    }
    if (strcmp(path, "/healthz") == 0) {
        mg_reply_json(req, 200, "{\"status\":\"ok\"}\n", 16);
        return 200;
    }
    if (strncmp(path, "/status", 7) == 0) {
        return status_page(req, path, rt);
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
