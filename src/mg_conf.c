/*
 * mg_conf — YAML -> immutable config snapshot.
 *
 * Three phases, as in twemproxy: libyaml loads the document (syntax errors stop here); a
 * table-driven walk fills the structs, each setter reporting its own errors with the node's
 * position and carrying on so that one run shows every problem; a last pass checks what spans
 * several keys (backend references, unique names, defaults that depend on other keys). Any error
 * and the half-built snapshot is thrown away: a config is never half-applied.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "mg_auth.h"
#include "mg_catalog.h"
#include "mg_conf.h"
#include "mg_limit.h"
#include "mg_log.h"

#define CONF_MAX_FILE (4u * 1024 * 1024)

struct conf_in;

struct ctx {
    const char    *path;
    yaml_document_t doc;
    struct mg_buf *errors;
    int            nerrors;
    struct mg_conf *conf;
    struct conf_in *in;     /* where the list setters put backends and rules */
};

typedef int (*setter_t)(struct ctx *c, yaml_node_t *node, void *dst);

struct field {
    const char *key;
    setter_t    set;
    size_t      off;
};

static void __attribute__((format(printf, 3, 4)))
conf_error(struct ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mg_buf_printf(c->errors, "%s:%zu:%zu: %s\n", c->path,
                  node ? node->start_mark.line + 1 : 1, node ? node->start_mark.column + 1 : 1, msg);
    c->nerrors++;
}

static yaml_node_t *
node_at(struct ctx *c, int id)
{
    return yaml_document_get_node(&c->doc, id);
}

static const char *
node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a scalar";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "empty";
    }
}

/* Replaces ${VAR} by the environment; NULL (and an error) when a variable is unset. */
static char *
expand_env(struct ctx *c, yaml_node_t *node, const char *s)
{
    struct mg_buf out;
    const char *p = s, *start, *end;

    mg_buf_init(&out, CONF_MAX_FILE);
    mg_buf_add(&out, "", 0);
    while ((start = strstr(p, "${")) != NULL) {
        end = strchr(start + 2, '}');
        if (end == NULL) {
            conf_error(c, node, "\"${\" without its \"}\" in \"%s\"", s);
            mg_buf_deinit(&out);
            return NULL;
        }
        char name[256];
        size_t nlen = (size_t)(end - start - 2);
        if (nlen == 0 || nlen >= sizeof(name)) {
            conf_error(c, node, "bad environment reference in \"%s\"", s);
            mg_buf_deinit(&out);
            return NULL;
        }
        memcpy(name, start + 2, nlen);
        name[nlen] = '\0';
        const char *v = getenv(name);
        if (v == NULL) {
            conf_error(c, node, "environment variable %s is not set", name);
            mg_buf_deinit(&out);
            return NULL;
        }
        mg_buf_add(&out, p, (size_t)(start - p));
        mg_buf_adds(&out, v);
        p = end + 1;
    }
    mg_buf_adds(&out, p);
    return out.data;
}

/* The scalar's text with ${VAR} expanded, or NULL (error reported) when node is not a scalar. */
static char *
scalar(struct ctx *c, yaml_node_t *node, const char *what)
{
    if (node->type != YAML_SCALAR_NODE) {
        conf_error(c, node, "%s must be a scalar, not %s", what, node_kind(node));
        return NULL;
    }
    return expand_env(c, node, (const char *)node->data.scalar.value);
}

static int
set_string(struct ctx *c, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = scalar(c, node, "value");

    if (s == NULL) {
        return MG_ERR;
    }
    free(*out);
    *out = s;
    return MG_OK;
}

