/*
 * mg_trace — span records, W3C traceparent, and their OTLP/HTTP JSON encoding.
 *
 * Encoding happens on the exporter's turn of the loop, never on the request path: a request only
 * fills a record. The writer is by hand (no printf, no JSON library): at sample 1 every request
 * costs two spans or more, and the cost budget is a few percent of a request.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_json.h"
#include "mg_trace.h"

static const char hexd[] = "0123456789abcdef";

void
mg_span_clear(struct mg_span *s)
{
    memset(s, 0, sizeof(*s));
    s->first_token_us = -1;
    s->max_tokens = -1;
    s->temperature = NAN;
    s->top_p = NAN;
    s->input_tokens = -1;
    s->output_tokens = -1;
    s->rule = -1;
    s->attempt = -1;
    s->resumed = -1;
}

void
mg_span_text(char *dst, size_t size, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;   /* not inside a UTF-8 sequence */
        }
    }
    if (n > 0) {
        memcpy(dst, src, n);
    }
    dst[n] = '\0';
}

/* "00" .. "ff": a byte's two hex digits in one copy (ids are written for every span) */
static const char hex2[256][2] = {
#define H1(n) {hexd[(n) >> 4], hexd[(n) & 15]}
#define H4(n) H1(n), H1((n) + 1), H1((n) + 2), H1((n) + 3)
#define H16(n) H4(n), H4((n) + 4), H4((n) + 8), H4((n) + 12)
    H16(0), H16(16), H16(32), H16(48), H16(64), H16(80), H16(96), H16(112),
    H16(128), H16(144), H16(160), H16(176), H16(192), H16(208), H16(224), H16(240)
#undef H16
#undef H4
#undef H1
};

void
mg_trace_hex(char *out, const uint8_t *id, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        memcpy(out + 2 * i, hex2[id[i]], 2);
    }
}

/* 2n hex digits into out: -1 when one is not lower-case hex, else 1 when any byte is non-zero. */
static int
unhex(const char *s, uint8_t *out, size_t n)
{
    size_t i;
    int nonzero = 0;

    for (i = 0; i < 2 * n; i++) {
        const char *d = s[i] != '\0' ? strchr(hexd, s[i]) : NULL;
        if (d == NULL) {
            return -1;   /* upper case too: W3C says lower-case hex */
        }
        if ((i & 1) == 0) {
            out[i / 2] = (uint8_t)((d - hexd) << 4);
        } else {
            out[i / 2] |= (uint8_t)(d - hexd);
        }
        nonzero |= d != hexd;
    }
    return nonzero;
}

int
mg_traceparent_parse(const char *v, uint8_t trace_id[16], uint8_t span_id[8], int *sampled)
{
    uint8_t ver, flags;
    size_t len;

    if (v == NULL) {
        return 0;
    }
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    len = strlen(v);
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) {
        len--;
    }
    if (len < MG_TRACEPARENT_LEN || v[2] != '-' || v[35] != '-' || v[52] != '-' ||
        unhex(v, &ver, 1) < 0 || ver == 0xff) {
        return 0;
    }
    /* version 00 is exactly this long; a later one may add fields after a '-' */
    if ((ver == 0 && len != MG_TRACEPARENT_LEN) ||
        (len > MG_TRACEPARENT_LEN && v[MG_TRACEPARENT_LEN] != '-')) {
        return 0;
    }
    if (unhex(v + 3, trace_id, 16) != 1 || unhex(v + 36, span_id, 8) != 1 ||
        unhex(v + 53, &flags, 1) < 0) {
        return 0;
    }
    *sampled = flags & 1;
    return 1;
}

void
mg_traceparent_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
                      int sampled)
{
    memcpy(out, "00-", 3);
    mg_trace_hex(out + 3, trace_id, 16);
    out[35] = '-';
    mg_trace_hex(out + 36, span_id, 8);
    memcpy(out + 52, sampled ? "-01" : "-00", 3);
    out[55] = '\0';
}

/* ---- the queue ------------------------------------------------------------------------------ */

void
mg_span_queue_init(struct mg_span_queue *q, size_t cap)
{
    q->v = mg_calloc(cap, sizeof(*q->v));
    q->cap = cap;
    q->head = 0;
    q->n = 0;
}

void
mg_span_queue_deinit(struct mg_span_queue *q)
{
    free(q->v);
    memset(q, 0, sizeof(*q));
}

