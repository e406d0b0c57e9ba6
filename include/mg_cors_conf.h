/*
 * mg_cors_conf — the config's `cors:` block: {origins: ["https://app.example.com"] or ["*"],
 * max_age: 10m}, into the snapshot's struct mg_cors_conf (mg_conf_types.h).
 */
#ifndef MG_CORS_CONF_H
#define MG_CORS_CONF_H

struct mg_cors_conf;
struct mg_yaml;
struct yaml_node_s;

/* The block into a struct mg_cors_conf (a setter of the config engine's key tables). */
int mg_cors_set_conf(struct mg_yaml *y, struct yaml_node_s *node, void *dst);
/* Frees what the setter made. */
void mg_cors_conf_deinit(struct mg_cors_conf *c);

#endif
