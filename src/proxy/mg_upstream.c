/*
 * mg_upstream — curl multi on libevent (the pattern of curl's hiperfifo.c): curl tells us which
 * sockets to watch and when to wake it; we call curl_multi_socket_action() and then collect
 * finished transfers.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_log.h"
#include "mg_upstream.h"
#include "mg_util.h"

#define POOL_MAX 256
#define URLS_MAX 256     /* parsed URLs kept per worker */

struct mg_upstream {
    struct event_base *base;
    CURLM             *multi;
    struct event      *timer;
    int                running;
    int                adding;     /* inside curl_multi_add_handle() (see multi_timer_cb) */
    CURL              *pool[POOL_MAX];
    int                npool;
    struct {
        char *url;
        CURLU *h;
    }                  urls[URLS_MAX];   /* URLs parsed once, in the order first seen */
    int                nurls;
    const char        *ca_file;    /* $SSL_CERT_FILE */
    const char        *ca_dir;     /* $SSL_CERT_DIR */
};

struct sock {
    struct event       *ev;
    struct mg_upstream *up;
};

/* Takes a finished or cancelled transfer out of the multi. A refusal is logged: the handle then
 * stays in, and curl_multi_add_handle refuses its next use, which fails that attempt. */
static void
remove_handle(struct mg_upstream *up, CURL *easy)
{
    CURLMcode rc = curl_multi_remove_handle(up->multi, easy);

    if (rc != CURLM_OK) {
        mg_log_error("curl_multi_remove_handle: %s", curl_multi_strerror(rc));
    }
}

static void
check_done(struct mg_upstream *up)
{
    struct mg_upstream_xfer *xfer;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(up->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        xfer = NULL;
        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&xfer) != CURLE_OK) {
            mg_log_error("curl_easy_getinfo CURLINFO_PRIVATE failed: a transfer is lost");
        }
        remove_handle(up, easy);
        if (xfer != NULL) {
            xfer->done(xfer->arg, result);
        }
    }
}

static void
event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mg_upstream *up = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    CURLMcode rc;

    rc = curl_multi_socket_action(up->multi, fd, action, &up->running);
    if (rc != CURLM_OK) {
        mg_log_error("curl_multi_socket_action: %s", curl_multi_strerror(rc));
    }
    check_done(up);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mg_upstream *up = arg;
    CURLMcode rc;

    rc = curl_multi_socket_action(up->multi, CURL_SOCKET_TIMEOUT, 0, &up->running);
    if (rc != CURLM_OK) {
        mg_log_error("curl_multi_socket_action: %s", curl_multi_strerror(rc));
    }
    check_done(up);
}

static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct mg_upstream *up = arg;
    struct timeval tv;

    if (timeout_ms < 0) {
        evtimer_del(up->timer);
        return 0;
    }
    if (timeout_ms == 0 && up->adding) {
        /*
         * A new transfer, to be started at once: run it in this turn of the loop, after the
         * callback that is adding it, rather than after a zero-timeout poll of every socket
         * (one epoll_wait and one loop iteration a request). Only for adds: a zero timeout that
         * curl asks from inside its own run waits for the next turn, so that a curl that keeps
         * asking cannot keep the loop from its sockets.
         */
        evtimer_del(up->timer);
        event_active(up->timer, EV_TIMEOUT, 1);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(up->timer, &tv) == 0 ? 0 : -1;
}

static int
multi_sock_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct mg_upstream *up = arg;
    struct sock *sk = sockp;
    short kind;

    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            event_free(sk->ev);
            free(sk);
            if (curl_multi_assign(up->multi, s, NULL) != CURLM_OK) {
                mg_log_error("curl_multi_assign: socket %d is unknown to curl", (int)s);
            }
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (sk == NULL) {
        sk = mg_calloc(1, sizeof(*sk));
        sk->up = up;
        sk->ev = event_new(up->base, s, kind, event_cb, up);
        if (sk->ev == NULL) {
            free(sk);
            return -1;
        }
        if (curl_multi_assign(up->multi, s, sk) != CURLM_OK) {
            /* curl could not give sk back with the socket's next change: fail the transfer */
            mg_log_error("curl_multi_assign: socket %d is unknown to curl", (int)s);
            event_free(sk->ev);
            free(sk);
            return -1;
        }
    } else {
        event_del(sk->ev);
        event_assign(sk->ev, up->base, s, kind, event_cb, up);
    }
    return event_add(sk->ev, NULL) == 0 ? 0 : -1;
}

/*
 * The options a handle is created with are the same for every transfer: one that curl refuses
 * (an old libcurl, a build without a feature) would break every request, so it stops the process
 * with the option's name rather than leave a worker that cannot proxy.
 */
static void
must_multi(CURLMcode rc, const char *opt)
{
    if (rc != CURLM_OK) {
        mg_log_error("curl_multi_setopt %s: %s", opt, curl_multi_strerror(rc));
        abort();
    }
}

