/*
 * mg_auth_conf — the `auth` block: client keys read (name, key or key_sha256, allow-list,
 * limits), checked across keys, hashed, and handed to the snapshot with their limit buckets.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "mg_auth.h"
#include "mg_auth_conf.h"
#include "mg_budget.h"
#include "mg_price.h"
#include "mg_conf_types.h"
#include "mg_limit.h"

struct mg_auth_key_in;

/* The block as read. */
struct mg_auth_in {
    struct mg_auth_key_in *ks;
    size_t                 nks;
    yaml_node_t           *node;   /* the block's, NULL when the file has none */
};

/* A client key as read. */
struct mg_auth_key_in {
    struct mg_key k;
    char         *text;         /* `key`, expanded */
    char         *hex;          /* `key_sha256` */
    yaml_node_t  *node;
    yaml_node_t  *text_node;
    yaml_node_t  *hex_node;
};

MG_YAML_INT_SETTER(set_per_minute, int64_t, 1, MG_LIMIT_MAX)

static int
set_key_text(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_auth_key_in *ki = dst;

    ki->text_node = node;
    return mg_yaml_set_string(y, node, &ki->text);
}

static int
set_key_hex(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_auth_key_in *ki = dst;

    ki->hex_node = node;
    return mg_yaml_set_string(y, node, &ki->hex);
}

/* A key's allow-list: exact names and prefix* patterns, none empty. */
static int
set_key_models(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_key *k = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "models", &n) != MG_OK) {
        return MG_ERR;
    }
    if (n == 0) {
        mg_yaml_error(y, node, "models must not be empty (leave it out to allow every model)");
        return MG_ERR;
    }
    k->models = mg_calloc(n, sizeof(char *));
    for (i = 0; i < n; i++) {
        yaml_node_t *m = mg_yaml_item(y, node, i);
        char *s = mg_yaml_scalar(y, m, "model name");
        if (s == NULL) {
            rc = MG_ERR;
        } else if (s[0] == '\0' || strcmp(s, "*") == 0) {
            mg_yaml_error(y, m, "model name must not be empty (leave models out to allow all)");
            free(s);
            rc = MG_ERR;
        } else {
            k->models[k->nmodels++] = s;
        }
    }
    return rc;
}

/* budget: {usd, per}: a USD amount (6 decimals at most) and its calendar window. */
static int
set_budget_usd(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    const char *s = mg_yaml_text(node);
    int64_t v;

    if (s == NULL || mg_price_parse_usd(s, MG_PRICE_MAX_MICRO, &v) != 0 || v == 0) {
        mg_yaml_error(y, node, "budget usd must be a positive USD amount (at most 6 decimals)");
        return MG_ERR;
    }
    *(int64_t *)dst = v;
    return MG_OK;
}

static int
set_budget_per(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    const char *s = mg_yaml_text(node);
    int per = s != NULL ? mg_budget_per_parse(s) : -1;

    if (per < 0) {
        mg_yaml_error(y, node, "budget per must be day, week, month or total");
        return MG_ERR;
    }
    *(int *)dst = per;
    return MG_OK;
}

static const struct mg_yaml_key budget_keys[] = {
    {"usd", set_budget_usd, offsetof(struct mg_key, budget_usd)},
    {"per", set_budget_per, offsetof(struct mg_key, budget_per)},
};

static int
set_key_budget(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_key *k = dst;

    k->budget_per = -1;
    if (mg_yaml_mapping(y, node, budget_keys, MG_ARRAY_LEN(budget_keys), k, "budget") != MG_OK) {
        return MG_ERR;
    }
    if (k->budget_usd == 0 || k->budget_per < 0) {
        mg_yaml_error(y, node, "budget needs \"usd\" and \"per\"");
        k->budget_usd = 0;
        return MG_ERR;
    }
    return MG_OK;
}

#define KIN(f) offsetof(struct mg_auth_key_in, f)
static const struct mg_yaml_key key_keys[] = {
    {"name", mg_yaml_set_nonempty, KIN(k.name)},
    {"key", set_key_text, 0},
    {"key_sha256", set_key_hex, 0},
    {"models", set_key_models, KIN(k)},
    {"requests_per_minute", set_per_minute, KIN(k.requests_per_minute)},
    {"tokens_per_minute", set_per_minute, KIN(k.tokens_per_minute)},
    {"budget", set_key_budget, KIN(k)},
};

