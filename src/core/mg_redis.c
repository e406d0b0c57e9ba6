/*
 * mg_redis — one pipelined Redis connection on a libevent loop (include/mg_redis.h). Commands
 * are written as they come and their callbacks wait in a FIFO, in the order Redis answers; a
 * command past its deadline gets its timeout at once and stays in the FIFO, dead, until its
 * reply comes (and is dropped). One timer per connection serves every deadline and the backoff.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "mg_log.h"
#include "mg_redis.h"
#include "mg_util.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MS 2000          /* connect + AUTH/SELECT answered */
#define STALL_MS 5000            /* the oldest command unanswered this long: the link is dead */
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
};

/* ---- process-wide counters ------------------------------------------------------------------ */

static const char *const reasons[] = {"connect", "timeout", "error", "closed", "busy"};
enum { R_CONNECT, R_TIMEOUT, R_ERROR, R_CLOSED, R_BUSY, R_N };
static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
                                    0.5, 1};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

static atomic_int g_used;                 /* a connection was ever made: render the families */
static atomic_int g_up;                   /* connections up now */
static atomic_uint_fast64_t g_errors[R_N];
static atomic_uint_fast64_t g_lat[NLAT + 1];
static atomic_uint_fast64_t g_lat_sum_us;
static atomic_int_fast64_t g_last_log_ms = -60000;

