/*
 * mg_resp_redis — the conversation store written through to Redis and read back from it
 * (include/mg_resp_redis.h). A stored Response is one string: "<key len> <model len> <response
 * len> <history len>\n" and the four strings one after the other; a recorded native id is
 * "<backend>\n<key>". Both expire with the store's ttl (PX), so a Redis run with
 * maxmemory-policy volatile-lru evicts them first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mg_redis.h"
#include "mg_resp_redis.h"
#include "mg_util.h"

static _Thread_local struct mg_redis *t_conn;
static _Thread_local const char *t_prefix;
static _Thread_local int64_t t_timeout_ms;
static _Thread_local int64_t t_ttl_ms;

void
mg_resp_redis_bind(struct mg_redis *conn, const char *prefix, int64_t timeout_ms,
                   int64_t ttl_ms)
{
    t_conn = conn;
    t_prefix = prefix;
    t_timeout_ms = timeout_ms;
    t_ttl_ms = ttl_ms;
}

/* A command whose answer nobody waits for (its failures are counted by mg_redis). */
static void
send_only(int argc, const char **argv, const size_t *lens)
{
    int err;

    if (t_conn != NULL && mg_redis_up(t_conn)) {
        mg_redis_command(t_conn, argc, argv, lens, t_timeout_ms, NULL, NULL, &err);
        mg_redis_flush(t_conn);   /* before the client hears of it */
    }
}

static void
key_of(char *out, size_t len, const char *kind, const char *id)
{
    snprintf(out, len, "%s%s%s", t_prefix, kind, id);
}

static void
set_px(const char *kind, const char *id, const char *value, size_t value_len)
{
    char key[MG_RESP_STORE_NAME_MAX + 80], px[24];
    const char *argv[5] = {"SET", key, value, "PX", px};
    size_t lens[5];

    if (t_conn == NULL) {
        return;
    }
    key_of(key, sizeof(key), kind, id);
    snprintf(px, sizeof(px), "%lld", (long long)(t_ttl_ms > 0 ? t_ttl_ms : 0));
    lens[0] = 3;
    lens[1] = strlen(key);
    lens[2] = value_len;
    lens[3] = 2;
    lens[4] = strlen(px);
    send_only(t_ttl_ms > 0 ? 5 : 3, argv, lens);
}

void
mg_resp_redis_put(const char *id, const char *key_name, const char *model,
                  const char *response, size_t response_len, const char *history,
                  size_t history_len)
{
    struct mg_buf b;
    char head[96];
    size_t kl = strlen(key_name), ml = strlen(model);
    int n;

    if (t_conn == NULL) {
        return;
    }
    n = snprintf(head, sizeof(head), "%zu %zu %zu %zu\n", kl, ml, response_len, history_len);
    mg_buf_init(&b, SIZE_MAX);
    mg_buf_add(&b, head, (size_t)n);
    mg_buf_add(&b, key_name, kl);
    mg_buf_add(&b, model, ml);
    mg_buf_add(&b, response, response_len);
    mg_buf_add(&b, history, history_len);
    set_px("resp:", id, b.data, b.len);
    mg_buf_deinit(&b);
}

void
mg_resp_redis_record(const char *id, const char *backend_name, const char *key_name)
{
    char v[2 * MG_RESP_STORE_NAME_MAX + 2];
    int n;

    if (t_conn == NULL) {
        return;
    }
    n = snprintf(v, sizeof(v), "%s\n%s", backend_name, key_name);
    set_px("rid:", id, v, (size_t)n < sizeof(v) ? (size_t)n : sizeof(v) - 1);
}

void
mg_resp_redis_del(const char *id)
{
    char key[MG_RESP_STORE_NAME_MAX + 80];
    const char *argv[2] = {"DEL", key};
    size_t lens[2];

    if (t_conn == NULL) {
        return;
    }
    key_of(key, sizeof(key), "resp:", id);
    lens[0] = 3;
    lens[1] = strlen(key);
    send_only(2, argv, lens);
}

/* ---- reading back --------------------------------------------------------------------------- */

/* The creation time that makes the local copy expire when Redis's does. */
static int64_t
created_for(int64_t pttl)
{
    int64_t now = mg_now_ms();

    if (t_ttl_ms <= 0 || pttl < 0 || pttl > t_ttl_ms) {
        return now;
    }
    return now - (t_ttl_ms - pttl);
}

