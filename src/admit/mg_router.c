/*
 * mg_router — first matching rule wins. A linear walk: configs hold tens of rules, and the walk
 * touches a few cache lines per rule, cheaper than hashing for that size.
 */
#include <string.h>

#include "mg_router.h"

int
mg_router_model_matches(const char *pattern, const char *model, size_t len)
{
    size_t plen = strlen(pattern);

    if (plen > 0 && pattern[plen - 1] == '*') {
        return len >= plen - 1 && memcmp(pattern, model, plen - 1) == 0;
    }
    return plen == len && memcmp(pattern, model, len) == 0;
}

static int
headers_match(const struct mg_rule *r, mg_router_header_fn get_header, void *arg)
{
    size_t i;

    for (i = 0; i < r->nheaders; i++) {
        const char *v = get_header ? get_header(arg, r->headers[i].name) : NULL;
        if (v == NULL || strcmp(v, r->headers[i].value) != 0) {
            return 0;
        }
    }
    return 1;
}

int
mg_router_match(const struct mg_conf *conf, const char *model, size_t len,
                mg_router_header_fn get_header, void *arg)
{
    size_t i, j;

    for (i = 0; i < conf->nrules; i++) {
        const struct mg_rule *r = &conf->rules[i];
        for (j = 0; j < r->nmodels; j++) {
            if (mg_router_model_matches(r->models[j], model, len)) {
                break;
            }
        }
        if (j < r->nmodels && headers_match(r, get_header, arg)) {
            return (int)i;
        }
    }
    return -1;
}
