/*
 * mg_redis — one pipelined Redis connection on a libevent loop (include/mg_redis.h). Commands
 * are written as they come and their callbacks wait in a FIFO, in the order Redis answers; a
 * command past its deadline gets its timeout at once and stays in the FIFO, dead, until its
 * reply comes (and is dropped). One timer per connection serves every deadline and the backoff.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/err.h>

#include "mg_log.h"
#include "mg_redis.h"
#include "mg_redis_int.h"
#include "mg_util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MS 2000          /* connect + AUTH/SELECT answered */
#define STALL_MS 5000            /* the oldest command unanswered this long: the link is dead */
#define SUB_IDLE_MS 5000         /* a subscriber silent this long sends a PING (a link that died
                                  * without a FIN or RST is then found within STALL_MS more) */
#define QUEUE_MAX 65536          /* commands waiting on one connection */

enum state { DOWN, CONNECTING, UP };

struct mg_redis_op {
    struct mg_redis_op *next;
    mg_redis_cb cb;              /* NULL: dead (timed out or cancelled) */
    void       *arg;
    int64_t     sent_us;
    int64_t     deadline_us;
    int         internal;        /* AUTH/SELECT of the handshake */
};

struct mg_redis {
    struct event_base  *base;
    struct mg_redis_url url;
    struct evdns_base  *dns;
    struct bufferevent *bev;
    redisReader        *reader;
    struct event       *timer;
    struct mg_redis_op *head, *tail;
    size_t              nops;
    int                 state;
    int                 handshake;   /* internal replies still awaited */
    int64_t             backoff_ms;
    int64_t             retry_at_us;
    int64_t             connect_deadline_us;
    int64_t             timer_at_us;    /* when the timer fires; INT64_MAX: not armed */
    /* a subscriber (mg_redis_subscribe): its channel, and where messages and (re)connects go */
    char               *channel;
    mg_redis_msg_fn     on_message;
    void              (*on_up)(void *arg);
    void               *sub_arg;
    int64_t             heard_us;    /* a subscriber's last bytes from Redis */
};

static _Thread_local struct mg_redis *t_current;

/* ---- the connection ------------------------------------------------------------------------- */

static void arm_timer(struct mg_redis *c);
static struct mg_redis *mg_redis_start(struct mg_redis *c, struct event_base *base,
                                       const struct mg_redis_url *u);
static void start_connect(struct mg_redis *c);

static void
set_state(struct mg_redis *c, int state)
{
    if (c->state == UP && state != UP) {
        mg_redis_count_up(-1);
    } else if (c->state != UP && state == UP) {
        mg_redis_count_up(1);
    }
    c->state = state;
}

/* Every waiting command fails with err (the connection is gone). */
static void
fail_all(struct mg_redis *c, int err)
{
    struct mg_redis_op *op;

    while ((op = c->head) != NULL) {
        c->head = op->next;
        c->nops--;
        if (op->cb != NULL) {
            mg_redis_cb cb = op->cb;
            op->cb = NULL;
            cb(op->arg, NULL, err);
        }
        free(op);
    }
    c->tail = NULL;
}

/* Drops the link and waits for the backoff before the next try. */
static void
link_down(struct mg_redis *c, int reason, const char *why)
{
    mg_redis_count_error(reason);
    mg_redis_log_limited("redis %s: %s; retrying in %lld ms",
                         c->url.scheme == MG_REDIS_UNIX ? c->url.path : c->url.host, why,
                         (long long)c->backoff_ms);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->reader != NULL) {
        redisReaderFree(c->reader);
        c->reader = NULL;
    }
    set_state(c, DOWN);
    c->retry_at_us = mg_now_us() + c->backoff_ms * 1000;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    fail_all(c, MG_REDIS_EDOWN);
    arm_timer(c);
}

