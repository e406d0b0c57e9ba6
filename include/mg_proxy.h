/*
 * mg_proxy — the life of one admitted request: attempts on the rule's backends in balancer
 * order, fail-over until an answer commits, then the relay of that answer to the client.
 */
#ifndef MG_PROXY_H
#define MG_PROXY_H

#include <stdint.h>

struct mg_admitted;
struct mg_req;
struct mg_worker;

/*
 * Takes over an admitted request (mg_admit_route()). Always ends in exactly one reply (or a
 * dropped connection if the client left), one access log line and one count in the request
 * metrics.
 */
void mg_proxy_handle(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a);

/*
 * A read of a backend's own resource (GET or DELETE of a native Response) passed to the backend
 * at index backend of the config, as a request of a's API with no body and no rule: one attempt,
 * no rate limit; accounted like any proxied request.
 */
void mg_proxy_pass(struct mg_worker *w, struct mg_req *req, const struct mg_admitted *a,
                   size_t backend, const char *method);

#endif
