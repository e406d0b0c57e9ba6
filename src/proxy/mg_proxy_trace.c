/*
 * mg_proxy_trace — a proxied request's spans (`tracing:`): the client's W3C traceparent read and
 * the sampling decided once, a span id and a traceparent header for each attempt, each attempt's
 * span pushed to the worker's exporter when the attempt ends, the request's span when it is
 * accounted. Without `tracing:` none of this runs (p->tr stays NULL). Unsampled requests keep
 * the ids only, to send `traceparent` with flags 00. Only names, numbers and outcomes are
 * recorded: never a prompt, an answer, a header value or a credential.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mg_access.h"
#include "mg_auth.h"
#include "mg_conf_types.h"
#include "mg_hdr.h"
#include "mg_proxy_int.h"
#include "mg_req.h"
#include "mg_trace.h"
#include "mg_trace_export.h"
#include "mg_worker.h"

struct mg_proxy_trace {
    uint8_t trace_id[16];
    uint8_t parent[8];        /* the client's span, when it sent traceparent */
    int     has_parent;
    uint8_t span[8];          /* the request's */
    int     sampled;
    int64_t wall_off;         /* Unix time minus mg_now_us() */
    int     attempts;         /* started so far */
    int     open;             /* the current attempt's span is not pushed yet */
    uint8_t att_span[8];
    int64_t att_start;
    char    traceparent[MG_TRACEPARENT_LEN + 1];
    /* read from what the client got (a sampled request only) */
    char    resp_model[MG_SPAN_STR];
    char    finish[32];
    size_t  seen;             /* bytes watched so far */
};

static void
random_id(struct preq *p, uint8_t *out, size_t n)
{
    size_t i;
    uint64_t r = 0;

    do {
        for (i = 0; i < n; i++) {
            if (i % 8 == 0) {
                r = mg_rand_next(&p->w->rng);
            }
            out[i] = (uint8_t)(r >> (8 * (i % 8)));
        }
    } while (out[0] == 0 && out[n - 1] == 0 && out[n / 2] == 0);   /* never all zero */
}

/* gen_ai.operation.name of the client's API. */
static const char *
operation(const struct preq *p)
{
    const char *api = p->api->name;

    if (strcmp(api, "completions") == 0) {
        return "text_completion";
    }
    if (strcmp(api, "responses") == 0) {
        return "generate_content";
    }
    if (strcmp(api, "chat") == 0 || strcmp(api, "messages") == 0) {
        return "chat";
    }
    if (p->upath != NULL && strncmp(p->upath, "/embeddings", 11) == 0) {
        return "embeddings";
    }
    return api;
}

/* gen_ai.provider.name of a schema. */
static const char *
provider(const char *schema)
{
    if (strcmp(schema, "azure") == 0) {
        return "azure.ai.openai";
    }
    if (strcmp(schema, "bedrock") == 0) {
        return "aws.bedrock";
    }
    return schema;   /* "openai", "anthropic" */
}

const char *
mg_proxy_provider(const struct mg_backend *b)
{
    return provider(mg_schema_get(b->schema)->name);
}

void
mg_proxy_trace_begin(struct preq *p, const struct mg_req *req)
{
    struct mg_proxy_trace *t = mg_calloc(1, sizeof(*t));
    const char *tp = mg_headers_get(&req->headers, "traceparent");
    struct timespec ts;

    p->tr = t;
    p->client.own_trace = 1;   /* the client's traceparent is replaced by each attempt's */
    if (mg_traceparent_parse(tp, t->trace_id, t->parent, &t->sampled)) {
        t->has_parent = 1;     /* its sampled flag decides */
    } else {
        random_id(p, t->trace_id, 16);
        t->sampled = (uint32_t)(mg_rand_next(&p->w->rng) % 1000000) <
                     p->conf->tracing.sample_ppm;
    }
    random_id(p, t->span, 8);
    if (t->sampled) {
        clock_gettime(CLOCK_REALTIME, &ts);
        t->wall_off = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - mg_now_us();
    }
}

void
mg_proxy_trace_free(struct preq *p)
{
    free(p->tr);
    p->tr = NULL;
}

/*
 * The string value of the member whose name (quotes included) starts at k, copied into out;
 * NULL when it is not a string (null, or cut off by the end of this piece). Bytes of a JSON text
 * outside strings: a name found there is a real member, never part of a text, whose quotes
 * would be escaped.
 */
