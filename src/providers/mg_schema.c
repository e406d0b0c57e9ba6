/*
 * mg_schema — the table of schemas, and what every schema shares: the upstream headers, the
 * query string, refusals, and the upstream request buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "mg_api_types.h"
#include "mg_conf_types.h"
#include "mg_hdr.h"
#include "mg_req.h"
#include "mg_schema.h"
#include "mg_yaml.h"

static const struct mg_schema *const schemas[] = {
    [MG_SCHEMA_OPENAI] = &mg_schema_openai,
    [MG_SCHEMA_AZURE] = &mg_schema_azure,
    [MG_SCHEMA_ANTHROPIC] = &mg_schema_anthropic,
    [MG_SCHEMA_BEDROCK] = &mg_schema_bedrock,
};

_Static_assert(MG_ARRAY_LEN(schemas) <= MG_SCHEMA_MAX, "MG_SCHEMA_MAX is too small");

const struct mg_schema *
mg_schema_get(int id)
{
    if (id < 0 || (size_t)id >= MG_ARRAY_LEN(schemas) || schemas[id] == NULL) {
        return &mg_schema_openai;
    }
    return schemas[id];
}

int
mg_schema_count(void)
{
    return (int)MG_ARRAY_LEN(schemas);
}

int
mg_schema_find(const char *name)
{
    int i;

    for (i = 0; i < mg_schema_count(); i++) {
        if (schemas[i] != NULL && strcmp(schemas[i]->name, name) == 0) {
            return i;
        }
    }
    return -1;
}

void
mg_schema_names(char *out, size_t n)
{
    size_t len = 0;
    int i, last = mg_schema_count() - 1;

    out[0] = '\0';
    for (i = 0; i <= last && len < n; i++) {
        const char *sep = i == 0 ? "" : i == last ? " or " : ", ";
        int w = snprintf(out + len, n - len, "%s%s", sep, schemas[i]->name);
        len += w > 0 ? (size_t)w : 0;
    }
}

MG_YAML_INT_SETTER(set_max_tokens, int64_t, 1, 100000000)

int
mg_schema_set_max_tokens(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    return set_max_tokens(y, node, dst);
}

int
mg_schema_set_flag(struct mg_yaml *y, yaml_node_t *node, void *dst)
{
    int v = 0;

    if (mg_yaml_set_bool(y, node, &v) != MG_OK) {
        return MG_ERR;
    }
    *(int64_t *)dst = v ? 1 : 2;   /* 0 stays "not given" (the loader sees a change) */
    return MG_OK;
}

void
mg_schema_prefill_check(struct mg_backend *b, int64_t flag, const char *members)
{
    b->prefill = flag == 1 ? members : NULL;
}

char *
mg_schema_conf_line(const char *name, const char *value)
{
    size_t n = strlen(name) + 2 + strlen(value) + 1;
    char *line = mg_malloc(n);

    snprintf(line, n, "%s: %s", name, value);
    return line;
}

void
mg_upreq_init(struct mg_upreq *up, size_t max_body)
{
    memset(up, 0, sizeof(*up));
    mg_buf_init(&up->url, 64 * 1024);
    mg_buf_init(&up->lines, MG_SCHEMA_LINES_MAX);
    mg_buf_init(&up->edited, max_body);
}

void
mg_upreq_reset(struct mg_upreq *up)
{
    mg_buf_reset(&up->url);
    mg_buf_reset(&up->edited);
    mg_buf_reset(&up->lines);
    up->nlines = 0;
    up->lines_cut = 0;
    up->body = NULL;
    up->body_len = 0;
    up->inject_usage = 0;
    up->method = NULL;
    up->stream = 0;
    up->why[0] = '\0';
    up->param[0] = '\0';
    up->code = NULL;
}

void
mg_upreq_deinit(struct mg_upreq *up)
{
    mg_buf_deinit(&up->lines);
    free(up->nodes);
    up->nodes = NULL;
    up->nodes_alloc = 0;
    up->nlines = 0;
    mg_buf_deinit(&up->url);
    mg_buf_deinit(&up->edited);
}

/* ---- headers ------------------------------------------------------------------------------ */

/*
 * Client headers that never go upstream: hop-by-hop ones (and those the client's Connection
 * names), the client's credentials, and what the gateway sets itself.
 */
