/*
 * mg_front — the request head parser, the chunked body decoder and the forwarded-path rule (see
 * mg_front.h). Pure: no I/O, no libevent; every byte a client sends passes through here first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "mg_front.h"
#include "mg_hdr.h"
#include "mg_log.h"
#include "mg_req.h"

/* ---- the head ---------------------------------------------------------------------------- */

static int
refuse(struct mg_front_refusal *why, int status, const char *code, const char *message)
{
    why->status = status;
    why->code = code;
    why->message = message;
    return -1;
}

static int
bad(struct mg_front_refusal *why, const char *message)
{
    return refuse(why, 400, "bad_request", message);
}

static const struct {
    const char *name;
    int         method;
} methods[] = {
    {"GET", MG_METHOD_GET},   {"POST", MG_METHOD_POST},       {"HEAD", MG_METHOD_HEAD},
    {"PUT", MG_METHOD_PUT},   {"DELETE", MG_METHOD_DELETE},   {"OPTIONS", MG_METHOD_OPTIONS},
    {"PATCH", MG_METHOD_PATCH},
};

static int
method_of(const char *name)
{
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(methods); i++) {
        if (strcmp(name, methods[i].name) == 0) {
            return methods[i].method;
        }
    }
    return MG_METHOD_OTHER;
}

