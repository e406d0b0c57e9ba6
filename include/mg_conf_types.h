/*
 * mg_conf_types — what a config snapshot holds, types only: the modules that read a snapshot
 * (and the catalog, which is built into one) need these, not the loader.
 */
#ifndef MG_CONF_TYPES_H
#define MG_CONF_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct mg_cred_source;
struct mg_health;
struct mg_key;
struct mg_model_entry;
struct mg_tls;

/* A backend's health settings (the config's `health:` with the backend's overrides applied). */
struct mg_health_conf {
    int     failures;           /* failures in a row that start a cooldown; 0 = never count */
    int64_t cooldown_ms;        /* first cooldown of a streak */
    int64_t max_cooldown_ms;    /* cap for doubled and Retry-After cooldowns */
    int64_t check_interval_ms;  /* > 0: a cooling backend is probed that often (mg_check) */
};

/* cors: the browsers' origins the gateway answers (mg_cors). */
struct mg_cors_conf {
    int      on;          /* the file has the block */
    int      any;         /* origins: ["*"] */
    char   **origins;     /* exact origins ("https://app.example.com") */
    size_t   norigins;
    int64_t  max_age_ms;  /* Access-Control-Max-Age of a preflight */
};

/* tracing: OpenTelemetry spans posted to an OTLP/HTTP JSON collector (mg_trace_conf). */
struct mg_trace_conf {
    int               on;            /* the file has the block */
    char             *otlp;          /* the collector's traces URL */
    struct mg_header *headers;       /* sent with every export (mg_conf_set_headers' pair) */
    size_t            nheaders;
    uint32_t          sample_ppm;    /* share traced without a client traceparent, per million */
    char             *service_name;  /* service.name of the resource ("modelgate") */
};

/* shared: the Redis that several instances share state through (mg_shared_conf); off: absent. */
struct mg_shared_conf {
    int      on;                /* the file has the block */
    char    *redis;             /* the URL as written (compared on reload) */
    char     host[256];         /* parsed (struct mg_redis_url's fields, see mg_redis.h) */
    char     path[108];
    char     user[128];
    char     pass[256];
    int      scheme;
    int      port;
    int      db;
    int64_t  timeout_ms;        /* a limit decision; past it the instance decides alone */
    int64_t  store_timeout_ms;  /* a response-store read or write */
    int      closed;            /* on_error: closed (503 shared_state_unavailable); else open */
    char    *prefix;            /* of every key, "mg:" by default */
};

/* tls: the client listener's certificate (mg_tls_conf); absent: plain HTTP. */
struct mg_tls_conf {
    char          *cert;         /* PEM chain, leaf first (absolute) */
    char          *key;          /* PEM private key (absolute) */
    int            min_version;  /* MG_TLS_1_2 or MG_TLS_1_3 (mg_tls.h) */
    struct mg_tls *ctx;          /* made at load; NULL without the block */
};

/* responses_store: the conversation store of translated Responses (per process). */
struct mg_resp_store_conf {
    uint64_t size;     /* bytes; 0 = off */
    int64_t  ttl_ms;   /* from an entry's creation */
};

/*
 * prices: one model's prices (mg_price), micro-dollars per 1M tokens (cached_input and
 * cache_write default to input).
 */
struct mg_price {
    char    *model;        /* an exact name, or a prefix ending in '*' */
    int64_t  input;
    int64_t  cached_input;
    int64_t  cache_write;
    int64_t  output;
};

/* A `prices:` mapping as read, in file order. */
struct mg_price_table {
    struct mg_price *v;
    size_t           n;
};

struct mg_timeouts {
    int64_t connect_ms;     /* TCP+TLS connect */
    int64_t first_byte_ms;  /* request sent -> response headers */
    int64_t first_token_ms; /* streams: request sent -> commit (0 in the file: the idle value) */
    int64_t idle_ms;        /* longest silence between two body bytes */
    int64_t total_ms;       /* whole attempt */
};

struct mg_header {
    char *name;
    char *value;
};

/* The API a backend speaks: its row in mg_schema.c's table (mg_schema_get()). */
enum mg_schema_id {
    MG_SCHEMA_OPENAI = 0,
    MG_SCHEMA_AZURE,        /* Azure OpenAI: deployment URLs, api-version, api-key */
    MG_SCHEMA_ANTHROPIC,    /* Anthropic Messages: chat translated, /v1/messages passed through */
    MG_SCHEMA_BEDROCK,      /* Amazon Bedrock Converse, SigV4-signed */
    MG_SCHEMA_VERTEX,       /* Google Vertex AI, Gemini's generateContent, a Google token */
    MG_SCHEMA_VERTEX_ANTHROPIC,  /* Claude on Vertex AI (rawPredict), a Google token */
};

