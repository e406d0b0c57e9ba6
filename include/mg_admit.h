/*
 * mg_admit — the one admission step of a /v1/ request: who is calling and, for requests that go
 * to a backend, what the body asks for and which rule serves it. The answer is either a refusal
 * (status, code, message, extra headers) that the dispatcher sends as it is, or an admitted
 * request. Client keys and rate limits are checks of this step.
 */
#ifndef MG_ADMIT_H
#define MG_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "mg_json.h"
#include "mg_limit.h"

struct mg_api;
struct mg_conf;
struct mg_key;
struct mg_refusal;
struct mg_req;

#define MG_MODEL_MAX 512

/* A request the gateway takes. Its pointers live as long as the request (struct mg_req). */
struct mg_admitted {
    const char        *path;         /* the client's path, "/v1/chat/completions" */
    const char        *upath;        /* the same below /v1, "/chat/completions" */
    const char        *query;        /* raw query string, or NULL */
    const struct mg_api *api;        /* the client's API, chosen on the head (req->api) */
    const struct mg_key *key;        /* the caller's key (in the snapshot); NULL without auth */
    /* set by mg_admit_route() */
    int                rule;         /* index into conf->rules */
    const char        *body;
    size_t             body_len;
    struct mg_json_req jr;           /* jr.model points at model */
    char               model[MG_MODEL_MAX];   /* also set when the model is refused ("" before) */
    int64_t            reserved;     /* tokens reserved from the key's bucket; the proxy settles */
    int64_t            budget_reserved; /* micro-dollars reserved from the key's budget; likewise */
    int                shared;       /* reserved in Redis (shared:), settled there */
    struct mg_limit_info shared_info; /* then: the buckets as Redis left them (the headers) */
};

/*
 * The check every /v1/ request passes on its head, /v1/models included, before any body byte is
 * read: with `auth`, a valid client key (req->key set; else 401 invalid_api_key, whose message
 * never quotes what was presented). Without auth req->key is NULL. 0, or -1 with ref filled.
 */
int mg_admit_key(const struct mg_conf *conf, struct mg_req *req, struct mg_refusal *ref);

/*
 * The body of a request whose key passed: valid JSON, an object whose top-level names are each
 * given once and hold no other spelling of "model" or "stream" (else 400 invalid_json), a
 * boolean "stream" and max_tokens-like limits in range (else 400 invalid_value naming the
 * parameter), a string "model" that the key's allow-list holds (else 404 model_not_found, as for
 * a model no rule serves) and a rule serves; then the key's rate limits take one request and
 * reserve its token estimate (else 429 rate_limit_exceeded with Retry-After and x-ratelimit-*).
 * 0 with out complete (out->reserved must be settled when the request ends), or -1 with ref
 * filled and nothing reserved.
 */
int mg_admit_route(const struct mg_conf *conf, const struct mg_req *req, struct mg_admitted *out,
                   struct mg_refusal *ref);

/*
 * Adds a limited key's x-ratelimit-* trios, as its buckets stand now, to req's extra headers
 * (a routed answer; its backend's own x-ratelimit-* must have been left out). NULL or an
 * unlimited key: nothing.
 */
void mg_admit_key_headers(struct mg_req *req, const struct mg_key *key);

/*
 * mg_admit_route() without the key's rate limits (taken afterwards, locally with
 * mg_admit_take_limit() or in Redis): 0 or -1 with the refusal.
 */
int mg_admit_route_only(const struct mg_conf *conf, const struct mg_req *req,
                        struct mg_admitted *out, struct mg_refusal *ref);

/*
 * A key with a budget: the routed request a reserves its estimated cost (its token estimate at
 * the prices of the rule's dearest entry, capped at the budget) in a->budget_reserved, or ref is
 * the 429 insufficient_quota naming the window's end. Keys without a budget: 0 at once. 0 / -1.
 */
int mg_admit_take_budget(const struct mg_conf *conf, struct mg_admitted *a,
                         struct mg_refusal *ref);

/* Gives back what mg_admit_take_budget() reserved (a request refused after it). */
void mg_admit_give_back_budget(struct mg_admitted *a);

/*
 * The value of x-modelgate-budget-remaining-usd for key now (its budget not yet spent, exact to
 * the micro-dollar) into out; 0 for a key without a budget (no header), else 1.
 */
int mg_admit_budget_remaining(const struct mg_key *key, char *out, size_t len);

/* The key's local buckets take the routed request a (a->reserved), or ref is the 429. 0 / -1. */
int mg_admit_take_limit(struct mg_admitted *a, struct mg_refusal *ref);

/* The request's token estimate for its key's reservation (0 for a key without a token limit). */
int64_t mg_admit_estimate(const struct mg_admitted *a);

/* ref: the 429 of a request a's key's buckets refused, with info's headers. */
void mg_admit_refuse_limit(const struct mg_admitted *a, const struct mg_limit_info *info,
                           struct mg_refusal *ref);

#endif
