/*
 * mg_limit_redis — a key's rate limits decided in Redis, exactly across instances (SPEC "Shared
 * state across instances"): one atomic script per routed request of a limited key (GCRA over
 * the key's request and token buckets, `prefix+"rl:"+name+":r"` and `:t`, the time being
 * Redis's own), sent as EVALSHA, and as EVAL when Redis answers NOSCRIPT (which loads it again
 * after a restart). Token debits after the answer go through the same script, not waited for.
 *
 * The decision is asynchronous: the caller waits for the callback (or cancels). A Redis that is
 * down, errs or passes the deadline gives MG_LIMIT_SHARED_UNAVAILABLE: the caller then decides
 * locally (on_error: open) or refuses (closed).
 */
#ifndef MG_LIMIT_REDIS_H
#define MG_LIMIT_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "mg_limit.h"

struct mg_redis;
struct mg_redis_op;

enum {
    MG_LIMIT_SHARED_REFUSED = 0,
    MG_LIMIT_SHARED_ADMITTED = 1,
    MG_LIMIT_SHARED_UNAVAILABLE = -1
};

/* result: one of the above; info: the buckets after the decision (headers, reserved). */
typedef void (*mg_limit_redis_fn)(void *arg, int result, const struct mg_limit_info *info);

#define MG_LIMIT_REDIS_KEY_MAX 320

/* One decision in flight, in the caller's memory until its callback (or a cancel). */
struct mg_limit_redis_call {
    struct mg_redis    *conn;
    struct mg_redis_op *op;
    mg_limit_redis_fn   done;
    void               *arg;
    int64_t             deadline_ms;
    int64_t             rpm, tpm;
    int                 retried;       /* sent again as EVAL after NOSCRIPT */
    char                keys[2][MG_LIMIT_REDIS_KEY_MAX];
    char                args[4][24];
};

/*
 * Starts the decision for one request of key `name` (limits rpm, tpm per minute, 0 = none)
 * estimated at `tokens`, on conn, within timeout_ms. 0: pending (done will run, once, unless
 * mg_limit_redis_cancel()); -1: unavailable at once (done will not run).
 */
int mg_limit_redis_admit(struct mg_limit_redis_call *call, struct mg_redis *conn,
                         const char *prefix, const char *name, int64_t rpm, int64_t tpm,
                         int64_t tokens, int64_t timeout_ms, mg_limit_redis_fn done, void *arg);

/* The decision's callback will not run. */
void mg_limit_redis_cancel(struct mg_limit_redis_call *call);

/*
 * The end of a request admitted by Redis: its reservation replaced by the tokens used (the
 * difference debited or given back in the shared token bucket); sent, not waited for.
 * Nothing for a key without a token limit.
 */
void mg_limit_redis_settle(struct mg_redis *conn, const char *prefix, const char *name,
                           int64_t tpm, int64_t reserved, int64_t used, int64_t timeout_ms);

/* The script's text and its SHA-1 (hex), for tests. */
const char *mg_limit_redis_script(void);
const char *mg_limit_redis_sha(void);

#endif
