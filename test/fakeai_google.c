/*
 * fakeai_google — Google's OAuth side, so Vertex AI backends can be tested offline:
 *
 *   POST /token   a service account's token endpoint (the key file's token_uri): the form must be
 *                 grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT, the JWT's
 *                 RS256 signature is VERIFIED with the public key of the service account given by
 *                 --google-sa FILE (its JSON key, which the test writes with a key it made), and
 *                 its claims checked: iss = client_email, aud = token_uri, scope cloud-platform,
 *                 exp - iat at most 3600 s, iat within 5 minutes of now. Else 400 invalid_grant.
 *   GET /computeMetadata/v1/instance/service-accounts/default/token
 *                 the GCE/GKE metadata server: needs Metadata-Flavor: Google (else 403)
 *
 * Both answer {"access_token","expires_in","token_type":"Bearer"}; tokens live --cred-ttl
 * seconds (default 3600). A token is "ya29.fake.<who>.<expiry>.<HMAC>": any fakeai can check one
 * another issued (fake_google_token_ok), which the Vertex endpoints do (fakeai_providers.c).
 * /_fake/stats reports "tokens" (issued) and "bad_jwts" (refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define SECRET "fakeai-google-secret"
#define GRANT  "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
#define SCOPE  "https://www.googleapis.com/auth/cloud-platform"

static struct {
    const char *sa_path;    /* --google-sa: read at each token request (the test writes it after
                             * the fakes start, once it knows their ports) */
    EVP_PKEY *pub;          /* the service account's public key */
    char      email[256];
    char      token_uri[512];
    long      ttl;
    long      tokens;
    long      bad_jwts;
} gg = {NULL, NULL, "", "", 3600, 0, 0};

void fake_google_config(const char *sa_path, long ttl);
int fake_google_auth(struct evhttp_request *req);
int fake_google_token_ok(const char *authorization);
void fake_google_stats(json_t *stats);

void
fake_google_config(const char *sa_path, long ttl)
{
    gg.sa_path = sa_path;
    gg.ttl = ttl > 0 ? ttl : 3600;
}

/* Reads the service account's key file: its email, token_uri and the public half of its key. */
static void
load_sa(void)
{
    json_t *j = gg.sa_path != NULL ? json_load_file(gg.sa_path, 0, NULL) : NULL;
    const char *pem = json_string_value(json_object_get(j, "private_key"));
    EVP_PKEY *priv = NULL;
    BIO *in, *out;
    char *p;
    long n;

    EVP_PKEY_free(gg.pub);
    gg.pub = NULL;
    if (pem == NULL) {
        json_decref(j);
        return;
    }
    snprintf(gg.email, sizeof(gg.email), "%s",
             json_string_value(json_object_get(j, "client_email")));
    snprintf(gg.token_uri, sizeof(gg.token_uri), "%s",
             json_string_value(json_object_get(j, "token_uri")));
    in = BIO_new_mem_buf(pem, -1);
    priv = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    /* keep only the public key, as Google does: written out and read back */
    out = BIO_new(BIO_s_mem());
    if (priv != NULL && PEM_write_bio_PUBKEY(out, priv) == 1 &&
        (n = BIO_get_mem_data(out, &p)) > 0) {
        BIO *pb = BIO_new_mem_buf(p, (int)n);
        gg.pub = PEM_read_bio_PUBKEY(pb, NULL, NULL, NULL);
        BIO_free(pb);
    }
    EVP_PKEY_free(priv);
    BIO_free(in);
    BIO_free(out);
    json_decref(j);
}

static void
reply(struct evhttp_request *req, int status, json_t *j)
{
    struct evbuffer *b = evbuffer_new();
    char *s = json_dumps(j, JSON_COMPACT);

    evbuffer_add(b, s, strlen(s));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
    free(s);
    json_decref(j);
}

static void
hmac_hex(const char *msg, char *out)
{
    unsigned char mac[32];
    unsigned int n = sizeof(mac), i;

    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)msg, strlen(msg), mac,
         &n);
    for (i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
}

static void
issue(struct evhttp_request *req, const char *who)
{
    char body[256], mac[65], token[512];
    long long exp = (long long)time(NULL) + gg.ttl;

    snprintf(body, sizeof(body), "%s.%lld", who, exp);
    hmac_hex(body, mac);
    snprintf(token, sizeof(token), "ya29.fake.%s.%s", body, mac);
    gg.tokens++;
    reply(req, 200, json_pack("{s:s,s:i,s:s}", "access_token", token, "expires_in", (int)gg.ttl,
                              "token_type", "Bearer"));
}

int
fake_google_token_ok(const char *authorization)
{
    char body[256], mac[65];
    const char *t, *dot;
    long long exp;

    if (authorization == NULL || strncmp(authorization, "Bearer ya29.fake.", 17) != 0) {
        return 0;
    }
    t = authorization + 17;
    dot = strrchr(t, '.');
    if (dot == NULL || (size_t)(dot - t) >= sizeof(body)) {
        return 0;
    }
    snprintf(body, sizeof(body), "%.*s", (int)(dot - t), t);
    hmac_hex(body, mac);
    exp = strtoll(strrchr(body, '.') ? strrchr(body, '.') + 1 : "0", NULL, 10);
    return strcmp(mac, dot + 1) == 0 && exp > (long long)time(NULL);
}

