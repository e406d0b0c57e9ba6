/*
 * Suite tls: the client listener over HTTPS (the config's tls: block), with a CA and certificates
 * made at test time. Chat and a stream over HTTPS, ALPN http/1.1, TLS 1.1 and h2-only clients
 * refused, the handshake inside header_timeout, a SIGHUP that swaps the certificate for new
 * connections while an open one keeps working, min_version 1.3, config errors (a key that does
 * not match, an expired certificate, an unreadable file), and the official OpenAI SDK over HTTPS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mg_conf.h"
#include "mg_harness.h"
#include "mg_test.h"
#include "mg_util.h"

#define DAY (24L * 3600)

static struct mg_harness th;
static char dir[512];                   /* the working directory: the files' absolute paths */
static char ca_path[600], cert_path[600], key_path[600];

/* ---- certificates made at test time --------------------------------------------------------- */

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static EVP_PKEY *
new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    ck_assert_ptr_nonnull(k);
    return k;
}

static void
add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(e);
    X509_add_ext(c, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by the CA (or itself when ca_cert is NULL), valid [from, to]. */
static X509 *
new_cert(EVP_PKEY *key, long serial, long from, long to)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_get_subject_name(c);
    int leaf = ca_cert != NULL;

    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
    X509_gmtime_adj(X509_getm_notBefore(c), from);
    X509_gmtime_adj(X509_getm_notAfter(c), to);
    X509_set_pubkey(c, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)(leaf ? "localhost" : "modelgate test CA"),
                               -1, -1, 0);
    X509_set_issuer_name(c, leaf ? X509_get_subject_name(ca_cert) : name);
    if (leaf) {
        add_ext(c, ca_cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        add_ext(c, ca_cert, NID_basic_constraints, "CA:FALSE");
    } else {
        add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    ck_assert_int_gt(X509_sign(c, leaf ? ca_key : key, EVP_sha256()), 0);
    return c;
}

static void
write_cert(const char *path, X509 *c)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, c), 1);
    fclose(f);
}

static void
write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A new leaf (key and certificate) at cert_path/key_path, written by rename (a renewal). */
static void
renew(long serial, long from, long to)
{
    char tmp_cert[640], tmp_key[640];
    EVP_PKEY *k = new_key();
    X509 *c = new_cert(k, serial, from, to);

    snprintf(tmp_cert, sizeof(tmp_cert), "%s.new", cert_path);
    snprintf(tmp_key, sizeof(tmp_key), "%s.new", key_path);
    write_cert(tmp_cert, c);
    write_key(tmp_key, k);
    ck_assert_int_eq(rename(tmp_key, key_path), 0);
    ck_assert_int_eq(rename(tmp_cert, cert_path), 0);
    X509_free(c);
    EVP_PKEY_free(k);
}

/* ---- the gateway -------------------------------------------------------------------------- */

static const char *
gw_conf(const char *extra)
{
    static char conf[2048];

    snprintf(conf, sizeof(conf),
             "listen: 127.0.0.1:%d\nworkers: 2\nheader_timeout: 1s\nlog_level: debug\n"
             "tls: {cert: '%s', key: '%s'%s}\n"
             "backends:\n"
             "  - {name: a, url: 'http://127.0.0.1:%d/v1'}\n"
             "  - {name: claude, schema: anthropic, url: 'http://127.0.0.1:%d', api_key: sk-ant}\n"
             "rules:\n"
             "  - {models: [m], backends: [{backend: a}]}\n"
             "  - {models: [claude-x], backends: [{backend: claude}]}\n",
             th.gw_port, cert_path, key_path, extra, th.fake_port[0], th.fake_port[0]);
    return conf;
}

static void
start_tls(void)
{
    EVP_PKEY *k;
    X509 *c;

    ck_assert_ptr_nonnull(getcwd(dir, sizeof(dir)));
    snprintf(ca_path, sizeof(ca_path), "%s/mgtest-tls-ca.pem", dir);
    snprintf(cert_path, sizeof(cert_path), "%s/mgtest-tls-cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/mgtest-tls-key.pem", dir);
    ca_key = new_key();
    ca_cert = NULL;
    ca_cert = new_cert(ca_key, 100, -DAY, 30 * DAY);
    write_cert(ca_path, ca_cert);
    k = new_key();
    c = new_cert(k, 1, -DAY, 30 * DAY);
    write_cert(cert_path, c);
    write_key(key_path, k);
    X509_free(c);
    EVP_PKEY_free(k);
    mg_harness_init(&th, "mgtest-tls-gw.log", "mgtest-tls-fake.log");
    mg_harness_fake(&th, "tls", NULL);
    mg_harness_start(&th, 6, gw_conf(""));
}

