/*
 * mg_front — the rules a request head must follow, checked before any body byte is read, and
 * the accept back-off. Requests are seen as libevent makes them through mg_evhook.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "mg_conf.h"
#include "mg_evhook.h"
#include "mg_front.h"
#include "mg_hdr.h"
#include "mg_log.h"
#include "mg_reply.h"
#include "mg_worker.h"

#define POLL_MS        1000    /* how often a request waiting for its head is looked at */
#define BACKOFF_MS     100     /* the listener rests this long when descriptors run out */
#define NSLOTS_MIN     64
#define ACCEPT_BATCH   1       /* connections a worker accepts in one turn of its loop (as nginx) */

/* A request whose head has not arrived yet: forgotten when it is complete, or freed. */
struct waiting {
    struct event           timer;
    struct evhttp_request *req;
    int64_t                since;   /* when its first byte was seen, 0 before */
};

/* This worker thread's state: open addressing over waiting requests, keyed by the request. */
static __thread struct mg_worker *tl_w;
static __thread struct waiting  **slots;
static __thread size_t            nslots, nused;
static __thread struct event      backoff;
static __thread int               resting;     /* the listener rests after a failed accept */
static __thread int64_t           last_emfile_log;
static __thread struct event      turn_end;    /* after a turn that accepted connections */
static __thread int               accepted;    /* connections accepted in this turn */


/* ---- the table of waiting requests -------------------------------------------------------- */

static size_t
slot_of(const struct evhttp_request *req, size_t n)
{
    uint64_t h = (uint64_t)(uintptr_t)req * 0x9E3779B97F4A7C15ull;

    return (size_t)(h >> 32) & (n - 1);
}

static void
table_put(struct waiting *wt)
{
    size_t i;

    if (2 * (nused + 1) > nslots) {
        struct waiting **old = slots;
        size_t n = nslots, k;
        nslots = nslots ? 2 * nslots : NSLOTS_MIN;
        slots = mg_calloc(nslots, sizeof(*slots));
        for (k = 0; k < n; k++) {
            if (old[k] != NULL) {
                for (i = slot_of(old[k]->req, nslots); slots[i]; i = (i + 1) & (nslots - 1)) {
                }
                slots[i] = old[k];
            }
        }
        free(old);
    }
    for (i = slot_of(wt->req, nslots); slots[i] != NULL; i = (i + 1) & (nslots - 1)) {
    }
    slots[i] = wt;
    nused++;
}

/* Removes and returns the entry of req, or NULL (backward-shift deletion keeps probes short). */
static struct waiting *
table_take(const struct evhttp_request *req)
{
    struct waiting *found;
    size_t i, j, k;

    if (nslots == 0) {
        return NULL;
    }
    for (i = slot_of(req, nslots); slots[i] != NULL && slots[i]->req != req;
         i = (i + 1) & (nslots - 1)) {
    }
    if ((found = slots[i]) == NULL) {
        return NULL;
    }
    slots[i] = NULL;
    nused--;
    for (j = (i + 1) & (nslots - 1); slots[j] != NULL; j = (j + 1) & (nslots - 1)) {
        k = slot_of(slots[j]->req, nslots);
        /* move slots[j] into the hole when its home is not between the hole and j */
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            slots[i] = slots[j];
            slots[j] = NULL;
            i = j;
        }
    }
    return found;
}

static void
forget(const struct evhttp_request *req)
{
    struct waiting *wt = table_take(req);

    if (wt != NULL) {
        event_del(&wt->timer);
        free(wt);
    }
}

/* ---- refusing a head ---------------------------------------------------------------------- */

static const char *
status_text(int status)
{
    return status == 413 ? "Payload Too Large" : "Bad Request";
}

/*
 * Answers req now, on its socket, and has libevent drop the connection (the caller returns -1
 * from the header callback; libevent frees the request with the connection).
 */
static int
refuse(struct evhttp_request *req, int status, const char *code, const char *msg)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct mg_buf body, all;

    mg_buf_init(&body, 4096);
    mg_buf_init(&all, 8192);
    mg_reply_error_body(&body, req, status, code, NULL, msg);
    mg_buf_printf(&all, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status, status_text(status),
                  body.len, body.data);
    mg_reply_account_local(tl_w, req, status, mg_now_us(), NULL, NULL);
    mg_reply_linger(tl_w->base, bufferevent_getfd(evhttp_connection_get_bufferevent(evcon)),
                    all.data, all.len);
    mg_buf_deinit(&body);
    mg_buf_deinit(&all);
    return -1;
}

