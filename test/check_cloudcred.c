/*
 * Cloud credentials over HTTP: build/modelgate in front of build/fakeai, whose credential
 * endpoints (test/fakeai_cloud.c) play STS, EC2 instance metadata, the container agent, Entra ID
 * and managed identity, and whose Bedrock verifies each request's SigV4 signature with the
 * credentials it issued (or was handed), and whose Azure takes only a bearer it issued.
 *
 * Each test starts its own gateway with its own environment (the chain reads it), and every
 * test points instance metadata at the fake or turns it off, so nothing reaches 169.254.169.254.
 * Also the pure readers: STS's XML, the credentials JSON, the shared files, token answers.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mg_aws_cred.h"
#include "mg_conf.h"
#include "mg_cred.h"
#include "mg_harness.h"
#include "mg_test.h"

static const char chat[] = "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

/* Every variable a credential source reads, unset (a test sets what it needs). */
static void
clean_env(const char *home)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION",
        "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_DISABLED", "AWS_ENDPOINT_URL_STS", "AZURE_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    };
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(vars); i++) {
        unsetenv(vars[i]);
    }
    setenv("HOME", home, 1);   /* no ~/.aws of the machine's */
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static char home[64];

static void
make_home(void)
{
    snprintf(home, sizeof(home), "cloudhome.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(home));
    clean_env(home);
}

/* A fakeai on a port of its own with extra flags (NULL-terminated), and the harness. */
static struct mg_harness h;

/* Each gateway of the suite logs to a file of its own (a failure names it). */
static void
fake(char *const *extra)
{
    static char gw[4][48], fk[4][48];
    static int n;
    int i = n++ % 4;

    snprintf(gw[i], sizeof(gw[i]), "cloudcred-gw-%d-%d.log", (int)getpid(), n);
    snprintf(fk[i], sizeof(fk[i]), "cloudcred-fake-%d-%d.log", (int)getpid(), n);
    mg_harness_init(&h, gw[i], fk[i]);
    mg_harness_fake(&h, "cloud", extra);
}

static char *
fake_url(const char *path)
{
    static char u[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(u[i], sizeof(u[i]), "http://127.0.0.1:%d%s", h.fake_port[0], path);
    return u[i];
}

/* The gateway with one bedrock backend (extra keys) for model br, and one azure for az. */
static void
start(const char *bedrock_keys, const char *azure_keys, const char *more)
{
    char conf[4096];

    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\n"
             "workers: 2\n"
             "log_level: debug\n"
             "access_log: off\n"
             "health: {failures: 0}\n"
             "backends:\n"
             "  - {name: br, schema: bedrock, region: eu-west-1, url: 'http://127.0.0.1:%d'%s%s}\n"
             "  - {name: az, schema: azure, url: 'http://127.0.0.1:%d', api_version: 2024-10-21"
             "%s%s}\n"
             "  - {name: oa, url: 'http://127.0.0.1:%d/v1', api_key: sk-oa}\n"
             "rules:\n"
             "  - {models: [br], backends: [{backend: br}]}\n"
             "  - {models: [az], backends: [{backend: az}]}\n"
             "  - {models: [br-or-oa], backends: [{backend: br}, {backend: oa, priority: 1}]}\n"
             "%s",
             h.gw_port, h.fake_port[0], bedrock_keys ? ", " : "", bedrock_keys ? bedrock_keys : "",
             h.fake_port[0], azure_keys ? ", " : ", api_key: k",
             azure_keys ? azure_keys : "", h.fake_port[0], more ? more : "");
    mg_harness_start(&h, 6, conf);
}

static void
stop(void)
{
    mg_harness_stop(&h, "modelgate (cloudcred)");
}

static void
ask(const char *model, struct mg_test_resp *r)
{
    char body[256];

    snprintf(body, sizeof(body), chat, model);
    mg_test_http("POST", mg_harness_url(&h, "/v1/chat/completions"), body, strlen(body), NULL, r);
}

/* A string of fakeai's /_fake/stats (into a static buffer). */
static const char *
stat_str(const char *key)
{
    static char v[128];
    struct mg_test_resp r;
    json_t *j;

    mg_test_http("GET", fake_url("/_fake/stats"), NULL, 0, NULL, &r);
    j = mg_test_body_json(&r);
    snprintf(v, sizeof(v), "%s", json_string_value(json_object_get(j, key)) ?
             json_string_value(json_object_get(j, key)) : "");
    json_decref(j);
    mg_test_resp_free(&r);
    return v;
}

/* A chat request on model answers 200 (Bedrock verified its signature). */
static void
ask_ok(const char *model)
{
    struct mg_test_resp r;

    ask(model, &r);
    ck_assert_msg(r.status == 200, "%s: %ld %s", model, r.status, r.body.data);
    mg_test_resp_free(&r);
}

/* Polls fakeai's counter key until it reaches n, or the deadline; 1 when it did. */
static int
wait_stat(const char *key, long n, int ms)
{
    int64_t until = mg_now_ms() + (int64_t)ms * mg_test_scale();

    while (mg_test_fake_stat(h.fake_port[0], key) < n && mg_now_ms() < until) {
        usleep(20000);
    }
    return mg_test_fake_stat(h.fake_port[0], key) >= n;
}

/* A lifetime of s seconds for fakeai's --cred-ttl, scaled by MG_TIME_SCALE (static storage). */
static char *
ttl_of(int s)
{
    static char v[16];

    snprintf(v, sizeof(v), "%d", s * mg_test_scale());
    return v;
}

/*
 * Asks model until fakeai's key (the credential its backend last accepted) is no longer first:
 * the refresher publishes what it fetched a moment after the fake has answered it.
 */
static void
ask_until_new(const char *model, const char *key, const char *first)
{
    int64_t until = mg_now_ms() + 5000 * mg_test_scale();

    do {
        ask_ok(model);
    } while (strcmp(stat_str(key), first) == 0 && mg_now_ms() < until);
    ck_assert_str_ne(stat_str(key), first);
}

static const char *
write_file(const char *name, const char *text)
{
    static char path[4][160];
    static int i;
    FILE *f;

    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "%s/%s", home, name);
    f = fopen(path[i], "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path[i];
}

/* ---- AWS ------------------------------------------------------------------------------------ */

START_TEST(aws_env)
{
    char *extra[] = {"--aws-cred", "ENVAKID:env-secret", NULL};

    make_home();
    fake(extra);
    setenv("AWS_ACCESS_KEY_ID", "ENVAKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
    start(NULL, NULL, NULL);
    ask_ok("br");
    ck_assert_str_eq(stat_str("bedrock_akid"), "ENVAKID");
    stop();
}
END_TEST

START_TEST(aws_shared_files_and_profile)
{
    char *extra[] = {"--aws-cred", "FILEAKID:file-secret", "--aws-cred", "CFGAKID:cfg-secret",
                     NULL};
    struct mg_test_resp r;

    make_home();
    fake(extra);
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("creds",
           "[default]\naws_access_key_id = DEFAULTAKID\naws_secret_access_key = nope\n"
           "# a comment\n[team]\n  aws_access_key_id=FILEAKID\naws_secret_access_key = "
           "file-secret\n"), 1);
    setenv("AWS_CONFIG_FILE", write_file("config",
           "[profile team]\nregion = eu-west-1\n[profile cfg]\naws_access_key_id = CFGAKID\n"
           "aws_secret_access_key = cfg-secret\n"), 1);
    setenv("AWS_PROFILE", "team", 1);
    start(NULL, NULL, NULL);
    ask_ok("br");
    ck_assert_str_eq(stat_str("bedrock_akid"), "FILEAKID");
    stop();
    /* a profile only the config file has */
    setenv("AWS_PROFILE", "cfg", 1);
    fake(extra);
    start(NULL, NULL, NULL);
    ask_ok("br");
    ck_assert_str_eq(stat_str("bedrock_akid"), "CFGAKID");
    stop();
    /* the default profile's keys are wrong: Bedrock refuses them, the gateway passes that on */
    unsetenv("AWS_PROFILE");
    fake(extra);
    start(NULL, NULL, NULL);
    ask("br", &r);
    ck_assert_int_eq(r.status, 403);
    mg_test_resp_free(&r);
    stop();
}
END_TEST

/* A role profile: its role assumed with its source_profile's keys, or its credential_source. */
START_TEST(aws_role_profile)
{
    char *extra[] = {"--aws-cred", "SRCAKID:src-secret", NULL};

    make_home();
    fake(extra);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("creds",
           "[base]\naws_access_key_id = SRCAKID\naws_secret_access_key = src-secret\n"), 1);
    setenv("AWS_CONFIG_FILE", write_file("config",
           "[profile invoker]\nrole_arn = arn:aws:iam::123456789012:role/invoker\n"
           "source_profile = base\n[profile imdsrole]\nrole_arn = arn:aws:iam::1:role/e\n"
           "credential_source = Ec2InstanceMetadata\n"), 1);
    setenv("AWS_PROFILE", "invoker", 1);
    start(NULL, NULL, NULL);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_role"), 1);   /* signed by SRCAKID */
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    stop();
    /* the role over the instance's credentials (IMDSv2), as credential_source says */
    setenv("AWS_PROFILE", "imdsrole", 1);
    fake(extra);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake_url(""), 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    start(NULL, NULL, NULL);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "imds"), 1);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_role"), 1);
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    stop();
}
END_TEST