static void
stop_tls(void)
{
    mg_harness_stop(&th, "modelgate (tls)");
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    ca_cert = NULL;
    ca_key = NULL;
}

/* ---- a TLS client ------------------------------------------------------------------------- */

struct tconn {
    SSL_CTX *ctx;
    SSL     *ssl;
    int      fd;
};

static int
tcp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/*
 * A handshake with the gateway: max_version 0 for any, alpn in wire form (NULL: none). 1 when
 * it completed (t is then open), 0 when it was refused.
 */
static int
tls_open(struct tconn *t, int max_version, const char *alpn, size_t alpn_len)
{
    struct timeval tv = {10, 0};
    int ok;

    t->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(t->ctx, 0);   /* let this client offer what the gateway refuses */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_VERSION);
    if (max_version != 0) {
        SSL_CTX_set_max_proto_version(t->ctx, max_version);
        SSL_CTX_set_cipher_list(t->ctx, "DEFAULT:@SECLEVEL=0");
    }
    ck_assert_int_eq(SSL_CTX_load_verify_locations(t->ctx, ca_path, NULL), 1);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    t->fd = tcp_connect(th.gw_port);
    setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    t->ssl = SSL_new(t->ctx);
    SSL_set_fd(t->ssl, t->fd);
    SSL_set1_host(t->ssl, "localhost");
    if (alpn != NULL) {
        SSL_set_alpn_protos(t->ssl, (const unsigned char *)alpn, (unsigned)alpn_len);
    }
    ok = SSL_connect(t->ssl) == 1;
    ERR_clear_error();
    return ok;
}

static void
tls_close(struct tconn *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
}

/* The serial number of the gateway's certificate on t. */
static long
peer_serial(struct tconn *t)
{
    X509 *c = SSL_get1_peer_certificate(t->ssl);
    long s;

    ck_assert_ptr_nonnull(c);
    s = ASN1_INTEGER_get(X509_get_serialNumber(c));
    X509_free(c);
    return s;
}

/* GET /healthz on an open connection, kept alive: 1 when a 200 with its whole body came back. */
static int
healthz(struct tconn *t)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    char buf[4096];
    size_t got = 0;
    const char *end, *cl;
    int n;

    if (SSL_write(t->ssl, req, sizeof(req) - 1) != (int)sizeof(req) - 1) {
        return 0;
    }
    while (got < sizeof(buf) - 1) {
        n = SSL_read(t->ssl, buf + got, (int)(sizeof(buf) - 1 - got));
        if (n <= 0) {
            return 0;
        }
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
        cl = strcasestr(buf, "content-length:");
        if (end != NULL && cl != NULL &&
            got >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10)) {
            return strncmp(buf, "HTTP/1.1 200 ", 13) == 0;
        }
    }
    return 0;
}

/* The serial new connections see, polled until it is want (a reload applies in every worker). */
static int
new_connections_see(long want)
{
    int64_t deadline = mg_now_ms() + 10000 * mg_test_scale();
    int seen = 0;

    while (mg_now_ms() < deadline && seen < 4) {   /* four in a row: both workers */
        struct tconn t;

        ck_assert(tls_open(&t, 0, NULL, 0));
        seen = peer_serial(&t) == want ? seen + 1 : 0;
        tls_close(&t);
        if (seen == 0) {
            usleep(20000);
        }
    }
    return seen == 4;
}

