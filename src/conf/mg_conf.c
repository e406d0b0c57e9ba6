/*
 * mg_conf — YAML -> immutable config snapshot: the top level, the blocks table, the cross-checks
 * and the snapshot's life.
 *
 * Three phases, as in twemproxy: libyaml loads the document (mg_yaml; syntax errors stop here);
 * the top-level walk fills the snapshot through this file's key table and hands each block to
 * its owner's setter (backends, rules, auth, ...); the owners' checks then run in the blocks
 * table's order (what spans keys: backend references, unique names, defaults that depend on
 * other keys) and move what they read into the snapshot. Any error and the half-built snapshot
 * is thrown away: a config is never half-applied.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "mg_auth.h"
#include "mg_auth_conf.h"
#include "mg_catalog.h"
#include "mg_conf.h"
#include "mg_conf_in.h"
#include "mg_cors_conf.h"
#include "mg_trace_conf.h"
#include "mg_shared_conf.h"
#include "mg_tls_conf.h"
#include "mg_log.h"
#include "mg_price.h"
#include "mg_resp_store.h"

#define CONF_MAX_FILE (4u * 1024 * 1024)

MG_YAML_INT_SETTER(set_workers, int, 0, 256)

static int
set_listen(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = mg_yaml_scalar(y, node, "listen address");
    char host[256];
    int port;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_listen(s, host, sizeof(host), &port) != MG_OK) {
        mg_yaml_error(y, node, "bad address \"%s\" (host:port, [v6]:port or :port)", s);
        free(s);
        return MG_ERR;
    }
    free(*out);
    *out = s;
    return MG_OK;
}

static int
set_log_level(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "log_level");
    int lvl;

    if (s == NULL) {
        return MG_ERR;
    }
    lvl = mg_log_level_parse(s);
    if (lvl < 0) {
        mg_yaml_error(y, node, "bad log_level \"%s\" (error, warn, info or debug)", s);
    } else {
        *(int *)dst = lvl;
    }
    free(s);
    return lvl < 0 ? MG_ERR : MG_OK;
}

static int
set_access_log(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = mg_yaml_scalar(y, node, "access_log");

    if (s == NULL) {
        return MG_ERR;
    }
    free(*out);
    *out = NULL;
    if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0 || s[0] == '\0') {
        free(s);
    } else {
        *out = s;
    }
    return MG_OK;
}

static int
set_listen_in(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    ((struct mg_conf_in *)y->owner)->listen_node = node;
    return set_listen(y, node, dst);
}

static int
set_admin_in(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    ((struct mg_conf_in *)y->owner)->admin_node = node;
    return set_listen(y, node, dst);
}

/*
 * admin_key: kept as its SHA-256 (compared in constant time, as client keys are), the text wiped.
 * admin_key_sha256: the digest itself, so the file holds no secret.
 */
static int
set_admin_key(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf *conf = dst;
    char *s = mg_yaml_scalar(y, node, "admin_key");
    int rc = MG_ERR;

    ((struct mg_conf_in *)y->owner)->admin_key_node = node;
    if (s == NULL) {
        return MG_ERR;
    }
    if (s[0] == '\0' || mg_yaml_has_control(s)) {
        mg_yaml_error(y, node, "admin_key must not be empty nor hold control characters");
    } else {
        if (strlen(s) < MG_AUTH_SHORT_KEY) {
            mg_yaml_warning(y, node, "admin_key is shorter than %d characters; use openssl rand "
                            "-hex 32", MG_AUTH_SHORT_KEY);
        }
        mg_auth_digest(s, strlen(s), conf->admin_digest);
        conf->admin_key++;
        rc = MG_OK;
    }
    OPENSSL_cleanse(s, strlen(s));
    free(s);
    return rc;
}

static int
set_admin_key_sha256(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf *conf = dst;
    const char *s = mg_yaml_text(node);

    ((struct mg_conf_in *)y->owner)->admin_key_node = node;
    if (s == NULL || mg_auth_parse_hex(s, conf->admin_digest) != 0) {
        mg_yaml_error(y, node, "admin_key_sha256 must be 64 hex digits");
        return MG_ERR;
    }
    conf->admin_key++;
    return MG_OK;
}

static int
set_state_file(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    ((struct mg_conf_in *)y->owner)->state_file_node = node;
    return mg_yaml_set_nonempty_line(y, node, dst);
}

