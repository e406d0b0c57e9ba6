/*
 * mg_trace_export — a worker's span exporter: the bounded queue requests append finished spans
 * to, and the batches posted from it to the `tracing:` collector (OTLP/HTTP JSON) by the worker's
 * own curl multi, on its own loop: the request path appends a record and returns, nothing locks,
 * nothing waits. Batches of up to MG_TRACE_BATCH_MAX spans go every second (at once when that many
 * wait), one export in flight, 10 s timeout; a full queue or a failed export drops spans, counted
 * in modelgate_trace_spans_dropped_total and logged at most once a minute.
 */
#ifndef MG_TRACE_EXPORT_H
#define MG_TRACE_EXPORT_H

struct event_base;
struct mg_conf;
struct mg_span;
struct mg_stats;
struct mg_tracer;
struct mg_upstream;

/* The exporter of a worker (nothing allocated for spans until the first one). */
struct mg_tracer *mg_tracer_create(struct event_base *base, struct mg_upstream *up,
                                   struct mg_stats *st);
/* Cancels an export in flight, drops what is queued. NULL is a no-op. Before up is destroyed. */
void mg_tracer_destroy(struct mg_tracer *t);

/* A record for one finished span (to fill at once), or NULL: the queue is full (counted). */
struct mg_span *mg_tracer_span(struct mg_tracer *t);

/*
 * The worker's loop has ended (it stops): 1 when spans are queued or an export is under way, and
 * running the loop again exports them, batch after batch (each export then has 2 s), and ends it
 * after the last; 0 when there is nothing to send. Spans of requests that still run are not
 * waited for: by then there are none.
 */
int mg_tracer_flush(struct mg_tracer *t);

/* The spans just filled are ready to go to conf's collector (a snapshot with tracing on). */
void mg_tracer_ready(struct mg_tracer *t, struct mg_conf *conf);

#endif
