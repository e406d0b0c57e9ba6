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

#endif
