/*
 * floor — the libcurl floor: the smallest correct libevent + libcurl reverse proxy, set up for
 * speed, so that bench/run can show how close modelgate comes to what any gateway built on
 * evhttp and libcurl's multi interface can do. One thread, one event_base; every POST is sent
 * to UPSTREAM_URL + its path without the leading "/v1", and the upstream's status, Content-Type
 * and whole body are relayed. No routing, no header forwarding, no logging.
 *
 *   floor LISTEN_PORT UPSTREAM_URL      e.g. floor 19007 http://127.0.0.1:19001/v1
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>

#include "bench_curl.h"

#define PATHS_MAX 8               /* CURLU handles cached by path */
#define EXPECT_MIN (1024 * 1024)  /* bodies above this make curl send Expect: 100-continue */

struct xfer {
    CURL *easy;
    struct evhttp_request *req;   /* NULL when idle */
    struct xfer *next_free;
    struct xfer *next_all;
};

static struct {
    struct event_base *base;
    struct evhttp *http;
    CURLM *multi;
    struct event timer, sigterm, sigint;
    struct xfer *free, *all;
    struct curl_slist *hdr, *hdr_big;
    const char *upstream;
    struct {
        char *path;
        CURLU *u;
    } paths[PATHS_MAX];
    int npaths;
    int adding;   /* inside curl_multi_add_handle() */
} g;

static size_t
on_body(char *d, size_t s, size_t n, void *arg)
{
    struct xfer *x = arg;

    return evbuffer_add(evhttp_request_get_output_buffer(x->req), d, s * n) == 0 ? s * n : 0;
}

static void
check_done(void)
{
    struct xfer *x;
    CURLMsg *m;
    char *ct;
    long code;
    int left;

    while ((m = curl_multi_info_read(g.multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        code = 0;
        ct = NULL;
        if (m->data.result == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
        }
        if (code == 0) {
            evbuffer_drain(evhttp_request_get_output_buffer(x->req), (size_t)-1);
            code = 502;
            ct = NULL;
        }
        if (ct != NULL) {
            evhttp_add_header(evhttp_request_get_output_headers(x->req), "Content-Type", ct);
        }
        curl_multi_remove_handle(g.multi, x->easy);   /* m is invalid from here */
        evhttp_send_reply(x->req, (int)code, NULL, NULL);
        x->req = NULL;
        x->next_free = g.free;
        g.free = x;
    }
}

static void
on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    int running;

    curl_multi_socket_action(g.multi, fd, ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                             ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0), &running);
    check_done();
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    int running;

    curl_multi_socket_action(g.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

/* One event per curl socket, made once and modified in place. */
static int
multi_sock(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct event *ev = sockp;
    short kind;

    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL) {
            event_del(ev);
            free(ev);
            curl_multi_assign(g.multi, s, NULL);
        }
        return 0;
    }
    kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    if (ev == NULL) {
        if ((ev = malloc(sizeof(*ev))) == NULL) {
            return -1;
        }
        curl_multi_assign(g.multi, s, ev);
    } else {
        event_del(ev);
    }
    event_assign(ev, g.base, s, kind, on_sock_event, NULL);
    return event_add(ev, NULL) == 0 ? 0 : -1;
}

static int
multi_timer(CURLM *m, long ms, void *arg)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (ms < 0) {
        return evtimer_del(&g.timer);
    }
    if (ms == 0 && g.adding) {
        /* a new transfer: started in this turn of the loop, not after a zero-timeout poll */
        evtimer_del(&g.timer);
        event_active(&g.timer, EV_TIMEOUT, 1);
        return 0;
    }
    return evtimer_add(&g.timer, &tv);
}

/*
 * The CURLU of UPSTREAM_URL + path, parsed once. When the cache is full (or curl cannot parse
 * the URL) it returns NULL and the URL in *url, to free, for CURLOPT_URL.
 */
static CURLU *
url_for(const char *path, char **url)
{
    CURLU *u;
    int i;

    *url = NULL;
    for (i = 0; i < g.npaths; i++) {
        if (strcmp(g.paths[i].path, path) == 0) {
            return g.paths[i].u;
        }
    }
    if (asprintf(url, "%s%s", g.upstream, path) < 0) {
        *url = NULL;
        return NULL;
    }
    if (g.npaths == PATHS_MAX || (u = curl_url()) == NULL) {
        return NULL;
    }
    if (curl_url_set(u, CURLUPART_URL, *url, 0) != CURLUE_OK ||
        (g.paths[g.npaths].path = strdup(path)) == NULL) {
        curl_url_cleanup(u);
        return NULL;
    }
    free(*url);
    *url = NULL;
    g.paths[g.npaths++].u = u;
    return u;
}

