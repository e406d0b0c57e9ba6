/*
 * mg_trace — OpenTelemetry spans as fixed-size records: W3C traceparent read and written, a
 * worker's bounded queue of finished spans, and a batch of them encoded as OTLP/HTTP JSON
 * (ExportTraceServiceRequest) with the GenAI semantic conventions' attribute names. Pure: no
 * clock, no randomness, no I/O (the exporter, src/proxy/mg_trace_export.c, posts the batches).
 * Prompt and answer text have no field here, so they cannot reach a span.
 */
#ifndef MG_TRACE_H
#define MG_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_TRACE_QUEUE_MAX  4096   /* spans a worker holds before it drops */
#define MG_TRACE_BATCH_MAX  512    /* spans one export carries */
#define MG_TRACEPARENT_LEN  55     /* "00-" 32 hex "-" 16 hex "-" 2 hex */

enum { MG_SPAN_SERVER = 2, MG_SPAN_CLIENT = 3 };   /* OTLP's SpanKind values */

#define MG_SPAN_STR 128   /* longer texts are cut (at a UTF-8 boundary) */

/* One finished span. Numbers < 0 (and empty texts, NULL pointers) are left out. */
struct mg_span {
    uint8_t     trace_id[16];
    uint8_t     span_id[8];
    uint8_t     parent_id[8];
    int         has_parent;
    int         kind;                  /* MG_SPAN_SERVER (a request), MG_SPAN_CLIENT (an attempt) */
    int64_t     start_us;              /* Unix time, microseconds */
    int64_t     end_us;
    int64_t     first_token_us;        /* the commit point: an event; -1 none */
    const char *operation;             /* gen_ai.operation.name (static text) */
    const char *provider;              /* gen_ai.provider.name (static), or NULL */
    char        request_model[MG_SPAN_STR];
    char        response_model[MG_SPAN_STR];
    char        response_id[MG_SPAN_STR];
    char        finish_reason[32];
    int64_t     max_tokens;
    double      temperature;           /* NaN: absent */
    double      top_p;                 /* NaN: absent */
    int64_t     input_tokens;
    int64_t     output_tokens;
    char        server_address[MG_SPAN_STR];
    int         server_port;           /* 0: none */
    int         status_code;           /* http.response.status_code; 0: none */
    char        error_type[32];        /* error.type (the outcome); "": none, status OK */
    int         rule;                  /* modelgate.rule (index) */
    char        backend[64];           /* modelgate.backend */
    char        key[64];               /* modelgate.key (the key's name) */
    int         attempt;               /* modelgate.attempt (1 for the first) */
    int         resumed;               /* modelgate.resumed */
};

/* Sets every optional field of s to "absent" (ids and times are the caller's). */
void mg_span_clear(struct mg_span *s);

/* Copies text into a span's field of size bytes, cut at a UTF-8 boundary. */
void mg_span_text(char *dst, size_t size, const char *src);

/*
 * Reads a W3C traceparent value: 1 with the ids and the sampled flag when it is valid (version
 * 00 exactly 55 bytes; a later version at least that, its extra part after a '-'; ids not all
 * zero, lower-case hex), else 0.
 */
int mg_traceparent_parse(const char *v, uint8_t trace_id[16], uint8_t span_id[8], int *sampled);

/* Writes "00-<trace>-<span>-0x" and a NUL into out (MG_TRACEPARENT_LEN + 1 bytes). */
void mg_traceparent_format(char *out, const uint8_t trace_id[16], const uint8_t span_id[8],
                           int sampled);

/* n bytes of lower-case hex (2n characters, no NUL) into out. */
void mg_trace_hex(char *out, const uint8_t *id, size_t n);

/* A worker's finished spans: a ring of cap records, one writer (the worker). */
struct mg_span_queue {
    struct mg_span *v;
    size_t          cap;
    size_t          head;     /* the oldest */
    size_t          n;
};

void mg_span_queue_init(struct mg_span_queue *q, size_t cap);
void mg_span_queue_deinit(struct mg_span_queue *q);
/* A free record at the queue's end (counted in n), or NULL when the queue is full. */
struct mg_span *mg_span_queue_push(struct mg_span_queue *q);

/*
 * Encodes up to max of the oldest spans in q as one OTLP/JSON ExportTraceServiceRequest into out
 * (emptied first) under resource service.name = service, and takes them off q. Returns how many.
 */
size_t mg_trace_encode(struct mg_buf *out, const char *service, struct mg_span_queue *q,
                       size_t max);

#endif
