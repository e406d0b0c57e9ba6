/*
 * mg_sigv4 — AWS Signature Version 4 for one HTTP request (the `bedrock` backend's signing).
 *
 * A pure function: the request as it will be sent, the credentials and the time go in; the headers
 * to add come out. No clock, no I/O. The signing key (four HMACs over date, region, service) is
 * kept in a small cache the caller owns, so a backend derives it once a day.
 *
 * What is signed: `host`, `x-amz-date`, every header the caller lists (Bedrock: `content-type`),
 * `x-amz-security-token` when the credentials carry a session token, and, only when asked,
 * `x-amz-content-sha256` (S3 wants it; Bedrock does not, so the gateway leaves it out). The body's
 * SHA-256 is always part of the canonical request, so the exact bytes sent are what is signed.
 *
 * The path is signed as AWS does for every service but S3: the path as sent (percent-encoded once)
 * is encoded once more, so `%3A` appears as `%253A` in the canonical request. The path is not
 * normalized: no `.` or `..` segments are resolved, so send paths that have none.
 */
#ifndef MG_SIGV4_H
#define MG_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_SIGV4_MAX_HEADERS  32    /* headers the caller may ask to sign */
#define MG_SIGV4_MAX_PARAMS   128   /* query parameters */
#define MG_SIGV4_QUERY_MAX    (64 * 1024)   /* canonical query string */
#define MG_SIGV4_NAME_MAX     63    /* region and service names */
#define MG_SIGV4_SECRET_MAX   128   /* secret access key (AWS's are 40 characters) */
#define MG_SIGV4_KEY_ID_MAX   128   /* access key id (AWS: 16 to 128) */
#define MG_SIGV4_AUTH_MAX     1024  /* the Authorization value */

/* One header: a name (any case) and its value, as sent. */
struct mg_sigv4_header {
    const char *name;
    const char *value;
};

/* Credentials. session_token is NULL or "" for long-term keys. */
struct mg_sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
};

/* The request to sign, exactly as it will be sent. */
struct mg_sigv4_request {
    const char *method;                         /* "POST" */
    const char *host;                           /* the Host header, as sent */
    const char *path;                           /* as sent, percent-encoded once; "" means "/" */
    const char *query;                          /* as sent, without '?'; NULL or "" when none */
    const struct mg_sigv4_header *headers;      /* other headers to sign (not host, x-amz-*, */
    size_t nheaders;                            /*   authorization); repeats are joined with ',' */
    const void *body;                           /* the exact bytes sent (NULL if body_len is 0) */
    size_t body_len;
    const char *region;                         /* "us-east-1" */
    const char *service;                        /* "bedrock" */
    int payload_header;                         /* 1: also send and sign x-amz-content-sha256 */
    struct mg_buf *creq_out;                    /* optional: receives the canonical request */
    struct mg_buf *sts_out;                     /* optional: receives the string to sign */
};

/*
 * The derived signing key for one (day, region, service, secret), owned by the caller: one per
 * backend, used from one thread. Embedded; set up with mg_sigv4_cache_init().
 */
struct mg_sigv4_cache {
    int           valid;
    char          date[9];                          /* YYYYMMDD */
    char          region[MG_SIGV4_NAME_MAX + 1];
    char          service[MG_SIGV4_NAME_MAX + 1];
    char          secret[MG_SIGV4_SECRET_MAX + 1];
    unsigned char key[32];
    uint64_t      derivations;                      /* how many times the key was derived */
};

/* What to add to the request. The header values point into this struct and into the creds. */
struct mg_sigv4_result {
    char amz_date[17];                          /* "20150830T123600Z" */
    char payload_hash[65];                      /* hex SHA-256 of the body */
    char signature[65];                         /* hex */
    char authorization[MG_SIGV4_AUTH_MAX];      /* "AWS4-HMAC-SHA256 Credential=..." */
    size_t nheaders;                            /* 2 to 4 */
    struct mg_sigv4_header headers[4];          /* x-amz-date, [x-amz-content-sha256], */
                                                /*   [x-amz-security-token], authorization */
    const char *error;                          /* why signing failed (static text), else NULL */
};

/* An empty cache. */
void mg_sigv4_cache_init(struct mg_sigv4_cache *c);
/* Wipes the key and the copy of the secret. The cache may be initialised again. */
void mg_sigv4_cache_deinit(struct mg_sigv4_cache *c);

/*
 * Signs req with creds at now (Unix seconds, UTC). cache may be NULL (the key is then derived
 * every time). Fills res. Returns MG_OK, MG_ETOOBIG (a debug buffer, the query or the
 * Authorization value would pass its cap) or MG_ERR (a bad input: res->error says which).
 */
int mg_sigv4_sign(const struct mg_sigv4_request *req, const struct mg_sigv4_creds *creds,
                  int64_t now, struct mg_sigv4_cache *cache, struct mg_sigv4_result *res);

/*
 * Appends s[0..n) percent-encoded as one path segment: every byte outside A-Z a-z 0-9 - _ . ~
 * as %XX (uppercase), '/' included. For a Bedrock model id in the path. MG_OK or MG_ETOOBIG.
 */
int mg_sigv4_encode_segment(struct mg_buf *out, const char *s, size_t n);

#endif
