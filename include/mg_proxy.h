/*
 * mg_proxy — one proxied request: parse the body, pick the rule, attempt backends in balancer
 * order, fail over until something answers, then relay the answer (streams chunk by chunk).
 */
#ifndef MG_PROXY_H
#define MG_PROXY_H

#include <stdint.h>

struct evhttp_request;
struct mg_worker;

/*
 * Handles POST /v1/<rest>. rest is the path after "/v1" (starting with '/'), query the raw query
 * string or NULL, t0_us its arrival. Always ends in exactly one reply (or a dropped connection if
 * the client left), one access log line and one count in the request metrics.
 */
void mg_proxy_handle(struct mg_worker *w, struct evhttp_request *req, const char *rest,
                     const char *query, int64_t t0_us);

#endif
