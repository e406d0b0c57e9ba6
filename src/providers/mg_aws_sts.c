/*
 * mg_aws_sts — AWS STS for the credential chain: AssumeRole (SigV4-signed with the credentials
 * under it, service "sts") and AssumeRoleWithWebIdentity (unsigned), their XML answers read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_aws_cred.h"
#include "mg_sigv4.h"

#define STS_TIMEOUT_MS 10000
#define STS_ANSWER_MAX (64 * 1024)
#define STS_DURATION   "3600"
#define FORM_CTYPE     "application/x-www-form-urlencoded; charset=utf-8"

int
mg_aws_split_url(const char *url, char *host, size_t hostlen, const char **path)
{
    const char *a = strstr(url, "://"), *slash;
    size_t n;

    if (a == NULL) {
        return MG_ERR;
    }
    a += 3;
    slash = strchr(a, '/');
    n = slash != NULL ? (size_t)(slash - a) : strlen(a);
    if (n == 0 || n >= hostlen) {
        return MG_ERR;
    }
    memcpy(host, a, n);
    host[n] = '\0';
    *path = slash != NULL ? slash : "";
    return MG_OK;
}

/* The text of <tag>...</tag> in xml, XML entities decoded, as a new string; NULL when absent. */
static char *
xml_text(const char *xml, const char *tag)
{
    char open[64], close[64];
    const char *a, *b;
    struct mg_buf out;

    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    a = strstr(xml, open);
    if (a == NULL) {
        return NULL;
    }
    a += strlen(open);
    b = strstr(a, close);
    if (b == NULL) {
        return NULL;
    }
    mg_buf_init(&out, (size_t)(b - a) + 1);
    mg_buf_add(&out, "", 0);
    while (a < b) {
        static const char *const ent[][2] = {
            {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"},
        };
        size_t i;
        for (i = 0; i < MG_ARRAY_LEN(ent); i++) {
            size_t n = strlen(ent[i][0]);
            if ((size_t)(b - a) >= n && memcmp(a, ent[i][0], n) == 0) {
                mg_buf_adds(&out, ent[i][1]);
                a += n;
                break;
            }
        }
        if (i == MG_ARRAY_LEN(ent)) {
            mg_buf_add(&out, a++, 1);
        }
    }
    return out.data;
}

int
mg_aws_sts_parse(const char *xml, long status, struct mg_cred **out, char *err, size_t errlen)
{
    char *id = NULL, *secret = NULL, *token = NULL, *exp = NULL;
    int64_t expires = 0;
    int rc = MG_ERR;

    if (status != 200) {
        char *code = xml_text(xml, "Code"), *msg = xml_text(xml, "Message");
        snprintf(err, errlen, "STS answered %ld%s%s%s%.120s", status, code ? " " : "",
                 code ? code : "", msg ? ": " : "", msg ? msg : "");
        free(code);
        free(msg);
        return MG_ERR;
    }
    id = xml_text(xml, "AccessKeyId");
    secret = xml_text(xml, "SecretAccessKey");
    token = xml_text(xml, "SessionToken");
    exp = xml_text(xml, "Expiration");
    if (id == NULL || secret == NULL || token == NULL || id[0] == '\0' || secret[0] == '\0') {
        snprintf(err, errlen, "STS answered without credentials");
    } else if (exp == NULL || mg_cred_parse_time(exp, &expires) != MG_OK) {
        snprintf(err, errlen, "STS answered without a valid Expiration");
    } else {
        *out = mg_cred_aws(id, secret, token, expires);
        rc = MG_OK;
    }
    free(id);
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
    }
    free(secret);
    if (token != NULL) {
        explicit_bzero(token, strlen(token));
    }
    free(token);
    free(exp);
    return rc;
}

/* STS's endpoint: AWS_ENDPOINT_URL_STS, else the region's. */
static void
sts_url(const char *region, char *url, size_t n)
{
    const char *e = getenv("AWS_ENDPOINT_URL_STS");

    if (e != NULL && e[0] != '\0') {
        snprintf(url, n, "%s", e);
    } else {
        snprintf(url, n, "https://sts.%s.amazonaws.com/", region ? region : "us-east-1");
    }
}

/* Posts the form to STS with the extra header lines; reads the answer's credentials. */
static int
sts_post(const char *url, const struct mg_buf *form, const char *const *headers,
         struct mg_cred **out, char *err, size_t errlen)
{
    struct mg_cred_http rq = {"POST", url, headers, form->data, form->len, STS_TIMEOUT_MS,
                              STS_ANSWER_MAX, 0};
    struct mg_buf answer;
    long status;
    int rc = mg_cred_http_do(&rq, &status, &answer, err, errlen);

