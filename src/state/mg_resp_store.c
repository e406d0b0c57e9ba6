/*
 * mg_resp_store — the face of the conversation store (the table of kinds and the calls through
 * it, mg_resp_store.h) and its in-process kind, "local".
 *
 * The local store is one hash table of nodes by (kind, id), where a node is a stored Response
 * (holding a reference to its refcounted entry) or a recorded native id (its strings inline), on
 * two lists: LRU order (head: the most recently used) for the bound, and creation order (head:
 * the oldest) for the ttl, which runs from creation and is the same for every entry, so the
 * oldest entries are the first to expire. Every operation takes the one mutex; the large copy of
 * a put is made before it, and a reader uses its entry after it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_resp_redis.h"
#include "mg_resp_store.h"
#include "mg_util.h"

/* ---- the face ---- */

/* The kinds, by the name a runtime asks for: a new one (Redis) is a file and a row here. */
static const struct mg_resp_store_ops *const kinds[] = {
    &mg_resp_store_local_ops,
};

struct mg_resp_store *
mg_resp_store_create(const char *kind)
{
    size_t i;

    for (i = 0; kind != NULL && i < MG_ARRAY_LEN(kinds); i++) {
        if (strcmp(kinds[i]->name, kind) == 0) {
            return kinds[i]->create();
        }
    }
    return NULL;
}

void
mg_resp_store_destroy(struct mg_resp_store *store)
{
    if (store != NULL) {
        store->ops->destroy(store);
    }
}

void
mg_resp_store_configure(struct mg_resp_store *store, uint64_t size, int64_t ttl_ms, int64_t now)
{
    store->ops->configure(store, size, ttl_ms, now);
}

int
mg_resp_store_put(struct mg_resp_store *store, const char *id, const char *key_name,
                  const char *model, const char *response, size_t response_len,
                  const char *history, size_t history_len, int64_t now)
{
    if (id == NULL || key_name == NULL || model == NULL || response == NULL || history == NULL) {
        return MG_ERR;
    }
    int rc = store->ops->put(store, id, key_name, model, response, response_len, history,
                             history_len, now);

    if (rc == MG_OK) {   /* shared: written through to Redis (nothing without a binding) */
        mg_resp_redis_put(id, key_name, model, response, response_len, history, history_len);
    }
    return rc;
}

const struct mg_resp_entry *
mg_resp_store_get(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now)
{
    if (id == NULL || key_name == NULL) {
        return NULL;
    }
    return store->ops->get(store, id, key_name, now);
}

void
mg_resp_entry_unref(const struct mg_resp_entry *entry)
{
    struct mg_resp_entry *e = (struct mg_resp_entry *)entry;

    /* acq_rel: the last holder must see every other holder's reads done before it frees */
    if (e != NULL && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        free(e);
    }
}

int
mg_resp_store_del(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now)
{
    if (id == NULL || key_name == NULL) {
        return MG_ERR;
    }
    int rc = store->ops->del(store, id, key_name, now);

    if (rc == MG_OK) {
        mg_resp_redis_del(id);
    }
    return rc;
}

int
mg_resp_store_record(struct mg_resp_store *store, const char *id, const char *backend_name,
                     const char *key_name, int64_t now)
{
    if (id == NULL || backend_name == NULL || key_name == NULL) {
        return MG_ERR;
    }
    int rc = store->ops->record(store, id, backend_name, key_name, now);

    if (rc == MG_OK) {
        mg_resp_redis_record(id, backend_name, key_name);
    }
    return rc;
}

int
mg_resp_store_lookup(struct mg_resp_store *store, const char *id, const char *key_name,
                     int64_t now, char *backend, size_t len)
{
    if (backend == NULL || len == 0) {
        return MG_ETOOBIG;
    }
    backend[0] = '\0';
    if (id == NULL || key_name == NULL) {
        return MG_ERR;
    }
    return store->ops->lookup(store, id, key_name, now, backend, len);
}

void
mg_resp_store_stats(struct mg_resp_store *store, struct mg_resp_store_stats *st)
{
    memset(st, 0, sizeof(*st));
    store->ops->stats(store, st);
}

uint64_t
mg_resp_entry_bytes(size_t id_len, size_t key_len, size_t model_len, size_t response_len,
                    size_t history_len)
{
    /* each term is bounded by a buffer that exists, so the sum of five cannot wrap 64 bits */
    return (uint64_t)id_len + key_len + model_len + response_len + history_len + 5
           + MG_RESP_STORE_OVERHEAD;
}

