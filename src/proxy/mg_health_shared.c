/*
 * mg_health_shared — cooldowns shared through Redis (include/mg_health_shared.h). A cooldown
 * heard from another instance goes through mg_health's own entry points: as a Retry-After of its
 * remaining length under a policy that counts no failures (so the local streak and its doubling
 * are untouched), and "up again" as an active check's success.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_conf_types.h"
#include "mg_health.h"
#include "mg_health_shared.h"
#include "mg_log.h"
#include "mg_redis.h"
#include "mg_util.h"

#define NAME_MAX_SHARED 256
#define RESYNC_MS 500   /* the MGET retried while the command connection is not up */

static _Thread_local struct mg_redis *t_conn;
static _Thread_local const char *t_prefix;

struct mg_health_shared {
    struct mg_redis           *sub;
    struct mg_redis           *cmd;
    const struct mg_conf      *conf;
    struct mg_health_registry *reg;
    struct mg_redis_op        *mget;
    struct event              *resync;
};

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
mg_health_shared_bind(struct mg_redis *conn, const char *prefix)
{
    t_conn = conn;
    t_prefix = prefix;
}

static void
send_only(int argc, const char **argv)
{
    size_t lens[6];
    int i, err;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    mg_redis_command(t_conn, argc, argv, lens, 1000, NULL, NULL, &err);
}

void
mg_health_shared_publish(const struct mg_backend *b, int ch, int64_t now)
{
    char key[NAME_MAX_SHARED + 80], chan[96], msg[NAME_MAX_SHARED + 32], until[24], px[24];
    int64_t left;

    if (t_conn == NULL || !mg_redis_up(t_conn) || strlen(b->name) > NAME_MAX_SHARED ||
        (ch != MG_HEALTH_WENT_DOWN && ch != MG_HEALTH_AGAIN && ch != MG_HEALTH_CAME_UP)) {
        return;
    }
    snprintf(key, sizeof(key), "%scool:%s", t_prefix, b->name);
    snprintf(chan, sizeof(chan), "%scool", t_prefix);
    left = ch == MG_HEALTH_CAME_UP ? 0 : mg_health_cooldown_left(b->state, now);
    if (left > 0) {
        const char *set[] = {"SET", key, until, "PX", px};
        snprintf(until, sizeof(until), "%lld", (long long)(wall_ms() + left));
        snprintf(px, sizeof(px), "%lld", (long long)left);
        send_only(5, set);
    } else {
        const char *del[] = {"DEL", key};
        snprintf(until, sizeof(until), "0");
        send_only(2, del);
    }
    snprintf(msg, sizeof(msg), "%s %s", b->name, until);
    {
        const char *pub[] = {"PUBLISH", chan, msg};
        send_only(3, pub);
    }
}

/* What another instance said of backend `name`: cooling until `until` (epoch ms), or 0: up. */
static void
apply(struct mg_health_shared *hs, const char *name, int64_t until)
{
    const struct mg_backend *b = NULL;
    struct mg_health_conf policy;
    int64_t now = mg_now_ms(), left;
    size_t i;

    for (i = 0; i < hs->conf->nbackends; i++) {
        if (strcmp(hs->conf->backends[i].name, name) == 0) {
            b = &hs->conf->backends[i];
            break;
        }
    }
    if (b == NULL || b->state == NULL) {
        return;   /* not one of ours */
    }
    if (until == 0) {
        if (mg_health_check_ok(b->state, now) == MG_HEALTH_CAME_UP) {
            mg_log_info("backend %s is up again (another instance saw it)", name);
        }
        return;
    }
    left = until - wall_ms();
    if (left <= 0) {
        return;
    }
    policy = b->health;
    policy.failures = 0;            /* counts nothing: the local streak stays as it is */
    policy.cooldown_ms = 0;
    policy.max_cooldown_ms = left;
    if (mg_health_retry_after(b->state, &policy, now, left) == MG_HEALTH_WENT_DOWN) {
        mg_log_warn("backend %s is down: cooling down for %lld ms (another instance's cooldown)",
                    name, (long long)left);
    }
}

