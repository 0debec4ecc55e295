/* tm_log: leveled logging. Each line is formatted into a local buffer first and written with
 * one fputs under a mutex, so lines from different threads never interleave. */
#include "tm_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Long enough for any message we produce; longer ones are truncated, not dropped. */
#define LOG_LINE_MAX 4096

static const char *const level_names[] = {"error", "warning", "info", "debug"};

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static enum tm_log_level log_level = TM_LOG_INFO;
static FILE *log_stream;        /* NULL means stderr */
static int log_timestamps = -1; /* -1: decided lazily by isatty() */
static FILE *log_tee;

void tm_log_set_level(enum tm_log_level level)
{
    log_level = level;
}

enum tm_log_level tm_log_get_level(void)
{
    return log_level;
}

void tm_log_set_stream(FILE *stream, int timestamps)
{
    pthread_mutex_lock(&log_mutex);
    log_stream = stream;
    log_timestamps = timestamps < 0 ? -1 : timestamps != 0;
    pthread_mutex_unlock(&log_mutex);
}

void tm_log_set_tee(FILE *file)
{
    pthread_mutex_lock(&log_mutex);
    log_tee = file;
    pthread_mutex_unlock(&log_mutex);
}

int tm_log_enabled(enum tm_log_level level)
{
    return level <= log_level;
}

static void log_v(enum tm_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void log_v(enum tm_log_level level, const char *fmt, va_list ap)
{
    if (!tm_log_enabled(level))
        return;
    if ((unsigned)level > TM_LOG_DEBUG)
        level = TM_LOG_DEBUG;

    /* The timestamp is always formatted in front of the line; whether it is printed is
     * decided per stream, and the tee always gets it (a log file is read back later). */
    char line[LOG_LINE_MAX];
    size_t slen = 0;
    time_t t = time(NULL);
    struct tm tmv;
    if (gmtime_r(&t, &tmv))
        slen = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ ", &tmv);

    int n = snprintf(line + slen, sizeof(line) - slen, "%s: ", level_names[level]);
    if (n < 0)
        return;
    size_t len = slen + (size_t)n;
    int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    len += m < 0 ? 0 : (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len] = '\n';
    line[len + 1] = '\0';

    pthread_mutex_lock(&log_mutex);
    FILE *out = log_stream ? log_stream : stderr;
    int ts = log_timestamps;
    if (ts < 0)
        ts = !isatty(fileno(out));
    fputs(ts ? line : line + slen, out);
    fflush(out);
    if (log_tee) {
        fputs(line, log_tee);
        fflush(log_tee);
    }
    pthread_mutex_unlock(&log_mutex);
}

void tm_log(enum tm_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, fmt, ap);
    va_end(ap);
}

void tm_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(TM_LOG_ERROR, fmt, ap);
    va_end(ap);
}

void tm_log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(TM_LOG_WARN, fmt, ap);
    va_end(ap);
}

void tm_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(TM_LOG_INFO, fmt, ap);
    va_end(ap);
}

void tm_log_debug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(TM_LOG_DEBUG, fmt, ap);
    va_end(ap);
}