static void
on_reply(struct mg_redis *c, redisReply *r)
{
    struct mg_redis_op *op = c->head;

    if (c->channel != NULL && c->state == UP && r->type == REDIS_REPLY_ARRAY &&
        r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "message") == 0) {   /* a subscriber's message, even while
                                                           * its keepalive PING waits */
        if (r->element[2]->type == REDIS_REPLY_STRING) {
            c->on_message(c->sub_arg, r->element[2]->str, r->element[2]->len);
        }
        freeReplyObject(r);
        return;
    }
    if (op == NULL && c->channel != NULL && c->state == UP) {   /* other pushes: not ours */
        freeReplyObject(r);
        return;
    }
    if (op == NULL) {
        freeReplyObject(r);
        link_down(c, MG_REDIS_R_ERROR, "a reply no command asked for");
        return;
    }
    c->head = op->next;
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->nops--;
    if (op->internal) {
        if (r->type == REDIS_REPLY_ERROR) {
            char why[300];
            snprintf(why, sizeof(why), "the handshake was refused: %.*s", (int)r->len, r->str);
            freeReplyObject(r);
            free(op);
            link_down(c, MG_REDIS_R_ERROR, why);
            return;
        }
        if (--c->handshake == 0) {
            set_state(c, UP);
            c->backoff_ms = BACKOFF_MIN_MS;
            if (c->on_up != NULL) {
                c->on_up(c->sub_arg);
            }
        }
    } else {
        mg_redis_count_latency(mg_now_us() - op->sent_us);
        if (op->cb != NULL) {
            op->cb(op->arg, r, MG_REDIS_OK);
        }
    }
    freeReplyObject(r);
    free(op);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct mg_redis *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[8];
    void *r;

    c->heard_us = mg_now_us();
    while (evbuffer_get_length(in) > 0) {   /* every chunk, not only the first few */
        int i, n = evbuffer_peek(in, -1, NULL, v, 8);
        size_t total = 0;
        for (i = 0; i < n && i < 8; i++) {
            if (redisReaderFeed(c->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
                link_down(c, MG_REDIS_R_ERROR, "reply buffer");
                return;
            }
            total += v[i].iov_len;
        }
        evbuffer_drain(in, total);
    }
    for (;;) {
        r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            link_down(c, MG_REDIS_R_ERROR, "a reply that is not RESP");
            return;
        }
        if (r == NULL) {
            break;
        }
        on_reply(c, r);
        if (c->reader == NULL) {   /* the link went down inside */
            return;
        }
    }
    arm_timer(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct mg_redis *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        int dnserr = bufferevent_socket_get_dns_error(bev);
        char why[200];
        unsigned long tlserr = c->url.scheme == MG_REDIS_TLS ? bufferevent_get_openssl_error(bev)
                                                              : 0;
        if (dnserr != 0) {
            snprintf(why, sizeof(why), "resolving: %s", evutil_gai_strerror(dnserr));
        } else if (tlserr != 0) {
            char e[160];
            ERR_error_string_n(tlserr, e, sizeof(e));
            snprintf(why, sizeof(why), "TLS: %s", e);
        } else {
            snprintf(why, sizeof(why), "%s", strerror(EVUTIL_SOCKET_ERROR()));
        }
        link_down(c, c->state == CONNECTING ? MG_REDIS_R_CONNECT : MG_REDIS_R_CLOSED, why);
    } else if (what & BEV_EVENT_EOF) {
        link_down(c, c->state == CONNECTING ? MG_REDIS_R_CONNECT : MG_REDIS_R_CLOSED,
                  "closed by the server");
    }
}

/* Queues op (the command's bytes already written) at the FIFO's end. */
static void
push(struct mg_redis *c, struct mg_redis_op *op)
{
    op->next = NULL;
    if (c->tail != NULL) {
        c->tail->next = op;
    } else {
        c->head = op;
    }
    c->tail = op;
    c->nops++;
}

