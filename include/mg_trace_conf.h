/*
 * mg_trace_conf — the config's `tracing:` block: {otlp: URL, headers: {..}, sample: 0..1,
 * service_name: name}, into the snapshot's struct mg_trace_conf (mg_conf_types.h).
 */
#ifndef MG_TRACE_CONF_H
#define MG_TRACE_CONF_H

struct mg_trace_conf;
struct mg_yaml;
struct yaml_node_s;

/* The block into a struct mg_trace_conf (a setter of the config engine's key tables). */
int mg_trace_set_conf(struct mg_yaml *y, struct yaml_node_s *node, void *dst);
/* Frees what the block holds; c is left empty. */
void mg_trace_conf_deinit(struct mg_trace_conf *c);

#endif
