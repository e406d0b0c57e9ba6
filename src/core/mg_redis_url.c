/*
 * mg_redis_url — the `shared.redis` URL: redis://, rediss:// and unix:// (include/mg_redis.h).
 */
#include <stdio.h>
#include <string.h>

#include "mg_redis.h"
#include "mg_util.h"

/* Percent-decodes n bytes of in into out (size outlen); -1 when malformed or too long. */
static int
pct_decode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                return -1;
            }
            hi = mg_hexval(in[i + 1]);
            lo = hi < 0 ? -1 : mg_hexval(in[i + 2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= outlen) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

/* A decimal number of at most 5 digits, 0 to 65535, into *v; -1 otherwise. */
static int
parse_u16(const char *s, int *v)
{
    int n = 0, i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5) {
            return -1;
        }
        n = n * 10 + (s[i] - '0');
    }
    if (i == 0 || n > 65535) {
        return -1;
    }
    *v = n;
    return 0;
}

static int
parse_db(const char *s, int *db)
{
    return parse_u16(s, db);
}

int
mg_redis_url_parse(const char *s, struct mg_redis_url *u, char *err, size_t errlen)
{
    const char *p, *at, *hostend, *slash, *colon;

    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(s, "unix://", 7) == 0) {
        const char *q = strchr(s + 7, '?');
        size_t n = q != NULL ? (size_t)(q - (s + 7)) : strlen(s + 7);
        u->scheme = MG_REDIS_UNIX;
        if (n == 0 || s[7] != '/' || n >= sizeof(u->path)) {
            snprintf(err, errlen, "unix:// needs an absolute socket path (under %zu bytes)",
                     sizeof(u->path));
            return MG_ERR;
        }
        memcpy(u->path, s + 7, n);
        if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0)) {
            snprintf(err, errlen, "unix:// takes only ?db=N (0 to 65535)");
            return MG_ERR;
        }
        return MG_OK;
    }
    if (strncmp(s, "redis://", 8) == 0) {
        p = s + 8;
    } else if (strncmp(s, "rediss://", 9) == 0) {
        p = s + 9;
        u->scheme = MG_REDIS_TLS;
    } else {
        snprintf(err, errlen, "the URL must start with redis://, rediss:// or unix://");
        return MG_ERR;
    }
    slash = strchr(p, '/');
    at = memrchr(p, '@', slash != NULL ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {   /* redis://password@host, as redis-cli reads it */
            colon = p - 1;
        }
        if ((colon >= p && pct_decode(p, (size_t)(colon - p), u->user, sizeof(u->user)) != 0) ||
            pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof(u->pass)) != 0) {
            snprintf(err, errlen, "bad user or password (percent-encode reserved characters)");
            return MG_ERR;
        }
        p = at + 1;
    }
    hostend = slash != NULL ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (rb == NULL || rb - p - 1 <= 0 || (size_t)(rb - p - 1) >= sizeof(u->host)) {
            snprintf(err, errlen, "bad [IPv6] host");
            return MG_ERR;
        }
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
        if (colon == NULL && rb + 1 != hostend) {
            snprintf(err, errlen, "bad [IPv6] host");
            return MG_ERR;
        }
    } else {
        colon = memchr(p, ':', (size_t)(hostend - p));
        size_t n = (size_t)((colon != NULL ? colon : hostend) - p);
        if (n == 0 || n >= sizeof(u->host)) {
            snprintf(err, errlen, "the URL needs a host");
            return MG_ERR;
        }
        memcpy(u->host, p, n);
    }
    if (colon != NULL) {
        char port[8];
        int v;
        size_t n = (size_t)(hostend - colon - 1);
        if (n == 0 || n >= sizeof(port)) {
            snprintf(err, errlen, "bad port");
            return MG_ERR;
        }
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        if (parse_u16(port, &v) != 0 || v < 1) {
            snprintf(err, errlen, "bad port \"%s\"", port);
            return MG_ERR;
        }
        u->port = v;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "bad database number \"%s\" (0 to 65535)", slash + 1);
        return MG_ERR;
    }
    return MG_OK;
}

