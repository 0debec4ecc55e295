/* Unit tests for tm_err: names and descriptions of every code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tm_err.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(tm_errname(TM_OK), "ok");
    assert_string_equal(tm_errname(TM_ERR_USAGE), "usage");
    assert_string_equal(tm_errname(TM_ERR_NOMEM), "nomem");
    assert_string_equal(tm_errname(TM_ERR_IO), "io");
    assert_string_equal(tm_errname(TM_ERR_MAPFULL), "mapfull");
    assert_string_equal(tm_errname(TM_ERR_LOCKED), "locked");
    assert_string_equal(tm_errname(TM_ERR_PARTIAL), "partial");
    assert_string_equal(tm_errname(TM_ERR_INTERNAL), "internal");
    assert_string_equal(tm_strerror(TM_OK), "ok");
    assert_string_equal(tm_strerror(TM_ERR_NOTFOUND), "not found");
}

static void test_every_code_distinct(void **state)
{
    (void)state;
    /* Every code from TM_OK down to TM_ERR_INTERNAL has its own name and description. */
    for (int a = TM_OK; a >= TM_ERR_INTERNAL; a--) {
        assert_string_not_equal(tm_errname(a), "unknown");
        assert_string_not_equal(tm_strerror(a), "unknown error");
        for (int b = a - 1; b >= TM_ERR_INTERNAL; b--) {
            assert_string_not_equal(tm_errname(a), tm_errname(b));
            assert_string_not_equal(tm_strerror(a), tm_strerror(b));
        }
    }
}

static void test_unknown(void **state)
{
    (void)state;
    assert_string_equal(tm_strerror(TM_ERR_INTERNAL - 1), "unknown error");
    assert_string_equal(tm_strerror(1), "unknown error");
    assert_string_equal(tm_strerror(-100000), "unknown error");
    assert_string_equal(tm_errname(INT32_MIN), "unknown");
    assert_string_equal(tm_errname(42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_every_code_distinct),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
