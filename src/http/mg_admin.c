/*
 * mg_admin — /healthz and /metrics.
 */
#include <string.h>

#include "mg_admin.h"
#include "mg_redis.h"
#include "mg_health.h"
#include "mg_reply.h"
#include "mg_resp_store.h"
#include "mg_req.h"
#include "mg_runtime.h"
#include "mg_stats.h"
#include "mg_util.h"

int
mg_admin_path(const char *path)
{
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0;
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
    mg_buf_init(&out, 64u * 1024 * 1024);
    mg_stats_render(rt->stats, &out);
    mg_health_render(rt->health, &out);
    mg_resp_store_render(rt->responses, &out);
    mg_redis_render(&out);
    mg_reply_body(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                  out.len);
    mg_buf_deinit(&out);
    return 200;
}
