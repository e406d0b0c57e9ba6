/*
 * mg_catalog — model entries as JSON, and the process-wide registry of first-load times.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mg_catalog.h"
#include "mg_json.h"

struct seen {
    char   *name;
    int64_t first;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen    *reg;
static size_t          nreg;

static void
reg_free(struct seen *r, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(r[i].name);
    }
    free(r);
}

int64_t
mg_catalog_first_seen(const char *name, int64_t now)
{
    int64_t t = now;
    size_t i;

    pthread_mutex_lock(&reg_lock);
    for (i = 0; i < nreg; i++) {
        if (strcmp(reg[i].name, name) == 0) {
            t = reg[i].first;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return t;
}

void
mg_catalog_remember(const struct mg_model_entry *e, size_t n)
{
    struct seen *next = mg_calloc(n ? n : 1, sizeof(*next)), *old;
    size_t i, nold;

    for (i = 0; i < n; i++) {
        next[i].name = mg_strdup(e[i].id);
        next[i].first = e[i].created;
    }
    pthread_mutex_lock(&reg_lock);
    old = reg;
    nold = nreg;
    reg = next;
    nreg = n;
    pthread_mutex_unlock(&reg_lock);
    reg_free(old, nold);
}

void
mg_catalog_forget(void)
{
    struct seen *old;
    size_t nold;

    pthread_mutex_lock(&reg_lock);
    old = reg;
    nold = nreg;
    reg = NULL;
    nreg = 0;
    pthread_mutex_unlock(&reg_lock);
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
