/*
 * mg_tls_conf — the config's `tls:` block: {cert, key, min_version: "1.2" | "1.3"}, into the
 * snapshot's struct mg_tls_conf (mg_conf_types.h) with its TLS context made (mg_tls), so that
 * a config whose files do not make a working context is refused like any other error.
 */
#ifndef MG_TLS_CONF_H
#define MG_TLS_CONF_H

struct mg_tls_conf;
struct mg_yaml;
struct yaml_node_s;

/* The block into a struct mg_tls_conf (a setter of the config engine's key tables). */
int mg_tls_set_conf(struct mg_yaml *y, struct yaml_node_s *node, void *dst);
/* Frees what the setter made (the context: one reference). */
void mg_tls_conf_deinit(struct mg_tls_conf *c);

#endif
