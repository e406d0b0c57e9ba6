/*
 * mg_balancer — priority tiers, weighted random order inside a tier.
 */
#include "mg_balancer.h"
#include "mg_util.h"

size_t
mg_balancer_rank(const struct mg_rule *rule, uint64_t *rng, size_t *idx)
{
    size_t n = 0, i, j, tier;

    for (i = 0; i < rule->nbackends && n < MG_BALANCER_MAX; i++) {
        if (rule->backends[i].weight == 0) {
            continue;
        }
        /* insertion sort by priority, stable */
        for (j = n; j > 0 && rule->backends[idx[j - 1]].priority > rule->backends[i].priority; j--) {
            idx[j] = idx[j - 1];
        }
        idx[j] = i;
        n++;
    }
    if (n == 0) {
        return 0;
    }
    /* Weighted shuffle within each tier: pick by weight among the entries not yet placed. */
    for (tier = 0; tier < n; ) {
        size_t end = tier;
        while (end < n && rule->backends[idx[end]].priority == rule->backends[idx[tier]].priority) {
            end++;
        }
        for (i = tier; i + 1 < end; i++) {
            uint64_t total = 0, r;
            for (j = i; j < end; j++) {
                total += rule->backends[idx[j]].weight;
            }
            r = mg_rand_next(rng) % total;
            for (j = i; j < end; j++) {
                uint64_t w = rule->backends[idx[j]].weight;
                if (r < w) {
                    break;
                }
                r -= w;
            }
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        tier = end;
    }
    return n;
}

size_t
mg_balancer_order(const struct mg_rule *rule, uint64_t *rng, size_t *out, size_t max)
{
    size_t idx[MG_BALANCER_MAX];
    size_t n = mg_balancer_rank(rule, rng, idx), i, attempts;

    if (n == 0 || max == 0) {
        return 0;
    }
    attempts = (size_t)rule->retries + 1;
    if (attempts > max) {
        attempts = max;
    }
    for (i = 0; i < attempts; i++) {
        out[i] = idx[i % n];
    }
    return attempts;
}

void
mg_balancer_demote(size_t *order, size_t n, const int *cooling)
{
    size_t tmp[MG_BALANCER_MAX];
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        if (!cooling[i]) {
            tmp[k++] = order[i];
        }
    }
    for (i = 0; i < n; i++) {
        if (cooling[i]) {
            tmp[k++] = order[i];
        }
    }
    for (i = 0; i < n; i++) {
        order[i] = tmp[i];
    }
}
