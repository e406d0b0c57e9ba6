/*
 * mg_evhook — the wrapped libevent constructors; see the header.
 */
#include <dlfcn.h>
#include <stddef.h>

#include <event2/http.h>

#include "mg_evhook.h"

typedef struct evhttp_request *(*request_new_fn)(void (*)(struct evhttp_request *, void *),
                                                 void *);
typedef void (*request_free_fn)(struct evhttp_request *);

static __thread mg_evhook_new_fn  hook_new;
static __thread mg_evhook_free_fn hook_free;

void
mg_evhook_set(mg_evhook_new_fn on_new, mg_evhook_free_fn on_free)
{
    hook_new = on_new;
    hook_free = on_free;
}

struct evhttp_request *
evhttp_request_new(void (*cb)(struct evhttp_request *, void *), void *arg)
{
    static request_new_fn real;
    struct evhttp_request *req;

    if (real == NULL) {
        real = (request_new_fn)dlsym(RTLD_NEXT, "evhttp_request_new");
    }
    req = real(cb, arg);
    if (req != NULL && hook_new != NULL) {
        hook_new(req);
    }
    return req;
}

void
evhttp_request_free(struct evhttp_request *req)
{
    static request_free_fn real;

    if (real == NULL) {
        real = (request_free_fn)dlsym(RTLD_NEXT, "evhttp_request_free");
    }
    if (hook_free != NULL) {
        hook_free(req);
    }
    real(req);
}
