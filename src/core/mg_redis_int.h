/*
 * mg_redis_int — what the files of the Redis client module share: the process-wide counters
 * (mg_redis_stats.c) the connection (mg_redis.c) updates.
 */
#ifndef MG_REDIS_INT_H
#define MG_REDIS_INT_H

#include <stdint.h>

struct bufferevent;
struct event_base;

enum { MG_REDIS_R_CONNECT, MG_REDIS_R_TIMEOUT, MG_REDIS_R_ERROR, MG_REDIS_R_CLOSED,
       MG_REDIS_R_BUSY, MG_REDIS_R_N };

/* One error of a reason above (modelgate_shared_errors_total{reason}). */
void mg_redis_count_error(int reason);
/* A command answered after us microseconds (modelgate_shared_latency_seconds). */
void mg_redis_count_latency(int64_t us);
/* A connection is made (+1) or freed (-1); goes up (+1) or down (-1). */
void mg_redis_count_conn(int d);
void mg_redis_count_up(int d);

/*
 * A client TLS bufferevent (not connected) on base for host: TLS 1.2+, the server's certificate
 * verified against the system's CA store and host (a name, with SNI, or an address). NULL when
 * there is no context (no CA store) or no memory.
 */
struct bufferevent *mg_redis_tls_bev(struct event_base *base, const char *host);

#endif
