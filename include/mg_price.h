/*
 * mg_price — what a request costs (SPEC "Spend and budgets"): the `prices:` tables (top level and
 * per backend: USD per 1M tokens for input, cached input, cache writes and output, by the model
 * name sent upstream, exact names before `prefix*` patterns) and the cost of an answer's usage.
 *
 * Money is integer micro-dollars everywhere (prices are kept as micro-dollars per 1M tokens), so
 * a sum is exact and a cost is rounded up to a whole micro-dollar once, per request. Pure: no
 * locks, no I/O.
 */
#ifndef MG_PRICE_H
#define MG_PRICE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_conf_types.h"
#include "mg_yaml.h"

/* The largest price taken: USD 1,000,000 per 1M tokens. */
#define MG_PRICE_MAX_MICRO 1000000000000LL

/* Setter of a `prices:` mapping (top level or a backend's); dst is a struct mg_price_table. */
int mg_price_set(struct mg_yaml *y, yaml_node_t *node, void *dst);

/* Frees the table's entries (the table itself is embedded). NULL is a no-op. */
void mg_price_table_deinit(struct mg_price_table *t);

/* The entry of t for model: the first exact name, else the first matching prefix; or NULL. */
const struct mg_price *mg_price_find(const struct mg_price_table *t, const char *model);

/* The price of model on backend b (NULL: the top level's only): b's table wins; or NULL. */
const struct mg_price *mg_price_lookup(const struct mg_conf *conf, const struct mg_backend *b,
                                       const char *model);

/* What an answer's usage says, in tokens (negative: not reported, counted as 0). */
struct mg_price_usage {
    int64_t input;     /* every input token, cached and cache writes included (OpenAI's count) */
    int64_t cached;    /* of input: read from the provider's cache */
    int64_t written;   /* of input: written to the provider's cache */
    int64_t output;
};

/*
 * The cost in micro-dollars, rounded up: uncached input (input - cached - written, never below 0)
 * x input + cached x cached_input + written x cache_write + output x output. p NULL: 0. Exact
 * for every count up to 2^53 (128-bit arithmetic); saturates at INT64_MAX.
 */
int64_t mg_price_cost(const struct mg_price *p, const struct mg_price_usage *u);

/*
 * 1 the first time the process asks about model (for the once-per-model warning about an
 * unpriced model); 0 after, and for every model past the first 1024. Thread-safe (a mutex:
 * called for unpriced answers only). Process-wide on purpose, as a log's rate limiter is.
 */
int mg_price_warn_once(const char *model);

/*
 * Parses a USD amount written as a decimal ("2.50", "10", "0.000001") into micro-dollars: at most
 * 6 digits after the point, no sign, no exponent, at most max. 0, or -1.
 */
int mg_price_parse_usd(const char *s, int64_t max, int64_t *micro);

/* Writes micro-dollars as a JSON number exact to the micro-dollar ("0.012345"). Returns out. */
char *mg_price_format_usd(int64_t micro, char *out, size_t len);

#endif
