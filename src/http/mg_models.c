/*
 * mg_models — the model catalog endpoints. The list's JSON is built once per snapshot (at load);
 * a single model is looked up and written per request.
 */
#include <string.h>

#include "mg_auth.h"
#include "mg_catalog.h"
#include "mg_conf_types.h"
#include "mg_models.h"
#include "mg_reply.h"

int
mg_models_handle(const struct mg_conf *conf, const struct mg_key *key,
                 struct mg_req *req, const char *id)
{
    struct mg_buf out;
    size_t i;

    if (id == NULL) {
        if (key != NULL && key->catalog_json != NULL) {
            mg_reply_json(req, 200, key->catalog_json, key->catalog_json_len);
        } else {
            mg_reply_json(req, 200, conf->catalog_json, conf->catalog_json_len);
        }
        return 200;
    }
    for (i = 0; mg_auth_allows(key, id, strlen(id)) && i < conf->ncatalog; i++) {
        if (strcmp(conf->catalog[i].id, id) == 0) {
            mg_buf_init(&out, 64 * 1024);
            mg_catalog_entry_json(&out, &conf->catalog[i]);
            mg_buf_adds(&out, "\n");
            mg_reply_json(req, 200, out.data, out.len);
            mg_buf_deinit(&out);
            return 200;
        }
    }
    mg_reply_error(req, 404, "model_not_found", "model", "The model '%s' does not exist", id);
    return 404;
}
