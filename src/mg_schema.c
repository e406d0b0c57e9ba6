/*
 * mg_schema — the table of schemas, and what every schema shares: the upstream headers, the
 * query string, refusals, and the upstream request buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mg_conf.h"
#include "mg_hdr.h"
#include "mg_schema.h"

static const struct mg_schema *const schemas[] = {
    [MG_SCHEMA_OPENAI] = &mg_schema_openai,
    [MG_SCHEMA_AZURE] = &mg_schema_azure,
    [MG_SCHEMA_ANTHROPIC] = &mg_schema_anthropic,
    [MG_SCHEMA_BEDROCK] = &mg_schema_bedrock,
};

const struct mg_schema *
mg_schema_get(int id)
{
    if (id < 0 || (size_t)id >= MG_ARRAY_LEN(schemas) || schemas[id] == NULL) {
        return &mg_schema_openai;
    }
    return schemas[id];
}

void
mg_upreq_init(struct mg_upreq *up, size_t max_body)
{
    memset(up, 0, sizeof(*up));
    mg_buf_init(&up->url, 64 * 1024);
    mg_buf_init(&up->edited, max_body);
}

void
mg_upreq_reset(struct mg_upreq *up)
{
    mg_buf_reset(&up->url);
    mg_buf_reset(&up->edited);
    curl_slist_free_all(up->headers);
    up->headers = NULL;
    up->body = NULL;
    up->body_len = 0;
    up->inject_usage = 0;
    up->stream = 0;
    up->why[0] = '\0';
    up->param[0] = '\0';
}

void
mg_upreq_deinit(struct mg_upreq *up)
{
    curl_slist_free_all(up->headers);
    up->headers = NULL;
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

/* Appends "name: value" (or "name;" for an empty value, curl's way to send one) to l. */
static struct curl_slist *
add_header(struct curl_slist *l, struct mg_buf *line, const char *name, const char *value)
{
    struct curl_slist *t;

    mg_buf_reset(line);
    mg_buf_adds(line, name);
    if (value[0] != '\0') {
        mg_buf_add(line, ": ", 2);
        mg_buf_adds(line, value);
    } else {
        mg_buf_add(line, ";", 1);
    }
    t = curl_slist_append(l, line->data);
    return t != NULL ? t : l;
}

struct curl_slist *
mg_schema_add_line(struct curl_slist *l, const char *line)
{
    struct curl_slist *t = curl_slist_append(l, line);

    return t != NULL ? t : l;
}

struct curl_slist *
mg_schema_headers(const struct mg_client_req *rq, const struct mg_backend *b,
                  const char *const *skip, int flags)
{
    const char *connection = evhttp_find_header(rq->headers, "connection");
    struct curl_slist *l = NULL;
    struct evkeyval *kv;
    struct mg_buf line;
    size_t i;

    mg_buf_init(&line, 128 * 1024);
    TAILQ_FOREACH(kv, rq->headers, next) {
        if (skip_request_header(kv->key, connection, skip) ||
            ((flags & MG_SCHEMA_OWN_CTYPE) && mg_hdr_eq(kv->key, "content-type"))) {
            continue;
        }
        for (i = 0; i < b->nheaders; i++) {
            if (mg_hdr_eq(b->headers[i].name, kv->key)) {
                break;
            }
        }
        if (i < b->nheaders) {
            continue;   /* the backend's own value wins */
        }
        l = add_header(l, &line, kv->key, kv->value);
    }
    for (i = 0; i < b->nheaders; i++) {
        l = add_header(l, &line, b->headers[i].name, b->headers[i].value);
    }
    if (b->auth_header != NULL) {
        l = mg_schema_add_line(l, b->auth_header);
    }
    l = add_header(l, &line, "x-request-id", rq->request_id);   /* exactly one */
    if (!rq->has_ctype || (flags & MG_SCHEMA_OWN_CTYPE)) {
        l = mg_schema_add_line(l, "Content-Type: application/json");
    }
    /* usage is read and answers are edited or translated: they must come uncompressed */
    l = mg_schema_add_line(l, "Accept-Encoding: identity");

    mg_buf_deinit(&line);
    return l;
}

/* ---- URLs and refusals ------------------------------------------------------------------- */

int
mg_schema_add_query(struct mg_buf *url, const char *query, const char *drop, int first)
{
    const char *p = query, *amp;
    size_t dn = drop != NULL ? strlen(drop) : 0;
    int rc = MG_OK;

    while (p != NULL && *p != '\0' && rc == MG_OK) {
        size_t n;
        amp = strchr(p, '&');
        n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        if (n > 0 && !(dn > 0 && n >= dn && strncmp(p, drop, dn) == 0 &&
                       (n == dn || p[dn] == '='))) {
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

int
mg_schema_messages_path(const char *upath)
{
    return strncmp(upath, "/messages", 9) == 0 && (upath[9] == '\0' || upath[9] == '/');
}

int
mg_schema_serves_all(const char *upath)
{
    return 1;
}

int
mg_schema_serves_openai_paths(const char *upath)
{
    return !mg_schema_messages_path(upath);
}
