/*
 * mg_health — passive health of backends (SPEC "Passive health"): failures in a row start a
 * cooldown, further failures double it up to a cap, a Retry-After starts one at once, and after a
 * cooldown one request at a time probes the backend.
 *
 * State is per backend name in a registry (struct mg_health_registry) that the runtime holds
 * (mg_runtime), outside config snapshots, so reloads keep it. mg_health_get() (mutex, slow path)
 * is for when a snapshot goes into service; every other function is lock-free and
 * safe from any worker thread: a backend's whole state is one 64-bit word changed by
 * compare-and-swap, so no thread ever sees half a transition. Time is passed in (monotonic
 * milliseconds, 0 <= now < 2^42) so tests drive the clock.
 *
 * Rules, beyond the SPEC's:
 * - A backend is "down" from the start of a cooldown until a success after that cooldown ended.
 *   While its cooldown runs, reported outcomes are ignored (they come from attempts that were
 *   under way, or ranked last, and say nothing new), except that a longer Retry-After extends it.
 * - Once the cooldown has ended, the first outcome reported decides: a success brings the backend
 *   up (count and cooldown length reset), a failure starts the next cooldown (cooldown << n,
 *   capped at max_cooldown). Normally that outcome is the probe's.
 * - A Retry-After failure is also a failure: when the count (or a failed probe) would start a
 *   longer cooldown than the Retry-After, the longer one wins.
 * - failures == 0 turns counting off: only Retry-After cooldowns happen, and a probe that fails
 *   without one gives the probe back, so the next request probes again.
 *
 * Use: rank an entry last when mg_health_cooling() says MG_HEALTH_COOLING; when it says
 * MG_HEALTH_PROBE_DUE, mg_health_try_probe() picks the one request that probes (the others rank it
 * last); report every attempt's outcome with mg_health_success(), _failure() or _retry_after().
 *
 * Active checks (check_interval > 0, mg_check): mg_health_check_claim() lets one check through
 * per interval while the backend is down (the first one interval after the cooldown started);
 * a check that succeeded ends the cooldown at once (mg_health_check_ok()); a failed one changes
 * nothing (the passive state goes on as before).
 */
#ifndef MG_HEALTH_H
#define MG_HEALTH_H

#include <stdint.h>

#include "mg_conf_types.h"   /* struct mg_health_conf */

struct mg_buf;

/* One backend's state; reached only through the functions below. */
struct mg_health;

/* Every backend's state by name; one per runtime (tests make their own). */
struct mg_health_registry;

/* mg_health_cooling() */
#define MG_HEALTH_COOLING   1   /* down: cooldown running, or a probe is out; rank it last */
#define MG_HEALTH_PROBE_DUE 2   /* down, cooldown over, no probe out: mg_health_try_probe() */

/* What a report changed, for one warn line and the metrics. */
#define MG_HEALTH_SAME      0   /* nothing to log */
#define MG_HEALTH_WENT_DOWN 1   /* up -> down: a cooldown started (cooldowns + 1) */
#define MG_HEALTH_AGAIN     2   /* still down: the next, longer cooldown started (cooldowns + 1) */
#define MG_HEALTH_CAME_UP   3   /* down -> up */

/* failures counted in a row saturate here; a larger `failures` acts as this value. */
#define MG_HEALTH_FAILURES_MAX 16383

/*
 * A probe that has not reported after this long stops holding the claim, and the next request
 * probes: the probe's request may have been abandoned (client gone) without an outcome. The
 * outcome normally comes at the attempt's commit or failure, within first_byte/first_token (60 s
 * by default); a slower probe only lets a second one through. A late report still counts.
 */
#define MG_HEALTH_PROBE_TTL_MS 60000

/* An empty registry. */
struct mg_health_registry *mg_health_registry_create(void);

/*
 * Frees the registry and every state in it. Only when no thread holds a pointer from
 * mg_health_get() (the server's exit, a test's end). NULL is a no-op.
 */
void mg_health_registry_destroy(struct mg_health_registry *reg);

