/*
 * mg_wire — an answer's head and body framing (see mg_wire.h); mg_conn writes the bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "mg_conn.h"
#include "mg_req.h"
#include "mg_util.h"
#include "mg_wire.h"

#define WIRE_HOLD_MAX (16 * 1024)   /* the last body bytes held until the end, at most */

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

/*
 * The reason phrase of a status: every code in IANA's HTTP status code registry (RFC 9110 and
 * the RFCs it lists), and 529, Anthropic's "overloaded". An unregistered code gets its class.
 */
static const char *
phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    case 529: return "Site Overloaded";
    default: break;
    }
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
        mg_conn_hold(w->conn, stage, w->len);
        w->len = 0;
        if (n > sizeof(stage)) {
            mg_conn_hold(w->conn, p, n);
            return;
        }
    }
    memcpy(stage + w->len, p, n);
    w->len += n;
}

/* The response headers a browser's script may read (CORS), named in full. */
#define MG_WIRE_CORS_EXPOSE                                                                   \
    "Access-Control-Expose-Headers: x-request-id, retry-after, x-ratelimit-limit-requests, "  \
    "x-ratelimit-limit-tokens, x-ratelimit-remaining-requests, x-ratelimit-remaining-tokens, " \
    "x-ratelimit-reset-requests, x-ratelimit-reset-tokens, x-modelgate-backend, "            \
    "x-modelgate-overhead-us, x-modelgate-dropped-tools, x-modelgate-budget-remaining-usd\r\n"

void
mg_wire_begin(struct mg_wire *w, struct mg_req *req, int status)
{
    w->req = req;
    w->conn = req->conn;
    w->status = status;
    w->have_date = 0;
    w->bytes = 0;
    w->t_first = 0;
    w->length = -1;
    memset(&w->frame, 0, sizeof(w->frame));
    w->len = mg_wire_status_line(stage, req->minor, status);
    if (req->cors_origin[0] != '\0') {   /* a listed Origin (mg_cors): every answer says so */
        put(w, "Access-Control-Allow-Origin: ", 29);
        put(w, req->cors_origin, strlen(req->cors_origin));
        put(w, "\r\n" MG_WIRE_CORS_EXPOSE "Vary: Origin\r\n",
            sizeof("\r\n" MG_WIRE_CORS_EXPOSE "Vary: Origin\r\n") - 1);
    }
}

void
mg_wire_header(struct mg_wire *w, const char *name, const char *value)
{
    put(w, name, strlen(name));
    put(w, ": ", 2);
    put(w, value, strlen(value));
    put(w, "\r\n", 2);
}

void
mg_wire_lines(struct mg_wire *w, const char *lines, size_t len)
{
    put(w, lines, len);
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
mg_wire_send_head(struct mg_wire *w, int64_t content_length)
{
    struct mg_req *req = w->req;
    const char *date;
    size_t dlen = date_line(&date);
    char num[24], *d;

    mg_wire_framing(&w->frame, req->minor, w->status, req->method == MG_METHOD_HEAD,
                    content_length, req->conn_close || mg_conn_will_close(w->conn),
                    req->conn_keep);
    w->length = content_length;
    if (content_length >= 0 && (w->frame.body || req->method == MG_METHOD_HEAD)) {
        d = digits(num + sizeof(num), (uint64_t)content_length, 10);
        put(w, "Content-Length: ", 16);
        put(w, d, (size_t)(num + sizeof(num) - d));
        put(w, "\r\n", 2);
    } else if (w->frame.chunked) {
        put(w, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (w->frame.say_close) {
        put(w, "Connection: close\r\n", 19);
    } else if (w->frame.say_keep) {
        put(w, "Connection: keep-alive\r\n", 24);
    }
    if (!w->have_date) {
        put(w, date, dlen);
    }
    put(w, "\r\n", 2);
    /* the head leaves with the first body bytes, or at the end */
    mg_conn_hold(w->conn, stage, w->len);
    w->len = 0;
}

void
mg_wire_body(struct mg_wire *w, const char *data, size_t len)
{
    struct iovec iov[3];
    char size[24], *d;
    int n = 0;

    /* counted as handed over (what the access log reports), framed or not */
    if (w->t_first == 0) {
        w->t_first = mg_now_us();
    }
    w->bytes += (int64_t)len;
    if (!w->frame.body || len == 0) {
        return;   /* no body, or an empty chunk (it would end the body) */
    }
    if (!w->frame.chunked && w->length >= 0 && w->bytes >= w->length) {
        /*
         * The bytes that complete a declared length leave at mg_wire_end(), after the owner has
         * accounted the answer (a key's tokens, a budget's cost): a client that sends its next
         * request the instant it has this one whole meets the settled amounts, not the
         * reservation. Usually the same turn of the loop, and the same one write.
         */
        if (len > WIRE_HOLD_MAX) {
            struct iovec most = {(void *)data, len - 1};
            mg_conn_write(w->conn, &most, 1);
            data += len - 1;
            len = 1;
        }
        mg_conn_hold(w->conn, data, len);
        return;
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
    mg_conn_write(w->conn, iov, n);
}

void
mg_wire_emit(void *arg, const char *data, size_t len)
{
    mg_wire_body(arg, data, len);
}

int
mg_wire_congested(const struct mg_wire *w)
{
    return w->conn != NULL && mg_conn_queued(w->conn) >= MG_WIRE_HWM;
}

void
mg_wire_end(struct mg_wire *w)
{
    struct iovec last = {(void *)"0\r\n\r\n", 5};

    mg_conn_write(w->conn, &last, w->frame.chunked && w->frame.body);
    mg_conn_finish(w->conn, w->frame.keepalive);   /* may free the request at once */
}
