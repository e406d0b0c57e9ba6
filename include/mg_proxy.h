/*
 * mg_proxy — the life of one admitted request: attempts on the rule's backends in balancer
 * order, fail-over until an answer commits, then the relay of that answer to the client.
 */
#ifndef MG_PROXY_H
#define MG_PROXY_H

#include <stdint.h>

struct evhttp_request;
struct mg_admitted;
struct mg_worker;

/*
 * Takes over an admitted request (mg_admit_route()); t0_us is its arrival. Always ends in exactly
 * one reply (or a dropped connection if the client left), one access log line and one count in
 * the request metrics.
 */
void mg_proxy_handle(struct mg_worker *w, struct evhttp_request *req, const struct mg_admitted *a,
                     int64_t t0_us);

#endif