START_TEST(aws_web_identity)
{
    make_home();
    fake(NULL);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("token", "fake-web-identity-token\n"), 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/bedrock-caller", 1);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    start(NULL, NULL, NULL);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_web"), 1);
    ask_ok("br");
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_web"), 1);   /* cached */
    stop();
}
END_TEST

START_TEST(aws_container)
{
    make_home();
    fake(NULL);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", fake_url("/container/credentials"), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", write_file("ctoken",
           "fake-container-token"), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "the-file-wins", 1);
    start(NULL, NULL, NULL);
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "container"), 1);
    stop();
}
END_TEST

/* The log of the gateway just stopped holds text. */
static void
log_has(const char *text)
{
    size_t n;
    char *log = mg_test_slurp(h.gw_log, &n);

    ck_assert_ptr_nonnull(log);
    ck_assert_msg(strstr(log, text) != NULL, "no \"%s\" in %s", text, h.gw_log);
    free(log);
}

/* A configured source that fails ends the chain: no credentials, and the log says why. */
START_TEST(aws_refusals)
{
    struct mg_test_resp r;

    make_home();
    fake(NULL);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
    start(NULL, NULL, NULL);
    ask("br", &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "container"), 0);
    stop();
    log_has("AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback");
    /* a web identity token STS does not take */
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    fake(NULL);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("token", "not-the-token"), 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/x", 1);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    start(NULL, NULL, NULL);
    ask("br", &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    mg_test_resp_free(&r);
    stop();
    log_has("STS answered 400 InvalidIdentityToken");
}
END_TEST

