/*
 * Client keys (`auth`): unit tests of the key module (digests, the presented credential, lookup,
 * allow-lists, the limit glue across reloads) and of the config's `auth` block; then the real
 * build/modelgate in front of build/fakeai over HTTP: 401s, allow-lists on routing and on
 * /v1/models, credentials never forwarded, request and token limits with their headers (8
 * concurrent clients against a 20-per-minute key), metrics, the access log, keys never written
 * anywhere, and reloads (a removed key, a rotated key, buckets kept and clamped by name).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mg_auth.h"
#include "mg_conf.h"
#include "mg_limit.h"
#include "mg_test.h"

/* The keys the gateway of the http case knows; each test uses its own so they do not interact. */
#define K_FULL   "mgk-full-6f1d0c2a9b8e4f7a3c5d2e1b"
#define K_RESTR  "mgk-restr-0a9b8c7d6e5f4a3b2c1d0e9f"
#define K_CONC   "mgk-conc-5e4d3c2b1a0f9e8d7c6b5a49"
#define K_TINY   "mgk-tiny-1b2c3d4e5f6a7b8c9d0e1f2a"
#define K_TOK    "mgk-tok-9f8e7d6c5b4a39281706f5e4d"
#define K_STREAM "mgk-stream-c0ffee00deadbeef1234567"
#define K_CUT    "mgk-cut-0badc0de0badc0de0badc0de0ba"
#define K_BURST  "mgk-burst-8a7b6c5d4e3f2a1b0c9d8e7f"
#define K_BIG    "mgk-big-0f1e2d3c4b5a69788796a5b4c"
#define K_BACK   "mgk-back-13579bdf2468ace013579bdf"
#define K_SHORT  "sh0rt-k3y"
#define K_WRONG  "mgk-wrong-7777777777777777777777"
/* the reload case's */
#define K_ROT1   "mgk-rot-one-1111111111111111111111"
#define K_ROT2   "mgk-rot-two-2222222222222222222222"
#define K_GONE   "mgk-gone-333333333333333333333333"
#define K_LIM    "mgk-lim-4444444444444444444444444"
#define K_CLMP   "mgk-clamp-55555555555555555555555"

static const char *const all_keys[] = {K_FULL, K_RESTR, K_CONC, K_TINY, K_TOK, K_STREAM, K_CUT,
                                       K_BURST, K_BIG, K_BACK, K_SHORT, K_WRONG, K_ROT1,
                                       K_ROT2, K_GONE, K_LIM, K_CLMP};

/* ---- unit: the key module ------------------------------------------------------------------ */

