/*
 * fakeai_cloud — fakeai's cloud credential endpoints, so the credential sources can be tested
 * offline, and the credentials the fake Bedrock and Azure accept:
 *
 *   POST / (a form with Action=...)            AWS STS: AssumeRoleWithWebIdentity (token
 *                                              "fake-web-identity-token", any RoleArn) and
 *                                              AssumeRole (SigV4-signed, service sts, with a
 *                                              credential the fake accepts); XML answers
 *   PUT /latest/api/token                      EC2 IMDSv2: a session token (the TTL header is
 *                                              required); then GET
 *   /latest/meta-data/iam/security-credentials/[fake-role]  with that token: the role, its
 *                                              credentials as JSON
 *   GET /container/credentials                 ECS/EKS container credentials; Authorization must
 *                                              be "fake-container-token"
 *   POST /{tenant}/oauth2/v2.0/token           Microsoft Entra ID client credentials (client_id
 *                                              fake-client, client_secret fake-client-secret,
 *                                              scope https://cognitiveservices.azure.com/.default)
 *   GET /msi/token?resource=R&api-version=V    App Service managed identity (X-IDENTITY-HEADER
 *                                              "fake-identity-header"); expires_on
 *   GET /metadata/identity/oauth2/token?...    Azure IMDS managed identity (Metadata: true)
 *
 * Every credential and token issued lives --cred-ttl seconds (default 3600); with
 * --cred-delay-ms N every credential answer but the first comes N ms late, with
 * --cred-fail-after N every credential request after the Nth is answered 500 ("cred_outage"
 * in the stats). The fake Bedrock
 * accepts FAKEAKID/fake-secret, every --aws-cred AKID:SECRET and the unexpired credentials it
 * issued (with their session token); the fake Azure accepts an unexpired Bearer token it issued
 * (or any api-key). GET /_fake/stats adds the count of each kind of credential request and the
 * last key id Bedrock accepted ("bedrock_akid"), the last bearer Azure accepted ("azure_bearer").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "fakeai_cloud.h"
#include "mg_sigv4.h"
#include "mg_util.h"

#define ISSUED_MAX 256
#define STATIC_MAX 8
#define WEB_TOKEN  "fake-web-identity-token"

struct issued {
    char    akid[32];
    char    secret[48];
    char    token[64];   /* the session token, or the bearer token */
    int64_t expires;     /* Unix seconds */
};

static struct {
    struct event_base *base;
    long          delay_ms;   /* --cred-delay-ms: every credential answer but the first waits */
    long          fail_after; /* --cred-fail-after N: credential answers after the Nth are 500 */
    long          answered;
    long          taken;      /* credential requests seen */
    long          n_outage;   /* of them answered 500 by --cred-fail-after */
    long          ttl;
    struct issued aws[ISSUED_MAX];
    size_t        naws;
    struct issued bearer[ISSUED_MAX];
    size_t        nbearer;
    char          stat_akid[STATIC_MAX][64];
    char          stat_secret[STATIC_MAX][64];
    size_t        nstatic;
    char          imds_token[64];
    long          n_sts_web, n_sts_role, n_imds, n_imds_token, n_container, n_entra, n_msi,
                  n_msi_imds, seq;
    char          bedrock_akid[64];
    char          azure_bearer[64];
} c = {.ttl = 3600};

