/*
 * mg_trace — span records, W3C traceparent, and their OTLP/HTTP JSON encoding.
 *
 * Encoding happens on the exporter's turn of the loop, never on the request path: a request only
 * fills a record. The writer is by hand (no printf, no JSON library): at sample 1 every request
 * costs two spans or more, and the cost budget is a few percent of a request.
 */
#include <math.h>
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

void
mg_trace_hex(char *out, const uint8_t *id, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = hexd[id[i] >> 4];
        out[2 * i + 1] = hexd[id[i] & 15];
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

/* A literal appended without strlen (the encoder is a few hundred appends a batch span). */
#define ADDL(out, lit) mg_buf_add((out), (lit), sizeof(lit) - 1)

struct enc {
    struct mg_buf *out;
    int            first;   /* no attribute written yet in this list */
};

/* `{"key":"<k>","value":{` (with a comma after the first); k a literal. */
#define KEY(e, k)                                                                               \
    do {                                                                                        \
        if ((e)->first) {                                                                       \
            ADDL((e)->out, "{\"key\":\"" k "\",\"value\":{");                                  \
            (e)->first = 0;                                                                     \
        } else {                                                                                \
            ADDL((e)->out, ",{\"key\":\"" k "\",\"value\":{");                                 \
        }                                                                                       \
    } while (0)

#define ATTR_STR(e, k, v)                                                                       \
    do {                                                                                        \
        const char *v_ = (v);                                                                   \
        if (v_ != NULL && v_[0] != '\0') {                                                      \
            KEY(e, k);                                                                          \
            ADDL((e)->out, "\"stringValue\":");                                                 \
            mg_json_quote((e)->out, v_, strlen(v_));                                            \
            ADDL((e)->out, "}}");                                                               \
        }                                                                                       \
    } while (0)

/* OTLP/JSON writes 64-bit integers as strings */
#define ATTR_INT(e, k, v)                                                                       \
    do {                                                                                        \
        int64_t v_ = (v);                                                                       \
        if (v_ >= 0) {                                                                          \
            KEY(e, k);                                                                          \
            ADDL((e)->out, "\"intValue\":\"");                                                  \
            mg_buf_int((e)->out, v_);                                                           \
            ADDL((e)->out, "\"}}");                                                             \
        }                                                                                       \
    } while (0)

#define ATTR_DOUBLE(e, k, v)                                                                    \
    do {                                                                                        \
        double v_ = (v);                                                                        \
        if (!isnan(v_)) {                                                                       \
            KEY(e, k);                                                                          \
            mg_buf_printf((e)->out, "\"doubleValue\":%.17g}}", v_);                             \
        }                                                                                       \
    } while (0)

/* `<lit>"<us>000"`: Unix nanoseconds as OTLP/JSON's string. */
#define NANOS(out, lit, us)                                                                     \
    do {                                                                                        \
        ADDL(out, lit "\":\"");                                                                 \
        mg_buf_int(out, us);                                                                    \
        ADDL(out, "000\"");                                                                     \
    } while (0)

static void
hexid(struct mg_buf *out, const uint8_t *v, size_t n)
{
    char hex[34];

    hex[0] = '"';
    mg_trace_hex(hex + 1, v, n);
    hex[2 * n + 1] = '"';
    mg_buf_add(out, hex, 2 * n + 2);
}

static void
encode_span(struct mg_buf *out, const struct mg_span *s)
{
    struct enc e = {out, 1};
    struct enc *ep = &e;
    char name[MG_SPAN_STR + 32];
    size_t n = strlen(s->operation), m = strlen(s->request_model);

    ADDL(out, "{\"traceId\":");
    hexid(out, s->trace_id, 16);
    ADDL(out, ",\"spanId\":");
    hexid(out, s->span_id, 8);
    if (s->has_parent) {
        ADDL(out, ",\"parentSpanId\":");
        hexid(out, s->parent_id, 8);
    }
    ADDL(out, ",\"name\":");   /* "{operation} {model}" */
    memcpy(name, s->operation, n);
    if (m > 0) {
        name[n++] = ' ';
        memcpy(name + n, s->request_model, m);
        n += m;
    }
    mg_json_quote(out, name, n);
    if (s->kind == MG_SPAN_SERVER) {
        ADDL(out, ",\"kind\":2");
    } else {
        ADDL(out, ",\"kind\":3");
    }
    NANOS(out, ",\"startTimeUnixNano", s->start_us);
    NANOS(out, ",\"endTimeUnixNano", s->end_us);
    ADDL(out, ",\"attributes\":[");
    ATTR_STR(ep, "gen_ai.operation.name", s->operation);
    ATTR_STR(ep, "gen_ai.provider.name", s->provider);
    ATTR_STR(ep, "gen_ai.request.model", s->request_model);
    ATTR_STR(ep, "gen_ai.response.model", s->response_model);
    ATTR_INT(ep, "gen_ai.request.max_tokens", s->max_tokens);
    ATTR_DOUBLE(ep, "gen_ai.request.temperature", s->temperature);
    ATTR_DOUBLE(ep, "gen_ai.request.top_p", s->top_p);
    ATTR_STR(ep, "gen_ai.response.id", s->response_id);
    if (s->finish_reason[0] != '\0') {
        KEY(ep, "gen_ai.response.finish_reasons");
        ADDL(out, "\"arrayValue\":{\"values\":[{\"stringValue\":");
        mg_json_quote(out, s->finish_reason, strlen(s->finish_reason));
        ADDL(out, "}]}}}");
    }
    ATTR_INT(ep, "gen_ai.usage.input_tokens", s->input_tokens);
    ATTR_INT(ep, "gen_ai.usage.output_tokens", s->output_tokens);
    ATTR_STR(ep, "server.address", s->server_address);
    ATTR_INT(ep, "server.port", s->server_port > 0 ? s->server_port : -1);
    ATTR_INT(ep, "http.response.status_code", s->status_code > 0 ? s->status_code : -1);
    ATTR_STR(ep, "error.type", s->error_type);
    ATTR_INT(ep, "modelgate.rule", s->rule);
    ATTR_STR(ep, "modelgate.backend", s->backend);
    ATTR_STR(ep, "modelgate.key", s->key);
    ATTR_INT(ep, "modelgate.attempt", s->attempt);
    ATTR_INT(ep, "modelgate.resumed", s->resumed);
    ADDL(out, "]");
    if (s->first_token_us >= 0) {
        NANOS(out, ",\"events\":[{\"name\":\"gen_ai.first_token\",\"timeUnixNano",
              s->first_token_us);
        ADDL(out, "}]");
    }
    if (s->error_type[0] != '\0') {
        ADDL(out, ",\"status\":{\"code\":2,\"message\":");
        mg_json_quote(out, s->error_type, strlen(s->error_type));
        ADDL(out, "}}");
    } else {
        ADDL(out, ",\"status\":{}}");
    }
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
        if (i > 0) {
            mg_buf_adds(out, ",");
        }
        encode_span(out, &q->v[(q->head + i) % q->cap]);
    }
    mg_buf_adds(out, "]}]}]}");
    q->head = (q->head + n) % q->cap;
    q->n -= n;
    return n;
}
