/*
 * mg_head — response head lines to a small struct. Kept headers are stored as "name\0value\0"
 * pairs in one capped buffer: no allocation per header, and a second pass never re-parses lines.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "mg_hdr.h"
#include "mg_head.h"

#define NAME_MAX_LEN  255
#define VALUE_MAX_LEN 8191
#define RETRY_AFTER_MAX_S (366 * 86400)

void
mg_head_init(struct mg_resp_head *h)
{
    mg_buf_init(&h->relay, MG_RESP_HEAD_MAX);
    mg_head_reset(h);
}

void
mg_head_deinit(struct mg_resp_head *h)
{
    mg_buf_deinit(&h->relay);
}

void
mg_head_reset(struct mg_resp_head *h)
{
    h->status = 0;
    h->sse = 0;
    h->json = 0;
    h->chunked = 0;
    h->content_length = -1;
    h->retry_after_s = -1;
    h->connection[0] = '\0';
    mg_buf_reset(&h->relay);
}

/* A decimal number made of digits only, or -1. */
static int64_t
digits(const char *v, size_t n)
{
    int64_t x = 0;
    size_t i;

    if (n == 0 || n > 18) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* 1 when v[0..n) holds needle (lower case), letters compared without case. */
static int
has_ci(const char *v, size_t n, const char *needle)
{
    size_t m = strlen(needle), i, j;

    for (i = 0; i + m <= n; i++) {
        for (j = 0; j < m && mg_hdr_lower(v[i + j]) == (unsigned char)needle[j]; j++) {
        }
        if (j == m) {
            return 1;
        }
    }
    return 0;
}

/* name (n bytes, NUL-terminated) equals lower, a lower-case name of the same length. */
static int
is(const char *name, size_t n, const char *lower, size_t ln)
{
    return n == ln && mg_hdr_eq(name, lower);
}

#define IS(lit) is(name, n, lit, sizeof(lit) - 1)

int
mg_head_hop_by_hop(const char *name)
{
    size_t n = strlen(name);

    return IS("connection") || IS("keep-alive") || IS("transfer-encoding") || IS("te") ||
           IS("trailer") || IS("upgrade") || (n >= 6 && strncasecmp(name, "proxy-", 6) == 0);
}

/*
 * What the proxy itself reads from a header: 1 when it is never relayed, -1 when invalid. The
 * name's length picks the few names it can be, so most headers cost one or two compares.
 */
static int
note(struct mg_resp_head *h, const char *name, size_t n, const char *v, size_t vlen)
{
    size_t have;

    switch (n) {
    case 12:
        if (IS("content-type")) {
            /* AWS's binary event stream is one too: the bedrock schema decodes it */
            h->sse = has_ci(v, vlen, "text/event-stream") ||
                     has_ci(v, vlen, "application/vnd.amazon.eventstream");
            h->json = !h->sse && has_ci(v, vlen, "json");
            return 0;
        }
        return IS("x-request-id");
    case 14:
        if (IS("content-length")) {
            int64_t x = digits(v, vlen);
            if (x < 0 || (h->content_length >= 0 && h->content_length != x)) {
                return -1;   /* not a length, or two different ones */
            }
            h->content_length = x;
        }
        return 0;
    case 10:
        if (IS("connection")) {
            have = strlen(h->connection);
            if (have + vlen + 2 < sizeof(h->connection)) {   /* several Connection lines add up */
                if (have > 0) {
                    h->connection[have++] = ',';
                }
                memcpy(h->connection + have, v, vlen);
                h->connection[have + vlen] = '\0';
            }
            return 1;
        }
        return IS("keep-alive");
    case 11:
        if (IS("retry-after")) {
            h->retry_after_s = digits(v, vlen);
            if (h->retry_after_s < 0 && vlen > 0) {
                time_t when = curl_getdate(v, NULL), now = time(NULL);   /* an HTTP date */
                h->retry_after_s = when < 0 ? -1 : when > now ? (int64_t)(when - now) : 0;
            }
            if (h->retry_after_s > RETRY_AFTER_MAX_S) {
                h->retry_after_s = RETRY_AFTER_MAX_S;   /* no overflow when made milliseconds */
            }
        }
        return 0;
    case 17:
        if (IS("transfer-encoding")) {
            h->chunked = 1;
            return 1;
        }
        return 0;
    case 19:
        return IS("x-modelgate-backend");
    default:
        return mg_head_hop_by_hop(name);
    }
}

int
mg_head_line(struct mg_resp_head *h, const char *line, size_t len)
{
    const char *end = line + len, *colon = memchr(line, ':', len), *v, *ve;
    size_t nlen, vlen;
    char *name, *value;

    if (colon == NULL || (nlen = (size_t)(colon - line)) == 0 || nlen > NAME_MAX_LEN) {
        return len <= 2 || colon != NULL ? MG_OK : MG_ERR;   /* a line that is no header */
    }
    v = colon + 1;
    ve = end;
    while (v < ve && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (ve > v && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' ' || ve[-1] == '\t')) {
        ve--;
    }
    vlen = (size_t)(ve - v);
    if (vlen > VALUE_MAX_LEN) {
        return MG_OK;
    }
    if (!mg_hdr_name_ok(line, nlen) || !mg_hdr_value_ok(v, vlen)) {
        return MG_ERR;
    }
    /* "name\0value\0" at the end of the pair buffer; taken back when it is not relayed */
    if (mg_buf_reserve(&h->relay, nlen + vlen + 2) != MG_OK) {
        return MG_ETOOBIG;
    }
    name = h->relay.data + h->relay.len;
    value = name + nlen + 1;
    memcpy(name, line, nlen);
    name[nlen] = '\0';
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    switch (note(h, name, nlen, value, vlen)) {
    case -1:
        name[0] = '\0';
        return MG_ERR;
    case 1:
        name[0] = '\0';
        break;
    default:
        h->relay.len += nlen + vlen + 2;
        h->relay.data[h->relay.len] = '\0';
        break;
    }
    return MG_OK;
}

int
mg_head_next(const struct mg_resp_head *h, size_t *pos, const char **name, const char **value)
{
    size_t n;

    while (*pos < h->relay.len) {
        *name = h->relay.data + *pos;
        n = strlen(*name);
        *value = *name + n + 1;
        *pos += n + 1 + strlen(*value) + 1;
        if (h->connection[0] == '\0' ||
            !mg_hdr_in_connection(h->connection, strlen(h->connection), *name, n)) {
            return 1;
        }
    }
    return 0;
}

enum mg_head_class
mg_head_classify_status(long s)
{
    if (s < 200) {
        return MG_HEAD_PENDING;
    }
    if (s == 429 || s == 500 || s == 502 || s == 503 || s == 504 || s == 529) {
        return MG_HEAD_FAILOVER;
    }
    return s == 400 ? MG_HEAD_INSPECT : MG_HEAD_FINAL;
}
