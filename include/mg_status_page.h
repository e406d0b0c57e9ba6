/*
 * mg_status_page — GET /status.json and GET /status (SPEC "Admin endpoints", "Traces and the
 * status page"): the instance, each backend (health, attempts, the rings' rates, quantiles and
 * 15-minute series), each rule and each client key, from the runtime's registries merged at the
 * time of the request. The page is one self-contained HTML document (inline CSS and SVG, a few
 * lines of script that refresh its numbers and charts from /status.json every 2 s; it reads
 * without script).
 */
#ifndef MG_STATUS_PAGE_H
#define MG_STATUS_PAGE_H

#include "mg_util.h"

struct json_t;
struct mg_conf;
struct mg_runtime;

/* The status document (jansson; the caller decrefs it). */
struct json_t *mg_status_page_data(struct mg_runtime *rt, struct mg_conf *conf);

/* One backend's object B (wall_ms: now, Unix milliseconds) and one key's object K. */
struct mg_backend;
struct mg_key;
struct json_t *mg_status_page_backend(struct mg_runtime *rt, const struct mg_backend *b,
                                      int64_t wall_ms);
struct json_t *mg_status_page_key(struct mg_runtime *rt, const struct mg_key *k);

/* The page for data (from mg_status_page_data) into out. */
void mg_status_page_html(struct json_t *data, struct mg_buf *out);

#endif
