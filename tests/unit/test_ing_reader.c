/* Unit tests for the buffered pull reader: lines in memory and across refills, over-long lines,
 * a final line without '\n', exact reads and skips, peeks, offsets and source errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ing_internal.h"
#include "test_util.h"
#include "tm_err.h"

/* Any fixed seed: the piece sizes only have to repeat from run to run. */
#define CHOP_SEED 7

/* Reads the next line and checks it is `want` (NULL: end of stream). */
static void expect_line(struct ing_reader *r, size_t max, const char *want)
{
    const char *line;
    size_t len;
    int rc = ing_reader_line(r, max, &line, &len);
    assert_int_equal(rc, TM_OK);
    if (want == NULL) {
        assert_null(line);
        return;
    }
    assert_non_null(line);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(line, want, len);
}

static void expect_toolong(struct ing_reader *r, size_t max, size_t want_len)
{
    const char *line;
    size_t len;
    assert_int_equal(ing_reader_line(r, max, &line, &len), ING_LINE_TOOLONG);
    assert_null(line);
    assert_int_equal(len, want_len);
}

static void test_lines_mem(void **state)
{
    (void)state;
    static const char data[] = "a\nbb\n\nccc\r\nlast";
    struct ing_reader r;
    ing_reader_init_mem(&r, data, strlen(data));
    expect_line(&r, 100, "a");
    /* In memory, a line is returned in place. */
    const char *line;
    size_t len;
    assert_int_equal(ing_reader_line(&r, 100, &line, &len), TM_OK);
    assert_ptr_equal(line, data + 2);
    assert_int_equal(len, 2);
    expect_line(&r, 100, "");
    expect_line(&r, 100, "ccc\r"); /* bytes are left as they are: only '\n' splits */
    assert_int_equal(r.offset, 11);
    expect_line(&r, 100, "last"); /* a final line without '\n' counts */
    assert_int_equal(r.line, 5);
    expect_line(&r, 100, NULL);
    expect_line(&r, 100, NULL);
    assert_int_equal(r.line, 5);
    assert_int_equal(r.offset, strlen(data));
    ing_reader_release(&r);
    ing_reader_release(NULL);
}

static void test_empty_streams(void **state)
{
    (void)state;
    struct ing_reader r;
    ing_reader_init_mem(&r, NULL, 0);
    expect_line(&r, 10, NULL);
    const char *p;
    assert_int_equal(ing_reader_peek(&r, 4, &p), 0);
    assert_int_equal(ing_reader_skip(&r, 0), TM_OK);
    assert_int_equal(ing_reader_skip(&r, 1), TM_ERR_FORMAT);
    ing_reader_release(&r);

    /* "\n" is one empty line; a trailing '\n' does not make another. */
    ing_reader_init_mem(&r, "\n", 1);
    expect_line(&r, 10, "");
    expect_line(&r, 10, NULL);
    ing_reader_release(&r);
}

/* Builds lines of lengths 0..60 (content derived from the index) joined by '\n'. */
static char *make_lines(size_t count, int final_newline, size_t *total)
{
    struct tm_buf b;
    tm_buf_init(&b, 0);
    for (size_t i = 0; i < count; i++) {
        size_t len = (i * 37) % 61;
        for (size_t k = 0; k < len; k++)
            tm_buf_putc(&b, 'a' + (int)((i + k) % 26));
        if (i + 1 < count || final_newline)
            tm_buf_putc(&b, '\n');
    }
    return tm_buf_detach(&b, total);
}

static void check_lines(struct ing_reader *r, const char *all, size_t count, size_t max)
{
    const char *p = all;
    for (size_t i = 0; i < count; i++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char want[64];
        assert_true(len < sizeof(want));
        memcpy(want, p, len);
        want[len] = '\0';
        if (len > max)
            expect_toolong(r, max, len);
        else
            expect_line(r, max, want);
        p += len + (nl ? 1 : 0);
    }
    expect_line(r, max, NULL);
    assert_int_equal(r->line, count);
}

