/*
 * mg_admin — the operator's endpoints: GET /healthz and GET /metrics (on listen, or alone on
 * admin_listen). They never need a client key.
 */
#ifndef MG_ADMIN_H
#define MG_ADMIN_H

struct mg_req;
struct mg_runtime;

/* 1 when path is an admin endpoint. */
int mg_admin_path(const char *path);

/*
 * Answers an admin path (GET or HEAD; 405 otherwise); /metrics reads rt's metrics and health.
 * Returns the status sent.
 */
int mg_admin_handle(struct mg_req *req, const char *path, struct mg_runtime *rt);

#endif
