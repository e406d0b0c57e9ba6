/*
 * mg_resp_store — the conversation state of the Responses API (SPEC "Client APIs", "Conversation
 * state"): translated Responses by id (`resp_mg…`), each with its key name, model, the Response
 * JSON a GET returns and the history JSON a `previous_response_id` continues from; and the native
 * ids a backend answered with, recorded as (id -> backend, key) so that a native chain is pinned
 * to the backend that holds it.
 *
 * One store per process (held by the runtime object, not a config snapshot: it outlives reloads),
 * shared by every worker thread behind one mutex (the store is off the hot path of chat). It is
 * bounded: every entry counts its bytes (ids, strings and a fixed overhead), the least recently
 * used entries (responses and native ids alike) go when a put passes `size`, an entry over
 * size / 8 is refused (the caller answers `store: false`), and every entry expires `ttl` after its
 * creation (not its last use). size 0 turns the store off.
 *
 * A get hands out a reference-counted, read-only entry: the reader uses it without the lock and
 * without a copy, and an eviction or a delete while it holds it only drops the store's reference.
 *
 * Which store serves is a row of the table of kinds in mg_resp_store.c, behind struct
 * mg_resp_store_ops (below): "local" is the in-process one; a Redis store (`prefix+"resp:"+id`,
 * `prefix+"rid:"+id` with `SET … EX ttl`) plugs in as another row. Time is passed in:
 * milliseconds of one clock (monotonic is best), 0 <= now.
 */
#ifndef MG_RESP_STORE_H
#define MG_RESP_STORE_H

#include <stddef.h>
#include <stdint.h>

/* The longest id, key name, model or backend name the store takes (bytes, without the NUL). */
#define MG_RESP_STORE_NAME_MAX 512

/* Bytes each entry counts on top of its strings (its bookkeeping: node, links, hash slot). */
#define MG_RESP_STORE_OVERHEAD 192

/* A store; reached only through the functions below. */
struct mg_resp_store;

/*
 * A stored translated Response, read-only for everyone but the store: a reader holds it through
 * mg_resp_store_get() and gives it back with mg_resp_entry_unref(). Every string is NUL-ended.
 */
struct mg_resp_entry {
    _Atomic int          refs;          /* the store's own bookkeeping */
    const char          *id;
    const char          *key_name;
    const char          *model;
    const char          *response;      /* the Response JSON, as put */
    size_t               response_len;
    const char          *history;       /* the history JSON (input + output of the chain) */
    size_t               history_len;
    int64_t              created;       /* `now` of the put */
};

/* The counters /metrics shows. */
struct mg_resp_store_stats {
    uint64_t size;          /* the bound in bytes (0: off) */
    uint64_t bytes;         /* counted by the entries held now */
    uint64_t responses;     /* stored Responses held now */
    uint64_t natives;       /* recorded native ids held now */
    uint64_t evicted_lru;   /* entries dropped to make room, since creation */
    uint64_t evicted_ttl;   /* entries dropped because they expired, since creation */
    uint64_t refused;       /* puts and records refused for size (over size / 8, or off) */
};

/*
 * An empty store of the kind called kind ("local"), off (size 0) until mg_resp_store_configure();
 * NULL when there is no such kind.
 */
struct mg_resp_store *mg_resp_store_create(const char *kind);

/* Frees the store and its entries (those readers still hold live on until unref). NULL: no-op. */
void mg_resp_store_destroy(struct mg_resp_store *store);

/*
 * Sets the bound (bytes; 0 = off) and the lifetime (ms from creation; <= 0 = no expiry) at a
 * config load. A smaller size evicts least recently used entries until the rest fits; size 0
 * drops everything. Entries keep their creation time: a changed ttl applies to them too.
 */
void mg_resp_store_configure(struct mg_resp_store *store, uint64_t size, int64_t ttl_ms,
                             int64_t now);

/*
 * Stores a translated Response under id for key_name (a key's name; "" without auth): the store
 * copies every byte. An entry with the same id is replaced. Returns MG_OK; MG_ETOOBIG when the
 * store is off, an entry over size / 8, or a name over MG_RESP_STORE_NAME_MAX (nothing stored:
 * the answer says `store: false`); MG_ERR when an argument is NULL.
 */
int mg_resp_store_put(struct mg_resp_store *store, const char *id, const char *key_name,
                      const char *model, const char *response, size_t response_len,
                      const char *history, size_t history_len, int64_t now);