static int
set_nonempty_string(struct ctx *c, yaml_node_t *node, void *dst)
{
    if (set_string(c, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (**(char **)dst == '\0') {
        conf_error(c, node, "value must not be empty");
        return MG_ERR;
    }
    return MG_OK;
}

/* 1 when s holds a control byte (or DEL): it would end up in a request line or header. */
static int
has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* A string sent in a header (api_key): no control bytes, e.g. an env var's trailing newline. */
static int
set_line(struct ctx *c, yaml_node_t *node, void *dst)
{
    if (set_string(c, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (has_control(*(char **)dst)) {
        conf_error(c, node, "value holds a control character (a trailing newline from an "
                   "environment variable?)");
        return MG_ERR;
    }
    return MG_OK;
}

/*
 * A non-empty string that goes into a request line or header as it is (anthropic_version,
 * api_version, region, the aws_* values): a CR or LF would inject a header of the file's choice.
 */
static int
set_nonempty_line(struct ctx *c, yaml_node_t *node, void *dst)
{
    if (set_line(c, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (**(char **)dst == '\0') {
        conf_error(c, node, "value must not be empty");
        return MG_ERR;
    }
    return MG_OK;
}

/*
 * "http[s]://host[:port][/path]": no userinfo (curl would send it as Basic auth), no query or
 * fragment (the client's path and query are appended), a port from 1 to 65535, no control
 * bytes. schemes is a NULL-terminated list of the accepted prefixes. NULL when fine, else why.
 */
static const char *
url_problem(const char *u, const char *const *schemes)
{
    const char *host, *end, *colon;
    size_t i;

    for (i = 0; schemes[i] != NULL && strncmp(u, schemes[i], strlen(schemes[i])) != 0; i++) {
    }
    if (schemes[i] == NULL) {
        return "an unsupported scheme";
    }
    host = u + strlen(schemes[i]);
    end = host + strcspn(host, "/");
    if (has_control(u) || strchr(u, ' ') != NULL) {
        return "a control character or a space";
    }
    if (strpbrk(u, "?#") != NULL) {
        return "a query or a fragment";
    }
    if (memchr(host, '@', (size_t)(end - host)) != NULL) {
        return "userinfo (user:password@)";
    }
    colon = host[0] == '[' ? memchr(host, ']', (size_t)(end - host)) : host;
    colon = colon ? memchr(colon, ':', (size_t)(end - colon)) : NULL;
    if (end == host || colon == host) {
        return "no host";
    }
    if (colon != NULL) {
        char *pe;
        long port = strtol(colon + 1, &pe, 10);
        if (pe != end || port < 1 || port > 65535) {
            return "a port outside 1-65535";
        }
    }
    return NULL;
}

static int
set_url(struct ctx *c, yaml_node_t *node, void *dst)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    const char *why;

    if (set_nonempty_string(c, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if ((why = url_problem(*(char **)dst, schemes)) != NULL) {
        conf_error(c, node, "url \"%s\" has %s (a url is http:// or https://, a host, an "
                   "optional port and path)", *(char **)dst, why);
        return MG_ERR;
    }
    return MG_OK;
}

/* proxy: "none", or an http://, https://, socks5:// or socks5h:// URL. */
static int
set_proxy(struct ctx *c, yaml_node_t *node, void *dst)
{
    static const char *const schemes[] = {"http://", "https://", "socks5://", "socks5h://", NULL};
    const char *why;
    char *v;

    if (set_nonempty_string(c, node, dst) != MG_OK) {
        return MG_ERR;
    }
    v = *(char **)dst;
    if (strcmp(v, "none") != 0 && (why = url_problem(v, schemes)) != NULL &&
        strcmp(why, "userinfo (user:password@)") != 0) {
        conf_error(c, node, "proxy \"%s\" has %s (\"none\", or http://, https://, socks5:// "
                   "with a host and port)", v, why);
        return MG_ERR;
    }
    return MG_OK;
}

static int
parse_int(struct ctx *c, yaml_node_t *node, long long lo, long long hi, long long *v)
{
    char *s = scalar(c, node, "value"), *end;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    *v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        conf_error(c, node, "\"%s\" is not a whole number", s);
        rc = MG_ERR;
    } else if (*v < lo || *v > hi) {
        conf_error(c, node, "%lld is out of range (%lld to %lld)", *v, lo, hi);
        rc = MG_ERR;
    }
    free(s);
    return rc;
}

/* Integer setters differ only in their range and the type they store. */
#define INT_SETTER(name, type, lo, hi)                                                         \
    static int name(struct ctx *c, yaml_node_t *node, void *dst)                               \
    {                                                                                          \
        long long v;                                                                           \
        if (parse_int(c, node, lo, hi, &v) != MG_OK) {                                         \
            return MG_ERR;                                                                     \
        }                                                                                      \
        *(type *)dst = (type)v;                                                                \
        return MG_OK;                                                                          \
    }

INT_SETTER(set_workers, int, 0, 256)
INT_SETTER(set_priority, int, 0, 1000000)
INT_SETTER(set_retries, int, 0, 31)   /* attempts are capped at MG_BALANCER_MAX */
INT_SETTER(set_weight, unsigned, 0, 1000000)
INT_SETTER(set_max_tokens, int64_t, 1, 100000000)

static int
set_bool(struct ctx *c, yaml_node_t *node, void *dst)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
    char *s = scalar(c, node, "value");
    size_t i;
    int rc = MG_ERR;

    if (s == NULL) {
        return MG_ERR;
    }
    for (i = 0; i < MG_ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *(int *)dst = 1;
            rc = MG_OK;
        } else if (strcmp(s, no[i]) == 0) {
            *(int *)dst = 0;
            rc = MG_OK;
        }
    }
    if (rc != MG_OK) {
        conf_error(c, node, "\"%s\" is not true or false", s);
    }
    free(s);
    return rc;
}

static int
set_duration(struct ctx *c, yaml_node_t *node, void *dst)
{
    char *s = scalar(c, node, "duration");
    int64_t ms;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_duration(s, &ms) != MG_OK || ms <= 0) {
        conf_error(c, node, "bad duration \"%s\" (a positive number with ms, s, m or h)", s);
        rc = MG_ERR;
    } else {
        *(int64_t *)dst = ms;
    }
    free(s);
    return rc;
}

static int
set_size(struct ctx *c, yaml_node_t *node, void *dst)
{
    char *s = scalar(c, node, "size");
    uint64_t v;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_size(s, &v) != MG_OK || v == 0 || v > (1ull << 40)) {
        conf_error(c, node, "bad size \"%s\" (bytes, or a number with KiB, MiB or GiB)", s);
        rc = MG_ERR;
    } else {
        *(uint64_t *)dst = v;
    }
    free(s);
    return rc;
}

static int
set_listen(struct ctx *c, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = scalar(c, node, "listen address");
    char host[256];
    int port;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_listen(s, host, sizeof(host), &port) != MG_OK) {
        conf_error(c, node, "bad address \"%s\" (host:port, [v6]:port or :port)", s);
        free(s);
        return MG_ERR;
    }
    free(*out);
    *out = s;
    return MG_OK;
}

static int
set_log_level(struct ctx *c, yaml_node_t *node, void *dst)
{
    char *s = scalar(c, node, "log_level");
    int lvl;

    if (s == NULL) {
        return MG_ERR;
    }
    lvl = mg_log_level_parse(s);
    if (lvl < 0) {
        conf_error(c, node, "bad log_level \"%s\" (error, warn, info or debug)", s);
    } else {
        *(int *)dst = lvl;
    }
    free(s);
    return lvl < 0 ? MG_ERR : MG_OK;
}

static int
set_access_log(struct ctx *c, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = scalar(c, node, "access_log");

    if (s == NULL) {
        return MG_ERR;
    }
    free(*out);
    *out = NULL;
    if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0 || s[0] == '\0') {
        free(s);
    } else {
        *out = s;
    }
    return MG_OK;
}

/* Parses "2024-05-13T00:00:00Z", "2024-05-13T02:00:00+02:00", "2024-05-13" or Unix seconds. */
static int
parse_created(const char *s, int64_t *out)
{
    struct tm tm;
    const char *p;
    char *end;
    long long v;
    int off = 0;

    if (*s != '\0' && strspn(s, "0123456789") == strlen(s)) {
        v = strtoll(s, &end, 10);
        *out = v;
        return MG_OK;
    }
    memset(&tm, 0, sizeof(tm));
    p = strptime(s, "%Y-%m-%d", &tm);
    if (p == NULL) {
        return MG_ERR;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (p == NULL) {
            return MG_ERR;
        }
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                p++;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
                   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
                   isdigit((unsigned char)p[5])) {
            off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
            if (*p == '+') {
                off = -off;
            }
            p += 6;
        } else {
            return MG_ERR;
        }
    }
    if (*p != '\0') {
        return MG_ERR;
    }
    *out = (int64_t)timegm(&tm) + off;
    return MG_OK;
}

static int
set_created(struct ctx *c, yaml_node_t *node, void *dst)
{
    char *s = scalar(c, node, "created");
    int rc;

    if (s == NULL) {
        return MG_ERR;
    }
    rc = parse_created(s, (int64_t *)dst);
    if (rc != MG_OK) {
        conf_error(c, node, "bad created \"%s\" (RFC 3339 date-time or Unix seconds)", s);
    }
    free(s);
    return rc;
}

