/*
 * mg_req — the gateway's own request: what the front end (mg_conn) read off the client's
 * connection, in the form every later module reads it (dispatch, admission, schemas, proxy,
 * replies). No libevent HTTP type is seen past the front end.
 *
 * A request lives inside its connection: its strings point into the connection's copy of the
 * head (names and values NUL-terminated there) and its body into the connection's body buffer.
 * Everything stays valid until the request's answer has ended, or its client has gone (the
 * handler is told: see mg_conn_watch).
 */
#ifndef MG_REQ_H
#define MG_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

struct mg_api;
struct mg_conn;
struct mg_key;

/* Methods, as bits so that a path's allowed set is one mask. */
enum mg_method {
    MG_METHOD_GET = 1,
    MG_METHOD_HEAD = 2,
    MG_METHOD_POST = 4,
    MG_METHOD_PUT = 8,
    MG_METHOD_DELETE = 16,
    MG_METHOD_OPTIONS = 32,
    MG_METHOD_PATCH = 64,
    MG_METHOD_OTHER = 128
};

/* One header field as received (name case kept), both parts NUL-terminated. */
struct mg_field {
    const char *name;
    const char *value;     /* leading and trailing spaces and tabs removed */
    size_t      name_len;
    size_t      value_len;
};

/* A request's header fields in the order received. */
struct mg_headers {
    struct mg_field  *v;
    size_t            n;
    size_t            alloc;
};

/* Appends a field; name and value are kept as pointers (they must outlive h). */
void mg_headers_add(struct mg_headers *h, const char *name, const char *value);

/* The same with the lengths known (both strings NUL-terminated at them): the head parser's. */
void mg_headers_push(struct mg_headers *h, const char *name, size_t name_len, const char *value,
                     size_t value_len);

/* Frees the list's array; h is then empty and reusable. */
void mg_headers_clear(struct mg_headers *h);

/* The value of the first field named name (ASCII case-insensitive), or NULL. */
const char *mg_headers_get(const struct mg_headers *h, const char *name);

/* The same, for the lookup callbacks of mg_router and mg_auth (arg: a struct mg_headers). */
const char *mg_headers_lookup(void *arg, const char *name);

#define MG_REQ_ORIGIN_MAX 255   /* an Origin the gateway echoes (scheme, host, port) */
#define MG_REQ_ID_MAX 128

struct mg_req {
    struct mg_conn      *conn;          /* its connection; NULL once the client has gone */
    int                  method;        /* enum mg_method */
    const char          *method_name;   /* as sent: "GET" */
    int                  minor;         /* HTTP/1.minor */
    const char          *target;        /* the request target as sent */
    const char          *path;          /* the target up to '?', not decoded */
    const char          *query;         /* after '?', or NULL */
    struct mg_headers    headers;
    const char          *body;          /* the whole body, de-chunked ("" when none) */
    size_t               body_len;
    int                  conn_close;    /* the client's Connection says close */
    int                  conn_keep;     /* ... keep-alive (an HTTP/1.0 client asks for it) */
    int64_t              t0_us;         /* the head was complete (mg_now_us) */
    const char          *peer;          /* "addr:port" of the client */
    char                 request_id[MG_REQ_ID_MAX + 1];   /* the client's if usable, else new */
    int                  has_request_id;   /* the client sent a usable x-request-id */
    /* set by the dispatcher on the head */
    int                  route;         /* which handler: the dispatcher's own numbering */
    const struct mg_api *api;           /* the client's API (mg_api_route), NULL before */
    const struct mg_key *key;           /* the caller's valid key (with auth), else NULL */
    char                 cors_origin[MG_REQ_ORIGIN_MAX + 1];   /* the Access-Control-Allow-
                                           Origin every answer carries (mg_cors), or "" */
    /* for an answer the gateway makes itself */
    struct mg_buf        out;           /* extra header lines, "Name: value\r\n" each */
    int64_t              overhead_us;   /* x-modelgate-overhead-us: the value, -1: now - t0,
                                           -2: none (overhead_header is off) */
};

/* Adds "name: value" to the extra headers of an answer the gateway makes itself. */
void mg_req_add_header(struct mg_req *req, const char *name, const char *value);

/* The method's name for logs ("GET"; what was sent for an unknown one). */
const char *mg_req_method(const struct mg_req *req);

#endif