/* IMDSv2 with credentials that live 4 s: refreshed at about 2 s, requests keep working. */
START_TEST(aws_imds_refreshed_before_expiry)
{
    char *extra[] = {"--cred-ttl", ttl_of(4), NULL};
    char first[64];

    make_home();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    fake(extra);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake_url(""), 1);
    start(NULL, NULL, NULL);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "imds_token"), 1);   /* token first */
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "imds"), 1);
    ask_ok("br");
    snprintf(first, sizeof(first), "%s", stat_str("bedrock_akid"));
    ck_assert_int_eq(strncmp(first, "ASIAFAKE", 8), 0);
    /* refreshed before it expires, with no request in between */
    ck_assert(wait_stat("imds", 2, 6000));   /* (wait_stat scales its deadline) */
    ask_until_new("br", "bedrock_akid", first);
    /* and again: the fake refuses expired keys, so every answer proves a fresh one */
    ck_assert(wait_stat("imds", 3, 6000));
    ask_ok("br");
    stop();
}
END_TEST

START_TEST(aws_assume_role_on_env)
{
    char *extra[] = {"--aws-cred", "BASEAKID:base-secret", NULL};

    make_home();
    fake(extra);
    setenv("AWS_ACCESS_KEY_ID", "BASEAKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "base-secret", 1);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    start("aws_role_arn: 'arn:aws:iam::123456789012:role/other'", NULL, NULL);
    /* STS verified the AssumeRole signature made with BASEAKID; Bedrock the role's */
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_role"), 1);
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    stop();
}
END_TEST

START_TEST(aws_assume_role_on_static_keys)
{
    make_home();
    fake(NULL);
    setenv("AWS_ENDPOINT_URL_STS", fake_url("/"), 1);
    start("aws_access_key_id: FAKEAKID, aws_secret_access_key: fake-secret, "
          "aws_role_arn: 'arn:aws:iam::123456789012:role/other'", NULL, NULL);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "sts_role"), 1);
    ask_ok("br");
    ck_assert_int_eq(strncmp(stat_str("bedrock_akid"), "ASIAFAKE", 8), 0);
    stop();
}
END_TEST