/* Rewrites the config, SIGHUPs, waits for the log line; 1 when the reload was taken. */
static int
reload(const char *extra)
{
    static int reloads;
    char ok[96], refused[96], *log;
    int64_t deadline = mg_now_ms() + 10000 * mg_test_scale();
    FILE *f = fopen(th.conf_path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(gw_conf(extra), f);
    fclose(f);
    reloads++;
    snprintf(ok, sizeof(ok), "reload %d of %s: ok", reloads, th.conf_path);
    snprintf(refused, sizeof(refused), "reload %d of %s refused", reloads, th.conf_path);
    kill(th.gw_pid, SIGHUP);
    while (mg_now_ms() < deadline) {
        size_t n;
        int r = -1;

        log = mg_test_slurp(th.gw_log, &n);
        if (log != NULL) {
            r = strstr(log, ok) != NULL ? 1 : strstr(log, refused) != NULL ? 0 : -1;
            free(log);
        }
        if (r >= 0) {
            return r;
        }
        usleep(20000);
    }
    ck_abort_msg("reload %d was not logged", reloads);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
    mg_buf_add(arg, p, size * n);
    return size * n;
}

/* A POST over HTTPS with libcurl (which offers h2 and http/1.1); the status, body in out. */
static long
https_post(const char *body, struct mg_buf *out, long *http_version)
{
    CURL *e = curl_easy_init();
    char url[128];
    long status = 0;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    snprintf(url, sizeof(url), "https://localhost:%d/v1/chat/completions", th.gw_port);
    MG_TEST_SETOPT(e, CURLOPT_URL, url);
    MG_TEST_SETOPT(e, CURLOPT_CAINFO, ca_path);
    MG_TEST_SETOPT(e, CURLOPT_HTTPHEADER, h);
    MG_TEST_SETOPT(e, CURLOPT_POSTFIELDS, body);
    MG_TEST_SETOPT(e, CURLOPT_WRITEFUNCTION, collect);
    MG_TEST_SETOPT(e, CURLOPT_WRITEDATA, out);
    MG_TEST_SETOPT(e, CURLOPT_TIMEOUT_MS, 20000L * mg_test_scale());
    ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, http_version);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return status;
}

START_TEST(chat_and_stream_over_https)
{
    struct mg_buf out;
    long version = 0;

    mg_buf_init(&out, 1 << 20);
    ck_assert_int_eq(https_post("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                                "\"hi\"}]}", &out, &version), 200);
    ck_assert_int_eq(version, CURL_HTTP_VERSION_1_1);   /* ALPN chose http/1.1 */
    mg_buf_add(&out, "", 1);
    ck_assert_ptr_nonnull(strstr(out.data, "\"chat.completion\""));
    mg_buf_reset(&out);
    ck_assert_int_eq(https_post("{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}]}", &out, &version), 200);
    mg_buf_add(&out, "", 1);
    ck_assert_ptr_nonnull(strstr(out.data, "chat.completion.chunk"));
    ck_assert_ptr_nonnull(strstr(out.data, "data: [DONE]\n\n"));
    mg_buf_deinit(&out);
}
END_TEST

START_TEST(old_protocols_and_other_alpn_refused)
{
    static const char h2[] = "\x02h2", both[] = "\x02h2\x08http/1.1";
    struct tconn t;
    const unsigned char *sel;
    unsigned len;

    ck_assert_msg(!tls_open(&t, TLS1_1_VERSION, NULL, 0), "TLS 1.1 was accepted");
    tls_close(&t);
    ck_assert_msg(!tls_open(&t, TLS1_VERSION, NULL, 0), "TLS 1.0 was accepted");
    tls_close(&t);
    ck_assert_msg(!tls_open(&t, 0, h2, sizeof(h2) - 1), "an h2-only client was accepted");
    tls_close(&t);
    ck_assert(tls_open(&t, TLS1_2_VERSION, both, sizeof(both) - 1));   /* 1.2 still works */
    SSL_get0_alpn_selected(t.ssl, &sel, &len);
    ck_assert_uint_eq(len, 8);
    ck_assert(memcmp(sel, "http/1.1", 8) == 0);
    ck_assert(healthz(&t));
    tls_close(&t);
}
END_TEST

/* A client that starts a handshake and stalls is closed at header_timeout (1 s here). */
START_TEST(handshake_inside_header_timeout)
{
    int fd = tcp_connect(th.gw_port);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int64_t t0 = mg_now_ms();
    char b[64];

    ck_assert_int_eq(write(fd, "\x16\x03\x01\x02\x00\x01", 6), 6);   /* half a ClientHello */
    ck_assert_int_eq(poll(&p, 1, 8000 * mg_test_scale()), 1);
    ck_assert_int_le(read(fd, b, sizeof(b)), 0);   /* closed (or reset), nothing sent */
    ck_assert_int_ge(mg_now_ms() - t0, 900);
    close(fd);
}
END_TEST