static int
write_command(struct mg_redis *c, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    int rc;

    if (len < 0) {
        return -1;
    }
    rc = bufferevent_write(c->bev, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

static void
internal(struct mg_redis *c, int argc, const char **argv)
{
    size_t lens[3];
    int i;
    struct mg_redis_op *op = mg_calloc(1, sizeof(*op));

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    op->internal = 1;
    op->sent_us = mg_now_us();
    op->deadline_us = c->connect_deadline_us;
    if (write_command(c, argc, argv, lens) != 0) {
        free(op);
        return;
    }
    push(c, op);
    c->handshake++;
}

static void
start_connect(struct mg_redis *c)
{
    int rc;

    c->bev = c->url.scheme == MG_REDIS_TLS ? mg_redis_tls_bev(c->base, c->url.host)
             : bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->reader = redisReaderCreate();
    if (c->bev == NULL || c->reader == NULL) {
        link_down(c, MG_REDIS_R_CONNECT, c->url.scheme == MG_REDIS_TLS
                  ? "no TLS context (the system's CA store?) or out of memory" : "out of memory");
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    set_state(c, CONNECTING);
    c->connect_deadline_us = mg_now_us() + CONNECT_MS * 1000;
    if (c->url.scheme == MG_REDIS_UNIX) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof(sun));
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, c->url.path, strlen(c->url.path));
        rc = bufferevent_socket_connect(c->bev, (struct sockaddr *)&sun, sizeof(sun));
    } else {
        if (c->dns == NULL) {
            c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        }
        rc = bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC, c->url.host,
                                                 c->url.port);
    }
    if (c->bev == NULL) {   /* failed inside (the callback ran) */
        return;
    }
    if (rc != 0) {
        link_down(c, MG_REDIS_R_CONNECT, "cannot connect");
        return;
    }
    /* the handshake goes first on the wire: commands queued after it wait behind it */
    c->handshake = 0;
    if (c->url.pass[0] != '\0') {
        const char *auth_user[] = {"AUTH", c->url.user, c->url.pass};
        const char *auth[] = {"AUTH", c->url.pass};
        if (c->url.user[0] != '\0') {
            internal(c, 3, auth_user);
        } else {
            internal(c, 2, auth);
        }
    }
    if (c->url.db != 0) {
        char db[16];
        const char *sel[] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", c->url.db);
        internal(c, 2, sel);
    }
    if (c->channel != NULL) {   /* a subscriber is up once subscribed */
        const char *sub[] = {"SUBSCRIBE", c->channel};
        internal(c, 2, sub);
    } else if (c->handshake == 0) {
        const char *ping[] = {"PING"};
        internal(c, 1, ping);
    }
    arm_timer(c);
}

/* The earliest of: a live command's deadline, the handshake's, the stall limit, the retry. */
static void
arm_timer(struct mg_redis *c)
{
    int64_t at = INT64_MAX, now = mg_now_us();
    struct mg_redis_op *op;
    struct timeval tv;

    if (c->state == DOWN) {
        at = c->retry_at_us;
    } else {
        if (c->state == CONNECTING) {
            at = c->connect_deadline_us;
        }
        for (op = c->head; op != NULL; op = op->next) {
            if (op->cb != NULL && op->deadline_us < at) {
                at = op->deadline_us;
            }
        }
        if (c->head != NULL && c->head->sent_us + STALL_MS * 1000 < at) {
            at = c->head->sent_us + STALL_MS * 1000;
        }
        if (c->channel != NULL && c->state == UP && c->head == NULL &&
            c->heard_us + SUB_IDLE_MS * 1000 < at) {
            at = c->heard_us + SUB_IDLE_MS * 1000;
        }
    }
    c->timer_at_us = at;
    if (at == INT64_MAX) {
        event_del(c->timer);
        return;
    }
    at = at > now ? at - now : 0;
    tv.tv_sec = at / 1000000;
    tv.tv_usec = at % 1000000;
    event_add(c->timer, &tv);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_redis *c = arg;
    int64_t now = mg_now_us();
    struct mg_redis_op *op;

    if (c->state == DOWN) {
        if (now >= c->retry_at_us) {
            start_connect(c);
        } else {
            arm_timer(c);
        }
        return;
    }
    if (c->state == CONNECTING && now >= c->connect_deadline_us) {
        link_down(c, MG_REDIS_R_CONNECT, "no answer within the connect deadline");
        return;
    }
    if (c->head != NULL && now >= c->head->sent_us + STALL_MS * 1000) {
        link_down(c, MG_REDIS_R_TIMEOUT, c->channel != NULL ? "the subscriber's PING unanswered "
                  "for 5 s" : "a command unanswered for 5 s");
        return;
    }
    if (c->channel != NULL && c->state == UP && c->head == NULL &&
        now >= c->heard_us + SUB_IDLE_MS * 1000) {   /* silent: is the link still there? */
        const char *ping[] = {"PING"};
        size_t len = 4;
        struct mg_redis_op *po = mg_calloc(1, sizeof(*po));
        po->sent_us = now;
        po->deadline_us = now + STALL_MS * 1000;
        if (write_command(c, 1, ping, &len) != 0) {
            free(po);
            link_down(c, MG_REDIS_R_CLOSED, "cannot write the subscriber's PING");
            return;
        }
        push(c, po);
    }
    for (op = c->head; op != NULL; op = op->next) {
        if (op->cb != NULL && now >= op->deadline_us) {
            mg_redis_cb cb = op->cb;
            op->cb = NULL;
            mg_redis_count_error(MG_REDIS_R_TIMEOUT);
            cb(op->arg, NULL, MG_REDIS_ETIMEOUT);
        }
    }
    arm_timer(c);
}