void
mg_redis_log_limited(const char *fmt, ...)
{
    int64_t now = mg_now_ms(), last = atomic_load(&g_last_log_ms);
    char buf[512];
    va_list ap;

    if (now - last < 60000 || !atomic_compare_exchange_strong(&g_last_log_ms, &last, now)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mg_log_warn("shared state: %s (logged at most once a minute)", buf);
}

static void
count_error(int reason)
{
    atomic_fetch_add_explicit(&g_errors[reason], 1, memory_order_relaxed);
}

static void
count_latency(int64_t us)
{
    size_t i;

    for (i = 0; i < NLAT && (double)us / 1e6 > lat_bounds[i]; i++) {
    }
    atomic_fetch_add_explicit(&g_lat[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_lat_sum_us, (uint64_t)us, memory_order_relaxed);
}

void
mg_redis_render(struct mg_buf *out)
{
    char line[160];
    uint64_t cum = 0;
    size_t i;
    int n;

    if (!atomic_load(&g_used)) {
        return;
    }
    n = snprintf(line, sizeof(line), "# TYPE modelgate_shared_up gauge\nmodelgate_shared_up %d\n"
                 "# TYPE modelgate_shared_errors_total counter\n", atomic_load(&g_up) > 0);
    mg_buf_add(out, line, (size_t)n);
    for (i = 0; i < R_N; i++) {
        n = snprintf(line, sizeof(line), "modelgate_shared_errors_total{reason=\"%s\"} %llu\n",
                     reasons[i], (unsigned long long)atomic_load(&g_errors[i]));
        mg_buf_add(out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "# TYPE modelgate_shared_latency_seconds histogram\n");
    mg_buf_add(out, line, (size_t)n);
    for (i = 0; i <= NLAT; i++) {
        cum += atomic_load(&g_lat[i]);
        if (i < NLAT) {
            n = snprintf(line, sizeof(line),
                         "modelgate_shared_latency_seconds_bucket{le=\"%g\"} %llu\n",
                         lat_bounds[i], (unsigned long long)cum);
        } else {
            n = snprintf(line, sizeof(line),
                         "modelgate_shared_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                         (unsigned long long)cum);
        }
        mg_buf_add(out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "modelgate_shared_latency_seconds_sum %.6f\n"
                 "modelgate_shared_latency_seconds_count %llu\n",
                 (double)atomic_load(&g_lat_sum_us) / 1e6, (unsigned long long)cum);
    mg_buf_add(out, line, (size_t)n);
}

/* ---- URL ------------------------------------------------------------------------------------ */

/* Percent-decodes n bytes of in into out (size outlen); -1 when malformed or too long. */
static int
pct_decode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        int ch = (unsigned char)in[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= n) {
                return -1;
            }
            hi = mg_hexval(in[i + 1]);
            lo = hi < 0 ? -1 : mg_hexval(in[i + 2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= outlen) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

/* A decimal number of at most 5 digits, 0 to 65535, into *v; -1 otherwise. */
static int
parse_u16(const char *s, int *v)
{
    int n = 0, i;

    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5) {
            return -1;
        }
        n = n * 10 + (s[i] - '0');
    }
    if (i == 0 || n > 65535) {
        return -1;
    }
    *v = n;
    return 0;
}

static int
parse_db(const char *s, int *db)
{
    return parse_u16(s, db);
}

int
mg_redis_url_parse(const char *s, struct mg_redis_url *u, char *err, size_t errlen)
{
    const char *p, *at, *hostend, *slash, *colon;

    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (strncmp(s, "unix://", 7) == 0) {
        const char *q = strchr(s + 7, '?');
        size_t n = q != NULL ? (size_t)(q - (s + 7)) : strlen(s + 7);
        u->scheme = MG_REDIS_UNIX;
        if (n == 0 || s[7] != '/' || n >= sizeof(u->path)) {
            snprintf(err, errlen, "unix:// needs an absolute socket path (under %zu bytes)",
                     sizeof(u->path));
            return MG_ERR;
        }
        memcpy(u->path, s + 7, n);
        if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0)) {
            snprintf(err, errlen, "unix:// takes only ?db=N (0 to 65535)");
            return MG_ERR;
        }
        return MG_OK;
    }
    if (strncmp(s, "redis://", 8) == 0) {
        p = s + 8;
    } else if (strncmp(s, "rediss://", 9) == 0) {
        p = s + 9;
        u->scheme = MG_REDIS_TLS;
    } else {
        snprintf(err, errlen, "the URL must start with redis://, rediss:// or unix://");
        return MG_ERR;
    }
    slash = strchr(p, '/');
    at = memrchr(p, '@', slash != NULL ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {   /* redis://password@host, as redis-cli reads it */
            colon = p - 1;
        }
        if ((colon >= p && pct_decode(p, (size_t)(colon - p), u->user, sizeof(u->user)) != 0) ||
            pct_decode(colon + 1, (size_t)(at - colon - 1), u->pass, sizeof(u->pass)) != 0) {
            snprintf(err, errlen, "bad user or password (percent-encode reserved characters)");
            return MG_ERR;
        }
        p = at + 1;
    }
    hostend = slash != NULL ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (rb == NULL || rb - p - 1 <= 0 || (size_t)(rb - p - 1) >= sizeof(u->host)) {
            snprintf(err, errlen, "bad [IPv6] host");
            return MG_ERR;
        }
        memcpy(u->host, p + 1, (size_t)(rb - p - 1));
        colon = rb + 1 < hostend && rb[1] == ':' ? rb + 1 : NULL;
        if (colon == NULL && rb + 1 != hostend) {
            snprintf(err, errlen, "bad [IPv6] host");
            return MG_ERR;
        }
    } else {
        colon = memchr(p, ':', (size_t)(hostend - p));
        size_t n = (size_t)((colon != NULL ? colon : hostend) - p);
        if (n == 0 || n >= sizeof(u->host)) {
            snprintf(err, errlen, "the URL needs a host");
            return MG_ERR;
        }
        memcpy(u->host, p, n);
    }
    if (colon != NULL) {
        char port[8];
        int v;
        size_t n = (size_t)(hostend - colon - 1);
        if (n == 0 || n >= sizeof(port)) {
            snprintf(err, errlen, "bad port");
            return MG_ERR;
        }
        memcpy(port, colon + 1, n);
        port[n] = '\0';
        if (parse_u16(port, &v) != 0 || v < 1) {
            snprintf(err, errlen, "bad port \"%s\"", port);
            return MG_ERR;
        }
        u->port = v;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "bad database number \"%s\" (0 to 65535)", slash + 1);
        return MG_ERR;
    }
    return MG_OK;
}

/* ---- the connection ------------------------------------------------------------------------- */