START_TEST(aws_no_credentials)
{
    struct mg_test_resp r;
    json_t *j;

    make_home();
    fake(NULL);
    /* nothing in the chain: metadata off, no env, no files */
    start("health: {failures: 2, cooldown: 30s}", NULL, NULL);
    ask("br", &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    j = mg_test_body_json(&r);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(json_object_get(j, "error"),
                                                                   "message")),
                                 "br: no usable credentials"));
    json_decref(j);
    mg_test_resp_free(&r);
    /* each such attempt is a failure of the backend: two in a row start its cooldown */
    ask("br", &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    mg_test_resp_free(&r);
    mg_test_http("GET", mg_harness_url(&h, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_double_eq(mg_test_metric(r.body.data, "modelgate_backend_up{backend=\"br\"}"), 0);
    ck_assert_double_eq(mg_test_metric(r.body.data, "modelgate_credential_expiry_seconds"
                                       "{backend=\"br\"}"), 0);
    ck_assert_double_ge(mg_test_metric(r.body.data, "modelgate_credential_fetches_total"
                                       "{backend=\"br\",result=\"error\"}"), 1);
    ck_assert_double_eq(mg_test_metric(r.body.data,
                                       "modelgate_backend_cooldowns_total{backend=\"br\"}"), 1);
    mg_test_resp_free(&r);
    /* with another entry: it moves on */
    ask("br-or-oa", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(mg_test_hdr(&r, "x-fake-backend"), "cloud");
    mg_test_resp_free(&r);
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "requests"), 1);   /* br never called */
    stop();
}
END_TEST

/* ---- Azure -------------------------------------------------------------------------------- */

START_TEST(azure_client_credentials_one_token_many_requests)
{
    char *extra[] = {"--cred-ttl", ttl_of(4), NULL};
    char first[64];
    int i;

    make_home();
    fake(extra);
    setenv("AZURE_AUTHORITY_HOST", fake_url("/"), 1);
    start(NULL, "azure_ad: {tenant_id: fake-tenant, client_id: fake-client, "
          "client_secret: fake-client-secret}", NULL);
    for (i = 0; i < 5; i++) {
        ask_ok("az");
    }
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "entra"), 1);
    {   /* /metrics: one good fetch, an expiry ahead */
        struct mg_test_resp m;
        double exp;
        mg_test_http("GET", mg_harness_url(&h, "/metrics"), NULL, 0, NULL, &m);
        ck_assert_double_eq(mg_test_metric(m.body.data, "modelgate_credential_fetches_total"
                                           "{backend=\"az\",result=\"ok\"}"), 1);
        ck_assert_double_eq(mg_test_metric(m.body.data, "modelgate_credential_fetches_total"
                                           "{backend=\"az\",result=\"error\"}"), 0);
        exp = mg_test_metric(m.body.data, "modelgate_credential_expiry_seconds{backend=\"az\"}");
        ck_assert(exp >= 0 && exp <= 4 * mg_test_scale());
        ck_assert_double_eq(mg_test_metric(m.body.data, "modelgate_credential_fetches_total"
                                           "{backend=\"oa\",result=\"ok\"}"), -1);   /* none */
        mg_test_resp_free(&m);
    }
    snprintf(first, sizeof(first), "%s", stat_str("azure_bearer"));
    ck_assert_int_eq(strncmp(first, "fake-entra-", 11), 0);
    ck_assert(wait_stat("entra", 2, 6000));   /* refreshed at about 2 s of 4 */
    ask_until_new("az", "azure_bearer", first);
    stop();
}
END_TEST

