/*
 * mg_schema_azure — Azure OpenAI: the API is OpenAI's, the URL names a deployment and an API
 * version, and the key goes in `api-key` (or, with azure_ad, an Entra ID token from the
 * credential cache goes in `Authorization: Bearer`).
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

#include "mg_azure_cred.h"
#include "mg_conf_types.h"
#include "mg_cred.h"
#include "mg_json.h"
#include "mg_schema.h"
#include "mg_yaml.h"
#include "mg_sigv4.h"

/* A backend's azure keys (b->schema_conf). */
struct azure_conf {
    char *api_version;   /* sent in the query string as it is: no control characters */
    struct mg_schema_apis apis;
    struct mg_azure_ad *ad;   /* azure_ad: Entra ID instead of api_key (the cache's bearer) */
};

/* With azure_ad: the cache's current token as "Authorization: Bearer"; none: ENOCRED. */
static int
add_bearer(const struct mg_backend *b, struct mg_upreq *up)
{
    struct mg_cred *c;

    if (b->cred == NULL) {
        return MG_OK;   /* api_key: its line is b->auth_header */
    }
    c = mg_cred_source_current(b->cred, mg_cred_now_ms());
    if (c == NULL) {
        return mg_schema_refuse(up, MG_SCHEMA_ENOCRED, NULL, "no usable Entra ID token");
    }
    mg_schema_add_parts(up, "Authorization: Bearer ", c->token);
    mg_cred_unref(c);
    return MG_OK;
}

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
        return add_bearer(b, up);
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
    return add_bearer(b, up);
}

/* The active check: the resource's model list, /openai/models?api-version=... */
static int
azure_probe(const struct mg_backend *b, struct mg_upreq *up)
{
    const struct azure_conf *az = b->schema_conf;

    if (mg_schema_probe_request(up, b, "/openai/models?api-version=") != MG_OK ||
        mg_buf_adds(&up->url, az->api_version) != MG_OK ||
        add_bearer(b, up) != MG_OK) {
        return MG_ERR;
    }
    return MG_OK;
}

/* ---- configuration ---- */

/*
 * azure_ad: managed_identity, or {tenant_id, client_id, client_secret}, or
 * {managed_identity: true, client_id: ...} (a user-assigned identity).
 */
static int
set_azure_ad(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
#define AD(f) offsetof(struct mg_azure_ad, f)
    static const struct mg_yaml_key keys[] = {
        {"tenant_id", mg_yaml_set_nonempty_line, AD(tenant_id)},
        {"client_id", mg_yaml_set_nonempty_line, AD(client_id)},
        {"client_secret", mg_yaml_set_nonempty_line, AD(client_secret)},
        {"managed_identity", mg_yaml_set_bool, AD(managed_identity)},
    };
#undef AD
    struct mg_azure_ad **out = dst, *ad = mg_calloc(1, sizeof(*ad));
    char *text;

    if (node->type == YAML_SCALAR_NODE) {
        text = mg_yaml_scalar(y, node, "azure_ad");
        ad->managed_identity = text != NULL && strcmp(text, "managed_identity") == 0;
        free(text);
        if (!ad->managed_identity) {
            mg_yaml_error(y, node, "azure_ad must be managed_identity or a mapping with "
                          "tenant_id, client_id and client_secret");
            mg_azure_ad_free(ad);
            return MG_ERR;
        }
    } else if (mg_yaml_mapping(y, node, keys, MG_ARRAY_LEN(keys), ad, "azure_ad") != MG_OK) {
        mg_azure_ad_free(ad);
        return MG_ERR;
    } else if (ad->managed_identity && (ad->tenant_id != NULL || ad->client_secret != NULL)) {
        mg_yaml_error(y, node, "azure_ad: a managed identity takes no tenant_id or "
                      "client_secret (client_id names a user-assigned one)");
        mg_azure_ad_free(ad);
        return MG_ERR;
    } else if (!ad->managed_identity && (ad->tenant_id == NULL || ad->client_id == NULL ||
                                         ad->client_secret == NULL)) {
        mg_yaml_error(y, node, "azure_ad needs tenant_id, client_id and client_secret (or "
                      "managed_identity)");
        mg_azure_ad_free(ad);
        return MG_ERR;
    }
    mg_azure_ad_free(*out);
    *out = ad;
    return MG_OK;
}

static const struct mg_yaml_key azure_keys[] = {
    {"api_version", mg_yaml_set_nonempty_line, offsetof(struct azure_conf, api_version)},
    {"azure_ad", set_azure_ad, offsetof(struct azure_conf, ad)},
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
    if (az->ad != NULL && b->api_key != NULL) {
        mg_yaml_error(y, node, "backend \"%s\" (schema: azure): \"api_key\" or \"azure_ad\", "
                      "not both", name);
    } else if (az->ad != NULL) {
        return;   /* the bearer comes from the credential cache (azure_cred) */
    } else if (b->api_key == NULL || b->api_key[0] == '\0') {
        mg_yaml_error(y, node, "backend \"%s\" (schema: azure) needs \"api_key\" or "
                      "\"azure_ad\"", name);
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
        mg_azure_ad_free(az->ad);
        free(az);
    }
}

/* azure_ad: a source keyed by how it authenticates (the secret as a digest). */
static const struct mg_cred_source_ops *
azure_cred(const struct mg_backend *b, struct mg_buf *key, void **arg)
{
    const struct azure_conf *az = b->schema_conf;

    if (az->ad == NULL) {
        return NULL;
    }
    mg_buf_printf(key, "entra\nmi=%d\ntenant=%s\nclient=%s\n", az->ad->managed_identity,
                  az->ad->tenant_id ? az->ad->tenant_id : "",
                  az->ad->client_id ? az->ad->client_id : "");
    mg_cred_key_secret(key, az->ad->client_secret ? az->ad->client_secret : "");
    *arg = mg_azure_ad_copy(az->ad);
    return &mg_azure_cred_ops;
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
    .cred = azure_cred,
};
