/*
 * mg_schema — the API a backend speaks, as a table of operations chosen by the backend's config.
 *
 * The request path never tests a schema's name: it calls through the table (the way twemproxy
 * picks a protocol's parser per pool). A schema builds each attempt's upstream request from the
 * client's original one (so a rule can fall back across schemas), classifies the answer's head,
 * sets up the relay stages that turn the answer into what the client gets (reading usage on the
 * way), and translates an error body that is passed through.
 */
#ifndef MG_SCHEMA_H
#define MG_SCHEMA_H

#include <stddef.h>

#include "mg_head.h"
#include "mg_util.h"

struct curl_slist;
struct evkeyvalq;
struct mg_backend;
struct mg_json_req;
struct mg_relay;
struct mg_rule_backend;

/* The client's request, as every schema reads it. Pointers stay valid for the request's life. */
struct mg_client_req {
    const char               *upath;        /* path below /v1, "/chat/completions" */
    const char               *query;        /* raw query string, or NULL */
    const char               *body;
    size_t                    body_len;
    const struct mg_json_req *jr;           /* what the admission scan found in body */
    struct evkeyvalq         *headers;      /* the client's request headers */
    const char               *request_id;
    int                       has_request_id;  /* the client sent a usable x-request-id */
    int                       has_ctype;       /* the client sent a Content-Type */
};

/* One attempt's upstream request, built by a schema; reset (not freed) between attempts. */
struct mg_upreq {
    struct mg_buf      url;
    struct curl_slist *headers;
    struct mg_buf      edited;        /* the body when the schema changed it */
    const char        *body;          /* what is sent: the client's bytes or edited.data */
    size_t             body_len;
    int                inject_usage;  /* usage was asked for on the client's behalf */
};

struct mg_schema {
    const char *name;
    /* Fills up for an attempt on backend b through rule entry e. MG_OK or MG_ERR. */
    int  (*build)(const struct mg_client_req *rq, const struct mg_backend *b,
                  const struct mg_rule_backend *e, struct mg_upreq *up);
    /* What the head of an answer means. */
    enum mg_head_class (*classify)(const struct mg_resp_head *h);
    /* Sets up the stages a committed answer's body goes through before the client. */
    void (*relay)(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
                  const struct mg_resp_head *h);
    /*
     * Rewrites a failed answer's body into out for the client, when the schema's error shape is
     * not OpenAI's. Returns 1 when it wrote out, 0 to pass the body through as it is.
     */
    int  (*error_body)(const struct mg_resp_head *h, const char *body, size_t len,
                       struct mg_buf *out);
};

/* The operations of schema id (enum mg_schema_id in mg_conf.h). */
const struct mg_schema *mg_schema_get(int id);

/* Sets up an empty upstream request. */
void mg_upreq_init(struct mg_upreq *up, size_t max_body);
/* Empties it for the next attempt, keeping its memory. */
void mg_upreq_reset(struct mg_upreq *up);
void mg_upreq_deinit(struct mg_upreq *up);

/* The openai schema's operations (the default). */
extern const struct mg_schema mg_schema_openai;

#endif