START_TEST(azure_wrong_secret)
{
    struct mg_test_resp r;

    make_home();
    fake(NULL);
    setenv("AZURE_AUTHORITY_HOST", fake_url(""), 1);
    start(NULL, "azure_ad: {tenant_id: t, client_id: fake-client, client_secret: wrong}", NULL);
    ask("az", &r);
    mg_test_assert_error(&r, 502, "credentials_unavailable");
    mg_test_resp_free(&r);
    stop();
    /* the log says why, never the secret */
    log_has("Entra ID answered 401: invalid_client: AADSTS7000215: Invalid client secret");
    {
        size_t n;
        char *log = mg_test_slurp(h.gw_log, &n);
        ck_assert_ptr_null(strstr(log, "wrong"));
        free(log);
    }
}
END_TEST

/*
 * A refresh that takes 1.5 s never holds a request: the old token serves meanwhile. Tokens live
 * 12 s: the refresh starts at 6 s and is answered at 7.5 s, while the old one is used until 9 s
 * (every time scaled by MG_TIME_SCALE).
 */
START_TEST(azure_refresh_never_waits)
{
    char ttl[16], delay[16];
    char *extra[] = {"--cred-ttl", ttl, "--cred-delay-ms", delay, NULL};
    /* the delay stays under the token endpoint's 10 s timeout at any scale */
    int delay_ms = 1500 * (mg_test_scale() < 4 ? mg_test_scale() : 4), n = 0;
    int64_t until;

    snprintf(ttl, sizeof(ttl), "%d", 12 * mg_test_scale());
    snprintf(delay, sizeof(delay), "%d", delay_ms);
    make_home();
    fake(extra);
    setenv("AZURE_AUTHORITY_HOST", fake_url("/"), 1);
    start(NULL, "azure_ad: {tenant_id: t, client_id: fake-client, "
          "client_secret: fake-client-secret}", NULL);
    until = mg_now_ms() + 15000 * mg_test_scale();
    /* until the refresh is answered: across the whole time it takes */
    while (mg_test_fake_stat(h.fake_port[0], "entra") < 2 && mg_now_ms() < until) {
        struct mg_test_resp r;
        ask("az", &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(r.t_total_ms < delay_ms * 2 / 3.0, "a request took %.0f ms (it waited "
                      "for the refresh?)", r.t_total_ms);
        mg_test_resp_free(&r);
        n++;
        usleep(50000);
    }
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "entra"), 2);
    ck_assert_int_gt(n, 20);
    ask_until_new("az", "azure_bearer", "fake-entra-1");
    ck_assert_str_eq(stat_str("azure_bearer"), "fake-entra-2");
    stop();
}
END_TEST

