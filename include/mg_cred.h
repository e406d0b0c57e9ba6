/*
 * mg_cred — cloud credentials fetched off the request path and read lock-free on it.
 *
 * A credential *source* is what one backend's credential config names (AWS's default chain, an
 * STS role, an Entra ID client, a Google service account, ...): a blocking `fetch` callback and
 * its argument. Sources live in a registry keyed by a string (the backend's name and what
 * identifies its credential config), which the runtime holds: a reload that keeps the config
 * gets the same source and so the same cached credential, and a changed config a new one (the
 * old one's refresher stops; its memory stays until the runtime goes, since a snapshot still
 * serving requests may point at it).
 *
 * Each source has one refresher thread. It calls `fetch` (blocking, bounded by the fetcher's own
 * timeouts), publishes what it got as an immutable, reference-counted `struct mg_cred` by an
 * atomic pointer swap, and sleeps until `expiry - min(5 min, lifetime / 2)`; after a failure it
 * retries with backoff (1 s doubling up to 60 s) and keeps the credential it has, which serves
 * until shortly before it expires (mg_cred_usable_until). A worker takes the current credential with mg_cred_source_current(): two atomic
 * increments and a load, no lock, never a wait. The first fetch is made when a config goes into
 * service (mg_cred_registry_wait: the reload, or the start, waits for it a bounded time, never a
 * worker); a source still without a credential then fails its backend's attempts
 * (credentials_unavailable) until its refresher gets one.
 *
 * Also here: the blocking HTTP transfer every fetcher uses (mg_cred_http_do: libcurl easy, with a
 * timeout, a header list, a body and a cap on the answer), and the few parsers they share.
 * Secrets never reach the log: sources log their label and the fetcher's error text only.
 */
#ifndef MG_CRED_H
#define MG_CRED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_CRED_ERR_MAX       256              /* a fetcher's error text */
#define MG_CRED_NOEXPIRY_MS   (15 * 60 * 1000) /* credentials without expiry: read again after */
#define MG_CRED_FIRST_WAIT_MS 10000            /* how long a config's first fetch is waited for */

enum mg_cred_kind {
    MG_CRED_AWS = 1,   /* access key id, secret access key, optional session token */
    MG_CRED_BEARER,    /* an OAuth 2.0 bearer token */
};

/* One credential, immutable once published. Strings are NUL-terminated; unused ones are NULL. */
struct mg_cred {
    atomic_int         refs;
    enum mg_cred_kind  kind;
    int64_t            expires_ms;          /* Unix milliseconds; 0: no expiry */
    int64_t            fetched_ms;          /* set by the refresher when it publishes it */
    char              *access_key_id;       /* MG_CRED_AWS */
    char              *secret_access_key;
    char              *session_token;       /* NULL for long-term keys */
    char              *token;               /* MG_CRED_BEARER */
};

/* A new AWS credential (one reference; the strings are copied). token may be NULL or "". */
struct mg_cred *mg_cred_aws(const char *key_id, const char *secret, const char *token,
                            int64_t expires_ms);
/* A new bearer credential (one reference; the token is copied). */
struct mg_cred *mg_cred_bearer(const char *token, int64_t expires_ms);
/* Drops a reference; the last one wipes the secrets and frees. NULL is a no-op. */
void mg_cred_unref(struct mg_cred *c);

/*
 * What a source does. fetch runs on the source's refresher thread only, may block (bounded by its
 * own timeouts), and returns MG_OK with *out set (one reference handed over) or MG_ERR with a
 * reason in err (never a secret). free releases arg (NULL: nothing to free).
 */
struct mg_cred_source_ops {
    int  (*fetch)(void *arg, struct mg_cred **out, char *err, size_t errlen);
    void (*free)(void *arg);
};

struct mg_cred_registry;
struct mg_cred_source;

/* An empty registry. */
struct mg_cred_registry *mg_cred_registry_create(void);
/* Stops every refresher (waiting for a fetch in progress) and frees everything. NULL: no-op. */
void mg_cred_registry_destroy(struct mg_cred_registry *reg);

/*
 * The source called key: the existing one (then arg is freed with ops->free at once), or a new
 * one made of ops and arg whose refresher starts fetching now. label names it in the log (the
 * backend's name). The source lives as long as the registry: a snapshot's backend keeps a plain
 * pointer to it. Called by one thread (the one that binds configs), for each backend of a config
 * going into service, then mg_cred_registry_wait() once.
 */
struct mg_cred_source *mg_cred_source_get(struct mg_cred_registry *reg, const char *key,
                                          const char *label, const struct mg_cred_source_ops *ops,
                                          void *arg);

/*
 * Ends a config's binding: waits until every source it named has finished its first fetch, or
 * timeout_ms passed; then the refreshers of the sources it did not name stop (their last
 * credential stays readable by snapshots still in use; a later config that names one restarts
 * it). The thread that calls get.
 */
