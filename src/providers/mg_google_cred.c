/*
 * mg_google_cred — Google access tokens from a service-account key (a JWT signed RS256 with
 * OpenSSL, exchanged at the key's token_uri) or from the metadata server (see mg_google_cred.h).
 * Runs on a credential source's refresher thread only (mg_cred), never on a worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mg_cred.h"
#include "mg_google_cred.h"
#include "mg_jload.h"

#define SA_FILE_MAX   (64 * 1024)
#define TOKEN_MAX     (64 * 1024)
#define FETCH_MS      10000
#define METADATA_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define JWT_GRANT     "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"

struct mg_google_sa {
    char     *email;
    char     *key_id;
    char     *token_uri;
    EVP_PKEY *key;
};

/* ---- the key file ---------------------------------------------------------------------- */

static const char *
member(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static int
has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

struct mg_google_sa *
mg_google_sa_load(const char *path, char *err, size_t errlen)
{
    char *text = mg_cred_read_file(path, SA_FILE_MAX);
    json_t *j = text != NULL ? mg_jload(text, strlen(text), 0) : NULL;
    const char *type = member(j, "type"), *email = member(j, "client_email");
    const char *pem = member(j, "private_key"), *uri = member(j, "token_uri");
    struct mg_google_sa *sa = NULL;
    BIO *bio;

    if (text == NULL) {
        snprintf(err, errlen, "cannot read %s", path);
    } else if (!json_is_object(j) || type == NULL || strcmp(type, "service_account") != 0) {
        snprintf(err, errlen, "%s is not a service-account JSON key (\"type\": "
                 "\"service_account\")", path);
    } else if (email == NULL || pem == NULL) {
        snprintf(err, errlen, "%s has no client_email or private_key", path);
    } else if (uri != NULL && ((strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7))
                               || has_control(uri))) {
        snprintf(err, errlen, "%s: token_uri is not an http(s) URL", path);
    } else {
        sa = mg_calloc(1, sizeof(*sa));
        bio = BIO_new_mem_buf(pem, -1);
        sa->key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (sa->key == NULL || EVP_PKEY_base_id(sa->key) != EVP_PKEY_RSA) {
            snprintf(err, errlen, "%s: private_key is not a PEM RSA key", path);
            mg_google_sa_free(sa);
            sa = NULL;
        } else {
            sa->email = mg_strdup(email);
            sa->key_id = mg_strdup(member(j, "private_key_id") ? member(j, "private_key_id") : "");
            sa->token_uri = mg_strdup(uri != NULL ? uri : MG_GOOGLE_TOKEN_URI);
        }
    }
    if (pem != NULL) {   /* jansson's copy of the key goes too */
        OPENSSL_cleanse((char *)pem, strlen(pem));
    }
    json_decref(j);
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    return sa;
}

void
mg_google_sa_free(struct mg_google_sa *sa)
{
    if (sa != NULL) {
        EVP_PKEY_free(sa->key);
        free(sa->email);
        free(sa->key_id);
        free(sa->token_uri);
        free(sa);
    }
}

const char *
mg_google_sa_email(const struct mg_google_sa *sa)
{
    return sa->email;
}

const char *
mg_google_sa_key_id(const struct mg_google_sa *sa)
{
    return sa->key_id;
}

/* ---- the assertion --------------------------------------------------------------------- */

/* Appends base64url (no padding) of p[0..n) to out. */
static int
add_b64url(struct mg_buf *out, const unsigned char *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1, i, len;
    unsigned char *b = mg_malloc(cap);
    int rc;

    len = (size_t)EVP_EncodeBlock(b, p, (int)n);
    while (len > 0 && b[len - 1] == '=') {
        len--;
    }
    for (i = 0; i < len; i++) {
        b[i] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
    }
    rc = mg_buf_add(out, (const char *)b, len);
    free(b);
    return rc;
}

static int
add_b64url_json(struct mg_buf *out, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = s != NULL ? add_b64url(out, (const unsigned char *)s, strlen(s)) : MG_ERR;

    free(s);
    json_decref(j);
    return rc;
}