/* Walks a mapping with a field table; unknown and duplicate keys are errors. */
static int
parse_mapping(struct ctx *c, yaml_node_t *node, const struct field *fields, size_t nfields,
              void *base, const char *what)
{
    yaml_node_pair_t *pair, *prev;
    int rc = MG_OK;

    if (node->type != YAML_MAPPING_NODE) {
        conf_error(c, node, "%s must be a mapping, not %s", what, node_kind(node));
        return MG_ERR;
    }
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
        const char *key;
        size_t i;

        if (k->type != YAML_SCALAR_NODE) {
            conf_error(c, k, "keys in %s must be scalars", what);
            rc = MG_ERR;
            continue;
        }
        key = (const char *)k->data.scalar.value;
        for (prev = node->data.mapping.pairs.start; prev < pair; prev++) {
            yaml_node_t *pk = node_at(c, prev->key);
            if (pk->type == YAML_SCALAR_NODE && strcmp((const char *)pk->data.scalar.value, key) == 0) {
                conf_error(c, k, "duplicate key \"%s\" in %s", key, what);
                rc = MG_ERR;
                break;
            }
        }
        if (prev < pair) {
            continue;
        }
        for (i = 0; i < nfields; i++) {
            if (strcmp(fields[i].key, key) == 0) {
                break;
            }
        }
        if (i == nfields) {
            conf_error(c, k, "unknown key \"%s\" in %s", key, what);
            rc = MG_ERR;
            continue;
        }
        if (fields[i].set(c, v, (char *)base + fields[i].off) != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

/* dst points at a `struct mg_header *headers` immediately followed by `size_t nheaders`. */
static int
set_headers(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct mg_header **out = dst;
    size_t *count = (size_t *)((char *)dst + sizeof(struct mg_header *));
    yaml_node_pair_t *pair, *prev;
    size_t n = 0;
    int rc = MG_OK;

    if (node->type != YAML_MAPPING_NODE) {
        conf_error(c, node, "headers must be a mapping, not %s", node_kind(node));
        return MG_ERR;
    }
    *out = mg_calloc((size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start) + 1,
                     sizeof(struct mg_header));
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = node_at(c, pair->key), *v = node_at(c, pair->value);
        char *name, *value;

        name = scalar(c, k, "header name");
        if (name == NULL) {
            rc = MG_ERR;
            continue;
        }
        if (name[0] == '\0' || strpbrk(name, " :\t\r\n") != NULL) {
            conf_error(c, k, "bad header name \"%s\"", name);
            free(name);
            rc = MG_ERR;
            continue;
        }
        for (prev = node->data.mapping.pairs.start; prev < pair; prev++) {
            yaml_node_t *pk = node_at(c, prev->key);
            if (pk->type == YAML_SCALAR_NODE &&
                strcasecmp((const char *)pk->data.scalar.value, name) == 0) {
                break;
            }
        }
        if (prev < pair) {
            conf_error(c, k, "duplicate header \"%s\"", name);
            free(name);
            rc = MG_ERR;
            continue;
        }
        value = scalar(c, v, "header value");
        if (value == NULL || has_control(value)) {
            if (value != NULL) {
                conf_error(c, v, "header value holds a control character");
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

static const struct field timeout_fields[] = {
    {"connect", set_duration, offsetof(struct mg_timeouts, connect_ms)},
    {"first_byte", set_duration, offsetof(struct mg_timeouts, first_byte_ms)},
    {"first_token", set_duration, offsetof(struct mg_timeouts, first_token_ms)},
    {"idle", set_duration, offsetof(struct mg_timeouts, idle_ms)},
    {"total", set_duration, offsetof(struct mg_timeouts, total_ms)},
};

static int
set_timeouts(struct ctx *c, yaml_node_t *node, void *dst)
{
    return parse_mapping(c, node, timeout_fields, MG_ARRAY_LEN(timeout_fields), dst, "timeouts");
}

/* health: as read; -1 is "not in the file" (a backend's overrides are merged key by key). */
struct health_in {
    long long failures;
    int64_t   cooldown_ms;
    int64_t   max_cooldown_ms;
    yaml_node_t *node;
};

INT_SETTER(set_failures, long long, 0, 16383)

static const struct field health_fields[] = {
    {"failures", set_failures, offsetof(struct health_in, failures)},
    {"cooldown", set_duration, offsetof(struct health_in, cooldown_ms)},
    {"max_cooldown", set_duration, offsetof(struct health_in, max_cooldown_ms)},
};

static int
set_health(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct health_in *h = dst;

    h->node = node;
    return parse_mapping(c, node, health_fields, MG_ARRAY_LEN(health_fields), dst, "health");
}

/* A backend as read: timeouts start unset (0) and are merged with the defaults afterwards. */
struct backend_in {
    struct mg_backend  b;
    struct mg_timeouts t;
    struct health_in   h;
    yaml_node_t       *node;
};

static int
set_schema(struct ctx *c, yaml_node_t *node, void *dst)
{
    static const char *const names[] = {
        [MG_SCHEMA_OPENAI] = "openai", [MG_SCHEMA_AZURE] = "azure",
        [MG_SCHEMA_ANTHROPIC] = "anthropic", [MG_SCHEMA_BEDROCK] = "bedrock",
    };
    char *s = scalar(c, node, "schema");
    size_t i;

    if (s == NULL) {
        return MG_ERR;
    }
    for (i = 0; i < MG_ARRAY_LEN(names) && strcmp(s, names[i]) != 0; i++) {
    }
    if (i == MG_ARRAY_LEN(names)) {
        conf_error(c, node, "unknown schema \"%s\" (openai, azure, anthropic or bedrock)", s);
    } else {
        *(int *)dst = (int)i;
    }
    free(s);
    return i == MG_ARRAY_LEN(names) ? MG_ERR : MG_OK;
}

static const struct field backend_fields[] = {
    {"name", set_nonempty_string, offsetof(struct backend_in, b.name)},
    {"url", set_url, offsetof(struct backend_in, b.url)},
    {"api_key", set_line, offsetof(struct backend_in, b.api_key)},
    {"proxy", set_proxy, offsetof(struct backend_in, b.proxy)},
    {"headers", set_headers, offsetof(struct backend_in, b.headers)},
    {"schema", set_schema, offsetof(struct backend_in, b.schema)},
    /* every string below reaches a request line or header: no control characters */
    {"api_version", set_nonempty_line, offsetof(struct backend_in, b.api_version)},
    {"anthropic_version", set_nonempty_line, offsetof(struct backend_in, b.anthropic_version)},
    {"max_tokens", set_max_tokens, offsetof(struct backend_in, b.max_tokens)},
    {"region", set_nonempty_line, offsetof(struct backend_in, b.region)},
    {"aws_access_key_id", set_nonempty_line, offsetof(struct backend_in, b.aws_access_key_id)},
    {"aws_secret_access_key", set_nonempty_line,
     offsetof(struct backend_in, b.aws_secret_access_key)},
    {"aws_session_token", set_line, offsetof(struct backend_in, b.aws_session_token)},
    {"timeouts", set_timeouts, offsetof(struct backend_in, t)},
    {"health", set_health, offsetof(struct backend_in, h)},
};

struct rule_backend_in {
    struct mg_rule_backend rb;
    char                  *name;
    yaml_node_t           *node;
};

static const struct field rule_backend_fields[] = {
    {"backend", set_nonempty_string, offsetof(struct rule_backend_in, name)},
    {"weight", set_weight, offsetof(struct rule_backend_in, rb.weight)},
    {"priority", set_priority, offsetof(struct rule_backend_in, rb.priority)},
    {"model", set_nonempty_string, offsetof(struct rule_backend_in, rb.model)},
};

struct rule_in {
    struct mg_rule          r;
    struct rule_backend_in *rbs;
    size_t                  nrbs;
    int                     retries_set;
    yaml_node_t            *node;
};

static int
set_models(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct mg_rule *r = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "models must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    if (node->data.sequence.items.top == node->data.sequence.items.start) {
        conf_error(c, node, "models must not be empty");
        return MG_ERR;
    }
    r->models = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                          sizeof(char *));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *m = node_at(c, *it);
        char *s = scalar(c, m, "model name");
        if (s == NULL) {
            rc = MG_ERR;
            continue;
        }
        if (s[0] == '\0') {
            conf_error(c, m, "model name must not be empty");
            free(s);
            rc = MG_ERR;
            continue;
        }
        r->models[r->nmodels++] = s;
    }
    return rc;
}

static int
set_retries_in(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct rule_in *ri = dst;

    if (set_retries(c, node, &ri->r.retries) != MG_OK) {
        return MG_ERR;
    }
    ri->retries_set = 1;
    return MG_OK;
}

static int
set_rule_backends(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct rule_in *ri = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "backends must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    ri->rbs = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                        sizeof(*ri->rbs));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        struct rule_backend_in *rb = &ri->rbs[ri->nrbs++];
        yaml_node_t *n = node_at(c, *it);
        rb->rb.weight = 1;
        rb->node = n;
        if (parse_mapping(c, n, rule_backend_fields, MG_ARRAY_LEN(rule_backend_fields), rb,
                          "a rule's backend entry") != MG_OK) {
            rc = MG_ERR;
        } else if (rb->name == NULL) {
            conf_error(c, n, "a rule's backend entry needs \"backend\"");
            rc = MG_ERR;
        }
    }
    return rc;
}

/* Rule fields point into struct rule_in; the models/backends setters take the whole rule. */
static const struct field rule_fields[] = {
    {"models", set_models, 0},
    {"owned_by", set_nonempty_string, offsetof(struct rule_in, r.owned_by)},
    {"created", set_created, offsetof(struct rule_in, r.created)},
    {"headers", set_headers, offsetof(struct rule_in, r.headers)},
    {"list", set_bool, offsetof(struct rule_in, r.list)},
    {"retries", set_retries_in, 0},
    {"retry_same", set_bool, offsetof(struct rule_in, r.retry_same)},
    {"retry_after_max", set_duration, offsetof(struct rule_in, r.retry_after_max_ms)},
    {"backends", set_rule_backends, 0},
};

/*
 * A client key as read. Its text lives here only until post_auth() has taken its digest; then it
 * is wiped. No message ever quotes a key's text: errors name the key by its name.
 */
struct key_in {
    struct mg_key k;
    char         *text;         /* `key`, expanded */
    char         *hex;          /* `key_sha256` */
    yaml_node_t  *node;
    yaml_node_t  *text_node;
    yaml_node_t  *hex_node;
};

struct auth_in {
    struct key_in *ks;
    size_t         nks;
    yaml_node_t   *node;
};

struct conf_in {
    struct mg_conf          *conf;
    struct health_in         health;    /* the top-level health, as read */
    struct backend_in       *bs;
    size_t                   nbs;
    struct rule_in          *rs;
    size_t                   nrs;
    yaml_node_t             *listen_node;
    yaml_node_t             *admin_node;
    struct auth_in           auth;
};


static int
set_backends(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct conf_in *in = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "backends must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    in->bs = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                       sizeof(*in->bs));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        struct backend_in *b = &in->bs[in->nbs++];
        yaml_node_t *n = node_at(c, *it);
        b->node = n;
        b->h.failures = -1;
        b->h.cooldown_ms = -1;
        b->h.max_cooldown_ms = -1;
        if (parse_mapping(c, n, backend_fields, MG_ARRAY_LEN(backend_fields), b,
                          "a backend") != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

static int
set_rules(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct conf_in *in = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "rules must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    in->rs = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                       sizeof(*in->rs));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        struct rule_in *r = &in->rs[in->nrs++];
        yaml_node_t *n = node_at(c, *it);
        r->node = n;
        r->r.created = -1;
        r->r.list = 1;
        r->r.retry_same = 1;
        r->r.retry_after_max_ms = 5000;
        r->r.line = (int)n->start_mark.line + 1;
        if (parse_mapping(c, n, rule_fields, MG_ARRAY_LEN(rule_fields), r, "a rule") != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

/* ---- auth ---------------------------------------------------------------------------------- */

INT_SETTER(set_per_minute, int64_t, 1, MG_LIMIT_MAX)

static int
set_key_text(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct key_in *ki = dst;

    ki->text_node = node;
    return set_string(c, node, &ki->text);
}

static int
set_key_hex(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct key_in *ki = dst;

    ki->hex_node = node;
    return set_string(c, node, &ki->hex);
}

/* A key's allow-list: exact names and prefix* patterns, none empty. */
static int
set_key_models(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct mg_key *k = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "models must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    if (node->data.sequence.items.top == node->data.sequence.items.start) {
        conf_error(c, node, "models must not be empty (leave it out to allow every model)");
        return MG_ERR;
    }
    k->models = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                          sizeof(char *));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *m = node_at(c, *it);
        char *s = scalar(c, m, "model name");
        if (s == NULL) {
            rc = MG_ERR;
        } else if (s[0] == '\0' || strcmp(s, "*") == 0) {
            conf_error(c, m, "model name must not be empty (leave models out to allow all)");
            free(s);
            rc = MG_ERR;
        } else {
            k->models[k->nmodels++] = s;
        }
    }
    return rc;
}

static const struct field key_fields[] = {
    {"name", set_nonempty_string, offsetof(struct key_in, k.name)},
    {"key", set_key_text, 0},
    {"key_sha256", set_key_hex, 0},
    {"models", set_key_models, offsetof(struct key_in, k)},
    {"requests_per_minute", set_per_minute, offsetof(struct key_in, k.requests_per_minute)},
    {"tokens_per_minute", set_per_minute, offsetof(struct key_in, k.tokens_per_minute)},
};

static int
set_auth_keys(struct ctx *c, yaml_node_t *node, void *dst)
{
    struct auth_in *a = dst;
    yaml_node_item_t *it;
    int rc = MG_OK;

    if (node->type != YAML_SEQUENCE_NODE) {
        conf_error(c, node, "keys must be a list, not %s", node_kind(node));
        return MG_ERR;
    }
    a->ks = mg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                      sizeof(*a->ks));
    for (it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        struct key_in *ki = &a->ks[a->nks++];
        ki->node = node_at(c, *it);
        if (parse_mapping(c, ki->node, key_fields, MG_ARRAY_LEN(key_fields), ki,
                          "a key") != MG_OK) {
            rc = MG_ERR;
        }
    }
    return rc;
}

static const struct field auth_fields[] = {
    {"keys", set_auth_keys, 0},
};

static int
set_auth(struct ctx *c, yaml_node_t *node, void *dst)
{
    c->in->auth.node = node;
    c->conf->auth = 1;
    return parse_mapping(c, node, auth_fields, MG_ARRAY_LEN(auth_fields), &c->in->auth, "auth");
}

static void __attribute__((format(printf, 3, 4)))
conf_warning(struct ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
    struct mg_buf w;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mg_buf_init(&w, 1024 * 1024);
    if (c->conf->warnings != NULL) {
        mg_buf_adds(&w, c->conf->warnings);
        free(c->conf->warnings);
    }
    mg_buf_printf(&w, "%s:%zu:%zu: warning: %s\n", c->path, node->start_mark.line + 1,
                  node->start_mark.column + 1, msg);
    c->conf->warnings = w.data;
}

/* 1 when the key text could be sent in a header as it is: no control bytes, no edge blanks. */
static int
key_text_ok(const char *s)
{
    size_t i, n = strlen(s);

    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return 0;
        }
    }
    return s[0] != ' ' && s[n - 1] != ' ';
}

