/*
 * mg_tls — TLS on the client listener: the one module that speaks OpenSSL's SSL layer and
 * libevent's OpenSSL bufferevents. A context is made from the config's PEM files when a config
 * is loaded (so a renewed certificate is read again on SIGHUP) and is reference-counted: the
 * snapshot holds one reference, each listener one, and each accepted connection's SSL keeps its
 * own context alive, so an open connection keeps the certificate it was accepted with.
 *
 * Policy, fixed: TLS 1.2 or 1.3 (min_version), no renegotiation, no compression, ALPN
 * "http/1.1" (a client that offers only other protocols is refused, as RFC 7301 says), the
 * server's cipher order, OpenSSL's default ciphers and session tickets.
 */
#ifndef MG_TLS_H
#define MG_TLS_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct mg_tls;

#define MG_TLS_1_2 12
#define MG_TLS_1_3 13

/*
 * A context from cert (PEM chain, leaf first) and key (PEM, not encrypted), or NULL with err set
 * to a one-line reason (an unreadable file, a file that is not PEM, a key that does not match
 * the certificate, an expired or not yet valid certificate). One reference, the caller's.
 */
struct mg_tls *mg_tls_new(const char *cert, const char *key, int min_version, char *err,
                          size_t errlen);

/* One more reference (thread-safe); returns t. NULL is allowed. */
struct mg_tls *mg_tls_ref(struct mg_tls *t);

/* Drops one reference; the last frees the context. NULL is allowed. */
void mg_tls_unref(struct mg_tls *t);

/*
 * A server-side TLS bufferevent on an accepted socket (closed with it when freed), or NULL (fd
 * is then closed). The handshake runs before the first read callback.
 */
struct bufferevent *mg_tls_accept(struct mg_tls *t, struct event_base *base, int fd);

/* Why a TLS bufferevent failed (OpenSSL's reason of its last error), for the debug log. */
const char *mg_tls_error(struct bufferevent *bev);

/* The leaf certificate's notAfter as a Unix time (for /metrics and the log), or 0. */
long long mg_tls_not_after(const struct mg_tls *t);

#endif
