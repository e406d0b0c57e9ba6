/*
 * mg_azure_cred — Microsoft Entra ID tokens for `azure` backends (azure_ad:), as a credential
 * source (mg_cred): a bearer token for https://cognitiveservices.azure.com/.default.
 *
 *   client credentials: POST {AZURE_AUTHORITY_HOST or https://login.microsoftonline.com}
 *                       /{tenant_id}/oauth2/v2.0/token (grant_type=client_credentials)
 *   managed identity:   IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service, Functions, Container
 *                       Apps: api-version 2019-08-01, X-IDENTITY-HEADER), else the instance
 *                       metadata endpoint ({AZURE_POD_IDENTITY_AUTHORITY_HOST or
 *                       http://169.254.169.254}/metadata/identity/oauth2/token, Metadata: true)
 */
#ifndef MG_AZURE_CRED_H
#define MG_AZURE_CRED_H

#include "mg_cred.h"

#define MG_AZURE_SCOPE    "https://cognitiveservices.azure.com/.default"
#define MG_AZURE_RESOURCE "https://cognitiveservices.azure.com"

/* An azure backend's azure_ad: either the three client-credential strings or managed_identity. */
struct mg_azure_ad {
    int   managed_identity;
    char *tenant_id;
    char *client_id;       /* with managed_identity: a user-assigned identity's, or NULL */
    char *client_secret;
};

/* The source: arg is a struct mg_azure_ad (freed by its free). */
extern const struct mg_cred_source_ops mg_azure_cred_ops;

/* A deep copy (for a source's argument). */
struct mg_azure_ad *mg_azure_ad_copy(const struct mg_azure_ad *ad);
/* Frees it, the secret wiped. NULL is a no-op. */
void mg_azure_ad_free(struct mg_azure_ad *ad);

#endif
