/*
 * mg_budget_redis — keys' spend in Redis, with `shared:` (SPEC "Shared state across instances"):
 * one integer of micro-dollars per key and window, prefix+"spend:"+key+":"+window_start (Unix
 * seconds), added to with INCRBY (each request rounded up to a whole micro-dollar already), read
 * with GET before a budgeted key's request is admitted, so every instance admits against the
 * fleet's spend. The key of the window before is deleted once the window is over (they have no
 * expiry: volatile-lru never evicts spend). Spend that could not be written (Redis down or slow)
 * stays in the entry and is added with the next exchange; a reset made here is a SET 0.
 *
 * Everything goes through the calling worker's pipelined connection, in order: the writes a key
 * owes, then its GET, so the total read includes them.
 */
#ifndef MG_BUDGET_REDIS_H
#define MG_BUDGET_REDIS_H

#include <stdint.h>

struct mg_budget;
struct mg_redis;
struct mg_redis_op;

/* The read's result: 1 the entry now holds Redis's total; 0 Redis could not be read. */
typedef void (*mg_budget_redis_fn)(void *arg, int ok);

#define MG_BUDGET_REDIS_KEY_MAX 320

/* One read in flight, in the caller's memory until its callback (or a cancel). */
struct mg_budget_redis_call {
    struct mg_redis_op *op;
    struct mg_budget   *b;
    int64_t             window;
    mg_budget_redis_fn  done;
    void               *arg;
    char                key[MG_BUDGET_REDIS_KEY_MAX];
};

/*
 * Sends b's pending writes and then the GET of its current window (now: Unix seconds) on conn;
 * done gets the result within timeout_ms. 0, or -1 when nothing could be sent (done is not
 * called; the writes stay pending).
 */
int mg_budget_redis_read(struct mg_budget_redis_call *call, struct mg_redis *conn,
                         const char *prefix, struct mg_budget *b, int64_t now,
                         int64_t timeout_ms, mg_budget_redis_fn done, void *arg);

/* The read's callback will not run. */
void mg_budget_redis_cancel(struct mg_budget_redis_call *call);

/* After a settle: b's pending writes sent now, not waited for (their replies update b). */
void mg_budget_redis_flush(struct mg_redis *conn, const char *prefix, struct mg_budget *b,
                           int64_t now, int64_t timeout_ms);

#endif
