/*
 * mg_models — GET /v1/models and GET /v1/models/{id}, answered from the catalog that the config
 * snapshot built at load (mg_catalog).
 */
#ifndef MG_MODELS_H
#define MG_MODELS_H

struct mg_req;
struct mg_conf;
struct mg_key;

/*
 * Answers GET /v1/models (id NULL) or GET /v1/models/{id} (id decoded) as the caller's key sees
 * the catalog (key NULL: all of it; a key with an allow-list sees only the models it may use, and
 * any other id is 404 model_not_found). Returns the status sent.
 */
int mg_models_handle(const struct mg_conf *conf, const struct mg_key *key,
                     struct mg_req *req, const char *id);

/*
 * The same in Anthropic's shape, for a request with anthropic-version (the Anthropic SDKs'
 * models.list()): {"data":[{"type":"model","id","display_name","created_at",...}],"has_more",
 * "first_id","last_id"}, paged by the query's limit (1-1000, default 20), after_id, before_id
 * (an unknown cursor: an empty page). Returns the status sent.
 */
int mg_models_handle_anthropic(const struct mg_conf *conf, const struct mg_key *key,
                               struct mg_req *req, const char *id);

#endif