/*
 * Requests that arrive with the handshake's last flight (curl sends them together), on new
 * connections and kept-alive ones, are answered at once: data OpenSSL has already read must not
 * wait for the socket to be readable again (with OpenSSL's read-ahead on, one request in ten
 * waited for header_timeout).
 */
START_TEST(every_request_answered_at_once)
{
    struct tconn t;
    char url[128];
    CURL *e = curl_easy_init();
    int i, j;

    snprintf(url, sizeof(url), "https://localhost:%d/healthz", th.gw_port);
    MG_TEST_SETOPT(e, CURLOPT_URL, url);
    MG_TEST_SETOPT(e, CURLOPT_CAINFO, ca_path);
    MG_TEST_SETOPT(e, CURLOPT_FORBID_REUSE, 1L);   /* a new connection, a handshake, each time */
    MG_TEST_SETOPT(e, CURLOPT_NOBODY, 1L);
    MG_TEST_SETOPT(e, CURLOPT_TIMEOUT_MS, 5000L * mg_test_scale());
    for (i = 0; i < 40; i++) {
        int64_t t0 = mg_now_ms();
        long status = 0;

        ck_assert_int_eq(curl_easy_perform(e), CURLE_OK);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        ck_assert_int_eq(status, 200);
        ck_assert_msg(mg_now_ms() - t0 < 900, "request %d took %lld ms", i,
                      (long long)(mg_now_ms() - t0));
    }
    curl_easy_cleanup(e);
    for (i = 0; i < 10; i++) {   /* and kept-alive ones */
        int64_t t0 = mg_now_ms();

        ck_assert(tls_open(&t, 0, NULL, 0));
        for (j = 0; j < 5; j++) {
            ck_assert_msg(healthz(&t), "connection %d, request %d: no answer", i, j);
        }
        ck_assert_msg(mg_now_ms() - t0 < 900, "connection %d took %lld ms", i,
                      (long long)(mg_now_ms() - t0));
        tls_close(&t);
    }
}
END_TEST

START_TEST(reload_swaps_the_certificate)
{
    struct tconn open1, t;

    ck_assert(tls_open(&open1, 0, NULL, 0));
    ck_assert(healthz(&open1));
    ck_assert_int_eq(peer_serial(&open1), 1);
    renew(2, -DAY, 30 * DAY);
    ck_assert(reload(""));
    ck_assert_msg(new_connections_see(2), "new connections kept the old certificate");
    ck_assert_msg(healthz(&open1), "the open connection broke at the reload");
    ck_assert_int_eq(peer_serial(&open1), 1);
    /* a key that does not match: refused, the running certificate stays */
    {
        EVP_PKEY *other = new_key();
        write_key(key_path, other);
        EVP_PKEY_free(other);
    }
    ck_assert(!reload(""));
    ck_assert(new_connections_see(2));
    /* min_version 1.3: a TLS 1.2 client is refused from then on */
    renew(3, -DAY, 30 * DAY);
    ck_assert(reload(", min_version: '1.3'"));
    ck_assert(new_connections_see(3));
    ck_assert(!tls_open(&t, TLS1_2_VERSION, NULL, 0));
    tls_close(&t);
    ck_assert(healthz(&open1));
    tls_close(&open1);
}
END_TEST

/* The error lines a config with this tls block gets, or NULL when it loads. */
static char *
tls_errors(const char *block)
{
    static char out[2048];
    struct mg_buf errs;
    char text[2048];
    struct mg_conf *c;

    snprintf(text, sizeof(text), "listen: 127.0.0.1:1\n%s\n"
             "backends: [{name: a, url: 'http://127.0.0.1:2/v1'}]\n"
             "rules: [{models: [m], backends: [{backend: a}]}]\n", block);
    mg_buf_init(&errs, 1 << 16);
    c = mg_conf_parse("t.yaml", text, strlen(text), &errs);
    if (c != NULL) {
        mg_conf_unref(c);
        mg_buf_deinit(&errs);
        return NULL;
    }
    mg_buf_add(&errs, "", 1);
    snprintf(out, sizeof(out), "%s", errs.data);
    mg_buf_deinit(&errs);
    return out;
}

