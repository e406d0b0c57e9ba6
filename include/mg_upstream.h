/*
 * mg_upstream — libcurl's multi interface driven by one worker's event_base.
 *
 * The only module that calls curl_multi_*. Each worker owns one, so upstream connections are
 * kept alive and reused per worker without locks. Completion is reported from the event loop,
 * after curl_multi_socket_action() has returned, so the callee may start or cancel transfers.
 */
#ifndef MG_UPSTREAM_H
#define MG_UPSTREAM_H

#include <curl/curl.h>
#include <event2/event.h>

struct mg_upstream;

/* Called once per started transfer that was not cancelled; the easy handle is already removed. */
typedef void (*mg_upstream_done_fn)(void *arg, CURLcode result);

/* One transfer in flight; embedded in its owner, which keeps it alive until done or cancelled. */
struct mg_upstream_xfer {
    CURL               *easy;
    mg_upstream_done_fn done;
    void               *arg;
};

/* A multi handle on base. Aborts on failure to create libcurl objects or set their options. */
struct mg_upstream *mg_upstream_create(struct event_base *base);

/* Cancels nothing: call only when no transfer is in flight. NULL is a no-op. */
void mg_upstream_destroy(struct mg_upstream *up);

/*
 * The URL parsed once per worker (curl re-parses a URL string on every transfer: ~13k
 * instructions): the handle to pass as CURLOPT_CURLU, valid until the upstream is destroyed.
 * NULL when the URL does not parse or the cache is full (then pass the string).
 */
CURLU *mg_upstream_url(struct mg_upstream *up, const char *url);

/*
 * An easy handle with default options, from the worker's pool when one is free. A new handle
 * whose options curl refuses aborts the process with the option's name.
 */
CURL *mg_upstream_easy_get(struct mg_upstream *up);

/*
 * Gives an easy handle back to the pool. Its options are kept (resetting costs as much as setting
 * them): a user sets every option that varies on every use. Connections stay in the multi's cache.
 */
void mg_upstream_easy_put(struct mg_upstream *up, CURL *easy);

/* 1 the first time a handle from mg_upstream_easy_get() is seen: set its constant options now. */
int mg_upstream_easy_fresh(CURL *easy);

/* Adds xfer->easy to the multi. MG_OK or MG_ERR (logged). */
int mg_upstream_start(struct mg_upstream *up, struct mg_upstream_xfer *xfer);

/* Stops a transfer now; its done callback is not called. Never call from a curl callback. */
void mg_upstream_cancel(struct mg_upstream *up, struct mg_upstream_xfer *xfer);

#endif
