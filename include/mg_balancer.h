/*
 * mg_balancer — the order in which a rule's backends are attempted.
 *
 * Pure: the caller owns the random state, so tests can seed it and workers need no lock.
 */
#ifndef MG_BALANCER_H
#define MG_BALANCER_H

#include <stddef.h>
#include <stdint.h>

#include "mg_conf_types.h"

#define MG_BALANCER_MAX 32    /* attempts per request at most */

/*
 * The rule's ranking: indices into rule->backends of every enabled entry (weight > 0), priority
 * tiers from the lowest number up, each tier in weighted-random order. idx holds MG_BALANCER_MAX.
 * Returns how many were written (0 when no entry is enabled).
 */
size_t mg_balancer_rank(const struct mg_rule *rule, uint64_t *rng, size_t *idx);

/*
 * Moves the entries whose cooling[i] is set after all the others, keeping the order within both
 * groups (a cooling backend is still tried when nothing else is left).
 */
void mg_balancer_demote(size_t *order, size_t n, const int *cooling);

/*
 * Fills out with indices into rule->backends: priority tiers from the lowest number up, each tier
 * in weighted-random order without repetition, entries of weight 0 left out. The list is
 * repeated when retries + 1 exceeds the number of enabled entries. Returns how many were written:
 * min(retries + 1, max), or 0 when no entry is enabled.
 */
size_t mg_balancer_order(const struct mg_rule *rule, uint64_t *rng, size_t *out, size_t max);

#endif
