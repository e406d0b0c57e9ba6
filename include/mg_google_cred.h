/*
 * mg_google_cred — Google's access tokens for Vertex AI backends, fetched by the credential cache
 * (mg_cred) off the request path:
 *
 *   - a service-account JSON key (credentials_file): a JWT signed RS256 with its private key
 *     (OpenSSL), exchanged at its token_uri (grant urn:ietf:params:oauth:grant-type:jwt-bearer,
 *     scope https://www.googleapis.com/auth/cloud-platform);
 *   - without one, the GCE/GKE metadata server: GET http://{GCE_METADATA_HOST or
 *     metadata.google.internal}/computeMetadata/v1/instance/service-accounts/default/token with
 *     Metadata-Flavor: Google.
 *
 * Both answer {"access_token","expires_in","token_type"}, read by mg_cred_bearer_json into an
 * MG_CRED_BEARER credential. No token, key or assertion is ever logged: errors carry the endpoint's status and
 * its OAuth error code and description only.
 */
#ifndef MG_GOOGLE_CRED_H
#define MG_GOOGLE_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_GOOGLE_SCOPE     "https://www.googleapis.com/auth/cloud-platform"
#define MG_GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
#define MG_GOOGLE_JWT_TTL   3600   /* seconds an assertion is valid (Google's maximum) */

struct mg_cred_source_ops;

/* A service account's key, as read from its JSON file. */
struct mg_google_sa;

/*
 * Reads the service-account JSON key at path: type "service_account", client_email, private_key
 * (a PEM RSA key), private_key_id (optional) and token_uri (default MG_GOOGLE_TOKEN_URI; http or
 * https). NULL with the reason in err (never the key's text).
 */
struct mg_google_sa *mg_google_sa_load(const char *path, char *err, size_t errlen);
/* Frees sa (its key wiped). NULL is a no-op. */
void mg_google_sa_free(struct mg_google_sa *sa);
/* The account's email and key id ("" when the file has none), for a source's key and the log. */
const char *mg_google_sa_email(const struct mg_google_sa *sa);
const char *mg_google_sa_key_id(const struct mg_google_sa *sa);

/*
 * The signed assertion for sa at now (Unix seconds): base64url(header).base64url(claims).sig with
 * header {"alg":"RS256","typ":"JWT","kid"} and claims {iss, scope, aud: token_uri, iat, exp: iat +
 * MG_GOOGLE_JWT_TTL}, appended to out. MG_OK or MG_ERR.
 */
int mg_google_jwt(const struct mg_google_sa *sa, int64_t now, struct mg_buf *out);

/* The metadata server's token URL, from GCE_METADATA_HOST as read now. */
void mg_google_metadata_url(char *out, size_t n);

/*
 * The credential sources: a service account (arg: the loaded key, which the source then owns)
 * and the metadata server (arg: NULL).
 */
extern const struct mg_cred_source_ops mg_google_sa_ops;
extern const struct mg_cred_source_ops mg_google_metadata_ops;

#endif