/* The token endpoint goes down after the first token: the old one serves until it expires. */
START_TEST(azure_failed_refresh_keeps_the_token_until_expiry)
{
    char *extra[] = {"--cred-ttl", ttl_of(6), "--cred-fail-after", "1", NULL};
    struct mg_test_resp r;
    int64_t until;
    long status = 0;

    make_home();
    fake(extra);
    setenv("AZURE_AUTHORITY_HOST", fake_url("/"), 1);
    start(NULL, "azure_ad: {tenant_id: t, client_id: fake-client, "
          "client_secret: fake-client-secret}", NULL);
    ask_ok("az");
    ck_assert(wait_stat("cred_outage", 1, 8000));   /* the refresh at about 3 s of 6 failed */
    ask_ok("az");                             /* the old token still serves */
    mg_test_http("GET", mg_harness_url(&h, "/metrics"), NULL, 0, NULL, &r);
    ck_assert_double_ge(mg_test_metric(r.body.data, "modelgate_credential_fetches_total"
                                       "{backend=\"az\",result=\"error\"}"), 1);
    ck_assert_double_gt(mg_test_metric(r.body.data, "modelgate_credential_expiry_seconds"
                                       "{backend=\"az\"}"), 0);
    mg_test_resp_free(&r);
    /* once it has expired: credentials_unavailable, never a stale token sent */
    until = mg_now_ms() + 10000 * mg_test_scale();
    while (status != 502 && mg_now_ms() < until) {
        ask("az", &r);
        status = r.status;
        if (status == 502) {
            mg_test_assert_error(&r, 502, "credentials_unavailable");
        } else {
            ck_assert_int_eq(status, 200);
        }
        mg_test_resp_free(&r);
        usleep(100000);
    }
    ck_assert_int_eq(status, 502);
    stop();
    log_has("refresh failed (Entra ID answered 500");
}
END_TEST

START_TEST(azure_managed_identity)
{
    make_home();
    fake(NULL);
    setenv("IDENTITY_ENDPOINT", fake_url("/msi/token"), 1);
    setenv("IDENTITY_HEADER", "fake-identity-header", 1);
    start(NULL, "azure_ad: managed_identity", NULL);
    ask_ok("az");
    ask_ok("az");
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "msi"), 1);
    ck_assert_int_eq(strncmp(stat_str("azure_bearer"), "fake-msi-", 9), 0);
    stop();
    /* without IDENTITY_ENDPOINT: the instance metadata endpoint */
    unsetenv("IDENTITY_ENDPOINT");
    unsetenv("IDENTITY_HEADER");
    fake(NULL);
    setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", fake_url(""), 1);
    start(NULL, "azure_ad: managed_identity", NULL);
    ask_ok("az");
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "msi_imds"), 1);
    ck_assert_int_eq(strncmp(stat_str("azure_bearer"), "fake-mi-imds-", 13), 0);
    stop();
}
END_TEST

/* A reload that keeps the credential config keeps the cached token: no new token request. */
START_TEST(reload_keeps_the_credential)
{
    make_home();
    fake(NULL);
    setenv("AZURE_AUTHORITY_HOST", fake_url("/"), 1);
    start(NULL, "azure_ad: {tenant_id: t, client_id: fake-client, "
          "client_secret: fake-client-secret}", NULL);
    ask_ok("az");
    ck_assert_int_eq(kill(h.gw_pid, SIGHUP), 0);
    {   /* the reload is done when the gateway logs it */
        int64_t until = mg_now_ms() + 5000 * mg_test_scale();
        size_t n;
        char *log = NULL;
        while (mg_now_ms() < until) {
            free(log);
            log = mg_test_slurp(h.gw_log, &n);
            if (log != NULL && strstr(log, "reload 1 of") != NULL && strstr(log, ": ok (") != NULL) {
                break;
            }
            usleep(20000);
        }
        free(log);
    }
    ask_ok("az");
    ck_assert_int_eq(mg_test_fake_stat(h.fake_port[0], "entra"), 1);
    stop();
}
END_TEST

/* ---- the pure readers ------------------------------------------------------------------------ */

