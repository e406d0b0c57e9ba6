/*
 * mg_shared_conf — the config's `shared:` block (SPEC "Shared state across instances"): the Redis
 * URL, the deadlines, on_error and the key prefix.
 */
#ifndef MG_SHARED_CONF_H
#define MG_SHARED_CONF_H

struct mg_redis_url;
struct mg_shared_conf;
struct mg_yaml;
struct yaml_node_s;

/* The block into a struct mg_shared_conf (a setter of the config engine's key tables). */
int mg_shared_set_conf(struct mg_yaml *y, struct yaml_node_s *node, void *dst);
/* Frees what the setter made. */
void mg_shared_conf_deinit(struct mg_shared_conf *c);
/* The parsed URL of c (on). */
void mg_shared_conf_url(const struct mg_shared_conf *c, struct mg_redis_url *u);
/* 1 when a and b name the same Redis the same way (a reload keeps the connections). */
int mg_shared_conf_same(const struct mg_shared_conf *a, const struct mg_shared_conf *b);

#endif