static char *
put_str(char **at, const char *s, size_t n)
{
    char *p = *at;

    memcpy(p, s, n);
    p[n] = '\0';
    *at = p + n + 1;
    return p;
}

struct mg_resp_entry *
mg_resp_entry_new(const char *id, const char *key_name, const char *model, const char *response,
                  size_t response_len, const char *history, size_t history_len, int64_t now)
{
    size_t il = strlen(id), kl = strlen(key_name), ml = strlen(model);
    struct mg_resp_entry *e;
    char *at;

    e = mg_malloc(sizeof(*e) + il + kl + ml + response_len + history_len + 5);
    at = (char *)(e + 1);
    atomic_init(&e->refs, 1);
    e->id = put_str(&at, id, il);
    e->key_name = put_str(&at, key_name, kl);
    e->model = put_str(&at, model, ml);
    e->response = put_str(&at, response, response_len);
    e->response_len = response_len;
    e->history = put_str(&at, history, history_len);
    e->history_len = history_len;
    e->created = now;
    return e;
}

/* ---- the local store ---- */

enum { RESP, NATIVE };

struct node {
    struct node          *hnext;            /* hash chain */
    struct node          *lprev, *lnext;    /* LRU list */
    struct node          *aprev, *anext;    /* creation list */
    uint64_t              hash;
    uint64_t              bytes;
    int64_t               created;
    int                   kind;
    struct mg_resp_entry *entry;            /* RESP: the store's reference */
    const char           *id, *key, *backend;
    char                  strings[];        /* NATIVE: id, key, backend */
};

struct local {
    struct mg_resp_store base;
    pthread_mutex_t      lock;
    _Atomic uint64_t     size;      /* written under the lock; read without it for a fast no */
    int64_t              ttl;
    struct node        **table;
    size_t               nbuckets;  /* a power of 2 */
    size_t               count;
    struct node         *lru_head, *lru_tail;
    struct node         *age_head, *age_tail;
    struct mg_resp_store_stats st;
};

#define TABLE_MIN 64

static uint64_t
hash_id(int kind, const char *id)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

    for (; *id != '\0'; id++) {
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    }
    return h;
}

static struct mg_resp_store *
local_create(void)
{
    struct local *s = mg_calloc(1, sizeof(*s));

    s->base.ops = &mg_resp_store_local_ops;
    mg_mutex_init(&s->lock);
    atomic_init(&s->size, 0);
    s->nbuckets = TABLE_MIN;
    s->table = mg_calloc(s->nbuckets, sizeof(*s->table));
    return &s->base;
}

static void
node_free(struct node *n)
{
    if (n->kind == RESP) {
        mg_resp_entry_unref(n->entry);
    }
    free(n);
}

static void
local_destroy(struct mg_resp_store *store)
{
    struct local *s = (struct local *)store;
    struct node *n, *next;

    for (n = s->lru_head; n != NULL; n = next) {
        next = n->lnext;
        node_free(n);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->table);
    free(s);
}

static void
grow(struct local *s)
{
    size_t nb = s->nbuckets * 2, i;
    struct node **t = mg_calloc(nb, sizeof(*t)), *n, *next;

    for (i = 0; i < s->nbuckets; i++) {
        for (n = s->table[i]; n != NULL; n = next) {
            next = n->hnext;
            n->hnext = t[n->hash & (nb - 1)];
            t[n->hash & (nb - 1)] = n;
        }
    }
    free(s->table);
    s->table = t;
    s->nbuckets = nb;
}

static struct node *
find(struct local *s, int kind, const char *id)
{
    uint64_t h = hash_id(kind, id);
    struct node *n;

    for (n = s->table[h & (s->nbuckets - 1)]; n != NULL; n = n->hnext) {
        if (n->hash == h && n->kind == kind && strcmp(n->id, id) == 0) {
            return n;
        }
    }
    return NULL;
}

static void
lru_unlink(struct local *s, struct node *n)
{
    *(n->lprev != NULL ? &n->lprev->lnext : &s->lru_head) = n->lnext;
    *(n->lnext != NULL ? &n->lnext->lprev : &s->lru_tail) = n->lprev;
}

