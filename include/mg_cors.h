/*
 * mg_cors — browsers calling the gateway (the config's `cors:` block): a preflight OPTIONS on a
 * /v1/ path answered by the gateway itself (204, before any key check, never forwarded), and the
 * Access-Control-* headers of every other answer to a listed Origin (written by mg_wire from
 * req->cors_origin). Credentials are never allowed: keys travel in headers, not cookies.
 */
#ifndef MG_CORS_H
#define MG_CORS_H

struct mg_cors_conf;
struct mg_req;

/*
 * On a request's head: marks req for the CORS headers when its Origin is listed; and answers a
 * preflight (OPTIONS with Origin and Access-Control-Request-Method) itself. Returns the status
 * it sent (204), or 0 when the request goes on as usual.
 */
int mg_cors_head(const struct mg_cors_conf *c, struct mg_req *req);

#endif
