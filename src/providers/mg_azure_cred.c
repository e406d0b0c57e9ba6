/*
 * mg_azure_cred — Entra ID bearer tokens for azure backends: the client-credentials grant and
 * managed identity, fetched on the source's refresher thread (mg_cred), never on a worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_azure_cred.h"

#define TOKEN_TIMEOUT_MS 10000
#define TOKEN_ANSWER_MAX (64 * 1024)
#define AUTHORITY        "https://login.microsoftonline.com"
#define IMDS             "http://169.254.169.254"

static const char *
env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Strips the '/'s that end url. */
static void
trim_slash(char *url)
{
    size_t n = strlen(url);

    while (n > 0 && url[n - 1] == '/') {
        url[--n] = '\0';
    }
}

/* One transfer and its token answer; a failure says what answered, its status and why. */
static int
token(const struct mg_cred_http *rq, const char *what, struct mg_cred **out, char *err,
      size_t errlen)
{
    char why[MG_CRED_ERR_MAX] = "";
    struct mg_cred *got = NULL;
    struct mg_buf answer;
    long status;
    int rc = mg_cred_http_do(rq, &status, &answer, err, errlen);

    if (rc == MG_OK) {
        rc = mg_cred_bearer_json(answer.data ? answer.data : "", mg_cred_now_ms(), &got, why,
                                 sizeof(why));
        if (rc == MG_OK && status == 200) {
            *out = got;
        } else {
            mg_cred_unref(got);
            snprintf(err, errlen, "%s answered %ld%s%s", what, status, why[0] ? ": " : "", why);
            rc = MG_ERR;
        }
    }
    explicit_bzero(answer.data, answer.len);
    mg_buf_deinit(&answer);
    return rc;
}

static int
client_credentials(const struct mg_azure_ad *ad, struct mg_cred **out, char *err, size_t errlen)
{
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    char url[1024];
    struct mg_buf form;
    struct mg_cred_http rq = {"POST", url, headers, NULL, 0, TOKEN_TIMEOUT_MS, TOKEN_ANSWER_MAX,
                              0};
    int rc;

    snprintf(url, sizeof(url), "%s", env("AZURE_AUTHORITY_HOST") ? env("AZURE_AUTHORITY_HOST")
                                                                   : AUTHORITY);
    trim_slash(url);
    snprintf(url + strlen(url), sizeof(url) - strlen(url), "/%s/oauth2/v2.0/token",
             ad->tenant_id);
    mg_buf_init(&form, 16 * 1024);
    mg_cred_form_add(&form, "grant_type", "client_credentials");
    mg_cred_form_add(&form, "client_id", ad->client_id);
    mg_cred_form_add(&form, "client_secret", ad->client_secret);
    mg_cred_form_add(&form, "scope", MG_AZURE_SCOPE);
    rq.body = form.data;
    rq.body_len = form.len;
    rc = form.data != NULL ? token(&rq, "Entra ID", out, err, errlen) : MG_ERR;
    explicit_bzero(form.data, form.len);
    mg_buf_deinit(&form);
    return rc;
}

static int
managed_identity(const struct mg_azure_ad *ad, struct mg_cred **out, char *err, size_t errlen)
{
    const char *ep = env("IDENTITY_ENDPOINT"), *hdr = env("IDENTITY_HEADER");
    const char *headers[3] = {NULL, "Accept: application/json", NULL};
    char url[2048], line[1024];
    struct mg_buf id;
    struct mg_cred_http rq = {"GET", url, headers, NULL, 0, TOKEN_TIMEOUT_MS, TOKEN_ANSWER_MAX, 1};
    int rc;

    mg_buf_init(&id, 1024);
    if (ad->client_id != NULL) {
        mg_cred_form_add(&id, "client_id", ad->client_id);
    }
    if (ep != NULL && hdr != NULL) {   /* App Service, Functions, Container Apps */
        snprintf(url, sizeof(url), "%s%sapi-version=2019-08-01&resource=%s%s%s", ep,
                 strchr(ep, '?') ? "&" : "?", "https%3A%2F%2Fcognitiveservices.azure.com",
                 id.len ? "&" : "", id.len ? id.data : "");
        snprintf(line, sizeof(line), "X-IDENTITY-HEADER: %s", hdr);
        headers[0] = line;
        rc = token(&rq, "the managed identity endpoint", out, err, errlen);
    } else {
        char base[512];
        snprintf(base, sizeof(base), "%s", env("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                 ? env("AZURE_POD_IDENTITY_AUTHORITY_HOST") : IMDS);
        trim_slash(base);
        snprintf(url, sizeof(url), "%s/metadata/identity/oauth2/token?api-version=2018-02-01"
                 "&resource=%s%s%s", base, "https%3A%2F%2Fcognitiveservices.azure.com",
                 id.len ? "&" : "", id.len ? id.data : "");
        headers[0] = "Metadata: true";
        rc = token(&rq, "instance metadata (managed identity)", out, err, errlen);
    }
    explicit_bzero(line, sizeof(line));
    mg_buf_deinit(&id);
    return rc;
}

static int
azure_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    const struct mg_azure_ad *ad = arg;

    return ad->managed_identity ? managed_identity(ad, out, err, errlen)
                                : client_credentials(ad, out, err, errlen);
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? mg_strdup(s) : NULL;
}

struct mg_azure_ad *
mg_azure_ad_copy(const struct mg_azure_ad *ad)
{
    struct mg_azure_ad *c = mg_calloc(1, sizeof(*c));

    c->managed_identity = ad->managed_identity;
    c->tenant_id = dup_or_null(ad->tenant_id);
    c->client_id = dup_or_null(ad->client_id);
    c->client_secret = dup_or_null(ad->client_secret);
    return c;
}

void
mg_azure_ad_free(struct mg_azure_ad *ad)
{
    if (ad == NULL) {
        return;
    }
    free(ad->tenant_id);
    free(ad->client_id);
    if (ad->client_secret != NULL) {
        explicit_bzero(ad->client_secret, strlen(ad->client_secret));
        free(ad->client_secret);
    }
    free(ad);
}

static void
azure_free(void *arg)
{
    mg_azure_ad_free(arg);
}

const struct mg_cred_source_ops mg_azure_cred_ops = {azure_fetch, azure_free};
