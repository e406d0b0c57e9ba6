/*
 * mg_catalog — the model catalog of /v1/models: its entries and JSON, built once per config
 * snapshot at load, and the registry of first-load times (struct mg_catalog_seen, held by the
 * runtime) that gives a name its default "created" across reloads.
 *
 * That registry outlives every snapshot. A snapshot reads it when it is built (a name the
 * registry does not hold gets the load time) and the server writes it when the snapshot goes into
 * service, so a config that is only checked (-t) or refused never changes it.
 */
#ifndef MG_CATALOG_H
#define MG_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

/* One model of /v1/models. */
struct mg_model_entry {
    const char *id;         /* owned by the snapshot's rule */
    const char *owned_by;   /* likewise */
    int64_t     created;    /* Unix seconds */
};

/* The first-load times of the names in service; one per runtime (tests make their own). */
struct mg_catalog_seen;

/* An empty registry: every name is new. */
struct mg_catalog_seen *mg_catalog_seen_create(void);

/* Frees the registry. NULL is a no-op. */
void mg_catalog_seen_destroy(struct mg_catalog_seen *seen);

/*
 * The default created of name: its remembered first-load time, else now (always now when seen is
 * NULL: the first load, or a config only checked). Thread-safe.
 */
int64_t mg_catalog_first_seen(const struct mg_catalog_seen *seen, const char *name, int64_t now);

/*
 * Remembers exactly these entries' created times (names not among them are forgotten, so a name
 * that leaves and comes back starts anew). Called when a snapshot goes into service.
 */
void mg_catalog_remember(struct mg_catalog_seen *seen, const struct mg_model_entry *e, size_t n);

/* Appends one entry as a model object {"id","object","created","owned_by"} to out. */
void mg_catalog_entry_json(struct mg_buf *out, const struct mg_model_entry *e);

/* Appends the whole list object {"object":"list","data":[...]} and a newline to out. */
void mg_catalog_json(struct mg_buf *out, const struct mg_model_entry *e, size_t n);

struct mg_conf;

/*
 * Builds a snapshot's catalog (entries and JSON: the exact names of listed rules, in file order,
 * each once, from its first rule; created from the rule, else mg_catalog_first_seen()) and each
 * allow-listed key's own JSON. now is the load time.
 */
void mg_catalog_build(struct mg_conf *conf, int64_t now, const struct mg_catalog_seen *seen);

#endif
