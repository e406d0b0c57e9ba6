/*
 * mg_conf_rule — the `rules` block: which models a rule takes (names, prefix*), the headers it
 * matches, how it is listed in /v1/models, its retry policy, and its entries, each resolved to a
 * backend of the same file in phase three.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_conf_in.h"

MG_YAML_INT_SETTER(set_priority, int, 0, 1000000)
MG_YAML_INT_SETTER(set_retries, int, 0, 31)   /* attempts are capped at MG_BALANCER_MAX */
MG_YAML_INT_SETTER(set_weight, unsigned, 0, 1000000)

/* Parses "2024-05-13T00:00:00Z", "2024-05-13T02:00:00+02:00", "2024-05-13" or Unix seconds. */
static int
parse_created(const char *s, int64_t *out)
{
    struct tm tm;
    const char *p;
    char *end;
    long long v;
    int off = 0;

    if (*s != '\0' && strspn(s, "0123456789") == strlen(s)) {
        v = strtoll(s, &end, 10);
        *out = v;
        return MG_OK;
    }
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%d", &tm);
    if (p == NULL) {
        return MG_ERR;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (p == NULL) {
            return MG_ERR;
        }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
                   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
                   isdigit((unsigned char)p[5])) {
            off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
                  ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
            if (*p == '+') {
                off = -off;
            }
            p += 6;
        } else {
            return MG_ERR;
        }
    }
    if (*p != '\0') {
        return MG_ERR;
    }
    *out = (int64_t)timegm(&tm) + off;
    return MG_OK;
}

static int
set_created(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "created");
    int rc;

    if (s == NULL) {
        return MG_ERR;
    }
    rc = parse_created(s, (int64_t *)dst);
    if (rc != MG_OK) {
        mg_yaml_error(y, node, "bad created \"%s\" (RFC 3339 date-time or Unix seconds)", s);
    }
    free(s);
    return rc;
}

/* hosted_tools: drop (the default: a translated request leaves them out) or refuse (400). */
static int
set_hosted_tools(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "hosted_tools");
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (strcmp(s, "refuse") == 0 || strcmp(s, "drop") == 0) {
        *(int *)dst = strcmp(s, "refuse") == 0;
    } else {
        mg_yaml_error(y, node, "hosted_tools must be drop or refuse, not \"%s\"", s);
        rc = MG_ERR;
    }
    free(s);
    return rc;
}

struct rule_backend_in {
    struct mg_rule_backend rb;
    char                  *name;
    yaml_node_t           *node;
};

static const struct mg_yaml_key entry_keys[] = {
    {"backend", mg_yaml_set_nonempty, offsetof(struct rule_backend_in, name)},
    {"weight", set_weight, offsetof(struct rule_backend_in, rb.weight)},
    {"priority", set_priority, offsetof(struct rule_backend_in, rb.priority)},
    {"model", mg_yaml_set_nonempty, offsetof(struct rule_backend_in, rb.model)},
};

struct mg_conf_rule_in {
    struct mg_rule          r;
    struct rule_backend_in *rbs;
    size_t                  nrbs;
    int                     retries_set;
    yaml_node_t            *node;
};

static int
set_models(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_rule *r = dst;
    size_t i, n;
    int rc = MG_OK;

    /* allocated even when refused: the key was given, so "a rule needs models" is not said too */
    r->models = mg_calloc(1, sizeof(char *));
    if (mg_yaml_list(y, node, "models", &n) != MG_OK) {
        return MG_ERR;
    }
    if (n == 0) {
        mg_yaml_error(y, node, "models must not be empty");
        return MG_ERR;
    }
    free(r->models);
    r->models = mg_calloc(n, sizeof(char *));
    for (i = 0; i < n; i++) {
        yaml_node_t *m = mg_yaml_item(y, node, i);
        char *s = mg_yaml_scalar(y, m, "model name");
        if (s == NULL) {
            rc = MG_ERR;
            continue;
        }
        if (s[0] == '\0') {
            mg_yaml_error(y, m, "model name must not be empty");
            free(s);
            rc = MG_ERR;
            continue;
        }
        r->models[r->nmodels++] = s;
    }
    return rc;
}

static int
set_retries_in(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf_rule_in *ri = dst;

    if (set_retries(y, node, &ri->r.retries) != MG_OK) {
        return MG_ERR;
    }
    ri->retries_set = 1;
    return MG_OK;
}

static int
set_rule_backends(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf_rule_in *ri = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "backends", &n) != MG_OK) {
        return MG_ERR;
    }
    ri->rbs = mg_calloc(n, sizeof(*ri->rbs));
    for (i = 0; i < n; i++) {
        struct rule_backend_in *rb = &ri->rbs[ri->nrbs++];
        yaml_node_t *e = mg_yaml_item(y, node, i);
        rb->rb.weight = 1;
        rb->node = e;
        if (mg_yaml_mapping(y, e, entry_keys, MG_ARRAY_LEN(entry_keys), rb,
                            "a rule's backend entry") != MG_OK) {
            rc = MG_ERR;
        } else if (rb->name == NULL) {
            mg_yaml_error(y, e, "a rule's backend entry needs \"backend\"");
            rc = MG_ERR;
        }
    }
    return rc;
}