static void
hex_of(const unsigned char d[MG_AUTH_DIGEST_LEN], char out[2 * MG_AUTH_DIGEST_LEN + 1])
{
    size_t i;

    for (i = 0; i < MG_AUTH_DIGEST_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

START_TEST(digest_and_hex)
{
    /* FIPS 180-2, appendix B.1: SHA-256("abc") */
    const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    unsigned char d[MG_AUTH_DIGEST_LEN], h[MG_AUTH_DIGEST_LEN];
    char hex[65], upper[65];
    size_t i;

    mg_auth_digest("abc", 3, d);
    hex_of(d, hex);
    ck_assert_str_eq(hex, abc);
    ck_assert_int_eq(mg_auth_parse_hex(abc, h), 0);
    ck_assert_mem_eq(d, h, sizeof(d));
    for (i = 0; i < 64; i++) {
        upper[i] = (char)(abc[i] >= 'a' ? abc[i] - 32 : abc[i]);
    }
    upper[64] = '\0';
    ck_assert_int_eq(mg_auth_parse_hex(upper, h), 0);
    ck_assert_mem_eq(d, h, sizeof(d));
    ck_assert_int_eq(mg_auth_parse_hex("ba7816bf", h), -1);
    upper[10] = 'g';
    ck_assert_int_eq(mg_auth_parse_hex(upper, h), -1);
    snprintf(upper, sizeof(upper), "%s", abc);
    ck_assert_int_eq(mg_auth_parse_hex("0ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
                                       "f20015ad", h), -1);
}
END_TEST

/* Headers for mg_auth_credential(): "name", "value" pairs, NULL-terminated. */
static const char *
lookup(void *arg, const char *name)
{
    const char *const *h = arg;

    for (; h[0] != NULL; h += 2) {
        if (strcasecmp(h[0], name) == 0) {
            return h[1];
        }
    }
    return NULL;
}

static const char *
cred_of(const char *const *h, size_t *len)
{
    return mg_auth_credential(lookup, (void *)h, len);
}

START_TEST(credential_from_headers)
{
    const char *bearer[] = {"Authorization", "Bearer abc", NULL};
    const char *lower[] = {"authorization", "bEaReR \t abc  ", NULL};
    const char *basic[] = {"Authorization", "Basic abc", "api-key", "abc", NULL};
    const char *empty[] = {"Authorization", "Bearer   ", NULL};
    const char *bare[] = {"Authorization", "Bearer", NULL};
    const char *nospace[] = {"Authorization", "Bearerabc", NULL};
    const char *apikey[] = {"api-key", " abc ", "x-api-key", "other", NULL};
    const char *xapikey[] = {"x-api-key", "abc", NULL};
    const char *first[] = {"x-api-key", "third", "api-key", "second", "Authorization",
                           "Bearer first", NULL};
    const char *none[] = {"x-other", "abc", NULL};
    const char *c;
    size_t len;

    c = cred_of(bearer, &len);
    ck_assert(c != NULL && len == 3 && memcmp(c, "abc", 3) == 0);
    c = cred_of(lower, &len);
    ck_assert(c != NULL && len == 3 && memcmp(c, "abc", 3) == 0);
    /* the first header of the list that is present decides, even when it is not usable */
    ck_assert_ptr_null(cred_of(basic, &len));
    ck_assert_ptr_null(cred_of(empty, &len));
    ck_assert_ptr_null(cred_of(bare, &len));
    ck_assert_ptr_null(cred_of(nospace, &len));
    c = cred_of(apikey, &len);
    ck_assert(c != NULL && len == 3 && memcmp(c, "abc", 3) == 0);
    c = cred_of(xapikey, &len);
    ck_assert(c != NULL && len == 3 && memcmp(c, "abc", 3) == 0);
    c = cred_of(first, &len);
    ck_assert(c != NULL && len == 5 && memcmp(c, "first", 5) == 0);
    ck_assert_ptr_null(cred_of(none, &len));
}
END_TEST

START_TEST(find_and_allow)
{
    struct mg_key keys[3];
    char *models[] = {"gpt-4o-mini", "llama-*"};

    memset(keys, 0, sizeof(keys));
    keys[0].name = "a";
    keys[1].name = "b";
    keys[2].name = "c";
    mg_auth_digest("key-a", 5, keys[0].digest);
    mg_auth_digest("key-b", 5, keys[1].digest);
    mg_auth_digest("key-c", 5, keys[2].digest);
    keys[1].models = models;
    keys[1].nmodels = 2;
    ck_assert_ptr_eq(mg_auth_find(keys, 3, "key-a", 5), &keys[0]);
    ck_assert_ptr_eq(mg_auth_find(keys, 3, "key-c", 5), &keys[2]);
    ck_assert_ptr_null(mg_auth_find(keys, 3, "key-", 4));
    ck_assert_ptr_null(mg_auth_find(keys, 3, "key-a ", 6));
    ck_assert_ptr_null(mg_auth_find(keys, 3, NULL, 0));
    ck_assert_ptr_null(mg_auth_find(keys, 0, "key-a", 5));

    ck_assert(mg_auth_allows(NULL, "anything", 8));
    ck_assert(mg_auth_allows(&keys[0], "anything", 8));
    ck_assert(mg_auth_allows(&keys[1], "gpt-4o-mini", 11));
    ck_assert(!mg_auth_allows(&keys[1], "gpt-4o", 6));
    ck_assert(!mg_auth_allows(&keys[1], "gpt-4o-mini-2", 13));
    ck_assert(mg_auth_allows(&keys[1], "llama-3", 7));
    ck_assert(mg_auth_allows(&keys[1], "llama-", 6));
    ck_assert(!mg_auth_allows(&keys[1], "llama", 5));
    /* the length is what counts, not a NUL */
    ck_assert(!mg_auth_allows(&keys[1], "gpt-4o-mini", 10));

    ck_assert(!mg_auth_limited(NULL));
    ck_assert(!mg_auth_limited(&keys[0]));
    ck_assert(mg_auth_is_ratelimit_header("X-RateLimit-Remaining-Tokens"));
    ck_assert(!mg_auth_is_ratelimit_header("retry-after"));
}
END_TEST

/* The keys tests' own limit store, as a runtime holds one. */
static struct mg_limit_store *store;

/* The glue to mg_limit: a 429's headers, an answer's trios, reservations, and reloads by name. */
START_TEST(limits_through_snapshots)
{
    struct mg_limit_header h[MG_LIMIT_HEADERS_MAX];
    struct mg_key k1, k2;
    size_t n, i;
    int64_t t = 1000000, res1, res2, res3;
    int got_retry = 0;

    memset(&k1, 0, sizeof(k1));
    k1.name = "glue";
    k1.requests_per_minute = 2;
    k1.tokens_per_minute = 100;
    mg_auth_apply(store, &k1, 1, t);
    ck_assert_ptr_eq(k1.limit, mg_limit_get(store, "glue"));
    ck_assert(mg_auth_limited(&k1));
    ck_assert(mg_auth_admit(&k1, t, 10, &res1, h, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(res1, 10);
    ck_assert(mg_auth_admit(&k1, t, 10, &res2, h, &n));
    ck_assert(!mg_auth_admit(&k1, t, 10, &res3, h, &n));
    ck_assert_int_eq(res3, 0);
    ck_assert_uint_eq(n, 7);
    for (i = 0; i < n; i++) {
        if (strcmp(h[i].name, "Retry-After") == 0) {
            ck_assert_str_eq(h[i].value, "30");   /* one request refills in 60 s / 2 */
            got_retry = 1;
        }
        if (strcmp(h[i].name, "x-ratelimit-remaining-requests") == 0) {
            ck_assert_str_eq(h[i].value, "0");
        }
    }
    ck_assert(got_retry);

    /* the first answer used 230 for its 10: the bucket is empty (never below: full in 60 s) */
    mg_auth_settle(&k1, res1, 200, 30, t);
    n = mg_auth_headers(&k1, t, h);
    ck_assert_uint_eq(n, 6);
    ck_assert_str_eq(h[4].name, "x-ratelimit-remaining-tokens");
    ck_assert_str_eq(h[4].value, "0");
    ck_assert_str_eq(h[5].value, "1m0s");
    /* the second got no answer: its 10 come back */
    mg_auth_settle(&k1, res2, 0, 0, t);
    n = mg_auth_headers(&k1, t, h);
    ck_assert_str_eq(h[4].value, "10");
    /* 30 s later the request bucket holds one again, but 70 tokens are 6 s away (60 there) */
    ck_assert(!mg_auth_admit(&k1, t + 30000, 70, &res3, h, &n));
    ck_assert_uint_eq(n, 7);
    ck_assert_str_eq(h[6].name, "Retry-After");
    ck_assert_str_eq(h[6].value, "6");
    ck_assert(!mg_auth_admit(&k1, t + 35999, 70, &res3, h, &n));
    ck_assert(mg_auth_admit(&k1, t + 36000, 70, &res3, h, &n));
    ck_assert_int_eq(res3, 70);
    /* absurd usage: a saturating sum, and an empty bucket full again within a minute */
    mg_auth_settle(&k1, res3, INT64_MAX, INT64_MAX, t + 36000);
    n = mg_auth_headers(&k1, t + 36000, h);
    ck_assert_str_eq(h[4].value, "0");
    ck_assert_str_eq(h[5].value, "1m0s");

    /* a reload: another snapshot's key of the same name shares the bucket; a lower limit clamps */
    memset(&k2, 0, sizeof(k2));
    k2.name = "glue";
    k2.requests_per_minute = 1;
    t += 300000;   /* both buckets full again */
    mg_auth_apply(store, &k2, 1, t);
    ck_assert_ptr_eq(k2.limit, k1.limit);
    ck_assert(mg_auth_admit(&k2, t, 10, &res1, h, &n));
    ck_assert_int_eq(res1, 0);   /* no token limit: nothing reserved */
    ck_assert(!mg_auth_admit(&k2, t, 10, &res1, h, &n));
    n = mg_auth_headers(&k2, t, h);
    ck_assert_uint_eq(n, 3);   /* the token limit is gone with the reload */
    ck_assert_str_eq(h[0].value, "1");

    /* NULL and unlimited keys pass without headers */
    ck_assert(mg_auth_admit(NULL, t, 10, &res1, h, &n));
    ck_assert_int_eq(res1, 0);
    ck_assert_uint_eq(mg_auth_headers(NULL, t, h), 0);
    mg_auth_settle(NULL, 0, 5, 5, t);
}
END_TEST

static void
limit_setup(void)
{
    store = mg_limit_store_create("local");
    ck_assert_ptr_nonnull(store);
}

static void
limit_teardown(void)
{
    mg_limit_store_destroy(store);
    store = NULL;
}

/* ---- unit: the `auth` block of the config ------------------------------------------------- */

static struct mg_buf errs;

static struct mg_conf *
parse(const char *text)
{
    mg_buf_deinit(&errs);
    mg_buf_init(&errs, 1 << 20);
    return mg_conf_parse("t.yaml", text, strlen(text), &errs);
}

#define BASE "backends: [{name: a, url: 'http://x'}]\n" \
             "rules:\n  - {models: [m-a, m-b, m-c, 'pre-*'], backends: [{backend: a}]}\n"

/* Refused with want in the errors, and no key text quoted anywhere in them. */
#define ck_refused(text, want)                                                                 \
    do {                                                                                       \
        struct mg_conf *c_ = parse(text);                                                      \
        size_t i_;                                                                             \
        ck_assert_msg(c_ == NULL, "config should be refused: %s", want);                      \
        ck_assert_msg(errs.data && strstr(errs.data, want), "want \"%s\" in:\n%s", want,       \
                      errs.data ? errs.data : "(none)");                                       \
        for (i_ = 0; i_ < MG_ARRAY_LEN(all_keys); i_++) {                                      \
            ck_assert_ptr_null(strstr(errs.data, all_keys[i_]));                               \
        }                                                                                      \
    } while (0)

START_TEST(conf_keys)
{
    char text[2048], hex[65];
    unsigned char d[MG_AUTH_DIGEST_LEN];
    struct mg_conf *c;

    mg_auth_digest(K_RESTR, strlen(K_RESTR), d);
    hex_of(d, hex);
    setenv("MG_TEST_CLIENT_KEY", K_FULL, 1);
    snprintf(text, sizeof(text),
             BASE "auth:\n  keys:\n"
             "    - {name: full, key: '${MG_TEST_CLIENT_KEY}'}\n"
             "    - name: restr\n      key_sha256: %s\n      models: [m-b, 'pre-*', nowhere]\n"
             "      requests_per_minute: 600\n      tokens_per_minute: 200000\n"
             "    - {name: short.one, key: " K_SHORT "}\n",
             hex);
    c = parse(text);
    ck_assert_msg(c != NULL, "%s", errs.data);
    ck_assert(c->auth);
    ck_assert_uint_eq(c->nkeys, 3);
    ck_assert_str_eq(c->keys[0].name, "full");
    mg_auth_digest(K_FULL, strlen(K_FULL), d);
    ck_assert_mem_eq(c->keys[0].digest, d, sizeof(d));
    ck_assert_ptr_null(c->keys[0].models);
    ck_assert_ptr_null(c->keys[0].catalog_json);
    ck_assert_int_eq(c->keys[0].requests_per_minute, 0);
    ck_assert_ptr_eq(mg_auth_find(c->keys, c->nkeys, K_RESTR, strlen(K_RESTR)), &c->keys[1]);
    ck_assert_int_eq(c->keys[1].requests_per_minute, 600);
    ck_assert_int_eq(c->keys[1].tokens_per_minute, 200000);
    ck_assert_uint_eq(c->keys[1].nmodels, 3);
    /* the key's buckets, by name, once the snapshot goes into service */
    ck_assert_ptr_null(c->keys[1].limit);
    mg_auth_apply(store, c->keys, c->nkeys, 1000);
    ck_assert_ptr_eq(c->keys[1].limit, mg_limit_get(store, "restr"));
    ck_assert_str_eq(mg_limit_name(c->keys[1].limit), "restr");
    /* the key's own catalog: what it may use, in the catalog's order */
    ck_assert_ptr_nonnull(c->keys[1].catalog_json);
    ck_assert_ptr_nonnull(strstr(c->keys[1].catalog_json, "\"m-b\""));
    ck_assert_ptr_null(strstr(c->keys[1].catalog_json, "\"m-a\""));
    ck_assert_ptr_null(strstr(c->keys[1].catalog_json, "nowhere"));
    ck_assert_uint_eq(c->keys[1].catalog_json_len, strlen(c->keys[1].catalog_json));
    /* a short key loads with a warning that names the key, never quotes it */
    ck_assert_ptr_nonnull(c->warnings);
    ck_assert_ptr_nonnull(strstr(c->warnings, "t.yaml:12:30: warning: "));
    ck_assert_ptr_nonnull(strstr(c->warnings, "\"short.one\" is shorter than 16"));
    ck_assert_ptr_null(strstr(c->warnings, K_SHORT));
    mg_conf_unref(c);

    /* without auth nothing changes */
    c = parse(BASE);
    ck_assert_ptr_nonnull(c);
    ck_assert(!c->auth);
    ck_assert_uint_eq(c->nkeys, 0);
    ck_assert_ptr_null(c->warnings);
    mg_conf_unref(c);
    unsetenv("MG_TEST_CLIENT_KEY");
}
END_TEST

START_TEST(conf_key_errors)
{
    char text[2048], hex[65];
    unsigned char d[MG_AUTH_DIGEST_LEN];

    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL "}\n    - {name: a, key: "
               K_RESTR "}\n", "t.yaml:7:7: duplicate key name \"a\"");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL "}\n    - {name: b, key: "
               K_FULL "}\n", "t.yaml:7:22: key \"b\" is the same key as \"a\"");
    mg_auth_digest(K_FULL, strlen(K_FULL), d);
    hex_of(d, hex);
    hex[0] = hex[0] >= 'a' ? (char)(hex[0] - 32) : hex[0];   /* case does not matter */
    snprintf(text, sizeof(text), BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL "}\n"
             "    - {name: b, key_sha256: %s}\n", hex);
    ck_refused(text, "key \"b\" is the same key as \"a\"");
    snprintf(text, sizeof(text), BASE "auth:\n  keys:\n    - {name: a, key_sha256: %s}\n"
             "    - {name: b, key_sha256: %s}\n", hex, hex);
    ck_refused(text, "key \"b\" is the same key as \"a\"");
    setenv("MG_TEST_EMPTY_KEY", "", 1);
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: '${MG_TEST_EMPTY_KEY}'}\n",
               "t.yaml:6:22: the key of \"a\" is empty");
    unsetenv("MG_TEST_EMPTY_KEY");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: '${MG_TEST_UNSET_KEY_VAR}'}\n",
               "environment variable MG_TEST_UNSET_KEY_VAR is not set");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: \"" K_FULL "\\t\"}\n",
               "the key of \"a\" holds control characters");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key_sha256: abc123}\n",
               "t.yaml:6:29: key_sha256 of \"a\" must be 64 hex digits");
    hex[5] = 'z';
    snprintf(text, sizeof(text), BASE "auth:\n  keys:\n    - {name: a, key_sha256: %s}\n", hex);
    ck_refused(text, "key_sha256 of \"a\" must be 64 hex digits");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", key_sha256: " K_FULL "}\n",
               "has both \"key\" and \"key_sha256\"");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a}\n",
               "t.yaml:6:7: key \"a\" needs \"key\" or \"key_sha256\"");
    ck_refused(BASE "auth:\n  keys:\n    - {key: " K_FULL "}\n", "a key needs \"name\"");
    ck_refused(BASE "auth:\n  keys:\n    - {name: 'a b', key: " K_FULL "}\n",
               "key name \"a b\" may only hold");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", models: []}\n",
               "models must not be empty");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", models: ['']}\n",
               "model name must not be empty");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", requests_per_minute: 0}\n",
               "0 is out of range (1 to 1000000000)");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", tokens_per_minute: lots}\n",
               "\"lots\" is not a whole number");
    ck_refused(BASE "auth:\n  keys:\n    - {name: a, key: " K_FULL ", limit: 3}\n",
               "unknown key \"limit\" in a key");
    ck_refused(BASE "auth:\n  keys: []\n", "t.yaml:5:3: auth needs at least one entry in \"keys\"");
    ck_refused(BASE "auth:\n  keys: {a: b}\n", "keys must be a list, not a mapping");
    ck_refused(BASE "auth:\n  users: []\n", "unknown key \"users\" in auth");
    ck_refused(BASE "auth: yes\n", "auth must be a mapping");
}
END_TEST

