/*
 * mg_log — error log lines on stderr. One fprintf per line keeps lines whole across threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_log.h"

static volatile int log_level = MG_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
mg_log_set_level(enum mg_log_level level)
{
    log_level = (int)level;
}

int
mg_log_level_parse(const char *s)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void
mg_log(enum mg_log_level level, const char *fmt, ...)
{
    char msg[1024], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if ((int)level > log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", ts, now.tv_nsec / 1000000, level_names[level], msg);
}
