/*
 * mg_budget_redis — spend in Redis (include/mg_budget_redis.h): SET 0 for a reset, INCRBY of the
 * spend settled here, DEL of the window before, then GET, all on one worker's pipelined
 * connection. A write's reply (INCRBY answers the new total) updates the entry as a GET does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mg_budget.h"
#include "mg_budget_redis.h"
#include "mg_redis.h"
#include "mg_util.h"

/* A write's own state (heap): what to give back when it fails. */
struct write {
    struct mg_budget *b;
    int64_t           window;
    int64_t           micro;   /* an INCRBY's amount; 0 for the others */
};

static int
key_of(char *out, const char *prefix, const char *name, int64_t window)
{
    return (size_t)snprintf(out, MG_BUDGET_REDIS_KEY_MAX, "%sspend:%s:%lld", prefix, name,
                            (long long)window) < MG_BUDGET_REDIS_KEY_MAX ? 0 : -1;
}

/* Redis's total of the window from a reply (an integer, a number string, or nil: 0), or -1. */
static int64_t
total_of(const struct redisReply *r)
{
    char *end;
    long long v;

    if (r->type == REDIS_REPLY_INTEGER) {
        return r->integer;
    }
    if (r->type == REDIS_REPLY_NIL) {
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING) {
        v = strtoll(r->str, &end, 10);
        return end != r->str && *end == '\0' && v >= 0 ? v : -1;
    }
    return -1;
}

static void
on_write(void *arg, const struct redisReply *r, int err)
{
    struct write *wr = arg;

    if (err != MG_REDIS_OK || r->type == REDIS_REPLY_ERROR) {
        if (wr->micro > 0) {   /* added with the next exchange */
            mg_budget_unsent_back(wr->b, wr->window, wr->micro);
        }
        mg_redis_log_limited("a spend write failed (%s); it is sent again with the next one",
                             err != MG_REDIS_OK ? "Redis down or slow" : r->str);
    } else if (wr->micro > 0) {
        mg_budget_shared_total(wr->b, wr->window, total_of(r));
    }
    free(wr);
}

/* One write: argv[0..argc), its amount for a give-back. -1 when it could not be sent. */
static int
send_write(struct mg_redis *conn, struct mg_budget *b, int64_t window, int64_t micro, int argc,
           const char **argv, int64_t timeout_ms)
{
    struct write *wr = mg_calloc(1, sizeof(*wr));
    size_t lens[3];
    int i, err;

    wr->b = b;
    wr->window = window;
    wr->micro = micro;
    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    if (mg_redis_command(conn, argc, argv, lens, timeout_ms, on_write, wr, &err) == NULL) {
        free(wr);
        return -1;
    }
    return 0;
}

/* b's pending writes on conn; what could not be sent goes back to the entry. */
static void
send_writes(struct mg_redis *conn, const char *prefix, struct mg_budget *b, int64_t now,
            int64_t timeout_ms, int64_t *window)
{
    struct mg_budget_redis_work w;
    char key[MG_BUDGET_REDIS_KEY_MAX], prev[MG_BUDGET_REDIS_KEY_MAX], n[24];
    const char *name = mg_budget_name(b);

    if (!mg_budget_take_redis(b, now, &w)) {
        *window = w.window;
        return;
    }
    *window = w.window;
    if (key_of(key, prefix, name, w.window) != 0) {
        return;
    }
    if (w.reset && send_write(conn, b, w.window, 0, 3, (const char *[]){"SET", key, "0"},
                              timeout_ms) != 0) {
        mg_budget_reset_back(b, w.window);
    }
    if (w.unsent > 0) {
        snprintf(n, sizeof(n), "%lld", (long long)w.unsent);
        if (send_write(conn, b, w.window, w.unsent, 3, (const char *[]){"INCRBY", key, n},
                       timeout_ms) != 0) {
            mg_budget_unsent_back(b, w.window, w.unsent);
        }
    }
    if (w.prev >= 0 && key_of(prev, prefix, name, w.prev) == 0) {
        send_write(conn, b, w.prev, 0, 2, (const char *[]){"DEL", prev}, timeout_ms);
    }
}

static void
on_get(void *arg, const struct redisReply *r, int err)
{
    struct mg_budget_redis_call *call = arg;
    int64_t total = err == MG_REDIS_OK ? total_of(r) : -1;

    call->op = NULL;
    if (total >= 0) {
        mg_budget_shared_total(call->b, call->window, total);
    } else {
        mg_redis_log_limited("a budget's spend could not be read from Redis (%s); decided "
                             "locally or refused as on_error says",
                             err == MG_REDIS_ETIMEOUT ? "timeout" : err ? "down" : "bad reply");
    }
    call->done(call->arg, total >= 0);
}

int
mg_budget_redis_read(struct mg_budget_redis_call *call, struct mg_redis *conn,
                     const char *prefix, struct mg_budget *b, int64_t now, int64_t timeout_ms,
                     mg_budget_redis_fn done, void *arg)
{
    const char *argv[2];
    size_t lens[2];
    int err;

    call->b = b;
    call->done = done;
    call->arg = arg;
    call->op = NULL;
    if (conn == NULL || !mg_redis_up(conn)) {
        return -1;
    }
    send_writes(conn, prefix, b, now, timeout_ms, &call->window);
    if (key_of(call->key, prefix, mg_budget_name(b), call->window) != 0) {
        return -1;
    }
    argv[0] = "GET";
    argv[1] = call->key;
    lens[0] = 3;
    lens[1] = strlen(call->key);
    call->op = mg_redis_command(conn, 2, argv, lens, timeout_ms, on_get, call, &err);
    return call->op != NULL ? 0 : -1;
}

void
mg_budget_redis_cancel(struct mg_budget_redis_call *call)
{
    mg_redis_cancel(call->op);
    call->op = NULL;
}

void
mg_budget_redis_flush(struct mg_redis *conn, const char *prefix, struct mg_budget *b,
                      int64_t now, int64_t timeout_ms)
{
    int64_t window;

    if (conn != NULL && mg_redis_up(conn)) {
        send_writes(conn, prefix, b, now, timeout_ms, &window);
        mg_redis_flush(conn);   /* the answer's cost reaches Redis before the next request */
    }
}