static void test_lines_across_refills(void **state)
{
    (void)state;
    for (int final_nl = 0; final_nl <= 1; final_nl++) {
        size_t total;
        char *all = make_lines(200, final_nl, &total);
        /* Buffers smaller than, about equal to, and larger than the lines. */
        static const size_t sizes[] = {1, 2, 8, 16, 61, 64, 4096};
        for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
            struct chop c;
            struct ing_reader r;
            chop_init(&c, all, total, CHOP_SEED);
            ing_reader_init(&r, chop_read, &c, sizes[s]);
            check_lines(&r, all, 200, 1000);
            assert_int_equal(r.offset, total);
            ing_reader_release(&r);

            /* The same with a cap: lines over 30 bytes are reported, not returned. */
            chop_init(&c, all, total, CHOP_SEED);
            ing_reader_init(&r, chop_read, &c, sizes[s]);
            check_lines(&r, all, 200, 30);
            assert_int_equal(r.offset, total);
            ing_reader_release(&r);
        }
        free(all);
    }
}

static void test_too_long(void **state)
{
    (void)state;
    static const char data[] = "12345\n123456\nabc\n1234567";
    struct ing_reader r;
    ing_reader_init_mem(&r, data, strlen(data));
    expect_line(&r, 5, "12345"); /* exactly max is fine */
    expect_toolong(&r, 5, 6);
    expect_line(&r, 5, "abc");
    expect_toolong(&r, 5, 7); /* a final over-long line without '\n' */
    expect_line(&r, 5, NULL);
    assert_int_equal(r.line, 4);
    ing_reader_release(&r);

    /* A 100 KB line through a 16-byte buffer is consumed without being kept. */
    size_t big = 100000;
    char *data2 = malloc(big + 8);
    memset(data2, 'x', big);
    memcpy(data2 + big, "\nnext\n", 7);
    struct chop c;
    chop_init(&c, data2, big + 6, CHOP_SEED);
    ing_reader_init(&r, chop_read, &c, 16);
    expect_toolong(&r, 50, big);
    assert_true(r.scratch.cap <= 64 * 2); /* never grew past the cap's neighbourhood */
    expect_line(&r, 50, "next");
    expect_line(&r, 50, NULL);
    assert_int_equal(r.offset, big + 6);
    ing_reader_release(&r);
    free(data2);
}

static void test_read_skip(void **state)
{
    (void)state;
    static const char data[] = "0123456789";
    for (int chopped = 0; chopped <= 1; chopped++) {
        struct chop c;
        struct ing_reader r;
        struct tm_buf out;
        tm_buf_init(&out, 0);
        chop_init(&c, data, 10, CHOP_SEED);
        if (chopped)
            ing_reader_init(&r, chop_read, &c, 4);
        else
            ing_reader_init_mem(&r, data, 10);
        assert_int_equal(ing_reader_read(&r, 3, &out), TM_OK);
        assert_string_equal(out.data, "012");
        assert_int_equal(ing_reader_skip(&r, 2), TM_OK);
        assert_int_equal(r.offset, 5);
        tm_buf_reset(&out);
        assert_int_equal(ing_reader_read(&r, 0, &out), TM_OK);
        assert_int_equal(ing_reader_read(&r, 4, &out), TM_OK);
        assert_string_equal(out.data, "5678");
        /* Truncated: one byte left, three wanted. The byte is appended, the error says so. */
        assert_int_equal(ing_reader_read(&r, 3, &out), TM_ERR_FORMAT);
        assert_string_equal(out.data, "56789");
        assert_int_equal(r.offset, 10);
        assert_int_equal(ing_reader_skip(&r, 1), TM_ERR_FORMAT);
        expect_line(&r, 10, NULL);
        ing_reader_release(&r);
        tm_buf_release(&out);
    }
}