/* The rules of SPEC's "Front end" on a complete head; 0 to go on, -1 once refused. */
static int
check_head(struct evhttp_request *req, void *arg)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *uri = evhttp_request_get_uri(req), *te = NULL;
    struct mg_hdr_cl cl = {0, 0};
    struct evkeyval *kv;
    char msg[160];

    forget(req);   /* the head is complete: no deadline any more */
    if (uri == NULL || !mg_hdr_target_ok(uri, strlen(uri))) {
        return refuse(req, 400, "bad_request", "The request target holds bytes outside "
                      "printable ASCII");
    }
    TAILQ_FOREACH(kv, in, next) {
        if (!mg_hdr_name_ok(kv->key, strlen(kv->key)) ||
            !mg_hdr_value_ok(kv->value, strlen(kv->value))) {
            return refuse(req, 400, "bad_request", "A header name is not a token, or a header "
                          "value holds a control character");
        }
        if (mg_hdr_eq(kv->key, "content-length") &&
            mg_hdr_cl_add(&cl, kv->value, strlen(kv->value)) != MG_OK) {
            return refuse(req, 400, "bad_request", "Content-Length must be digits, and one value");
        }
        if (mg_hdr_eq(kv->key, "transfer-encoding")) {
            if (te != NULL || !mg_hdr_transfer_encoding_ok(kv->value, strlen(kv->value))) {
                return refuse(req, 400, "bad_request", "Transfer-Encoding must be chunked");
            }
            te = kv->value;
        }
    }
    if (te != NULL && cl.seen) {
        return refuse(req, 400, "bad_request", "Content-Length and Transfer-Encoding together");
    }
    if (req->major == 1 && req->minor == 1 && evhttp_find_header(in, "host") == NULL) {
        return refuse(req, 400, "bad_request", "An HTTP/1.1 request needs a Host header");
    }
    if (cl.seen && cl.value > tl_w->conf->max_body_size) {
        snprintf(msg, sizeof(msg), "The request body (%llu bytes) is larger than this gateway "
                 "accepts (%llu bytes)", (unsigned long long)cl.value,
                 (unsigned long long)tl_w->conf->max_body_size);
        return refuse(req, 413, "request_too_large", msg);
    }
    return 0;
}

/* ---- the header deadline ------------------------------------------------------------------ */

static void
poll_head(evutil_socket_t fd, short what, void *arg)
{
    struct waiting *wt = arg;
    struct evhttp_request *req = wt->req;
    struct evhttp_connection *evcon = req->evcon;
    struct timeval tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};
    int64_t now = mg_now_ms();

    if (evcon == NULL) {
        forget(req);   /* not tied to a connection: nothing to watch */
        return;
    }
    /* idle between two requests (keep-alive): libevent's own timeout is keepalive_timeout */
    if (req->uri == NULL &&
        evbuffer_get_length(bufferevent_get_input(evhttp_connection_get_bufferevent(evcon))) == 0 &&
        wt->since == 0) {
        evtimer_add(&wt->timer, &tv);
        return;
    }
    if (wt->since == 0) {
        wt->since = now;   /* seen started now; it may have started up to POLL_MS earlier */
    }
    if (now - wt->since + POLL_MS <= tl_w->conf->header_timeout_ms) {
        evtimer_add(&wt->timer, &tv);
        return;
    }
    mg_log_info("closing a connection whose request head took over %lld ms",
                (long long)tl_w->conf->header_timeout_ms);
    evhttp_connection_free(evcon);   /* frees req, and so wt (evhttp_request_free below) */
}

/* A new request of this worker: the head check, and the header deadline. */
static void
on_new_request(struct evhttp_request *req)
{
    struct timeval tv = {POLL_MS / 1000, (POLL_MS % 1000) * 1000};
    struct waiting *wt;

    evhttp_request_set_header_cb(req, check_head);
    wt = mg_calloc(1, sizeof(*wt));
    wt->req = req;
    evtimer_assign(&wt->timer, tl_w->base, poll_head, wt);
    evtimer_add(&wt->timer, &tv);
    table_put(wt);
}

