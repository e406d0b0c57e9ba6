/*
 * mg_upstream_proxy — the proxy a backend's transfers go through, decided once at config load
 * from its proxy key or, as curl would read it, the environment (HTTPS_PROXY, NO_PROXY ...).
 * Every transfer then sets it explicitly: curl never reads the environment itself (its getenv
 * calls cost ~1.5k instructions a transfer). And the start's and each reload's log line of the
 * backends that go through a proxy.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mg_conf_types.h"
#include "mg_log.h"
#include "mg_upstream_proxy.h"
#include "mg_util.h"

/* The first set, non-empty variable of the two names. */
static const char *
env2(const char *a, const char *b)
{
    const char *v = getenv(a);

    if (v == NULL || v[0] == '\0') {
        v = getenv(b);
    }
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* 1 when NO_PROXY (comma or space separated; "*", a host, a domain) covers host[0..n). */
static int
no_proxy_covers(const char *list, const char *host, size_t n)
{
    const char *p = list;

    while (*p != '\0') {
        size_t len;
        p += strspn(p, ", ");
        len = strcspn(p, ", ");
        if (len == 1 && *p == '*') {
            return 1;
        }
        if (len > 0 && *p == '.') {
            p++;
            len--;
        }
        if (len > 0 && len <= n && strncasecmp(host + n - len, p, len) == 0 &&
            (len == n || host[n - len - 1] == '.')) {
            return 1;
        }
        p += len;
    }
    return 0;
}

char *
mg_upstream_proxy_resolve(const char *url, const char *written)
{
    const char *host = strstr(url, "://"), *p, *no;
    size_t n;

    if (written != NULL) {
        return mg_strdup(strcmp(written, "none") == 0 ? "" : written);
    }
    host = host ? host + 3 : url;
    n = strcspn(host, "/");
    if (host[0] == '[') {
        host++;
        n = strcspn(host, "]");
    } else if (memchr(host, ':', n) != NULL) {
        n = (size_t)((const char *)memchr(host, ':', n) - host);
    }
    p = strncmp(url, "https://", 8) == 0 ? env2("https_proxy", "HTTPS_PROXY")
                                            : env2("http_proxy", "HTTP_PROXY");
    if (p == NULL) {
        p = env2("all_proxy", "ALL_PROXY");
    }
    no = env2("no_proxy", "NO_PROXY");
    if (p != NULL && no != NULL && no_proxy_covers(no, host, n)) {
        p = NULL;
    }
    return mg_strdup(p ? p : "");
}

void
mg_upstream_proxy_log(const struct mg_conf *conf)
{
    size_t i;

    for (i = 0; i < conf->nbackends; i++) {
        const char *p = conf->backends[i].proxy, *at, *host;
        if (p == NULL || p[0] == '\0') {
            continue;
        }
        host = strstr(p, "://");
        host = host ? host + 3 : p;
        at = strchr(host, '@');
        mg_log_info("backend %s goes through the proxy %.*s%s", conf->backends[i].name,
                    (int)(host - p), p, at ? at + 1 : host);
    }
}
