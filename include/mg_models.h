/*
 * mg_models — the model catalog: GET /v1/models and /v1/models/{id}.
 *
 * The catalog of a snapshot (which names, in which order) is decided by mg_conf. What this module
 * adds is the default "created" of a name: the time the running gateway first loaded a rule
 * listing it, kept across reloads while the name stays configured. That memory outlives any one
 * snapshot, so it lives here, and the JSON is built once per snapshot, not per request.
 */
#ifndef MG_MODELS_H
#define MG_MODELS_H

#include <stdint.h>

struct evhttp_request;
struct mg_conf;

/*
 * Fills in conf's default created times from the registry (new names get now; names no longer
 * listed are forgotten) and builds the /v1/models JSON. Call once per snapshot, before it is
 * published, from one thread at a time (the loader).
 */
void mg_models_prepare(struct mg_conf *conf, int64_t now);

/* Forgets every remembered name (at exit, and between tests). */
void mg_models_reset(void);

/* Answers GET /v1/models (id NULL) or GET /v1/models/{id}; returns the status sent. */
int mg_models_handle(const struct mg_conf *conf, struct evhttp_request *req, const char *id);

#endif
