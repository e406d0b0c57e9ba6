/*
 * mg_plan — the order of one request's attempts, and what moves it: the rule's entries ranked
 * (the balancer's order, entries whose schema does not serve the path left out, cooling
 * backends last, probe claims taken), the moves the rule's retries allow, the one same-backend
 * retry, the (backend, model) pairs tried, and the passive-health report of each attempt.
 */
#ifndef MG_PLAN_H
#define MG_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "mg_balancer.h"
#include "mg_conf_types.h"
#include "mg_failover.h"

struct mg_api;

#define MG_PLAN_TRIED_MAX (2 * MG_BALANCER_MAX)

struct mg_plan {
    const struct mg_conf *conf;
    const struct mg_rule *rule;
    size_t                ranked[MG_BALANCER_MAX];   /* indices into rule->backends, in order */
    size_t                nranked;
    int                   unserved;     /* entries were left out: their schema lacks the path */
    int                   pinned_out;   /* entries were left out by the request's pin */
    size_t                pos;          /* the current entry in ranked */
    int                   moves_left;   /* moves to another entry still allowed (retries) */
    int                   moves_made;
    int                   retried;      /* the current entry had its same-backend retry */
    struct {
        struct mg_health *st;
        int64_t           claim;        /* which claim it is (mg_health_try_probe()) */
        int               done;         /* its outcome was reported, or the claim given back */
    }                     probes[MG_BALANCER_MAX];   /* probe claims this request holds */
    size_t                nprobes;
    const char           *tried[MG_PLAN_TRIED_MAX];  /* backend names, in attempt order */
    const struct mg_rule_backend *tried_entries[MG_PLAN_TRIED_MAX];
    size_t                ntried;
};

/*
 * Which entries a request may reach besides the API's rule (a Responses previous_response_id:
 * the backend that holds the conversation).
 */
struct mg_plan_pin {
    int         native_only;   /* only entries that serve the API natively (MG_API_NATIVE) */
    const char *backend;       /* only this backend's entries (NULL: any; "": none) */
};

/* What to do after a failed attempt. */
enum mg_plan_step {
    MG_PLAN_RETRY,   /* the same entry once more, after *delay_ms */
    MG_PLAN_MOVE,    /* the next entry (pos moved) */
    MG_PLAN_END,     /* nothing left: the request ends with what it has */
};

/*
 * Ranks rule's entries for a request of a client of api (mg_api_route) at now, only those pin
 * allows (NULL: all).
 */
void mg_plan_init(struct mg_plan *pl, const struct mg_conf *conf, const struct mg_rule *rule,
                  const struct mg_api *api, const struct mg_plan_pin *pin, uint64_t *rng,
                  int64_t now);

/* The entry to try now. */
const struct mg_rule_backend *mg_plan_entry(const struct mg_plan *pl);

/* An attempt on e (backend name) starts. */
void mg_plan_tried(struct mg_plan *pl, const struct mg_rule_backend *e, const char *name);

/*
 * The current entry's backend cannot take one of the request's parameters: the entry is left
 * out, as if it had never been ranked (no move is spent). 0 when no entry is left.
 */
int mg_plan_leave_out(struct mg_plan *pl);

/*
 * The next step after a failed attempt f: the same-backend retry (once per entry), a move
 * (a context-length failure skips entries whose pair was tried, at no cost), or the end.
 */
enum mg_plan_step mg_plan_next(struct mg_plan *pl, const struct mg_failure *f, uint64_t *rng,
                               int64_t *delay_ms);

/*
 * Mid-stream resume: moves to the next entry (after the current one, round the ranking) that
 * ok(entry, arg) accepts, spending one of the rule's moves; entries passed over cost none. 0 when
 * no move is left or no entry is accepted.
 */
int mg_plan_move_where(struct mg_plan *pl,
                       int (*ok)(const struct mg_rule_backend *e, void *arg), void *arg);

/* Reports an attempt's outcome (enum mg_outcome) on backend b to passive health; logs changes. */
void mg_plan_report(struct mg_plan *pl, const struct mg_backend *b, int outcome, long status,
                    int64_t retry_after_s, int64_t now);

/* Gives back the probe claims not reported, except keep's (NULL: all). */
void mg_plan_give_back(struct mg_plan *pl, const struct mg_health *keep, int64_t now);

#endif
