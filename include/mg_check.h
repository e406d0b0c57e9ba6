/*
 * mg_check — active health checks (SPEC "Passive health", "Active checks"): a cooling backend
 * whose health.check_interval is > 0 is probed in the background every check_interval with a
 * cheap read of its model list (its schema's probe op, carrying its credentials and headers); a
 * 2xx ends its cooldown at once, anything else leaves it running. Each check is counted in
 * modelgate_backend_attempts_total{result="check_ok|check_failed"}.
 *
 * One checker runs on one worker's event loop (mg_server gives it to worker 0), with that
 * worker's curl multi, and probes the backends of the worker's current snapshot, so a reload
 * applies at the next tick. Across workers and reloads, mg_health_check_claim() (an atomic "next
 * check at" per backend name) lets at most one check through per interval, and a backend with a
 * check still in flight gets no second one. A check never goes to a backend that is not cooling,
 * never counts as a request in flight, and none is started once the worker stops: a probe never
 * keeps the process alive (mg_check_destroy() cancels those under way).
 */
#ifndef MG_CHECK_H
#define MG_CHECK_H

struct mg_worker;
struct mg_check;

/* A checker on w's event loop and curl multi, reading w->conf; on w's thread. */
struct mg_check *mg_check_create(struct mg_worker *w);

/* w took a new snapshot: the ticks follow its check_intervals (on w's thread). */
void mg_check_conf(struct mg_check *c);

/* Cancels the checks in flight and frees; on w's thread, before its curl multi goes. NULL: no-op. */
void mg_check_destroy(struct mg_check *c);

#endif
