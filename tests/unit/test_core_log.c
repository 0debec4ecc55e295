/* Unit tests for tm_log: line format, levels, timestamps, the tee, and whole lines under
 * concurrent writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tm_log.h"

/* Copies every log line to `tee` as well, until tee_stop(). */
static void tee_start(struct tu_capture *tee)
{
    tu_capture_open(tee);
    tm_log_set_tee(tee->f);
}

/* Stops the copy; tee->text stays valid until free(). */
static void tee_stop(struct tu_capture *tee)
{
    tm_log_set_tee(NULL);
    fclose(tee->f);
}

static int teardown(void **state)
{
    (void)state;
    tm_log_set_level(TM_LOG_INFO);
    tm_log_set_stream(NULL, -1);
    tm_log_set_tee(NULL);
    return 0;
}

static void test_format_levels(void **state)
{
    (void)state;
    struct tu_capture c;
    tm_log_set_level(TM_LOG_DEBUG);
    tu_capture_start(&c, 0);
    tm_log_error("cannot open %s", "x");
    tm_log_warn("w %d", 1);
    tm_log_info("i");
    tm_log_debug("d");
    tm_log(TM_LOG_ERROR, "via %s", "tm_log");
    tu_capture_stop(&c);
    assert_string_equal(
        c.text, "error: cannot open x\nwarning: w 1\ninfo: i\ndebug: d\nerror: via tm_log\n");
    free(c.text);
}

static void test_level_filter(void **state)
{
    (void)state;
    struct tu_capture c;
    tm_log_set_level(TM_LOG_WARN);
    assert_int_equal(tm_log_get_level(), TM_LOG_WARN);
    assert_true(tm_log_enabled(TM_LOG_ERROR));
    assert_true(tm_log_enabled(TM_LOG_WARN));
    assert_false(tm_log_enabled(TM_LOG_INFO));
    assert_false(tm_log_enabled(TM_LOG_DEBUG));
    tu_capture_start(&c, 0);
    tm_log_info("dropped");
    tm_log_debug("dropped");
    tm_log_warn("kept");
    tu_capture_stop(&c);
    assert_string_equal(c.text, "warning: kept\n");
    free(c.text);
}

/* "2026-11-29T05:13:16Z " */
static void assert_timestamp(const char *s)
{
    const char *pat = "dddd-dd-ddTdd:dd:ddZ ";
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd')
            assert_true(isdigit((unsigned char)s[i]));
        else
            assert_int_equal(s[i], pat[i]);
    }
}

static void test_timestamps_and_tee(void **state)
{
    (void)state;
    struct tu_capture c, tee;
    tee_start(&tee);
    tu_capture_start(&c, 1);
    tm_log_error("stamped");
    tu_capture_stop(&c);
    tee_stop(&tee);

    assert_int_equal(strlen(c.text), 21 + strlen("error: stamped\n"));
    assert_timestamp(c.text);
    assert_string_equal(c.text + 21, "error: stamped\n");
    assert_string_equal(tee.text, c.text);
    free(c.text);
    free(tee.text);
}

static void test_tee_unstamped_stream(void **state)
{
    (void)state;
    struct tu_capture c, tee;
    tee_start(&tee);
    tu_capture_start(&c, 0);
    tm_log_warn("both");
    tu_capture_stop(&c);
    tee_stop(&tee);
    assert_string_equal(c.text, "warning: both\n");
    assert_timestamp(tee.text);
    assert_string_equal(tee.text + 21, "warning: both\n");
    free(c.text);
    free(tee.text);
}

static void test_long_message_truncated(void **state)
{
    (void)state;
    struct tu_capture c;
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    tu_capture_start(&c, 0);
    tm_log_error("%s", big);
    tm_log_error("next");
    tu_capture_stop(&c);
    /* Truncated, but still one whole line followed by the next one. */
    char *nl = strchr(c.text, '\n');
    assert_non_null(nl);
    assert_true((size_t)(nl - c.text) < n);
    assert_string_equal(nl + 1, "error: next\n");
    free(big);
    free(c.text);
}

#define THREADS 4
#define LINES   2000

static void *writer(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        tm_log_info("thread %ld line %d padding-padding-padding-padding", id, i);
    return NULL;
}

static void test_threads_whole_lines(void **state)
{
    (void)state;
    struct tu_capture c;
    tu_capture_start(&c, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    tu_capture_stop(&c);
    int count = 0;
    int next[THREADS] = {0};
    for (char *line = strtok(c.text, "\n"); line; line = strtok(NULL, "\n")) {
        long id;
        int n;
        char tail[64];
        assert_int_equal(sscanf(line, "info: thread %ld line %d %63s", &id, &n, tail), 3);
        assert_in_range(id, 0, THREADS - 1);
        /* Each thread's lines arrive complete and in its own order. */
        assert_int_equal(n, next[id]);
        next[id]++;
        assert_string_equal(tail, "padding-padding-padding-padding");
        count++;
    }
    assert_int_equal(count, THREADS * LINES);
    free(c.text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_format_levels, teardown),
        cmocka_unit_test_teardown(test_level_filter, teardown),
        cmocka_unit_test_teardown(test_timestamps_and_tee, teardown),
        cmocka_unit_test_teardown(test_tee_unstamped_stream, teardown),
        cmocka_unit_test_teardown(test_long_message_truncated, teardown),
        cmocka_unit_test_teardown(test_threads_whole_lines, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
