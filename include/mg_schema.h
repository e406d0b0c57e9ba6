/*
 * mg_schema — the API a backend speaks, as a table of operations chosen by the backend's config.
 *
 * The request path never tests a schema's name: it calls through the table (the way twemproxy
 * picks a protocol's parser per pool). A schema builds each attempt's upstream request from the
 * client's original one (so a rule can fall back across schemas), classifies the answer's head,
 * sets up the relay stages that turn the answer into what the client receives (reading usage
 * on the way), and translates an error body that is passed through.
 */
#ifndef MG_SCHEMA_H
#define MG_SCHEMA_H

#include <stddef.h>

#include "mg_head.h"
#include "mg_util.h"

struct curl_slist;
struct json_t;
struct mg_backend;
struct mg_cred_source_ops;
struct mg_headers;
struct mg_json_req;
struct mg_relay;
struct mg_rule_backend;
struct mg_yaml;              /* the config engine (mg_yaml.h): only the schemas' conf parts */
struct mg_yaml_key;
struct yaml_node_s;

/* The client's request, as every schema reads it. Pointers stay valid for the request's life. */
struct mg_client_req {
    const char               *upath;        /* path below /v1, "/chat/completions" */
    const char               *query;        /* raw query string, or NULL */
    const char               *body;
    size_t                    body_len;
    const struct mg_json_req *jr;           /* what the admission scan found in body */
    const struct mg_headers  *headers;      /* the client's request headers */
    const char               *request_id;
    int                       has_request_id;  /* the client sent a usable x-request-id */
    int                       has_ctype;       /* the client sent a Content-Type */
    int                       own_trace;       /* tracing: the client's traceparent is not
                                                * forwarded (each attempt sends its own) */
    struct json_t            *chat_json;       /* body, already read (a jansson value), when the
                                                * gateway built it (the chat hub); else NULL */
};

/* One attempt's upstream request, built by a schema; reset (not freed) between attempts. */
struct mg_upreq {
    struct mg_buf      url;
    struct mg_buf      lines;         /* header lines, each ended by a NUL (mg_schema_add_*) */
    size_t             nlines;
    int                lines_cut;     /* a line did not fit in lines' cap: the attempt fails */
    struct curl_slist *nodes;         /* curl's list over lines, built by mg_schema_header_list */
    size_t             nodes_alloc;
    struct mg_buf      edited;        /* the body when the schema changed it */
    const char        *body;          /* what is sent: the client's bytes or edited.data */
    size_t             body_len;
    int                inject_usage;  /* usage was asked for on the client's behalf */
    const char        *method;        /* "GET" or "DELETE" without a body; NULL: POST */
    int                stream;        /* a translating schema asked its backend for a stream */
    char               why[256];      /* why build refused the request (EINVAL, ESKIP) */
    char               param[96];     /* the parameter at fault, or "" */
    const char        *code;          /* the error code of an EINVAL, or NULL (invalid_value) */
};

/* What build may return besides MG_OK and MG_ERR (the values of mg_chatreq's codes). */
#define MG_SCHEMA_EINVAL -31   /* the request is wrong for any backend: 400 invalid_request_error */
#define MG_SCHEMA_ESKIP  -32   /* this backend cannot take a parameter: the entry is left out */
#define MG_SCHEMA_ENOCRED -33  /* the backend has no usable cloud credentials now: the attempt
                                * fails (it counts for health); the last: credentials_unavailable */

