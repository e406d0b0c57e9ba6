/*
 * mg_stored — the stored Responses by id. Reads need the client's key but are not routed (no
 * rule, no rate limit: they reach no backend). Ids of native Responses are 404 too: the backend
 * recorded for one is not asked yet.
 */
#include <string.h>

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