static const char *
member_string(const char *k, size_t klen, const char *end, char *out, size_t size)
{
    const char *v = k + klen, *q;

    while (v < end && (*v == ' ' || *v == ':' || *v == '\t' || *v == '\n' || *v == '\r')) {
        v++;
    }
    if (v >= end || *v != '"' || (q = memchr(v + 1, '"', (size_t)(end - v - 1))) == NULL) {
        return NULL;
    }
    if ((size_t)(q - v - 1) < size) {
        memcpy(out, v + 1, (size_t)(q - v - 1));
        out[q - v - 1] = '\0';
    }
    return q;
}

/*
 * The client's bytes pass here first: the answer's model (its first, looked for in its first
 * KiB) and finish reason (its last: chat's finish_reason, Anthropic's stop_reason, found from
 * the underscores, which are few in an answer; quotes are many). A name cut between two pieces
 * is missed.
 */
static void
watch_emit(void *arg, const char *data, size_t len)
{
    struct preq *p = arg;
    struct mg_proxy_trace *t = p->tr;
    const char *end = data + len, *s, *q;

    if (t->resp_model[0] == '\0' && t->seen < 1024 &&
        (s = mg_find(data, len, "\"model\"", 7)) != NULL) {
        member_string(s, 7, end, t->resp_model, sizeof(t->resp_model));
    }
    t->seen += len;
    for (s = data; (s = memchr(s, '_', (size_t)(end - s))) != NULL; s++) {
        if ((size_t)(end - s) >= 8 && memcmp(s, "_reason\"", 8) == 0 &&
            ((s - data >= 7 && memcmp(s - 7, "\"finish", 7) == 0) ||
             (s - data >= 5 && memcmp(s - 5, "\"stop", 5) == 0)) &&
            (q = member_string(s, 8, end, t->finish, sizeof(t->finish))) != NULL) {
            s = q;   /* past the value */
        }
    }
    mg_wire_emit(&p->wire, data, len);
}

void
mg_proxy_trace_watch(struct preq *p)
{
    if (p->tr->sampled) {
        p->relay.emit = watch_emit;
        p->relay.emit_arg = p;
    }
}

void
mg_proxy_trace_attempt(struct preq *p)
{
    struct mg_proxy_trace *t = p->tr;

    t->attempts++;
    t->open = 1;
    t->att_start = mg_now_us();
    random_id(p, t->att_span, 8);
    mg_traceparent_format(t->traceparent, t->trace_id, t->att_span, t->sampled);
    mg_schema_add_header(&p->at.up, "traceparent", t->traceparent);
}

/* host and port of an URL ("https://h:443/x"), as server.address and server.port. */
static void
server_of(struct mg_span *s, const char *url)
{
    const char *h = strstr(url, "://"), *end, *colon;
    size_t n;

    if (h == NULL) {
        return;
    }
    s->server_port = strncmp(url, "https", 5) == 0 ? 443 : 80;
    h += 3;
    end = h + strcspn(h, "/?#");
    if (*h == '[') {   /* an IPv6 literal */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        colon = rb != NULL && rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
    }
    n = (size_t)((colon != NULL ? colon : end) - h);
    if (n >= sizeof(s->server_address)) {
        n = sizeof(s->server_address) - 1;
    }
    memcpy(s->server_address, h, n);
    s->server_address[n] = '\0';
    if (colon != NULL) {   /* digits up to the path; anything else keeps the scheme's port */
        const char *d = colon + 1;
        int port = 0;
        while (d < end && *d >= '0' && *d <= '9' && port < 65536) {
            port = port * 10 + (*d++ - '0');
        }
        if (d == end && port > 0 && port < 65536) {
            s->server_port = port;
        }
    }
}

/* The fields both spans share. */
static struct mg_span *
span_new(struct preq *p, int kind)
{
    struct mg_span *s = mg_tracer_span(p->w->tracer);

    if (s == NULL) {
        return NULL;
    }
    mg_span_clear(s);
    memcpy(s->trace_id, p->tr->trace_id, 16);
    s->kind = kind;
    s->operation = operation(p);
    s->end_us = mg_now_us() + p->tr->wall_off;
    return s;
}