static void
lru_push(struct local *s, struct node *n)
{
    n->lprev = NULL;
    n->lnext = s->lru_head;
    *(s->lru_head != NULL ? &s->lru_head->lprev : &s->lru_tail) = n;
    s->lru_head = n;
}

/* Takes n out of the table and both lists, uncounts it and frees it (a reader keeps its entry). */
static void
drop(struct local *s, struct node *n)
{
    struct node **pp = &s->table[n->hash & (s->nbuckets - 1)];

    while (*pp != n) {
        pp = &(*pp)->hnext;
    }
    *pp = n->hnext;
    lru_unlink(s, n);
    *(n->aprev != NULL ? &n->aprev->anext : &s->age_head) = n->anext;
    *(n->anext != NULL ? &n->anext->aprev : &s->age_tail) = n->aprev;
    s->count--;
    s->st.bytes -= n->bytes;
    if (n->kind == RESP) {
        s->st.responses--;
    } else {
        s->st.natives--;
    }
    node_free(n);
}

static void
insert(struct local *s, struct node *n)
{
    size_t b;

    if (s->count >= s->nbuckets) {
        grow(s);
    }
    b = n->hash & (s->nbuckets - 1);
    n->hnext = s->table[b];
    s->table[b] = n;
    lru_push(s, n);
    n->anext = NULL;
    n->aprev = s->age_tail;
    *(s->age_tail != NULL ? &s->age_tail->anext : &s->age_head) = n;
    s->age_tail = n;
    s->count++;
    s->st.bytes += n->bytes;
    if (n->kind == RESP) {
        s->st.responses++;
    } else {
        s->st.natives++;
    }
}

static int
expired(const struct local *s, const struct node *n, int64_t now)
{
    return s->ttl > 0 && now - n->created >= s->ttl;
}

/* Drops the expired entries, oldest first, then the least recently used beyond the bound. */
static void
trim(struct local *s, int64_t now)
{
    uint64_t size = atomic_load_explicit(&s->size, memory_order_relaxed);

    while (s->age_head != NULL && expired(s, s->age_head, now)) {
        drop(s, s->age_head);
        s->st.evicted_ttl++;
    }
    while (s->lru_tail != NULL && s->st.bytes > size) {
        drop(s, s->lru_tail);
        s->st.evicted_lru++;
    }
}

static void
local_configure(struct mg_resp_store *store, uint64_t size, int64_t ttl_ms, int64_t now)
{
    struct local *s = (struct local *)store;

    pthread_mutex_lock(&s->lock);
    atomic_store_explicit(&s->size, size, memory_order_relaxed);
    s->ttl = ttl_ms > 0 ? ttl_ms : 0;
    trim(s, now);
    pthread_mutex_unlock(&s->lock);
}

/* Whether an entry of `bytes` may go in (under the lock or not): the store on, bytes <= size/8. */
static int
fits(struct local *s, uint64_t bytes)
{
    uint64_t size = atomic_load_explicit(&s->size, memory_order_relaxed);

    return size > 0 && bytes <= size / 8;
}

static int
refuse(struct local *s)
{
    pthread_mutex_lock(&s->lock);
    s->st.refused++;
    pthread_mutex_unlock(&s->lock);
    return MG_ETOOBIG;
}

/* Puts n in place of any entry of its kind and id, then keeps the bound. MG_OK or MG_ETOOBIG. */
static int
place(struct local *s, struct node *n, int64_t now)
{
    struct node *old;

    pthread_mutex_lock(&s->lock);
    if (!fits(s, n->bytes)) {
        /* the store was made smaller or turned off since the look before the copy */
        s->st.refused++;
        pthread_mutex_unlock(&s->lock);
        node_free(n);
        return MG_ETOOBIG;
    }
    if ((old = find(s, n->kind, n->id)) != NULL) {
        drop(s, old);
    }
    insert(s, n);
    trim(s, now);
    pthread_mutex_unlock(&s->lock);
    return MG_OK;
}

