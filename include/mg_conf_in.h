/*
 * mg_conf_in — the config loader's state as read, shared by the files of the conf module:
 * mg_conf.c (the top level, the blocks table, the snapshot's life), mg_conf_backend.c (backends)
 * and mg_conf_rule.c (rules). Other modules read the snapshot (mg_conf_types.h), never this.
 */
#ifndef MG_CONF_IN_H
#define MG_CONF_IN_H

#include <stddef.h>
#include <stdint.h>

#include "mg_conf_types.h"
#include "mg_yaml.h"

/* health as read; -1 is "not in the file" (a backend's overrides are merged key by key). */
struct mg_conf_health_in {
    long long    failures;
    int64_t      cooldown_ms;
    int64_t      max_cooldown_ms;
    int64_t      check_interval_ms;
    yaml_node_t *node;
};

struct mg_conf_backend_in;   /* mg_conf_backend.c */
struct mg_conf_rule_in;      /* mg_conf_rule.c */

/* The backends block as read, in file order. */
struct mg_conf_backends_in {
    struct mg_conf_backend_in *bs;
    size_t                     n;
};

/* The rules block as read, in file order. */
struct mg_conf_rules_in {
    struct mg_conf_rule_in *rs;
    size_t                  n;
};

#define MG_CONF_BLOCKS_MAX 16

/* The whole file as read; y->owner points at it while the file is walked. */
struct mg_conf_in {
    struct mg_conf            *conf;
    struct mg_conf_health_in   health;     /* the top-level health, defaults for backends */
    struct mg_conf_backends_in backends;
    struct mg_conf_rules_in    rules;
    void                      *owned[MG_CONF_BLOCKS_MAX];  /* other owners' state, by row */
    yaml_node_t               *listen_node;
    yaml_node_t               *admin_node;
    yaml_node_t               *admin_key_node;
    yaml_node_t               *state_file_node;
};

/*
 * A top-level block: its key; the owner's state as read, which create makes (opaque to the
 * loader), or with create NULL the field of struct mg_conf_in at off (the conf module's own
 * blocks); its setter (dst: that state); its phase three (moves what it read into the snapshot;
 * NULL for none); the free of its state (NULL for none). Checks run in the table's order.
 */
struct mg_conf_block {
    const char    *key;
    void        *(*create)(void);
    mg_yaml_set_fn set;
    void         (*check)(struct mg_yaml *y, void *in, struct mg_conf *conf);
    void         (*free)(void *in);
    size_t         off;
};

/* ---- mg_conf_backend.c ---- */

/* Sets every health key to "not in the file". */
void mg_conf_health_init(struct mg_conf_health_in *h);

/* Setters: health (struct mg_conf_health_in), timeouts (struct mg_timeouts). */
int mg_conf_set_health(struct mg_yaml *y, yaml_node_t *node, void *dst);
int mg_conf_set_timeouts(struct mg_yaml *y, yaml_node_t *node, void *dst);

/*
 * headers: dst points at a `struct mg_header *headers` immediately followed by `size_t n`.
 * _set_headers is for headers the gateway sends (a backend's, the tracing exporter's): the
 * framing and hop-by-hop ones are refused there; _set_match_headers for a rule's, only compared.
 */
int mg_conf_set_headers(struct mg_yaml *y, yaml_node_t *node, void *dst);
int mg_conf_set_match_headers(struct mg_yaml *y, yaml_node_t *node, void *dst);
void mg_conf_headers_free(struct mg_header *h, size_t n);

/* The backends block (struct mg_conf_backends_in): list, phase three, free. */
int mg_conf_set_backends(struct mg_yaml *y, yaml_node_t *node, void *dst);
void mg_conf_check_backends(struct mg_yaml *y, void *in, struct mg_conf *conf);
void mg_conf_backends_free(void *in);

/* Frees what a snapshot's backend holds (not b itself). */
void mg_conf_backend_deinit(struct mg_backend *b);

/* ---- mg_conf_rule.c ---- */

/* The rules block (struct mg_conf_rules_in): list, phase three, free. */
int mg_conf_set_rules(struct mg_yaml *y, yaml_node_t *node, void *dst);
void mg_conf_check_rules(struct mg_yaml *y, void *in, struct mg_conf *conf);
void mg_conf_rules_free(void *in);

/* Frees what a snapshot's rule holds (not r itself). */
void mg_conf_rule_deinit(struct mg_rule *r);

#endif
