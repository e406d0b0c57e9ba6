/*
 * mg_status_page — the status document from the runtime: the instance's counters, the health
 * registry, the status rings (mg_status), the limit store; shaped as SPEC's "Admin endpoints"
 * says. Never a URL, a header or a credential.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "mg_auth.h"
#include "mg_budget.h"
#include "mg_conf_types.h"
#include "mg_health.h"
#include "mg_limit.h"
#include "mg_redis.h"
#include "mg_runtime.h"
#include "mg_schema.h"
#include "mg_status.h"
#include "mg_status_page.h"
#include "mg_version.h"

/* RFC 3339 UTC of Unix milliseconds. */
static json_t *
rfc3339(int64_t ms)
{
    char ts[40];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03dZ", (int)(ms % 1000));
    return json_string(ts);
}

/* x >= 0 rounded to a multiple of 1/scale (no libm). */
static double
rounded(double x, double scale)
{
    return (double)(int64_t)(x * scale + 0.5) / scale;
}

/* A quantile (seconds) or null without samples. */
static json_t *
seconds(double v)
{
    return v < 0 ? json_null() : json_real(rounded(v, 1e6));
}

static json_t *
instance(struct mg_runtime *rt, const struct mg_conf *conf)
{
    int64_t started, last;
    uint64_t ok, err;
    int workers;

    mg_status_instance(rt->status, &started, &ok, &err, &last, &workers);
    return json_pack("{s:s,s:I,s:i,s:I,s:o,s:{s:I,s:I},s:s}", "version", MG_VERSION, "uptime_s",
                     (json_int_t)((int64_t)time(NULL) - started), "workers", workers,
                     "config_generation", (json_int_t)(1 + ok), "last_reload",
                     rfc3339(1000 * (last != 0 ? last : started)), "reloads", "ok",
                     (json_int_t)ok, "error", (json_int_t)err, "shared",
                     !conf->shared.on ? "off" : mg_redis_all_up() ? "up" : "down");
}

/*
 * The Unix time (ms) of a monotonic instant, through an offset kept for the process: two pages
 * asked a millisecond apart name the same cooling_until (each reading both clocks would not). A
 * wall clock stepped by more than a second (NTP, an operator) takes the new offset.
 */
static int64_t
wall_of(int64_t mono_ms, int64_t wall_now_ms)
{
    static _Atomic int64_t offset;   /* wall - monotonic; 0 until the first page */
    int64_t now_off = wall_now_ms - mg_now_ms(), off = atomic_load(&offset);

    if (off == 0 || now_off - off > 1000 || off - now_off > 1000) {
        atomic_store(&offset, now_off);
        off = now_off;
    }
    return mono_ms + off;
}

json_t *
mg_status_page_backend(struct mg_runtime *rt, const struct mg_backend *b, int64_t wall_ms)
{
    struct mg_status_backend_view v;
    json_t *j, *att = json_object(), *rq = json_array(), *er = json_array();
    int64_t mono = mg_now_ms();
    int64_t left = b->state != NULL ? mg_health_cooldown_left(b->state, mono) : 0;
    int up = b->state == NULL || mg_health_up(b->state);
    size_t i;

    mg_status_backend(rt->status, b->name, mg_now_ms(), &v);   /* the rings' clock: monotonic */
    for (i = 0; i < v.nresults; i++) {
        json_object_set_new(att, v.result[i], json_integer((json_int_t)v.result_count[i]));
    }
    for (i = 0; i < MG_STATUS_SLOTS; i++) {
        json_array_append_new(rq, json_integer((json_int_t)v.series_requests[i]));
        json_array_append_new(er, json_integer((json_int_t)v.series_errors[i]));
    }
    j = json_pack("{s:s,s:s,s:b,s:o,s:i,s:I,s:I,s:f,s:o,s:{s:o,s:o},s:{s:o,s:o},"
                  "s:{s:i,s:o,s:o}}",
                  "name", b->name, "schema", mg_schema_get(b->schema)->name, "up", up,
                  "cooling_until",
                  !up && left > 0 ? rfc3339(wall_of(mono + left, wall_ms)) : json_null(),
                  "failures_in_a_row", b->state != NULL ? mg_health_failures(b->state) : 0,
                  "requests", (json_int_t)v.requests, "errors", (json_int_t)v.errors,
                  "error_rate", v.recent_requests ? rounded((double)v.recent_errors /
                                                            (double)v.recent_requests, 1e4) : 0.0,
                  "attempts", att, "latency_s", "p50", seconds(v.latency_p50), "p99",
                  seconds(v.latency_p99), "ttft_s", "p50", seconds(v.ttft_p50), "p99",
                  seconds(v.ttft_p99), "series", "step_s", MG_STATUS_STEP_S, "requests", rq,
                  "errors", er);
    return j;
}