static int
local_put(struct mg_resp_store *store, const char *id, const char *key_name, const char *model,
          const char *response, size_t response_len, const char *history, size_t history_len,
          int64_t now)
{
    struct local *s = (struct local *)store;
    size_t il = strlen(id), kl = strlen(key_name), ml = strlen(model);
    uint64_t bytes;
    struct node *n;

    if (il > MG_RESP_STORE_NAME_MAX || kl > MG_RESP_STORE_NAME_MAX
        || ml > MG_RESP_STORE_NAME_MAX || response_len > SIZE_MAX / 4
        || history_len > SIZE_MAX / 4) {
        return refuse(s);
    }
    bytes = mg_resp_entry_bytes(il, kl, ml, response_len, history_len);
    if (!fits(s, bytes)) {
        return refuse(s);
    }
    /* the copy, the large part of a put, is made before the lock */
    n = mg_calloc(1, sizeof(*n));
    n->kind = RESP;
    n->entry = mg_resp_entry_new(id, key_name, model, response, response_len, history,
                                 history_len, now);
    n->id = n->entry->id;
    n->key = n->entry->key_name;
    n->hash = hash_id(RESP, id);
    n->bytes = bytes;
    n->created = now;
    return place(s, n, now);
}

/* The live node of kind and id for key_name, made the most recently used; NULL when none. */
static struct node *
use(struct local *s, int kind, const char *id, const char *key_name, int64_t now)
{
    struct node *n;

    trim(s, now);
    n = find(s, kind, id);
    if (n != NULL && expired(s, n, now)) {
        /* created out of order with the creation list (threads' clocks read before the lock) */
        drop(s, n);
        s->st.evicted_ttl++;
        return NULL;
    }
    if (n == NULL || strcmp(n->key, key_name) != 0) {
        return NULL;
    }
    lru_unlink(s, n);
    lru_push(s, n);
    return n;
}

static const struct mg_resp_entry *
local_get(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now)
{
    struct local *s = (struct local *)store;
    struct mg_resp_entry *e = NULL;
    struct node *n;

    pthread_mutex_lock(&s->lock);
    if ((n = use(s, RESP, id, key_name, now)) != NULL) {
        e = n->entry;
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

static int
local_del(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now)
{
    struct local *s = (struct local *)store;
    struct node *n;

    pthread_mutex_lock(&s->lock);
    if ((n = use(s, RESP, id, key_name, now)) != NULL) {
        drop(s, n);
    }
    pthread_mutex_unlock(&s->lock);
    return n != NULL ? MG_OK : MG_ERR;
}

static int
local_record(struct mg_resp_store *store, const char *id, const char *backend_name,
             const char *key_name, int64_t now)
{
    struct local *s = (struct local *)store;
    size_t il = strlen(id), kl = strlen(key_name), bl = strlen(backend_name);
    uint64_t bytes;
    struct node *n;
    char *at;

    if (il > MG_RESP_STORE_NAME_MAX || kl > MG_RESP_STORE_NAME_MAX
        || bl > MG_RESP_STORE_NAME_MAX) {
        return refuse(s);
    }
    bytes = mg_resp_entry_bytes(il, kl, bl, 0, 0);
    if (!fits(s, bytes)) {
        return refuse(s);
    }
    n = mg_calloc(1, sizeof(*n) + il + kl + bl + 3);
    at = n->strings;
    n->kind = NATIVE;
    n->id = put_str(&at, id, il);
    n->key = put_str(&at, key_name, kl);
    n->backend = put_str(&at, backend_name, bl);
    n->hash = hash_id(NATIVE, id);
    n->bytes = bytes;
    n->created = now;
    return place(s, n, now);
}

static int
local_lookup(struct mg_resp_store *store, const char *id, const char *key_name, int64_t now,
             char *backend, size_t len)
{
    struct local *s = (struct local *)store;
    struct node *n;
    int rc = MG_ERR;
    size_t bl;

    pthread_mutex_lock(&s->lock);
    if ((n = use(s, NATIVE, id, key_name, now)) != NULL) {
        bl = strlen(n->backend);
        rc = bl < len ? MG_OK : MG_ETOOBIG;
        if (rc == MG_OK) {
            memcpy(backend, n->backend, bl + 1);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void
local_stats(struct mg_resp_store *store, struct mg_resp_store_stats *st)
{
    struct local *s = (struct local *)store;

    pthread_mutex_lock(&s->lock);
    *st = s->st;
    st->size = atomic_load_explicit(&s->size, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
}

const struct mg_resp_store_ops mg_resp_store_local_ops = {
    .name = "local",
    .create = local_create,
    .destroy = local_destroy,
    .configure = local_configure,
    .put = local_put,
    .get = local_get,
    .del = local_del,
    .record = local_record,
    .lookup = local_lookup,
    .stats = local_stats,
};