/* A request freed while waiting for its head (closed, timed out) takes its entry with it. */
static void
on_free_request(struct evhttp_request *req)
{
    forget(req);
}

/* ---- the listener ------------------------------------------------------------------------- */

static struct evconnlistener *
listener(void)
{
    return tl_w != NULL && tl_w->bound != NULL ? evhttp_bound_socket_get_listener(tl_w->bound)
                                               : NULL;
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    struct evconnlistener *lev = listener();

    resting = 0;
    if (lev != NULL) {
        evconnlistener_enable(lev);
    }
}

/*
 * The end of a turn of the loop in which connections were accepted (it runs after every event
 * that was ready in that turn): the count starts again and the listener accepts again.
 */
static void
on_turn_end(evutil_socket_t fd, short what, void *arg)
{
    struct evconnlistener *lev = listener();

    accepted = 0;
    if (lev != NULL && !resting) {
        evconnlistener_enable(lev);
    }
}

/*
 * Every connection evhttp accepts gets its bufferevent here (as libevent would make it). libevent's
 * listener accepts until the queue is empty; a worker takes ACCEPT_BATCH connections a turn and
 * pauses the listener until the turn's other ready events have run. A burst of new connections
 * (a thousand streams starting at once) is then taken in turns with the requests already
 * accepted, which reach their backends meanwhile, rather than all accepted first and all served
 * after, as nginx does (multi_accept off). Measured on that burst (docs/benchmarks.md): the
 * median stream's first content comes 70-90 ms sooner, the last ones about as late as before,
 * and events of the streams already running wait behind the set-up of the new ones (chunk
 * lateness p99 +10-15 ms).
 */
static struct bufferevent *
new_connection(struct event_base *base, void *arg)
{
    struct evconnlistener *lev;

    if (accepted++ == 0) {
        event_active(&turn_end, EV_TIMEOUT, 1);
    }
    if (accepted == ACCEPT_BATCH && (lev = listener()) != NULL) {
        evconnlistener_disable(lev);
    }
    return bufferevent_socket_new(base, -1, 0);
}

/* accept() failed for a reason other than a retriable one: rest instead of spinning. */
static void
accept_error(struct evconnlistener *lev, void *arg)
{
    struct timeval tv = {0, BACKOFF_MS * 1000};
    int err = EVUTIL_SOCKET_ERROR();
    int64_t now = mg_now_ms();

    if (now - last_emfile_log >= 10000) {
        last_emfile_log = now;
        mg_log_warn("worker %d: accept failed (%s); pausing the listener for %d ms (logged at "
                    "most every 10 s)", tl_w->id, strerror(err), BACKOFF_MS);
    }
    evconnlistener_disable(lev);
    resting = 1;
    evtimer_assign(&backoff, tl_w->base, resume_accepting, NULL);
    evtimer_add(&backoff, &tv);
}

void
mg_front_thread_start(struct mg_worker *w)
{
    struct evconnlistener *lev = w->bound ? evhttp_bound_socket_get_listener(w->bound) : NULL;

    tl_w = w;
    mg_evhook_set(on_new_request, on_free_request);
    if (lev != NULL) {
        evconnlistener_set_error_cb(lev, accept_error);
    }
    accepted = 0;
    resting = 0;
    event_assign(&turn_end, w->base, -1, 0, on_turn_end, NULL);
    evhttp_set_bevcb(w->http, new_connection, NULL);
}

void
mg_front_thread_stop(void)
{
    size_t i;

    mg_evhook_set(NULL, NULL);
    for (i = 0; i < nslots; i++) {
        if (slots[i] != NULL) {
            event_del(&slots[i]->timer);
            free(slots[i]);
        }
    }
    free(slots);
    slots = NULL;
    nslots = nused = 0;
    if (tl_w != NULL && evtimer_initialized(&backoff)) {
        evtimer_del(&backoff);
    }
    if (tl_w != NULL) {
        event_del(&turn_end);
    }
    mg_reply_linger_stop();
    tl_w = NULL;
}

void
mg_front_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    mg_log_info("open file limit: %llu descriptors", (unsigned long long)rl.rlim_cur);
}
