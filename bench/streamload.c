/*
 * streamload — N concurrent streaming chat completions against one address; reports time to
 * first byte and how late each event arrives.
 *
 *   streamload HOST PORT N CHUNKS GAP_MS MODEL PATH     ($BENCH_KEY: sent as a Bearer key)
 *
 * Every stream asks fakeai for CHUNKS content events GAP_MS apart, each stamped with the
 * CLOCK_MONOTONIC time fakeai sent it (x-fake-stamp). Lateness of an event = its arrival here
 * minus that stamp: the one-way time through whatever sits between (nothing, nginx, modelgate)
 * on the same clock. Time to first content (TTFC): request sent -> first content event, the figure
 * that compares proxies whatever they do with the role-only chunk before it. Prints one line of
 * key=value pairs.
 *
 * With STREAMLOAD_STALL=SECONDS the clients never read (a 4 KiB receive buffer, 2 KB events): after
 * SECONDS it prints the resident memory of the process STREAMLOAD_PID (the proxy) and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct stream {
    struct bufferevent *bev;
    double              t_start;
    double              t_first;
    double              t_content;   /* the first content event arrived */
    int                 events;
    int                 header_done;
    int                 done;
    char                tail[4];
    char                ev[2048];   /* the event being read */
    size_t              evlen;
};

static struct event_base *base;
static int n_streams, chunks, gap_ms, finished, failed;
static double *ttfb, *ttfc, *late;
static size_t nttfb, nttfc, nlate, cap_late;

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
    if (n == 0) {
        return -1;
    }
    qsort(v, n, sizeof(double), cmp);
    return v[(size_t)((double)(n - 1) * p)];
}

static void
finish(struct stream *s, int ok)
{
    if (s->done) {
        return;
    }
    s->done = 1;
    finished++;
    failed += !ok;
    bufferevent_free(s->bev);
    s->bev = NULL;
    if (finished == n_streams) {
        event_base_loopexit(base, NULL);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    double t = now_ms();
    size_t len = evbuffer_get_length(in), i;
    unsigned char *p = evbuffer_pullup(in, -1);

    for (i = 0; i < len; i++) {
        char c = (char)p[i];
        s->tail[0] = s->tail[1];
        s->tail[1] = s->tail[2];
        s->tail[2] = s->tail[3];
        s->tail[3] = c;
        if (!s->header_done) {
            if (memcmp(s->tail, "\r\n\r\n", 4) == 0) {
                s->header_done = 1;
                memset(s->tail, 0, 4);
            }
            continue;
        }
        if (s->t_first == 0) {
            s->t_first = t;
        }
        if (s->evlen < sizeof(s->ev) - 1) {
            s->ev[s->evlen++] = c;
        }
        if (s->tail[2] == '\n' && s->tail[3] == '\n') {
            char *ts;
            s->ev[s->evlen] = '\0';
            ts = strstr(s->ev, "ts:");
            if (ts != NULL && nlate < cap_late) {
                late[nlate++] = t - strtod(ts + 3, NULL) / 1000.0;
            }
            if (ts != NULL && s->t_content == 0) {
                s->t_content = t;
                ttfc[nttfc++] = t - s->t_start;
            }
            s->evlen = 0;
            /* events: role, chunks content, finish, [DONE] */
            s->events++;
            if (s->events == chunks + 3) {   /* role + chunks + finish + [DONE] */
                ttfb[nttfb++] = s->t_first - s->t_start;
                evbuffer_drain(in, len);
                finish(s, 1);
                return;
            }
        }
    }
    evbuffer_drain(in, len);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        finish(arg, 0);
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct stream *st;
    const char *model;
    char req[1024], body[256];
    int i, stall;

    if (argc != 8) {
        fprintf(stderr, "usage: streamload HOST PORT N CHUNKS GAP_MS MODEL PATH\n");
        return 2;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, argv[1], &a.sin_addr);
    a.sin_port = htons((uint16_t)strtol(argv[2], NULL, 10));
    n_streams = (int)strtol(argv[3], NULL, 10);
    chunks = (int)strtol(argv[4], NULL, 10);
    gap_ms = (int)strtol(argv[5], NULL, 10);
    model = argv[6];
    snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                                 "\"content\":\"hi\"}]}", model);
    stall = getenv("STREAMLOAD_STALL") ? (int)strtol(getenv("STREAMLOAD_STALL"), NULL, 10) : 0;
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
             "x-fake-chunks: %d\r\nx-fake-chunk-gap-ms: %d\r\nx-fake-stamp: 1\r\n%s"
             "%s%s%sContent-Length: %zu\r\n\r\n%s",
             argv[7], chunks, gap_ms, stall ? "x-fake-content-bytes: 2000\r\n" : "",
             getenv("BENCH_KEY") ? "Authorization: Bearer " : "",
             getenv("BENCH_KEY") ? getenv("BENCH_KEY") : "", getenv("BENCH_KEY") ? "\r\n" : "",
             strlen(body), body);
    base = event_base_new();
    st = calloc((size_t)n_streams, sizeof(*st));
    ttfb = calloc((size_t)n_streams, sizeof(double));
    ttfc = calloc((size_t)n_streams, sizeof(double));
    cap_late = (size_t)n_streams * (size_t)chunks;
    late = calloc(cap_late, sizeof(double));
    for (i = 0; i < n_streams; i++) {
        int one = 1, small = 4096, fd = -1;
        if (stall) {   /* a client that never reads: a small window, no read event */
            fd = socket(AF_INET, SOCK_STREAM, 0);
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
            evutil_make_socket_nonblocking(fd);
        }
        st[i].bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(st[i].bev, stall ? NULL : on_read, NULL, on_event, &st[i]);
        if (!stall) {
            bufferevent_enable(st[i].bev, EV_READ);
        }
        st[i].t_start = now_ms();
        if (bufferevent_socket_connect(st[i].bev, (struct sockaddr *)&a, sizeof(a)) != 0) {
            finish(&st[i], 0);
            continue;
        }
        setsockopt(bufferevent_getfd(st[i].bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bufferevent_write(st[i].bev, req, strlen(req));
    }
    {
        struct timeval limit = {stall ? stall : 60, 0};
        event_base_loopexit(base, &limit);
    }
    event_base_dispatch(base);
    if (stall) {
        char path[64], line[256];
        long kb = -1;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%s/status",
                 getenv("STREAMLOAD_PID") ? getenv("STREAMLOAD_PID") : "self");
        if ((f = fopen(path, "r")) != NULL) {
            while (fgets(line, sizeof(line), f) != NULL) {
                if (strncmp(line, "VmRSS:", 6) == 0) {
                    kb = strtol(line + 6, NULL, 10);
                }
            }
            fclose(f);
        }
        printf("stalled=%d failed=%d proxy_rss_kb=%ld\n", n_streams, failed, kb);
        return 0;
    }
    printf("streams=%d failed=%d unfinished=%d ttfb_p50_ms=%.2f ttfb_p99_ms=%.2f "
           "ttfc_p50_ms=%.2f ttfc_p99_ms=%.2f late_p50_ms=%.3f late_p99_ms=%.3f\n",
           n_streams, failed, n_streams - finished, pct(ttfb, nttfb, 0.5), pct(ttfb, nttfb, 0.99),
           pct(ttfc, nttfc, 0.5), pct(ttfc, nttfc, 0.99), pct(late, nlate, 0.5),
           pct(late, nlate, 0.99));
    return failed || finished != n_streams;
}
