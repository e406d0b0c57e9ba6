/*
 * mg_worker — the in-flight count of a worker and the stop condition that reads it.
 */
#include <event2/event.h>

#include "mg_stats.h"
#include "mg_worker.h"

void
mg_worker_request_begin(struct mg_worker *w)
{
    w->inflight++;
    mg_stats_inflight(w->stats, w->inflight);
}

void
mg_worker_request_done(struct mg_worker *w)
{
    w->inflight--;
    mg_stats_inflight(w->stats, w->inflight);
    if (w->stopping && w->inflight == 0) {
        event_base_loopexit(w->base, NULL);
    }
}

void
mg_worker_stop(struct mg_worker *w)
{
    w->stopping = 1;
    if (w->inflight == 0) {
        event_base_loopexit(w->base, NULL);
    }
}
