/* tm_progress: a progress display for long loops.
 *
 * On a TTY it redraws one status line on stderr (items/s, MB/s, and an ETA when the total is
 * known) at most every 100 ms. When stderr is not a TTY (cron, CI, a pipe) it writes a log
 * line through tm_log_info() every `interval` seconds instead, so logs stay readable. Disabled
 * entirely by --no-progress or --quiet. Updates are cheap (a clock read every 1024 calls at
 * most); not thread-safe: one thread updates a given tracker. */
#ifndef TM_PROGRESS_H
#define TM_PROGRESS_H

#include <stdint.h>

struct tm_progress {
    const char *label; /* borrowed; e.g. "ingest" */
    uint64_t items, bytes;
    uint64_t total_items, total_bytes; /* 0 when unknown */
    double start, last_draw;           /* seconds, monotonic */
    double interval;                   /* seconds between log lines when not a TTY */
    unsigned calls;
    int tty;     /* drawing on a terminal */
    int enabled; /* 0 after --no-progress / --quiet */
    int drawn;   /* a TTY line is on screen and must be cleared */
};

/* Starts tracking. `enabled` 0 makes every call a no-op. interval <= 0 picks 30 s. */
void tm_progress_init(struct tm_progress *p, const char *label, uint64_t total_items,
                      uint64_t total_bytes, int enabled, double interval);
/* Adds to the counters and redraws or logs when due. */
void tm_progress_add(struct tm_progress *p, uint64_t items, uint64_t bytes);
/* Sets known totals later (e.g. once a directory walk has finished). */
void tm_progress_set_total(struct tm_progress *p, uint64_t total_items, uint64_t total_bytes);
/* Clears the TTY line and logs one final summary line at info level. */
void tm_progress_finish(struct tm_progress *p);

/* Formats the status text ("1234 items 56.7 items/s 12.3 MB/s ETA 0:42") into out[cap]; used
 * by both display modes and by tests. `now` is the monotonic time. */
void tm_progress_format(const struct tm_progress *p, double now, char *out, unsigned cap);

/* Monotonic clock in seconds. */
double tm_now(void);

#endif
