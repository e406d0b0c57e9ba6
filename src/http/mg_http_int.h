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

/*
 * What the dispatcher (mg_http.c) does with a request once its shared state is here: the
 * waiting steps below call it through these, never mg_http.c itself. refused: the answer to a
 * request refused here, accounted as the gateway's own (returns 1); dispatch: a whole request to
 * its handler (what on_request does).
 */
struct mg_http_next {
    int  (*refused)(struct mg_worker *w, struct mg_req *req, const struct mg_refusal *ref,
                    const char *model);
    void (*dispatch)(struct mg_worker *w, struct mg_req *req);
};

/*
 * shared: a routed request of a limited key: Redis's GCRA decides (mg_limit_redis) within
 * shared.timeout, then the proxy or a 429; without an answer, the local buckets (on_error: open)
 * or 503 shared_state_unavailable (closed).
 */
void mg_http_shared_admit(struct mg_worker *w, struct mg_req *req,
                          const struct mg_http_next *next);

/*
 * shared: a request that reads the conversation store (GET/DELETE /v1/responses/{id}, a POST
 * /v1/responses with previous_response_id) has the id read from Redis into the store first.
 * 1: the request waits (next->dispatch follows); 0: dispatch it now.
 */
int mg_http_shared_fetch(struct mg_worker *w, struct mg_req *req,
                         const struct mg_http_next *next);

#endif
