/*
 * mg_models — /v1/models from the snapshot's prepared catalog, and the registry of first-load
 * times that gives a model its default "created" across reloads.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "mg_conf.h"
#include "mg_http.h"
#include "mg_json.h"
#include "mg_models.h"

struct seen {
    char   *name;
    int64_t first;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen    *reg;
static size_t          nreg;

static const struct seen *
reg_find(const struct seen *r, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(r[i].name, name) == 0) {
            return &r[i];
        }
    }
    return NULL;
}

static void
add_entry(struct mg_buf *out, const struct mg_model_entry *m)
{
    mg_buf_adds(out, "{\"id\":");
    mg_json_quote(out, m->id, strlen(m->id));
    mg_buf_printf(out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":",
                  (long long)m->created);
    mg_json_quote(out, m->rule->owned_by, strlen(m->rule->owned_by));
    mg_buf_adds(out, "}");
}

void
mg_models_prepare(struct mg_conf *conf, int64_t now)
{
    struct seen *next;
    struct mg_buf out;
    size_t i;

    pthread_mutex_lock(&reg_lock);
    /* The new registry holds exactly the names this snapshot lists. */
    next = mg_calloc(conf->ncatalog, sizeof(*next));
    for (i = 0; i < conf->ncatalog; i++) {
        const struct seen *old = reg_find(reg, nreg, conf->catalog[i].id);
        next[i].name = mg_strdup(conf->catalog[i].id);
        next[i].first = old ? old->first : now;
        if (conf->catalog[i].rule->created < 0) {
            conf->catalog[i].created = next[i].first;
        }
    }
    for (i = 0; i < nreg; i++) {
        free(reg[i].name);
    }
    free(reg);
    reg = next;
    nreg = conf->ncatalog;
    pthread_mutex_unlock(&reg_lock);

    mg_buf_init(&out, (size_t)1 << 30);
    mg_buf_adds(&out, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < conf->ncatalog; i++) {
        if (i > 0) {
            mg_buf_adds(&out, ",");
        }
        add_entry(&out, &conf->catalog[i]);
    }
    mg_buf_adds(&out, "]}\n");
    free(conf->catalog_json);
    conf->catalog_json = out.data;
    conf->catalog_json_len = out.len;
}

void
mg_models_reset(void)
{
    size_t i;

    pthread_mutex_lock(&reg_lock);
    for (i = 0; i < nreg; i++) {
        free(reg[i].name);
    }
    free(reg);
    reg = NULL;
    nreg = 0;
    pthread_mutex_unlock(&reg_lock);
}

int
mg_models_handle(const struct mg_conf *conf, struct evhttp_request *req, const char *id)
{
    struct mg_buf out;
    size_t i;

    if (id == NULL) {
        mg_http_json(req, 200, conf->catalog_json ? conf->catalog_json : "", conf->catalog_json_len);
        return 200;
    }
    for (i = 0; i < conf->ncatalog; i++) {
        if (strcmp(conf->catalog[i].id, id) == 0) {
            mg_buf_init(&out, 64 * 1024);
            add_entry(&out, &conf->catalog[i]);
            mg_buf_adds(&out, "\n");
            mg_http_json(req, 200, out.data, out.len);
            mg_buf_deinit(&out);
            return 200;
        }
    }
    mg_http_error(req, 404, "model_not_found", "model", "The model '%s' does not exist", id);
    return 404;
}
