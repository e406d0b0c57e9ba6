/*
 * mg_auth — client keys (the `auth` block): who is calling, which models the key may use, and
 * the glue between a key and its rate limits (mg_limit).
 *
 * A snapshot holds each key as the SHA-256 digest of its text, never the text itself. A presented
 * key is hashed once and compared with every key's digest with CRYPTO_memcmp, always over all
 * keys, so neither the time nor the path taken depends on how much of a key was right. Nothing
 * here logs, stores or returns the presented text.
 *
 * Pure functions: no sockets, no libevent; headers are read through a lookup callback and time is
 * passed in (monotonic milliseconds, as mg_limit takes it).
 */
#ifndef MG_AUTH_H
#define MG_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct mg_budget;
struct mg_limit;
struct mg_limit_header;
struct mg_limit_store;

#define MG_AUTH_DIGEST_LEN 32

/* Keys shorter than this load with a warning. */
#define MG_AUTH_SHORT_KEY 16

/*
 * One client key of a snapshot. Immutable once the snapshot is in service (limit is set by
 * mg_auth_apply() just before).
 */
struct mg_key {
    char            *name;                  /* [A-Za-z0-9_.-]+, shown in logs and metrics */
    unsigned char    digest[MG_AUTH_DIGEST_LEN];   /* SHA-256 of the key */
    char           **models;                /* allow-list: exact names, "prefix*"; NULL = all */
    size_t           nmodels;
    int64_t          requests_per_minute;   /* 0 = no request limit */
    int64_t          tokens_per_minute;     /* 0 = no token limit */
    struct mg_limit *limit;                 /* the buckets kept by name across reloads; NULL
                                               until mg_auth_apply() */
    int64_t          budget_usd;            /* budget: micro-dollars a window; 0 = none */
    int              budget_per;            /* enum mg_budget_per */
    struct mg_budget *budget;               /* its spend, kept by name across reloads; NULL
                                               without a budget (set when bound) */
    char            *catalog_json;          /* /v1/models as this key sees it; NULL = whole */
    size_t           catalog_json_len;
};

/* Looks up a request header by name (case-insensitive); NULL when absent. */
typedef const char *(*mg_auth_header_fn)(void *arg, const char *name);

/* SHA-256 of len bytes of key into out. */
void mg_auth_digest(const char *key, size_t len, unsigned char out[MG_AUTH_DIGEST_LEN]);

/* Reads exactly 64 hex digits (either case) into out. 0, or -1 when s is anything else. */
int mg_auth_parse_hex(const char *s, unsigned char out[MG_AUTH_DIGEST_LEN]);

/*
 * The key the client presented: `Authorization: Bearer <key>` (scheme case-insensitive), else
 * `api-key`, else `x-api-key` — the first of these headers that is present decides. Returns a
 * pointer into that header's value and its length (surrounding blanks left out), or NULL when
 * none is present, the Authorization scheme is not Bearer, or the key is empty.
 */
const char *mg_auth_credential(mg_auth_header_fn get_header, void *arg, size_t *len);

/*
 * The key among keys[0..n) whose digest is the SHA-256 of cred[0..len), or NULL. Compares
 * against every key in constant time.
 */
const struct mg_key *mg_auth_find(const struct mg_key *keys, size_t n, const char *cred,
                                  size_t len);

/*
 * 1 when the SHA-256 of cred[0..len) is digest (the admin key): compared in constant time, the
 * presented text never kept.
 */
int mg_auth_matches(const char *cred, size_t len, const unsigned char digest[MG_AUTH_DIGEST_LEN]);

/* 1 when key (NULL: no auth) may use model[0..len): no allow-list, or an entry matches. */
int mg_auth_allows(const struct mg_key *key, const char *model, size_t len);

/* 1 when key has a request or token limit (its answers carry x-ratelimit-* headers). */
int mg_auth_limited(const struct mg_key *key);

/* 1 when name is one of the x-ratelimit-* headers (case-insensitive) a limited key's are. */
int mg_auth_is_ratelimit_header(const char *name);

/*
 * Takes one routed request from key's buckets at now, and reserves `tokens` (the request's
 * estimate, mg_limit_estimate()) from its token bucket. 1: admitted (also for NULL or an
 * unlimited key), *reserved = the tokens reserved, to settle with mg_auth_settle(). 0: refused,
 * *reserved = 0; hdrs then holds the 429's headers (trios and Retry-After). hdrs has room for
 * MG_LIMIT_HEADERS_MAX; *nhdrs is set in both cases (0 for an unlimited key).
 */
int mg_auth_admit(const struct mg_key *key, int64_t now, int64_t tokens, int64_t *reserved,
                  struct mg_limit_header *hdrs, size_t *nhdrs);

/* The x-ratelimit-* trios of key's state at now, for an answer (no Retry-After). Returns n. */
size_t mg_auth_headers(const struct mg_key *key, int64_t now, struct mg_limit_header *hdrs);

/*
 * The end of an admitted request: its reservation is replaced by its answer's tokens (input +
 * output, a saturating sum; negative values count as 0, so 0 and 0 give it all back). Once per
 * request. NULL key or no token limit: nothing.
 */
void mg_auth_settle(const struct mg_key *key, int64_t reserved, int64_t input, int64_t output,
                    int64_t now);

/*
 * A snapshot goes into service: each key gets its entry in store (by name: levels are kept across
 * reloads) and its limits are set on it (a changed limit applies from now on). Not called for a
 * config that is only checked. Before any thread but the caller's sees keys.
 */
void mg_auth_apply(struct mg_limit_store *store, struct mg_key *keys, size_t n, int64_t now);

/* Frees keys[0..n) and the array. NULL is a no-op. */
void mg_auth_keys_free(struct mg_key *keys, size_t n);

#endif