/* ---- integration: a gateway with keys ----------------------------------------------------- */

static int fk_port, gw_port;
static pid_t fk_pid, gw_pid;
static const char *gw_log = "mgtest-auth-gw.log";
static const char *gw_access = "mgtest-auth-access.log";
static const char *gw_conf = "mgtest-auth.yaml";
static const char *err_bodies = "mgtest-auth-errors.txt";   /* every error body seen */
static char url_buf[256];

static const char *
gw(const char *path)
{
    snprintf(url_buf, sizeof(url_buf), "http://127.0.0.1:%d%s", gw_port, path);
    return url_buf;
}

static void
write_file(const char *path, const char *text)
{
    char tmp[128];
    FILE *f;

    /* write-then-rename: the gateway never reads a half-written file */
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(rename(tmp, path), 0);
}

static void
start_fake(void)
{
    char bin[256], port[16];
    char *argv[] = {bin, "--port", port, "--name", "a", NULL};

    fk_port = mg_test_free_port();
    snprintf(port, sizeof(port), "%d", fk_port);
    snprintf(bin, sizeof(bin), "%s/fakeai", mg_test_build_dir());
    fk_pid = mg_test_spawn(argv, "mgtest-auth-fake.log");
    ck_assert_msg(mg_test_wait_port(fk_port, 5000) == 0, "fakeai did not start");
}

static void
start_gw(void)
{
    char bin[256];
    char *argv[] = {bin, "-c", (char *)gw_conf, NULL};

    snprintf(bin, sizeof(bin), "%s/modelgate", mg_test_build_dir());
    unlink(gw_log);
    unlink(gw_access);
    gw_pid = mg_test_spawn(argv, gw_log);
    ck_assert_msg(mg_test_wait_port(gw_port, 10000) == 0, "modelgate did not start");
}

static void
stop_gw(void)
{
    int rc = mg_test_stop(gw_pid, 15000);

    mg_test_stop(fk_pid, 5000);
    unlink(gw_conf);
    if (rc != 0) {
        fprintf(stderr, "modelgate (auth) exited with %d (see %s)\n", rc, gw_log);
        exit(1);   /* makes the runner fail: the gateway must stop cleanly with 0 */
    }
}

