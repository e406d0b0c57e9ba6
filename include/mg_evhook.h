/*
 * mg_evhook — hooks into libevent 2.1's evhttp where it has none: its own calls to
 * evhttp_request_new() and evhttp_request_free() go through the PLT, so the definitions in
 * mg_evhook.c wrap libevent's for the whole process and call what a module registered. (2.2 has
 * evhttp_set_newreqcb for the first; 2.1, which Debian 12 ships, does not.)
 */
#ifndef MG_EVHOOK_H
#define MG_EVHOOK_H

struct evhttp_request;

/* Called after libevent created a request (on the thread that did). */
typedef void (*mg_evhook_new_fn)(struct evhttp_request *req);
/* Called before libevent frees a request. */
typedef void (*mg_evhook_free_fn)(struct evhttp_request *req);

/* Registers the two hooks for the calling thread; NULLs unregister. */
void mg_evhook_set(mg_evhook_new_fn on_new, mg_evhook_free_fn on_free);

#endif
