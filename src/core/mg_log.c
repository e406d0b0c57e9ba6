/*
 * mg_log — error log lines on stderr. One fprintf per line keeps lines whole across threads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mg_log.h"

/* Process-wide on purpose, not in the runtime: stderr is the process's and any thread (libcurl's
 * and libevent's callbacks included) logs without a context to pass. */
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

/*
 * Copies s with every control byte (and DEL) written as \xHH, so that no value in a log line,
 * whoever sent it, can start a line of its own or carry a terminal escape sequence.
 */
static void
escape(const char *s, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (; *s != '\0' && o + 5 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void
mg_log(enum mg_log_level level, const char *fmt, ...)
{
    char msg[1024], safe[4 * 1024 + 1], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if ((int)level > log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    escape(msg, safe, sizeof(safe));
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", ts, now.tv_nsec / 1000000, level_names[level], safe);
}
