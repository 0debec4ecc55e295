/* tm_log: leveled logging to stderr.
 *
 * Every line starts with the level; when stderr is not a TTY (cron, CI, a pipe) it also starts
 * with an ISO-8601 UTC timestamp, so a log file can be read back later. Library code logs
 * failures here and never prints to stdout. Not thread-safe to reconfigure; tm_log_*() calls
 * themselves may come from any thread (each line is written with one fputs under a mutex). */
#ifndef TM_LOG_H
#define TM_LOG_H

#include <stdio.h>

enum tm_log_level {
    TM_LOG_ERROR = 0,
    TM_LOG_WARN = 1,
    TM_LOG_INFO = 2,
    TM_LOG_DEBUG = 3,
};

/* Sets the most verbose level that is printed (default TM_LOG_INFO). */
void tm_log_set_level(enum tm_log_level level);
enum tm_log_level tm_log_get_level(void);

/* Redirects log output (default stderr; NULL restores stderr). `timestamps` < 0 decides by
 * isatty() of the stream, 0 never, 1 always. The stream is borrowed and must outlive logging. */
void tm_log_set_stream(FILE *stream, int timestamps);

/* Also copies every printed line to `file` (a per-run log file); NULL stops copying. Borrowed. */
void tm_log_set_tee(FILE *file);

/* printf-style; a newline is appended. Lines above the current level are dropped cheaply. */
void tm_log(enum tm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tm_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tm_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tm_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tm_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Non-zero when `level` would be printed: lets callers skip building expensive messages. */
int tm_log_enabled(enum tm_log_level level);

#endif