struct mg_schema {
    const char *name;
    /* what a chat request becomes for its backend, for logs and metrics ("chat", "messages",
     * "converse") */
    const char *chat_api;
    /* build() of a chat request reads its chat_json when given one, never the body's text */
    int         reads_chat_json;
    /*
     * Fills up for an attempt on backend b through rule entry e. MG_OK; MG_ERR (cannot start);
     * MG_SCHEMA_EINVAL or MG_SCHEMA_ESKIP with up->why and up->param filled.
     */
    int  (*build)(const struct mg_client_req *rq, const struct mg_backend *b,
                  const struct mg_rule_backend *e, struct mg_upreq *up);
    /* What the head of an answer means. */
    enum mg_head_class (*classify)(const struct mg_resp_head *h);
    /* Sets up the stages a committed answer's body goes through before the client. */
    void (*relay)(struct mg_relay *r, const struct mg_client_req *rq, const struct mg_upreq *up,
                  const struct mg_resp_head *h);
    /*
     * Rewrites a failed answer's body into out for the client of request rq, when the schema's
     * error shape is not the one the client speaks. 1 when it wrote out, 0 to pass the body on.
     */
    int  (*error_body)(const struct mg_client_req *rq, const struct mg_resp_head *h,
                       const char *body, size_t len, struct mg_buf *out);
    /*
     * The active health check of backend b (SPEC "Active checks"): fills up (URL, header lines,
     * method GET) for a cheap read of its model list carrying its credentials and headers. MG_OK
     * or MG_ERR. NULL: the schema has no cheap probe (bedrock), its backends keep passive ones.
     */
    int  (*probe)(const struct mg_backend *b, struct mg_upreq *up);
    /*
     * Cloud credentials (mg_cred): the source backend b's credentials come from, when its config
     * does not hold them. Appends to key what identifies its credential config (a secret only as
     * a digest; the backend's name is added by the caller), sets *arg (freed by the ops' free)
     * and returns the source's ops; NULL: b needs no source. Called when a snapshot goes into
     * service (mg_runtime_bind), which sets b->cred. NULL op: the schema has none.
     */
    const struct mg_cred_source_ops *(*cred)(const struct mg_backend *b, struct mg_buf *key,
                                             void **arg);

    /*
     * Configuration: the backend keys only this schema has, as rows into its own per-backend
     * struct (b->schema_conf), which the schema alone reads. All may be NULL / 0 (no keys). At
     * most MG_SCHEMA_KEYS_MAX rows, each field a char * or an int64_t (the loader tells a key
     * given from one left out by its field's change).
     */
    const struct mg_yaml_key *keys;
    size_t nkeys;
    int    url_optional;            /* conf_check may make the url from the schema's keys */
    /* A per-backend struct with the schema's defaults. */
    void *(*conf_create)(void);
    /*
     * Phase three for backend b of this schema (node is the backend's, for messages): the keys
     * it needs, defaults, b->auth_header built once from b->api_key.
     */
    void  (*conf_check)(struct mg_yaml *y, const struct yaml_node_s *node, struct mg_backend *b,
                        void *conf);
    /* Frees what conf_create made. NULL is a no-op. */
    void  (*conf_free)(void *conf);
};

#define MG_SCHEMA_MAX      16   /* rows in mg_schema.c's table */
#define MG_SCHEMA_KEYS_MAX 32   /* rows in a schema's keys */

/* The operations of schema id (enum mg_schema_id in mg_conf_types.h). */
const struct mg_schema *mg_schema_get(int id);

/* How many schemas the table has (ids are 0 to count - 1). */
int mg_schema_count(void);

/* The id of the schema called name, or -1. */
int mg_schema_find(const char *name);

/* The schemas' names for a message into out: "openai, azure, anthropic or bedrock". */
void mg_schema_names(char *out, size_t n);

/* The max_tokens a translating schema sends when the client sets none. */
#define MG_SCHEMA_MAX_TOKENS 4096

/* Setter of a schema's max_tokens key (int64_t, 1 to 100000000). */
int mg_schema_set_max_tokens(struct mg_yaml *y, struct yaml_node_s *node, void *dst);

/* A new "name: value" line (a key's header line built once at load). */
char *mg_schema_conf_line(const char *name, const char *value);

/* Sets up an empty upstream request. */
void mg_upreq_init(struct mg_upreq *up, size_t max_body);
/* Empties it for the next attempt, keeping its memory. */
void mg_upreq_reset(struct mg_upreq *up);
void mg_upreq_deinit(struct mg_upreq *up);

/* ---- what schemas share ---- */

/* An attempt's header lines: the client's (64 KiB at most), the backend's and the signature's. */
#define MG_SCHEMA_LINES_MAX (256 * 1024)

#define MG_SCHEMA_OWN_CTYPE 1   /* mg_schema_headers: the client's Content-Type is replaced */

/*
 * Adds to up the upstream headers every schema starts from: the client's, minus hop-by-hop ones
 * (and those its Connection names), Host, Content-Length, Accept-Encoding, Expect, x-request-id
 * and the client's credentials (Authorization, api-key, x-api-key), minus the names in skip
 * (NULL-terminated, may be NULL; "x-amz-*" is a prefix) and those the backend sets itself; then
 * the backend's headers, its key line, exactly one x-request-id, a Content-Type
 * (application/json) when the client sent none or flags has MG_SCHEMA_OWN_CTYPE, and
 * Accept-Encoding: identity.
 */
void mg_schema_headers(struct mg_upreq *up, const struct mg_client_req *rq,
                       const struct mg_backend *b, const char *const *skip, int flags);

