/*
 * mg_status_html — the status page as one HTML document written from the status document
 * (mg_status_page_data), so that the page and /status.json can never disagree. Every number is
 * in an element with data-k="<path in status.json>"; the script (a dozen lines) fetches
 * status.json every 2 s and writes each one again with the same formatting (integers as they
 * are, other numbers with 3 decimals, null as "–"), and redraws the charts. Without script the
 * page is the same, as of its load. No external asset: inline CSS and SVG.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mg_status.h"
#include "mg_status_page.h"

static const char head[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width\">"
    "<title>modelgate status</title><style>"
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}"
    "h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}"
    "table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ddd;"
    "padding:.25em .55em;text-align:right;white-space:nowrap}th{background:#f0f0f0}"
    "td.l,th.l{text-align:left}.up{color:#080}.down{color:#b00;font-weight:bold}"
    ".inst b{font-weight:600}svg .rq{fill:none;stroke:#2766c4;stroke-width:1.5}"
    "svg .er{fill:none;stroke:#c42727;stroke-width:1.5}small{color:#777}"
    "</style></head><body>\n";

static const char script[] =
    "<script>\n"
    "function g(o,k){return k.split('.').reduce(function(a,x){return a==null?a:a[x]},o)}\n"
    "function f(v){return v==null?'\\u2013':typeof v=='boolean'?(v?'yes':'no'):"
    "typeof v=='number'?(Number.isInteger(v)?String(v):v.toFixed(3)):String(v)}\n"
    "function pts(a,m){return a.map(function(v,i){return (2*i)+','+(34-32*v/m).toFixed(1)})"
    ".join(' ')}\n"
    "function draw(j){var b=document.body;b.dataset.refreshed=(+b.dataset.refreshed||0)+1;"
    "document.querySelectorAll('[data-k]').forEach(function(e){"
    "e.textContent=f(g(j,e.dataset.k))});document.querySelectorAll('svg[data-s]')"
    ".forEach(function(e){var s=j.backends[+e.dataset.s];if(!s)return;s=s.series;"
    "var m=Math.max(1,Math.max.apply(null,s.requests)),p=e.querySelectorAll('polyline');"
    "p[0].setAttribute('points',pts(s.requests,m));p[1].setAttribute('points',pts(s.errors,m))"
    "})}\n"
    "setInterval(function(){fetch('status.json',{cache:'no-store'}).then(function(r){"
    "return r.json()}).then(draw).catch(function(){})},2000);\n"
    "</script>\n";

/* Appends s with &, <, >, " escaped. */
static void
text(struct mg_buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': mg_buf_adds(out, "&amp;"); break;
        case '<': mg_buf_adds(out, "&lt;"); break;
        case '>': mg_buf_adds(out, "&gt;"); break;
        case '"': mg_buf_adds(out, "&quot;"); break;
        default: mg_buf_add(out, s, 1);
        }
    }
}

