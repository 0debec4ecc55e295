/* Unit tests for tm_buf: growth, NUL termination, the cap, printf, consume and detach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tm_buf.h"
#include "tm_err.h"

static void test_append_grows(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tm_buf_append(&b, "0123456789", 10), TM_OK);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap >= b.len);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(strlen(b.data), 10000);
    assert_memory_equal(b.data + 9990, "0123456789", 10);
    assert_int_equal(tm_buf_putc(&b, 'x'), TM_OK);
    assert_int_equal(tm_buf_puts(&b, "yz"), TM_OK);
    assert_string_equal(b.data + 10000, "xyz");
    tm_buf_release(&b);
    assert_null(b.data);
    tm_buf_release(&b);
}

static void test_empty_append_terminates(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_int_equal(tm_buf_append(&b, NULL, 0), TM_OK);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    tm_buf_release(&b);
}

static void test_cap(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 16);
    assert_int_equal(tm_buf_append(&b, "0123456789", 10), TM_OK);
    /* 10 + 7 > 16: refused, and the buffer is as it was. */
    assert_int_equal(tm_buf_append(&b, "abcdefg", 7), TM_ERR_TOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(tm_buf_printf(&b, "%s", "abcdefg"), TM_ERR_TOOBIG);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    /* Exactly at the cap is fine. */
    assert_int_equal(tm_buf_append(&b, "abcdef", 6), TM_OK);
    assert_int_equal(b.len, 16);
    assert_true(b.cap <= 16);
    assert_int_equal(tm_buf_putc(&b, 'x'), TM_ERR_TOOBIG);
    /* A request that would overflow size_t is refused too, not wrapped. */
    assert_int_equal(tm_buf_reserve(&b, SIZE_MAX), TM_ERR_TOOBIG);
    tm_buf_release(&b);

    struct tm_buf u;
    tm_buf_init(&u, 0);
    assert_int_equal(tm_buf_reserve(&u, SIZE_MAX / 2 + 1), TM_ERR_TOOBIG);
    tm_buf_release(&u);
}

static void test_printf(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_int_equal(tm_buf_printf(&b, "%d-%s", 42, "x"), TM_OK);
    assert_string_equal(b.data, "42-x");
    /* Longer than any first allocation: exercises the grow-and-format-again path. */
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(tm_buf_printf(&b, "[%s]", big), TM_OK);
    assert_int_equal(b.len, 4 + 2 + 4999);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(strlen(b.data), b.len);
    tm_buf_release(&b);
}

static void test_reset_consume(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_int_equal(tm_buf_puts(&b, "hello world"), TM_OK);
    tm_buf_consume(&b, 6);
    assert_string_equal(b.data, "world");
    assert_int_equal(b.len, 5);
    tm_buf_consume(&b, 0);
    assert_string_equal(b.data, "world");
    tm_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(tm_buf_puts(&b, "again"), TM_OK);
    size_t cap = b.cap;
    tm_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    tm_buf_release(&b);
}

static void test_detach(void **state)
{
    (void)state;
    struct tm_buf b;
    tm_buf_init(&b, 0);
    size_t len = 99;
    char *p = tm_buf_detach(&b, &len);
    assert_non_null(p);
    assert_string_equal(p, "");
    assert_int_equal(len, 0);
    free(p);

    assert_int_equal(tm_buf_puts(&b, "owned"), TM_OK);
    p = tm_buf_detach(&b, &len);
    assert_string_equal(p, "owned");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    /* The buffer is usable again after a detach. */
    assert_int_equal(tm_buf_puts(&b, "more"), TM_OK);
    assert_string_equal(b.data, "more");
    free(p);
    tm_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows),  cmocka_unit_test(test_empty_append_terminates),
        cmocka_unit_test(test_cap),           cmocka_unit_test(test_printf),
        cmocka_unit_test(test_reset_consume), cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
