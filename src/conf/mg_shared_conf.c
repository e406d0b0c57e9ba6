/*
 * mg_shared_conf — the config's `shared:` block, read for the Redis client (mg_redis) and the
 * shared limits (mg_limit_redis): redis, timeout, store_timeout, on_error, prefix.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "mg_conf_types.h"
#include "mg_redis.h"
#include "mg_shared_conf.h"
#include "mg_util.h"
#include "mg_yaml.h"

static int
set_redis(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_shared_conf *c = dst;
    struct mg_redis_url u;
    char err[200];
    char *s = mg_yaml_scalar(y, node, "redis");

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_redis_url_parse(s, &u, err, sizeof(err)) != MG_OK) {
        mg_yaml_error(y, node, "shared.redis: %s", err);
        free(s);
        return MG_ERR;
    }
    free(c->redis);
    c->redis = s;
    memcpy(c->host, u.host, sizeof(c->host));
    memcpy(c->path, u.path, sizeof(c->path));
    memcpy(c->user, u.user, sizeof(c->user));
    memcpy(c->pass, u.pass, sizeof(c->pass));
    c->scheme = u.scheme;
    c->port = u.port;
    c->db = u.db;
    return MG_OK;
}

static int
set_on_error(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "on_error");
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (strcmp(s, "open") == 0) {
        *(int *)dst = 0;
    } else if (strcmp(s, "closed") == 0) {
        *(int *)dst = 1;
    } else {
        mg_yaml_error(y, node, "shared.on_error must be open or closed, not \"%s\"", s);
        rc = MG_ERR;
    }
    free(s);
    return rc;
}

static int
set_prefix(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = mg_yaml_scalar(y, node, "prefix");
    size_t i;

    if (s == NULL) {
        return MG_ERR;
    }
    for (i = 0; s[i] != '\0'; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-')) {
            break;
        }
    }
    if (i == 0 || s[i] != '\0' || i > 64) {
        mg_yaml_error(y, node, "shared.prefix must be 1 to 64 of [A-Za-z0-9_.:-]");
        free(s);
        return MG_ERR;
    }
    free(*out);
    *out = s;
    return MG_OK;
}

static const struct mg_yaml_key shared_keys[] = {
    {"redis", set_redis, 0},
    {"timeout", mg_yaml_set_duration, offsetof(struct mg_shared_conf, timeout_ms)},
    {"store_timeout", mg_yaml_set_duration, offsetof(struct mg_shared_conf, store_timeout_ms)},
    {"on_error", set_on_error, offsetof(struct mg_shared_conf, closed)},
    {"prefix", set_prefix, offsetof(struct mg_shared_conf, prefix)},
};

int
mg_shared_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_shared_conf *c = dst;

    c->on = 1;
    c->timeout_ms = 20;
    c->store_timeout_ms = 200;
    if (mg_yaml_mapping(y, node, shared_keys, MG_ARRAY_LEN(shared_keys), c, "shared") != MG_OK) {
        return MG_ERR;
    }
    if (c->redis == NULL) {
        mg_yaml_error(y, node, "shared needs \"redis\" (redis://host:port/db or unix:///path)");
        return MG_ERR;
    }
    if (c->timeout_ms <= 0 || c->store_timeout_ms <= 0) {
        mg_yaml_error(y, node, "shared.timeout and store_timeout must be above 0");
        return MG_ERR;
    }
    if (c->prefix == NULL) {
        c->prefix = mg_strdup("mg:");
    }
    return MG_OK;
}

void
mg_shared_conf_deinit(struct mg_shared_conf *c)
{
    if (c->redis != NULL) {
        OPENSSL_cleanse(c->redis, strlen(c->redis));   /* it may hold the password */
    }
    free(c->redis);
    free(c->prefix);
    OPENSSL_cleanse(c, sizeof(*c));
}

void
mg_shared_conf_url(const struct mg_shared_conf *c, struct mg_redis_url *u)
{
    memset(u, 0, sizeof(*u));
    u->scheme = c->scheme;
    memcpy(u->host, c->host, sizeof(u->host));
    memcpy(u->path, c->path, sizeof(u->path));
    memcpy(u->user, c->user, sizeof(u->user));
    memcpy(u->pass, c->pass, sizeof(u->pass));
    u->port = c->port;
    u->db = c->db;
}

int
mg_shared_conf_same(const struct mg_shared_conf *a, const struct mg_shared_conf *b)
{
    if (a->on != b->on) {
        return 0;
    }
    return !a->on || strcmp(a->redis, b->redis) == 0;
}
