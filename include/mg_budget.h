/*
 * mg_budget — the spend of client keys with a `budget:` (SPEC "Spend and budgets"), by key name,
 * in a registry the runtime holds outside config snapshots (as mg_limit's buckets): a reload
 * keeps every key's spend, a changed budget applies from then on.
 *
 * Windows are calendar UTC: a day from 00:00, a week from Monday 00:00, a month from the 1st,
 * `total` from the epoch and never over. A key's entry holds one window: the first operation in a
 * later window starts it from zero. Money is integer micro-dollars.
 *
 * Admission reserves a request's estimated cost (capped at the budget) while the budget not yet
 * spent or reserved covers it; the answer's real cost replaces the reservation (mg_budget_settle),
 * so the request that crosses the budget completes, and concurrent ones overshoot by at most
 * their reservations. A key's entry takes a mutex per operation: keys without a budget never
 * reach this module.
 *
 * With `shared:` the spend of each window lives in Redis (mg_budget_redis.c): an entry then also
 * keeps what is settled here and not yet added there (`unsent`), and the total Redis answered.
 * Without it, mg_budget_save() and mg_budget_load() keep the spend across restarts in
 * `state_file` ({"version":1,"spend":{key:{window_start:micro_usd}}}).
 *
 * Time is passed in: Unix seconds (wall clock: windows are calendar ones).
 */
#ifndef MG_BUDGET_H
#define MG_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

enum mg_budget_per { MG_BUDGET_DAY, MG_BUDGET_WEEK, MG_BUDGET_MONTH, MG_BUDGET_TOTAL };

/* One key's spend; reached only through the functions below. */
struct mg_budget;

/* Every key's spend, by name. */
struct mg_budget_registry;

/* What a key's budget looks like now. */
struct mg_budget_view {
    int64_t usd;           /* the budget, micro-dollars (0: the key has none) */
    int     per;           /* enum mg_budget_per */
    int64_t spent;         /* in the current window, micro-dollars */
    int64_t remaining;     /* usd - spent, never below 0 */
    int64_t window_start;  /* Unix seconds */
    int64_t window_end;    /* Unix seconds; 0 for total (never) */
};

struct mg_budget_registry *mg_budget_registry_create(void);

/* Frees the registry and its entries. Only when no thread holds an entry. NULL is a no-op. */
void mg_budget_registry_destroy(struct mg_budget_registry *reg);

/* The entry of the key called name, made on first use and kept at its address. Takes a lock. */
struct mg_budget *mg_budget_get(struct mg_budget_registry *reg, const char *name);

/* The key's name. */
const char *mg_budget_name(const struct mg_budget *b);

/* Sets the key's budget (micro-dollars, per) when a snapshot goes into service. */
void mg_budget_configure(struct mg_budget *b, int64_t usd, int per);

/* "day", "week", "month", "total"; or -1 from mg_budget_per_parse() for anything else. */
const char *mg_budget_per_name(int per);
int mg_budget_per_parse(const char *s);

/* The window of per that holds now: [*start, *end) in Unix seconds (*end 0 for total). */
void mg_budget_window(int per, int64_t now, int64_t *start, int64_t *end);

/*
 * Admission: 1 when the window's budget, less its spend and the reservations in flight, covers
 * min(cost, budget) (and some budget is left), which is then reserved (*reserved); else 0, and
 * nothing is reserved. view (may be NULL) gets the state after the decision.
 */
int mg_budget_admit(struct mg_budget *b, int64_t now, int64_t cost, int64_t *reserved,
                    struct mg_budget_view *view);

/* The end of an admitted request: its reservation goes, its cost is spent (0 for no answer). */
void mg_budget_settle(struct mg_budget *b, int64_t now, int64_t reserved, int64_t cost);

/* The state now. */
void mg_budget_peek(struct mg_budget *b, int64_t now, struct mg_budget_view *view);

/* Zeroes the spend of the current window (the admin API's reset). */
void mg_budget_reset(struct mg_budget *b, int64_t now);

/*
 * Writes every entry's spend in its window as the state file's JSON into out. Returns the number
 * of entries written.
 */
size_t mg_budget_dump(struct mg_budget_registry *reg, struct mg_buf *out);

/*
 * Reads a state file's JSON (text[0..len)) into reg: each key's window and spend, taken only
 * while the key's window is still the current one (mg_budget_configure() decides on the first
 * operation). 0, or -1 with why (a sentence) when it is not such a document; nothing is taken then.
 */
int mg_budget_undump(struct mg_budget_registry *reg, const char *text, size_t len, char *why,
                     size_t whylen);

/*
 * path's state, written to path.tmp, fsync'ed and renamed over path (a crash leaves the old file
 * or the new one, never half of one). 0, or -1 with why.
 */
int mg_budget_save(struct mg_budget_registry *reg, const char *path, char *why, size_t whylen);

/* Reads path (a missing file: nothing spent yet, 0). -1 with why naming path when it is damaged. */
int mg_budget_load(struct mg_budget_registry *reg, const char *path, char *why, size_t whylen);

/* What the Redis store (mg_budget_redis.c) has to write for a key before it reads its total. */
struct mg_budget_redis_work {
    int64_t window;   /* the current window's start */
    int64_t unsent;   /* spend settled here, to add (INCRBY) */
    int     reset;    /* the window was reset here: SET 0 first */
    int64_t prev;     /* the window before, to delete (once per window), or -1 */
};
/* Takes that work (the entry forgets it: give back what could not be sent). 1 when any. */
int mg_budget_take_redis(struct mg_budget *b, int64_t now, struct mg_budget_redis_work *w);
/* Gives back a reset that could not be sent (it is sent with the next exchange). */
void mg_budget_reset_back(struct mg_budget *b, int64_t window_start);
/* Gives back spend that could not be sent (Redis down): it is sent with the next one. */
void mg_budget_unsent_back(struct mg_budget *b, int64_t window_start, int64_t micro);
/* Redis's total for the window (the reply of an INCRBY or a GET): the spend admission reads. */
void mg_budget_shared_total(struct mg_budget *b, int64_t window_start, int64_t total);

#endif