static int
set_auth_keys(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_auth_in *a = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "keys", &n) != MG_OK) {
        return MG_ERR;
    }
    a->ks = mg_calloc(n, sizeof(*a->ks));
    for (i = 0; i < n; i++) {
        struct mg_auth_key_in *ki = &a->ks[a->nks++];
        ki->node = mg_yaml_item(y, node, i);
        if (mg_yaml_mapping(y, ki->node, key_keys, MG_ARRAY_LEN(key_keys), ki, "a key") != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

/* 1 when the key text could be sent in a header as it is: no control bytes, no edge blanks. */
static int
key_text_ok(const char *s)
{
    size_t i, n = strlen(s);

    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    return s[0] != ' ' && s[n - 1] != ' ';
}

/* Keys: names unique and well-formed, one key each, digests unique; the text dropped. */
void
mg_auth_conf_check(struct mg_yaml *y, void *in, struct mg_conf *conf)
{
    struct mg_auth_in *a = in;
    size_t i, j;

    if (a->node == NULL) {
        return;
    }
    conf->auth = 1;
    if (a->nks == 0) {
        mg_yaml_error(y, a->node, "auth needs at least one entry in \"keys\"");
        return;
    }
    conf->keys = mg_calloc(a->nks, sizeof(struct mg_key));
    for (i = 0; i < a->nks; i++) {
        struct mg_auth_key_in *ki = &a->ks[i];
        const char *name = ki->k.name ? ki->k.name : "?";
        int have = 0;

        if (ki->k.name == NULL) {
            mg_yaml_error(y, ki->node, "a key needs \"name\"");
        } else if (!mg_yaml_name_ok(ki->k.name)) {
            mg_yaml_error(y, ki->node, "key name \"%s\" may only hold A-Z a-z 0-9 _ . -", name);
        } else {
            for (j = 0; j < conf->nkeys; j++) {
                if (strcmp(conf->keys[j].name, ki->k.name) == 0) {
                    mg_yaml_error(y, ki->node, "duplicate key name \"%s\"", name);
                    break;
                }
            }
        }
        if (ki->text != NULL && ki->hex != NULL) {
            mg_yaml_error(y, ki->hex_node, "key \"%s\" has both \"key\" and \"key_sha256\"", name);
        } else if (ki->text != NULL) {
            if (ki->text[0] == '\0') {
                mg_yaml_error(y, ki->text_node, "the key of \"%s\" is empty", name);
            } else if (!key_text_ok(ki->text)) {
                mg_yaml_error(y, ki->text_node, "the key of \"%s\" holds control characters or "
                           "starts or ends with a space", name);
            } else {
                if (strlen(ki->text) < MG_AUTH_SHORT_KEY) {
                    mg_yaml_warning(y, ki->text_node, "the key of \"%s\" is shorter than %d "
                                 "characters; use openssl rand -hex 32", name, MG_AUTH_SHORT_KEY);
                }
                mg_auth_digest(ki->text, strlen(ki->text), ki->k.digest);
                have = 1;
            }
        } else if (ki->hex != NULL) {
            if (mg_auth_parse_hex(ki->hex, ki->k.digest) != 0) {
                mg_yaml_error(y, ki->hex_node, "key_sha256 of \"%s\" must be 64 hex digits", name);
            } else {
                have = 1;
            }
        } else {
            mg_yaml_error(y, ki->node, "key \"%s\" needs \"key\" or \"key_sha256\"", name);
        }
        for (j = 0; have && j < conf->nkeys; j++) {
            if (memcmp(conf->keys[j].digest, ki->k.digest, MG_AUTH_DIGEST_LEN) == 0) {
                mg_yaml_error(y, ki->text ? ki->text_node : ki->hex_node,
                           "key \"%s\" is the same key as \"%s\"", name, conf->keys[j].name);
                break;
            }
        }
        if (ki->k.name == NULL) {
            ki->k.name = mg_strdup("?");
        }
        if (ki->k.budget_usd > 0 && !conf->shared.on && conf->state_file == NULL) {
            mg_yaml_warning(y, ki->node, "key \"%s\" has a budget but neither shared nor "
                            "state_file is set: its spend starts from zero at every restart",
                            name);
        }
        conf->keys[conf->nkeys++] = ki->k;
        memset(&ki->k, 0, sizeof(ki->k));
    }
}

void *
mg_auth_conf_create(void)
{
    return mg_calloc(1, sizeof(struct mg_auth_in));
}

void
mg_auth_conf_free(void *in)
{
    struct mg_auth_in *a = in;
    size_t i, j;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->nks; i++) {
        struct mg_auth_key_in *ki = &a->ks[i];
        if (ki->text != NULL) {
            OPENSSL_cleanse(ki->text, strlen(ki->text));
        }
        free(ki->text);
        free(ki->hex);
        free(ki->k.name);
        for (j = 0; j < ki->k.nmodels; j++) {
            free(ki->k.models[j]);
        }
        free(ki->k.models);
    }
    free(a->ks);
    free(a);
}


static const struct mg_yaml_key auth_keys[] = {
    {"keys", set_auth_keys, 0},
};

int
mg_auth_conf_set(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_auth_in *a = dst;

    a->node = node;
    return mg_yaml_mapping(y, node, auth_keys, MG_ARRAY_LEN(auth_keys), a, "auth");
}