START_TEST(sts_xml)
{
    struct mg_cred *c = NULL;
    char err[256];
    static const char ok[] =
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>"
        "<SecretAccessKey>s/e+c&amp;r</SecretAccessKey><SessionToken>t&lt;1&gt;</SessionToken>"
        "<Expiration>2026-12-07T13:00:00Z</Expiration></Credentials></AssumeRoleResult>"
        "</AssumeRoleResponse>";

    ck_assert_int_eq(mg_aws_sts_parse(ok, 200, &c, err, sizeof(err)), MG_OK);
    ck_assert_str_eq(c->access_key_id, "ASIA1");
    ck_assert_str_eq(c->secret_access_key, "s/e+c&r");
    ck_assert_str_eq(c->session_token, "t<1>");
    ck_assert_int_eq(c->expires_ms, 1796648400000LL);
    mg_cred_unref(c);
    ck_assert_int_eq(mg_aws_sts_parse("<ErrorResponse><Error><Code>AccessDenied</Code><Message>"
                                      "not allowed</Message></Error></ErrorResponse>", 403, &c,
                                      err, sizeof(err)), MG_ERR);
    ck_assert_str_eq(err, "STS answered 403 AccessDenied: not allowed");
    ck_assert_int_eq(mg_aws_sts_parse("<x/>", 200, &c, err, sizeof(err)), MG_ERR);
    ck_assert_int_eq(mg_aws_sts_parse("<AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
                                      "</SecretAccessKey><SessionToken>T</SessionToken>", 200, &c,
                                      err, sizeof(err)), MG_ERR);   /* no Expiration */
}
END_TEST

START_TEST(cred_json_and_ini)
{
    struct mg_cred *c = NULL;
    struct mg_aws_profile pr;
    char err[256];

    ck_assert_int_eq(mg_aws_cred_json("{\"Code\":\"Success\",\"AccessKeyId\":\"A\","
                                      "\"SecretAccessKey\":\"S\",\"Token\":\"T\",\"Expiration\":"
                                      "\"2026-12-07T13:00:00Z\"}", &c, err, sizeof(err)), MG_OK);
    ck_assert_str_eq(c->session_token, "T");
    mg_cred_unref(c);
    ck_assert_int_eq(mg_aws_cred_json("{\"Code\":\"Failure\"}", &c, err, sizeof(err)), MG_ERR);
    ck_assert_int_eq(mg_aws_cred_json("[]", &c, err, sizeof(err)), MG_ERR);
    ck_assert_int_eq(mg_aws_cred_json("{\"AccessKeyId\":\"A\"}", &c, err, sizeof(err)), MG_ERR);

    memset(&pr, 0, sizeof(pr));
    mg_aws_ini_profile("[default]\naws_access_key_id=D\n[p]\r\n AWS_ACCESS_KEY_ID = P \r\n"
                       "aws_secret_access_key=PS\n[q]\naws_session_token=Q\n", "p", 0, &pr);
    ck_assert_str_eq(pr.key_id, "P");
    ck_assert_str_eq(pr.secret, "PS");
    ck_assert_ptr_null(pr.token);
    mg_aws_profile_deinit(&pr);
    /* config: [profile p] and [default], never a bare [p]; a role profile's keys */
    mg_aws_ini_profile("[p]\naws_access_key_id=BARE\n[profile p]\naws_access_key_id=P\n"
                       "role_arn = arn:aws:iam::1:role/r\nsource_profile=base\n"
                       "role_session_name=s\nregion=eu-north-1\n", "p", 1, &pr);
    ck_assert_str_eq(pr.key_id, "P");
    ck_assert_str_eq(pr.role_arn, "arn:aws:iam::1:role/r");
    ck_assert_str_eq(pr.source_profile, "base");
    ck_assert_str_eq(pr.session, "s");
    ck_assert_str_eq(pr.region, "eu-north-1");
    mg_aws_profile_deinit(&pr);
    mg_aws_ini_profile("[profile default]\naws_access_key_id=X\n[default]\naws_access_key_id=D\n",
                       "default", 1, &pr);
    ck_assert_str_eq(pr.key_id, "D");
    mg_aws_profile_deinit(&pr);
}
END_TEST

