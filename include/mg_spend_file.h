/*
 * mg_spend_file — the keys' spend kept across restarts in `state_file` when there is no `shared:`
 * Redis (SPEC "Spend and budgets"): read when the server opens (a damaged file stops the start,
 * naming it), written every 10 s, and once more when the server stops.
 * Each write is a whole new file, fsync'ed, renamed over the old one (mg_budget_save()).
 */
#ifndef MG_SPEND_FILE_H
#define MG_SPEND_FILE_H

struct event_base;
struct mg_budget_registry;
struct mg_conf;

struct mg_spend_file;

/* The interval between two writes. */
#define MG_SPEND_FILE_EVERY_MS 10000

/*
 * With conf's state_file (and no shared:), reads it into reg and starts the writes on base's
 * loop (*out set); without, *out is NULL. MG_OK, or MG_ERR (logged) when the file is damaged or
 * cannot be read.
 */
int mg_spend_file_open(struct mg_spend_file **out, struct event_base *base,
                       struct mg_budget_registry *reg, const struct mg_conf *conf);

/* The last write (the workers have stopped) and the end of the timer. NULL is a no-op. */
void mg_spend_file_close(struct mg_spend_file *f);

#endif
