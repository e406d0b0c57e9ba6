/*
 * mg_catalog — model entries as JSON, and the registry of first-load times (one per runtime).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mg_auth.h"
#include "mg_catalog.h"
#include "mg_conf_types.h"
#include "mg_json.h"

struct seen {
    char   *name;
    int64_t first;
};

struct mg_catalog_seen {
    pthread_mutex_t lock;   /* a load may read while another thread puts a snapshot in service */
    struct seen    *v;
    size_t          n;
};

static void
reg_free(struct seen *r, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(r[i].name);
    }
    free(r);
}

struct mg_catalog_seen *
mg_catalog_seen_create(void)
{
    struct mg_catalog_seen *seen = mg_calloc(1, sizeof(*seen));

    mg_mutex_init(&seen->lock);
    return seen;
}

void
mg_catalog_seen_destroy(struct mg_catalog_seen *seen)
{
    if (seen == NULL) {
        return;
    }
    reg_free(seen->v, seen->n);
    pthread_mutex_destroy(&seen->lock);
    free(seen);
}

int64_t
mg_catalog_first_seen(const struct mg_catalog_seen *seen, const char *name, int64_t now)
{
    struct mg_catalog_seen *s = (struct mg_catalog_seen *)seen;   /* the lock, not the data */
    int64_t t = now;
    size_t i;

    if (s == NULL) {
        return now;
    }
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].name, name) == 0) {
            t = s->v[i].first;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return t;
}

void
mg_catalog_remember(struct mg_catalog_seen *seen, const struct mg_model_entry *e, size_t n)
{
    struct seen *next = mg_calloc(n ? n : 1, sizeof(*next)), *old;
    size_t i, nold;

    for (i = 0; i < n; i++) {
        next[i].name = mg_strdup(e[i].id);
        next[i].first = e[i].created;
    }
    pthread_mutex_lock(&seen->lock);
    old = seen->v;
    nold = seen->n;
    seen->v = next;
    seen->n = n;
    pthread_mutex_unlock(&seen->lock);
    reg_free(old, nold);
}

void
mg_catalog_entry_json(struct mg_buf *out, const struct mg_model_entry *e)
{
    mg_buf_adds(out, "{\"id\":");
    mg_json_quote(out, e->id, strlen(e->id));
    mg_buf_printf(out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":",
                  (long long)e->created);
    mg_json_quote(out, e->owned_by, strlen(e->owned_by));
    mg_buf_adds(out, "}");
}

void
mg_catalog_json(struct mg_buf *out, const struct mg_model_entry *e, size_t n)
{
    size_t i;

    mg_buf_adds(out, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < n; i++) {
        if (i > 0) {
            mg_buf_adds(out, ",");
        }
        mg_catalog_entry_json(out, &e[i]);
    }
    mg_buf_adds(out, "]}\n");
}

/* ---- building, once per snapshot at load ---- */

static int
is_pattern(const char *m)
{
    size_t n = strlen(m);
    return n > 0 && m[n - 1] == '*';
}

/*
 * /v1/models as each key with an allow-list sees it: the catalog's entries it may use, in the same
 * order, built once here so that a request only picks the right string.
 */
static void
build_key_catalogs(struct mg_conf *conf)
{
    struct mg_model_entry *seen = mg_calloc(conf->ncatalog + 1, sizeof(*seen));
    struct mg_buf json;
    size_t i, j, n;

    for (i = 0; i < conf->nkeys; i++) {
        struct mg_key *k = &conf->keys[i];
        if (k->models == NULL) {
            continue;
        }
        for (j = n = 0; j < conf->ncatalog; j++) {
            if (mg_auth_allows(k, conf->catalog[j].id, strlen(conf->catalog[j].id))) {
                seen[n++] = conf->catalog[j];
            }
        }
        mg_buf_init(&json, (size_t)1 << 30);
        mg_catalog_json(&json, seen, n);
        k->catalog_json = json.data;
        k->catalog_json_len = json.len;
    }
    free(seen);
}

void
mg_catalog_build(struct mg_conf *conf, int64_t now, const struct mg_catalog_seen *seen)
{
    struct mg_buf json;
    size_t i, j, k, total = 0;

    for (i = 0; i < conf->nrules; i++) {
        total += conf->rules[i].nmodels;
    }
    conf->catalog = mg_calloc(total, sizeof(struct mg_model_entry));
    for (i = 0; i < conf->nrules; i++) {
        const struct mg_rule *r = &conf->rules[i];
        if (!r->list) {
            continue;
        }
        for (j = 0; j < r->nmodels; j++) {
            if (is_pattern(r->models[j])) {
                continue;
            }
            for (k = 0; k < conf->ncatalog; k++) {
                if (strcmp(conf->catalog[k].id, r->models[j]) == 0) {
                    break;
                }
            }
            if (k == conf->ncatalog) {
                conf->catalog[k].id = r->models[j];
                conf->catalog[k].owned_by = r->owned_by;
                conf->catalog[k].created =
                    r->created >= 0 ? r->created : mg_catalog_first_seen(seen, r->models[j], now);
                conf->ncatalog++;
            }
        }
    }
    mg_buf_init(&json, (size_t)1 << 30);
    mg_catalog_json(&json, conf->catalog, conf->ncatalog);
    conf->catalog_json = json.data;
    conf->catalog_json_len = json.len;
    build_key_catalogs(conf);
}
