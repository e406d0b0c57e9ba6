/*
 * mg_limit_redis — rate limits decided in Redis (include/mg_limit_redis.h). The buckets are the
 * local store's GCRA (mg_limit_local.c), kept in Redis as each bucket's "theoretical arrival
 * time" in milliseconds of Redis's clock: full when it is not after now, empty when it is a
 * minute after now, and taking n units of a limit L moves it n * 60000 / L later. One script
 * reads and writes both buckets atomically, so N instances share one exact limit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "mg_limit_redis.h"
#include "mg_redis.h"
#include "mg_util.h"

/*
 * KEYS: the request bucket, the token bucket. ARGV: requests_per_minute, tokens_per_minute (0:
 * none), the tokens to reserve (admit) or the used - reserved difference (settle), "a" or "s".
 * Admit returns {admitted, requests remaining, requests reset ms, tokens remaining, tokens
 * reset ms, retry after ms, tokens reserved}.
 */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local W = 60000\n"
    "local rpm, tpm, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local function tat(k)\n"
    "  local v = tonumber(redis.call('GET', k) or now)\n"
    "  if v < now then v = now end\n"
    "  return v\n"
    "end\n"
    "if ARGV[4] == 's' then\n"
    "  if tpm > 0 then\n"
    "    local v = tat(KEYS[2]) + n * W / tpm\n"
    "    if v < now then v = now end\n"
    "    if v > now + W then v = now + W end\n"
    "    redis.call('SET', KEYS[2], string.format('%.3f', v))\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "local ok, retry = 1, 0\n"
    "local r, tk = now, now\n"
    "if rpm > 0 then\n"
    "  r = tat(KEYS[1]) + W / rpm\n"
    "  if r - now > W then ok = 0; retry = r - now - W end\n"
    "end\n"
    "if tpm > 0 then\n"
    "  tk = tat(KEYS[2]) + n * W / tpm\n"
    "  if tk - now > W then ok = 0; if tk - now - W > retry then retry = tk - now - W end end\n"
    "end\n"
    "if ok == 1 then\n"
    "  if rpm > 0 then redis.call('SET', KEYS[1], string.format('%.3f', r)) end\n"
    "  if tpm > 0 then redis.call('SET', KEYS[2], string.format('%.3f', tk)) end\n"
    "else\n"
    "  if rpm > 0 then r = r - W / rpm end\n"
    "  if tpm > 0 then tk = tk - n * W / tpm end\n"
    "  n = 0\n"
    "end\n"
    "local function left(v, l) if l <= 0 then return 0 end\n"
    "  return math.floor((W - (v - now)) * l / W + 1e-9) end\n"
    "return {ok, left(r, rpm), math.ceil(r - now), left(tk, tpm), math.ceil(tk - now),\n"
    "        math.ceil(retry), n}\n";

static char sha_hex[41];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

static void
make_sha(void)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    size_t i;

    SHA1((const unsigned char *)script, sizeof(script) - 1, md);
    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(sha_hex + 2 * i, 3, "%02x", md[i]);
    }
}

const char *
mg_limit_redis_script(void)
{
    return script;
}

const char *
mg_limit_redis_sha(void)
{
    pthread_once(&sha_once, make_sha);
    return sha_hex;
}

static void on_reply(void *arg, const struct redisReply *r, int err);

/* EVALSHA (or EVAL once Redis said NOSCRIPT) of the call's keys and arguments. */
static int
send_call(struct mg_limit_redis_call *call, int64_t timeout_ms)
{
    const char *argv[9];
    size_t lens[9];
    int i, err;

    argv[0] = call->retried ? "EVAL" : "EVALSHA";
    argv[1] = call->retried ? script : mg_limit_redis_sha();
    lens[1] = call->retried ? sizeof(script) - 1 : 40;
    argv[2] = "2";
    argv[3] = call->keys[0];
    argv[4] = call->keys[1];
    for (i = 0; i < 4; i++) {
        argv[5 + i] = call->args[i];
    }
    for (i = 0; i < 9; i++) {
        if (i != 1) {
            lens[i] = strlen(argv[i]);
        }
    }
    call->op = mg_redis_command(call->conn, 9, argv, lens, timeout_ms, on_reply, call, &err);
    return call->op != NULL ? 0 : -1;
}

/* A settle's call is its own (heap) and has no callback. */
static void
finish(struct mg_limit_redis_call *call, int result, const struct mg_limit_info *info)
{
    call->op = NULL;
    if (call->done != NULL) {
        call->done(call->arg, result, info);
    } else {
        free(call);
    }
}

static int64_t
elem(const struct redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
}

