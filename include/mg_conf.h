/*
 * mg_conf — the YAML file turned into an immutable, reference-counted snapshot.
 *
 * A snapshot is never changed after mg_conf_load() returns it: each request holds a reference to
 * the snapshot it started with, so a reload can swap in a new one while old requests finish.
 */
#ifndef MG_CONF_H
#define MG_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "mg_auth.h"
#include "mg_catalog.h"
#include "mg_conf_types.h"
#include "mg_util.h"

/*
 * Reads and validates FILE. Returns a snapshot holding one reference, or NULL when the file has
 * any error; then errors holds one "file:line:col: message\n" line per problem found. seen (the
 * runtime's, or NULL for none) gives the catalog's default created times; it is only read. The
 * snapshot touches no other runtime state until it goes into service (mg_runtime_bind()).
 */
struct mg_conf *mg_conf_load(const char *path, const struct mg_catalog_seen *seen,
                             struct mg_buf *errors);

/* Same as mg_conf_load() for text already in memory, seen NULL; path is only used in messages. */
struct mg_conf *mg_conf_parse(const char *path, const char *text, size_t len,
                              struct mg_buf *errors);

/* mg_conf_parse() with the load time given: the default "created" of models new to seen. */
struct mg_conf *mg_conf_parse_at(const char *path, const char *text, size_t len, int64_t now,
                                 const struct mg_catalog_seen *seen, struct mg_buf *errors);

#endif
