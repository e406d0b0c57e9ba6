/*
 * mg_front — the grammar and the rules of what a client sends, as pure functions over bytes: the
 * request head (request line and header fields, parsed in place), the chunked body decoder, and
 * the rule on paths that are forwarded to a backend. mg_conn feeds them what it reads; the fuzz
 * targets "head" and "chunked" feed them anything.
 *
 * The rules (SPEC "Front end"), each refused with 400 bad_request and the connection closed:
 * a request line that is not METHOD SP target SP HTTP/1.0|1.1; a target with bytes outside
 * visible ASCII; a header name that is not a token (whitespace before the colon included); a
 * value holding CR, LF or NUL; a folded line (obs-fold); Content-Length with anything but digits
 * or two different values; Content-Length with Transfer-Encoding; a Transfer-Encoding other than
 * chunked; an HTTP/1.1 request without Host, and any request with two. Lines end with CRLF.
 * More than MG_FRONT_FIELDS_MAX fields is 431, as is a head over MG_FRONT_HEAD_MAX (mg_conn).
 */
#ifndef MG_FRONT_H
#define MG_FRONT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mg_headers;
struct mg_req;

#define MG_FRONT_HEAD_MAX       (64 * 1024)   /* the whole header block, request line included */
#define MG_FRONT_FIELDS_MAX     256           /* header fields in one head */
#define MG_FRONT_CHUNK_LINE_MAX 4096          /* a chunk-size line with its extensions */
#define MG_FRONT_TRAILER_MAX    (64 * 1024)   /* the trailer section of a chunked body */

/* Why a head or a body is refused: the answer's status, OpenAI error code and message. */
struct mg_front_refusal {
    int         status;
    const char *code;
    const char *message;
};

/* What the head says about its body and its connection, beyond the request's own fields. */
struct mg_front_head {
    int64_t content_length;   /* -1 when none was sent */
    int     chunked;          /* Transfer-Encoding: chunked */
    int     expect_continue;  /* Expect: 100-continue */
};

/*
 * Parses a request head in place: head[0..len) runs from the request line to the blank line
 * that ends the block (its CRLFCRLF included). Names, values, the path and the query are
 * NUL-terminated inside head; req's method, method_name, minor, path, query, conn_close,
 * conn_keep, request id (when the client's is usable) and headers (fields appended to
 * req->headers, which grows) are set. 0, or -1 with why filled.
 */
int mg_front_parse_head(char *head, size_t len, struct mg_req *req, struct mg_front_head *info,
                        struct mg_front_refusal *why);

/*
 * 1 when a path may be forwarded to a backend: no %2F, %5C (any case) or %00, and no dot segment
 * in any spelling ("." ".." "%2e" ".%2E" ...), since a backend (or a proxy in front of it) may
 * decode them and leave the backend's base URL with the backend's key attached. Else 0.
 */
int mg_front_forward_path_ok(const char *path);

/* Receives decoded body bytes; non-zero stops the decoder (mg_front_dechunk then returns -1). */
typedef int (*mg_front_body_fn)(void *arg, const char *data, size_t len);

/* A chunked body being decoded (RFC 9112 7.1); zero-initialise one per body. */
struct mg_front_chunked {
    int      state;
    uint64_t left;                            /* data bytes left in the current chunk */
    size_t   line_len;
    size_t   trailer;                         /* bytes of trailer section seen */
    int      done;                            /* the last chunk and the trailers are read */
    char     line[MG_FRONT_CHUNK_LINE_MAX];
};

/*
 * Feeds in[0..len) to the decoder: body bytes go to out. Returns the bytes consumed (fewer than
 * len only once done: what follows belongs to the next request), or -1 when the framing is wrong
 * (why filled: 400 bad_request) or out refused (why->status 0).
 */
ssize_t mg_front_dechunk(struct mg_front_chunked *c, const char *in, size_t len,
                         mg_front_body_fn out, void *arg, struct mg_front_refusal *why);

/* Raises RLIMIT_NOFILE to its hard limit and logs the figure (once, at start). */
void mg_front_raise_nofile(void);

#endif