static const char *
hv(struct evhttp_request *req, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void
reply(struct evhttp_request *req, int status, const char *ctype, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
}

static void
reply_j(struct evhttp_request *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    reply(req, status, "application/json", s);
    free(s);
    json_decref(j);
}

int
fake_cloud_option(const char *name, const char *arg)
{
    if (strcmp(name, "cred-fail-after") == 0) {
        c.fail_after = strtol(arg, NULL, 10);
        return 0;
    }
    if (strcmp(name, "cred-delay-ms") == 0) {
        c.delay_ms = strtol(arg, NULL, 10);
        return 0;
    }
    if (strcmp(name, "cred-ttl") == 0) {
        c.ttl = strtol(arg, NULL, 10);
        return 0;
    }
    if (strcmp(name, "aws-cred") == 0 && c.nstatic < STATIC_MAX && strchr(arg, ':') != NULL) {
        snprintf(c.stat_akid[c.nstatic], sizeof(c.stat_akid[0]), "%.*s",
                 (int)(strchr(arg, ':') - arg), arg);
        snprintf(c.stat_secret[c.nstatic], sizeof(c.stat_secret[0]), "%s", strchr(arg, ':') + 1);
        c.nstatic++;
        return 0;
    }
    return -1;
}

/* A new AWS credential (AKIDFAKE<n>), kept so that Bedrock and STS accept it until it expires. */
static struct issued *
issue_aws(void)
{
    struct issued *i = &c.aws[c.naws++ % ISSUED_MAX];

    c.seq++;
    snprintf(i->akid, sizeof(i->akid), "ASIAFAKE%ld", c.seq);
    snprintf(i->secret, sizeof(i->secret), "fake-issued-secret-%ld", c.seq);
    snprintf(i->token, sizeof(i->token), "fake-session+token/%ld=", c.seq);
    i->expires = (int64_t)time(NULL) + c.ttl;
    return i;
}

static const char *
issue_bearer(const char *prefix)
{
    struct issued *i = &c.bearer[c.nbearer++ % ISSUED_MAX];

    c.seq++;
    snprintf(i->token, sizeof(i->token), "%s-%ld", prefix, c.seq);
    i->expires = (int64_t)time(NULL) + c.ttl;
    return i->token;
}

static void
iso_time(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *
fake_cloud_aws_secret(const char *akid, const char *token, const char **why)
{
    size_t i;

    if (strcmp(akid, "FAKEAKID") == 0) {
        return "fake-secret";
    }
    for (i = 0; i < c.nstatic; i++) {
        if (strcmp(akid, c.stat_akid[i]) == 0) {
            return c.stat_secret[i];
        }
    }
    for (i = 0; i < ISSUED_MAX && i < c.naws; i++) {
        const struct issued *s = &c.aws[i];
        if (strcmp(akid, s->akid) != 0) {
            continue;
        }
        if (token == NULL || strcmp(token, s->token) != 0) {
            *why = "The security token included in the request is invalid.";
            return NULL;
        }
        if ((int64_t)time(NULL) >= s->expires) {
            *why = "The security token included in the request is expired";
            return NULL;
        }
        return s->secret;
    }
    *why = "The security token included in the request is invalid.";
    return NULL;
}

void
fake_cloud_seen_akid(const char *akid)
{
    snprintf(c.bedrock_akid, sizeof(c.bedrock_akid), "%s", akid);
}

int
fake_cloud_bearer_ok(const char *auth)
{
    size_t i;

    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
        return 0;
    }
    for (i = 0; i < ISSUED_MAX && i < c.nbearer; i++) {
        if (strcmp(auth + 7, c.bearer[i].token) == 0 && (int64_t)time(NULL) < c.bearer[i].expires) {
            snprintf(c.azure_bearer, sizeof(c.azure_bearer), "%s", auth + 7);
            return 1;
        }
    }
    return 0;
}

void
fake_cloud_stats(json_t *j)
{
    json_object_set_new(j, "sts_web", json_integer(c.n_sts_web));
    json_object_set_new(j, "sts_role", json_integer(c.n_sts_role));
    json_object_set_new(j, "imds_token", json_integer(c.n_imds_token));
    json_object_set_new(j, "imds", json_integer(c.n_imds));
    json_object_set_new(j, "container", json_integer(c.n_container));
    json_object_set_new(j, "entra", json_integer(c.n_entra));
    json_object_set_new(j, "msi", json_integer(c.n_msi));
    json_object_set_new(j, "msi_imds", json_integer(c.n_msi_imds));
    json_object_set_new(j, "cred_outage", json_integer(c.n_outage));
    json_object_set_new(j, "bedrock_akid", json_string(c.bedrock_akid));
    json_object_set_new(j, "azure_bearer", json_string(c.azure_bearer));
}

/* ---- SigV4 verification (Bedrock's and STS's) ---------------------------------------------- */

/* "20150830T123600Z" -> Unix seconds, or -1. */
static int64_t
amz_time(const char *v)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (v == NULL || strlen(v) != 16 ||
        sscanf(v, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

int
fake_sigv4_verify(struct evhttp_request *req, const char *body, size_t len, const char *service,
                  const char **type, const char **msg)
{
    const char *auth = hv(req, "authorization"), *uri = evhttp_request_get_uri(req), *q, *secret;
    char akid[64], date[16], region[64], svc[64], signed_h[512], path[2048];
    struct mg_sigv4_header hs[MG_SIGV4_MAX_HEADERS];
    struct mg_sigv4_request sr;
    struct mg_sigv4_result res;
    struct mg_sigv4_creds creds;
    size_t nh = 0;
    int64_t t = amz_time(hv(req, "x-amz-date"));
    char *name, *save = NULL;

    *type = "InvalidSignatureException";
    if (auth == NULL || sscanf(auth, "AWS4-HMAC-SHA256 Credential=%63[^/]/%15[^/]/%63[^/]/"
                                     "%63[^/]/aws4_request, SignedHeaders=%511[^,]", akid, date,
                               region, svc, signed_h) != 5) {
        *type = "AccessDeniedException";
        *msg = "Missing or malformed Authorization";
        return -1;
    }
    secret = fake_cloud_aws_secret(akid, hv(req, "x-amz-security-token"), msg);
    if (secret == NULL) {
        *type = strstr(*msg, "expired") ? "ExpiredTokenException" : "UnrecognizedClientException";
        return -1;
    }
    if (t < 0 || llabs((long long)(t - (int64_t)time(NULL))) > 300 || strcmp(svc, service)) {
        *msg = "Signature expired or bad scope";
        return -1;
    }
    if (strstr(signed_h, "host") == NULL || strstr(signed_h, "x-amz-date") == NULL ||
        strstr(signed_h, "content-type") == NULL) {
        *msg = "host, x-amz-date and content-type must be signed";
        return -1;
    }
    for (name = strtok_r(signed_h, ";", &save); name != NULL; name = strtok_r(NULL, ";", &save)) {
        if (strcmp(name, "host") != 0 && strcmp(name, "x-amz-date") != 0 &&
            strcmp(name, "x-amz-security-token") != 0 && nh < MG_SIGV4_MAX_HEADERS) {
            hs[nh].name = name;
            hs[nh].value = hv(req, name) ? hv(req, name) : "";
            nh++;
        }
    }
    q = strchr(uri, '?');
    snprintf(path, sizeof(path), "%.*s", q ? (int)(q - uri) : (int)strlen(uri), uri);
    memset(&sr, 0, sizeof(sr));
    sr.method = "POST";
    sr.host = hv(req, "host") ? hv(req, "host") : "";
    sr.path = path;
    sr.query = q ? q + 1 : NULL;
    sr.headers = hs;
    sr.nheaders = nh;
    sr.body = len ? body : NULL;
    sr.body_len = len;
    sr.region = region;
    sr.service = svc;
    creds.access_key_id = akid;
    creds.secret_access_key = secret;
    creds.session_token = hv(req, "x-amz-security-token");
    if (mg_sigv4_sign(&sr, &creds, t, NULL, &res) != MG_OK ||
        strcmp(res.authorization, auth) != 0) {
        *msg = "The request signature we calculated does not match the signature you provided.";
        return -1;
    }
    fake_cloud_seen_akid(akid);
    return 0;
}

/* ---- forms ------------------------------------------------------------------------------ */

/* The decoded value of name in an x-www-form-urlencoded body, into out; 0 when found. */
static int
form_get(const char *body, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name), o = 0;
    const char *p = body;

    while (p != NULL && *p) {
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            for (p += nl + 1; *p && *p != '&' && o + 1 < n; p++) {
                if (*p == '%' && mg_hexval(p[1]) >= 0 && mg_hexval(p[2]) >= 0) {
                    out[o++] = (char)(mg_hexval(p[1]) * 16 + mg_hexval(p[2]));
                    p += 2;
                } else {
                    out[o++] = *p == '+' ? ' ' : *p;
                }
            }
            out[o] = '\0';
            return 0;
        }
        p = strchr(p, '&');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

/* ---- STS ------------------------------------------------------------------------------------ */

static void
sts_error(struct evhttp_request *req, int status, const char *code, const char *msg)
{
    char x[1024];

    snprintf(x, sizeof(x), "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
             "<Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
             "<RequestId>fake</RequestId></ErrorResponse>", code, msg);
    reply(req, status, "text/xml", x);
}

static void
sts_creds(struct evhttp_request *req, const char *action)
{
    struct issued *i = issue_aws();
    char x[2048], exp[32];

    iso_time(i->expires, exp, sizeof(exp));
    /* the token's '+' and '/' sent as XML sends them; '&' escaped as XML must */
    snprintf(x, sizeof(x), "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
             "<%sResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s"
             "</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration>"
             "</Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/fake"
             "</Arn></AssumedRoleUser></%sResult></%sResponse>", action, action, i->akid,
             i->secret, i->token, exp, action, action);
    reply(req, 200, "text/xml", x);
}

static void
sts(struct evhttp_request *req, const char *body, size_t len)
{
    char action[64], role[256], tok[256];
    const char *type, *msg;

    if (form_get(body, "Action", action, sizeof(action)) != 0 ||
        form_get(body, "RoleArn", role, sizeof(role)) != 0 || role[0] == '\0') {
        sts_error(req, 400, "MissingParameter", "Action and RoleArn are required");
        return;
    }
    if (strcmp(action, "AssumeRoleWithWebIdentity") == 0) {
        c.n_sts_web++;
        if (form_get(body, "WebIdentityToken", tok, sizeof(tok)) != 0 || strcmp(tok, WEB_TOKEN)) {
            sts_error(req, 400, "InvalidIdentityToken", "The web identity token is not valid");
            return;
        }
        sts_creds(req, action);
        return;
    }
    if (strcmp(action, "AssumeRole") == 0) {
        c.n_sts_role++;
        if (fake_sigv4_verify(req, body, len, "sts", &type, &msg) != 0) {
            sts_error(req, 403, strcmp(type, "InvalidSignatureException") == 0
                      ? "SignatureDoesNotMatch" : "InvalidClientTokenId", msg);
            return;
        }
        sts_creds(req, action);
        return;
    }
    sts_error(req, 400, "InvalidAction", "Could not find operation");
}

/* ---- AWS metadata --------------------------------------------------------------------------- */

static void
aws_json(struct evhttp_request *req)
{
    struct issued *i = issue_aws();
    char exp[32];

    iso_time(i->expires, exp, sizeof(exp));
    reply_j(req, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "Code", "Success", "Type",
                                "AWS-HMAC", "AccessKeyId", i->akid, "SecretAccessKey", i->secret,
                                "Token", i->token, "Expiration", exp));
}

static int
imds(struct evhttp_request *req, const char *uri)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *tok = hv(req, "x-aws-ec2-metadata-token");

    if (strcmp(uri, "/latest/api/token") == 0) {
        if (cmd != EVHTTP_REQ_PUT || hv(req, "x-aws-ec2-metadata-token-ttl-seconds") == NULL) {
            reply(req, 400, "text/plain", "Missing or invalid parameters");
            return 1;
        }
        c.n_imds_token++;
        snprintf(c.imds_token, sizeof(c.imds_token), "fake-imds-session-%ld", ++c.seq);
        reply(req, 200, "text/plain", c.imds_token);
        return 1;
    }
    if (strncmp(uri, "/latest/meta-data/iam/security-credentials/", 43) != 0) {
        return 0;
    }
    if (tok == NULL || c.imds_token[0] == '\0' || strcmp(tok, c.imds_token) != 0) {
        reply(req, 401, "text/plain", "Unauthorized");   /* IMDSv2 only: no token, no answer */
        return 1;
    }
    if (uri[43] == '\0') {
        reply(req, 200, "text/plain", "fake-role");
    } else if (strcmp(uri + 43, "fake-role") == 0) {
        c.n_imds++;
        aws_json(req);
    } else {
        reply(req, 404, "text/plain", "Not Found");
    }
    return 1;
}

/* ---- Entra ID and managed identity ----------------------------------------------------- */

static void
entra(struct evhttp_request *req, const char *body)
{
    char grant[64], id[64], secret[64], scope[128];

    c.n_entra++;
    if (form_get(body, "grant_type", grant, sizeof(grant)) || strcmp(grant, "client_credentials")
        || form_get(body, "scope", scope, sizeof(scope)) ||
        strcmp(scope, "https://cognitiveservices.azure.com/.default")) {
        reply_j(req, 400, json_pack("{s:s,s:s}", "error", "invalid_request", "error_description",
                                    "AADSTS900144: grant_type and scope are required"));
        return;
    }
    if (form_get(body, "client_id", id, sizeof(id)) || strcmp(id, "fake-client") ||
        form_get(body, "client_secret", secret, sizeof(secret)) ||
        strcmp(secret, "fake-client-secret")) {
        reply_j(req, 401, json_pack("{s:s,s:s}", "error", "invalid_client", "error_description",
                                    "AADSTS7000215: Invalid client secret provided."));
        return;
    }
    reply_j(req, 200, json_pack("{s:s,s:I,s:I,s:s}", "token_type", "Bearer", "expires_in",
                                (json_int_t)c.ttl, "ext_expires_in", (json_int_t)c.ttl,
                                "access_token", issue_bearer("fake-entra")));
}

static void
msi(struct evhttp_request *req, const char *uri)
{
    const char *h = hv(req, "x-identity-header");
    char on[32];

    c.n_msi++;
    if (h == NULL || strcmp(h, "fake-identity-header") != 0) {
        reply_j(req, 401, json_pack("{s:s}", "error", "bad X-IDENTITY-HEADER"));
        return;
    }
    if (strstr(uri, "resource=https%3A%2F%2Fcognitiveservices.azure.com") == NULL ||
        strstr(uri, "api-version=2019-08-01") == NULL) {
        reply_j(req, 400, json_pack("{s:s}", "error", "resource and api-version are required"));
        return;
    }
    snprintf(on, sizeof(on), "%lld", (long long)time(NULL) + c.ttl);
    reply_j(req, 200, json_pack("{s:s,s:s,s:s,s:s}", "access_token", issue_bearer("fake-msi"),
                                "expires_on", on, "resource", "https://cognitiveservices.azure.com",
                                "token_type", "Bearer"));
}

static void
msi_imds(struct evhttp_request *req, const char *uri)
{
    const char *h = hv(req, "metadata");
    char in[32];

    c.n_msi_imds++;
    if (h == NULL || strcmp(h, "true") != 0 || strstr(uri, "api-version=") == NULL ||
        strstr(uri, "resource=https%3A%2F%2Fcognitiveservices.azure.com") == NULL) {
        reply_j(req, 400, json_pack("{s:s}", "error", "invalid_request"));
        return;
    }
    snprintf(in, sizeof(in), "%ld", c.ttl);
    reply_j(req, 200, json_pack("{s:s,s:s,s:s,s:s}", "access_token",
                                issue_bearer("fake-mi-imds"), "expires_in", in, "resource",
                                "https://cognitiveservices.azure.com", "token_type", "Bearer"));
}

/* Answers the credential request req now: 1 when it was one (dry: only says whether). */
static int handle_now(struct evhttp_request *req, int dry);

static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
    handle_now(arg, 0);
}