static int valid_name(const char *s);

/* Keys: names unique and well-formed, one key each, digests unique; the text dropped. */
static void
post_auth(struct ctx *c, struct conf_in *in)
{
    struct mg_conf *conf = in->conf;
    size_t i, j;

    if (!conf->auth) {
        return;
    }
    if (in->auth.nks == 0) {
        conf_error(c, in->auth.node, "auth needs at least one entry in \"keys\"");
        return;
    }
    conf->keys = mg_calloc(in->auth.nks, sizeof(struct mg_key));
    for (i = 0; i < in->auth.nks; i++) {
        struct key_in *ki = &in->auth.ks[i];
        const char *name = ki->k.name ? ki->k.name : "?";
        int have = 0;

        if (ki->k.name == NULL) {
            conf_error(c, ki->node, "a key needs \"name\"");
        } else if (!valid_name(ki->k.name)) {
            conf_error(c, ki->node, "key name \"%s\" may only hold A-Z a-z 0-9 _ . -", name);
        } else {
            for (j = 0; j < conf->nkeys; j++) {
                if (strcmp(conf->keys[j].name, ki->k.name) == 0) {
                    conf_error(c, ki->node, "duplicate key name \"%s\"", name);
                    break;
                }
            }
        }
        if (ki->text != NULL && ki->hex != NULL) {
            conf_error(c, ki->hex_node, "key \"%s\" has both \"key\" and \"key_sha256\"", name);
        } else if (ki->text != NULL) {
            if (ki->text[0] == '\0') {
                conf_error(c, ki->text_node, "the key of \"%s\" is empty", name);
            } else if (!key_text_ok(ki->text)) {
                conf_error(c, ki->text_node, "the key of \"%s\" holds control characters or "
                           "starts or ends with a space", name);
            } else {
                if (strlen(ki->text) < MG_AUTH_SHORT_KEY) {
                    conf_warning(c, ki->text_node, "the key of \"%s\" is shorter than %d "
                                 "characters; use openssl rand -hex 32", name, MG_AUTH_SHORT_KEY);
                }
                mg_auth_digest(ki->text, strlen(ki->text), ki->k.digest);
                have = 1;
            }
        } else if (ki->hex != NULL) {
            if (mg_auth_parse_hex(ki->hex, ki->k.digest) != 0) {
                conf_error(c, ki->hex_node, "key_sha256 of \"%s\" must be 64 hex digits", name);
            } else {
                have = 1;
            }
        } else {
            conf_error(c, ki->node, "key \"%s\" needs \"key\" or \"key_sha256\"", name);
        }
        for (j = 0; have && j < conf->nkeys; j++) {
            if (memcmp(conf->keys[j].digest, ki->k.digest, MG_AUTH_DIGEST_LEN) == 0) {
                conf_error(c, ki->text ? ki->text_node : ki->hex_node,
                           "key \"%s\" is the same key as \"%s\"", name, conf->keys[j].name);
                break;
            }
        }
        if (ki->k.name == NULL) {
            ki->k.name = mg_strdup("?");
        }
        conf->keys[conf->nkeys++] = ki->k;
        memset(&ki->k, 0, sizeof(ki->k));
    }
}

