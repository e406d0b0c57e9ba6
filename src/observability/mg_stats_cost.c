/*
 * mg_stats_cost — modelgate_cost_usd_total{key,model,backend}: what priced answers cost, per
 * worker, merged at scrape time like mg_stats' series. Counted in micro-dollars (integers, so a
 * sum is exact), rendered in USD.
 *
 * One writer per table (its worker): relaxed loads and stores. A triple is published by a release
 * store of `used` after its labels were written. The table is fixed: past COST_SOFT triples a new
 * model counts as "other" (clients choose models; keys and backends come from the config).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mg_stats.h"
#include "mg_stats_int.h"

#define COST_MAX  1024
#define COST_SOFT (COST_MAX * 3 / 4)

struct centry {
    atomic_int           used;
    char                *key;
    char                *model;
    char                *backend;
    atomic_uint_fast64_t micro;
};

struct mg_cost {
    struct centry e[COST_MAX];
    int           nused;   /* writer only */
};

struct mg_cost *
mg_cost_create(void)
{
    return mg_calloc(1, sizeof(struct mg_cost));
}

void
mg_cost_destroy(struct mg_cost *c)
{
    size_t i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < COST_MAX; i++) {
        free(c->e[i].key);
        free(c->e[i].model);
        free(c->e[i].backend);
    }
    free(c);
}

static uint64_t
hash3(const char *a, const char *b, const char *c)
{
    uint64_t h = 1469598103934665603ull;
    const char *s[3] = {a, b, c};
    int i;

    for (i = 0; i < 3; i++) {
        const char *p;
        for (p = s[i]; *p; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        }
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static int
same(const struct centry *e, const char *key, const char *model, const char *backend)
{
    return strcmp(e->key, key) == 0 && strcmp(e->model, model) == 0 &&
           strcmp(e->backend, backend) == 0;
}

/* The entry of the triple: found, or made when create is set and there is room; else NULL. */
static struct centry *
find(struct mg_cost *c, const char *key, const char *model, const char *backend, int create)
{
    size_t i, n;

    for (n = 0, i = hash3(key, model, backend) % COST_MAX; n < COST_MAX;
         n++, i = (i + 1) % COST_MAX) {
        struct centry *e = &c->e[i];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            if (!create) {
                return NULL;
            }
            e->key = mg_strdup(key);
            e->model = mg_strdup(model);
            e->backend = mg_strdup(backend);
            atomic_store_explicit(&e->used, 1, memory_order_release);
            c->nused++;
            return e;
        }
        if (same(e, key, model, backend)) {
            return e;
        }
    }
    return NULL;
}

void
mg_stats_cost(struct mg_stats *st, const char *key, const char *model, const char *backend,
              int64_t micro)
{
    struct mg_cost *c = st->cost;
    struct centry *e;

    key = key != NULL ? key : "";
    e = find(c, key, model, backend, c->nused < COST_SOFT);
    if (e == NULL) {
        e = find(c, key, "other", backend, 1);
    }
    if (e != NULL && micro > 0) {
        atomic_store_explicit(&e->micro, atomic_load_explicit(&e->micro, memory_order_relaxed) +
                              (uint64_t)micro, memory_order_relaxed);
    }
}

void
mg_cost_render(struct mg_cost *const *t, size_t n, struct mg_buf *out)
{
    struct mg_cost *sum = mg_cost_create();
    size_t w, i;

    for (w = 0; w < n; w++) {
        for (i = 0; t[w] != NULL && i < COST_MAX; i++) {
            const struct centry *e = &t[w]->e[i];
            struct centry *d;
            uint64_t v;
            if (!atomic_load_explicit(&e->used, memory_order_acquire)) {
                continue;
            }
            d = find(sum, e->key, e->model, e->backend, 1);   /* at most COST_MAX triples */
            v = atomic_load_explicit(&e->micro, memory_order_relaxed);
            if (d != NULL) {
                atomic_store_explicit(&d->micro, atomic_load(&d->micro) + v,
                                      memory_order_relaxed);
            }
        }
    }
    mg_buf_adds(out, "# HELP modelgate_cost_usd_total What answers cost at the configured prices, "
                     "in USD, by client key (empty without auth), model and backend.\n"
                     "# TYPE modelgate_cost_usd_total counter\n");
    for (i = 0; i < COST_MAX; i++) {
        const struct centry *e = &sum->e[i];
        uint64_t v = atomic_load(&e->micro);
        if (!atomic_load(&e->used)) {
            continue;
        }
        mg_buf_adds(out, "modelgate_cost_usd_total{");
        mg_stats_label(out, "key", e->key, 0);
        mg_stats_label(out, "model", e->model, 1);
        mg_stats_label(out, "backend", e->backend, 1);
        mg_buf_printf(out, "} %llu.%06llu\n", (unsigned long long)(v / 1000000),
                      (unsigned long long)(v % 1000000));
    }
    mg_cost_destroy(sum);
}
