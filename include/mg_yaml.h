/*
 * mg_yaml — the configuration engine: a YAML document walked through tables of typed setters.
 *
 * Whoever owns a block of the file (the top level, a backend, a schema's keys, auth) declares it
 * as a table of {key, setter, offset} rows into its own struct, as nginx's ngx_command_t and
 * twemproxy's conf do; the engine walks a mapping through that table, reports unknown and
 * duplicate keys, and every error reads "file:line:col: message". Setters report their own
 * errors and return MG_ERR, and the walk carries on, so one run shows every problem.
 */
#ifndef MG_YAML_H
#define MG_YAML_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "mg_util.h"

/* A loaded document and where its errors go. */
struct mg_yaml {
    const char     *path;      /* used in messages only */
    yaml_document_t doc;
    struct mg_buf  *errors;    /* "file:line:col: message\n" lines */
    int             nerrors;
    char          **warnings;  /* where mg_yaml_warning() appends its lines (may be NULL) */
    void           *owner;     /* the caller's state as read, for setters that fill more */
};

/* Stores node's value at dst (a field of the owner's struct); MG_OK or MG_ERR (reported). */
typedef int (*mg_yaml_set_fn)(struct mg_yaml *y, yaml_node_t *node, void *dst);

/* One key of a mapping: its setter gets base + off. */
struct mg_yaml_key {
    const char    *key;
    mg_yaml_set_fn set;
    size_t         off;
};

/*
 * Called by mg_yaml_mapping_with() for a key its table does not have: 1 when it took the key
 * (then *rc is the setter's result), 0 when the key is unknown.
 */
typedef int (*mg_yaml_other_fn)(struct mg_yaml *y, const char *key, yaml_node_t *value,
                                void *base, int *rc);

/*
 * Sets y up and parses text into y->doc (path only names it in messages). MG_ERR on a syntax
 * error (reported; nothing to free); else MG_OK with *root, NULL for an empty file (reported and
 * counted in y->nerrors). Then mg_yaml_deinit() frees the document.
 */
int mg_yaml_load(struct mg_yaml *y, const char *path, const char *text, size_t len,
                 struct mg_buf *errors, yaml_node_t **root);

/* Frees the document mg_yaml_load() loaded. */
void mg_yaml_deinit(struct mg_yaml *y);