/* Rows point into struct mg_conf_rule_in; the models/backends setters take the whole rule. */
static const struct mg_yaml_key rule_keys[] = {
    {"models", set_models, 0},
    {"owned_by", mg_yaml_set_nonempty, offsetof(struct mg_conf_rule_in, r.owned_by)},
    {"created", set_created, offsetof(struct mg_conf_rule_in, r.created)},
    {"headers", mg_conf_set_match_headers, offsetof(struct mg_conf_rule_in, r.headers)},
    {"list", mg_yaml_set_bool, offsetof(struct mg_conf_rule_in, r.list)},
    {"retries", set_retries_in, 0},
    {"retry_same", mg_yaml_set_bool, offsetof(struct mg_conf_rule_in, r.retry_same)},
    {"retry_after_max", mg_yaml_set_duration,
     offsetof(struct mg_conf_rule_in, r.retry_after_max_ms)},
    {"hosted_tools", set_hosted_tools, offsetof(struct mg_conf_rule_in, r.hosted_refuse)},
    {"resume", mg_yaml_set_bool, offsetof(struct mg_conf_rule_in, r.resume)},
    {"backends", set_rule_backends, 0},
};

int
mg_conf_set_rules(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf_rules_in *in = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "rules", &n) != MG_OK) {
        return MG_ERR;
    }
    in->rs = mg_calloc(n, sizeof(*in->rs));
    for (i = 0; i < n; i++) {
        struct mg_conf_rule_in *r = &in->rs[in->n++];
        yaml_node_t *rn = mg_yaml_item(y, node, i);
        r->node = rn;
        r->r.created = -1;
        r->r.list = 1;
        r->r.retry_same = 1;
        r->r.retry_after_max_ms = 5000;
        r->r.line = (int)rn->start_mark.line + 1;
        if (mg_yaml_mapping(y, rn, rule_keys, MG_ARRAY_LEN(rule_keys), r, "a rule") != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

/* Rules: entries resolved to backend indices, default retries and owned_by. */
void
mg_conf_check_rules(struct mg_yaml *y, void *in_, struct mg_conf *conf)
{
    struct mg_conf_rules_in *in = in_;
    size_t i, j, k;

    conf->rules = mg_calloc(in->n, sizeof(struct mg_rule));
    for (i = 0; i < in->n; i++) {
        struct mg_conf_rule_in *r = &in->rs[i];
        int enabled = 0;

        if (r->r.models == NULL) {
            mg_yaml_error(y, r->node, "a rule needs \"models\"");
        }
        if (r->nrbs == 0) {
            mg_yaml_error(y, r->node, "a rule needs at least one entry in \"backends\"");
        }
        r->r.backends = mg_calloc(r->nrbs, sizeof(struct mg_rule_backend));
        for (j = 0; j < r->nrbs; j++) {
            struct rule_backend_in *rb = &r->rbs[j];
            int idx = -1;
            for (k = 0; rb->name != NULL && k < conf->nbackends; k++) {
                if (conf->backends[k].name != NULL &&
                    strcmp(conf->backends[k].name, rb->name) == 0) {
                    idx = (int)k;
                    break;
                }
            }
            if (rb->name != NULL && idx < 0) {
                mg_yaml_error(y, rb->node, "unknown backend \"%s\"", rb->name);
            }
            free(rb->name);
            rb->name = NULL;
            rb->rb.backend = idx < 0 ? 0 : (size_t)idx;
            if (rb->rb.weight > 0) {
                enabled++;
            }
            r->r.backends[r->r.nbackends++] = rb->rb;
            memset(&rb->rb, 0, sizeof(rb->rb));
        }
        if (!r->retries_set) {
            r->r.retries = enabled > 0 ? enabled - 1 : 0;
        }
        r->r.retries_set = r->retries_set;
        if (r->r.owned_by == NULL) {
            r->r.owned_by = mg_strdup("modelgate");
        }
        conf->rules[conf->nrules++] = r->r;
        memset(&r->r, 0, sizeof(r->r));
    }
}


void
mg_conf_rule_deinit(struct mg_rule *r)
{
    size_t j;

    for (j = 0; j < r->nmodels; j++) {
        free(r->models[j]);
    }
    free(r->models);
    free(r->owned_by);
    mg_conf_headers_free(r->headers, r->nheaders);
    for (j = 0; r->backends != NULL && j < r->nbackends; j++) {
        free(r->backends[j].model);
    }
    free(r->backends);
    memset(r, 0, sizeof(*r));
}

void
mg_conf_rules_free(void *in_)
{
    struct mg_conf_rules_in *in = in_;
    size_t i, j;

    for (i = 0; i < in->n; i++) {
        struct mg_conf_rule_in *r = &in->rs[i];
        for (j = 0; j < r->nrbs; j++) {
            free(r->rbs[j].name);
            free(r->rbs[j].rb.model);
        }
        free(r->rbs);
        mg_conf_rule_deinit(&r->r);
    }
    free(in->rs);
}
