/*
 * mg_resp_store_conf — the config's responses_store block: {size: 64MiB, ttl: 1h}; size 0 turns
 * the store off (a request's store: true is then answered store: false).
 */
#include <stddef.h>

#include "mg_conf_types.h"
#include "mg_resp_store.h"
#include "mg_yaml.h"

static const struct mg_yaml_key store_keys[] = {
    {"size", mg_yaml_set_size, offsetof(struct mg_resp_store_conf, size)},
    {"ttl", mg_yaml_set_duration, offsetof(struct mg_resp_store_conf, ttl_ms)},
};

int
mg_resp_store_set_conf(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return mg_yaml_mapping(y, node, store_keys, MG_ARRAY_LEN(store_keys), dst,
                           "responses_store");
}