static void
on_reply(void *arg, const struct redisReply *r, int err)
{
    struct mg_limit_redis_call *call = arg;
    struct mg_limit_info info;
    int64_t left = call->deadline_ms - mg_now_ms();

    if (err != MG_REDIS_OK) {
        mg_redis_log_limited("a shared limit decision failed (%s); decided locally or refused "
                             "as on_error says", err == MG_REDIS_ETIMEOUT ? "timeout" : "down");
        finish(call, MG_LIMIT_SHARED_UNAVAILABLE, NULL);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && !call->retried && strncmp(r->str, "NOSCRIPT", 8) == 0 &&
        left > 0) {
        call->retried = 1;
        if (send_call(call, left) != 0) {
            finish(call, MG_LIMIT_SHARED_UNAVAILABLE, NULL);
        }
        return;
    }
    if (call->done == NULL) {
        finish(call, 0, NULL);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 7) {
        mg_redis_log_limited("the limit script answered %s", r->type == REDIS_REPLY_ERROR ?
                             r->str : "something else than its 7 numbers");
        finish(call, MG_LIMIT_SHARED_UNAVAILABLE, NULL);
        return;
    }
    memset(&info, 0, sizeof(info));
    info.requests.limit = call->rpm;
    info.requests.remaining = call->rpm > 0 ? elem(r, 1) : 0;
    info.requests.reset_ms = call->rpm > 0 ? elem(r, 2) : 0;
    info.tokens.limit = call->tpm;
    info.tokens.remaining = call->tpm > 0 ? elem(r, 3) : 0;
    info.tokens.reset_ms = call->tpm > 0 ? elem(r, 4) : 0;
    info.retry_after_ms = elem(r, 0) ? 0 : (elem(r, 5) > 0 ? elem(r, 5) : 1);
    info.reserved = elem(r, 0) ? elem(r, 6) : 0;
    finish(call, elem(r, 0) ? MG_LIMIT_SHARED_ADMITTED : MG_LIMIT_SHARED_REFUSED, &info);
}

/* The call's keys and arguments; -1 when a key name is too long for them. */
static int
fill(struct mg_limit_redis_call *call, const char *prefix, const char *name, int64_t rpm,
     int64_t tpm, int64_t n, const char *mode)
{
    if ((size_t)snprintf(call->keys[0], MG_LIMIT_REDIS_KEY_MAX, "%srl:%s:r", prefix, name) >=
        MG_LIMIT_REDIS_KEY_MAX) {
        return -1;
    }
    snprintf(call->keys[1], MG_LIMIT_REDIS_KEY_MAX, "%srl:%s:t", prefix, name);
    snprintf(call->args[0], sizeof(call->args[0]), "%lld", (long long)rpm);
    snprintf(call->args[1], sizeof(call->args[1]), "%lld", (long long)tpm);
    snprintf(call->args[2], sizeof(call->args[2]), "%lld", (long long)n);
    snprintf(call->args[3], sizeof(call->args[3]), "%s", mode);
    call->rpm = rpm;
    call->tpm = tpm;
    call->retried = 0;
    return 0;
}

int
mg_limit_redis_admit(struct mg_limit_redis_call *call, struct mg_redis *conn,
                     const char *prefix, const char *name, int64_t rpm, int64_t tpm,
                     int64_t tokens, int64_t timeout_ms, mg_limit_redis_fn done, void *arg)
{
    int64_t n = 0;

    if (rpm > MG_LIMIT_MAX) {
        rpm = MG_LIMIT_MAX;
    }
    if (tpm > MG_LIMIT_MAX) {
        tpm = MG_LIMIT_MAX;
    }
    if (tpm > 0) {   /* as the local store: min(max(tokens, 1), capacity) */
        n = tokens < 1 ? 1 : tokens > tpm ? tpm : tokens;
    }
    call->conn = conn;
    call->done = done;
    call->arg = arg;
    call->deadline_ms = mg_now_ms() + timeout_ms;
    if (conn == NULL || !mg_redis_up(conn) ||
        fill(call, prefix, name, rpm, tpm, n, "a") != 0) {
        return -1;
    }
    return send_call(call, timeout_ms);
}

void
mg_limit_redis_cancel(struct mg_limit_redis_call *call)
{
    mg_redis_cancel(call->op);
    call->op = NULL;
}

void
mg_limit_redis_settle(struct mg_redis *conn, const char *prefix, const char *name,
                      int64_t tpm, int64_t reserved, int64_t used, int64_t timeout_ms)
{
    struct mg_limit_redis_call *call;

    if (tpm <= 0 || used == reserved || conn == NULL || !mg_redis_up(conn)) {
        return;
    }
    call = mg_calloc(1, sizeof(*call));
    call->conn = conn;
    call->deadline_ms = mg_now_ms() + timeout_ms;
    if (tpm > MG_LIMIT_MAX) {
        tpm = MG_LIMIT_MAX;
    }
    if (fill(call, prefix, name, 0, tpm, used - reserved, "s") != 0 ||
        send_call(call, timeout_ms) != 0) {
        free(call);
    }
}