static void
start_http(void)
{
    char conf[8192], hex[65];
    unsigned char d[MG_AUTH_DIGEST_LEN];

    start_fake();
    gw_port = mg_test_free_port();
    mg_auth_digest(K_RESTR, strlen(K_RESTR), d);
    hex_of(d, hex);
    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\nlog_level: debug\naccess_log: %s\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules:\n"
             "  - {models: [m-a, m-b, m-c], backends: [{backend: a}]}\n"
             "  - {models: ['pre-*'], backends: [{backend: a}]}\n"
             "  - {models: [m-off], list: false, backends: [{backend: a, weight: 0}]}\n"
             "auth:\n  keys:\n"
             "    - {name: full, key: " K_FULL "}\n"
             "    - {name: restr, key_sha256: %s, models: [m-a, 'pre-*']}\n"
             "    - {name: conc, key: " K_CONC ", requests_per_minute: 20}\n"
             "    - {name: tiny, key: " K_TINY ", requests_per_minute: 2}\n"
             "    - {name: tok, key: " K_TOK ", tokens_per_minute: 100}\n"
             "    - {name: stream, key: " K_STREAM ", tokens_per_minute: 1000}\n"
             "    - {name: cut, key: " K_CUT ", tokens_per_minute: 1000}\n"
             "    - {name: burst, key: " K_BURST ", tokens_per_minute: 100}\n"
             "    - {name: big, key: " K_BIG ", tokens_per_minute: 100}\n"
             "    - {name: back, key: " K_BACK ", tokens_per_minute: 100}\n"
             "    - {name: short, key: " K_SHORT "}\n",
             gw_port, gw_access, fk_port, hex);
    write_file(gw_conf, conf);
    unlink(err_bodies);
    start_gw();
}

/*
 * One request with a key header line (or NULL) and extra headers; error bodies are kept for
 * the final check that no key is ever echoed.
 */
static void
call(const char *method, const char *path, const char *body, const char *keyline,
     const char *const *extra, struct mg_test_resp *r)
{
    const char *h[16];
    size_t n = 0;

    if (keyline != NULL) {
        h[n++] = keyline;
    }
    for (; extra != NULL && *extra != NULL && n < 15; extra++) {
        h[n++] = *extra;
    }
    h[n] = NULL;
    mg_test_http(method, gw(path), body, body ? strlen(body) : 0, h, r);
    if (r->status >= 400) {
        FILE *f = fopen(err_bodies, "a");
        if (f != NULL) {
            fwrite(r->body.data ? r->body.data : "", 1, r->body.len, f);
            fputc('\n', f);
            fclose(f);
        }
    }
}

static void
chat(const char *model, const char *keyline, const char *const *extra, struct mg_test_resp *r)
{
    char body[256];

    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"messages\":[]}", model);
    call("POST", "/v1/chat/completions", body, keyline, extra, r);
}

/* Asserts an OpenAI-shaped gateway error; returns its message (static copy). */
static const char *
assert_error(struct mg_test_resp *r, long status, const char *code)
{
    static char msg[512];
    json_t *j, *err;

    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status,
                  r->body.data);
    j = mg_test_body_json(r);
    err = json_object_get(j, "error");
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(json_string_value(json_object_get(err, "code")), code);
    snprintf(msg, sizeof(msg), "%s", json_string_value(json_object_get(err, "message")));
    json_decref(j);
    return msg;
}

#define BEARER(k) "Authorization: Bearer " k

