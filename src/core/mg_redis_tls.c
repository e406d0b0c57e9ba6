/*
 * mg_redis_tls — rediss://: the client side of TLS for the Redis connection (mg_redis.c), one
 * SSL_CTX for the process.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mg_redis_int.h"

static SSL_CTX *tls_ctx;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* One client context for the process: TLS 1.2+, the server verified against the system's CAs. */
static void
tls_init(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {   /* SSL_CERT_FILE / SSL_CERT_DIR too */
        SSL_CTX_free(ctx);
        return;
    }
    tls_ctx = ctx;
}

/* A client TLS bufferevent for c's host: its name (SNI) or address checked in the certificate. */
struct bufferevent *
mg_redis_tls_bev(struct event_base *base, const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    struct bufferevent *bev;
    SSL *ssl;
    int ip = inet_pton(AF_INET, host, &a4) == 1 ||
             inet_pton(AF_INET6, host, &a6) == 1;

    pthread_once(&tls_once, tls_init);
    if (tls_ctx == NULL || (ssl = SSL_new(tls_ctx)) == NULL) {
        return NULL;
    }
    if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1
           : (SSL_set_tlsext_host_name(ssl, host) != 1 ||
              SSL_set1_host(ssl, host) != 1)) {
        SSL_free(ssl);
        return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
    }
    return bev;
}

