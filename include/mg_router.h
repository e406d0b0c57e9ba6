/*
 * mg_router — which rule serves a request: rules in file order, the first whose models hold the
 * request's model (exactly, or by a "prefix*" pattern) and whose headers all match.
 */
#ifndef MG_ROUTER_H
#define MG_ROUTER_H

#include <stddef.h>

#include "mg_conf_types.h"

/* Looks up a request header by name (case-insensitive); NULL when absent. */
typedef const char *(*mg_router_header_fn)(void *arg, const char *name);

/* Index of the first rule that serves model, or -1. get_header may be NULL (no headers). */
int mg_router_match(const struct mg_conf *conf, const char *model, size_t len,
                    mg_router_header_fn get_header, void *arg);

/* 1 when pattern (an exact name, or a prefix ending in '*') matches model. */
int mg_router_model_matches(const char *pattern, const char *model, size_t len);

#endif
