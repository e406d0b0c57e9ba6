/*
 * mg_hdr — strict checks of the bytes of an HTTP/1.x message, at both edges of the gateway.
 *
 * Lenient parsers keep "Authorization : x" as a header named "Authorization ", take
 * "Content-Length: +14", chunk sizes like "0x1e", control bytes in the target; and the backend's
 * header lines reach the client. These pure functions say yes or no to each piece, as SPEC
 * "Front end" asks, for the request parser (mg_front) and the response head (mg_head). They run
 * on every header of every request: no allocation, one table lookup per byte. Every function
 * takes a pointer and a length (no NUL needed, embedded NULs are seen).
 *
 * Choices where the RFCs leave room (see also the comments below):
 * - Header values: only CR, LF and NUL are refused, as SPEC says and as nginx does
 *   (ngx_http_parse_header_line refuses NUL; CR and LF end its line). RFC 9110 5.5 lets a
 *   recipient keep other CTLs; HTAB and obs-text (0x80-0xff) are legal. Values are escaped with
 *   mg_hdr_escape() before they reach a log line, so ESC sequences never reach a terminal raw.
 * - Request ids: visible ASCII (0x21-0x7e), no space, 1..128 bytes: a space would be trimmed
 *   or split by whoever reads the id next (header OWS, space-separated log formats).
 */
#ifndef MG_HDR_H
#define MG_HDR_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_HDR_REQUEST_ID_MAX 128   /* longest client x-request-id kept (SPEC "Proxying") */
#define MG_HDR_CHUNK_DIGITS_MAX 16  /* hex digits of a chunk size, leading zeros included */

/*
 * 1 when name[0..len) is an RFC 9110 token (1*tchar: ALPHA DIGIT and !#$%&'*+-.^_`|~), else 0.
 * So "Authorization " (a space before the colon) and "Transfer-Encoding\t" are 0.
 */
int mg_hdr_name_ok(const char *name, size_t len);

/* 1 when value[0..len) holds no CR, LF or NUL (an empty value is fine), else 0. */
int mg_hdr_value_ok(const char *value, size_t len);

/*
 * Reads a Content-Length value: 1*DIGIT, nothing else (no sign, no space, no comma list), at most
 * INT64_MAX. MG_OK with *out set, or MG_ERR (out untouched).
 */
int mg_hdr_content_length(const char *value, size_t len, uint64_t *out);

/*
 * Several Content-Length headers must all be valid and equal. Zero-initialise one per message
 * (struct mg_hdr_cl cl = {0};) and add each value as the header loop meets it.
 */
struct mg_hdr_cl {
    uint64_t value;   /* the length, once seen is 1 */
    int      seen;    /* 1 after the first valid value */
};

/* Adds one Content-Length value: MG_OK, or MG_ERR when it is invalid or not equal to the first. */
int mg_hdr_cl_add(struct mg_hdr_cl *cl, const char *value, size_t len);

/*
 * 1 when a Transfer-Encoding value is exactly "chunked" (case-insensitive, optional spaces and
 * tabs around it), the only coding the gateway takes; "gzip, chunked", "chunked, chunked" and
 * an empty value are 0.
 */
int mg_hdr_transfer_encoding_ok(const char *value, size_t len);

/*
 * Checks a chunk-size line, given without its CRLF: 1*HEXDIG (at most MG_HDR_CHUNK_DIGITS_MAX,
 * value at most INT64_MAX), then optionally extensions: optional spaces/tabs, ';', and visible
 * bytes, spaces, tabs or obs-text up to the end. "0x1e", "+1e", " 1e", "1e " and "" are refused.
 * MG_OK with *size set (size may be NULL), or MG_ERR.
 */
int mg_hdr_chunk_size(const char *line, size_t len, uint64_t *size);

/* 1 when mg_hdr_chunk_size() accepts the line, else 0. */
int mg_hdr_chunk_size_ok(const char *line, size_t len);

/* 1 when a request target is 1 or more bytes of visible ASCII (0x21-0x7e), else 0. */
int mg_hdr_target_ok(const char *target, size_t len);

/*
 * 1 when a client's x-request-id may be kept: 1..MG_HDR_REQUEST_ID_MAX bytes of visible ASCII
 * (0x21-0x7e); else 0, and the gateway makes a new id.
 */
int mg_hdr_request_id_ok(const char *id, size_t len);

/* Called with each name a Connection value lists; return non-zero to stop the walk. */
typedef int (*mg_hdr_name_fn)(void *arg, const char *name, size_t len);

/*
 * Walks the comma-separated elements of a Connection header value, each trimmed of spaces and
 * tabs, case kept, empty elements skipped (RFC 9110 5.6.1), so the caller can drop every header
 * named there, in both directions. Returns the first non-zero value fn returned, else 0.
 */
int mg_hdr_connection_names(const char *value, size_t len, mg_hdr_name_fn fn, void *arg);

/*
 * 1 when the Connection value conn[0..conn_len) names the header name[0..name_len)
 * (case-insensitive), else 0. E.g. ("keep-alive, X-Secret", "x-secret") is 1.
 */
int mg_hdr_in_connection(const char *conn, size_t conn_len, const char *name, size_t name_len);

/*
 * Appends in[0..len) to out in a form safe for a log line: bytes 0x20-0x7e are kept except '"'
 * and '\\'; those two and every other byte (CTLs, ESC, DEL, 0x80-0xff) become "\xHH" (upper-case
 * hex), as nginx's default access_log escaping does. MG_OK, or MG_ETOOBIG when out's cap is
 * reached: out then ends with the escaped prefix that fit (never half an escape).
 */
int mg_hdr_escape(const char *in, size_t len, struct mg_buf *out);

/*
 * 1 when two NUL-terminated header names are equal, ASCII case-insensitive (header names are
 * tokens: no locale applies), else 0. Inline because it runs for every header against every name
 * the gateway looks for (about a hundred times a request with an SDK's headers): most calls end
 * at the first byte, where glibc's strcasecmp costs a PLT jump and its locale table.
 */
static inline unsigned char
mg_hdr_lower(char c)
{
    unsigned char x = (unsigned char)c;

    return (unsigned char)(x >= 'A' && x <= 'Z' ? x + 32 : x);   /* letters only, no locale */
}

static inline int
mg_hdr_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = mg_hdr_lower(*a);
        if (x != mg_hdr_lower(*b)) {
            return 0;
        }
        if (x == '\0') {
            return 1;
        }
    }
}

#endif
