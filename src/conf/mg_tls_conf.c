/*
 * mg_tls_conf — the config's `tls:` block (cert, key, min_version), read for mg_tls (src/front/).
 * Relative paths are taken from the config file's folder (as nginx takes them from its prefix),
 * so a service started from / finds the files next to its config.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_conf_types.h"
#include "mg_tls.h"
#include "mg_tls_conf.h"
#include "mg_util.h"
#include "mg_yaml.h"

#define EXPIRY_WARN_DAYS 14

static int
set_min_version(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    int *v = dst;
    const char *s = mg_yaml_text(node);

    if (s != NULL && strcmp(s, "1.2") == 0) {
        *v = MG_TLS_1_2;
    } else if (s != NULL && strcmp(s, "1.3") == 0) {
        *v = MG_TLS_1_3;
    } else {
        mg_yaml_error(y, node, "min_version must be \"1.2\" or \"1.3\" (TLS 1.0 and 1.1 are "
                      "never accepted)");
        return MG_ERR;
    }
    return MG_OK;
}

static const struct mg_yaml_key tls_keys[] = {
    {"cert", mg_yaml_set_nonempty, offsetof(struct mg_tls_conf, cert)},
    {"key", mg_yaml_set_nonempty, offsetof(struct mg_tls_conf, key)},
    {"min_version", set_min_version, offsetof(struct mg_tls_conf, min_version)},
};

/* *path made absolute against the config file's folder (a fresh string), when it is relative. */
static void
from_conf_dir(const char *conf_path, char **path)
{
    const char *slash = conf_path != NULL ? strrchr(conf_path, '/') : NULL;
    size_t dlen, plen;
    char *abs;

    if ((*path)[0] == '/' || slash == NULL) {
        return;
    }
    dlen = (size_t)(slash - conf_path) + 1;
    plen = strlen(*path);
    abs = mg_malloc(dlen + plen + 1);
    memcpy(abs, conf_path, dlen);
    memcpy(abs + dlen, *path, plen + 1);
    free(*path);
    *path = abs;
}

int
mg_tls_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_tls_conf *c = dst;
    char err[512];
    long long days;

    c->min_version = MG_TLS_1_2;
    if (mg_yaml_mapping(y, node, tls_keys, MG_ARRAY_LEN(tls_keys), c, "tls") != MG_OK) {
        return MG_ERR;
    }
    if (c->cert == NULL || c->key == NULL) {
        mg_yaml_error(y, node, "tls needs \"cert\" (a PEM certificate chain, leaf first) and "
                      "\"key\" (its PEM private key)");
        return MG_ERR;
    }
    from_conf_dir(y->path, &c->cert);
    from_conf_dir(y->path, &c->key);
    c->ctx = mg_tls_new(c->cert, c->key, c->min_version, err, sizeof(err));
    if (c->ctx == NULL) {
        mg_yaml_error(y, node, "tls: %s", err);
        return MG_ERR;
    }
    days = (mg_tls_not_after(c->ctx) - (long long)time(NULL)) / 86400;
    if (days < EXPIRY_WARN_DAYS) {
        mg_yaml_warning(y, node, "the certificate in %s expires in %lld day%s", c->cert, days,
                        days == 1 ? "" : "s");
    }
    return MG_OK;
}

void
mg_tls_conf_deinit(struct mg_tls_conf *c)
{
    free(c->cert);
    free(c->key);
    mg_tls_unref(c->ctx);
    memset(c, 0, sizeof(*c));
}
