/*
 * mg_health_shared — backend cooldowns shared through Redis (SPEC "Shared state across
 * instances"): an instance whose backend starts a cooldown writes it (`SET prefix+"cool:"+backend
 * <until, epoch ms> PX <cooldown>`) and publishes `backend until` on `prefix+"cool"`; one that
 * sees it come up publishes `backend 0` and deletes the key. Every instance subscribes (one
 * connection, on worker 0's loop), applies what it hears to its own health registry, and on each
 * (re)connect reads the `cool:` keys of the backends it has configured (MGET). Failure streaks
 * stay per instance: a cooldown heard is applied without counting in the local streak.
 */
#ifndef MG_HEALTH_SHARED_H
#define MG_HEALTH_SHARED_H

#include <stdint.h>

struct event_base;
struct mg_backend;
struct mg_conf;
struct mg_health_registry;
struct mg_health_shared;
struct mg_redis;
struct mg_redis_url;

/*
 * This thread's writer: its command connection (NULL: no sharing) and key prefix (living until
 * the next call). A worker calls it when it starts and when its config changes.
 */
void mg_health_shared_bind(struct mg_redis *conn, const char *prefix);

/* After mg_plan_report()/an active check: b's health changed as ch (MG_HEALTH_*) says. */
void mg_health_shared_publish(const struct mg_backend *b, int ch, int64_t now);

/*
 * The instance's subscriber on base (worker 0's): applies what it hears to reg; conf (held by the
 * caller, replaced with mg_health_shared_conf) names the backends and the prefix; cmd is the
 * loop's command connection, for the MGET on each (re)connect.
 */
struct mg_health_shared *mg_health_shared_create(struct event_base *base,
                                                 const struct mg_redis_url *u,
                                                 const struct mg_conf *conf,
                                                 struct mg_health_registry *reg,
                                                 struct mg_redis *cmd);
void mg_health_shared_conf(struct mg_health_shared *hs, const struct mg_conf *conf,
                           struct mg_redis *cmd);
void mg_health_shared_destroy(struct mg_health_shared *hs);

#endif
