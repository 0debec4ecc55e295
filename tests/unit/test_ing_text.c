/* Unit tests for text normalization (ingest/ing_text.c): every class of ill-formed UTF-8 with
 * the exact bytes and repair counts Unicode's "maximal subpart" practice prescribes, NUL and CR
 * handling, the 8-byte fast path at every alignment, and the output cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ing_internal.h"
#include "tm_err.h"

#define FFFD "\xef\xbf\xbd"

/* Normalizes in[0..n) into a fresh buffer and checks the output and the stats. */
static void check(const char *in, size_t n, const char *want, size_t want_len, uint64_t repairs,
                  uint64_t nuls, uint64_t crlf)
{
    struct tm_buf b;
    struct ing_norm_stats st = {0};
    tm_buf_init(&b, 0);
    assert_int_equal(ing_normalize(in, n, &b, &st), TM_OK);
    assert_int_equal(b.len, want_len);
    assert_memory_equal(b.data, want, want_len);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(st.utf8_repairs, repairs);
    assert_int_equal(st.nul_removed, nuls);
    assert_int_equal(st.crlf, crlf);
    /* Clean exactly when nothing changed. */
    int unchanged = want_len == n && memcmp(in, want, n) == 0 && repairs == 0 && nuls == 0;
    assert_int_equal(ing_is_clean(in, n) != 0, unchanged && !memchr(in, '\r', n));
    tm_buf_release(&b);
}

#define CHECK(in, want, rep, nul, crlf)                                                            \
    check(in, sizeof(in) - 1, want, sizeof(want) - 1, rep, nul, crlf)