static void
auth_in_free(struct auth_in *a)
{
    size_t i, j;

    for (i = 0; i < a->nks; i++) {
        struct key_in *ki = &a->ks[i];
        if (ki->text != NULL) {
            OPENSSL_cleanse(ki->text, strlen(ki->text));
        }
        free(ki->text);
        free(ki->hex);
        free(ki->k.name);
        for (j = 0; j < ki->k.nmodels; j++) {
            free(ki->k.models[j]);
        }
        free(ki->k.models);
    }
    free(a->ks);
}

static int
set_listen_in(struct ctx *c, yaml_node_t *node, void *dst)
{
    c->in->listen_node = node;
    return set_listen(c, node, dst);
}

static int
set_admin_in(struct ctx *c, yaml_node_t *node, void *dst)
{
    c->in->admin_node = node;
    return set_listen(c, node, dst);
}

/* Top-level keys: offsets into struct mg_conf, except backends/rules which fill struct conf_in. */
#define CONF(f) offsetof(struct mg_conf, f)
static const struct field top_fields[] = {
    {"listen", set_listen_in, CONF(listen)},
    {"admin_listen", set_admin_in, CONF(admin_listen)},
    {"workers", set_workers, CONF(workers)},
    {"max_body_size", set_size, CONF(max_body_size)},
    {"shutdown_timeout", set_duration, CONF(shutdown_timeout_ms)},
    {"header_timeout", set_duration, CONF(header_timeout_ms)},
    {"keepalive_timeout", set_duration, CONF(keepalive_timeout_ms)},
    {"body_timeout", set_duration, CONF(body_timeout_ms)},
    {"overhead_header", set_bool, CONF(overhead_header)},
    {"timeouts", set_timeouts, CONF(timeouts)},
    {"access_log", set_access_log, CONF(access_log)},
    {"log_level", set_log_level, CONF(log_level)},
};

