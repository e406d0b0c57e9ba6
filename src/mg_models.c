/*
 * mg_models — the model catalog: one entry per exact model name of every listed rule, in file
 * order, a name listed once (from its first rule). Prefix patterns are not listed.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "mg_conf.h"
#include "mg_http.h"
#include "mg_json.h"
#include "mg_models.h"

static int64_t started;
static pthread_once_t started_once = PTHREAD_ONCE_INIT;

static void
set_started(void)
{
    started = (int64_t)time(NULL);
}

/* When a rule does not say, a model was created when this gateway first loaded it. */
static int64_t
default_created(void)
{
    pthread_once(&started_once, set_started);
    return started;
}

void
mg_models_note_loaded(const struct mg_conf *conf)
{
    (void)conf;
    default_created();
}

static int
is_pattern(const char *m)
{
    size_t n = strlen(m);
    return n > 0 && m[n - 1] == '*';
}

/* The rule that lists name first, or NULL when name is not listed. */
static const struct mg_rule *
listing_rule(const struct mg_conf *conf, const char *name, size_t upto_rule, size_t upto_model)
{
    size_t i, j;

    for (i = 0; i < conf->nrules && i <= upto_rule; i++) {
        const struct mg_rule *r = &conf->rules[i];
        if (!r->list) {
            continue;
        }
        for (j = 0; j < r->nmodels && (i < upto_rule || j < upto_model); j++) {
            if (!is_pattern(r->models[j]) && strcmp(r->models[j], name) == 0) {
                return r;
            }
        }
    }
    return NULL;
}

static void
add_model(struct mg_buf *out, const struct mg_rule *r, const char *name)
{
    mg_buf_adds(out, "{\"id\":");
    mg_json_quote(out, name, strlen(name));
    mg_buf_printf(out, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":",
                  (long long)(r->created >= 0 ? r->created : default_created()));
    mg_json_quote(out, r->owned_by, strlen(r->owned_by));
    mg_buf_adds(out, "}");
}

void
mg_models_handle(const struct mg_conf *conf, struct evhttp_request *req, const char *id)
{
    struct mg_buf out;
    size_t i, j;
    int first = 1;

    mg_buf_init(&out, 64u * 1024 * 1024);
    if (id != NULL) {
        const struct mg_rule *r = listing_rule(conf, id, conf->nrules, 0);
        if (r == NULL) {
            mg_http_error(req, 404, "model_not_found", "model",
                          "The model '%s' does not exist", id);
            mg_buf_deinit(&out);
            return;
        }
        add_model(&out, r, id);
        mg_http_json(req, 200, out.data, out.len);
        mg_buf_deinit(&out);
        return;
    }
    mg_buf_adds(&out, "{\"object\":\"list\",\"data\":[");
    for (i = 0; i < conf->nrules; i++) {
        const struct mg_rule *r = &conf->rules[i];
        if (!r->list) {
            continue;
        }
        for (j = 0; j < r->nmodels; j++) {
            if (is_pattern(r->models[j]) || listing_rule(conf, r->models[j], i, j) != NULL) {
                continue;
            }
            if (!first) {
                mg_buf_adds(&out, ",");
            }
            first = 0;
            add_model(&out, r, r->models[j]);
        }
    }
    mg_buf_adds(&out, "]}");
    mg_http_json(req, 200, out.data, out.len);
    mg_buf_deinit(&out);
}
