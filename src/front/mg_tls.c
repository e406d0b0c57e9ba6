/*
 * mg_tls — the listener's TLS contexts and TLS bufferevents (see include/mg_tls.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mg_log.h"
#include "mg_tls.h"
#include "mg_util.h"

struct mg_tls {
    SSL_CTX          *ctx;
    long long         not_after;   /* the leaf's, Unix time */
    atomic_int        refs;
};

static const unsigned char alpn_http11[] = "\x08http/1.1";

/* ALPN: http/1.1 when the client offers it; a client that offers only others is refused. */
static int
select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *arg)
{
    unsigned char *sel;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, alpn_http11, sizeof(alpn_http11) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* The newest OpenSSL error as a short reason, or fallback; the queue is cleared. */
static const char *
ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r != NULL ? r : fallback;
}

/* path is a readable regular file (the reason in err otherwise). */
static int
readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, errlen, "cannot read the %s %s: %s", what, path, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

/* A Unix time from an ASN.1 time, or 0. */
static long long
unix_time(const ASN1_TIME *t)
{
    struct tm tm;

    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }
    return (long long)timegm(&tm);
}

/* The leaf is valid now (the reason in err otherwise). */
static int
check_validity(struct mg_tls *t, const char *cert, char *err, size_t errlen)
{
    X509 *leaf = SSL_CTX_get0_certificate(t->ctx);

    if (leaf == NULL) {
        snprintf(err, errlen, "%s holds no certificate", cert);
        return 0;
    }
    t->not_after = unix_time(X509_get0_notAfter(leaf));
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        snprintf(err, errlen, "the certificate in %s has expired", cert);
        return 0;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        snprintf(err, errlen, "the certificate in %s is not valid yet", cert);
        return 0;
    }
    return 1;
}

/* Keys with a passphrase are refused at once rather than prompting on the terminal. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

struct mg_tls *
mg_tls_new(const char *cert, const char *key, int min_version, char *err, size_t errlen)
{
    struct mg_tls *t;

    if (!readable("certificate file", cert, err, errlen) ||
        !readable("key file", key, err, errlen)) {
        return NULL;
    }
    t = mg_calloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (t->ctx == NULL) {
        snprintf(err, errlen, "cannot make a TLS context: %s", ssl_reason("out of memory"));
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, min_version == MG_TLS_1_3 ? TLS1_3_VERSION
                                                                    : TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                        SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);   /* idle keep-alive: no 34 KB buffers */
    SSL_CTX_set_default_passwd_cb(t->ctx, no_passphrase);
    SSL_CTX_set_alpn_select_cb(t->ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
        snprintf(err, errlen, "%s is not a PEM certificate chain: %s", cert,
                 ssl_reason("unreadable"));
    } else if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1 &&
               ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        snprintf(err, errlen, "%s is not an unencrypted PEM private key: %s", key,
                 ssl_reason("unreadable"));
    } else if (ERR_peek_last_error() != 0 || SSL_CTX_check_private_key(t->ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "the key in %s does not match the certificate in %s", key, cert);
    } else if (check_validity(t, cert, err, errlen)) {
        return t;
    }
    SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

struct mg_tls *
mg_tls_ref(struct mg_tls *t)
{
    if (t != NULL) {
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    }
    return t;
}

void
mg_tls_unref(struct mg_tls *t)
{
    if (t != NULL && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        SSL_CTX_free(t->ctx);   /* connections' SSLs hold their own references to it */
        free(t);
    }
}

struct bufferevent *
mg_tls_accept(struct mg_tls *t, struct event_base *base, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    struct bufferevent *bev;

    if (ssl == NULL) {
        ERR_clear_error();
        close(fd);
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    /* A client that closes without close_notify ends its connection like a plain one would. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

const char *
mg_tls_error(struct bufferevent *bev)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    while (bufferevent_get_openssl_error(bev) != 0) {
    }
    return r != NULL ? r : "the connection closed during the handshake";
}

long long
mg_tls_not_after(const struct mg_tls *t)
{
    return t != NULL ? t->not_after : 0;
}
