/*
 * mg_limit — the face of the per-key limits: the table of limit stores and the calls through it,
 * a request's token estimate, and the x-ratelimit-* header values. The buckets themselves are a
 * store's (mg_limit_local.c; see mg_limit_store.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_limit_store.h"
#include "mg_util.h"

/* The stores, by the name a runtime asks for: a new one is a file and a row here. */
static const struct mg_limit_store_ops *const stores[] = {
    &mg_limit_local_ops,
};

struct mg_limit_store *
mg_limit_store_create(const char *name)
{
    size_t i;

    for (i = 0; i < MG_ARRAY_LEN(stores); i++) {
        if (strcmp(stores[i]->name, name) == 0) {
            return stores[i]->create();
        }
    }
    return NULL;
}

void
mg_limit_store_destroy(struct mg_limit_store *store)
{
    if (store != NULL) {
        store->ops->destroy(store);
    }
}

void
mg_limit_store_worker_start(struct mg_limit_store *store, struct event_base *base)
{
    if (store->ops->worker_start != NULL) {
        store->ops->worker_start(store, base);
    }
}

void
mg_limit_store_worker_stop(struct mg_limit_store *store)
{
    if (store->ops->worker_stop != NULL) {
        store->ops->worker_stop(store);
    }
}

struct mg_limit *
mg_limit_get(struct mg_limit_store *store, const char *name)
{
    return store->ops->get(store, name);
}

const char *
mg_limit_name(const struct mg_limit *l)
{
    return l->name;
}

void
mg_limit_configure(struct mg_limit *l, int64_t requests_per_minute, int64_t tokens_per_minute,
                   int64_t now)
{
    l->store->ops->configure(l, requests_per_minute, tokens_per_minute, now);
}

int
mg_limit_admit(struct mg_limit *l, int64_t now, int64_t tokens, struct mg_limit_info *info)
{
    return l->store->ops->admit(l, now, tokens, info);
}

void
mg_limit_settle(struct mg_limit *l, int64_t reserved, int64_t used, int64_t now)
{
    l->store->ops->settle(l, reserved, used, now);
}

void
mg_limit_peek(const struct mg_limit *l, int64_t now, struct mg_limit_info *info)
{
    l->store->ops->peek(l, now, info);
}

/* Bytes of the JSON string whose opening quote is at p (to its closing quote), or 0. */
static size_t
string_len(const char *p, const char *end)
{
    const char *q;

    for (q = p + 1; q < end && *q != '"'; q++) {
        if (*q == '\\') {
            q++;
        }
    }
    return q < end ? (size_t)(q + 1 - p) : 0;
}

static int
base64_byte(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=' || c == '\\';
}

/* A base64 payload at least this long is an image or a file, not a word in a tool's argument. */
#define BASE64_PART_MIN 64

static const char *
skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/*
 * 1 when the JSON string at v (n bytes, quotes included) is an inline file: a data URL, or, as
 * the value of a "data" member (member = 1), a long run of base64.
 */
static int
inline_file(const char *v, size_t n, int member)
{
    size_t i;

    if (n >= 7 && memcmp(v + 1, "data:", 5) == 0) {
        return 1;
    }
    if (!member || n - 2 < BASE64_PART_MIN) {
        return 0;
    }
    for (i = 1; i + 1 < n && base64_byte(v[i]); i++) {
    }
    return i + 1 == n;
}

/*
 * The inline files of a JSON body: each string that starts with "data:" (a data URL: OpenAI's
 * image_url and file_data, the Responses API's input_image and input_file) and each "data"
 * member whose string holds only base64 (Anthropic's base64 source, OpenAI's input_audio). Adds
 * their count to *parts and their bytes to *bytes. One search for `"data` over the body.
 */
static void
json_parts(const char *body, size_t len, size_t *parts, size_t *bytes)
{
    const char *end = body + len, *p = body, *v;
    size_t n;
    int member;

    while ((p = mg_find(p, (size_t)(end - p), "\"data", 5)) != NULL) {
        v = NULL;
        member = 0;
        if (p + 5 < end && p[5] == ':' && (p == body || p[-1] != '\\')) {
            v = p;                                   /* "data:...", a string of its own */
        } else if (p + 5 < end && p[5] == '"') {
            v = skip_blanks(p + 6, end);             /* "data": "..." */
            v = v < end && *v == ':' ? skip_blanks(v + 1, end) : end;
            v = v < end && *v == '"' ? v : NULL;
            member = 1;
        }
        if (v == NULL) {
            p += 5;
            continue;
        }
        if ((n = string_len(v, end)) == 0) {
            return;
        }
        if (inline_file(v, n, member)) {
            (*parts)++;
            *bytes += n;
        }
        p = v + n;
    }
}

/*
 * The file parts of a multipart/form-data body (it starts with its boundary line): each part
 * whose headers name a filename. Adds their count to *parts and their bytes (headers and
 * content, between the boundary lines) to *bytes.
 */
