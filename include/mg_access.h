/*
 * mg_access — the access log: one JSON object per line per request, to stdout, a file, or off.
 *
 * Workers append lines to their own buffer and write it out in whole lines (at most 4 KiB per
 * write, so lines from different workers never interleave, even on a pipe) when it fills or at
 * the latest 100 ms later. The file descriptor never changes while running: reopening (SIGUSR1,
 * or a reload naming another path) points it at the new file with dup2(), so a worker can never
 * write into a descriptor that was closed and reused.
 */
#ifndef MG_ACCESS_H
#define MG_ACCESS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mg_access_out;

/* Sets where lines go: "-" stdout, a path, or NULL (off). MG_OK, or MG_ERR with err filled. */
int mg_access_open(const char *path, char *err, size_t errlen);
/* Reopens the current file (log rotation). MG_OK, or MG_ERR with err filled. */
int mg_access_reopen(char *err, size_t errlen);
/* 1 when the access log is on. */
int mg_access_enabled(void);
/* Closes the log at exit. */
void mg_access_close(void);

/* A worker's line buffer, flushed from base. */
struct mg_access_out *mg_access_out_create(struct event_base *base);
/* Writes out what is buffered and frees. NULL is a no-op. */
void mg_access_out_destroy(struct mg_access_out *o);

/* What one line says. Strings may be NULL; numbers < 0 are left out. */
struct mg_access_rec {
    const char        *request_id;
    const char        *client;       /* "addr:port" */
    const char        *method;
    const char        *path;
    const char        *model;
    const char        *key;          /* name of the client's key (never the key), or NULL */
    int                rule;         /* index in the config's rules, -1 when none */
    const char *const *backends;     /* names of the backends tried, in order */
    size_t             nbackends;
    int                status;
    const char        *error;        /* "upstream_stream_error" for an answer cut after commit */
    int64_t            bytes_in;
    int64_t            bytes_out;
    int64_t            duration_us;
    int64_t            ttfb_us;
    int64_t            input_tokens;
    int64_t            output_tokens;
    int                usage_estimated;  /* the tokens are the gateway's estimate, not reported */
    int                stream;
    const char        *api;          /* what the client spoke: chat, responses, messages, ... */
    const char        *upstream_api; /* what its backend was spoken to, or NULL: none answered */
    const char        *response_id;  /* the id the gateway gave the answer, or NULL */
    int                resumed;      /* continuations spliced into the stream (mid-stream resume) */
    int                cost_known;   /* an answer was priced: cost_usd is written */
    int64_t            cost_micro;   /* what it cost, micro-dollars */
};

/* Appends the line for r (when the log is on). */
void mg_access_log(struct mg_access_out *o, const struct mg_access_rec *r);

#endif
