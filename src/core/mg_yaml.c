/*
 * mg_yaml — the configuration engine: libyaml's document walked through owners' key tables.
 *
 * Three phases, as in twemproxy: libyaml loads the document (syntax errors stop here); a
 * table-driven walk (mg_yaml_mapping) fills each owner's struct, each setter reporting its own
 * errors with the node's position and carrying on; the owners then check what spans keys.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_yaml.h"

/* No string read from a file of at most this size grows beyond it. */
#define YAML_MAX_TEXT (4u * 1024 * 1024)

void
mg_yaml_error(struct mg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mg_buf_printf(y->errors, "%s:%zu:%zu: %s\n", y->path, node ? node->start_mark.line + 1 : 1,
                  node ? node->start_mark.column + 1 : 1, msg);
    y->nerrors++;
}

yaml_node_t *
mg_yaml_node(struct mg_yaml *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

const char *
mg_yaml_kind(const yaml_node_t *n)
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
expand_env(struct mg_yaml *y, yaml_node_t *node, const char *s, int quiet)
{
    struct mg_buf out;
    const char *p = s, *start, *end;

    mg_buf_init(&out, YAML_MAX_TEXT);
    mg_buf_add(&out, "", 0);
    while ((start = strstr(p, "${")) != NULL) {
        end = strchr(start + 2, '}');
        if (end == NULL) {
            if (!quiet) {
                mg_yaml_error(y, node, "\"${\" without its \"}\" in \"%s\"", s);
            }
            mg_buf_deinit(&out);
            return NULL;
        }
        char name[256];
        size_t nlen = (size_t)(end - start - 2);
        if (nlen == 0 || nlen >= sizeof(name)) {
            if (!quiet) {
                mg_yaml_error(y, node, "bad environment reference in \"%s\"", s);
            }
            mg_buf_deinit(&out);
            return NULL;
        }
        memcpy(name, start + 2, nlen);
        name[nlen] = '\0';
        const char *v = getenv(name);
        if (v == NULL) {
            if (!quiet) {
                mg_yaml_error(y, node, "environment variable %s is not set", name);
            }
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
char *
mg_yaml_scalar(struct mg_yaml *y, yaml_node_t *node, const char *what)
{
    if (node->type != YAML_SCALAR_NODE) {
        mg_yaml_error(y, node, "%s must be a scalar, not %s", what, mg_yaml_kind(node));
        return NULL;
    }
    return expand_env(y, node, (const char *)node->data.scalar.value, 0);
}

int
mg_yaml_set_string(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char **out = dst;
    char *s = mg_yaml_scalar(y, node, "value");

    if (s == NULL) {
        return MG_ERR;
    }
    free(*out);
    *out = s;
    return MG_OK;
}

int
mg_yaml_set_nonempty(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    if (mg_yaml_set_string(y, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (**(char **)dst == '\0') {
        mg_yaml_error(y, node, "value must not be empty");
        return MG_ERR;
    }
    return MG_OK;
}

/* 1 when s holds a control byte (or DEL): it would end up in a request line or header. */
int
mg_yaml_has_control(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* A string sent in a header (api_key): no control bytes, e.g. an env var's trailing newline. */
int
mg_yaml_set_line(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    if (mg_yaml_set_string(y, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (mg_yaml_has_control(*(char **)dst)) {
        mg_yaml_error(y, node, "value holds a control character (a trailing newline from an "
                   "environment variable?)");
        return MG_ERR;
    }
    return MG_OK;
}

/*
 * A non-empty string that goes into a request line or header as it is (anthropic_version,
 * api_version, region, the aws_* values): a CR or LF would inject a header of the file's choice.
 */
int
mg_yaml_set_nonempty_line(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    if (mg_yaml_set_line(y, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if (**(char **)dst == '\0') {
        mg_yaml_error(y, node, "value must not be empty");
        return MG_ERR;
    }
    return MG_OK;
}

/*
 * "http[s]://host[:port][/path]": no userinfo (curl would send it as Basic auth), no query or
 * fragment (the client's path and query are appended), a port from 1 to 65535, no control
 * bytes. schemes is a NULL-terminated list of the accepted prefixes. NULL when fine, else why.
 */
const char *
mg_yaml_url_problem(const char *u, const char *const *schemes)
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
    if (mg_yaml_has_control(u) || strchr(u, ' ') != NULL) {
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

int
mg_yaml_set_url(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    static const char *const schemes[] = {"http://", "https://", NULL};
    const char *why;

    if (mg_yaml_set_nonempty(y, node, dst) != MG_OK) {
        return MG_ERR;
    }
    if ((why = mg_yaml_url_problem(*(char **)dst, schemes)) != NULL) {
        mg_yaml_error(y, node, "url \"%s\" has %s (a url is http:// or https://, a host, an "
                   "optional port and path)", *(char **)dst, why);
        return MG_ERR;
    }
    return MG_OK;
}

int
mg_yaml_int(struct mg_yaml *y, yaml_node_t *node, long long lo, long long hi, long long *v)
{
    char *s = mg_yaml_scalar(y, node, "value"), *end;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    *v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        mg_yaml_error(y, node, "\"%s\" is not a whole number", s);
        rc = MG_ERR;
    } else if (*v < lo || *v > hi) {
        mg_yaml_error(y, node, "%lld is out of range (%lld to %lld)", *v, lo, hi);
        rc = MG_ERR;
    }
    free(s);
    return rc;
}

int
mg_yaml_set_bool(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
    char *s = mg_yaml_scalar(y, node, "value");
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
        mg_yaml_error(y, node, "\"%s\" is not true or false", s);
    }
    free(s);
    return rc;
}

int
mg_yaml_set_duration(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "duration");
    int64_t ms;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_duration(s, &ms) != MG_OK || ms <= 0) {
        mg_yaml_error(y, node, "bad duration \"%s\" (a positive number with ms, s, m or h)", s);
        rc = MG_ERR;
    } else {
        *(int64_t *)dst = ms;
    }
    free(s);
    return rc;
}

int
mg_yaml_set_size(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    char *s = mg_yaml_scalar(y, node, "size");
    uint64_t v;
    int rc = MG_OK;

    if (s == NULL) {
        return MG_ERR;
    }
    if (mg_parse_size(s, &v) != MG_OK || v == 0 || v > (1ull << 40)) {
        mg_yaml_error(y, node, "bad size \"%s\" (bytes, or a number with KiB, MiB or GiB)", s);
        rc = MG_ERR;
    } else {
        *(uint64_t *)dst = v;
    }
    free(s);
    return rc;
}


void
mg_yaml_warning(struct mg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
{
    struct mg_buf w;
    char msg[512];
    va_list ap;

    if (y->warnings == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mg_buf_init(&w, 1024 * 1024);
    if (*y->warnings != NULL) {
        mg_buf_adds(&w, *y->warnings);
        free(*y->warnings);
    }
    mg_buf_printf(&w, "%s:%zu:%zu: warning: %s\n", y->path, node->start_mark.line + 1,
                  node->start_mark.column + 1, msg);
    *y->warnings = w.data;
}

int
mg_yaml_name_ok(const char *s)
{
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-') {
            return 0;
        }
    }
    return 1;
}

const struct mg_yaml_key *
mg_yaml_find(const struct mg_yaml_key *keys, size_t nkeys, const char *key)
{
    size_t i;

    for (i = 0; i < nkeys; i++) {
        if (strcmp(keys[i].key, key) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

int
mg_yaml_mapping(struct mg_yaml *y, yaml_node_t *node, const struct mg_yaml_key *keys,
                size_t nkeys, void *base, const char *what)
{
    return mg_yaml_mapping_with(y, node, keys, nkeys, base, what, NULL);
}

int
mg_yaml_mapping_with(struct mg_yaml *y, yaml_node_t *node, const struct mg_yaml_key *keys,
                     size_t nkeys, void *base, const char *what, mg_yaml_other_fn other)
{
    yaml_node_pair_t *pair, *prev;
    int rc = MG_OK;

    if (node->type != YAML_MAPPING_NODE) {
        mg_yaml_error(y, node, "%s must be a mapping, not %s", what, mg_yaml_kind(node));
        return MG_ERR;
    }
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = mg_yaml_node(y, pair->key), *v = mg_yaml_node(y, pair->value);
        const struct mg_yaml_key *row;
        const char *key;
        int orc = MG_OK;

        if (k->type != YAML_SCALAR_NODE) {
            mg_yaml_error(y, k, "keys in %s must be scalars", what);
            rc = MG_ERR;
            continue;
        }
        key = (const char *)k->data.scalar.value;
        for (prev = node->data.mapping.pairs.start; prev < pair; prev++) {
            yaml_node_t *pk = mg_yaml_node(y, prev->key);
            if (pk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)pk->data.scalar.value, key) == 0) {
                mg_yaml_error(y, k, "duplicate key \"%s\" in %s", key, what);
                rc = MG_ERR;
                break;
            }
        }
        if (prev < pair) {
            continue;
        }
        row = mg_yaml_find(keys, nkeys, key);
        if (row != NULL) {
            if (row->set(y, v, (char *)base + row->off) != MG_OK) {
                rc = MG_ERR;
            }
        } else if (other != NULL && other(y, key, v, base, &orc)) {
            if (orc != MG_OK) {
                rc = MG_ERR;
            }
        } else {
            mg_yaml_error(y, k, "unknown key \"%s\" in %s", key, what);
            rc = MG_ERR;
        }
    }
    return rc;
}

int
mg_yaml_list(struct mg_yaml *y, yaml_node_t *node, const char *what, size_t *n)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        mg_yaml_error(y, node, "%s must be a list, not %s", what, mg_yaml_kind(node));
        return MG_ERR;
    }
    *n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    return MG_OK;
}

int
mg_yaml_pairs(struct mg_yaml *y, yaml_node_t *node, const char *what, size_t *n)
{
    if (node->type != YAML_MAPPING_NODE) {
        mg_yaml_error(y, node, "%s must be a mapping, not %s", what, mg_yaml_kind(node));
        return MG_ERR;
    }
    *n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    return MG_OK;
}

void
mg_yaml_pair(struct mg_yaml *y, yaml_node_t *map, size_t i, yaml_node_t **key,
             yaml_node_t **value)
{
    *key = mg_yaml_node(y, map->data.mapping.pairs.start[i].key);
    *value = mg_yaml_node(y, map->data.mapping.pairs.start[i].value);
}

const char *
mg_yaml_text(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

yaml_node_t *
mg_yaml_item(struct mg_yaml *y, yaml_node_t *list, size_t i)
{
    return mg_yaml_node(y, list->data.sequence.items.start[i]);
}

int
mg_yaml_load(struct mg_yaml *y, const char *path, const char *text, size_t len,
             struct mg_buf *errors, yaml_node_t **root)
{
    yaml_parser_t parser;

    memset(y, 0, sizeof(*y));
    y->path = path;
    y->errors = errors;
    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        mg_yaml_error(y, NULL, "cannot initialise the YAML parser");
        return MG_ERR;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &y->doc)) {
        mg_buf_printf(errors, "%s:%zu:%zu: %s%s%s\n", path, parser.problem_mark.line + 1,
                      parser.problem_mark.column + 1, parser.problem ? parser.problem : "bad YAML",
                      parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return MG_ERR;
    }
    yaml_parser_delete(&parser);
    *root = yaml_document_get_root_node(&y->doc);
    if (*root == NULL) {
        mg_buf_printf(errors, "%s:1:1: the file is empty\n", path);
        y->nerrors++;
    }
    return MG_OK;
}

void
mg_yaml_deinit(struct mg_yaml *y)
{
    yaml_document_delete(&y->doc);
}

char *
mg_yaml_peek(struct mg_yaml *y, yaml_node_t *node, const char *key)
{
    yaml_node_pair_t *pair;

    if (node->type != YAML_MAPPING_NODE) {
        return NULL;
    }
    for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = mg_yaml_node(y, pair->key), *v = mg_yaml_node(y, pair->value);
        if (k->type == YAML_SCALAR_NODE && v->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0) {
            return expand_env(y, v, (const char *)v->data.scalar.value, 1);
        }
    }
    return NULL;
}