static void
multipart_parts(const char *body, size_t len, size_t *parts, size_t *bytes)
{
    const char *end = body + len, *p, *next, *hdr_end, *eol = memchr(body, '\n', len);
    char delim[80];
    size_t blen;

    if (eol == NULL) {
        return;
    }
    blen = (size_t)(eol - body) - (eol > body && eol[-1] == '\r');
    if (blen + 2 >= sizeof(delim)) {
        return;
    }
    delim[0] = '\n';                    /* parts end at (CR)LF + the boundary line */
    memcpy(delim + 1, body, blen);
    for (p = eol + 1; p < end; p = eol + 1) {
        next = mg_find(p, (size_t)(end - p), delim, blen + 1);
        if (next == NULL) {
            return;
        }
        hdr_end = mg_find(p, (size_t)(next - p), "\r\n\r\n", 4);
        if (hdr_end != NULL && mg_find(p, (size_t)(hdr_end - p), "filename=", 9) != NULL) {
            (*parts)++;
            *bytes += (size_t)(next - p) - (next > p && next[-1] == '\r');
        }
        eol = memchr(next + 1, '\n', (size_t)(end - next - 1));   /* the boundary line's end */
        if (eol == NULL) {
            return;                      /* the closing "--boundary--" */
        }
    }
}

int64_t
mg_limit_estimate(const char *body, size_t len, int64_t max_tokens)
{
    size_t parts = 0, bytes = 0;
    int64_t est;

    if (len >= 2 && body[0] == '-' && body[1] == '-') {
        multipart_parts(body, len, &parts, &bytes);
    } else {
        json_parts(body, len, &parts, &bytes);
    }
    bytes = bytes > len ? len : bytes;
    est = (int64_t)((len - bytes) / 4);
    est = mg_tokens_add(est, (int64_t)parts * MG_LIMIT_PART_TOKENS);
    return mg_tokens_add(est, max_tokens);
}

/*
 * Decimal digits of v >= 0 at p; returns their count. Header values are written on every answer
 * to a limited key, so no printf here (six snprintf calls cost ~3,000 instructions a request).
 */
static size_t
put_int(char *p, int64_t v)
{
    char d[20];
    size_t n = 0, i;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++) {
        p[i] = d[n - 1 - i];
    }
    return n;
}

size_t
mg_limit_format_duration(int64_t ms, char *buf, size_t len)
{
    char t[64];
    size_t n = 0;
    int64_t frac;

    if (ms <= 0) {
        t[n++] = '0';
    } else if (ms < 1000) {
        n += put_int(t, ms);
        t[n++] = 'm';
    } else {
        if (ms >= 3600000) {
            n += put_int(t + n, ms / 3600000);
            t[n++] = 'h';
        }
        if (ms >= 60000) {
            n += put_int(t + n, ms / 60000 % 60);
            t[n++] = 'm';
        }
        n += put_int(t + n, ms / 1000 % 60);
        frac = ms % 1000;
        if (frac > 0) {
            /* ".5", ".25", ".125": the milliseconds with trailing zeros dropped, as Go does */
            t[n++] = '.';
            t[n++] = (char)('0' + frac / 100);
            if (frac % 100 != 0) {
                t[n++] = (char)('0' + frac / 10 % 10);
                if (frac % 10 != 0) {
                    t[n++] = (char)('0' + frac % 10);
                }
            }
        }
    }
    t[n++] = 's';
    if (len > 0) {
        size_t c = n < len ? n : len - 1;
        memcpy(buf, t, c);
        buf[c] = '\0';
    }
    return n;
}

static size_t
add_trio(const struct mg_limit_bucket_info *bi, const char *const names[3],
         struct mg_limit_header *out)
{
    if (bi->limit <= 0) {
        return 0;
    }
    out[0].name = names[0];
    out[0].value[put_int(out[0].value, bi->limit)] = '\0';
    out[1].name = names[1];
    out[1].value[put_int(out[1].value, bi->remaining)] = '\0';
    out[2].name = names[2];
    mg_limit_format_duration(bi->reset_ms, out[2].value, sizeof(out[2].value));
    return 3;
}

size_t
mg_limit_headers(const struct mg_limit_info *info, struct mg_limit_header *out)
{
    static const char *const req[3] = {
        "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests"
    };
    static const char *const tok[3] = {
        "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"
    };
    size_t n = 0;

    n += add_trio(&info->requests, req, out + n);
    n += add_trio(&info->tokens, tok, out + n);
    if (info->retry_after_ms > 0) {
        out[n].name = "Retry-After";
        out[n].value[put_int(out[n].value, info->retry_after_ms / 1000 +
                                          (info->retry_after_ms % 1000 != 0))] = '\0';
        n++;
    }
    return n;
}
