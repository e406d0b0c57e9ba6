/*
 * mg_cors — browsers calling the gateway (see include/mg_cors.h). An Origin is echoed only when
 * it is one of the configured ones, byte for byte (or "*" is configured: then "*"), so nothing a
 * client sends reaches a response header unchecked; the requested headers of a preflight are
 * echoed only when they are a plain list of header names.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conf_types.h"
#include "mg_cors.h"
#include "mg_hdr.h"
#include "mg_reply.h"
#include "mg_req.h"
#include "mg_util.h"

/* The value to send as Access-Control-Allow-Origin for origin, or NULL (not listed). */
static const char *
allowed(const struct mg_cors_conf *c, const char *origin)
{
    size_t i;

    if (c->any) {
        return "*";
    }
    for (i = 0; i < c->norigins; i++) {
        if (strcmp(c->origins[i], origin) == 0) {
            return c->origins[i];
        }
    }
    return NULL;
}

/* 1 when v is a comma-separated list of header names (what a preflight may ask for). */
static int
names_ok(const char *v)
{
    size_t i = 0, n = strlen(v), start;

    if (n > 1024) {
        return 0;
    }
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == ',')) {
            i++;
        }
        start = i;
        while (i < n && v[i] != ',' && v[i] != ' ') {
            i++;
        }
        if (i > start && !mg_hdr_name_ok(v + start, i - start)) {
            return 0;
        }
    }
    return 1;
}

int
mg_cors_head(const struct mg_cors_conf *c, struct mg_req *req)
{
    const char *origin, *method, *asked, *allow;
    char age[24];

    if (c == NULL || !c->on || (origin = mg_headers_get(&req->headers, "origin")) == NULL ||
        strncmp(req->path, "/v1/", 4) != 0) {
        return 0;
    }
    allow = allowed(c, origin);
    method = mg_headers_get(&req->headers, "access-control-request-method");
    if (allow == NULL) {
        /* an unlisted origin gets no CORS header at all, but its preflight is still one:
         * 204 without headers, so that the browser, not a 405, refuses the call */
        if (req->method == MG_METHOD_OPTIONS && method != NULL) {
            mg_reply_empty(req, 204);
            return 204;
        }
        return 0;
    }
    snprintf(req->cors_origin, sizeof(req->cors_origin), "%s", allow);
    if (req->method != MG_METHOD_OPTIONS || method == NULL) {
        return 0;
    }
    mg_req_add_header(req, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    asked = mg_headers_get(&req->headers, "access-control-request-headers");
    if (asked != NULL && asked[0] != '\0' && names_ok(asked)) {
        mg_req_add_header(req, "Access-Control-Allow-Headers", asked);
    }
    snprintf(age, sizeof(age), "%lld", (long long)(c->max_age_ms / 1000));
    mg_req_add_header(req, "Access-Control-Max-Age", age);
    mg_reply_empty(req, 204);
    return 204;
}
