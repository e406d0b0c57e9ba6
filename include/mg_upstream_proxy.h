/*
 * mg_upstream_proxy — the proxy environment, read once at config load (part of the upstream
 * module, without its libcurl and libevent types).
 */
#ifndef MG_UPSTREAM_PROXY_H
#define MG_UPSTREAM_PROXY_H

/*
 * The proxy for a backend at url, "" for none, as a new string: written (its proxy key; "none"
 * is none) when not NULL, else the environment as curl would read it (https_proxy or HTTPS_PROXY
 * for https backends, http_proxy or HTTP_PROXY for http, then all_proxy or ALL_PROXY), unless
 * no_proxy or NO_PROXY ("*", hosts, domains) covers the url's host.
 */
char *mg_upstream_proxy_resolve(const char *url, const char *written);

struct mg_conf;

/* Logs one line per backend of conf that goes through a proxy (without its credentials). */
void mg_upstream_proxy_log(const struct mg_conf *conf);

#endif