static void test_read_cap_and_mixed(void **state)
{
    (void)state;
    static const char data[] = "HDR 5\nabcdeline2\n";
    struct chop c;
    struct ing_reader r;
    struct tm_buf out;
    chop_init(&c, data, strlen(data), CHOP_SEED);
    ing_reader_init(&r, chop_read, &c, 3);
    tm_buf_init(&out, 4);
    expect_line(&r, 100, "HDR 5");
    /* Over the output's cap: refused before anything is consumed. */
    assert_int_equal(ing_reader_read(&r, 5, &out), TM_ERR_TOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(r.offset, 6);
    out.max = 0;
    assert_int_equal(ing_reader_read(&r, 5, &out), TM_OK);
    assert_string_equal(out.data, "abcde");
    expect_line(&r, 100, "line2");
    expect_line(&r, 100, NULL);
    assert_int_equal(r.line, 2);
    ing_reader_release(&r);
    tm_buf_release(&out);
}

static void test_skip_large(void **state)
{
    (void)state;
    size_t n = 50000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    struct chop c;
    struct ing_reader r;
    chop_init(&c, data, n, CHOP_SEED);
    ing_reader_init(&r, chop_read, &c, 256);
    assert_int_equal(ing_reader_skip(&r, 40000), TM_OK);
    const char *p;
    assert_true(ing_reader_peek(&r, 3, &p) >= 3);
    assert_memory_equal(p, data + 40000, 3);
    assert_int_equal(ing_reader_skip(&r, 20000), TM_ERR_FORMAT);
    assert_int_equal(r.offset, n);
    ing_reader_release(&r);
    free(data);
}

static void test_peek(void **state)
{
    (void)state;
    static const char data[] = "WARC/1.0\r\nline two\n";
    struct chop c;
    struct ing_reader r;
    const char *p;
    chop_init(&c, data, strlen(data), CHOP_SEED);
    ing_reader_init(&r, chop_read, &c, 4);
    /* More than the buffer holds: it grows. */
    size_t got = ing_reader_peek(&r, 12, &p);
    assert_true(got >= 12);
    assert_memory_equal(p, "WARC/1.0\r\nli", 12);
    assert_int_equal(r.offset, 0); /* peeking consumes nothing */
    expect_line(&r, 100, "WARC/1.0\r");
    expect_line(&r, 100, "line two");
    /* Past the end: all there is, then 0. */
    assert_int_equal(ing_reader_peek(&r, 5, &p), 0);
    ing_reader_release(&r);

    ing_reader_init_mem(&r, data, 4);
    assert_int_equal(ing_reader_peek(&r, 10, &p), 4);
    assert_ptr_equal(p, data);
    ing_reader_release(&r);
}

static void test_source_error(void **state)
{
    (void)state;
    static const char data[] = "one\ntwo\nthree\nfour\n";
    struct chop c;
    struct ing_reader r;
    chop_init(&c, data, strlen(data), CHOP_SEED);
    c.fail_at = 10;
    c.fail_rc = TM_ERR_IO;
    ing_reader_init(&r, chop_read, &c, 64);
    expect_line(&r, 100, "one");
    expect_line(&r, 100, "two");
    const char *line;
    size_t len;
    assert_int_equal(ing_reader_line(&r, 100, &line, &len), TM_ERR_IO);
    /* Sticky: the source is not asked again. */
    assert_int_equal(ing_reader_line(&r, 100, &line, &len), TM_ERR_IO);
    struct tm_buf out;
    tm_buf_init(&out, 0);
    assert_int_equal(ing_reader_skip(&r, 100), TM_ERR_IO);
    assert_int_equal(ing_reader_read(&r, 100, &out), TM_ERR_IO);
    assert_int_equal(r.err, TM_ERR_IO);
    tm_buf_release(&out);
    ing_reader_release(&r);
}

static void test_end_is_sticky(void **state)
{
    (void)state;
    struct chop c;
    struct ing_reader r;
    chop_init(&c, "x\n", 2, CHOP_SEED);
    ing_reader_init(&r, chop_read, &c, 0); /* 0 picks the default size */
    assert_int_equal(r.size, (size_t)1 << 20);
    expect_line(&r, 10, "x");
    expect_line(&r, 10, NULL);
    expect_line(&r, 10, NULL);
    /* Once the source said "end", it is not asked again. */
    assert_int_equal(c.calls_after_end, 1);
    ing_reader_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_mem),
        cmocka_unit_test(test_empty_streams),
        cmocka_unit_test(test_lines_across_refills),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_read_skip),
        cmocka_unit_test(test_read_cap_and_mixed),
        cmocka_unit_test(test_skip_large),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_source_error),
        cmocka_unit_test(test_end_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