START_TEST(config_errors)
{
    char block[1600], expired[600], young[600], wrong[600], kpath[600];
    EVP_PKEY *k = new_key(), *k2 = new_key();
    X509 *c;
    const char *e;

    snprintf(expired, sizeof(expired), "%s/mgtest-tls-expired.pem", dir);
    snprintf(young, sizeof(young), "%s/mgtest-tls-young.pem", dir);
    snprintf(wrong, sizeof(wrong), "%s/mgtest-tls-wrong.pem", dir);
    write_key(wrong, k2);
    c = new_cert(k, 7, -30 * DAY, -DAY);
    write_cert(expired, c);
    X509_free(c);
    c = new_cert(k, 8, DAY, 30 * DAY);
    write_cert(young, c);
    X509_free(c);
    snprintf(kpath, sizeof(kpath), "%s/mgtest-tls-k.pem", dir);
    write_key(kpath, k);

    snprintf(block, sizeof(block), "tls: {cert: '%s', key: '%s'}", expired, kpath);
    e = tls_errors(block);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(strstr(e, "t.yaml:2:6: tls: the certificate in") && strstr(e, "has expired"),
                  "%s", e);
    snprintf(block, sizeof(block), "tls: {cert: '%s', key: '%s'}", young, kpath);
    e = tls_errors(block);
    ck_assert_msg(e != NULL && strstr(e, "is not valid yet"), "%s", e ? e : "loaded");
    snprintf(block, sizeof(block), "tls: {cert: '%s', key: '%s'}", young, wrong);
    e = tls_errors(block);
    ck_assert_msg(e != NULL && strstr(e, "does not match the certificate"), "%s",
                  e ? e : "loaded");
    e = tls_errors("tls: {cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}");
    ck_assert_msg(e != NULL && strstr(e, "cannot read the certificate file /nonexistent/cert.pem"
                                      ": No such file or directory"), "%s", e ? e : "loaded");
    snprintf(block, sizeof(block), "tls: {cert: '%s', key: '%s'}", wrong, wrong);
    e = tls_errors(block);
    ck_assert_msg(e != NULL && strstr(e, "is not a PEM certificate chain"), "%s",
                  e ? e : "loaded");
    e = tls_errors("tls: {cert: a.pem}");
    ck_assert_msg(e != NULL && strstr(e, "tls needs \"cert\""), "%s", e ? e : "loaded");
    snprintf(block, sizeof(block), "tls: {cert: '%s', key: '%s', min_version: '1.1'}", young,
             kpath);
    e = tls_errors(block);
    ck_assert_msg(e != NULL && strstr(e, "min_version must be \"1.2\" or \"1.3\""), "%s",
                  e ? e : "loaded");
    EVP_PKEY_free(k);
    EVP_PKEY_free(k2);
}
END_TEST

START_TEST(openai_sdk_over_https)
{
    char cmd[1024];

    if (system("command -v node >/dev/null 2>&1") != 0 ||
        access("test/node/node_modules/openai/package.json", F_OK) != 0) {
        mg_test_skip("tls: openai_sdk_over_https: node or the openai module is missing (make "
                     "node-sdk installs it)");
        return;
    }
    snprintf(cmd, sizeof(cmd), "NODE_EXTRA_CA_CERTS='%s' node test/node/sdk_check.mjs "
             "https://localhost:%d/v1 claude-x toolu_fake1 >mgtest-tls-node.log 2>&1",
             ca_path, th.gw_port);
    ck_assert_msg(system(cmd) == 0, "the OpenAI Node SDK failed over HTTPS (see "
                  "mgtest-tls-node.log)");
}
END_TEST

Suite *
tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *t = tcase_create("https");

    tcase_add_unchecked_fixture(t, start_tls, stop_tls);
    tcase_set_timeout(t, 60 * mg_test_scale());
    tcase_add_test(t, chat_and_stream_over_https);
    tcase_add_test(t, old_protocols_and_other_alpn_refused);
    tcase_add_test(t, handshake_inside_header_timeout);
    tcase_add_test(t, every_request_answered_at_once);
    tcase_add_test(t, config_errors);
    tcase_add_test(t, openai_sdk_over_https);
    tcase_add_test(t, reload_swaps_the_certificate);
    suite_add_tcase(s, t);
    return s;
}