struct mg_span *
mg_span_queue_push(struct mg_span_queue *q)
{
    if (q->n == q->cap) {
        return NULL;
    }
    return &q->v[(q->head + q->n++) % q->cap];
}

/* ---- OTLP/JSON ------------------------------------------------------------------------------ */

/*
 * The writer: each span is written through a cursor into room reserved for the largest span
 * (SPAN_JSON_MAX), literals by constant-size copies, numbers and strings by hand. At sample 1 this
 * runs for every request, so it is kept to a few instructions a byte.
 */
#define SPAN_JSON_MAX (16 * 1024)   /* > 12 texts of MG_SPAN_STR bytes escaped (x6) + the rest */

#define PUT(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) += sizeof(lit) - 1)

static const char dec2[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* v in decimal, two digits a step (times are 16 digits, and every span has two) */
static char *
put_u64(char *w, uint64_t v)
{
    char d[24], *p = d + sizeof(d);
    size_t n;

    while (v >= 100) {
        p -= 2;
        memcpy(p, dec2 + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, dec2 + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    n = (size_t)(d + sizeof(d) - p);
    memcpy(w, p, n);
    return w + n;
}

/* s escaped for a JSON string, without the quotes. */
static char *
put_esc(char *w, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
        } else if (c == '"' || c == '\\') {
            *w++ = '\\';
            *w++ = (char)c;
        } else {
            memcpy(w, "\\u00", 4);
            memcpy(w + 4, hex2[c], 2);
            w += 6;
        }
    }
    return w;
}

/* A JSON string literal of s (quotes included). */
static char *
put_str(char *w, const char *s)
{
    *w++ = '"';
    w = put_esc(w, s);
    *w++ = '"';
    return w;
}

static char *
put_id(char *w, const uint8_t *v, size_t n)
{
    *w++ = '"';
    mg_trace_hex(w, v, n);
    w += 2 * n;
    *w++ = '"';
    return w;
}

/* `{"key":"<k>","value":{` (a comma before all but the first); k a literal. */
#define KEY(w, first, k)                                                                        \
    do {                                                                                        \
        if (!(first)) {                                                                         \
            *(w)++ = ',';                                                                       \
        }                                                                                       \
        (first) = 0;                                                                            \
        PUT(w, "{\"key\":\"" k "\",\"value\":{");                                             \
    } while (0)

#define ATTR_STR(w, first, k, v)                                                                \
    do {                                                                                        \
        const char *v_ = (v);                                                                   \
        if (v_ != NULL && v_[0] != '\0') {                                                      \
            KEY(w, first, k);                                                                   \
            PUT(w, "\"stringValue\":");                                                         \
            (w) = put_str((w), v_);                                                             \
            PUT(w, "}}");                                                                       \
        }                                                                                       \
    } while (0)

/* OTLP/JSON writes 64-bit integers as strings */
#define ATTR_INT(w, first, k, v)                                                                \
    do {                                                                                        \
        int64_t v_ = (v);                                                                       \
        if (v_ >= 0) {                                                                          \
            KEY(w, first, k);                                                                   \
            PUT(w, "\"intValue\":\"");                                                          \
            (w) = put_u64((w), (uint64_t)v_);                                                   \
            PUT(w, "\"}}");                                                                     \
        }                                                                                       \
    } while (0)

#define ATTR_DOUBLE(w, first, k, v)                                                             \
    do {                                                                                        \
        double v_ = (v);                                                                        \
        if (!isnan(v_)) {                                                                       \
            KEY(w, first, k);                                                                   \
            (w) += snprintf((w), 48, "\"doubleValue\":%.17g}}", v_);                            \
        }                                                                                       \
    } while (0)

/* `<lit>":"<us>000"`: Unix nanoseconds as OTLP/JSON's string. */
#define NANOS(w, lit, us)                                                                       \
    do {                                                                                        \
        PUT(w, lit "\":\"");                                                                    \
        (w) = put_u64((w), (uint64_t)((us) > 0 ? (us) : 0));                                    \
        PUT(w, "000\"");                                                                        \
    } while (0)

/* Writes span s at w (SPAN_JSON_MAX bytes of room); returns the end. */
static char *
encode_span(char *w, const struct mg_span *s)
{
    int first = 1;

    PUT(w, "{\"traceId\":");
    w = put_id(w, s->trace_id, 16);
    PUT(w, ",\"spanId\":");
    w = put_id(w, s->span_id, 8);
    if (s->has_parent) {
        PUT(w, ",\"parentSpanId\":");
        w = put_id(w, s->parent_id, 8);
    }
    PUT(w, ",\"name\":\"");   /* "{operation} {model}" */
    w = put_esc(w, s->operation);
    if (s->request_model[0] != '\0') {
        *w++ = ' ';
        w = put_esc(w, s->request_model);
    }
    *w++ = '"';
    if (s->kind == MG_SPAN_SERVER) {
        PUT(w, ",\"kind\":2");
    } else {
        PUT(w, ",\"kind\":3");
    }
    NANOS(w, ",\"startTimeUnixNano", s->start_us);
    NANOS(w, ",\"endTimeUnixNano", s->end_us);
    PUT(w, ",\"attributes\":[");
    ATTR_STR(w, first, "gen_ai.operation.name", s->operation);
    ATTR_STR(w, first, "gen_ai.provider.name", s->provider);
    ATTR_STR(w, first, "gen_ai.request.model", s->request_model);
    ATTR_STR(w, first, "gen_ai.response.model", s->response_model);
    ATTR_INT(w, first, "gen_ai.request.max_tokens", s->max_tokens);
    ATTR_DOUBLE(w, first, "gen_ai.request.temperature", s->temperature);
    ATTR_DOUBLE(w, first, "gen_ai.request.top_p", s->top_p);
    ATTR_STR(w, first, "gen_ai.response.id", s->response_id);
    if (s->finish_reason[0] != '\0') {
        KEY(w, first, "gen_ai.response.finish_reasons");
        PUT(w, "\"arrayValue\":{\"values\":[{\"stringValue\":");
        w = put_str(w, s->finish_reason);
        PUT(w, "}]}}}");
    }
    ATTR_INT(w, first, "gen_ai.usage.input_tokens", s->input_tokens);
    ATTR_INT(w, first, "gen_ai.usage.output_tokens", s->output_tokens);
    ATTR_STR(w, first, "server.address", s->server_address);
    ATTR_INT(w, first, "server.port", s->server_port > 0 ? s->server_port : -1);
    ATTR_INT(w, first, "http.response.status_code", s->status_code > 0 ? s->status_code : -1);
    ATTR_STR(w, first, "error.type", s->error_type);
    ATTR_INT(w, first, "modelgate.rule", s->rule);
    ATTR_STR(w, first, "modelgate.backend", s->backend);
    ATTR_STR(w, first, "modelgate.key", s->key);
    ATTR_INT(w, first, "modelgate.attempt", s->attempt);
    ATTR_INT(w, first, "modelgate.resumed", s->resumed);
    *w++ = ']';
    if (s->first_token_us >= 0) {
        NANOS(w, ",\"events\":[{\"name\":\"gen_ai.first_token\",\"timeUnixNano",
              s->first_token_us);
        PUT(w, "}]");
    }
    if (s->error_type[0] != '\0') {
        PUT(w, ",\"status\":{\"code\":2,\"message\":");
        w = put_str(w, s->error_type);
        PUT(w, "}}");
    } else {
        PUT(w, ",\"status\":{}}");
    }
    return w;
}

size_t
mg_trace_encode(struct mg_buf *out, const char *service, struct mg_span_queue *q, size_t max)
{
    size_t n = q->n < max ? q->n : max, i;

    mg_buf_reset(out);
    mg_buf_adds(out, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                     "\"service.name\",\"value\":{\"stringValue\":");
    mg_json_quote(out, service, strlen(service));
    mg_buf_adds(out, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"modelgate\"},\"spans\":[");
    for (i = 0; i < n; i++) {
        char *w;
        if (mg_buf_reserve(out, SPAN_JSON_MAX + 1) != MG_OK) {
            break;   /* past the body's cap: the rest stays queued */
        }
        w = out->data + out->len;
        if (i > 0) {
            *w++ = ',';
        }
        w = encode_span(w, &q->v[(q->head + i) % q->cap]);
        out->len = (size_t)(w - out->data);
        out->data[out->len] = '\0';
    }
    mg_buf_adds(out, "]}]}]}");
    q->head = (q->head + i) % q->cap;
    q->n -= i;
    return i;
}
