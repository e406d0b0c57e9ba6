/*
 * mg_models — GET /v1/models and GET /v1/models/{id}, answered from the catalog that the config
 * snapshot built at load (mg_catalog).
 */
#ifndef MG_MODELS_H
#define MG_MODELS_H

struct evhttp_request;
struct mg_conf;

/* Answers GET /v1/models (id NULL) or GET /v1/models/{id} (id decoded); returns the status sent. */
int mg_models_handle(const struct mg_conf *conf, struct evhttp_request *req, const char *id);

#endif