static struct xfer *
xfer_get(void)
{
    struct xfer *x = g.free;

    if (x != NULL) {
        g.free = x->next_free;
        return x;
    }
    if ((x = calloc(1, sizeof(*x))) == NULL || (x->easy = curl_easy_init()) == NULL) {
        free(x);
        return NULL;
    }
    x->next_all = g.all;
    g.all = x;
    MG_BENCH_SETOPT(x->easy, CURLOPT_PRIVATE, x);
    MG_BENCH_SETOPT(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    MG_BENCH_SETOPT(x->easy, CURLOPT_WRITEDATA, x);
    MG_BENCH_SETOPT(x->easy, CURLOPT_NOSIGNAL, 1L);
    /* No proxy, and no getenv of http_proxy and no_proxy on each request: both set, empty. */
    MG_BENCH_SETOPT(x->easy, CURLOPT_PROXY, "");
    MG_BENCH_SETOPT(x->easy, CURLOPT_NOPROXY, "");
    MG_BENCH_SETOPT(x->easy, CURLOPT_TCP_NODELAY, 1L);
    MG_BENCH_SETOPT(x->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    return x;
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *path = evhttp_request_get_uri(req);
    char *body = (char *)evbuffer_pullup(in, -1);
    struct xfer *x;
    char *url;
    CURLU *u;
    CURLMcode rc;

    if ((x = xfer_get()) == NULL) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    if (strncmp(path, "/v1", 3) == 0) {
        path += 3;
    }
    u = url_for(path, &url);
    MG_BENCH_SETOPT(x->easy, CURLOPT_CURLU, u);   /* NULL: CURLOPT_URL, which curl copies */
    if (u == NULL) {
        MG_BENCH_SETOPT(x->easy, CURLOPT_URL, url != NULL ? url : "");
        free(url);
    }
    MG_BENCH_SETOPT(x->easy, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    MG_BENCH_SETOPT(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    MG_BENCH_SETOPT(x->easy, CURLOPT_HTTPHEADER, len > EXPECT_MIN ? g.hdr_big : g.hdr);
    x->req = req;
    g.adding = 1;
    rc = curl_multi_add_handle(g.multi, x->easy);
    g.adding = 0;
    if (rc != CURLM_OK) {
        x->req = NULL;
        x->next_free = g.free;
        g.free = x;
        evhttp_send_error(req, 502, NULL);
    }
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(g.base);
}

int
main(int argc, char **argv)
{
    struct evhttp_bound_socket *bound;
    struct event_config *cfg;
    struct xfer *x;
    int one = 1, i;

    if (argc != 3) {
        fprintf(stderr, "usage: floor LISTEN_PORT UPSTREAM_URL\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g.upstream = argv[2];
    /* epoll's changelist, as modelgate's workers use it */
    cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    g.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    g.http = evhttp_new(g.base);
    g.multi = curl_multi_init();
    /* "Accept:" keeps curl from adding its default Accept, as modelgate does for such clients */
    g.hdr = curl_slist_append(curl_slist_append(NULL, "Content-Type: application/json"),
                              "Accept:");
    g.hdr_big = curl_slist_append(curl_slist_append(curl_slist_append(NULL,
                                  "Content-Type: application/json"), "Accept:"), "Expect:");
    bound = evhttp_bind_socket_with_handle(g.http, "127.0.0.1", (ev_uint16_t)strtol(argv[1], NULL, 10));
    if (bound == NULL) {
        fprintf(stderr, "floor: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    /* Linux: accepted sockets inherit TCP_NODELAY from the listener. */
    setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    evhttp_set_allowed_methods(g.http, EVHTTP_REQ_POST);
    evhttp_set_gencb(g.http, on_request, NULL);
    MG_BENCH_MSETOPT(g.multi, CURLMOPT_SOCKETFUNCTION, multi_sock);
    MG_BENCH_MSETOPT(g.multi, CURLMOPT_TIMERFUNCTION, multi_timer);
    evtimer_assign(&g.timer, g.base, on_timer, NULL);
    evsignal_assign(&g.sigterm, g.base, SIGTERM, on_signal, NULL);
    evsignal_assign(&g.sigint, g.base, SIGINT, on_signal, NULL);
    evsignal_add(&g.sigterm, NULL);
    evsignal_add(&g.sigint, NULL);

    event_base_dispatch(g.base);

    /* Transfers in flight first (their bodies belong to requests evhttp_free frees). */
    while ((x = g.all) != NULL) {
        g.all = x->next_all;
        if (x->req != NULL) {
            curl_multi_remove_handle(g.multi, x->easy);
        }
        curl_easy_cleanup(x->easy);
        free(x);
    }
    evhttp_free(g.http);
    curl_multi_cleanup(g.multi);   /* closes the kept connections: CURL_POLL_REMOVEs */
    for (i = 0; i < g.npaths; i++) {
        free(g.paths[i].path);
        curl_url_cleanup(g.paths[i].u);
    }
    curl_slist_free_all(g.hdr);
    curl_slist_free_all(g.hdr_big);
    event_del(&g.timer);
    event_del(&g.sigterm);
    event_del(&g.sigint);
    event_base_free(g.base);
    curl_global_cleanup();
    return 0;
}
