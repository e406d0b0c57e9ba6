/*
 * mg_conf_backend — the `backends` block: each backend's common keys (name, url, api_key,
 * proxy, headers, timeouts, health) and, through its schema's table, the keys only that schema
 * has, which land in the schema's own per-backend struct (mg_schema.h `keys`, `conf_check`).
 *
 * A schema's key may come before `schema:` in the mapping, so the schema is read first
 * (mg_yaml_peek); a key that belongs to another schema is still parsed by its owner (its value
 * errors are reported where it stands) and then refused in phase three as misplaced.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mg_conf_in.h"
#include "mg_hdr.h"
#include "mg_health.h"
#include "mg_log.h"
#include "mg_price.h"
#include "mg_schema.h"
#include "mg_upstream_proxy.h"

/* A backend as read: timeouts start unset (0) and are merged with the defaults afterwards. */
struct mg_conf_backend_in {
    struct mg_backend        b;
    struct mg_timeouts       t;
    struct mg_conf_health_in h;
    yaml_node_t             *node;
    int                      peeked;                /* the schema id read before the walk */
    void                    *sconf[MG_SCHEMA_MAX];  /* each schema's keys as read, by id */
    uint32_t                 seen[MG_SCHEMA_MAX];   /* the rows of each schema's table given */
};

