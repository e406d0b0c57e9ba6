/*
 * mg_stored — the stored Responses by id. Reads need the client's key but are not routed (no
 * rule, no rate limit: they reach no backend). A native Response's id recorded for the key is
 * passed to the backend that made it (mg_stored_native, then mg_proxy_pass); an unrecorded one is
 * 404 as any unknown id.
 */
#include <string.h>

#include "mg_api.h"
#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_resp_store.h"
#include "mg_stored.h"
#include "mg_util.h"

static int
not_found(struct mg_req *req, const char *id)
{
    mg_reply_error(req, 404, "response_not_found", NULL, "Response with id '%s' not found.", id);
    return 404;
}

int
mg_stored_handle(struct mg_resp_store *store, const char *key, struct mg_req *req,
                 const char *id)
{
    const struct mg_resp_entry *en;
    struct mg_buf out;

    if (id[0] == '\0' || strlen(id) > MG_RESP_STORE_NAME_MAX) {
        return not_found(req, "");
    }
    if (req->method == MG_METHOD_DELETE) {
        if (mg_resp_store_del(store, id, key, mg_now_ms()) != MG_OK) {
            return not_found(req, id);
        }
        mg_buf_init(&out, 2 * MG_RESP_STORE_NAME_MAX);
        mg_buf_adds(&out, "{\"id\":");
        mg_json_quote(&out, id, strlen(id));
        mg_buf_adds(&out, ",\"object\":\"response\",\"deleted\":true}\n");
        mg_reply_json(req, 200, out.data, out.len);
        mg_buf_deinit(&out);
        return 200;
    }
    if ((en = mg_resp_store_get(store, id, key, mg_now_ms())) == NULL) {
        return not_found(req, id);
    }
    mg_reply_json(req, 200, en->response, en->response_len);
    mg_resp_entry_unref(en);
    return 200;
}

int
mg_stored_id(const char *path, char *id, size_t idlen, int *items)
{
    const char *p = path + strlen("/v1/responses/"), *slash;
    size_t n;

    if (strncmp(path, "/v1/responses/", 14) != 0) {
        return 0;
    }
    slash = strchr(p, '/');
    *items = slash != NULL;
    if (slash != NULL && strcmp(slash, "/input_items") != 0) {
        return 0;
    }
    n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (n >= idlen) {
        n = 0;   /* longer than any stored id: answered as unknown */
    }
    memcpy(id, p, n);
    id[n] = '\0';
    return 1;
}

int
mg_stored_items(struct mg_resp_store *store, const char *key, struct mg_req *req, const char *id)
{
    const struct mg_resp_entry *en;

    if (id[0] == '\0' || (en = mg_resp_store_get(store, id, key, mg_now_ms())) == NULL) {
        return not_found(req, id);
    }
    mg_resp_entry_unref(en);
    mg_reply_error(req, 400, "unsupported_endpoint", NULL, "/v1/responses/{id}/input_items is "
                   "not served for a Response made through chat completions (read the Response)");
    return 400;
}

int
mg_stored_native(struct mg_resp_store *store, const struct mg_conf *conf, const char *key,
                 const char *id, size_t *backend)
{
    char name[MG_RESP_STORE_NAME_MAX + 1];
    size_t i;

    if (store == NULL || id[0] == '\0' || strncmp(id, "resp_mg", 7) == 0 ||
        strlen(id) > MG_RESP_STORE_NAME_MAX ||
        mg_resp_store_lookup(store, id, key, mg_now_ms(), name, sizeof(name)) != MG_OK) {
        return 0;
    }
    for (i = 0; i < conf->nbackends; i++) {
        if (strcmp(conf->backends[i].name, name) == 0) {
            *backend = i;
            return mg_api_mode(&mg_api_responses, &conf->backends[i]) == MG_API_NATIVE;
        }
    }
    return 0;   /* gone at a reload */
}