int
mg_google_jwt(const struct mg_google_sa *sa, int64_t now, struct mg_buf *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t start = out->len, siglen = 0;
    int rc;

    rc = add_b64url_json(out, json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "kid",
                                        sa->key_id));
    rc = rc ? rc : mg_buf_add(out, ".", 1);
    rc = rc ? rc : add_b64url_json(out, json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", sa->email,
                                                  "scope", MG_GOOGLE_SCOPE, "aud", sa->token_uri,
                                                  "iat", (json_int_t)now, "exp",
                                                  (json_int_t)(now + MG_GOOGLE_JWT_TTL)));
    if (rc == MG_OK && (ctx == NULL ||
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, sa->key) != 1 ||
        EVP_DigestSignUpdate(ctx, out->data + start, out->len - start) != 1 ||
        EVP_DigestSignFinal(ctx, NULL, &siglen) != 1 ||
        (sig = mg_malloc(siglen)) == NULL ||
        EVP_DigestSignFinal(ctx, sig, &siglen) != 1)) {
        rc = MG_ERR;
    }
    rc = rc ? rc : mg_buf_add(out, ".", 1);
    rc = rc ? rc : add_b64url(out, sig, siglen);
    free(sig);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- the answer ------------------------------------------------------------------------ */

void
mg_google_metadata_url(char *out, size_t n)
{
    const char *host = getenv("GCE_METADATA_HOST");

    snprintf(out, n, "http://%s" METADATA_PATH, host != NULL && host[0] != '\0'
             ? host : "metadata.google.internal");
}

/* ---- the sources ----------------------------------------------------------------------- */

/* The transfer's answer as a bearer credential. */
static int
exchange(const struct mg_cred_http *rq, const char *what, struct mg_cred **out, char *err,
         size_t errlen)
{
    struct mg_buf body;
    char why[240] = "";
    long status = 0;
    int rc = mg_cred_http_do(rq, &status, &body, err, errlen);

    if (rc == MG_OK && mg_cred_bearer_json(body.data ? body.data : "", mg_cred_now_ms(), out,
                                           why, sizeof(why)) != MG_OK) {
        snprintf(err, errlen, "%s answered %ld: %s", what, status, why);
        rc = MG_ERR;
    } else if (rc == MG_OK && (status < 200 || status > 299)) {
        mg_cred_unref(*out);
        *out = NULL;
        snprintf(err, errlen, "%s answered %ld", what, status);
        rc = MG_ERR;
    }
    if (body.data != NULL) {
        OPENSSL_cleanse(body.data, body.len);
    }
    mg_buf_deinit(&body);
    return rc;
}

static int
sa_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    struct mg_google_sa *sa = arg;
    struct mg_cred_http rq;
    struct mg_buf form;
    int rc;

    mg_buf_init(&form, 64 * 1024);
    rc = mg_buf_adds(&form, "grant_type=" JWT_GRANT "&assertion=");
    rc = rc ? rc : mg_google_jwt(sa, mg_cred_now_ms() / 1000, &form);
    if (rc != MG_OK) {
        snprintf(err, errlen, "cannot sign the service account's assertion");
    } else {
        memset(&rq, 0, sizeof(rq));
        rq.method = "POST";
        rq.url = sa->token_uri;
        rq.headers = headers;
        rq.body = form.data;
        rq.body_len = form.len;
        rq.timeout_ms = FETCH_MS;
        rq.max = TOKEN_MAX;
        rc = exchange(&rq, "the token endpoint", out, err, errlen);
    }
    OPENSSL_cleanse(form.data, form.len);
    mg_buf_deinit(&form);
    return rc;
}

static void
sa_free(void *arg)
{
    mg_google_sa_free(arg);
}

static int
metadata_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    static const char *const headers[] = {"Metadata-Flavor: Google", NULL};
    struct mg_cred_http rq;
    char url[512];

    mg_google_metadata_url(url, sizeof(url));
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = url;
    rq.headers = headers;
    rq.timeout_ms = FETCH_MS;
    rq.max = TOKEN_MAX;
    rq.no_proxy = 1;   /* a link-local endpoint: never through a proxy */
    return exchange(&rq, "the metadata server", out, err, errlen);
}

const struct mg_cred_source_ops mg_google_sa_ops = {sa_fetch, sa_free};
const struct mg_cred_source_ops mg_google_metadata_ops = {metadata_fetch, NULL};