struct mg_redis *
mg_redis_subscribe(struct event_base *base, const struct mg_redis_url *u, const char *channel,
                   mg_redis_msg_fn on_message, void (*on_up)(void *arg), void *arg)
{
    struct mg_redis *c = mg_calloc(1, sizeof(*c));

    c->channel = mg_strdup(channel);
    c->on_message = on_message;
    c->on_up = on_up;
    c->sub_arg = arg;
    return mg_redis_start(c, base, u);
}

struct mg_redis *
mg_redis_create(struct event_base *base, const struct mg_redis_url *u)
{
    return mg_redis_start(mg_calloc(1, sizeof(struct mg_redis)), base, u);
}

void
mg_redis_flush(struct mg_redis *c)
{
    if (c != NULL && c->state == UP && c->bev != NULL && c->url.scheme != MG_REDIS_TLS) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        while (evbuffer_get_length(out) > 0 &&
               evbuffer_write(out, bufferevent_getfd(c->bev)) > 0) {
        }   /* what the kernel did not take goes with the loop, as before */
    }
}

void
mg_redis_set_current(struct mg_redis *c)
{
    t_current = c;
}

struct mg_redis *
mg_redis_current(void)
{
    return t_current;
}

static struct mg_redis *
mg_redis_start(struct mg_redis *c, struct event_base *base, const struct mg_redis_url *u)
{

    c->base = base;
    c->url = *u;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->state = DOWN;
    c->timer_at_us = INT64_MAX;
    c->timer = evtimer_new(base, on_timer, c);
    if (c->timer == NULL) {
        free(c->channel);
        free(c);
        return NULL;
    }
    mg_redis_count_conn(1);
    start_connect(c);
    return c;
}

void
mg_redis_destroy(struct mg_redis *c)
{
    if (c == NULL) {
        return;
    }
    set_state(c, DOWN);
    fail_all(c, MG_REDIS_EDOWN);   /* those still waiting decide without Redis */
    mg_redis_count_conn(-1);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
    }
    if (c->reader != NULL) {
        redisReaderFree(c->reader);
    }
    if (c->dns != NULL) {
        evdns_base_free(c->dns, 0);
    }
    event_free(c->timer);
    free(c->channel);
    free(c);
}

struct mg_redis_op *
mg_redis_command(struct mg_redis *c, int argc, const char **argv, const size_t *lens,
                 int64_t timeout_ms, mg_redis_cb cb, void *arg, int *err)
{
    struct mg_redis_op *op;

    if (c == NULL || c->state == DOWN) {
        mg_redis_count_error(MG_REDIS_R_CONNECT);
        *err = MG_REDIS_EDOWN;
        return NULL;
    }
    if (c->nops >= QUEUE_MAX) {
        mg_redis_count_error(MG_REDIS_R_BUSY);
        *err = MG_REDIS_EBUSY;
        return NULL;
    }
    if (write_command(c, argc, argv, lens) != 0) {
        mg_redis_count_error(MG_REDIS_R_ERROR);
        *err = MG_REDIS_EDOWN;
        return NULL;
    }
    op = mg_calloc(1, sizeof(*op));
    op->cb = cb;
    op->arg = arg;
    op->sent_us = mg_now_us();
    op->deadline_us = op->sent_us + timeout_ms * 1000;
    push(c, op);
    /* only an earlier deadline moves the timer (commands of one timeout come in order) */
    if (op->deadline_us < c->timer_at_us) {
        arm_timer(c);
    }
    *err = MG_REDIS_OK;
    return op;
}

void
mg_redis_cancel(struct mg_redis_op *op)
{
    if (op != NULL) {
        op->cb = NULL;
    }
}

int
mg_redis_up(const struct mg_redis *c)
{
    return c != NULL && c->state == UP;
}
