/*
 * mg_trace_conf — the config's `tracing:` block (otlp, headers, sample, service_name), read for
 * the span exporter (src/proxy/mg_trace_export.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conf_in.h"
#include "mg_conf_types.h"
#include "mg_trace_conf.h"
#include "mg_util.h"
#include "mg_yaml.h"

/* sample: a number from 0 to 1, kept in parts per million (the request path compares ints). */
static int
set_sample(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "sample"), *end;
    double v;

    if (s == NULL) {
        return MG_ERR;
    }
    v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0 && v <= 1)) {
        mg_yaml_error(y, node, "sample must be a number from 0 to 1, not \"%s\"", s);
        free(s);
        return MG_ERR;
    }
    free(s);
    *(uint32_t *)dst = (uint32_t)(v * 1e6 + 0.5);
    return MG_OK;
}

static const struct mg_yaml_key trace_keys[] = {
    {"otlp", mg_yaml_set_url, offsetof(struct mg_trace_conf, otlp)},
    {"headers", mg_conf_set_headers, offsetof(struct mg_trace_conf, headers)},
    {"sample", set_sample, offsetof(struct mg_trace_conf, sample_ppm)},
    {"service_name", mg_yaml_set_nonempty_line, offsetof(struct mg_trace_conf, service_name)},
};

int
mg_trace_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_trace_conf *c = dst;

    c->on = 1;
    c->sample_ppm = 1000000;
    if (mg_yaml_mapping(y, node, trace_keys, MG_ARRAY_LEN(trace_keys), c, "tracing") != MG_OK) {
        return MG_ERR;
    }
    if (c->otlp == NULL) {
        mg_yaml_error(y, node, "tracing needs \"otlp\" (the collector's URL, such as "
                      "http://127.0.0.1:4318/v1/traces)");
        return MG_ERR;
    }
    if (c->service_name == NULL) {
        c->service_name = mg_strdup("modelgate");
    }
    return MG_OK;
}

void
mg_trace_conf_deinit(struct mg_trace_conf *c)
{
    free(c->otlp);
    mg_conf_headers_free(c->headers, c->nheaders);
    free(c->service_name);
    memset(c, 0, sizeof(*c));
}
