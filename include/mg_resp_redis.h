/*
 * mg_resp_redis — the conversation store shared through Redis (SPEC "Conversation state", with
 * `shared`): every instance keeps its own store (mg_resp_store) as a cache, writes through to
 * Redis what it stores, records and deletes (`prefix+"resp:"+id`, `prefix+"rid:"+id`, `SET … PX
 * ttl`, not waited for), and reads an id from Redis into its own store before a request uses
 * it (mg_resp_redis_fetch(), asynchronous, within store_timeout). So a conversation started on
 * one instance continues on any other, and the synchronous store interface is unchanged.
 *
 * The Redis connection and settings are the calling thread's (a worker's: mg_resp_redis_bind());
 * a thread with none writes nothing.
 */
#ifndef MG_RESP_REDIS_H
#define MG_RESP_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "mg_resp_store.h"

struct mg_redis;
struct mg_redis_op;

/*
 * This thread's connection (NULL: none), key prefix and deadline for store operations, and the
 * store's ttl (ms; what Redis's remaining lifetime is measured against). prefix must live until
 * the next bind.
 */
void mg_resp_redis_bind(struct mg_redis *conn, const char *prefix, int64_t timeout_ms,
                        int64_t ttl_ms);

/* The write-through of mg_resp_store's put, record and del (done by mg_resp_store.c). */
void mg_resp_redis_put(const char *id, const char *key_name, const char *model,
                       const char *response, size_t response_len, const char *history,
                       size_t history_len);
void mg_resp_redis_record(const char *id, const char *backend_name, const char *key_name);
void mg_resp_redis_del(const char *id);

/* ok: 1 when Redis answered (found or not), 0 when it could not (down, timeout). */
typedef void (*mg_resp_redis_fn)(void *arg, int ok);

struct mg_resp_fetch;
struct mg_resp_fetch_slot {
    struct mg_resp_fetch *f;
    struct mg_redis_op   *op;
    int                   i;
};

/* One read of an id in flight, in the caller's memory until its callback (or a cancel). */
struct mg_resp_fetch {
    struct mg_resp_store     *store;
    mg_resp_redis_fn          done;
    void                     *arg;
    struct mg_resp_fetch_slot slot[4];   /* PTTL and GET of resp:, PTTL and GET of rid: */
    int64_t                   pttl[2];
    int                       pending;
    int                       failed;
    char                      id[MG_RESP_STORE_NAME_MAX + 1];
    char                      key[MG_RESP_STORE_NAME_MAX + 1];   /* the reader's key name */
};

/*
 * Reads id (a Response and a recorded native id) from Redis into store, for a reader with
 * key_name (a Response Redis no longer holds is dropped from store when it is that key's).
 * 0: pending (done runs once, unless mg_resp_redis_fetch_cancel()); -1: Redis cannot be asked
 * now (done will not run).
 */
int mg_resp_redis_fetch(struct mg_resp_fetch *f, struct mg_resp_store *store, const char *id,
                        const char *key_name, mg_resp_redis_fn done, void *arg);

/* The fetch's callback will not run. */
void mg_resp_redis_fetch_cancel(struct mg_resp_fetch *f);

#endif