static void arm_timer(struct mg_redis *c);
static void start_connect(struct mg_redis *c);

static void
set_state(struct mg_redis *c, int state)
{
    if (c->state == UP && state != UP) {
        atomic_fetch_sub(&g_up, 1);
    } else if (c->state != UP && state == UP) {
        atomic_fetch_add(&g_up, 1);
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
    count_error(reason);
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

    if (op == NULL) {
        freeReplyObject(r);
        link_down(c, R_ERROR, "a reply no command asked for");
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
            link_down(c, R_ERROR, why);
            return;
        }
        if (--c->handshake == 0) {
            set_state(c, UP);
            c->backoff_ms = BACKOFF_MIN_MS;
        }
    } else {
        count_latency(mg_now_us() - op->sent_us);
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
    struct evbuffer_iovec v[4];
    int i, n = evbuffer_peek(in, -1, NULL, v, 4);
    size_t total = 0;
    void *r;

    for (i = 0; i < n && i < 4; i++) {
        if (redisReaderFeed(c->reader, v[i].iov_base, v[i].iov_len) != REDIS_OK) {
            link_down(c, R_ERROR, "reply buffer");
            return;
        }
        total += v[i].iov_len;
    }
    evbuffer_drain(in, total);
    for (;;) {
        r = NULL;
        if (redisReaderGetReply(c->reader, &r) != REDIS_OK) {
            link_down(c, R_ERROR, "a reply that is not RESP");
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
        if (dnserr != 0) {
            snprintf(why, sizeof(why), "resolving: %s", evutil_gai_strerror(dnserr));
        } else {
            snprintf(why, sizeof(why), "%s", strerror(EVUTIL_SOCKET_ERROR()));
        }
        link_down(c, c->state == CONNECTING ? R_CONNECT : R_CLOSED, why);
    } else if (what & BEV_EVENT_EOF) {
        link_down(c, c->state == CONNECTING ? R_CONNECT : R_CLOSED, "closed by the server");
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

    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->reader = redisReaderCreate();
    if (c->bev == NULL || c->reader == NULL) {
        link_down(c, R_CONNECT, "out of memory");
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
        link_down(c, R_CONNECT, "cannot connect");
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
    if (c->handshake == 0) {
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
        link_down(c, R_CONNECT, "no answer within the connect deadline");
        return;
    }
    if (c->head != NULL && now >= c->head->sent_us + STALL_MS * 1000) {
        link_down(c, R_TIMEOUT, "a command unanswered for 5 s");
        return;
    }
    for (op = c->head; op != NULL; op = op->next) {
        if (op->cb != NULL && now >= op->deadline_us) {
            mg_redis_cb cb = op->cb;
            op->cb = NULL;
            count_error(R_TIMEOUT);
            cb(op->arg, NULL, MG_REDIS_ETIMEOUT);
        }
    }
    arm_timer(c);
}

struct mg_redis *
mg_redis_create(struct event_base *base, const struct mg_redis_url *u)
{
    struct mg_redis *c = mg_calloc(1, sizeof(*c));

    c->base = base;
    c->url = *u;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->state = DOWN;
    c->timer_at_us = INT64_MAX;
    c->timer = evtimer_new(base, on_timer, c);
    if (c->timer == NULL) {
        free(c);
        return NULL;
    }
    atomic_store(&g_used, 1);
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
    free(c);
}

struct mg_redis_op *
mg_redis_command(struct mg_redis *c, int argc, const char **argv, const size_t *lens,
                 int64_t timeout_ms, mg_redis_cb cb, void *arg, int *err)
{
    struct mg_redis_op *op;

    if (c == NULL || c->state == DOWN) {
        count_error(R_CONNECT);
        *err = MG_REDIS_EDOWN;
        return NULL;
    }
    if (c->nops >= QUEUE_MAX) {
        count_error(R_BUSY);
        *err = MG_REDIS_EBUSY;
        return NULL;
    }
    if (write_command(c, argc, argv, lens) != 0) {
        count_error(R_ERROR);
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
