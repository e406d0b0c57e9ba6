/*
 * mg_json_names — the top-level names of a request body, kept as the scan passes them and
 * checked at its end (for mg_json_scan_request; not for other callers).
 */
#ifndef MG_JSON_NAMES_H
#define MG_JSON_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "mg_jscan.h"

/* One name, where it stands in the body. */
struct mg_json_name {
    const unsigned char *at;          /* the name's first byte, past its opening quote */
    uint32_t             len : 31;    /* decoded length in bytes (2^31 - 1 for longer ones) */
    uint32_t             escaped : 1; /* holds an escape: its bytes are not its text */
    uint32_t             hash;        /* see mg_json_names.c name_hash(), once computed */
};

/* The names of one body: on the stack up to MG_JSON_NAMES_INLINE, then on the heap. */
struct mg_json_names {
    struct mg_json_name *v;       /* local, or an allocated array once local is full */
    size_t               n, cap;
    struct mg_json_name  local[MG_JSON_NAMES_INLINE];
};

/* An empty set, its storage the inline array. */
void mg_json_names_init(struct mg_json_names *ns);

/* Frees what the set allocated; it is empty again. */
void mg_json_names_deinit(struct mg_json_names *ns);

/*
 * A top-level member's name (s->p on its opening quote) and its colon; leaves s->p on the value
 * and the name in ns. *name is its decoded text when it fits buf (or needs no decoding), else
 * NULL (no name the scan looks for is that long); *len its decoded length. MG_JSON_OK or
 * MG_JSON_INVALID (also past 2^30 names).
 */
int mg_json_names_take(struct mg_jscan *s, char *buf, size_t cap, struct mg_json_names *ns,
                       const char **name, size_t *len);

/* 1 when two of the names are the same decoded text; end is the end of the body. */
int mg_json_names_duplicate(struct mg_json_names *ns, const unsigned char *end);

/*
 * 1 when name (decoded, n bytes) is word (lower-case ASCII letters) in another case, as a reader
 * that matches names ignoring case takes it: Go's encoding/json folds ASCII case and also takes
 * U+017F (long s) for s and U+212A (Kelvin sign) for k.
 */
int mg_json_names_variant(const char *name, size_t n, const char *word);

#endif