    if (rc == MG_OK) {
        rc = mg_aws_sts_parse(answer.data != NULL ? answer.data : "", status, out, err, errlen);
    }
    mg_buf_deinit(&answer);
    return rc;
}

int
mg_aws_assume_web_identity(const char *region, const char *role_arn, const char *session,
                           const char *token, struct mg_cred **out, char *err, size_t errlen)
{
    const char *headers[] = {"Content-Type: " FORM_CTYPE, "Accept: application/xml", NULL};
    struct mg_buf form;
    char url[1024];
    int rc;

    sts_url(region, url, sizeof(url));
    mg_buf_init(&form, 64 * 1024);
    mg_cred_form_add(&form, "Action", "AssumeRoleWithWebIdentity");
    mg_cred_form_add(&form, "Version", "2011-06-15");
    mg_cred_form_add(&form, "RoleArn", role_arn);
    mg_cred_form_add(&form, "RoleSessionName", session);
    mg_cred_form_add(&form, "WebIdentityToken", token);
    mg_cred_form_add(&form, "DurationSeconds", STS_DURATION);
    rc = form.data != NULL ? sts_post(url, &form, headers, out, err, errlen) : MG_ERR;
    explicit_bzero(form.data, form.len);
    mg_buf_deinit(&form);
    return rc;
}

int
mg_aws_assume_role(const char *region, const char *role_arn, const struct mg_cred *base,
                   struct mg_cred **out, char *err, size_t errlen)
{
    return mg_aws_assume_role_as(region, role_arn, "modelgate", base, out, err, errlen);
}

int
mg_aws_assume_role_as(const char *region, const char *role_arn, const char *session,
                      const struct mg_cred *base, struct mg_cred **out, char *err, size_t errlen)
{
    struct mg_sigv4_header ct = {"content-type", FORM_CTYPE};
    struct mg_sigv4_creds creds = {base->access_key_id, base->secret_access_key,
                                   base->session_token};
    struct mg_sigv4_request sr;
    struct mg_sigv4_result res;
    const char *headers[10], *path;
    char url[1024], host[512], hostline[520], lines[4][MG_SIGV4_AUTH_MAX + 64];
    struct mg_buf form;
    size_t i, n = 0;
    int rc = MG_ERR;

    sts_url(region, url, sizeof(url));
    if (mg_aws_split_url(url, host, sizeof(host), &path) != MG_OK) {
        snprintf(err, errlen, "bad STS endpoint %s", url);
        return MG_ERR;
    }
    mg_buf_init(&form, 16 * 1024);
    mg_cred_form_add(&form, "Action", "AssumeRole");
    mg_cred_form_add(&form, "Version", "2011-06-15");
    mg_cred_form_add(&form, "RoleArn", role_arn);
    mg_cred_form_add(&form, "RoleSessionName", session);
    mg_cred_form_add(&form, "DurationSeconds", STS_DURATION);
    memset(&sr, 0, sizeof(sr));
    sr.method = "POST";
    sr.host = host;
    sr.path = path;
    sr.headers = &ct;
    sr.nheaders = 1;
    sr.body = form.data;
    sr.body_len = form.len;
    sr.region = region ? region : "us-east-1";
    sr.service = "sts";
    if (form.data == NULL || mg_sigv4_sign(&sr, &creds, mg_cred_now_ms() / 1000, NULL, &res)
                             != MG_OK) {
        snprintf(err, errlen, "cannot sign the AssumeRole request");
        mg_buf_deinit(&form);
        return MG_ERR;
    }
    headers[n++] = "Content-Type: " FORM_CTYPE;
    headers[n++] = "Accept: application/xml";
    snprintf(hostline, sizeof(hostline), "Host: %s", host);   /* the value signed is sent */
    headers[n++] = hostline;
    for (i = 0; i < res.nheaders && i < MG_ARRAY_LEN(lines); i++) {
        snprintf(lines[i], sizeof(lines[i]), "%s: %s", res.headers[i].name, res.headers[i].value);
        headers[n++] = lines[i];
    }
    headers[n] = NULL;
    rc = sts_post(url, &form, headers, out, err, errlen);
    explicit_bzero(lines, sizeof(lines));
    mg_buf_deinit(&form);
    return rc;
}
