/*
 * mg_jload — JSON text into jansson values, faster than json_loadb() on the small bodies the
 * translators read, with its rules (mg_jload.c says which).
 */
#ifndef MG_JLOAD_H
#define MG_JLOAD_H

#include <stddef.h>

#include <jansson.h>

#define MG_JLOAD_NO_DUPLICATES 1   /* an object with a name twice is refused */
#define MG_JLOAD_PREFIX        2   /* the first value is read, what follows it is not looked at */

/* The object or array that text[0..len) holds (a new reference), or NULL when it is not one. */
json_t *mg_jload(const char *text, size_t len, int flags);

#endif