void
mg_proxy_trace_attempt_end(struct preq *p, struct mg_attempt *a, enum mg_outcome o)
{
    struct mg_proxy_trace *t = p->tr;
    struct mg_span *s;
    char result[32];

    if (!t->open) {
        return;
    }
    t->open = 0;
    if (!t->sampled || (s = span_new(p, MG_SPAN_CLIENT)) == NULL) {
        return;
    }
    memcpy(s->span_id, t->att_span, 8);
    memcpy(s->parent_id, t->span, 8);
    s->has_parent = 1;
    s->start_us = t->att_start + t->wall_off;
    s->provider = provider(a->schema->name);
    mg_span_text(s->request_model, sizeof(s->request_model),
                 a->entry != NULL && a->entry->model != NULL ? a->entry->model : p->model);
    s->max_tokens = p->jr.max_tokens > 0 ? p->jr.max_tokens : -1;
    if (a->up.url.data != NULL) {
        server_of(s, a->up.url.data);
    }
    s->status_code = (int)a->head.status;
    if (o == MG_OUTCOME_PENDING || o == MG_OUTCOME_OPEN || o == MG_OUTCOME_HOLD ||
        o == MG_OUTCOME_INSPECT) {
        mg_span_text(s->error_type, sizeof(s->error_type), "aborted");   /* the client left */
    } else if (o != MG_OUTCOME_COMPLETE && o != MG_OUTCOME_FINAL) {
        mg_span_text(s->error_type, sizeof(s->error_type),
                     mg_outcome_result(o, a->head.status, result, sizeof(result)));
    }
    if (a->phase == MG_PHASE_RELAY) {   /* the answer the client got */
        if (p->relay.have_usage) {
            s->input_tokens = p->relay.usage.input;
            s->output_tokens = p->relay.usage.output;
        }
        if (p->wire.t_first != 0) {
            s->first_token_us = p->wire.t_first + t->wall_off;
        }
        memcpy(s->response_model, t->resp_model, sizeof(t->resp_model));
        memcpy(s->finish_reason, t->finish, sizeof(t->finish));
    }
    mg_span_text(s->backend, sizeof(s->backend), a->backend->name);
    s->attempt = t->attempts;
}

/* A number the admission scan found at offset at - 1 of the body (0: absent), or NaN. */
static double
number_at(const struct preq *p, size_t at)
{
    char num[40], *end;
    size_t k = 0;
    double v;

    if (at == 0) {
        return NAN;
    }
    for (at--; at < p->client.body_len && k + 1 < sizeof(num) &&
               strchr("+-0123456789.eE", p->client.body[at]) != NULL &&
               p->client.body[at] != '\0'; at++) {
        num[k++] = p->client.body[at];
    }
    num[k] = '\0';
    v = strtod(num, &end);
    return k > 0 && *end == '\0' ? v : NAN;
}

void
mg_proxy_trace_end(struct preq *p, const struct mg_access_rec *r,
                   const struct mg_backend *backend, int cut)
{
    struct mg_proxy_trace *t = p->tr;
    struct mg_span *s;

    if (t->open) {   /* the client left, or the committed attempt was not reported */
        mg_proxy_trace_attempt_end(p, &p->at, cut ? MG_OUTCOME_CUT : p->at.outcome);
    }
    if (!t->sampled || (s = span_new(p, MG_SPAN_SERVER)) == NULL) {
        return;
    }
    memcpy(s->span_id, t->span, 8);
    if (t->has_parent) {
        memcpy(s->parent_id, t->parent, 8);
        s->has_parent = 1;
    }
    s->start_us = p->t0 + t->wall_off;
    s->provider = backend != NULL ? mg_proxy_provider(backend) : NULL;
    mg_span_text(s->request_model, sizeof(s->request_model), p->model);
    s->max_tokens = p->jr.max_tokens > 0 ? p->jr.max_tokens : -1;
    if (!p->jr.multipart && p->client.body != NULL) {
        s->temperature = number_at(p, p->jr.temperature_at);
        s->top_p = number_at(p, p->jr.top_p_at);
    }
    if (r->response_id != NULL) {
        mg_span_text(s->response_id, sizeof(s->response_id), r->response_id);
    }
    s->input_tokens = r->input_tokens;
    s->output_tokens = r->output_tokens;
    s->status_code = r->status;
    memcpy(s->response_model, t->resp_model, sizeof(t->resp_model));
    memcpy(s->finish_reason, t->finish, sizeof(t->finish));
    if (cut) {
        mg_span_text(s->error_type, sizeof(s->error_type), "upstream_stream_error");
    } else if (r->status >= 400 || r->status == 0) {
        snprintf(s->error_type, sizeof(s->error_type), "%d", r->status);
    }
    if (p->wire.t_first != 0) {
        s->first_token_us = p->wire.t_first + t->wall_off;
    }
    s->rule = p->rule_index;
    if (backend != NULL) {
        mg_span_text(s->backend, sizeof(s->backend), backend->name);
    }
    if (p->key != NULL) {
        mg_span_text(s->key, sizeof(s->key), p->key->name);
    }
    s->resumed = r->resumed;
    mg_tracer_ready(p->w->tracer, p->conf);
}
