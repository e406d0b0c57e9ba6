/*
 * mg_check — active health checks of cooling backends, from one worker's event loop.
 *
 * A tick polls the health words of the current snapshot's backends (a load each, no lock) at a
 * quarter of the shortest check_interval (25 ms to 1 s), so a check starts at most that late;
 * a backend due for a check (mg_health_check_claim) gets one, an mg_attempt of its own on the
 * worker's curl multi built by the schema's probe op (GET of the model list, the backend's
 * timeouts). Each check holds the snapshot its backend belongs to until it ends.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "mg_attempt.h"
#include "mg_check.h"
#include "mg_conf_types.h"
#include "mg_health.h"
#include "mg_health_shared.h"
#include "mg_log.h"
#include "mg_schema.h"
#include "mg_stats.h"
#include "mg_util.h"
#include "mg_worker.h"

#define TICK_MIN_MS 25
#define TICK_MAX_MS 1000
#define PROBE_BODY_MAX (64 * 1024)

struct probe {
    struct mg_attempt at;
    struct mg_check  *c;
    struct mg_conf   *conf;    /* the snapshot of at.backend, held while the check runs */
    struct probe     *next;
};

struct mg_check {
    struct mg_worker *w;
    struct event      tick;
    struct probe     *probes;  /* in flight */
};

static void on_tick(evutil_socket_t fd, short what, void *arg);

/* check_interval of b when it can be checked at all, else 0. */
static int64_t
interval_of(const struct mg_backend *b)
{
    return b->state != NULL && mg_schema_get(b->schema)->probe != NULL
           ? b->health.check_interval_ms : 0;
}

/* The next tick, from the current snapshot's shortest check_interval; none when all are 0. */
static void
arm(struct mg_check *c)
{
    const struct mg_conf *conf = c->w->conf;
    int64_t min = 0, ms, iv;
    struct timeval tv;
    size_t i;

    for (i = 0; conf != NULL && i < conf->nbackends; i++) {
        iv = interval_of(&conf->backends[i]);
        if (iv > 0 && (min == 0 || iv < min)) {
            min = iv;
        }
    }
    if (min == 0 || c->w->stopping) {
        evtimer_del(&c->tick);
        return;
    }
    ms = min / 4 < TICK_MIN_MS ? TICK_MIN_MS : min / 4 > TICK_MAX_MS ? TICK_MAX_MS : min / 4;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
    evtimer_add(&c->tick, &tv);
}

static void
probe_free(struct probe *p)
{
    struct probe **at;

    for (at = &p->c->probes; *at != NULL; at = &(*at)->next) {
        if (*at == p) {
            *at = p->next;
            break;
        }
    }
    mg_attempt_deinit(&p->at);
    mg_conf_unref(p->conf);
    free(p);
}

static void
probe_head(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
}

static size_t
probe_body(void *owner, struct mg_attempt *a, const char *p, size_t n)
{
    return n;   /* the list itself says nothing more than its status */
}

/* From the event loop: the check is over; the owner (not curl) frees it. */
static void
probe_end(void *owner, struct mg_attempt *a, enum mg_outcome o)
{
    struct probe *p = owner;
    const struct mg_backend *b = a->backend;
    int ok = o == MG_OUTCOME_COMPLETE && a->head.status >= 200 && a->head.status <= 299;

    mg_stats_attempt(p->c->w->stats, b->name, ok ? "check_ok" : "check_failed");
    if (ok) {
        if (mg_health_check_ok(b->state, mg_now_ms()) == MG_HEALTH_CAME_UP) {
            mg_log_warn("backend %s is up again (active check)", b->name);
            mg_health_shared_publish(b, MG_HEALTH_CAME_UP, mg_now_ms());
        }
    } else if (a->head.status > 0) {
        mg_log_debug("backend %s: active check answered %ld; still cooling", b->name,
                    a->head.status);
    } else {
        mg_log_debug("backend %s: active check failed: %s; still cooling", b->name,
                    mg_attempt_error(a));
    }
    probe_free(p);
}

static const struct mg_attempt_ops probe_ops = {
    .head = probe_head,
    .body = probe_body,
    .end = probe_end,
};

static int
in_flight(const struct mg_check *c, const char *name)
{
    const struct probe *p;

    for (p = c->probes; p != NULL; p = p->next) {
        if (strcmp(p->at.backend->name, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void
start_probe(struct mg_check *c, struct mg_conf *conf, const struct mg_backend *b)
{
    struct probe *p = mg_calloc(1, sizeof(*p));

    p->c = c;
    p->conf = mg_conf_ref(conf);
    p->next = c->probes;
    c->probes = p;
    mg_attempt_init(&p->at, c->w->base, c->w->upstream, PROBE_BODY_MAX, &probe_ops, p);
    mg_attempt_reset(&p->at, b, NULL);
    if (mg_schema_get(b->schema)->probe(b, &p->at.up) != MG_OK ||
        mg_attempt_start(&p->at) != MG_OK) {
        mg_log_error("backend %s: cannot start an active check", b->name);
        mg_stats_attempt(c->w->stats, b->name, "check_failed");
        probe_free(p);
        return;
    }
    mg_log_debug("backend %s: active check", b->name);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mg_check *c = arg;
    struct mg_conf *conf = c->w->conf;
    int64_t now = mg_now_ms(), iv;
    size_t i;

    if (c->w->stopping) {
        return;   /* no new check: the worker is leaving */
    }
    for (i = 0; i < conf->nbackends; i++) {
        const struct mg_backend *b = &conf->backends[i];
        if ((iv = interval_of(b)) > 0 && !in_flight(c, b->name) &&
            mg_health_check_claim(b->state, now, iv)) {
            start_probe(c, conf, b);
        }
    }
    arm(c);
}

struct mg_check *
mg_check_create(struct mg_worker *w)
{
    struct mg_check *c = mg_calloc(1, sizeof(*c));

    c->w = w;
    evtimer_assign(&c->tick, w->base, on_tick, c);
    arm(c);
    return c;
}

void
mg_check_conf(struct mg_check *c)
{
    arm(c);
}

void
mg_check_destroy(struct mg_check *c)
{
    if (c == NULL) {
        return;
    }
    evtimer_del(&c->tick);
    while (c->probes != NULL) {
        probe_free(c->probes);
    }
    free(c);
}
