/*
 * mg_limit — the per-key rate limits of `auth` (SPEC "Configuration"): a token bucket for
 * requests_per_minute and one for tokens_per_minute, and the OpenAI x-ratelimit-* header values.
 *
 * A bucket of capacity N holds N units when full and refills at N per minute, computed from the
 * time of its last change (no timers): the local store keeps it as one atomic word, the time at
 * which it will be full again (GCRA; mg_limit_local.c has the arithmetic and its error bounds).
 *
 * Tokens are reserved, then settled: a request takes its estimate (mg_limit_estimate(), capped at
 * the capacity) when admitted, and only when the bucket holds that much; its answer's usage
 * replaces the reservation afterwards (mg_limit_settle()), which gives it back in full when no
 * answer came. A settlement never takes a bucket below empty: its debt is capped at one
 * minute's worth (full again within 60 s), so no key waits more than a minute, whatever a burst
 * of answers used.
 *
 * Entries live in a store (struct mg_limit_store, held by the runtime) by key name, outside config
 * snapshots, so buckets keep their level across reloads. Which store holds them is a row in
 * mg_limit.c's table of stores; every call below goes through the store's operations
 * (mg_limit_store.h). mg_limit_get() takes a mutex (a snapshot going into service only);
 * everything else is lock-free and safe from any worker thread. Time is passed in: monotonic
 * milliseconds (0 <= now, up to 73 years).
 */
#ifndef MG_LIMIT_H
#define MG_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/* One key's buckets; reached only through the functions below. */
struct mg_limit;

/* Where the buckets live (mg_limit_store.h): one per runtime; tests make their own. */
struct mg_limit_store;

struct event_base;

/* Limits above this act as this (keeps 60 s / N at 60 ns or more). */
#define MG_LIMIT_MAX 1000000000

/* One limit of a key as its headers show it. */
struct mg_limit_bucket_info {
    int64_t limit;      /* per minute; 0 = the key has no such limit (and no headers for it) */
    int64_t remaining;  /* whole units left now, rounded down, never negative */
    int64_t reset_ms;   /* until the bucket is full again, rounded up to the ms */
};

struct mg_limit_info {
    struct mg_limit_bucket_info requests;
    struct mg_limit_bucket_info tokens;
    int64_t retry_after_ms;     /* refused: until an admit would pass (rounded up); else 0 */
    int64_t reserved;           /* admitted: the tokens reserved (to settle); else 0 */
};

/* What an inline image or file of a request counts, in tokens, instead of its bytes / 4. */
#define MG_LIMIT_PART_TOKENS 1000

/* A header for the client: name and its value as text. */
struct mg_limit_header {
    const char *name;
    char        value[32];
};

/* The most headers mg_limit_headers() writes. */
#define MG_LIMIT_HEADERS_MAX 7

/* An empty store of the kind called name ("local"), or NULL when there is no such kind. */
struct mg_limit_store *mg_limit_store_create(const char *name);

/*
 * Frees the store and every entry. Only when no thread holds a pointer from mg_limit_get() (the
 * server's exit, a test's end). NULL is a no-op.
 */
void mg_limit_store_destroy(struct mg_limit_store *store);

/*
 * A worker thread starts (called on that thread, with its event loop, before the loop runs) or
 * ends (on that thread, after its loop). The local store has nothing to do; a remote one opens
 * and closes the worker's connection. A store that cannot reach its remote side still answers.
 */
void mg_limit_store_worker_start(struct mg_limit_store *store, struct event_base *base);
void mg_limit_store_worker_stop(struct mg_limit_store *store);

/*
 * The buckets of the key called name in store, created without limits on first use and kept, at
 * the same address, as long as the store lives. Takes a mutex: call it when a snapshot goes into
 * service, not per request.
 */
struct mg_limit *mg_limit_get(struct mg_limit_store *store, const char *name);

/* The name the entry was created for. */
const char *mg_limit_name(const struct mg_limit *l);

/*
 * Sets the key's limits (per minute; <= 0 = none) at a config load; a change applies from now on.
 * A new limit (none before) starts full. A changed limit keeps the bucket's level, in units:
 * lowered, the level is clamped to the new capacity (a full bucket stays full); raised, the level
 * stays where it was and the extra room refills at the new rate (no sudden burst); an empty
 * bucket stays empty. Reservations in flight are settled against the new limit, in units too.
 * A removed limit drops its bucket. A request decided while another thread reconfigures may be
 * judged against the old limit or the new one.
 */
void mg_limit_configure(struct mg_limit *l, int64_t requests_per_minute,
                        int64_t tokens_per_minute, int64_t now);

/*
 * One routed request of the key, estimated at `tokens`: returns 1 when the request bucket holds
 * one request and the token bucket holds the reservation, min(max(tokens, 1), capacity), and
 * takes both at once (lock-free: a CAS on each bucket; a request that loses the last request to
 * another thread gives its tokens back). Otherwise 0, takes nothing, and sets
 * info->retry_after_ms to the wait until both would pass. info (may be NULL; callers that
 * settle need it) gets the state after the decision, for the headers, and info->reserved.
 */
int mg_limit_admit(struct mg_limit *l, int64_t now, int64_t tokens, struct mg_limit_info *info);

/*
 * The end of an admitted request: its reservation (info->reserved of the admit) is replaced by
 * the tokens its answer used (input + output; 0 when there was no answer, which gives the whole
 * reservation back). A bucket never goes below empty (the debt cap) nor above full.
 */
void mg_limit_settle(struct mg_limit *l, int64_t reserved, int64_t used, int64_t now);

/*
 * A request's token estimate for its reservation: its body bytes / 4, where each inline image or
 * file counts MG_LIMIT_PART_TOKENS instead of its bytes, plus max_tokens (its max_tokens,
 * max_completion_tokens or max_output_tokens; 0 when none). Inline files, found in one pass:
 * in JSON, each string that starts with "data:" and each "data" member whose string is 64 or
 * more base64 characters; in a multipart/form-data body (one that starts with "--"), each part
 * whose headers carry a filename. An approximation by design: a data URL in a prompt's text
 * counts as a file too. Saturates at MG_TOKENS_MAX.
 */
int64_t mg_limit_estimate(const char *body, size_t len, int64_t max_tokens);

/* The key's state now, without taking anything (retry_after_ms is 0). */
void mg_limit_peek(const struct mg_limit *l, int64_t now, struct mg_limit_info *info);

/*
 * The headers for info, in this order: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
 * x-ratelimit-reset-requests when the key has a request limit, the same three for -tokens when it
 * has a token limit, then Retry-After (whole seconds, rounded up) when info->retry_after_ms > 0.
 * out has room for MG_LIMIT_HEADERS_MAX; returns how many were written.
 */
size_t mg_limit_headers(const struct mg_limit_info *info, struct mg_limit_header *out);

/*
 * A duration as OpenAI writes x-ratelimit-reset-*, which is Go's time.Duration format at
 * millisecond resolution: "0s", "20ms", "1s", "8.64s", "1m30s", "6m0s", "1m51.535s", "1h0m0s"
 * (OpenAI's rate-limit guide shows "1s" and "6m0s"; its answers carry values such as "12ms",
 * "8.64s", "4m19.2s", "1m51.535s"). Negative is "0s". Writes at most len bytes with the NUL;
 * returns the length it needed.
 */
size_t mg_limit_format_duration(int64_t ms, char *buf, size_t len);

#endif
