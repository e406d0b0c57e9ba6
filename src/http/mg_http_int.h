/*
 * mg_http_int — what the files of the dispatch module share (mg_http.c, mg_http_shared.c).
 */
#ifndef MG_HTTP_INT_H
#define MG_HTTP_INT_H

struct mg_refusal;
struct mg_req;
struct mg_worker;

enum mg_http_route {
    ROUTE_NONE,      /* refused before its path was looked at */
    ROUTE_ADMIN,     /* /healthz, /metrics */
    ROUTE_MODELS,    /* /v1/models, /v1/models/{id} */
    ROUTE_STORED,    /* GET, DELETE /v1/responses/{id} */
    ROUTE_PROXY      /* every other /v1/ path */
};

/* The answer to a request refused here, accounted as the gateway's own. Returns 1. */
int mg_http_refused(struct mg_worker *w, struct mg_req *req, const struct mg_refusal *ref,
                    const char *model);

/* A whole request to its handler (what on_request does, once shared state is here). */
void mg_http_dispatch(struct mg_worker *w, struct mg_req *req);

/*
 * shared: a routed request of a limited key: Redis's GCRA decides (mg_limit_redis) within
 * shared.timeout, then the proxy or a 429; without an answer, the local buckets (on_error: open)
 * or 503 shared_state_unavailable (closed).
 */
void mg_http_shared_admit(struct mg_worker *w, struct mg_req *req);

/*
 * shared: a request that reads the conversation store (GET/DELETE /v1/responses/{id}, a POST
 * /v1/responses with previous_response_id) has the id read from Redis into the store first.
 * 1: the request waits (mg_http_dispatch() follows); 0: dispatch it now.
 */
int mg_http_shared_fetch(struct mg_worker *w, struct mg_req *req);

#endif
