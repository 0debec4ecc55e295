/* core: UTF-8 repair (core/tm_utf8.h) on the cases of Unicode 15 chapter 3's "U+FFFD
 * substitution of maximal subparts": valid text unchanged (ASCII, 2-, 3- and 4-byte forms, NUL);
 * a stray continuation byte, an impossible byte, a truncated sequence at the end and in the
 * middle, an overlong form, a surrogate, a code point past U+10FFFF; and the count of
 * replacements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tm_buf.h"
#include "tm_err.h"
#include "tm_utf8.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

static void check(const char *in, size_t n, const char *want, uint64_t want_repairs)
{
    struct tm_buf b;
    tm_buf_init(&b, 0);
    uint64_t repairs = 0;
    assert_int_equal(tm_utf8_repair(in, n, &b, &repairs), TM_OK);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    assert_int_equal(repairs, want_repairs);
    tm_buf_release(&b);
}

static void test_repair(void **state)
{
    (void)state;
    const char ok[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    check(ok, sizeof(ok) - 1, ok, 0);
    struct tm_buf b;
    tm_buf_init(&b, 0);
    assert_int_equal(tm_utf8_repair("a\0b", 3, &b, NULL), TM_OK);
    assert_true(b.len == 3 && b.data[1] == 0);
    tm_buf_release(&b);
    check("\x80x", 2, R "x", 1);              /* stray continuation byte */
    check("\xffx", 2, R "x", 1);              /* never valid */
    check("x\xe2\x82", 3, "x" R, 1);          /* truncated at the end: one subpart */
    check("\xe2\x82x", 3, R "x", 1);          /* truncated in the middle */
    check("\xc0\xaf", 2, R R, 2);             /* overlong: C0 can never start */
    check("\xed\xa0\x80", 3, R R R, 3);       /* a surrogate: ED then A0 is ill-formed */
    check("\xf4\x90\x80\x80", 4, R R R R, 4); /* past U+10FFFF */
    check("\xf0\x9f\x98", 3, R, 1);           /* a 4-byte form cut short */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_repair)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
