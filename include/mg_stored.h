/*
 * mg_stored — GET and DELETE /v1/responses/{id}: the Responses the gateway translated and kept
 * in its conversation store (mg_resp_store), each reachable only with the key that made it.
 */
#ifndef MG_STORED_H
#define MG_STORED_H

struct mg_req;
struct mg_resp_store;

/*
 * Answers req (GET: the stored Response; DELETE: {"id","object":"response","deleted":true}) for
 * id, as the client key named key ("" without auth) sees the store; an id it does not have is
 * 404 response_not_found. Returns the status sent.
 */
int mg_stored_handle(struct mg_resp_store *store, const char *key, struct mg_req *req,
                     const char *id);

#include <stddef.h>

struct mg_conf;

/*
 * 1 when path is /v1/responses/{id} or /v1/responses/{id}/input_items: the id into id (empty
 * when it does not fit idlen) and *items set for the second; else 0.
 */
int mg_stored_id(const char *path, char *id, size_t idlen, int *items);

/*
 * GET /v1/responses/{id}/input_items of an id that is no recorded native one: 400
 * unsupported_endpoint when the store holds it for key (a translated Response), else 404
 * response_not_found. Returns the status sent.
 */
int mg_stored_items(struct mg_resp_store *store, const char *key, struct mg_req *req,
                    const char *id);

/*
 * 1 when id is a native Response id recorded for key (not the gateway's own), made by a backend
 * of conf that still serves Responses natively: its index into conf->backends in *backend (the
 * read is passed to it, mg_proxy_pass); else 0 (mg_stored_handle answers).
 */
int mg_stored_native(struct mg_resp_store *store, const struct mg_conf *conf, const char *key,
                     const char *id, size_t *backend);

#endif