/* A stored Response's string into the local store (not written back). */
static void
take_response(struct mg_resp_fetch *f, const struct redisReply *r)
{
    unsigned long long kl, ml, rl, hl;
    const char *nl = memchr(r->str, '\n', r->len);
    char key[MG_RESP_STORE_NAME_MAX + 1], model[MG_RESP_STORE_NAME_MAX + 1];
    const char *p;

    if (nl == NULL || sscanf(r->str, "%llu %llu %llu %llu", &kl, &ml, &rl, &hl) != 4 ||
        kl > MG_RESP_STORE_NAME_MAX || ml > MG_RESP_STORE_NAME_MAX ||
        (size_t)(nl + 1 - r->str) + kl + ml + rl + hl != r->len) {
        mg_redis_log_limited("a stored Response in Redis (%s) is not in the gateway's format",
                             f->id);
        return;
    }
    p = nl + 1;
    memcpy(key, p, kl);
    key[kl] = '\0';
    memcpy(model, p + kl, ml);
    model[ml] = '\0';
    p += kl + ml;
    /* the response and history are NUL-ended in the reply (hiredis ends every string) only as
     * a whole: the store copies them by length */
    f->store->ops->put(f->store, f->id, key, model, p, rl, p + rl, hl, created_for(f->pttl[0]));
}

/* A recorded native id into the local store. */
static void
take_native(struct mg_resp_fetch *f, const struct redisReply *r)
{
    char v[2 * MG_RESP_STORE_NAME_MAX + 2];
    char *nl;

    if (r->len >= sizeof(v)) {
        return;
    }
    memcpy(v, r->str, r->len);
    v[r->len] = '\0';
    nl = strchr(v, '\n');
    if (nl == NULL) {
        return;
    }
    *nl = '\0';
    f->store->ops->record(f->store, f->id, v, nl + 1, created_for(f->pttl[1]));
}

static void
on_fetch(void *arg, const struct redisReply *r, int err)
{
    struct mg_resp_fetch_slot *s = arg;
    struct mg_resp_fetch *f = s->f;

    s->op = NULL;
    if (err != MG_REDIS_OK || r->type == REDIS_REPLY_ERROR) {
        f->failed = 1;
    } else if (s->i == 0 || s->i == 2) {
        f->pttl[s->i / 2] = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    } else if (r->type == REDIS_REPLY_STRING) {
        if (s->i == 1) {
            take_response(f, r);
        } else {
            take_native(f, r);
        }
    } else if (s->i == 1 && r->type == REDIS_REPLY_NIL) {
        /* gone from Redis (deleted through another instance, expired): gone here too */
        f->store->ops->del(f->store, f->id, f->key, mg_now_ms());
    }
    if (--f->pending == 0) {
        if (f->failed) {
            mg_redis_log_limited("reading %s from Redis failed; answered from this instance's "
                                 "own store", f->id);
        }
        f->done(f->arg, !f->failed);
    }
}

int
mg_resp_redis_fetch(struct mg_resp_fetch *f, struct mg_resp_store *store, const char *id,
                    const char *key_name, mg_resp_redis_fn done, void *arg)
{
    char key[2][MG_RESP_STORE_NAME_MAX + 80];
    const char *kinds[2] = {"resp:", "rid:"};
    int i, err;

    if (t_conn == NULL || !mg_redis_up(t_conn) || strlen(id) > MG_RESP_STORE_NAME_MAX ||
        strlen(key_name) > MG_RESP_STORE_NAME_MAX) {
        return -1;
    }
    memset(f, 0, sizeof(*f));
    f->store = store;
    f->done = done;
    f->arg = arg;
    memcpy(f->id, id, strlen(id) + 1);
    memcpy(f->key, key_name, strlen(key_name) + 1);
    for (i = 0; i < 4; i++) {
        const char *argv[2] = {i % 2 == 0 ? "PTTL" : "GET", key[i / 2]};
        size_t lens[2];
        key_of(key[i / 2], sizeof(key[i / 2]), kinds[i / 2], id);
        lens[0] = strlen(argv[0]);
        lens[1] = strlen(argv[1]);
        f->slot[i].f = f;
        f->slot[i].i = i;
        f->slot[i].op = mg_redis_command(t_conn, 2, argv, lens, t_timeout_ms, on_fetch,
                                         &f->slot[i], &err);
        if (f->slot[i].op == NULL) {
            mg_resp_redis_fetch_cancel(f);
            return -1;
        }
        f->pending++;
    }
    return 0;
}

void
mg_resp_redis_fetch_cancel(struct mg_resp_fetch *f)
{
    int i;

    for (i = 0; i < 4; i++) {
        mg_redis_cancel(f->slot[i].op);
        f->slot[i].op = NULL;
    }
}