/* 1 for the headers that frame a request or name its hop: the gateway's, never the config's. */
static int
framing(const char *name)
{
    static const char *const names[] = {"content-length", "transfer-encoding",
                                        "connection", "keep-alive", "te", "trailer", "upgrade",
                                        "proxy-connection", "expect"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int set_headers(struct mg_yaml *y, yaml_node_t *node, void *dst, int sent);

int
mg_conf_set_headers(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return set_headers(y, node, dst, 1);
}

int
mg_conf_set_match_headers(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return set_headers(y, node, dst, 0);
}

static int
set_headers(struct mg_yaml *y, yaml_node_t *node, void *dst, int sent)
{
    struct mg_header **out = dst;
    size_t *count = (size_t *)((char *)dst + sizeof(struct mg_header *));
    size_t i, j, npairs, n = 0;
    int rc = MG_OK;

    if (mg_yaml_pairs(y, node, "headers", &npairs) != MG_OK) {
        return MG_ERR;
    }
    *out = mg_calloc(npairs + 1, sizeof(struct mg_header));
    for (i = 0; i < npairs; i++) {
        yaml_node_t *k, *v, *pk, *pv;
        char *name, *value;

        mg_yaml_pair(y, node, i, &k, &v);
        name = mg_yaml_scalar(y, k, "header name");
        if (name == NULL) {
            rc = MG_ERR;
            continue;
        }
        if (!mg_hdr_name_ok(name, strlen(name))) {
            mg_yaml_error(y, k, "bad header name \"%s\" (a header name is an RFC 9110 token)",
                          name);
            free(name);
            rc = MG_ERR;
            continue;
        }
        if (sent && framing(name)) {
            mg_yaml_error(y, k, "header \"%s\" cannot be set: the gateway frames its requests "
                          "itself (Content-Length and hop-by-hop headers are its own)", name);
            free(name);
            rc = MG_ERR;
            continue;
        }
        for (j = 0; j < i; j++) {
            mg_yaml_pair(y, node, j, &pk, &pv);
            if (mg_yaml_text(pk) != NULL && strcasecmp(mg_yaml_text(pk), name) == 0) {
                break;
            }
        }
        if (j < i) {
            mg_yaml_error(y, k, "duplicate header \"%s\"", name);
            free(name);
            rc = MG_ERR;
            continue;
        }
        value = mg_yaml_scalar(y, v, "header value");
        if (value == NULL || mg_yaml_has_control(value)) {
            if (value != NULL) {
                mg_yaml_error(y, v, "header value holds a control character");
            }
            free(name);
            free(value);
            rc = MG_ERR;
            continue;
        }
        (*out)[n].name = name;
        (*out)[n].value = value;
        n++;
    }
    *count = n;
    return rc;
}

void
mg_conf_headers_free(struct mg_header *h, size_t n)
{
    size_t i;

    for (i = 0; h != NULL && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static const struct mg_yaml_key timeout_keys[] = {
    {"connect", mg_yaml_set_duration, offsetof(struct mg_timeouts, connect_ms)},
    {"first_byte", mg_yaml_set_duration, offsetof(struct mg_timeouts, first_byte_ms)},
    {"first_token", mg_yaml_set_duration, offsetof(struct mg_timeouts, first_token_ms)},
    {"idle", mg_yaml_set_duration, offsetof(struct mg_timeouts, idle_ms)},
    {"total", mg_yaml_set_duration, offsetof(struct mg_timeouts, total_ms)},
};

int
mg_conf_set_timeouts(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return mg_yaml_mapping(y, node, timeout_keys, MG_ARRAY_LEN(timeout_keys), dst, "timeouts");
}

MG_YAML_INT_SETTER(set_failures, long long, 0, 16383)

/* A duration where 0 means off (check_interval: "0s", or "0"). */
static int
set_duration_or_off(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "duration");
    int64_t ms;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (strcmp(s, "0") == 0) {
        *(int64_t *)dst = 0;
    } else if (mg_parse_duration(s, &ms) != MG_OK || ms < 0) {
        mg_yaml_error(y, node, "bad duration \"%s\" (0s for off, or a number with ms, s, m or h)",
                      s);
        rc = MG_ERR;
    } else {
        *(int64_t *)dst = ms;
    }
    free(s);
    return rc;
}

static const struct mg_yaml_key health_keys[] = {
    {"failures", set_failures, offsetof(struct mg_conf_health_in, failures)},
    {"cooldown", mg_yaml_set_duration, offsetof(struct mg_conf_health_in, cooldown_ms)},
    {"max_cooldown", mg_yaml_set_duration, offsetof(struct mg_conf_health_in, max_cooldown_ms)},
    {"check_interval", set_duration_or_off,
     offsetof(struct mg_conf_health_in, check_interval_ms)},
};

void
mg_conf_health_init(struct mg_conf_health_in *h)
{
    h->failures = -1;
    h->cooldown_ms = -1;
    h->max_cooldown_ms = -1;
    h->check_interval_ms = -1;
}

int
mg_conf_set_health(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf_health_in *h = dst;

    h->node = node;
    return mg_yaml_mapping(y, node, health_keys, MG_ARRAY_LEN(health_keys), dst, "health");
}

static int
set_schema(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "schema");
    char names[256];
    int id;

    if (s == NULL) {
        return MG_ERR;
    }
    id = mg_schema_find(s);
    if (id < 0) {
        mg_schema_names(names, sizeof(names));
        mg_yaml_error(y, node, "unknown schema \"%s\" (%s)", s, names);
    } else {
        *(int *)dst = id;
    }
    free(s);
    return id < 0 ? MG_ERR : MG_OK;
}

/* proxy: "none", or an http://, https://, socks5:// or socks5h:// URL. */
static int
set_proxy(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://", "socks5h://", NULL};
    const char *why;
    char *v;

    if (mg_yaml_set_nonempty(y, node, dst) != MG_OK) {
        return MG_ERR;
    }
    v = *(char **)dst;
    if (strcmp(v, "none") != 0 && (why = mg_yaml_url_problem(v, schemes)) != NULL &&
        strcmp(why, "userinfo (user:password@)") != 0) {
        mg_yaml_error(y, node, "proxy \"%s\" has %s (\"none\", or http://, https://, socks5:// "
                      "with a host and port)", v, why);
        return MG_ERR;
    }
    return MG_OK;
}

#define BIN(f) offsetof(struct mg_conf_backend_in, f)
static const struct mg_yaml_key backend_keys[] = {
    {"name", mg_yaml_set_nonempty, BIN(b.name)},
    {"url", mg_yaml_set_url, BIN(b.url)},
    {"api_key", mg_yaml_set_line, BIN(b.api_key)},
    {"proxy", set_proxy, BIN(b.proxy)},
    {"headers", mg_conf_set_headers, BIN(b.headers)},
    {"prices", mg_price_set, BIN(b.prices)},
    {"schema", set_schema, BIN(b.schema)},
    {"timeouts", mg_conf_set_timeouts, BIN(t)},
    {"health", mg_conf_set_health, BIN(h)},
};

/* The schema's conf as read, made when first needed. */
static void *
schema_conf(struct mg_conf_backend_in *b, int id)
{
    const struct mg_schema *sc = mg_schema_get(id);

    if (b->sconf[id] == NULL && sc->conf_create != NULL) {
        b->sconf[id] = sc->conf_create();
    }
    return b->sconf[id];
}

/*
 * A key the common table does not have: the backend's schema's when it has the key, else the
 * first schema's that has it (refused as misplaced in phase three). The key counts as given when
 * its setter changed its field (as when the keys sat in one struct: a value refused by the
 * scalar read leaves it unset, an empty one does not).
 */
static int
schema_key(struct mg_yaml *y, const char *key, yaml_node_t *value, void *base, int *rc)
{
    struct mg_conf_backend_in *b = base;
    const struct mg_schema *sc = mg_schema_get(b->peeked);
    const struct mg_yaml_key *row = mg_yaml_find(sc->keys, sc->nkeys, key);
    int id = b->peeked;
    int64_t before;
    char *field;

    for (int i = 0; row == NULL && i < mg_schema_count(); i++) {
        sc = mg_schema_get(i);
        row = mg_yaml_find(sc->keys, sc->nkeys, key);
        id = i;
    }
    if (row == NULL) {
        return 0;
    }
    if (row - sc->keys >= MG_SCHEMA_KEYS_MAX) {
        mg_log_error("schema %s: more than %d keys", sc->name, MG_SCHEMA_KEYS_MAX);
        abort();   /* a programming error, seen by the first test that loads the key */
    }
    field = (char *)schema_conf(b, id) + row->off;
    memcpy(&before, field, sizeof(before));
    *rc = row->set(y, value, field);
    if (memcmp(&before, field, sizeof(before)) != 0) {
        b->seen[id] |= 1u << (row - sc->keys);
    }
    return 1;
}

int
mg_conf_set_backends(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    struct mg_conf_backends_in *in = dst;
    size_t i, n;
    int rc = MG_OK;

    if (mg_yaml_list(y, node, "backends", &n) != MG_OK) {
        return MG_ERR;
    }
    in->bs = mg_calloc(n, sizeof(*in->bs));
    for (i = 0; i < n; i++) {
        struct mg_conf_backend_in *b = &in->bs[in->n++];
        char *schema;

        b->node = mg_yaml_item(y, node, i);
        mg_conf_health_init(&b->h);
        schema = mg_yaml_peek(y, b->node, "schema");
        b->peeked = schema != NULL && mg_schema_find(schema) >= 0 ? mg_schema_find(schema) : 0;
        free(schema);
        if (mg_yaml_mapping_with(y, b->node, backend_keys, MG_ARRAY_LEN(backend_keys), b,
                                 "a backend", schema_key) != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

/* How many schemas have key, their names joined in names ("anthropic and bedrock"). */
static int
owners(const char *key, char *names, size_t n, int *first)
{
    int id, count = 0, total = 0;
    size_t len = 0;

    for (id = 0; id < mg_schema_count(); id++) {
        const struct mg_schema *sc = mg_schema_get(id);
        total += mg_yaml_find(sc->keys, sc->nkeys, key) != NULL;
    }
    names[0] = '\0';
    for (id = 0; id < mg_schema_count(); id++) {
        const struct mg_schema *sc = mg_schema_get(id);
        if (mg_yaml_find(sc->keys, sc->nkeys, key) == NULL) {
            continue;
        }
        if (count++ == 0) {
            *first = id;
        }
        if (len < n) {
            int w = snprintf(names + len, n - len, "%s%s",
                             count == 1 ? "" : count == total ? " and " : ", ", sc->name);
            len += w > 0 ? (size_t)w : 0;
        }
    }
    return count;
}

/* 1 when the file gave key to backend b, whichever schema's struct holds it. */
static int
given(const struct mg_conf_backend_in *b, const char *key)
{
    int id;

    for (id = 0; id < mg_schema_count(); id++) {
        const struct mg_schema *sc = mg_schema_get(id);
        const struct mg_yaml_key *row = mg_yaml_find(sc->keys, sc->nkeys, key);
        if (row != NULL && (b->seen[id] & (1u << (row - sc->keys))) != 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Keys of other schemas than the backend's: those one schema owns first, in the table's order,
 * then those several share.
 */
static void
check_misplaced(struct mg_yaml *y, const struct mg_conf_backend_in *b)
{
    const struct mg_schema *own = mg_schema_get(b->b.schema);
    const char *name = b->b.name ? b->b.name : "?";
    char names[256];
    int shared, id, first = -1;
    size_t r;

    for (shared = 0; shared < 2; shared++) {
        for (id = 0; id < mg_schema_count(); id++) {
            const struct mg_schema *sc = mg_schema_get(id);
            for (r = 0; r < sc->nkeys; r++) {
                const char *key = sc->keys[r].key;
                int count;
                if (!given(b, key) || mg_yaml_find(own->keys, own->nkeys, key) != NULL) {
                    continue;
                }
                count = owners(key, names, sizeof(names), &first);
                if (first != id || (count > 1) != shared) {
                    continue;
                }
                if (count == 1) {
                    mg_yaml_error(y, b->node, "backend \"%s\": %s applies only to schema: %s",
                                  name, key, names);
                } else {
                    mg_yaml_error(y, b->node, "backend \"%s\": %s applies only to schemas %s",
                                  name, key, names);
                }
            }
        }
    }
}

static void
merge_timeouts(struct mg_timeouts *t, const struct mg_timeouts *over)
{
    if (over->connect_ms) {
        t->connect_ms = over->connect_ms;
    }
    if (over->first_byte_ms) {
        t->first_byte_ms = over->first_byte_ms;
    }
    if (over->first_token_ms) {
        t->first_token_ms = over->first_token_ms;
    }
    if (over->idle_ms) {
        t->idle_ms = over->idle_ms;
    }
    if (over->total_ms) {
        t->total_ms = over->total_ms;
    }
}

/*
 * A backend's health: the top level's, with the backend's keys over it; cooldown <= max_cooldown.
 */
static void
merge_health(struct mg_yaml *y, struct mg_health_conf *out, const struct mg_conf_health_in *top,
             const struct mg_conf_health_in *over)
{
    out->failures = (int)(over->failures >= 0 ? over->failures
                                              : top->failures >= 0 ? top->failures : 3);
    out->cooldown_ms = over->cooldown_ms > 0 ? over->cooldown_ms
                                             : top->cooldown_ms > 0 ? top->cooldown_ms : 10000;
    out->max_cooldown_ms = over->max_cooldown_ms > 0 ? over->max_cooldown_ms
                           : top->max_cooldown_ms > 0 ? top->max_cooldown_ms : 30000;
    out->check_interval_ms = over->check_interval_ms >= 0 ? over->check_interval_ms
                             : top->check_interval_ms >= 0 ? top->check_interval_ms : 0;
    /* the top level's own pair is checked once (over == top), so a backend that only inherits
     * it does not repeat that error; max_cooldown's default was 5m before: a cooldown written
     * for it now needs it set */
    if (out->cooldown_ms > out->max_cooldown_ms &&
        (over == top || over->cooldown_ms > 0 || over->max_cooldown_ms > 0)) {
        mg_yaml_error(y, over->node ? over->node : top->node,
                      "health: cooldown (%lld ms) is longer than max_cooldown (%lld ms); set "
                      "max_cooldown to at least the cooldown (its default is 30s)",
                      (long long)out->cooldown_ms, (long long)out->max_cooldown_ms);
    }
}

/*
 * Backends: names unique and well-formed, the schema's keys (none of another schema's) and its
 * checks, URLs, timeouts and health merged with the top level's, the proxy decided once.
 */
void
mg_conf_check_backends(struct mg_yaml *y, void *in_, struct mg_conf *conf)
{
    struct mg_conf_backends_in *in = in_;
    const struct mg_conf_in *all = y->owner;
    size_t i, j;

    conf->backends = mg_calloc(in->n, sizeof(struct mg_backend));
    {
        struct mg_health_conf top;
        merge_health(y, &top, &all->health, &all->health);
    }
    for (i = 0; i < in->n; i++) {
        struct mg_conf_backend_in *b = &in->bs[i];
        const struct mg_schema *sc = mg_schema_get(b->b.schema);
        if (b->b.name == NULL) {
            mg_yaml_error(y, b->node, "a backend needs \"name\"");
        } else if (!mg_yaml_name_ok(b->b.name)) {
            mg_yaml_error(y, b->node, "backend name \"%s\" may only hold A-Z a-z 0-9 _ . -",
                          b->b.name);
        } else {
            for (j = 0; j < conf->nbackends; j++) {
                if (conf->backends[j].name != NULL &&
                    strcmp(conf->backends[j].name, b->b.name) == 0) {
                    mg_yaml_error(y, b->node, "duplicate backend name \"%s\"", b->b.name);
                    break;
                }
            }
        }
        check_misplaced(y, b);
        b->b.schema_conf = schema_conf(b, b->b.schema);
        b->sconf[b->b.schema] = NULL;
        if (sc->conf_check != NULL) {
            sc->conf_check(y, b->node, &b->b, b->b.schema_conf);
        }
        if (b->b.url == NULL) {
            if (!sc->url_optional) {   /* else the schema asked for what makes it */
                mg_yaml_error(y, b->node, "backend \"%s\" needs \"url\"",
                              b->b.name ? b->b.name : "?");
            }
        } else {
            size_t n = strlen(b->b.url);
            while (n > 0 && b->b.url[n - 1] == '/') {
                b->b.url[--n] = '\0';
            }
        }
        b->b.timeouts = conf->timeouts;
        merge_timeouts(&b->b.timeouts, &b->t);
        if (b->b.timeouts.first_token_ms == 0) {
            b->b.timeouts.first_token_ms = b->b.timeouts.idle_ms;
        }
        merge_health(y, &b->b.health, &all->health, &b->h);
        if (b->b.url != NULL) {
            char *proxy = mg_upstream_proxy_resolve(b->b.url, b->b.proxy);
            free(b->b.proxy);
            b->b.proxy = proxy;
        }
        conf->backends[conf->nbackends++] = b->b;
        memset(&b->b, 0, sizeof(b->b));
    }
}

void
mg_conf_backend_deinit(struct mg_backend *b)
{
    const struct mg_schema *sc = mg_schema_get(b->schema);

    free(b->name);
    free(b->url);
    free(b->api_key);
    free(b->auth_header);
    free(b->proxy);
    mg_conf_headers_free(b->headers, b->nheaders);
    mg_price_table_deinit(&b->prices);
    if (sc->conf_free != NULL) {
        sc->conf_free(b->schema_conf);
    }
    memset(b, 0, sizeof(*b));
}

void
mg_conf_backends_free(void *in_)
{
    struct mg_conf_backends_in *in = in_;
    size_t i;
    int id;

    for (i = 0; i < in->n; i++) {
        struct mg_conf_backend_in *b = &in->bs[i];
        for (id = 0; id < mg_schema_count(); id++) {
            if (b->sconf[id] != NULL && mg_schema_get(id)->conf_free != NULL) {
                mg_schema_get(id)->conf_free(b->sconf[id]);
            }
        }
        mg_conf_backend_deinit(&b->b);
    }
    free(in->bs);
}