static void
must_easy(CURLcode rc, const char *opt)
{
    if (rc != CURLE_OK) {
        mg_log_error("curl_easy_setopt %s: %s", opt, curl_easy_strerror(rc));
        abort();
    }
}

#define MUST_MULTI(m, opt, val) must_multi(curl_multi_setopt(m, opt, val), #opt)
#define MUST_EASY(e, opt, val)  must_easy(curl_easy_setopt(e, opt, val), #opt)

struct mg_upstream *
mg_upstream_create(struct event_base *base)
{
    struct mg_upstream *up = mg_calloc(1, sizeof(*up));

    up->base = base;
    up->ca_file = getenv("SSL_CERT_FILE");
    up->ca_dir = getenv("SSL_CERT_DIR");
    up->multi = curl_multi_init();
    up->timer = evtimer_new(base, timer_cb, up);
    if (up->multi == NULL || up->timer == NULL) {
        mg_log_error("cannot create the curl multi handle");
        abort();
    }
    MUST_MULTI(up->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
    MUST_MULTI(up->multi, CURLMOPT_SOCKETDATA, up);
    MUST_MULTI(up->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    MUST_MULTI(up->multi, CURLMOPT_TIMERDATA, up);
    /* Keep enough idle upstream connections for a busy worker; curl's default is 4 per handle. */
    MUST_MULTI(up->multi, CURLMOPT_MAXCONNECTS, 1024L);
    return up;
}

void
mg_upstream_destroy(struct mg_upstream *up)
{
    int i;

    if (up == NULL) {
        return;
    }
    for (i = 0; i < up->npool; i++) {
        curl_easy_cleanup(up->pool[i]);
    }
    for (i = 0; i < up->nurls; i++) {
        free(up->urls[i].url);
        curl_url_cleanup(up->urls[i].h);
    }
    curl_multi_cleanup(up->multi);
    event_free(up->timer);
    free(up);
}

CURLU *
mg_upstream_url(struct mg_upstream *up, const char *url)
{
    CURLU *h;
    int i;

    for (i = 0; i < up->nurls; i++) {
        if (strcmp(up->urls[i].url, url) == 0) {
            return up->urls[i].h;
        }
    }
    if (up->nurls == URLS_MAX) {
        return NULL;   /* full: the caller passes the string, parsed by curl each time */
    }
    h = curl_url();
    if (h == NULL || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(h);
        return NULL;
    }
    up->urls[up->nurls].url = mg_strdup(url);
    up->urls[up->nurls++].h = h;
    return h;
}

CURL *
mg_upstream_easy_get(struct mg_upstream *up)
{
    CURL *easy;

    if (up->npool > 0) {
        return up->pool[--up->npool];
    }
    if ((easy = curl_easy_init()) == NULL) {
        mg_log_error("curl_easy_init failed");
        abort();
    }
    MUST_EASY(easy, CURLOPT_PRIVATE, NULL);
    MUST_EASY(easy, CURLOPT_NOSIGNAL, 1L);
    MUST_EASY(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    /* OpenSSL's variables, so that a private CA (an internal vLLM, a test) can be trusted. */
    if (up->ca_file != NULL) {
        MUST_EASY(easy, CURLOPT_CAINFO, up->ca_file);
    }
    if (up->ca_dir != NULL) {
        MUST_EASY(easy, CURLOPT_CAPATH, up->ca_dir);
    }
    return easy;
}

void
mg_upstream_easy_put(struct mg_upstream *up, CURL *easy)
{
    if (easy == NULL) {
        return;
    }
    if (up->npool < POOL_MAX) {
        up->pool[up->npool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

int
mg_upstream_easy_fresh(CURL *easy)
{
    struct mg_upstream_xfer *x = NULL;

    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x) != CURLE_OK) {
        return 1;   /* setting the constant options again is always safe */
    }
    return x == NULL;
}

int
mg_upstream_start(struct mg_upstream *up, struct mg_upstream_xfer *xfer)
{
    CURLMcode rc;
    CURLcode erc;

    if ((erc = curl_easy_setopt(xfer->easy, CURLOPT_PRIVATE, xfer)) != CURLE_OK) {
        mg_log_error("curl_easy_setopt CURLOPT_PRIVATE: %s", curl_easy_strerror(erc));
        return MG_ERR;
    }
    up->adding = 1;
    rc = curl_multi_add_handle(up->multi, xfer->easy);
    up->adding = 0;
    if (rc != CURLM_OK) {
        mg_log_error("curl_multi_add_handle: %s", curl_multi_strerror(rc));
        return MG_ERR;
    }
    return MG_OK;
}

void
mg_upstream_cancel(struct mg_upstream *up, struct mg_upstream_xfer *xfer)
{
    if (xfer->easy == NULL) {
        return;
    }
    remove_handle(up, xfer->easy);
}

