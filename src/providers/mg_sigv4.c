/*
 * mg_sigv4 — AWS Signature Version 4: the string to sign, the signing key (derived once a day
 * and region, cached by the caller), the signature and the headers that carry it. The canonical
 * request it signs is mg_sigv4_canon's.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_sigv4.h"
#include "mg_sigv4_canon.h"

static int
fail(struct mg_sigv4_result *res, const char *why)
{
    res->error = why;
    return MG_ERR;
}

/* ---- the signing key ---- */

static int
hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int outlen = 32;

    if (HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &outlen) == NULL || outlen != 32) {
        return MG_ERR;
    }
    return MG_OK;
}

static int
derive_key(const char *secret, const char *date, const char *region, const char *service,
           unsigned char out[32])
{
    unsigned char k[32];
    char first[4 + MG_SIGV4_SECRET_MAX + 1];
    int rc;

    snprintf(first, sizeof(first), "AWS4%s", secret);
    rc = hmac(first, strlen(first), date, strlen(date), k);
    rc = rc == MG_OK ? hmac(k, 32, region, strlen(region), k) : rc;
    rc = rc == MG_OK ? hmac(k, 32, service, strlen(service), k) : rc;
    rc = rc == MG_OK ? hmac(k, 32, "aws4_request", 12, out) : rc;
    OPENSSL_cleanse(first, sizeof(first));
    OPENSSL_cleanse(k, sizeof(k));
    return rc;
}

void
mg_sigv4_cache_init(struct mg_sigv4_cache *c)
{
    memset(c, 0, sizeof(*c));
}

void
mg_sigv4_cache_deinit(struct mg_sigv4_cache *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
    c->valid = 0;
}

/* The signing key for this day: from the cache when it was derived for the same inputs. */
static int
signing_key(struct mg_sigv4_cache *c, const char *secret, const char *date, const char *region,
            const char *service, unsigned char out[32])
{
    if (c == NULL) {
        return derive_key(secret, date, region, service, out);
    }
    if (!c->valid || strcmp(c->date, date) != 0 || strcmp(c->region, region) != 0 ||
        strcmp(c->service, service) != 0 || strcmp(c->secret, secret) != 0) {
        c->valid = 0;
        OPENSSL_cleanse(c->secret, sizeof(c->secret));
        if (derive_key(secret, date, region, service, c->key) != MG_OK) {
            return MG_ERR;
        }
        /* lengths were checked by the caller against these very sizes */
        snprintf(c->date, sizeof(c->date), "%s", date);
        snprintf(c->region, sizeof(c->region), "%s", region);
        snprintf(c->service, sizeof(c->service), "%s", service);
        snprintf(c->secret, sizeof(c->secret), "%s", secret);
        c->valid = 1;
        c->derivations++;
    }
    memcpy(out, c->key, 32);
    return MG_OK;
}

/* ---- signing ---- */

int
mg_sigv4_sign(const struct mg_sigv4_request *req, const struct mg_sigv4_creds *creds,
              int64_t now, struct mg_sigv4_cache *cache, struct mg_sigv4_result *res)
{
    unsigned char digest[32], key[32], sig[32];
    unsigned int dlen;
    const char *token = creds->session_token;
    char date[9], creq_hash[65], names[MG_SIGV4_AUTH_MAX];
    char scope[3 * (MG_SIGV4_NAME_MAX + 1) + 16];
    char sts[32 + sizeof(scope) + 65];
    struct tm tm;
    time_t t = (time_t)now;
    int n, rc;

    memset(res, 0, sizeof(*res));
    if (token != NULL && token[0] == '\0') {
        token = NULL;
    }
    if ((rc = mg_sigv4_canon_check(req, creds, res)) != MG_OK) {
        return rc;
    }
    if (now < 0 || (int64_t)t != now || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
        strftime(res->amz_date, sizeof(res->amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16) {
        return fail(res, "time out of range");
    }
    memcpy(date, res->amz_date, 8);
    date[8] = '\0';
    if (EVP_Digest(req->body_len > 0 ? req->body : "", req->body_len, digest, &dlen,
                   EVP_sha256(), NULL) != 1) {
        return fail(res, "SHA-256 failed");
    }
    mg_sigv4_hex(digest, 32, res->payload_hash);

    if ((rc = mg_sigv4_canon_hash(req, token, res, names, creq_hash)) != MG_OK) {
        return rc;
    }

    snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, req->region, req->service);
    n = snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", res->amz_date, scope,
                 creq_hash);
    if (n < 0 || (size_t)n >= sizeof(sts)) {
        return fail(res, "string to sign too long");
    }
    if (req->sts_out != NULL && mg_buf_add(req->sts_out, sts, (size_t)n) != MG_OK) {
        res->error = "string to sign passes its buffer's cap";
        return MG_ETOOBIG;
    }
    rc = signing_key(cache, creds->secret_access_key, date, req->region, req->service, key);
    rc = rc == MG_OK ? hmac(key, 32, sts, (size_t)n, sig) : rc;
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != MG_OK) {
        return fail(res, "HMAC-SHA256 failed");
    }
    mg_sigv4_hex(sig, 32, res->signature);

    n = snprintf(res->authorization, sizeof(res->authorization),
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 creds->access_key_id, scope, names, res->signature);
    if (n < 0 || (size_t)n >= sizeof(res->authorization)) {
        res->authorization[0] = '\0';
        res->error = "Authorization value too long";
        return MG_ETOOBIG;
    }

    res->headers[res->nheaders++] = (struct mg_sigv4_header){ "x-amz-date", res->amz_date };
    if (req->payload_header) {
        res->headers[res->nheaders++] =
            (struct mg_sigv4_header){ "x-amz-content-sha256", res->payload_hash };
    }
    if (token != NULL) {
        res->headers[res->nheaders++] = (struct mg_sigv4_header){ "x-amz-security-token", token };
    }
    res->headers[res->nheaders++] =
        (struct mg_sigv4_header){ "authorization", res->authorization };
    return MG_OK;
}