static int
skip_request_header(const char *name, const char *connection, const char *const *also)
{
    static const char *const skip[] = {"host", "content-length", "authorization", "api-key",
                                       "x-api-key", "accept-encoding", "expect", "x-request-id"};
    size_t i;

    if (mg_head_hop_by_hop(name) ||
        (connection != NULL &&
         mg_hdr_in_connection(connection, strlen(connection), name, strlen(name)))) {
        return 1;
    }
    for (i = 0; i < MG_ARRAY_LEN(skip); i++) {
        if (mg_hdr_eq(name, skip[i])) {
            return 1;
        }
    }
    for (i = 0; also != NULL && also[i] != NULL; i++) {
        size_t n = strlen(also[i]);
        if (n > 0 && also[i][n - 1] == '*' ? strncasecmp(name, also[i], n - 1) == 0
                                           : mg_hdr_eq(name, also[i])) {
            return 1;
        }
    }
    return 0;
}

/* Adds one line made of a, sep and b, NUL-ended; all of it or nothing (lines_cut set). */
static void
add_parts(struct mg_upreq *up, const char *a, const char *sep, const char *b)
{
    size_t an = strlen(a), sn = strlen(sep), bn = strlen(b);
    struct mg_buf *l = &up->lines;

    /* most requests' lines fit in 1 KiB: one allocation, not five doublings from 64 bytes */
    if (mg_buf_reserve(l, l->alloc == 0 && an + sn + bn < 1023 ? 1023 : an + sn + bn + 1) !=
        MG_OK) {
        up->lines_cut = 1;
        return;
    }
    memcpy(l->data + l->len, a, an);
    memcpy(l->data + l->len + an, sep, sn);
    memcpy(l->data + l->len + an + sn, b, bn);
    l->len += an + sn + bn;
    l->data[l->len++] = '\0';     /* the line's NUL */
    l->data[l->len] = '\0';       /* and the buffer's, as every mg_buf has */
    up->nlines++;
}

void
mg_schema_add_line(struct mg_upreq *up, const char *line)
{
    add_parts(up, line, "", "");
}

void
mg_schema_add_parts(struct mg_upreq *up, const char *head, const char *tail)
{
    add_parts(up, head, "", tail);
}

void
mg_schema_add_header(struct mg_upreq *up, const char *name, const char *value)
{
    if (value[0] != '\0') {
        add_parts(up, name, ": ", value);
    } else {
        add_parts(up, name, ";", "");
    }
}

struct curl_slist *
mg_schema_header_list(struct mg_upreq *up)
{
    char *p = up->lines.data;
    size_t i;

    if (up->nlines == 0 || up->lines_cut) {
        return NULL;
    }
    if (up->nlines > up->nodes_alloc) {
        up->nodes_alloc = up->nlines < 16 ? 16 : up->nlines;
        up->nodes = mg_realloc(up->nodes, up->nodes_alloc * sizeof(*up->nodes));
    }
    for (i = 0; i < up->nlines; i++) {   /* the buffer no longer moves: point into it */
        up->nodes[i].data = p;
        up->nodes[i].next = i + 1 < up->nlines ? &up->nodes[i + 1] : NULL;
        p += strlen(p) + 1;
    }
    return up->nodes;
}

void
mg_schema_headers(struct mg_upreq *up, const struct mg_client_req *rq,
                  const struct mg_backend *b, const char *const *skip, int flags)
{
    const char *connection = mg_headers_get(rq->headers, "connection");
    const struct mg_field *kv;
    size_t i, k;
    int accept = 0;

    for (k = 0; k < rq->headers->n; k++) {
        kv = &rq->headers->v[k];
        accept = accept || mg_hdr_eq(kv->name, "accept");
        if (skip_request_header(kv->name, connection, skip) ||
            (rq->own_trace && mg_hdr_eq(kv->name, "traceparent")) ||
            ((!rq->has_ctype || (flags & MG_SCHEMA_OWN_CTYPE)) &&
             mg_hdr_eq(kv->name, "content-type"))) {
            continue;
        }
        for (i = 0; i < b->nheaders; i++) {
            if (mg_hdr_eq(b->headers[i].name, kv->name)) {
                break;
            }
        }
        if (i < b->nheaders) {
            continue;   /* the backend's own value wins */
        }
        mg_schema_add_header(up, kv->name, kv->value);
    }
    for (i = 0; i < b->nheaders; i++) {
        accept = accept || mg_hdr_eq(b->headers[i].name, "accept");
        mg_schema_add_header(up, b->headers[i].name, b->headers[i].value);
    }
    if (!accept) {
        mg_schema_add_line(up, "Accept:");   /* curl adds its own Accept otherwise; the client sent none */
    }
    if (b->auth_header != NULL) {
        mg_schema_add_line(up, b->auth_header);
    }
    mg_schema_add_header(up, "x-request-id", rq->request_id);   /* exactly one */
    if (!rq->has_ctype || (flags & MG_SCHEMA_OWN_CTYPE)) {
        mg_schema_add_line(up, "Content-Type: application/json");
    }
    /* usage is read and answers are edited or translated: they must come uncompressed */
    mg_schema_add_line(up, "Accept-Encoding: identity");
}

