/*
 * mg_plan — ranking, moves, same-backend retry and health reports for one request.
 */
#include <string.h>

#include "mg_api.h"
#include "mg_health.h"
#include "mg_health_shared.h"
#include "mg_log.h"
#include "mg_outcome.h"
#include "mg_plan.h"

void
mg_plan_init(struct mg_plan *pl, const struct mg_conf *conf, const struct mg_rule *rule,
             const struct mg_api *api, const struct mg_plan_pin *pin, uint64_t *rng,
             int64_t now)
{
    int cooling[MG_BALANCER_MAX];
    size_t i, k;

    memset(pl, 0, sizeof(*pl));
    pl->conf = conf;
    pl->rule = rule;
    pl->nranked = mg_balancer_rank(rule, rng, pl->ranked);
    for (i = k = 0; i < pl->nranked; i++) {   /* schemas that do not serve the API are left out */
        const struct mg_backend *b = &conf->backends[rule->backends[pl->ranked[i]].backend];
        int mode = mg_api_mode(api, b);
        if (mode == 0) {
            pl->unserved = 1;
        } else if (pin != NULL && ((pin->native_only && mode != MG_API_NATIVE) ||
                                   (pin->backend != NULL && strcmp(pin->backend, b->name) != 0))) {
            pl->pinned_out = 1;
        } else {
            pl->ranked[k++] = pl->ranked[i];
        }
    }
    pl->nranked = k;
    pl->moves_left = rule->retries_set ? rule->retries : (int)pl->nranked - 1;
    /* cooling backends last; one whose cooldown is over is probed by one request at a time:
     * the one that wins the claim tries it in its normal place */
    for (i = 0; i < pl->nranked; i++) {
        struct mg_health *st = conf->backends[rule->backends[pl->ranked[i]].backend].state;
        int c = mg_health_cooling(st, now);
        for (k = 0; k < pl->nprobes && pl->probes[k].st != st; k++) {
        }
        if (k < pl->nprobes) {
            c = 0;   /* this request holds the probe */
        } else if (c == MG_HEALTH_PROBE_DUE &&
                   mg_health_try_probe(st, now, &pl->probes[pl->nprobes].claim)) {
            pl->probes[pl->nprobes].st = st;
            pl->probes[pl->nprobes++].done = 0;
            c = 0;
        }
        cooling[i] = c != 0;
    }
    mg_balancer_demote(pl->ranked, pl->nranked, cooling);
}

const struct mg_rule_backend *
mg_plan_entry(const struct mg_plan *pl)
{
    return &pl->rule->backends[pl->ranked[pl->pos]];
}

void
mg_plan_tried(struct mg_plan *pl, const struct mg_rule_backend *e, const char *name)
{
    if (pl->ntried < MG_PLAN_TRIED_MAX) {
        pl->tried[pl->ntried] = name;
        pl->tried_entries[pl->ntried++] = e;
    }
}

int
mg_plan_leave_out(struct mg_plan *pl)
{
    size_t i;

    for (i = pl->pos; i + 1 < pl->nranked; i++) {
        pl->ranked[i] = pl->ranked[i + 1];
    }
    pl->nranked--;
    if (pl->nranked == 0) {
        return 0;
    }
    if (!pl->rule->retries_set) {   /* the default is the ranked entries - 1 */
        if (pl->moves_made > (int)pl->nranked - 1) {
            return 0;   /* the move that led here would have wrapped around */
        }
        pl->moves_left = (int)pl->nranked - 1 - pl->moves_made;
    }
    pl->pos %= pl->nranked;
    pl->retried = 0;
    return 1;
}

/* 1 when entry e would send to a (backend, model) pair this request already tried. */
static int
pair_tried(const struct mg_plan *pl, const struct mg_rule_backend *e)
{
    size_t i;

    for (i = 0; i < pl->ntried; i++) {
        const struct mg_rule_backend *t = pl->tried_entries[i];
        if (t->backend == e->backend &&
            (t->model == e->model || (t->model && e->model && strcmp(t->model, e->model) == 0))) {
            return 1;
        }
    }
    return 0;
}

enum mg_plan_step
mg_plan_next(struct mg_plan *pl, const struct mg_failure *f, uint64_t *rng, int64_t *delay_ms)
{
    size_t i, next = (pl->pos + 1) % pl->nranked;

    *delay_ms = pl->retried ? -1 : mg_failover_retry_delay(pl->rule, f, rng);
    if (*delay_ms >= 0) {
        pl->retried = 1;
        return MG_PLAN_RETRY;
    }
    if (f->outcome == MG_OUTCOME_FAIL_CONTEXT) {
        /* entries that would send to a pair already tried are skipped, at no cost */
        for (i = 0; i < pl->nranked && pair_tried(pl, &pl->rule->backends[pl->ranked[next]]);
             i++) {
            next = (next + 1) % pl->nranked;
        }
        if (i == pl->nranked) {
            return MG_PLAN_END;
        }
    }
    if (pl->moves_left <= 0) {
        return MG_PLAN_END;
    }
    pl->moves_left--;
    pl->moves_made++;
    pl->pos = next;
    pl->retried = 0;
    return MG_PLAN_MOVE;
}

int
mg_plan_move_where(struct mg_plan *pl,
                   int (*ok)(const struct mg_rule_backend *e, void *arg), void *arg)
{
    size_t i, at;

    if (pl->moves_left <= 0) {
        return 0;
    }
    for (i = 1; i <= pl->nranked; i++) {
        at = (pl->pos + i) % pl->nranked;
        if (ok(&pl->rule->backends[pl->ranked[at]], arg)) {
            pl->moves_left--;
            pl->moves_made++;
            pl->pos = at;
            pl->retried = 1;   /* a continuation is never retried on its backend */
            return 1;
        }
    }
    return 0;
}

void
mg_plan_report(struct mg_plan *pl, const struct mg_backend *b, int outcome, long status,
               int64_t retry_after_s, int64_t now)
{
    enum mg_outcome o = (enum mg_outcome)outcome;
    size_t i;
    int ch;

    if (o == MG_OUTCOME_FAIL_STATUS && (status == 429 || status == 503 || status == 529) &&
        retry_after_s >= 0) {
        ch = mg_health_retry_after(b->state, &b->health, now, retry_after_s * 1000);
    } else if ((mg_outcome_fails(o) && o != MG_OUTCOME_FAIL_CONTEXT) || o == MG_OUTCOME_CUT) {
        ch = mg_health_failure(b->state, &b->health, now);
    } else {
        ch = mg_health_success(b->state, &b->health, now);
    }
    for (i = 0; i < pl->nprobes; i++) {
        if (pl->probes[i].st == b->state) {
            pl->probes[i].done = 1;
        }
    }
    if (ch == MG_HEALTH_WENT_DOWN || ch == MG_HEALTH_AGAIN) {
        mg_log_warn("backend %s is down: cooling down for %lld ms", b->name,
                    (long long)mg_health_cooldown_left(b->state, now));
        mg_health_shared_publish(b, ch, now);   /* shared: the other instances keep off it too */
    } else if (ch == MG_HEALTH_CAME_UP) {
        mg_log_warn("backend %s is up again", b->name);
        mg_health_shared_publish(b, ch, now);
    }
}

void
mg_plan_give_back(struct mg_plan *pl, const struct mg_health *keep, int64_t now)
{
    size_t i;

    for (i = 0; i < pl->nprobes; i++) {
        if (!pl->probes[i].done && pl->probes[i].st != keep) {
            pl->probes[i].done = 1;
            mg_health_probe_cancel(pl->probes[i].st, pl->probes[i].claim, now);
        }
    }
}
