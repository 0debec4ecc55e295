/* Unit tests for tm_progress: the status text, ETA choice, log-line mode off a TTY, the
 * disabled tracker, and the final summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tm_log.h"
#include "test_util.h"
#include "tm_progress.h"

static struct tu_capture logcap;

static int setup(void **state)
{
    (void)state;
    tu_capture_start(&logcap, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_capture_stop(&logcap);
    free(logcap.text);
    return 0;
}

static const char *log_output(void)
{
    return tu_capture_text(&logcap);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void test_now_monotonic(void **state)
{
    (void)state;
    double a = tm_now();
    sleep_s(0.01);
    double b = tm_now();
    assert_true(b - a >= 0.009);
    assert_true(b - a < 5);
}

static void test_format(void **state)
{
    (void)state;
    struct tm_progress p = {0};
    p.label = "ingest";
    p.start = 100.0;
    p.items = 1234;
    p.bytes = 12300000;
    char out[256];
    /* 10 s in: 123.4 items/s, 1.23 MB/s; no totals, no ETA. */
    tm_progress_format(&p, 110.0, out, sizeof(out));
    assert_string_equal(out, "ingest: 1234 items (123.4/s), 12.3 MB (1.2 MB/s)");

    /* Known bytes are preferred: 12.3 of 24.6 MB at 1.23 MB/s leaves 10 s. */
    p.total_items = 100000;
    p.total_bytes = 24600000;
    tm_progress_format(&p, 110.0, out, sizeof(out));
    assert_string_equal(out, "ingest: 1234 items (123.4/s), 12.3 MB (1.2 MB/s), ETA 0:10");

    /* Items alone: 1234 of 2468 at 123.4/s leaves 10 s; a longer one uses h:mm:ss. */
    p.total_bytes = 0;
    p.total_items = 2468;
    tm_progress_format(&p, 110.0, out, sizeof(out));
    assert_non_null(strstr(out, ", ETA 0:10"));
    p.total_items = 1234 + 123.4 * 3725;
    tm_progress_format(&p, 110.0, out, sizeof(out));
    assert_non_null(strstr(out, ", ETA 1:02:05"));

    /* Past the total: 0:00, not a negative time. */
    p.total_items = 10;
    tm_progress_format(&p, 110.0, out, sizeof(out));
    assert_non_null(strstr(out, ", ETA 0:00"));

    /* Nothing elapsed yet: zero rates, no ETA, no division by zero. */
    tm_progress_format(&p, 100.0, out, sizeof(out));
    assert_string_equal(out, "ingest: 1234 items (0.0/s), 12.3 MB (0.0 MB/s)");

    /* A short buffer is truncated and terminated. */
    char tiny[8];
    tm_progress_format(&p, 110.0, tiny, sizeof(tiny));
    assert_string_equal(tiny, "ingest:");
}

static void test_log_mode(void **state)
{
    (void)state;
    struct tm_progress p;
    tm_progress_init(&p, "walk", 0, 0, 1, 0.05);
    assert_true(p.interval == 0.05);
    p.tty = 0; /* log lines even when the test runs on a terminal */
    tm_progress_add(&p, 1, 100);
    assert_int_equal(count(log_output(), "info: walk: "), 0);
    sleep_s(0.08);
    tm_progress_add(&p, 1, 100);
    assert_int_equal(count(log_output(), "info: walk: 2 items"), 1);
    /* Not again before the interval. */
    tm_progress_add(&p, 1, 100);
    assert_int_equal(count(log_output(), "info: walk: "), 1);
    assert_int_equal(p.items, 3);
    assert_int_equal(p.bytes, 300);

    tm_progress_set_total(&p, 10, 0);
    assert_int_equal(p.total_items, 10);
    tm_progress_finish(&p);
    const char *out = log_output();
    assert_non_null(strstr(out, "info: walk: 3 items"));
    assert_non_null(strstr(out, "done in"));
    /* finish disables; later adds print nothing. */
    int lines = count(out, "\n");
    sleep_s(0.06);
    tm_progress_add(&p, 1, 1);
    tm_progress_finish(&p);
    assert_int_equal(count(log_output(), "\n"), lines);
}

static void test_disabled(void **state)
{
    (void)state;
    struct tm_progress p;
    tm_progress_init(&p, "quiet", 0, 0, 0, 0.01);
    assert_true(p.interval > 0);
    p.tty = 0;
    sleep_s(0.03);
    for (int i = 0; i < 5000; i++)
        tm_progress_add(&p, 1, 1);
    tm_progress_finish(&p);
    assert_string_equal(log_output(), "");
}

static void test_default_interval(void **state)
{
    (void)state;
    struct tm_progress p;
    tm_progress_init(&p, "x", 5, 6, 1, 0);
    assert_true(p.interval == 30.0);
    assert_int_equal(p.total_items, 5);
    assert_int_equal(p.total_bytes, 6);
    assert_true(p.start > 0 && p.start <= tm_now());
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_now_monotonic), T(test_format),           T(test_log_mode),
        T(test_disabled),      T(test_default_interval),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