static void test_valid(void **state)
{
    (void)state;
    CHECK("", "", 0, 0, 0);
    CHECK("hello", "hello", 0, 0, 0);
    CHECK("caf\xc3\xa9", "caf\xc3\xa9", 0, 0, 0);
    CHECK("\xe2\x82\xac 5", "\xe2\x82\xac 5", 0, 0, 0);       /* U+20AC */
    CHECK("\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!", 0, 0, 0); /* U+1F600 */
    /* Boundaries of Table 3-7. */
    CHECK("\xc2\x80\xdf\xbf", "\xc2\x80\xdf\xbf", 0, 0, 0);
    CHECK("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf",
          "\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf", 0, 0, 0);
    CHECK("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 0, 0, 0);
    /* U+FEFF is kept: normalization does not strip a BOM. */
    CHECK("\xef\xbb\xbfx", "\xef\xbb\xbfx", 0, 0, 0);
}

static void test_overlong(void **state)
{
    (void)state;
    /* C0 and C1 can never start a sequence: each byte is its own subpart. */
    CHECK("\xc0\x80", FFFD FFFD, 2, 0, 0);
    CHECK("\xc1\xbf", FFFD FFFD, 2, 0, 0);
    /* E0 needs A0..BF next: E0 alone is the maximal subpart, then two stray continuations. */
    CHECK("\xe0\x80\x80", FFFD FFFD FFFD, 3, 0, 0);
    CHECK("\xe0\x9f\xbf", FFFD FFFD FFFD, 3, 0, 0);
    /* F0 needs 90..BF next. */
    CHECK("\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD, 4, 0, 0);
    CHECK("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD, 4, 0, 0);
}

static void test_surrogates_and_range(void **state)
{
    (void)state;
    CHECK("\xed\xa0\x80", FFFD FFFD FFFD, 3, 0, 0); /* U+D800 */
    CHECK("\xed\xbf\xbf", FFFD FFFD FFFD, 3, 0, 0); /* U+DFFF */
    CHECK("a\xed\xa0\x80\xed\xb0\x80z", "a" FFFD FFFD FFFD FFFD FFFD FFFD "z", 6, 0, 0);
    CHECK("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, 4, 0, 0); /* U+110000 */
    CHECK("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD, 4, 0, 0);
    /* Old 5- and 6-byte forms and the bytes that never occur. */
    CHECK("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD, 5, 0, 0);
    CHECK("\xfc\x84\x80\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD FFFD, 6, 0, 0);
    CHECK("\xfe\xff", FFFD FFFD, 2, 0, 0);
}

static void test_continuations_and_truncation(void **state)
{
    (void)state;
    CHECK("\x80", FFFD, 1, 0, 0);
    CHECK("a\xbf\x80z", "a" FFFD FFFD "z", 2, 0, 0);
    /* Truncated at the end: the valid prefix is one subpart. */
    CHECK("\xc3", FFFD, 1, 0, 0);
    CHECK("\xe1\x80", FFFD, 1, 0, 0);
    CHECK("\xf0\x9f\x98", FFFD, 1, 0, 0);
    CHECK("\xf0\x9f", FFFD, 1, 0, 0);
    /* Truncated in the middle: the next byte is not consumed. */
    CHECK("\xe1\x80"
          "A",
          FFFD "A", 1, 0, 0);
    CHECK("\xf0\x9f\x98"
          "A",
          FFFD "A", 1, 0, 0);
    CHECK("\xe2\x82\xc3\xa9", FFFD "\xc3\xa9", 1, 0, 0);
    CHECK("\xc3\xc3\xa9", FFFD "\xc3\xa9", 1, 0, 0);
    /* The example of Unicode 15 §3.9, Table 3-8. */
    CHECK("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
          "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d", 6, 0, 0);
}

static void test_nul_and_cr(void **state)
{
    (void)state;
    CHECK("a\0b\0\0c", "abc", 0, 3, 0);
    CHECK("\0", "", 0, 1, 0);
    CHECK("a\r\nb\r\n", "a\nb\n", 0, 0, 2);
    CHECK("a\rb", "a\rb", 0, 0, 0);     /* lone CR kept */
    CHECK("a\r\r\nb", "a\nb", 0, 0, 2); /* CRCRLF (converted twice) is one line end */
    CHECK("a\r", "a\r", 0, 0, 0);       /* CR at the very end */
    CHECK("\r\n\r\n\r\n\r\n\r\n", "\n\n\n\n\n", 0, 0, 5);
    CHECK("x\r\0\ny", "x\ny", 0, 1, 1); /* removing the NUL must not leave a CRLF */
    CHECK("x\r\0z", "x\rz", 0, 1, 0);   /* a lone CR before a NUL stays */
    CHECK("0123456\r\n89abcdef", "0123456\n89abcdef", 0, 0, 1);
}

/* Every length 0..17 and an invalid byte (or NUL, or CRLF) at every position: the fast path
 * and the byte path must agree. */
static void test_fast_path_boundaries(void **state)
{
    (void)state;
    char in[32] = {0}, want[64] = {0};
    for (size_t n = 0; n <= 17; n++) {
        for (size_t k = 0; k < n; k++)
            in[k] = (char)('a' + k);
        check(in, n, in, n, 0, 0, 0);
        for (size_t pos = 0; pos < n; pos++) {
            size_t w = 0;
            for (size_t k = 0; k < n; k++) {
                in[k] = (char)('a' + k);
                want[w++] = (char)('a' + k);
            }
            /* an invalid byte */
            in[pos] = (char)0xff;
            memcpy(want, in, pos);
            memcpy(want + pos, FFFD, 3);
            memcpy(want + pos + 3, in + pos + 1, n - pos - 1);
            check(in, n, want, n + 2, 1, 0, 0);
            /* a NUL */
            in[pos] = '\0';
            memcpy(want, in, pos);
            memcpy(want + pos, in + pos + 1, n - pos - 1);
            check(in, n, want, n - 1, 0, 1, 0);
            /* a valid two-byte character */
            if (pos + 1 < n) {
                in[pos] = (char)0xc3;
                in[pos + 1] = (char)0xa9;
                check(in, n, in, n, 0, 0, 0);
                in[pos] = '\r';
                in[pos + 1] = '\n';
                memcpy(want, in, pos);
                memcpy(want + pos, in + pos + 1, n - pos - 1);
                check(in, n, want, n - 1, 0, 0, 1);
            }
        }
    }
}

/* A long mixed text: the output equals a byte-at-a-time reference built from its pieces. */
static void test_long_mixed(void **state)
{
    (void)state;
    struct tm_buf in, want, out;
    tm_buf_init(&in, 0);
    tm_buf_init(&want, 0);
    tm_buf_init(&out, 0);
    uint64_t repairs = 0, nuls = 0, crlf = 0;
    for (int i = 0; i < 5000; i++) {
        switch (i % 7) {
        case 0:
            tm_buf_puts(&in, "plain ascii words ");
            tm_buf_puts(&want, "plain ascii words ");
            break;
        case 1:
            tm_buf_puts(&in, "gr\xc3\xbc\xc3\x9f ");
            tm_buf_puts(&want, "gr\xc3\xbc\xc3\x9f ");
            break;
        case 2:
            tm_buf_puts(&in, "\xed\xa0\x80");
            tm_buf_puts(&want, FFFD FFFD FFFD);
            repairs += 3;
            break;
        case 3:
            tm_buf_append(&in, "x\0y", 3);
            tm_buf_puts(&want, "xy");
            nuls++;
            break;
        case 4:
            tm_buf_puts(&in, "line\r\n");
            tm_buf_puts(&want, "line\n");
            crlf++;
            break;
        case 5:
            tm_buf_puts(&in, "\xe4\xb8\xad\xe6\x96\x87");
            tm_buf_puts(&want, "\xe4\xb8\xad\xe6\x96\x87");
            break;
        default:
            tm_buf_puts(&in, "\xf0\x9f");
            tm_buf_puts(&want, FFFD);
            repairs++;
            break;
        }
    }
    struct ing_norm_stats st = {0};
    /* Appending after existing content keeps it. */
    tm_buf_puts(&out, "PREFIX");
    assert_int_equal(ing_normalize(in.data, in.len, &out, &st), TM_OK);
    assert_int_equal(out.len, want.len + 6);
    assert_memory_equal(out.data, "PREFIX", 6);
    assert_memory_equal(out.data + 6, want.data, want.len);
    assert_int_equal(st.utf8_repairs, repairs);
    assert_int_equal(st.nul_removed, nuls);
    assert_int_equal(st.crlf, crlf);
    assert_true(ing_is_clean(want.data, want.len));
    assert_false(ing_is_clean(in.data, in.len));
    tm_buf_release(&in);
    tm_buf_release(&want);
    tm_buf_release(&out);
}

static void test_cap(void **state)
{
    (void)state;
    struct tm_buf b;
    struct ing_norm_stats st = {0};
    /* Exactly at the cap fits. */
    tm_buf_init(&b, 5);
    assert_int_equal(ing_normalize("hello", 5, &b, &st), TM_OK);
    assert_int_equal(b.len, 5);
    tm_buf_release(&b);
    /* One over does not, and leaves a prefix. */
    tm_buf_init(&b, 5);
    assert_int_equal(ing_normalize("hello!", 6, &b, &st), TM_ERR_TOOBIG);
    assert_true(b.len <= 5);
    tm_buf_release(&b);
    /* Repairs grow the text past the cap. */
    tm_buf_init(&b, 8);
    assert_int_equal(ing_normalize("ab\xff\xff", 4, &b, &st), TM_OK); /* 2 + 3 + 3 = 8 */
    assert_int_equal(b.len, 8);
    tm_buf_release(&b);
    tm_buf_init(&b, 8);
    assert_int_equal(ing_normalize("abc\xff\xff", 5, &b, &st), TM_ERR_TOOBIG);
    assert_true(b.len <= 8);
    tm_buf_release(&b);
    /* Input longer than the cap whose output fits (NULs and CRLFs removed) is fine. */
    tm_buf_init(&b, 5);
    assert_int_equal(ing_normalize("a\0b\0c\r\nd", 8, &b, &st), TM_OK);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "abc\nd", 5);
    tm_buf_release(&b);
    /* A long clean text one byte over a cap reached by the fast path. */
    char big[100];
    memset(big, 'x', sizeof big);
    tm_buf_init(&b, 99);
    assert_int_equal(ing_normalize(big, 100, &b, &st), TM_ERR_TOOBIG);
    tm_buf_release(&b);
    tm_buf_init(&b, 100);
    assert_int_equal(ing_normalize(big, 100, &b, &st), TM_OK);
    tm_buf_release(&b);
}

static void test_is_clean(void **state)
{
    (void)state;
    assert_true(ing_is_clean("", 0));
    assert_true(ing_is_clean("hello world, long enough for words", 34));
    assert_true(ing_is_clean("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
    assert_false(ing_is_clean("a\rb", 3));
    assert_false(ing_is_clean("a\r\nb", 4));
    assert_false(ing_is_clean("abcdefgh\0", 9));
    assert_false(ing_is_clean("abcdefgh\xc0\x80", 10));
    assert_false(ing_is_clean("abcdefgh\xe1\x80", 10));
    assert_false(ing_is_clean("\xed\xa0\x80", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_overlong),
        cmocka_unit_test(test_surrogates_and_range),
        cmocka_unit_test(test_continuations_and_truncation),
        cmocka_unit_test(test_nul_and_cr),
        cmocka_unit_test(test_fast_path_boundaries),
        cmocka_unit_test(test_long_mixed),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
