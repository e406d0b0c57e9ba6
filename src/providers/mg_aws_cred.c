/*
 * mg_aws_cred — AWS's default credential chain and the `bedrock` credential source built on it
 * (with aws_role_arn: STS AssumeRole over what the chain, or the backend's static keys, give).
 * Every step runs on the source's refresher thread (mg_cred), never on a worker.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "mg_aws_cred.h"

#define META_TIMEOUT_MS   2000           /* instance metadata and container endpoints */
#define META_ANSWER_MAX   (16 * 1024)
#define FILE_MAX          (1024 * 1024)  /* a shared credentials or config file */
#define TOKEN_FILE_MAX    (64 * 1024)    /* a web identity or authorization token file */
#define IMDS_DEFAULT      "http://169.254.169.254"
#define CONTAINER_HOST    "http://169.254.170.2"

static const char *
env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? mg_strdup(s) : NULL;
}

static void
wipe(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ---- pure readers --------------------------------------------------------------------------- */

int
mg_aws_cred_json(const char *text, struct mg_cred **out, char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    const char *id, *secret, *token, *exp, *code;
    int64_t expires = 0;
    int rc = MG_ERR;

    id = json_string_value(json_object_get(j, "AccessKeyId"));
    secret = json_string_value(json_object_get(j, "SecretAccessKey"));
    token = json_string_value(json_object_get(j, "Token"));
    exp = json_string_value(json_object_get(j, "Expiration"));
    code = json_string_value(json_object_get(j, "Code"));
    if (!json_is_object(j)) {
        snprintf(err, errlen, "the credentials answer is not a JSON object");
    } else if (code != NULL && strcmp(code, "Success") != 0) {
        snprintf(err, errlen, "the credentials answer says %.64s", code);
    } else if (id == NULL || secret == NULL || id[0] == '\0' || secret[0] == '\0') {
        snprintf(err, errlen, "the credentials answer has no AccessKeyId and SecretAccessKey");
    } else if (exp != NULL && mg_cred_parse_time(exp, &expires) != MG_OK) {
        snprintf(err, errlen, "the credentials answer has a bad Expiration");
    } else {
        *out = mg_cred_aws(id, secret, token, expires);
        rc = MG_OK;
    }
    json_decref(j);
    return rc;
}

/* Trims white space at both ends of [*a, *b). */
static void
trim(const char **a, const char **b)
{
    while (*a < *b && isspace((unsigned char)**a)) {
        (*a)++;
    }
    while (*b > *a && isspace((unsigned char)(*b)[-1])) {
        (*b)--;
    }
}

void
mg_aws_ini_profile(const char *text, const char *profile, int config, struct mg_aws_profile *out)
{
    const char *p = text;
    int in = 0;

    while (*p != '\0') {
        const char *eol = p + strcspn(p, "\n"), *a = p, *b = eol, *eq;
        p = *eol ? eol + 1 : eol;
        trim(&a, &b);
        if (a == b || *a == '#' || *a == ';') {
            continue;
        }
        if (*a == '[') {
            const char *name = a + 1, *end = b[-1] == ']' ? b - 1 : b;
            trim(&name, &end);
            if (config && strcmp(profile, "default") != 0) {
                /* config: "[profile name]" ("[default]" for the default one) */
                if ((size_t)(end - name) > 8 && strncmp(name, "profile", 7) == 0 &&
                    isspace((unsigned char)name[7])) {
                    name += 8;
                    trim(&name, &end);
                } else {
                    in = 0;
                    continue;
                }
            }
            in = (size_t)(end - name) == strlen(profile) && memcmp(name, profile, strlen(profile))
                 == 0;
            continue;
        }
        eq = memchr(a, '=', (size_t)(b - a));
        if (!in || eq == NULL) {
            continue;
        }
        {
            const char *ka = a, *kb = eq, *va = eq + 1, *vb = b;
            char **dst = NULL;
            trim(&ka, &kb);
            trim(&va, &vb);
#define KEY_IS(s) ((size_t)(kb - ka) == strlen(s) && strncasecmp(ka, s, strlen(s)) == 0)
            if (KEY_IS("aws_access_key_id")) {
                dst = &out->key_id;
            } else if (KEY_IS("aws_secret_access_key")) {
                dst = &out->secret;
            } else if (KEY_IS("aws_session_token")) {
                dst = &out->token;
            } else if (KEY_IS("role_arn")) {
                dst = &out->role_arn;
            } else if (KEY_IS("source_profile")) {
                dst = &out->source_profile;
            } else if (KEY_IS("credential_source")) {
                dst = &out->credential_source;
            } else if (KEY_IS("role_session_name")) {
                dst = &out->session;
            } else if (KEY_IS("region")) {
                dst = &out->region;
            }
#undef KEY_IS
            if (dst != NULL && *dst == NULL && vb > va) {
                *dst = mg_strndup(va, (size_t)(vb - va));
            }
        }
    }
}

/* ---- the chain's sources: each returns 1 when not configured (the next one is tried) ------ */

static int
from_env(struct mg_cred **out, char *err, size_t errlen)
{
    const char *id = env("AWS_ACCESS_KEY_ID"), *secret = env("AWS_SECRET_ACCESS_KEY");

    if (id == NULL && secret == NULL) {
        return 1;
    }
    if (id == NULL || secret == NULL) {
        snprintf(err, errlen, "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must "
                 "both be set");
        return MG_ERR;
    }
    *out = mg_cred_aws(id, secret, env("AWS_SESSION_TOKEN"), 0);
    return MG_OK;
}

static int
from_web_identity(const char *region, struct mg_cred **out, char *err, size_t errlen)
{
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    const char *session = env("AWS_ROLE_SESSION_NAME");
    char *token;
    int rc;

    if (file == NULL || role == NULL) {
        return 1;
    }
    token = mg_cred_read_file(file, TOKEN_FILE_MAX);   /* read each time: it is rotated */
    if (token == NULL || token[0] == '\0') {
        snprintf(err, errlen, "web identity: cannot read AWS_WEB_IDENTITY_TOKEN_FILE %.200s",
                 file);
        free(token);
        return MG_ERR;
    }
    rc = mg_aws_assume_web_identity(env("AWS_REGION") ? env("AWS_REGION")
                                    : env("AWS_DEFAULT_REGION") ? env("AWS_DEFAULT_REGION")
                                    : region, role, session ? session : "modelgate", token, out,
                                    err, errlen);
    wipe(token);
    return rc;
}

void
mg_aws_profile_deinit(struct mg_aws_profile *p)
{
    free(p->key_id);
    wipe(p->secret);
    wipe(p->token);
    free(p->role_arn);
    free(p->source_profile);
    free(p->credential_source);
    free(p->session);
    free(p->region);
    memset(p, 0, sizeof(*p));
}

/* Profile name as the shared files give it (the credentials file wins key by key). */
static void
profile_read(const char *name, struct mg_aws_profile *p)
{
    const char *home = env("HOME");
    const char *cred_path = env("AWS_SHARED_CREDENTIALS_FILE"), *conf_path = env("AWS_CONFIG_FILE");
    char cpath[1024] = "", fpath[1024] = "", *text;

    if (cred_path != NULL || home != NULL) {
        snprintf(cpath, sizeof(cpath), cred_path ? "%s" : "%s/.aws/credentials",
                 cred_path ? cred_path : home);
    }
    if (conf_path != NULL || home != NULL) {
        snprintf(fpath, sizeof(fpath), conf_path ? "%s" : "%s/.aws/config",
                 conf_path ? conf_path : home);
    }
    if (cpath[0] && (text = mg_cred_read_file(cpath, FILE_MAX)) != NULL) {
        mg_aws_ini_profile(text, name, 0, p);
        wipe(text);
    }
    if (fpath[0] && (text = mg_cred_read_file(fpath, FILE_MAX)) != NULL) {
        mg_aws_ini_profile(text, name, 1, p);
        wipe(text);
    }
}

static int from_container(struct mg_cred **out, char *err, size_t errlen);
static int from_imds(struct mg_cred **out, char *err, size_t errlen);

/* A role profile's credentials under the role: its source_profile's keys or its source. */
static int
role_base(const char *profile, const struct mg_aws_profile *p, struct mg_cred **out, char *err,
          size_t errlen)
{
    struct mg_aws_profile q;
    const char *cs = p->credential_source;
    int rc = MG_ERR;

    if (p->source_profile != NULL) {   /* one level: the source profile's static keys */
        memset(&q, 0, sizeof(q));
        profile_read(p->source_profile, &q);
        if (q.key_id != NULL && q.secret != NULL) {
            *out = mg_cred_aws(q.key_id, q.secret, q.token, 0);
            rc = MG_OK;
        } else {
            snprintf(err, errlen, "shared files: source_profile %.64s of profile %.64s has no "
                     "aws_access_key_id and aws_secret_access_key", p->source_profile, profile);
        }
        mg_aws_profile_deinit(&q);
        return rc;
    }
    rc = cs == NULL ? 1
       : strcmp(cs, "Environment") == 0 ? from_env(out, err, errlen)
       : strcmp(cs, "Ec2InstanceMetadata") == 0 ? from_imds(out, err, errlen)
       : strcmp(cs, "EcsContainer") == 0 ? from_container(out, err, errlen) : 2;
    if (rc == 1 || rc == 2) {
        snprintf(err, errlen, "shared files: profile %.64s: role_arn needs source_profile or "
                 "credential_source (Environment, Ec2InstanceMetadata or EcsContainer)%s",
                 profile, rc == 1 && cs != NULL ? ", which gave none" : "");
        return MG_ERR;
    }
    return rc;
}

static int
from_files(const char *region, struct mg_cred **out, char *err, size_t errlen)
{
    const char *profile = env("AWS_PROFILE");
    struct mg_aws_profile p;
    struct mg_cred *base = NULL;
    int rc = 1;

    profile = profile ? profile : env("AWS_DEFAULT_PROFILE") ? env("AWS_DEFAULT_PROFILE")
                                                               : "default";
    memset(&p, 0, sizeof(p));
    profile_read(profile, &p);
    if (p.role_arn != NULL) {   /* a role profile: assumed with its source's credentials */
        rc = role_base(profile, &p, &base, err, errlen);
        if (rc == MG_OK) {
            rc = mg_aws_assume_role_as(p.region ? p.region : region, p.role_arn,
                                       p.session ? p.session : "modelgate", base, out, err,
                                       errlen);
        }
        mg_cred_unref(base);
    } else if (p.key_id != NULL && p.secret != NULL) {
        *out = mg_cred_aws(p.key_id, p.secret, p.token, 0);
        rc = MG_OK;
    } else if (p.key_id != NULL || p.secret != NULL) {
        snprintf(err, errlen, "shared files: profile %.64s has only one of aws_access_key_id "
                 "and aws_secret_access_key", profile);
        rc = MG_ERR;
    }
    mg_aws_profile_deinit(&p);
    return rc;
}

/* A full URI AWS allows over plain http: loopback, or the ECS/EKS agent's addresses. */
static int
container_host_ok(const char *url)
{
    char host[256];
    const char *path;
    unsigned char a[16];
    size_t n;

    if (strncmp(url, "https://", 8) == 0) {
        return 1;
    }
    if (strncmp(url, "http://", 7) != 0 || mg_aws_split_url(url, host, sizeof(host), &path)) {
        return 0;
    }
    if (host[0] == '[') {   /* [v6]:port */
        char *e = strchr(host, ']');
        if (e == NULL) {
            return 0;
        }
        *e = '\0';
        memmove(host, host + 1, strlen(host));
    } else if ((n = strcspn(host, ":")) < strlen(host)) {
        host[n] = '\0';
    }
    if (strcmp(host, "localhost") == 0 || strcmp(host, "169.254.170.2") == 0 ||
        strcmp(host, "169.254.170.23") == 0) {
        return 1;
    }
    if (inet_pton(AF_INET, host, a) == 1) {
        return a[0] == 127;
    }
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char lo[16] = {[15] = 1};
        static const unsigned char eks[16] = {0xfd, 0, 0x0e, 0xc2, [15] = 0x23};
        return memcmp(a, lo, 16) == 0 || memcmp(a, eks, 16) == 0;
    }
    return 0;
}

