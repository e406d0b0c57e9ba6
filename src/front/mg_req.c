/*
 * mg_req — look-ups on the gateway's own request (see mg_req.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mg_hdr.h"
#include "mg_req.h"

void
mg_headers_push(struct mg_headers *h, const char *name, size_t name_len, const char *value,
                size_t value_len)
{
    if (h->n == h->alloc) {
        h->alloc = h->alloc ? 2 * h->alloc : 32;
        h->v = mg_realloc(h->v, h->alloc * sizeof(*h->v));
    }
    h->v[h->n].name = name;
    h->v[h->n].name_len = name_len;
    h->v[h->n].value = value;
    h->v[h->n].value_len = value_len;
    h->n++;
}

void
mg_headers_add(struct mg_headers *h, const char *name, const char *value)
{
    mg_headers_push(h, name, strlen(name), value, strlen(value));
}

void
mg_headers_clear(struct mg_headers *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->alloc = 0;
}

const char *
mg_headers_get(const struct mg_headers *h, const char *name)
{
    size_t i;

    for (i = 0; i < h->n; i++) {
        if (mg_hdr_eq(h->v[i].name, name)) {
            return h->v[i].value;
        }
    }
    return NULL;
}

const char *
mg_headers_lookup(void *arg, const char *name)
{
    return mg_headers_get(arg, name);
}

void
mg_req_add_header(struct mg_req *req, const char *name, const char *value)
{
    /* the cap is set by the connection; a line that does not fit is dropped whole */
    size_t mark = req->out.len;

    if (mg_buf_adds(&req->out, name) != MG_OK || mg_buf_add(&req->out, ": ", 2) != MG_OK ||
        mg_buf_adds(&req->out, value) != MG_OK || mg_buf_add(&req->out, "\r\n", 2) != MG_OK) {
        req->out.len = mark;
        if (req->out.data != NULL) {
            req->out.data[mark] = '\0';
        }
    }
}

const char *
mg_req_method(const struct mg_req *req)
{
    return req->method_name != NULL ? req->method_name : "OTHER";
}