/*
 * The Response stored under id for key_name, with a reference the caller gives back with
 * mg_resp_entry_unref(); it counts as a use (LRU). NULL when there is none, when it is another
 * key's, or when it has expired (then it is dropped).
 */
const struct mg_resp_entry *mg_resp_store_get(struct mg_resp_store *store, const char *id,
                                              const char *key_name, int64_t now);

/* Gives back a reference from mg_resp_store_get(); frees the entry with the last. NULL: no-op. */
void mg_resp_entry_unref(const struct mg_resp_entry *entry);

/*
 * Deletes the Response stored under id for key_name: MG_OK, or MG_ERR when there is none (also
 * when it is another key's or expired). Readers holding it keep their reference.
 */
int mg_resp_store_del(struct mg_resp_store *store, const char *id, const char *key_name,
                      int64_t now);

/*
 * Records that backend_name answered key_name with the native id (from the answer's `id` or
 * `response.created`), under the same bound and ttl as Responses; a later record of the id
 * replaces it. MG_OK; MG_ETOOBIG when the store is off or a name is too long; MG_ERR when an
 * argument is NULL.
 */
int mg_resp_store_record(struct mg_resp_store *store, const char *id, const char *backend_name,
                         const char *key_name, int64_t now);

/*
 * The backend a native id was recorded for, for key_name, copied into backend (len bytes with
 * the NUL); a use (LRU). MG_OK; MG_ERR when unrecorded, another key's or expired; MG_ETOOBIG when
 * len is too small (backend is then "").
 */
int mg_resp_store_lookup(struct mg_resp_store *store, const char *id, const char *key_name,
                         int64_t now, char *backend, size_t len);

/* The counters now. */
void mg_resp_store_stats(struct mg_resp_store *store, struct mg_resp_store_stats *st);

/*
 * What a kind of store implements (the functions above of the same name, with their contracts).
 * A store begins with struct mg_resp_store; entries it hands out are single allocations that
 * mg_resp_entry_unref() frees with free() (mg_resp_entry_new() makes them).
 */
struct mg_resp_store_ops {
    const char *name;
    struct mg_resp_store *(*create)(void);
    void (*destroy)(struct mg_resp_store *store);
    void (*configure)(struct mg_resp_store *store, uint64_t size, int64_t ttl_ms, int64_t now);
    int (*put)(struct mg_resp_store *store, const char *id, const char *key_name,
               const char *model, const char *response, size_t response_len,
               const char *history, size_t history_len, int64_t now);
    const struct mg_resp_entry *(*get)(struct mg_resp_store *store, const char *id,
                                       const char *key_name, int64_t now);
    int (*del)(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now);
    int (*record)(struct mg_resp_store *store, const char *id, const char *backend_name,
                  const char *key_name, int64_t now);
    int (*lookup)(struct mg_resp_store *store, const char *id, const char *key_name,
                  int64_t now, char *backend, size_t len);
    void (*stats)(struct mg_resp_store *store, struct mg_resp_store_stats *st);
};

/* The part every store begins with (its own state follows it in a larger struct). */
struct mg_resp_store {
    const struct mg_resp_store_ops *ops;
};

/*
 * For stores: a new entry holding copies of every string, one reference (the caller's), in one
 * allocation. Its size for the bound is mg_resp_entry_bytes().
 */
struct mg_resp_entry *mg_resp_entry_new(const char *id, const char *key_name, const char *model,
                                        const char *response, size_t response_len,
                                        const char *history, size_t history_len, int64_t now);

/* For stores: the bytes an entry with these strings counts (strings + MG_RESP_STORE_OVERHEAD). */
uint64_t mg_resp_entry_bytes(size_t id_len, size_t key_len, size_t model_len,
                             size_t response_len, size_t history_len);

/* The in-process store ("local"). */
extern const struct mg_resp_store_ops mg_resp_store_local_ops;

struct mg_yaml;
struct yaml_node_s;
/*
 * The config's responses_store: {size, ttl} into a struct mg_resp_store_conf (a setter of the
 * config engine's key tables).
 */
int mg_resp_store_set_conf(struct mg_yaml *y, struct yaml_node_s *node, void *dst);

struct mg_buf;
/* Appends the store's families of the Prometheus exposition (bytes, entries, evictions). */
void mg_resp_store_render(struct mg_resp_store *store, struct mg_buf *out);

#endif
