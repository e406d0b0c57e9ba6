/*
 * mg_price — the prices tables and a request's cost. Integer micro-dollars throughout: a price is
 * micro-dollars per 1M tokens, a cost the sum of tokens x price over 10^6, rounded up once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_price.h"
#include "mg_util.h"

int
mg_price_parse_usd(const char *s, int64_t max, int64_t *micro)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;

    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (whole > max / 10) {
            return -1;
        }
        whole = whole * 10 + (*s - '0');
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
            if (fdigits == 6) {
                return -1;   /* finer than a micro-dollar */
            }
            frac = frac * 10 + (*s - '0');
        }
        if (fdigits == 0) {
            return -1;
        }
    }
    if (*s != '\0' || digits == 0 || whole > max / 1000000) {
        return -1;
    }
    for (; fdigits < 6; fdigits++) {
        frac *= 10;
    }
    *micro = whole * 1000000 + frac;
    return *micro <= max ? 0 : -1;
}

char *
mg_price_format_usd(int64_t micro, char *out, size_t len)
{
    char tmp[32];
    uint64_t v = micro > 0 ? (uint64_t)micro : 0;
    size_t n = 0, i;

    /* by hand: an answer's header writes one, and snprintf costs ~1.3k instructions */
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
        if (n == 6) {
            tmp[n++] = '.';
        }
    } while (v > 0 || n < 8);   /* at least "0.000000" */
    for (i = 0; i < n && i + 1 < len; i++) {
        out[i] = tmp[n - 1 - i];
    }
    if (len > 0) {
        out[i] = '\0';
    }
    return out;
}

/* One price of an entry: a USD amount per 1M tokens. */
static int
set_usd(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    const char *s = mg_yaml_text(node);

    if (s == NULL || mg_price_parse_usd(s, MG_PRICE_MAX_MICRO, dst) != 0) {
        mg_yaml_error(y, node, "a price is USD per 1M tokens: a number such as 2.50, at most 6 "
                      "decimals, not negative, at most 1000000");
        return MG_ERR;
    }
    return MG_OK;
}

#define PRICE(f) offsetof(struct mg_price, f)
static const struct mg_yaml_key price_keys[] = {
    {"input", set_usd, PRICE(input)},
    {"cached_input", set_usd, PRICE(cached_input)},
    {"cache_write", set_usd, PRICE(cache_write)},
    {"output", set_usd, PRICE(output)},
};

int
mg_price_set(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_price_table *t = dst;
    size_t i, j, n;
    int rc = MG_OK;

    if (mg_yaml_pairs(y, node, "prices", &n) != MG_OK) {
        return MG_ERR;
    }
    mg_price_table_deinit(t);
    t->v = mg_calloc(n ? n : 1, sizeof(*t->v));
    for (i = 0; i < n; i++) {
        yaml_node_t *k, *v;
        struct mg_price *p = &t->v[t->n];
        const char *name;

        mg_yaml_pair(y, node, i, &k, &v);
        name = mg_yaml_text(k);
        if (name == NULL || name[0] == '\0' || strcmp(name, "*") == 0) {
            mg_yaml_error(y, k, "a price's model must be a name or a prefix ending in *");
            rc = MG_ERR;
            continue;
        }
        for (j = 0; j < t->n; j++) {
            if (strcmp(t->v[j].model, name) == 0) {
                mg_yaml_error(y, k, "duplicate price for \"%s\"", name);
                rc = MG_ERR;
                break;
            }
        }
        /* -1: not in the file (cached_input and cache_write then cost as input) */
        p->input = p->cached_input = p->cache_write = p->output = -1;
        if (j < t->n || mg_yaml_mapping(y, v, price_keys, MG_ARRAY_LEN(price_keys), p,
                                        "a price") != MG_OK) {
            rc = MG_ERR;
            continue;
        }
        if (p->input < 0 || p->output < 0) {
            mg_yaml_error(y, v, "the price of \"%s\" needs \"input\" and \"output\"", name);
            rc = MG_ERR;
            continue;
        }
        p->cached_input = p->cached_input < 0 ? p->input : p->cached_input;
        p->cache_write = p->cache_write < 0 ? p->input : p->cache_write;
        p->model = mg_strdup(name);
        t->n++;
    }
    return rc;
}

void
mg_price_table_deinit(struct mg_price_table *t)
{
    size_t i;

    if (t == NULL) {
        return;
    }
    for (i = 0; i < t->n; i++) {
        free(t->v[i].model);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

const struct mg_price *
mg_price_find(const struct mg_price_table *t, const char *model)
{
    size_t i, len;

    for (i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].model, model) == 0) {
            return &t->v[i];
        }
    }
    for (i = 0; i < t->n; i++) {
        len = strlen(t->v[i].model);
        if (t->v[i].model[len - 1] == '*' && strncmp(t->v[i].model, model, len - 1) == 0) {
            return &t->v[i];
        }
    }
    return NULL;
}

const struct mg_price *
mg_price_lookup(const struct mg_conf *conf, const struct mg_backend *b, const char *model)
{
    const struct mg_price *p = b != NULL ? mg_price_find(&b->prices, model) : NULL;

    return p != NULL ? p : mg_price_find(&conf->prices, model);
}

#define WARNED_MAX 1024

static pthread_mutex_t warned_lock = PTHREAD_MUTEX_INITIALIZER;
static char *warned[WARNED_MAX];   /* never freed: the process's once-only memory */
static size_t nwarned;

int
mg_price_warn_once(const char *model)
{
    size_t i;
    int first = 0;

    pthread_mutex_lock(&warned_lock);
    for (i = 0; i < nwarned && strcmp(warned[i], model) != 0; i++) {
    }
    if (i == nwarned && nwarned < WARNED_MAX) {
        warned[nwarned++] = mg_strdup(model);
        first = 1;
    }
    pthread_mutex_unlock(&warned_lock);
    return first;
}

static int64_t
known(int64_t v)
{
    return v > 0 ? (v > MG_TOKENS_MAX ? MG_TOKENS_MAX : v) : 0;
}

int64_t
mg_price_cost(const struct mg_price *p, const struct mg_price_usage *u)
{
    int64_t cached = known(u->cached), written = known(u->written);
    int64_t uncached = known(u->input) - cached - written;
    unsigned __int128 sum;

    if (p == NULL) {
        return 0;
    }
    /* each product < 2^53 * 2^40: the sum of four fits in 128 bits with room to spare */
    sum = (unsigned __int128)known(uncached) * (uint64_t)p->input +
          (unsigned __int128)cached * (uint64_t)p->cached_input +
          (unsigned __int128)written * (uint64_t)p->cache_write +
          (unsigned __int128)known(u->output) * (uint64_t)p->output;
    sum = (sum + 999999) / 1000000;
    return sum > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)sum;
}
