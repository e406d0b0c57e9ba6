/*
 * mg_cors_conf — the config's `cors:` block (origins, max_age), read for mg_cors (src/http/).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conf_types.h"
#include "mg_cors_conf.h"
#include "mg_req.h"
#include "mg_util.h"
#include "mg_yaml.h"

/* An origin as a browser sends it: scheme://host[:port], no path, no space or control byte. */
static int
origin_ok(const char *o)
{
    const char *p = strstr(o, "://");
    size_t i;

    if (p == NULL || p == o || strlen(o) > MG_REQ_ORIGIN_MAX || p[3] == '\0') {
        return 0;
    }
    for (i = 0; o[i] != '\0'; i++) {
        unsigned char c = (unsigned char)o[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == ',') {
            return 0;
        }
    }
    return strchr(p + 3, '/') == NULL;
}

static int
set_origins(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_cors_conf *c = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "origins", &n) != MG_OK) {
        return MG_ERR;
    }
    c->origins = mg_calloc(n + 1, sizeof(char *));
    for (i = 0; i < n; i++) {
        yaml_node_t *item = mg_yaml_item(y, node, i);
        char *s = mg_yaml_scalar(y, item, "origin");
        if (s == NULL) {
            rc = MG_ERR;
            continue;
        }
        if (strcmp(s, "*") == 0) {
            c->any = 1;
            free(s);
        } else if (!origin_ok(s)) {
            mg_yaml_error(y, item, "origin \"%s\" must be scheme://host[:port] or \"*\"", s);
            free(s);
            rc = MG_ERR;
        } else {
            c->origins[c->norigins++] = s;
        }
    }
    return rc;
}

static const struct mg_yaml_key cors_keys[] = {
    {"origins", set_origins, 0},
    {"max_age", mg_yaml_set_duration, offsetof(struct mg_cors_conf, max_age_ms)},
};

int
mg_cors_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_cors_conf *c = dst;

    c->on = 1;
    c->max_age_ms = 10 * 60 * 1000;
    if (mg_yaml_mapping(y, node, cors_keys, MG_ARRAY_LEN(cors_keys), c, "cors") != MG_OK) {
        return MG_ERR;
    }
    if (!c->any && c->norigins == 0) {
        mg_yaml_error(y, node, "cors needs \"origins\" (a list of origins, or [\"*\"])");
        return MG_ERR;
    }
    return MG_OK;
}

void
mg_cors_conf_deinit(struct mg_cors_conf *c)
{
    size_t i;

    for (i = 0; i < c->norigins; i++) {
        free(c->origins[i]);
    }
    free(c->origins);
    memset(c, 0, sizeof(*c));
}