/* Reports "file:line:col: message" at node (1:1 when NULL) and counts it. */
void mg_yaml_error(struct mg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends "file:line:col: warning: message" to *y->warnings (a config still loads). */
void mg_yaml_warning(struct mg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The document's node id. */
yaml_node_t *mg_yaml_node(struct mg_yaml *y, int id);

/* "a scalar", "a list", "a mapping" or "empty", for messages. */
const char *mg_yaml_kind(const yaml_node_t *n);

/*
 * The scalar's text with ${VAR} replaced by the environment (a new string), or NULL when node is
 * not a scalar ("WHAT must be a scalar") or a variable is unset (reported).
 */
char *mg_yaml_scalar(struct mg_yaml *y, yaml_node_t *node, const char *what);

/*
 * node's string value for key (${VAR} expanded) when node is a mapping that has it, else NULL;
 * never an error: the walk reports them. To choose a table before walking (a backend's schema).
 */
char *mg_yaml_peek(struct mg_yaml *y, yaml_node_t *node, const char *key);

/* Walks a mapping with a table; unknown and duplicate keys are errors ("... in WHAT"). */
int mg_yaml_mapping(struct mg_yaml *y, yaml_node_t *node, const struct mg_yaml_key *keys,
                    size_t nkeys, void *base, const char *what);

/* mg_yaml_mapping() asking other about keys the table does not have (other may be NULL). */
int mg_yaml_mapping_with(struct mg_yaml *y, yaml_node_t *node, const struct mg_yaml_key *keys,
                         size_t nkeys, void *base, const char *what, mg_yaml_other_fn other);

/* The row of keys named key, or NULL. */
const struct mg_yaml_key *mg_yaml_find(const struct mg_yaml_key *keys, size_t nkeys,
                                       const char *key);

/*
 * The items of a list: their count in *n and MG_OK, or MG_ERR ("WHAT must be a list, not ...").
 * mg_yaml_item() is the i-th.
 */
int mg_yaml_list(struct mg_yaml *y, yaml_node_t *node, const char *what, size_t *n);
yaml_node_t *mg_yaml_item(struct mg_yaml *y, yaml_node_t *list, size_t i);

/*
 * The pairs of a mapping: their count in *n and MG_OK, or MG_ERR ("WHAT must be a mapping, not
 * ..."), for mappings whose keys are data (header names). mg_yaml_pair() gives the i-th.
 */
int mg_yaml_pairs(struct mg_yaml *y, yaml_node_t *node, const char *what, size_t *n);
void mg_yaml_pair(struct mg_yaml *y, yaml_node_t *map, size_t i, yaml_node_t **key,
                  yaml_node_t **value);

/* A scalar's text as written (no ${VAR} expansion), or NULL when node is not a scalar. */
const char *mg_yaml_text(const yaml_node_t *node);

/* Parses a whole number within lo..hi into *v (errors reported). */
int mg_yaml_int(struct mg_yaml *y, yaml_node_t *node, long long lo, long long hi, long long *v);

/* Integer setters differ only in their range and the type they store. */
#define MG_YAML_INT_SETTER(name, type, lo, hi)                                                 \
    static int name(struct mg_yaml *y, yaml_node_t *node, void *dst)                           \
    {                                                                                          \
        long long v;                                                                           \
        if (mg_yaml_int(y, node, lo, hi, &v) != MG_OK) {                                       \
            return MG_ERR;                                                                     \
        }                                                                                      \
        *(type *)dst = (type)v;                                                                \
        return MG_OK;                                                                          \
    }

/* ---- typed setters; dst is the field ---- */

/* char *: any string (the old one freed); a non-empty one. */
int mg_yaml_set_string(struct mg_yaml *y, yaml_node_t *node, void *dst);
int mg_yaml_set_nonempty(struct mg_yaml *y, yaml_node_t *node, void *dst);
/*
 * char *: a string sent in a request line or header as it is (api_key, api_version, region):
 * no control byte (a CR or LF would inject a header; an env var's trailing newline); a
 * non-empty one.
 */
int mg_yaml_set_line(struct mg_yaml *y, yaml_node_t *node, void *dst);
int mg_yaml_set_nonempty_line(struct mg_yaml *y, yaml_node_t *node, void *dst);
/* char *: an http:// or https:// URL (mg_yaml_url_problem()). */
int mg_yaml_set_url(struct mg_yaml *y, yaml_node_t *node, void *dst);
/* int: true/false, yes/no, on/off. */
int mg_yaml_set_bool(struct mg_yaml *y, yaml_node_t *node, void *dst);
/* int64_t: a positive duration in milliseconds ("500ms", "10s", "5m", "1h"). */
int mg_yaml_set_duration(struct mg_yaml *y, yaml_node_t *node, void *dst);
/* uint64_t: a size in bytes, 1 to 1 TiB ("16MiB"). */
int mg_yaml_set_size(struct mg_yaml *y, yaml_node_t *node, void *dst);

/* ---- checks owners share ---- */

/* 1 when s holds a control byte (or DEL). */
int mg_yaml_has_control(const char *s);

/* 1 when s only holds A-Z a-z 0-9 _ . - (names of backends and keys). */
int mg_yaml_name_ok(const char *s);

/*
 * Why u is not "scheme://host[:port][/path]" with one of schemes (NULL-terminated prefixes): no
 * userinfo (curl would send it as Basic auth), no query or fragment (the client's path and query
 * are appended), a port from 1 to 65535, no control bytes. NULL when it is fine.
 */
const char *mg_yaml_url_problem(const char *u, const char *const *schemes);

#endif
