/*
 * mg_limit_store — what a store of rate-limit buckets implements: the operations table behind
 * mg_limit's functions. mg_limit.c holds the table of stores by name (one row each); a store is
 * one file that fills a struct mg_limit_store_ops. Only stores include this header.
 *
 * The request path calls admit, settle and peek synchronously and never waits on a store: a store
 * whose state is remote (Redis) answers from what it holds locally and exchanges with the remote
 * side off the request path, with a deadline, keeping a local answer when the deadline passes.
 * get and configure run when a snapshot goes into service (the main thread), never per request.
 * worker_start and worker_stop let a remote store keep one connection per worker, on the worker's
 * own event loop (found again through a thread-local: the request path passes no worker).
 */
#ifndef MG_LIMIT_STORE_H
#define MG_LIMIT_STORE_H

#include "mg_limit.h"

/* The part every store begins with (its own state follows it in a larger struct). */
struct mg_limit_store {
    const struct mg_limit_store_ops *ops;
};

/* The part every key's entry begins with (the store's state for the key follows it). */
struct mg_limit {
    struct mg_limit_store *store;
    const char            *name;    /* owned by the entry, for the entry's whole life */
};

/*
 * The operations, each with the contract of the mg_limit_* function of the same name (see
 * mg_limit.h); entries stay at the same address until destroy.
 */
struct mg_limit_store_ops {
    const char *name;                                   /* as mg_limit_store_create() takes it */
    struct mg_limit_store *(*create)(void);
    void (*destroy)(struct mg_limit_store *store);      /* frees every entry too */
    struct mg_limit *(*get)(struct mg_limit_store *store, const char *name);
    void (*configure)(struct mg_limit *l, int64_t requests_per_minute, int64_t tokens_per_minute,
                      int64_t now);
    int (*admit)(struct mg_limit *l, int64_t now, int64_t tokens, struct mg_limit_info *info);
    void (*settle)(struct mg_limit *l, int64_t reserved, int64_t used, int64_t now);
    void (*peek)(const struct mg_limit *l, int64_t now, struct mg_limit_info *info);
    /* Optional (NULL: nothing to do): see mg_limit_store_worker_start() and _stop(). */
    void (*worker_start)(struct mg_limit_store *store, struct event_base *base);
    void (*worker_stop)(struct mg_limit_store *store);
};

/* The in-process store (mg_limit_local.c): GCRA buckets, one atomic word each. */
extern const struct mg_limit_store_ops mg_limit_local_ops;

#endif