/* The script's f(): the same text for the same value. */
static void
value(struct mg_buf *out, json_t *v)
{
    if (v == NULL || json_is_null(v)) {
        mg_buf_adds(out, "\xe2\x80\x93");   /* an en dash */
    } else if (json_is_boolean(v)) {
        mg_buf_adds(out, json_is_true(v) ? "yes" : "no");
    } else if (json_is_integer(v)) {
        mg_buf_printf(out, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        mg_buf_printf(out, d > -1e15 && d < 1e15 && d == (double)(long long)d ? "%.0f" : "%.3f", d);
    } else if (json_is_string(v)) {
        text(out, json_string_value(v));
    }
}

/* A cell (or b element) holding the value at path p of data. */
static void
cell(struct mg_buf *out, const char *tag, json_t *data, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
cell(struct mg_buf *out, const char *tag, json_t *data, const char *fmt, ...)
{
    char path[256], *seg, *save = NULL, walk[256];
    json_t *v = data;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    snprintf(walk, sizeof(walk), "%s", path);
    for (seg = strtok_r(walk, ".", &save); seg != NULL && v != NULL;
         seg = strtok_r(NULL, ".", &save)) {
        v = json_is_array(v) ? json_array_get(v, (size_t)strtoul(seg, NULL, 10))
                             : json_object_get(v, seg);
    }
    mg_buf_printf(out, "<%s data-k=\"%s\">", tag, path);
    value(out, v);
    mg_buf_printf(out, "</%s>", tag);
}

static void
points(struct mg_buf *out, json_t *series, double max)
{
    size_t i;
    json_t *v;

    json_array_foreach(series, i, v) {
        mg_buf_printf(out, "%s%zu,%.1f", i ? " " : "", 2 * i,
                      34 - 32 * (double)json_integer_value(v) / max);
    }
}

static void
chart(struct mg_buf *out, json_t *b, size_t i)
{
    json_t *s = json_object_get(b, "series"), *rq = json_object_get(s, "requests"), *v;
    double max = 1;
    size_t k;

    json_array_foreach(rq, k, v) {
        if ((double)json_integer_value(v) > max) {
            max = (double)json_integer_value(v);
        }
    }
    mg_buf_printf(out, "<td><svg data-s=\"%zu\" width=\"180\" height=\"36\" viewBox=\"0 0 180 36\""
                       " role=\"img\" aria-label=\"requests and errors per 10 s\">"
                       "<polyline class=\"rq\" points=\"", i);
    points(out, rq, max);
    mg_buf_adds(out, "\"/><polyline class=\"er\" points=\"");
    points(out, json_object_get(s, "errors"), max);
    mg_buf_adds(out, "\"/></svg></td>");
}

static void
list(struct mg_buf *out, json_t *a)
{
    size_t i;
    json_t *v;

    mg_buf_adds(out, "<td class=\"l\">");
    if (!json_is_array(a)) {
        mg_buf_adds(out, "all");
    }
    json_array_foreach(a, i, v) {
        if (i > 0) {
            mg_buf_adds(out, ", ");
        }
        text(out, json_string_value(v));
    }
    mg_buf_adds(out, "</td>");
}

static void
backends(struct mg_buf *out, json_t *d)
{
    json_t *b, *att, *v;
    const char *k;
    size_t i;

    mg_buf_adds(out, "<h2>Backends</h2><table><tr><th class=\"l\">backend</th><th class=\"l\">"
                     "schema</th><th>last 15 min<br><small>attempts, failed / 10 s</small></th>"
                     "<th>up</th><th>cooling until</th><th>failures in a row</th>"
                     "<th>attempts</th><th>failed</th><th>error rate<br><small>5 min</small></th>"
                     "<th>latency p50<br><small>s, 5 min</small></th><th>p99</th>"
                     "<th>TTFT p50<br><small>s, 5 min</small></th><th>p99</th>"
                     "<th class=\"l\">attempts by result</th></tr>\n");
    json_array_foreach(json_object_get(d, "backends"), i, b) {
        mg_buf_adds(out, "<tr><td class=\"l\"><b>");
        text(out, json_string_value(json_object_get(b, "name")));
        mg_buf_adds(out, "</b></td><td class=\"l\">");
        text(out, json_string_value(json_object_get(b, "schema")));
        mg_buf_adds(out, "</td>");
        chart(out, b, i);
        mg_buf_adds(out, json_is_true(json_object_get(b, "up")) ? "<td class=\"up\">"
                                                                 : "<td class=\"down\">");
        cell(out, "span", d, "backends.%zu.up", i);
        mg_buf_adds(out, "</td>");
        cell(out, "td", d, "backends.%zu.cooling_until", i);
        cell(out, "td", d, "backends.%zu.failures_in_a_row", i);
        cell(out, "td", d, "backends.%zu.requests", i);
        cell(out, "td", d, "backends.%zu.errors", i);
        cell(out, "td", d, "backends.%zu.error_rate", i);
        cell(out, "td", d, "backends.%zu.latency_s.p50", i);
        cell(out, "td", d, "backends.%zu.latency_s.p99", i);
        cell(out, "td", d, "backends.%zu.ttft_s.p50", i);
        cell(out, "td", d, "backends.%zu.ttft_s.p99", i);
        mg_buf_adds(out, "<td class=\"l\">");
        att = json_object_get(b, "attempts");
        json_object_foreach(att, k, v) {
            text(out, k);
            mg_buf_printf(out, " %lld ", (long long)json_integer_value(v));
        }
        mg_buf_adds(out, "</td></tr>\n");
    }
    mg_buf_adds(out, "</table>\n");
}

static void
rules_and_keys(struct mg_buf *out, json_t *d)
{
    json_t *x;
    size_t i;

    mg_buf_adds(out, "<h2>Rules</h2><table><tr><th>rule</th><th class=\"l\">models</th>"
                     "<th>requests</th><th>errors</th><th>input tokens</th>"
                     "<th>output tokens</th></tr>\n");
    json_array_foreach(json_object_get(d, "rules"), i, x) {
        mg_buf_printf(out, "<tr><td>%zu</td>", i);
        list(out, json_object_get(x, "models"));
        cell(out, "td", d, "rules.%zu.requests", i);
        cell(out, "td", d, "rules.%zu.errors", i);
        cell(out, "td", d, "rules.%zu.tokens.input", i);
        cell(out, "td", d, "rules.%zu.tokens.output", i);
        mg_buf_adds(out, "</tr>\n");
    }
    mg_buf_adds(out, "</table>\n<h2>Client keys</h2><table><tr><th class=\"l\">key</th>"
                     "<th class=\"l\">models</th><th>requests</th><th>input tokens</th>"
                     "<th>output tokens</th><th>requests/min left</th><th>of</th>"
                     "<th>tokens/min left</th><th>of</th><th>spent USD</th><th>budget USD</th>"
                     "<th>per</th></tr>\n");
    json_array_foreach(json_object_get(d, "keys"), i, x) {
        mg_buf_adds(out, "<tr><td class=\"l\"><b>");
        text(out, json_string_value(json_object_get(x, "name")));
        mg_buf_adds(out, "</b></td>");
        list(out, json_object_get(x, "models"));
        cell(out, "td", d, "keys.%zu.requests", i);
        cell(out, "td", d, "keys.%zu.tokens.input", i);
        cell(out, "td", d, "keys.%zu.tokens.output", i);
        cell(out, "td", d, "keys.%zu.limits.requests_per_minute.remaining", i);
        cell(out, "td", d, "keys.%zu.limits.requests_per_minute.limit", i);
        cell(out, "td", d, "keys.%zu.limits.tokens_per_minute.remaining", i);
        cell(out, "td", d, "keys.%zu.limits.tokens_per_minute.limit", i);
        cell(out, "td", d, "keys.%zu.budget.spent_usd", i);
        cell(out, "td", d, "keys.%zu.budget.usd", i);
        cell(out, "td", d, "keys.%zu.budget.per", i);
        mg_buf_adds(out, "</tr>\n");
    }
    mg_buf_adds(out, "</table>\n");
}

void
mg_status_page_html(json_t *d, struct mg_buf *out)
{
    mg_buf_adds(out, head);
    mg_buf_adds(out, "<h1>modelgate ");
    cell(out, "span", d, "instance.version");
    mg_buf_adds(out, "</h1>\n<p class=\"inst\">up ");
    cell(out, "b", d, "instance.uptime_s");
    mg_buf_adds(out, " s &middot; workers ");
    cell(out, "b", d, "instance.workers");
    mg_buf_adds(out, " &middot; config generation ");
    cell(out, "b", d, "instance.config_generation");
    mg_buf_adds(out, ", loaded ");
    cell(out, "b", d, "instance.last_reload");
    mg_buf_adds(out, " &middot; reloads ");
    cell(out, "b", d, "instance.reloads.ok");
    mg_buf_adds(out, " applied, ");
    cell(out, "b", d, "instance.reloads.error");
    mg_buf_adds(out, " refused &middot; shared state ");
    cell(out, "b", d, "instance.shared");
    mg_buf_adds(out, "</p>\n");
    backends(out, d);
    rules_and_keys(out, d);
    mg_buf_adds(out, "<p><small>Numbers refresh every 2 s from <a href=\"status.json\">"
                     "status.json</a>.</small></p>\n");
    mg_buf_adds(out, script);
    mg_buf_adds(out, "</body></html>\n");
}
