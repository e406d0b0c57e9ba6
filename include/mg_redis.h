/*
 * mg_redis — the gateway's own Redis client (SPEC "Shared state across instances"): one
 * pipelined connection on a libevent event loop, with hiredis used only for what it does well
 * (its reply reader and its command formatter). Names are resolved off the loop (evdns), every
 * command has its own deadline kept here, a lost connection is opened again with backoff
 * (100 ms doubling to 5 s), AUTH and SELECT are sent first on each connection; rediss:// is
 * TLS 1.2+ with the server verified against the system's CA store and its name. Nothing here
 * ever blocks the loop. A connection belongs to the thread of its event loop.
 *
 * The process-wide counters (up connections, errors by reason, command latency) are rendered
 * for /metrics by mg_redis_render().
 */
#ifndef MG_REDIS_H
#define MG_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mg_buf;
struct mg_redis;
struct mg_redis_op;
struct redisReply;

enum mg_redis_scheme { MG_REDIS_TCP, MG_REDIS_TLS, MG_REDIS_UNIX };

/* A parsed `shared.redis` URL. */
struct mg_redis_url {
    int  scheme;          /* enum mg_redis_scheme */
    char host[256];       /* TCP/TLS: a name or an address ([v6] without its brackets) */
    int  port;            /* default 6379 */
    char path[108];       /* unix: the socket's path */
    char user[128];       /* "" = none (AUTH with the password alone) */
    char pass[256];       /* "" = no AUTH */
    int  db;              /* SELECT when not 0 */
};

/*
 * Parses redis://[[user]:password@]host[:port][/db], rediss://... (TLS) or unix:///path[?db=N]
 * (user and password percent-decoded). MG_OK, or MG_ERR with the reason in err.
 */
int mg_redis_url_parse(const char *s, struct mg_redis_url *u, char *err, size_t errlen);

/* Errors a command's callback gets instead of a reply. */
enum mg_redis_err {
    MG_REDIS_OK = 0,
    MG_REDIS_EDOWN = 1,      /* no connection now (connecting failed, waiting to retry, closed) */
    MG_REDIS_ETIMEOUT = 2,   /* no reply within the command's deadline */
    MG_REDIS_EBUSY = 3       /* too many commands waiting on the connection */
};

/*
 * A command's answer: exactly once, unless mg_redis_cancel() came first. reply is NULL when err
 * is not MG_REDIS_OK; it is freed after the call (an error reply is REDIS_REPLY_ERROR, err 0).
 */
typedef void (*mg_redis_cb)(void *arg, const struct redisReply *reply, int err);

/* A connection to u on base; it connects at once (in the background). NULL on no memory. */
struct mg_redis *mg_redis_create(struct event_base *base, const struct mg_redis_url *u);

/* Closes and frees; commands still waiting get MG_REDIS_EDOWN first. NULL is a no-op. */
void mg_redis_destroy(struct mg_redis *c);

/*
 * Sends one command (argv of argc strings with their lengths), answered through cb within
 * timeout_ms. Returns its handle; NULL when the command failed at once (cb has then NOT been
 * called and *err says why: down, busy).
 */
struct mg_redis_op *mg_redis_command(struct mg_redis *c, int argc, const char **argv,
                                     const size_t *lens, int64_t timeout_ms, mg_redis_cb cb,
                                     void *arg, int *err);

/* The command's callback will not run (its reply, if one comes, is read and dropped). */
void mg_redis_cancel(struct mg_redis_op *op);

/* A message published on a subscriber's channel (payload of len bytes, NUL-ended). */
typedef void (*mg_redis_msg_fn)(void *arg, const char *payload, size_t len);

/*
 * A subscriber connection to u on base: SUBSCRIBE channel after AUTH/SELECT, on every
 * (re)connect; on_up(arg) once subscribed (each time: what was published while it was down is
 * lost, so the owner reads the state again), on_message for each message. It takes no commands.
 */
struct mg_redis *mg_redis_subscribe(struct event_base *base, const struct mg_redis_url *u,
                                    const char *channel, mg_redis_msg_fn on_message,
                                    void (*on_up)(void *arg), void *arg);

/* The calling thread's command connection (a worker's; NULL: none), for writers that the
 * request path reaches without a worker (the shared cooldowns). */
/*
 * Writes what is queued for c now instead of at the loop's next turn (plain connections; TLS
 * ones go with the loop): a write the client is about to be told about (a stored Response, its
 * deletion) reaches Redis before the client can ask another instance for it.
 */
void mg_redis_flush(struct mg_redis *c);

void mg_redis_set_current(struct mg_redis *c);
struct mg_redis *mg_redis_current(void);

/* 1 when the connection is up (connected, AUTH and SELECT answered). */
int mg_redis_up(const struct mg_redis *c);

/* 1 when the process has Redis connections and every one of them is up (status.json's shared). */
int mg_redis_all_up(void);

/*
 * The /metrics families: modelgate_shared_up (1 when every connection of the process is up),
 * _errors_total{reason}, _latency_seconds. Nothing before a first connection.
 */
void mg_redis_render(struct mg_buf *out);

/* Logs at most one line a minute for the whole process (Redis trouble repeats per request). */
void mg_redis_log_limited(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
