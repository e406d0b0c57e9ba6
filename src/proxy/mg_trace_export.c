/*
 * mg_trace_export — the span queue of a worker and its export to an OTLP/HTTP collector.
 *
 * Everything runs on the worker's thread: requests push records, a timer of the worker's loop
 * encodes a batch (mg_trace_encode) and hands one POST to the worker's curl multi (mg_upstream);
 * its end is reported from the loop. A collector that is down fails fast; one that hangs holds
 * only its own transfer for up to 10 s while spans keep queueing (and drop once the queue is
 * full): requests never see it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "mg_conf_types.h"
#include "mg_log.h"
#include "mg_stats.h"
#include "mg_trace.h"
#include "mg_trace_export.h"
#include "mg_upstream.h"

#define EXPORT_TIMEOUT_MS 10000
#define FLUSH_TIMEOUT_MS  2000    /* the last exports, when the worker stops */
#define EXPORT_BODY_MAX   (64u * 1024 * 1024)
#define LOG_EVERY_MS      60000

struct mg_tracer {
    struct event_base      *base;
    struct mg_upstream     *up;
    struct mg_stats        *stats;
    struct mg_span_queue    q;          /* allocated with the first span */
    struct event           *timer;
    struct mg_conf         *conf;       /* the snapshot whose collector gets the next batch */
    CURL                   *easy;       /* the tracer's own handle, not the request pool's */
    struct mg_upstream_xfer xfer;
    struct curl_slist      *headers;
    struct mg_buf           body;
    size_t                  inflight;   /* spans in the export under way; 0: none */
    uint64_t                unlogged[2];   /* drops not logged yet: queue full, export failed */
    int64_t                 logged_ms;  /* the last drop line */
    int                     flushing;   /* the worker stops: export what is queued, then exit */
};

static void
log_drops(struct mg_tracer *t, const char *why)
{
    int64_t now = mg_now_ms();

    if (t->logged_ms != 0 && now - t->logged_ms < LOG_EVERY_MS) {
        return;
    }
    mg_log_warn("tracing: %llu spans dropped (queue full), %llu (export failed)%s%s",
                (unsigned long long)t->unlogged[0], (unsigned long long)t->unlogged[1],
                why != NULL ? ": " : "", why != NULL ? why : "");
    t->unlogged[0] = t->unlogged[1] = 0;
    t->logged_ms = now;
}

static void
drop(struct mg_tracer *t, int export_failed, uint64_t n, const char *why)
{
    mg_stats_trace_dropped(t->stats, export_failed, n);
    t->unlogged[export_failed ? 1 : 0] += n;
    log_drops(t, why);
}

static void
arm(struct mg_tracer *t)
{
    struct timeval tv = {1, 0}, now = {0, 0};

    if (t->flushing) {   /* the next batch at once; the loop ends after the last */
        if (t->q.n > 0) {
            evtimer_add(t->timer, &now);
        } else {
            event_base_loopexit(t->base, NULL);
        }
        return;
    }
    if (t->q.n >= MG_TRACE_BATCH_MAX) {
        evtimer_add(t->timer, &now);
    } else if (t->q.n > 0 && !evtimer_pending(t->timer, NULL)) {
        evtimer_add(t->timer, &tv);
    }
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n;
}

static void
on_done(void *arg, CURLcode rc)
{
    struct mg_tracer *t = arg;
    long status = 0;
    char why[160];

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status < 200 || status > 299) {
        if (rc != CURLE_OK) {
            snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
        } else {
            snprintf(why, sizeof(why), "the collector answered %ld", status);
        }
        drop(t, 1, t->inflight, why);
    }
    t->inflight = 0;
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    arm(t);
}

#define SET(opt, val)                                                                           \
    do {                                                                                        \
        if (curl_easy_setopt(t->easy, opt, val) != CURLE_OK) {                                  \
            goto error;                                                                         \
        }                                                                                       \
    } while (0)

