/* tm_progress: a TTY status line, or periodic log lines when stderr is not a terminal. */
#include "tm_progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tm_log.h"

/* Redraw rate on a terminal: 10 per second looks live without costing anything. */
#define PROGRESS_TTY_PERIOD       0.1
#define PROGRESS_DEFAULT_INTERVAL 30.0
/* Loops faster than this many calls per second read the clock once per 1024 calls. */
#define PROGRESS_FAST_CALLS  100000.0
#define PROGRESS_STRIDE_MASK 1023u
#define PROGRESS_LINE        256
#define BYTES_PER_MB         1e6

double tm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tm_progress_init(struct tm_progress *p, const char *label, uint64_t total_items,
                      uint64_t total_bytes, int enabled, double interval)
{
    *p = (struct tm_progress){0};
    p->label = label ? label : "progress";
    p->total_items = total_items;
    p->total_bytes = total_bytes;
    p->enabled = enabled != 0;
    p->interval = interval > 0 ? interval : PROGRESS_DEFAULT_INTERVAL;
    p->start = tm_now();
    p->last_draw = p->start;
    p->tty = isatty(STDERR_FILENO);
}

void tm_progress_set_total(struct tm_progress *p, uint64_t total_items, uint64_t total_bytes)
{
    p->total_items = total_items;
    p->total_bytes = total_bytes;
}

/* "0:42", "12:05", "3:02:11". */
static void format_duration(double s, char *out, size_t cap)
{
    if (s < 0)
        s = 0;
    unsigned long t = (unsigned long)(s + 0.5);
    unsigned long h = t / 3600, m = t / 60 % 60, sec = t % 60;
    if (h)
        snprintf(out, cap, "%lu:%02lu:%02lu", h, m, sec);
    else
        snprintf(out, cap, "%lu:%02lu", m, sec);
}

void tm_progress_format(const struct tm_progress *p, double now, char *out, unsigned cap)
{
    if (cap == 0)
        return;
    double el = now - p->start;
    double item_rate = el > 0 ? (double)p->items / el : 0;
    double byte_rate = el > 0 ? (double)p->bytes / el : 0;
    int n = snprintf(out, cap, "%s: %llu items (%.1f/s), %.1f MB (%.1f MB/s)", p->label,
                     (unsigned long long)p->items, item_rate, (double)p->bytes / BYTES_PER_MB,
                     byte_rate / BYTES_PER_MB);
    if (n < 0 || (unsigned)n >= cap)
        return;

    /* Bytes predict the remaining time better than items: items vary in size. */
    double eta = -1;
    if (p->total_bytes && byte_rate > 0)
        eta = p->bytes >= p->total_bytes ? 0 : (double)(p->total_bytes - p->bytes) / byte_rate;
    else if (p->total_items && item_rate > 0)
        eta = p->items >= p->total_items ? 0 : (double)(p->total_items - p->items) / item_rate;
    if (eta >= 0) {
        char d[32];
        format_duration(eta, d, sizeof(d));
        snprintf(out + n, cap - (unsigned)n, ", ETA %s", d);
    }
}

static void progress_draw(struct tm_progress *p, double now)
{
    char line[PROGRESS_LINE];
    tm_progress_format(p, now, line, sizeof(line));
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
        p->drawn = 1;
    } else {
        tm_log_info("%s", line);
    }
    p->last_draw = now;
}

void tm_progress_add(struct tm_progress *p, uint64_t items, uint64_t bytes)
{
    if (!p->enabled)
        return;
    p->items += items;
    p->bytes += bytes;
    p->calls++;
    /* Slow loops (each call costs far more than a clock read) check every call; fast ones
     * every 1024th, judged by the call rate up to the last draw. */
    double seen = p->last_draw - p->start;
    int fast = seen > 0 && (double)p->calls / seen > PROGRESS_FAST_CALLS;
    if (fast && (p->calls & PROGRESS_STRIDE_MASK) != 0)
        return;
    double now = tm_now();
    double period = p->tty ? PROGRESS_TTY_PERIOD : p->interval;
    if (now - p->last_draw >= period)
        progress_draw(p, now);
}

void tm_progress_finish(struct tm_progress *p)
{
    if (!p->enabled)
        return;
    double now = tm_now();
    if (p->tty && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = 0;
    }
    char line[PROGRESS_LINE];
    /* The summary has no ETA: it is over. */
    uint64_t ti = p->total_items, tb = p->total_bytes;
    p->total_items = p->total_bytes = 0;
    tm_progress_format(p, now, line, sizeof(line));
    p->total_items = ti;
    p->total_bytes = tb;
    tm_log_info("%s, done in %.1f s", line, now - p->start);
    p->enabled = 0;
}