static void
on_message(void *arg, const char *payload, size_t len)
{
    char name[NAME_MAX_SHARED + 1];
    const char *sp = memchr(payload, ' ', len);
    long long until;

    if (sp == NULL || (size_t)(sp - payload) > NAME_MAX_SHARED ||
        sscanf(sp + 1, "%lld", &until) != 1) {
        return;
    }
    memcpy(name, payload, (size_t)(sp - payload));
    name[sp - payload] = '\0';
    apply(arg, name, until);
}

static void sync_all(struct mg_health_shared *hs);

static void
on_mget(void *arg, const struct redisReply *r, int err)
{
    struct mg_health_shared *hs = arg;
    size_t i;

    hs->mget = NULL;
    if (err != MG_REDIS_OK || r->type != REDIS_REPLY_ARRAY) {
        struct timeval tv = {0, RESYNC_MS * 1000};
        event_add(hs->resync, &tv);
        return;
    }
    for (i = 0; i < r->elements && i < hs->conf->nbackends; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING) {
            apply(hs, hs->conf->backends[i].name, strtoll(r->element[i]->str, NULL, 10));
        }
    }
}

/* Reads every configured backend's cool: key (after a (re)connect: messages may be lost). */
static void
sync_all(struct mg_health_shared *hs)
{
    size_t n = hs->conf->nbackends, i;
    const char **argv;
    size_t *lens;
    char **keys;
    int err;

    if (n == 0 || hs->mget != NULL) {
        return;
    }
    argv = mg_calloc(n + 1, sizeof(*argv));
    lens = mg_calloc(n + 1, sizeof(*lens));
    keys = mg_calloc(n, sizeof(*keys));
    argv[0] = "MGET";
    lens[0] = 4;
    for (i = 0; i < n; i++) {
        size_t kl = strlen(hs->conf->shared.prefix) + 5 + strlen(hs->conf->backends[i].name) + 1;
        keys[i] = mg_calloc(1, kl);
        snprintf(keys[i], kl, "%scool:%s", hs->conf->shared.prefix, hs->conf->backends[i].name);
        argv[i + 1] = keys[i];
        lens[i + 1] = strlen(keys[i]);
    }
    hs->mget = mg_redis_command(hs->cmd, (int)n + 1, argv, lens, 1000, on_mget, hs, &err);
    if (hs->mget == NULL) {
        struct timeval tv = {0, RESYNC_MS * 1000};
        event_add(hs->resync, &tv);
    }
    for (i = 0; i < n; i++) {
        free(keys[i]);
    }
    free(keys);
    free(lens);
    free(argv);
}

static void
on_resync(evutil_socket_t fd, short what, void *arg)
{
    sync_all(arg);
}

static void
on_up(void *arg)
{
    sync_all(arg);
}

struct mg_health_shared *
mg_health_shared_create(struct event_base *base, const struct mg_redis_url *u,
                        const struct mg_conf *conf, struct mg_health_registry *reg,
                        struct mg_redis *cmd)
{
    struct mg_health_shared *hs = mg_calloc(1, sizeof(*hs));
    char chan[96];

    hs->conf = conf;
    hs->reg = reg;
    hs->cmd = cmd;
    hs->resync = evtimer_new(base, on_resync, hs);
    snprintf(chan, sizeof(chan), "%scool", conf->shared.prefix);
    hs->sub = mg_redis_subscribe(base, u, chan, on_message, on_up, hs);
    if (hs->resync == NULL || hs->sub == NULL) {
        mg_health_shared_destroy(hs);
        return NULL;
    }
    return hs;
}

void
mg_health_shared_conf(struct mg_health_shared *hs, const struct mg_conf *conf,
                      struct mg_redis *cmd)
{
    if (hs->mget != NULL) {
        mg_redis_cancel(hs->mget);   /* its keys are the old config's backends */
        hs->mget = NULL;
    }
    hs->conf = conf;
    hs->cmd = cmd;
    sync_all(hs);   /* new backends may be cooling elsewhere */
}

void
mg_health_shared_destroy(struct mg_health_shared *hs)
{
    if (hs == NULL) {
        return;
    }
    if (hs->mget != NULL) {
        mg_redis_cancel(hs->mget);
    }
    mg_redis_destroy(hs->sub);
    if (hs->resync != NULL) {
        event_free(hs->resync);
    }
    free(hs);
}
