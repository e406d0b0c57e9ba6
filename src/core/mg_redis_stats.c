/*
 * mg_redis_stats — the Redis client's process-wide counters, rendered for /metrics, and its
 * rate-limited log line (one a minute: Redis trouble would otherwise log once per request).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "mg_log.h"
#include "mg_redis.h"
#include "mg_redis_int.h"
#include "mg_util.h"

static const char *const reasons[] = {"connect", "timeout", "error", "closed", "busy"};
static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
                                    0.5, 1};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

static atomic_int g_used;                 /* a connection was ever made: render the families */
static atomic_int g_up;                   /* connections up now */
static atomic_int g_conns;                /* connections that exist */
static atomic_uint_fast64_t g_errors[MG_REDIS_R_N];
static atomic_uint_fast64_t g_lat[NLAT + 1];
static atomic_uint_fast64_t g_lat_sum_us;
static atomic_int_fast64_t g_last_log_ms = -60000;

void
mg_redis_log_limited(const char *fmt, ...)
{
    int64_t now = mg_now_ms(), last = atomic_load(&g_last_log_ms);
    char buf[512];
    va_list ap;

    if (now - last < 60000 || !atomic_compare_exchange_strong(&g_last_log_ms, &last, now)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mg_log_warn("shared state: %s (logged at most once a minute)", buf);
}

void
mg_redis_count_error(int reason)
{
    atomic_fetch_add_explicit(&g_errors[reason], 1, memory_order_relaxed);
}

void
mg_redis_count_latency(int64_t us)
{
    size_t i;

    for (i = 0; i < NLAT && (double)us / 1e6 > lat_bounds[i]; i++) {
    }
    atomic_fetch_add_explicit(&g_lat[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_lat_sum_us, (uint64_t)us, memory_order_relaxed);
}

void
mg_redis_count_conn(int d)
{
    atomic_store(&g_used, 1);
    atomic_fetch_add(&g_conns, d);
}

void
mg_redis_count_up(int d)
{
    atomic_fetch_add(&g_up, d);
}

int
mg_redis_all_up(void)
{
    int conns = atomic_load(&g_conns);

    return conns > 0 && atomic_load(&g_up) >= conns;
}

void
mg_redis_render(struct mg_buf *out)
{
    char line[160];
    uint64_t cum = 0;
    size_t i;
    int n;

    if (!atomic_load(&g_used)) {
        return;
    }
    n = snprintf(line, sizeof(line), "# TYPE modelgate_shared_up gauge\nmodelgate_shared_up %d\n"
                 "# TYPE modelgate_shared_errors_total counter\n", mg_redis_all_up());
    mg_buf_add(out, line, (size_t)n);
    for (i = 0; i < MG_REDIS_R_N; i++) {
        n = snprintf(line, sizeof(line), "modelgate_shared_errors_total{reason=\"%s\"} %llu\n",
                     reasons[i], (unsigned long long)atomic_load(&g_errors[i]));
        mg_buf_add(out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "# TYPE modelgate_shared_latency_seconds histogram\n");
    mg_buf_add(out, line, (size_t)n);
    for (i = 0; i <= NLAT; i++) {
        cum += atomic_load(&g_lat[i]);
        if (i < NLAT) {
            n = snprintf(line, sizeof(line),
                         "modelgate_shared_latency_seconds_bucket{le=\"%g\"} %llu\n",
                         lat_bounds[i], (unsigned long long)cum);
        } else {
            n = snprintf(line, sizeof(line),
                         "modelgate_shared_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                         (unsigned long long)cum);
        }
        mg_buf_add(out, line, (size_t)n);
    }
    n = snprintf(line, sizeof(line), "modelgate_shared_latency_seconds_sum %.6f\n"
                 "modelgate_shared_latency_seconds_count %llu\n",
                 (double)atomic_load(&g_lat_sum_us) / 1e6, (unsigned long long)cum);
    mg_buf_add(out, line, (size_t)n);
}

