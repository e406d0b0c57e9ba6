/*
 * mg_head — a backend's response head, parsed once as its lines arrive: the status, what the
 * proxy needs to know (content type, length, Retry-After), and the headers a client may get.
 */
#ifndef MG_HEAD_H
#define MG_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "mg_util.h"

#define MG_RESP_HEAD_MAX (64 * 1024)    /* response header bytes accepted from a backend */

struct mg_resp_head {
    long          status;
    int           sse;             /* Content-Type is text/event-stream */
    int           json;            /* Content-Type is JSON */
    int           chunked;         /* the backend sent Transfer-Encoding */
    int64_t       content_length;  /* -1 when absent */
    int64_t       retry_after_s;   /* Retry-After in seconds (a date made relative), or -1 */
    char          connection[256]; /* the names the backend's Connection lists (not relayed) */
    struct mg_buf relay;           /* headers the client may get: "name\0value\0" pairs */
};

/* What a complete head means for the attempt. */
enum mg_head_class {
    MG_HEAD_PENDING,    /* an informational (1xx) head: wait for the next */
    MG_HEAD_FINAL,      /* an answer to commit to the client */
    MG_HEAD_FAILOVER,   /* an answer to read aside and move on from (429, 5xx, 529) */
    MG_HEAD_INSPECT,    /* a 400: read aside, final unless it is a context-length error */
};

void mg_head_init(struct mg_resp_head *h);
void mg_head_deinit(struct mg_resp_head *h);
/* Empties h for a new head (the next attempt, or the head after a 1xx), keeping its memory. */
void mg_head_reset(struct mg_resp_head *h);

/*
 * Parses one header line (its CRLF may be included; the status line is not a header line) into
 * h. Hop-by-hop headers, x-request-id and x-modelgate-backend are not kept for the client.
 * MG_OK; MG_ETOOBIG once the kept headers pass MG_RESP_HEAD_MAX; MG_ERR for a line no valid
 * head holds (a name that is not a token, a control byte in a value, a second, different
 * Content-Length): the answer is refused like a broken one.
 */
int mg_head_line(struct mg_resp_head *h, const char *line, size_t len);

/* Iterates the kept headers (minus those Connection names): the pair after *pos (from 0). */
int mg_head_next(const struct mg_resp_head *h, size_t *pos, const char **name,
                 const char **value);

/* 1 for a hop-by-hop header name: never forwarded, in either direction. */
int mg_head_hop_by_hop(const char *name);

/* How statuses read: 1xx pending, 429/500/502/503/504/529 fail over, 400 inspected. */
enum mg_head_class mg_head_classify_status(long status);

#endif