/*
 * An active check's request to b: GET url (base URL + path, e.g. "/models"), with the backend's
 * headers and key line and Accept-Encoding: identity (no client, so none of a client's).
 */
int mg_schema_probe_request(struct mg_upreq *up, const struct mg_backend *b, const char *path);

/*
 * Header lines are kept in one buffer per attempt, not one curl_slist_append (two allocations)
 * each: mg_schema_add_line adds "Name: value" as given, mg_schema_add_header adds name and value
 * ("Name;" for an empty value, curl's way to send one).
 */
void mg_schema_add_line(struct mg_upreq *up, const char *line);
void mg_schema_add_header(struct mg_upreq *up, const char *name, const char *value);
/* One line made of head and tail ("Authorization: Bearer " and a token), without a copy first. */
void mg_schema_add_parts(struct mg_upreq *up, const char *head, const char *tail);

/* The lines added so far as curl's list (owned by up, valid until its next reset), or NULL. */
struct curl_slist *mg_schema_header_list(struct mg_upreq *up);

/*
 * Appends rq's query string to url, each parameter byte for byte and in order, without the empty
 * ones and, when drop (lower case, e.g. "api-version") is not NULL, without every parameter whose
 * percent-decoded name equals drop ignoring case ("Api-Version", "api%2Dversion", a bare
 * "api-version" with no '=').
 */
int mg_schema_add_query(struct mg_buf *url, const char *query, const char *drop, int first);

/* Fills up->why (printf-style) and up->param, and returns rc. */
int mg_schema_refuse(struct mg_upreq *up, int rc, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* classify(): by status alone (mg_head_classify_status). */
enum mg_head_class mg_schema_classify_status(const struct mg_resp_head *h);
/* error_body(): the body passes as it is. */
int mg_schema_pass_error(const struct mg_client_req *rq, const struct mg_resp_head *h,
                         const char *body, size_t len, struct mg_buf *out);

/*
 * The openai schema's body (the client's bytes; a copy with the entry's model override and, for
 * a chat or completions stream, include_usage turned on) and relay stages; azure's too.
 */
int mg_schema_openai_body(const struct mg_client_req *rq, const struct mg_rule_backend *e,
                          struct mg_upreq *up);
void mg_schema_openai_relay(struct mg_relay *r, const struct mg_client_req *rq,
                            const struct mg_upreq *up, const struct mg_resp_head *h);

/*
 * The keys the OpenAI-shaped schemas (openai, azure) share: how they serve the client APIs that
 * chat completions can carry. Rows for a schema's keys table (MG_SCHEMA_API_KEYS), checked in its
 * conf_check (mg_schema_apis_check), freed with its conf.
 */
struct mg_schema_apis {
    char *responses;          /* native | translate */
    char *messages;           /* translate | native (openai only) */
    char *max_tokens_param;   /* max_tokens | max_completion_tokens */
};
#define MG_SCHEMA_API_KEYS(type, field)                                                      \
    {"responses", mg_yaml_set_nonempty_line, offsetof(type, field.responses)},               \
    {"max_tokens_param", mg_yaml_set_nonempty_line, offsetof(type, field.max_tokens_param)}
#define MG_SCHEMA_API_KEY_MESSAGES(type, field)                                              \
    {"messages", mg_yaml_set_nonempty_line, offsetof(type, field.messages)}
/*
 * Checks the values and sets what the proxy reads in b (api_native, api_hub,
 * max_tokens_param, which defaults to max_default).
 */
void mg_schema_apis_check(struct mg_yaml *y, const struct yaml_node_s *node, struct mg_backend *b,
                          const struct mg_schema_apis *a, const char *max_default);
void mg_schema_apis_deinit(struct mg_schema_apis *a);

/*
 * prefill: true|false, for the schemas that can continue a final assistant message (a row for
 * their keys table into an int64_t, 0 when not given); mg_schema_prefill_check sets b->prefill
 * to members (the chat body's extra members, "" for none) when it is true.
 */
#define MG_SCHEMA_PREFILL_KEY(type, field) {"prefill", mg_schema_set_flag, offsetof(type, field)}
int mg_schema_set_flag(struct mg_yaml *y, struct yaml_node_s *node, void *dst);
void mg_schema_prefill_check(struct mg_backend *b, int64_t flag, const char *members);

/* The schemas' operations. */
extern const struct mg_schema mg_schema_openai;
extern const struct mg_schema mg_schema_azure;
extern const struct mg_schema mg_schema_anthropic;
extern const struct mg_schema mg_schema_bedrock;

#endif
