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

struct enc {
    struct mg_buf *out;
    int            first;   /* no attribute written yet in this list */
};

static void
add(struct enc *e, const char *s)
{
    mg_buf_adds(e->out, s);
}

static void
key(struct enc *e, const char *k)
{
    add(e, e->first ? "{\"key\":\"" : ",{\"key\":\"");
    e->first = 0;
    add(e, k);
    add(e, "\",\"value\":{");
}

static void
attr_str(struct enc *e, const char *k, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        return;
    }
    key(e, k);
    add(e, "\"stringValue\":");
    mg_json_quote(e->out, v, strlen(v));
    add(e, "}}");
}

static void
attr_int(struct enc *e, const char *k, int64_t v)
{
    if (v < 0) {
        return;
    }
    key(e, k);
    add(e, "\"intValue\":\"");   /* OTLP/JSON writes 64-bit integers as strings */
    mg_buf_int(e->out, v);
    add(e, "\"}}");
}

static void
attr_double(struct enc *e, const char *k, double v)
{
    if (isnan(v)) {
        return;
    }
    key(e, k);
    mg_buf_printf(e->out, "\"doubleValue\":%.17g}}", v);
}

static void
nanos(struct mg_buf *out, const char *name, int64_t us)
{
    mg_buf_adds(out, name);
    mg_buf_adds(out, "\":\"");
    mg_buf_int(out, us);
    mg_buf_adds(out, "000\"");
}

static void
id(struct mg_buf *out, const char *name, const uint8_t *v, size_t n)
{
    char hex[32];

    mg_trace_hex(hex, v, n);
    mg_buf_adds(out, name);
    mg_buf_add(out, hex, 2 * n);
    mg_buf_adds(out, "\"");
}

static void
encode_span(struct mg_buf *out, const struct mg_span *s)
{
    struct enc e = {out, 1};
    const char *model = s->request_model;

    id(out, "{\"traceId\":\"", s->trace_id, 16);
    id(out, ",\"spanId\":\"", s->span_id, 8);
    if (s->has_parent) {
        id(out, ",\"parentSpanId\":\"", s->parent_id, 8);
    }
    mg_buf_adds(out, ",\"name\":");
    {   /* "{operation} {model}" */
        char name[MG_SPAN_STR + 32];
        size_t n = strlen(s->operation), m = strlen(model);
        memcpy(name, s->operation, n);
        if (m > 0) {
            name[n++] = ' ';
            memcpy(name + n, model, m);
            n += m;
        }
        mg_json_quote(out, name, n);
    }
    mg_buf_adds(out, ",\"kind\":");
    mg_buf_int(out, s->kind);
    nanos(out, ",\"startTimeUnixNano", s->start_us);
    nanos(out, ",\"endTimeUnixNano", s->end_us);
    mg_buf_adds(out, ",\"attributes\":[");
    attr_str(&e, "gen_ai.operation.name", s->operation);
    attr_str(&e, "gen_ai.provider.name", s->provider);
    attr_str(&e, "gen_ai.request.model", s->request_model);
    attr_str(&e, "gen_ai.response.model", s->response_model);
    attr_int(&e, "gen_ai.request.max_tokens", s->max_tokens);
    attr_double(&e, "gen_ai.request.temperature", s->temperature);
    attr_double(&e, "gen_ai.request.top_p", s->top_p);
    attr_str(&e, "gen_ai.response.id", s->response_id);
    if (s->finish_reason[0] != '\0') {
        key(&e, "gen_ai.response.finish_reasons");
        add(&e, "\"arrayValue\":{\"values\":[{\"stringValue\":");
        mg_json_quote(out, s->finish_reason, strlen(s->finish_reason));
        add(&e, "}]}}}");
    }
    attr_int(&e, "gen_ai.usage.input_tokens", s->input_tokens);
    attr_int(&e, "gen_ai.usage.output_tokens", s->output_tokens);
    attr_str(&e, "server.address", s->server_address);
    attr_int(&e, "server.port", s->server_port > 0 ? s->server_port : -1);
    attr_int(&e, "http.response.status_code", s->status_code > 0 ? s->status_code : -1);
    attr_str(&e, "error.type", s->error_type);
    attr_int(&e, "modelgate.rule", s->rule);
    attr_str(&e, "modelgate.backend", s->backend);
    attr_str(&e, "modelgate.key", s->key);
    attr_int(&e, "modelgate.attempt", s->attempt);
    attr_int(&e, "modelgate.resumed", s->resumed);
    mg_buf_adds(out, "]");
    if (s->first_token_us >= 0) {
        nanos(out, ",\"events\":[{\"name\":\"gen_ai.first_token\",\"timeUnixNano", 
              s->first_token_us);
        mg_buf_adds(out, "}]");
    }
    if (s->error_type[0] != '\0') {
        mg_buf_adds(out, ",\"status\":{\"code\":2,\"message\":");
        mg_json_quote(out, s->error_type, strlen(s->error_type));
        mg_buf_adds(out, "}}");
    } else {
        mg_buf_adds(out, ",\"status\":{}}");
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