void mg_cred_registry_wait(struct mg_cred_registry *reg, int64_t timeout_ms);

/*
 * Appends the sources' families to /metrics: modelgate_credential_fetches_total{backend,result}
 * and modelgate_credential_expiry_seconds{backend}, for the sources a config names. Any thread.
 */
void mg_cred_registry_render(struct mg_cred_registry *reg, struct mg_buf *out);

/*
 * The source's credential, referenced (release it with mg_cred_unref), or NULL when it has none
 * usable at now_ms (Unix milliseconds; see mg_cred_usable_until). Lock-free; any thread.
 */
struct mg_cred *mg_cred_source_current(struct mg_cred_source *s, int64_t now_ms);

/* How many fetches the source has made, and how many of them failed (tests, the status page). */
uint64_t mg_cred_source_fetches(const struct mg_cred_source *s);
uint64_t mg_cred_source_failures(const struct mg_cred_source *s);

/*
 * The schedule, pure: when a credential fetched at fetched_ms that expires at expires_ms
 * (0: never) is refreshed: expires - min(5 min, lifetime / 2), or fetched + MG_CRED_NOEXPIRY_MS.
 */
int64_t mg_cred_refresh_at(int64_t fetched_ms, int64_t expires_ms);
/*
 * Until when a credential fetched at fetched_ms that expires at expires_ms (0: never; then
 * INT64_MAX) is used: expires - min(30 s, lifetime / 4), so that clocks a little apart and the
 * time a request takes to reach the provider never make it present an expired one. Pure.
 */
int64_t mg_cred_usable_until(int64_t fetched_ms, int64_t expires_ms);
/* The wait before retrying after the n-th failure in a row (n >= 1): 1 s, 2 s, ... up to 60 s. */
int64_t mg_cred_backoff_ms(unsigned n);

/*
 * Appends to a source's key the hex SHA-256 of secret and a newline: a changed secret makes a
 * new source, and the key (kept in memory for as long as the source lives) holds no secret.
 */
void mg_cred_key_secret(struct mg_buf *key, const char *secret);

/* Unix milliseconds now (the wall clock credentials expire by). */
int64_t mg_cred_now_ms(void);

/* ---- the blocking HTTP transfer fetchers use --------------------------------------------- */

struct mg_cred_http {
    const char        *method;     /* "GET", "POST", "PUT" */
    const char        *url;
    const char *const *headers;    /* "Name: value" lines, NULL-terminated; NULL: none */
    const char        *body;       /* sent as is; NULL with body_len 0: none */
    size_t             body_len;
    int64_t            timeout_ms; /* the whole transfer (connect included); 0: 5 s */
    size_t             max;        /* the answer's body cap; 0: 64 KiB */
    int                no_proxy;   /* 1: never through a proxy (metadata endpoints) */
};

/*
 * 1 when the calling thread is a source's refresher that has been asked to stop: its transfers
 * (mg_cred_http_do) end at once, so that a stop (a reload, the shutdown) never waits out a slow
 * endpoint. 0 on any other thread.
 */
int mg_cred_stopping(void);

/*
 * Makes the transfer (any thread; blocking). MG_OK when an answer came, whatever its status:
 * *status and out (the body, NUL-terminated, out's cap set here) are set. MG_ERR otherwise, with
 * the reason in err (curl's text; no header or body is quoted). out is initialised either way.
 */
int mg_cred_http_do(const struct mg_cred_http *rq, long *status, struct mg_buf *out,
                    char *err, size_t errlen);

/*
 * A timestamp as AWS and Azure write them: RFC 3339 / ISO 8601 in UTC ("2026-12-07T13:00:00Z",
 * fractions of a second allowed, "+00:00" too) -> Unix milliseconds. MG_OK or MG_ERR.
 */
int mg_cred_parse_time(const char *s, int64_t *ms);

/*
 * Appends name=value to an application/x-www-form-urlencoded body ('&' first unless b is
 * empty), value percent-encoded (every byte outside A-Z a-z 0-9 - _ . ~ as %XX).
 */
void mg_cred_form_add(struct mg_buf *b, const char *name, const char *value);

/*
 * An OAuth 2.0 token answer (Entra ID, managed identity, Google): access_token, and its expiry
 * from expires_in (seconds, a number or a numeric string) or expires_on (Unix seconds, the same),
 * counted from now_ms. MG_OK with a new bearer credential in *out; MG_ERR with why in err (the
 * answer's "error"/"error_description" when it has them, never the token). Pure.
 */
int mg_cred_bearer_json(const char *text, int64_t now_ms, struct mg_cred **out, char *err,
                        size_t errlen);

/* A whole file, at most max bytes, NUL-terminated, trailing white space cut. NULL on error. */
char *mg_cred_read_file(const char *path, size_t max);

#endif
