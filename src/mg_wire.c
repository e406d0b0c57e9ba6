/*
 * mg_wire — a relayed answer's head and body framing, written by the gateway (see mg_wire.h).
 * The only module that writes response bytes for libevent; it reads the request's version and
 * sets its response code through event2/http_struct.h, as mg_reply and mg_front do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/util.h>

#include "mg_util.h"
#include "mg_wire.h"

/* ---- pure parts ---------------------------------------------------------------------------- */

void
mg_wire_framing(struct mg_wire_frame *f, int minor, int status, int head,
                int64_t content_length, int conn_close, int conn_keep)
{
    memset(f, 0, sizeof(*f));
    f->body = !head && status != 204 && status != 304 && !(status >= 100 && status < 200);
    if (minor >= 1) {
        f->keepalive = !conn_close;
    } else {
        f->keepalive = conn_keep && !conn_close;
        f->say_keep = f->keepalive;
    }
    if (f->body && content_length < 0) {
        if (minor >= 1) {
            f->chunked = 1;
        } else {
            f->keepalive = 0;     /* HTTP/1.0 and no length: the close ends the body */
            f->say_keep = 0;
        }
    }
    f->say_close = !f->keepalive;
}

static const char *
phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Site Overloaded";
    default: break;
    }
    /* an unlisted code: its class, as libevent writes one */
    switch (status / 100) {
    case 1: return "Informational";
    case 2: return "Success";
    case 3: return "Redirection";
    case 4: return "Client Error";
    default: return "Server Error";
    }
}

size_t
mg_wire_status_line(char *buf, int minor, int status)
{
    const char *ph = phrase(status);
    size_t n = strlen(ph);

    if (status < 100 || status > 999) {
        status = 502;
        ph = phrase(status);
        n = strlen(ph);
    }
    memcpy(buf, minor >= 1 ? "HTTP/1.1 " : "HTTP/1.0 ", 9);
    buf[9] = (char)('0' + status / 100);
    buf[10] = (char)('0' + status / 10 % 10);
    buf[11] = (char)('0' + status % 10);
    buf[12] = ' ';
    memcpy(buf + 13, ph, n);
    memcpy(buf + 13 + n, "\r\n", 2);
    return 15 + n;
}