/* base64url text into bytes (*n); NULL when it is not base64url. */
static unsigned char *
unb64url(const char *s, size_t len, size_t *n)
{
    size_t i, padded = (len + 3) / 4 * 4;
    char *b = calloc(1, padded + 1);
    unsigned char *out = calloc(1, padded + 1);
    int m;

    for (i = 0; i < padded; i++) {
        char c = i < len ? s[i] : '=';
        b[i] = c == '-' ? '+' : c == '_' ? '/' : c;
        if (i < len && (c == '+' || c == '/' || c == '=')) {
            free(b);
            free(out);
            return NULL;   /* base64url has none of these */
        }
    }
    m = EVP_DecodeBlock(out, (unsigned char *)b, (int)padded);
    free(b);
    if (m < 0) {
        free(out);
        return NULL;
    }
    *n = (size_t)m - (len % 4 == 2 ? 2 : len % 4 == 3 ? 1 : 0);
    return out;
}

/* NULL when the assertion is good, else why not. */
static const char *
check_jwt(const char *jwt)
{
    const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    unsigned char *hdr = NULL, *claims = NULL, *sig = NULL;
    size_t hn = 0, cn = 0, sn = 0;
    json_t *h = NULL, *c = NULL;
    const char *why = NULL;
    EVP_MD_CTX *ctx = NULL;
    long long now = (long long)time(NULL), iat, exp;

    if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL ||
        (hdr = unb64url(jwt, (size_t)(d1 - jwt), &hn)) == NULL ||
        (claims = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cn)) == NULL ||
        (sig = unb64url(d2 + 1, strlen(d2 + 1), &sn)) == NULL ||
        (h = json_loadb((char *)hdr, hn, 0, NULL)) == NULL ||
        (c = json_loadb((char *)claims, cn, 0, NULL)) == NULL) {
        why = "Invalid JWT: not three base64url JSON parts";
        goto done;
    }
    if (json_string_value(json_object_get(h, "alg")) == NULL ||
        strcmp(json_string_value(json_object_get(h, "alg")), "RS256") != 0) {
        why = "Invalid JWT: alg is not RS256";
        goto done;
    }
    ctx = EVP_MD_CTX_new();
    if (gg.pub == NULL || EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, gg.pub) != 1 ||
        EVP_DigestVerifyUpdate(ctx, jwt, (size_t)(d2 - jwt)) != 1 ||
        EVP_DigestVerifyFinal(ctx, sig, sn) != 1) {
        why = "Invalid JWT Signature.";
        goto done;
    }
    iat = json_integer_value(json_object_get(c, "iat"));
    exp = json_integer_value(json_object_get(c, "exp"));
    if (json_string_value(json_object_get(c, "iss")) == NULL ||
        strcmp(json_string_value(json_object_get(c, "iss")), gg.email) != 0) {
        why = "Invalid JWT: iss is not the service account";
    } else if (json_string_value(json_object_get(c, "aud")) == NULL ||
               strcmp(json_string_value(json_object_get(c, "aud")), gg.token_uri) != 0) {
        why = "Invalid JWT: aud is not the token_uri";
    } else if (json_string_value(json_object_get(c, "scope")) == NULL ||
               strcmp(json_string_value(json_object_get(c, "scope")), SCOPE) != 0) {
        why = "Invalid JWT: scope is not cloud-platform";
    } else if (exp - iat > 3600 || exp <= iat || llabs(iat - now) > 300) {
        why = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
              "timeframe.";
    }
done:
    EVP_MD_CTX_free(ctx);
    json_decref(h);
    json_decref(c);
    free(hdr);
    free(claims);
    free(sig);
    return why;
}

int
fake_google_auth(struct evhttp_request *req)
{
    const char *uri = evhttp_request_get_uri(req), *why;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *flavor = evhttp_find_header(evhttp_request_get_input_headers(req),
                                            "Metadata-Flavor");
    char *form;

    if (strcmp(uri, "/computeMetadata/v1/instance/service-accounts/default/token") == 0) {
        if (flavor == NULL || strcmp(flavor, "Google") != 0) {
            reply(req, 403, json_pack("{s:s}", "error", "Missing Metadata-Flavor:Google header"));
        } else {
            issue(req, "metadata");
        }
        return 1;
    }
    if (strcmp(uri, "/token") != 0 || evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        return 0;
    }
    load_sa();
    form = calloc(1, len + 1);
    evbuffer_copyout(in, form, len);
    if (strncmp(form, GRANT, strlen(GRANT)) != 0) {
        why = "Invalid grant_type or no assertion";
    } else {
        why = check_jwt(form + strlen(GRANT));
    }
    if (why != NULL) {
        gg.bad_jwts++;
        reply(req, 400, json_pack("{s:s,s:s}", "error", "invalid_grant", "error_description",
                                  why));
    } else {
        issue(req, "sa");
    }
    OPENSSL_cleanse(form, len);
    free(form);
    return 1;
}

void
fake_google_stats(json_t *stats)
{
    json_object_set_new(stats, "tokens", json_integer(gg.tokens));
    json_object_set_new(stats, "bad_jwts", json_integer(gg.bad_jwts));
}
