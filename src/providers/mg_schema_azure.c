/*
 * mg_schema_azure — Azure OpenAI: the API is OpenAI's, the URL names a deployment and an API
 * version, and the key goes in `api-key`.
 *
 *   POST /v1/X  ->  {url}/openai/deployments/{model}/X?api-version={api_version}[&client's params]
 *
 * {model} is the entry's override, else the client's model, encoded as one path segment. The
 * client's own api-version is removed whatever its spelling (Azure decodes and folds the name,
 * so "Api-Version" or "api%2Dversion" next to ours would be a second, conflicting one); its
 * other query parameters are kept. The body, the usage injection and the relay are the openai
 * schema's.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conf_types.h"
#include "mg_json.h"
#include "mg_schema.h"
#include "mg_yaml.h"
#include "mg_sigv4.h"

/* A backend's azure keys (b->schema_conf). */
struct azure_conf {
    char *api_version;   /* sent in the query string as it is: no control characters */
    struct mg_schema_apis apis;
};

static int
azure_build(const struct mg_client_req *rq, const struct mg_backend *b,
            const struct mg_rule_backend *e, struct mg_upreq *up)
{
    const struct azure_conf *az = b->schema_conf;
    const char *model = e->model != NULL ? e->model : rq->jr->model;
    size_t model_len = e->model != NULL ? strlen(e->model) : rq->jr->model_len;
    int rc;

    if (mg_schema_openai_body(rq, e, up) != MG_OK) {
        return MG_ERR;
    }
    if (strncmp(rq->upath, "/responses", 10) == 0 &&
        (rq->upath[10] == '\0' || rq->upath[10] == '/')) {
        /* the Responses API is Azure's v1 API: the deployment is the body's model, no
         * api-version */
        rc = mg_buf_adds(&up->url, b->url);
        rc = rc ? rc : mg_buf_adds(&up->url, "/openai/v1");
        rc = rc ? rc : mg_buf_adds(&up->url, rq->upath);
        rc = rc ? rc : mg_schema_add_query(&up->url, rq->query, "api-version", 1);
        if (rc != MG_OK) {
            return MG_ERR;
        }
        mg_schema_headers(up, rq, b, NULL, 0);
        return MG_OK;
    }
    rc = mg_buf_adds(&up->url, b->url);
    rc = rc ? rc : mg_buf_adds(&up->url, "/openai/deployments/");
    rc = rc ? rc : mg_sigv4_encode_segment(&up->url, model, model_len);
    rc = rc ? rc : mg_buf_adds(&up->url, rq->upath);
    rc = rc ? rc : mg_buf_adds(&up->url, "?api-version=");
    rc = rc ? rc : mg_buf_adds(&up->url, az->api_version);
    rc = rc ? rc : mg_schema_add_query(&up->url, rq->query, "api-version", 0);
    if (rc != MG_OK) {
        return MG_ERR;
    }
    mg_schema_headers(up, rq, b, NULL, 0);   /* auth_header is "api-key: ..." */
    return MG_OK;
}

/* The active check: the resource's model list, /openai/models?api-version=... */
static int
azure_probe(const struct mg_backend *b, struct mg_upreq *up)
{
    const struct azure_conf *az = b->schema_conf;

    if (mg_schema_probe_request(up, b, "/openai/models?api-version=") != MG_OK ||
        mg_buf_adds(&up->url, az->api_version) != MG_OK) {
        return MG_ERR;
    }
    return MG_OK;
}

/* ---- configuration ---- */

static const struct mg_yaml_key azure_keys[] = {
    {"api_version", mg_yaml_set_nonempty_line, offsetof(struct azure_conf, api_version)},
    MG_SCHEMA_API_KEYS(struct azure_conf, apis),
};

static void *
azure_conf_create(void)
{
    return mg_calloc(1, sizeof(struct azure_conf));
}

/* api_version and api_key are needed: Azure refuses a request without either. */
static void
azure_conf_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b, void *conf)
{
    struct azure_conf *az = conf;
    const char *name = b->name ? b->name : "?";

    mg_schema_apis_check(y, node, b, &az->apis, "max_completion_tokens");
    if (az->api_version == NULL) {
        mg_yaml_error(y, node, "backend \"%s\" (schema: azure) needs \"api_version\"", name);
    }
    if (b->api_key == NULL || b->api_key[0] == '\0') {
        mg_yaml_error(y, node, "backend \"%s\" (schema: azure) needs \"api_key\"", name);
    } else {
        b->auth_header = mg_schema_conf_line("api-key", b->api_key);
    }
}

static void
azure_conf_free(void *conf)
{
    struct azure_conf *az = conf;

    if (az != NULL) {
        free(az->api_version);
        mg_schema_apis_deinit(&az->apis);
        free(az);
    }
}

const struct mg_schema mg_schema_azure = {
    .name = "azure",
    .chat_api = "chat",
    .build = azure_build,
    .classify = mg_schema_classify_status,
    .relay = mg_schema_openai_relay,
    .error_body = mg_schema_pass_error,
    .probe = azure_probe,
    .keys = azure_keys,
    .nkeys = MG_ARRAY_LEN(azure_keys),
    .conf_create = azure_conf_create,
    .conf_check = azure_conf_check,
    .conf_free = azure_conf_free,
};