START_TEST(bearer_json)
{
    struct mg_cred *c = NULL;
    char err[256];

    ck_assert_int_eq(mg_cred_bearer_json("{\"access_token\":\"tok\",\"expires_in\":3599}", 1000,
                                         &c, err, sizeof(err)), MG_OK);
    ck_assert_str_eq(c->token, "tok");
    ck_assert_int_eq(c->expires_ms, 1000 + 3599000);
    mg_cred_unref(c);
    ck_assert_int_eq(mg_cred_bearer_json("{\"access_token\":\"t\",\"expires_in\":\"60\"}", 0,
                                         &c, err, sizeof(err)), MG_OK);
    ck_assert_int_eq(c->expires_ms, 60000);
    mg_cred_unref(c);
    ck_assert_int_eq(mg_cred_bearer_json("{\"access_token\":\"t\",\"expires_on\":\"1796648400\"}",
                                         0, &c, err, sizeof(err)), MG_OK);
    ck_assert_int_eq(c->expires_ms, 1796648400000LL);
    mg_cred_unref(c);
    ck_assert_int_eq(mg_cred_bearer_json("{\"error\":\"invalid_client\",\"error_description\":"
                                         "\"AADSTS7000215\"}", 0, &c, err, sizeof(err)), MG_ERR);
    ck_assert_ptr_nonnull(strstr(err, "invalid_client: AADSTS7000215"));
    ck_assert_int_eq(mg_cred_bearer_json("{\"access_token\":\"t\"}", 0, &c, err, sizeof(err)),
                     MG_ERR);
    ck_assert_int_eq(mg_cred_bearer_json("nope", 0, &c, err, sizeof(err)), MG_ERR);
}
END_TEST

/* The examples load (checked only: nothing is fetched before a config goes into service). */
START_TEST(examples_load)
{
    static const char *const files[] = {"conf/examples/bedrock-chain.yaml",
                                        "conf/examples/azure-entra.yaml"};
    struct mg_buf e;
    struct mg_conf *c;
    size_t i;

    setenv("AZURE_CLIENT_SECRET", "s3cret-value", 1);
    for (i = 0; i < MG_ARRAY_LEN(files); i++) {
        mg_buf_init(&e, 4096);
        c = mg_conf_load(files[i], NULL, &e);
        ck_assert_msg(c != NULL, "%s: %s", files[i], e.data);
        ck_assert_ptr_null(c->backends[0].cred);
        mg_conf_unref(c);
        mg_buf_deinit(&e);
    }
}
END_TEST

Suite *
cloudcred_suite(void)
{
    Suite *s = suite_create("cloudcred");
    TCase *pure = tcase_create("readers");
    TCase *aws = tcase_create("aws");
    TCase *az = tcase_create("azure");

    tcase_add_test(pure, sts_xml);
    tcase_add_test(pure, cred_json_and_ini);
    tcase_add_test(pure, bearer_json);
    tcase_add_test(pure, examples_load);
    tcase_set_timeout(aws, 60 * mg_test_scale());
    tcase_add_test(aws, aws_env);
    tcase_add_test(aws, aws_shared_files_and_profile);
    tcase_add_test(aws, aws_role_profile);
    tcase_add_test(aws, aws_web_identity);
    tcase_add_test(aws, aws_container);
    tcase_add_test(aws, aws_imds_refreshed_before_expiry);
    tcase_add_test(aws, aws_assume_role_on_env);
    tcase_add_test(aws, aws_assume_role_on_static_keys);
    tcase_add_test(aws, aws_no_credentials);
    tcase_add_test(aws, aws_refusals);
    tcase_set_timeout(az, 60 * mg_test_scale());
    tcase_add_test(az, azure_client_credentials_one_token_many_requests);
    tcase_add_test(az, azure_wrong_secret);
    tcase_add_test(az, azure_refresh_never_waits);
    tcase_add_test(az, azure_failed_refresh_keeps_the_token_until_expiry);
    tcase_add_test(az, azure_managed_identity);
    tcase_add_test(az, reload_keeps_the_credential);
    suite_add_tcase(s, pure);
    suite_add_tcase(s, aws);
    suite_add_tcase(s, az);
    return s;
}