static void
free_headers(struct mg_header *h, size_t n)
{
    size_t i;

    for (i = 0; h != NULL && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

/* The keys only some schemas have. */
static void
free_schema_keys(struct mg_backend *b)
{
    free(b->api_version);
    free(b->anthropic_version);
    free(b->region);
    free(b->aws_access_key_id);
    free(b->aws_secret_access_key);
    free(b->aws_session_token);
}

static void
conf_free(struct mg_conf *conf)
{
    size_t i, j;

    if (conf == NULL) {
        return;
    }
    for (i = 0; i < conf->nbackends; i++) {
        struct mg_backend *b = &conf->backends[i];
        free(b->name);
        free(b->url);
        free(b->api_key);
        free(b->auth_header);
        free(b->proxy);
        free_headers(b->headers, b->nheaders);
        free_schema_keys(b);
    }
    free(conf->backends);
    for (i = 0; i < conf->nrules; i++) {
        struct mg_rule *r = &conf->rules[i];
        for (j = 0; j < r->nmodels; j++) {
            free(r->models[j]);
        }
        free(r->models);
        free(r->owned_by);
        free_headers(r->headers, r->nheaders);
        for (j = 0; j < r->nbackends; j++) {
            free(r->backends[j].model);
        }
        free(r->backends);
    }
    free(conf->rules);
    free(conf->catalog);
    free(conf->catalog_json);
    mg_auth_keys_free(conf->keys, conf->nkeys);
    free(conf->warnings);
    free(conf->path);
    free(conf->listen);
    free(conf->admin_listen);
    free(conf->access_log);
    free(conf);
}

static int
valid_name(const char *s)
{
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-') {
            return 0;
        }
    }
    return 1;
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

/* The first set, non-empty variable of the two names. */
static const char *
env2(const char *a, const char *b)
{
    const char *v = getenv(a);

    if (v == NULL || v[0] == '\0') {
        v = getenv(b);
    }
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* 1 when NO_PROXY (comma or space separated; "*", a host, a domain) covers host[0..n). */
static int
no_proxy_covers(const char *list, const char *host, size_t n)
{
    const char *p = list;

    while (*p != '\0') {
        size_t len;
        p += strspn(p, ", ");
        len = strcspn(p, ", ");
        if (len == 1 && *p == '*') {
            return 1;
        }
        if (len > 0 && *p == '.') {
            p++;
            len--;
        }
        if (len > 0 && len <= n && strncasecmp(host + n - len, p, len) == 0 &&
            (len == n || host[n - len - 1] == '.')) {
            return 1;
        }
        p += len;
    }
    return 0;
}

/*
 * The proxy a backend's requests go through, "" for none, decided once at load: its proxy key
 * ("none" is none), else the environment as curl would read it (https_proxy or HTTPS_PROXY for
 * https backends, http_proxy or HTTP_PROXY for http, then ALL_PROXY), unless NO_PROXY covers
 * the host. Every transfer then sets it explicitly: curl never reads the environment itself.
 */
static void
resolve_proxy(struct mg_backend *b)
{
    const char *host = strstr(b->url, "://"), *p, *no;
    size_t n;

    if (b->proxy != NULL) {
        if (strcmp(b->proxy, "none") == 0) {
            b->proxy[0] = '\0';
        }
        return;
    }
    host = host ? host + 3 : b->url;
    n = strcspn(host, "/");
    if (host[0] == '[') {
        host++;
        n = strcspn(host, "]");
    } else if (memchr(host, ':', n) != NULL) {
        n = (size_t)((const char *)memchr(host, ':', n) - host);
    }
    p = strncmp(b->url, "https://", 8) == 0 ? env2("https_proxy", "HTTPS_PROXY")
                                            : env2("http_proxy", "HTTP_PROXY");
    if (p == NULL) {
        p = env2("all_proxy", "ALL_PROXY");
    }
    no = env2("no_proxy", "NO_PROXY");
    if (p != NULL && no != NULL && no_proxy_covers(no, host, n)) {
        p = NULL;
    }
    b->proxy = mg_strdup(p ? p : "");
}

/* A backend's health: the top level's, with the backend's keys over it; cooldown <= max_cooldown. */
static void
merge_health(struct ctx *c, struct mg_health_conf *out, const struct health_in *top,
             const struct health_in *over)
{
    out->failures = (int)(over->failures >= 0 ? over->failures
                                              : top->failures >= 0 ? top->failures : 3);
    out->cooldown_ms = over->cooldown_ms > 0 ? over->cooldown_ms
                                             : top->cooldown_ms > 0 ? top->cooldown_ms : 10000;
    out->max_cooldown_ms = over->max_cooldown_ms > 0 ? over->max_cooldown_ms
                           : top->max_cooldown_ms > 0 ? top->max_cooldown_ms : 300000;
    if (out->cooldown_ms > out->max_cooldown_ms) {
        conf_error(c, over->node ? over->node : top->node,
                   "health: cooldown (%lld ms) is longer than max_cooldown (%lld ms)",
                   (long long)out->cooldown_ms, (long long)out->max_cooldown_ms);
    }
}

/* Phase three, what spans keys (listen addresses first). Moves the parsed parts into conf. */
static void
post_listen(struct ctx *c, struct conf_in *in)
{
    struct mg_conf *conf = in->conf;

    mg_parse_listen(conf->listen, conf->listen_host, sizeof(conf->listen_host), &conf->listen_port);
    if (conf->admin_listen != NULL) {
        mg_parse_listen(conf->admin_listen, conf->admin_host, sizeof(conf->admin_host),
                        &conf->admin_port);
        if (conf->admin_port == conf->listen_port && conf->admin_port != 0 &&
            strcmp(conf->admin_host, conf->listen_host) == 0) {
            conf_error(c, in->admin_node, "admin_listen must differ from listen");
        }
    }
}

/* A new "name: value" line. */
static char *
header_line(const char *name, const char *value)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *line = mg_malloc(n);

    snprintf(line, n, "%s: %s", name, value);
    return line;
}

/* 1 when the backend has key set and its schema is not one of those it applies to. */
static int
misplaced(struct ctx *c, const struct backend_in *b, const void *key, const char *name,
          int schema, const char *schema_name)
{
    if (key != NULL && b->b.schema != schema) {
        conf_error(c, b->node, "backend \"%s\": %s applies only to schema: %s",
                   b->b.name ? b->b.name : "?", name, schema_name);
        return 1;
    }
    return 0;
}

/*
 * What a backend's schema needs: its keys present (and no key of another schema), defaults
 * (bedrock's url, anthropic_version, max_tokens), and the key's header line built once.
 */
static void
post_schema(struct ctx *c, struct backend_in *in)
{
    struct mg_backend *b = &in->b;
    const char *name = b->name ? b->name : "?";
    int has_key = b->api_key != NULL && b->api_key[0] != '\0';
    int tokens = b->schema == MG_SCHEMA_ANTHROPIC || b->schema == MG_SCHEMA_BEDROCK;

    misplaced(c, in, b->api_version, "api_version", MG_SCHEMA_AZURE, "azure");
    misplaced(c, in, b->anthropic_version, "anthropic_version", MG_SCHEMA_ANTHROPIC, "anthropic");
    misplaced(c, in, b->region, "region", MG_SCHEMA_BEDROCK, "bedrock");
    misplaced(c, in, b->aws_access_key_id, "aws_access_key_id", MG_SCHEMA_BEDROCK, "bedrock");
    misplaced(c, in, b->aws_secret_access_key, "aws_secret_access_key", MG_SCHEMA_BEDROCK,
              "bedrock");
    misplaced(c, in, b->aws_session_token, "aws_session_token", MG_SCHEMA_BEDROCK, "bedrock");
    if (b->max_tokens != 0 && !tokens) {
        conf_error(c, in->node, "backend \"%s\": max_tokens applies only to schemas anthropic "
                   "and bedrock", name);
    }
    if (b->max_tokens == 0) {
        b->max_tokens = 4096;
    }
    switch (b->schema) {
    case MG_SCHEMA_AZURE:
        if (b->api_version == NULL) {
            conf_error(c, in->node, "backend \"%s\" (schema: azure) needs \"api_version\"", name);
        }
        if (!has_key) {
            conf_error(c, in->node, "backend \"%s\" (schema: azure) needs \"api_key\"", name);
        } else {
            b->auth_header = header_line("api-key", b->api_key);
        }
        return;
    case MG_SCHEMA_ANTHROPIC:
        if (!has_key) {
            conf_error(c, in->node, "backend \"%s\" (schema: anthropic) needs \"api_key\"", name);
        } else {
            b->auth_header = header_line("x-api-key", b->api_key);
        }
        {
            char *v = header_line("anthropic-version",
                                  b->anthropic_version ? b->anthropic_version : "2023-06-01");
            free(b->anthropic_version);
            b->anthropic_version = v;
        }
        return;
    case MG_SCHEMA_BEDROCK:
        if (b->region == NULL) {
            conf_error(c, in->node, "backend \"%s\" (schema: bedrock) needs \"region\"", name);
        } else if (b->url == NULL) {
            size_t n = strlen(b->region) + sizeof("https://bedrock-runtime..amazonaws.com");
            b->url = mg_malloc(n);
            snprintf(b->url, n, "https://bedrock-runtime.%s.amazonaws.com", b->region);
        }
        if (b->aws_access_key_id == NULL || b->aws_secret_access_key == NULL) {
            conf_error(c, in->node, "backend \"%s\" (schema: bedrock) needs "
                       "\"aws_access_key_id\" and \"aws_secret_access_key\"", name);
        }
        if (b->api_key != NULL) {
            conf_error(c, in->node, "backend \"%s\": schema bedrock signs its requests with the "
                       "aws_* keys, not api_key", name);
        }
        return;
    default:
        if (has_key) {
            size_t n = strlen(b->api_key) + sizeof("Authorization: Bearer ");
            b->auth_header = mg_malloc(n);
            snprintf(b->auth_header, n, "Authorization: Bearer %s", b->api_key);
        }
    }
}

/* Backends: names unique and well-formed, URLs, the key's header line built once. */
static void
post_backends(struct ctx *c, struct conf_in *in)
{
    struct mg_conf *conf = in->conf;
    size_t i, j;

    conf->backends = mg_calloc(in->nbs, sizeof(struct mg_backend));
    for (i = 0; i < in->nbs; i++) {
        struct backend_in *b = &in->bs[i];
        if (b->b.name == NULL) {
            conf_error(c, b->node, "a backend needs \"name\"");
        } else if (!valid_name(b->b.name)) {
            conf_error(c, b->node, "backend name \"%s\" may only hold A-Z a-z 0-9 _ . -",
                       b->b.name);
        } else {
            for (j = 0; j < conf->nbackends; j++) {
                if (conf->backends[j].name != NULL && strcmp(conf->backends[j].name, b->b.name) == 0) {
                    conf_error(c, b->node, "duplicate backend name \"%s\"", b->b.name);
                    break;
                }
            }
        }
        post_schema(c, b);
        if (b->b.url == NULL) {
            if (b->b.schema != MG_SCHEMA_BEDROCK) {   /* bedrock: its region was asked for */
                conf_error(c, b->node, "backend \"%s\" needs \"url\"",
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
        merge_health(c, &b->b.health, &in->health, &b->h);
        if (b->b.url != NULL) {
            resolve_proxy(&b->b);
        }
        conf->backends[conf->nbackends++] = b->b;
        memset(&b->b, 0, sizeof(b->b));
    }
}

/* Rules: entries resolved to backend indices, default retries and owned_by. */
static void
post_rules(struct ctx *c, struct conf_in *in)
{
    struct mg_conf *conf = in->conf;
    size_t i, j, k;

    conf->rules = mg_calloc(in->nrs, sizeof(struct mg_rule));
    for (i = 0; i < in->nrs; i++) {
        struct rule_in *r = &in->rs[i];
        int enabled = 0;

        if (r->r.models == NULL) {
            conf_error(c, r->node, "a rule needs \"models\"");
        }
        if (r->nrbs == 0) {
            conf_error(c, r->node, "a rule needs at least one entry in \"backends\"");
        }
        r->r.backends = mg_calloc(r->nrbs, sizeof(struct mg_rule_backend));
        for (j = 0; j < r->nrbs; j++) {
            struct rule_backend_in *rb = &r->rbs[j];
            int idx = -1;
            for (k = 0; rb->name != NULL && k < conf->nbackends; k++) {
                if (conf->backends[k].name != NULL && strcmp(conf->backends[k].name, rb->name) == 0) {
                    idx = (int)k;
                    break;
                }
            }
            if (rb->name != NULL && idx < 0) {
                conf_error(c, rb->node, "unknown backend \"%s\"", rb->name);
            }
            free(rb->name);
            rb->name = NULL;
            rb->rb.backend = idx < 0 ? 0 : (size_t)idx;
            if (rb->rb.weight > 0) {
                enabled++;
            }
            r->r.backends[r->r.nbackends++] = rb->rb;
            memset(&rb->rb, 0, sizeof(rb->rb));
        }
        if (!r->retries_set) {
            r->r.retries = enabled > 0 ? enabled - 1 : 0;
        }
        r->r.retries_set = r->retries_set;
        if (r->r.owned_by == NULL) {
            r->r.owned_by = mg_strdup("modelgate");
        }
        conf->rules[conf->nrules++] = r->r;
        memset(&r->r, 0, sizeof(r->r));
    }
}

/* Checks that need the whole file (phase three of the loader). */
static void
post_validate(struct ctx *c, struct conf_in *in)
{
    post_listen(c, in);
    post_backends(c, in);
    post_rules(c, in);
    post_auth(c, in);
}

static int
is_pattern(const char *m)
{
    size_t n = strlen(m);
    return n > 0 && m[n - 1] == '*';
}

/*
 * /v1/models as each key with an allow-list sees it: the catalog's entries it may use, in the same
 * order, built once here so that a request only picks the right string.
 */
static void
build_key_catalogs(struct mg_conf *conf)
{
    struct mg_model_entry *seen = mg_calloc(conf->ncatalog + 1, sizeof(*seen));
    struct mg_buf json;
    size_t i, j, n;

    for (i = 0; i < conf->nkeys; i++) {
        struct mg_key *k = &conf->keys[i];
        if (k->models == NULL) {
            continue;
        }
        for (j = n = 0; j < conf->ncatalog; j++) {
            if (mg_auth_allows(k, conf->catalog[j].id, strlen(conf->catalog[j].id))) {
                seen[n++] = conf->catalog[j];
            }
        }
        mg_buf_init(&json, (size_t)1 << 30);
        mg_catalog_json(&json, seen, n);
        k->catalog_json = json.data;
        k->catalog_json_len = json.len;
    }
    free(seen);
}

/* The catalog: exact names of listed rules, in file order, each once (its first rule). */
static void
build_catalog(struct mg_conf *conf, int64_t now, const struct mg_catalog_seen *seen)
{
    struct mg_buf json;
    size_t i, j, k, total = 0;

    for (i = 0; i < conf->nrules; i++) {
        total += conf->rules[i].nmodels;
    }
    conf->catalog = mg_calloc(total, sizeof(struct mg_model_entry));
    for (i = 0; i < conf->nrules; i++) {
        const struct mg_rule *r = &conf->rules[i];
        if (!r->list) {
            continue;
        }
        for (j = 0; j < r->nmodels; j++) {
            if (is_pattern(r->models[j])) {
                continue;
            }
            for (k = 0; k < conf->ncatalog; k++) {
                if (strcmp(conf->catalog[k].id, r->models[j]) == 0) {
                    break;
                }
            }
            if (k == conf->ncatalog) {
                conf->catalog[k].id = r->models[j];
                conf->catalog[k].owned_by = r->owned_by;
                conf->catalog[k].created =
                    r->created >= 0 ? r->created : mg_catalog_first_seen(seen, r->models[j], now);
                conf->ncatalog++;
            }
        }
    }
    mg_buf_init(&json, (size_t)1 << 30);
    mg_catalog_json(&json, conf->catalog, conf->ncatalog);
    conf->catalog_json = json.data;
    conf->catalog_json_len = json.len;
    build_key_catalogs(conf);
}

static void
conf_in_free(struct conf_in *in)
{
    size_t i, j;

    for (i = 0; i < in->nbs; i++) {
        free(in->bs[i].b.name);
        free(in->bs[i].b.url);
        free(in->bs[i].b.api_key);
        free(in->bs[i].b.auth_header);
        free_headers(in->bs[i].b.headers, in->bs[i].b.nheaders);
        free_schema_keys(&in->bs[i].b);
    }
    free(in->bs);
    for (i = 0; i < in->nrs; i++) {
        struct rule_in *r = &in->rs[i];
        for (j = 0; j < r->nrbs; j++) {
            free(r->rbs[j].name);
            free(r->rbs[j].rb.model);
        }
        free(r->rbs);
        for (j = 0; j < r->r.nmodels; j++) {
            free(r->r.models[j]);
        }
        free(r->r.models);
        free(r->r.owned_by);
        free_headers(r->r.headers, r->r.nheaders);
        free(r->r.backends);
    }
    free(in->rs);
    auth_in_free(&in->auth);
}

static int
set_in_backends(struct ctx *c, yaml_node_t *node, void *dst)
{
    return set_backends(c, node, c->in);
}

static int
set_in_rules(struct ctx *c, yaml_node_t *node, void *dst)
{
    return set_rules(c, node, c->in);
}

static int
set_in_health(struct ctx *c, yaml_node_t *node, void *dst)
{
    return set_health(c, node, &c->in->health);
}

static const struct field top_extra[] = {
    {"health", set_in_health, 0},
    {"backends", set_in_backends, 0},
    {"rules", set_in_rules, 0},
    {"auth", set_auth, 0},
};

struct mg_conf *
mg_conf_parse(const char *path, const char *text, size_t len, struct mg_buf *errors)
{
    return mg_conf_parse_at(path, text, len, (int64_t)time(NULL), NULL, errors);
}

struct mg_conf *
mg_conf_parse_at(const char *path, const char *text, size_t len, int64_t now,
                 const struct mg_catalog_seen *seen, struct mg_buf *errors)
{
    struct field fields[MG_ARRAY_LEN(top_fields) + MG_ARRAY_LEN(top_extra)];
    yaml_parser_t parser;
    struct conf_in in;
    struct ctx c;
    yaml_node_t *root;
    struct mg_conf *conf;

    memset(&c, 0, sizeof(c));
    memset(&in, 0, sizeof(in));
    in.health.failures = -1;
    in.health.cooldown_ms = -1;
    in.health.max_cooldown_ms = -1;
    c.path = path;
    c.errors = errors;

    conf = mg_calloc(1, sizeof(*conf));
    atomic_init(&conf->refs, 1);
    conf->path = mg_strdup(path);
    conf->listen = mg_strdup("127.0.0.1:8080");
    conf->max_body_size = 16u * 1024 * 1024;
    conf->shutdown_timeout_ms = 30000;
    conf->header_timeout_ms = 10000;
    conf->keepalive_timeout_ms = 60000;
    conf->body_timeout_ms = 60000;
    conf->timeouts.connect_ms = 5000;
    conf->timeouts.first_byte_ms = 60000;
    conf->timeouts.idle_ms = 60000;
    conf->timeouts.total_ms = 600000;
    conf->access_log = mg_strdup("-");
    conf->log_level = MG_LOG_INFO;
    in.conf = conf;
    c.conf = conf;
    c.in = &in;

    if (!yaml_parser_initialize(&parser)) {
        conf_error(&c, NULL, "cannot initialise the YAML parser");
        conf_free(conf);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &c.doc)) {
        mg_buf_printf(errors, "%s:%zu:%zu: %s%s%s\n", path, parser.problem_mark.line + 1,
                      parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML",
                      parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        conf_free(conf);
        return NULL;
    }
    yaml_parser_delete(&parser);

    root = yaml_document_get_root_node(&c.doc);
    if (root == NULL) {
        mg_buf_printf(errors, "%s:1:1: the file is empty\n", path);
        c.nerrors++;
    } else {
        /* The setters for backends/rules/auth fill `in`, reached through c.in. */
        memcpy(fields, top_fields, sizeof(top_fields));
        memcpy(fields + MG_ARRAY_LEN(top_fields), top_extra, sizeof(top_extra));
        parse_mapping(&c, root, fields, MG_ARRAY_LEN(fields), conf, "the top level");
        post_validate(&c, &in);
        if (c.nerrors == 0) {
            build_catalog(conf, now, seen);
        }
    }
    conf_in_free(&in);
    yaml_document_delete(&c.doc);
    if (c.nerrors > 0) {
        conf_free(conf);
        return NULL;
    }
    return conf;
}

struct mg_conf *
mg_conf_load(const char *path, const struct mg_catalog_seen *seen, struct mg_buf *errors)
{
    struct mg_conf *conf;
    struct mg_buf text;
    char chunk[8192];
    const char *p;
    FILE *f;
    size_t n;

    f = fopen(path, "rb");
    if (f == NULL) {
        mg_buf_printf(errors, "%s:1:1: cannot open: %m\n", path);
        return NULL;
    }
    mg_buf_init(&text, CONF_MAX_FILE);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (mg_buf_add(&text, chunk, n) != MG_OK) {
            mg_buf_printf(errors, "%s:1:1: file is larger than %u bytes\n", path, CONF_MAX_FILE);
            fclose(f);
            mg_buf_deinit(&text);
            return NULL;
        }
    }
    fclose(f);
    OPENSSL_cleanse(chunk, sizeof(chunk));
    conf = mg_conf_parse_at(path, text.data ? text.data : "", text.len, (int64_t)time(NULL), seen,
                            errors);
    if (text.data != NULL) {
        OPENSSL_cleanse(text.data, text.len);   /* the file may hold client keys */
    }
    mg_buf_deinit(&text);
    for (p = conf != NULL ? conf->warnings : NULL; p != NULL && *p != '\0'; p += n + 1) {
        n = strcspn(p, "\n");
        mg_log_warn("%.*s", (int)n, p);
        if (p[n] == '\0') {
            break;
        }
    }
    return conf;
}

struct mg_conf *
mg_conf_ref(struct mg_conf *conf)
{
    atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    return conf;
}

void
mg_conf_unref(struct mg_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    if (atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel) == 1) {
        conf_free(conf);
    }
}

