/*
 * mg_limit — the per-key rate limits of `auth` (SPEC "Configuration"): a token bucket for
 * requests_per_minute and one for tokens_per_minute, and the OpenAI x-ratelimit-* header values.
 *
 * A bucket of capacity N holds N units when full and refills at N per minute, computed from the
 * time of its last change (no timers). Each bucket is ONE 64-bit atomic, GCRA-style: the time (ns)
 * at which it will be full again. Its level at `now` is N - (full_at - now) * N / 60 s; taking k
 * units moves full_at to max(full_at, now) + k * 60 s / N with one compare-and-swap. One word
 * because a level + timestamp pair does not fit 64 bits with sub-unit precision for big token
 * limits. Nanoseconds because each take or debit is then rounded (down) by less than 1 ns, so
 * a bucket is generous by less than takes * N / 6e10 units: a 100,000-per-minute request limit
 * run flat out for a minute admits exactly 200,000 (burst + refill), and a 7,000,000-token bucket
 * debited 1,000 times a minute lets through under 0.12 tokens too many. Refill itself is computed
 * from the elapsed time exactly.
 *
 * Entries live in a process-wide registry by key name, outside config snapshots, so buckets keep
 * their level across reloads. mg_limit_get() takes a mutex (config load only); everything else is
 * lock-free and safe from any worker thread. Time is passed in: monotonic milliseconds (0 <= now,
 * up to 73 years).
 */
#ifndef MG_LIMIT_H
#define MG_LIMIT_H

#include <stddef.h>
#include <stdint.h>

/* One key's buckets; reached only through the functions below. */
struct mg_limit;

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
};

/* A header for the client: name and its value as text. */
struct mg_limit_header {
    const char *name;
    char        value[32];
};

/* The most headers mg_limit_headers() writes. */
#define MG_LIMIT_HEADERS_MAX 7

/*
 * The buckets of the key called name, created without limits on first use and kept, at the same
 * address, for the life of the process. Takes a mutex: call it at config load, not per request.
 */
struct mg_limit *mg_limit_get(const char *name);

/* The name the entry was created for. */
const char *mg_limit_name(const struct mg_limit *l);

/*
 * Sets the key's limits (per minute; <= 0 = none) at a config load; a change applies from now on.
 * A new limit (none before) starts full. A changed limit keeps the bucket's level, in units:
 * lowered, the level is clamped to the new capacity (a full bucket stays full); raised, the level
 * stays where it was and the extra room refills at the new rate (no sudden burst); debt is kept
 * as it is. A removed limit drops its bucket. A request decided while another thread reconfigures
 * may be judged against the old limit or the new one.
 */
void mg_limit_configure(struct mg_limit *l, int64_t requests_per_minute,
                        int64_t tokens_per_minute, int64_t now);

/*
 * One routed request of the key: returns 1 and takes a request when the request bucket holds at
 * least one and the token bucket is not empty (holds at least one token: not in debt); otherwise
 * 0, takes nothing, and sets info->retry_after_ms. info (may be NULL) gets the state after the
 * decision, for the headers.
 */
int mg_limit_admit(struct mg_limit *l, int64_t now, struct mg_limit_info *info);

/*
 * Tokens of an answer (input + output), debited after it. The bucket may go into debt (below
 * zero); the key is then refused until it refills to one token.
 */
void mg_limit_debit_tokens(struct mg_limit *l, int64_t tokens, int64_t now);

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

/* Frees every entry. Only when no thread holds a pointer from mg_limit_get() (tests, exit). */
void mg_limit_reset(void);

#endif