START_TEST(keys_required)
{
    const char *wrong_first[] = {"api-key: " K_FULL, NULL};
    struct mg_test_resp r;

    chat("m-a", NULL, NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    ck_assert_str_eq(mg_test_hdr(&r, "www-authenticate"), "Bearer");
    mg_test_resp_free(&r);
    chat("m-a", BEARER(K_WRONG), NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    ck_assert_ptr_null(strstr(r.body.data, K_WRONG));
    mg_test_resp_free(&r);
    chat("m-a", "Authorization: Basic " K_FULL, NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    mg_test_resp_free(&r);
    /* a key that is right but only a prefix, or longer */
    chat("m-a", BEARER("mgk-full-6f1d0c2a9b8e4f7a3c5d2e1"), NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    mg_test_resp_free(&r);
    /* the first of Authorization, api-key, x-api-key decides */
    chat("m-a", BEARER(K_WRONG), wrong_first, &r);
    assert_error(&r, 401, "invalid_api_key");
    mg_test_resp_free(&r);

    chat("m-a", BEARER(K_FULL), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("m-a", "authorization: bearer " K_FULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("m-a", "api-key: " K_FULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("m-a", "x-api-key: " K_FULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("m-a", "x-api-key: " K_SHORT, NULL, &r);   /* short keys work (with a warning) */
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);

    /* /v1/models needs a key too; /healthz and /metrics never do */
    call("GET", "/v1/models", NULL, NULL, NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    mg_test_resp_free(&r);
    call("GET", "/v1/models/m-a", NULL, "api-key: " K_WRONG, NULL, &r);
    assert_error(&r, 401, "invalid_api_key");
    mg_test_resp_free(&r);
    call("GET", "/healthz", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    call("GET", "/metrics", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(short_key_warned)
{
    FILE *f = fopen(gw_log, "r");
    char buf[1 << 16];
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_msg(strstr(buf, "\"short\" is shorter than 16 characters") != NULL, "%s", buf);
}
END_TEST

/* The client's credentials never reach the backend, whichever header carried them. */
START_TEST(credentials_not_forwarded)
{
    const char *h[] = {"x-fake-echo: 1", "api-key: " K_WRONG, "x-api-key: " K_WRONG,
                       "x-kept: yes", NULL};
    struct mg_test_resp r;
    json_t *j, *eh;

    chat("m-a", BEARER(K_FULL), h, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    eh = json_object_get(j, "headers");
    ck_assert_ptr_null(json_object_get(eh, "authorization"));
    ck_assert_ptr_null(json_object_get(eh, "api-key"));
    ck_assert_ptr_null(json_object_get(eh, "x-api-key"));
    ck_assert_str_eq(json_string_value(json_object_get(eh, "x-kept")), "yes");
    ck_assert_ptr_null(strstr(r.body.data, K_FULL));
    ck_assert_ptr_null(strstr(r.body.data, K_WRONG));
    json_decref(j);
    mg_test_resp_free(&r);
}
END_TEST

static int
list_has(json_t *list, const char *id)
{
    size_t i;

    for (i = 0; i < json_array_size(json_object_get(list, "data")); i++) {
        json_t *m = json_array_get(json_object_get(list, "data"), i);
        if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0) {
            return 1;
        }
    }
    return 0;
}

START_TEST(allow_list_routing_and_models)
{
    struct mg_test_resp r;
    char unserved[512];
    json_t *j;

    /* the full key sees and reaches every model */
    call("GET", "/v1/models", NULL, BEARER(K_FULL), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert(list_has(j, "m-a") && list_has(j, "m-b") && list_has(j, "m-c"));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "data")), 3);
    json_decref(j);
    mg_test_resp_free(&r);
    chat("nowhere", BEARER(K_FULL), NULL, &r);
    snprintf(unserved, sizeof(unserved), "%s", assert_error(&r, 404, "model_not_found"));
    mg_test_resp_free(&r);

    /* the restricted key (given as key_sha256) sees its own catalog */
    call("GET", "/v1/models", NULL, BEARER(K_RESTR), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    j = mg_test_body_json(&r);
    ck_assert(list_has(j, "m-a"));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    mg_test_resp_free(&r);
    call("GET", "/v1/models/m-a", NULL, BEARER(K_RESTR), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    call("GET", "/v1/models/m-b", NULL, BEARER(K_RESTR), NULL, &r);
    assert_error(&r, 404, "model_not_found");
    mg_test_resp_free(&r);
    call("GET", "/v1/models/m-b", NULL, BEARER(K_FULL), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);

    /* routing: allowed models go through, others are 404 exactly like an unserved model */
    chat("m-a", BEARER(K_RESTR), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("pre-x", BEARER(K_RESTR), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("m-b", BEARER(K_RESTR), NULL, &r);
    ck_assert_str_eq(assert_error(&r, 404, "model_not_found"),
                     "The model 'm-b' is not served by this gateway");
    mg_test_resp_free(&r);
    chat("nowhere", BEARER(K_RESTR), NULL, &r);
    ck_assert_str_eq(assert_error(&r, 404, "model_not_found"), unserved);
    mg_test_resp_free(&r);
}
END_TEST

/* The value of header name among a response's, as an integer (-1 when absent). */
static long
hnum(struct mg_test_resp *r, const char *name)
{
    const char *v = mg_test_hdr(r, name);

    return v ? strtol(v, NULL, 10) : -1;
}

START_TEST(request_limit_headers)
{
    const char *prov[] = {"x-fake-ratelimit: 1", NULL};
    struct mg_test_resp r;
    long ra;

    /* every routed answer to a limited key carries its trio in place of the backend's */
    chat("m-a", BEARER(K_TINY), prov, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-limit-requests"), 2);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-remaining-requests"), 1);
    ck_assert_ptr_nonnull(mg_test_hdr(&r, "x-ratelimit-reset-requests"));
    /* the backend's, dropped */
    ck_assert_ptr_null(mg_test_hdr(&r, "x-ratelimit-remaining-tokens"));
    ck_assert_int_eq(hnum(&r, "retry-after"), 3);                  /* the backend's, kept */
    mg_test_resp_free(&r);
    chat("m-a", BEARER(K_TINY), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-remaining-requests"), 0);
    mg_test_resp_free(&r);
    /* the third is the limiter's own 429 */
    chat("m-a", BEARER(K_TINY), NULL, &r);
    assert_error(&r, 429, "rate_limit_exceeded");
    ra = hnum(&r, "retry-after");
    ck_assert_msg(ra >= 1 && ra <= 30, "Retry-After %ld", ra);   /* 60 s / 2, less time gone */
    ck_assert_int_eq(hnum(&r, "x-ratelimit-limit-requests"), 2);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-remaining-requests"), 0);
    ck_assert_ptr_nonnull(mg_test_hdr(&r, "x-ratelimit-reset-requests"));
    ck_assert_ptr_null(mg_test_hdr(&r, "x-ratelimit-limit-tokens"));
    mg_test_resp_free(&r);
    /* /v1/models is not limited, and a refused model costs nothing */
    call("GET", "/v1/models", NULL, BEARER(K_TINY), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);

    /* an unlimited key gets the backend's headers as they are */
    chat("m-a", BEARER(K_FULL), prov, &r);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-limit-requests"), 9999);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-remaining-tokens"), 8888);
    mg_test_resp_free(&r);
}
END_TEST

START_TEST(token_limit_from_usage)
{
    const char *u[] = {"x-fake-usage: 10,20", NULL};
    struct mg_test_resp r;
    int64_t t0 = mg_now_ms();
    int ok = 0, i;
    double secs;

    /*
     * 100 tokens a minute. Each request ({"model":"m-a","messages":[]}, 29 bytes) reserves 7 and
     * its answer settles at 30: 70, 40, 10 left; the fourth (10 >= 7) empties the bucket (its
     * 30 would be -20: never below empty), the fifth waits for its 7.
     */
    for (i = 0; i < 10; i++) {
        chat("m-a", BEARER(K_TOK), u, &r);
        if (r.status != 200) {
            break;
        }
        ck_assert_int_eq(hnum(&r, "x-ratelimit-limit-tokens"), 100);
        ck_assert_ptr_null(mg_test_hdr(&r, "x-ratelimit-limit-requests"));   /* no request limit */
        ok++;
        mg_test_resp_free(&r);
    }
    secs = (double)(mg_now_ms() - t0) / 1000.0;
    assert_error(&r, 429, "rate_limit_exceeded");
    ck_assert_int_lt(hnum(&r, "x-ratelimit-remaining-tokens"), 7);
    /* 7 tokens at 100 a minute: 4.2 s */
    ck_assert_msg(hnum(&r, "retry-after") >= 1 && hnum(&r, "retry-after") <= 5, "%ld",
                  hnum(&r, "retry-after"));
    mg_test_resp_free(&r);
    /* the refill during the loop (100/min) can only have added an answer if it took > 4 s */
    ck_assert_msg(secs > 4 ? ok >= 4 : ok == 4, "%d answers in %.1f s", ok, secs);
}
END_TEST

/* Streams are settled too, from the usage the gateway asks for and hides from the client. */
START_TEST(token_limit_streams)
{
    const char *u[] = {"x-fake-usage: 400,500", NULL};
    const char *body = "{\"model\":\"m-a\",\"stream\":true,\"messages\":[]}";
    const char *large = "{\"model\":\"m-a\",\"stream\":true,\"max_tokens\":900,\"messages\":[]}";
    struct mg_test_resp r;
    long left;

    call("POST", "/v1/chat/completions", body, BEARER(K_STREAM), u, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "[DONE]"));
    ck_assert_ptr_null(strstr(r.body.data, "\"usage\""));   /* hidden from the client */
    mg_test_resp_free(&r);
    chat("m-a", BEARER(K_STREAM), NULL, &r);
    ck_assert_int_eq(r.status, 200);
    /* the trio is made with this request's 7 reserved: 1000 - 900 - 7, plus refill */
    left = hnum(&r, "x-ratelimit-remaining-tokens");
    ck_assert_msg(left >= 92 && left < 200, "remaining tokens %ld", left);
    mg_test_resp_free(&r);
    call("POST", "/v1/chat/completions", body, BEARER(K_STREAM), u, &r);
    ck_assert_int_eq(r.status, 200);   /* 70 hold its 10; its 900 then empty the bucket */
    mg_test_resp_free(&r);
    /* 910 (43 bytes / 4 + 900) are most of a minute away */
    call("POST", "/v1/chat/completions", large, BEARER(K_STREAM), u, &r);
    assert_error(&r, 429, "rate_limit_exceeded");
    ck_assert_msg(hnum(&r, "retry-after") >= 30 && hnum(&r, "retry-after") <= 60, "%ld",
                  hnum(&r, "retry-after"));
    mg_test_resp_free(&r);
}
END_TEST

static json_t *access_line(const char *needle);

/*
 * A stream cut after 20 of its 40 chunks reports no usage: it is debited its estimate, the
 * request's bytes / 4 plus one token per output event relayed (~30 here), not its bytes / 4
 * (~860 before, so the third of three such requests on a 1,000-token key was a 429).
 */
START_TEST(cut_stream_estimate)
{
    const char *body = "{\"model\":\"m-a\",\"stream\":true,\"messages\":[]}";
    const char *ids[3] = {"x-request-id: auth-cut-1", "x-request-id: auth-cut-2",
                          "x-request-id: auth-cut-3"};
    struct mg_test_resp r;
    json_int_t in, out;
    json_t *j;
    int i;

    for (i = 0; i < 3; i++) {
        const char *h[] = {"x-fake-chunks: 40", "x-fake-cut-after: 20", ids[i], NULL};
        call("POST", "/v1/chat/completions", body, BEARER(K_CUT), h, &r);
        ck_assert_msg(r.status == 200, "request %d: status %ld", i + 1, r.status);
        ck_assert_ptr_nonnull(strstr(r.body.data, "upstream_stream_error"));
        mg_test_resp_free(&r);
    }
    j = access_line("auth-cut-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "error")), "upstream_stream_error");
    ck_assert(json_is_true(json_object_get(j, "usage_estimated")));
    in = json_integer_value(json_object_get(j, "input_tokens"));
    out = json_integer_value(json_object_get(j, "output_tokens"));
    ck_assert_int_eq(in, (json_int_t)strlen(body) / 4);
    /* 20 events went out before the cut: the role chunk and 19 with content */
    ck_assert_msg(out >= 18 && out <= 20, "output_tokens %lld", (long long)out);
    json_decref(j);
    /* an answer that reports its usage is not an estimate */
    chat("m-a", BEARER(K_FULL), (const char *[]){"x-request-id: auth-cut-4", NULL}, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    j = access_line("auth-cut-4");
    ck_assert_ptr_null(json_object_get(j, "usage_estimated"));
    json_decref(j);
}
END_TEST

/* ---- token reservations: concurrent bursts, the debt cap, reservations given back ---- */

#define BURST 20

struct burst {
    pthread_barrier_t *go;
    const char        *key;
    const char        *body;
    const char        *usage;     /* the x-fake-usage line */
    long               status;
    long               retry_after;
};

static void *
burst_client(void *arg)
{
    struct burst *b = arg;
    const char *h[] = {b->key, b->usage, "Content-Type: application/json", NULL};
    struct mg_test_resp r;
    char url[128];
    const char *v;
    char buf[32];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    pthread_barrier_wait(b->go);
    mg_test_http("POST", url, b->body, strlen(b->body), h, &r);
    b->status = r.status;
    v = mg_test_header(&r, "retry-after", buf, sizeof(buf));
    b->retry_after = v != NULL ? strtol(v, NULL, 10) : -1;
    mg_test_resp_free(&r);
    return NULL;
}

/* BURST requests at once; returns how many were admitted (200), the others must be 429. */
static int
run_burst(const char *keyline, const char *body, const char *usage, long *max_retry)
{
    pthread_t th[BURST];
    struct burst b[BURST];
    pthread_barrier_t go;
    int i, ok = 0;

    pthread_barrier_init(&go, NULL, BURST);
    for (i = 0; i < BURST; i++) {
        b[i].go = &go;
        b[i].key = keyline;
        b[i].body = body;
        b[i].usage = usage;
        ck_assert_int_eq(pthread_create(&th[i], NULL, burst_client, &b[i]), 0);
    }
    *max_retry = 0;
    for (i = 0; i < BURST; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&go);
    for (i = 0; i < BURST; i++) {
        ck_assert_msg(b[i].status == 200 || b[i].status == 429, "status %ld", b[i].status);
        if (b[i].status == 200) {
            ok++;
            continue;
        }
        ck_assert_msg(b[i].retry_after >= 1 && b[i].retry_after <= 60, "Retry-After %ld",
                      b[i].retry_after);
        *max_retry = b[i].retry_after > *max_retry ? b[i].retry_after : *max_retry;
    }
    return ok;
}

/*
 * A tokens_per_minute: 100 key, 20 concurrent requests with max_tokens: 50. Each body is 80
 * bytes, so each reserves 80 / 4 + 50 = 70 when admitted, and only when the bucket holds 70:
 * the first leaves 30, and the next needs 40 more, 24 s of refill at 100 a minute. So exactly
 * one is admitted (its answer reports 40 + 30 = 70: the settlement changes nothing), the 19
 * others get 429 with Retry-After at most 24. Before, all were admitted (tokens were only
 * debited after the answers) and the key owed ~1,400 tokens.
 */
START_TEST(token_reservations_bound_a_burst)
{
    const char *body = "{\"model\":\"m-a\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hello t\"}]}";
    int64_t t0 = mg_now_ms(), ms;
    long max_retry;
    int ok;

    ck_assert_uint_eq(strlen(body), 80);
    ok = run_burst(BEARER(K_BURST), body, "x-fake-usage: 40,30", &max_retry);
    ms = mg_now_ms() - t0;
    fprintf(stderr, "token_reservations_bound_a_burst: %d of %d admitted in %lld ms, "
            "Retry-After up to %ld s\n", ok, BURST, (long long)ms, max_retry);
    /* a burst slower than 24 s (never seen) could admit one more each 42 s after that */
    ck_assert_msg(ms < 24000 ? ok == 1 : ok >= 1 && ok <= 2 + (int)((ms - 24000) / 42000),
                  "%d admitted in %lld ms", ok, (long long)ms);
    ck_assert_msg(max_retry >= 1 && max_retry <= 24, "Retry-After %ld", max_retry);
}
END_TEST

/*
 * After a burst of answers that report far more than the limit, the key waits at most a minute:
 * the bucket is empty, never in debt. Before, 50,000 tokens on a 100-token key meant 8.3 hours
 * (Retry-After: 29999) per answer of the burst.
 */
START_TEST(retry_after_capped_after_large_usage)
{
    const char *small = "{\"model\":\"m-a\",\"messages\":[]}";   /* 29 bytes: 7 tokens */
    const char *large = "{\"model\":\"m-a\",\"max_tokens\":1000,\"messages\":[]}";
    const char *u[] = {"x-fake-usage: 50000,0", NULL};
    struct mg_test_resp r;
    long max_retry, ra;
    int ok;

    /* up to 14 of 20 fit (7 each); each answer then reports 50,000 */
    ok = run_burst(BEARER(K_BIG), small, "x-fake-usage: 50000,0", &max_retry);
    ck_assert_int_ge(ok, 1);
    /* the bucket is empty now: a request as large as the limit waits for a full bucket */
    call("POST", "/v1/chat/completions", large, BEARER(K_BIG), u, &r);
    assert_error(&r, 429, "rate_limit_exceeded");
    ra = hnum(&r, "retry-after");
    /* 1000 is capped at the capacity, 100: a full bucket, 60 s at most from empty */
    ck_assert_msg(ra >= 1 && ra <= 60, "Retry-After %ld after %d answers of 50,000", ra, ok);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-remaining-tokens"), 0);
    ck_assert_ptr_nonnull(strstr(mg_test_hdr(&r, "x-ratelimit-reset-tokens"), "s"));
    ck_assert_msg(strchr(mg_test_hdr(&r, "x-ratelimit-reset-tokens"), 'h') == NULL &&
                  (strchr(mg_test_hdr(&r, "x-ratelimit-reset-tokens"), 'm') == NULL ||
                   strcmp(mg_test_hdr(&r, "x-ratelimit-reset-tokens"), "1m0s") == 0),
                  "reset %s", mg_test_hdr(&r, "x-ratelimit-reset-tokens"));
    mg_test_resp_free(&r);
    /* a small request waits only for its own 7 tokens: 4.2 s from empty */
    chat("m-a", BEARER(K_BIG), NULL, &r);
    assert_error(&r, 429, "rate_limit_exceeded");
    ck_assert_msg(hnum(&r, "retry-after") >= 1 && hnum(&r, "retry-after") <= 5, "%ld",
                  hnum(&r, "retry-after"));
    mg_test_resp_free(&r);
}
END_TEST

/*
 * A request that gets no answer gives its reservation back in full: an error answer (all
 * attempts failed), a refusal of the gateway after admission (a rule with no enabled backend),
 * a client that left before the answer. Each reserves 80 / 4 + 60 = 80 of the key's 100; without
 * the give-back the next one (80) would be refused for ~36 s.
 */
START_TEST(reservations_given_back_without_answer)
{
    static const char body[] = "{\"model\":\"m-a\",\"max_tokens\":60,\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"hello t\"}]}";
    static const char off[] = "{\"model\":\"m-off\",\"max_tokens\":60,\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"hello\"}]}";
    const char *fail[] = {"x-fake-status: 500", NULL};
    const char *small[] = {"x-fake-usage: 3,2", NULL};
    char raw[1024];
    struct mg_test_resp r;
    struct mg_buf out;
    json_t *j;
    char id[64];
    int n, rc, tries, answered;

    ck_assert_uint_eq(strlen(body), 80);
    ck_assert_uint_eq(strlen(off), 80);
    /* the backend fails (500, then 500 again on the retry): passed through, nothing debited */
    call("POST", "/v1/chat/completions", body, BEARER(K_BACK), fail, &r);
    ck_assert_int_eq(r.status, 500);
    mg_test_resp_free(&r);
    /* the gateway refuses it after admission: no backend is enabled for m-off */
    call("POST", "/v1/chat/completions", off, BEARER(K_BACK), NULL, &r);
    assert_error(&r, 502, "upstream_unavailable");
    mg_test_resp_free(&r);
    /* so 80 fit again; this one's answer settles at 5 (95 left) */
    call("POST", "/v1/chat/completions", body, BEARER(K_BACK), small, &r);
    ck_assert_msg(r.status == 200, "%ld: %s", r.status, r.body.data);
    mg_test_resp_free(&r);
    /* a client that leaves while the backend is still thinking (499). The answer above settles
     * right after its last byte: a request sent the same instant may still meet its reservation
     * (429), so this one is tried again, a little later, until the backend has it */
    for (tries = 0;; tries++) {
        snprintf(id, sizeof(id), "auth-back-gone-%d", tries);
        n = snprintf(raw, sizeof(raw), "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer " K_BACK "\r\nx-fake-delay-ms: 10000\r\n"
                     "x-request-id: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s", id, strlen(body), body);
        mg_buf_init(&out, 1 << 16);
        rc = mg_test_raw(gw_port, raw, (size_t)n, 300, &out);
        answered = out.len > 0;   /* none yet: the backend is thinking */
        ck_assert_msg((rc == 0 && !answered) || (answered && strstr(out.data, " 429 ") != NULL),
                      "%s", answered ? out.data : "(closed without an answer)");
        mg_buf_deinit(&out);
        if (!answered) {
            break;
        }
        ck_assert_msg(tries < 40, "the reservation was not given back within 2 s");
        usleep(50000);
    }
    j = access_line(id);   /* the gateway saw it leave */
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 499);
    json_decref(j);
    call("POST", "/v1/chat/completions", body, BEARER(K_BACK), small, &r);
    ck_assert_msg(r.status == 200, "%ld after the client left: %s", r.status, r.body.data);
    mg_test_resp_free(&r);
}
END_TEST

/* ---- 8 concurrent clients against a key of 20 requests a minute ---- */

#define CONC_THREADS 8
#define CONC_EACH    6

struct conc {
    int ok, limited, other;
};

static void *
conc_client(void *arg)
{
    struct conc *c = arg;
    const char *h[] = {BEARER(K_CONC), "Content-Type: application/json", NULL};
    const char *body = "{\"model\":\"m-a\",\"messages\":[]}";
    char url[128];
    int i;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", gw_port);
    for (i = 0; i < CONC_EACH; i++) {
        struct mg_test_resp r;
        mg_test_http("POST", url, body, strlen(body), h, &r);
        if (r.status == 200) {
            c->ok++;
        } else if (r.status == 429) {
            c->limited++;
        } else {
            c->other++;
        }
        mg_test_resp_free(&r);
    }
    return NULL;
}

START_TEST(budget_under_concurrency)
{
    pthread_t th[CONC_THREADS];
    struct conc c[CONC_THREADS];
    int ok = 0, limited = 0, other = 0, i, refill;
    int64_t t0 = mg_now_ms();

    memset(c, 0, sizeof(c));
    for (i = 0; i < CONC_THREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_client, &c[i]), 0);
    }
    for (i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok;
        limited += c[i].limited;
        other += c[i].other;
    }
    /*
     * The budget is the burst (20) plus what refills while the test runs: one request every 3 s.
     * Buckets are per-key atomics shared by both workers, so there is no per-worker overshoot:
     * the tolerance is exactly that refill, floor(elapsed / 3 s), and nothing else.
     */
    refill = (int)((mg_now_ms() - t0) / 3000);
    fprintf(stderr, "budget_under_concurrency: %d ok, %d limited in %lld ms\n", ok, limited,
            (long long)(mg_now_ms() - t0));
    ck_assert_int_eq(other, 0);
    ck_assert_int_eq(ok + limited, CONC_THREADS * CONC_EACH);
    ck_assert_msg(ok >= 20 && ok <= 20 + refill, "%d admitted, want 20 (+%d refill)", ok, refill);
}
END_TEST

/* The value of one sample of /metrics, or -1. */
static double
metric(const char *series)
{
    struct mg_test_resp r;
    double v;

    call("GET", "/metrics", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    v = mg_test_metric(r.body.data, series);
    mg_test_resp_free(&r);
    return v;
}

START_TEST(key_metrics)
{
    const char *u[] = {"x-fake-usage: 7,11", NULL};
    struct mg_test_resp r;
    double req0 = metric("modelgate_key_requests_total{key=\"full\",code=\"200\"}");
    double in0 = metric("modelgate_key_tokens_total{key=\"full\",type=\"input\"}");
    double out0 = metric("modelgate_key_tokens_total{key=\"full\",type=\"output\"}");
    double nf0 = metric("modelgate_key_requests_total{key=\"full\",code=\"404\"}");

    chat("m-a", BEARER(K_FULL), u, &r);
    ck_assert_int_eq(r.status, 200);
    mg_test_resp_free(&r);
    chat("nowhere", BEARER(K_FULL), u, &r);   /* refused by the gateway: counted, no tokens */
    ck_assert_int_eq(r.status, 404);
    mg_test_resp_free(&r);
    ck_assert(metric("modelgate_key_requests_total{key=\"full\",code=\"200\"}") ==
              (req0 < 0 ? 0 : req0) + 1);
    ck_assert(metric("modelgate_key_requests_total{key=\"full\",code=\"404\"}") ==
              (nf0 < 0 ? 0 : nf0) + 1);
    ck_assert(metric("modelgate_key_tokens_total{key=\"full\",type=\"input\"}") ==
              (in0 < 0 ? 0 : in0) + 7);
    ck_assert(metric("modelgate_key_tokens_total{key=\"full\",type=\"output\"}") ==
              (out0 < 0 ? 0 : out0) + 11);
    /* the limiter's own 429s are counted (the tiny key was refused once above) */
    ck_assert(metric("modelgate_key_requests_total{key=\"tiny\",code=\"429\"}") >= 1);
    ck_assert(metric("modelgate_key_requests_total{key=\"tiny\",code=\"200\"}") >= 2);
}
END_TEST

/* Finds the access log line holding needle (waiting for the flush); returns it parsed. */
static json_t *
access_line(const char *needle)
{
    static char buf[1 << 20];
    int64_t deadline = mg_now_ms() + 5000 * mg_test_scale();

    while (mg_now_ms() < deadline) {
        FILE *f = fopen(gw_access, "r");
        char *line, *save = NULL;
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strstr(line, needle) != NULL) {
                json_t *j = json_loads(line, 0, NULL);
                ck_assert_msg(j != NULL, "access log line is not JSON: %s", line);
                return j;
            }
        }
        usleep(20000);
    }
    ck_abort_msg("no access log line with %s", needle);
    return NULL;
}

START_TEST(key_in_access_log)
{
    const char *id1[] = {"x-request-id: auth-acc-1", NULL};
    const char *id2[] = {"x-request-id: auth-acc-2", NULL};
    const char *id3[] = {"x-request-id: auth-acc-3", NULL};
    struct mg_test_resp r;
    json_t *j;

    chat("m-a", BEARER(K_FULL), id1, &r);
    mg_test_resp_free(&r);
    chat("m-a", BEARER(K_WRONG), id2, &r);
    mg_test_resp_free(&r);
    chat("m-b", BEARER(K_RESTR), id3, &r);
    mg_test_resp_free(&r);
    j = access_line("auth-acc-1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "key")), "full");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 200);
    json_decref(j);
    j = access_line("auth-acc-2");
    ck_assert(json_is_null(json_object_get(j, "key")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 401);
    json_decref(j);
    j = access_line("auth-acc-3");
    ck_assert_str_eq(json_string_value(json_object_get(j, "key")), "restr");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), 404);
    json_decref(j);
}
END_TEST

/* Asserts that no key string is in the file (0: the file must exist). */
static void
assert_no_key_in(const char *path, const char *text)
{
    static char buf[1 << 22];
    size_t n = 0, i;

    if (text == NULL) {
        FILE *f = fopen(path, "r");
        ck_assert_msg(f != NULL, "%s is missing", path);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        text = buf;
    }
    for (i = 0; i < MG_ARRAY_LEN(all_keys); i++) {
        ck_assert_msg(strstr(text, all_keys[i]) == NULL, "%s holds key %zu", path, i);
    }
}

/* Runs last: every log line, metric and error body written so far. */
START_TEST(keys_never_written)
{
    struct mg_test_resp r;

    json_decref(access_line("auth-acc-3"));   /* the access log has been flushed */
    call("GET", "/metrics", NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body.data, "modelgate_key_requests_total{key=\"full\""));
    assert_no_key_in("/metrics", r.body.data);
    mg_test_resp_free(&r);
    assert_no_key_in(gw_log, NULL);
    assert_no_key_in(gw_access, NULL);
    assert_no_key_in(err_bodies, NULL);
}
END_TEST

/* ---- integration: reloads ---------------------------------------------------------------- */

static int reloads;

/* Rewrites the config with these keys, SIGHUPs, waits for the log line; 1 when ok. */
static int
reload_with(const char *keys)
{
    char conf[4096], ok[160], refused[160];
    int64_t deadline;
    FILE *f;
    static char buf[1 << 20];

    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\naccess_log: off\n"
             "backends: [{name: a, url: 'http://127.0.0.1:%d/v1'}]\n"
             "rules: [{models: [m-a], backends: [{backend: a}]}]\n"
             "auth:\n  keys:\n%s",
             gw_port, fk_port, keys);
    write_file(gw_conf, conf);
    if (gw_pid == 0) {
        start_gw();
        return 1;
    }
    reloads++;
    snprintf(ok, sizeof(ok), "reload %d of %s: ok", reloads, gw_conf);
    snprintf(refused, sizeof(refused), "reload %d of %s refused", reloads, gw_conf);
    kill(gw_pid, SIGHUP);
    deadline = mg_now_ms() + 10000 * mg_test_scale();
    while (mg_now_ms() < deadline) {
        size_t n;
        f = fopen(gw_log, "r");
        n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f) {
            fclose(f);
        }
        buf[n] = '\0';
        if (strstr(buf, ok) != NULL) {
            return 1;
        }
        if (strstr(buf, refused) != NULL) {
            return 0;
        }
        usleep(5000);
    }
    ck_abort_msg("reload %d was not logged", reloads);
    return 0;
}


static void
start_reload(void)
{
    start_fake();
    gw_port = mg_test_free_port();
    gw_pid = 0;
    reloads = 0;
    unlink(err_bodies);
    reload_with("    - {name: stay, key: " K_ROT1 "}\n"
                "    - {name: gone, key: " K_GONE "}\n"
                "    - {name: lim, key: " K_LIM ", requests_per_minute: 3}\n"
                "    - {name: clamp, key: " K_CLMP ", requests_per_minute: 10}\n");
}

static long
status_of(const char *keyline)
{
    struct mg_test_resp r;
    long s;

    chat("m-a", keyline, NULL, &r);
    s = r.status;
    mg_test_resp_free(&r);
    return s;
}

START_TEST(reload_keys_and_buckets)
{
    struct mg_test_resp r;
    int i, ok;

    ck_assert_int_eq(status_of(BEARER(K_GONE)), 200);
    ck_assert_int_eq(status_of(BEARER(K_ROT1)), 200);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(status_of(BEARER(K_LIM)), 200);
    }
    ck_assert_int_eq(status_of(BEARER(K_LIM)), 429);

    /*
     * Reload: "gone" removed, "stay" rotated to a new key, "lim" unchanged, "clamp" lowered from
     * 10 (full) to 2.
     */
    ck_assert(reload_with("    - {name: stay, key: " K_ROT2 "}\n"
                          "    - {name: lim, key: " K_LIM ", requests_per_minute: 3}\n"
                          "    - {name: clamp, key: " K_CLMP ", requests_per_minute: 2}\n"));
    ck_assert_int_eq(status_of(BEARER(K_GONE)), 401);   /* a removed key stops at once */
    ck_assert_int_eq(status_of(BEARER(K_ROT1)), 401);   /* the old key of a rotated name */
    ck_assert_int_eq(status_of(BEARER(K_ROT2)), 200);
    ck_assert_int_eq(status_of(BEARER(K_LIM)), 429);    /* its empty bucket was kept */
    for (ok = 0; status_of(BEARER(K_CLMP)) == 200 && ok < 10; ok++) {
    }
    ck_assert_int_eq(ok, 2);   /* the level was clamped to the new, lower capacity */

    /* raised: the level stays where it was (empty), the new limit shows in the headers */
    ck_assert(reload_with("    - {name: stay, key: " K_ROT2 "}\n"
                          "    - {name: lim, key: " K_LIM ", requests_per_minute: 6}\n"));
    chat("m-a", BEARER(K_LIM), NULL, &r);
    ck_assert_int_eq(r.status, 429);
    ck_assert_int_eq(hnum(&r, "x-ratelimit-limit-requests"), 6);
    mg_test_resp_free(&r);

    /* a broken file is refused and the keys in service stay */
    ck_assert(!reload_with("    - {name: stay, key: ''}\n"));
    ck_assert_int_eq(status_of(BEARER(K_ROT2)), 200);
    assert_no_key_in(gw_log, NULL);
    assert_no_key_in(err_bodies, NULL);
}
END_TEST

Suite *
auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *t = tcase_create("keys");

    tcase_add_checked_fixture(t, limit_setup, limit_teardown);
    tcase_add_test(t, digest_and_hex);
    tcase_add_test(t, credential_from_headers);
    tcase_add_test(t, find_and_allow);
    tcase_add_test(t, limits_through_snapshots);
    tcase_add_test(t, conf_keys);
    tcase_add_test(t, conf_key_errors);
    suite_add_tcase(s, t);

    t = tcase_create("http");
    tcase_set_timeout(t, 120);
    tcase_add_unchecked_fixture(t, start_http, stop_gw);
    tcase_add_test(t, keys_required);
    tcase_add_test(t, short_key_warned);
    tcase_add_test(t, credentials_not_forwarded);
    tcase_add_test(t, allow_list_routing_and_models);
    tcase_add_test(t, request_limit_headers);
    tcase_add_test(t, token_limit_from_usage);
    tcase_add_test(t, token_limit_streams);
    tcase_add_test(t, cut_stream_estimate);
    tcase_add_test(t, token_reservations_bound_a_burst);
    tcase_add_test(t, retry_after_capped_after_large_usage);
    tcase_add_test(t, reservations_given_back_without_answer);
    tcase_add_test(t, budget_under_concurrency);
    tcase_add_test(t, key_metrics);
    tcase_add_test(t, key_in_access_log);
    tcase_add_test(t, keys_never_written);
    suite_add_tcase(s, t);

    t = tcase_create("reload");
    tcase_set_timeout(t, 120);
    tcase_add_unchecked_fixture(t, start_reload, stop_gw);
    tcase_add_test(t, reload_keys_and_buckets);
    suite_add_tcase(s, t);
    return s;
}