static int
from_container(struct mg_cred **out, char *err, size_t errlen)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    const char *tfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *headers[2] = {NULL, NULL};
    char url[2048], *auth = NULL, *t = NULL;
    struct mg_cred_http rq = {"GET", url, headers, NULL, 0, META_TIMEOUT_MS, META_ANSWER_MAX, 1};
    struct mg_buf answer;
    long status;
    int rc;

    if (rel == NULL && full == NULL) {
        return 1;
    }
    if (rel != NULL) {
        snprintf(url, sizeof(url), "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
    } else if (!container_host_ok(full)) {
        snprintf(err, errlen, "container: AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or "
                 "http to a loopback or the container agent's address");
        return MG_ERR;
    } else {
        snprintf(url, sizeof(url), "%s", full);
    }
    if (tfile != NULL) {
        t = mg_cred_read_file(tfile, TOKEN_FILE_MAX);   /* read each time: it is rotated */
        if (t == NULL) {
            snprintf(err, errlen, "container: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
            return MG_ERR;
        }
        tok = t;
    }
    if (tok != NULL) {
        size_t n = strlen(tok) + sizeof("Authorization: ");
        auth = mg_malloc(n);
        snprintf(auth, n, "Authorization: %s", tok);
        headers[0] = auth;
    }
    rc = mg_cred_http_do(&rq, &status, &answer, err, errlen);
    if (rc == MG_OK && status != 200) {
        snprintf(err, errlen, "container: the credentials endpoint answered %ld", status);
        rc = MG_ERR;
    } else if (rc == MG_OK) {
        rc = mg_aws_cred_json(answer.data ? answer.data : "", out, err, errlen);
    }
    explicit_bzero(answer.data, answer.len);
    mg_buf_deinit(&answer);
    wipe(auth);
    wipe(t);
    return rc;
}

/* One IMDS call: MG_OK with a 200's body in out, else MG_ERR with why. */
static int
imds(const char *method, const char *base, const char *path, const char *header,
     struct mg_buf *out, char *err, size_t errlen)
{
    const char *headers[2] = {header, NULL};
    char url[1024];
    struct mg_cred_http rq = {method, url, headers, NULL, 0, META_TIMEOUT_MS, META_ANSWER_MAX, 1};
    long status;

    snprintf(url, sizeof(url), "%s%s", base, path);
    if (mg_cred_http_do(&rq, &status, out, err, errlen) != MG_OK) {
        return MG_ERR;
    }
    if (status != 200) {
        snprintf(err, errlen, "instance metadata: %s %s answered %ld", method, path, status);
        return MG_ERR;
    }
    return MG_OK;
}

static int
from_imds(struct mg_cred **out, char *err, size_t errlen)
{
    const char *dis = env("AWS_EC2_METADATA_DISABLED"), *ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    char base[512], hdr[256], path[512];
    struct mg_buf b;
    size_t n;
    int rc;

    if (dis != NULL && strcasecmp(dis, "true") == 0) {
        return 1;
    }
    snprintf(base, sizeof(base), "%s", ep ? ep : IMDS_DEFAULT);
    n = strlen(base);
    while (n > 0 && base[n - 1] == '/') {
        base[--n] = '\0';
    }
    /* IMDSv2: a session token first, sent with each read */
    rc = imds("PUT", base, "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 21600",
              &b, err, errlen);
    if (rc == MG_OK && (b.len == 0 || b.len > 200)) {
        snprintf(err, errlen, "instance metadata: no usable session token");
        rc = MG_ERR;
    }
    if (rc != MG_OK) {
        mg_buf_deinit(&b);
        return MG_ERR;
    }
    snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %s", b.data);
    mg_buf_deinit(&b);
    rc = imds("GET", base, "/latest/meta-data/iam/security-credentials/", hdr, &b, err, errlen);
    if (rc == MG_OK) {
        size_t rl = strcspn(b.data ? b.data : "", "\r\n");
        if (rl == 0 || rl > 128) {
            snprintf(err, errlen, "instance metadata: no IAM role on this instance");
            rc = MG_ERR;
        } else {
            snprintf(path, sizeof(path), "/latest/meta-data/iam/security-credentials/%.*s",
                     (int)rl, b.data);
        }
    }
    mg_buf_deinit(&b);
    if (rc == MG_OK) {
        rc = imds("GET", base, path, hdr, &b, err, errlen);
        if (rc == MG_OK) {
            rc = mg_aws_cred_json(b.data ? b.data : "", out, err, errlen);
        }
        explicit_bzero(b.data, b.len);
        mg_buf_deinit(&b);
    }
    explicit_bzero(hdr, sizeof(hdr));
    return rc;
}

int
mg_aws_chain(const char *region, struct mg_cred **out, char *err, size_t errlen)
{
    int rc;

    *out = NULL;
    if ((rc = from_env(out, err, errlen)) != 1) {
        return rc;
    }
    if ((rc = from_web_identity(region, out, err, errlen)) != 1) {
        return rc;
    }
    if ((rc = from_files(region, out, err, errlen)) != 1) {
        return rc;
    }
    if ((rc = from_container(out, err, errlen)) != 1) {
        return rc;
    }
    if ((rc = from_imds(out, err, errlen)) != 1) {
        return rc;
    }
    snprintf(err, errlen, "no AWS credentials in the environment, the shared files, a container "
             "or instance metadata");
    return MG_ERR;
}

/* ---- the source ----------------------------------------------------------------------------- */

struct mg_aws_cred_conf *
mg_aws_cred_conf_create(const char *region, const char *role_arn, const char *key_id,
                        const char *secret, const char *token)
{
    struct mg_aws_cred_conf *c = mg_calloc(1, sizeof(*c));

    c->region = dup_or_null(region);
    c->role_arn = dup_or_null(role_arn);
    c->key_id = dup_or_null(key_id);
    c->secret = dup_or_null(secret);
    c->token = dup_or_null(token);
    return c;
}

static void
aws_free(void *arg)
{
    struct mg_aws_cred_conf *c = arg;

    if (c != NULL) {
        free(c->region);
        free(c->role_arn);
        free(c->key_id);
        wipe(c->secret);
        wipe(c->token);
        free(c);
    }
}

static int
aws_fetch(void *arg, struct mg_cred **out, char *err, size_t errlen)
{
    const struct mg_aws_cred_conf *c = arg;
    struct mg_cred *base = NULL;
    int rc;

    if (c->key_id != NULL) {
        base = mg_cred_aws(c->key_id, c->secret, c->token, 0);
        rc = MG_OK;
    } else {
        rc = mg_aws_chain(c->region, &base, err, errlen);
    }
    if (rc != MG_OK || c->role_arn == NULL) {
        *out = base;
        return rc;
    }
    rc = mg_aws_assume_role(c->region, c->role_arn, base, out, err, errlen);
    mg_cred_unref(base);
    return rc;
}

const struct mg_cred_source_ops mg_aws_cred_ops = {aws_fetch, aws_free};