/* One batch to the collector. From the loop (the timer), never from a request. */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mg_tracer *t = arg;
    const struct mg_trace_conf *c = t->conf != NULL ? &t->conf->tracing : NULL;
    struct curl_slist *h;
    size_t n, i;
    char line[8192];

    if (t->inflight > 0 || t->q.n == 0) {
        return;   /* the export under way arms the timer again when it ends */
    }
    if (c == NULL || !c->on) {
        t->q.head = t->q.n = 0;   /* tracing was turned off by a reload */
        arm(t);
        return;
    }
    n = mg_trace_encode(&t->body, c->service_name, &t->q, MG_TRACE_BATCH_MAX);
    if (t->easy == NULL && (t->easy = curl_easy_init()) == NULL) {
        goto error;
    }
    h = curl_slist_append(NULL, "Content-Type: application/json");
    for (i = 0; h != NULL && i < c->nheaders; i++) {
        struct curl_slist *nh;
        snprintf(line, sizeof(line), "%s: %s", c->headers[i].name, c->headers[i].value);
        if ((nh = curl_slist_append(h, line)) == NULL) {
            curl_slist_free_all(h);
            h = NULL;
        } else {
            h = nh;
        }
    }
    if (h == NULL || curl_slist_append(h, "Expect:") == NULL) {
        curl_slist_free_all(h);
        goto error;
    }
    t->headers = h;
    SET(CURLOPT_URL, c->otlp);
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_POSTFIELDS, t->body.data);
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body.len);
    SET(CURLOPT_TIMEOUT_MS, (long)(t->flushing ? FLUSH_TIMEOUT_MS : EXPORT_TIMEOUT_MS));
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)EXPORT_TIMEOUT_MS);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROXY, "");   /* the collector is reached directly, whatever HTTPS_PROXY says */
    SET(CURLOPT_WRITEFUNCTION, discard);
    t->xfer.easy = t->easy;
    t->xfer.done = on_done;
    t->xfer.arg = t;
    if (mg_upstream_start(t->up, &t->xfer) != MG_OK) {
        goto error;
    }
    t->inflight = n;
    return;
error:
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    drop(t, 1, n, "cannot start the export");
    arm(t);
}

struct mg_tracer *
mg_tracer_create(struct event_base *base, struct mg_upstream *up, struct mg_stats *st)
{
    struct mg_tracer *t = mg_calloc(1, sizeof(*t));

    t->base = base;
    t->up = up;
    t->stats = st;
    t->timer = evtimer_new(base, on_timer, t);
    if (t->timer == NULL) {
        mg_log_error("tracing: cannot make the export timer");
        abort();
    }
    mg_buf_init(&t->body, EXPORT_BODY_MAX);
    return t;
}

void
mg_tracer_destroy(struct mg_tracer *t)
{
    if (t == NULL) {
        return;
    }
    if (t->inflight > 0) {
        mg_upstream_cancel(t->up, &t->xfer);
    }
    if (t->easy != NULL) {
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    event_free(t->timer);
    mg_span_queue_deinit(&t->q);
    mg_buf_deinit(&t->body);
    mg_conf_unref(t->conf);
    free(t);
}

struct mg_span *
mg_tracer_span(struct mg_tracer *t)
{
    struct mg_span *s;

    if (t->q.v == NULL) {
        mg_span_queue_init(&t->q, MG_TRACE_QUEUE_MAX);
    }
    s = mg_span_queue_push(&t->q);
    if (s == NULL) {
        drop(t, 0, 1, NULL);
    }
    return s;
}

int
mg_tracer_flush(struct mg_tracer *t)
{
    if (t == NULL || (t->q.n == 0 && t->inflight == 0)) {
        return 0;
    }
    t->flushing = 1;
    if (t->inflight == 0) {   /* else the export under way goes on to the next batch */
        evtimer_del(t->timer);
        arm(t);
    }
    return 1;
}

void
mg_tracer_ready(struct mg_tracer *t, struct mg_conf *conf)
{
    if (t->conf != conf) {   /* a new snapshot: its collector from the next batch on */
        mg_conf_unref(t->conf);
        t->conf = mg_conf_ref(conf);
    }
    if (t->inflight == 0) {
        arm(t);
    }
}
