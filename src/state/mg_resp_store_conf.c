/*
 * mg_resp_store_conf — the config's responses_store block: {size: 64MiB, ttl: 1h}; size 0 turns
 * the store off (a request's store: true is then answered store: false); and its metrics.
 */
#include <stddef.h>
#include <string.h>

#include "mg_conf_types.h"
#include "mg_resp_store.h"
#include "mg_util.h"
#include "mg_yaml.h"

/* size: as mg_yaml_set_size, and 0 (or 0B) too: the store is off. */
static int
set_store_size(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    const char *v = node != NULL && node->type == YAML_SCALAR_NODE
                    ? (const char *)node->data.scalar.value : NULL;

    if (v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "0B") == 0)) {
        *(uint64_t *)dst = 0;
        return MG_OK;
    }
    return mg_yaml_set_size(y, node, dst);
}

static const struct mg_yaml_key store_keys[] = {
    {"size", set_store_size, offsetof(struct mg_resp_store_conf, size)},
    {"ttl", mg_yaml_set_duration, offsetof(struct mg_resp_store_conf, ttl_ms)},
};

int
mg_resp_store_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return mg_yaml_mapping(y, node, store_keys, MG_ARRAY_LEN(store_keys), dst,
                           "responses_store");
}

void
mg_resp_store_render(struct mg_resp_store *store, struct mg_buf *out)
{
    struct mg_resp_store_stats st;

    mg_resp_store_stats(store, &st);
    mg_buf_printf(out, "# HELP modelgate_response_store_bytes Bytes the conversation store holds.\n"
                       "# TYPE modelgate_response_store_bytes gauge\n"
                       "modelgate_response_store_bytes %llu\n"
                       "# HELP modelgate_response_store_entries Responses and native ids it "
                       "holds.\n# TYPE modelgate_response_store_entries gauge\n"
                       "modelgate_response_store_entries %llu\n"
                       "# HELP modelgate_response_store_evictions_total Entries dropped, by "
                       "reason.\n# TYPE modelgate_response_store_evictions_total counter\n"
                       "modelgate_response_store_evictions_total{reason=\"lru\"} %llu\n"
                       "modelgate_response_store_evictions_total{reason=\"ttl\"} %llu\n",
                  (unsigned long long)st.bytes, (unsigned long long)(st.responses + st.natives),
                  (unsigned long long)st.evicted_lru, (unsigned long long)st.evicted_ttl);
}
