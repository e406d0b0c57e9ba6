/*
 * mg_log — the error log: one line per event on stderr, filtered by log_level.
 */
#ifndef MG_LOG_H
#define MG_LOG_H

enum mg_log_level { MG_LOG_ERROR = 0, MG_LOG_WARN, MG_LOG_INFO, MG_LOG_DEBUG };

/* Sets the most verbose level that is written. Safe to call at any time. */
void mg_log_set_level(enum mg_log_level level);
/* Maps "error"|"warn"|"info"|"debug" to a level; -1 when unknown. */
int mg_log_level_parse(const char *s);
/* Writes one line (timestamp, level, message) when level is enabled. */
void mg_log(enum mg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mg_log_error(...) mg_log(MG_LOG_ERROR, __VA_ARGS__)
#define mg_log_warn(...)  mg_log(MG_LOG_WARN, __VA_ARGS__)
#define mg_log_info(...)  mg_log(MG_LOG_INFO, __VA_ARGS__)
#define mg_log_debug(...) mg_log(MG_LOG_DEBUG, __VA_ARGS__)

#endif
