/*
 * mg_schema — the table of schemas, and what every schema shares: hop-by-hop headers and the
 * upstream request buffers.
 */
#include <curl/curl.h>
#include <string.h>

#include "mg_conf.h"
#include "mg_schema.h"

static const struct mg_schema *const schemas[] = {
    [MG_SCHEMA_OPENAI] = &mg_schema_openai,
};

const struct mg_schema *
mg_schema_get(int id)
{
    if (id < 0 || (size_t)id >= MG_ARRAY_LEN(schemas) || schemas[id] == NULL) {
        return &mg_schema_openai;
    }
    return schemas[id];
}

void
mg_upreq_init(struct mg_upreq *up, size_t max_body)
{
    memset(up, 0, sizeof(*up));
    mg_buf_init(&up->url, 64 * 1024);
    mg_buf_init(&up->edited, max_body);
}

void
mg_upreq_reset(struct mg_upreq *up)
{
    mg_buf_reset(&up->url);
    mg_buf_reset(&up->edited);
    curl_slist_free_all(up->headers);
    up->headers = NULL;
    up->body = NULL;
    up->body_len = 0;
    up->inject_usage = 0;
}

void
mg_upreq_deinit(struct mg_upreq *up)
{
    curl_slist_free_all(up->headers);
    up->headers = NULL;
    mg_buf_deinit(&up->url);
    mg_buf_deinit(&up->edited);
}
