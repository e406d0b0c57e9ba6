/*
 * mg_models — GET /v1/models and /v1/models/{id}: the models a config snapshot lists.
 */
#ifndef MG_MODELS_H
#define MG_MODELS_H

struct evhttp_request;
struct mg_conf;

/* Records when the running gateway loaded conf: the default "created" of its models. */
void mg_models_note_loaded(const struct mg_conf *conf);

/* Answers GET /v1/models (id NULL) or GET /v1/models/{id}. */
void mg_models_handle(const struct mg_conf *conf, struct evhttp_request *req, const char *id);

#endif