static json_t *
names(char **v, size_t n)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

/* USD exact to the micro-dollar, as a JSON number. */
static json_t *
usd(int64_t micro)
{
    char s[32];

    snprintf(s, sizeof(s), "%lld.%06lld", (long long)(micro / 1000000),
             (long long)(micro % 1000000));
    return json_real(strtod(s, NULL));
}

/* A key's budget now, or null without one. */
static json_t *
budget(const struct mg_key *k)
{
    struct mg_budget_view v;

    if (k->budget == NULL) {
        return json_null();
    }
    mg_budget_peek(k->budget, (int64_t)time(NULL), &v);
    return json_pack("{s:o,s:s,s:o,s:o,s:o}", "usd", usd(v.usd), "per",
                     mg_budget_per_name(v.per), "spent_usd", usd(v.spent), "remaining_usd",
                     usd(v.remaining), "window_end",
                     v.window_end ? rfc3339(v.window_end * 1000) : json_null());
}

json_t *
mg_status_page_key(struct mg_runtime *rt, const struct mg_key *k)
{
    uint64_t rq, in, out;
    json_t *limits = json_object();

    mg_status_key(rt->status, k->name, &rq, &in, &out);
    if (k->limit != NULL && (k->requests_per_minute > 0 || k->tokens_per_minute > 0)) {
        struct mg_limit_info info;
        memset(&info, 0, sizeof(info));
        mg_limit_peek(k->limit, mg_now_ms(), &info);
        if (k->requests_per_minute > 0) {
            json_object_set_new(limits, "requests_per_minute",
                                json_pack("{s:I,s:I}", "limit",
                                          (json_int_t)k->requests_per_minute, "remaining",
                                          (json_int_t)info.requests.remaining));
        }
        if (k->tokens_per_minute > 0) {
            json_object_set_new(limits, "tokens_per_minute",
                                json_pack("{s:I,s:I}", "limit", (json_int_t)k->tokens_per_minute,
                                          "remaining", (json_int_t)info.tokens.remaining));
        }
    }
    return json_pack("{s:s,s:o,s:I,s:{s:I,s:I},s:o,s:o}", "name", k->name, "models",
                     k->models != NULL ? names(k->models, k->nmodels) : json_null(), "requests",
                     (json_int_t)rq, "tokens", "input", (json_int_t)in, "output",
                     (json_int_t)out, "limits", limits, "budget", budget(k));
}

json_t *
mg_status_page_data(struct mg_runtime *rt, struct mg_conf *conf)
{
    struct timespec ts;
    int64_t wall_ms;
    json_t *bs = json_array(), *rs = json_array(), *ks = json_array();
    size_t i;

    clock_gettime(CLOCK_REALTIME, &ts);
    wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (i = 0; conf != NULL && i < conf->nbackends; i++) {
        json_array_append_new(bs, mg_status_page_backend(rt, &conf->backends[i], wall_ms));
    }
    for (i = 0; conf != NULL && i < conf->nrules; i++) {
        uint64_t rq, er, in, out;
        mg_status_rule(rt->status, (int)i, &rq, &er, &in, &out);
        json_array_append_new(rs, json_pack("{s:i,s:o,s:I,s:I,s:{s:I,s:I}}", "index", (int)i,
                                            "models", names(conf->rules[i].models,
                                                            conf->rules[i].nmodels),
                                            "requests", (json_int_t)rq, "errors",
                                            (json_int_t)er, "tokens", "input", (json_int_t)in,
                                            "output", (json_int_t)out));
    }
    for (i = 0; conf != NULL && i < conf->nkeys; i++) {
        json_array_append_new(ks, mg_status_page_key(rt, &conf->keys[i]));
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "instance", instance(rt, conf), "backends", bs, "rules", rs,
                     "keys", ks);
}
