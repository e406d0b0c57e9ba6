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

int
mg_head_hop_by_hop(const char *name)
{
    static const char *const hop[] = {"connection", "keep-alive", "transfer-encoding", "te",
                                      "trailer", "upgrade"};
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(hop); i++) {
        if (mg_hdr_eq(name, hop[i])) {
            return 1;
        }
    }
    return strncasecmp(name, "proxy-", 6) == 0;
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

/* What the proxy itself reads from a header: 1 when it is never relayed, -1 when invalid. */
static int
note(struct mg_resp_head *h, const char *name, const char *v, size_t vlen)
{
    if (mg_hdr_eq(name, "content-type")) {
        /* AWS's binary event stream is one too: the bedrock schema decodes it */
        h->sse = strcasestr(v, "text/event-stream") != NULL ||
                 strcasestr(v, "application/vnd.amazon.eventstream") != NULL;
        h->json = !h->sse && strcasestr(v, "json") != NULL;
    } else if (mg_hdr_eq(name, "content-length")) {
        int64_t n = digits(v, vlen);
        if (n < 0 || (h->content_length >= 0 && h->content_length != n)) {
            return -1;   /* not a length, or two different ones */
        }
        h->content_length = n;
    } else if (mg_hdr_eq(name, "connection")) {
        size_t have = strlen(h->connection);
        if (have + vlen + 2 < sizeof(h->connection)) {   /* several Connection lines add up */
            snprintf(h->connection + have, sizeof(h->connection) - have, "%s%.*s",
                     have ? "," : "", (int)vlen, v);
        }
    } else if (mg_hdr_eq(name, "retry-after")) {
        h->retry_after_s = digits(v, vlen);
        if (h->retry_after_s < 0 && vlen > 0) {
            time_t when = curl_getdate(v, NULL), now = time(NULL);   /* an HTTP date */
            h->retry_after_s = when < 0 ? -1 : when > now ? (int64_t)(when - now) : 0;
        }
        if (h->retry_after_s > RETRY_AFTER_MAX_S) {
            h->retry_after_s = RETRY_AFTER_MAX_S;   /* no overflow when made milliseconds */
        }
    } else if (mg_hdr_eq(name, "transfer-encoding")) {
        h->chunked = 1;
    }
    return mg_head_hop_by_hop(name) || mg_hdr_eq(name, "x-request-id") ||
           mg_hdr_eq(name, "x-modelgate-backend");
}

int
mg_head_line(struct mg_resp_head *h, const char *line, size_t len)
{
    const char *end = line + len, *colon = memchr(line, ':', len), *v, *ve;
    char name[NAME_MAX_LEN + 1];
    size_t nlen, vlen;

    if (colon == NULL || (nlen = (size_t)(colon - line)) == 0 || nlen > NAME_MAX_LEN) {
        return len <= 2 || colon != NULL ? MG_OK : MG_ERR;   /* a line that is no header */
    }
    memcpy(name, line, nlen);
    name[nlen] = '\0';
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
    /* the value is NUL-terminated in the pair buffer before note() reads it with strcasestr */
    if (mg_buf_add(&h->relay, name, nlen + 1) != MG_OK || mg_buf_add(&h->relay, v, vlen) != MG_OK ||
        mg_buf_add(&h->relay, "", 1) != MG_OK) {
        return MG_ETOOBIG;
    }
    if (!mg_hdr_name_ok(name, nlen) || !mg_hdr_value_ok(v, vlen)) {
        return MG_ERR;
    }
    switch (note(h, name, h->relay.data + h->relay.len - vlen - 1, vlen)) {
    case -1:
        return MG_ERR;
    case 1:
        h->relay.len -= nlen + 1 + vlen + 1;   /* read, not relayed */
        h->relay.data[h->relay.len] = '\0';
        break;
    default:
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
