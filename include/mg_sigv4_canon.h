/*
 * mg_sigv4_canon — the canonical request of SigV4, for mg_sigv4_sign (not for other callers: the
 * public face is mg_sigv4.h).
 */
#ifndef MG_SIGV4_CANON_H
#define MG_SIGV4_CANON_H

#include <stddef.h>

#include "mg_sigv4.h"

/* p[0..n) as lower-case hex into out (2n + 1 bytes, NUL-terminated). */
void mg_sigv4_hex(const unsigned char *p, size_t n, char *out);

/* MG_OK when the request and credentials can be signed, else MG_ERR with res->error set. */
int mg_sigv4_canon_check(const struct mg_sigv4_request *req, const struct mg_sigv4_creds *creds,
                         struct mg_sigv4_result *res);

/*
 * The hex SHA-256 of the canonical request into hex (res->amz_date and res->payload_hash already
 * set; token NULL when there is none), and the signed header names ("content-type;host;
 * x-amz-date") into names; the canonical request is copied to req->creq_out when there is one.
 * MG_OK, or an error with res->error set.
 */
int mg_sigv4_canon_hash(const struct mg_sigv4_request *req, const char *token,
                        struct mg_sigv4_result *res, char names[MG_SIGV4_AUTH_MAX],
                        char hex[65]);

#endif