/* The request line, without its CRLF: METHOD SP target SP HTTP/1.x. */
static int
request_line(char *line, size_t len, struct mg_req *req, struct mg_front_refusal *why)
{
    char *sp1 = memchr(line, ' ', len), *sp2, *target, *q;
    size_t tlen;

    if (sp1 == NULL || sp1 == line || sp1 - line > 32 ||
        !mg_hdr_name_ok(line, (size_t)(sp1 - line))) {
        return bad(why, "The request line is malformed");
    }
    target = sp1 + 1;
    sp2 = memchr(target, ' ', len - (size_t)(target - line));
    if (sp2 == NULL) {
        return bad(why, "The request line is malformed");
    }
    tlen = (size_t)(sp2 - target);
    if (!mg_hdr_target_ok(target, tlen)) {
        return bad(why, "The request target holds bytes outside printable ASCII");
    }
    if ((size_t)(line + len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        return bad(why, "Only HTTP/1.0 and HTTP/1.1 are served");
    }
    req->minor = sp2[8] - '0';
    *sp1 = '\0';
    *sp2 = '\0';
    req->method_name = line;
    req->method = method_of(line);
    /* absolute-form (RFC 9112 3.2.2): the path is what follows the authority */
    if (tlen > 7 && (strncmp(target, "http://", 7) == 0 || strncmp(target, "https://", 8) == 0)) {
        char *slash = strchr(strstr(target, "://") + 3, '/');
        target = slash != NULL ? slash : (char *)"/";
    } else if (target[0] != '/' && !(tlen == 1 && target[0] == '*')) {
        return bad(why, "The request target must be a path");
    }
    q = strchr(target, '?');
    if (q != NULL) {
        *q = '\0';
        req->query = q + 1;
    }
    req->path = target;
    return 0;
}

/* The Connection header's tokens that matter here: close and keep-alive. */
static int
connection_token(void *arg, const char *name, size_t len)
{
    struct mg_req *req = arg;

    if (len == 5 && strncasecmp(name, "close", 5) == 0) {
        req->conn_close = 1;
    } else if (len == 10 && strncasecmp(name, "keep-alive", 10) == 0) {
        req->conn_keep = 1;
    }
    return 0;
}

/* One header field line, without its CRLF (line[len] is writable: it was the CR). */
static int
field_line(char *line, size_t len, struct mg_req *req, struct mg_front_head *info,
           struct mg_hdr_cl *cl, int *hosts, struct mg_front_refusal *why)
{
    char *colon, *v, *end;

    if (line[0] == ' ' || line[0] == '\t') {
        return bad(why, "Folded header lines (obs-fold) are not accepted");
    }
    colon = memchr(line, ':', len);
    if (colon == NULL || !mg_hdr_name_ok(line, (size_t)(colon - line))) {
        return bad(why, "A header name is not a token");
    }
    v = colon + 1;
    end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (!mg_hdr_value_ok(v, (size_t)(end - v))) {
        return bad(why, "A header value holds a control character (CR, LF or NUL)");
    }
    *colon = '\0';
    *end = '\0';
    if (req->headers.n >= MG_FRONT_FIELDS_MAX) {
        return refuse(why, 431, "request_header_fields_too_large",
                      "The request has more header fields than this gateway accepts");
    }
    /* both NUL-terminated just above */
    mg_headers_push(&req->headers, line, (size_t)(colon - line), v, (size_t)(end - v));
    switch (mg_hdr_lower(line[0])) {
    case 'c':
        if (mg_hdr_eq(line, "content-length")) {
            if (mg_hdr_cl_add(cl, v, (size_t)(end - v)) != MG_OK) {
                return bad(why, "Content-Length must be digits, and one value");
            }
        } else if (mg_hdr_eq(line, "connection")) {
            mg_hdr_connection_names(v, (size_t)(end - v), connection_token, req);
        }
        break;
    case 't':
        if (mg_hdr_eq(line, "transfer-encoding")) {
            if (info->chunked || !mg_hdr_transfer_encoding_ok(v, (size_t)(end - v))) {
                return bad(why, "Transfer-Encoding must be chunked");
            }
            info->chunked = 1;
        }
        break;
    case 'h':
        if (mg_hdr_eq(line, "host")) {
            ++*hosts;
        }
        break;
    case 'e':
        if (mg_hdr_eq(line, "expect") && strcasecmp(v, "100-continue") == 0) {
            info->expect_continue = 1;
        }
        break;
    case 'x':
        if (!req->has_request_id && mg_hdr_eq(line, "x-request-id") &&
            mg_hdr_request_id_ok(v, (size_t)(end - v))) {
            memcpy(req->request_id, v, (size_t)(end - v) + 1);
            req->has_request_id = 1;
        }
        break;
    default:
        break;
    }
    return 0;
}

int
mg_front_parse_head(char *head, size_t len, struct mg_req *req, struct mg_front_head *info,
                    struct mg_front_refusal *why)
{
    struct mg_hdr_cl cl = {0, 0};
    char *p = head, *end = head + len, *eol;
    int hosts = 0, first = 1;

    info->content_length = -1;
    info->chunked = 0;
    info->expect_continue = 0;
    req->query = NULL;
    req->conn_close = req->conn_keep = 0;
    req->has_request_id = 0;
    for (;;) {
        eol = p < end ? memchr(p, '\r', (size_t)(end - p)) : NULL;
        if (eol == NULL || eol + 1 >= end || eol[1] != '\n') {
            return bad(why, "A line of the request head does not end with CRLF");
        }
        if (eol == p) {
            break;   /* the blank line */
        }
        if (first) {
            if (request_line(p, (size_t)(eol - p), req, why) != 0) {
                return -1;
            }
            first = 0;
        } else if (field_line(p, (size_t)(eol - p), req, info, &cl, &hosts, why) != 0) {
            return -1;
        }
        p = eol + 2;
    }
    if (first) {
        return bad(why, "The request line is missing");
    }
    if (info->chunked && cl.seen) {
        return bad(why, "Content-Length and Transfer-Encoding together");
    }
    if (hosts > 1 || (hosts == 0 && req->minor == 1)) {
        return bad(why, hosts ? "A request must have one Host header, not several"
                              : "An HTTP/1.1 request needs a Host header");
    }
    if (cl.seen) {
        info->content_length = (int64_t)cl.value;
    }
    return 0;
}

/* ---- forwarded paths ----------------------------------------------------------------------- */

static int
pct(const char *p, char hi, char lo)
{
    return p[0] == '%' && p[1] == hi && (p[2] == lo || p[2] == (char)(lo - 'a' + 'A'));
}

int
mg_front_forward_path_ok(const char *path)
{
    const char *p;

    for (p = path; *p != '\0'; p++) {
        if (*p == '%' && (pct(p, '2', 'f') || pct(p, '5', 'c') ||
                          (p[1] == '0' && p[2] == '0'))) {
            return 0;
        }
    }
    /* with %2F refused, '/' is the only separator a backend sees: check each segment */
    for (p = path; (p = strchr(p, '/')) != NULL;) {
        const char *seg = ++p;
        int dots = 0;
        while (*p != '\0' && *p != '/') {
            if (*p == '.') {
                p++;
            } else if (p[0] == '%' && p[1] == '2' && (p[2] == 'e' || p[2] == 'E')) {
                p += 3;
            } else {
                break;
            }
            dots++;
        }
        if (p > seg && (*p == '\0' || *p == '/') && dots <= 2) {
            return 0;
        }
    }
    return 1;
}

/* ---- chunked bodies ------------------------------------------------------------------------ */

enum { CH_SIZE, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

/* A chunk-size or trailer line is gathered in c->line until its CRLF. 1 when whole. */
static int
gather(struct mg_front_chunked *c, const char **in, const char *end, size_t max, int *err)
{
    while (*in < end) {
        char ch = *(*in)++;
        if (ch == '\n') {
            if (c->line_len == 0 || c->line[c->line_len - 1] != '\r') {
                *err = 1;   /* a bare LF */
                return 0;
            }
            c->line_len--;
            return 1;
        }
        if (c->line_len >= max || (c->line_len > 0 && c->line[c->line_len - 1] == '\r')) {
            *err = 1;       /* too long, or a bare CR */
            return 0;
        }
        c->line[c->line_len++] = ch;
    }
    return 0;
}

ssize_t
mg_front_dechunk(struct mg_front_chunked *c, const char *in, size_t len, mg_front_body_fn out,
                 void *arg, struct mg_front_refusal *why)
{
    const char *p = in, *end = in + len;
    int err = 0;

    while (p < end && !c->done) {
        switch (c->state) {
        case CH_SIZE:
            if (!gather(c, &p, end, sizeof(c->line), &err)) {
                break;
            }
            if (mg_hdr_chunk_size(c->line, c->line_len, &c->left) != MG_OK) {
                err = 1;
                break;
            }
            c->line_len = 0;
            c->state = c->left == 0 ? CH_TRAILER : CH_DATA;
            break;
        case CH_DATA: {
            size_t n = (size_t)(end - p) < c->left ? (size_t)(end - p) : (size_t)c->left;
            if (out(arg, p, n) != 0) {
                why->status = 0;
                return -1;
            }
            p += n;
            c->left -= n;
            if (c->left == 0) {
                c->state = CH_DATA_CR;
            }
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (*p++ != (c->state == CH_DATA_CR ? '\r' : '\n')) {
                err = 1;
                break;
            }
            c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
            break;
        default: {   /* trailer fields, discarded, then the blank line */
            const char *from = p;
            int whole = gather(c, &p, end, sizeof(c->line), &err);
            c->trailer += (size_t)(p - from);
            if (c->trailer > MG_FRONT_TRAILER_MAX) {
                err = 1;
                break;
            }
            if (!whole) {
                break;
            }
            if (c->line_len == 0) {
                c->done = 1;
            } else {
                char *colon = memchr(c->line, ':', c->line_len);
                if (colon == NULL || !mg_hdr_name_ok(c->line, (size_t)(colon - c->line)) ||
                    !mg_hdr_value_ok(colon + 1, c->line_len - (size_t)(colon + 1 - c->line))) {
                    err = 1;
                }
            }
            c->line_len = 0;
            break;
        }
        }
        if (err) {
            bad(why, "The chunked body is malformed");
            return -1;
        }
    }
    return p - in;
}

/* ---- start-up ------------------------------------------------------------------------------ */

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
            mg_log_warn("cannot raise the open file limit to %llu",
                        (unsigned long long)rl.rlim_max);
            rl.rlim_cur = was;
        }
    }
    mg_log_info("open file limit: %llu descriptors", (unsigned long long)rl.rlim_cur);
}