/* Top-level keys: offsets into struct mg_conf. */
#define CONF(f) offsetof(struct mg_conf, f)
static const struct mg_yaml_key top_keys[] = {
    {"listen", set_listen_in, CONF(listen)},
    {"admin_listen", set_admin_in, CONF(admin_listen)},
    {"workers", set_workers, CONF(workers)},
    {"max_body_size", mg_yaml_set_size, CONF(max_body_size)},
    {"shutdown_timeout", mg_yaml_set_duration, CONF(shutdown_timeout_ms)},
    {"header_timeout", mg_yaml_set_duration, CONF(header_timeout_ms)},
    {"keepalive_timeout", mg_yaml_set_duration, CONF(keepalive_timeout_ms)},
    {"body_timeout", mg_yaml_set_duration, CONF(body_timeout_ms)},
    {"overhead_header", mg_yaml_set_bool, CONF(overhead_header)},
    {"timeouts", mg_conf_set_timeouts, CONF(timeouts)},
    {"access_log", set_access_log, CONF(access_log)},
    {"log_level", set_log_level, CONF(log_level)},
    {"responses_store", mg_resp_store_set_conf, CONF(responses_store)},
    {"cors", mg_cors_set_conf, CONF(cors)},
    {"tls", mg_tls_set_conf, CONF(tls)},
    {"tracing", mg_trace_set_conf, CONF(tracing)},
    {"shared", mg_shared_set_conf, CONF(shared)},
    {"prices", mg_price_set, CONF(prices)},
    {"state_file", set_state_file, CONF(state_file)},
    {"admin_key", set_admin_key, 0},
    {"admin_key_sha256", set_admin_key_sha256, 0},
};

/*
 * The blocks their owners parse and check. A new block is a row here (its create, setter, check
 * and free in its owner's file); checks run in this order, after the listen addresses'.
 */
#define IN(f) offsetof(struct mg_conf_in, f)
static const struct mg_conf_block blocks[] = {
    {"health", NULL, mg_conf_set_health, NULL, NULL, IN(health)},
    {"backends", NULL, mg_conf_set_backends, mg_conf_check_backends, mg_conf_backends_free,
     IN(backends)},
    {"rules", NULL, mg_conf_set_rules, mg_conf_check_rules, mg_conf_rules_free, IN(rules)},
    {"auth", mg_auth_conf_create, mg_auth_conf_set, mg_auth_conf_check, mg_auth_conf_free, 0},
};

_Static_assert(MG_ARRAY_LEN(blocks) <= MG_CONF_BLOCKS_MAX, "MG_CONF_BLOCKS_MAX is too small");

/* Block i's state as read. */
static void *
block_state(struct mg_conf_in *in, size_t i)
{
    return blocks[i].create != NULL ? in->owned[i] : (char *)in + blocks[i].off;
}

/* A top-level key that is not in top_keys: a block's. */
static int
set_block(struct mg_yaml *y, const char *key, yaml_node_t *value, void *base, int *rc)
{
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(blocks); i++) {
        if (strcmp(blocks[i].key, key) == 0) {
            *rc = blocks[i].set(y, value, block_state(y->owner, i));
            return 1;
        }
    }
    return 0;
}

static void
conf_free(struct mg_conf *conf)
{
    size_t i;

    if (conf == NULL) {
        return;
    }
    for (i = 0; i < conf->nbackends; i++) {
        mg_conf_backend_deinit(&conf->backends[i]);
    }
    free(conf->backends);
    for (i = 0; i < conf->nrules; i++) {
        mg_conf_rule_deinit(&conf->rules[i]);
    }
    free(conf->rules);
    free(conf->catalog);
    free(conf->catalog_json);
    mg_auth_keys_free(conf->keys, conf->nkeys);
    free(conf->warnings);
    free(conf->path);
    free(conf->listen);
    free(conf->admin_listen);
    free(conf->access_log);
    free(conf->state_file);
    mg_price_table_deinit(&conf->prices);
    mg_cors_conf_deinit(&conf->cors);
    mg_tls_conf_deinit(&conf->tls);
    mg_trace_conf_deinit(&conf->tracing);
    mg_shared_conf_deinit(&conf->shared);
    free(conf);
}

/* Phase three, listen addresses (before the blocks' checks). */
static void
post_listen(struct mg_yaml *y, struct mg_conf_in *in)
{
    struct mg_conf *conf = in->conf;

    mg_parse_listen(conf->listen, conf->listen_host, sizeof(conf->listen_host),
                    &conf->listen_port);
    if (conf->admin_listen != NULL) {
        mg_parse_listen(conf->admin_listen, conf->admin_host, sizeof(conf->admin_host),
                        &conf->admin_port);
        if (conf->admin_port == conf->listen_port && conf->admin_port != 0 &&
            strcmp(conf->admin_host, conf->listen_host) == 0) {
            mg_yaml_error(y, in->admin_node, "admin_listen must differ from listen");
        }
    }
    if (conf->admin_key > 1) {
        mg_yaml_error(y, in->admin_key_node, "give admin_key or admin_key_sha256, not both");
    }
    if (conf->state_file != NULL && conf->shared.on) {
        mg_yaml_warning(y, in->state_file_node, "state_file is not used with shared: the spend "
                        "lives in Redis");
    }
}

