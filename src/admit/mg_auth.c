/*
 * mg_auth — client keys: the presented credential, its digest lookup, allow-lists, and the calls
 * into the key's buckets (mg_limit) that admission, the proxy and a reload make.
 *
 * The lookup is a linear scan over the snapshot's keys (tens of keys: a few hundred ns, well
 * under the cost of the SHA-256 itself), which keeps it trivially constant-time: every digest is
 * compared, whatever matched.
 */
/*
 * SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but the EVP one-shot
 * (SHA256(), EVP_Digest) fetches the algorithm from the provider on every call: measured at
 * about 9,000 instructions a request, against about 2,000 for the direct functions.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "mg_auth.h"
#include "mg_limit.h"
#include "mg_util.h"

void
mg_auth_digest(const char *key, size_t len, unsigned char out[MG_AUTH_DIGEST_LEN])
{
    SHA256_CTX ctx;

    SHA256_Init(&ctx);
    SHA256_Update(&ctx, key, len);
    SHA256_Final(out, &ctx);
    OPENSSL_cleanse(&ctx, sizeof(ctx));
}

int
mg_auth_parse_hex(const char *s, unsigned char out[MG_AUTH_DIGEST_LEN])
{
    size_t i;

    if (strlen(s) != 2 * MG_AUTH_DIGEST_LEN) {
        return -1;
    }
    for (i = 0; i < MG_AUTH_DIGEST_LEN; i++) {
        int hi = mg_hexval((unsigned char)s[2 * i]);
        int lo = mg_hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static int
blank(char c)
{
    return c == ' ' || c == '\t';
}

/* s without surrounding blanks; NULL when nothing is left. */
static const char *
trimmed(const char *s, size_t *len)
{
    size_t n;

    while (blank(*s)) {
        s++;
    }
    n = strlen(s);
    while (n > 0 && blank(s[n - 1])) {
        n--;
    }
    *len = n;
    return n > 0 ? s : NULL;
}

const char *
mg_auth_credential(mg_auth_header_fn get_header, void *arg, size_t *len)
{
    const char *v;

    *len = 0;
    if ((v = get_header(arg, "authorization")) != NULL) {
        while (blank(*v)) {
            v++;
        }
        if (strncasecmp(v, "bearer", 6) != 0 || !blank(v[6])) {
            return NULL;
        }
        return trimmed(v + 7, len);
    }
    if ((v = get_header(arg, "api-key")) != NULL || (v = get_header(arg, "x-api-key")) != NULL) {
        return trimmed(v, len);
    }
    return NULL;
}

const struct mg_key *
mg_auth_find(const struct mg_key *keys, size_t n, const char *cred, size_t len)
{
    unsigned char d[MG_AUTH_DIGEST_LEN];
    const struct mg_key *found = NULL;
    size_t i;

    if (cred == NULL) {
        return NULL;
    }
    mg_auth_digest(cred, len, d);
    for (i = 0; i < n; i++) {
        /* no early exit: every key costs the same compare */
        if (CRYPTO_memcmp(d, keys[i].digest, MG_AUTH_DIGEST_LEN) == 0) {
            found = &keys[i];
        }
    }
    OPENSSL_cleanse(d, sizeof(d));
    return found;
}

int
mg_auth_matches(const char *cred, size_t len, const unsigned char digest[MG_AUTH_DIGEST_LEN])
{
    unsigned char d[MG_AUTH_DIGEST_LEN];
    int eq;

    mg_auth_digest(cred, len, d);
    eq = CRYPTO_memcmp(d, digest, MG_AUTH_DIGEST_LEN) == 0;
    OPENSSL_cleanse(d, sizeof(d));
    return eq;
}

int
mg_auth_allows(const struct mg_key *key, const char *model, size_t len)
{
    size_t i, n;

    if (key == NULL || key->models == NULL) {
        return 1;
    }
    for (i = 0; i < key->nmodels; i++) {
        const char *p = key->models[i];
        n = strlen(p);
        if (n > 0 && p[n - 1] == '*') {
            if (len >= n - 1 && memcmp(p, model, n - 1) == 0) {
                return 1;
            }
        } else if (n == len && memcmp(p, model, len) == 0) {
            return 1;
        }
    }
    return 0;
}

int
mg_auth_limited(const struct mg_key *key)
{
    return key != NULL && (key->requests_per_minute > 0 || key->tokens_per_minute > 0);
}

int
mg_auth_is_ratelimit_header(const char *name)
{
    return strncasecmp(name, "x-ratelimit-", 12) == 0;
}

int
mg_auth_admit(const struct mg_key *key, int64_t now, int64_t tokens, int64_t *reserved,
              struct mg_limit_header *hdrs, size_t *nhdrs)
{
    struct mg_limit_info info;
    int ok;

    *nhdrs = 0;
    *reserved = 0;
    if (!mg_auth_limited(key)) {
        return 1;
    }
    ok = mg_limit_admit(key->limit, now, tokens, &info);
    if (!ok) {
        *nhdrs = mg_limit_headers(&info, hdrs);
    }
    *reserved = info.reserved;
    return ok;
}

size_t
mg_auth_headers(const struct mg_key *key, int64_t now, struct mg_limit_header *hdrs)
{
    struct mg_limit_info info;

    if (!mg_auth_limited(key)) {
        return 0;
    }
    mg_limit_peek(key->limit, now, &info);
    return mg_limit_headers(&info, hdrs);
}

void
mg_auth_settle(const struct mg_key *key, int64_t reserved, int64_t input, int64_t output,
               int64_t now)
{
    /* the bucket's own limit decides (a reload may have changed it since the admission) */
    if (key != NULL && key->limit != NULL) {
        mg_limit_settle(key->limit, reserved, mg_tokens_add(input, output), now);
    }
}

void
mg_auth_apply(struct mg_limit_store *store, struct mg_key *keys, size_t n, int64_t now)
{
    size_t i;

    for (i = 0; i < n; i++) {
        keys[i].limit = mg_limit_get(store, keys[i].name);
        mg_limit_configure(keys[i].limit, keys[i].requests_per_minute, keys[i].tokens_per_minute,
                           now);
    }
}

void
mg_auth_keys_free(struct mg_key *keys, size_t n)
{
    size_t i, j;

    for (i = 0; keys != NULL && i < n; i++) {
        free(keys[i].name);
        for (j = 0; j < keys[i].nmodels; j++) {
            free(keys[i].models[j]);
        }
        free(keys[i].models);
        free(keys[i].catalog_json);
    }
    free(keys);
}