int
fake_cloud_handle(struct event_base *base, struct evhttp_request *req)
{
    struct timeval tv;

    if (!handle_now(req, 1)) {
        return 0;
    }
    if (c.fail_after > 0 && ++c.taken > c.fail_after) {   /* an outage of the endpoint */
        c.n_outage++;
        reply(req, 500, "text/plain", "fake credential endpoint outage");
        return 1;
    }
    if (c.delay_ms > 0 && c.answered++ > 0) {   /* a refresh: slow, the gateway must not wait */
        tv.tv_sec = c.delay_ms / 1000;
        tv.tv_usec = (c.delay_ms % 1000) * 1000;
        event_base_once(base, -1, EV_TIMEOUT, on_delay, req, &tv);
        return 1;
    }
    return handle_now(req, 0);
}

static int
handle_now(struct evhttp_request *req, int dry)
{
    const char *uri = evhttp_request_get_uri(req), *ct = hv(req, "content-type");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    char *b;

    if (dry) {
        return strncmp(uri, "/latest/", 8) == 0 || strcmp(uri, "/container/credentials") == 0 ||
               strncmp(uri, "/msi/token", 10) == 0 ||
               strncmp(uri, "/metadata/identity/oauth2/token", 31) == 0 ||
               (evhttp_request_get_command(req) == EVHTTP_REQ_POST && ct != NULL &&
                strncmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
                (strcmp(uri, "/") == 0 || strstr(uri, "/oauth2/v2.0/token") != NULL));
    }
    if (imds(req, uri)) {
        return 1;
    }
    if (strcmp(uri, "/container/credentials") == 0) {
        c.n_container++;
        if (hv(req, "authorization") == NULL ||
            strcmp(hv(req, "authorization"), "fake-container-token") != 0) {
            reply_j(req, 401, json_pack("{s:s}", "message", "bad authorization"));
        } else {
            aws_json(req);
        }
        return 1;
    }
    if (strncmp(uri, "/msi/token", 10) == 0) {
        msi(req, uri);
        return 1;
    }
    if (strncmp(uri, "/metadata/identity/oauth2/token", 31) == 0) {
        msi_imds(req, uri);
        return 1;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || ct == NULL ||
        strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        return 0;
    }
    b = mg_strndup(body, len);   /* the forms are read as C strings */
    if (strcmp(uri, "/") == 0) {
        sts(req, b, len);
    } else if (strstr(uri, "/oauth2/v2.0/token") != NULL) {
        entra(req, b);
    } else {
        free(b);
        return 0;
    }
    free(b);
    return 1;
}