int
mg_schema_probe_request(struct mg_upreq *up, const struct mg_backend *b, const char *path)
{
    size_t i;

    if (mg_buf_adds(&up->url, b->url) != MG_OK || mg_buf_adds(&up->url, path) != MG_OK) {
        return MG_ERR;
    }
    up->method = "GET";
    for (i = 0; i < b->nheaders; i++) {
        mg_schema_add_header(up, b->headers[i].name, b->headers[i].value);
    }
    if (b->auth_header != NULL) {
        mg_schema_add_line(up, b->auth_header);
    }
    mg_schema_add_line(up, "Accept-Encoding: identity");
    return MG_OK;
}

/* ---- URLs and refusals ------------------------------------------------------------------- */

static int
hex_digit(unsigned char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * 1 when the name of query parameter p[0..n) (up to its first '='), percent-decoded, is name
 * (lower case) ignoring case. The server decodes names before it reads them, so "Api-Version",
 * "api%2Dversion" or "%61pi-version" all name the same parameter; a '%' not followed by two hex
 * digits stands for itself, as servers read it.
 */
static int
param_named(const char *p, size_t n, const char *name)
{
    const char *eq = memchr(p, '=', n);
    size_t end = eq != NULL ? (size_t)(eq - p) : n, i = 0, k = 0;

    while (i < end) {
        unsigned char c = (unsigned char)p[i++];
        if (c == '%' && i + 1 < end && hex_digit((unsigned char)p[i]) >= 0 &&
            hex_digit((unsigned char)p[i + 1]) >= 0) {
            c = (unsigned char)(hex_digit((unsigned char)p[i]) * 16 +
                                hex_digit((unsigned char)p[i + 1]));
            i += 2;
        }
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + 32);
        }
        if (name[k] == '\0' || (unsigned char)name[k] != c) {
            return 0;
        }
        k++;
    }
    return name[k] == '\0';
}

int
mg_schema_add_query(struct mg_buf *url, const char *query, const char *drop, int first)
{
    const char *p = query, *amp;
    int rc = MG_OK;

    while (p != NULL && *p != '\0' && rc == MG_OK) {
        size_t n;
        amp = strchr(p, '&');
        n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (n > 0 && (drop == NULL || !param_named(p, n, drop))) {
            rc = mg_buf_add(url, first ? "?" : "&", 1);
            rc = rc ? rc : mg_buf_add(url, p, n);
            first = 0;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return rc;
}

int
mg_schema_refuse(struct mg_upreq *up, int rc, const char *param, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(up->why, sizeof(up->why), fmt, ap);
    va_end(ap);
    snprintf(up->param, sizeof(up->param), "%s", param != NULL ? param : "");
    return rc;
}

/* ---- the client APIs of the OpenAI-shaped schemas ---- */

static int
one_of(struct mg_yaml *y, const yaml_node_t *node, const struct mg_backend *b, const char *key,
       const char *v, const char *a, const char *c)
{
    if (v == NULL) {
        return 0;
    }
    if (strcmp(v, a) != 0 && strcmp(v, c) != 0) {
        mg_yaml_error(y, node, "backend \"%s\": \"%s\" must be %s or %s, not \"%s\"",
                      b->name ? b->name : "?", key, a, c, v);
        return 0;
    }
    return strcmp(v, c) == 0;
}

void
mg_schema_apis_check(struct mg_yaml *y, const yaml_node_t *node, struct mg_backend *b,
                     const struct mg_schema_apis *a, const char *max_default)
{
    if (one_of(y, node, b, "responses", a->responses, "native", "translate")) {
        b->api_hub |= MG_API_BIT_RESPONSES;
    }
    if (one_of(y, node, b, "messages", a->messages, "translate", "native")) {
        b->api_native |= MG_API_BIT_MESSAGES;
    }
    one_of(y, node, b, "max_tokens_param", a->max_tokens_param, "max_tokens",
           "max_completion_tokens");
    b->max_tokens_param = a->max_tokens_param != NULL ? a->max_tokens_param : max_default;
}

void
mg_schema_apis_deinit(struct mg_schema_apis *a)
{
    free(a->responses);
    free(a->messages);
    free(a->max_tokens_param);
}