/* A snapshot with every default, before the file. */
static struct mg_conf *
conf_defaults(const char *path)
{
    struct mg_conf *conf = mg_calloc(1, sizeof(*conf));

    atomic_init(&conf->refs, 1);
    conf->destroy = conf_free;
    conf->path = mg_strdup(path);
    conf->listen = mg_strdup("127.0.0.1:8080");
    conf->max_body_size = 16u * 1024 * 1024;
    conf->responses_store.size = 64u * 1024 * 1024;
    conf->responses_store.ttl_ms = 3600 * 1000;
    conf->shutdown_timeout_ms = 30000;
    conf->header_timeout_ms = 10000;
    conf->keepalive_timeout_ms = 60000;
    conf->body_timeout_ms = 60000;
    conf->timeouts.connect_ms = 5000;
    conf->timeouts.first_byte_ms = 60000;
    conf->timeouts.idle_ms = 60000;
    conf->timeouts.total_ms = 600000;
    conf->access_log = mg_strdup("-");
    conf->log_level = MG_LOG_INFO;
    return conf;
}

struct mg_conf *
mg_conf_parse(const char *path, const char *text, size_t len, struct mg_buf *errors)
{
    return mg_conf_parse_at(path, text, len, (int64_t)time(NULL), NULL, errors);
}

struct mg_conf *
mg_conf_parse_at(const char *path, const char *text, size_t len, int64_t now,
                 const struct mg_catalog_seen *seen, struct mg_buf *errors)
{
    struct mg_conf_in in;
    struct mg_yaml y;
    yaml_node_t *root;
    struct mg_conf *conf;
    size_t i;

    conf = conf_defaults(path);
    if (mg_yaml_load(&y, path, text, len, errors, &root) != MG_OK) {
        conf_free(conf);
        return NULL;
    }
    memset(&in, 0, sizeof(in));
    mg_conf_health_init(&in.health);
    for (i = 0; i < MG_ARRAY_LEN(blocks); i++) {
        if (blocks[i].create != NULL) {
            in.owned[i] = blocks[i].create();
        }
    }
    in.conf = conf;
    y.owner = &in;
    y.warnings = &conf->warnings;
    if (root != NULL) {
        mg_yaml_mapping_with(&y, root, top_keys, MG_ARRAY_LEN(top_keys), conf, "the top level",
                             set_block);
        post_listen(&y, &in);
        for (i = 0; i < MG_ARRAY_LEN(blocks); i++) {
            if (blocks[i].check != NULL) {
                blocks[i].check(&y, block_state(&in, i), conf);
            }
        }
        if (y.nerrors == 0) {
            mg_catalog_build(conf, now, seen);
        }
    }
    for (i = 0; i < MG_ARRAY_LEN(blocks); i++) {
        if (blocks[i].free != NULL) {
            blocks[i].free(block_state(&in, i));
        }
    }
    mg_yaml_deinit(&y);
    if (y.nerrors > 0) {
        conf_free(conf);
        return NULL;
    }
    return conf;
}

struct mg_conf *
mg_conf_load(const char *path, const struct mg_catalog_seen *seen, struct mg_buf *errors)
{
    struct mg_conf *conf;
    struct mg_buf text;
    char chunk[8192];
    const char *p;
    FILE *f;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        mg_buf_printf(errors, "%s:1:1: cannot open: %m\n", path);
        return NULL;
    }
    mg_buf_init(&text, CONF_MAX_FILE);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_add(&text, chunk, n) != MG_OK) {
            mg_buf_printf(errors, "%s:1:1: file is larger than %u bytes\n", path, CONF_MAX_FILE);
            fclose(f);
            mg_buf_deinit(&text);
            return NULL;
        }
    }
    fclose(f);
    OPENSSL_cleanse(chunk, sizeof(chunk));
    conf = mg_conf_parse_at(path, text.data ? text.data : "", text.len, (int64_t)time(NULL), seen,
                            errors);
    if (text.data != NULL) {
        OPENSSL_cleanse(text.data, text.len);   /* the file may hold client keys */
    }
    mg_buf_deinit(&text);
    for (p = conf != NULL ? conf->warnings : NULL; p != NULL && *p != '\0'; p += n + 1) {
        n = strcspn(p, "\n");
        mg_log_warn("%.*s", (int)n, p);
        if (p[n] == '\0') {
            break;
        }
    }
    return conf;
}