size_t
mg_wire_date_line(char *buf, time_t t)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;

    gmtime_r(&t, &tm);
    return (size_t)snprintf(buf, 48, "Date: %.3s, %02d %.3s %04d %02d:%02d:%02d GMT\r\n",
                            days + 3 * tm.tm_wday, tm.tm_mday, months + 3 * tm.tm_mon,
                            tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- writing ------------------------------------------------------------------------------- */

/* The Date line of this second, formatted once a second per thread (as nginx caches its time). */
static size_t
date_line(const char **line)
{
    static __thread time_t last = -1;
    static __thread char buf[48];
    static __thread size_t len;
    time_t now = time(NULL);

    if (now != last) {
        len = mg_wire_date_line(buf, now);
        last = now;
    }
    *line = buf;
    return len;
}

/* Where heads are gathered: one per worker thread, as only one head is written at a time. */
static __thread char stage[MG_WIRE_STAGE];

static void
put(struct mg_wire *w, const char *p, size_t n)
{
    if (w->len + n > sizeof(stage)) {
        if (evbuffer_add(w->out, stage, w->len) != 0) {
            abort();
        }
        w->len = 0;
        if (n > sizeof(stage)) {
            if (evbuffer_add(w->out, p, n) != 0) {
                abort();
            }
            return;
        }
    }
    memcpy(stage + w->len, p, n);
    w->len += n;
}

void
mg_wire_begin(struct mg_wire *w, struct evhttp_request *req, struct evbuffer *out, int status)
{
    w->req = req;
    w->out = out;
    w->status = status;
    w->have_date = 0;
    w->pending = 0;
    w->cb = NULL;
    w->arg = NULL;
    memset(&w->frame, 0, sizeof(w->frame));
    evbuffer_drain(out, evbuffer_get_length(out));
    w->len = mg_wire_status_line(stage, req->major == 1 ? req->minor : 1, status);
}

void
mg_wire_header(struct mg_wire *w, const char *name, const char *value)
{
    put(w, name, strlen(name));
    put(w, ": ", 2);
    put(w, value, strlen(value));
    put(w, "\r\n", 2);
}

/* digits of x in base (10 or 16, lower case) at the end of buf[24]: where they start */
static char *
digits(char *end, uint64_t x, unsigned base)
{
    do {
        *--end = "0123456789abcdef"[x % base];
        x /= base;
    } while (x != 0);
    return end;
}

void
mg_wire_send_head(struct mg_wire *w, int64_t content_length,
                  void (*cb)(struct evhttp_connection *, void *), void *arg)
{
    struct evhttp_request *req = w->req;
    const char *conn = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
    int head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    int minor = req->major == 1 ? req->minor : 1;
    const char *date;
    size_t dlen = date_line(&date);
    char num[24], *d;

    /* the tests libevent makes when the reply ends (evhttp_is_connection_close/_keepalive) */
    mg_wire_framing(&w->frame, minor, w->status, head, content_length,
                    conn != NULL && evutil_ascii_strcasecmp(conn, "close") == 0,
                    conn != NULL && evutil_ascii_strncasecmp(conn, "keep-alive", 10) == 0);
    if (content_length >= 0 && w->frame.body) {
        d = digits(num + sizeof(num), (uint64_t)content_length, 10);
        put(w, "Content-Length: ", 16);
        put(w, d, (size_t)(num + sizeof(num) - d));
        put(w, "\r\n", 2);
    } else if (w->frame.chunked) {
        put(w, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (w->frame.say_close) {
        put(w, "Connection: close\r\n", 19);
        /* libevent decides at the end from its header list: make it close too */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    } else if (w->frame.say_keep) {
        put(w, "Connection: keep-alive\r\n", 24);
    }
    if (!w->have_date) {
        put(w, date, dlen);
    }
    put(w, "\r\n", 2);
    if (evbuffer_add(w->out, stage, w->len) != 0) {
        abort();
    }
    w->len = 0;
    /* the head leaves with the first body bytes, or at the end (see flush) */
    w->pending = 1;
    w->cb = cb;
    w->arg = arg;
    /* what libevent's own reply start sets: its error path reads it to know a reply began */
    req->response_code = w->status;
    free(req->response_code_line);
    req->response_code_line = mg_strdup(phrase(w->status));
}

/*
 * Writes iov straight to the socket when nothing is queued before it (what nginx does): the
 * bytes leave now, not after every other ready event of the loop, and libevent arms no write
 * event (two epoll_ctl calls and a loop iteration) for them. Returns how many bytes of iov went
 * out (0 when the socket is full or failing: libevent's own write then reports the failure).
 */
static size_t
write_now(struct bufferevent *bev, const struct iovec *iov, int n)
{
    ssize_t w;

    if (evbuffer_get_length(bufferevent_get_output(bev)) != 0) {
        return 0;   /* order: after what waits */
    }
    do {
        w = writev(bufferevent_getfd(bev), iov, n);
    } while (w < 0 && errno == EINTR);
    return w > 0 ? (size_t)w : 0;
}

/*
 * Gives libevent what could not be written at once (in w->out), to write when the socket
 * allows: as a chunk of the reply, so that its write callback (w->cb, the relay's backpressure)
 * runs when the output has drained.
 */
static void
hand_over(struct mg_wire *w, struct bufferevent *bev)
{
    struct evhttp_request *req = w->req;
    int code = req->response_code;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* libevent takes no chunk on a HEAD request's behalf: straight to the output */
        if (evbuffer_add_buffer(bufferevent_get_output(bev), w->out) != 0) {
            abort();
        }
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    req->response_code = 0;   /* libevent reads 204 or 304 as "no body" and would drop bytes */
    evhttp_send_reply_chunk_with_cb(req, w->out, w->cb, w->arg);
    req->response_code = code;
}

/*
 * Sends the head if it is still pending, then iov (n at most 3): in one writev when nothing
 * is queued, the rest handed over to libevent. When the client has gone, drops it all.
 */
static void
flush(struct mg_wire *w, const struct iovec *iov, int n)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(w->req);
    struct bufferevent *bev;
    struct iovec v[2 + 3];
    size_t sent, head = 0, skip;
    int k = 0, i;

    if (evcon == NULL) {
        evbuffer_drain(w->out, evbuffer_get_length(w->out));
        w->pending = 0;
        return;
    }
    bev = evhttp_connection_get_bufferevent(evcon);
    if (w->pending) {
        head = evbuffer_get_length(w->out);
        k = evbuffer_peek(w->out, -1, NULL, v, 2);
    }
    if (k <= 2) {
        for (i = 0; i < n; i++) {
            v[k + i] = iov[i];
        }
        sent = write_now(bev, v, k + n);
    } else {
        sent = 0;   /* a head in more than two pieces (over MG_WIRE_STAGE): queued whole */
    }
    skip = sent < head ? sent : head;
    evbuffer_drain(w->out, skip);
    sent -= skip;
    w->pending = 0;
    for (i = 0; i < n; i++) {
        skip = sent < iov[i].iov_len ? sent : iov[i].iov_len;
        sent -= skip;
        if (iov[i].iov_len > skip &&
            evbuffer_add(w->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) != 0) {
            abort();
        }
    }
    if (evbuffer_get_length(w->out) != 0) {
        hand_over(w, bev);
    }
}

void
mg_wire_body(struct mg_wire *w, const char *data, size_t len)
{
    struct iovec iov[3];
    char size[24], *d;
    int n = 0;

    if (!w->frame.body || len == 0) {
        return;   /* no body, or an empty chunk (it would end the body) */
    }
    if (w->frame.chunked) {
        size[22] = '\r';
        size[23] = '\n';
        d = digits(size + 22, len, 16);
        iov[n].iov_base = d;
        iov[n++].iov_len = (size_t)(size + sizeof(size) - d);
    }
    iov[n].iov_base = (void *)data;
    iov[n++].iov_len = len;
    if (w->frame.chunked) {
        iov[n].iov_base = (void *)"\r\n";
        iov[n++].iov_len = 2;
    }
    flush(w, iov, n);
}

void
mg_wire_end(struct mg_wire *w)
{
    struct iovec last = {(void *)"0\r\n\r\n", 5};
    int n = w->frame.chunked && w->frame.body;

    if (n || w->pending) {
        flush(w, &last, n);
    }
    evhttp_send_reply_end(w->req);   /* the output empty: libevent is done with it at once */
}