struct mg_backend {
    char              *name;
    int                schema;     /* enum mg_schema_id, chosen at load */
    char              *url;        /* base URL, no trailing '/' */
    char              *api_key;    /* NULL when the backend needs none */
    char              *auth_header;/* the key's header line for the schema, built once, or NULL:
                                      "Authorization: Bearer K", "api-key: K", "x-api-key: K" */
    char              *proxy;      /* as written: a URL or "none"; then, after load, the proxy
                                    * to use ("" for none), the environment's when not written */
    void              *schema_conf;/* the keys only its schema has, in the schema's own struct
                                    * (opaque here; the schema's conf_free frees it) */
    struct mg_header  *headers;
    size_t             nheaders;
    struct mg_timeouts timeouts;   /* the global defaults with this backend's overrides */
    struct mg_health_conf health;  /* likewise, key by key */
    struct mg_health  *state;      /* passive health, by name, outside the snapshot */
    struct mg_cred_source *cred;   /* cloud credentials (mg_cred), by name and credential
                                    * config, in the runtime's registry (which outlives every
                                    * snapshot); NULL: none (set at bind) */
    /* client APIs (MG_API_BIT_*) served otherwise than the schema does, set by the schema's
     * keys (responses: translate, messages: native) */
    unsigned           api_native; /* passed as sent though the schema would translate */
    unsigned           api_hub;    /* translated through chat though the schema speaks it */
    const char        *max_tokens_param;   /* the limit's name in chat bodies the gateway
                                            * builds (a schema's key, or "max_tokens") */
    struct mg_price_table prices; /* its own prices:, which win over the top level's */
    const char        *prefill;   /* prefill: true (a schema's key): the members a chat body
                                   * that continues a final assistant message receives ("" when the
                                   * schema continues one natively); NULL: no prefill */
};

struct mg_rule_backend {
    size_t   backend;    /* index into mg_conf.backends */
    unsigned weight;     /* 0 disables the entry */
    int      priority;   /* lower tiers are tried first */
    char    *model;      /* model name sent upstream, NULL to keep the client's */
};

struct mg_rule {
    char                  **models;     /* exact names, or prefixes ending in '*' */
    size_t                  nmodels;
    char                   *owned_by;
    int64_t                 created;    /* Unix seconds, -1 when the file does not say */
    struct mg_header       *headers;    /* all must match (name case-insensitive, value exact) */
    size_t                  nheaders;
    int                     list;       /* 0 hides the rule's models from /v1/models */
    int                     retries;    /* moves to other entries after the first (resolved) */
    int                     retries_set;/* the file says retries: else ranked entries - 1 */
    int                     retry_same; /* one same-backend retry on 5xx/reset/short Retry-After */
    int                     hosted_refuse; /* hosted_tools: refuse (else hosted tools drop) */
    int                     resume;     /* a stream cut after commit continues on a prefill entry */
    int64_t                 retry_after_max_ms;   /* longest Retry-After waited out */
    struct mg_rule_backend *backends;
    size_t                  nbackends;
    int                     line;       /* where the rule starts in the file */
};

struct mg_conf {
    atomic_int         refs;            /* see mg_conf_ref() */
    void             (*destroy)(struct mg_conf *conf);   /* the loader's, at the last unref */
    char              *path;
    char              *listen;          /* as written */
    char               listen_host[256];
    int                listen_port;
    char              *admin_listen;    /* NULL when /healthz and /metrics stay on listen */
    char               admin_host[256];
    int                admin_port;
    int                workers;         /* 0 = one per CPU core */
    uint64_t           max_body_size;
    int64_t            shutdown_timeout_ms;
    int64_t            header_timeout_ms;     /* the whole header block of a request */
    int64_t            keepalive_timeout_ms;  /* an idle client connection is closed */
    int64_t            body_timeout_ms;       /* the whole body of a request, after its head */
    int                overhead_header;       /* add x-modelgate-overhead-us to every answer */
    struct mg_timeouts timeouts;
    struct mg_health_conf health;       /* defaults for every backend */
    struct mg_resp_store_conf responses_store;
    struct mg_cors_conf cors;
    struct mg_tls_conf tls;
    struct mg_trace_conf tracing;
    struct mg_shared_conf shared;
    struct mg_price_table prices;       /* the top level's prices: (mg_price) */
    char              *state_file;      /* spend kept across restarts (no shared:), or NULL */
    int                admin_key;       /* admin_key or admin_key_sha256 is set */
    unsigned char      admin_digest[32];/* its SHA-256 */
    char              *access_log;      /* "-" stdout, a path, or NULL for off */
    int                log_level;       /* enum mg_log_level */
    struct mg_backend *backends;
    size_t             nbackends;
    struct mg_rule    *rules;
    size_t             nrules;
    /* /v1/models: exact names of listed rules in file order, each once (from its first rule),
     * and their JSON, built at load */
    struct mg_model_entry *catalog;
    size_t             ncatalog;
    char              *catalog_json;
    size_t             catalog_json_len;
    /* auth: set when the file has the block; then every /v1/ request needs one of keys */
    int                auth;
    struct mg_key     *keys;
    size_t             nkeys;
    char              *warnings;        /* "file:line:col: warning: ...\n" lines, or NULL */
};

/*
 * A snapshot is shared by every request in flight on it. Takes one more reference (thread-safe).
 * Returns conf. Inline: the hot path takes and drops one per request, and no module that only
 * reads a snapshot should depend on the loader for it.
 */
static inline struct mg_conf *
mg_conf_ref(struct mg_conf *conf)
{
    atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    return conf;
}

/* Drops one reference; the last one frees the snapshot (conf->destroy). NULL is a no-op. */
static inline void
mg_conf_unref(struct mg_conf *conf)
{
    if (conf != NULL && atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel) == 1) {
        conf->destroy(conf);
    }
}

#endif