/*
 * The state of the backend called name in reg, created (up, no failures) on first use and kept,
 * at the same address, as long as reg lives. Takes a mutex: call it when a snapshot goes into
 * service and keep the pointer, never per request.
 */
struct mg_health *mg_health_get(struct mg_health_registry *reg, const char *name);

/* The name the state was created for. */
const char *mg_health_name(const struct mg_health *st);

/* 0 when up; MG_HEALTH_COOLING or MG_HEALTH_PROBE_DUE (both non-zero) when down. */
int mg_health_cooling(const struct mg_health *st, int64_t now);

/*
 * Claims the probe of a down backend whose cooldown is over: 1 for exactly one caller across all
 * threads (it tries the backend in its normal place), 0 for every other caller and while the
 * cooldown runs or the backend is up. The claim lasts until an outcome is reported or
 * MG_HEALTH_PROBE_TTL_MS passes. *claim (may be NULL) gets what identifies this claim, for
 * mg_health_probe_cancel().
 */
int mg_health_try_probe(struct mg_health *st, int64_t now, int64_t *claim);

/*
 * Gives back the claim that mg_health_try_probe() granted to this caller (*claim it set) when its
 * request ended without trying the backend, so the next request may probe at once instead of
 * after the TTL. Nothing when that claim is no longer the one out (it expired and another request
 * holds the probe now, or an outcome was reported).
 */
void mg_health_probe_cancel(struct mg_health *st, int64_t claim, int64_t now);

/* A failed attempt on the backend. Returns MG_HEALTH_SAME, _WENT_DOWN or _AGAIN. */
int mg_health_failure(struct mg_health *st, const struct mg_health_conf *conf, int64_t now);

/*
 * A failed attempt that carried Retry-After (429, 503, 529): a cooldown of retry_after_ms (at most
 * max_cooldown_ms) at once, whatever `failures` says; it may extend a running cooldown (no new
 * one). retry_after_ms <= 0 is a plain failure. Returns MG_HEALTH_SAME, _WENT_DOWN or _AGAIN.
 */
int mg_health_retry_after(struct mg_health *st, const struct mg_health_conf *conf, int64_t now,
                          int64_t retry_after_ms);

/* Any other answer (a context-length 400 included). Returns MG_HEALTH_SAME or _CAME_UP. */
int mg_health_success(struct mg_health *st, const struct mg_health_conf *conf, int64_t now);

/*
 * Claims the next active check of a down backend: 1 for one caller across all threads when the
 * backend is down and its next check is due (then the one after is interval_ms from now), else
 * 0 (up, not yet due, interval_ms <= 0). The first check of a cooldown streak is due interval_ms
 * after it started (mg_health_failure() and _retry_after() set it, from conf->check_interval_ms).
 */
int mg_health_check_claim(struct mg_health *st, int64_t now, int64_t interval_ms);

/*
 * An active check answered 2xx: a down backend is up at once (its cooldown ends, its streak
 * resets, a probe claim out is void). Returns MG_HEALTH_CAME_UP, or MG_HEALTH_SAME when it was
 * up already.
 */
int mg_health_check_ok(struct mg_health *st, int64_t now);

/* modelgate_backend_up: 1, or 0 from the start of a cooldown until the backend comes up. */
int mg_health_up(const struct mg_health *st);

/* modelgate_backend_cooldowns_total: cooldowns started since the process began. */
uint64_t mg_health_cooldowns(const struct mg_health *st);

/* Milliseconds until the running cooldown (or probe claim) ends; 0 when none. For log lines. */
int64_t mg_health_cooldown_left(const struct mg_health *st, int64_t now);

/* Calls fn for every backend state in reg (under its mutex), in creation order. */
void mg_health_foreach(struct mg_health_registry *reg, void (*fn)(struct mg_health *st, void *arg),
                       void *arg);

/*
 * Appends the backends' families of the Prometheus exposition (modelgate_backend_up,
 * modelgate_backend_cooldowns_total): every backend name configured since the start.
 */
void mg_health_render(struct mg_health_registry *reg, struct mg_buf *out);

#endif
